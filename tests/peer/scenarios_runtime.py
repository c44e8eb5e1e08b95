"""Integration scenarios for the payload runtime API (docs/PROTOCOL.md 7.10, 8):
payload scripts that import lifeblood_connection, run by the real
lifeblood-worker binary against the reference scheduler peer.
Usage: scenarios_runtime.py [--list | NAME...]"""
import asyncio
import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
from lbpeer import make_job, job_result, next_invocation_id  # noqa: E402
from scenarios import check, start  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def script(h, name, text):
    """A payload script file in the harness's directory."""
    path = os.path.join(h.tmp, name + '.py')
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text))
    return path


async def submit(s, addr, args, **kw):
    iid = next_invocation_id()
    r = await s.task(addr, make_job(args, iid, **kw))
    check(r == {'status': 0}, 'task reply %r' % (r,))
    return iid


async def finished(s, iid, timeout=60):
    _, name, args = await s.wait_report(iid, timeout)
    code = job_result(args['task'].encode('latin1'))[1]
    return name, code, args['stdout']


async def expect_ok(s, iid, timeout=60):
    name, code, out = await finished(s, iid, timeout)
    check(name == 'worker.done' and code == 0, 'invocation %d: %s exit %r\n%s'
          % (iid, name, code, out))
    return out


def lines_with(out, tag):
    """The payload's own output lines starting with tag (log prefixes removed)."""
    res = []
    for line in out.splitlines():
        if '] ' in line and line.startswith('[OUT]'):
            text = line.split('] ', 1)[1]
            if text.startswith(tag):
                res.append(text[len(tag):].strip())
    return res


@scenario
async def create_task_and_attributes(h):
    s, w, addr = await start(h)
    p = script(h, 'spawner', '''
        import lifeblood_connection as lc
        tid = lc.create_task('child', {'frame': 1002, 'path': '/tmp/x', 'list': [1, 2]},
                             blocking=True)
        print('TID', tid, flush=True)
        env = lc.EnvironmentResolverArguments('StandardEnvironmentResolver',
                                              {'package.blender': '~=4.1'})
        lc.create_task('child_env', {'a': 1}, env_arguments=env)      # in the background
        lc.set_attributes({'result': [1, 2, {'k': 'v'}], 'big': 2 ** 70, 'uni': '\\u00e9\\u65e5'},
                          blocking=True)
        lc.set_attributes({'late': None})                            # in the background
        lc.wait_for_currently_running_async_operations()
        print('DONE', flush=True)
    ''')
    iid = await submit(s, addr, ['python3', p], task_id=77)
    out = await expect_ok(s, iid)
    check(lines_with(out, 'TID') == ['5000'], 'blocking create_task returned %r' % out)
    check(len(s.spawns) == 2, 'spawns %r' % (s.spawns,))
    by_name = {sp.__dict__['_TaskSpawn__name']: (sp, raw) for _, sp, raw in s.spawns}
    sp, raw = by_name['child']
    d = sp.__dict__
    check(d['_TaskSpawn__attributes'] == {'frame': 1002, 'path': '/tmp/x', 'list': [1, 2]}, d)
    check(d['_TaskSpawn__from_invocation_id'] == iid and d['_TaskSpawn__env_args'] is None, d)
    check(d['_TaskSpawn__output'] == 'spawned' and d['_create_as_spawned'] is True, d)
    check(d['_TaskSpawn__forced_node_task_id_pair'] is None and
          d['_TaskSpawn__extra_groups'] == [] and d['_TaskSpawn__default_priority'] is None, d)
    check(b'lifeblood_connection' in raw, 'the payload pickle is forwarded unchanged')
    sp, raw = by_name['child_env']
    e = sp.__dict__['_TaskSpawn__env_args'].__dict__
    check(e == {'_EnvironmentResolverArguments__resolver_name': 'StandardEnvironmentResolver',
                '_EnvironmentResolverArguments__args': {'package.blender': '~=4.1'}}, e)
    ups = sorted((u[1], sorted(u[2].items()), u[3]) for u in s.attr_updates)
    want = sorted([(77, sorted({'result': [1, 2, {'k': 'v'}], 'big': 2 ** 70,
                                'uni': '\u00e9\u65e5'}.items()), []),
                   (77, [('late', None)], [])])
    check(ups == want, 'attribute updates %r' % (s.attr_updates,))
    # a scheduler that creates nothing: create_task answers -1
    s.spawn_reply = {'status': 1, 'task_id': None}
    iid = await submit(s, addr, ['python3', p], task_id=78)
    out = await expect_ok(s, iid)
    check(lines_with(out, 'TID') == ['-1'], 'create_task without a task id: %r' % out)


RECEIVER = '''
    import sys, time, lifeblood_connection as lc
    time.sleep(float(sys.argv[2]))
    src, data = lc.message_to_invocation_receive(sys.argv[1], timeout=float(sys.argv[3]))
    print('GOT', src, data.hex(), flush=True)
'''
SENDER = '''
    import sys, time, lifeblood_connection as lc
    time.sleep(float(sys.argv[3]))
    try:
        lc.message_to_invocation_send(int(sys.argv[1]), sys.argv[2], b'\\x00hello\\xff' * 3,
                                      addressee_timeout=float(sys.argv[4]))
        print('SENT delivered', flush=True)
    except lc.MessageSendError as e:
        print('SENT', e, flush=True)
'''


@scenario
async def messages_between_two_workers(h):
    s = await h.scheduler()
    for _ in range(2):
        h.worker(['--scheduler-address', s.addr, '--no-loop'])
    a, b = await s.wait_worker(count=2)
    rx = script(h, 'receiver', RECEIVER)
    tx = script(h, 'sender', SENDER)
    payload = (b'\x00hello\xff' * 3).hex()
    for variant, rx_delay, tx_delay in (('receive first', 0, 0.5), ('send first', 1.0, 0),
                                        ('receiver late', 3.0, 0)):
        r_iid = await submit(s, b, ['python3', rx, 'box-' + variant[:4], str(rx_delay), '30'])
        t_iid = await submit(s, a, ['python3', tx, str(r_iid), 'box-' + variant[:4],
                                    str(tx_delay), '20'])
        out_t = await expect_ok(s, t_iid)
        out_r = await expect_ok(s, r_iid)
        check(lines_with(out_t, 'SENT') == ['delivered'], '%s: sender %s' % (variant, out_t))
        check(lines_with(out_r, 'GOT') == ['%d %s' % (t_iid, payload)],
              '%s: receiver %s' % (variant, out_r))
    # the message results the scheduler saw
    check([m[2] for m in s.messages] == ['delivered'] * 3, s.messages)
    m = s.messages[0][1]
    check(m['addressee_timeout'] == 20.0 and m['overall_timeout'] == 300 and
          isinstance(m['overall_timeout'], int), 'forward arguments %r' % m)
    check(m['message_data_raw'] == (b'\x00hello\xff' * 3).decode('latin1'), m)

    # to an invocation that does not exist / has finished
    t_iid = await submit(s, a, ['python3', tx, '987654', 'box', '0', '5'])
    check(lines_with(await expect_ok(s, t_iid), 'SENT') == ['error-invoc-not-running'],
          'unknown invocation')
    t_iid2 = await submit(s, a, ['python3', tx, str(t_iid), 'box', '0', '5'])
    check(lines_with(await expect_ok(s, t_iid2), 'SENT') == ['error-invoc-not-running'],
          'finished invocation')

    # a running receiver that never listens: the addressee times out
    r_iid = await submit(s, b, ['sleep', '4'])
    t_iid = await submit(s, a, ['python3', tx, str(r_iid), 'box', '0', '1'])
    check(lines_with(await expect_ok(s, t_iid), 'SENT') == ['error-receiver-timeout'],
          'receiver timeout')
    await expect_ok(s, r_iid)

    # the scheduler cannot reach the receiver's worker
    s.invocations[424242] = {'worker': '127.0.0.1:1', 'running': True}
    t_iid = await submit(s, a, ['python3', tx, '424242', 'box', '0', '5'])
    check(lines_with(await expect_ok(s, t_iid), 'SENT') == ['error-transfer'], 'transfer error')


@scenario
async def invocation_message_edges(h):
    """The worker side of invocation_message, driven by the scheduler peer."""
    s, w, addr = await start(h)

    def msg(dst, timeout=1.0, addressee='box', data='x'):
        return s.call(addr, 'invocation_message', {
            'dst_invoc_id': dst, 'src_invoc_id': None, 'addressee': addressee,
            'addressee_timeout': timeout, 'message_data_raw': data})
    r = await msg(5)
    check(r == {'result': 'error-invoc-not-running'}, 'idle worker: %r' % r)
    r = await s.call(addr, 'invocation_message', {'dst_invoc_id': 5})
    check(r == {'result': 'error-unknown'}, 'missing arguments: %r' % r)
    # a receiver with a timeout, and a non-blocking receiver future
    p = script(h, 'recv', '''
        import time, lifeblood_connection as lc
        t0 = time.monotonic()
        try:
            lc.message_to_invocation_receive('never', timeout=0.6)
        except lc.MessageReceiveTimeout as e:
            print('TIMEOUT', 0.6 <= time.monotonic() - t0 < 5, str(e).startswith('elapsed: '),
                  flush=True)
        fut = lc.message_to_invocation_receive('box', blocking=False)
        try:
            fut.wait(0.2)
        except TimeoutError:
            print('STILL', fut.is_done(), flush=True)
        print('READY', flush=True)
        src, data = fut.wait()
        print('GOT', src, data, flush=True)
        lc.message_to_invocation_receive('box2')   # released when the task is dropped
    ''')
    iid = await submit(s, addr, ['python3', p])
    # wait for the future to be listening (the log command shows the output so far)
    for _ in range(100):
        r = await s.call(addr, 'log', {'invoc_id': iid})
        if 'READY' in r['stdout']:
            break
        await asyncio.sleep(0.05)
    r = await msg(iid + 1)
    check(r == {'result': 'error-invoc-not-running'}, 'wrong invocation: %r' % r)
    r = await msg(iid, timeout=10, data='\u00ff\u0000z')
    check(r == {'result': 'delivered'}, 'delivery: %r' % r)
    # a sender waiting for an addressee that will never come, then the drop:
    # the sender is answered error-invoc-not-running and the receiver released
    pending = asyncio.ensure_future(msg(iid, timeout=60, addressee='nobody'))
    await asyncio.sleep(0.5)
    check(not pending.done(), 'the delivery waits for its addressee')
    r = await s.call(addr, 'drop')
    check(r == {}, 'drop %r' % r)
    r = await asyncio.wait_for(pending, 5)
    check(r == {'result': 'error-invoc-not-running'}, 'pending delivery at the drop: %r' % r)
    _, name, args = await s.wait_report(iid)
    check(name == 'worker.dropped', name)
    out = args['stdout']
    check('TIMEOUT True True' in out, 'receive timeout: %s' % out)
    check('STILL False' in out and "GOT 0 b'\\xff\\x00z'" in out, 'future: %s' % out)


@scenario
async def many_connections_and_bad_clients(h):
    s, w, addr = await start(h)
    p = script(h, 'crowd', '''
        import os, socket, struct, threading, time, lifeblood_connection as lc
        host, port = os.environ['LIFEBLOOD_RUNTIME_SCHEDULER_ADDR'].rsplit(':', 1)
        target = (host, int(port))

        def raw(data, expect=None, hold=False):
            s = socket.create_connection(target, timeout=20)
            s.sendall(data)
            if hold:
                return s
            got = b''
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    got += c
            finally:
                s.close()
            return got

        hello = struct.pack('>QII', 1, 1, 0)
        S = lambda t: struct.pack('>Q', len(t)) + t
        # misbehaving clients: each is closed, nothing else is affected
        print('BADVER', raw(struct.pack('>QII', 1, 2, 0)) == b'', flush=True)
        print('MANYVER', raw(struct.pack('>Q', 1 << 40)) == b'', flush=True)
        print('UNKNOWN', raw(hello + S(b'selfdestruct')) == struct.pack('>II', 1, 0), flush=True)
        print('HUGE', raw(hello + S(b'spawn') + struct.pack('>Q', 1 << 62)) ==
              struct.pack('>II', 1, 0), flush=True)
        print('BADUTF', raw(hello + S(b'recvinvmessage') + S(b'\\xff\\xfe') + b'\\0\\0\\0\\0') ==
              struct.pack('>II', 1, 0), flush=True)
        print('NOTJSON', raw(hello + S(b'tupdateattribs') + struct.pack('>QQQ', 1, 3, 0) + b'[1]')
              == struct.pack('>II', 1, 0), flush=True)
        slow = [raw(hello + S(b'spawn') + struct.pack('>Q', 1000) + b'x', hold=True)
                for _ in range(20)]
        junk = [raw(os.urandom(4096), hold=True) for _ in range(5)]

        # 100 payload connections at once
        errors = []
        def one(i):
            try:
                if i % 2:
                    lc.set_attributes({'i': i}, blocking=True)
                else:
                    lc.create_task('c%d' % i, {'i': i}, blocking=True)
            except Exception as e:
                errors.append(repr(e))
        barrier = threading.Barrier(100)
        def go(i):
            barrier.wait()
            one(i)
        ts = [threading.Thread(target=go, args=(i,)) for i in range(100)]
        t0 = time.monotonic()
        for t in ts: t.start()
        for t in ts: t.join()
        print('CROWD', len(errors), errors[:3], flush=True)
        for c in slow + junk:
            c.close()
    ''')
    iid = await submit(s, addr, ['python3', p], task_id=9)
    out = await expect_ok(s, iid, 90)
    for tag in ('BADVER', 'MANYVER', 'UNKNOWN', 'HUGE', 'BADUTF', 'NOTJSON'):
        check(lines_with(out, tag) == ['True'], '%s: %s' % (tag, out))
    check(lines_with(out, 'CROWD') == ['0 []'], out)
    check(len(s.spawns) == 50 and len(s.attr_updates) == 50,
          '%d spawns, %d updates' % (len(s.spawns), len(s.attr_updates)))
    check(sorted(u[2]['i'] for u in s.attr_updates) == list(range(1, 100, 2)), 'updates')
    log = w.log()
    check('payload connection closed: unknown command' in log, 'unknown command logged')
    check('over the limit' in log, 'huge size logged')
    # the worker goes on serving
    iid = await submit(s, addr, ['/bin/true'])
    await expect_ok(s, iid)


@scenario
async def request_deadline(h):
    s, w, addr = await start(h, wcfg='runtime_request_timeout = 1')
    p = script(h, 'slow', '''
        import os, socket, struct, time
        host, port = os.environ['LIFEBLOOD_RUNTIME_SCHEDULER_ADDR'].rsplit(':', 1)
        c = socket.create_connection((host, int(port)))
        c.sendall(struct.pack('>QII', 1, 1, 0) + struct.pack('>Q', 5) + b'sp')
        c.settimeout(10)
        t0 = time.monotonic()
        got = c.recv(100)
        rest = c.recv(100)
        print('CLOSED', got == struct.pack('>II', 1, 0), rest == b'',
              0.5 <= time.monotonic() - t0 < 5, flush=True)
    ''')
    iid = await submit(s, addr, ['python3', p])
    out = await expect_ok(s, iid)
    check(lines_with(out, 'CLOSED') == ['True True True'], out)
    check('did not send its whole request in 1 s' in w.log(), 'deadline logged')


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
