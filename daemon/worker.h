/* worker.h — one worker instance's session with the scheduler (docs/PROTOCOL.md
 * 6.2–6.6, 7): the message listener on the route's source address (port
 * 6969 and up), worker.hello, the pinger with its miss threshold and the
 * reintroduce procedure, the commands the scheduler sends (ping, task,
 * drop, quit, log, status, invocation_message), progress reports, the
 * done/dropped report with the logs streamed from disk, pool state reports
 * and the stop sequence, as a state machine (worker.c's header); the
 * listener follows address changes (netlink) with a reintroduce. One
 * invocation at a time, run by run.c.
 *
 * The process-level loop around instances (broadcast discovery, retries,
 * signals) is worker_main.c's. */
#ifndef LBW_WORKER_H
#define LBW_WORKER_H

#include <stdint.h>

#include "cidr.h"
#include "reactor.h"
#include "resources.h"
#include "toml.h"

struct lbw_contain;
struct lbw_payload_user;

struct lbw_worker;
struct lbw_sdnotify;
struct lbw_ledger;

/* Upstream's WorkerState (PROTOCOL.md 2.2): what worker.ping answers about
 * us, what worker.state_report tells the pool, what status reports. */
enum lbw_worker_state {
    LBW_WS_OFF = 0,
    LBW_WS_IDLE = 1,
    LBW_WS_BUSY = 2,
    LBW_WS_ERROR = 3,
    LBW_WS_INVOKING = 4,
    LBW_WS_UNKNOWN = 5,
};
/* "OFF", "IDLE", ... for logs; "not a WorkerState" for other numbers. */
const char *lbw_worker_state_name(int state);

enum lbw_worker_end {
    LBW_WORKER_STOPPED = 0,     /* asked to stop (signal, quit, singleshot) */
    LBW_WORKER_UNREACHABLE,     /* hello failed: scheduler not reachable */
    LBW_WORKER_LOST,            /* pings missed / reintroduce failed */
    LBW_WORKER_FAILED,          /* could not start (listener, ...) */
};

struct lbw_worker_opts {
    lbw_reactor *r;
    const char *scheduler;        /* scheduler chain (pool: POOL|SCHEDULER) */
    const char *pool_address;     /* pool proxy, or NULL */
    int64_t pool_id;
    int worker_type;              /* 0 STANDARD, 1 SCHEDULER_HELPER */
    int singleshot;
    int payload_nice;             /* 10 with --priority LOWER */
    const struct lbw_toml *cfg;
    const struct lbw_toml *stdres_cfg;    /* standard_environment_resolver config */
    const struct lbw_resources *res;
    const char *hostname;
    const char *log_root;
    const char *runtime_dir;
    const char *python_dir;
    const struct lbw_contain *contain;    /* invocation cgroups (contain.h), or NULL */
    const struct lbw_payload_user *payload_user; /* a root worker's payloads, or NULL */
    char *const *environ;
    const char *listen_ip;        /* override of the route source address, or NULL */
    uint16_t listen_port;         /* first port tried; 0 = 6969 */
    double progress_interval;     /* s; minimum_progress_reporting_interval */
    uint64_t ping_interval_ns;    /* 0 = 10 s */
    unsigned ping_misses;         /* 0 = 6 */
    uint64_t retry_wait_ns;       /* between reintroduce attempts; 0 = 10 s */
    uint64_t kill_grace_ns;       /* 0 = 10 s */
    uint64_t runtime_request_timeout_ns; /* runtime API request deadline; 0 = 60 s */
    const struct lbw_sdnotify *notify;   /* service manager (READY/STATUS), or NULL */
    const struct lbw_cidr_set *scheduler_allow; /* worker.scheduler_allow; NULL = all */
    struct lbw_ledger *ledger;    /* the host ledger (ledger.h), or NULL: no mesh */
    int readvertise;              /* mesh.readvertise: hello again while idle on a change */
    /* The instance has stopped (everything closed); free it after this. */
    void (*on_end)(void *ctx, enum lbw_worker_end why);
    void *ctx;
};

/* Starts an instance: binds the listener, says hello, starts the pinger.
 * Returns NULL with a message when it cannot even start. */
struct lbw_worker *lbw_worker_start(const struct lbw_worker_opts *o, char *err, size_t errlen);
/* Begins the stop sequence (6.6); on_end follows. Safe to call again. */
void lbw_worker_stop(struct lbw_worker *w);
/* Immediate end for a second signal: SIGKILL to the payload tree. */
void lbw_worker_kill_now(struct lbw_worker *w);
void lbw_worker_free(struct lbw_worker *w);
/* What is left on the host changed (the ledger's on_change): an idle
 * instance says worker.hello again with the new values, at most once a
 * second (a timer armed only by a change); busy, nothing. */
void lbw_worker_host_changed(struct lbw_worker *w);
/* The address the scheduler knows us by (for logs and tests). */
const char *lbw_worker_address(const struct lbw_worker *w);

#endif
