#!/bin/bash
# Runs the integration tests, tests/integration/t_*.sh, once per reactor
# backend (LBW_REACTOR=uring, then epoll) with the binaries from $LBW_BUILD.
#
# Usage: run.sh [FILTER]
#   FILTER       runs the tests whose name contains FILTER (t_FILTER.sh)
#   TEST/SUB     runs the subtests of TEST whose name contains SUB, e.g.
#                run.sh worker_session/busy_drop   run.sh probe_live/netns
#
# A test is a bash script. It passes by exiting 0, fails by exiting with any
# other status, and is skipped by exiting 77 after printing "SKIP: reason"
# (a test never passes silently where it cannot run). A test made of
# several behaviours lists them with `t_NAME.sh --list` (one name a line)
# and runs one with `t_NAME.sh SUB`; each is reported on its own line as
# t_NAME/SUB[backend]. A test that does not use the reactor (a "# reactor:
# none" line in its header) runs once, without a backend in its name. A
# test's output is shown only when it fails.
#
# Tests write only to temporary directories: after the run the repository
# (build/ aside) must look exactly as before, checked with git.
# Prints "integration: N passed, N failed, N skipped" and exits non-zero on
# any failure. LBW_REQUIRE_URING=1 turns a missing io_uring into a failure.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
export LBW_BUILD=${LBW_BUILD:-build}
export LBW_BIN=$root/$LBW_BUILD/lifeblood-worker
export LBW_HELPERS=$root/$LBW_BUILD/tests/helpers
# Python imports of tests/peer and tests/python leave no __pycache__ behind.
export PYTHONDONTWRITEBYTECODE=1
filter=${1:-}
tfilter=$filter sfilter=
if [[ "$filter" == */* ]]; then
    tfilter=${filter%%/*} sfilter=${filter#*/}
fi
pass=0 fail=0 skip=0 failed=()
work=$(mktemp -d "${TMPDIR:-/tmp}/lbw-integration-XXXXXX")
trap 'rm -rf "$work"' EXIT

repo_state() {
    git -C "$root" status --porcelain --ignored --untracked-files=all -- . ':(exclude)build' \
        ":(exclude)$LBW_BUILD" 2>/dev/null
}
have_git=0
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    have_git=1
    repo_state >"$work/repo.before"
fi

backends="uring epoll" uring_skip=
if ! uring_err=$("$LBW_BIN" --reactor=uring reactor-info 2>&1 >/dev/null); then
    backends="epoll"
    uring_skip="io_uring unavailable here: $(tail -1 <<<"$uring_err" | sed "s/^\(\[[^]]*\]\)* *//")"
fi

report() { # NAME STATUS MS [REASON]
    case "$2" in
      passed)  printf '  %-60s passed (%d.%ds)\n' "$1" $(($3 / 1000)) $(($3 % 1000 / 100))
               pass=$((pass + 1)) ;;
      skipped) echo "  SKIP $1: $4"; skip=$((skip + 1)) ;;
      *)       echo "  $1 FAILED (exit $2):"
               fail=$((fail + 1)); failed+=("$1") ;;
    esac
}

# run_one TEST NAME BACKEND [SUB]
run_one() {
    local t=$1 name=$2 b=$3 sub=${4:-} out="$work/out" start rc ms reason
    if [ "$b" = uring ] && [ -n "$uring_skip" ]; then
        if [ -n "${LBW_REQUIRE_URING:-}" ]; then
            echo "  $name FAILED: $uring_skip and LBW_REQUIRE_URING is set"
            fail=$((fail + 1)); failed+=("$name")
        else
            report "$name" skipped 0 "$uring_skip"
        fi
        return
    fi
    start=$(date +%s%N)
    [ "$b" = none ] && b=epoll   # the reactor is not used; any value is valid
    LBW_REACTOR=$b TMPDIR=$work timeout 300 bash "$t" $sub >"$out" 2>&1 </dev/null
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    case $rc in
      0)  report "$name" passed $ms ;;
      77) reason=$(sed -n 's/^SKIP: //p' "$out" | tail -1)
          report "$name" skipped $ms "${reason:-the test gave no reason}" ;;
      *)  report "$name" $rc $ms
          [ $rc = 124 ] && echo "    | (killed after 300 s)"
          sed 's/^/    | /' "$out" | tail -60 ;;
    esac
    # anything a test left in its temporary directory is removed
    find "$work" -mindepth 1 -maxdepth 1 ! -name out ! -name 'repo.*' -exec rm -rf {} +
}

for t in tests/integration/t_*.sh; do
    base=$(basename "$t" .sh)
    [ -n "$tfilter" ] && [[ "$base" != *"$tfilter"* ]] && continue
    bes="$backends ${uring_skip:+uring}" sfx=1
    if grep -q '^# reactor: none' "$t"; then bes=none sfx=; fi
    subs=
    if grep -q '^# subtests:' "$t"; then
        if ! subs=$(TMPDIR=$work timeout 60 bash "$t" --list 2>"$work/out") || [ -z "$subs" ]; then
            echo "  $base FAILED: cannot list its subtests:"
            sed 's/^/    | /' "$work/out" | tail -20
            fail=$((fail + 1)); failed+=("$base")
            continue
        fi
    elif [ -n "$sfilter" ]; then
        continue
    fi
    if [ -z "$subs" ]; then
        for b in $bes; do
            run_one "$t" "$base${sfx:+[$b]}" "$b"
        done
        continue
    fi
    for s in $subs; do
        [ -n "$sfilter" ] && [[ "$s" != *"$sfilter"* ]] && continue
        for b in $bes; do
            run_one "$t" "$base/$s${sfx:+[$b]}" "$b" "$s"
        done
    done
done

if [ $((pass + fail + skip)) -eq 0 ]; then
    echo "integration: no test matches '$filter'"
    exit 1
fi

# Nothing may have been written into the repository (build/ aside).
if [ $have_git = 1 ]; then
    repo_state >"$work/repo.after"
    if ! cmp -s "$work/repo.before" "$work/repo.after"; then
        echo "  repository-unchanged FAILED: the tests wrote into the repository:"
        diff "$work/repo.before" "$work/repo.after" | sed -n 's/^[<>]/    |/p' | head -20
        fail=$((fail + 1)); failed+=(repository-unchanged)
    fi
else
    echo "  SKIP repository-unchanged: $root is not a git work tree"
    skip=$((skip + 1))
fi

echo
echo "integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
