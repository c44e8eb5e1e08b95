/* pingpong.c — loopback TCP ping-pong of 64-byte messages through the
 * reactor: round trips per second on each backend. Runs are interleaved
 * (io_uring, epoll, io_uring, ...) so both see the same machine noise;
 * prints each run, the medians and their ratio, and one JSON object.
 * Usage: pingpong [--runs N] [--seconds S] [--json FILE] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reactor.h"
#include "sock.h"

#define MSG 64

struct pp {
    int sfd, cfd;
    struct lbw_op srop, ssop, crop, csop, timer;
    uint8_t sbuf[MSG], cbuf[MSG], msg[MSG];
    size_t sgot, cgot;
    uint64_t trips;
    int stop, err;
};

static void s_recv(lbw_reactor *r, struct lbw_op *op, int64_t res);
static void c_recv(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void ignore_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pp *p = op->user;
    if (res < 0 && res != -ECANCELED)
        p->err = 1;
}

static void s_recv(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pp *p = op->user;
    if (res <= 0)
        return; /* client closed or cancelled */
    p->sgot += (size_t)res;
    if (p->sgot == MSG) {
        p->sgot = 0;
        if (lbw_send(r, &p->ssop, p->sfd, p->sbuf, MSG, ignore_cb) < 0)
            p->err = 1;
    }
    lbw_recv(r, op, p->sfd, p->sbuf + p->sgot, MSG - p->sgot, s_recv);
}

static void c_recv(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pp *p = op->user;
    if (res <= 0) {
        if (res != -ECANCELED)
            p->err = 1;
        return;
    }
    p->cgot += (size_t)res;
    if (p->cgot < MSG) {
        lbw_recv(r, op, p->cfd, p->cbuf + p->cgot, MSG - p->cgot, c_recv);
        return;
    }
    if (memcmp(p->cbuf, p->msg, MSG) != 0)
        p->err = 1;
    p->trips++;
    if (p->stop)
        return;
    p->cgot = 0;
    if (lbw_send(r, &p->csop, p->cfd, p->msg, MSG, ignore_cb) < 0)
        p->err = 1;
    lbw_recv(r, op, p->cfd, p->cbuf, MSG, c_recv);
}

static void t_done(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pp *p = op->user;
    p->stop = 1;
    lbw_cancel(r, &p->srop);
    lbw_cancel(r, &p->crop);
}

/* Returns round trips per second, or -1. */
static double run_one(enum lbw_backend b, double seconds, char *name, size_t namelen)
{
    struct lbw_reactor_opts o = {.backend = b};
    lbw_reactor *r;
    char err[256];
    if (lbw_reactor_new(&r, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "pingpong: %s\n", err);
        return -1;
    }
    snprintf(name, namelen, "%s", lbw_reactor_backend_name(r));
    int lfd = lbw_tcp_listen("127.0.0.1", 0, 16);
    struct sockaddr_storage ss;
    socklen_t sl;
    lbw_sockaddr_from("127.0.0.1", (uint16_t)lbw_sock_port(lfd), &ss, &sl);
    struct pp *p = calloc(1, sizeof(*p));
    p->cfd = lbw_tcp_socket(&ss);
    if (connect(p->cfd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
        return -1;
    p->sfd = -1;
    while (p->sfd < 0) {
        p->sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (p->sfd < 0 && errno != EAGAIN)
            return -1;
    }
    lbw_tcp_nodelay(p->cfd);
    lbw_tcp_nodelay(p->sfd);
    memset(p->msg, 'x', MSG);
    p->srop.user = p->ssop.user = p->crop.user = p->csop.user = p->timer.user = p;
    lbw_recv(r, &p->srop, p->sfd, p->sbuf, MSG, s_recv);
    lbw_send(r, &p->csop, p->cfd, p->msg, MSG, ignore_cb);
    lbw_recv(r, &p->crop, p->cfd, p->cbuf, MSG, c_recv);
    uint64_t t0 = lbw_now_ns();
    lbw_timer(r, &p->timer, (uint64_t)(seconds * 1e9), 0, t_done);
    lbw_reactor_run(r);
    uint64_t t1 = lbw_now_ns();
    double rate = p->err ? -1 : (double)p->trips / ((double)(t1 - t0) / 1e9);
    lbw_reactor_free(r);
    close(p->cfd);
    close(p->sfd);
    close(lfd);
    free(p);
    return rate;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = 5;
    double seconds = 1.0;
    const char *json = NULL;
    static const struct option lo[] = {{"runs", 1, NULL, 'n'},
                                       {"seconds", 1, NULL, 's'},
                                       {"json", 1, NULL, 'j'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'n')
            runs = atoi(optarg);
        else if (c == 's')
            seconds = atof(optarg);
        else if (c == 'j')
            json = optarg;
        else
            return 2;
    }
    if (runs < 1 || runs > 101 || seconds <= 0) {
        fprintf(stderr, "pingpong: --runs 1..101, --seconds > 0\n");
        return 2;
    }
    double *u = calloc((size_t)runs, sizeof(double)), *e = calloc((size_t)runs, sizeof(double));
    char un[32] = "", en[32] = "";
    printf("loopback TCP ping-pong, 64-byte messages, %d interleaved runs of %.1fs\n", runs,
           seconds);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%-4s %16s %16s\n", "run", "io_uring rt/s", "epoll rt/s");
    for (int i = 0; i < runs; i++) {
        u[i] = run_one(LBW_BACKEND_URING, seconds, un, sizeof(un));
        e[i] = run_one(LBW_BACKEND_EPOLL, seconds, en, sizeof(en));
        printf("%-4d %16.0f %16.0f\n", i + 1, u[i], e[i]);
        if (u[i] < 0 || e[i] < 0) {
            fprintf(stderr, "pingpong: run %d failed\n", i + 1);
            return 1;
        }
    }
    qsort(u, (size_t)runs, sizeof(double), cmp);
    qsort(e, (size_t)runs, sizeof(double), cmp);
    double mu = u[runs / 2], me = e[runs / 2];
    printf("%-4s %16.0f %16.0f   io_uring/epoll = %.2f\n", "med", mu, me, mu / me);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f,
                    "{\"benchmark\":\"tcp_pingpong_64B\",\"runs\":%d,\"seconds\":%.3f,"
                    "\"median_rt_per_s\":{\"io_uring\":%.0f,\"epoll\":%.0f},"
                    "\"ratio_uring_over_epoll\":%.3f}\n",
                    runs, seconds, mu, me, mu / me);
            fclose(f);
        }
    }
    free(u);
    free(e);
    return 0;
}
