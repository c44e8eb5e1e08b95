/* test_reactor.c — the reactor's contract, run once per backend
 * (suites "reactor[io_uring]" and "reactor[epoll]"), plus the fallback. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "run.h"
#include "reactor.h"
#include "sock.h"
#include "suites.h"

static lbw_reactor *mk(void)
{
    struct lbw_reactor_opts o = {.backend = lbw_test_backend()};
    lbw_reactor *r = NULL;
    char err[256];
    int rc = lbw_reactor_new(&r, &o, err, sizeof(err));
    if (rc)
        fprintf(stderr, "reactor_new: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_FATAL(lbw_reactor_backend(r) == lbw_test_backend());
    return r;
}

/* Runs the loop with a safety deadline so a broken backend fails the test
 * instead of hanging the suite. */
static void run_bounded(lbw_reactor *r, double seconds)
{
    uint64_t end = lbw_now_ns() + (uint64_t)(seconds * 1e9);
    while (lbw_reactor_pending(r) > 0 && lbw_now_ns() < end) {
        int rc = lbw_reactor_run_once(r, 50000000ull);
        CU_ASSERT_FATAL(rc >= 0);
    }
    CU_ASSERT(lbw_reactor_pending(r) == 0);
}

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void fill(uint8_t *b, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(xs(&s) >> 32);
}

/* ---- TCP echo with many clients ---------------------------------------- */

#define ECHO_MSG 4096

struct echo_srv_conn {
    struct lbw_op rop, sop;
    int fd;
    uint8_t buf[ECHO_MSG];
};

struct echo_cli {
    struct lbw_op cop, sop, rop;
    int fd, id;
    size_t got;
    int ok, done;
    uint8_t out[ECHO_MSG], in[ECHO_MSG];
};

struct echo_ctx {
    int lfd;
    struct lbw_op aop;
    int accepted, nclients, finished, bad;
    struct sockaddr_storage ss;
    socklen_t sslen;
};

static void srv_recv_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void srv_send_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct echo_srv_conn *c = op->user;
    if (res < 0 || lbw_recv(r, &c->rop, c->fd, c->buf, sizeof(c->buf), srv_recv_cb) < 0) {
        close(c->fd);
        free(c);
    }
}

static void srv_recv_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct echo_srv_conn *c = op->user;
    if (res <= 0 || lbw_send(r, &c->sop, c->fd, c->buf, (size_t)res, srv_send_cb) < 0) {
        close(c->fd);
        free(c);
    }
}

static void accept_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct echo_ctx *e = op->user;
    if (res < 0) {
        if (res != -ECANCELED)
            e->bad++;
        return;
    }
    struct echo_srv_conn *c = calloc(1, sizeof(*c));
    CU_ASSERT_FATAL(c != NULL);
    c->fd = (int)res;
    c->rop.user = c->sop.user = c;
    CU_ASSERT(lbw_recv(r, &c->rop, c->fd, c->buf, sizeof(c->buf), srv_recv_cb) == 0);
    e->accepted++;
    if (e->accepted < e->nclients) {
        CU_ASSERT(lbw_accept(r, op, e->lfd, accept_cb) == 0);
    }
}

static struct echo_ctx *g_echo;

static void cli_finish(struct echo_cli *c)
{
    c->done = 1;
    g_echo->finished++;
    close(c->fd);
    c->fd = -1;
}

static void cli_recv_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct echo_cli *c = op->user;
    if (res <= 0) {
        cli_finish(c);
        return;
    }
    c->got += (size_t)res;
    if (c->got < ECHO_MSG) {
        CU_ASSERT(lbw_recv(r, op, c->fd, c->in + c->got, ECHO_MSG - c->got, cli_recv_cb) == 0);
        return;
    }
    c->ok = memcmp(c->in, c->out, ECHO_MSG) == 0;
    cli_finish(c);
}

static void cli_send_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    CU_ASSERT(res == ECHO_MSG);
}

static void cli_conn_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct echo_cli *c = op->user;
    CU_ASSERT(res == 0);
    if (res != 0) {
        cli_finish(c);
        return;
    }
    CU_ASSERT(lbw_send(r, &c->sop, c->fd, c->out, ECHO_MSG, cli_send_cb) == 0);
    CU_ASSERT(lbw_recv(r, &c->rop, c->fd, c->in, ECHO_MSG, cli_recv_cb) == 0);
}

static void test_echo_1000(void)
{
    int n = 1000;
    lbw_reactor *r = mk();
    struct echo_ctx e = {.nclients = n};
    g_echo = &e;
    e.lfd = lbw_tcp_listen("127.0.0.1", 0, 4096);
    CU_ASSERT_FATAL(e.lfd >= 0);
    CU_ASSERT_FATAL(lbw_sockaddr_from("127.0.0.1", (uint16_t)lbw_sock_port(e.lfd), &e.ss,
                                      &e.sslen) == 0);
    e.aop.user = &e;
    CU_ASSERT_FATAL(lbw_accept(r, &e.aop, e.lfd, accept_cb) == 0);
    struct echo_cli *cl = calloc((size_t)n, sizeof(*cl));
    CU_ASSERT_FATAL(cl != NULL);
    for (int i = 0; i < n; i++) {
        struct echo_cli *c = &cl[i];
        c->id = i;
        fill(c->out, ECHO_MSG, (uint64_t)i + 1);
        c->fd = lbw_tcp_socket(&e.ss);
        CU_ASSERT_FATAL(c->fd >= 0);
        c->cop.user = c->sop.user = c->rop.user = c;
        CU_ASSERT_FATAL(lbw_connect(r, &c->cop, c->fd, (struct sockaddr *)&e.ss, e.sslen,
                                    cli_conn_cb) == 0);
    }
    run_bounded(r, 60);
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += cl[i].ok;
    CU_ASSERT_EQUAL(ok, n);
    CU_ASSERT_EQUAL(e.accepted, n);
    CU_ASSERT_EQUAL(e.finished, n);
    CU_ASSERT_EQUAL(e.bad, 0);
    close(e.lfd);
    free(cl);
    lbw_reactor_free(r);
}

/* ---- 256 MiB through a pipe -------------------------------------------- */

#define PIPE_TOTAL (256ull << 20)
#define PIPE_CHUNK (256u << 10)

struct pipe_ctx {
    int rfd, wfd;
    struct lbw_op rop, wop;
    uint8_t *src, *dst;
    uint64_t written, readn;
    uint64_t sum_w, sum_r;
    int err;
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void pipe_w_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pipe_ctx *p = op->user;
    if (res != PIPE_CHUNK) {
        p->err++;
        close(p->wfd);
        return;
    }
    p->written += (uint64_t)res;
    if (p->written >= PIPE_TOTAL) {
        close(p->wfd);
        return;
    }
    /* Vary the data per chunk so a repeated or dropped chunk changes the sum. */
    p->src[p->written / PIPE_CHUNK % PIPE_CHUNK] ^= (uint8_t)(p->written >> 18);
    p->sum_w = fnv(p->sum_w, p->src, PIPE_CHUNK);
    CU_ASSERT(lbw_write(r, op, p->wfd, p->src, PIPE_CHUNK, -1, pipe_w_cb) == 0);
}

static void pipe_r_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pipe_ctx *p = op->user;
    if (res < 0) {
        p->err++;
        return;
    }
    if (res == 0)
        return; /* EOF */
    p->sum_r = fnv(p->sum_r, p->dst, (size_t)res);
    p->readn += (uint64_t)res;
    CU_ASSERT(lbw_read(r, op, p->rfd, p->dst, PIPE_CHUNK, -1, pipe_r_cb) == 0);
}

static void test_pipe_256m(void)
{
    lbw_reactor *r = mk();
    int fds[2];
    CU_ASSERT_FATAL(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    struct pipe_ctx p = {.rfd = fds[0], .wfd = fds[1]};
    p.src = malloc(PIPE_CHUNK);
    p.dst = malloc(PIPE_CHUNK);
    fill(p.src, PIPE_CHUNK, 42);
    p.sum_w = p.sum_r = 0xcbf29ce484222325ull;
    p.sum_w = fnv(p.sum_w, p.src, PIPE_CHUNK);
    p.rop.user = p.wop.user = &p;
    CU_ASSERT_FATAL(lbw_write(r, &p.wop, p.wfd, p.src, PIPE_CHUNK, -1, pipe_w_cb) == 0);
    CU_ASSERT_FATAL(lbw_read(r, &p.rop, p.rfd, p.dst, PIPE_CHUNK, -1, pipe_r_cb) == 0);
    run_bounded(r, 120);
    CU_ASSERT_EQUAL(p.err, 0);
    CU_ASSERT_EQUAL(p.written, PIPE_TOTAL);
    CU_ASSERT_EQUAL(p.readn, PIPE_TOTAL);
    CU_ASSERT_EQUAL(p.sum_r, p.sum_w);
    close(p.rfd);
    free(p.src);
    free(p.dst);
    lbw_reactor_free(r);
}

/* ---- files at offsets --------------------------------------------------- */

struct file_ctx {
    int64_t res[2];
    int n;
};

static void file_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct file_ctx *f = op->user;
    f->res[f->n++] = res;
}

static void test_file_offsets(void)
{
    lbw_reactor *r = mk();
    char path[] = "/tmp/lbw-reactor-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    struct file_ctx f = {0};
    struct lbw_op w1 = {.user = &f}, w2 = {.user = &f};
    CU_ASSERT(lbw_write(r, &w1, fd, "world", 5, 6, file_cb) == 0);
    CU_ASSERT(lbw_write(r, &w2, fd, "hello ", 6, 0, file_cb) == 0);
    run_bounded(r, 10);
    CU_ASSERT(f.n == 2 && f.res[0] + f.res[1] == 11 && (f.res[0] == 5 || f.res[0] == 6));
    char buf[16] = {0};
    struct file_ctx g = {0};
    struct lbw_op rd = {.user = &g};
    CU_ASSERT(lbw_read(r, &rd, fd, buf, 5, 6, file_cb) == 0);
    run_bounded(r, 10);
    CU_ASSERT(g.n == 1 && g.res[0] == 5);
    CU_ASSERT_STRING_EQUAL(buf, "world");
    CU_ASSERT(pread(fd, buf, 11, 0) == 11);
    buf[11] = 0;
    CU_ASSERT_STRING_EQUAL(buf, "hello world");
    close(fd);
    lbw_reactor_free(r);
}

/* ---- timers ------------------------------------------------------------- */

struct tm_ctx {
    int order[8];
    int n;
    int64_t cancelled_res;
    int cancelled_calls;
    int ticks, periodic_final;
    int64_t periodic_res;
    struct lbw_op *periodic;
};

static void tm_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct tm_ctx *t = *(struct tm_ctx **)op->user;
    CU_ASSERT(res == 1);
    t->order[t->n++] = (int)(intptr_t)((void **)op->user)[1];
}

static void tm_cancel_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct tm_ctx *t = op->user;
    t->cancelled_res = res;
    t->cancelled_calls++;
}

static void tm_periodic_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct tm_ctx *t = op->user;
    if (res > 0) {
        t->ticks += (int)res;
        if (t->ticks >= 5) {
            CU_ASSERT(lbw_cancel(r, op) == 0);
        }
        return;
    }
    t->periodic_final++;
    t->periodic_res = res;
}

static void test_timers(void)
{
    lbw_reactor *r = mk();
    struct tm_ctx t = {0};
    static const int delays_ms[5] = {50, 10, 30, 20, 40};
    struct lbw_op ops[5];
    void *ud[5][2];
    memset(ops, 0, sizeof(ops));
    for (int i = 0; i < 5; i++) {
        ud[i][0] = &t;
        ud[i][1] = (void *)(intptr_t)delays_ms[i];
        ops[i].user = ud[i];
        CU_ASSERT(lbw_timer(r, &ops[i], (uint64_t)delays_ms[i] * 1000000ull, 0, tm_cb) == 0);
    }
    struct lbw_op c = {.user = &t};
    CU_ASSERT(lbw_timer(r, &c, 25000000ull, 0, tm_cancel_cb) == 0);
    CU_ASSERT(lbw_cancel(r, &c) == 0);
    CU_ASSERT(lbw_cancel(r, &c) == 0); /* twice: still one callback */
    struct lbw_op p = {.user = &t};
    CU_ASSERT(lbw_timer(r, &p, 2000000ull, 2000000ull, tm_periodic_cb) == 0);
    /* Same deadline: fire in the order they were started. */
    struct lbw_op same[3];
    void *uds[3][2];
    memset(same, 0, sizeof(same));
    uint64_t now_d = 60000000ull;
    for (int i = 0; i < 3; i++) {
        uds[i][0] = &t;
        uds[i][1] = (void *)(intptr_t)(100 + i);
        same[i].user = uds[i];
    }
    CU_ASSERT(lbw_timer(r, &same[0], now_d, 0, tm_cb) == 0);
    CU_ASSERT(lbw_timer(r, &same[1], now_d, 0, tm_cb) == 0);
    CU_ASSERT(lbw_timer(r, &same[2], now_d, 0, tm_cb) == 0);
    uint64_t t0 = lbw_now_ns();
    run_bounded(r, 10);
    CU_ASSERT(lbw_now_ns() - t0 >= 50000000ull);
    CU_ASSERT_EQUAL(t.n, 8);
    static const int want[5] = {10, 20, 30, 40, 50};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(t.order[i], want[i]);
    /* Timers started with equal delays fire in start order (their deadlines
     * may differ by the nanoseconds between the calls, never the other way). */
    CU_ASSERT(t.order[5] == 100 && t.order[6] == 101 && t.order[7] == 102);
    CU_ASSERT_EQUAL(t.cancelled_calls, 1);
    CU_ASSERT_EQUAL(t.cancelled_res, -ECANCELED);
    CU_ASSERT(t.ticks >= 5);
    CU_ASSERT_EQUAL(t.periodic_final, 1);
    CU_ASSERT_EQUAL(t.periodic_res, -ECANCELED);
    CU_ASSERT(lbw_cancel(r, &c) == -ENOENT);
    lbw_reactor_free(r);
}

/* ---- pidfd -------------------------------------------------------------- */

struct pid_ctx {
    int64_t revents;
    int calls;
};

static void pid_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pid_ctx *p = op->user;
    p->revents = res;
    p->calls++;
}

static void test_pidfd_exit(void)
{
    lbw_reactor *r = mk();
    pid_t a = fork();
    CU_ASSERT_FATAL(a >= 0);
    if (a == 0) {
        usleep(20000);
        _exit(7);
    }
    pid_t b = fork();
    CU_ASSERT_FATAL(b >= 0);
    if (b == 0) {
        pause();
        _exit(0);
    }
    int pa = lbw_pidfd_open(a), pb = lbw_pidfd_open(b);
    if (pa < 0 || pb < 0) { /* never leave the children behind */
        kill(a, SIGKILL);
        kill(b, SIGKILL);
        waitpid(a, NULL, 0);
        waitpid(b, NULL, 0);
        if (pa >= 0)
            close(pa);
        if (pb >= 0)
            close(pb);
        lbw_reactor_free(r);
        CU_FAIL_FATAL("pidfd_open failed");
    }
    struct lbw_exit ex;
    CU_ASSERT(lbw_pidfd_wait(pa, &ex, 1) == -EAGAIN);
    struct pid_ctx ca = {0}, cb = {0};
    struct lbw_op oa = {.user = &ca}, ob = {.user = &cb};
    CU_ASSERT(lbw_poll(r, &oa, pa, POLLIN, pid_cb) == 0);
    CU_ASSERT(lbw_poll(r, &ob, pb, POLLIN, pid_cb) == 0);
    CU_ASSERT(lbw_pidfd_kill(pb, SIGKILL) == 0);
    run_bounded(r, 10);
    CU_ASSERT(ca.calls == 1 && (ca.revents & POLLIN));
    CU_ASSERT(cb.calls == 1 && (cb.revents & POLLIN));
    CU_ASSERT(lbw_pidfd_wait(pa, &ex, 0) == 0);
    CU_ASSERT(ex.exited == 1 && ex.code == 7 && lbw_run_exit_code(&ex) == 7);
    CU_ASSERT(lbw_pidfd_wait(pb, &ex, 0) == 0);
    CU_ASSERT(ex.signaled == 1 && ex.sig == SIGKILL && lbw_run_exit_code(&ex) == -SIGKILL);
    close(pa);
    close(pb);
    lbw_reactor_free(r);
}

/* ---- signals through signalfd ------------------------------------------- */

static void test_signalfd_sigterm(void)
{
    lbw_reactor *r = mk();
    int sigs[] = {SIGTERM};
    sigset_t old;
    sigprocmask(SIG_SETMASK, NULL, &old);
    int sfd = lbw_signalfd_open(sigs, 1);
    CU_ASSERT_FATAL(sfd >= 0);
    struct pid_ctx c = {0};
    struct lbw_op op = {.user = &c};
    CU_ASSERT(lbw_poll(r, &op, sfd, POLLIN, pid_cb) == 0);
    CU_ASSERT(lbw_signalfd_read(sfd, NULL) == 0); /* nothing pending yet */
    CU_ASSERT(kill(getpid(), SIGTERM) == 0);
    run_bounded(r, 10);
    CU_ASSERT(c.calls == 1 && (c.revents & POLLIN));
    uint32_t from = 0;
    CU_ASSERT_EQUAL(lbw_signalfd_read(sfd, &from), SIGTERM);
    CU_ASSERT_EQUAL(from, (uint32_t)getpid());
    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    lbw_reactor_free(r);
}

/* ---- cancellation of every kind ----------------------------------------- */

struct cres {
    int calls;
    int64_t res;
};

static void cres_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct cres *c = op->user;
    c->calls++;
    c->res = res;
}

static void test_cancel_every_kind(void)
{
    lbw_reactor *r = mk();
    enum { ACC, CONN, RECV, SEND, READ, WRITE, POLL, TONE, TPER, N };
    struct cres c[N];
    struct lbw_op op[N];
    memset(c, 0, sizeof(c));
    memset(op, 0, sizeof(op));
    for (int i = 0; i < N; i++)
        op[i].user = &c[i];

    int lfd = lbw_tcp_listen("127.0.0.1", 0, 16);
    CU_ASSERT_FATAL(lfd >= 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    lbw_sockaddr_from("127.0.0.1", (uint16_t)lbw_sock_port(lfd), &ss, &sl);
    int sv[2], sw[2]; /* sv: recv/poll side idle; sw: send side, nobody reads */
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sw) == 0);
    int pr[2], pw[2];
    CU_ASSERT_FATAL(pipe2(pr, O_NONBLOCK | O_CLOEXEC) == 0);
    CU_ASSERT_FATAL(pipe2(pw, O_NONBLOCK | O_CLOEXEC) == 0);
    int cfd = lbw_tcp_socket(&ss);
    size_t big = 64u << 20;
    uint8_t *buf = calloc(1, big);
    uint8_t small[64];

    int idle_lfd = lbw_tcp_listen("127.0.0.1", 0, 16); /* nobody connects here */
    CU_ASSERT_FATAL(idle_lfd >= 0);
    CU_ASSERT(lbw_accept(r, &op[ACC], idle_lfd, cres_cb) == 0);
    CU_ASSERT(lbw_connect(r, &op[CONN], cfd, (struct sockaddr *)&ss, sl, cres_cb) == 0);
    CU_ASSERT(lbw_recv(r, &op[RECV], sv[0], small, sizeof(small), cres_cb) == 0);
    CU_ASSERT(lbw_send(r, &op[SEND], sw[1], buf, big, cres_cb) == 0); /* nobody reads */
    CU_ASSERT(lbw_read(r, &op[READ], pr[0], small, sizeof(small), -1, cres_cb) == 0);
    CU_ASSERT(lbw_write(r, &op[WRITE], pw[1], buf, big, -1, cres_cb) == 0);
    CU_ASSERT(lbw_poll(r, &op[POLL], sv[0], POLLPRI, cres_cb) == 0);
    CU_ASSERT(lbw_timer(r, &op[TONE], 10ull * 1000000000ull, 0, cres_cb) == 0);
    CU_ASSERT(lbw_timer(r, &op[TPER], 1000000000ull, 1000000000ull, cres_cb) == 0);
    CU_ASSERT(lbw_op_pending(&op[RECV]));
    /* Starting an op that is in use is refused. */
    CU_ASSERT(lbw_recv(r, &op[RECV], sv[0], small, sizeof(small), cres_cb) == -EBUSY);

    /* Let the sends fill the buffers and the ops reach the kernel. */
    for (int i = 0; i < 5; i++)
        lbw_reactor_run_once(r, 2000000ull);
    CU_ASSERT(c[SEND].calls == 0 && c[WRITE].calls == 0 && c[RECV].calls == 0);
    for (int i = 0; i < N; i++) {
        if (i != CONN || lbw_op_pending(&op[i])) {
            CU_ASSERT(lbw_cancel(r, &op[i]) == 0);
        }
    }
    CU_ASSERT(c[RECV].calls == 0); /* never from inside lbw_cancel */
    run_bounded(r, 10);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(c[i].calls, 1);
        if (i == CONN) {
            CU_ASSERT(c[i].res == 0 || c[i].res == -ECANCELED);
        } else {
            CU_ASSERT_EQUAL(c[i].res, -ECANCELED);
        }
        CU_ASSERT(!lbw_op_pending(&op[i]));
    }
    /* The ops are reusable after their final callback. */
    CU_ASSERT(lbw_timer(r, &op[TONE], 1000, 0, cres_cb) == 0);
    run_bounded(r, 5);
    CU_ASSERT(c[TONE].calls == 2 && c[TONE].res == 1);
    close(idle_lfd);
    close(lfd);
    close(cfd);
    close(sv[0]);
    close(sv[1]);
    close(sw[0]);
    close(sw[1]);
    close(pr[0]);
    close(pr[1]);
    close(pw[0]);
    close(pw[1]);
    free(buf);
    lbw_reactor_free(r);
}

/* ---- a peer that closes in the middle of a send -------------------------- */

struct midsend {
    struct lbw_op sop, rop;
    int sfd, rfd;
    uint8_t rbuf[65536];
    size_t got;
    int64_t send_res;
    int send_calls;
};

static void ms_send_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct midsend *m = op->user;
    m->send_res = res;
    m->send_calls++;
}

static void ms_recv_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct midsend *m = op->user;
    CU_ASSERT(res > 0);
    if (res <= 0)
        return;
    m->got += (size_t)res;
    if (m->got >= (1u << 20)) {
        close(m->rfd); /* with unread data: the sender sees a reset */
        m->rfd = -1;
        return;
    }
    lbw_recv(r, op, m->rfd, m->rbuf, sizeof(m->rbuf), ms_recv_cb);
}

static void test_peer_closes_mid_send(void)
{
    lbw_reactor *r = mk();
    int lfd = lbw_tcp_listen("127.0.0.1", 0, 4);
    CU_ASSERT_FATAL(lfd >= 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    lbw_sockaddr_from("127.0.0.1", (uint16_t)lbw_sock_port(lfd), &ss, &sl);
    struct midsend m = {0};
    m.sop.user = m.rop.user = &m;
    m.sfd = lbw_tcp_socket(&ss);
    int rc = connect(m.sfd, (struct sockaddr *)&ss, sl);
    CU_ASSERT(rc == 0 || errno == EINPROGRESS);
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    CU_ASSERT(poll(&pf, 1, 5000) == 1);
    m.rfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CU_ASSERT_FATAL(m.rfd >= 0);
    size_t big = 256u << 20;
    uint8_t *buf = calloc(1, big);
    CU_ASSERT(lbw_send(r, &m.sop, m.sfd, buf, big, ms_send_cb) == 0);
    CU_ASSERT(lbw_recv(r, &m.rop, m.rfd, m.rbuf, sizeof(m.rbuf), ms_recv_cb) == 0);
    run_bounded(r, 30);
    CU_ASSERT_EQUAL(m.send_calls, 1);
    CU_ASSERT(m.send_res == -EPIPE || m.send_res == -ECONNRESET);
    close(m.sfd);
    close(lfd);
    free(buf);
    lbw_reactor_free(r);
}

/* ---- freeing a reactor with work pending --------------------------------- */

static void test_free_cancels_pending(void)
{
    lbw_reactor *r = mk();
    int sv[2];
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    struct cres c1 = {0}, c2 = {0};
    struct lbw_op o1 = {.user = &c1}, o2 = {.user = &c2};
    uint8_t b[16];
    CU_ASSERT(lbw_recv(r, &o1, sv[0], b, sizeof(b), cres_cb) == 0);
    CU_ASSERT(lbw_timer(r, &o2, 3600ull * 1000000000ull, 0, cres_cb) == 0);
    lbw_reactor_run_once(r, 0);
    lbw_reactor_free(r);
    CU_ASSERT(c1.calls == 1 && c1.res == -ECANCELED);
    CU_ASSERT(c2.calls == 1 && c2.res == -ECANCELED);
    close(sv[0]);
    close(sv[1]);
}

/* ---- a cancelled wait, its fd closed and the number reused ---------------- */

static void test_fd_reuse_after_cancel(void)
{
    lbw_reactor *r = mk();
    int a[2], b[2];
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a) == 0);
    struct cres c1 = {0}, c2 = {0};
    struct lbw_op o1 = {.user = &c1}, o2 = {.user = &c2};
    uint8_t buf[16];
    /* a recv that waits (nothing to read), then is cancelled */
    CU_ASSERT(lbw_recv(r, &o1, a[0], buf, sizeof(buf), cres_cb) == 0);
    lbw_reactor_run_once(r, 0);
    lbw_reactor_run_once(r, 0);
    CU_ASSERT(lbw_cancel(r, &o1) == 0);
    run_bounded(r, 5);
    CU_ASSERT(c1.calls == 1 && c1.res == -ECANCELED);
    int old = a[0];
    close(a[0]);
    close(a[1]);
    /* the same descriptor number for a new socket */
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b) == 0);
    if (b[0] != old) {
        CU_ASSERT_FATAL(dup3(b[0], old, O_CLOEXEC) == old);
        close(b[0]);
        b[0] = old;
    }
    CU_ASSERT(lbw_recv(r, &o2, b[0], buf, sizeof(buf), cres_cb) == 0);
    lbw_reactor_run_once(r, 0);
    lbw_reactor_run_once(r, 0); /* it waits now */
    CU_ASSERT(write(b[1], "x", 1) == 1);
    run_bounded(r, 5); /* a stale registration would leave it waiting */
    CU_ASSERT(c2.calls == 1 && c2.res == 1);
    close(b[0]);
    close(b[1]);
    lbw_reactor_free(r);
}

/* ---- stop and bad arguments ---------------------------------------------- */

static void stop_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    lbw_reactor_stop(r);
}

static void test_stop_and_args(void)
{
    lbw_reactor *r = mk();
    struct lbw_op t = {0}, t2 = {0};
    struct cres c = {0};
    t2.user = &c;
    CU_ASSERT(lbw_timer(r, &t, 1000000, 0, stop_cb) == 0);
    CU_ASSERT(lbw_timer(r, &t2, 3600ull * 1000000000ull, 0, cres_cb) == 0);
    CU_ASSERT(lbw_reactor_run(r) == 0); /* returns on stop, t2 still pending */
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 1);
    CU_ASSERT(lbw_cancel(r, &t2) == 0);
    CU_ASSERT(lbw_reactor_run(r) == 0); /* returns when nothing is pending */
    CU_ASSERT(c.calls == 1 && c.res == -ECANCELED);
    struct lbw_op o = {0};
    uint8_t b[4];
    CU_ASSERT(lbw_recv(r, &o, -1, b, 4, cres_cb) == -EBADF);
    CU_ASSERT(lbw_recv(r, &o, 0, b, 4, NULL) == -EINVAL);
    CU_ASSERT(lbw_poll(r, &o, 0, 0, cres_cb) == -EINVAL);
    CU_ASSERT(!lbw_op_pending(&o));
    /* A bad fd is reported through the callback (uring) or right away. */
    o.user = &c;
    int rc = lbw_poll(r, &o, 1000000, POLLIN, cres_cb);
    if (rc == 0) {
        run_bounded(r, 5);
        CU_ASSERT(c.calls == 2 && c.res < 0);
    } else {
        CU_ASSERT(rc == -EBADF);
    }
    lbw_reactor_free(r);
}

/* A stop requested before the loop runs (e.g. a fatal start-up error seen
 * while wiring) makes run return at once instead of being forgotten; the
 * stop is consumed, so the next run serves normally. */
static void test_stop_before_run(void)
{
    lbw_reactor *r = mk();
    struct lbw_op t = {0};
    struct cres c = {0};
    t.user = &c;
    CU_ASSERT(lbw_timer(r, &t, 2000000000ull, 0, cres_cb) == 0);
    lbw_reactor_stop(r);
    CU_ASSERT(lbw_reactor_run(r) == 0);
    CU_ASSERT(c.calls == 0);                 /* returned before the timer fired */
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 1);
    CU_ASSERT(lbw_timer(r, &t, 0, 0, cres_cb) == -EBUSY); /* still armed */
    CU_ASSERT(lbw_cancel(r, &t) == 0);
    CU_ASSERT(lbw_reactor_run(r) == 0);      /* the stop was consumed */
    CU_ASSERT(c.calls == 1 && c.res == -ECANCELED);
    lbw_reactor_free(r);
}

/* ---- backend choice and fallback ----------------------------------------- */

static void test_fallback_injected(void)
{
    struct lbw_reactor_opts o = {.backend = LBW_BACKEND_AUTO, .inject_uring_setup_error = -EPERM};
    lbw_reactor *r = NULL;
    char err[256] = "";
    CU_ASSERT_FATAL(lbw_reactor_new(&r, &o, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_reactor_backend(r) == LBW_BACKEND_EPOLL);
    CU_ASSERT_STRING_EQUAL(lbw_reactor_backend_name(r), "epoll");
    CU_ASSERT(strstr(lbw_reactor_backend_reason(r), "fallback") != NULL);
    CU_ASSERT(strstr(lbw_reactor_backend_reason(r), "not permitted") != NULL);
    /* The fallback reactor works. */
    struct lbw_op t = {0};
    struct cres c = {0};
    t.user = &c;
    CU_ASSERT(lbw_timer(r, &t, 1000, 0, cres_cb) == 0);
    CU_ASSERT(lbw_reactor_run(r) == 0);
    CU_ASSERT(c.calls == 1 && c.res == 1);
    lbw_reactor_free(r);

    o.inject_uring_setup_error = -ENOSYS;
    CU_ASSERT_FATAL(lbw_reactor_new(&r, &o, err, sizeof(err)) == 0);
    CU_ASSERT(strstr(lbw_reactor_backend_reason(r), "without io_uring") != NULL);
    lbw_reactor_free(r);

    /* Forced io_uring does not fall back; the error says what to do. */
    o.backend = LBW_BACKEND_URING;
    r = NULL;
    CU_ASSERT(lbw_reactor_new(&r, &o, err, sizeof(err)) == -ENOSYS);
    CU_ASSERT(r == NULL);
    CU_ASSERT(strstr(err, "epoll") != NULL);
}

static void test_backend_parse_env(void)
{
    enum lbw_backend b;
    CU_ASSERT(lbw_backend_parse("epoll", &b) == 0 && b == LBW_BACKEND_EPOLL);
    CU_ASSERT(lbw_backend_parse("uring", &b) == 0 && b == LBW_BACKEND_URING);
    CU_ASSERT(lbw_backend_parse("io_uring", &b) == 0 && b == LBW_BACKEND_URING);
    CU_ASSERT(lbw_backend_parse("auto", &b) == 0 && b == LBW_BACKEND_AUTO);
    CU_ASSERT(lbw_backend_parse("kqueue", &b) == -EINVAL);
    struct lbw_reactor_opts o = {0};
    const char *bad = NULL;
    setenv("LBW_REACTOR", "epoll", 1);
    CU_ASSERT(lbw_reactor_opts_from_env(&o, &bad) == 0 && o.backend == LBW_BACKEND_EPOLL);
    setenv("LBW_REACTOR", "select", 1);
    CU_ASSERT(lbw_reactor_opts_from_env(&o, &bad) == -EINVAL);
    CU_ASSERT(bad && !strcmp(bad, "select"));
    unsetenv("LBW_REACTOR");
}

static const struct lbw_test backend_tests[] = {
    {"tcp echo, 1000 concurrent clients, byte-exact", test_echo_1000},
    {"256 MiB through a pipe, checksum", test_pipe_256m},
    {"file read/write at offsets", test_file_offsets},
    {"timers fire in order, cancelled never fire", test_timers},
    {"pidfd readable at exit, waitid status", test_pidfd_exit},
    {"SIGTERM through signalfd", test_signalfd_sigterm},
    {"cancel every op kind", test_cancel_every_kind},
    {"peer closes mid-send", test_peer_closes_mid_send},
    {"free cancels pending ops", test_free_cancels_pending},
    {"a reused fd number after a cancelled wait", test_fd_reuse_after_cancel},
    {"stop, bad arguments", test_stop_and_args},
    {"a stop before run returns at once", test_stop_before_run},
    {NULL, NULL},
};

static const struct lbw_test choice_tests[] = {
    {"io_uring setup failure falls back to epoll", test_fallback_injected},
    {"backend names and LBW_REACTOR", test_backend_parse_env},
    {NULL, NULL},
};

static int register_reactor_suites(void)
{
    if (lbw_add_backend_suites("reactor", backend_tests))
        return -1;
    return lbw_add_suite("reactor choice", NULL, NULL, choice_tests);
}

LBW_TEST_SUITES(register_reactor_suites)
