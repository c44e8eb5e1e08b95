"""Config family (PROTOCOL.md 9, issue: configuration must not fail open):
malformed TOML and wrong types for known keys must stop the worker at start
with exit code 2 and a message naming the file; unknown keys are a WARNING
naming the key and the worker runs; valid files run. A worker that runs is
stopped with SIGTERM and must exit 0. No config ever crashes it (a signal
death or a sanitizer report is a failure). Each case is its own worker
process with its own config directory."""
import asyncio
import os
import shutil
import signal
import subprocess
import tomllib
import zlib

from core import Case, show
import harness

MALFORMED = [
    '[worker', 'worker]', '[worker]\nlisten_to_broadcast = ', '[worker]\n= 1',
    '[worker]\nlisten_to_broadcast = false\nlisten_to_broadcast = true', '[[worker]]\n[worker]',
    '[worker]\nx = "unterminated', '[worker]\nx = """never closed', "x = 'a\nb'",
    '[worker]\nx = 1__0', '[worker]\nx = 0x', '[worker]\nx = 1e', '[worker]\nx = 01',
    '[worker]\nx = [1, 2', '[worker]\nx = {a = 1', '[worker]\nx = {a = 1,}',
    '[worker]\nx = 1979-05-27T25:00:00', '[worker]\nx = "\\x41"', '[worker]\nx = "\\uD800"',
    '\xff\xfe[worker]', '[worker]\nx = "a\0b"', '[a.b]\n[a]\nb = 1',
    '[worker]\n' + 'a' * 100000 + ' = ', 'x = ' + '[' * 100000 + ']' * 100000,
    'x = ' + '{a = ' * 50000 + '1' + '}' * 50000, '[worker]\nx = tru',
    'x = 1\nx.y = 2', '[worker]\n\x01 = 1',
]
WRONG = [
    ('worker', 'listen_to_broadcast', ['"false"', '0', '[]', '{}', '"yes"']),
    ('worker', 'scheduler_address', ['1', 'true', '["127.0.0.1:1"]']),
    ('worker', 'logpath', ['1', 'false', '[]']),
    ('worker', 'ping_interval', ['"10"', '-1', 'nan', '[1]']),
    ('worker', 'kill_grace', ['"1"', '-5', 'inf']),
    ('resources', 'cpu_count', ['"many"', '[]', '-1', 'true']),
    ('resources', 'cpu_mem', ['true', '[]', '{}', '"lots"']),
    ('resources', 'gpu_count', ['"x"', '{}']),
    ('resources', 'gpu_mem', ['false', '[1]']),
    ('default_env_wrapper', 'name', ['1', '[]', 'true']),
    ('default_env_wrapper', 'arguments', ['1', '"x"']),
    (None, 'minimum_progress_reporting_interval', ['"1"', '[]', '-1']),
]
UNKNOWN = ['[workr]\nlisten_to_broadcast = false', '[worker]\nscheduler_addres = "x:1"',
           '[worker]\nlogpth = "/tmp"', '[resourcez]\ncpu_count = 1', 'totally_unknown = 1']
# no crash, exit 0 (runs) or 2 (refused with a limit) both fine
ANY = ['[' + 'a.' * 10000 + 'a]\nb = 1', 'x = ' + '[' * 400 + ']' * 400,
       'x = "' + 'y' * (4 << 20) + '"', 'x = 1' + '0' * 5000]
VALID = ['', '[worker]\n', '[resources]\ncpu_count = 2\ncpu_mem = "1G"',
         '[default_env_wrapper]\nname = "TrivialEnvironmentResolver"\narguments = {}']


def cases(full):
    out = []
    variants = []
    for i, text in enumerate(MALFORMED):
        variants.append(('malformed-%d' % i, text, 'error'))
    for section, key, vals in WRONG:
        for v in vals:
            line = '%s = %s' % (key, v)
            text = ('[%s]\n%s' % (section, line)) if section else line
            variants.append(('wrong-%s.%s=%s' % (section or '', key, v), text, 'error'))
    for i, text in enumerate(UNKNOWN):
        variants.append(('unknown-%d' % i, text, 'warn'))
    for i, text in enumerate(ANY):
        variants.append(('limits-%d' % i, text, 'any'))
    for i, text in enumerate(VALID):
        variants.append(('valid-%d' % i, text, 'run'))
    # sanity of the generator itself: 'error' ones that tomllib accepts must
    # be wrong types, 'run'/'warn' ones must parse
    for name, text, want in variants:
        try:
            tomllib.loads(text)
            parses = True
        except (tomllib.TOMLDecodeError, RecursionError, ValueError):
            parses = False
        if want in ('run', 'warn') and not parses:
            raise RuntimeError('config case %s does not parse' % name)
        if name.startswith('malformed') and parses:
            raise RuntimeError('config case %s parses' % name)
    for name, text, want in variants:
        heavy = not full and want == 'error' and name.startswith('wrong') and \
            zlib.crc32(name.encode()) % 3 != 0
        out.append(Case('config', name, _one(text, want, name), heavy=False if full else heavy,
                        shows=show(text, 50)))
    return out


def _one(text, want, name):
    async def fn(c):
        c.delivered()
        d = os.path.join(c.tmp, 'cfg-' + '%08x' % zlib.crc32(name.encode()))
        os.makedirs(os.path.join(d, 'worker'), exist_ok=True)
        with open(os.path.join(d, 'worker', 'config.toml'), 'w', encoding='utf-8',
                  errors='surrogateescape') as f:
            f.write(text.replace('\xff\xfe', '\udcff\udcfe'))
        env = dict(os.environ, LIFEBLOOD_CONFIG_LOCATION=d)
        try:
            # --generate-config-only with the file present: no crash
            p = subprocess.run([harness.BIN, 'worker', '--generate-config-only'], env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            if p.returncode < 0 or b'Sanitizer' in p.stderr or p.returncode > 2:
                raise AssertionError('--generate-config-only: exit %d %s'
                                     % (p.returncode, p.stderr[-300:]))
            await _start(c, env, want, d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return fn


async def _start(c, env, want, d):
    if not hasattr(c, 'cfg_s'):
        import core
        c.cfg_s = core.CampaignScheduler()
        await c.cfg_s.start()
        c.h.peers.append(c.cfg_s)
    hellos = lambda: sum(1 for e in c.cfg_s.events if e[1] == 'worker.hello')  # noqa: E731
    n = hellos()
    p = subprocess.Popen([harness.BIN, 'worker', '--scheduler-address', c.cfg_s.addr,
                          '--no-loop'], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(250):                       # up to 5 s
            if p.poll() is not None or hellos() > n:
                break
            await asyncio.sleep(0.02)
        running = p.poll() is None
        if running:
            p.send_signal(signal.SIGTERM)
            for _ in range(500):                   # the loop must run: bye goes to cfg_s
                if p.poll() is not None:
                    break
                await asyncio.sleep(0.02)
            if p.poll() is None:
                p.kill()
                p.wait()
                raise AssertionError('did not exit within 10 s of SIGTERM')
        log = p.stdout.read().decode('utf-8', 'replace')
        code = p.returncode
        if 'Sanitizer' in log or (code < 0 and not running) or code in (134, 139):
            raise AssertionError('crashed: exit %d: %s' % (code, log[-300:]))
        if want == 'error':
            if running or code != 2:
                raise AssertionError('a bad config was not refused at start (%s, exit %d)'
                                     % ('it ran' if running else 'exited', code))
            if 'config.toml' not in log:
                raise AssertionError('the error does not name the file: %s' % log[-300:])
        elif want == 'any':
            if not running and code != 2:
                raise AssertionError('exit %d: %s' % (code, log[-300:]))
        else:
            if not running:
                raise AssertionError('a usable config stopped the worker: exit %d: %s'
                                     % (code, log[-300:]))
            if code != 0:
                raise AssertionError('SIGTERM exit %d' % code)
            if want == 'warn' and 'WARNING' not in log:
                raise AssertionError('an unknown key gave no WARNING')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
