# The local worker pool (`lifeblood-worker pool simple`) against the
# reference scheduler peer (tests/peer/scenarios_pool.py): one subtest per
# case of upstream's tests/test_worker_pool.py (basic, back to idle and back
# to total with minimums 1/2/3, max, min, the mixed start/stop), the
# on-demand mode with the host ledger and a fixture capacity (the idle worker
# saying hello again as tasks end), a pool stopped
# by SIGTERM and one SIGKILLed leaving no process, a crash-looping worker
# command (reported once per crash, throttled).
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_pool.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_pool.py "$1"
