# The hostile-input campaign (tests/abuse): ~800 generated cases across
# transport, JSON, pickles, the runtime API, config files and payload
# behaviours against a live worker; after each the worker must be alive,
# answer a concurrent scheduler ping within 1 s, return near its idle RSS
# and fd count, and have returned nothing outside upstream's pickle shapes.
# Heavy cases are sampled; ABUSE_FULL=1 runs them all.
set -eu
# ASan's allocator keeps freed memory in quarantine: the RSS bound is meant
# for the normal build; a sanitizer build gets a wider one, and runs every
# third case (the whole campaign runs in the normal build) to keep CI bounded
case "${LBW_BUILD:-build}" in
*san*) export ABUSE_RSS_SLACK_MIB=${ABUSE_RSS_SLACK_MIB:-256} ABUSE_EVERY=${ABUSE_EVERY:-3};;
esac
LBW_BIN=$LBW_BIN python3 tests/abuse/campaign.py
