# The worker against the reference scheduler peer (tests/peer): hello and
# resources, done/dropped reports and their logs, exit codes, spawn and
# resolver failures, busy, drop of a tree that ignores SIGTERM and
# double-forks, progress in every regex style, environment and extra
# files, the log and status commands, quit and SIGTERM, an unreachable
# scheduler, a scheduler restart (reintroduce), a task that arrives before
# the hello reply, singleshot and helper
# workers, two workers behind a pool proxy, broadcast discovery.
set -eu
scen=$(python3 -c 'import sys; sys.path.insert(0, "tests/peer"); import scenarios; print(" ".join(sorted(k for k in scenarios.SCENARIOS if k != "big_output")))')
LBW_BIN=$LBW_BIN python3 tests/peer/scenarios.py $scen
