/* reactor_uring.c — the io_uring backend of the reactor (liburing 2.3 API).
 *
 * Every active fd op owns a slot; its SQEs carry user_data = (generation <<
 * 32 | slot), so a cancellation aimed at an op can never hit a later op that
 * reuses the same struct. Partial sends/writes are resubmitted until done;
 * an -EAGAIN from an O_NONBLOCK fd is turned into a poll and a retry. */
#include "reactor_impl.h"

#include "buf.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UD_CANCEL ((uint64_t)-2) /* completions of our cancel requests */
#define UD_LIBURING ((uint64_t)-1) /* liburing's internal timeout */

struct slot {
    struct lbw_op *op;
    uint32_t gen;
    uint32_t next_free;
};

struct ur {
    struct io_uring ring;
    struct slot *slots; /* index 0 unused so user_data is never 0 */
    uint32_t nslots, free_head;
    size_t cap; /* room in slots, in entries */
    struct io_uring_cqe *batch[256];
};

static struct ur *UR(lbw_reactor *r) { return r->impl; }

static void describe_setup_error(int rc, char *err, size_t errlen)
{
    char dis[32] = "";
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
        int v;
        if (fscanf(f, "%d", &v) == 1 && v != 0)
            snprintf(dis, sizeof(dis), "%d", v);
        fclose(f);
    }
    if (rc == -ENOSYS)
        snprintf(err, errlen, "io_uring_setup: %s (kernel without io_uring)", strerror(-rc));
    else if (rc == -EPERM && *dis)
        snprintf(err, errlen, "io_uring_setup: %s (kernel.io_uring_disabled=%s)",
                 strerror(-rc), dis);
    else if (rc == -EPERM)
        snprintf(err, errlen,
                 "io_uring_setup: %s (blocked by a seccomp profile, e.g. a container's)",
                 strerror(-rc));
    else if (rc == -ENOMEM)
        snprintf(err, errlen, "io_uring_setup: %s (RLIMIT_MEMLOCK too low?)", strerror(-rc));
    else
        snprintf(err, errlen, "io_uring_setup: %s", strerror(-rc));
}

static int ur_init(lbw_reactor *r, const struct lbw_reactor_opts *o, char *err, size_t errlen)
{
    if (o->inject_uring_setup_error) {
        describe_setup_error(o->inject_uring_setup_error < 0 ? o->inject_uring_setup_error
                                                             : -o->inject_uring_setup_error,
                             err, errlen);
        return o->inject_uring_setup_error < 0 ? o->inject_uring_setup_error
                                               : -o->inject_uring_setup_error;
    }
    struct ur *u = calloc(1, sizeof(*u));
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    unsigned depth = o->queue_depth ? o->queue_depth : 256;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(depth, &u->ring, &p);
    if (rc == -EINVAL) { /* older kernel: no such setup flags */
        memset(&p, 0, sizeof(p));
        rc = io_uring_queue_init_params(depth, &u->ring, &p);
    }
    if (rc < 0) {
        describe_setup_error(rc, err, errlen);
        free(u);
        return rc;
    }
    static const struct {
        int op;
        const char *name;
    } need[] = {
        {IORING_OP_ACCEPT, "ACCEPT"},   {IORING_OP_CONNECT, "CONNECT"},
        {IORING_OP_RECV, "RECV"},       {IORING_OP_SEND, "SEND"},
        {IORING_OP_READ, "READ"},       {IORING_OP_WRITE, "WRITE"},
        {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    };
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    if (!probe) {
        snprintf(err, errlen, "io_uring: cannot probe supported operations (kernel too old)");
        io_uring_queue_exit(&u->ring);
        free(u);
        return -EOPNOTSUPP;
    }
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (!io_uring_opcode_supported(probe, need[i].op)) {
            snprintf(err, errlen, "io_uring: kernel lacks IORING_OP_%s", need[i].name);
            io_uring_free_probe(probe);
            io_uring_queue_exit(&u->ring);
            free(u);
            return -EOPNOTSUPP;
        }
    }
    io_uring_free_probe(probe);
    u->nslots = 1;
    r->impl = u;
    return 0;
}

static void ur_fini(lbw_reactor *r)
{
    struct ur *u = UR(r);
    io_uring_queue_exit(&u->ring);
    free(u->slots);
    free(u);
    r->impl = NULL;
}

static int slot_alloc(struct ur *u, struct lbw_op *op)
{
    uint32_t i = u->free_head;
    if (i) {
        u->free_head = u->slots[i].next_free;
    } else {
        if (u->nslots >= u->cap) {
            if (u->cap >= (1u << 30))
                return -ENOMEM;
            int first = !u->slots;
            if (lbw_grow(&u->slots, &u->cap, (size_t)u->nslots + 1, sizeof(*u->slots)) < 0)
                return -ENOMEM;
            if (first)
                memset(u->slots, 0, sizeof(*u->slots));
        }
        i = u->nslots++;
        u->slots[i].gen = 0;
    }
    u->slots[i].op = op;
    u->slots[i].gen++;
    u->slots[i].next_free = 0;
    op->udata = ((uint64_t)u->slots[i].gen << 32) | i;
    return 0;
}

static void slot_release(struct ur *u, struct lbw_op *op)
{
    uint32_t i = (uint32_t)op->udata;
    u->slots[i].op = NULL;
    u->slots[i].next_free = u->free_head;
    u->free_head = i;
    op->udata = 0;
}

static struct io_uring_sqe *get_sqe(struct ur *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

/* Queues the SQE for op's current step. */
static int prep(struct ur *u, struct lbw_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe)
        return -EBUSY;
    if (op->flags & LBW_F_RETRYPOLL) {
        unsigned ev = (op->kind == LBW_OP_ACCEPT || op->kind == LBW_OP_RECV ||
                       op->kind == LBW_OP_READ)
                          ? POLLIN
                          : POLLOUT;
        io_uring_prep_poll_add(sqe, op->fd, ev);
    } else {
        char *p = (char *)op->buf + op->done;
        size_t left = op->len - op->done;
        uint64_t off = op->offset < 0 ? (uint64_t)-1 : (uint64_t)op->offset + op->done;
        switch (op->kind) {
        case LBW_OP_ACCEPT:
            io_uring_prep_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        case LBW_OP_CONNECT:
            io_uring_prep_connect(sqe, op->fd, (struct sockaddr *)&op->addr, op->addrlen);
            break;
        case LBW_OP_RECV:
            io_uring_prep_recv(sqe, op->fd, p, left, 0);
            break;
        case LBW_OP_SEND:
            io_uring_prep_send(sqe, op->fd, p, left, MSG_NOSIGNAL);
            break;
        case LBW_OP_READ:
            io_uring_prep_read(sqe, op->fd, p, (unsigned)(left > 0x7ffff000u ? 0x7ffff000u : left),
                               off);
            break;
        case LBW_OP_WRITE:
            io_uring_prep_write(sqe, op->fd, p,
                                (unsigned)(left > 0x7ffff000u ? 0x7ffff000u : left), off);
            break;
        case LBW_OP_POLL:
            io_uring_prep_poll_add(sqe, op->fd, op->events);
            break;
        default:
            return -EINVAL;
        }
    }
    io_uring_sqe_set_data64(sqe, op->udata);
    return 0;
}

static int ur_start(lbw_reactor *r, struct lbw_op *op)
{
    struct ur *u = UR(r);
    int rc = slot_alloc(u, op);
    if (rc)
        return rc;
    rc = prep(u, op);
    if (rc)
        slot_release(u, op);
    return rc;
}

static void ur_cancel(lbw_reactor *r, struct lbw_op *op)
{
    struct ur *u = UR(r);
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe)
        return; /* the op still completes on its own; the flag turns a
                   partial send or a retry into -ECANCELED */
    io_uring_prep_cancel64(sqe, op->udata, 0);
    io_uring_sqe_set_data64(sqe, UD_CANCEL);
    /* Submit now, so the request cannot outlive this op's generation. */
    io_uring_submit(&u->ring);
}

static void finish(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    slot_release(UR(r), op);
    lbw__finish(r, op, res);
}

static void resubmit(lbw_reactor *r, struct lbw_op *op)
{
    int rc = prep(UR(r), op);
    if (rc)
        finish(r, op, rc);
}

static void complete(lbw_reactor *r, struct lbw_op *op, int res)
{
    int cancel = (op->flags & LBW_F_CANCEL) != 0;
    if (op->flags & LBW_F_RETRYPOLL) {
        op->flags &= ~LBW_F_RETRYPOLL;
        if (cancel) {
            finish(r, op, -ECANCELED);
        } else if (res < 0) {
            finish(r, op, res);
        } else if (op->kind == LBW_OP_CONNECT) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            finish(r, op, soerr ? -soerr : 0);
        } else {
            resubmit(r, op);
        }
        return;
    }
    if (res == -EAGAIN || (op->kind == LBW_OP_CONNECT && (res == -EINPROGRESS ||
                                                           res == -EALREADY))) {
        if (op->kind != LBW_OP_POLL) {
            if (cancel) {
                finish(r, op, -ECANCELED);
            } else {
                op->flags |= LBW_F_RETRYPOLL;
                resubmit(r, op);
            }
            return;
        }
    }
    if (res == -EINTR && !cancel && op->kind != LBW_OP_POLL) {
        resubmit(r, op);
        return;
    }
    if ((op->kind == LBW_OP_SEND || op->kind == LBW_OP_WRITE) && res >= 0) {
        if (res == 0 && op->len > op->done) {
            finish(r, op, -EIO);
            return;
        }
        op->done += (size_t)res;
        if (op->done >= op->len)
            finish(r, op, (int64_t)op->len);
        else if (cancel)
            finish(r, op, -ECANCELED);
        else
            resubmit(r, op);
        return;
    }
    finish(r, op, res);
}

static int ur_wait(lbw_reactor *r, uint64_t timeout_ns)
{
    struct ur *u = UR(r);
    int rc;
    if (timeout_ns == 0) {
        rc = io_uring_submit(&u->ring);
    } else {
        struct __kernel_timespec ts, *tsp = NULL;
        if (timeout_ns != UINT64_MAX) {
            ts.tv_sec = (long long)(timeout_ns / 1000000000ull);
            ts.tv_nsec = (long long)(timeout_ns % 1000000000ull);
            tsp = &ts;
        }
        struct io_uring_cqe *cqe = NULL;
        rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tsp, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
        return rc;
    int n = 0;
    unsigned got;
    while ((got = io_uring_peek_batch_cqe(&u->ring, u->batch,
                                          sizeof(u->batch) / sizeof(u->batch[0]))) > 0) {
        /* Copy out before advancing: callbacks may submit and wait. */
        struct {
            uint64_t ud;
            int res;
        } c[sizeof(u->batch) / sizeof(u->batch[0])];
        for (unsigned i = 0; i < got; i++) {
            c[i].ud = u->batch[i]->user_data;
            c[i].res = u->batch[i]->res;
        }
        io_uring_cq_advance(&u->ring, got);
        for (unsigned i = 0; i < got; i++) {
            if (c[i].ud == UD_CANCEL || c[i].ud == UD_LIBURING)
                continue;
            uint32_t si = (uint32_t)c[i].ud;
            if (si == 0 || si >= u->nslots)
                continue;
            struct slot *s = &u->slots[si];
            if (!s->op || s->gen != (uint32_t)(c[i].ud >> 32))
                continue;
            complete(r, s->op, c[i].res);
            n++;
        }
        if (got < sizeof(u->batch) / sizeof(u->batch[0]))
            break;
    }
    return n;
}

const struct lbw_backend_ops lbw__uring_ops = {
    .name = "io_uring",
    .init = ur_init,
    .fini = ur_fini,
    .start = ur_start,
    .cancel = ur_cancel,
    .wait = ur_wait,
};
