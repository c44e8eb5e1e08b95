# The payload runtime API against the reference scheduler peer: payloads
# that import lifeblood_connection create tasks (with environment resolver
# arguments) and set attributes; messages between invocations on two
# workers (receive first, send first, late receiver), to unknown, finished
# and never-listening invocations, and a transfer error; the worker side of
# invocation_message (timeouts, release at drop); 100 concurrent payload
# connections next to misbehaving clients; the request deadline.
set -eu
LBW_BIN=$LBW_BIN python3 tests/peer/scenarios_runtime.py
