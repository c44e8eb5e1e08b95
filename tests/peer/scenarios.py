"""Integration scenarios: the real lifeblood-worker binary against the
reference scheduler peer on loopback. Usage: scenarios.py [NAME...]"""
import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
from lbpeer import make_job, job_result, next_invocation_id  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def machine_hwid():
    for p in ('/etc/machine-id', '/var/lib/dbus/machine-id'):
        try:
            with open(p) as f:
                return int(f.read().strip(), 16) & 0x7FFFFFFFFFFFFFFF
        except (OSError, ValueError):
            pass
    return None


async def start(h, extra_args=(), config='', env=None):
    s = await h.scheduler()
    w = h.worker(['--scheduler-address', s.addr, '--no-loop'] + list(extra_args), config, env)
    addr, = await s.wait_worker()
    return s, w, addr


async def run_job(s, addr, job_args, timeout=30, **kw):
    iid = next_invocation_id()
    r = await s.task(addr, make_job(job_args, iid, **kw))
    check(r == {'status': 0}, 'task reply %r' % (r,))
    t, name, args = await s.wait_report(iid, timeout)
    return iid, name, args


@scenario
async def hello_and_done(h):
    s, w, addr = await start(h)
    info = s.workers[addr]
    res = info['res'].__dict__
    check(res['hwid'] == machine_hwid() or machine_hwid() is None, 'hwid %r' % res['hwid'])
    check(res['total_cpu_count'] == res['cpu_count'] and res['cpu_count'] >= 1, 'cpus %r' % res)
    check(info['type'] == 0, 'worker type')
    check(re.fullmatch(r'\d+\.\d+\.\d+\.\d+:\d+', addr), 'worker address %r' % addr)
    r = await s.call(addr, 'ping')
    check(r == {'ps': 0, 'pv': 0}, 'idle ping %r' % r)
    iid, name, args = await run_job(s, addr, ['/bin/echo', 'hello', 'world'])
    check(name == 'worker.done', name)
    _, code, rt = job_result(args['task'].encode('latin1'))
    check(code == 0 and isinstance(rt, float) and rt >= 0, 'exit %r time %r' % (code, rt))
    out = args['stdout']
    check(re.fullmatch(r'\[SYS\]\[\d\d\.\d\d\.\d\d \d\d:\d\d:\d\d\] task initialized\n'
                       r'\[OUT\]\[\d\d:\d\d:\d\d\] hello world\n'
                       r'\[SYS\]\[\d\d\.\d\d\.\d\d \d\d:\d\d:\d\d\] task finished\n', out),
          'stdout log %r' % out)
    check(args['stderr'] == '', 'stderr log %r' % args['stderr'])
    await asyncio.sleep(0.2)
    d = os.path.join(w.logroot, 'db_%016x' % s.db_uid, 'invocations', str(iid))
    check(not os.path.exists(d), 'log directory %s still there after the report' % d)
    r = await s.call(addr, 'status')
    check(r['state'] == 1 and r['invocation_id'] is None, 'status %r' % r)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
