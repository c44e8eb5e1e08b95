"""Integration scenarios for invocation cgroups and what a worker leaves
behind: a drop ends a double-forked daemon through its invocation cgroup,
which is removed; a worker SIGKILLed mid-task and started again leaves no
payload process running (with cgroups: the new worker ends its
predecessor's; without: the payload's direct child dies with the worker,
and what it double-forked is out of reach, as documented).
Usage: scenarios_cgroup.py [NAME...]"""
import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402
from lbpeer import make_job, next_invocation_id  # noqa: E402
from scenarios import check, poll_until, start  # noqa: E402

SCENARIOS = {}


def scenario(f):
    SCENARIOS[f.__name__] = f
    return f


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return False


def cgroup_of(pid):
    with open('/proc/%d/cgroup' % pid) as f:
        for line in f:
            if line.startswith('0::'):
                return line[3:].strip()
    return None


def cgroup_dir(w):
    """The worker's directory for invocation cgroups, from its start line,
    or None (then the scenario says SKIP)."""
    m = re.search(r'invocations get their own cgroups under (\S+)', w.log())
    return m.group(1) if m else None


def daemon_script(pidfile, ppidfile):
    # the payload ignores SIGTERM and leaves a double-forked sleeper in its
    # own session, re-parented away from the payload
    return ('echo $$ > %s; trap "" TERM; '
            '( setsid sh -c \'trap "" TERM; echo $$ > %s; exec sleep 1000\' & ) ; '
            'while :; do sleep 0.1; done' % (ppidfile, pidfile))


async def read_pid(path):
    await poll_until(lambda: os.path.exists(path) and open(path).read().strip(), 10, path)
    return int(open(path).read())


async def start_daemon_task(h, s, addr):
    pidfile = os.path.join(h.tmp, 'daemon.pid')
    ppidfile = os.path.join(h.tmp, 'payload.pid')
    for p in (pidfile, ppidfile):
        if os.path.exists(p):
            os.unlink(p)
    iid = next_invocation_id()
    r = await s.task(addr, make_job(['/bin/sh', '-c', daemon_script(pidfile, ppidfile)], iid))
    check(r == {'status': 0}, r)
    return iid, await read_pid(ppidfile), await read_pid(pidfile)


@scenario
async def drop_ends_the_invocation_cgroup(h):
    s, w, addr = await start(h, wcfg='kill_grace = 0.5')
    top = cgroup_dir(w)
    if top is None:
        print('SKIP: drop_ends_the_invocation_cgroup: the worker has no writable cgroup v2 '
              'directory here (%s)' % w.log().split('containment is off: ')[-1].split('\n')[0].strip())
        return
    iid, ppid, dpid = await start_daemon_task(h, s, addr)
    cg = cgroup_of(dpid)
    check(cg and cg.endswith('/inv-%d' % iid), 'the daemon is in cgroup %r' % cg)
    check(cg == cgroup_of(ppid), 'payload and daemon share the invocation cgroup')
    inv_dir = os.path.join(top, 'inv-%d' % iid)
    check(os.path.isdir(inv_dir), 'invocation cgroup %s exists' % inv_dir)
    r = await s.call(addr, 'drop')
    check(r == {}, 'drop reply %r' % r)
    rep = s.report_for(iid)
    check(rep and rep[1] == 'worker.dropped', 'dropped reported')
    check(not alive(dpid) and not alive(ppid), 'the tree survived the drop')
    check(re.search(r'invocation %d: cgroup kill of \d+ process\(es\) in %s'
                    % (iid, re.escape(inv_dir)), w.log()), 'the drop used the cgroup kill')
    await poll_until(lambda: not os.path.exists(inv_dir), 5, 'removal of %s' % inv_dir)
    check('removing cgroup %s: done' % inv_dir in w.log(), 'removal logged')


async def sigkill_and_restart(h, s, w, env=None):
    w.proc.kill()
    await w.wait_exit()
    hellos = sum(e[1] == 'worker.hello' for e in s.events)
    w2 = h.worker(['--scheduler-address', s.addr, '--no-loop'], env=env)
    await s.wait_for(lambda: sum(e[1] == 'worker.hello' for e in s.events) > hellos, 15,
                     'hello of the restarted worker')
    return w2


@scenario
async def sigkill_restart_leaves_no_payload(h):
    s, w, addr = await start(h)
    top = cgroup_dir(w)
    if top is None:
        print('SKIP: sigkill_restart_leaves_no_payload: no writable cgroup v2 directory; '
              'see sigkill_restart_without_cgroups')
        return
    iid, ppid, dpid = await start_daemon_task(h, s, addr)
    w2 = await sigkill_and_restart(h, s, w)
    await poll_until(lambda: not alive(dpid) and not alive(ppid), 10,
                     'the payload (%d) and its daemon (%d) to be ended' % (ppid, dpid))
    check(re.search(r'\[WARNING\] ended [1-9]\d* payload process\(es\) left running by '
                    r'worker\(s\) that died \(pid %d\)' % w.pid, w2.log()),
          'one WARNING with the count: %s' % w2.log()[-2000:])
    check(not os.path.exists(top), 'the dead worker\'s cgroup %s is removed' % top)
    # the new worker serves
    iid2 = next_invocation_id()
    addr2 = [e[2]['worker_addr'] for e in s.events if e[1] == 'worker.hello'][-1]
    r = await s.task(addr2, make_job(['/bin/true'], iid2))
    check(r == {'status': 0}, r)
    _, name, _ = await s.wait_report(iid2)
    check(name == 'worker.done', name)


@scenario
async def sigkill_restart_without_cgroups(h):
    """Without cgroups the payload's direct child dies with the worker
    (PR_SET_PDEATHSIG); a daemon that left its session is beyond reach."""
    s, w, addr = await start(h, env={'LBW_CGROUPS': 'off'})
    check('containment is off: LBW_CGROUPS=off' in w.log(),
          'no cgroups, and why, in the start line')
    iid, ppid, dpid = await start_daemon_task(h, s, addr)
    try:
        await sigkill_and_restart(h, s, w, env={'LBW_CGROUPS': 'off'})
        await poll_until(lambda: not alive(ppid), 10, 'the payload %d to die with the worker'
                         % ppid)
    finally:
        if alive(dpid):
            os.kill(dpid, 9)


if __name__ == '__main__':
    sys.exit(run(SCENARIOS, sys.argv))
