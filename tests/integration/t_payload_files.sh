#!/bin/bash
# What a payload user owns and a root worker later removes: a payload run
# as nobody leaves a 3000-level tree and symlinks to an outside directory in
# its extra-files directory; the worker removes it without crashing and
# without following the links, then serves the next task; the payload has
# its user's HOME, USER and LOGNAME, not root's. One subtest per
# scenario of tests/peer/scenarios_payload_files.py.
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios_payload_files.py --list ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios_payload_files.py "$1"
