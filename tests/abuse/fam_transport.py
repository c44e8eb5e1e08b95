"""Transport family: preambles, truncated, oversized and inconsistent frames,
bogus lengths, unknown types, slowloris, idle connections, floods from one
source, and src chains naming strangers, dead listeners and host names
(PROTOCOL.md 1). Attackers connect from 127.0.0.2+ so that the scheduler's
own address (127.0.0.1) stays distinguishable."""
import asyncio
import json
import struct
import uuid

import core
from core import Case, show

# outbound bounds assumed by the stranger cases: extra worker fds while
# strangers that never ack hold their connections
OUT_PER_DEST = 16        # one destination, many replies
OUT_TOTAL = 196          # 200 destinations: the worker keeps at most 256 outgoing
                         # connections, a quarter of them for the scheduler
                         # (docs/ARCHITECTURE.md, msgnet), so strangers get 192

Q = struct.Struct('>Q')
HEAD = struct.Struct('>QQQ?H')


def hdr(size, sl, dl, has=1, mtype=0):
    return HEAD.pack(size, sl, dl, has, mtype)


def cases(full):
    out = []

    def add(name, fn, heavy=False, shows=''):
        out.append(Case('transport', name, fn, heavy, shows))

    # ---- preambles --------------------------------------------------------
    pre = [
        ('preamble-len-0', Q.pack(0)),
        ('preamble-len-2^63', Q.pack(1 << 63) + b'x' * 64),
        ('preamble-len-max', Q.pack((1 << 64) - 1) + b'x' * 64),
        ('preamble-len-1MiB-short', Q.pack(1 << 20) + b'127.0.0.2:1'),
        ('preamble-1MiB-sent', Q.pack(1 << 20) + b'1' * (1 << 20)),
        ('preamble-pipe', Q.pack(23) + b'127.0.0.2:1|127.0.0.3:1'),
        ('preamble-bad-utf8', Q.pack(6) + b'\xff\xfe:\xc0\x80'),
        ('preamble-nul', Q.pack(8) + b'\0\0\0\0:\0\0\0'),
        ('preamble-ipv6', Q.pack(7) + b'[::1]:1'),
        ('preamble-colons', Q.pack(5) + b'a:b:c'),
        ('preamble-4-bytes', b'\0\0\0\0'),
        ('preamble-no-port', Q.pack(9) + b'127.0.0.2'),
        ('preamble-port-huge', Q.pack(24) + b'127.0.0.2:99999999999999'),
        ('preamble-then-junk', Q.pack(11) + b'127.0.0.2:1' + bytes(range(256)) * 16),
        ('preamble-only-hold', Q.pack(11) + b'127.0.0.2:1'),
        ('http-get', b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
        ('tls-hello', bytes.fromhex('16030100a5010000a10303') + bytes(160)),
    ]
    for name, data in pre:
        hold = 1.0 if name.endswith('hold') else 0.0
        add(name, lambda c, d=data, h=hold: c.raw(d, hold=h), shows=show(data))

    # ---- frames with inconsistent fields ------------------------------------
    def frames_after_preamble(name, mk, heavy=False):
        async def fn(c):
            data = c.preamble() + mk(c)
            await c.raw(data, read_timeout=0.3)
        add(name, fn, heavy, shows=name)

    own = lambda c: c.addr.encode()  # noqa: E731
    src = b'127.0.0.2:1'
    bad = {
        'size-0': lambda c: hdr(0, 0, 0),
        'size-18': lambda c: hdr(18, 0, 0, 0),
        'size-max': lambda c: hdr((1 << 64) - 1, 0, 0),
        'size-2^63': lambda c: hdr(1 << 63, 11, len(own(c))) + src + own(c),
        'src-len-over-size': lambda c: hdr(40, 1000, 0) + b'x' * 21,
        'dst-len-over-size': lambda c: hdr(40, 0, 1000) + b'x' * 21,
        'lens-overflow': lambda c: hdr(60, 1 << 63, 1 << 63) + b'x' * 41,
        'lens-wrap': lambda c: hdr(60, (1 << 64) - 10, 20) + b'x' * 41,
        'has-session-7': lambda c: hdr(19 + 11 + len(own(c)) + 16, 11, len(own(c)), 7)
        + src + own(c) + uuid.uuid4().bytes,
        'no-room-for-session': lambda c: hdr(19 + 11 + len(own(c)) + 4, 11, len(own(c)), 1)
        + src + own(c) + b'abcd',
        'type-2': lambda c: c.frame(b'{}', src='127.0.0.2:1', mtype=2),
        'type-ffff': lambda c: c.frame(b'{}', src='127.0.0.2:1', mtype=0xffff),
        'type-delivery-error': lambda c: c.frame(json.dumps({'command': {'name': 'ping'}})
                                                 .encode(), src='127.0.0.2:1', mtype=0x100),
        'ping-with-body': lambda c: c.frame(b'x' * 1000, src='127.0.0.2:1', session=None,
                                            mtype=1),
        'ping-with-session': lambda c: c.frame(b'', src='127.0.0.2:1', mtype=1),
        'default-no-session': lambda c: c.frame(json.dumps({'command': {'name': 'ping'}})
                                                .encode(), src='127.0.0.2:1', session=None),
        'dst-stranger': lambda c: c.frame(b'{}', src='127.0.0.2:1', dst='10.255.255.1:1'),
        'dst-empty': lambda c: c.frame(b'{}', src='127.0.0.2:1', dst=''),
        'dst-forward-dead': lambda c: c.frame(b'{}', src='127.0.0.2:1',
                                              dst=c.addr + '|127.0.0.1:1'),
        'dst-1000-hops': lambda c: c.frame(b'{}', src='127.0.0.2:1',
                                           dst='|'.join([c.addr] * 1000)),
        'src-bad-utf8': lambda c: hdr(19 + 4 + len(own(c)) + 16 + 2, 4, len(own(c)))
        + b'\xff\xfe:1' + own(c) + uuid.uuid4().bytes + b'{}',
        'dst-bad-utf8': lambda c: hdr(19 + 11 + 4 + 16 + 2, 11, 4) + src + b'\xc0\x80:1'
        + uuid.uuid4().bytes + b'{}',
        'truncated-header': lambda c: hdr(100, 11, 14)[:13],
        'truncated-body': lambda c: c.frame(b'{"command": {"name": "ping"}}',
                                            src='127.0.0.2:1')[:-5],
        'declared-100MiB-sent-1KiB': lambda c: hdr(100 << 20, 11, len(own(c)), 1)
        + src + own(c) + uuid.uuid4().bytes + b'x' * 1024,
        'declared-4GiB-sent-64KiB': lambda c: hdr(4 << 30, 11, len(own(c)), 1)
        + src + own(c) + uuid.uuid4().bytes + b'x' * 65536,
        'pipelined-1000-pings': lambda c: c.frame(b'', src='127.0.0.2:1', session=None,
                                                  mtype=1) * 1000,
        'pipelined-200-requests': lambda c: b''.join(
            c.frame(json.dumps({'command': {'name': 'nosuch%d' % i}}).encode(),
                    src='127.0.0.2:1') for i in range(200)),
        'random-64KiB': lambda c: bytes((i * 7919 + 13) & 0xff for i in range(65536)),
    }
    for name, mk in bad.items():
        frames_after_preamble('frame-' + name, mk)

    # ---- oversized frames actually sent -------------------------------------
    def big(mib, dst_own=True):
        async def fn(c):
            body = b'{"command": {"name": "ping", "arguments": {"pad": "' + \
                b'A' * (mib << 20) + b'"}}}'
            await c.raw(c.preamble() + c.frame(body, src='127.0.0.2:1',
                                               dst=None if dst_own else '127.0.0.9:9'),
                        read_timeout=3)
        return fn
    for mib in (1, 16, 64) + ((160,) if full else ()):
        add('frame-%dMiB-sent' % mib, big(mib), heavy=mib >= 64)
    add('frame-16MiB-stranger-dst', big(16, False))

    def partials(size_mib, sent_mib):
        async def fn(c):
            conns = []
            try:
                for i in range(3):
                    r, w = await c.connect('127.0.0.%d' % (3 + i))
                    w.write(c.preamble() + hdr(size_mib << 20, 11, len(c.addr), 1)
                            + b'127.0.0.2:1' + c.addr.encode() + uuid.uuid4().bytes)
                    conns.append(w)
                    chunk = b'B' * (1 << 20)
                    try:
                        for _ in range(sent_mib):   # part of each frame
                            w.write(chunk)
                            await w.drain()
                    except (BrokenPipeError, ConnectionResetError):
                        pass                        # refused by the worker: fine
                c.delivered()
                await asyncio.sleep(0.3)
            finally:
                for w in conns:
                    w.close()
        return fn
    # over the worker's frame limit (refused at the header), and under it
    # (held against the inbound memory budget, then let go)
    add('three-partial-160MiB-frames', partials(160, 40))
    add('three-partial-60MiB-frames', partials(60, 40))

    # ---- slowloris ---------------------------------------------------------
    def slow(n_conns, seconds):
        async def fn(c):
            data = c.preamble() + c.frame(b'{"command": {"name": "ping"}}', src='127.0.0.2:1')
            per = max(1, len(data) // 20)
            chunks = [(data[i:i + per], seconds / 20) for i in range(0, len(data) - 1, per)]
            await asyncio.gather(*[c.raw(b'', src_ip='127.0.0.4', chunks=chunks,
                                         read_timeout=0.1) for _ in range(n_conns)])
        return fn
    add('slowloris-1x2s', slow(1, 2.0), heavy=True)
    add('slowloris-50x2s', slow(50, 2.0), heavy=True)

    # ---- idle connections and floods -------------------------------------------
    def idle(n, preamble, src_ip='127.0.0.5', seconds=1.0):
        async def fn(c):
            socks = []
            try:
                for _ in range(n):
                    s = c.sock(src_ip)
                    socks.append(s)
                await asyncio.sleep(0.3)
                if preamble:
                    for s in socks:
                        try:
                            s.send(c.preamble())
                        except OSError:
                            pass
                c.delivered()                # the ping goes out while they are held
                await asyncio.sleep(seconds)
                # the scheduler's own request still works while they are open,
                # on a connection of its own opened now (as after its idle
                # connections were closed)
                c.drop_pooled()
                r = await c.command('ping', {}, 1.0)
                if not isinstance(r, dict) or 'ps' not in r:
                    raise AssertionError('ping during %d idle connections: %r' % (n, r))
            finally:
                for s in socks:
                    s.close()
        return fn
    # 4200 silent connections: more than the listen cap (issue class:
    # connection exhaustion) — always run
    for n in (100, 1000, 4200):
        add('idle-%d-silent' % n, idle(n, False), heavy=n == 1000)
    add('idle-1000-after-preamble', idle(1000, True), heavy=True)
    if full:
        add('idle-4200-after-preamble', idle(4200, True), heavy=True)

    def flood(n, per_conn):
        async def fn(c):
            frm = c.preamble() + c.frame(b'', src='127.0.0.2:1', session=None, mtype=1) * per_conn
            socks = []
            try:
                for i in range(n):
                    s = c.sock('127.0.0.6')
                    socks.append(s)
                    if len(socks) >= 200:
                        await asyncio.sleep(0.01)
                        for x in socks:
                            try:
                                x.send(frm)
                            except OSError:
                                pass
                            x.close()
                        socks = []
                        c.delivered()
                await asyncio.sleep(0.01)
                for x in socks:
                    try:
                        x.send(frm)
                    except OSError:
                        pass
            finally:
                for x in socks:
                    x.close()
        return fn
    add('flood-2000-connects', flood(2000, 1), heavy=True)
    add('flood-400-connects-50-frames', flood(400, 50), heavy=True)

    # ---- src chains: replies to strangers ---------------------------------------
    ping_body = json.dumps({'command': {'name': 'ping'}}).encode()

    def reply_to(src_chain, n=1):
        async def fn(c):
            for _ in range(n):
                try:
                    await c.request(ping_body, src=src_chain)
                except ConnectionError:
                    pass                 # refusing the frame (closing) is fine
            await asyncio.sleep(0.2)
        return fn
    for chain in ('127.0.0.1:1', '127.0.0.1:1|127.0.0.1:2', '10.255.255.1:9',
                  'nonexistent.invalid:80', 'localhost:1', 'a' * 300 + ':1', ':1', '127.0.0.1:',
                  '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:-1', '255.255.255.255:1',
                  '0.0.0.0:1', '[::1]:1', '|||', 'x' * 4096, '\u00e9t\u00e9:1',
                  '1.2.3.4.5:1', '127.0.0.1:1 ', ' 127.0.0.1:1'):
        add('src-' + show(chain, 24), reply_to(chain), shows=show(chain))
    add('src-dead-x50', reply_to('127.0.0.1:1', 50))
    add('src-hostname-x20', reply_to('nonexistent-lbw.invalid:1', 20), heavy=True)

    def strangers(n, mode, per=1):
        """n listeners that never read, never ack, or close at once; each
        named as the src of `per` ping requests."""
        async def fn(c):
            held, servers = [], []

            async def never_ack(r, w):
                held.append(w)
                if mode == 'no-read':
                    w.transport.pause_reading()
                try:
                    await asyncio.sleep(30)
                except BaseException:  # noqa: BLE001
                    pass

            async def close_at_once(r, w):
                w.close()
            try:
                for _ in range(n):
                    srv = await asyncio.start_server(close_at_once if mode == 'close'
                                                     else never_ack, '127.0.0.7', 0)
                    servers.append(srv)
                for srv in servers:
                    a = '127.0.0.7:%d' % srv.sockets[0].getsockname()[1]
                    for _ in range(per):
                        await c.request(ping_body, src=a)
                await asyncio.sleep(0.5)
                if mode != 'close':
                    # outbound connections are bounded while the strangers hold them
                    extra = core.fd_count(c.w.pid) - c.idle_fds
                    bound = OUT_PER_DEST if n == 1 else OUT_TOTAL
                    if extra > bound:
                        raise AssertionError('%d strangers that never ack hold %d more fds '
                                             '(bound %d)' % (n, extra, bound))
            finally:
                for srv in servers:
                    srv.close()
                for w in held:
                    w.close()
        return fn
    add('strangers-50-close-at-once', strangers(50, 'close'))
    add('strangers-200-no-ack', strangers(200, 'read-no-ack'))
    add('stranger-1-no-ack-x200', strangers(1, 'read-no-ack', 200))
    add('stranger-1-no-read-x2000', strangers(1, 'no-read', 2000), heavy=True)
    return out
