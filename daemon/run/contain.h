/* contain.h — containment: where a worker's invocation cgroups come from,
 * what each invocation's cgroups limit, and what they tell at its end.
 *
 * Chosen once at start (lbw_contain_plan decides without writing; `probe`
 * shows it; lbw_contain_setup acts and the worker logs one INFO line):
 *
 *   delegated  the worker's cgroup v2 directory D was delegated to it (the
 *              service manager's Delegate=yes: the trusted.delegate or
 *              user.delegate attribute, or a non-root worker that may write
 *              D's cgroup.procs and cgroup.subtree_control and shares D
 *              with nothing but its parent): the processes
 *              in D move to the leaf D/lifeblood-worker-main (cgroup v2's
 *              no-internal-process rule), D enables memory, pids and cpuset
 *              for its children, and invocations live beside that leaf in
 *              D/PARENT/worker-PID-START-PIDNS/inv-ID (a worker started in
 *              the leaf, a pool's next one, takes D from above it);
 *   root       no delegation, but the hierarchies' tops are writable (root):
 *              TOP/PARENT/worker-PID-START-PIDNS/inv-ID under each
 *              hierarchy used (v2 when mounted; each of the v1 controllers
 *              memory, cpuset, pids and freezer that v2 does not provide),
 *              created on demand;
 *   off        nothing writable, or containment.mode = "off" (or
 *              LBW_CGROUPS=off): the process group and child-subreaper
 *              path (run.c), with the reason in the INFO line.
 *
 * PARENT is containment.parent ("lifeblood-worker"). Dead predecessors'
 * worker-* directories are reclaimed in every hierarchy (invcg.h).
 *
 * Per invocation (lbw_cinv_*): one cgroup per hierarchy with the claim's
 * CPUs and memory node (cpuset), its memory (memory.max + memory.swap.max
 * 0, or memory.high in the soft mode; v1 memory.limit_in_bytes +
 * memory.memsw.limit_in_bytes, or memory.soft_limit_in_bytes),
 * memory.oom.group 1 and pids.max; an fd of the v2 directory for
 * clone3(CLONE_INTO_CGROUP) and cgroup.procs fds of the v1 ones that the
 * child writes before execve (spawn.h join_fds). At the end, what its
 * counters say: killed by the kernel's OOM killer inside the limit, the
 * pids limit reached. Uses only kernel-iface/cgroup. */
#ifndef LBW_CONTAIN_H
#define LBW_CONTAIN_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { LBW_CONTAIN_OFF, LBW_CONTAIN_DELEGATED, LBW_CONTAIN_ROOT };
enum { LBW_V1_MEMORY, LBW_V1_CPUSET, LBW_V1_PIDS, LBW_V1_FREEZER, LBW_V1_N };

#define LBW_CONTAIN_LEAF "lifeblood-worker-main"
#define LBW_CONTAIN_PIDS_MAX 10000

struct lbw_contain_cfg {
    int off;             /* containment.mode = "off" */
    const char *why_off; /* what said so ("containment.mode = off") */
    const char *parent;  /* containment.parent; NULL: "lifeblood-worker" */
    int64_t pids_max;    /* per invocation; 0: no limit */
    int memory_high;     /* containment.memory_mode = "high" */
    int swap;            /* containment.swap */
};

struct lbw_contain {
    int mode;
    struct lbw_contain_cfg cfg;
    char why[512];                  /* off: why */
    char v2_base[PATH_MAX];         /* D (delegated) or the v2 top (root); "" none */
    char v2[PATH_MAX];              /* the worker's directory for invocations; "" none */
    char v2_ctl[64];                /* controllers invocations get on v2 ("memory pids") */
    char v1_base[LBW_V1_N][PATH_MAX];
    char v1[LBW_V1_N][PATH_MAX];    /* "" where that controller is not used */
    int cpuset_clone;               /* v1 cpuset: the worker's directory has
                                       cgroup.clone_children 1 (invocations are
                                       created with its CPUs and memory nodes) */
    int slow_joins;                 /* v1 in use and no favordynmods mount: each payload's
                                       joins may wait for an RCU grace period */
};

/* Decides the mode and the directories from root+/proc/self/mountinfo
 * (root "/" on a live host, a fixture tree in tests) without writing. */
void lbw_contain_plan(const char *root, const struct lbw_contain_cfg *cfg, struct lbw_contain *c);
/* Plans on the live host and sets up: moves into the leaf (delegated),
 * enables controllers, reclaims dead workers' cgroups, creates this
 * worker's directories. Falls back to off (c->why) when nothing works. */
void lbw_contain_setup(const struct lbw_contain_cfg *cfg, struct lbw_contain *c);
/* Ends what is left in this worker's directories and removes them. */
void lbw_contain_teardown(struct lbw_contain *c);
/* One line: "root: cgroup v2 /sys/fs/cgroup/lifeblood-worker/worker-... (memory
 * pids cpuset)", or "off: why". */
void lbw_contain_describe(const struct lbw_contain *c, char *out, size_t cap);
const char *lbw_contain_mode_name(int mode);
/* The worker's first invocation directory (v2, else a v1 one), or "". */
const char *lbw_contain_first_dir(const struct lbw_contain *c);

/* ---- one invocation ------------------------------------------------------------ */

struct lbw_cinv_limits {
    const char *cpus;  /* cpuset list ("0-3,8"), NULL or "": the parent's */
    int node;          /* memory node, < 0: the parent's */
    uint64_t mem;      /* bytes, 0: no limit */
};

/* What the kernel did to it. */
struct lbw_cinv_verdict {
    uint64_t oom_kills;     /* memory.events oom_kill (v2) or oom_control oom_kill (v1) */
    uint64_t oom_group;     /* memory.events oom_group_kill */
    uint64_t mem_max_hits;  /* memory.events oom: the limit reached, an allocation
                               about to fail; v1: failcnt, or a peak at the limit */
    uint64_t pids_max_hits; /* pids.events max */
};

struct lbw_cinv {
    char v2[PATH_MAX];              /* "" none */
    char v1[LBW_V1_N][PATH_MAX];
    int cgfd;                       /* v2 directory for clone3, or -1 */
    int join_fds[LBW_V1_N];         /* v1 cgroup.procs fds for the child */
    size_t njoin;
    uint64_t mem_limit;             /* applied hard limit, 0 none */
    int64_t pids_limit;             /* applied, 0 none */
    struct lbw_cinv_verdict base;   /* the counters when it was created: a cgroup
                                       left by an earlier run of the same id keeps
                                       its counts, which are not this run's */
};

/* Creates the invocation's cgroups with the limits. Returns 0 (ci->v2 or
 * some ci->v1 set), or -errno with err saying what failed (ci empty). */
int lbw_cinv_create(const struct lbw_contain *c, int64_t inv_id, const struct lbw_cinv_limits *l,
                    struct lbw_cinv *ci, char *err, size_t errlen);
/* Closes the fds only the spawn needs. */
void lbw_cinv_close_fds(struct lbw_cinv *ci);
/* 1 when any of its cgroups is in use. */
int lbw_cinv_active(const struct lbw_cinv *ci);
/* The directory where its processes are listed and watched: v2, else the
 * first v1 one. */
const char *lbw_cinv_dir(const struct lbw_cinv *ci);
/* Every process in its cgroups (deduplicated, at most cap); the count. */
size_t lbw_cinv_procs(const struct lbw_cinv *ci, pid_t *pids, size_t cap);
/* SIGKILL to all: cgroup.kill on v2, else freeze + SIGKILL + thaw (v1
 * freezer), else the kill loop. Returns the processes it found, or -errno. */
ssize_t lbw_cinv_kill(const struct lbw_cinv *ci);

/* Counts since lbw_cinv_create (ci->base subtracted). */
void lbw_cinv_verdict(const struct lbw_cinv *ci, struct lbw_cinv_verdict *v);
/* The trailer line for the invocation's log and the worker's ERROR, or
 * "" when the kernel did nothing to it. killed_by_worker: a drop. */
void lbw_cinv_explain(const struct lbw_cinv *ci, const struct lbw_cinv_verdict *v,
                      char *out, size_t cap);
/* Removes its cgroups (they must be empty). Returns 0 or the first -errno. */
int lbw_cinv_remove(struct lbw_cinv *ci);

/* Parses one "key value" counter out of a flat-keyed file (memory.events,
 * memory.oom_control, pids.events). 0 when absent. */
uint64_t lbw_cg_counter(const char *text, const char *key);

#endif
