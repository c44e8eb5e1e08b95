# Containment against the reference scheduler peer, on this host's real
# cgroup hierarchies (v2 and v1): OOM inside the claim told apart in both
# logs, a bounded fork bomb as nobody stopped by pids.max while the worker
# answers, a leftover SIGTERM-ignoring daemon ended, the payload's own
# cgroups and claimed CPUs, a SIGKILLed worker's cgroups cleaned in every
# hierarchy, the payload user of a root worker (and its safe default), a
# delegated cgroup (leaf and invocations beside it). One subtest per
# scenario of tests/peer/scenarios_contain.py.
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_contain.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_contain.py "$1"
