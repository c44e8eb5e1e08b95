# A payload writing 1 GiB of 100-byte lines, a 1 MiB line and binary
# bytes: the worker.done report carries them byte-exact (invalid UTF-8
# replaced) while the worker's peak RSS stays under 32 MiB. Under the
# sanitizer build the size is 256 MiB (ASan is several times slower).
set -eu
mib=1024
case "$LBW_BUILD" in *san*) mib=256 ;; esac
LBW_TEST_BIG_MIB=${LBW_TEST_BIG_MIB:-$mib} LBW_BIN=$LBW_BIN python3 tests/peer/scenarios.py big_output
