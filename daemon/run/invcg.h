/* invcg.h — where invocations get their own cgroups, and what a dead
 * worker left in them.
 *
 * Under the worker's own cgroup v2 directory D (delegated, or root's):
 *
 *   D/lifeblood-worker/                    shared by every worker placed in D
 *   D/lifeblood-worker/worker-PID-START-PIDNS/   one per worker process (pid,
 *                  start time: a reused pid is no owner; pid namespace: a pid
 *                  is only read in the namespace that gave it)
 *   D/lifeblood-worker/worker-PID-START-PIDNS/inv-ID/   one per invocation (run.c)
 *
 * At start a worker reclaims every worker-* directory whose owner is dead
 * (SIGKILLed, crashed): it kills what is inside (cgroup.kill, or the
 * module's freeze/SIGKILL loop) and removes it, with one WARNING saying
 * how many processes it ended. At exit it does the same to its own. Uses
 * only kernel-iface/cgroup. */
#ifndef LBW_INVCG_H
#define LBW_INVCG_H

#include <stddef.h>

#define LBW_INVCG_TOP "lifeblood-worker"
#define LBW_INVCG_OWNER "worker"

/* Sets up the worker's directory for invocation cgroups inside the v2
 * directory `own` (NULL: this process's own v2 cgroup, located from
 * /proc/self/mountinfo), after reclaiming dead predecessors'. Returns 0
 * with the directory in out, or -errno with a reason in why (cgroups are
 * then not used). */
int lbw_invcg_setup(const char *own, char *out, size_t cap, char *why, size_t whylen);

/* Kills what is left in the worker's directory and removes it. */
void lbw_invcg_teardown(const char *dir);

/* Kills and removes the dead owners' directories under top (the
 * lifeblood-worker directory). Returns the number of processes ended;
 * *owners is how many dead owners' directories were removed. */
size_t lbw_invcg_reclaim(const char *top, size_t *owners);

#endif
