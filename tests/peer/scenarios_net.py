"""Integration scenarios for the worker's network surfaces under hostile
use: a flood of silent connections while the scheduler works, another
local user on the runtime API port, scheduler addresses given as names
(resolved before the loop; a name that does not resolve says so), and the
scheduler allowlist. Usage: scenarios_net.py [NAME...]"""
import asyncio
import os
import re
import resource
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
from lbpeer import encode_frame, SYSTEM_PING  # noqa: E402
from scenarios import check, start, run_job, poll_until  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def dial(src_ip, addr):
    host, port = addr.rsplit(':', 1)
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.bind((src_ip, 0))
    c.setblocking(False)
    try:
        c.connect((host, int(port)))
    except BlockingIOError:
        pass
    return c


def ping_frame(src, dst):
    pre = struct.pack('>Q', len(src)) + src.encode()
    return pre + encode_frame(src, dst, b'', None, SYSTEM_PING)


def try_ping(src_ip, addr, timeout=5):
    """A SYSTEM_PING from src_ip; returns the ack byte, or None if closed."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.bind((src_ip, 0))
    c.settimeout(timeout)
    try:
        c.connect(tuple([addr.rsplit(':', 1)[0], int(addr.rsplit(':', 1)[1])]))
        c.sendall(ping_frame('%s:1' % src_ip, addr))
        b = c.recv(1)
        return b[0] if b else None
    except OSError:
        return None
    finally:
        c.close()


@scenario
async def silent_flood(h):
    """4,200 silent connections from 70 addresses: the scheduler's ping and
    task still get through at once; the flood is named in a WARNING."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    s, w, addr = await start(h)
    flood = []
    for i in range(70):
        for _ in range(60):
            try:
                flood.append(dial('127.0.0.%d' % (10 + i), addr))
            except OSError:
                break
    await asyncio.sleep(1.0)
    t0 = time.monotonic()
    r = await s.call(addr, 'ping')
    took = time.monotonic() - t0
    check(r is not None, 'ping answered under the flood')
    check(took < 2.0, 'ping took %.2f s under the flood' % took)
    _, name, args = await run_job(s, addr, ['/bin/true'])
    check(name == 'worker.done', 'task done under the flood: %s' % name)
    log = w.log()
    check('connection flood from 127.0.0.' in log or 'connections open (the limit)' in log,
          'the flood is named')
    print('flood: %d connections opened; scheduler ping answered in %.3f s'
          % (len(flood), took))
    for c in flood:
        c.close()


def runtime_addr(w):
    m = re.search(r'runtime API on (127\.0\.0\.1:\d+)', w.log())
    return m.group(1) if m else None


@scenario
async def runtime_stranger(h):
    """Another local user (nobody) is refused on the runtime API port with
    a WARNING naming its uid; the payload's own user is served."""
    if os.geteuid() != 0:
        print('SKIP: needs root to act as another user')
        return
    s, w, addr = await start(h)
    await poll_until(lambda: runtime_addr(w), 5, 'the runtime address in the log')
    host, port = runtime_addr(w).split(':')
    client = ('import socket,struct,sys\n'
              'c=socket.create_connection(("%s",%s)); c.settimeout(5)\n'
              'c.sendall(struct.pack(">QII",1,1,0))\n'
              'try:\n b=c.recv(8)\nexcept OSError:\n b=b""\n'
              'print("GOT", len(b))\n' % (host, port))
    out = await asyncio.get_event_loop().run_in_executor(None, lambda: subprocess.run(
        ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'python3', '-c',
         client], capture_output=True, text=True, timeout=20))
    check('GOT 0' in out.stdout, 'stranger refused: %r %r' % (out.stdout, out.stderr))
    out = await asyncio.get_event_loop().run_in_executor(None, lambda: subprocess.run(
        ['python3', '-c', client], capture_output=True, text=True, timeout=20))
    check('GOT 8' in out.stdout, 'own user served: %r %r' % (out.stdout, out.stderr))
    await poll_until(lambda: 'refusing a runtime API connection from uid 65534' in w.log(), 5,
                     'the refusal logged')


@scenario
async def unresolvable_scheduler(h):
    """A scheduler name that does not resolve is reported as such (and
    tried again later)."""
    w = h.worker(['--scheduler-address', 'no-such-host.invalid:1386'])
    await poll_until(lambda: 'cannot resolve no-such-host.invalid: ' in w.log(), 15,
                     'the name reported')
    log = w.log()
    check('No route to host' not in log, 'no misleading route error')


@scenario
async def named_scheduler(h):
    """A scheduler given by name is resolved once, before the transport
    sees it."""
    s = await h.scheduler()
    port = s.addr.rsplit(':', 1)[1]
    w = h.worker(['--scheduler-address', 'localhost:%s' % port, '--no-loop'])
    addr, = await s.wait_worker()
    check('saying hello to 127.0.0.1:%s' % port in w.log(), 'numeric after resolving')


@scenario
async def scheduler_allowlist(h):
    """worker.scheduler_allow: the scheduler (127.0.0.1) works, another
    source is refused once-a-minute logged; a bad entry stops the start."""
    s, w, addr = await start(h, wcfg='scheduler_allow = ["127.0.0.1/32"]')
    check(try_ping('127.0.0.1', addr) == 1, 'allowed source acked')
    for _ in range(3):
        check(try_ping('127.0.0.9', addr) is None, 'other source refused')
    r = await s.call(addr, 'ping')
    check(r is not None, 'the scheduler still served')
    await poll_until(lambda: 'refusing connections from 127.0.0.9' in w.log(), 5, 'logged')
    check(w.log().count('refusing connections from 127.0.0.9') == 1, 'logged once')
    bad = h.worker(['--scheduler-address', s.addr, '--no-loop'], wcfg='scheduler_allow = ["x"]')
    check(await bad.wait_exit(15) == 2, 'a bad allowlist is an error at start')
    check("'x' is not an IP address or network" in bad.log(), 'says what is wrong')


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
