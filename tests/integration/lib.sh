# lib.sh — small assertions for integration tests (sourced).
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_contains() { # HAYSTACK NEEDLE WHAT
    [[ "$1" == *"$2"* ]] || fail "$3: expected to contain '$2', got: $1"
}
expect_eq() { # GOT WANT WHAT
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}
