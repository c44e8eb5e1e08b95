"""The local worker pool against the reference scheduler peer (Python,
asyncio), at --loglevel INFO:
* spawn latency: `pool simple --on-demand`; the scheduler sends /bin/true to
  the one idle worker, which reports BUSY, so the pool starts the next worker;
  measured from the task's send to that worker's worker.hello at the scheduler
  (an upper bound of "the pool decides -> the hello arrives": it includes the
  task's trip and the BUSY report), median and p99 over --count tasks;
* tasks per second through the same on-demand pool (each /bin/true task gets
  a fresh worker), over --count tasks;
* the pool process's RSS with its one idle worker and with 32 workers
  (--min-total 32), and the workers' mean RSS.
Usage: pool.py [--count N] [--json FILE]"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'peer'))
from harness import Harness  # noqa: E402
from lbpeer import make_job, next_invocation_id  # noqa: E402
from scenarios_pool import Pool, pooled, proxy_of  # noqa: E402
from soak import rss_kib  # noqa: E402


def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(0.99 * (len(v) - 1) + 0.5))]


async def on_demand(h, count):
    s = await h.scheduler()
    pool = Pool(h, s, ['--on-demand'], loglevel='INFO')
    proxy = await proxy_of(h, s, pool)
    last = [0.0]

    def new():
        return [a for a in pooled(s, proxy) if s.workers[a]['hello_at'] > last[0]]
    await s.wait_for(new, 20, 'the first worker')
    a = new()[0]
    last[0] = s.workers[a]['hello_at']
    lat, t_start = [], time.monotonic()
    for _ in range(count):
        iid = next_invocation_id()
        t0 = time.monotonic()
        await s.task(a, make_job(['/bin/true'], iid))
        await s.wait_for(new, 20, 'the next worker')
        a = new()[0]
        last[0] = s.workers[a]['hello_at']
        lat.append((last[0] - t0) * 1e3)
        await s.wait_report(iid, 20)
    rate = count / (time.monotonic() - t_start)
    return lat, rate


async def rss(h):
    s = await h.scheduler()
    pool = Pool(h, s, ['--min-idle', '1'], loglevel='INFO')
    proxy = await proxy_of(h, s, pool)
    await s.wait_for(lambda: len(pooled(s, proxy)) >= 1, 20, 'one worker')
    await asyncio.sleep(1)
    idle = rss_kib(pool.pid)
    pool.proc.terminate()
    await pool.wait_exit(30)
    pool = Pool(h, s, ['--min-total', '32', '--min-idle', '0'], loglevel='INFO')
    proxy = await proxy_of(h, s, pool)
    await s.wait_for(lambda: len(pooled(s, proxy)) >= 32, 60, '32 workers')
    await asyncio.sleep(1)
    kids = pool.children()
    full = rss_kib(pool.pid)
    workers = statistics.mean(rss_kib(k) for k in kids)
    pool.proc.terminate()
    await pool.wait_exit(60)
    return idle, full, workers, len(kids)


def main():
    ap = argparse.ArgumentParser(description='the pool: spawn latency, tasks/s, RSS')
    ap.add_argument('--count', type=int, default=200)
    ap.add_argument('--json')
    opts = ap.parse_args()
    count, out = opts.count, opts.json
    res = {}
    for name, fn in (('on_demand', lambda h: on_demand(h, count)), ('rss', rss)):
        h = Harness('bench-pool')
        loop = asyncio.new_event_loop()
        ok = False
        try:
            res[name] = loop.run_until_complete(asyncio.wait_for(fn(h), 600))
            ok = True
        finally:
            loop.run_until_complete(h.close(ok))
            loop.close()
    lat, rate = res['on_demand']
    idle, full, workers, n = res['rss']
    print('pool spawn latency (task sent -> next worker.hello), %d tasks: median %.2f ms, '
          'p99 %.2f ms' % (count, statistics.median(lat), p99(lat)))
    print('tasks/s through an on-demand pool of /bin/true (a fresh worker each): %.1f' % rate)
    print('pool RSS: %d KiB with 1 idle worker, %d KiB with %d workers (workers: %.0f KiB '
          'each on average)' % (idle, full, n, workers))
    if out:
        with open(out, 'w') as f:
            json.dump({'spawn_ms_median': statistics.median(lat), 'spawn_ms_p99': p99(lat),
                       'tasks_per_s': rate, 'rss_kib_idle': idle, 'rss_kib_32': full,
                       'worker_rss_kib_mean': workers, 'count': count}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
