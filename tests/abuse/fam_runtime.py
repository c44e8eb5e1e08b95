"""Runtime API family (PROTOCOL.md 8): bad version negotiations, sizes,
truncated and inconsistent requests, nesting and huge numbers through
tupdateattribs, hostile TaskSpawn pickles through spawn (what reaches the
scheduler must pass the allowlist), odd poll intervals and timeouts, slow
clients and floods of idle connections. The connections come from this
process, i.e. another local user's view; one case checks that a payload's
own valid request still gets through while another client floods the
port."""
import asyncio
import os
import pickle
import re
import struct
import textwrap

from core import Case, show
from fam_pickle import R

Q = struct.Struct('>Q')
HELLO = struct.pack('>QII', 1, 1, 0)


def S(b):
    return Q.pack(len(b)) + b


def cases(full):
    out = []

    def add(name, fn, heavy=False, shows=''):
        out.append(Case('runtime', name, fn, heavy, shows or name))

    def rt(data, hold=0.0, read_timeout=0.5):
        async def fn(c):
            await c.raw(data, src_ip='127.0.0.1', target=c.rt, hold=hold,
                        read_timeout=read_timeout)
        return fn

    # ---- negotiation -----------------------------------------------------------
    vers = {
        'n0': Q.pack(0), 'n-max': Q.pack((1 << 64) - 1), 'n-2^40': Q.pack(1 << 40),
        'v2.0': struct.pack('>QII', 1, 2, 0), 'v0.0': struct.pack('>QII', 1, 0, 0),
        'v1.1': struct.pack('>QII', 1, 1, 1), 'v-max': struct.pack('>QII', 1, 0xffffffff,
                                                                   0xffffffff),
        'n1000-with-1.0': Q.pack(1000) + struct.pack('>II', 9, 9) * 999 + struct.pack('>II', 1, 0),
        'n3-short': Q.pack(3) + struct.pack('>II', 1, 0), 'truncated-4': b'\0\0\0\0',
        'junk': bytes(range(256)), 'http': b'GET / HTTP/1.0\r\n\r\n',
    }
    for name, data in vers.items():
        add('version-' + name, rt(data), shows=show(data))

    # ---- commands with bad sizes ----------------------------------------------------
    cmds = {
        'cmd-len-max': HELLO + Q.pack((1 << 64) - 1),
        'cmd-len-1MiB-sent': HELLO + S(b'c' * (1 << 20)),
        'cmd-empty': HELLO + S(b''),
        'cmd-bad-utf8': HELLO + S(b'\xff\xfe'),
        'cmd-nul': HELLO + S(b'spawn\0'),
        'cmd-unknown': HELLO + S(b'rm -rf /'),
        'spawn-len-max': HELLO + S(b'spawn') + Q.pack((1 << 64) - 1),
        'spawn-len-1GiB-short': HELLO + S(b'spawn') + Q.pack(1 << 30) + b'x' * 1000,
        'spawn-not-pickle': HELLO + S(b'spawn') + S(b'not a pickle'),
        'spawn-empty': HELLO + S(b'spawn') + S(b''),
        'spawn-os-system': HELLO + S(b'spawn') + S(b'cos\nsystem\n(S"true"\ntR.'),
        'tupd-json-len-max': HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, (1 << 64)
                                                                         - 1, 0),
        'tupd-ndelete-max': HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, 2,
                                                                       (1 << 64) - 1) + b'{}',
        'tupd-ndelete-1M': HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, 2, 1000000)
        + b'{}' + S(b'k') * 1000000,
        'tupd-not-object': HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, 3, 0) + b'[1]',
        'tupd-bad-json': HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, 3, 0) + b'{x}',
        'tupd-delete-bad-utf8': HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, 2, 1)
        + b'{}' + S(b'\xff'),
        'tupd-task-id-max': HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', (1 << 64) - 1,
                                                                       2, 0) + b'{}',
        'send-data-len-max': HELLO + S(b'sendinvmessage') + struct.pack('>QQQ', 1, 2, (1 << 64)
                                                                        - 1)
        + struct.pack('>f', 1.0) + S(b'a'),
        'send-addressee-len-max': HELLO + S(b'sendinvmessage') + struct.pack('>QQQ', 1, 2, 1)
        + struct.pack('>f', 1.0) + Q.pack((1 << 64) - 1),
        'recv-addressee-huge': HELLO + S(b'recvinvmessage') + S(b'a' * (1 << 20))
        + struct.pack('>f', 0.1),
    }
    for t in (float('nan'), float('inf'), -1.0, 0.0, 1e-9, 3e38):
        cmds['send-timeout-%r' % t] = HELLO + S(b'sendinvmessage') + struct.pack(
            '>QQQ', 1, 2, 1) + struct.pack('>f', t) + S(b'a') + b'x'
        cmds['recv-poll-%r' % t] = HELLO + S(b'recvinvmessage') + S(b'box') + struct.pack('>f', t)
    for name, data in cmds.items():
        add(name, rt(data, read_timeout=0.5), heavy=name == 'tupd-ndelete-1M', shows=show(data))

    # ---- JSON through tupdateattribs ---------------------------------------------------
    def tupd(body):
        return HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, len(body), 0) + body
    for d in (1000, 10000, 100000):
        add('tupd-nested-array-%d' % d, rt(tupd(b'{"a":' + b'[' * d + b']' * d + b'}'), 0,
                                           1.5), heavy=d >= 100000)
        add('tupd-nested-object-%d' % d, rt(tupd(b'{"a":' * d + b'1' + b'}' * d), 0, 1.5),
            heavy=d >= 100000)
    for digits in (5000, 100000):
        add('tupd-int-%d-digits' % digits, rt(tupd(b'{"a": 1' + b'3' * digits + b'}'), 0, 1.5))
    add('tupd-string-8MiB', rt(tupd(b'{"a": "' + b'x' * (8 << 20) + b'"}'), 0, 1.5), True)

    # ---- hostile TaskSpawn pickles (forwarded to the scheduler?) -------------------------
    import lbpeer
    get = getattr
    for name, obj in {'eval': R(R(get, R(get, get, '__self__'), 'eval'), '"pwned"'),
                      'import-os': R(R(get, R(get, get, '__self__'), '__import__'), 'os'),
                      'os-system': R(__import__('os').system, 'true')}.items():
        ts = lbpeer.TaskSpawn()
        ts.__dict__ = {'_TaskSpawn__name': 'x', '_TaskSpawn__attributes': {'evil': obj},
                       '_TaskSpawn__env_args': None, '_TaskSpawn__forced_node_task_id_pair': None,
                       '_TaskSpawn__from_invocation_id': 1, '_TaskSpawn__output': 'spawned',
                       '_create_as_spawned': True, '_TaskSpawn__extra_groups': [],
                       '_TaskSpawn__default_priority': None}
        pk = _as_payload_pickle(ts)
        add('spawn-pickle-' + name, rt(HELLO + S(b'spawn') + S(pk), 0, 1.5), shows=show(pk))

    # ---- slow clients and floods -----------------------------------------------------------
    def slow(n, seconds):
        async def fn(c):
            data = HELLO + S(b'tupdateattribs') + struct.pack('>QQQ', 1, 2, 0) + b'{}'
            per = max(1, len(data) // 10)
            chunks = [(data[i:i + per], seconds / 10) for i in range(0, len(data), per)]
            await asyncio.gather(*[c.raw(b'', src_ip='127.0.0.1', target=c.rt, chunks=chunks,
                                         read_timeout=0.2) for _ in range(n)])
        return fn
    add('slow-1x3s', slow(1, 3.0), heavy=True)
    add('slow-100x3s', slow(100, 3.0), heavy=True)

    def idle_flood(n, payload_check):
        async def fn(c):
            socks = []
            try:
                for _ in range(n):
                    socks.append(c.sock('127.0.0.1', target=c.rt))
                await asyncio.sleep(0.3)
                c.delivered()
                if payload_check:
                    await _payload_gets_through(c)
                else:
                    await asyncio.sleep(1.0)
            finally:
                for s in socks:
                    s.close()
        return fn
    add('idle-flood-1100', idle_flood(1100, False), heavy=True)
    add('idle-flood-1100-payload-request', idle_flood(1100, True), heavy=True)

    async def churn(c):
        for _ in range(20):
            socks = [c.sock('127.0.0.1', target=c.rt) for _ in range(100)]
            await asyncio.sleep(0.01)
            for s in socks:
                try:
                    s.send(HELLO + S(b'spawn'))
                except OSError:
                    pass
                s.close()
            c.delivered()
    add('churn-2000', churn, heavy=True)
    return out


PAYLOAD = textwrap.dedent('''
    import time, lifeblood_connection as lc
    t0 = time.monotonic()
    try:
        lc.set_attributes({'through': 1}, blocking=True)
        print('THROUGH %.3f' % (time.monotonic() - t0), flush=True)
    except Exception as e:
        print('REFUSED %r' % (e,), flush=True)
''')


async def _payload_gets_through(c):
    p = os.path.join(c.tmp, 'through.py')
    with open(p, 'w') as f:
        f.write(PAYLOAD)
    n = len(c.s.attr_updates)
    r, rep = await c.run_task(['python3', p])
    out = rep['stdout'] if rep else ''
    m = re.search(r'THROUGH (\d+\.\d+)', out)
    if not m or float(m.group(1)) > 2.0 or len(c.s.attr_updates) <= n:
        raise AssertionError('a payload request during an idle flood did not get through in '
                             '2 s: %s' % (out.strip().splitlines()[-2:] if out else r,))


def _as_payload_pickle(ts):
    """A TaskSpawn pickled as lifeblood_connection.TaskSpawn, as a payload does."""
    import sys
    import types
    mod = sys.modules.get('lifeblood_connection')
    if mod is None:
        mod = types.ModuleType('lifeblood_connection')
        sys.modules['lifeblood_connection'] = mod

        class TaskSpawn:
            pass
        TaskSpawn.__module__ = 'lifeblood_connection'
        TaskSpawn.__qualname__ = 'TaskSpawn'
        mod.TaskSpawn = TaskSpawn
    t = mod.TaskSpawn()
    t.__dict__ = dict(ts.__dict__)
    return pickle.dumps(t)
