"""The campaign's machinery: a live worker, a scheduler peer that never
unpickles what it receives except through the allowlisting unpickler, raw
connection helpers, and the invariants checked after every case:

* the worker process is alive and answers a scheduler `ping` sent while the
  case is under way within PING_S (1 s) — a frozen event loop fails here;
* within SETTLE_S its RSS is back to at most idle + RSS_SLACK and its open fd
  count to at most idle + FD_SLACK;
* nothing it returned to the scheduler (worker.done/dropped jobs, spawn
  pickles) contains a global outside upstream's shapes (safepickle);
* no process carrying the campaign's marker outlives the case.
A case is an async function of a Ctx; it raises AssertionError for its own,
family-specific failures."""
import asyncio
import json
import os
import re
import signal
import socket
import struct
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'peer'))
sys.path.insert(0, HERE)
import lbpeer  # noqa: E402
import safepickle  # noqa: E402

PING_S = float(os.environ.get('ABUSE_PING_S', '1.0'))
SETTLE_S = float(os.environ.get('ABUSE_SETTLE_S', '5.0'))
# a sanitizer build keeps freed memory in quarantine: t_abuse.sh raises this there
RSS_SLACK_KIB = int(os.environ.get('ABUSE_RSS_SLACK_MIB', '16')) * 1024
FD_SLACK = 8
MARK = 'LBW_ABUSE_MARK'
WCFG = 'ping_interval = 3600\nkill_grace = 1\nruntime_request_timeout = 2\n'


class Case:
    __slots__ = ('family', 'name', 'fn', 'heavy', 'shows')

    def __init__(self, family, name, fn, heavy=False, shows=''):
        self.family, self.name, self.fn, self.heavy = family, name, fn, heavy
        self.shows = shows or name


def show(b, n=60):
    """A short printable form of a hostile input for the failure list."""
    if isinstance(b, str):
        b = b.encode('utf-8', 'surrogatepass')
    r = repr(b[:n])
    return r + ('...(%d bytes)' % len(b) if len(b) > n else '')


class CampaignScheduler(lbpeer.Scheduler):
    """The reference scheduler peer, except that returned pickles are only
    ever decoded by the allowlisting unpickler; violations are recorded."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.violations = []       # (what, message)
        self.reps = []             # (time, name, args, invocation id or None)
        self.busy = False

    async def _handle(self, f):
        # late replies (after a case gave up on them) are not requests: drop
        try:
            msg = json.loads(f.body.decode('utf-8'))
            msg['command']['name']
        except Exception:  # noqa: BLE001
            return
        await super()._handle(f)

    async def handle(self, name, args, frame):
        now = time.monotonic()
        try:
            if name in ('worker.done', 'worker.dropped'):
                iid = None
                try:
                    job = safepickle.check_job(args['task'].encode('latin1'))
                    iid = job.__dict__.get('_InvocationJob__invocation_id')
                except Exception as e:  # noqa: BLE001 - any refusal is a violation
                    self.violations.append((name, '%s: %s' % (type(e).__name__, e)))
                self.reps.append((now, name, args, iid))
                self.busy = False
                return {'ok': True}
            if name == 'spawn':
                raw = args['task'].encode('latin1')
                try:
                    safepickle.check_spawn(raw)
                except safepickle.Refused as e:
                    self.violations.append(('spawn', 'Refused: %s' % e))
                    return {'status': 1, 'task_id': None}
                except Exception:  # noqa: BLE001 - garbage runs nothing: refused, as upstream
                    return {'status': 1, 'task_id': None}
                self.spawns.append((now, None, raw))
                return {'status': 0, 'task_id': next(self._task_ids)}
            if name == 'worker.hello':
                try:
                    res = safepickle.SafeUnpickler(args['worker_res'].encode('latin1')).load()
                except Exception as e:  # noqa: BLE001
                    self.violations.append(('worker.hello', str(e)))
                    res = None
                self.workers[args['worker_addr']] = {'state': lbpeer.IDLE, 'res': res,
                                                     'type': args.get('worker_type'),
                                                     'hostname': args.get('meta_hostname'),
                                                     'hello_at': now}
                return {'db_uid': self.db_uid}
            if name == 'worker.ping':
                if args.get('worker_addr') not in self.workers:
                    return {'state': lbpeer.UNKNOWN}
                return {'state': lbpeer.BUSY if self.busy else lbpeer.IDLE}
            if name in ('forward_invocation_message',):
                return {'result': 'error-invoc-not-running'}
        finally:
            await self._note()
        return await super().handle(name, args, frame)


def proc_status(pid):
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            out[k] = v.strip()
    return out


def rss_kib(pid):
    return int(proc_status(pid)['VmRSS'].split()[0])


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def descendants(pid):
    kids = {}
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % p) as f:
                st = f.read()
            ppid = int(st.rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(p))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def marked_processes(mark):
    """Pids whose environment carries MARK=mark (a case's payload tree)."""
    needle = ('%s=%s' % (MARK, mark)).encode()
    out = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % p, 'rb') as f:
                if needle in f.read().split(b'\0'):
                    out.append(int(p))
        except OSError:
            pass
    return out


class Ctx:
    """What a case works with. `delivered()` tells the runner that the
    hostile input is in (the concurrent ping goes out then)."""

    def __init__(self, h, tmp):
        self.h, self.tmp = h, tmp
        self.s = None
        self.w = None
        self.addr = None
        self.rt = None
        self.idle_rss = self.idle_fds = None
        self._delivered = None
        self.restarts = 0
        self.notes = []

    # ---- worker lifecycle ------------------------------------------------
    async def start(self):
        if self.s is None:
            self.s = CampaignScheduler()
            await self.s.start()
            self.h.peers.append(self.s)
        before = set(self.s.workers)
        self.w = self.h.worker(['--scheduler-address', self.s.addr, '--no-loop'], wcfg=WCFG)
        await self.s.wait_for(lambda: set(self.s.workers) - before, 15, 'worker.hello')
        self.addr = sorted(set(self.s.workers) - before)[0]
        self.host, port = self.addr.rsplit(':', 1)
        self.port = int(port)
        m = None
        for _ in range(100):
            m = re.search(r'runtime API on (\d+\.\d+\.\d+\.\d+):(\d+)', self.w.log())
            if m:
                break
            await asyncio.sleep(0.02)
        self.rt = (m.group(1), int(m.group(2))) if m else None
        if self.rt is None:
            self.rt = await self._runtime_from_payload()
        await self.warm_up()

    async def _runtime_from_payload(self):
        r, args = await self.run_task(['/bin/sh', '-c', 'echo RT=$LIFEBLOOD_RUNTIME_SCHEDULER_ADDR'])
        m = re.search(r'RT=(\S+):(\d+)', args['stdout'] if args else '')
        return (m.group(1), int(m.group(2))) if m else ('127.0.0.1', 1)

    async def warm_up(self):
        """One benign task, one ping, one runtime connection; then the idle
        baseline is the larger of a few samples."""
        await self.run_task(['/bin/true'])
        await self.ping()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(*self.rt), 2)
            w.write(struct.pack('>QII', 1, 1, 0))
            await asyncio.wait_for(r.read(8), 2)
            w.close()
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.2)
        self.idle_rss = max(rss_kib(self.w.pid) for _ in range(3))
        self.idle_fds = max(fd_count(self.w.pid) for _ in range(3))

    def alive(self):
        return self.w.proc.poll() is None

    async def restart(self, why):
        """Ends the worker and its whole tree at once (it may be frozen) and
        starts a fresh one, so one failure does not spill into the next case."""
        self.restarts += 1
        pid = self.w.pid
        tree = descendants(pid) if self.alive() else []
        for p in [pid] + tree:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.w.proc.wait(10)
        except Exception:  # noqa: BLE001
            pass
        self.s.workers.pop(self.addr, None)
        self.s.conns.pop(self.addr, None)
        self.s.busy = False
        await self.start()

    # ---- talking to the worker -------------------------------------------
    def delivered(self):
        if self._delivered is not None and not self._delivered.done():
            self._delivered.set_result(True)

    async def ping(self, timeout=None):
        return await asyncio.wait_for(self.s.call(self.addr, 'ping', timeout=timeout or PING_S),
                                      timeout or PING_S)

    async def request(self, body, reply_timeout=None, src=None, dst=None, session=None):
        """A DEFAULT frame with a fresh session from the scheduler peer; the
        reply object (or the raw body if it is not JSON) when reply_timeout is
        given, None when no reply came in time."""
        s = session or uuid.uuid4()
        fut = asyncio.get_event_loop().create_future()
        self.s.waiting[s] = fut
        try:
            await self.send_frame(dst or self.addr, body, s, src=src)
            if reply_timeout is None:
                return None
            try:
                f = await asyncio.wait_for(fut, reply_timeout)
            except asyncio.TimeoutError:
                return None
            try:
                return json.loads(f.body.decode('utf-8'))
            except ValueError:
                return f.body
        finally:
            self.s.waiting.pop(s, None)

    async def send_frame(self, dst, body, session, src=None):
        """One frame on the scheduler peer's connection; the case counts as
        delivered once the bytes are written, before the ack (a worker that
        freezes while parsing must not hide behind a late ack)."""
        hop = dst.split('|')[0]
        c = await self.s._conn(hop)
        ok = False
        try:
            c[1].write(lbpeer.encode_frame(src or self.s.addr, dst, body, session))
            await c[1].drain()
            self.delivered()
            a = await asyncio.wait_for(c[0].readexactly(1), 90)
            ok = a == b'\x01'
            if not ok:
                raise ConnectionError('ack 0')
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError) as e:
            raise ConnectionError('send to %s failed: %r' % (dst, e))
        finally:
            if not ok:
                lst = self.s.conns.get(hop, [])
                if c in lst:
                    lst.remove(c)
                c[1].close()
            c[2].release()

    async def command(self, name, args, reply_timeout=3.0):
        body = json.dumps({'command': {'name': name, 'arguments': args}}).encode()
        return await self.request(body, reply_timeout)

    async def send_task(self, pickle_bytes, reply_timeout=5.0, reply_to=None):
        """A task command with raw pickle bytes; returns (reply, report args
        or None). A task the worker accepts must be reported."""
        n = len(self.s.reps)
        r = await self.command('task', {'task': pickle_bytes.decode('latin1'),
                                        'reply_to': reply_to or self.s.addr}, reply_timeout)
        if isinstance(r, dict) and r.get('status') == 0:
            self.s.busy = True
            try:
                await self.s.wait_for(lambda: len(self.s.reps) > n, 30, 'the report')
            except AssertionError:
                raise AssertionError('task accepted but not reported within 30 s')
            return r, self.s.reps[n][2]
        return r, None

    async def run_task(self, args, **kw):
        iid = lbpeer.next_invocation_id()
        return await self.send_task(lbpeer.make_job(args, iid, **kw))

    def drop_pooled(self):
        """Closes the scheduler peer's pooled connections to the worker, so
        that its next request needs a new connection."""
        for r, w, lock in self.s.conns.pop(self.addr, []):
            w.close()

    async def connect(self, src_ip='127.0.0.2', target=None):
        host, port = target or (self.host, self.port)
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(src_ip, 0)), 5)

    def sock(self, src_ip='127.0.0.2', target=None, timeout=5):
        """A blocking-free raw socket (for floods of thousands)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src_ip, 0))
        try:
            s.connect(target or (self.host, self.port))
        except BlockingIOError:
            pass
        return s

    async def raw(self, data, src_ip='127.0.0.2', read=True, hold=0.0, chunks=None,
                  read_timeout=0.5, target=None):
        """Connects, writes data (or chunks with a delay each), optionally
        holds the connection, reads whatever comes back until EOF or
        read_timeout; returns the bytes read. Closing is always done."""
        r, w = await self.connect(src_ip, target)
        got = b''
        try:
            try:
                if chunks:
                    for piece, delay in chunks:
                        w.write(piece)
                        await w.drain()
                        self.delivered()
                        await asyncio.sleep(delay)
                else:
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            self.delivered()
            if hold:
                await asyncio.sleep(hold)
            if read:
                t_end = time.monotonic() + read_timeout
                while time.monotonic() < t_end:
                    try:
                        c = await asyncio.wait_for(r.read(65536), t_end - time.monotonic())
                    except (asyncio.TimeoutError, ConnectionError, OSError):
                        break
                    if not c:
                        break
                    got += c
                    if len(got) > 1 << 20:
                        break
        finally:
            w.close()
        return got

    def preamble(self, addr='127.0.0.2:1'):
        a = addr.encode()
        return struct.pack('>Q', len(a)) + a

    def frame(self, body=b'', src=None, dst=None, session=True, mtype=0):
        return lbpeer.encode_frame(src or self.s.addr, dst or self.addr, body,
                                   uuid.uuid4() if session is True else session, mtype)


async def run_case(ctx, case):
    """Runs one case with the invariants around it; returns None or the
    failure text."""
    fails = []
    viol0 = len(ctx.s.violations)
    ctx._delivered = asyncio.get_event_loop().create_future()
    task = asyncio.ensure_future(case.fn(ctx))
    await asyncio.wait([task, ctx._delivered], timeout=120,
                                 return_when=asyncio.FIRST_COMPLETED)
    # concurrent pings: from the moment the input is in until the case ends,
    # every 0.2 s, each answered within PING_S
    await asyncio.sleep(0.02)
    while True:
        try:
            await ctx.ping()
        except Exception as e:  # noqa: BLE001
            fails.append('no ping reply within %.1f s during the case (%s)'
                         % (PING_S, type(e).__name__))
            break
        if task.done():
            break
        await asyncio.wait([task], timeout=0.2)
    if not fails or task.done():
        try:
            await asyncio.wait_for(asyncio.shield(task), 150)
        except asyncio.TimeoutError:
            fails.append('the case did not finish in 150 s')
        except AssertionError as e:
            fails.append(str(e))
        except Exception as e:  # noqa: BLE001
            fails.append('case error %s: %s' % (type(e).__name__, e))
    if not task.done():
        task.cancel()
        try:
            await task
        except BaseException:  # noqa: BLE001
            pass
    if not ctx.alive():
        fails.append('the worker died (exit status %r)' % ctx.w.proc.returncode)
    elif not fails:
        try:
            await ctx.ping()
        except Exception as e:  # noqa: BLE001
            fails.append('no ping reply within %.1f s after the case (%s)'
                         % (PING_S, type(e).__name__))
        # settle: back near idle RSS and fd count
        deadline = time.monotonic() + SETTLE_S
        while ctx.alive():
            rss, fds = rss_kib(ctx.w.pid), fd_count(ctx.w.pid)
            if rss <= ctx.idle_rss + RSS_SLACK_KIB and fds <= ctx.idle_fds + FD_SLACK:
                break
            if time.monotonic() > deadline:
                fails.append('not back near idle after %.0f s: RSS %d KiB (idle %d), %d fds '
                             '(idle %d)' % (SETTLE_S, rss, ctx.idle_rss, fds, ctx.idle_fds))
                break
            await asyncio.sleep(0.05)
    for what, msg in ctx.s.violations[viol0:]:
        fails.append('%s returned to the scheduler a pickle outside upstream\'s shapes: %s'
                     % (what, msg[:200]))
    if fails:
        if ctx.alive():
            ctx.notes.append(ctx.w.log()[-3000:])
        await ctx.restart('; '.join(fails))
        return '; '.join(fails)
    return None
