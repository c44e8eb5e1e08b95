"""Soak: N tasks (default 10,000) through one worker, one after another,
each a /bin/true-like payload, against the reference scheduler peer. The
worker's RSS (VmRSS) and open fd count are sampled at the start and after
every 1,000 tasks and printed as a table; flat is the goal. Not a test: it
prints figures (and --json FILE).

    LBW_BIN=build/lifeblood-worker python3 bench/soak.py [--tasks N] [--every K]"""
import argparse
import asyncio
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'peer'))
import harness  # noqa: E402
import lbpeer  # noqa: E402


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])


def fds(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


async def soak(n, every, payload):
    h = harness.Harness('soak')
    rows = []
    try:
        s = await h.scheduler()
        w = h.worker(['--scheduler-address', s.addr, '--no-loop'], wcfg='ping_interval = 3600\n')
        addr, = await s.wait_worker()
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        rows.append((0, rss_kib(w.pid), fds(w.pid), 0.0))
        for i in range(1, n + 1):
            iid = lbpeer.next_invocation_id()
            r = await s.task(addr, lbpeer.make_job(payload, iid))
            if r != {'status': 0}:
                raise SystemExit('task %d refused: %r' % (i, r))
            await s.wait_report(iid, 30)
            s.reports.clear()          # the peer keeps nothing per task
            s.invocations.clear()
            s.events.clear()
            if i % every == 0:
                rows.append((i, rss_kib(w.pid), fds(w.pid), time.monotonic() - t0))
    finally:
        await h.close(True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tasks', type=int, default=int(os.environ.get('SOAK_TASKS', 10000)))
    ap.add_argument('--every', type=int, default=1000)
    ap.add_argument('--json')
    a = ap.parse_args()
    payload = ['/bin/true']
    rows = asyncio.get_event_loop().run_until_complete(soak(a.tasks, a.every, payload))
    print('soak: %d tasks (%s) through one worker' % (a.tasks, ' '.join(payload)))
    print('%8s %10s %5s %9s' % ('tasks', 'RSS KiB', 'fds', 'elapsed'))
    for t, rss, fd, el in rows:
        print('%8d %10d %5d %8.1fs' % (t, rss, fd, el))
    first, last = rows[1] if len(rows) > 1 else rows[0], rows[-1]
    print('RSS change from %d to %d tasks: %+d KiB; fds %+d; %.0f tasks/s'
          % (first[0], last[0], last[1] - first[1], last[2] - first[2],
             a.tasks / last[3] if last[3] else 0))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'tasks': a.tasks, 'samples': [
                {'tasks': t, 'rss_kib': r, 'fds': fd, 'elapsed_s': el} for t, r, fd, el in rows]},
                f, indent=1)


if __name__ == '__main__':
    main()
