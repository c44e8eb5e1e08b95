# The host ledger between real workers on loopback (tests/peer/
# scenarios_ledger.py): the documentation's walk-through with a fixture
# capacity, disjoint CPU sets for tasks sent at the same instant, a
# SIGKILLed worker's claim freed, a process of another uid refused.
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_ledger.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_ledger.py "$1"
