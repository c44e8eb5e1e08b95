"""Fault scenarios for the worker (usage: faults.py NAME...):

scheduler_killed_running   the scheduler is SIGKILLed while a payload runs
                           and comes back on the same port: the worker
                           reintroduces itself (bye, the running invocation
                           is killed and reported worker.dropped, hello) —
                           upstream's reintroduce; the scheduler's hello
                           handling then puts the task back to READY.
scheduler_killed_finished  the payload finishes while the scheduler is
                           down: worker.done fails after its attempts, the
                           result is dropped (logged as an ERROR, logs and
                           processes cleaned up), never reported later; the
                           worker reintroduces itself once the scheduler is
                           back and takes new tasks.
logdir_full                the log root is a 256 KiB tmpfs (private mount
                           namespace) and a payload writes 4 MiB: the
                           invocation is reported, the worker keeps serving.
logdir_removed             the log root is deleted while a payload writes:
                           reported, and the next task works.
nofile_64                  RLIMIT_NOFILE 64: 200 connections at once, then
                           the scheduler's ping and a task still work.
scheduler_stalled_at_stop  SIGTERM while the scheduler is stopped: bye gets
                           no reply; the worker exits 0 when its wait ends.
task_during_shutdown       SIGTERM while tasks keep arriving: each is
                           refused or accepted-and-reported-dropped, the
                           worker exits 0 within its kill grace, no payload
                           survives it."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import core  # noqa: E402
import harness  # noqa: E402
import lbpeer  # noqa: E402

SCEN = {}


def scenario(f):
    SCEN[f.__name__] = f
    return f


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class SchedProc:
    """sched_proc.py in its own process; events() are its JSON lines."""

    def __init__(self, port):
        self.port = port
        self.lines = []
        self.p = None

    async def start(self):
        self.p = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(HERE, 'sched_proc.py'), str(self.port),
            stdout=subprocess.PIPE)
        first = json.loads(await asyncio.wait_for(self.p.stdout.readline(), 10))
        self.addr = first['ready']
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        while True:
            line = await self.p.stdout.readline()
            if not line:
                return
            self.lines.append((time.monotonic(), json.loads(line)))

    def kill(self):
        self.p.send_signal(signal.SIGKILL)

    async def wait_event(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, ev in self.lines:
                if pred(ev):
                    return ev
            await asyncio.sleep(0.05)
        raise AssertionError('timed out waiting for %s; got %s' % (
            what, [e for _, e in self.lines if e.get('name') != 'worker.ping']))

    async def close(self):
        if self.p.returncode is None:
            self.kill()
        await self.p.wait()
        self.reader.cancel()


async def sched_worker(h, wcfg, args=()):
    port = free_port()
    sp = await SchedProc(port).start()
    w = h.worker(['--scheduler-address', sp.addr] + list(args), wcfg=wcfg)
    ev = await sp.wait_event(lambda e: e.get('name') == 'worker.hello', 15, 'hello')
    client = await lbpeer.Peer().start()
    h.peers.append(client)
    return sp, w, ev['addr'], client


async def task(client, addr, argv, report_to, iid=None, mark=None):
    iid = iid or lbpeer.next_invocation_id()
    env = [('__setitem__', core.MARK, mark)] if mark else []
    r = await client.call(addr, 'task', {'task': lbpeer.latin1(lbpeer.make_job(argv, iid,
                                                                               env=env)),
                                         'reply_to': report_to}, timeout=10)
    return iid, r


async def no_marked(mark, timeout=5):
    for _ in range(int(timeout / 0.05)):
        if not core.marked_processes(mark):
            return
        await asyncio.sleep(0.05)
    raise AssertionError('payload processes left: %s' % core.marked_processes(mark))


@scenario
async def scheduler_killed_running(h):
    sp, w, addr, client = await sched_worker(h, 'ping_interval = 0.5\nkill_grace = 2\n')
    mark = uuid.uuid4().hex
    iid, r = await task(client, addr, ['/bin/sh', '-c', 'sleep 30'], sp.addr, mark=mark)
    check(r == {'status': 0}, 'task %r' % (r,))
    await asyncio.sleep(0.3)
    sp.kill()
    await sp.close()
    await asyncio.sleep(0.7)
    sp2 = await SchedProc(sp.port).start()
    h.extra.append(sp2)
    ev = await sp2.wait_event(lambda e: e.get('name') == 'worker.dropped' and e.get('iid') == iid,
                              20, 'worker.dropped of the running invocation')
    check(ev.get('exitcode') is None, 'dropped exit code %r' % (ev,))
    await sp2.wait_event(lambda e: e.get('name') == 'worker.hello', 10, 'the worker re-registers')
    names = [e['name'] for _, e in sp2.lines if e['name'] in ('worker.bye', 'worker.dropped',
                                                              'worker.hello')]
    check(names[:3] == ['worker.bye', 'worker.dropped', 'worker.hello'],
          'reintroduce order %r' % names)
    await no_marked(mark)
    iid2, r = await task(client, addr, ['/bin/true'], sp2.addr)
    check(r == {'status': 0}, 'task after the scheduler came back %r' % (r,))
    await sp2.wait_event(lambda e: e.get('name') == 'worker.done' and e.get('iid') == iid2, 10,
                         'done of the next task')


@scenario
async def scheduler_killed_finished(h):
    sp, w, addr, client = await sched_worker(h, 'ping_interval = 1\n')
    mark = uuid.uuid4().hex
    iid, r = await task(client, addr, ['/bin/sh', '-c', 'sleep 0.6; echo done'], sp.addr,
                        mark=mark)
    check(r == {'status': 0}, 'task %r' % (r,))
    sp.kill()
    await sp.close()
    # the payload ends, the report fails after its attempts
    for _ in range(200):
        if 'reporting the invocation' in w.log() and 'failed' in w.log().split(
                'reporting the invocation', 1)[1]:
            break
        await asyncio.sleep(0.05)
    check('reporting the invocation' in w.log(), 'the failed report is logged')
    await no_marked(mark)
    inv_dirs = [os.path.join(dp) for dp, dn, fn in os.walk(w.logroot) if dp.endswith('/%d' % iid)]
    check(not inv_dirs, 'invocation log directory kept: %s' % inv_dirs)
    sp2 = await SchedProc(sp.port).start()
    h.extra.append(sp2)
    await sp2.wait_event(lambda e: e.get('name') == 'worker.hello', 15, 'the worker re-registers')
    await asyncio.sleep(1.5)
    late = [e for _, e in sp2.lines if e.get('name') in ('worker.done', 'worker.dropped')]
    check(not late, 'a result reported after the scheduler came back: %r (now documented as '
          'dropped)' % late)
    iid2, r = await task(client, addr, ['/bin/true'], sp2.addr)
    check(r == {'status': 0}, 'task after the scheduler came back %r' % (r,))
    await sp2.wait_event(lambda e: e.get('name') == 'worker.done' and e.get('iid') == iid2, 10,
                         'done of the next task')


async def plain(h, wcfg='', env=None, prefix=None):
    s = await h.scheduler()
    args = ['--scheduler-address', s.addr, '--no-loop']
    w = h.worker(args, wcfg=wcfg, env=env)
    addr, = await s.wait_worker()
    return s, w, addr


@scenario
async def logdir_full(h):
    # the campaign's harness runs the whole scenario inside `unshare -m`
    s, w, addr = await plain(h)
    os.makedirs(w.logroot, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k', 'lbwfull', w.logroot], check=True)
    try:
        iid = lbpeer.next_invocation_id()
        r = await s.task(addr, lbpeer.make_job(
            ['python3', '-c', 'import sys\nfor i in range(4096): sys.stdout.write("y"*1023+"\\n")'],
            iid))
        check(r == {'status': 0} or r.get('status') == 1, 'task %r' % (r,))
        if r == {'status': 0}:
            _, name, args = await s.wait_report(iid, 30)
            check(name == 'worker.done', name)
        r = await asyncio.wait_for(s.call(addr, 'ping'), 1)
        check(r.get('ps') == 0, 'ping after %r' % (r,))
        check(w.proc.poll() is None, 'worker alive')
    finally:
        subprocess.run(['umount', '-l', w.logroot])
    iid = lbpeer.next_invocation_id()
    r = await s.task(addr, lbpeer.make_job(['/bin/echo', 'again'], iid))
    check(r == {'status': 0}, 'task after the disk has room again %r' % (r,))
    _, name, args = await s.wait_report(iid, 10)
    check('again' in args['stdout'], args['stdout'])


@scenario
async def logdir_removed(h):
    import shutil
    s, w, addr = await plain(h)
    iid = lbpeer.next_invocation_id()
    r = await s.task(addr, lbpeer.make_job(
        ['/bin/sh', '-c', 'for i in $(seq 30); do echo line $i; sleep 0.03; done'], iid))
    check(r == {'status': 0}, 'task %r' % (r,))
    await asyncio.sleep(0.3)
    shutil.rmtree(w.logroot)
    _, name, args = await s.wait_report(iid, 20)
    check(name == 'worker.done', name)
    r = await asyncio.wait_for(s.call(addr, 'ping'), 1)
    check(r.get('ps') == 0, 'ping %r' % (r,))
    iid = lbpeer.next_invocation_id()
    r = await s.task(addr, lbpeer.make_job(['/bin/echo', 'again'], iid))
    check(r == {'status': 0}, 'task after the log root was removed %r' % (r,))
    _, name, args = await s.wait_report(iid, 10)
    check('again' in args['stdout'], 'the next task logs again: %r' % args['stdout'])


@scenario
async def nofile_64(h):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))   # inherited by the worker
    try:
        s, w, addr = await plain(h)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    lim = open('/proc/%d/limits' % w.pid).read()
    check(any(l.startswith('Max open files') and ' 64 ' in l for l in lim.splitlines()),
          'worker limit: %s' % lim)
    host, port = addr.rsplit(':', 1)
    socks = []
    for _ in range(200):
        x = socket.socket()
        x.setblocking(False)
        x.bind(('127.0.0.2', 0))
        try:
            x.connect((host, int(port)))
        except BlockingIOError:
            pass
        socks.append(x)
    await asyncio.sleep(0.5)
    for x in socks:
        x.close()
    await asyncio.sleep(0.5)
    r = await asyncio.wait_for(s.call(addr, 'ping'), 2)
    check(r.get('ps') == 0, 'ping after the fd flood %r' % (r,))
    for i in range(3):
        iid = lbpeer.next_invocation_id()
        r = await s.task(addr, lbpeer.make_job(['/bin/echo', 'n%d' % i], iid))
        check(r == {'status': 0}, 'task %r' % (r,))
        _, name, args = await s.wait_report(iid, 10)
        check(name == 'worker.done' and 'n%d' % i in args['stdout'], args['stdout'])
    check(w.proc.poll() is None, 'worker alive')


@scenario
async def task_during_shutdown(h):
    s, w, addr = await plain(h, wcfg='kill_grace = 1\n')
    mark = uuid.uuid4().hex
    iid = lbpeer.next_invocation_id()
    r = await s.task(addr, lbpeer.make_job(['/bin/sh', '-c', 'trap "" TERM; sleep 30'], iid,
                                           env=[('__setitem__', core.MARK, mark)]))
    check(r == {'status': 0}, 'first task %r' % (r,))
    w.proc.send_signal(signal.SIGTERM)
    replies = []
    for _ in range(20):
        try:
            r = await asyncio.wait_for(s.call(addr, 'task', {
                'task': lbpeer.latin1(lbpeer.make_job(['/bin/sh', '-c', 'sleep 30'],
                                                      lbpeer.next_invocation_id(),
                                                      env=[('__setitem__', core.MARK, mark)])),
                'reply_to': s.addr}, timeout=3), 3)
            replies.append(r)
        except (ConnectionError, OSError, asyncio.TimeoutError) as e:
            replies.append(type(e).__name__)
        if w.proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    code = await w.wait_exit(15)
    check(code == 0, 'exit code %r' % code)
    for r in replies:
        check(not isinstance(r, dict) or r.get('status') in (1, 2),
              'a task during shutdown was accepted: %r' % (r,))
    check(any(isinstance(r, dict) and r.get('status') == 1 and r.get('error_class') == 'stopping'
              for r in replies) or all(not isinstance(r, dict) or r.get('status') == 2
                                       for r in replies), 'replies %r' % replies)
    rep = s.report_for(iid)
    check(rep is not None and rep[1] == 'worker.dropped', 'the running task is reported dropped')
    await no_marked(mark)


@scenario
async def scheduler_stalled_at_stop(h):
    """SIGTERM while the scheduler is stopped (SIGSTOP): worker.bye gets no
    reply; the worker must still exit 0 once its wait runs out, not crash."""
    sp, w, addr, client = await sched_worker(h, '')
    h.extra.append(sp)
    os.kill(sp.p.pid, signal.SIGSTOP)
    try:
        w.proc.send_signal(signal.SIGTERM)
        code = await w.wait_exit(100)
    finally:
        os.kill(sp.p.pid, signal.SIGCONT)
    check(code == 0, 'exit status %r after a bye without reply (negative: killed by that '
          'signal)' % code)
    check('double free' not in w.log() and 'Sanitizer' not in w.log(), w.log()[-500:])


def main(argv):
    names = argv[1:] or sorted(SCEN)
    failed = 0
    for name in names:
        h = harness.Harness(name)
        h.extra = []
        ok = False
        t0 = time.monotonic()
        loop = asyncio.get_event_loop()
        try:
            loop.run_until_complete(asyncio.wait_for(SCEN[name](h), 120))
            ok = True
        except BaseException as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            print('scenario %s FAILED: %r' % (name, e))
        finally:
            for sp in h.extra:
                loop.run_until_complete(sp.close())
            loop.run_until_complete(h.close(ok))
        print('scenario %s %s (%.1f s)' % (name, 'passed' if ok else 'FAILED',
                                           time.monotonic() - t0))
        failed += not ok
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
