# Payload input at the edges of what execve and the text conversions take,
# against the reference scheduler peer: a 40 MB task attribute (not
# exported, a WARNING names it, the payload runs); an environment or a
# command line too big for execve (FAILED with error class spawn, naming
# E2BIG and the sizes, within seconds); a resolver argument and an action
# queue that double per level (refused at once); 100,000 attributes
# (answered within seconds). After each the worker answers and runs tasks. One subtest per scenario of
# tests/peer/scenarios_followup.py.
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_followup.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_followup.py "$1"
