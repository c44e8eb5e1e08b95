"""Integration scenarios for containment (each payload born in cgroups of
its own, on this host's real hierarchies, v2 and v1 alike): a payload that
allocates past its claimed memory is OOM-killed and its log and the
worker's say so; a bounded fork bomb run as nobody (with ulimit -u) is
stopped by the pids limit while the worker keeps answering; a payload that
exits and leaves a double-forked, SIGTERM-ignoring daemon leaves nothing;
the payload's /proc/self/cgroup and Cpus_allowed_list show its own cgroups
and claimed CPUs; a SIGKILLed worker's invocation cgroups in every
hierarchy are cleaned by the next one; a root worker runs payloads as
worker.payload_user; a worker placed in a delegated cgroup v2 directory
moves into a leaf and creates invocations beside it.
Scenarios that need writable cgroups (root) print a SKIP line without.
Usage: scenarios_contain.py [NAME...]"""
import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run  # noqa: E402
from lbpeer import make_job, next_invocation_id  # noqa: E402
from scenarios import check, poll_until, start  # noqa: E402
from scenarios_cgroup import alive, read_pid  # noqa: E402
from scenarios_ledger import job  # noqa: E402

SCENARIOS = {}
M = 1 << 20


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def containment(w):
    """(mode, description) from the worker's one containment line."""
    m = re.search(r'\] containment: (\w+)(.*)', w.log())
    if m:
        return m.group(1), m.group(2)
    m = re.search(r'containment is off: (.*)', w.log())
    return 'off', m.group(1) if m else '?'


async def contained(h, name, wcfg='', env=None, extra_args=()):
    s, w, addr = await start(h, extra_args=extra_args, wcfg=wcfg, env=env)
    mode, d = containment(w)
    if mode == 'off':
        print('SKIP: %s: containment is off here (%s)' % (name, d))
        return None
    return s, w, addr


def v1_mounts():
    """{controller: mount point} of the v1 hierarchies, from mountinfo."""
    out = {}
    with open('/proc/self/mountinfo') as f:
        for line in f:
            pre, post = line.split(' - ', 1)
            fs, _, opts = post.split()[:3]
            if fs == 'cgroup':
                for c in opts.split(','):
                    out[c] = pre.split()[4]
    return out


def dirs_of(w):
    """The worker's own invocation directories (v2 and each v1), from its
    containment line."""
    _, d = containment(w)
    return re.findall(r'(?:cgroup v2|v1 \w+) (/[^;\s]+)', d)


async def run_job(s, addr, pk, iid, timeout=60):
    r = await s.task(addr, pk)
    check(r == {'status': 0}, 'task reply %r' % (r,))
    return await s.wait_report(iid, timeout)


@scenario
async def oom_inside_the_claim(h):
    """64 MiB claimed, 256 MiB touched: the kernel kills it inside its limit,
    and both logs say so."""
    c = await contained(h, 'oom_inside_the_claim')
    if not c:
        return
    s, w, addr = c
    iid = next_invocation_id()
    pk = job(['python3', '-c', 'import time; b = b"x" * (256 << 20); time.sleep(5)'], iid,
             mem=64 * M)
    _, name, args = await run_job(s, addr, pk, iid)
    check(name == "worker.done", "reported %s" % name)
    check(re.search(r'\[WORKER\]\[[^]]+\] killed by the kernel: out of memory inside its '
                    r'limit of %d bytes' % (64 * M), args['stdout']),
          'the invocation log says OOM inside the limit: %r' % args['stdout'][-600:])
    check(re.search(r'\[ERROR\].*invocation %d: killed by the kernel: out of memory inside '
                    r'its limit of %d bytes' % (iid, 64 * M), w.log()),
          'one ERROR line in the worker log')


@scenario
async def fork_bomb_stopped_by_pids_max(h):
    """A bounded fork bomb (at most 2^9 shells and their sleeps) as nobody with
    ulimit -u 400: pids.max 64 stops it, the worker answers meanwhile, the
    leftovers are ended and the log says which limit stopped it."""
    c = await contained(h, 'fork_bomb_stopped_by_pids_max',
                        wcfg='payload_user = "nobody"\n\n[containment]\npids_max = 64\n')
    if not c:
        return
    s, w, addr = c
    if os.geteuid() != 0:
        print('SKIP: fork_bomb_stopped_by_pids_max: only as root (the payload must run as '
              'nobody)')
        return
    iid = next_invocation_id()
    # the payload's main shell exits after 3 s; what the bomb made sleeps 30 s
    # and is ended as its leftovers
    bomb = ('ulimit -u 400; b() { if [ "$1" -gt 0 ]; then b $(($1-1)) & b $(($1-1)) & fi; '
            'sleep 30; }; b 8 & sleep 3; echo bomb-done')
    r = await s.task(addr, make_job(['/bin/sh', '-c', bomb], iid))
    check(r == {'status': 0}, r)
    # the worker keeps answering while the bomb runs
    for _ in range(3):
        st = await asyncio.wait_for(s.call(addr, 'status'), 5)
        check(st['state'] == 2 or st['invocation_id'] in (iid, None), 'status %r' % st)
        await asyncio.sleep(0.3)
    _, name, args = await s.wait_report(iid, 60)
    check(name == 'worker.done', name)
    check('stopped by the process limit' in args['stdout'] and 'pids.max 64' in args['stdout'],
          'the log says the pids limit stopped it: %r' % args['stdout'][-800:])
    check(re.search(r'\[ERROR\].*invocation %d: stopped by the process limit' % iid, w.log()),
          'one ERROR line')
    check(re.search(r'invocation %d: the payload exited and left \d+ process\(es\) behind'
                    % iid, w.log()), 'the leftovers were counted')
    for d in dirs_of(w):
        inv = os.path.join(d, 'inv-%d' % iid)
        await poll_until(lambda: not os.path.exists(inv), 10, 'removal of %s' % inv)


@scenario
async def leftover_daemon_leaves_nothing(h):
    """The payload exits 0 after double-forking a daemon that ignores
    SIGTERM: the daemon is ended through the cgroup, every hierarchy's
    invocation cgroup removed."""
    c = await contained(h, 'leftover_daemon_leaves_nothing', wcfg='kill_grace = 0.5')
    if not c:
        return
    s, w, addr = c
    pidfile = os.path.join(h.tmp, 'daemon.pid')
    script = ('( setsid sh -c \'trap "" TERM; echo $$ > %s; exec sleep 1000\' & ); '
              'i=0; while [ ! -s %s ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done'
              % (pidfile, pidfile))
    iid = next_invocation_id()
    _, name, args = await run_job(s, addr, make_job(['/bin/sh', '-c', script], iid), iid)
    dpid = await read_pid(pidfile)
    check(name == 'worker.done', name)
    check(not alive(dpid), 'the daemon %d outlived its invocation' % dpid)
    check(re.search(r'invocation %d: the payload exited and left 1 process\(es\) behind'
                    % iid, w.log()), 'the leftover counted in the log')
    for d in dirs_of(w):
        check(not os.path.exists(os.path.join(d, 'inv-%d' % iid)), 'removed in %s' % d)


def hierarchy_roots():
    """Mount points of every cgroup hierarchy (v2 and each v1), from mountinfo."""
    out = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            pre, post = line.split(' - ', 1)
            if post.split()[0] in ('cgroup', 'cgroup2'):
                out.append(pre.split()[4])
    return out


@scenario
async def escaped_daemon_still_ended(h):
    """A payload that runs as the worker's own user owns its cgroups as the
    worker does: its daemon moves itself out of them (into each
    hierarchy's root cgroup), ignores SIGTERM and is left behind when the
    payload exits. The worker, its child subreaper, still finds and ends
    it."""
    c = await contained(h, 'escaped_daemon_still_ended', wcfg='kill_grace = 0.5')
    if not c:
        return
    s, w, addr = c
    pidfile = os.path.join(h.tmp, 'escaped.pid')
    cgfile = os.path.join(h.tmp, 'escaped.cgroup')
    moves = '; '.join('echo $$ > %s/cgroup.procs' % m for m in hierarchy_roots())
    script = ('( setsid sh -c \'%s; trap "" TERM; cat /proc/self/cgroup > %s; echo $$ > %s; '
              'exec sleep 1000\' & ); '
              'i=0; while [ ! -s %s ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done'
              % (moves, cgfile, pidfile, pidfile))
    iid = next_invocation_id()
    _, name, args = await run_job(s, addr, make_job(['/bin/sh', '-c', script], iid), iid)
    dpid = await read_pid(pidfile)
    with open(cgfile) as f:
        check(all(l.rstrip().endswith(':/') for l in f), 'the daemon left its cgroups')
    check(name == 'worker.done', name)
    await poll_until(lambda: not alive(dpid), 10, 'the escaped daemon %d ended' % dpid)


@scenario
async def payload_sees_its_cgroups_and_cpus(h):
    c = await contained(h, 'payload_sees_its_cgroups_and_cpus')
    if not c:
        return
    s, w, addr = c
    iid = next_invocation_id()
    script = ('cat /proc/self/cgroup; grep Cpus_allowed_list /proc/self/status; '
              'echo "claim=$LIFEBLOOD_CLAIM_CPUS"')
    v1cs = v1_mounts().get('cpuset')
    if v1cs:  # the v1 cpuset cgroup's own CPUs, read by the payload
        script += ('; echo "cpuset=$(cat %s$(sed -n \'s/^[0-9]*:cpuset://p\' '
                   '/proc/self/cgroup)/cpuset.cpus)"' % v1cs)
    _, name, args = await run_job(s, addr, job(['/bin/sh', '-c', script], iid, cpus=1), iid)
    check(name == 'worker.done', name)
    out = args['stdout']
    lines = re.findall(r'\[OUT\]\[[^]]+\] (\d+:[^:\n]*:\S*)', out)
    mine = {l.split(':')[1]: l.split(':', 2)[2] for l in lines}
    want = set(v1_mounts()) & {'memory', 'cpuset', 'pids', 'freezer'}
    for ctl in want:
        check(mine.get(ctl, '').endswith('/inv-%d' % iid), '%s cgroup %r' % (ctl, mine.get(ctl)))
    if any(l.startswith('0::') for l in lines):
        check(mine[''].endswith('/inv-%d' % iid), 'v2 cgroup %r' % mine[''])
    claim = re.search(r'claim=(\S+)', out)
    cpus = re.search(r'Cpus_allowed_list:\s*(\S+)', out)
    check(claim and cpus and cpus.group(1) == claim.group(1),
          'Cpus_allowed_list %r vs the claim %r' % (cpus and cpus.group(1),
                                                     claim and claim.group(1)))
    if v1cs:
        cs = re.search(r'cpuset=(\S+)', out)
        check(cs and cs.group(1) == claim.group(1), 'cpuset.cpus %r vs the claim %r'
              % (cs and cs.group(1), claim.group(1)))


@scenario
async def sigkill_cleanup_in_every_hierarchy(h):
    c = await contained(h, 'sigkill_cleanup_in_every_hierarchy')
    if not c:
        return
    s, w, addr = c
    dirs = dirs_of(w)
    pidfile = os.path.join(h.tmp, 'p.pid')
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sh', '-c', 'echo $$ > %s; exec sleep 1000'
                                     % pidfile], iid))
    check(r == {'status': 0}, r)
    ppid = await read_pid(pidfile)
    for d in dirs:
        check(os.path.isdir(os.path.join(d, 'inv-%d' % iid)), 'inv cgroup in %s' % d)
    w.proc.kill()
    await w.wait_exit()
    hellos = sum(e[1] == 'worker.hello' for e in s.events)
    w2 = h.worker(['--scheduler-address', s.addr, '--no-loop'])
    await s.wait_for(lambda: sum(e[1] == 'worker.hello' for e in s.events) > hellos, 15,
                     'hello of the restarted worker')
    await poll_until(lambda: not alive(ppid), 10, 'the payload %d to be ended' % ppid)
    for d in dirs:
        check(not os.path.exists(d), 'the dead worker\'s %s is removed' % d)
        check(re.search(r'\[INFO\].*cleaned up cgroup %s of worker pid %d'
                        % (re.escape(d), w.pid), w2.log()), 'one INFO line for %s' % d)


@scenario
async def payload_runs_as_payload_user(h):
    if os.geteuid() != 0:
        print('SKIP: payload_runs_as_payload_user: the worker is not root')
        return
    # the extra files go to TMPDIR, which the payload user must reach (a test
    # runner's private TMPDIR would be root's alone: the worker warns)
    s, w, addr = await start(h, wcfg='payload_user = "nobody"\n', env={'TMPDIR': '/tmp'})
    iid = next_invocation_id()
    pk = make_job(['/bin/sh', '-c', 'id -u; stat -c %u "$0"; cat "$0"', ':/in/a.txt'], iid,
                  extra_files={'in/a.txt': b'extra\n'})
    _, name, args = await run_job(s, addr, pk, iid)
    check(name == 'worker.done', name)
    ids = re.findall(r'\[OUT\]\[[^]]+\] (\w+)', args['stdout'])
    check(ids == ['65534', '65534', 'extra'],
          'the payload ran as uid %r and its extra file is its own' % ids)
    check('payloads run as user nobody (uid 65534' in w.log(), 'the start line names the user')


@scenario
async def root_default_is_never_root(h):
    """A root worker without worker.payload_user runs payloads as the
    package's user or nobody, never root, and says so."""
    if os.geteuid() != 0:
        print('SKIP: root_default_is_never_root: the worker is not root')
        return
    s, w, addr = await start(h, wcfg='# payload_user unset\n')
    iid = next_invocation_id()
    _, name, args = await run_job(s, addr, make_job(['/bin/sh', '-c', 'id -u'], iid), iid)
    uid = re.findall(r'\[OUT\]\[[^]]+\] (\d+)', args['stdout'])
    check(uid and uid[0] != '0', 'the payload ran as uid %r' % uid)
    check(re.search(r'\[WARNING\].*payloads run as user \w+ \(uid %s\)' % uid[0], w.log()),
          'one WARNING names the user')


@scenario
async def delegated_leaf_and_beside(h):
    """In a cgroup marked delegated (trusted.delegate, as systemd's
    Delegate=yes), the worker moves into D/lifeblood-worker-main and its
    invocations live in D/lifeblood-worker/worker-*/inv-ID."""
    try:
        with open('/proc/self/mountinfo') as f:
            top = next(l.split(' - ')[0].split()[4] for l in f if ' - cgroup2 ' in l)
    except StopIteration:
        print('SKIP: delegated_leaf_and_beside: no cgroup v2 hierarchy')
        return
    d = os.path.join(top, 'lbw-test-%s' % os.path.basename(h.tmp))
    try:
        os.mkdir(d)
        os.setxattr(d, 'trusted.delegate', b'1')
    except OSError as e:
        print('SKIP: delegated_leaf_and_beside: cannot make a delegated cgroup (%s)' % e)
        return
    wrapper = os.path.join(h.tmp, 'in-cgroup.sh')
    with open(wrapper, 'w') as f:
        f.write('#!/bin/sh\necho $$ > %s/cgroup.procs || exit 1\nexec %s "$@"\n'
                % (d, os.path.abspath(harness.BIN)))
    os.chmod(wrapper, 0o755)
    saved = harness.BIN
    harness.BIN = wrapper
    try:
        s, w, addr = await start(h)
    finally:
        harness.BIN = saved
    try:
        mode, desc = containment(w)
        if mode == 'off' and os.environ.get('LBW_CGROUPS') == 'off':
            print('SKIP: delegated_leaf_and_beside: containment is off here (%s)' % desc)
            return
        check(mode == 'delegated', 'mode %s (%s)' % (mode, desc))
        with open('/proc/%d/cgroup' % w.pid) as f:
            own = [l.strip() for l in f if l.startswith('0::')][0]
        check(own.endswith('/lbw-test-%s/lifeblood-worker-main' % os.path.basename(h.tmp)),
              'the worker moved into the leaf: %s' % own)
        pidfile = os.path.join(h.tmp, 'p.pid')
        iid = next_invocation_id()
        r = await s.task(addr, make_job(['/bin/sh', '-c', 'echo $$ > %s; cat /proc/self/cgroup'
                                         % pidfile], iid))
        check(r == {'status': 0}, r)
        _, name, args = await s.wait_report(iid, 30)
        m = re.search(r'\] 0::(\S+)', args['stdout'])
        check(m and re.search(r'/lbw-test-[^/]+/lifeblood-worker/worker-\d+-\d+-\d+/inv-%d$'
                              % iid, m.group(1)), 'the payload beside the leaf: %r'
              % (m and m.group(1)))
        # a pool's next worker, started inside the leaf the first one made:
        # the same delegated cgroup, a directory of its own beside the leaf
        wrapper2 = os.path.join(h.tmp, 'in-leaf.sh')
        with open(wrapper2, 'w') as f:
            f.write('#!/bin/sh\necho $$ > %s/lifeblood-worker-main/cgroup.procs || exit 1\n'
                    'exec %s "$@"\n' % (d, os.path.abspath(saved)))
        os.chmod(wrapper2, 0o755)
        hellos = sum(e[1] == 'worker.hello' for e in s.events)
        harness.BIN = wrapper2
        try:
            w2 = h.worker(['--scheduler-address', s.addr, '--no-loop'])
        finally:
            harness.BIN = saved
        await s.wait_for(lambda: sum(e[1] == 'worker.hello' for e in s.events) > hellos, 15,
                         'hello of the second worker')
        mode2, desc2 = containment(w2)
        check(mode2 == 'delegated' and '/lbw-test-%s/lifeblood-worker/worker-%d-'
              % (os.path.basename(h.tmp), w2.pid) in desc2, 'second worker: %s %s'
              % (mode2, desc2))
        for x in (w, w2):
            x.proc.terminate()
            await x.wait_exit()
    finally:
        for x in h.workers:
            if x.proc.poll() is None:
                x.proc.kill()
                x.proc.wait()
        for root, subdirs, _ in os.walk(d, topdown=False):
            for sd in subdirs:
                try:
                    os.rmdir(os.path.join(root, sd))
                except OSError:
                    pass
        try:
            os.rmdir(d)
        except OSError as e:
            print('cannot remove %s: %s' % (d, e))


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
