"""The hostile-input campaign against a live lifeblood-worker.

    python3 tests/abuse/campaign.py [FAMILY...]     (LBW_BIN = the binary)

Families: harness (self-checks of the campaign itself), transport, json,
pickle, runtime, config, payload. Heavy cases (big frames, floods, deep
nesting, slow clients) are sampled by default; ABUSE_FULL=1 runs every
case. ABUSE_FILTER=substring keeps matching cases only. Prints one line per
family and a closing "N passed, N failed"; exits 1 on any failure. The
invariants are in core.py."""
import asyncio
import os
import resource
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import core  # noqa: E402
import harness  # noqa: E402
import fam_transport  # noqa: E402
import fam_json  # noqa: E402
import fam_pickle  # noqa: E402
import fam_runtime  # noqa: E402
import fam_config  # noqa: E402
import fam_payload  # noqa: E402

FAMILIES = {'transport': fam_transport, 'json': fam_json, 'pickle': fam_pickle,
            'runtime': fam_runtime, 'config': fam_config, 'payload': fam_payload}
# heavy cases kept by default: every HEAVY_EVERY-th of a family
HEAVY_EVERY = 3


def select(cases, full, flt):
    out, k = [], 0
    for c in cases:
        if flt and flt not in c.name:
            continue
        if c.heavy and not full:
            k += 1
            if k % HEAVY_EVERY != 1:
                continue
        out.append(c)
    return out


async def self_check(ctx):
    """The harness must pass a benign case and must catch a stopped worker."""
    res = []

    async def benign(c):
        r = await c.command('ping', {}, 1.0)
        if not (isinstance(r, dict) and r.get('ps') == 0):
            raise AssertionError('ping %r' % (r,))
        r, rep = await c.run_task(['/bin/echo', 'benign'])
        if not (isinstance(r, dict) and r.get('status') == 0) or 'benign' not in rep['stdout']:
            raise AssertionError('benign task %r' % (r,))
    f = await core.run_case(ctx, core.Case('harness', 'benign', benign))
    res.append(('benign input passes', f is None, f))

    async def stopped(c):
        c.delivered()
        await asyncio.sleep(0.1)
    os.kill(ctx.w.pid, signal.SIGSTOP)
    pid = ctx.w.pid
    try:
        f = await core.run_case(ctx, core.Case('harness', 'stopped', stopped))
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    res.append(('a SIGSTOPped worker is caught', f is not None and 'ping' in f, f))
    return res


async def main(argv):
    full = os.environ.get('ABUSE_FULL') == '1'
    flt = os.environ.get('ABUSE_FILTER', '')
    want = argv[1:] or ['harness'] + list(FAMILIES)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    h = harness.Harness('abuse')
    ctx = core.Ctx(h, h.tmp)
    total_p = total_f = 0
    failures = []
    summary = []
    ok = False
    t_all = time.monotonic()
    try:
        await ctx.start()
        print('worker %s (pid %d): idle RSS %d KiB, %d fds; %s' % (
            ctx.addr, ctx.w.pid, ctx.idle_rss, ctx.idle_fds,
            'all cases' if full else 'heavy cases sampled (ABUSE_FULL=1 for all)'), flush=True)
        if 'harness' in want:
            for what, good, detail in await self_check(ctx):
                print('  harness: %s: %s%s' % (what, 'ok' if good else 'BROKEN',
                                               '' if good else ' (%s)' % detail), flush=True)
                total_p += good
                total_f += not good
                if not good:
                    failures.append(('harness', what, '', detail))
        # every family's cases are generated before the first runs
        selected = {fam: select(FAMILIES[fam].cases(full), full, flt)
                    for fam in want if fam != 'harness'}
        # ABUSE_EVERY=N runs every Nth case of each family (a slower build's
        # share of the campaign); the cases run are the same on every run
        every = max(1, int(os.environ.get('ABUSE_EVERY', '1') or '1'))
        if every > 1:
            selected = {fam: cases[::every] for fam, cases in selected.items()}
            print('every %d. case of each family (ABUSE_EVERY)' % every, flush=True)
        for fam in want:
            if fam == 'harness':
                continue
            cases = selected[fam]
            t0 = time.monotonic()
            p = f = 0
            for c in cases:
                t1 = time.monotonic()
                msg = await core.run_case(ctx, c)
                if os.environ.get('ABUSE_VERBOSE'):
                    print('  %-5s %6.2f s %s/%s' % ('ok' if msg is None else 'FAIL',
                                                   time.monotonic() - t1, fam, c.name),
                          flush=True)
                if msg is None:
                    p += 1
                else:
                    f += 1
                    failures.append((fam, c.name, c.shows, msg))
                    print('  FAIL %s/%s: %s\n       input: %s' % (fam, c.name, msg[:300],
                                                                  c.shows[:120]), flush=True)
            line = '%-9s %4d cases: %4d passed, %4d failed (%.1f s)' % (
                fam, len(cases), p, f, time.monotonic() - t0)
            summary.append(line)
            print(line, flush=True)
            total_p += p
            total_f += f
        ok = total_f == 0
    finally:
        await h.close(True)          # failures were printed case by case
    if failures:
        print('\nsummary:')
        for line in summary:
            print('  ' + line)
    print('abuse campaign: %d passed, %d failed (%.0f s, %d worker restarts)'
          % (total_p, total_f, time.monotonic() - t_all, ctx.restarts))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(asyncio.get_event_loop().run_until_complete(main(sys.argv)))
