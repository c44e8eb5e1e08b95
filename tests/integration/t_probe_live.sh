# The live probe on this machine: one CPU under taskset -c 0; memory equal
# to MemTotal or the cgroup limit (computed here independently); hwid from
# the machine-id; and, in a network namespace made for the test, the
# address-change subscription and the route source lookup.
# subtests: listed by --list
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LIFEBLOOD_CONFIG_LOCATION=$tmp/config   # no [resources] overrides
mkdir "$LIFEBLOOD_CONFIG_LOCATION"

st_cpu_memory_hwid() {
local out
out=$(taskset -c 0 "$LBW_BIN" probe --json)
python3 - "$out" <<'PY'
import json, os, sys
d = json.loads(sys.argv[1])
assert d["cpu"]["usable"] == "0" and d["cpu"]["usable_count"] == 1, d["cpu"]
q = d["cpu"]["quota"]
want_cpu = 1 if q is None or q >= 1 else q
assert d["advertised"]["cpu_count"] == want_cpu, d["advertised"]

def limit_walk(path, fname):
    best = None
    while True:
        f = os.path.join(path, fname)
        try:
            v = open(f).read().strip()
            if v != "max" and int(v) < 2**62:
                best = int(v) if best is None else min(best, int(v))
        except (OSError, ValueError):
            pass
        if path in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/"):
            return best
        path = os.path.dirname(path)

memtotal = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) * 1024
limits = []
for line in open("/proc/self/cgroup"):
    hid, ctl, path = line.rstrip("\n").split(":", 2)
    if "memory" in ctl.split(","):
        limits.append(limit_walk("/sys/fs/cgroup/memory" + path.rstrip("/"), "memory.limit_in_bytes"))
    if ctl == "":
        base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
        limits.append(limit_walk(base + path.rstrip("/"), "memory.max"))
limits = [l for l in limits if l]
want_mem = min([memtotal] + limits)
assert d["advertised"]["cpu_mem"] == want_mem, (d["advertised"], memtotal, limits)
mid = open("/etc/machine-id").read().strip()
assert d["hwid"] == int(mid, 16) & (2**63 - 1), d["hwid"]
print("live probe: 1 CPU, %d bytes, hwid %d" % (want_mem, d["hwid"]))
PY
}

# The table names its sources.
st_table_names_sources() {
    local table
    table=$("$LBW_BIN" probe)
    expect_contains "$table" "advertised in worker.hello" "probe table"
    expect_contains "$table" "/etc/machine-id" "hwid source"
}

# Netlink: an address added inside a fresh network namespace is seen, and the
# route toward it reports it as the source. Nothing leaves the namespace.
st_netns_address_watch() {
    unshare -n true 2>/dev/null \
        || skip "cannot create a network namespace here (needs root or user namespaces)"
    unshare -n bash -c '
        set -e
        ip link set lo up
        "$0" watch > "$1/watch" &
        pid=$!
        for i in $(seq 50); do grep -q ready "$1/watch" 2>/dev/null && break; sleep 0.1; done
        ip addr add 192.0.2.1/24 dev lo
        wait $pid
        grep -q "changes [1-9]" "$1/watch"
        test "$("$0" route 192.0.2.1)" = 192.0.2.1
    ' "$LBW_HELPERS/netwatch" "$tmp" || fail "address watch / route source in a network namespace"
}

subtests "$@"
