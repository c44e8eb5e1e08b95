# Configuration fails closed: a file that does not parse or a value of the
# wrong type stops the worker at start (exit status 2, file, line, key and
# expected type in the message); an unknown key is a warning naming the
# nearest known key; 'config check' finds the same before a roll-out; the
# key reference in docs/CONFIGURATION.md is the table's.
set -eu
. "$(dirname "$0")/lib.sh"
root=$PWD
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export LIFEBLOOD_CONFIG_LOCATION=$tmp/cfg
mkdir -p cfg/worker/config.d
printf '[worker]\nlisten_to_broadcast = false\nlogpath = "%s/logs"\n' "$tmp" >cfg/worker/config.toml

# a worker that would run: no-loop to a closed port ends at once (status 1)
run_worker() { # ARGS... -> $rc, $log
    set +e
    timeout 20 "$LBW_BIN" worker --no-loop --scheduler-address 127.0.0.1:1 "$@" >"$tmp/log" 2>&1
    rc=$?
    set -e
    log=$(cat "$tmp/log")
}

run_worker
[ "$rc" = 1 ] || fail "a valid config: exit status $rc ($log)"
expect_contains "$log" "configuration: 1 file from $tmp/cfg/worker" "files read"

# a string where a boolean belongs: an error, not "true"
printf '[worker]\nlisten_to_broadcast = "false"\n' >cfg/worker/config.d/10-site.toml
run_worker
[ "$rc" = 2 ] || fail "string boolean: exit status $rc ($log)"
expect_contains "$log" "[ERROR] $tmp/cfg/worker/config.d/10-site.toml: line 2: worker.listen_to_broadcast: expected a boolean (true or false, without quotes), found the string \"false\"" "string boolean"
expect_contains "$log" "not starting" "string boolean"
[[ "$log" != *"saying hello"* ]] || fail "started anyway: $log"

# a file that does not parse: an error, not skipped
printf '[resources\ncpu_count = 2\n' >cfg/worker/config.d/10-site.toml
run_worker
[ "$rc" = 2 ] || fail "malformed file: exit status $rc ($log)"
expect_contains "$log" "10-site.toml: line 1, column 11: expected ']'" "malformed file"
[[ "$log" != *"skipping this file"* ]] || fail "malformed file skipped: $log"

# a wrong-typed --config override
rm cfg/worker/config.d/10-site.toml
run_worker --config worker.ping_interval=fast
[ "$rc" = 2 ] || fail "bad override: exit status $rc"
expect_contains "$log" "--config worker.ping_interval=fast: worker.ping_interval: expected a number (seconds)" "bad override"

# unknown sections and keys: warnings naming the nearest key; it runs
printf '[workr]\nx = 1\n[worker]\nscheduler_addres = "10.0.0.1:1386"\n' >cfg/worker/config.d/20-typo.toml
run_worker
[ "$rc" = 1 ] || fail "typos: exit status $rc ($log)"
expect_contains "$log" "[WARNING] $tmp/cfg/worker/config.d/20-typo.toml: line 1: unknown section [workr] (did you mean [worker]?)" "[workr]"
expect_contains "$log" "line 4: unknown key worker.scheduler_addres (did you mean worker.scheduler_address?)" "scheduler_addres"
expect_contains "$log" "saying hello" "runs with warnings"

# config check: the merged configuration, then single files
set +e; out=$("$LBW_BIN" config check 2>&1); rc=$?; set -e
[ "$rc" = 0 ] || fail "config check with warnings: exit status $rc ($out)"
expect_contains "$out" "warning: $tmp/cfg/worker/config.d/20-typo.toml: line 4: unknown key" "check warns"
expect_contains "$out" "worker: 2 files read from $tmp/cfg/worker" "check names the files"
expect_contains "$out" "OK: 0 errors, 2 warnings" "check summary"
set +e; out=$("$LBW_BIN" config check --strict 2>&1); rc=$?; set -e
[ "$rc" = 2 ] || fail "config check --strict with warnings: exit status $rc"
printf '[worker]\nlisten_to_broadcast = "yes"\n' >bad.toml
set +e; out=$("$LBW_BIN" config check bad.toml 2>&1); rc=$?; set -e
[ "$rc" = 2 ] || fail "config check bad.toml: exit status $rc"
expect_contains "$out" "error: bad.toml: line 2: worker.listen_to_broadcast: expected a boolean" "check FILE"
expect_contains "$out" "FAILED: 1 error, 0 warnings" "check FILE summary"
"$LBW_BIN" config default >default.toml
"$LBW_BIN" config check default.toml >/dev/null || fail "the default file does not pass its own check"
# a broken standard resolver file is an error too
mkdir -p cfg/standard_environment_resolver
printf '[packages.x."1.0"\n' >cfg/standard_environment_resolver/config.toml
set +e; out=$("$LBW_BIN" config check 2>&1); rc=$?; set -e
[ "$rc" = 2 ] || fail "broken resolver config: exit status $rc ($out)"
expect_contains "$out" "standard_environment_resolver/config.toml: line 1" "resolver file named"

# --generate-config-only writes the table's default, which the worker reads
rm -rf cfg2; export LIFEBLOOD_CONFIG_LOCATION=$tmp/cfg2
"$LBW_BIN" worker --generate-config-only 2>/dev/null
cmp -s cfg2/worker/config.toml default.toml || fail "--generate-config-only differs from 'config default'"

# the key reference in the documentation is the table's
"$LBW_BIN" config keys --markdown >keys.md
sed -n '/<!-- keys:begin/,/<!-- keys:end/p' "$root/docs/CONFIGURATION.md" | sed '1d;$d' >doc.md
[ -s doc.md ] || fail "docs/CONFIGURATION.md has no <!-- keys:begin --> ... <!-- keys:end --> block"
diff -u doc.md keys.md >&2 || fail "docs/CONFIGURATION.md's key table is not the table in daemon/config.c: paste 'lifeblood-worker config keys --markdown' between the keys:begin/keys:end markers"
exit 0
