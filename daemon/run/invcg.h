/* invcg.h — one worker's directory for invocation cgroups in one
 * hierarchy, and what a dead worker left there.
 *
 * Under PARENT (containment.parent, "lifeblood-worker", in each hierarchy
 * the worker uses: contain.h decides where):
 *
 *   PARENT/worker-PID-START-PIDNS/   one per worker process (pid, start
 *                  time: a reused pid is no owner; pid namespace: a pid is
 *                  only read in the namespace that gave it)
 *   PARENT/worker-PID-START-PIDNS/inv-ID/   one per invocation (contain.c)
 *
 * At start a worker reclaims every worker-* directory whose owner is dead
 * (SIGKILLed, crashed), in v2 and v1 hierarchies alike: it kills what is
 * inside (cgroup.kill, or the module's freeze/SIGKILL loop) and removes
 * it, with one INFO line per directory and one WARNING saying how many
 * processes it ended. At exit it does the same to its own. Uses only
 * kernel-iface/cgroup. */
#ifndef LBW_INVCG_H
#define LBW_INVCG_H

#include <stddef.h>

#define LBW_INVCG_TOP "lifeblood-worker"
#define LBW_INVCG_OWNER "worker"

/* Creates PARENT (top), reclaims dead predecessors' directories there and
 * creates this worker's. Returns 0 with the directory in out, or -errno
 * with a reason in why. */
int lbw_invcg_setup(const char *top, char *out, size_t cap, char *why, size_t whylen);

/* Kills what is left in the worker's directory and removes it. */
void lbw_invcg_teardown(const char *dir);

/* Kills and removes the dead owners' directories under top (the
 * lifeblood-worker directory). Returns the number of processes ended;
 * *owners is how many dead owners' directories were removed. */
size_t lbw_invcg_reclaim(const char *top, size_t *owners);

#endif
