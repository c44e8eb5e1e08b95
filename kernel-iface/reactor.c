/* reactor.c — reactor core shared by both backends: backend selection and
 * its reason, op bookkeeping (every op gets exactly one final callback),
 * the timer heap, deferred completions (cancellations), and the loop. */
#include "reactor_impl.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t lbw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int lbw_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (fl & O_NONBLOCK)
        return 0;
    if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* ---- op lists ---------------------------------------------------------- */

void lbw__oplist_push(struct lbw_oplist *l, struct lbw_op *op)
{
    op->qnext = NULL;
    op->qprev = l->tail;
    if (l->tail)
        l->tail->qnext = op;
    else
        l->head = op;
    l->tail = op;
    op->owner = l;
}

void lbw__oplist_remove(struct lbw_op *op)
{
    struct lbw_oplist *l = op->owner;
    if (!l)
        return;
    if (op->qprev)
        op->qprev->qnext = op->qnext;
    else
        l->head = op->qnext;
    if (op->qnext)
        op->qnext->qprev = op->qprev;
    else
        l->tail = op->qprev;
    op->qnext = op->qprev = NULL;
    op->owner = NULL;
}

struct lbw_op *lbw__oplist_pop(struct lbw_oplist *l)
{
    struct lbw_op *op = l->head;
    if (op)
        lbw__oplist_remove(op);
    return op;
}

/* ---- backend choice ---------------------------------------------------- */

int lbw_backend_parse(const char *s, enum lbw_backend *out)
{
    if (!s || !*s || !strcmp(s, "auto"))
        *out = LBW_BACKEND_AUTO;
    else if (!strcmp(s, "uring") || !strcmp(s, "io_uring"))
        *out = LBW_BACKEND_URING;
    else if (!strcmp(s, "epoll"))
        *out = LBW_BACKEND_EPOLL;
    else
        return -EINVAL;
    return 0;
}

int lbw_reactor_opts_from_env(struct lbw_reactor_opts *opts, const char **bad)
{
    const char *v = getenv("LBW_REACTOR");
    if (!v)
        return 0;
    if (lbw_backend_parse(v, &opts->backend) < 0) {
        if (bad)
            *bad = v;
        return -EINVAL;
    }
    return 0;
}

int lbw_reactor_new(lbw_reactor **out, const struct lbw_reactor_opts *opts, char *errbuf,
                    size_t errlen)
{
    static const struct lbw_reactor_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    *out = NULL;
    lbw_reactor *r = calloc(1, sizeof(*r));
    if (!r) {
        if (errbuf)
            snprintf(errbuf, errlen, "reactor: out of memory");
        return -ENOMEM;
    }
    char uerr[192] = "";
    int rc = -EINVAL;
    if (opts->backend != LBW_BACKEND_EPOLL) {
        r->ops = &lbw__uring_ops;
        rc = r->ops->init(r, opts, uerr, sizeof(uerr));
        if (rc == 0) {
            r->backend = LBW_BACKEND_URING;
            snprintf(r->reason, sizeof(r->reason), "%s",
                     opts->backend == LBW_BACKEND_URING ? "forced (LBW_REACTOR/--reactor)"
                                                        : "default");
        } else if (opts->backend == LBW_BACKEND_URING) {
            if (errbuf)
                snprintf(errbuf, errlen,
                         "io_uring reactor was requested but %s; use --reactor=epoll "
                         "(or LBW_REACTOR=epoll)", uerr);
            free(r);
            return rc;
        }
    }
    if (opts->backend == LBW_BACKEND_EPOLL || rc != 0) {
        r->ops = &lbw__epoll_ops;
        char eerr[192] = "";
        int erc = r->ops->init(r, opts, eerr, sizeof(eerr));
        if (erc != 0) {
            if (errbuf)
                snprintf(errbuf, errlen, "no event reactor could be set up: %s%s%s", eerr,
                         *uerr ? "; before that, " : "", uerr);
            free(r);
            return erc;
        }
        r->backend = LBW_BACKEND_EPOLL;
        if (opts->backend == LBW_BACKEND_EPOLL)
            snprintf(r->reason, sizeof(r->reason), "forced (LBW_REACTOR/--reactor)");
        else
            snprintf(r->reason, sizeof(r->reason), "fallback: %s", uerr);
    }
    *out = r;
    return 0;
}

enum lbw_backend lbw_reactor_backend(const lbw_reactor *r) { return r->backend; }
const char *lbw_reactor_backend_name(const lbw_reactor *r) { return r->ops->name; }
const char *lbw_reactor_backend_reason(const lbw_reactor *r) { return r->reason; }
size_t lbw_reactor_pending(const lbw_reactor *r) { return r->npending; }
void lbw_reactor_stop(lbw_reactor *r) { r->stopping = 1; }
int lbw_op_pending(const struct lbw_op *op) { return op->state != LBW_ST_IDLE; }

/* ---- op lifecycle ------------------------------------------------------ */

static int op_begin(lbw_reactor *r, struct lbw_op *op, uint8_t kind, int fd, lbw_cb cb)
{
    if (!op || !cb)
        return -EINVAL;
    if (op->state != LBW_ST_IDLE)
        return -EBUSY;
    if (kind != LBW_OP_TIMER && fd < 0)
        return -EBADF;
    op->cb = cb;
    op->kind = kind;
    op->flags = 0;
    op->fd = fd;
    op->done = 0;
    op->result = 0;
    op->owner = NULL;
    op->qnext = op->qprev = NULL;
    op->state = LBW_ST_ACTIVE;
    op->prev = NULL;
    op->next = r->all;
    if (r->all)
        r->all->prev = op;
    r->all = op;
    r->npending++;
    return 0;
}

static void op_unlink(lbw_reactor *r, struct lbw_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        r->all = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->next = op->prev = NULL;
    op->state = LBW_ST_IDLE;
    r->npending--;
}

void lbw__finish(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    op_unlink(r, op);
    op->cb(r, op, res);
}

void lbw__defer(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    op->result = res;
    op->state = LBW_ST_DEFERRED;
    lbw__oplist_push(&r->deferred, op);
}

static int start_fd_op(lbw_reactor *r, struct lbw_op *op, uint8_t kind, int fd, lbw_cb cb)
{
    int rc = op_begin(r, op, kind, fd, cb);
    if (rc)
        return rc;
    rc = r->ops->start(r, op);
    if (rc) {
        op_unlink(r, op);
        return rc;
    }
    return 0;
}

int lbw_accept(lbw_reactor *r, struct lbw_op *op, int fd, lbw_cb cb)
{
    if (op && op->state != LBW_ST_IDLE)
        return -EBUSY;
    return start_fd_op(r, op, LBW_OP_ACCEPT, fd, cb);
}

int lbw_connect(lbw_reactor *r, struct lbw_op *op, int fd, const struct sockaddr *sa,
                socklen_t salen, lbw_cb cb)
{
    if (!op || !sa || salen == 0 || salen > sizeof(op->addr))
        return -EINVAL;
    if (op->state != LBW_ST_IDLE)
        return -EBUSY;
    memcpy(&op->addr, sa, salen);
    op->addrlen = salen;
    return start_fd_op(r, op, LBW_OP_CONNECT, fd, cb);
}

static int start_io(lbw_reactor *r, struct lbw_op *op, uint8_t kind, int fd, const void *buf,
                    size_t len, int64_t offset, lbw_cb cb)
{
    if (!op || (!buf && len))
        return -EINVAL;
    if (op->state != LBW_ST_IDLE)
        return -EBUSY;
    op->buf = (void *)buf;
    op->len = len;
    op->offset = offset;
    return start_fd_op(r, op, kind, fd, cb);
}

int lbw_recv(lbw_reactor *r, struct lbw_op *op, int fd, void *buf, size_t len, lbw_cb cb)
{
    return start_io(r, op, LBW_OP_RECV, fd, buf, len, -1, cb);
}

int lbw_send(lbw_reactor *r, struct lbw_op *op, int fd, const void *buf, size_t len, lbw_cb cb)
{
    return start_io(r, op, LBW_OP_SEND, fd, buf, len, -1, cb);
}

int lbw_read(lbw_reactor *r, struct lbw_op *op, int fd, void *buf, size_t len, int64_t offset,
             lbw_cb cb)
{
    return start_io(r, op, LBW_OP_READ, fd, buf, len, offset < 0 ? -1 : offset, cb);
}

int lbw_write(lbw_reactor *r, struct lbw_op *op, int fd, const void *buf, size_t len,
              int64_t offset, lbw_cb cb)
{
    return start_io(r, op, LBW_OP_WRITE, fd, buf, len, offset < 0 ? -1 : offset, cb);
}

int lbw_poll(lbw_reactor *r, struct lbw_op *op, int fd, uint32_t events, lbw_cb cb)
{
    if (!op || events == 0)
        return -EINVAL;
    if (op->state != LBW_ST_IDLE)
        return -EBUSY;
    op->events = events;
    return start_fd_op(r, op, LBW_OP_POLL, fd, cb);
}

/* ---- timers: binary min-heap ordered by (deadline, start order) -------- */

static int tm_less(const struct lbw_op *a, const struct lbw_op *b)
{
    if (a->deadline_ns != b->deadline_ns)
        return a->deadline_ns < b->deadline_ns;
    return a->done < b->done; /* `done` holds the timer's sequence number */
}

static void heap_set(lbw_reactor *r, size_t i, struct lbw_op *op)
{
    r->heap[i] = op;
    op->heap_idx = i;
}

static void heap_up(lbw_reactor *r, size_t i)
{
    struct lbw_op *op = r->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tm_less(op, r->heap[p]))
            break;
        heap_set(r, i, r->heap[p]);
        i = p;
    }
    heap_set(r, i, op);
}

static void heap_down(lbw_reactor *r, size_t i)
{
    struct lbw_op *op = r->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= r->heap_len)
            break;
        if (c + 1 < r->heap_len && tm_less(r->heap[c + 1], r->heap[c]))
            c++;
        if (!tm_less(r->heap[c], op))
            break;
        heap_set(r, i, r->heap[c]);
        i = c;
    }
    heap_set(r, i, op);
}

static int heap_push(lbw_reactor *r, struct lbw_op *op)
{
    int rc = lbw_grow(&r->heap, &r->heap_cap, r->heap_len + 1, sizeof(*r->heap));
    if (rc < 0)
        return rc;
    heap_set(r, r->heap_len++, op);
    heap_up(r, op->heap_idx);
    return 0;
}

static void heap_remove(lbw_reactor *r, struct lbw_op *op)
{
    size_t i = op->heap_idx;
    struct lbw_op *last = r->heap[--r->heap_len];
    if (i < r->heap_len) {
        heap_set(r, i, last);
        heap_down(r, i);
        heap_up(r, last->heap_idx);
    }
    op->heap_idx = SIZE_MAX;
}

int lbw_timer(lbw_reactor *r, struct lbw_op *op, uint64_t delay_ns, uint64_t interval_ns,
              lbw_cb cb)
{
    int rc = op_begin(r, op, LBW_OP_TIMER, -1, cb);
    if (rc)
        return rc;
    op->deadline_ns = lbw_now_ns() + delay_ns;
    op->interval_ns = interval_ns;
    op->done = r->timer_seq++;
    rc = heap_push(r, op);
    if (rc)
        op_unlink(r, op);
    return rc;
}

static int fire_timers(lbw_reactor *r)
{
    int n = 0;
    uint64_t now = lbw_now_ns();
    while (r->heap_len && r->heap[0]->deadline_ns <= now) {
        struct lbw_op *op = r->heap[0];
        heap_remove(r, op);
        n++;
        if (op->interval_ns) {
            uint64_t k = (now - op->deadline_ns) / op->interval_ns + 1;
            op->deadline_ns += k * op->interval_ns;
            op->done = r->timer_seq++;
            if (heap_push(r, op) < 0) {
                lbw__finish(r, op, -ENOMEM);
                continue;
            }
            op->cb(r, op, (int64_t)k);
        } else {
            lbw__finish(r, op, 1);
        }
    }
    return n;
}

/* ---- cancellation ------------------------------------------------------ */

int lbw_cancel(lbw_reactor *r, struct lbw_op *op)
{
    if (!op || op->state == LBW_ST_IDLE)
        return -ENOENT;
    if (op->state == LBW_ST_DEFERRED || (op->flags & LBW_F_CANCEL))
        return 0; /* its final callback is already on its way */
    op->flags |= LBW_F_CANCEL;
    if (op->kind == LBW_OP_TIMER) {
        heap_remove(r, op);
        lbw__defer(r, op, -ECANCELED);
        return 0;
    }
    r->ops->cancel(r, op);
    return 0;
}

/* ---- the loop ---------------------------------------------------------- */

static int drain_deferred(lbw_reactor *r)
{
    /* Deliver only what was queued before this round; completions queued by
     * these callbacks wait for the next round so I/O is never starved. */
    struct lbw_oplist batch = {0};
    struct lbw_op *op;
    while ((op = lbw__oplist_pop(&r->deferred)))
        lbw__oplist_push(&batch, op);
    int n = 0;
    while ((op = lbw__oplist_pop(&batch))) {
        lbw__finish(r, op, op->result);
        n++;
    }
    return n;
}

int lbw_reactor_run_once(lbw_reactor *r, uint64_t timeout_ns)
{
    uint64_t t = timeout_ns;
    if (r->deferred.head)
        t = 0;
    if (r->heap_len) {
        uint64_t now = lbw_now_ns();
        uint64_t d = r->heap[0]->deadline_ns;
        uint64_t until = d > now ? d - now : 0;
        if (until < t)
            t = until;
    }
    int n = r->ops->wait(r, t);
    if (n < 0)
        return n;
    n += fire_timers(r);
    n += drain_deferred(r);
    return n;
}

int lbw_reactor_run(lbw_reactor *r)
{
    /* A stop requested before the loop started (a start-up error found
     * while wiring) is honoured, not forgotten: run returns at once. The
     * stop is consumed either way, so the next run serves normally. */
    while (!r->stopping && r->npending > 0) {
        int rc = lbw_reactor_run_once(r, UINT64_MAX);
        if (rc < 0)
            return rc;
    }
    r->stopping = 0;
    return 0;
}

void lbw_reactor_free(lbw_reactor *r)
{
    if (!r)
        return;
    for (struct lbw_op *op = r->all; op; op = op->next)
        lbw_cancel(r, op);
    while (r->npending > 0) {
        /* Callbacks may start new work during teardown; cancel it too. */
        if (lbw_reactor_run_once(r, 100000000ull) < 0)
            break;
        for (struct lbw_op *op = r->all; op; op = op->next)
            lbw_cancel(r, op);
    }
    r->ops->fini(r);
    free(r->heap);
    free(r);
}
