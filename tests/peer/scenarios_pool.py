"""`lifeblood-worker pool simple` against the reference scheduler peer: one
scenario per case of upstream's tests/test_worker_pool.py (basic, back to
idle and back to total with minimums 1/2/3, max, min, the mixed start/stop),
the documented on-demand mode with the host ledger and a fixture capacity
(32 cores / 64 GiB, tasks of 8/16 and 20/40), a pool stopped by SIGTERM and
one SIGKILLed (no process left: checked by the pids recorded), a worker
command that crashes at once (reported, throttled). The pool's workers are
read from /proc/<pool>/task/<pool>/children (the processes it still has,
those stopping included, as upstream's list_workers).
Usage: scenarios_pool.py [NAME...]"""
import asyncio
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, run  # noqa: E402
from lbpeer import make_job, next_invocation_id, IDLE  # noqa: E402
from scenarios import check  # noqa: E402
from scenarios_ledger import CFG, G, job, holder, wait_file  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ', 1)[1][0] != 'Z'
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Pool:
    """A pool process with a private config; cleaned up by the harness
    (SIGTERM, then SIGKILL) like a worker."""

    def __init__(self, h, s, args, config='', env=None):
        self.h = h
        self.n = len(h.workers)
        self.cfgdir = os.path.join(h.tmp, 'pcfg%d' % self.n)
        os.makedirs(os.path.join(self.cfgdir, 'worker'), exist_ok=True)
        with open(os.path.join(self.cfgdir, 'worker', 'config.toml'), 'w') as f:
            f.write('%s\n[worker]\nlisten_to_broadcast = false\nscheduler_address = "%s"\n'
                    'logpath = "%s"\n[mesh]\nnamespace = "lbw-test/%s/%d"\n'
                    % (config, s.addr, os.path.join(h.tmp, 'plogs%d' % self.n),
                       os.path.basename(h.tmp), self.n))
        self.logfile = os.path.join(h.tmp, 'pool%d.log' % self.n)
        e = dict(os.environ)
        e['LIFEBLOOD_CONFIG_LOCATION'] = self.cfgdir
        e.update(env or {})
        self.proc = subprocess.Popen([BIN, '--loglevel', 'DEBUG', 'pool', 'simple'] + list(args),
                                     stdout=open(self.logfile, 'ab'),
                                     stderr=subprocess.STDOUT, env=e,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.seen = set()
        h.workers.append(self)

    def log(self):
        with open(self.logfile, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

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

    async def wait_exit(self, timeout=20):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError('pool %d did not exit within %d s' % (self.pid, timeout))
            await asyncio.sleep(0.02)
        return self.proc.returncode


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


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
