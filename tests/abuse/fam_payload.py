"""Payload family (PROTOCOL.md 7): payloads that misbehave — a fork bomb
bounded by a small RLIMIT_NPROC set in the test, a wide process tree, closed
stdout/stderr, huge lines, binary and invalid UTF-8 output, floods of lines,
setsid/double-fork escapes, a tree that ignores SIGTERM and is dropped,
signal deaths, oversized argv and environment. Each must be reported (done,
or dropped when the case drops it) and leave no process behind: every
payload carries a marker in its environment and no process with it may
survive the report by more than a few seconds."""
import asyncio
import uuid

import lbpeer
from core import Case, MARK, marked_processes

PY = 'python3'


def cases(full):
    out = []

    def add(name, argv, drop_after=None, expect=('worker.done',), heavy=False, refuse_ok=False,
            check=None):
        async def fn(c):
            mark = uuid.uuid4().hex
            iid = lbpeer.next_invocation_id()
            pk = lbpeer.make_job(argv, iid, env=[('__setitem__', MARK, mark)])
            if drop_after is None:
                c.delivered()
                r, rep = await c.send_task(pk, reply_timeout=5.0)
            else:
                n = len(c.s.reps)
                r = await c.command('task', {'task': pk.decode('latin1'), 'reply_to': c.s.addr},
                                    5.0)
                rep = None
                if isinstance(r, dict) and r.get('status') == 0:
                    c.s.busy = True
                    await asyncio.sleep(drop_after)
                    c.delivered()
                    d = await c.command('drop', {}, 15.0)
                    if d != {}:
                        raise AssertionError('drop answered %r' % (d,))
                    await c.s.wait_for(lambda: len(c.s.reps) > n, 10, 'the dropped report')
                    rep = c.s.reps[n][2]
                    name = c.s.reps[n][1]
                    if name not in expect:
                        raise AssertionError('reported %s' % name)
            if not (isinstance(r, dict) and r.get('status') == 0):
                if refuse_ok and isinstance(r, dict) and r.get('status'):
                    return
                raise AssertionError('task reply %r' % (r,))
            if rep is None:
                raise AssertionError('no report')
            if check:
                check(rep)
            left = []
            for _ in range(60):
                left = marked_processes(mark)
                if not left:
                    break
                await asyncio.sleep(0.05)
            if left:
                _stop_and_kill(mark)
                raise AssertionError('%d payload processes outlived the report by 3 s'
                                     % len(left))
        out.append(Case('payload', name, fn, heavy, ' '.join(argv)[:80]))

    sh = lambda s: ['/bin/sh', '-c', s]  # noqa: E731
    bash = lambda s: ['/bin/bash', '-c', s]  # noqa: E731
    # a fork bomb bounded by RLIMIT_NPROC = 40 for an otherwise unused user:
    # the limit does not bind root (CAP_SYS_RESOURCE), so the bomb drops to
    # 'nobody' after lowering the limit; without setpriv it is not run
    add('fork-bomb-nproc40', bash('command -v setpriv >/dev/null || exit 0; ulimit -u 40 && '
                                  'exec setpriv --reuid=65534 --regid=65534 --clear-groups '
                                  '/bin/bash -c \'[ "$(ulimit -u)" = 40 ] || exit 9; '
                                  'b() { b | b & }; b; sleep 0.5; exit 0\''), heavy=True)
    add('fork-tree-200-sleepers', sh('for i in $(seq 200); do sleep 30 & done; exit 0'))
    add('fork-tree-200-sleepers-dropped', sh('for i in $(seq 200); do sleep 30 & done; wait'),
        drop_after=0.5, expect=('worker.dropped',))
    add('ignore-term-dropped', bash("trap '' TERM; sleep 30 & sleep 30; wait"), drop_after=0.3,
        expect=('worker.dropped',))
    add('closed-stdout-stderr', sh('exec >&- 2>&-; sleep 0.2; echo lost; exit 0'))
    add('closed-stdout-write', sh('exec >&-; echo x; echo y >&2; exit 0'))
    add('stdout-to-devnull-daemon', sh('(sleep 30 >/dev/null 2>&1 </dev/null &); exit 0'))
    add('setsid-escape', sh('setsid -f sleep 30; exit 0'))
    add('setsid-escape-holding-pipes', sh('setsid -f sh -c "sleep 30"; echo started; exit 0'))
    add('double-fork-daemon', [PY, '-c', 'import os,time\nif os.fork()==0:\n os.setsid()\n'
                               ' if os.fork()==0:\n  os.closerange(0,3); time.sleep(30)\n'
                               ' os._exit(0)\nos.wait()'])
    add('setsid-escape-dropped', sh('setsid -f sleep 30; sleep 30'), drop_after=0.3,
        expect=('worker.dropped',))
    add('huge-line-16MiB', [PY, '-c', 'import sys; sys.stdout.write("x"*(16<<20))'],
        check=lambda rep: _len_at_least(rep, 16 << 20))
    add('huge-stderr-line-8MiB', [PY, '-c', 'import sys; sys.stderr.write("e"*(8<<20))'])
    add('many-lines-1M', [PY, '-c', 'import sys; sys.stdout.write("l\\n"*1000000)'], heavy=True)
    add('binary-4MiB', [PY, '-c', 'import os,sys; sys.stdout.buffer.write(os.urandom(4<<20))'])
    add('invalid-utf8-and-cr', [PY, '-c', 'import sys; sys.stdout.buffer.write(b"\\xff\\xfe\\r'
                                '\\r\\n\\x00\\xed\\xa0\\x80\\xc0\\x80 end")'])
    add('progress-junk', [PY, '-c', 'print("ALF_PROGRESS " + "9"*100000 + "%"); '
                          'print("ALF_PROGRESS 1e999%")'])
    add('signal-segv', sh('kill -SEGV $$'))
    add('exit-255', sh('exit 255'))
    add('argv-1MiB', ['/bin/echo', 'a' * (1 << 20)], refuse_ok=True)
    add('argv-100k-args', ['/bin/true'] + ['x'] * 100000, refuse_ok=True)
    add('stdin-read', sh('cat; exit 0'))
    add('pgid-escape', [PY, '-c', 'import os,time\nif os.fork()==0:\n os.setpgid(0,0); '
                        'time.sleep(30)\nos._exit(0)'])
    add('exits-while-child-holds-output', sh('sleep 30 & exit 0'))
    return out


def _len_at_least(rep, n):
    if len(rep.get('stdout', '')) < n:
        raise AssertionError('stdout in the report has %d chars, want >= %d'
                             % (len(rep.get('stdout', '')), n))


def _stop_and_kill(mark):
    """Ends what a case left behind, a churning fork bomb included: stop
    every marked process first (so none forks meanwhile), then kill."""
    import os
    import signal
    import time
    for _ in range(20):
        left = marked_processes(mark)
        if not left:
            return
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for p in left:
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
        time.sleep(0.05)
