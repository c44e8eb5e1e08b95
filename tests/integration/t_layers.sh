# The build enforces the layering (docs/ARCHITECTURE.md, "Layers"): a
# source file compiled with the Makefile's own command line for its layer
# cannot include a header of a layer above it or beside it. Each subtest
# copies a real source file into a temporary directory, once unchanged (it
# must compile: the command line is right) and once with one wrong-way
# include in front (it must fail on exactly that header). The compile
# commands come from `make -n`, so a change to the Makefile's include
# paths is what this test checks. Nothing is written outside $TMPDIR.
# subtests: listed by --list
# reactor: none
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# compile SRC [HEADER]: builds a copy of SRC (HEADER included first) with the
# recipe make would run for SRC; the compiler's messages go to $tmp/err.
compile() {
    local src=$1 hdr=${2:-} copy recipe
    copy=$tmp/copy/$src
    mkdir -p "$(dirname "$copy")"
    { [ -z "$hdr" ] || echo "#include \"$hdr\""; cat "$src"; } >"$copy"
    recipe=$(make -s --no-print-directory -n -B O="$tmp/o" "$tmp/o/${src%.c}.o") \
        || fail "make -n has no recipe for $src"
    grep -q -- " -c -o $tmp/o/${src%.c}.o $src\$" <<<"$recipe" \
        || fail "unexpected recipe for $src: $recipe"
    recipe=$(sed "s| $src\$| $copy|" <<<"$recipe")
    (eval "$recipe") >"$tmp/err" 2>&1
}

# wrong_way SRC HEADER: SRC builds as it is and fails with HEADER included.
wrong_way() {
    compile "$1" || fail "$1 does not build with its layer's flags: $(cat "$tmp/err")"
    if compile "$1" "$2"; then
        fail "$1 built with #include \"$2\": the layer's include paths let it through"
    fi
    grep -q "$2: No such file or directory" "$tmp/err" \
        || fail "$1 with \"$2\" failed for another reason: $(head -5 "$tmp/err")"
}

st_probes_cannot_include_wire()         { wrong_way probes/hwid.c json.h; }
st_probes_cannot_include_daemon()       { wrong_way probes/cpu.c config.h; }
st_wire_pure_cannot_include_reactor()   { wrong_way wire/json.c reactor.h; }
st_wire_pure_cannot_include_log()       { wrong_way wire/frame.c log.h; }
st_wire_net_cannot_include_probes()     { wrong_way wire/net/rpc.c probe.h; }
st_kernel_iface_cannot_include_wire()   { wrong_way kernel-iface/sock.c frame.h; }
st_base_cannot_include_kernel_iface()   { wrong_way base/buf.c log.h; }
st_pool_cannot_include_daemon()         { wrong_way pool/pool.c config.h; }
st_daemon_cannot_include_pool()         { wrong_way daemon/worker.c pool.h; }
st_pool_cannot_include_cmd()            { wrong_way pool/housekeep.c pool_cmd.h; }

subtests "$@"
