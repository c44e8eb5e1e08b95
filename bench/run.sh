#!/bin/bash
# Runs every benchmark with the binaries from $LBW_BUILD; figures go to the
# terminal and JSON to $LBW_BUILD/bench/*.json. Benchmarks are not tests.
#
#   LOADGEN_TASKS (200)  stamp tasks per backend for dispatch/completion
#   LOADGEN_LOG_MIB (1024)  size of the log-capture payload's output
#   LEDGER_ROUNDS (500)  claim/release rounds of the host ledger bench
#   MESH_DISPATCH_ROUNDS (2)  loadgen runs per side, alone vs 8 mesh peers
#   LOADGEN_ONLY  comma-separated loadgen sections (load,path,treekill,crash;
#               default all), e.g. LOADGEN_ONLY=path for the task path alone
#   SOAK_TASKS (10000)  tasks through one worker for the RSS/fd soak
#   CONTAIN_PROCS (1000)  processes of the payload ended by a drop and after a crash
#   POOL_TASKS (200)  tasks through an on-demand pool (spawn latency, tasks/s)
#   WORKER_CMD  worker command for the load generator ({bin}, {sched},
#               {backend} are replaced), e.g. another worker implementation
set -eu
cd "$(dirname "$0")/.."
B=${LBW_BUILD:-build}
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
"$B/bench/pingpong" --runs "${PINGPONG_RUNS:-5}" --seconds "${PINGPONG_SECONDS:-1}" \
    --json "$B/bench/pingpong.json"
echo
"$B/bench/codec" --seconds "${CODEC_SECONDS:-1}" --log-mib "${CODEC_LOG_MIB:-1024}" \
    --json "$B/bench/codec.json"
echo
"$B/bench/probe" --runs "${PROBE_RUNS:-1000}" --json "$B/bench/probe.json"
echo
"$B/bench/ledger" --rounds "${LEDGER_ROUNDS:-500}" --seconds "${LEDGER_SECONDS:-2}" \
    --bin "$PWD/$B/lifeblood-worker" --json "$B/bench/ledger.json"
echo
jobs="$B/bench/jobs"
python3 bench/make_jobs.py "$jobs" "$PWD/$B/tests/helpers/stamp" "$PWD/$B/bench/lines" \
    "${LOADGEN_LOG_MIB:-1024}" "$PWD/$B/bench/forktree"
"$B/bench/loadgen" --bin "$PWD/$B/lifeblood-worker" --stamp "$PWD/$B/tests/helpers/stamp" \
    --jobs "$jobs" --tasks "${LOADGEN_TASKS:-200}" --log-mib "${LOADGEN_LOG_MIB:-1024}" \
    ${WORKER_CMD:+--worker-cmd "$WORKER_CMD"} ${LOADGEN_ONLY:+--only "$LOADGEN_ONLY"} \
    --json "$B/bench/loadgen.json"
echo
bench/mesh_dispatch.sh "$B" "$jobs" "${MESH_DISPATCH_ROUNDS:-2}" "$B/bench/mesh_dispatch.json"
echo
LBW_BIN="$PWD/$B/lifeblood-worker" python3 bench/runtime_messages.py --count 100 \
    --json "$B/bench/runtime_messages.json"
echo
LBW_BIN="$PWD/$B/lifeblood-worker" python3 bench/soak.py --tasks "${SOAK_TASKS:-10000}" \
    --json "$B/bench/soak.json"
echo
LBW_BIN="$PWD/$B/lifeblood-worker" python3 bench/contain.py --procs "${CONTAIN_PROCS:-1000}" \
    --json "$B/bench/contain.json"
LBW_BIN="$PWD/$B/lifeblood-worker" python3 bench/pool.py --count "${POOL_TASKS:-200}" \
    --json "$B/bench/pool.json"
