#!/bin/bash
# Runs every benchmark with the binaries from $LBW_BUILD; figures go to the
# terminal and JSON to $LBW_BUILD/bench/*.json. Benchmarks are not tests.
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
