"""Runs lifeblood-worker processes against the reference peers for the
integration scenarios: a private config directory, the worker's log
captured to a file (shown when a scenario fails), bounded waits, and
clean-up that never leaves a process behind."""
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lbpeer  # noqa: E402

BIN = os.environ.get('LBW_BIN') or os.path.join(HERE, '..', '..', 'build', 'lifeblood-worker')


class Worker:
    def __init__(self, h, args, config='', env=None, wcfg='', broadcast=False, stdres=None):
        self.h = h
        self.n = len(h.workers)
        self.cfgdir = os.path.join(h.tmp, 'cfg%d' % self.n)
        os.makedirs(os.path.join(self.cfgdir, 'worker'), exist_ok=True)
        self.logroot = os.path.join(h.tmp, 'logs%d' % self.n)
        # the workers of one scenario share a host ledger of their own
        mesh = '' if '[mesh]' in config + wcfg else \
            '[mesh]\nnamespace = "lbw-test/%s"\n' % os.path.basename(h.tmp)
        # a root worker runs payloads as worker.payload_user (never root by
        # default): the scenarios' payloads read and write the test's root-
        # owned temporary files, so they say root explicitly unless a
        # scenario chooses the user itself
        if os.geteuid() == 0 and 'payload_user' not in wcfg:
            wcfg = 'payload_user = "root"\n' + wcfg
        with open(os.path.join(self.cfgdir, 'worker', 'config.toml'), 'w') as f:
            f.write('%s\n[worker]\nlisten_to_broadcast = %s\nlogpath = "%s"\n%s\n%s'
                    % (config, 'true' if broadcast else 'false', self.logroot, wcfg, mesh))
        if stdres is not None:
            d = os.path.join(self.cfgdir, 'standard_environment_resolver')
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, 'config.toml'), 'w') as f:
                f.write(stdres)
        self.logfile = os.path.join(h.tmp, 'worker%d.log' % self.n)
        e = dict(os.environ)
        e['LIFEBLOOD_CONFIG_LOCATION'] = self.cfgdir
        e.update(env or {})
        self.proc = subprocess.Popen([BIN, '--loglevel', 'DEBUG', 'worker'] + list(args),
                                     stdout=open(self.logfile, 'ab'),
                                     stderr=subprocess.STDOUT, env=e,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid

    def log(self):
        with open(self.logfile, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def vm_hwm_kib(self):
        with open('/proc/%d/status' % self.pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
        return None

    async def wait_exit(self, timeout=20):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError('worker %d did not exit within %d s' % (self.pid, timeout))
            await asyncio.sleep(0.02)
        return self.proc.returncode


class Harness:
    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix='lbw-%s-' % name)
        self.workers = []
        self.peers = []

    async def scheduler(self, port=0):
        s = await lbpeer.Scheduler(port=port).start()
        self.peers.append(s)
        return s

    async def pool(self):
        p = await lbpeer.PoolProxy().start()
        self.peers.append(p)
        return p

    def worker(self, args, config='', env=None, wcfg='', broadcast=False, stdres=None):
        w = Worker(self, args, config, env, wcfg, broadcast, stdres)
        self.workers.append(w)
        return w

    async def close(self, ok):
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                await w.wait_exit(15)
            except AssertionError:
                w.proc.kill()
                w.proc.wait()
        for p in self.peers:
            await p.close()
        if not ok or os.environ.get("LBW_SHOW_LOGS"):
            for w in self.workers:
                print('---- worker %d log (%s) ----' % (w.n, w.logfile))
                print(w.log()[-20000:])
        shutil.rmtree(self.tmp, ignore_errors=True)


class Skip(Exception):
    """Raised by a scenario that cannot run here; the reason is printed as
    "SKIP: reason" and the run exits 77 (never a silent pass)."""


USAGE = """usage: %(prog)s [NAME...]     run the named scenarios (all when none)
       %(prog)s --list [--exclude NAME...]   print the scenario names
Exit status: 0 all passed, 1 one failed, 77 every scenario was skipped."""


def run(scenarios, argv):
    """The command line of a scenario file; returns the exit status."""
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if args[:1] in (['-h'], ['--help']):
        print(USAGE % {'prog': prog})
        return 0
    if args[:1] == ['--list']:
        rest = args[1:]
        if rest[:1] == ['--exclude']:
            rest = rest[1:]
        elif rest:
            print(USAGE % {'prog': prog}, file=sys.stderr)
            return 2
        for name in sorted(set(scenarios) - set(rest)):
            print(name)
        return 0
    unknown = [n for n in args if n not in scenarios]
    if unknown:
        print('%s: no scenario named %s; --list names them'
              % (prog, ', '.join(unknown)), file=sys.stderr)
        return 2
    names = args or sorted(scenarios)
    failed = skipped = 0
    for name in names:
        h = Harness(name)
        ok = False
        why = None
        why_failed = ''
        t0 = time.monotonic()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(asyncio.wait_for(scenarios[name](h), 240))
            ok = True
        except Skip as e:
            ok = True
            why = str(e) or 'no reason given'
        except BaseException as e:  # noqa: BLE001 - report and go on
            import traceback
            traceback.print_exc()
            print('scenario %s FAILED: %r' % (name, e))
            why_failed = '%s: %s' % (type(e).__name__, e)
        finally:
            loop.run_until_complete(h.close(ok))
            loop.close()
        if why is not None:
            print('SKIP: %s: %s' % (name, why) if len(names) > 1 else 'SKIP: ' + why)
            skipped += 1
            continue
        # the reason again after the logs the harness printed on close, so
        # that a runner showing only the last lines still shows it
        print('scenario %s %s (%.1f s)%s' % (name, 'passed' if ok else 'FAILED',
                                             time.monotonic() - t0,
                                             '' if ok else ': ' + why_failed[:2000]))
        failed += not ok
    if failed:
        return 1
    return 77 if skipped == len(names) else 0
