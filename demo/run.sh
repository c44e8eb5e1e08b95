#!/bin/bash
# make demo — the main job on a built-in default. Today this shows the
# foundation the worker runs on: the event loop each backend gives on this
# machine, measured. The full local demo (reference scheduler, a pool of
# workers, sample payloads with progress and logs) replaces this as the
# worker daemon lands.
set -eu
cd "$(dirname "$0")/.."
B=${LBW_BUILD:-build}
echo "lifeblood-worker $("$B/lifeblood-worker" --version | awk '{print $2}') — demo"
echo
echo "1. Event loop chosen on this machine (automatic):"
"$B/lifeblood-worker" reactor-info
echo
echo "2. The same with io_uring blocked the way container seccomp profiles block it:"
make -s "$B/tests/helpers/no_uring" >/dev/null
env -u LBW_REACTOR "$B/tests/helpers/no_uring" "$B/lifeblood-worker" reactor-info
echo
echo "3. Loopback ping-pong through both backends (3 short runs):"
make -s "$B/bench/pingpong" >/dev/null
"$B/bench/pingpong" --runs 3 --seconds 0.5
echo
echo "Not yet in this build: the scheduler session, payload execution and the"
echo "pool (see docs/STATUS.md). 'make test' runs everything that is."
