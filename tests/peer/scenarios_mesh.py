"""What the host ledger shows outside the payloads, with real
lifeblood-worker processes against the reference scheduler peer and a
fixture capacity ([resources] cpu_count = 32, cpu_mem = 64 GiB):
re-advertising while idle (an idle worker's hello follows another
worker's claim and its release; with mesh.readvertise = false it does
not; many changes give a bounded number of hellos) and
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
from scenarios_ledger import CFG, G, Farm, job  # noqa: E402

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
            check(args[k] == first[3][k], 're-hello keeps %s: %r vs %r' % (k, args[k], first[3][k]))
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
    check(len(re) <= int(span) + 2, '%d changes in %.1f s gave %d re-hellos' % (2 * n, span, len(re)))
    gaps = [re[i][0] - re[i - 1][0] for i in range(1, len(re))]
    check(all(g >= 0.9 for g in gaps), 're-hellos at least ~1 s apart: %r' % gaps)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
