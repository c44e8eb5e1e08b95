/* sched_src.h — where a worker or a pool finds its scheduler, for both:
 * the scheduler's UDP broadcast (worker.listen_to_broadcast), else an
 * address from the command line or worker.scheduler_address. One look per
 * call; the caller resolves and connects, and calls again after a loss. */
#ifndef LBW_SCHED_SRC_H
#define LBW_SCHED_SRC_H

#include "cidr.h"
#include "discover.h"
#include "reactor.h"
#include "sdnotify.h"
#include "toml.h"

struct lbw_sched_src {
    /* set by the caller */
    lbw_reactor *r;
    const char *who;              /* log facility: "worker" or "pool" */
    const char *cli_option;       /* "--scheduler-address" when the command has one */
    int broadcast;                /* listen for the broadcast */
    const char *address;          /* from the command line, or NULL: the config's */
    const struct lbw_toml *cfg;
    const struct lbw_cidr_set *allow; /* broadcasts taken (worker.scheduler_allow) */
    struct lbw_sdnotify *notify;  /* may be NULL */
    void (*found)(void *ctx, const char *address);
    void *ctx;
    /* private */
    struct lbw_discover *disc;
};

/* Looks once: found() runs now with the given or configured address (a
 * valid chain), or later with a broadcast's. -1, logged at CRIT or ERROR
 * with what to do, when it cannot look: no address, not an address chain,
 * no broadcast socket. */
int lbw_sched_src_next(struct lbw_sched_src *s);
/* Stops listening for a broadcast (a stop before it came). */
void lbw_sched_src_cancel(struct lbw_sched_src *s);

#endif
