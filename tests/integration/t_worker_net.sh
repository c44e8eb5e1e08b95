# The worker's network surfaces under hostile use, against the reference
# scheduler peer: a flood of 4,200 silent connections while the scheduler
# pings and sends a task; another local user refused on the runtime API
# port; a scheduler given by name (resolved before the loop) and one whose
# name does not resolve; the scheduler allowlist.
set -eu
LBW_BIN=$LBW_BIN python3 tests/peer/scenarios_net.py
