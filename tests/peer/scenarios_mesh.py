"""What the host ledger shows outside the payloads, with real
lifeblood-worker processes against the reference scheduler peer and a
fixture capacity ([resources] cpu_count = 32, cpu_mem = 64 GiB):
re-advertising while idle (an idle worker's hello follows another
worker's claim and its release; with mesh.readvertise = false it does
not; many changes give a bounded number of hellos; a task that meets a
re-hello in flight is answered BUSY) and
`lifeblood-worker status` (0, 1 and 3 workers, one busy with a claim; a
user the mesh does not admit; another network namespace).
Usage: scenarios_mesh.py [NAME...]"""
import asyncio
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Skip, run  # noqa: E402
from lbpeer import next_invocation_id  # noqa: E402
from scenarios import check  # noqa: E402
from scenarios_ledger import CFG, G, Farm, job, wait_file  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def mesh_cfg(h, extra=''):
    return CFG + '[mesh]\nnamespace = "%s"\n%s' % (ns_of(h), extra)


def ns_of(h):
    return 'lbw-test/%s' % os.path.basename(h.tmp)


async def worker(f, cfg):
    """A worker with its own config (Farm.worker uses the fixture one)."""
    t0 = time.monotonic()
    w = f.h.worker(['--scheduler-address', f.s.addr, '--no-loop'], cfg)

    def new():
        return [a for a, v in f.s.workers.items() if v['hello_at'] >= t0]
    await f.s.wait_for(new, 15, 'worker.hello')
    return w, new()[0]


def hellos(s, addr):
    return [x for x in s.hellos if x[1] == addr]


def left(res):
    d = res.__dict__
    return (d['cpu_count'], d['cpu_mem'] // G)


async def advertised(s, addr, want, timeout=15):
    """Waits until the latest hello of addr advertises want (cpus, GiB)."""
    await s.wait_for(lambda: hellos(s, addr) and left(hellos(s, addr)[-1][2]) == want,
                     timeout, 'a hello of %s advertising %r (last: %r)'
                     % (addr, want, [left(x[2]) for x in hellos(s, addr)][-3:]))


@scenario
async def readvertise_follows_claims(h):
    """Worker B idle: its advertised values follow worker A's claim (24/48)
    and its release (32/64); the re-hello changes nothing else (same
    address, type, hostname, totals; the scheduler keeps B IDLE and B takes
    a task at once afterwards)."""
    s = await h.scheduler()
    f = Farm(h, s)
    cfg = mesh_cfg(h)
    wa, a = await worker(f, cfg)
    wb, b = await worker(f, cfg)
    first = hellos(s, b)[0]
    check(left(first[2]) == (32, 64), 'B first advertises the host: %r' % (left(first[2]),))
    iid, _, stop = await f.start_holder(a, 'a', 8, 16)
    await advertised(s, b, (24, 48))
    open(stop, 'w').close()
    await s.wait_report(iid)
    await advertised(s, b, (32, 64))
    for t, addr, res, args in hellos(s, b)[1:]:
        for k in ('worker_addr', 'worker_type', 'meta_hostname'):
            check(args[k] == first[3][k],
                  're-hello keeps %s: %r vs %r' % (k, args[k], first[3][k]))
        d = res.__dict__
        for k in ('total_cpu_count', 'total_cpu_mem', 'total_gpu_count', 'total_gpu_mem', 'hwid'):
            check(d[k] == first[2].__dict__[k], 're-hello keeps %s' % k)
    check(s.workers[b]['state'] == 1, 'the scheduler has B IDLE')
    check(s.workers[a]['res'].__dict__['hwid'] == s.workers[b]['res'].__dict__['hwid'],
          'one hwid')
    # a task that meets B's re-hello in flight is answered BUSY (the
    # scheduler puts it back); the next one is taken
    for _ in range(50):
        iid2 = next_invocation_id()
        r = await s.task(b, job(['/bin/true'], iid2, 2, G))
        if r.get('status') != 2:
            break
        check('re-advertising' in r.get('message', ''), 'BUSY says why: %r' % (r,))
        await asyncio.sleep(0.05)
    check(r == {'status': 0}, 'B takes a task after re-advertising: %r' % (r,))
    await s.wait_report(iid2)


@scenario
async def readvertise_task_meets_rehello(h):
    """A task that reaches an idle worker while its re-hello waits for the
    scheduler's answer is answered BUSY (status 2), so that the scheduler
    never handles the hello after the task was accepted; once the hello is
    answered the next task is taken."""
    s = await h.scheduler()
    f = Farm(h, s)
    cfg = mesh_cfg(h)
    wa, a = await worker(f, cfg)
    wb, b = await worker(f, cfg)
    gate = asyncio.Event()
    held = []

    async def hook(args):
        if args['worker_addr'] == b:
            held.append(args)
            await gate.wait()
    s.hello_hook = hook
    iid, _, stop = await f.start_holder(a, 'a', 8, 16)
    await s.wait_for(lambda: held, 15, "B's re-hello")
    iid2 = next_invocation_id()
    r = await s.task(b, job(['/bin/true'], iid2, 1, G))
    check(r.get('status') == 2 and 're-advertising' in r.get('message', ''),
          'task during the re-hello: %r' % (r,))
    gate.set()
    s.hello_hook = None
    for _ in range(100):  # B has the hello's answer within moments
        iid2 = next_invocation_id()
        r = await s.task(b, job(['/bin/true'], iid2, 1, G))
        if r.get('status') != 2:
            break
        await asyncio.sleep(0.02)
    check(r == {'status': 0}, 'task after the re-hello: %r' % (r,))
    await s.wait_report(iid2)
    open(stop, 'w').close()
    await s.wait_report(iid)


@scenario
async def readvertise_off(h):
    """mesh.readvertise = false: B says hello once, whatever A claims."""
    s = await h.scheduler()
    f = Farm(h, s)
    wa, a = await worker(f, mesh_cfg(h))
    wb, b = await worker(f, mesh_cfg(h, 'readvertise = false\n'))
    iid, _, stop = await f.start_holder(a, 'a', 8, 16)
    # the positive control: a worker with the default sees the claim
    wc, c = await worker(f, mesh_cfg(h))
    open(stop, 'w').close()
    await s.wait_report(iid)
    await advertised(s, c, (32, 64))
    await asyncio.sleep(1.5)  # more than the coalescing period
    check(len(hellos(s, b)) == 1, 'B said hello %d times with readvertise = false'
          % len(hellos(s, b)))


@scenario
async def readvertise_coalesced(h):
    """Many changes (A runs short tasks back to back): B's re-hellos are at
    most one a second (plus the first), and the last one is right."""
    s = await h.scheduler()
    f = Farm(h, s)
    cfg = mesh_cfg(h)
    wa, a = await worker(f, cfg)
    wb, b = await worker(f, cfg)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 3 or n < 10:
        iid = next_invocation_id()
        r = await s.task(a, job(['/bin/true'], iid, 4, 4 * G))
        check(r == {'status': 0}, 'task reply %r' % (r,))
        await s.wait_report(iid)
        n += 1
        if n >= 3000:
            break
    await advertised(s, b, (32, 64))
    span = time.monotonic() - t0
    re = [x for x in hellos(s, b) if x[0] >= t0]
    print('%d tasks (%d changes) in %.1f s: %d re-hellos' % (n, 2 * n, span, len(re)))
    check(len(re) >= 2, 'B re-advertised at all: %d' % len(re))
    check(len(re) <= int(span) + 2,
          '%d changes in %.1f s gave %d re-hellos' % (2 * n, span, len(re)))
    gaps = [re[i][0] - re[i - 1][0] for i in range(1, len(re))]
    check(all(g >= 0.5 for g in gaps),
          're-hellos about 1 s apart (sent 1 s apart; arrival jitter): %r' % gaps)


def status(h, *args, user=None, netns=False, timeout=20):
    cmd = [BIN, 'status', '--namespace', ns_of(h)] + list(args)
    if user:
        cmd = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] + cmd
    if netns:
        cmd = ['unshare', '-n'] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def status_json(h):
    p = status(h, '--json')
    check(p.returncode == 0, 'status --json: %d %r' % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def by_pid(doc):
    return {w['pid']: w for w in doc['workers']}


async def until_state(h, pid, state):
    """status --json until member pid says state (it publishes as its
    session moves; the scheduler peer may see a hello before the worker
    has its reply)."""
    doc = {}
    for _ in range(200):
        doc = status_json(h)
        if by_pid(doc).get(pid, {}).get('state') == state:
            break
        await asyncio.sleep(0.05)
    return doc


@scenario
async def status_no_worker(h):
    """No worker in the mesh: a clear message and exit status 3."""
    p = status(h)
    check(p.returncode == 3, 'exit %d (want 3): %r' % (p.returncode, p.stderr))
    check('no lifeblood-worker is running' in p.stderr, 'says so: %r' % p.stderr)
    p = status(h, '--json')
    check(p.returncode == 3 and p.stdout == '', 'json: %d %r' % (p.returncode, p.stdout))
    # a live view waits for one, saying so once
    p = status(h, '--watch', '--json', '--count', '1')
    check(p.returncode == 0 and json.loads(p.stdout) == {'schema': 1, 'namespace': ns_of(h),
                                                         'mesh': None},
          'watch with no worker: %d %r' % (p.returncode, p.stdout))


@scenario
async def status_one_idle(h):
    """One idle worker: its pid, addresses and state; the host's capacity
    is what is left; no claims; the table names it."""
    s = await h.scheduler()
    f = Farm(h, s)
    w, a = await worker(f, mesh_cfg(h))
    doc = await until_state(h, w.pid, 'idle')
    check(doc['schema'] == 1 and doc['arbiter_pid'] == w.pid, 'head %r' % doc)
    check(doc['capacity'] == {'cpu_count': 32.0, 'cpu_mem': 64 * G, 'gpu_count': 0,
                              'gpu_mem': 0}, 'capacity %r' % doc['capacity'])
    check(doc['left'] == doc['capacity'], 'all left: %r' % doc['left'])
    check(doc['pools'] == [] and len(doc['workers']) == 1, 'members %r' % doc)
    m = doc['workers'][0]
    check(m['pid'] == w.pid and m['arbiter'] and m['role'] == 'worker', 'member %r' % m)
    check(m['state'] == 'idle' and m['listen'] == a and m['scheduler'] == s.addr,
          'member %r (listen %s, scheduler %s)' % (m, a, s.addr))
    check(m['invocation_id'] is None and m['task_id'] is None and m['progress'] is None
          and m['running_s'] is None and m['claims'] == [], 'idle member %r' % m)
    p = status(h)
    check(p.returncode == 0 and str(w.pid) in p.stdout and a in p.stdout and 'idle' in p.stdout,
          'table: %r' % p.stdout)
    p = status(h, '--watch', '--count', '2')
    check(p.returncode == 0 and p.stdout.count('host ledger @') == 2 and str(w.pid) in p.stdout,
          'two table views: %r' % p.stdout)


@scenario
async def status_three_one_busy(h):
    """Three workers, one running a task that claimed 8 CPUs / 16 GiB:
    every worker listed once; the busy one with its invocation, task,
    running time and its claim (CPUs, NUMA node, memory); left = the rest.
    --watch --json shows the release as a new view."""
    s = await h.scheduler()
    f = Farm(h, s)
    cfg = mesh_cfg(h)
    ws = [await worker(f, cfg) for _ in range(3)]
    (w0, a0), (w1, a1), (w2, a2) = ws
    # a payload that says its claim and 45 % of progress, then waits
    out, stop = os.path.join(h.tmp, 'busy'), os.path.join(h.tmp, 'stop-busy')
    script = ('echo "claim=$LIFEBLOOD_CLAIM_CPUS" > %s.tmp; mv %s.tmp %s; '
              'echo "ALF_PROGRESS 45%%"; i=0; '
              'while [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done'
              % (out, out, out, stop))
    iid = next_invocation_id()
    r = await s.task(a1, job(['/bin/sh', '-c', script], iid, 8, 16 * G))
    check(r == {'status': 0}, 'task reply %r' % (r,))
    text = await wait_file(out)
    ncpu = len(os.sched_getaffinity(0))
    doc = {}
    for _ in range(200):  # the progress line follows the start at once; bounded anyway
        doc = status_json(h)
        if by_pid(doc).get(w1.pid, {}).get('progress') == 45.0:
            break
        await asyncio.sleep(0.05)
    members = by_pid(doc)
    check(sorted(members) == sorted(w.pid for w, a in ws), 'pids %r' % sorted(members))
    b = members[w1.pid]
    check(b['state'] == 'busy' and b['invocation_id'] == iid and b['task_id'] is not None,
          'busy member %r (invocation %d)' % (b, iid))
    check(b['running_s'] is not None and 0 <= b['running_s'] < 60, 'running_s %r' % b)
    check(b['progress'] == 45.0, 'progress %r' % b)
    check(len(b['claims']) == 1, 'one claim: %r' % b['claims'])
    c = b['claims'][0]
    check(c['cpu_count'] == 8.0 and c['cpu_mem'] == 16 * G and c['gpu_count'] == 0
          and c['gpus'] == [], 'claim amounts %r' % c)
    claimed = set()
    for part in c['cpus'].split(','):
        if part:
            lo, _, hi = part.partition('-')
            claimed.update(range(int(lo), int(hi or lo) + 1))
    check(len(claimed) == min(8, ncpu) and c['numa_node'] is not None,
          'claim pinned to %d CPUs on a node: %r' % (min(8, ncpu), c))
    check(text.split('claim=')[1].strip() == c['cpus'],
          'the payload was given the CPUs status shows: %r vs %r' % (text, c['cpus']))
    check(doc['left']['cpu_count'] == 24.0 and doc['left']['cpu_mem'] == 48 * G,
          'left %r' % doc['left'])
    for pid, m in members.items():
        if pid != w1.pid:
            check(m['state'] == 'idle' and m['claims'] == [], 'idle member %r' % m)
    p = status(h)
    check(p.returncode == 0 and 'busy' in p.stdout and 'claim 8 CPUs' in p.stdout
          and '45%' in p.stdout,
          'table: %r' % p.stdout)
    # live view: the first document holds the claim, a later one its release
    watch = subprocess.Popen([BIN, 'status', '--namespace', ns_of(h), '--watch', '--json',
                              '--count', '50'], stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(await asyncio.get_running_loop().run_in_executor(
            None, watch.stdout.readline))
        check(by_pid(first)[w1.pid]['claims'], 'first view holds the claim')
        open(stop, 'w').close()
        await s.wait_report(iid)
        released = None
        for _ in range(49):
            line = await asyncio.get_running_loop().run_in_executor(None, watch.stdout.readline)
            if not line:
                break
            d = json.loads(line)
            if not by_pid(d)[w1.pid]['claims'] and by_pid(d)[w1.pid]['state'] == 'idle':
                released = d
                break
        check(released is not None and released['left'] == released['capacity'],
              'a later view shows the release')
    finally:
        watch.kill()
        watch.wait()


@scenario
async def status_not_admitted(h):
    """A user the mesh does not admit (nobody) is told so, exit status 4;
    the worker names the refused process."""
    if os.geteuid() != 0:
        raise Skip('needs root to run a process as nobody')
    s = await h.scheduler()
    f = Farm(h, s)
    w, a = await worker(f, mesh_cfg(h))
    p = status(h, '--json', user='nobody')
    check(p.returncode == 4 and p.stdout == '',
          'exit %d, out %r, err %r' % (p.returncode, p.stdout, p.stderr))
    check('does not admit uid 65534' in p.stderr, 'says why: %r' % p.stderr)
    check('of uid 65534' in w.log(), 'the worker logs the refusal')


@scenario
async def status_other_netns(h):
    """From another network namespace the mesh is not there (exit 3)."""
    if os.geteuid() != 0:
        raise Skip('needs root for unshare -n')
    s = await h.scheduler()
    f = Farm(h, s)
    w, a = await worker(f, mesh_cfg(h))
    check(status(h).returncode == 0, 'seen from here')
    p = status(h, netns=True)
    check(p.returncode == 3 and 'no lifeblood-worker is running' in p.stderr,
          'from another netns: %d %r' % (p.returncode, p.stderr))


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
