# The payload runtime API against the reference scheduler peer: payloads
# that import lifeblood_connection create tasks (with environment resolver
# arguments) and set attributes; messages between invocations on two
# workers (receive first, send first, late receiver), to unknown, finished
# and never-listening invocations, and a transfer error; the worker side of
# invocation_message (timeouts, release at drop); 100 concurrent payload
# connections next to misbehaving clients; the request deadline. One
# subtest per scenario of tests/peer/scenarios_runtime.py.
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_runtime.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_runtime.py "$1"
