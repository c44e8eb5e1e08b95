# The command line edges a new user meets: every command answers --help
# with its own usage (exit 0), an unknown option is one line naming it with
# a hint (exit 2), and input that inspect cannot read is described in plain
# words.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# --help for each command: its usage on stdout, exit 0, nothing else run
for cmd in worker probe inspect config reactor-info status pool "pool simple"; do
    out=$("$LBW_BIN" $cmd --help 2>"$tmp/err") || fail "$cmd --help: exit status $?"
    expect_contains "$out" "Usage: lifeblood-worker" "$cmd --help"
    expect_contains "$out" "$cmd" "$cmd --help names the command"
    [ ! -s "$tmp/err" ] || fail "$cmd --help wrote to stderr: $(cat "$tmp/err")"
done
# inspect --help is not a file name; reactor-info --help sets up no loop
out=$("$LBW_BIN" inspect --help)
[[ "$out" != *"cannot read"* ]] || fail "inspect --help opened a file"
out=$("$LBW_BIN" reactor-info --help 2>&1)
[[ "$out" != *"event loop:"* && "$out" != io_uring && "$out" != epoll ]] \
    || fail "reactor-info --help ran: $out"

# an unknown option: one line, the option named, where to look; exit 2
check_unknown() { # WHAT HINT ARGS...
    local what=$1 hint=$2; shift 2
    set +e; "$LBW_BIN" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = 2 ] || fail "$what: exit status $rc, want 2"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$what: want one line, got: $(cat "$tmp/err")"
    [ ! -s "$tmp/out" ] || fail "$what: printed on stdout: $(cat "$tmp/out")"
    expect_contains "$(cat "$tmp/err")" "unknown option --foo" "$what"
    expect_contains "$(cat "$tmp/err")" "see '$hint --help'" "$what hint"
}
check_unknown "global" "lifeblood-worker" --foo reactor-info
check_unknown "worker" "lifeblood-worker worker" worker --foo
check_unknown "probe" "lifeblood-worker probe" probe --foo
check_unknown "inspect" "lifeblood-worker inspect" inspect --foo
check_unknown "status" "lifeblood-worker status" status --foo
check_unknown "reactor-info" "lifeblood-worker reactor-info" reactor-info --foo
check_unknown "config check" "lifeblood-worker config" config check --foo
check_unknown "pool simple" "lifeblood-worker pool simple" pool simple --foo
# pool --list names the pool types, as upstream's
out=$("$LBW_BIN" pool --list) || fail "pool --list: exit status $?"
expect_eq "$out" "simple" "pool --list"

# inspect on garbage says what is wrong, in words
set +e; echo garbage | "$LBW_BIN" inspect >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ "$rc" = 1 ] || fail "inspect garbage: exit status $rc"
err=$(cat "$tmp/err")
[[ "$err" != *"incomplete frame"* ]] || fail "inspect garbage: $err"
expect_contains "$err" "neither a pickle" "inspect garbage"
expect_contains "$err" "67 61 72 62 61 67 65 0a" "inspect garbage shows the bytes"
# a file whose name starts with '-' after --
printf '\x80\x04K\x05.' >"$tmp/-x.pkl"
out=$("$LBW_BIN" inspect -- -x.pkl) || fail "inspect -- -x.pkl"
expect_contains "$out" '"pickle"' "inspect -- FILE"
exit 0
