# lib.sh — small assertions for integration tests (sourced).
fail() { echo "FAIL: $*" >&2; exit 1; }
# skip REASON: the test cannot run here; run.sh reports "SKIP name: REASON".
skip() { echo "SKIP: $*"; exit 77; }
expect_contains() { # HAYSTACK NEEDLE WHAT
    [[ "$1" == *"$2"* ]] || fail "$3: expected to contain '$2', got: $1"
}
expect_eq() { # GOT WANT WHAT
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}
# A test made of several behaviours defines one function st_NAME per
# behaviour, carries a "# subtests:" line in its header and ends with
# `subtests "$@"`: `--list` names them, `NAME` runs one.
subtests() {
    if [ "${1:-}" = --list ]; then
        declare -F | sed -n 's/^declare -f st_//p'
        exit 0
    fi
    [ $# = 1 ] && declare -F "st_$1" >/dev/null || fail "usage: $0 --list | SUBTEST"
    "st_$1"
    exit 0
}
