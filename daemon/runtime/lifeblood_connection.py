"""lifeblood_connection — the payload side of the Lifeblood worker runtime API.

A payload started by lifeblood-worker finds this module on its PYTHONPATH.
It talks to the worker that runs it over a loopback TCP connection (the
address is in LIFEBLOOD_RUNTIME_SCHEDULER_ADDR) to

* create child tasks:                  create_task()
* update the running task's attributes: set_attributes()
* exchange messages with other running invocations:
  message_to_invocation_send(), message_to_invocation_receive()

The public names, arguments, return values and exceptions are those of the
upstream Lifeblood module of the same name, so payload scripts written for
Lifeblood run unchanged. Differences are deliberate robustness fixes: every
socket read is looped until the expected number of bytes arrived, and a
connection the worker closes early raises ConnectionError instead of
failing later with a confusing unpacking error.

Standard library only; Python 3.6 or newer.
"""
import errno
import json
import os
import pickle
import socket
import struct
import threading
import time
import uuid

__all__ = [
    'MessageSendError', 'MessageReceiveTimeout', 'EnvironmentResolverArguments', 'TaskSpawn',
    'InvocationMessageReceiverFuture', 'create_task', 'set_attributes',
    'message_to_invocation_send', 'message_to_invocation_receive',
    'wait_for_currently_running_async_operations', 'get_host_ip', 'generate_addressee',
    'get_my_invocation_id', 'get_free_tcp_port', 'send_string', 'recv_string',
]

_PROTOCOL_VERSION = (1, 0)
_CONNECT_TIMEOUT = 30.0        # spawn / attribute updates (socket timeout)
_DEFAULT_ADDRESSEE_TIMEOUT = 90.0
_POLL_TARGET = 10.0            # receive: how often the worker checks we still wait
_POLL_MIN = 0.1


class MessageSendError(RuntimeError):
    """A message could not be delivered; the text is the worker's result code
    (for example 'error-receiver-timeout' or 'error-invoc-not-running')."""


class MessageReceiveTimeout(RuntimeError):
    """No message arrived within the receive timeout."""


# ---- wire helpers ---------------------------------------------------------------------

def _recv_exactly(sock, size):
    """Reads exactly `size` bytes, looping over partial reads."""
    chunks = []
    left = size
    while left > 0:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError('the worker closed the runtime connection '
                                  '({} of {} bytes still expected)'.format(left, size))
        chunks.append(chunk)
        left -= len(chunk)
    return b''.join(chunks)


def _string(text):
    data = text.encode('UTF-8')
    return struct.pack('>Q', len(data)) + data


def send_string(sock, text):
    """Sends `text` as a runtime-protocol string: u64 big-endian length + UTF-8."""
    sock.sendall(_string(text))


def recv_string(sock):
    """Receives a runtime-protocol string (see send_string)."""
    size, = struct.unpack('>Q', _recv_exactly(sock, 8))
    return _recv_exactly(sock, size).decode('UTF-8')


def _runtime_address():
    try:
        value = os.environ['LIFEBLOOD_RUNTIME_SCHEDULER_ADDR']
    except KeyError:
        raise RuntimeError('LIFEBLOOD_RUNTIME_SCHEDULER_ADDR is not set: '
                           'this process was not started by a Lifeblood worker') from None
    host, _, port = value.rpartition(':')
    return host, int(port)


def _env_int(name):
    try:
        return int(os.environ[name])
    except KeyError:
        raise RuntimeError('{} is not set: this process was not started by a Lifeblood '
                           'worker'.format(name)) from None


def _open(timeout=None):
    """Connects to the worker and negotiates protocol 1.0."""
    sock = socket.create_connection(_runtime_address(), timeout=timeout)
    try:
        # each request goes out in one write; no Nagle delay on the small ones
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(struct.pack('>QII', 1, *_PROTOCOL_VERSION))
        answer = struct.unpack('>II', _recv_exactly(sock, 8))
        if answer != _PROTOCOL_VERSION:
            raise RuntimeError('the worker answered runtime protocol {}.{}, expected 1.0'
                               .format(*answer))
    except BaseException:
        sock.close()
        raise
    return sock


# ---- data classes (pickled for the scheduler) -------------------------------------------

class EnvironmentResolverArguments:
    """Which environment resolver a spawned task uses, and its arguments.

    Only pickled: the scheduler reads the two attributes below.
    """

    def __init__(self, resolver_name=None, arguments=None):
        arguments = {} if arguments is None else arguments
        if resolver_name is None and arguments:
            raise ValueError('arguments need a resolver name')
        self.__resolver_name = resolver_name
        self.__args = arguments


class TaskSpawn:
    """A request to create a task, as the scheduler's unpickler expects it.

    The attribute names (and their order) are part of the wire format: the
    scheduler loads this object as lifeblood.taskspawn.TaskSpawn.
    """

    def __init__(self, name, source_invocation_id, env_args=None, task_attributes=None):
        self.__name = name
        self.__attributes = dict(task_attributes) if task_attributes else {}
        self.__env_args = env_args
        self.__forced_node_task_id_pair = None
        self.__from_invocation_id = source_invocation_id
        self.__output = 'spawned'
        self._create_as_spawned = True
        self.__extra_groups = []
        self.__default_priority = None

    def create_as_spawned(self):
        return self._create_as_spawned

    def force_set_node_task_id(self, node_id, task_id):
        self.__forced_node_task_id_pair = (node_id, task_id)

    def forced_node_task_id(self):
        return self.__forced_node_task_id_pair

    def source_invocation_id(self):
        return self.__from_invocation_id

    def set_node_output_name(self, new_name):
        self.__output = new_name

    def node_output_name(self):
        return self.__output

    def name(self):
        return self.__name

    def set_name(self, name):
        self.__name = name

    def default_priority(self):
        """Priority of the task group created for this task, if one is created."""
        return self.__default_priority

    def set_default_priority(self, priority):
        self.__default_priority = priority

    def add_extra_group_name(self, group_name):
        self.__extra_groups.append(group_name)

    def extra_group_names(self):
        return self.__extra_groups

    def set_attribute(self, attr_name, attr_value):
        self.__attributes[attr_name] = attr_value

    def remove_attribute(self, attr_name):
        del self.__attributes[attr_name]

    def attribute_value(self, attr_name):
        return self.__attributes.get(attr_name)

    def _attributes(self):
        return self.__attributes

    def environment_arguments(self):
        return self.__env_args

    def serialize(self):
        return pickle.dumps(self)


# ---- background operations ------------------------------------------------------------

_pending = []
_pending_lock = threading.Lock()


def _track(thread):
    with _pending_lock:
        _pending.append(thread)


def _untrack(thread):
    with _pending_lock:
        if thread in _pending:
            _pending.remove(thread)


def _in_background(work):
    """Runs work() in a (non-daemon) thread that wait_for_... can join."""
    def run():
        try:
            work()
        finally:
            _untrack(threading.current_thread())
    thread = threading.Thread(target=run, name='lifeblood_connection')
    _track(thread)
    thread.start()


def wait_for_currently_running_async_operations():
    """Waits for every operation started with blocking=False (and every
    receiver future) that is still running."""
    with _pending_lock:
        threads = list(_pending)
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join()


# ---- tasks and attributes --------------------------------------------------------------

def _spawn(spawn):
    data = spawn.serialize()
    sock = _open(timeout=_CONNECT_TIMEOUT)
    with sock:
        sock.sendall(_string('spawn') + struct.pack('>Q', len(data)) + data)
        _status, has_id, task_id = struct.unpack('>I?Q', _recv_exactly(sock, 13))
    return task_id if has_id else -1


def create_task(name, attributes, env_arguments=None, blocking=False):
    """Creates a child task of the running task.

    name: the new task's name; attributes: its attributes (a dict);
    env_arguments: an EnvironmentResolverArguments, or None to inherit the
    parent's environment. blocking=True returns the new task id (-1 if the
    scheduler created none); blocking=False sends it in the background and
    returns None.
    """
    spawn = TaskSpawn(name, _env_int('LIFEBLOOD_RUNTIME_IID'), env_args=env_arguments,
                      task_attributes=attributes)
    if blocking:
        return _spawn(spawn)
    _in_background(lambda: _spawn(spawn))
    return None


def _update_attributes(task_id, attribs):
    payload = json.dumps(attribs).encode('UTF-8')
    sock = _open(timeout=_CONNECT_TIMEOUT)
    with sock:
        sock.sendall(_string('tupdateattribs') + struct.pack('>QQQ', task_id, len(payload), 0) +
                     payload)
        _recv_exactly(sock, 1)


def set_attributes(attribs, blocking=False):
    """Sets attributes (a dict of JSON-compatible values) on the running task.

    blocking=False sends them in the background and returns at once.
    """
    task_id = _env_int('LIFEBLOOD_RUNTIME_TID')
    if blocking:
        _update_attributes(task_id, attribs)
        return None
    _in_background(lambda: _update_attributes(task_id, attribs))
    return None


# ---- invocation messages ---------------------------------------------------------------

def message_to_invocation_send(invocation_id, addressee, message, addressee_timeout=None):
    """Sends bytes `message` to the receiver waiting on `addressee` in the running
    invocation `invocation_id`, waiting up to addressee_timeout seconds (None or
    <= 0: 90) for the receiver to start listening. Blocks until delivered;
    raises MessageSendError with the result code otherwise."""
    if addressee_timeout is None or addressee_timeout <= 0:
        addressee_timeout = _DEFAULT_ADDRESSEE_TIMEOUT
    message = bytes(message)
    sock = _open()
    with sock:
        sock.sendall(_string('sendinvmessage') +
                     struct.pack('>QQQf', invocation_id, _env_int('LIFEBLOOD_RUNTIME_IID'),
                                 len(message), addressee_timeout) +
                     _string(addressee) + message)
        result = recv_string(sock)
    if result != 'delivered':
        raise MessageSendError(result)


def _poll_interval(timeout):
    """Slices of about 10 s that add up to the timeout."""
    if timeout is None:
        return _POLL_TARGET
    span = timeout + 0.001
    return max(_POLL_MIN, span / max(1, round(span / _POLL_TARGET)))


def _receive(addressee, timeout=None):
    sock = _open()
    with sock:
        sock.sendall(_string('recvinvmessage') + _string(addressee) +
                     struct.pack('>f', _poll_interval(timeout)))
        waited = 0.0
        while True:
            started = time.time()
            ready, = struct.unpack('>?', _recv_exactly(sock, 1))
            waited += time.time() - started
            if ready:
                break
            give_up = timeout is not None and waited >= timeout
            sock.sendall(struct.pack('>?', give_up))
            if give_up:
                raise MessageReceiveTimeout('elapsed: {}s'.format(waited))
        source_iid, size = struct.unpack('>QQ', _recv_exactly(sock, 16))
        return source_iid, _recv_exactly(sock, size)


class InvocationMessageReceiverFuture(threading.Thread):
    """A receive running in the background (see message_to_invocation_receive)."""

    def __init__(self, addressee, timeout=None):
        super().__init__(name='lifeblood_connection receiver')
        self.__addressee = addressee
        self.__timeout = timeout
        self.__result = None
        self.__error = None

    def run(self):
        try:
            self.__result = _receive(self.__addressee, self.__timeout)
        except Exception as e:  # handed to wait()
            self.__error = e
        finally:
            _untrack(self)

    def is_done(self):
        return not self.is_alive()

    def wait(self, timeout=None):
        """Returns (source invocation id, message bytes); re-raises the receive's
        error; raises TimeoutError if still waiting after `timeout` seconds."""
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError()
        if self.__error is not None:
            raise self.__error
        return self.__result


def message_to_invocation_receive(addressee, timeout=None, blocking=True):
    """Waits for a message sent to `addressee` in this invocation.

    blocking=True returns (source invocation id, message bytes), raising
    MessageReceiveTimeout after `timeout` seconds of waiting (None: wait as
    long as the invocation runs). blocking=False returns an
    InvocationMessageReceiverFuture at once.
    """
    if blocking:
        return _receive(addressee, timeout)
    future = InvocationMessageReceiverFuture(addressee, timeout)
    _track(future)
    future.start()
    return future


# ---- small helpers ---------------------------------------------------------------------

def get_host_ip():
    """The local address of the route toward the worker's runtime address
    (127.0.0.1 for a loopback worker); 127.0.0.1 when it cannot be found."""
    try:
        host, _port = _runtime_address()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((host, 1))
            return probe.getsockname()[0]
        finally:
            probe.close()
    except Exception:
        return '127.0.0.1'


def generate_addressee():
    """A random addressee name (a UUID4 string)."""
    return str(uuid.uuid4())


def get_my_invocation_id():
    """The running invocation's id (LIFEBLOOD_RUNTIME_IID)."""
    return _env_int('LIFEBLOOD_RUNTIME_IID')


def get_free_tcp_port(ip, starting_at=20001):
    """The first port in [starting_at, starting_at + 2000) that can be bound on
    `ip` at this moment (it is not reserved)."""
    port = starting_at
    for port in range(starting_at, starting_at + 2000):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((ip, port))
            return port
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
        finally:
            probe.close()
    return port
