# Capacity follows the host while workers run (tests/peer/
# scenarios_capacity.py): a v1 cpuset narrowed and widened, a [resources]
# override that still wins while claims follow the cpuset, a v1 memory
# limit lowered. SKIP where there is no writable v1 hierarchy.
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_capacity.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_capacity.py "$1"
