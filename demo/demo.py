"""make demo: the reference scheduler (tests/peer), two lifeblood-worker
processes behind a pool proxy chain, and sample payloads -- one reporting
ALF_PROGRESS, one ordinary render-like job with logs, two using the runtime
API (lifeblood_connection: a child task, attributes, a message from one
invocation to another), one failing, one cancelled -- with their progress
and results on the terminal."""
import asyncio
import pickle
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'peer'))
import harness  # noqa: E402
from lbpeer import make_job, job_result, next_invocation_id  # noqa: E402

PROGRESS = r'''
import time
for i in range(0, 101, 20):
    print("rendering frame %d" % (i // 20 + 1), flush=True)
    print("ALF_PROGRESS %d%%" % i, flush=True)
    time.sleep(0.4)
'''
LOGS = r'''
import sys
print("loading scene shot_010.usd")
sys.stderr.write("warning: texture tex_04.exr missing, using a default\n")
print("wrote /tmp/out.0001.exr")
'''

RECEIVER = r'''
import lifeblood_connection as lc
src, data = lc.message_to_invocation_receive('comp_results', timeout=30)
print('message from invocation %d: %s' % (src, data.decode()))
'''
SENDER = r'''
import sys, lifeblood_connection as lc
tid = lc.create_task('shot_010_comp', {'frames': [1, 2, 3]}, blocking=True)
print('created child task', tid)
lc.set_attributes({'rendered': True}, blocking=True)
lc.message_to_invocation_send(int(sys.argv[1]), 'comp_results', b'frames 1-3 done')
print('message delivered')
'''


def short(text, n=6):
    lines = text.rstrip('\n').split('\n')
    return '\n'.join('      | ' + l for l in lines[-n:])


async def main(h):
    t0 = time.monotonic()
    say = lambda m: print('[%5.2f s] %s' % (time.monotonic() - t0, m), flush=True)  # noqa: E731
    s = await h.scheduler()
    p = await h.pool()
    say('reference scheduler on %s, pool proxy on %s' % (s.addr, p.addr))
    for i in range(2):
        h.worker(['--id', str(i), '--pool-address', p.addr,
                  '--scheduler-address', p.addr + '|' + s.addr, '--no-loop'],
                 config='minimum_progress_reporting_interval = 0.2')
    addrs = await s.wait_worker(count=2)
    for a in addrs:
        r = s.workers[a]['res'].__dict__
        say('worker.hello from %s: %s CPUs, %.1f GB memory, %s GPUs, hwid %d'
            % (a, r['total_cpu_count'], r['total_cpu_mem'] / 1e9, r['total_gpu_count'],
               r['hwid']))
    jobs = [
        ('progress', addrs[0], ['python3', '-c', PROGRESS]),
        ('logs', addrs[1], ['python3', '-c', LOGS]),
    ]
    iids = {}
    for name, a, args in jobs:
        iid = next_invocation_id()
        r = await s.task(a, make_job(args, iid))
        iids[name] = iid
        say('task %-9s (invocation %d) -> %s: %s' % (name, iid, a.split('|')[-1], r))
    shown = 0
    while not s.report_for(iids['progress']):
        for t, i, v in s.progress[shown:]:
            say('  progress of invocation %d: %s%%' % (i, v))
        shown = len(s.progress)
        await asyncio.sleep(0.1)
    for t, i, v in s.progress[shown:]:
        say('  progress of invocation %d: %s%%' % (i, v))
    for name in ('progress', 'logs'):
        _, kind, args = await s.wait_report(iids[name])
        _, code, rt = job_result(args['task'].encode('latin1'))
        say('%s for %s: exit code %s after %.3f s; log:\n%s' % (kind, name, code, rt,
                                                                short(args['stdout'])))
    # the runtime API: a child task, attributes, and a message between invocations
    r_iid, s_iid = next_invocation_id(), next_invocation_id()
    await s.task(addrs[1], make_job(['python3', '-c', RECEIVER], r_iid))
    await s.task(addrs[0], make_job(['python3', '-c', SENDER, str(r_iid)], s_iid, task_id=42))
    for iid in (s_iid, r_iid):
        _, kind, args = await s.wait_report(iid)
        say('runtime API job (invocation %d): %s, exit code %s; log:\n%s'
            % (iid, kind, job_result(args['task'].encode('latin1'))[1], short(args['stdout'], 3)))
    sp = s.spawns[-1][1].__dict__
    say('the scheduler got: spawn %r with attributes %r; attributes of task %d set to %r'
        % (sp['_TaskSpawn__name'], sp['_TaskSpawn__attributes'], s.attr_updates[-1][1],
           s.attr_updates[-1][2]))
    iid = next_invocation_id()
    r = await s.task(addrs[0], make_job(['/bin/sh', '-c', 'echo cannot open scene >&2; exit 3'],
                                        iid))
    _, kind, args = await s.wait_report(iid)
    say('failing job: %s, exit code %s; stderr:\n%s'
        % (kind, job_result(args['task'].encode('latin1'))[1], short(args['stderr'])))
    iid = next_invocation_id()
    await s.task(addrs[1], make_job(['/bin/sh', '-c', 'echo long render; sleep 600'], iid))
    await asyncio.sleep(0.3)
    t1 = time.monotonic()
    r = await s.call(addrs[1], 'drop')
    _, kind, args = await s.wait_report(iid)
    say('cancelled job: %s in %.0f ms, exit code %s; log:\n%s'
        % (kind, (time.monotonic() - t1) * 1e3, job_result(args['task'].encode('latin1'))[1],
           short(args['stdout'], 3)))
    r = await s.task(addrs[0], make_job(['no-such-renderer'], next_invocation_id()))
    say('job with a missing executable: %s' % r)
    # the host ledger: a job that needs a CPU is pinned to one no other payload
    # holds, and a worker that starts meanwhile advertises only what is left
    iid = next_invocation_id()
    j = pickle.loads(make_job(['/bin/sh', '-c', 'grep Cpus_allowed_list /proc/self/status; '
                               'echo "claimed CPUs: $LIFEBLOOD_CLAIM_CPUS"; sleep 1.5'], iid))
    j.__dict__['_InvocationJob__requirements'].__dict__[
        '_InvocationRequirements__min_cpu_count'] = 1
    await s.task(addrs[0], pickle.dumps(j))
    await asyncio.sleep(0.5)
    h.worker(['--scheduler-address', s.addr, '--no-loop'])
    third = [a for a in await s.wait_worker(count=3) if a not in addrs][0]
    r = s.workers[third]['res'].__dict__
    say('host ledger: a job needing 1 CPU runs on worker %s; a worker started meanwhile '
        '(%s) advertises cpu_count %s of total_cpu_count %s'
        % (addrs[0].split('|')[-1], third, r['cpu_count'], r['total_cpu_count']))
    _, kind, args = await s.wait_report(iid)
    say('the pinned job: %s; log:\n%s' % (kind, short(args['stdout'], 3)))
    states = ' '.join('%d:%s' % (w, {1: 'IDLE', 2: 'BUSY'}.get(st, st)) for _, w, st in p.states)
    say('pool state reports (worker:state): %s' % states)


if __name__ == '__main__':
    h = harness.Harness('demo')
    ok = False
    try:
        asyncio.get_event_loop().run_until_complete(asyncio.wait_for(main(h), 120))
        ok = True
    finally:
        asyncio.get_event_loop().run_until_complete(h.close(ok))
    print('\nAll workers stopped; no payload process left (the workers are subreapers and '
          'kill whole trees).' if ok else '\ndemo FAILED')
    sys.exit(0 if ok else 1)
