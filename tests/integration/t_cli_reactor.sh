# The binary's reactor choice: honours LBW_REACTOR/--reactor, logs the choice
# and its reason exactly once, and falls back to epoll when a seccomp filter
# blocks io_uring_setup (as container runtimes do).
# subtests: listed by --list
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
err=$tmp/err

# LBW_REACTOR picks the backend; the choice is logged once, with its reason.
st_env_choice_logged_once() {
    local out e
    out=$("$LBW_BIN" reactor-info 2>"$err"); e=$(cat "$err")
    case "$LBW_REACTOR" in
      uring) expect_eq "$out" io_uring "backend (LBW_REACTOR=uring)";;
      epoll) expect_eq "$out" epoll "backend (LBW_REACTOR=epoll)";;
    esac
    expect_contains "$e" "forced" "reason"
    [ "$(grep -c 'event loop:' <<<"$e")" = 1 ] || fail "choice logged more than once: $e"
    [[ "$e" =~ ^\[[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8},[0-9]{3}\]\[worker:[0-9]+\]\[INFO\]\ event\ loop: ]] \
        || fail "log line layout: $e"
}

# --reactor overrides the environment.
st_option_overrides_env() {
    expect_eq "$("$LBW_BIN" --reactor=epoll reactor-info 2>/dev/null)" epoll "--reactor=epoll"
}

# Automatic choice under a seccomp filter that blocks io_uring: epoll, and
# the log says why.
st_seccomp_fallback() {
    local out
    out=$(env -u LBW_REACTOR "$LBW_HELPERS/no_uring" "$LBW_BIN" reactor-info 2>"$err")
    expect_eq "$out" epoll "fallback backend under seccomp"
    expect_contains "$(cat "$err")" "fallback: io_uring_setup: Operation not permitted" "fallback reason"
}

# Forcing io_uring where it is blocked fails with advice.
st_forced_uring_blocked() {
    if env LBW_REACTOR=uring "$LBW_HELPERS/no_uring" "$LBW_BIN" reactor-info >/dev/null 2>"$err"; then
        fail "forced io_uring under seccomp should fail"
    fi
    expect_contains "$(cat "$err")" "--reactor=epoll" "advice"
    expect_contains "$(cat "$err")" "[CRITICAL]" "level"
}

# Journald form when JOURNAL_STREAM names stderr.
st_journald_form() {
    : >"$err"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$err") "$LBW_BIN" reactor-info >/dev/null 2>>"$err"
    [[ "$(cat "$err")" =~ ^\<6\>\[worker:[0-9]+\]\[INFO\]\ event\ loop: ]] \
        || fail "journald line: $(cat "$err")"
}

# Bad values are rejected with a clear message.
st_bad_values() {
    if LBW_REACTOR=select "$LBW_BIN" reactor-info 2>"$err"; then fail "LBW_REACTOR=select accepted"; fi
    expect_contains "$(cat "$err")" "not a reactor backend" "bad LBW_REACTOR"
    if "$LBW_BIN" --loglevel LOUD reactor-info 2>"$err"; then fail "--loglevel LOUD accepted"; fi
    expect_contains "$(cat "$err")" "DEBUG, INFO, WARNING" "bad --loglevel"
}

st_help_and_version() {
    "$LBW_BIN" --help | grep -q -- '--reactor' || fail "--help lacks --reactor"
    "$LBW_BIN" --version | grep -q '^lifeblood-worker [0-9]' || fail "--version"
}

subtests "$@"
