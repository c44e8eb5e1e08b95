"""Containment figures (not a test): with invocation cgroups, (1) the time
from `drop` to the scheduler's worker.dropped for a payload of N processes
(default 1,000 sleeps; they obey SIGTERM), and (2) after the worker is
SIGKILLed with such a payload running, the time from starting the next
worker to the dead worker's invocation cgroup being gone (all N ended,
the cgroup removed). The payload runs as nobody with `ulimit -u` just
above N (a root worker's process limit does not bind root). Needs root
and writable cgroups; prints a SKIP line otherwise.

    LBW_BIN=build/lifeblood-worker python3 bench/contain.py [--procs N] [--runs R]"""
import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'peer'))
import harness  # noqa: E402
import lbpeer  # noqa: E402

WCFG = 'payload_user = "nobody"\nping_interval = 3600\n\n[containment]\npids_max = %d\n'


def payload(n):
    return ['/bin/sh', '-c', 'ulimit -u %d; i=0; while [ $i -lt %d ]; do sleep 1000 & '
            'i=$((i+1)); done; wait' % (n + 50, n)]


def inv_dir(w, iid):
    m = re.search(r'invocations get their own cgroups under (\S+)', w.log())
    return m and os.path.join(m.group(1), 'inv-%d' % iid)


def count(d):
    try:
        with open(os.path.join(d, 'cgroup.procs')) as f:
            return sum(1 for _ in f)
    except OSError:
        return -1


async def until(pred, timeout):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError('timed out')
        await asyncio.sleep(0.005)


async def started(h, s, addr, w, n):
    iid = lbpeer.next_invocation_id()
    r = await s.task(addr, lbpeer.make_job(payload(n), iid))
    assert r == {'status': 0}, r
    await until(lambda: inv_dir(w, iid) is not None, 10)
    d = inv_dir(w, iid)
    await until(lambda: count(d) >= n + 1, 60)
    return iid, d


async def one_run(n):
    h = harness.Harness('bench-contain')
    ok = False
    try:
        s = await h.scheduler()
        w = h.worker(['--scheduler-address', s.addr, '--no-loop'], wcfg=WCFG % (n + 100))
        addr, = await s.wait_worker()
        if 'containment is off' in w.log():
            return None
        iid, d = await started(h, s, addr, w, n)
        t0 = time.monotonic()
        await s.call(addr, 'drop')
        await s.wait_report(iid, 60)
        drop = time.monotonic() - t0
        # crash: SIGKILL the worker with the payload running, start another
        iid, d = await started(h, s, addr, w, n)
        w.proc.kill()
        await w.wait_exit()
        t0 = time.monotonic()
        h.worker(['--scheduler-address', s.addr, '--no-loop'], wcfg=WCFG % (n + 100))
        await until(lambda: not os.path.exists(d), 60)
        crash = time.monotonic() - t0
        ok = True
        return drop, crash
    finally:
        await h.close(ok)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--procs', type=int, default=1000)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--json')
    a = ap.parse_args()
    if os.geteuid() != 0:
        print('SKIP containment figures: not root')
        return
    rows = []
    for i in range(a.runs):
        r = await one_run(a.procs)
        if r is None:
            print('SKIP containment figures: containment is off here')
            return
        rows.append(r)
        print('run %d: drop -> worker.dropped %.1f ms; crash cleanup %.1f ms'
              % (i + 1, r[0] * 1e3, r[1] * 1e3))
    med = (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
    print('containment, %d-process payload: median drop -> worker.dropped %.1f ms, crash '
          'cleanup (next worker start -> cgroup gone) %.1f ms' % (a.procs, med[0] * 1e3,
                                                                  med[1] * 1e3))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'procs': a.procs, 'runs': [list(r) for r in rows],
                       'median_drop_s': med[0], 'median_crash_cleanup_s': med[1]}, f)


if __name__ == '__main__':
    asyncio.run(main())
