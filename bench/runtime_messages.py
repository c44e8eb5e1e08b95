"""Invocation-message latency between two workers on this machine: a sender
payload on worker A calls lifeblood_connection.message_to_invocation_send
100 times (its CLOCK_MONOTONIC as the message), a receiver payload on worker
B receives them; the path is payload -> worker A runtime API -> scheduler
(forward_invocation_message) -> worker B (invocation_message) -> mailbox ->
payload. The scheduler is the reference peer (Python, asyncio).
Prints the median and p99 of send call -> message in the receiver's hands,
and of the whole send call (until `delivered` is back), and writes JSON.
Usage: runtime_messages.py [--count N] [--json FILE]"""
import asyncio
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'peer'))
from harness import Harness  # noqa: E402
from lbpeer import make_job, next_invocation_id  # noqa: E402

RECEIVER = '''
import sys, time, lifeblood_connection as lc
for i in range(int(sys.argv[1])):
    src, data = lc.message_to_invocation_receive('bench')
    print('RX', time.monotonic() - float(data.decode()), flush=True)
'''
SENDER = '''
import sys, time, lifeblood_connection as lc
for i in range(int(sys.argv[2])):
    t0 = time.monotonic()
    lc.message_to_invocation_send(int(sys.argv[1]), 'bench', repr(t0).encode())
    print('TX', time.monotonic() - t0, flush=True)
'''


def values(out, tag):
    res = []
    for line in out.splitlines():
        if line.startswith('[OUT]') and '] ' in line:
            text = line.split('] ', 1)[1]
            if text.startswith(tag + ' '):
                res.append(float(text.split()[1]) * 1e3)
    return res


def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(0.99 * (len(v) - 1) + 0.5))]


async def measure(h, count, backend):
    s = await h.scheduler()
    for _ in range(2):
        h.worker(['--scheduler-address', s.addr, '--no-loop'], env={'LBW_REACTOR': backend})
    a, b = await s.wait_worker(count=2)
    for name, text in (('rx', RECEIVER), ('tx', SENDER)):
        with open(os.path.join(h.tmp, name + '.py'), 'w') as f:
            f.write(text)
    r_iid, t_iid = next_invocation_id(), next_invocation_id()
    await s.task(b, make_job(['python3', os.path.join(h.tmp, 'rx.py'), str(count)], r_iid))
    await s.task(a, make_job(['python3', os.path.join(h.tmp, 'tx.py'), str(r_iid), str(count)],
                             t_iid))
    _, _, ra = await s.wait_report(r_iid, 120)
    _, _, ta = await s.wait_report(t_iid, 120)
    one_way, call = values(ra['stdout'], 'RX'), values(ta['stdout'], 'TX')
    if len(one_way) != count or len(call) != count:
        raise SystemExit('incomplete run:\n%s\n%s' % (ra['stdout'][-2000:], ta['stdout'][-2000:]))
    return one_way, call


def main():
    count = 100
    out = None
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == '--count':
            count = int(args.pop(0))
        elif a == '--json':
            out = args.pop(0)
    res = {}
    print('invocation messages between two workers, %d messages per backend (ms)' % count)
    print('| backend | send -> received, median | p99 | send call, median | p99 |')
    print('|---|---:|---:|---:|---:|')
    for backend in ('uring', 'epoll'):
        h = Harness('bench-messages')
        try:
            one_way, call = asyncio.get_event_loop().run_until_complete(
                measure(h, count, backend))
        finally:
            asyncio.get_event_loop().run_until_complete(h.close(True))
        res[backend] = {'one_way_median_ms': statistics.median(one_way),
                        'one_way_p99_ms': p99(one_way),
                        'send_call_median_ms': statistics.median(call),
                        'send_call_p99_ms': p99(call)}
        r = res[backend]
        print('| %s | %.2f | %.2f | %.2f | %.2f |' % (backend, r['one_way_median_ms'],
                                                     r['one_way_p99_ms'],
                                                     r['send_call_median_ms'],
                                                     r['send_call_p99_ms']))
    if out:
        with open(out, 'w') as f:
            json.dump(res, f, indent=1)


if __name__ == '__main__':
    main()
