"""Integration scenarios for what a payload user owns and a root worker
later touches: the payload's extra-files directory is the payload user's,
and the worker removes it after the invocation. A payload (run as nobody
under a root worker) that leaves a 3000-level directory tree there and
symlinks to a directory outside must not crash the worker (its removal
once recursed by path, a stack frame with a path buffer per level) nor
make it delete anything through the links; the worker serves the next task.
The payload gets its user's HOME, USER and LOGNAME, not root's. It cannot
move itself out of its invocation cgroups, nest cgroups or raise its limits.
Scenarios that need a root worker print a SKIP line without.
Usage: scenarios_payload_files.py [NAME...]"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
from lbpeer import make_job, next_invocation_id  # noqa: E402
from scenarios import check, poll_until, start  # noqa: E402

SCENARIOS = {}

DEEP = r'''
import os, sys
ef = os.path.dirname(os.path.abspath(sys.argv[1]))
outside = sys.argv[2]
os.symlink(outside, os.path.join(ef, 'top-link'))
os.chdir(ef)
for i in range(3000):
    os.mkdir('d')
    os.chdir('d')
    if i in (5, 40, 2999):
        os.symlink(outside, 'link')
print('deep', os.getuid(), ef)
'''


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


@scenario
async def deep_tree_and_links_in_extra_files(h):
    if os.geteuid() != 0:
        print('SKIP: deep_tree_and_links_in_extra_files: the worker is not root')
        return
    py = '/usr/bin/python3'  # the worker's PATH may lead into root's home
    if not os.access(py, os.X_OK):
        print('SKIP: deep_tree_and_links_in_extra_files: no %s' % py)
        return
    outside = os.path.join(h.tmp, 'outside')
    os.mkdir(outside, 0o755)
    keep = os.path.join(outside, 'keep')
    with open(keep, 'w') as f:
        f.write('root-owned, must stay\n')
    s, w, addr = await start(h, wcfg='payload_user = "nobody"\n', env={'TMPDIR': '/tmp'})
    iid = next_invocation_id()
    pk = make_job([py, '-c', DEEP, ':/in/a.txt', outside], iid,
                  extra_files={'in/a.txt': b'extra\n'})
    r = await s.task(addr, pk)
    check(r == {'status': 0}, 'task reply %r' % (r,))
    _, name, args = await s.wait_report(iid, 60)
    check(name == 'worker.done', '%s %r' % (name, args.get('stdout', '')[-400:]))
    m = re.search(r'deep (\d+) (/\S+)', args['stdout'])
    check(m and m.group(1) == '65534', 'the payload ran as nobody: %r' % args['stdout'][-300:])
    efs = os.path.dirname(m.group(2))  # TMPDIR/lifeblood_efs_XXXX
    await poll_until(lambda: not os.path.lexists(efs), 30, 'the extra-files directory removed')
    check(w.proc.poll() is None, 'the worker is alive (exit %r)' % (w.proc.poll(),))
    check(os.path.exists(keep), 'nothing outside was removed through the links')
    # it still serves
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/echo', 'next'], iid))
    check(r == {'status': 0}, 'second task reply %r' % (r,))
    _, name, args = await s.wait_report(iid, 30)
    check(name == 'worker.done' and 'next' in args['stdout'], 'second task %s' % name)


@scenario
async def payload_user_home_and_name(h):
    """A root worker's payload runs with its user's HOME, USER and LOGNAME
    (from passwd), not root's."""
    if os.geteuid() != 0:
        print('SKIP: payload_user_home_and_name: the worker is not root')
        return
    import pwd
    home = pwd.getpwnam('nobody').pw_dir
    s, w, addr = await start(h, wcfg='payload_user = "nobody"\n',
                             env={'TMPDIR': '/tmp', 'HOME': '/root', 'USER': 'root',
                                  'LOGNAME': 'root'})
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sh', '-c', 'echo "env $HOME $USER $LOGNAME"'], iid))
    check(r == {'status': 0}, 'task reply %r' % (r,))
    _, name, args = await s.wait_report(iid, 30)
    m = re.search(r'env (\S+) (\S+) (\S+)', args['stdout'])
    check(m and m.groups() == (home, 'nobody', 'nobody'),
          'HOME USER LOGNAME of the payload: %r' % ((m.groups() if m else args['stdout']),))


ESCAPE = r'''
iid=$1; shift
for d in "$@"; do
  inv="$d/inv-$iid"
  for f in "$d/cgroup.procs" "$d/../cgroup.procs" "$inv/../../../cgroup.procs"; do
    if (echo $$ > "$f") 2>/dev/null; then echo "moved $f"; else echo "denied $f"; fi
  done
  if mkdir "$inv/escape" 2>/dev/null; then echo "made $inv/escape"; else echo "denied mkdir"; fi
  for f in pids.max memory.max memory.limit_in_bytes cpuset.cpus; do
    [ -e "$inv/$f" ] || continue
    if (echo 999999 > "$inv/$f") 2>/dev/null; then echo "wrote $inv/$f"; else echo "denied $f"; fi
  done
done
echo "uid $(id -u)"
sed 's/^/cg /' /proc/self/cgroup
'''


@scenario
async def payload_cannot_leave_or_change_its_cgroups(h):
    """A root worker's payload (nobody) cannot move itself out of its
    invocation cgroups (into the worker's directory, PARENT or the
    hierarchy's top), nest cgroups of its own, or raise its limits: every
    cgroup file and directory the worker made is root's."""
    if os.geteuid() != 0:
        print('SKIP: payload_cannot_leave_or_change_its_cgroups: the worker is not root')
        return
    from scenarios_contain import containment, dirs_of
    s, w, addr = await start(h, wcfg='payload_user = "nobody"\n', env={'TMPDIR': '/tmp'})
    mode, d = containment(w)
    if mode == 'off':
        print('SKIP: payload_cannot_leave_or_change_its_cgroups: containment is off (%s)' % d)
        return
    dirs = dirs_of(w)
    check(dirs, 'the worker\'s invocation directories from %r' % d)
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sh', '-c', ESCAPE, 'sh', str(iid)] + dirs, iid))
    check(r == {'status': 0}, 'task reply %r' % (r,))
    _, name, args = await s.wait_report(iid, 30)
    out = re.findall(r'\[OUT\]\[[^]]+\] (.*)', args['stdout'])
    check('uid 65534' in out, 'the payload ran as nobody: %r' % out[-5:])
    bad = [l for l in out if l.startswith(('moved', 'made', 'wrote'))]
    check(not bad, 'the payload changed its cgroups: %r' % bad)
    check(sum(l.startswith('denied') for l in out) >= 4 * len(dirs), 'attempts: %r' % out)
    cgs = [l for l in out if l.startswith('cg ')]
    for x in dirs:
        tail = '/worker-%d-' % w.pid
        check(any(tail in l and l.endswith('/inv-%d' % iid) for l in cgs),
              'still in its own cgroups: %r' % cgs)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
