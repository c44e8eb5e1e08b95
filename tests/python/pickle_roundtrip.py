"""Round trip through the C pickle codec: random object graphs of the kinds
the scheduler pickles (stand-in classes with the upstream names, regexes,
enums, sets, big ints, shared and cyclic references) are pickled with every
protocol 2-5, decoded and re-encoded by the C helper, unpickled again and
compared -- values, types, sharing and cycles.

Usage: pickle_roundtrip.py HELPER [COUNT] [SEED]"""
import io
import math
import os
import pickle
import random
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifeblood.enums import WorkerType  # noqa: E402
from lifeblood import invocationjob, net_classes, environment_resolver, taskspawn  # noqa: E402

CLASSES = [invocationjob.InvocationJob, invocationjob.InvocationEnvironment,
           invocationjob.InvocationRequirements, net_classes.WorkerResources,
           environment_resolver.EnvironmentResolverArguments, taskspawn.TaskSpawn]


def rand_str(r):
    alphabet = ['a', 'Z', ' ', '\n', '"', '\\', '\x00', '\x7f', 'é', 'ß', '–', '日', '本',
                '🎬', '\ud800', '\udfff', '\uffff']
    return ''.join(r.choice(alphabet) for _ in range(r.randint(0, 12)))


def rand_atom(r):
    k = r.randint(0, 12)
    if k == 0:
        return None
    if k == 1:
        return r.random() < 0.5
    if k == 2:
        return r.randint(-300, 300)
    if k == 3:
        return r.choice([2**31 - 1, -2**31, 2**31, 2**63 - 1, -2**63, 2**64, 2**70, -2**64,
                         2**200 + 7, -(2**1000), 255, 256, 65535, 65536])
    if k == 4:
        return r.choice([0.0, -0.0, 1.5, 23.976, 1e300, -1e-300, math.inf, -math.inf,
                         r.uniform(-1e6, 1e6)])
    if k in (5, 6):
        return rand_str(r)
    if k == 7:
        return bytes(r.randrange(256) for _ in range(r.randint(0, 300 if r.random() < 0.1 else 8)))
    if k == 8:
        return bytearray(r.randrange(256) for _ in range(r.randint(0, 6)))
    if k == 9:
        return re.compile(r.choice([b'ALF_PROGRESS\\s+(\\d+)%', b'(?P<c>\\d+)/(\\d+)']))
    if k == 10:
        return re.compile(r.choice(['^\\s*(\\d+)', 'x+']), r.choice([0, re.I, re.M | re.S]))
    if k == 11:
        return r.choice(list(WorkerType))
    return 'x' * r.randint(250, 70000) if r.random() < 0.05 else rand_str(r)


def rand_hashable(r, depth):
    k = r.randint(0, 4)
    if k == 0 or depth > 2:
        return r.choice([r.randint(-5, 2**70), rand_str(r), None, True, 2.5, b'k'])
    if k == 1:
        return tuple(rand_hashable(r, depth + 1) for _ in range(r.randint(0, 3)))
    if k == 2:
        return frozenset(rand_hashable(r, depth + 1) for _ in range(r.randint(0, 3)))
    return rand_str(r)


def rand_value(r, depth, pool):
    if depth > 5 or r.random() < 0.35:
        return rand_atom(r)
    if pool and r.random() < 0.15:
        return r.choice(pool)          # shared reference
    k = r.randint(0, 6)
    if k == 0:
        v = [rand_value(r, depth + 1, pool) for _ in range(r.randint(0, 5))]
        if r.random() < 0.1:
            v.append(v)                # cycle
    elif k == 1:
        v = tuple(rand_value(r, depth + 1, pool) for _ in range(r.randint(0, 5)))
    elif k == 2:
        v = {rand_hashable(r, 0): rand_value(r, depth + 1, pool) for _ in range(r.randint(0, 5))}
        if r.random() < 0.1:
            v['self'] = v
    elif k == 3:
        v = {rand_hashable(r, 0) for _ in range(r.randint(0, 5))}
    elif k == 4:
        v = frozenset(rand_hashable(r, 0) for _ in range(r.randint(0, 4)))
    else:
        v = r.choice(CLASSES)()
        for i in range(r.randint(0, 6)):
            setattr(v, '_%s__k%d' % (type(v).__name__, i), rand_value(r, depth + 1, pool))
        if r.random() < 0.1:
            v.me = v                   # cycle through the instance dict
    if not isinstance(v, (tuple, frozenset)) and r.random() < 0.5:
        pool.append(v)
    return v


def same(a, b, seen):
    """Structural equality that follows cycles and checks that sharing in
    `a` maps to the same sharing in `b`."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, dict, set, bytearray, tuple, frozenset)) or hasattr(a, '__dict__'):
        if id(a) in seen:
            return seen[id(a)] is b
        seen[id(a)] = b
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (a != a and b != b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, seen) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a.keys()) == list(b.keys()) and all(same(a[k], b[k], seen) for k in a)
    if isinstance(a, (set, frozenset)):
        return a == b
    if isinstance(a, re.Pattern):
        return a.pattern == b.pattern and a.flags == b.flags
    if hasattr(a, '__dict__') and not isinstance(a, WorkerType):
        return same(a.__dict__, b.__dict__, seen)
    return a == b


def main():
    helper = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20261124
    r = random.Random(seed)
    objs, blobs = [], []
    for i in range(count):
        v = rand_value(r, 0, [])
        for proto in (2, 3, 4, 5):
            objs.append((i, proto, v))
            blobs.append(pickle.dumps(v, protocol=proto))
    inp = b''.join(struct.pack('<I', len(b)) + b for b in blobs)
    out = subprocess.run([helper], input=inp, stdout=subprocess.PIPE, check=True).stdout
    f = io.BytesIO(out)
    failures = 0
    for (i, proto, v), orig in zip(objs, blobs):
        (n,) = struct.unpack('<I', f.read(4))
        if n == 0xFFFFFFFF:
            (m,) = struct.unpack('<I', f.read(4))
            print('graph %d protocol %d: C codec error: %s' % (i, proto, f.read(m).decode()))
            failures += 1
            continue
        data = f.read(n)
        try:
            back = pickle.loads(data)
        except Exception as e:  # noqa: BLE001 - report any unpickling failure
            print('graph %d protocol %d: Python cannot load the re-encoded pickle: %r' % (i, proto, e))
            failures += 1
            continue
        if not same(v, back, {}):
            print('graph %d protocol %d: not equal after the round trip' % (i, proto))
            failures += 1
    total = len(objs)
    print('pickle round trip: %d passed, %d failed' % (total - failures, failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
