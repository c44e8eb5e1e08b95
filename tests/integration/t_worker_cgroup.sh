# Invocation cgroups against the reference scheduler peer: a drop ends a
# double-forked daemon through its cgroup (cgroup.kill) and removes the
# cgroup; a worker SIGKILLed mid-task and restarted leaves no payload
# process (the new worker ends its predecessor's cgroups, with a WARNING);
# without cgroups (LBW_CGROUPS=off) the payload's direct child dies with
# the worker. Scenarios that need a writable cgroup v2 directory print a
# SKIP line where there is none.
set -eu
LBW_BIN=$LBW_BIN python3 tests/peer/scenarios_cgroup.py
