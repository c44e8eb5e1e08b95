"""The host ledger of real lifeblood-worker processes against the reference
scheduler peer, with a fixture capacity ([resources] cpu_count = 32,
cpu_mem = 64 GiB): the documentation's walk-through (each new worker's
hello advertises what the running tasks leave: 32/64, 24/48, 4/8, and the
whole host again when they are done; total_* always the host), tasks sent
to three workers at the same instant run on disjoint CPUs (the payload
prints its own Cpus_allowed_list), a SIGKILLed worker's claim is freed, a
process of another uid (nobody) cannot join.
Usage: scenarios_ledger.py [NAME...]"""
import asyncio
import os
import pickle
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Skip, run  # noqa: E402
from lbpeer import make_job, next_invocation_id  # noqa: E402
from scenarios import check, machine_hwid  # noqa: E402

SCENARIOS = {}
G = 1 << 30
CFG = '[resources]\ncpu_count = 32\ncpu_mem = %d\n' % (64 * G)


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def job(args, iid, cpus=0, mem=0):
    j = pickle.loads(make_job(args, iid))
    req = j.__dict__['_InvocationJob__requirements']
    p = '_InvocationRequirements__'
    req.__dict__[p + 'min_cpu_count'] = cpus
    req.__dict__[p + 'min_memory_bytes'] = mem
    return pickle.dumps(j)


def holder(h, tag):
    """A payload that writes its affinity and claim to a file, then waits
    (at most 30 s) for a stop file."""
    out = os.path.join(h.tmp, 'aff-%s' % tag)
    stop = os.path.join(h.tmp, 'stop-%s' % tag)
    script = ('grep Cpus_allowed_list /proc/self/status > %s.tmp; '
              'echo "claim=$LIFEBLOOD_CLAIM_CPUS" >> %s.tmp; mv %s.tmp %s; i=0; '
              'while [ ! -e %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done'
              % (out, out, out, out, stop))
    return ['/bin/sh', '-c', script], out, stop


async def wait_file(path, timeout=15):
    for _ in range(int(timeout / 0.02)):
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
        await asyncio.sleep(0.02)
    raise AssertionError('no %s within %s s' % (path, timeout))


def cpulist(s):
    out = set()
    for part in s.strip().split(','):
        if not part:
            continue
        a, _, b = part.partition('-')
        out.update(range(int(a), int(b or a) + 1))
    return out


class Farm:
    def __init__(self, h, s):
        self.h, self.s, self.known, self.live = h, s, set(), {}

    async def worker(self):
        t0 = time.monotonic()
        w = self.h.worker(['--scheduler-address', self.s.addr, '--no-loop'], CFG)

        def new():  # (a new worker may reuse a dead one's address; a live one's
            # hello again, re-advertising, is not a new worker)
            return [a for a, v in self.s.workers.items() if v['hello_at'] >= t0 and
                    (a not in self.live or self.live[a].proc.poll() is not None)]
        await self.s.wait_for(new, 15, 'worker.hello')
        addr, = new()
        self.live[addr] = w
        return w, addr

    def res(self, addr):
        return self.s.workers[addr]['res'].__dict__

    def check_hello(self, addr, cpus, mem_g, what):
        r = self.res(addr)
        check(r['total_cpu_count'] == 32 and r['total_cpu_mem'] == 64 * G,
              '%s: totals are the host: %r' % (what, r))
        check(r['cpu_count'] == cpus and r['cpu_mem'] == mem_g * G,
              '%s: hello advertises %s CPUs / %s GiB, want %s / %s'
              % (what, r['cpu_count'], r['cpu_mem'] / G, cpus, mem_g))

    async def start_holder(self, addr, tag, cpus, mem_g):
        args, out, stop = holder(self.h, tag)
        iid = next_invocation_id()
        r = await self.s.task(addr, job(args, iid, cpus, mem_g * G))
        check(r == {'status': 0}, 'task reply %r' % (r,))
        text = await wait_file(out)
        return iid, text, stop


@scenario
async def walkthrough(h):
    """32 cores / 64 GiB: worker1 advertises all and takes 8 / 16; worker2
    advertises 24 / 48 and takes 20 / 40; worker3 advertises 4 / 8; when
    all is done a new worker advertises the whole host again."""
    s = await h.scheduler()
    f = Farm(h, s)
    w1, a1 = await f.worker()
    f.check_hello(a1, 32, 64, 'worker1')
    i1, _, stop1 = await f.start_holder(a1, '1', 8, 16)
    w2, a2 = await f.worker()
    f.check_hello(a2, 24, 48, 'worker2 while worker1 runs 8/16')
    i2, _, stop2 = await f.start_holder(a2, '2', 20, 40)
    w3, a3 = await f.worker()
    f.check_hello(a3, 4, 8, 'worker3 while 8/16 and 20/40 run')
    open(stop1, 'w').close()
    await s.wait_report(i1)
    w4, a4 = await f.worker()
    f.check_hello(a4, 12, 24, 'worker4 after worker1 finished')
    open(stop2, 'w').close()
    await s.wait_report(i2)
    w5, a5 = await f.worker()
    f.check_hello(a5, 32, 64, 'worker5 when all are done')


@scenario
async def same_instant_disjoint_cpus(h):
    """Three tasks reach three workers at once: each pinned payload runs on
    CPUs no other holds (as many as this host has; the rest run unpinned,
    with a warning)."""
    s = await h.scheduler()
    f = Farm(h, s)
    addrs = [(await f.worker())[1] for _ in range(3)]
    got = await asyncio.gather(*[f.start_holder(a, 'r%d' % i, 1, 1)
                                 for i, a in enumerate(addrs)])
    ncpu = len(os.sched_getaffinity(0))
    pinned = []
    for iid, text, stop in got:
        aff = cpulist(text.split('Cpus_allowed_list:')[1].split('\n')[0])
        claim = text.split('claim=')[1].strip()
        if claim:
            check(aff == cpulist(claim), 'affinity %r is the claim %r' % (aff, claim))
            pinned.append(aff)
    check(len(pinned) == min(3, ncpu), 'pinned payloads: %r (host has %d CPUs)' % (pinned, ncpu))
    for i in range(len(pinned)):
        check(len(pinned[i]) == 1, 'one CPU each: %r' % pinned)
        for j in range(i):
            check(not (pinned[i] & pinned[j]), 'CPU sets overlap: %r' % pinned)
    for iid, text, stop in got:
        open(stop, 'w').close()
    for iid, text, stop in got:
        await s.wait_report(iid)
    if ncpu < 3:
        logs = ''.join(w.log() for w in h.workers)
        check('runs with what is free' in logs, 'the short grant is a warning')


@scenario
async def sigkill_frees_claim(h):
    """A worker SIGKILLed mid-task: its claim is gone as soon as the kernel
    closes its socket (the next worker sees the whole host)."""
    s = await h.scheduler()
    f = Farm(h, s)
    w1, a1 = await f.worker()
    await f.start_holder(a1, 'k', 8, 16)
    w2, a2 = await f.worker()
    f.check_hello(a2, 24, 48, 'worker2 while worker1 holds 8/16')
    w1.proc.kill()
    w1.proc.wait()
    w3, a3 = await f.worker()
    f.check_hello(a3, 32, 64, 'worker3 after worker1 was SIGKILLed')


@scenario
async def other_uid_refused(h):
    """A process running as nobody connects to the arbiter's name: it is
    closed on without a word of the ledger, and the worker logs one
    WARNING naming its pid and uid."""
    if os.geteuid() != 0:
        raise Skip('needs root to run a process as nobody')
    s = await h.scheduler()
    f = Farm(h, s)
    w1, a1 = await f.worker()
    name = 'lbw-test/%s/%x' % (os.path.basename(h.tmp), machine_hwid() or 0)
    # what nobody reads: at most a REFUSED record (type 8), then the end
    code = ('import socket,struct,sys\n'
            's=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n'
            's.connect("\\0" + sys.argv[1])\n'
            's.settimeout(5)\n'
            'got=[]\n'
            'for _ in range(3):\n'
            '    try:\n'
            '        d=s.recv(65536)\n'
            '    except ConnectionResetError:\n'
            '        d=b""\n'
            '    got.append(struct.unpack_from("<II", d) if d else "end")\n'
            '    if not d: break\n'
            'print(got)\n')
    p = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                        sys.executable, '-c', code, name],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 0 and p.stdout.strip() in ("['end']", "[(1279413297, 8), 'end']"),
          'nobody got %r / %r' % (p.stdout, p.stderr))
    for _ in range(100):
        if 'of uid 65534' in w1.log():
            break
        await asyncio.sleep(0.02)
    check('refused the process' in w1.log() and 'of uid 65534' in w1.log(),
          'a WARNING names the refused process')


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
