#!/bin/bash
# The host ledger's cost on the whole task path: bench/loadgen's dispatch
# figure (`task` sent -> payload main entered, through a real worker
# process) with the worker alone on the host's mesh, and with 8 peers in
# it (idle lifeblood-worker processes that joined the mesh first, so one
# of them is the arbiter and every claim of the measured worker is a round
# trip to another process, broadcast to 8). Runs interleaved: alone, 8
# peers, alone, 8 peers. The mesh is the default one (loadgen's workers
# use the default config), so no other lifeblood-worker should run here.
#
# Usage: mesh_dispatch.sh BUILD_DIR JOBS_DIR [ROUNDS_PER_SIDE] [JSON]
set -eu
B=$1 JOBS=$2 N=${3:-2} OUT=${4:-}
BIN=$PWD/$B/lifeblood-worker
tmp=$(mktemp -d /tmp/lbw-mesh-dispatch-XXXXXX)
peers=()
cleanup() {
    for pid in "${peers[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${peers[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
start_peers() {
    for i in 1 2 3 4 5 6 7 8; do
        mkdir -p "$tmp/p$i/worker"
        printf '[worker]\nlisten_to_broadcast = false\nlogpath = "%s/p%d/logs"\n' "$tmp" "$i" \
            >"$tmp/p$i/worker/config.toml"
        # a scheduler that is never there: the peer stays in the mesh, idle
        LIFEBLOOD_CONFIG_LOCATION=$tmp/p$i "$BIN" --loglevel ERROR worker \
            --scheduler-address 127.0.0.1:9 >"$tmp/p$i.log" 2>&1 &
        peers+=($!)
        [ "$i" = 1 ] && sleep 0.3 # the first founds the mesh: it is the arbiter
    done
    # all 8 joined (each binds its own member name under the mesh)
    for _ in $(seq 100); do
        n=$(grep -c 'lifeblood-worker/ledger/[0-9a-f]*/m/' /proc/net/unix || true)
        [ "$n" -ge 8 ] && return 0
        sleep 0.1
    done
    echo "mesh_dispatch: the peers did not join the mesh" >&2
    return 1
}
stop_peers() {
    for pid in "${peers[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${peers[@]}"; do wait "$pid" 2>/dev/null || true; done
    peers=()
}
run() { # SIDE K
    "$PWD/$B/bench/loadgen" --bin "$BIN" --stamp "$PWD/$B/tests/helpers/stamp" --jobs "$JOBS" \
        --tasks 100 --rounds 2 --log-mib 1 --json "$tmp/$1-$2.json" >"$tmp/$1-$2.out" 2>&1 ||
        { echo "mesh_dispatch: loadgen failed:" >&2; tail -5 "$tmp/$1-$2.out" >&2; return 1; }
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["backends"]
print("%.1f %.1f %.1f %.1f" % (d["uring"]["dispatch_p50_us"], d["epoll"]["dispatch_p50_us"],
      d["uring"]["dispatch_p99_us"], d["epoll"]["dispatch_p99_us"]))' "$tmp/$1-$2.json"
}
echo "mesh dispatch (loadgen: task sent -> payload main, 100 tasks per backend a run)"
res=()
for k in $(seq "$N"); do
    a=$(run alone "$k")
    start_peers
    p=$(run peers "$k")
    stop_peers
    echo "  round $k: alone p50 uring/epoll ${a% * *} us (p99 ${a#* * });" \
         "8 peers p50 ${p% * *} us (p99 ${p#* * })"
    res+=("$a" "$p")
done
python3 - "$OUT" "${res[@]}" <<'PY'
import json, statistics, sys
out, vals = sys.argv[1], [list(map(float, v.split())) for v in sys.argv[2:]]
alone, peers = vals[0::2], vals[1::2]
med = lambda rows, i: statistics.median(r[i] for r in rows)
r = {"alone_p50_us": {"uring": med(alone, 0), "epoll": med(alone, 1)},
     "peers8_p50_us": {"uring": med(peers, 0), "epoll": med(peers, 1)}}
print("  median p50: alone uring %.1f / epoll %.1f us; 8 peers uring %.1f / epoll %.1f us"
      % (r["alone_p50_us"]["uring"], r["alone_p50_us"]["epoll"],
         r["peers8_p50_us"]["uring"], r["peers8_p50_us"]["epoll"]))
if out:
    json.dump(dict(r, benchmark="mesh_dispatch", rounds=len(alone)), open(out, "w"))
PY
