# Service-manager integration (systemd Type=notify) against the reference
# scheduler peer, with a socket of the test's own as NOTIFY_SOCKET (abstract
# and path names): READY=1 only after the hello reply, STATUS= with the
# state and the running invocation, WATCHDOG=1 from the event loop,
# STOPPING=1 at SIGTERM, no notification variable in a payload's
# environment, and no NOTIFY_SOCKET (or an unusable one) changes nothing.
set -eu
LBW_BIN=$LBW_BIN python3 tests/peer/scenarios_sdnotify.py
