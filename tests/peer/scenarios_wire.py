"""Hostile codec input against the real lifeblood-worker binary and the
reference scheduler peer: a task pickle that would run code in the
scheduler's pickle.loads, deeply nested JSON frames, integers too long for
str(). After each the worker answers at once and keeps running tasks.
Usage: scenarios_wire.py [NAME...]"""
import asyncio
import os
import pickle
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
from lbpeer import make_job, next_invocation_id, latin1  # noqa: E402
from scenarios import start, run_job, check  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


class Call:
    """Pickles as func(*args) without ever being called here."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __call__(self, *a):
        raise AssertionError('never called')

    def __reduce__(self):
        return (self.func, self.args)


async def answers_ping(s, addr, within):
    t0 = time.monotonic()
    r = await s.call(addr, 'ping', timeout=within)
    check('ps' in r, 'ping reply %r' % (r,))
    return time.monotonic() - t0


@scenario
async def code_execution_pickle_refused(h):
    s, w, addr = await start(h)
    # getattr(getattr(getattr, '__self__'), 'eval')('...') as a task attribute
    evil = Call(Call(getattr, Call(getattr, getattr, '__self__'), 'eval'), 'print("owned")')
    pk = make_job(['/bin/true'], next_invocation_id(), attrs={'x': evil})
    r = await s.call(addr, 'task', {'task': latin1(pk), 'reply_to': s.addr})
    check(r.get('status') == 1 and 'refusing global builtins.getattr at offset' in
          r.get('message', ''), 'reply %r' % (r,))
    pk = make_job(['/bin/true'], next_invocation_id(), attrs={'y': [{'z': Call(eval, '1')}]})
    r = await s.call(addr, 'task', {'task': latin1(pk), 'reply_to': s.addr})
    check(r.get('status') == 1 and 'refusing global builtins.eval' in r.get('message', ''),
          'reply %r' % (r,))
    iid, name, args = await run_job(s, addr, ['/bin/echo', 'still serving'])
    check(name == 'worker.done' and 'still serving' in args['stdout'], args['stdout'])


@scenario
async def deeply_nested_json_refused(h):
    s, w, addr = await start(h)
    for opener, closer in (('[', ']'), ('{"a":', '}')):
        for depth in (100000, 1000000):
            body = (opener * depth + '1' + closer * depth).encode()
            await s.send(addr, body, uuid.uuid4())
            took = await answers_ping(s, addr, 10)
            check(took < 5, 'ping took %.1f s after %d bytes' % (took, len(body)))
    iid, name, args = await run_job(s, addr, ['/bin/echo', 'still serving'])
    check(name == 'worker.done', name)


@scenario
async def huge_integer_attribute_skipped(h):
    s, w, addr = await start(h)
    sh = 'echo "huge=${LBATTR_huge-unset} max=${#LBATTR_max} small=$LBATTR_small"'
    attrs = {'huge': 10 ** 4300, 'max': 10 ** 4300 - 1, 'small': 7,
             'mib': 1 << (8 * (1 << 20))}
    t0 = time.monotonic()
    iid, name, args = await run_job(s, addr, ['/bin/sh', '-c', sh], attrs=attrs)
    check(name == 'worker.done', name)
    check('huge=unset max=4300 small=7' in args['stdout'], args['stdout'])
    check(time.monotonic() - t0 < 30, 'the job took %.1f s' % (time.monotonic() - t0))
    await answers_ping(s, addr, 10)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
