"""Integration scenarios: the real lifeblood-worker binary against the
reference scheduler peer on loopback. Usage: scenarios.py [--list | NAME...]
(a scenario that cannot run here raises harness.Skip with the reason)."""
import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
import lbpeer  # noqa: E402
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


async def poll_until(pred, timeout, what):
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError('timed out waiting for ' + what)


async def start(h, extra_args=(), config='', env=None, wcfg=''):
    s = await h.scheduler()
    w = h.worker(['--scheduler-address', s.addr, '--no-loop'] + list(extra_args), config, env,
                 wcfg)
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



@scenario
async def task_while_reporting(h):
    """A scheduler may send the next task as soon as it has a report, before
    its reply reaches the worker: the task waits and is accepted (upstream
    waits on its task lock), instead of being answered BUSY."""
    s, w, addr = await start(h)
    second = {}

    async def hook(name, args):
        if not second:
            iid = next_invocation_id()
            second['iid'] = iid
            second['reply'] = asyncio.ensure_future(s.task(addr, make_job(['/bin/true'], iid)))
            await asyncio.sleep(0.3)          # the worker has the task before our reply
            check(not second['reply'].done(), 'the task is held until the report is answered')
    s.report_hook = hook
    first, name, _ = await run_job(s, addr, ['/bin/true'])
    r = await asyncio.wait_for(second['reply'], 10)
    check(r == {'status': 0}, 'task sent during the report: %r' % (r,))
    _, name, args = await s.wait_report(second['iid'])
    check(name == 'worker.done', name)


@scenario
async def exit_codes_and_stderr(h):
    s, w, addr = await start(h)
    iid, name, args = await run_job(s, addr, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 3'])
    _, code, _ = job_result(args['task'].encode('latin1'))
    check(name == 'worker.done' and code == 3, 'exit code %r' % code)
    check(re.search(r'^\[ERR\]\[\d\d:\d\d:\d\d\] err\n', args['stdout'], re.M), args['stdout'])
    check(re.fullmatch(r'\[ERR\]\[\d\d:\d\d:\d\d\] err\n', args['stderr']), args['stderr'])
    iid, name, args = await run_job(s, addr, ['/bin/sh', '-c', 'kill -9 $$'])
    check(job_result(args['task'].encode('latin1'))[1] == -9, 'signal exit code')


@scenario
async def spawn_and_resolver_failures(h):
    s, w, addr = await start(h)
    r = await s.task(addr, make_job(['no-such-program-lbw'], next_invocation_id()))
    check(r == {'status': 1, 'message': 'failed to start the process', 'error_class': 'spawn'},
          'not found: %r' % (r,))
    r = await s.task(addr, make_job(['/bin/true'], next_invocation_id(),
                                    envres=('StandardEnvironmentResolver',
                                            {'package.nosuchpackage': '1.0'})))
    check(r == {'status': 1, 'message': 'failed to resolve requested environment',
                'error_class': 'environment_resolver'}, 'resolver: %r' % (r,))
    r = await s.task(addr, make_job(['/bin/true'], next_invocation_id(),
                                    envres=('NoSuchResolver', {})))
    check(r['status'] == 1 and r['error_class'] == 'exception', 'unknown resolver: %r' % (r,))
    r = await s.call(addr, 'task', {'task': 'garbage', 'reply_to': s.addr})
    check(r['status'] == 1 and r['error_class'] == 'exception', 'garbage: %r' % (r,))
    # still serving
    iid, name, args = await run_job(s, addr, ['/bin/true'])
    check(name == 'worker.done', name)


@scenario
async def busy_drop_and_tree_kill(h):
    s, w, addr = await start(h, wcfg='kill_grace = 1.0')
    pidfile = os.path.join(h.tmp, 'daemon.pid')
    # ignores SIGTERM, and leaves a double-forked daemon in its own session
    script = ('trap "" TERM; '
              '( setsid sh -c \'trap "" TERM; echo $$ > %s; exec sleep 1000\' & ) ; '
              'echo started; while :; do sleep 0.1; done' % pidfile)
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sh', '-c', script], iid))
    check(r == {'status': 0}, r)
    r = await s.task(addr, make_job(['/bin/true'], next_invocation_id()))
    check(r == {'status': 2, 'message': 'worker already working on a task'}, 'busy %r' % (r,))
    for _ in range(100):
        if os.path.exists(pidfile) and open(pidfile).read().strip():
            break
        await asyncio.sleep(0.05)
    dpid = int(open(pidfile).read())
    r = await s.call(addr, 'ping')
    check(r == {'ps': 1, 'pv': 0}, 'busy ping %r' % r)
    r = await s.call(addr, 'drop')
    check(r == {}, 'drop reply %r' % r)
    rep = s.report_for(iid)
    check(rep and rep[1] == 'worker.dropped', 'dropped reported before the drop reply')
    args = rep[2]
    _, code, rt = job_result(args['task'].encode('latin1'))
    check(code is None and rt > 0, 'dropped exit code %r' % code)
    check(re.search(r'\n\[WORKER\]\[\d\d\.\d\d\.\d\d \d\d:\d\d:\d\d\] killed by worker\.\n$',
                    args['stdout']), args['stdout'][-200:])
    check(args['stderr'].endswith('killed by worker.\n'), args['stderr'])
    try:
        os.kill(dpid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    check(not alive, 'the daemon %d survived the drop' % dpid)
    kids = os.popen('ps -o pid= --ppid %d' % w.pid).read().split()
    check(kids == [], 'worker still has children %r' % kids)
    r = await s.call(addr, 'drop')
    check(r == {}, 'idle drop %r' % r)


@scenario
async def progress_styles(h):
    s, w, addr = await start(h, config='minimum_progress_reporting_interval = 0.0')
    py = 'import time,sys\nfor i in (10,20,30):\n  print("ALF_PROGRESS %d%%" % i, flush=True); time.sleep(0.3)\n'
    iid, name, args = await run_job(s, addr, ['python3', '-c', py])
    vals = [p for t, i, p in s.progress if i == iid]
    check(vals[-1] == 30 and 10 in vals, 'default regex progress %r' % vals)
    # two unnamed groups (frames done / total) on stderr
    py = 'import time,sys\nfor i in (1,2):\n  sys.stderr.write("frame %d of 4\\n" % i); sys.stderr.flush(); time.sleep(0.3)\n'
    iid, name, args = await run_job(s, addr, ['python3', '-c', py],
                                    err_regex=re.compile(r'frame (\d+) of (\d+)'))
    vals = [p for t, i, p in s.progress if i == iid]
    check(vals and vals[-1] == 50, 'two-group progress %r' % vals)
    py = 'import time\nfor i in (3,):\n  print("done=%d/total=12" % i, flush=True); time.sleep(0.3)\n'
    iid, name, args = await run_job(s, addr, ['python3', '-c', py],
                                    out_regex=re.compile(rb'done=(?P<current>\d+)/total=(?P<total>\d+)'))
    vals = [p for t, i, p in s.progress if i == iid]
    check(vals and vals[-1] == 25, 'named-group progress %r' % vals)
    # a regex with a non-number group and a division by zero: no crash
    py = 'import time\nprint("p x/0", flush=True); print("p 5/0", flush=True); time.sleep(0.3)\nprint("tail")\n'
    iid, name, args = await run_job(s, addr, ['python3', '-c', py],
                                    out_regex=re.compile(rb'p (\w+)/(\d+)'))
    check(name == 'worker.done' and 'tail' in args['stdout'], 'bad numbers handled')


@scenario
async def environment_and_extra_files(h):
    s, w, addr = await start(h)
    py = ('import os,sys\n'
          'print("ARG", sys.argv[1])\n'
          'for k in ("FOO","BAR","LBATTR_frame","LBATTR_name","LBATTR_flag","LBATTR_ratio",'
          '"LBATTR_lst","LIFEBLOOD_RUNTIME_IID","LIFEBLOOD_RUNTIME_TID"):\n'
          '  print(k, "=", os.environ.get(k))\n'
          'print("CWD", os.getcwd())\n'
          'print("EF", os.path.isdir(os.environ["LB_EF_ROOT"]))\n'
          'print("ADDR", os.environ["LIFEBLOOD_RUNTIME_SCHEDULER_ADDR"])\n')
    iid = next_invocation_id()
    job = make_job(['/usr/bin/env', 'python3', ':/scripts/main.py', ':/notakey'], iid, task_id=77,
                   env=[('__setitem__', 'FOO', 'foo'), ('prepend', 'BAR', 'b'),
                        ('append', 'BAR', '${FOO}x')],
                   attrs={'frame': 12, 'name': 'shot$FOO', 'flag': True, 'ratio': 23.976,
                          'lst': [1, 2], '_hidden': 'x'},
                   extra_files={'scripts/main.py': py, 'data.bin': b'\x00\x01'})
    r = await s.task(addr, job)
    check(r == {'status': 0}, r)
    _, name, args = await s.wait_report(iid)
    out = args['stdout']
    for want in ('FOO = foo', 'BAR = b:foox', 'LBATTR_frame = 12', 'LBATTR_name = shotfoo',
                 'LBATTR_flag = True', 'LBATTR_ratio = 23.976', 'LBATTR_lst = None',
                 'LIFEBLOOD_RUNTIME_IID = %d' % iid, 'LIFEBLOOD_RUNTIME_TID = 77',
                 'CWD /usr/bin', 'EF True', 'ADDR 127.0.0.1:', 'ARG :/notakey'):
        check(want in out, '%r not in %r' % (want, out))
    check(job_result(args['task'].encode('latin1'))[1] == 0, 'exit code')


@scenario
async def standard_resolver(h):
    s = await h.scheduler()
    stdres = ('[packages."tool"."1.2.0"]\nenv.TOOL_HOME = "/opt/tool-1.2"\n'
              'env.PATH.prepend = "/opt/tool-1.2/bin"\n'
              '[packages."tool"."1.3.1"]\nenv.TOOL_HOME = "/opt/tool-1.3"\n')
    w = h.worker(['--scheduler-address', s.addr, '--no-loop'], stdres=stdres)
    addr, = await s.wait_worker()
    sh = 'echo "home=$TOOL_HOME user=$USER path=$PATH"'
    iid, name, args = await run_job(s, addr, ['/bin/sh', '-c', sh], envres=(
        'StandardEnvironmentResolver', {'package.tool': '~=1.2.0', 'user': 'artist'}))
    check(re.search(r'home=/opt/tool-1.2 user=artist path=/opt/tool-1.2/bin:', args['stdout']),
          args['stdout'])
    iid, name, args = await run_job(s, addr, ['/bin/sh', '-c', sh], envres=(
        'StandardEnvironmentResolver', {'package.tool': '>=1'}))
    check('home=/opt/tool-1.3 ' in args['stdout'], args['stdout'])
    r = await s.task(addr, make_job(['/bin/true'], next_invocation_id(), envres=(
        'StandardEnvironmentResolver', {'package.tool': '>=2'})))
    check(r.get('error_class') == 'environment_resolver', r)


@scenario
async def extra_file_traversal_refused(h):
    s, w, addr = await start(h)
    r = await s.task(addr, make_job(['/bin/true'], next_invocation_id(),
                                    extra_files={'../escape.txt': 'x'}))
    check(r['status'] == 1 and r['error_class'] == 'exception' and 'escape' in r['message'],
          'traversal %r' % (r,))


@scenario
async def big_output(h):
    mib = int(os.environ.get('LBW_TEST_BIG_MIB', '1024'))
    s, w, addr = await start(h)
    # mib MiB of 100-byte lines (99 characters and a newline), then a 1 MiB
    # line and some binary bytes
    script = ('import sys\nline = b"%%08d" + b"x" * 90 + b"\\n"\nw = sys.stdout.buffer\n'
              'n = %d * 1048576 // 100\n'
              'blk = b"".join(b"%%08d" %% i + b"x" * 91 + b"\\n" for i in range(1000))\n'
              'for i in range(n // 1000): w.write(blk)\n'
              'w.write(b"L" * 1048576 + b"\\n")\n'
              'w.write(b"bin\\xff\\xfe\\x00end\\n")\n' % mib)
    iid, name, args = await run_job(s, addr, ['python3', '-c', script], timeout=600)
    out = args['stdout']
    nblk = mib * 1048576 // 100 // 1000
    check(name == 'worker.done', name)
    lines = out.split('\n')
    check(lines[0].endswith('task initialized'), lines[0])
    body = lines[1:1 + nblk * 1000]
    check(len(body) == nblk * 1000, 'line count %d' % len(body))
    bad = [i for i in (0, 1, 999, 1000, len(body) - 1)
           if not re.fullmatch(r'\[OUT\]\[\d\d:\d\d:\d\d\] %08dx{91}' % (i % 1000), body[i])]
    check(not bad, 'lines %r differ: %r' % (bad, [body[i] for i in bad]))
    check(lines[1 + nblk * 1000].endswith('L' * 1048576), 'the 1 MiB line')
    check(lines[2 + nblk * 1000].endswith('bin\ufffd\ufffd\x00end'), repr(lines[2 + nblk * 1000]))
    hwm = w.vm_hwm_kib()
    print('worker peak RSS %d KiB for %d MiB of output' % (hwm, mib))
    check(hwm < 32 * 1024, 'worker peak RSS %d KiB' % hwm)


@scenario
async def log_command_while_running(h):
    s, w, addr = await start(h)
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sh', '-c', 'echo first; echo e >&2; sleep 0.6; echo second'], iid))
    check(r == {'status': 0}, r)
    await asyncio.sleep(0.3)
    r = await s.call(addr, 'log', {'invoc_id': iid})
    check('first' in r['stdout'] and 'second' not in r['stdout'] and 'e\n' in r['stderr'], r)
    r = await s.call(addr, 'log', {'invoc_id': 424242})
    check(r == {'stdout': '', 'stderr': ''}, 'missing log %r' % r)
    await s.wait_report(iid)


@scenario
async def task_before_hello_reply(h):
    """The scheduler registers a worker on hello and may send it a task before
    the hello reply (with db_uid) has reached it: logs and reports still work."""
    s = await h.scheduler()
    iid = next_invocation_id()
    early = {}
    orig = s.handle

    async def handle(name, args, frame):
        if name == 'worker.hello' and not early:
            early['task'] = await s.call(args['worker_addr'], 'task', {
                'task': lbpeer.latin1(make_job(['/bin/sh', '-c', 'echo early; sleep 2'], iid)),
                'reply_to': s.addr})
        return await orig(name, args, frame)
    s.handle = handle
    h.worker(['--scheduler-address', s.addr, '--no-loop'])
    addr, = await s.wait_worker()
    check(early.get('task') == {'status': 0}, early)
    for _ in range(30):  # the output line may not have been read yet
        r = await s.call(addr, 'log', {'invoc_id': iid})
        if 'early' in r['stdout']:
            break
        await asyncio.sleep(0.05)
    check('early' in r['stdout'], 'log of the early task %r' % r)
    _, name, args = await s.wait_report(iid)
    check(name == 'worker.done' and 'early' in args['stdout'], args['stdout'])


@scenario
async def quit_and_sigterm(h):
    s, w, addr = await start(h)
    r = await s.call(addr, 'quit')
    check(r == {}, r)
    rc = await w.wait_exit()
    check(rc == 0, 'exit status %r' % rc)
    check(any(e[1] == 'worker.bye' for e in s.events), 'no worker.bye')
    # SIGTERM with a running payload: dropped, bye, exit 0
    w2 = h.worker(['--scheduler-address', s.addr, '--no-loop'])
    await s.wait_for(lambda: sum(e[1] == 'worker.hello' for e in s.events) >= 2, 15,
                     'second hello')
    addr2 = [e[2]['worker_addr'] for e in s.events if e[1] == 'worker.hello'][-1]
    iid = next_invocation_id()
    r = await s.task(addr2, make_job(['/bin/sleep', '100'], iid))
    check(r == {'status': 0}, r)
    w2.proc.terminate()
    rc = await w2.wait_exit()
    check(rc == 0, 'exit status after SIGTERM %r' % rc)
    rep = s.report_for(iid)
    check(rep and rep[1] == 'worker.dropped', 'dropped on SIGTERM')


@scenario
async def scheduler_unreachable_then_up(h):
    import socket
    sk = socket.socket()
    sk.bind(('127.0.0.1', 0))
    port = sk.getsockname()[1]
    sk.close()
    w = h.worker(['--scheduler-address', '127.0.0.1:%d' % port, '--no-loop'])
    rc = await w.wait_exit(30)
    check(rc != 0, 'no-loop worker with no scheduler exits non-zero (%r)' % rc)
    w2 = h.worker(['--scheduler-address', '127.0.0.1:%d' % port], wcfg='ping_interval = 0.5')
    await asyncio.sleep(1.5)
    s = await h.scheduler(port=port)
    await s.wait_worker(timeout=30)


@scenario
async def scheduler_restart_reintroduce(h):
    s, w, addr = await start(h, wcfg='ping_interval = 0.3')
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sleep', '100'], iid))
    check(r == {'status': 0}, r)
    # the scheduler restarts and no longer knows the worker: UNKNOWN
    del s.workers[addr]
    await s.wait_for(lambda: addr in s.workers, 20, 'hello again')
    names = [e[1] for e in s.events]
    check('worker.bye' in names, names)
    rep = s.report_for(iid)
    check(rep and rep[1] == 'worker.dropped', 'the running task was dropped')
    i_bye = names.index('worker.bye')
    i_hello = len(names) - 1 - names[::-1].index('worker.hello')
    check(i_bye < i_hello, 'bye before hello %r' % names)


@scenario
async def singleshot(h):
    s, w, addr = await start(h, ['--singleshot'])
    iid, name, args = await run_job(s, addr, ['/bin/true'])
    rc = await w.wait_exit()
    check(rc == 0, rc)


@scenario
async def scheduler_helper_type(h):
    s, w, addr = await start(h, ['--type', 'SCHEDULER_HELPER'])
    check(s.workers[addr]['type'] == 1, 'type %r' % s.workers[addr]['type'])
    await run_job(s, addr, ['/bin/true'])
    check(await w.wait_exit() == 0, 'helper stops after one invocation')


@scenario
async def pool_chain_two_workers(h):
    s = await h.scheduler()
    p = await h.pool()
    ws = [h.worker(['--id', str(i), '--pool-address', p.addr, '--scheduler-address',
                    p.addr + '|' + s.addr, '--no-loop']) for i in range(2)]
    addrs = await s.wait_worker(count=2)
    for a in addrs:
        check(a.startswith(p.addr + '|'), 'pool worker address %r' % a)
    await poll_until(lambda: len(p.states) >= 2, 10, 'IDLE state reports')
    iids = []
    for a in addrs:
        iid = next_invocation_id()
        r = await s.task(a, make_job(['/bin/echo', 'via pool'], iid), reply_to=s.addr)
        check(r == {'status': 0}, r)
        iids.append(iid)
    for iid in iids:
        _, name, args = await s.wait_report(iid)
        check('via pool' in args['stdout'], args['stdout'])
    states = [(wid, st) for t, wid, st in p.states]
    for wid in (0, 1):
        seq = [st for i, st in states if i == wid]
        check(seq[:3] == [1, 2, 1], 'worker %d states %r' % (wid, seq))


@scenario
async def broadcast_discovery(h):
    import socket
    import struct
    s = await h.scheduler()
    port = int(os.environ.get('LBW_TEST_BROADCAST_PORT', '34305'))
    # a second listener on the port, as another worker or pool on this host
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(('0.0.0.0', port))
    other.setblocking(False)
    w = h.worker(['--no-loop'], broadcast=True)
    await poll_until(lambda: 'waiting for a scheduler broadcast' in w.log(), 20, 'listening')
    # junk first: a magic-less datagram and a malformed one are skipped
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b'not a broadcast', ('127.0.0.1', port))
    u.sendto(lbpeer.MAGIC + struct.pack('>II', 1, 2) + b'x{}', ('127.0.0.1', port))
    u.close()
    for _ in range(200):
        # a fresh source port each time: the kernel picks one SO_REUSEPORT
        # listener per unicast datagram by hashing the addresses
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(lbpeer.broadcast_datagram(s.addr, 'test_scheduler'), ('127.0.0.1', port))
        u.close()
        await asyncio.sleep(0.05)
        if s.workers:
            break
    await s.wait_worker()
    # the worker re-sent what it heard to 127.0.0.1 for the other listeners
    resent = None
    for _ in range(100):
        try:
            d = other.recv(65536)
        except BlockingIOError:
            await asyncio.sleep(0.02)
            continue
        if b'lifeblood_scheduler' in d:
            resent = d
            break
    check(resent and s.addr.encode() in resent, 're-broadcast %r' % (resent,))
    other.close()
    check('scheduler found by broadcast: %s' % s.addr in w.log(), 'discovery logged')


# ---- the session: start-up errors, answers to every request, progress, feedback ----

async def call_body(s, dst, command, timeout=5):
    """Like Peer.call with the whole command object given (arguments of any
    JSON type); the reply, or None when none came within timeout."""
    import json
    import uuid
    sid = uuid.uuid4()
    fut = asyncio.get_event_loop().create_future()
    s.waiting[sid] = fut
    try:
        await s.send(dst, json.dumps({'command': command}).encode(), sid)
        f = await asyncio.wait_for(fut, timeout)
        return json.loads(f.body.decode('utf-8'))
    except asyncio.TimeoutError:
        return None
    finally:
        s.waiting.pop(sid, None)


@scenario
async def no_scheduler_address_exits(h):
    """Without an address (and not listening for broadcasts), or with an
    invalid configured one, a --no-loop worker says so and exits non-zero at
    once instead of hanging."""
    w = h.worker(['--no-listen-broadcast', '--no-loop'])
    rc = await w.wait_exit(10)
    check(rc != 0, 'exit status %r' % rc)
    check('no scheduler address' in w.log(), 'the reason is logged')
    w2 = h.worker(['--no-loop'], wcfg='scheduler_address = "127.0.0.1:notaport"')
    rc = await w2.wait_exit(10)
    check(rc != 0, 'exit status with an invalid address %r' % rc)
    check('is not an address chain' in w2.log(), 'the reason is logged')


@scenario
async def unknown_resolver_message(h):
    """A task failure message carries upstream's prefix exactly once."""
    s, w, addr = await start(h)
    r = await s.task(addr, make_job(['/bin/true'], next_invocation_id(),
                                    envres=('NoSuchResolver', {})))
    check(r == {'status': 1, 'error_class': 'exception',
                'message': "error happened: unknown environment resolver 'NoSuchResolver'"},
          'reply %r' % (r,))


@scenario
async def final_progress_reported(h):
    """A payload's last progress value reaches the scheduler before
    worker.done even when it came within the rate-limit window."""
    s, w, addr = await start(h)   # minimum_progress_reporting_interval: 1 s
    py = ('import time\nfor i in range(0, 101, 10):\n'
          '  print("ALF_PROGRESS %d%%" % i, flush=True); time.sleep(0.15)\n')
    iid, name, args = await run_job(s, addr, ['python3', '-c', py])
    check(name == 'worker.done', name)
    vals = [(t, p) for t, i, p in s.progress if i == iid]
    check(vals and vals[-1][1] == 100, 'progress reports %r' % [p for t, p in vals])
    done_at = s.report_for(iid)[0]
    check(vals[-1][0] <= done_at, 'the final progress comes before worker.done')
    # nothing parsed: no progress report at all before done
    iid, name, args = await run_job(s, addr, ['/bin/true'])
    check(not [p for t, i, p in s.progress if i == iid], 'no progress for a silent payload')


@scenario
async def bad_arguments_answered(h):
    """Every known command answers a request with missing or ill-typed
    arguments (the requester would otherwise wait 90 s); the worker serves
    on."""
    s, w, addr = await start(h)
    err = {'stdout': '', 'stderr': '', 'error': 'log: invoc_id must be an integer'}
    for args in ({'invoc_id': 'abc'}, {'invoc_id': 1.5}, {'invoc_id': None}, {},
                 {'invoc_id': [1]}, {'invoc_id': 2 ** 70}, 7, [], 'x'):
        r = await call_body(s, addr, {'name': 'log', 'arguments': args})
        check(r == err, 'log with arguments %r: %r' % (args, r))
    r = await call_body(s, addr, {'name': 'log'})
    check(r == err, 'log without arguments: %r' % (r,))
    for args in ({}, {'task': 5}, {'task': None}, {'task': 'garbage', 'reply_to': 5}, 3, []):
        r = await call_body(s, addr, {'name': 'task', 'arguments': args})
        check(r and r.get('status') == 1 and r.get('error_class') == 'exception',
              'task with arguments %r: %r' % (args, r))
    for args in ({}, {'dst_invoc_id': 'x', 'src_invoc_id': None, 'addressee': 'a',
                      'addressee_timeout': 1, 'message_data_raw': ''},
                 {'dst_invoc_id': 1, 'src_invoc_id': 'y', 'addressee': 'a',
                  'addressee_timeout': 1, 'message_data_raw': ''},
                 {'dst_invoc_id': 1, 'src_invoc_id': None, 'addressee': 5,
                  'addressee_timeout': 'soon', 'message_data_raw': 7}, False):
        r = await call_body(s, addr, {'name': 'invocation_message', 'arguments': args})
        check(r == {'result': 'error-unknown'}, 'invocation_message %r: %r' % (args, r))
    for name, want in (('ping', {'ps': 0, 'pv': 0}), ('drop', {})):
        r = await call_body(s, addr, {'name': name, 'arguments': 'junk'})
        check(r == want, '%s with junk arguments: %r' % (name, r))
    r = await call_body(s, addr, {'name': 'status', 'arguments': 12})
    check(r and r.get('state') == 1, 'status with junk arguments: %r' % (r,))
    iid, name, args = await run_job(s, addr, ['/bin/true'])
    check(name == 'worker.done', 'still serving')


@scenario
async def hello_blackholed_feedback(h):
    """A scheduler address that swallows the connection (a listener whose
    accept queue is full drops every SYN) gets a line while hello waits,
    saying how long and when the call gives up."""
    import socket
    bh = socket.socket()
    bh.bind(('127.0.0.1', 0))
    bh.listen(0)
    port = bh.getsockname()[1]
    fillers = []
    for _ in range(8):   # fill the accept queue; further SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(('127.0.0.1', port))
        except BlockingIOError:
            pass
        fillers.append(c)
    await asyncio.sleep(0.2)
    try:
        w = h.worker(['--scheduler-address', '127.0.0.1:%d' % port, '--no-loop'],
                     wcfg='ping_interval = 0.5')
        await poll_until(lambda: w.log().count('no answer yet') >= 2, 15,
                         'two progress lines while hello waits')
        log = w.log()
        check('saying hello to 127.0.0.1:%d' % port in log, 'the hello is announced')
        check(re.search(r'worker\.hello to 127\.0\.0\.1:%d: no answer yet after \d+\.\d s '
                        r'.*gives up after 90 s' % port, log), 'the line says when: %s'
              % log[-2000:])
    finally:
        for c in fillers:
            c.close()
        bh.close()


@scenario
async def address_change_rehello(h):
    """In a private network namespace (tests/integration/t_worker_readdress.sh):
    when the route to the scheduler starts leaving from another address, the
    worker says bye from the old one and hello from the new one, and serves
    there."""
    import subprocess
    if os.environ.get('LBW_TEST_NETNS') != '1':
        print('SKIP address_change_rehello: needs the private network namespace of '
              't_worker_readdress.sh')
        return

    def ip(*a):
        subprocess.run(['ip'] + list(a), check=True)
    # the scheduler on 10.66.0.1; the route to it leaves from 10.55.0.2
    ip('link', 'set', 'lo', 'up')
    for a in ('10.55.0.2/32', '10.66.0.1/32'):
        ip('addr', 'add', a, 'dev', 'lo')
    ip('route', 'replace', 'local', '10.66.0.1', 'dev', 'lo', 'table', 'local',
       'src', '10.55.0.2')
    s = await lbpeer.Scheduler(host='10.66.0.1').start()
    h.peers.append(s)
    w = h.worker(['--scheduler-address', s.addr, '--no-loop'])
    addr, = await s.wait_worker()
    check(addr.startswith('10.55.0.2:'), 'first address %r' % addr)
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sleep', '100'], iid))
    check(r == {'status': 0}, r)
    # a new address, the route moves to it, the old one goes
    ip('addr', 'add', '10.55.0.3/32', 'dev', 'lo')
    ip('route', 'replace', 'local', '10.66.0.1', 'dev', 'lo', 'table', 'local',
       'src', '10.55.0.3')
    ip('addr', 'del', '10.55.0.2/32', 'dev', 'lo')
    new = await s.wait_for(lambda: [a for a in s.workers if a.startswith('10.55.0.3:')], 30,
                           'hello from the new address')
    names = [(e[1], e[2].get('worker_addr')) for e in s.events]
    check(('worker.bye', addr) in names, 'bye from the old address %r' % names)
    rep = s.report_for(iid)
    check(rep and rep[1] == 'worker.dropped', 'the running invocation was dropped')
    check('re-introducing from the new address' in w.log(), 'the change is logged')
    # (a task before the hello reply is answered BUSY, as during any reintroduce)
    await poll_until(lambda: 'reintroduced' in w.log(), 10, 'the hello reply')
    iid, name, args = await run_job(s, new[0], ['/bin/echo', 'moved'])
    check(name == 'worker.done' and 'moved' in args['stdout'], 'served at the new address')
    check(w.proc.poll() is None, 'the --no-loop worker runs on')


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
