#!/bin/bash
# ci-check.sh — the package checks (`make package-check`; CI calls this).
#
# As root on Debian 12, with the build packages (make deps) and the packaging
# tools (make deps-pkg) installed:
#   1. the versions in the Makefile, debian/changelog and the RPM spec agree;
#   2. `make deb`; lintian on the result: no error, no warning (overrides
#      are justified in packaging/README.md); the binary is stripped and its
#      symbols are in the -dbgsym package;
#   3. install the .deb; the user, the directories, the alternatives link;
#      `lifeblood-worker probe` and reference-scheduler scenarios against
#      the INSTALLED /usr/bin/lifeblood-worker, one of them run the way the
#      unit runs it (user lifeblood, /etc/lifeblood, service notifications);
#      `systemd-analyze verify` on the installed units;
#   4. `apt-get purge`; nothing of the package is left but the lifeblood
#      user and group (Debian keeps system users);
#   5. `make rpm`; its file list, requirements and scriptlets (rpm -qpl,
#      -qpR, --scripts) and the -debuginfo package.
# Every step runs under a timeout; the total time is printed at the end.
set -eu
cd "$(dirname "$0")/.."
O=${O:-build}
t0=$(date +%s)
step() { echo "== $* [$(( $(date +%s) - t0 )) s]"; }
fail() { echo "package-check: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root: the check installs and purges the package"

version=$(sed -n 's/^VERSION *:= *//p' Makefile)
arch=$(dpkg --print-architecture)
deb=$O/deb/lifeblood-worker_${version}_${arch}.deb
apt_opts=(-y -q -o DPkg::Lock::Timeout=120 --no-install-recommends)

step "versions agree ($version)"
[ "$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)" = "$version" ] ||
    fail "packaging/debian/changelog does not start with version $version (the Makefile's)"
[ "$(sed -n 's/^Version: *//p' packaging/rpm/lifeblood-worker.spec)" = "$version" ] ||
    fail "packaging/rpm/lifeblood-worker.spec has not Version: $version (the Makefile's)"

# A previous run that stopped half-way left the package installed.
if dpkg-query -W -f='${Status}' lifeblood-worker 2>/dev/null | grep -q installed; then
    timeout 120 apt-get purge "${apt_opts[@]}" lifeblood-worker >/dev/null
fi

step "make deb"
timeout 600 make --no-print-directory deb >/dev/null
[ -f "$deb" ] || fail "make deb did not produce $deb"
dbgsym=$O/deb/lifeblood-worker-dbgsym_${version}_${arch}.deb
[ -f "$dbgsym" ] || fail "no debug symbols package $dbgsym"

step "lintian"
lint=$(timeout 300 lintian --pedantic -I --show-overrides \
           "$O/deb/lifeblood-worker_${version}_${arch}.changes" 2>&1 |
       grep -v 'running with root privileges' || true)
echo "${lint:-(no tags)}" | sed 's/^/    /'
if grep -qE '^[EW]: ' <<<"$lint"; then
    fail "lintian reports errors or warnings (justify an override in packaging/README.md)"
fi

step "stripped binary, symbols in the -dbgsym package"
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x/deb"
readelf -S "$x/deb/usr/bin/lifeblood-worker" | grep '\.debug_info' >/dev/null &&
    fail "the packaged binary is not stripped"
bid=$(readelf -n "$x/deb/usr/bin/lifeblood-worker" | sed -n 's/.*Build ID: *//p')
dpkg-deb -c "$dbgsym" | grep "usr/lib/debug/.build-id/${bid:0:2}/${bid:2}.debug" >/dev/null ||
    fail "the -dbgsym package has no symbols for build id $bid"

# What exists before, to tell afterwards what the package left behind.
snapshot() {
    find /etc /usr /lib /opt /var -xdev \
         \( -path /var/log -o -path /var/cache -o -path /var/tmp -o -path /var/lib/dpkg \
            -o -path /var/lib/apt -o -path /var/backups -o -path /var/lib/systemd/catalog \
            -o -path /var/mail -o -path /var/spool \) -prune -o -print 2>/dev/null | sort
}
snapshot >"$x/before"

step "install"
timeout 300 apt-get install "${apt_opts[@]}" "./$deb" >"$x/install.log" 2>&1 ||
    { cat "$x/install.log"; fail "apt-get install ./$deb"; }
[ "$(/usr/bin/lifeblood-worker --version)" = "lifeblood-worker $version" ] ||
    fail "installed binary's version"
id lifeblood >/dev/null 2>&1 || fail "no lifeblood user after installation"
[ "$(getent passwd lifeblood | cut -d: -f6,7)" = "/var/lib/lifeblood:/usr/sbin/nologin" ] ||
    fail "the lifeblood user's home or shell: $(getent passwd lifeblood)"
[ "$(stat -c %U:%a /var/lib/lifeblood/worker/logs)" = "lifeblood:750" ] ||
    fail "/var/lib/lifeblood/worker/logs: $(stat -c %U:%a /var/lib/lifeblood/worker/logs)"
[ "$(readlink -f /usr/bin/lifeblood)" = /usr/bin/lifeblood-worker ] ||
    fail "/usr/bin/lifeblood is not the alternatives link to lifeblood-worker"
lifeblood worker --help | grep -q 'lifeblood worker' || fail "'lifeblood worker --help'"
dpkg-query -W -f='${Conffiles}\n' lifeblood-worker | grep -q /etc/lifeblood/worker/config.toml ||
    fail "config.toml is not a conffile"
for page in lifeblood-worker.8 lifeblood-worker.toml.5 lifeblood-worker-probe.8 \
            lifeblood-worker-inspect.8 lifeblood-worker-status.8; do
    [ -f "/usr/share/man/man${page##*.}/$page.gz" ] || fail "man page $page not installed"
done

step "probe (installed binary, as lifeblood)"
probe=$(timeout 60 setpriv --reuid=lifeblood --regid=lifeblood --init-groups \
            env LIFEBLOOD_CONFIG_LOCATION=/etc/lifeblood /usr/bin/lifeblood-worker probe --json)
python3 - "$probe" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
a = d["advertised"]
assert a["cpu_count"] > 0 and a["cpu_mem"] > 0, a
print("    advertised: %r, hwid %s" % (a, d["hwid"]))
PY

step "reference scheduler scenarios (LBW_BIN=/usr/bin/lifeblood-worker)"
scenarios() { # FILE NAME...
    if timeout 240 env LBW_BIN=/usr/bin/lifeblood-worker LBW_INSTALLED=1 \
            python3 "tests/peer/$@" >"$x/scenarios.log" 2>&1; then
        grep '^scenario ' "$x/scenarios.log" | sed 's/^/    /'
    else
        tail -80 "$x/scenarios.log"
        fail "scenarios $* against the installed binary"
    fi
}
scenarios scenarios.py hello_and_done quit_and_sigterm
scenarios scenarios_sdnotify.py notify_abstract_socket installed_as_the_service_runs_it
scenarios scenarios_runtime.py create_task_and_attributes

step "systemd-analyze verify (installed units)"
units=$(dpkg -L lifeblood-worker | grep -E '/systemd/system/lifeblood-worker\.service$')
tmpl=$(dpkg -L lifeblood-worker | grep -E '/systemd/system/lifeblood-worker@\.service$')
# the template is verified as an instance (a copy named lifeblood-worker@1)
pool=$(dpkg -L lifeblood-worker | grep -E '/systemd/system/lifeblood-pool\.service$')
cp "$tmpl" "$x/lifeblood-worker@1.service"
if ! timeout 60 systemd-analyze verify "$units" "$x/lifeblood-worker@1.service" "$pool" \
        >"$x/verify.log" 2>&1; then
    cat "$x/verify.log"
    fail "systemd-analyze verify"
fi
# it only warns about a setting it cannot parse: anything it says is a failure
[ ! -s "$x/verify.log" ] || { cat "$x/verify.log"; fail "systemd-analyze verify has remarks"; }
echo "    no remarks"

step "purge"
timeout 300 apt-get purge "${apt_opts[@]}" lifeblood-worker >"$x/purge.log" 2>&1 ||
    { cat "$x/purge.log"; fail "apt-get purge lifeblood-worker"; }
snapshot >"$x/after"
left=$(comm -13 "$x/before" "$x/after")
# Allowed: files of other packages or activity on this machine meanwhile
# (reported, not failed on); never anything of ours.
ours=$(grep -i lifeblood <<<"$left" || true)
[ -z "$ours" ] || fail "left behind after purge: $ours"
[ -z "$left" ] || { echo "    NOTE: new paths not from this package:"; sed 's/^/      /' <<<"$left"; }
for p in /usr/bin/lifeblood /etc/alternatives/lifeblood /var/lib/dpkg/alternatives/lifeblood \
         /etc/lifeblood /var/lib/lifeblood; do
    [ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p is still there after purge"
done
getent passwd lifeblood >/dev/null && echo "    kept, as policy allows: the lifeblood user and group"

step "make rpm"
timeout 600 make --no-print-directory rpm >/dev/null
rarch=$(rpm --eval '%{_arch}')
rpmf=$O/rpm/RPMS/$rarch/lifeblood-worker-$version-1.$rarch.rpm
[ -f "$rpmf" ] || fail "make rpm did not produce $rpmf"
[ -f "$O/rpm/RPMS/$rarch/lifeblood-worker-debuginfo-$version-1.$rarch.rpm" ] ||
    fail "no -debuginfo package"

step "rpm -qpl"
rpm -qpl "$rpmf" | grep -v '^/usr/lib/.build-id' | sed 's/^/    /'
want="/etc/lifeblood/worker/config.d
/etc/lifeblood/worker/config.toml
/etc/lifeblood/worker/service.env
/usr/bin/lifeblood
/usr/bin/lifeblood-worker
/usr/lib/systemd/system/lifeblood-worker.service
/usr/lib/systemd/system/lifeblood-worker@.service
/usr/lib/systemd/system/lifeblood-pool.service
/usr/lib/sysusers.d/lifeblood-worker.conf
/usr/lib/tmpfiles.d/lifeblood-worker.conf
/usr/share/lifeblood-worker/runtime/lifeblood_connection.py
/usr/share/licenses/lifeblood-worker-$version/LICENSE
/var/lib/lifeblood/worker/logs"
for f in $want; do
    rpm -qpl "$rpmf" | grep -qx "$f" || fail "the RPM lacks $f"
done
for m in man5/lifeblood-worker.toml.5 man8/lifeblood-worker.8 man8/lifeblood-worker-probe.8 \
         man8/lifeblood-worker-inspect.8 man8/lifeblood-worker-status.8; do
    rpm -qpl "$rpmf" | grep -q "^/usr/share/man/$m" || fail "the RPM lacks the man page $m"
done
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" |
    grep -q '^cn /etc/lifeblood/worker/config.toml$' ||
    fail "config.toml is not %config(noreplace) in the RPM"
rpm -qp --qf '[%{FILEUSERNAME}:%{FILEMODES:perms} %{FILENAMES}\n]' "$rpmf" |
    grep -q '^lifeblood:drwxr-x--- /var/lib/lifeblood/worker/logs$' ||
    fail "/var/lib/lifeblood/worker/logs is not lifeblood's, 0750, in the RPM"

step "rpm -qpR"
reqs=$(rpm -qpR "$rpmf")
grep -vE '^(rpmlib\(|libc\.so\.6\(GLIBC)' <<<"$reqs" | sort -u | sed 's/^/    /'
for r in 'liburing.so.2()(64bit)' 'libnl-3.so.200()(64bit)' 'libpcre2-8.so.0()(64bit)' \
         /usr/sbin/update-alternatives shadow-utils; do
    grep -qxF "$r" <<<"$reqs" || fail "the RPM does not require $r"
done
grep -qiE 'cunit|devel|python' <<<"$reqs" && fail "the RPM requires a build-only package"
rpm -qp --recommends "$rpmf" | grep -qx python3 || fail "the RPM does not recommend python3"

step "rpm -qp --scripts"
scripts=$(rpm -qp --scripts "$rpmf")
grep -E 'scriptlet' <<<"$scripts" | sed 's/^/    /'
for s in 'useradd -r -g lifeblood' 'update-alternatives --install /usr/bin/lifeblood' \
         'update-alternatives --remove lifeblood' 'systemd-tmpfiles --create' \
         'systemctl --no-block try-restart' 'disable --now'; do
    grep -qF -- "$s" <<<"$scripts" || fail "the RPM's scriptlets lack '$s'"
done

step "package-check passed in $(( $(date +%s) - t0 )) s"
