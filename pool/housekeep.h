/* housekeep.h — the pool's decision, as a pure function (docs/PROTOCOL.md
 * 11): given the workers (state, since when, being terminated), the
 * limits and the clock, which idle workers to terminate and how many to
 * start. No I/O, no clock of its own: the pool calls it on every event
 * and arms one timer for the returned next_check. */
#ifndef LBW_HOUSEKEEP_H
#define LBW_HOUSEKEEP_H

#include <stddef.h>
#include <stdint.h>

/* WorkerState values the pool sees (OFF = booting, counted as idle). */
enum { LBW_PW_OFF = 0, LBW_PW_IDLE = 1, LBW_PW_BUSY = 2 };

struct lbw_hk_worker {
    int state;             /* LBW_PW_* */
    uint64_t since_ns;     /* when it entered state (OFF: never eligible) */
    int terminating;       /* SIGTERM sent, process not yet gone */
};

struct lbw_hk_params {
    unsigned min_idle, min_total, max;
    uint64_t idle_timeout_ns;  /* an IDLE surplus worker is stopped after this */
};

struct lbw_hk_in {
    const struct lbw_hk_worker *w; /* every process still alive, terminating included */
    size_t n;
    uint64_t now_ns;
    int paused;            /* a worker died young: no new workers for now */
    int room;              /* 0: the host has nothing left (on-demand gate) */
};

struct lbw_hk_out {
    size_t *term;          /* caller's array of n: indices to SIGTERM */
    size_t nterm;
    unsigned spawn;        /* workers to start now */
    unsigned blocked_max;  /* of the wanted ones, how many --max held back */
    uint64_t next_ns;      /* when an idle worker becomes a candidate; 0 = none */
};

/* Upstream's rules: idle = IDLE or OFF not terminating, total = not
 * terminating. If idle > min_idle and total > min_total, up to
 * min(idle - min_idle, total - min_total) workers IDLE for at least the
 * timeout are terminated (in order). Unless paused (or without room), it
 * starts min_total - total, then enough for idle + new >= min_idle, never
 * more processes than max counting the terminating ones. */
void lbw_housekeep(const struct lbw_hk_params *p, const struct lbw_hk_in *in,
                   struct lbw_hk_out *out);

#endif
