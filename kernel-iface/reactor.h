/* reactor.h — the single-threaded event loop every other module runs on.
 *
 * Owns: asynchronous operations on file descriptors (accept, connect, recv,
 * send-all, read/write at offsets, readiness polls), one-shot and periodic
 * timers, cancellation, and the run/stop loop. Two backends implement it:
 * io_uring (liburing, the default) and epoll (chosen automatically when
 * io_uring cannot be set up, or forced).
 *
 * Contract, the same on both backends:
 *  - Operations are intrusive: the caller owns a `struct lbw_op`, zeroes it
 *    before first use, and keeps it alive and untouched until its final
 *    callback (buffers likewise). An op may be restarted from its own final
 *    callback.
 *  - Every started operation gets exactly one *final* callback, with a result
 *    `res` that is >= 0 on success (bytes, a new fd, poll revents, ...) or a
 *    negative errno. A cancelled operation finishes with -ECANCELED, unless it
 *    had already completed (then its real result is delivered, so received
 *    data is never lost). Periodic timers also get non-final callbacks with
 *    res > 0 (the number of expirations) on every tick; their final callback is
 *    the one with res < 0.
 *  - Callbacks never run from inside a start or cancel call; only from
 *    lbw_reactor_run(). A callback may start, cancel, and free other
 *    (completed) operations and may stop the loop.
 *  - Sockets and pipes given to the reactor must be O_NONBLOCK (see
 *    lbw_set_nonblock). Regular files may be blocking.
 */
#ifndef LBW_REACTOR_H
#define LBW_REACTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct lbw_reactor lbw_reactor;
struct lbw_op;

typedef void (*lbw_cb)(lbw_reactor *r, struct lbw_op *op, int64_t res);

enum lbw_backend {
    LBW_BACKEND_AUTO = 0, /* io_uring, falling back to epoll */
    LBW_BACKEND_URING,    /* io_uring or fail */
    LBW_BACKEND_EPOLL,
};

enum lbw_op_kind {
    LBW_OP_NONE = 0,
    LBW_OP_ACCEPT,
    LBW_OP_CONNECT,
    LBW_OP_RECV,
    LBW_OP_SEND,  /* send-all */
    LBW_OP_READ,
    LBW_OP_WRITE, /* write-all */
    LBW_OP_POLL,
    LBW_OP_TIMER,
};

/* One operation. Fields below `user` are private to the reactor. */
struct lbw_op {
    void *user; /* free for the caller */

    /* private */
    lbw_cb cb;
    uint8_t kind;
    uint8_t state;
    uint8_t flags;
    int fd;
    uint32_t events;
    void *buf;
    size_t len;
    size_t done;
    int64_t offset;
    uint64_t deadline_ns, interval_ns;
    size_t heap_idx;
    int64_t result;
    uint64_t udata;                      /* backend tag (io_uring user_data) */
    struct lbw_op *next, *prev;          /* all-pending list */
    struct lbw_op *qnext, *qprev;        /* backend / deferred queues */
    void *owner;                         /* the queue qnext/qprev link into */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct lbw_reactor_opts {
    enum lbw_backend backend;   /* LBW_BACKEND_AUTO unless forced */
    unsigned queue_depth;       /* io_uring SQ entries; 0 = default (256) */
    /* Test hook: when non-zero, io_uring setup "fails" with this negative
     * errno before the kernel is asked, to exercise the fallback. */
    int inject_uring_setup_error;
};

/* Reads LBW_REACTOR ("uring" | "epoll" | "auto" or unset) into opts->backend.
 * Returns 0, or -EINVAL with *bad set to the offending value. */
int lbw_reactor_opts_from_env(struct lbw_reactor_opts *opts, const char **bad);
/* Parses "uring" | "io_uring" | "epoll" | "auto". Returns 0 or -EINVAL. */
int lbw_backend_parse(const char *s, enum lbw_backend *out);

/* Creates a reactor. On failure returns a negative errno and, if errbuf is
 * given, a sentence saying what failed and what to do. */
int lbw_reactor_new(lbw_reactor **out, const struct lbw_reactor_opts *opts,
                    char *errbuf, size_t errlen);
/* Cancels every pending operation, delivers their final callbacks
 * (-ECANCELED), then frees the reactor. Closes no caller fds. */
void lbw_reactor_free(lbw_reactor *r);

enum lbw_backend lbw_reactor_backend(const lbw_reactor *r);
const char *lbw_reactor_backend_name(const lbw_reactor *r); /* "io_uring" | "epoll" */
/* Why this backend was chosen, e.g. "default" or
 * "io_uring unavailable: io_uring_setup: Operation not permitted (seccomp?)". */
const char *lbw_reactor_backend_reason(const lbw_reactor *r);

/* Runs until lbw_reactor_stop() or until no operation is pending; a stop
 * requested before the call makes it return at once (each stop is consumed
 * by the run it ends). Returns 0, or a negative errno if waiting failed. */
int lbw_reactor_run(lbw_reactor *r);
/* Runs at most one round of event collection and dispatch, waiting at most
 * timeout_ns (0 = do not wait). Returns the number of callbacks run or -errno. */
int lbw_reactor_run_once(lbw_reactor *r, uint64_t timeout_ns);
void lbw_reactor_stop(lbw_reactor *r);
/* Number of operations started and not yet finished. */
size_t lbw_reactor_pending(const lbw_reactor *r);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t lbw_now_ns(void);

/* Starting operations. Each returns 0 (the callback will come) or a negative
 * errno (nothing was started: -EBUSY if the op is still in use, -EINVAL for
 * bad arguments). */
int lbw_accept(lbw_reactor *r, struct lbw_op *op, int listen_fd, lbw_cb cb);
int lbw_connect(lbw_reactor *r, struct lbw_op *op, int fd,
                const struct sockaddr *sa, socklen_t salen, lbw_cb cb);
int lbw_recv(lbw_reactor *r, struct lbw_op *op, int fd, void *buf, size_t len, lbw_cb cb);
/* Sends all `len` bytes (MSG_NOSIGNAL); res = len, or -errno (-EPIPE,
 * -ECONNRESET when the peer went away). */
int lbw_send(lbw_reactor *r, struct lbw_op *op, int fd, const void *buf, size_t len, lbw_cb cb);
/* offset < 0: at the file position (pipes, sockets, appends). */
int lbw_read(lbw_reactor *r, struct lbw_op *op, int fd, void *buf, size_t len,
             int64_t offset, lbw_cb cb);
/* Writes all `len` bytes; res = len or -errno. */
int lbw_write(lbw_reactor *r, struct lbw_op *op, int fd, const void *buf, size_t len,
              int64_t offset, lbw_cb cb);
/* One-shot readiness: `events` are POLLIN/POLLOUT/...; res = revents. */
int lbw_poll(lbw_reactor *r, struct lbw_op *op, int fd, uint32_t events, lbw_cb cb);
/* Fires after `delay_ns`; if `interval_ns` > 0, again every interval until
 * cancelled (ticks come with res = expirations, the final callback with
 * -ECANCELED). A one-shot timer finishes with res = 1. */
int lbw_timer(lbw_reactor *r, struct lbw_op *op, uint64_t delay_ns, uint64_t interval_ns,
              lbw_cb cb);

/* Requests cancellation. Returns 0 if a final callback is still to come
 * (with -ECANCELED or the real result), -ENOENT if the op is not pending. */
int lbw_cancel(lbw_reactor *r, struct lbw_op *op);
/* True while the op has been started and its final callback has not run. */
int lbw_op_pending(const struct lbw_op *op);

/* Small fd helpers used with the reactor. Return 0 or -errno. */
int lbw_set_nonblock(int fd);

#endif
