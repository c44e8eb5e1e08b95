# Hostile codec input through a live worker (tests/peer/scenarios_wire.py):
# a code-execution pickle in a task's attributes is refused with the global
# and its offset; 200 kB to 6 MB of nested JSON is refused while pings are
# answered; integers beyond 4,300 digits do not become LBATTR_*. After each
# the worker still runs tasks.
set -eu
LBW_BIN=$LBW_BIN python3 tests/peer/scenarios_wire.py
