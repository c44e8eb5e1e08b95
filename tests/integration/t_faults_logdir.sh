# Faults: the invocation log root full (a 256 KiB tmpfs mounted in a private
# mount namespace) and removed while a payload writes.
set -eu
LBW_BIN=$LBW_BIN python3 tests/abuse/faults.py logdir_removed
if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
    LBW_BIN=$LBW_BIN unshare -m --propagation private python3 tests/abuse/faults.py logdir_full
elif unshare -rm --propagation private true 2>/dev/null; then
    LBW_BIN=$LBW_BIN unshare -rm --propagation private python3 tests/abuse/faults.py logdir_full
else
    echo "SKIP logdir_full: no mount namespace here"
fi
