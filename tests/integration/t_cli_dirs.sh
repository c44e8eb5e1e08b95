# Directories are checked at start, one line per problem: a HOME that does
# not exist is never created; the log root follows systemd's StateDirectory=/
# LogsDirectory= under a service and upstream's <config dir>/logs for a
# user; the temporary fallback is used only when it is usable; with no
# usable log directory the worker stops.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
unset STATE_DIRECTORY LOGS_DIRECTORY LIFEBLOOD_CONFIG_LOCATION
mkdir -p t
export TMPDIR=$tmp/t

run_worker() { # ARGS... -> $rc, $log  (no-loop to a closed port ends at once)
    set +e
    timeout 20 "$LBW_BIN" worker --no-loop --scheduler-address 127.0.0.1:1 "$@" >"$tmp/log" 2>&1
    rc=$?
    set -e
    log=$(cat "$tmp/log")
}

# a system user's HOME: nothing created there, one line saying so
export HOME=$tmp/nonexistent
set +e; "$LBW_BIN" worker --generate-config-only >"$tmp/log" 2>&1; rc=$?; set -e
[ "$rc" = 1 ] || fail "--generate-config-only under a missing HOME: exit status $rc"
expect_contains "$(cat "$tmp/log")" "HOME=$tmp/nonexistent is not an existing directory" "missing HOME"
expect_contains "$(cat "$tmp/log")" "LIFEBLOOD_CONFIG_LOCATION" "missing HOME advice"
run_worker
[ "$rc" = 1 ] || fail "worker under a missing HOME: exit status $rc ($log)"
[ ! -e "$tmp/nonexistent" ] || fail "created $tmp/nonexistent"
expect_contains "$log" "running on the defaults" "missing HOME"
expect_contains "$log" "logs in $tmp/t/lifeblood/worker_logs" "fallback log root"
[ -d "$tmp/t/lifeblood/worker_logs" ] || fail "fallback not created"

# a user: upstream's <config dir>/logs
export HOME=$tmp/home; mkdir -p "$HOME"
run_worker
expect_contains "$log" "logs in $tmp/home/lifeblood/worker/logs" "user default"
[ -d "$tmp/home/lifeblood/worker/logs" ] || fail "user default not created"

# a service: systemd's StateDirectory=, else LogsDirectory=
export LIFEBLOOD_CONFIG_LOCATION=$tmp/etc
mkdir -p state logsdir
STATE_DIRECTORY=$tmp/state:$tmp/other run_worker
expect_contains "$log" "logs in $tmp/state/worker/logs" "StateDirectory="
LOGS_DIRECTORY=$tmp/logsdir run_worker
expect_contains "$log" "logs in $tmp/logsdir/worker" "LogsDirectory="

# worker.logpath that cannot be a directory: the reason, then the fallback
: >"$tmp/afile"
run_worker --config "worker.logpath=$tmp/afile/logs"
[ "$rc" = 1 ] || fail "unusable logpath: exit status $rc ($log)"
expect_contains "$log" "[WARNING] log directory $tmp/afile/logs (worker.logpath): cannot create it: Not a directory; using $tmp/t/lifeblood/worker_logs instead" "unusable logpath"

# and no usable directory at all: stop, saying both reasons
TMPDIR=$tmp/afile run_worker --config "worker.logpath=$tmp/afile/logs"
[ "$rc" = 1 ] || fail "no log directory: exit status $rc"
expect_contains "$log" "[CRITICAL] no usable log directory: $tmp/afile/logs (worker.logpath): cannot create it" "no log directory"
expect_contains "$log" "fallback $tmp/afile/lifeblood/worker_logs: cannot create it" "no log directory"
[[ "$log" != *"saying hello"* ]] || fail "started without a log directory"

# a fallback that belongs to someone else is not used
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$tmp/t2/lifeblood/worker_logs"; chown 65534 "$tmp/t2/lifeblood/worker_logs"
    TMPDIR=$tmp/t2 run_worker --config "worker.logpath=$tmp/afile/logs"
    [ "$rc" = 1 ] || fail "foreign fallback: exit status $rc"
    expect_contains "$log" "belongs to uid 65534, not to this user" "foreign fallback"
else
    echo "SKIP: foreign fallback directory (needs root to chown)"
fi

# a missing TMPDIR is reported (jobs with extra files would fail)
TMPDIR=$tmp/none run_worker --config "worker.logpath=$tmp/logs3"
expect_contains "$log" "temporary directory $tmp/none (TMPDIR)" "missing TMPDIR"
exit 0
