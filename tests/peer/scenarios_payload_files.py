"""Integration scenarios for what a payload user owns and a root worker
later touches: the payload's extra-files directory is the payload user's,
and the worker removes it after the invocation. A payload (run as nobody
under a root worker) that leaves a 3000-level directory tree there and
symlinks to a directory outside must not crash the worker (its removal
once recursed by path, a stack frame with a path buffer per level) nor
make it delete anything through the links; the worker serves the next task.
The payload gets its user's HOME, USER and LOGNAME, not root's.
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


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
