# The worker against the reference scheduler peer (tests/peer): hello and
# resources, done/dropped reports and their logs, exit codes, spawn and
# resolver failures, busy, drop of a tree that ignores SIGTERM and
# double-forks, progress in every regex style, environment and extra
# files, the log and status commands, quit and SIGTERM, an unreachable
# scheduler, a scheduler restart (reintroduce), a task that arrives before
# the hello reply, singleshot and helper workers, two workers behind a pool
# proxy, broadcast discovery. One subtest per scenario of
# tests/peer/scenarios.py (big_output runs in t_worker_big_output.sh).
# subtests: listed by --list
set -eu
case "${1:-}" in
  --list) exec python3 tests/peer/scenarios.py --list --exclude big_output ;;
  "")     echo "usage: $0 --list | SCENARIO" >&2; exit 2 ;;
esac
LBW_BIN=$LBW_BIN exec python3 tests/peer/scenarios.py "$1"
