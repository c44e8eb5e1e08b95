#!/bin/bash
# make demo — the main job on a built-in default: a local reference
# scheduler, two workers behind a pool proxy, sample payloads with progress,
# logs, a failure, a cancellation and a job pinned by the host ledger; then the event loop each backend
# gives on this machine, a real scheduler message decoded, and the pool on
# demand.
set -eu
cd "$(dirname "$0")/.."
B=${LBW_BUILD:-build}
echo "lifeblood-worker $("$B/lifeblood-worker" --version | awk '{print $2}') — demo"
echo
echo "1. A reference scheduler, workers, sample payloads and the host ledger:"
LBW_BIN="$PWD/$B/lifeblood-worker" python3 demo/demo.py
echo
echo "2. Event loop chosen on this machine (automatic):"
"$B/lifeblood-worker" reactor-info
echo
echo "3. The same with io_uring blocked the way container seccomp profiles block it:"
make -s "$B/tests/helpers/no_uring" >/dev/null
env -u LBW_REACTOR "$B/tests/helpers/no_uring" "$B/lifeblood-worker" reactor-info
echo
echo "4. Loopback ping-pong through both backends (3 short runs):"
make -s "$B/bench/pingpong" >/dev/null
"$B/bench/pingpong" --runs 3 --seconds 0.5
echo
echo "5. A real 'task' message from an upstream scheduler, decoded without executing"
echo "   anything (lifeblood-worker inspect; selected fields):"
"$B/lifeblood-worker" inspect tests/fixtures/frames/task_direct.frame | python3 -c '
import json, sys
f = json.load(sys.stdin)["frames"][0]
job = f["task_pickle"]["state"]
print("   frame  %s -> %s, session %s" % (f["src"], f["dst"], f["session"]))
print("   job    %s" % f["task_pickle"]["$object"])
print("   args   %s" % job["_InvocationJob__args"])
print("   ids    invocation %s, task %s" % (job["_InvocationJob__invocation_id"], job["_InvocationJob__task_id"]))
print("   attrs  %s" % json.dumps(job["_InvocationJob__attrs"], ensure_ascii=False))
'
echo
echo "6. The local worker pool on demand (lifeblood-worker pool simple --on-demand):"
LBW_BIN="$PWD/$B/lifeblood-worker" python3 demo/pool.py
