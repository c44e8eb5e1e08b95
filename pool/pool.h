/* pool.h — the local worker pool (docs/PROTOCOL.md 11; docs/ARCHITECTURE.md
 * "The pool"): one reactor; a message proxy that forwards address chains
 * (1.7) and takes worker.state_report; the pulse to the scheduler; the
 * workers as children started with clone3(CLONE_PIDFD) and a parent-death
 * signal, their exits arriving as pidfd completions; the housekeeping
 * decision (housekeep.h) run on every event, with one timer for its next
 * deadline. What the pool does not know (the configuration, the host
 * ledger) comes in through the options: the scheduler address, and a
 * `room` callback the on-demand mode asks before starting a worker. */
#ifndef LBW_POOL_H
#define LBW_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "housekeep.h"
#include "reactor.h"

enum lbw_pool_end {
    LBW_POOL_STOPPED = 0,   /* lbw_pool_stop: every worker is gone */
    LBW_POOL_PULSE_LOST,    /* the scheduler missed its pulses: workers gone */
};

struct lbw_pool_opts {
    lbw_reactor *r;
    const char *scheduler;      /* numeric address chain */
    const char *listen_ip;      /* NULL: the route's source address towards the scheduler */
    uint16_t first_port;        /* 0 = 22182 (then +1 per EADDRINUSE, 1024 tries) */
    const char *exe;            /* the worker binary to execute */
    char *const *argv_head;     /* argv before "worker": e.g. {"lifeblood-worker",
                                   "--loglevel", "DEBUG", NULL} */
    char *const *argv_tail;     /* appended to the worker's options (NULL or empty) */
    char *const *envp;
    int worker_type;            /* 0 STANDARD, 1 SCHEDULER_HELPER */
    int lower;                  /* --priority LOWER for the workers */
    int singleshot;             /* on-demand: every worker runs one task */
    struct lbw_hk_params hk;    /* idle_timeout_ns 0 = 10 s */
    uint64_t pulse_interval_ns; /* 0 = 10 s */
    unsigned pulse_misses;      /* 0 = 10 */
    uint64_t short_life_ns;     /* 0 = 4 s: a worker dying younger pauses starts */
    uint64_t pause_ns;          /* 0 = 5 s (doubled per further young death, max 60 s) */
    uint64_t kill_grace_ns;     /* 0 = 10 s: SIGTERM, then SIGKILL */
    const struct lbw_cidr_set *allow; /* schedulers answered (worker.scheduler_allow);
                                   NULL/empty: every peer may connect to the proxy;
                                   else these and this host's own address only */
    /* 1: the host has CPUs and memory not claimed; NULL: always room. (An
     * idle worker advertises what is left itself: it says hello again as
     * claims change, mesh.readvertise, which the on-demand command turns on
     * for its workers.) */
    int (*room)(void *ctx);
    void (*on_end)(void *ctx, enum lbw_pool_end why);
    void *ctx;
};

struct lbw_pool;

/* Binds the proxy, starts the pulse and the first workers. NULL with err. */
struct lbw_pool *lbw_pool_start(const struct lbw_pool_opts *o, char *err, size_t errlen);
/* Something outside changed (the host ledger): decide again. */
void lbw_pool_poke(struct lbw_pool *p);
/* Stops: no new workers, every worker SIGTERM, SIGKILL after the grace;
 * on_end(LBW_POOL_STOPPED) once all are gone (from the reactor). */
void lbw_pool_stop(struct lbw_pool *p);
/* Immediately SIGKILLs every worker (a second signal). */
void lbw_pool_kill_now(struct lbw_pool *p);
/* After on_end. */
void lbw_pool_free(struct lbw_pool *p);
const char *lbw_pool_address(const struct lbw_pool *p);

struct lbw_pool_stats {
    size_t workers, idle, busy, booting, terminating;
    uint64_t started, exited, crashed, forwarded;
};
void lbw_pool_stats(const struct lbw_pool *p, struct lbw_pool_stats *s);

#endif
