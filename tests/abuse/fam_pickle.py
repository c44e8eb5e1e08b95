"""Pickle family (PROTOCOL.md 3): every opcode misused, truncations and
corruptions of a real job, huge LONG1/LONG4 integers, memo and recursion
tricks, deep nesting, protocols 0-5, and code-execution shapes built only
from the globals upstream uses (getattr/re._compile/set/frozenset/
copyreg._reconstructor/object/the lifeblood classes) reaching eval, exec,
__import__, os or subprocess through attribute chains.

A task carrying one must be refused (non-zero status) or run and be
reported with a job that the allowlisting unpickler accepts (nothing
hostile echoed back). Valid jobs in every protocol must run."""
import builtins
import copyreg
import pickle
import re
import struct

import lbpeer
from core import Case, show
from lifeblood.enums import WorkerType
from lifeblood.invocationjob import InvocationJob, InvocationEnvironment

PROTO = b'\x80\x04'


class R:
    """Pickles as f(*args) with REDUCE."""

    def __init__(self, f, *args):
        self.f, self.args = f, args

    def __reduce__(self):
        return self.f, self.args

    def __call__(self, *a):          # only so that pickle takes it as a callable
        raise TypeError('never called')


def job(attrs=None, args=('/bin/true',), **kw):
    return lbpeer.make_job(list(args), lbpeer.next_invocation_id(), attrs=attrs, **kw)


def job_with_raw_attr(raw_value_ops):
    """A real job whose attrs dict gets one more item 'x' -> the object built
    by raw_value_ops (a pickle fragment leaving one value on the stack)."""
    pk = job(attrs={'zz_marker': 'zz'})
    needle = b'\x8c\x09zz_marker\x94\x8c\x02zz\x94'
    i = pk.index(needle)
    # insert right after the marker item; it is the dict's only item so a
    # SETITEM follows; our pair rides in another SETITEM
    ins = b'\x8c\x01x' + raw_value_ops + b's'
    j = i + len(needle)
    # skip the SETITEM of the marker pair
    assert pk[j:j + 1] == b's', pk[j - 4:j + 4]
    return pk[:j + 1] + ins + pk[j + 1:]


def cases(full):
    out = []

    def add(name, data, heavy=False, valid=False, shows=None):
        async def fn(c):
            r, rep = await c.send_task(data, reply_timeout=3.0)
            if valid:
                if not (isinstance(r, dict) and r.get('status') == 0):
                    raise AssertionError('a valid job was refused: %r' % (r,))
                return
            if r is None:
                raise AssertionError('no reply to the task within 3 s')
            if not isinstance(r, dict) or r.get('status') is None:
                raise AssertionError('reply without status: %r' % (r,))
            # status 0: the job ran and its report passed the allowlist (core)
        out.append(Case('pickle', name, fn, heavy, shows or show(data)))

    base = job()
    # ---- valid jobs in every protocol (the harness's control group) ------------------
    # the scheduler pickles with protocol 4 (Python <= 3.13) or 5 (3.14): those
    # must run; 0-3 never come from it (refused or run, both fine)
    for p in range(0, 6):
        j = pickle.loads(base)
        add('%s-protocol-%d' % ('valid' if p >= 4 else 'old', p), pickle.dumps(j, protocol=p),
            valid=p >= 4)
    add('valid-enum-by-name', job(), valid=True)
    add('valid-attrs-kinds', job(attrs={'s': 'x', 'i': 2 ** 70, 'f': 1.5, 'b': True, 'n': None,
                                        'l': [1, [2, {'a': 'b'}]], 'd': {'k': [1.0]},
                                        'u': '\ud800'}), valid=True)

    # ---- truncations and corruptions of a real job -------------------------------------
    n = len(base)
    for cut in sorted(set([0, 1, 2, 3, 11, n // 4, n // 3, n // 2, n - 2, n - 1]
                          + ([n * k // 40 for k in range(40)] if full else []))):
        add('truncated-at-%d' % cut, base[:cut])
    step = 1 if full else 23
    for pos in range(2, n - 1, step):
        for byte in (0x00, 0xff, 0x2e):
            add('corrupt-%d-%02x' % (pos, byte), base[:pos] + bytes([byte]) + base[pos + 1:])

    # ---- every opcode misused ------------------------------------------------------------
    ops = {
        'stop-empty': b'.', 'pop-empty': b'0.', 'pop-mark-no-mark': b'1.', 'dup-empty': b'2.',
        'mark-only': b'(.', 'append-empty': b'a.', 'append-int': b'K\x01K\x02a.',
        'appends-no-mark': b']K\x01e.', 'setitem-int': b'K\x01K\x02K\x03s.',
        'setitem-short': b'}K\x01s.', 'setitems-no-mark': b'}K\x01K\x02u.',
        'build-alone': b'}b.', 'build-int': b'K\x01}b.', 'build-str-state': b'])b.',
        'binget-undefined': b'h\x05.', 'long-binget-huge': b'j\xff\xff\xff\xff.',
        'binput-empty': b'q\x00.', 'memoize-empty': b'\x94.',
        'long-binput-2^32-1': b'N' + b'r\xff\xff\xff\xff' + b'j\xff\xff\xff\xff.',
        'persid': b'P0\n.', 'binpersid': b'N Q.', 'ext1': b'\x82\x01.', 'ext2': b'\x83\x01\x00.',
        'ext4': b'\x84\x01\x00\x00\x00.',
        'global-os-system': b'cos\nsystem\n(S"true"\ntR.',
        'stack-global-os-system': PROTO + b'\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.',
        'stack-global-subprocess': PROTO + b'\x8c\nsubprocess\x8c\x05Popen\x93.',
        'stack-global-builtins-eval': PROTO + b'\x8c\x08builtins\x8c\x04eval\x93\x8c\x010\x85R.',
        'stack-global-nonstr': PROTO + b'K\x01K\x02\x93.',
        'inst-os-system': b'(ios\nsystem\nS"true"\n.',
        'obj-os-system': b'(cos\nsystem\nS"true"\no.',
        'newobj-ex': PROTO + b'\x8c\x08builtins\x8c\x06object\x93)}\x92.',
        'newobj-nonclass': PROTO + b'K\x01)\x81.', 'reduce-nonfunc': PROTO + b'K\x01)R.',
        'bytearray8': b'\x80\x05\x96\x03\x00\x00\x00\x00\x00\x00\x00abc.',
        'next-buffer': b'\x80\x05\x97.', 'readonly-buffer': b'\x80\x05N\x98.',
        'frame-too-long': PROTO + b'\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.',
        'frame-zero': PROTO + b'\x95' + bytes(8) + b'N.',
        'frame-inside-frame': PROTO + b'\x95\x05' + bytes(7) + b'\x95\x01' + bytes(7) + b'N.',
        'long4-len-huge': PROTO + b'\x8b\xff\xff\xff\x7f\x01.',
        'long4-len-negative': PROTO + b'\x8b\xff\xff\xff\xff\x01.',
        'long1-255': PROTO + b'\x8a\xff' + b'\x01' * 255 + b'.',
        'binunicode-len-huge': PROTO + b'X\xff\xff\xff\xffabc.',
        'binunicode8-len-2^63': PROTO + b'\x8d' + struct.pack('<Q', 1 << 63) + b'abc.',
        'binbytes8-len-huge': PROTO + b'\x8e' + struct.pack('<Q', (1 << 64) - 1) + b'abc.',
        'binunicode-bad-utf8': PROTO + b'\x8c\x02\xff\xfe.',
        'binunicode-surrogate': PROTO + b'\x8c\x03\xed\xa0\x80.',
        'unknown-op-ff': b'\xff.', 'unknown-op-00': b'\x00.', 'unknown-op-a0': b'\xa0.',
        'unknown-op-99': PROTO + b'\x99.',
        'proto-6': b'\x80\x06N.', 'proto-255': b'\x80\xffN.', 'proto-twice': PROTO + PROTO + b'N.',
        'string-bad-quote': b'S\'abc"\n.', 'string-no-quote': b'Sabc\n.',
        'unicode-raw-escape': b'V\\u12\n.', 'int-huge-text': b'I' + b'9' * 5000 + b'\n.',
        'int-bool-text': b'I01\n.', 'long-text': b'L' + b'9' * 5000 + b'L\n.',
        'float-text-nan': b'Fnan\n.', 'float-text-junk': b'Fx\n.', 'binfloat-short': b'G\x00.',
        'get-text-bad': b'g-1\n.', 'put-text-bad': b'Np99999999999999999999\n.',
        'tuple3-short': PROTO + b'K\x01\x87.', 'dict-odd': b'(K\x01d.', 'empty': b'',
        'no-stop': PROTO + b'N', 'two-values-at-stop': PROTO + b'NN.',
        'additems-nonset': PROTO + b']\x94(K\x01\x90.', 'frozenset-no-mark': PROTO + b'\x91.',
        'newtrue-then-append': PROTO + b'\x88\x88a.',
    }
    for name, data in ops.items():
        add('op-' + name, data)

    # ---- memo and recursion ---------------------------------------------------------
    add('memo-1M-memoize', PROTO + b'N' + b'\x94' * 1000000 + b'0' + b'N.', heavy=True)
    add('memo-self-list', job_with_raw_attr(b']\x94h\x00a'))
    add('memo-self-dict', job_with_raw_attr(b'}\x94\x8c\x01k\x94h\x00s'))
    selfref = []
    selfref.append(selfref)
    add('attrs-self-reference', job(attrs={'loop': selfref}))
    d = {}
    d['d'] = d
    add('attrs-self-dict', job(attrs={'loop': d}))
    for depth in (1000, 10000, 100000) + ((1000000,) if full else ()):
        add('attrs-nested-lists-%d' % depth,
            job_with_raw_attr(b']' * depth + b'a' * (depth - 1)), heavy=depth >= 100000)
        add('attrs-nested-tuples-%d' % depth,
            job_with_raw_attr(b'N' + b'\x85' * depth), heavy=depth >= 100000)
        add('attrs-nested-dicts-%d' % depth,
            job_with_raw_attr(_nested_dicts(depth)), heavy=depth >= 100000)
    add('marks-100k', PROTO + b'(' * 100000 + b'N.', heavy=True)
    add('dup-1M', PROTO + b'N' + b'2' * 1000000 + b'.', heavy=True)
    add('memo-binget-forward', job_with_raw_attr(b'h\xf0'))
    add('memo-shared-list-1000x', job_with_raw_attr(b']\x94' + b'0' + b'(' + b'h\x00' * 100000
                                                    + b'l'), heavy=True)

    # ---- huge integers ------------------------------------------------------------
    for nbytes in (16, 1024, 1786, 1800, 8192, 65536) + ((1 << 20,) if full else ()):
        # 1786 bytes ~ 4300 decimal digits (Python's int->str limit)
        add('long4-attr-%dB' % nbytes, job_with_raw_attr(
            b'\x8b' + struct.pack('<I', nbytes) + b'\x7f' * nbytes), heavy=nbytes > 65536)
        add('long4-args-%dB' % nbytes, job_with_raw_attr(
            b'\x8b' + struct.pack('<I', nbytes) + b'\x81' * nbytes), heavy=nbytes >= 65536)
    add('long4-invocation-id', _replace_iid(base, b'\x8b' + struct.pack('<I', 4096)
                                            + b'\x11' * 4096))
    add('long1-negative-iid', _replace_iid(base, b'\x8a\x08' + b'\x00' * 7 + b'\x80'))
    add('iid-is-str', _replace_iid(base, b'\x8c\x03abc'))
    add('iid-is-float', _replace_iid(base, b'G\x7f\xf8\x00\x00\x00\x00\x00\x00'))

    # ---- code-execution shapes from allowed names -----------------------------------
    get = builtins.getattr
    chains = {
        'getattr-self-eval': R(R(get, R(get, get, '__self__'), 'eval'), '"pwned"'),
        'getattr-self-exec': R(R(get, R(get, get, '__self__'), 'exec'), 'x=1'),
        'getattr-self-import-os': R(R(get, R(get, get, '__self__'), '__import__'), 'os'),
        'getattr-self-import-subprocess': R(R(get, R(get, get, '__self__'), '__import__'),
                                            'subprocess'),
        'getattr-self-open': R(R(get, R(get, get, '__self__'), 'open'), '/etc/hostname'),
        'getattr-compile-globals': R(get, R(get, re._compile, '__globals__'), 'get'),
        'getattr-compile-builtins': R(get, re._compile, '__builtins__'),
        'getattr-set-class-subclasses': R(R(get, R(get, R(get, set, '__class__'), '__base__'),
                                            '__subclasses__')),
        'getattr-object-subclasses': R(R(get, object, '__subclasses__')),
        'getattr-enum-init-globals': R(get, R(get, WorkerType, '__init__'), '__globals__'),
        'getattr-enum-mro': R(get, WorkerType, 'mro'),
        'getattr-enum-class': R(get, WorkerType, '__class__'),
        'getattr-enum-dict': R(get, WorkerType, '__dict__'),
        'getattr-enum-nonmember': R(get, WorkerType, '_member_map_'),
        'getattr-enum-member-of-member': R(get, R(get, WorkerType, 'STANDARD'), '__class__'),
        'getattr-job-class-reduce': R(get, InvocationJob, '__reduce_ex__'),
        'getattr-job-init': R(get, InvocationJob, '__init__'),
        'getattr-str-format': R(get, 'x', 'format'),
        'getattr-3-args': R(get, WorkerType, 'NOPE', 'default'),
        'getattr-reconstructor-globals': R(get, copyreg._reconstructor, '__globals__'),
        'reconstructor-object-object': R(copyreg._reconstructor, object, object, None),
        'reconstructor-set-list': R(copyreg._reconstructor, set, set, [1, 2]),
        'reconstructor-job-state': R(copyreg._reconstructor, InvocationJob, object, 'x'),
        'set-of-getattr': R(set, [R(get, get, '__self__')]),
        'frozenset-of-list': R(frozenset, 'abc'),
        'set-of-str-iter': R(set, 'abcdef'),
        'compile-called-bad': R(re._compile, ['x'], 0),
        'compile-huge-flags': R(re._compile, 'x', 2 ** 70),
        'compile-redos': R(re._compile, '(a+)+$', 32),
        'enum-by-value-bogus': R(WorkerType, 99),
        'enum-call-str': R(WorkerType, 'STANDARD'),
        'job-class-called': R(InvocationJob),
        'env-class-called-args': R(InvocationEnvironment, 1, 2),
        'object-called': R(object),
    }
    for name, obj in chains.items():
        add('exec-attr-' + name, job(attrs={'evil': obj}))
        if name.startswith('getattr-self') or name in ('getattr-enum-init-globals',
                                                        'reconstructor-object-object'):
            # in other places of the job: the args list, the env queue, extra files
            add('exec-args-' + name, job(args=['/bin/true', obj]))
            add('exec-env-' + name, job(env=[('__setitem__', 'X', obj)]))
            add('exec-regex-' + name, job(out_regex=obj))
            add('exec-good-' + name, job(good=(0, obj)))
    add('exec-top-level-eval', pickle.dumps(chains['getattr-self-eval']))
    # __reduce__ tricks on the job itself: BUILD with a state carrying
    # __setstate__/__class__ and slot state
    jb = pickle.loads(base)
    jb.__dict__['__class__'] = R(get, R(get, get, '__self__'), 'eval')
    add('exec-state-class-key', pickle.dumps(jb))
    add('build-slot-state', _slot_state(base))
    add('newobj-getattr-class', PROTO + b'\x8c\x08builtins\x8c\x07getattr\x93)\x81.')
    add('reduce-getattr-no-args', PROTO + b'\x8c\x08builtins\x8c\x07getattr\x93)R.')
    return out


def _nested_dicts(depth):
    # {'k': {'k': ... None}} built as EMPTY_DICT KEY (inner) SETITEM, innermost last
    return b'}\x8c\x01k' * depth + b'N' + b's' * depth


def _replace_iid(pk, new_value_ops):
    key = b'\x8c\x1d_InvocationJob__invocation_id\x94'
    i = pk.index(key) + len(key)
    # the value after the key is one opcode: BININT1/BININT2/BININT/LONG1
    op = pk[i]
    ln = {0x4b: 2, 0x4d: 3, 0x4a: 5}.get(op)
    if ln is None and op == 0x8a:
        ln = 2 + pk[i + 1]
    return pk[:i] + new_value_ops + pk[i + ln:]


def _slot_state(pk):
    # a BUILD whose state is (dict, {'__class__': ...}) right before STOP
    assert pk.endswith(b'b.')
    return pk[:-1] + b'N}\x8c\t__class__\x8c\x08builtins\x8c\x04eval\x93s\x86b.'
