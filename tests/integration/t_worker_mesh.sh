# What the host ledger shows outside the payloads (tests/peer/
# scenarios_mesh.py): an idle worker re-advertises what other workers'
# claims leave (and does not with mesh.readvertise = false; coalesced to
# one hello a second; a task meeting the re-hello in flight is answered
# BUSY), and `lifeblood-worker status` with 0, 1 and 3
# workers, for a user the mesh does not admit, from another network
# namespace.
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_mesh.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_mesh.py "$1"
