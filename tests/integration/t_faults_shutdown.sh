# Faults: tasks that arrive while the worker stops are refused; the running
# one is reported dropped; the worker exits 0 and leaves no payload. A
# scheduler that never answers worker.bye (SIGSTOPped) still lets the worker
# exit 0 when its wait runs out.
set -eu
LBW_BIN=$LBW_BIN python3 tests/abuse/faults.py task_during_shutdown scheduler_stalled_at_stop
