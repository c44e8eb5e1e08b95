# Faults: the scheduler SIGKILLed while a payload runs (the worker
# reintroduces itself and reports the invocation dropped) and while the
# payload finishes (the result is dropped after the failed report; the
# worker re-registers and takes new tasks).
set -eu
LBW_BIN=$LBW_BIN python3 tests/abuse/faults.py scheduler_killed_running scheduler_killed_finished
