# Faults: the worker under RLIMIT_NOFILE 64 takes 200 connections at once
# and still answers the scheduler and runs tasks.
set -eu
LBW_BIN=$LBW_BIN python3 tests/abuse/faults.py nofile_64
