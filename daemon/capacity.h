/* capacity.h — what the host offers follows the host while the worker
 * runs, without timers: the cgroup files that bound it (cpuset CPUs,
 * memory limit, CPU quota, in the worker's cgroup and every ancestor, v2
 * and v1) are watched with inotify, the kernel's device events (CPU,
 * memory and NUMA node hot-plug, GPUs added, removed, bound, unbound) are
 * read from NETLINK_KOBJECT_UEVENT, both through the reactor. On an event
 * the host is probed again (a burst of events, however long, costs one
 * probe per 250 ms: at once, then once after it with the last state); a changed topology goes to the host ledger
 * (lbw_ledger_set_topo: nothing is granted from what went away), changed
 * values go to what hello advertises ([resources] overrides still win),
 * each change in one INFO line.
 *
 * Not followed: the worker moved to another cgroup (no event says so),
 * values changed by the kernel alone (cpuset.cpus.effective after a
 * parent's change is caught through the parent's file, but not a CPU
 * quota the kernel applies itself), and uevents outside the initial
 * network namespace (the kernel sends them there only). */
#ifndef LBW_CAPACITY_H
#define LBW_CAPACITY_H

#include <stddef.h>

#include "reactor.h"
#include "resources.h"
#include "toml.h"

struct lbw_ledger;
struct lbw_capacity;

struct lbw_capacity_opts {
    lbw_reactor *r;
    const struct lbw_probe_opts *probe; /* how to probe (copied); NULL: the live host */
    const struct lbw_toml *cfg;     /* [resources] overrides; may be NULL */
    struct lbw_host *host;          /* updated in place */
    struct lbw_advertised *adv;     /* updated in place (what hello sends) */
    struct lbw_ledger *ledger;      /* NULL: no mesh */
    int no_uevents;                 /* tests: cgroup files only */
    /* After a change, when there is no ledger (with one, its on_change). */
    void (*on_change)(void *ctx);
    void *ctx;
};

/* Starts watching. NULL (with a WARNING) when neither inotify nor uevents
 * could be had: capacity is then what it was at start. */
struct lbw_capacity *lbw_capacity_open(const struct lbw_capacity_opts *o);
void lbw_capacity_close(struct lbw_capacity *c);

/* Probes again now (what an event does). Returns 1 when what is advertised
 * or the ledger's topology changed, else 0. why: for the log line. */
int lbw_capacity_refresh(struct lbw_capacity *c, const char *why);

/* How many probes it made (a burst of events is probed once per 250 ms
 * at most: at once, then once more after it with the last state). */
size_t lbw_capacity_probes(const struct lbw_capacity *c);

/* Calls fn with each cgroup file that bounds this process's capacity and
 * exists under root (the worker's cgroup and its ancestors, v2 and v1),
 * at most `max` of them. Returns how many. */
size_t lbw_capacity_files(const char *root, size_t max, void (*fn)(void *ctx, const char *path),
                          void *ctx);

#endif
