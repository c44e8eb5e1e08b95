# The binary's reactor choice: honours LBW_REACTOR/--reactor, logs the choice
# and its reason exactly once, and falls back to epoll when a seccomp filter
# blocks io_uring_setup (as container runtimes do).
set -eu
. "$(dirname "$0")/lib.sh"

out=$("$LBW_BIN" reactor-info 2>err.$$); err=$(cat err.$$); rm -f err.$$
case "$LBW_REACTOR" in
  uring) expect_eq "$out" io_uring "backend (LBW_REACTOR=uring)";;
  epoll) expect_eq "$out" epoll "backend (LBW_REACTOR=epoll)";;
esac
expect_contains "$err" "forced" "reason"
[ "$(grep -c 'event loop:' <<<"$err")" = 1 ] || fail "choice logged more than once: $err"
[[ "$err" =~ ^\[[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8},[0-9]{3}\]\[worker:[0-9]+\]\[INFO\]\ event\ loop: ]] \
    || fail "log line layout: $err"

# --reactor overrides the environment.
out=$("$LBW_BIN" --reactor=epoll reactor-info 2>/dev/null)
expect_eq "$out" epoll "--reactor=epoll"

# Automatic choice under a seccomp filter that blocks io_uring: epoll, and
# the log says why.
out=$(env -u LBW_REACTOR "$LBW_HELPERS/no_uring" "$LBW_BIN" reactor-info 2>err.$$); err=$(cat err.$$); rm -f err.$$
expect_eq "$out" epoll "fallback backend under seccomp"
expect_contains "$err" "fallback: io_uring_setup: Operation not permitted" "fallback reason"

# Forcing io_uring where it is blocked fails with advice.
if env LBW_REACTOR=uring "$LBW_HELPERS/no_uring" "$LBW_BIN" reactor-info >/dev/null 2>err.$$; then
    rm -f err.$$; fail "forced io_uring under seccomp should fail"
fi
err=$(cat err.$$); rm -f err.$$
expect_contains "$err" "--reactor=epoll" "advice"
expect_contains "$err" "[CRITICAL]" "level"

# Journald form when JOURNAL_STREAM names stderr.
: >err.$$
JOURNAL_STREAM=$(stat -c '%d:%i' err.$$) "$LBW_BIN" reactor-info >/dev/null 2>>err.$$
err=$(cat err.$$); rm -f err.$$
[[ "$err" =~ ^\<6\>\[worker:[0-9]+\]\[INFO\]\ event\ loop: ]] || fail "journald line: $err"

# Bad values are rejected with a clear message.
if LBW_REACTOR=select "$LBW_BIN" reactor-info 2>err.$$; then fail "LBW_REACTOR=select accepted"; fi
expect_contains "$(cat err.$$)" "not a reactor backend" "bad LBW_REACTOR"; rm -f err.$$
if "$LBW_BIN" --loglevel LOUD reactor-info 2>err.$$; then fail "--loglevel LOUD accepted"; fi
expect_contains "$(cat err.$$)" "DEBUG, INFO, WARNING" "bad --loglevel"; rm -f err.$$
"$LBW_BIN" --help | grep -q -- '--reactor' || fail "--help lacks --reactor"
"$LBW_BIN" --version | grep -q '^lifeblood-worker [0-9]' || fail "--version"
exit 0
