"""Payloads whose environment or command line is too big for execve, and
values that double when written out as text, against the real
lifeblood-worker binary and the reference scheduler peer. After each the
worker answers at once and keeps running tasks.
Usage: scenarios_followup.py [--list | NAME...]"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
from lbpeer import make_job, job_result, next_invocation_id  # noqa: E402
from scenarios import start, run_job, check  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def job_iid(job):
    return job_result(job)[0]


async def still_serving(s, addr):
    r = await s.call(addr, 'ping', timeout=5)
    check('ps' in r, 'ping reply %r' % (r,))
    iid, name, args = await run_job(s, addr, ['/bin/echo', 'still serving'])
    check(name == 'worker.done' and 'still serving' in args['stdout'], args['stdout'])


async def task_reply(s, addr, job, within):
    t0 = time.monotonic()
    r = await s.task(addr, job)
    took = time.monotonic() - t0
    check(took < within, 'the task reply took %.1f s' % took)
    return r


@scenario
async def attribute_40mb_skipped(h):
    """One 40 MB attribute: longer than execve takes for one variable, so
    it is not exported (a WARNING names it) and the payload runs."""
    s, w, addr = await start(h)
    sh = 'echo "big=${LBATTR_big-unset} small=$LBATTR_small"'
    attrs = {'big': 'x' * (40 << 20), 'small': 'kept'}
    t0 = time.monotonic()
    iid, name, args = await run_job(s, addr, ['/bin/sh', '-c', sh], attrs=attrs, timeout=60)
    check(time.monotonic() - t0 < 60, 'took %.1f s' % (time.monotonic() - t0))
    check(name == 'worker.done', name)
    check('big=unset small=kept' in args['stdout'], args['stdout'])
    log = w.log()
    check("task attribute 'big'" in log and 'not exported as LBATTR_big' in log,
          'no WARNING naming the attribute in the log')
    await still_serving(s, addr)


@scenario
async def environment_too_big_fails_as_spawn(h):
    """80 attributes of 100 KiB each: every one fits, all together do not
    (more than execve's total): FAILED, class spawn, E2BIG and the size."""
    s, w, addr = await start(h)
    attrs = {'a%d' % i: chr(ord('a') + i % 26) * (100 << 10) for i in range(80)}
    job = make_job(['/bin/true'], next_invocation_id(), attrs=attrs)
    r = await task_reply(s, addr, job, 60)
    check(r.get('status') == 1 and r.get('error_class') == 'spawn', 'reply %r' % (r,))
    check('E2BIG' in r.get('message', '') and 'bytes' in r.get('message', ''),
          'message %r' % r.get('message'))
    await still_serving(s, addr)


@scenario
async def arguments_too_big_fails_as_spawn(h):
    """A command line of 80 arguments of 100 KiB: execve itself says E2BIG;
    the reply is FAILED, class spawn, naming E2BIG and the sizes."""
    s, w, addr = await start(h)
    args = ['/bin/true'] + ['y' * (100 << 10)] * 80
    job = make_job(args, next_invocation_id())
    r = await task_reply(s, addr, job, 60)
    check(r.get('status') == 1 and r.get('error_class') == 'spawn', 'reply %r' % (r,))
    msg = r.get('message', '')
    check('E2BIG' in msg and 'environment is' in msg, 'message %r' % msg)
    await still_serving(s, addr)


@scenario
async def many_attributes_answered(h):
    """100,000 small attributes: the environment is built without a scan per
    name; the task is answered (run, or FAILED/spawn past execve's total)
    within seconds and pings are answered."""
    s, w, addr = await start(h)
    attrs = {'a%d' % i: 1 for i in range(100000)}
    job = make_job(['/bin/true'], next_invocation_id(), attrs=attrs)
    r = await task_reply(s, addr, job, 15)
    check(r.get('status') == 0 or (r.get('status') == 1 and r.get('error_class') == 'spawn'
                                   and 'E2BIG' in r.get('message', '')), 'reply %r' % (r,))
    if r.get('status') == 0:
        await s.wait_report(job_iid(job), 30)
    await still_serving(s, addr)


@scenario
async def doubling_resolver_argument_fails(h):
    """A resolver argument a = [b, b], b = [c, c], ... 40 levels deep (2^40
    leaves as text, a few hundred bytes as a pickle): refused at once."""
    s, w, addr = await start(h)
    v = 'xy'
    for _ in range(40):
        v = [v, v]
    job = make_job(['/bin/true'], next_invocation_id(),
                   envres=('TrivialEnvironmentResolver', {'DEEP': v}))
    check(len(job) < 4096, 'the pickle is %d bytes' % len(job))
    r = await task_reply(s, addr, job, 10)
    check(r.get('status') == 1 and r.get('error_class') == 'spawn', 'reply %r' % (r,))
    check("'DEEP'" in r.get('message', '') and 'E2BIG' in r.get('message', ''),
          'message %r' % r.get('message'))
    await still_serving(s, addr)


@scenario
async def doubling_environment_actions_fail(h):
    """X1=$X0$X0, X2=$X1$X1, ... 40 actions: stopped at the variable limit."""
    s, w, addr = await start(h)
    env = [('__setitem__', 'X0', 'abcdefgh')]
    env += [('__setitem__', 'X%d' % i, '$X%d$X%d' % (i - 1, i - 1)) for i in range(1, 41)]
    job = make_job(['/bin/true'], next_invocation_id(), env=env)
    r = await task_reply(s, addr, job, 10)
    check(r.get('status') == 1 and r.get('error_class') == 'spawn', 'reply %r' % (r,))
    check('E2BIG' in r.get('message', ''), 'message %r' % r.get('message'))
    await still_serving(s, addr)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
