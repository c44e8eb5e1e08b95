/* reactor_impl.h — private interface between the reactor core (reactor.c:
 * op bookkeeping, timers, deferred completions, the loop) and its backends
 * (reactor_uring.c, reactor_epoll.c). Not for use outside kernel-iface/. */
#ifndef LBW_REACTOR_IMPL_H
#define LBW_REACTOR_IMPL_H

#include "reactor.h"

enum { LBW_ST_IDLE = 0, LBW_ST_ACTIVE, LBW_ST_DEFERRED };
enum {
    LBW_F_CANCEL = 1u << 0,     /* cancellation requested */
    LBW_F_STARTED = 1u << 1,    /* connect() issued / first attempt made */
    LBW_F_RETRYPOLL = 1u << 2,  /* io_uring: waiting on a poll before retrying */
};

/* An intrusive FIFO of ops linked through qnext/qprev; op->owner points at
 * the list an op is on, so it can be unlinked from wherever it is. */
struct lbw_oplist {
    struct lbw_op *head, *tail;
};
void lbw__oplist_push(struct lbw_oplist *l, struct lbw_op *op);
void lbw__oplist_remove(struct lbw_op *op);
struct lbw_op *lbw__oplist_pop(struct lbw_oplist *l);

struct lbw_backend_ops {
    const char *name;
    /* Sets up backend state in r->impl; returns 0 or -errno with a message. */
    int (*init)(lbw_reactor *r, const struct lbw_reactor_opts *o, char *err, size_t errlen);
    void (*fini)(lbw_reactor *r);
    /* Starts an fd operation (not a timer). Returns 0 or -errno. */
    int (*start)(lbw_reactor *r, struct lbw_op *op);
    /* Requests cancellation of an active fd operation. */
    void (*cancel)(lbw_reactor *r, struct lbw_op *op);
    /* Waits up to timeout_ns (UINT64_MAX = forever), dispatches completions
     * through lbw__finish; returns the number dispatched or -errno. */
    int (*wait)(lbw_reactor *r, uint64_t timeout_ns);
};

extern const struct lbw_backend_ops lbw__uring_ops;
extern const struct lbw_backend_ops lbw__epoll_ops;

struct lbw_reactor {
    enum lbw_backend backend;
    const struct lbw_backend_ops *ops;
    void *impl;
    char reason[256];
    struct lbw_op *all;             /* every active op */
    size_t npending;
    struct lbw_op **heap;           /* timers, min-heap by (deadline, seq) */
    size_t heap_len, heap_cap;
    uint64_t timer_seq;
    struct lbw_oplist deferred;     /* completions to deliver next round */
    int stopping;
};

/* Final completion: unlinks the op and runs its callback. */
void lbw__finish(lbw_reactor *r, struct lbw_op *op, int64_t res);
/* Queues a final completion for the next dispatch round. */
void lbw__defer(lbw_reactor *r, struct lbw_op *op, int64_t res);

#endif
