# The worker follows an address change: in a network namespace made for the
# test, the route to the scheduler moves to a new source address and the
# old one is removed; the worker says bye, hello from the new address, and
# serves there (tests/peer/scenarios.py address_change_rehello).
set -eu
. "$(dirname "$0")/lib.sh"
if ! unshare -n true 2>/dev/null || ! command -v ip >/dev/null; then
    echo "SKIP: cannot create a network namespace here (or no ip command)"
    exit 0
fi
LBW_TEST_NETNS=1 LBW_BIN=$LBW_BIN unshare -n python3 tests/peer/scenarios.py address_change_rehello
