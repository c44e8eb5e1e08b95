"""`lifeblood-worker pool simple` against the reference scheduler peer: one
scenario per case of upstream's tests/test_worker_pool.py (basic, back to
idle and back to total with minimums 1/2/3, max, min, the mixed start/stop),
the documented on-demand mode with the host ledger and a fixture capacity
(32 cores / 64 GiB, tasks of 8/16 and 20/40; the idle worker says hello again
as tasks end, even with mesh.readvertise off in the configuration), a pool stopped by SIGTERM and
one SIGKILLed (no process left: checked by the pids recorded), a worker
command that crashes at once (reported, throttled). The pool's workers are
read from /proc/<pool>/task/<pool>/children (the processes it still has,
those stopping included, as upstream's list_workers).
Usage: scenarios_pool.py [NAME...]"""
import asyncio
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Worker, run  # noqa: E402
from lbpeer import make_job, next_invocation_id, IDLE  # noqa: E402
from scenarios import check  # noqa: E402
from scenarios_cgroup import alive  # noqa: E402
from scenarios_ledger import CFG, G, job, holder, wait_file  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


class Pool(Worker):
    """A pool process with a private config; cleaned up by the harness
    (SIGTERM, then SIGKILL) like a worker, whose log() and wait_exit() it
    shares."""

    def __init__(self, h, s, args, config='', env=None, loglevel='DEBUG', broadcast=False,
                 mesh=''):
        self.h = h
        self.n = len(h.workers)
        self.cfgdir = os.path.join(h.tmp, 'pcfg%d' % self.n)
        os.makedirs(os.path.join(self.cfgdir, 'worker'), exist_ok=True)
        # as the harness's workers: a root worker's payloads run as root only
        # when the config says so (the payloads use the test's root-owned files)
        user = 'payload_user = "root"\n' if os.geteuid() == 0 else ''
        with open(os.path.join(self.cfgdir, 'worker', 'config.toml'), 'w') as f:
            f.write('%s\n[worker]\nlisten_to_broadcast = %s\nscheduler_address = "%s"\n'
                    'logpath = "%s"\n%s[mesh]\nnamespace = "lbw-test/%s/%d"\n%s'
                    % (config, 'true' if broadcast else 'false', s.addr,
                       os.path.join(h.tmp, 'plogs%d' % self.n), user,
                       os.path.basename(h.tmp), self.n, mesh))
        self.logfile = os.path.join(h.tmp, 'pool%d.log' % self.n)
        e = dict(os.environ)
        e['LIFEBLOOD_CONFIG_LOCATION'] = self.cfgdir
        e.update(env or {})
        self.proc = subprocess.Popen([BIN, '--loglevel', loglevel, 'pool', 'simple'] + list(args),
                                     stdout=open(self.logfile, 'ab'),
                                     stderr=subprocess.STDOUT, env=e,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.seen = set()
        h.workers.append(self)

    def children(self):
        try:
            with open('/proc/%d/task/%d/children' % (self.pid, self.pid)) as f:
                pids = [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []
        pids = [p for p in pids if alive(p)]
        self.seen.update(pids)
        return pids

    async def wait_children(self, want, timeout=30, what=''):
        deadline = time.monotonic() + timeout
        while True:
            c = self.children()
            if len(c) == want:
                return c
            if time.monotonic() > deadline:
                raise AssertionError('pool has %d workers, want %d %s' % (len(c), want, what))
            await asyncio.sleep(0.05)


def pooled(s, p):
    """Scheduler-side addresses of this pool's workers (registered through it)."""
    return [a for a, w in s.workers.items() if a.startswith(p + '|') and w['state'] != 0]


async def proxy_of(h, s, pool, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in pool.log().splitlines():
            if 'message proxy on ' in line:
                return line.split('message proxy on ', 1)[1].split(';', 1)[0]
        await asyncio.sleep(0.05)
    raise AssertionError('the pool did not say where its proxy listens')


async def idle_workers(s, proxy, n, timeout=30):
    await s.wait_for(lambda: len(pooled(s, proxy)) >= n, timeout, '%d hellos via the pool' % n)
    return pooled(s, proxy)


async def no_process_left(pids, timeout=20, what=''):
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError('processes left %s: %r' % (what, left))
        await asyncio.sleep(0.05)


async def stop_pool(pool):
    kids = pool.children()
    pool.proc.send_signal(signal.SIGTERM)
    rc = await pool.wait_exit(30)
    check(rc == 0, 'the pool exits 0 after SIGTERM, got %r' % rc)
    await no_process_left(kids + list(pool.seen), 5, 'after the pool stopped')


@scenario
async def basic(h):
    """upstream test_basic: a pool starts one worker, which registers with the
    scheduler through the pool's proxy (address pool|worker), reports IDLE
    and runs a task sent through the proxy; its report comes back through
    it; stopped and started three times."""
    s = await h.scheduler()
    for _ in range(3):
        pool = Pool(h, s, ['--min-idle', '1'])
        proxy = await proxy_of(h, s, pool)
        addr, = await idle_workers(s, proxy, 1)
        await pool.wait_children(1, 5)
        iid = next_invocation_id()
        r = await s.task(addr, make_job(['/bin/sh', '-c', 'echo hi'], iid))
        check(r == {'status': 0}, 'task reply through the proxy: %r' % (r,))
        _, name, args = await s.wait_report(iid)
        check(name == 'worker.done', 'report %s' % name)
        await stop_pool(pool)
        for a in list(s.workers):
            s.workers[a]['state'] = 0


async def back_to(h, n, total):
    s = await h.scheduler()
    args = ['--min-idle', str(n), '--idle-timeout', '1']
    if total:
        args += ['--min-total', str(n)]
    pool = Pool(h, s, args)
    proxy = await proxy_of(h, s, pool)
    first = await idle_workers(s, proxy, n)
    stops = []
    for i, a in enumerate(first):  # all busy: the pool adds n idle ones
        cmd, out, stop = holder(h, 'b%d' % i)
        r = await s.task(a, make_job(cmd, next_invocation_id()))
        check(r == {'status': 0}, 'task reply %r' % (r,))
        stops.append(stop)
    await pool.wait_children(2 * n, 30, 'after %d became busy' % n)
    await idle_workers(s, proxy, 2 * n)
    for st in stops:
        open(st, 'w').close()
    # surplus idle workers stop after the idle timeout; never fewer than n
    t0 = time.monotonic()
    while time.monotonic() - t0 < 6:
        c = len(pool.children())
        check(c >= n, 'the pool went down to %d workers (minimum %d)' % (c, n))
        await asyncio.sleep(0.01)
    await pool.wait_children(n, 15, 'after the surplus stopped')
    log = pool.log()
    check(log.count('idle for') >= n, 'surplus idle workers stopped: %s' % log[-3000:])
    await stop_pool(pool)


for _n in (1, 2, 3):
    SCENARIOS['back_to_idle_min%d' % _n] = (lambda n: lambda h: back_to(h, n, False))(_n)
    SCENARIOS['back_to_total_min%d' % _n] = (lambda n: lambda h: back_to(h, n, True))(_n)


async def watch(pool, seconds):
    """Samples the pool's children for a while (recording their pids)."""
    t0 = time.monotonic()
    counts = []
    while time.monotonic() - t0 < seconds:
        counts.append(len(pool.children()))
        await asyncio.sleep(0.05)
    return counts


@scenario
async def max1(h):
    """upstream test_max1: asked for 10 idle workers with --max 5, the pool
    runs exactly 5, says so once, and stays there."""
    s = await h.scheduler()
    pool = Pool(h, s, ['--min-idle', '10', '--max', '5'])
    await pool.wait_children(5, 20)
    counts = await watch(pool, 2)
    check(max(counts) == 5 and min(counts) == 5, 'worker counts %r' % sorted(set(counts)))
    check(pool.log().count('maximum worker limit reached (5)') == 1,
          'the limit is logged once: %s' % pool.log()[-2000:])
    await stop_pool(pool)


@scenario
async def min1(h):
    """upstream test_min1: --min-total 4; two workers stopped from outside are
    replaced at once (they lived long enough to reach the scheduler)."""
    s = await h.scheduler()
    pool = Pool(h, s, ['--min-total', '4', '--min-idle', '1'])
    proxy = await proxy_of(h, s, pool)
    await idle_workers(s, proxy, 4)
    first = await pool.wait_children(4, 10)
    # (a worker that has not told the pool IDLE yet would count as a young death)
    for _ in range(400):
        if len(re.findall(r'worker \d+: IDLE', pool.log())) >= 4:
            break
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    for pid in first[-2:]:
        os.kill(pid, signal.SIGTERM)
    await no_process_left(first[-2:], 20, 'after SIGTERM to two workers')
    # (a new worker may take a stopped one's port, hence its address)
    await s.wait_for(lambda: len([a for a in pooled(s, proxy)
                                  if s.workers[a]['hello_at'] >= t0]) >= 2, 20, 'two new hellos')
    now = await pool.wait_children(4, 20)
    check(len(set(now) - set(first)) == 2, 'two new workers: %r then %r' % (first, now))
    await stop_pool(pool)


@scenario
async def mixed(h):
    """upstream test_smth1: a pool with --min-idle 1 started and stopped five
    times after 0 to 2 s; every worker it ever had is gone each time."""
    s = await h.scheduler()
    for i in range(5):
        pool = Pool(h, s, ['--min-idle', '1'])
        await proxy_of(h, s, pool)  # (a signal before the pool runs is the default action)
        await watch(pool, (i * 0.37) % 2)
        await stop_pool(pool)


def pidfile_job(h, tag, iid, cpus=0, mem=0):
    """A payload that writes its pid, then sleeps (bounded)."""
    pidf = os.path.join(h.tmp, 'pid-%s' % tag)
    cmd = ['/bin/sh', '-c', 'echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 60' % (pidf, pidf, pidf)]
    return job(cmd, iid, cpus, mem), pidf


async def busy_pool(h, s):
    pool = Pool(h, s, ['--min-idle', '2'])
    proxy = await proxy_of(h, s, pool)
    addrs = await idle_workers(s, proxy, 2)
    iid = next_invocation_id()
    pk, pidf = pidfile_job(h, 'busy', iid)
    r = await s.task(addrs[0], pk)
    check(r == {'status': 0}, 'task reply %r' % (r,))
    payload = int((await wait_file(pidf)).strip())
    await pool.wait_children(3, 20, 'after one became busy')
    return pool, iid, payload


@scenario
async def sigterm(h):
    """SIGTERM to the pool: every worker gets SIGTERM, the busy one cancels
    its payload and reports it dropped through the proxy, the pool exits 0
    and no process it started (nor the payload) is left."""
    s = await h.scheduler()
    pool, iid, payload = await busy_pool(h, s)
    pids = pool.children() + [payload]
    await stop_pool(pool)
    await no_process_left(pids, 5, 'after the pool stopped')
    _, name, _ = await s.wait_report(iid, 10)
    check(name == 'worker.dropped', 'the running invocation was %s' % name)
    check('stopping 3 workers' in pool.log(), pool.log()[-2000:])


@scenario
async def sigkill(h):
    """SIGKILL to the pool: the kernel sends its workers SIGTERM (parent-death
    signal); they stop and kill their payloads: no process is left."""
    s = await h.scheduler()
    pool, iid, payload = await busy_pool(h, s)
    pids = pool.children() + [payload]
    pool.proc.send_signal(signal.SIGKILL)
    await pool.wait_exit(10)
    await no_process_left(pids, 20, 'after the pool was SIGKILLed')


@scenario
async def crash_loop(h):
    """A worker command that exits 3 at once: each exit is reported once with
    its status, and starts are throttled (5 s pause, doubling), not a storm."""
    s = await h.scheduler()
    count = os.path.join(h.tmp, 'starts')
    script = os.path.join(h.tmp, 'crash.sh')
    with open(script, 'w') as f:
        f.write('#!/bin/sh\necho x >> %s\nexit 3\n' % count)
    os.chmod(script, 0o755)
    pool = Pool(h, s, ['--min-idle', '2'], env={'LBW_POOL_WORKER': script})
    await watch(pool, 12)
    with open(count) as f:
        starts = len(f.read().split())
    check(2 <= starts <= 6, '%d starts in 12 s (want a throttled few)' % starts)
    log = pool.log()
    check(log.count('exited with status 3') == starts,
          'each crash reported once: %d reports, %d starts' % (log.count('exited with status 3'),
                                                             starts))
    check('no new workers for 10 s' in log, 'the pause doubles: %s' % log[-3000:])
    await stop_pool(pool)


async def on_demand_run(h, readvertise):
    """The fixture host is 32 cores / 64 GiB. The first worker advertises
    32/64. When it takes 8/16, the pool starts another (no worker is free),
    which advertises 24/48. That one takes 20/40 and the third advertises
    4/8. When the third takes 4/8, nothing is left and no worker is started.
    When a task ends, its worker exits (one task each); with no worker free
    and room again, a new one advertises what is left. Once more tasks end,
    the idle worker advertises what is left then by saying hello again (the
    same worker and address: mesh.readvertise, which the pool turns on for
    its workers whatever the configuration says). The last hello advertises
    the whole host."""
    s = await h.scheduler()
    pool = Pool(h, s, ['--on-demand'], config=CFG,
                mesh='' if readvertise else 'readvertise = false\n')
    proxy = await proxy_of(h, s, pool)
    last = [0.0]

    def new():  # by hello time: a new worker may take a gone one's port (address)
        return [a for a in pooled(s, proxy) if s.workers[a]['hello_at'] > last[0]]

    async def next_worker(cpus, mem_g, what):
        await s.wait_for(new, 20, what)
        a, = new()
        last[0] = s.workers[a]['hello_at']
        r = s.workers[a]['res'].__dict__
        check(r['total_cpu_count'] == 32 and r['total_cpu_mem'] == 64 * G, 'totals %r' % r)
        check((r['cpu_count'], r['cpu_mem']) == (cpus, mem_g * G),
              '%s: advertises %s / %s GiB, want %s / %s'
              % (what, r['cpu_count'], r['cpu_mem'] / G, cpus, mem_g))
        return a

    async def run_on(a, tag, cpus, mem_g):
        iid = next_invocation_id()
        pk, pidf = pidfile_job(h, tag, iid, cpus, mem_g * G)
        r = await s.task(a, pk)
        check(r == {'status': 0}, 'task reply %r' % (r,))
        return iid, int((await wait_file(pidf)).strip())

    a1 = await next_worker(32, 64, 'worker 1')
    i1, p1 = await run_on(a1, '1', 8, 16)
    a2 = await next_worker(24, 48, 'worker 2 while 8/16 run')
    i2, p2 = await run_on(a2, '2', 20, 40)
    a3 = await next_worker(4, 8, 'worker 3 while 8/16 and 20/40 run')
    i3, p3 = await run_on(a3, '3', 4, 8)
    counts = await watch(pool, 2)
    check(max(counts) == 3, 'nothing left: no new worker (counts %r)' % sorted(set(counts)))
    check(not new(), 'no hello while nothing is left')
    os.kill(p3, signal.SIGTERM)  # the 4/8 task ends; its worker exits; 4/8 free again
    await s.wait_report(i3, 20)
    a4 = await next_worker(4, 8, 'worker 4 after the 4/8 task ended')
    pids4 = pool.children()
    os.kill(p1, signal.SIGTERM)  # 8/16 free again
    await s.wait_report(i1, 20)
    a5 = await next_worker(12, 24, 'the idle worker once 8/16 ended')
    os.kill(p2, signal.SIGTERM)
    await s.wait_report(i2, 20)
    a6 = await next_worker(32, 64, 'the whole host again once every task ended')
    kids = await pool.wait_children(1, 20, 'one free worker once every task ended')
    log = pool.log()
    check('nothing is left on this host' in log, log[-3000:])
    check(a4 == a5 == a6 and kids[0] in pids4,
          'the same worker said hello again: %r, pids %r then %r' % ((a4, a5, a6), pids4, kids))
    said = 'mesh.readvertise = false does not apply to them' in log
    check(said == (not readvertise), 'the pool says it turns readvertise on: %s' % said)
    await stop_pool(pool)


@scenario
async def on_demand(h):
    """--on-demand with the host ledger and a fixture capacity (on_demand_run)."""
    await on_demand_run(h, True)


@scenario
async def on_demand_readvertise_off(h):
    """The same with mesh.readvertise = false in the configuration: the pool
    says its workers re-advertise all the same, and they do."""
    await on_demand_run(h, False)


@scenario
async def proxy_rules(h):
    """The proxy forwards only towards the scheduler and this host's workers
    (ack 0 for any other next hop: not an open relay), a failed forward is
    ack 0 too, and a state report for a worker that is not the pool's is
    answered and changes nothing."""
    s = await h.scheduler()
    pool = Pool(h, s, ['--min-idle', '1'])
    proxy = await proxy_of(h, s, pool)
    await idle_workers(s, proxy, 1)
    body = b'{"command": {"name": "ping", "arguments": {}}}'
    for dst, what in (('%s|192.0.2.1:1386' % proxy, 'a stranger'),
                      ('%s|127.0.0.1:1' % proxy, 'a closed port of this host')):
        try:
            await s.send(dst, body, attempts=1)
        except ConnectionError as e:
            check('ack 0' in str(e), 'forward to %s: %s' % (what, e))
        else:
            raise AssertionError('the proxy acked a frame for %s' % what)
    r = await s.call(proxy, 'worker.state_report', {'worker_id': 77, 'state': 2}, timeout=10)
    check(r == {'ok': True}, 'reply %r' % (r,))
    check('worker 77 that does not belong to us' in pool.log(), pool.log()[-2000:])
    counts = await watch(pool, 0.5)
    check(max(counts) == 1, 'nothing started for a stranger: %r' % sorted(set(counts)))
    await stop_pool(pool)


@scenario
async def broadcast(h):
    """With worker.listen_to_broadcast the pool waits for the scheduler's
    broadcast, then starts its workers for the scheduler it names."""
    import socket
    from lbpeer import broadcast_datagram
    s = await h.scheduler()
    pool = Pool(h, s, ['--min-idle', '1'], broadcast=True)
    for _ in range(200):
        if 'listening for scheduler broadcasts' in pool.log():
            break
        await asyncio.sleep(0.05)
    for _ in range(200):
        # a fresh source port each time: the kernel picks one SO_REUSEPORT
        # listener per unicast datagram by hashing the addresses
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(broadcast_datagram(s.addr), ('127.0.0.1', 34305))
        u.close()
        await asyncio.sleep(0.05)
        if 'message proxy on ' in pool.log():
            break
    proxy = await proxy_of(h, s, pool)
    await idle_workers(s, proxy, 1)
    await stop_pool(pool)


@scenario
async def pulse_lost(h):
    """The scheduler stops answering pulses: after 10 failed pulses the pool
    stops its workers and looks for the scheduler again (here: the config's
    address at once), and a new worker registers once it answers again
    (pulse every 0.2 s here instead of 10 s)."""
    s = await h.scheduler()
    muted = [False]
    handle = s.handle

    async def maybe_mute(name, args, frame):
        if muted[0] and name == 'pulse':
            return None  # no reply: the pulse times out
        return await handle(name, args, frame)
    s.handle = maybe_mute
    pool = Pool(h, s, ['--min-idle', '1'], env={'LBW_POOL_PULSE_INTERVAL': '0.2'})
    proxy = await proxy_of(h, s, pool)
    await idle_workers(s, proxy, 1)
    first = pool.children()
    t0 = time.monotonic()
    muted[0] = True
    for _ in range(600):
        if 'missed 10 pulses: stopping the pool' in pool.log():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError('no stop after 10 missed pulses: %s' % pool.log()[-3000:])
    check(pool.log().count('pulse to the scheduler') >= 10, 'each miss logged')
    await no_process_left(first, 30, 'after the pulse was lost')
    muted[0] = False
    await s.wait_for(lambda: [a for a in pooled(s, proxy) if s.workers[a]['hello_at'] > t0],
                     60, 'a worker of the new pool')
    check(pool.proc.poll() is None, 'the pool goes on after a lost pulse')
    check('waiting for a scheduler' in pool.log(), pool.log()[-2000:])
    await stop_pool(pool)

@scenario
async def allowlist(h):
    """With worker.scheduler_allow set the proxy admits only those networks and
    its own address: a state report from another address (127.0.0.2 here) is
    refused at accept (without the list it is acked), the pool's own workers
    and the scheduler go on."""
    import json
    import socket
    import struct
    import uuid
    from lbpeer import encode_frame
    s = await h.scheduler()
    body = json.dumps({'command': {'name': 'worker.state_report',
                                   'arguments': {'worker_id': 0, 'state': 2}}}).encode()

    def stranger(proxy):
        host, port = proxy.rsplit(':', 1)
        c = socket.socket()
        c.settimeout(5)
        c.bind(('127.0.0.2', 0))
        c.connect((host, int(port)))
        try:
            me = b'127.0.0.2:1'
            c.sendall(struct.pack('>Q', len(me)) + me +
                      encode_frame('127.0.0.2:1', proxy, body, uuid.uuid4()))
            return c.recv(1)
        except (ConnectionError, socket.timeout):
            return b''
        finally:
            c.close()
    for allow, want in (([], b'\x01'), (['127.0.0.1/32'], b'')):
        pool = Pool(h, s, ['--min-idle', '1', '--config',
                           'worker.scheduler_allow=%s' % json.dumps(allow)])
        proxy = await proxy_of(h, s, pool)
        await idle_workers(s, proxy, 1)
        ack = await asyncio.get_event_loop().run_in_executor(None, stranger, proxy)
        check(ack == want, 'allow %r: a report from 127.0.0.2 got %r, want %r'
              % (allow, ack, want))
        if allow:
            counts = await watch(pool, 0.5)
            check(max(counts) == 1, 'nothing started: %r' % sorted(set(counts)))
            iid = next_invocation_id()
            addr = pooled(s, proxy)[-1]
            r = await s.task(addr, make_job(['/bin/true'], iid))
            check(r == {'status': 0}, 'the scheduler still gets through: %r' % (r,))
            await s.wait_report(iid)
        await stop_pool(pool)
        for a in list(s.workers):
            s.workers[a]['state'] = 0

if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
