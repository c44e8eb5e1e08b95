"""make demo, the pool: `lifeblood-worker pool simple --on-demand` with a
fixture capacity (32 cores / 64 GiB) against the reference scheduler: each
new worker advertises what the running tasks leave, a worker runs one task
and exits, the idle worker says hello again with what is left as tasks end
until it advertises the whole host, SIGTERM stops the pool and every worker."""
import asyncio
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'peer'))
import harness  # noqa: E402
from lbpeer import next_invocation_id  # noqa: E402
from scenarios_pool import CFG, G, Pool, pidfile_job, pooled, proxy_of, wait_file  # noqa: E402


async def main(h):
    t0 = time.monotonic()
    say = lambda m: print('[%5.2f s] %s' % (time.monotonic() - t0, m), flush=True)  # noqa: E731
    s = await h.scheduler()
    pool = Pool(h, s, ['--on-demand', '--max', '8'], config=CFG)
    proxy = await proxy_of(h, s, pool)
    say('pool simple --on-demand: proxy on %s, capacity 32 cores / 64 GiB' % proxy)
    last = [0.0]

    async def hello():
        def new():
            return [a for a in pooled(s, proxy) if s.workers[a]['hello_at'] > last[0]]
        await s.wait_for(new, 20, 'a worker through the pool')
        a = new()[0]
        last[0] = s.workers[a]['hello_at']
        r = s.workers[a]['res'].__dict__
        say('worker.hello from %s: %s cores / %d GiB left' % (a, r['cpu_count'],
                                                              r['cpu_mem'] // G))
        return a

    pids, iids = [], []
    for tag, cpus, mem in (('a', 8, 16), ('b', 20, 40)):
        a = await hello()
        iid = next_invocation_id()
        pk, pidf = pidfile_job(h, tag, iid, cpus, mem * G)
        await s.task(a, pk)
        pids.append(int((await wait_file(pidf)).strip()))
        iids.append(iid)
        say('  task of %d cores / %d GiB sent to it: BUSY, so the pool starts another'
            % (cpus, mem))
    await hello()
    kids = pool.children() + pids
    for i, what in enumerate(('8-core', '20-core')):
        os.kill(pids[i], signal.SIGTERM)
        await s.wait_report(iids[i])
        say('the %s task ended: its worker exits (one task each), and the idle worker '
            'says hello again with what is left now:' % what)
        await hello()
    kids += pool.children()
    pool.proc.send_signal(signal.SIGTERM)
    await pool.wait_exit(30)
    left = [p for p in kids if os.path.exists('/proc/%d' % p)]
    say('SIGTERM to the pool: exit status %s; %d of its %d processes left'
        % (pool.proc.returncode, len(left), len(kids)))


if __name__ == '__main__':
    h = harness.Harness('demo-pool')
    ok = False
    try:
        asyncio.get_event_loop().run_until_complete(asyncio.wait_for(main(h), 60))
        ok = True
    finally:
        asyncio.get_event_loop().run_until_complete(h.close(ok))
    sys.exit(0 if ok else 1)
