"""Unit tests of daemon/runtime/lifeblood_connection.py against a fake worker
socket. The fake records every byte the module sends and answers with
scripted bytes; the main cases replay the captured conversations between a
payload and the upstream worker (tests/fixtures/streams/0[3-6]_runtime_*):
the module must send exactly the bytes upstream's module sent.

Run: python3 -m unittest discover -s tests/unit_py
"""
import os
import pickle
import socket
import struct
import sys
import threading
import time
import unittest
import uuid

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'daemon', 'runtime'))
import lifeblood_connection as lc  # noqa: E402

STREAMS = os.path.join(ROOT, 'tests', 'fixtures', 'streams')
PICKLES = os.path.join(ROOT, 'tests', 'fixtures', 'pickles')
HELLO = struct.pack('>QII', 1, 1, 0)
V10 = struct.pack('>II', 1, 0)


def stream(name, side):
    with open(os.path.join(STREAMS, '%s.%s.bin' % (name, side)), 'rb') as f:
        return f.read()


class FakeWorker:
    """One-connection-at-a-time fake runtime server.

    script(conn, received) is called per connection with a function that
    reads exactly n bytes (recording them); the default replays `answer`
    after the client has sent `expect_len` bytes."""

    def __init__(self, script):
        self.script = script
        self.received = []            # bytes of each connection
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.stop = False
        self.served = threading.Semaphore(0)   # released after each connection
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            buf = bytearray()
            self.received.append(buf)

            def read(n, c=c, buf=buf):
                got = b''
                while len(got) < n:
                    chunk = c.recv(n - len(got))
                    if not chunk:
                        raise EOFError
                    got += chunk
                buf.extend(got)
                return got
            try:
                self.script(c, read)
            except (EOFError, OSError):
                pass
            finally:
                c.close()
                self.served.release()

    def close(self):
        self.stop = True
        self.sock.close()


def dribble(c, data):
    """Sends one byte at a time: the client must loop its reads."""
    for i in range(len(data)):
        c.sendall(data[i:i + 1])
        time.sleep(0.001)


class Base(unittest.TestCase):
    def serve(self, script):
        fw = FakeWorker(script)
        self.addCleanup(fw.close)
        os.environ['LIFEBLOOD_RUNTIME_SCHEDULER_ADDR'] = '127.0.0.1:%d' % fw.port
        os.environ['LIFEBLOOD_RUNTIME_IID'] = '1'
        os.environ['LIFEBLOOD_RUNTIME_TID'] = '1'
        return fw


class CapturedConversations(Base):
    """Byte-for-byte what upstream's module sent, answered as upstream did."""

    def replay(self, name, call, split=None):
        c2s, s2c = stream(name, 'c2s'), stream(name, 's2c')

        def script(c, read):
            read(len(HELLO))
            dribble(c, s2c[:8])
            read(len(c2s) - len(HELLO))
            dribble(c, s2c[8:])
        fw = self.serve(script)
        result = call()
        for _ in range(100):
            if fw.received and len(fw.received[0]) == len(c2s):
                break
            time.sleep(0.01)
        self.assertEqual(bytes(fw.received[0]), c2s)
        return result

    def test_set_attributes(self):
        r = self.replay('03_runtime_51184_to_10662', lambda: lc.set_attributes(
            {'result': [1, 2, {'k': 'v'}], 'big': 1180591620717411303424,
             'uni': '\u00e9\u65e5'}, blocking=True))
        self.assertIsNone(r)

    def test_create_task(self):
        tid = self.replay('04_runtime_51186_to_10662', lambda: lc.create_task(
            'child', {'cattr': 1}, blocking=True))
        self.assertEqual(tid, 2)

    def test_receive(self):
        src, data = self.replay('05_runtime_51200_to_10662',
                                lambda: lc.message_to_invocation_receive('mybox', timeout=20))
        self.assertEqual((src, data), (1, b'\x00hello\xff'))

    def test_send(self):
        r = self.replay('06_runtime_51216_to_10662',
                        lambda: lc.message_to_invocation_send(1, 'mybox', b'\x00hello\xff'))
        self.assertIsNone(r)


class Behaviour(Base):
    def test_send_error_carries_the_result(self):
        def script(c, read):
            read(len(HELLO))
            c.sendall(V10)
            cmd = read(8 + 14)
            self.assertTrue(cmd.endswith(b'sendinvmessage'))
            dst, src, n, t = struct.unpack('>QQQf', read(28))
            self.assertEqual((dst, src, n, t), (42, 1, 3, 90.0))  # timeout None/<=0 -> 90
            alen, = struct.unpack('>Q', read(8))
            read(alen + n)
            lc.send_string(c, 'error-receiver-timeout')
        self.serve(script)
        with self.assertRaises(lc.MessageSendError) as e:
            lc.message_to_invocation_send(42, 'box', b'abc', addressee_timeout=-1)
        self.assertEqual(str(e.exception), 'error-receiver-timeout')

    def test_receive_timeout_polls_and_cancels(self):
        answers = []

        def script(c, read):
            read(len(HELLO))
            c.sendall(V10)
            read(8 + 14)
            alen, = struct.unpack('>Q', read(8))
            read(alen)
            poll, = struct.unpack('>f', read(4))
            answers.append(poll)
            while True:
                time.sleep(poll)
                c.sendall(b'\x00')                  # ? false: still waiting?
                cancel = read(1)
                answers.append(cancel)
                if cancel == b'\x01':
                    return
        fw = self.serve(script)
        t0 = time.monotonic()
        with self.assertRaises(lc.MessageReceiveTimeout) as e:
            lc.message_to_invocation_receive('box', timeout=0.35)
        self.assertGreaterEqual(time.monotonic() - t0, 0.35)
        self.assertTrue(fw.served.acquire(timeout=5))   # the fake has read the cancel byte
        self.assertTrue(str(e.exception).startswith('elapsed: '))
        self.assertAlmostEqual(answers[0], 0.351, places=5)   # one slice for a short timeout
        self.assertEqual(answers[-1], b'\x01')
        self.assertTrue(all(a == b'\x00' for a in answers[1:-1]))

    def test_poll_interval_formula(self):
        self.assertEqual(lc._poll_interval(None), 10.0)
        self.assertAlmostEqual(lc._poll_interval(20), 10.0005)
        self.assertAlmostEqual(lc._poll_interval(0.01), 0.1)
        self.assertAlmostEqual(lc._poll_interval(95), 95.001 / 10)

    def test_closed_early_is_a_clear_error(self):
        def script(c, read):
            read(len(HELLO))
            c.sendall(V10)
            read(8 + 5)
            n, = struct.unpack('>Q', read(8))
            read(n)
            c.sendall(b'\x00\x00')                   # 2 of 13 bytes, then close
        self.serve(script)
        with self.assertRaises(ConnectionError) as e:
            lc.create_task('x', {}, blocking=True)
        self.assertIn('closed the runtime connection', str(e.exception))

    def test_no_version_is_an_error(self):
        self.serve(lambda c, read: read(len(HELLO)))  # closes without answering
        with self.assertRaises(ConnectionError):
            lc.set_attributes({'a': 1}, blocking=True)

    def test_background_operations_and_future(self):
        done = []

        def script(c, read):
            read(len(HELLO))
            c.sendall(V10)
            n, = struct.unpack('>Q', read(8))
            cmd = read(n)
            if cmd == b'tupdateattribs':
                tid, jl, nd = struct.unpack('>QQQ', read(24))
                done.append((tid, read(jl)))
                time.sleep(0.2)
                c.sendall(b'\x01')
            else:
                alen, = struct.unpack('>Q', read(8))
                read(alen + 4)
                time.sleep(0.3)
                c.sendall(struct.pack('>?QQ', True, 9, 2) + b'hi')
        self.serve(script)
        os.environ['LIFEBLOOD_RUNTIME_TID'] = '77'
        self.assertIsNone(lc.set_attributes({'x': None}))
        lc.wait_for_currently_running_async_operations()
        self.assertEqual(done, [(77, b'{"x": null}')])
        fut = lc.message_to_invocation_receive('box', blocking=False)
        self.assertIsInstance(fut, lc.InvocationMessageReceiverFuture)
        with self.assertRaises(TimeoutError):
            fut.wait(0.05)
        self.assertFalse(fut.is_done())
        self.assertEqual(fut.wait(), (9, b'hi'))
        self.assertTrue(fut.is_done())

    def test_future_reraises(self):
        self.serve(lambda c, read: None)             # closes at once
        fut = lc.message_to_invocation_receive('box', blocking=False)
        with self.assertRaises(ConnectionError):
            fut.wait(5)

    def test_missing_environment(self):
        os.environ.pop('LIFEBLOOD_RUNTIME_SCHEDULER_ADDR', None)
        with self.assertRaises(RuntimeError):
            lc.set_attributes({}, blocking=True)


class DataClasses(unittest.TestCase):
    def test_taskspawn_pickles_like_upstream(self):
        with open(os.path.join(PICKLES, 'taskspawn_runtime.pickle'), 'rb') as f:
            want = f.read()
        ts = lc.TaskSpawn('child_task', 777,
                          task_attributes={'frame': 1002, 'path': '/tmp/x', 'list': [1, 2]})
        self.assertEqual(pickle.dumps(ts, protocol=4), want)
        with open(os.path.join(PICKLES, 'taskspawn_runtime_envargs.pickle'), 'rb') as f:
            want = f.read()
        env = lc.EnvironmentResolverArguments('StandardEnvironmentResolver',
                                              {'package.blender': '~=4.1'})
        ts = lc.TaskSpawn('child_task_env', 777, env_args=env, task_attributes={'a': 1})
        self.assertEqual(pickle.dumps(ts, protocol=4), want)

    def test_taskspawn_methods(self):
        attrs = {'a': 1}
        ts = lc.TaskSpawn('n', 5, task_attributes=attrs)
        ts.set_attribute('b', 2)
        self.assertEqual(attrs, {'a': 1})            # copied, not shared
        self.assertEqual(ts._attributes(), {'a': 1, 'b': 2})
        ts.remove_attribute('a')
        self.assertIsNone(ts.attribute_value('a'))
        self.assertEqual(ts.attribute_value('b'), 2)
        self.assertTrue(ts.create_as_spawned())
        self.assertIsNone(ts.forced_node_task_id())
        ts.force_set_node_task_id(3, 4)
        self.assertEqual(ts.forced_node_task_id(), (3, 4))
        self.assertEqual(ts.source_invocation_id(), 5)
        self.assertEqual(ts.node_output_name(), 'spawned')
        ts.set_node_output_name('out2')
        self.assertEqual(ts.node_output_name(), 'out2')
        ts.set_name('m')
        self.assertEqual(ts.name(), 'm')
        self.assertIsNone(ts.default_priority())
        ts.set_default_priority(12.5)
        self.assertEqual(ts.default_priority(), 12.5)
        ts.add_extra_group_name('g')
        self.assertEqual(ts.extra_group_names(), ['g'])
        self.assertIsNone(ts.environment_arguments())
        self.assertEqual(pickle.loads(ts.serialize()).__dict__, ts.__dict__)
        self.assertEqual(lc.TaskSpawn('n', 1)._attributes(), {})

    def test_environment_resolver_arguments(self):
        e = lc.EnvironmentResolverArguments()
        self.assertEqual(e.__dict__, {'_EnvironmentResolverArguments__resolver_name': None,
                                      '_EnvironmentResolverArguments__args': {}})
        with self.assertRaises(ValueError):
            lc.EnvironmentResolverArguments(None, {'x': 1})

    def test_helpers(self):
        os.environ['LIFEBLOOD_RUNTIME_IID'] = '31'
        self.assertEqual(lc.get_my_invocation_id(), 31)
        a = lc.generate_addressee()
        self.assertEqual(str(uuid.UUID(a)), a)
        self.assertEqual(uuid.UUID(a).version, 4)
        self.assertNotEqual(lc.generate_addressee(), lc.generate_addressee())
        os.environ['LIFEBLOOD_RUNTIME_SCHEDULER_ADDR'] = '127.0.0.1:10101'
        self.assertEqual(lc.get_host_ip(), '127.0.0.1')
        os.environ['LIFEBLOOD_RUNTIME_SCHEDULER_ADDR'] = 'garbage'
        self.assertEqual(lc.get_host_ip(), '127.0.0.1')
        held = socket.socket()
        held.bind(('127.0.0.1', 0))
        held.listen(1)
        p = held.getsockname()[1]
        if p < 63000:
            free = lc.get_free_tcp_port('127.0.0.1', p)   # skips the held port
            self.assertTrue(p < free < p + 2000, (p, free))
            probe = socket.socket()
            probe.bind(('127.0.0.1', free))               # and it was really free
            probe.close()
        held.close()
        a, b = socket.socketpair()
        lc.send_string(a, 'h\u00e9')
        self.assertEqual(b.recv(100), struct.pack('>Q', 3) + 'h\u00e9'.encode())
        a.sendall(struct.pack('>Q', 2))
        a.sendall(b'ok')
        self.assertEqual(lc.recv_string(b), 'ok')
        a.close()
        b.close()

    def test_public_names(self):
        for name in ('MessageSendError', 'MessageReceiveTimeout', 'EnvironmentResolverArguments',
                     'TaskSpawn', 'InvocationMessageReceiverFuture', 'create_task',
                     'set_attributes', 'message_to_invocation_send',
                     'message_to_invocation_receive',
                     'wait_for_currently_running_async_operations', 'get_host_ip',
                     'generate_addressee', 'get_my_invocation_id', 'get_free_tcp_port',
                     'send_string', 'recv_string'):
            self.assertTrue(hasattr(lc, name), name)
        self.assertTrue(issubclass(lc.MessageSendError, RuntimeError))
        self.assertTrue(issubclass(lc.MessageReceiveTimeout, RuntimeError))


if __name__ == '__main__':
    unittest.main()
