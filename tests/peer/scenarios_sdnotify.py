"""Service-manager integration (systemd Type=notify) of the real
lifeblood-worker binary against the reference scheduler peer: a socket of
the test's own stands in for the manager's NOTIFY_SOCKET (abstract and path
names). READY=1 only once the hello has been answered, STATUS= with the
state and the running invocation, WATCHDOG=1 from the event loop,
STOPPING=1 at SIGTERM, and the notification variables kept from payloads.
Usage: scenarios_sdnotify.py [NAME...]"""
import asyncio
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, run  # noqa: E402
from lbpeer import make_job, next_invocation_id  # noqa: E402
from scenarios import check  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


class Manager:
    """Receives notification datagrams the way a service manager does."""

    def __init__(self, h, abstract):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.name = '@lbw-notify-test-%d-%s' % (os.getpid(), os.path.basename(h.tmp))
            self.sock.bind('\0' + self.name[1:])
        else:
            self.name = os.path.join(h.tmp, 'notify.sock')
            self.sock.bind(self.name)
        self.sock.setblocking(False)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return

    async def wait(self, pred, timeout, what):
        for _ in range(int(timeout / 0.02)):
            self.drain()
            for m in self.messages:
                if pred(m):
                    return m
            await asyncio.sleep(0.02)
        raise AssertionError('no %s notification within %s s; got %r'
                             % (what, timeout, self.messages))

    def close(self):
        self.sock.close()


async def notify_session(h, abstract):
    m = Manager(h, abstract)
    try:
        s = await h.scheduler()
        replied = asyncio.Event()
        orig = s.handle

        async def handle(name, args, frame):
            if name == 'worker.hello':
                # the scheduler takes its time to answer: nothing is
                # reported ready before the answer is in
                await asyncio.sleep(0.5)
                m.drain()
                check(not any('READY=1' in x for x in m.messages),
                      'READY=1 before the hello was answered: %r' % m.messages)
                r = await orig(name, args, frame)
                replied.set()
                return r
            return await orig(name, args, frame)
        s.handle = handle
        w = h.worker(['--scheduler-address', s.addr, '--no-loop'],
                     env={'NOTIFY_SOCKET': m.name, 'WATCHDOG_USEC': '200000'})
        addr, = await s.wait_worker()
        ready = await m.wait(lambda x: 'READY=1' in x, 10, 'READY=1')
        check(replied.is_set(), 'READY=1 after the hello reply')
        check('STATUS=idle; registered with the scheduler at %s' % s.addr in ready,
              'status with READY: %r' % ready)
        check(any(x.startswith('STATUS=saying hello to the scheduler at %s' % s.addr)
                  for x in m.messages[:m.messages.index(ready)]), 'status before hello')
        # the event loop feeds the watchdog at half the interval (100 ms)
        n0 = sum(x == 'WATCHDOG=1' for x in m.messages)
        await m.wait(lambda x: sum(y == 'WATCHDOG=1' for y in m.messages) >= n0 + 3, 5,
                     'three WATCHDOG=1')

        # a payload sees none of the manager's variables, and the status
        # names the running invocation
        iid = next_invocation_id()
        r = await s.task(addr, make_job(['/bin/sh', '-c', 'env; sleep 1'], iid))
        check(r == {'status': 0}, 'task reply %r' % (r,))
        await m.wait(lambda x: x.startswith('STATUS=running invocation %d ' % iid), 5,
                     'running status')
        _, name, args = await s.wait_report(iid)
        check(name == 'worker.done', name)
        for var in ('NOTIFY_SOCKET=', 'WATCHDOG_USEC=', 'WATCHDOG_PID='):
            check(var not in args['stdout'], '%s leaked into the payload' % var)
        n_idle = sum(x.startswith('STATUS=idle') for x in m.messages)
        await m.wait(lambda x: sum(y.startswith('STATUS=idle') for y in m.messages) > n_idle,
                     5, 'idle status after the invocation')

        # SIGTERM: STOPPING=1 first, then the running payload is dropped
        iid = next_invocation_id()
        r = await s.task(addr, make_job(['/bin/sleep', '100'], iid))
        check(r == {'status': 0}, 'task reply %r' % (r,))
        await m.wait(lambda x: x.startswith('STATUS=running invocation %d ' % iid), 5,
                     'running status')
        w.proc.terminate()
        stopping = await m.wait(lambda x: x.startswith('STOPPING=1'), 10, 'STOPPING=1')
        check('Terminated received' in stopping, 'stopping status %r' % stopping)
        rc = await w.wait_exit()
        check(rc == 0, 'exit status %r' % rc)
        rep = s.report_for(iid)
        check(rep and rep[1] == 'worker.dropped', 'dropped on SIGTERM')
    finally:
        m.close()


@scenario
async def notify_abstract_socket(h):
    await notify_session(h, True)


@scenario
async def notify_path_socket(h):
    await notify_session(h, False)


@scenario
async def notify_absent_is_noop(h):
    """No NOTIFY_SOCKET, or one nobody listens on: the worker serves."""
    s = await h.scheduler()
    for env in ({}, {'NOTIFY_SOCKET': '@lbw-nobody-listens-%d' % os.getpid()},
                {'NOTIFY_SOCKET': 'relative/notify'}):
        n = sum(e[1] == 'worker.hello' for e in s.events)
        w = h.worker(['--scheduler-address', s.addr, '--no-loop'], env=env)
        await s.wait_for(lambda: sum(e[1] == 'worker.hello' for e in s.events) > n, 15,
                         'hello with %r' % env)
        addr = [e[2]['worker_addr'] for e in s.events if e[1] == 'worker.hello'][-1]
        r = await s.call(addr, 'ping')
        check(r == {'ps': 0, 'pv': 0}, 'ping %r with %r' % (r, env))
        w.proc.terminate()
        check(await w.wait_exit() == 0, 'exit with %r' % env)
    check('neither an absolute path' in h.workers[-1].log(), 'bad NOTIFY_SOCKET said')


def tree_state(root):
    """Every path under root with its size and modification time."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


async def installed_as_the_service_runs_it(h):
    """The installed package run as its unit runs it (LBW_INSTALLED=1, root):
    as the lifeblood user, LIFEBLOOD_CONFIG_LOCATION=/etc/lifeblood, in its
    state directory. READY=1 after the hello, the payload finds the
    installed lifeblood_connection, the invocation log is under
    /var/lib/lifeblood/worker/logs, nothing under /etc changes, STOPPING=1
    and a clean exit at SIGTERM."""
    m = Manager(h, True)  # abstract: no file permissions between root and lifeblood
    s = await h.scheduler()
    etc_before = tree_state('/etc/lifeblood')
    env = {'PATH': '/usr/bin:/bin', 'HOME': '/var/lib/lifeblood', 'LANG': 'C.UTF-8',
           'LIFEBLOOD_CONFIG_LOCATION': '/etc/lifeblood',
           'STATE_DIRECTORY': '/var/lib/lifeblood/worker',
           'NOTIFY_SOCKET': m.name, 'WATCHDOG_USEC': '30000000'}
    logfile = os.path.join(h.tmp, 'service.log')
    p = subprocess.Popen(['setpriv', '--reuid=lifeblood', '--regid=lifeblood', '--init-groups',
                          BIN, '--loglevel', 'DEBUG', 'worker', '--scheduler-address', s.addr,
                          '--no-loop'],
                         cwd='/var/lib/lifeblood/worker', env=env, stdin=subprocess.DEVNULL,
                         stdout=open(logfile, 'wb'), stderr=subprocess.STDOUT)
    try:
        addr, = await s.wait_worker()
        await m.wait(lambda x: 'READY=1' in x, 10, 'READY=1')
        iid = next_invocation_id()
        r = await s.task(addr, make_job(
            ['/bin/sh', '-c', 'python3 -c "import lifeblood_connection as c; print(c.__file__)"'
             ' && id -un && ls -d /var/lib/lifeblood/worker/logs/db_*/invocations/*'], iid))
        check(r == {'status': 0}, 'task reply %r' % (r,))
        _, name, args = await s.wait_report(iid)
        out = args['stdout']
        check(name == 'worker.done', '%s: %s' % (name, out))
        check('/usr/share/lifeblood-worker/runtime/lifeblood_connection.py' in out,
              'the installed lifeblood_connection: %r' % out)
        check('] lifeblood\n' in out, 'payload user: %r' % out)
        check('/var/lib/lifeblood/worker/logs/db_%016x/invocations/%d' % (s.db_uid, iid) in out,
              'invocation log directory: %r' % out)
        check(tree_state('/etc/lifeblood') == etc_before, 'something under /etc/lifeblood changed')
        p.terminate()
        await m.wait(lambda x: x.startswith('STOPPING=1'), 10, 'STOPPING=1')
        for _ in range(500):
            if p.poll() is not None:
                break
            await asyncio.sleep(0.02)
        check(p.returncode == 0, 'exit status %r' % p.returncode)
    except BaseException:
        with open(logfile, 'rb') as f:
            print(f.read().decode('utf-8', 'replace')[-8000:])
        raise
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        m.close()


if os.environ.get('LBW_INSTALLED') == '1':
    scenario(installed_as_the_service_runs_it)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
