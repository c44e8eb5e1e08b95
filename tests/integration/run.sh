#!/bin/bash
# Runs every tests/integration/t_*.sh once per reactor backend (LBW_REACTOR=
# uring, then epoll) with the binaries from $LBW_BUILD. Each test is a bash
# script that exits 0 on success; its output is shown only when it fails.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
export LBW_BUILD=${LBW_BUILD:-build}
export LBW_BIN=$PWD/$LBW_BUILD/lifeblood-worker
export LBW_HELPERS=$PWD/$LBW_BUILD/tests/helpers
filter=${1:-}
pass=0 fail=0 failed=()
backends="uring epoll"
if ! "$LBW_BIN" --reactor=uring reactor-info >/dev/null 2>&1; then
    echo "NOTE: io_uring unavailable here; integration tests run on epoll only"
    backends="epoll"
fi
for t in tests/integration/t_*.sh; do
    [ -n "$filter" ] && [[ "$t" != *"$filter"* ]] && continue
    for b in $backends; do
        name="$(basename "$t" .sh)[$b]"
        out=$(mktemp)
        start=$(date +%s%N)
        if LBW_REACTOR=$b timeout 300 bash "$t" >"$out" 2>&1; then
            ms=$(( ($(date +%s%N) - start) / 1000000 ))
            printf '  %-50s passed (%d.%ds)\n' "$name" $((ms / 1000)) $((ms % 1000 / 100))
            pass=$((pass + 1))
        else
            echo "  $name FAILED:"
            sed 's/^/    | /' "$out" | tail -40
            fail=$((fail + 1))
            failed+=("$name")
        fi
        rm -f "$out"
    done
done
echo
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
