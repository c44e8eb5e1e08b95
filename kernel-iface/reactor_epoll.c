/* reactor_epoll.c — the epoll backend of the reactor.
 *
 * Readiness model: an op is first attempted optimistically (next round);
 * if the syscall says EAGAIN it waits on its fd, whose registration is
 * EPOLLONESHOT and re-armed while ops wait on it. A closed and reused fd
 * number never inherits a stale registration: with no op waiting, the
 * registration is always renewed (MOD finds no entry for a new file and we
 * ADD).
 * Regular files cannot be registered; their ops are simply executed. */
#include "reactor_impl.h"

#include "buf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct fdent {
    struct lbw_oplist waiting; /* ops waiting for readiness of this fd */
    uint32_t armed;            /* events the oneshot registration covers */
};

struct ep {
    int epfd;
    struct fdent *fds;
    size_t nfds;
    struct lbw_oplist ready;   /* ops to attempt in the next round */
    struct epoll_event evs[256];
};

static struct ep *EP(lbw_reactor *r) { return r->impl; }

static int ep_init(lbw_reactor *r, const struct lbw_reactor_opts *o, char *err, size_t errlen)
{
    (void)o;
    struct ep *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        free(e);
        return rc;
    }
    r->impl = e;
    return 0;
}

static void ep_fini(lbw_reactor *r)
{
    struct ep *e = EP(r);
    close(e->epfd);
    free(e->fds);
    free(e);
    r->impl = NULL;
}

static struct fdent *fdent_get(struct ep *e, int fd)
{
    if ((size_t)fd >= e->nfds) {
        size_t old = e->nfds;
        if (lbw_grow(&e->fds, &e->nfds, (size_t)fd + 1, sizeof(*e->fds)) < 0)
            return NULL;
        /* Lists point back at their fdent: fix owners after moving. */
        struct fdent *f = e->fds;
        for (size_t i = 0; i < old; i++)
            for (struct lbw_op *op = f[i].waiting.head; op; op = op->qnext)
                op->owner = &f[i].waiting;
        memset(f + old, 0, (e->nfds - old) * sizeof(*f));
    }
    return &e->fds[fd];
}

static uint32_t wait_mask(const struct lbw_op *op)
{
    switch (op->kind) {
    case LBW_OP_ACCEPT:
    case LBW_OP_RECV:
    case LBW_OP_READ:
        return EPOLLIN;
    case LBW_OP_CONNECT:
    case LBW_OP_SEND:
    case LBW_OP_WRITE:
        return EPOLLOUT;
    case LBW_OP_POLL:
        return op->events & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP);
    }
    return 0;
}

static int is_again(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

/* Attempts op. Returns 1 if it finished (callback ran), 0 if it must wait. */
static int attempt(lbw_reactor *r, struct lbw_op *op, uint32_t revents)
{
    ssize_t n;
    for (;;) {
        switch (op->kind) {
        case LBW_OP_ACCEPT:
            n = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (n >= 0)
                goto fin_n;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        case LBW_OP_CONNECT:
            if (!(op->flags & LBW_F_STARTED)) {
                op->flags |= LBW_F_STARTED;
                if (connect(op->fd, (struct sockaddr *)&op->addr, op->addrlen) == 0) {
                    n = 0;
                    goto fin_n;
                }
                if (errno == EINPROGRESS || errno == EINTR)
                    return 0;
                break;
            } else {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                if (!(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                    return 0;
                if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                    break;
                lbw__finish(r, op, soerr ? -soerr : 0);
                return 1;
            }
        case LBW_OP_RECV:
            n = recv(op->fd, op->buf, op->len, MSG_DONTWAIT);
            if (n >= 0)
                goto fin_n;
            if (errno == EINTR)
                continue;
            break;
        case LBW_OP_READ:
            n = op->offset >= 0 ? pread(op->fd, op->buf, op->len, op->offset)
                                : read(op->fd, op->buf, op->len);
            if (n >= 0)
                goto fin_n;
            if (errno == EINTR)
                continue;
            break;
        case LBW_OP_SEND:
        case LBW_OP_WRITE:
            while (op->done < op->len) {
                char *p = (char *)op->buf + op->done;
                size_t left = op->len - op->done;
                if (op->kind == LBW_OP_SEND)
                    n = send(op->fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
                else if (op->offset >= 0)
                    n = pwrite(op->fd, p, left, op->offset + (int64_t)op->done);
                else
                    n = write(op->fd, p, left);
                if (n > 0) {
                    op->done += (size_t)n;
                    continue;
                }
                if (n == 0) { /* write returning 0 for a non-zero count */
                    errno = EIO;
                    goto fail;
                }
                if (errno == EINTR)
                    continue;
                if (is_again(errno))
                    return 0;
                goto fail;
            }
            lbw__finish(r, op, (int64_t)op->len);
            return 1;
        case LBW_OP_POLL: {
            uint32_t got = revents & (op->events | EPOLLERR | EPOLLHUP);
            if (!got)
                return 0;
            lbw__finish(r, op, got);
            return 1;
        }
        }
        if (is_again(errno))
            return 0;
        goto fail;
    }
fin_n:
    lbw__finish(r, op, n);
    return 1;
fail:
    lbw__finish(r, op, -errno);
    return 1;
}

/* Ensures the fd's oneshot registration covers `want`. `armed` is only
 * trusted while ops wait on the fd: with none waiting, the registration
 * may belong to a descriptor that was closed since (its ops cancelled, the
 * kernel dropping it with the file) and whose number is now reused. */
static int arm(struct ep *e, int fd, struct fdent *f, uint32_t want)
{
    if (!f->waiting.head)
        f->armed = 0;
    if ((f->armed & want) == want)
        return 0;
    struct epoll_event ev = {.events = f->armed | want | EPOLLONESHOT, .data.fd = fd};
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
        if (errno != ENOENT)
            return -errno;
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -errno;
    }
    f->armed = ev.events & ~(uint32_t)EPOLLONESHOT;
    return 0;
}

/* Puts op to wait on its fd. Returns 1 if it finished instead. */
static int park(lbw_reactor *r, struct lbw_op *op)
{
    struct ep *e = EP(r);
    struct fdent *f = fdent_get(e, op->fd);
    if (!f) {
        lbw__finish(r, op, -ENOMEM);
        return 1;
    }
    int rc = arm(e, op->fd, f, wait_mask(op));
    if (rc == -EPERM) {
        /* Not pollable (a regular file): it is always ready. */
        if (op->kind == LBW_OP_POLL) {
            lbw__finish(r, op, op->events & (POLLIN | POLLOUT));
            return 1;
        }
        lbw__oplist_push(&e->ready, op);
        return 0;
    }
    if (rc < 0) {
        lbw__finish(r, op, rc);
        return 1;
    }
    lbw__oplist_push(&f->waiting, op);
    return 0;
}

static int ep_start(lbw_reactor *r, struct lbw_op *op)
{
    struct ep *e = EP(r);
    if (op->kind == LBW_OP_POLL) {
        /* Nothing to attempt: register right away (errors become the
         * op's result in the next round). */
        struct fdent *f = fdent_get(e, op->fd);
        if (!f)
            return -ENOMEM;
        int rc = arm(e, op->fd, f, wait_mask(op));
        if (rc == 0) {
            lbw__oplist_push(&f->waiting, op);
            return 0;
        }
        if (rc == -EBADF)
            return rc;
    }
    lbw__oplist_push(&e->ready, op);
    return 0;
}

static void ep_cancel(lbw_reactor *r, struct lbw_op *op)
{
    /* A connect already issued cannot be withdrawn from the socket; the
     * caller closes the socket after the -ECANCELED callback. */
    lbw__oplist_remove(op);
    lbw__defer(r, op, -ECANCELED);
}

static int run_ready(lbw_reactor *r)
{
    struct ep *e = EP(r);
    struct lbw_oplist batch = {0};
    struct lbw_op *op;
    while ((op = lbw__oplist_pop(&e->ready)))
        lbw__oplist_push(&batch, op);
    int n = 0;
    while ((op = lbw__oplist_pop(&batch))) {
        if (op->kind == LBW_OP_POLL) {
            struct pollfd p = {.fd = op->fd, .events = (short)op->events};
            int pr = poll(&p, 1, 0);
            if (pr < 0 || (p.revents & POLLNVAL)) {
                lbw__finish(r, op, pr < 0 ? -errno : -EBADF);
                n++;
            } else if (pr > 0) {
                lbw__finish(r, op, (uint32_t)p.revents);
                n++;
            } else if (park(r, op)) {
                n++;
            }
            continue;
        }
        if (attempt(r, op, EPOLLIN | EPOLLOUT))
            n++;
        else if (park(r, op))
            n++;
    }
    return n;
}

static int ep_wait(lbw_reactor *r, uint64_t timeout_ns)
{
    struct ep *e = EP(r);
    int n = 0;
    if (e->ready.head) {
        n += run_ready(r);
        timeout_ns = 0;
    }
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tsp = &ts;
    }
    int got = epoll_pwait2(e->epfd, e->evs, (int)(sizeof(e->evs) / sizeof(e->evs[0])), tsp, NULL);
    if (got < 0 && errno == ENOSYS) {
        int ms = -1;
        if (tsp)
            ms = (int)((timeout_ns + 999999ull) / 1000000ull);
        got = epoll_wait(e->epfd, e->evs, (int)(sizeof(e->evs) / sizeof(e->evs[0])), ms);
    }
    if (got < 0)
        return errno == EINTR ? n : -errno;
    for (int i = 0; i < got; i++) {
        int fd = e->evs[i].data.fd;
        uint32_t rev = e->evs[i].events;
        if ((size_t)fd >= e->nfds)
            continue;
        struct fdent *f = &e->fds[fd];
        f->armed = 0; /* oneshot fired */
        struct lbw_oplist batch = {0};
        struct lbw_op *op;
        while ((op = lbw__oplist_pop(&f->waiting)))
            lbw__oplist_push(&batch, op);
        uint32_t ev_any = rev | ((rev & (EPOLLERR | EPOLLHUP)) ? (EPOLLIN | EPOLLOUT) : 0);
        while ((op = lbw__oplist_pop(&batch))) {
            if ((wait_mask(op) & ev_any) || op->kind == LBW_OP_POLL) {
                if (attempt(r, op, rev)) {
                    n++;
                    continue;
                }
            }
            /* still waiting (f may have moved if a callback grew the table) */
            if (park(r, op))
                n++;
        }
    }
    return n;
}

const struct lbw_backend_ops lbw__epoll_ops = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .start = ep_start,
    .cancel = ep_cancel,
    .wait = ep_wait,
};
