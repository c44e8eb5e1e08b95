"""Capacity follows the host while a worker runs (daemon/capacity.c): the
worker is started inside a v1 cpuset (or memory cgroup) made for the
test, the cgroup's limit is changed while it runs, and the worker's log
line, the ledger's claims (LIFEBLOOD_CLAIM_CPUS of the next payload) and
the affinity the payload gets follow it; a [resources] override still wins
for what is advertised while claims are pinned to what the host has.
Scenarios print a SKIP line where there is no writable v1 hierarchy.
Usage: scenarios_capacity.py [NAME...]"""
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Skip, run  # noqa: E402
from lbpeer import next_invocation_id  # noqa: E402
from scenarios import check  # noqa: E402
from scenarios_ledger import Farm, cpulist, holder, job, wait_file  # noqa: E402

SCENARIOS = {}
G = 1 << 30


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def v1_dir(controller):
    """(mount point, this process's cgroup path) of a v1 hierarchy, from
    /proc/self/mountinfo and /proc/self/cgroup; None when there is none."""
    mnt = None
    with open('/proc/self/mountinfo') as f:
        for line in f:
            pre, _, post = line.partition(' - ')
            fs = post.split()
            if fs and fs[0] == 'cgroup' and controller in fs[2].split(','):
                mnt = pre.split()[4]
                break
    if not mnt:
        return None
    with open('/proc/self/cgroup') as f:
        for line in f:
            _, ctrls, path = line.rstrip('\n').split(':', 2)
            if controller in ctrls.split(','):
                return mnt, path
    return None


class Cgroup:
    """A v1 cgroup made for the test; this process (and so the workers it
    starts) moves into it, and back out on leave()."""

    def __init__(self, controller, tag):
        found = v1_dir(controller)
        if os.geteuid() != 0 or not found:
            raise Skip('needs root and a v1 %s hierarchy' % controller)
        mnt, path = found
        self.parent = mnt + path.rstrip('/')
        self.dir = '%s/lbw-test-%s-%d' % (self.parent, tag, os.getpid())
        try:
            os.mkdir(self.dir)
        except OSError as e:
            raise Skip('cannot make a %s cgroup: %s' % (controller, e))
        self.entered = False

    def read(self, name, d=None):
        with open(os.path.join(d or self.dir, name)) as f:
            return f.read().strip()

    def write(self, name, value):
        with open(os.path.join(self.dir, name), 'w') as f:
            f.write(value)

    def enter(self):
        self.write('cgroup.procs', str(os.getpid()))
        self.entered = True

    def leave(self, h):
        """Back to the parent; the test's workers (still in the cgroup when
        the scenario failed) are ended first so that it can be removed."""
        for w in h.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(timeout=20)
        if self.entered:
            with open(os.path.join(self.parent, 'cgroup.procs'), 'w') as f:
                f.write(str(os.getpid()))
        for _ in range(100):  # the workers' exits are reaped by then; bounded
            try:
                os.rmdir(self.dir)
                return
            except OSError:
                time.sleep(0.05)


async def wait_log(w, text, timeout=15):
    for _ in range(int(timeout / 0.02)):
        if text in w.log():
            return
        await asyncio.sleep(0.02)
    raise AssertionError('no %r in the worker log within %s s' % (text, timeout))


async def run_claim(f, addr, tag, cpus):
    """A payload asking for cpus CPUs: (its affinity, its LIFEBLOOD_CLAIM_CPUS)."""
    args, out, stop = holder(f.h, tag)
    iid = next_invocation_id()
    r = await f.s.task(addr, job(args, iid, cpus, 0))
    check(r == {'status': 0}, 'task reply %r' % (r,))
    text = await wait_file(out)
    open(stop, 'w').close()
    await f.s.wait_report(iid)
    aff = cpulist(text.split('Cpus_allowed_list:')[1].split('\n')[0])
    return aff, cpulist(text.split('claim=')[1].strip())


async def start_worker(h, s, config):
    """A worker (no invocation cgroups: the test's cgroup stays removable)
    and its address, once its hello is in."""
    t0 = time.monotonic()
    w = h.worker(['--scheduler-address', s.addr, '--no-loop'], config,
                 env={'LBW_CGROUPS': 'off'})

    def new():
        return [a for a, v in s.workers.items() if v['hello_at'] >= t0]
    await s.wait_for(new, 15, 'worker.hello')
    addr, = new()
    await wait_log(w, 'following the host')
    return w, addr


async def stop(w):
    w.proc.terminate()
    await w.wait_exit()


async def cpuset_case(h, config, advertised):
    cg = Cgroup('cpuset', 'cap')
    try:
        cpus = cpulist(cg.read('cpuset.cpus', cg.parent))
        if len(cpus) < 2:
            raise Skip('the cpuset has fewer than 2 CPUs')
        full = '%d-%d' % (min(cpus), max(cpus)) if cpus == set(range(min(cpus), max(cpus) + 1)) \
            else ','.join(map(str, sorted(cpus)))
        last = max(cpus)
        cg.write('cpuset.mems', cg.read('cpuset.mems', cg.parent))
        cg.write('cpuset.cpus', full)
        cg.enter()
        s = await h.scheduler()
        f = Farm(h, s)
        w, addr = await start_worker(h, s, config)
        # narrowed to its last CPU while the worker runs
        cg.write('cpuset.cpus', str(last))
        await wait_log(w, 'cpuset.cpus changed: advertised %s' % advertised(len(cpus), 1))
        await wait_log(w, 'claims are pinned to CPUs %s -> %d' % (full, last))
        aff, claim = await run_claim(f, addr, 'narrow', 1)
        check(claim == {last}, 'the claim is on the CPU left: %r' % claim)
        check(aff == {last}, 'the payload runs on it: %r' % aff)
        # widened again: both CPUs are claimed
        cg.write('cpuset.cpus', full)
        await wait_log(w, 'claims are pinned to CPUs %d -> %s' % (last, full))
        aff, claim = await run_claim(f, addr, 'wide', len(cpus))
        check(claim == cpus, 'the claim has every CPU again: %r' % claim)
        check(aff == cpus, 'the payload runs on them: %r' % aff)
        await stop(w)
    finally:
        cg.leave(h)


@scenario
async def cpuset_narrowed_and_widened(h):
    """The worker's cpuset goes from all CPUs to the last one and back:
    what it advertises (CPUs n -> 1 -> n) and the CPUs its claims are
    pinned to follow, with no timer."""
    await cpuset_case(h, '', lambda n, k: 'CPUs %d -> %d' % (n, k))


@scenario
async def override_wins_claims_follow(h):
    """With [resources] cpu_count = 8 the advertised values stay (the
    override wins), but claims are pinned only to the CPUs the cpuset
    leaves."""
    await cpuset_case(h, '[resources]\ncpu_count = 8\n',
                      lambda n, k: 'unchanged ([resources] overrides)')


@scenario
async def memory_limit_follows(h):
    """The worker's v1 memory limit is lowered while it runs: the
    advertised memory follows (2 GiB -> 1 GiB)."""
    cg = Cgroup('memory', 'capmem')
    try:
        with open('/proc/meminfo') as f:
            total = int(f.read().split('MemTotal:')[1].split()[0]) * 1024
        if total < 3 * G:
            raise Skip('less than 3 GiB of memory')
        cg.write('memory.limit_in_bytes', str(2 * G))
        cg.enter()
        s = await h.scheduler()
        w, addr = await start_worker(h, s, '')
        r = s.workers[addr]['res'].__dict__
        check(r['total_cpu_mem'] <= 2 * G, 'hello advertises the limit: %r' % r)
        was = r['total_cpu_mem']
        cg.write('memory.limit_in_bytes', str(1 * G))
        await wait_log(w, 'memory.limit_in_bytes changed: advertised memory %d -> %d'
                       % (was, 1 * G))
        await stop(w)
    finally:
        cg.leave(h)


@scenario
async def payload_memory_prefers_claim_node(h):
    """A claim with memory on a host whose NUMA node holds it: the payload
    starts with MPOL_PREFERRED for that node (its numa_maps say
    "prefer:N") and LIFEBLOOD_CLAIM_MEM_NODE=N; a claim without memory
    gets no policy (numa_maps "default") and the variable empty. On a
    one-node host this is node 0; other nodes are tested by fixtures."""
    if not os.path.exists('/sys/devices/system/node/node0/meminfo'):
        raise Skip('no NUMA node in sysfs')
    s = await h.scheduler()
    f = Farm(h, s)
    w, addr = await f.worker()
    out = os.path.join(h.tmp, 'numa')
    for tag, mem in (('with', 1 << 20), ('without', 0)):
        script = ('{ echo "node=$LIFEBLOOD_CLAIM_MEM_NODE"; head -1 /proc/self/numa_maps; } '
                  '> %s.tmp; mv %s.tmp %s-%s' % (out, out, out, tag))
        iid = next_invocation_id()
        r = await s.task(addr, job(['/bin/sh', '-c', script], iid, 1, mem))
        check(r == {'status': 0}, 'task reply %r' % (r,))
        await s.wait_report(iid)
    got = await wait_file(out + '-with')
    node = got.split('node=')[1].split('\n')[0]
    check(node.isdigit(), 'LIFEBLOOD_CLAIM_MEM_NODE names a node: %r' % got)
    check(' prefer:%s ' % node in got.split('\n')[1] + ' ', 'the payload prefers it: %r' % got)
    got = await wait_file(out + '-without')
    check('node=\n' in got and ' default ' in got, 'no policy without memory: %r' % got)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
