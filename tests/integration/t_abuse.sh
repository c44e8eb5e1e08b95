# The hostile-input campaign (tests/abuse): ~800 generated cases across
# transport, JSON, pickles, the runtime API, config files and payload
# behaviours against a live worker; after each the worker must be alive,
# answer a concurrent scheduler ping within 1 s, return near its idle RSS
# and fd count, and have returned nothing outside upstream's pickle shapes.
# Heavy cases are sampled; ABUSE_FULL=1 runs them all.
set -eu
LBW_BIN=$LBW_BIN python3 tests/abuse/campaign.py
