"""A protocol-faithful Lifeblood scheduler peer, standard library only.

It speaks docs/PROTOCOL.md sections 1-2 and 5 from the scheduler's side: framed
messages with acks and the connection preamble, connection reuse with a
SYSTEM_PING first, replies paired by session; the scheduler's commands
(worker.hello/bye/ping/done/dropped/progress_report, spawn, tupdateattribs,
forward_invocation_message, pulse) with upstream's replies; the commands a
scheduler sends to workers (task, drop, log, ping, quit, status); the
discovery broadcast; and a pool message proxy that forwards chains and
answers worker.state_report. Jobs are real pickles of classes named as
upstream's (tests/python/lifeblood). Everything received is recorded for
assertions.
"""
import asyncio
import itertools
import json
import os
import pickle
import random
import re
import struct
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
from lifeblood.enums import WorkerType  # noqa: E402
from lifeblood.invocationjob import (InvocationJob, InvocationEnvironment,  # noqa: E402
                                     InvocationRequirements)
from lifeblood.environment_resolver import EnvironmentResolverArguments  # noqa: E402
from lifeblood.taskspawn import TaskSpawn, NewTask  # noqa: E402

DEFAULT, SYSTEM_PING = 0, 1
HEAD = struct.Struct('>QQQ?H')
MAGIC = '=∈⭕∋='.encode('utf-8')
ALF = re.compile(rb'ALF_PROGRESS\s+(\d+)%')
# WorkerState
OFF, IDLE, BUSY, ERROR, INVOKING, UNKNOWN = 0, 1, 2, 3, 4, 5


def latin1(b):
    return b.decode('latin1')


class SpawnUnpickler(pickle.Unpickler):
    """The scheduler's remapping unpickler (docs/PROTOCOL.md 3.5): the payload-side
    classes of lifeblood_connection load as the lifeblood.* ones; nothing else
    but plain data is allowed."""

    MAP = {'TaskSpawn': TaskSpawn, 'NewTask': NewTask,
           'EnvironmentResolverArguments': EnvironmentResolverArguments}

    def find_class(self, module, name):
        last = module.rsplit('.', 1)[-1]
        if (last == 'lifeblood_connection' or module.endswith('lifeblood_client.submitting')
                or module in ('lifeblood.taskspawn', 'lifeblood.environment_resolver')) \
                and name in self.MAP:
            return self.MAP[name]
        raise pickle.UnpicklingError('global %s.%s not allowed' % (module, name))


def load_spawn(data):
    import io
    return SpawnUnpickler(io.BytesIO(data)).load()


def make_job(args, invocation_id, task_id=1, env=(), extra_files=None, attrs=None,
             out_regex=ALF, err_regex=None, envres=None, good=(0,), retry=()):
    """An InvocationJob pickle as the scheduler builds it."""
    e = InvocationEnvironment()
    e.__dict__ = {'_InvocationEnvironment__action_queue': [tuple(a) for a in env]}
    req = InvocationRequirements()
    p = '_InvocationRequirements__'
    req.__dict__ = {p + 'groups': set(), p + 'worker_type': WorkerType.STANDARD,
                    p + 'min_cpu_count': 0, p + 'min_memory_bytes': 0, p + 'min_gpu_count': 0,
                    p + 'min_gpu_memory_bytes': 0, p + 'pref_cpu_count': None,
                    p + 'pref_memory_bytes': None, p + 'pref_gpu_count': None,
                    p + 'pref_gpu_memory_bytes': None}
    er = None
    if envres is not None:
        er = EnvironmentResolverArguments()
        er.__dict__ = {'_EnvironmentResolverArguments__resolver_name': envres[0],
                       '_EnvironmentResolverArguments__args': dict(envres[1])}
    j = InvocationJob()
    q = '_InvocationJob__'
    j.__dict__ = {q + 'args': list(args), q + 'env': e, q + 'invocation_id': invocation_id,
                  q + 'task_id': task_id, q + 'out_progress_regex': out_regex,
                  q + 'err_progress_regex': err_regex, q + 'requirements': req,
                  q + 'priority': 0.0, q + 'envres_args': er, q + 'exitcode': None,
                  q + 'running_time': None, q + 'good_exitcodes': set(good),
                  q + 'retry_exitcodes': set(retry), q + 'attrs': dict(attrs or {}),
                  q + 'extra_files': dict(extra_files or {})}
    return pickle.dumps(j)


def job_result(pk):
    """(invocation id, exit code, running time) of a returned job pickle."""
    j = pickle.loads(pk)
    q = '_InvocationJob__'
    return j.__dict__[q + 'invocation_id'], j.__dict__[q + 'exitcode'], \
        j.__dict__[q + 'running_time']


def encode_frame(src, dst, body, session=None, mtype=DEFAULT):
    s, d = src.encode(), dst.encode()
    extra = 16 if session else 0
    size = 8 + 8 + 1 + 2 + len(s) + len(d) + extra + len(body)
    return (HEAD.pack(size, len(s), len(d), session is not None, mtype)
            + s + d + (session.bytes if session else b'') + body)


class Frame:
    __slots__ = ('src', 'dst', 'session', 'type', 'body')


async def read_frame(reader, limit=1 << 34):
    head = await reader.readexactly(27)
    size, sl, dl, has, mtype = HEAD.unpack(head)
    if size > limit:
        raise ValueError('frame too large')
    rest = await reader.readexactly(size - 19)
    f = Frame()
    f.src = rest[:sl].decode()
    f.dst = rest[sl:sl + dl].decode()
    off = sl + dl
    f.session = uuid.UUID(bytes=rest[off:off + 16]) if has else None
    off += 16 if has else 0
    f.type = mtype
    f.body = rest[off:]
    return f


class Peer:
    """A listener with an identity plus a sender; subclasses handle requests."""

    def __init__(self, host='127.0.0.1', port=0):
        self.host, self.port = host, port
        self.addr = None
        self.server = None
        self.waiting = {}          # session -> Future
        self.conns = {}            # first hop -> list of (reader, writer, lock)
        self.frames_in = 0
        self.handlers_running = set()
        self.events = []           # (time, name, args) of every request received

    async def start(self):
        self.server = await asyncio.start_server(self._serve, self.host, self.port,
                                                 limit=1 << 20)
        self.port = self.server.sockets[0].getsockname()[1]
        self.addr = '%s:%d' % (self.host, self.port)
        return self

    async def close(self):
        if self.server:
            self.server.close()
        for lst in self.conns.values():
            for r, w, _ in lst:
                w.close()
        self.conns = {}

    async def _serve(self, reader, writer):
        try:
            n, = struct.unpack('>Q', await reader.readexactly(8))
            if n > 4096:
                raise ValueError('preamble too long')
            await reader.readexactly(n)
            while True:
                try:
                    f = await asyncio.wait_for(read_frame(reader), 300)
                except asyncio.IncompleteReadError:
                    break
                self.frames_in += 1
                ack = await self.on_frame(f)
                writer.write(b'\x01' if ack else b'\x00')
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def on_frame(self, f):
        first = f.dst.split('|')[0]
        if first != self.addr:
            return True                       # not ours: drop, ack 1
        if '|' in f.dst:
            return await self.forward(f)
        if f.type == SYSTEM_PING:
            return True
        fut = self.waiting.get(f.session)
        if fut is not None:
            if not fut.done():
                fut.set_result(f)
            return True
        t = asyncio.ensure_future(self._handle(f))
        self.handlers_running.add(t)
        t.add_done_callback(self.handlers_running.discard)
        return True

    async def forward(self, f):
        return False                          # plain peers do not forward

    async def _handle(self, f):
        try:
            msg = json.loads(f.body.decode('utf-8'))
            cmd = msg['command']
            name, args = cmd['name'], cmd.get('arguments') or {}
        except Exception as e:  # noqa: BLE001 - a peer logs and drops, as upstream
            print('peer %s: bad request from %s: %r' % (self.addr, f.src, e), file=sys.stderr)
            return
        self.events.append((time.monotonic(), name, args, f.src))
        reply = await self.handle(name, args, f)
        if reply is not None:
            await self.send(f.src, json.dumps(reply).encode(), f.session)

    async def handle(self, name, args, frame):
        return None

    async def _conn(self, hop):
        lst = self.conns.setdefault(hop, [])
        for c in lst:
            if not c[2].locked():
                await c[2].acquire()
                # reuse: SYSTEM_PING first, as upstream does
                try:
                    c[1].write(encode_frame(self.addr, hop, b'', None, SYSTEM_PING))
                    await c[1].drain()
                    a = await asyncio.wait_for(c[0].readexactly(1), 90)
                    if a == b'\x01':
                        return c
                except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                    pass
                lst.remove(c)
                c[1].close()
                c[2].release()
                break
        host, port = hop.rsplit(':', 1)
        r, w = await asyncio.open_connection(host, int(port))
        a = self.addr.encode()
        w.write(struct.pack('>Q', len(a)) + a)
        c = (r, w, asyncio.Lock())
        await c[2].acquire()
        lst.append(c)
        return c

    async def send(self, dst, body, session=None, mtype=DEFAULT, src=None, attempts=2):
        """Sends one frame and waits for its ack (2 attempts, 1 s back-off)."""
        hop = dst.split('|')[0]
        err = None
        for i in range(attempts):
            try:
                c = await self._conn(hop)
            except OSError as e:
                err = e
                await asyncio.sleep(1 << i)
                continue
            try:
                c[1].write(encode_frame(src or self.addr, dst, body, session, mtype))
                await c[1].drain()
                a = await asyncio.wait_for(c[0].readexactly(1), 90)
                c[2].release()
                if a == b'\x01':
                    return
                err = ConnectionError('ack 0')
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
                err = e
                self.conns.get(hop, []).remove(c) if c in self.conns.get(hop, []) else None
                c[1].close()
                c[2].release()
            await asyncio.sleep(1 << i)
        raise ConnectionError('send to %s failed: %r' % (dst, err))

    async def call(self, dst, name, args=None, timeout=90):
        """A JSON command; returns the reply object."""
        s = uuid.uuid4()
        fut = asyncio.get_event_loop().create_future()
        self.waiting[s] = fut
        try:
            body = json.dumps({'command': {'name': name, 'arguments': args or {}}}).encode()
            await self.send(dst, body, s)
            f = await asyncio.wait_for(fut, timeout)
            return json.loads(f.body.decode('utf-8'))
        finally:
            self.waiting.pop(s, None)


class Scheduler(Peer):
    """The scheduler side: registers workers, records reports."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.db_uid = random.getrandbits(64) | (1 << 63)
        self.workers = {}          # worker_addr -> dict(state, res, type, hostname)
        self.reports = []          # (time, name, args)
        self.progress = []         # (time, invocation_id, progress)
        self.cond = asyncio.Condition()
        self.ping_state_override = None
        self.spawns = []           # (time, TaskSpawn stand-in, raw pickle bytes)
        self.attr_updates = []     # (time, task_id, to_update, to_delete)
        self.messages = []         # (time, forward_invocation_message args, result)
        self.invocations = {}      # invocation id -> {'worker': addr, 'running': bool}
        self.spawn_reply = None    # override of the spawn reply (tests)
        self.forward_override = None  # async f(args) -> result, or None
        self.report_hook = None    # async f(name, args), awaited before the report's reply
        self._task_ids = itertools.count(5000)
        self.hellos = []           # (time, worker_addr, WorkerResources, args) of every hello
        self.hello_hook = None     # async f(args), awaited before a hello's reply

    async def _note(self):
        async with self.cond:
            self.cond.notify_all()

    async def wait_for(self, pred, timeout=30, what='condition'):
        deadline = time.monotonic() + timeout
        async with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('timed out waiting for %s' % what)
                try:
                    await asyncio.wait_for(self.cond.wait(), left)
                except asyncio.TimeoutError:
                    pass

    async def handle(self, name, args, frame):
        now = time.monotonic()
        try:
            if name == 'worker.hello':
                res = pickle.loads(args['worker_res'].encode('latin1'))
                self.hellos.append((now, args['worker_addr'], res, dict(args)))
                if self.hello_hook is not None:
                    await self.hello_hook(args)
                self.workers[args['worker_addr']] = {
                    'state': IDLE, 'res': res, 'type': args['worker_type'],
                    'hostname': args.get('meta_hostname'), 'hello_at': now}
                return {'db_uid': self.db_uid}
            if name == 'worker.bye':
                w = self.workers.get(args['worker_addr'])
                if w:
                    w['state'] = OFF
                return {'ok': True}
            if name == 'worker.ping':
                if self.ping_state_override is not None:
                    return {'state': self.ping_state_override}
                w = self.workers.get(args['worker_addr'])
                return {'state': w['state'] if w else UNKNOWN}
            if name in ('worker.done', 'worker.dropped'):
                self.reports.append((now, name, args))
                if self.report_hook is not None:
                    await self.report_hook(name, args)
                iid = job_result(args['task'].encode('latin1'))[0]
                if iid in self.invocations:
                    self.invocations[iid]['running'] = False
                return {'ok': True}
            if name == 'spawn':
                raw = args['task'].encode('latin1')
                self.spawns.append((now, load_spawn(raw), raw))
                if self.spawn_reply is not None:
                    return self.spawn_reply
                return {'status': 0, 'task_id': next(self._task_ids)}
            if name == 'tupdateattribs':
                self.attr_updates.append((now, args['task_id'], args['attribs_to_update'],
                                          args['attribs_to_delete']))
                return {'ok': True}
            if name == 'forward_invocation_message':
                result = await self.forward_invocation_message(args)
                self.messages.append((time.monotonic(), args, result))
                return {'result': result}
            if name == 'worker.progress_report':
                self.progress.append((now, args['invocation_id'], args['progress']))
                return {'ok': True}
            if name == 'pulse':
                return {'ok': True}
            return None
        finally:
            await self._note()

    async def forward_invocation_message(self, args):
        """Upstream's relay: the invocation must be running (else
        error-invoc-not-running); its worker gets invocation_message and the
        worker's result comes back; timeouts and transfer failures map to
        error-delivery-timeout and error-transfer."""
        if self.forward_override is not None:
            return await self.forward_override(args)
        inv = self.invocations.get(args['dst_invoc_id'])
        if inv is None or not inv['running']:
            return 'error-invoc-not-running'
        try:
            r = await self.call(inv['worker'], 'invocation_message', {
                'dst_invoc_id': args['dst_invoc_id'], 'src_invoc_id': args['src_invoc_id'],
                'addressee': args['addressee'], 'addressee_timeout': args['addressee_timeout'],
                'message_data_raw': args['message_data_raw']}, timeout=args['overall_timeout'])
            return r['result']
        except asyncio.TimeoutError:
            return 'error-delivery-timeout'
        except (ConnectionError, OSError):
            return 'error-transfer'

    async def task(self, worker_addr, job_pickle, reply_to=None):
        """Sends a task the way the scheduler does; marks the worker BUSY on success."""
        iid = job_result(job_pickle)[0]
        # INVOKING counts as running for messages, as upstream's relay allows
        self.invocations[iid] = {'worker': worker_addr, 'running': True}
        try:
            r = await self.call(worker_addr, 'task', {'task': latin1(job_pickle),
                                                      'reply_to': reply_to or self.addr})
        except BaseException:
            self.invocations[iid]['running'] = False
            raise
        w = self.workers.get(worker_addr)
        if w and r.get('status') == 0:
            w['state'] = BUSY
        if r.get('status') != 0:
            self.invocations[iid]['running'] = False
        return r

    def report_for(self, invocation_id):
        for t, name, args in self.reports:
            if job_result(args['task'].encode('latin1'))[0] == invocation_id:
                return t, name, args
        return None

    async def wait_report(self, invocation_id, timeout=30):
        return await self.wait_for(lambda: self.report_for(invocation_id), timeout,
                                   'the report of invocation %d' % invocation_id)

    async def wait_worker(self, timeout=15, count=1):
        await self.wait_for(lambda: len(self.workers) >= count, timeout, 'worker.hello')
        return list(self.workers)[:count]


class PoolProxy(Peer):
    """A pool's message proxy: forwards chains (1.7), takes worker.state_report."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.states = []           # (time, worker_id, state)

    async def forward(self, f):
        rest = f.dst.split('|', 1)[1]
        try:
            await self.send(rest, f.body, f.session, f.type, src=self.addr + '|' + f.src)
            return True
        except ConnectionError:
            return False

    async def handle(self, name, args, frame):
        if name == 'worker.state_report':
            self.states.append((time.monotonic(), args['worker_id'], args['state']))
            return {'ok': True}
        return None


def broadcast_datagram(message_address, ident='lifeblood_scheduler'):
    body = json.dumps({'message_address': message_address,
                       'worker': message_address.rsplit(':', 1)[0] + ':1384',
                       'ui': message_address.rsplit(':', 1)[0] + ':1385'}).encode()
    i = ident.encode()
    return MAGIC + struct.pack('>II', len(i), len(body)) + i + body


def send_broadcast(message_address, port=34305, host='127.0.0.1'):
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.sendto(broadcast_datagram(message_address), (host, port))
    s.close()


_ids = itertools.count(1000)


def next_invocation_id():
    return next(_ids)
