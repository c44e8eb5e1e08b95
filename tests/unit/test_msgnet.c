/* test_msgnet.c — the message transport, once per reactor backend:
 * a captured upstream connection replayed into our listener must get
 * exactly upstream's acks; request/reply between two nets paired by
 * session, with connection reuse preceded by SYSTEM_PING; receiver rules;
 * limits and read timeouts close only the offending connection; send
 * failures, ack 0 and retries; closing with work pending. Raw peers run in
 * a second thread so the reactor thread can serve them. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "msgnet.h"
#include "sock.h"
#include "suites.h"

/* A listening socket on 127.0.0.1 and its "ip:port" identity. */
static int listen_any(char *self, size_t cap)
{
    int fd = lbw_tcp_listen("127.0.0.1", 0, 64);
    CU_ASSERT_FATAL(fd >= 0);
    snprintf(self, cap, "127.0.0.1:%d", lbw_sock_port(fd));
    return fd;
}

static int g_requests;
static int req_count(void *ctx, struct lbw_frame *f)
{
    g_requests++;
    return 1;
}

/* ---- raw peer thread --------------------------------------------------------- */

struct raw {
    int port;
    const uint8_t *out;
    size_t outlen;
    uint8_t in[4096];
    size_t inlen;
    size_t want_in;     /* stop reading after this many bytes (0: until EOF) */
    int eof;            /* the server closed the connection */
    int hold_ms;        /* keep the connection open this long after writing */
    volatile int done;
};

static void *raw_peer(void *arg)
{
    struct raw *w = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    lbw_sockaddr_from("127.0.0.1", (uint16_t)w->port, &ss, &sl);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
        size_t off = 0;
        while (off < w->outlen) {
            ssize_t n = send(fd, w->out + off, w->outlen - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        if (w->hold_ms)
            usleep((useconds_t)w->hold_ms * 1000);
        for (;;) {
            if (w->want_in && w->inlen >= w->want_in)
                break;
            ssize_t n = recv(fd, w->in + w->inlen, sizeof(w->in) - w->inlen, 0);
            if (n == 0) {
                w->eof = 1;
                break;
            }
            if (n < 0)
                break;
            w->inlen += (size_t)n;
        }
    }
    close(fd);
    w->done = 1;
    return NULL;
}

/* ---- replay of a captured connection ------------------------------------------ */

static void test_replay_capture(void)
{
    lbw_reactor *r = lbw_test_reactor();
    int lfd = lbw_tcp_listen("127.0.0.1", 0, 64);
    CU_ASSERT_FATAL(lfd >= 0);
    /* Stream 01: the upstream worker talking to the scheduler at
     * 127.0.0.1:17386; we play the scheduler (identity by string). */
    struct lbw_msgnet_opts o = {.self = "127.0.0.1:17386"};
    g_requests = 0;
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, req_count, NULL);
    CU_ASSERT_FATAL(n && lbw_msgnet_listen(n, lfd) == 0);
    size_t cl, sl;
    uint8_t *c2s = fx_read("streams/01_message_55574_to_17386.c2s.bin", &cl);
    uint8_t *s2c = fx_read("streams/01_message_55574_to_17386.s2c.bin", &sl);
    CU_ASSERT_FATAL(c2s && s2c);
    struct raw w = {.port = lbw_sock_port(lfd), .out = c2s, .outlen = cl, .want_in = sl};
    pthread_t th;
    pthread_create(&th, NULL, raw_peer, &w);
    lbw_test_run_until(r, &w.done, 20);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(w.inlen, sl);
    CU_ASSERT(w.inlen == sl && !memcmp(w.in, s2c, sl)); /* 25 acks of 0x01 */
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(n, &st);
    CU_ASSERT_EQUAL(st.frames_in, sl);
    CU_ASSERT_EQUAL((uint64_t)g_requests + st.pings_in, sl);
    CU_ASSERT(st.pings_in > 0);
    lbw_msgnet_close(n);
    lbw_test_run_until(r, &(int){0}, 0.1);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    free(c2s);
    free(s2c);
    lbw_reactor_free(r);
}

/* ---- request / reply between two nets ----------------------------------------- */

struct rr {
    struct lbw_msgnet *a, *b;
    char a_self[64], b_self[64];
    uint8_t session[16];
    int replies, sent_ok, reply_sent_ok, requests_at_b;
    char last_reply[64];
    volatile int done;
};

static void rr_sent(void *ctx, int status)
{
    int *ok = ctx;
    if (status == 0)
        (*ok)++;
    else
        fprintf(stderr, "send failed: %s\n", strerror(-status));
}

/* B answers every request to its source chain with the same session. */
static struct rr *g_rr;
static int b_on_request(void *ctx, struct lbw_frame *f)
{
    struct rr *t = ctx;
    t->requests_at_b++;
    CU_ASSERT(f->has_session);
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"echo\": %d}", t->requests_at_b);
    CU_ASSERT(lbw_msgnet_send(t->b, f->src, LBW_MSG_DEFAULT, f->session, body, (size_t)n,
                              rr_sent, &t->reply_sent_ok) == 0);
    return 1;
}

static int a_on_reply(void *ctx, struct lbw_frame *f)
{
    struct rr *t = ctx;
    t->replies++;
    snprintf(t->last_reply, sizeof(t->last_reply), "%.*s", (int)f->body_len, (char *)f->body);
    t->done = 1;
    return 1;
}

static void test_request_reply_reuse(void)
{
    lbw_reactor *r = lbw_test_reactor();
    struct rr t = {0};
    g_rr = &t;
    int la = listen_any(t.a_self, sizeof(t.a_self));
    int lb = listen_any(t.b_self, sizeof(t.b_self));
    struct lbw_msgnet_opts oa = {.self = t.a_self}, ob = {.self = t.b_self};
    t.a = lbw_msgnet_new(r, &oa, NULL, &t);
    t.b = lbw_msgnet_new(r, &ob, b_on_request, &t);
    CU_ASSERT_FATAL(t.a && t.b);
    lbw_msgnet_listen(t.a, la);
    lbw_msgnet_listen(t.b, lb);
    for (int round = 1; round <= 3; round++) {
        lbw_session_new(t.session);
        CU_ASSERT((t.session[6] & 0xf0) == 0x40 && (t.session[8] & 0xc0) == 0x80);
        CU_ASSERT(lbw_msgnet_expect(t.a, t.session, a_on_reply, &t) == 0);
        t.done = 0;
        const char *req = "{\"command\": {\"name\": \"ping\", \"arguments\": {}}}";
        CU_ASSERT(lbw_msgnet_send(t.a, t.b_self, LBW_MSG_DEFAULT, t.session, req, strlen(req),
                                  rr_sent, &t.sent_ok) == 0);
        lbw_test_run_until(r, &t.done, 10);
        lbw_msgnet_unexpect(t.a, t.session);
        CU_ASSERT_EQUAL(t.replies, round);
        char want[32];
        snprintf(want, sizeof(want), "{\"echo\": %d}", round);
        CU_ASSERT_STRING_EQUAL(t.last_reply, want);
    }
    int spin = 0;
    lbw_test_run_until(r, &spin, 0.2);
    CU_ASSERT_EQUAL(t.sent_ok, 3);
    CU_ASSERT_EQUAL(t.reply_sent_ok, 3);
    struct lbw_msgnet_stats sa, sb;
    lbw_msgnet_stats(t.a, &sa);
    lbw_msgnet_stats(t.b, &sb);
    /* one connection each way, reused twice, each reuse preceded by a ping */
    CU_ASSERT_EQUAL(sb.pings_in, 2);
    CU_ASSERT_EQUAL(sa.pings_in, 2);
    CU_ASSERT_EQUAL(sb.frames_in, 5);
    CU_ASSERT_EQUAL(sa.frames_out, 3);
    lbw_msgnet_close(t.a);
    lbw_msgnet_close(t.b);
    lbw_test_run_until(r, &spin, 0.2);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

/* ---- receiver rules, limits, timeouts ----------------------------------------- */

static size_t mkframe(uint8_t *out, const char *pre, uint16_t type, const char *src,
                      const char *dst, const char *body)
{
    size_t k = 0;
    if (pre)
        k += lbw_preamble_write(out, pre, strlen(pre));
    uint8_t sess[16] = {1, 2, 3};
    k += lbw_frame_write_head(out + k, type, type == LBW_MSG_DEFAULT ? sess : NULL, src,
                              strlen(src), dst, strlen(dst), strlen(body));
    memcpy(out + k, body, strlen(body));
    return k + strlen(body);
}

static void test_receiver_rules(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    struct lbw_msgnet_opts o = {.self = self};
    g_requests = 0;
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, req_count, NULL);
    lbw_msgnet_listen(n, lfd);
    uint8_t buf[1024];
    size_t k = mkframe(buf, "127.0.0.1:1", LBW_MSG_DEFAULT, "127.0.0.1:1", "127.0.0.1:2", "{}");
    k += mkframe(buf + k, NULL, LBW_MSG_DEFAULT, "127.0.0.1:1", self, "{}");
    char chain[128];
    snprintf(chain, sizeof(chain), "%s|127.0.0.1:3", self);
    k += mkframe(buf + k, NULL, LBW_MSG_DEFAULT, "127.0.0.1:1", chain, "{}");
    k += mkframe(buf + k, NULL, LBW_MSG_SYSTEM_PING, "127.0.0.1:1", self, "");
    struct raw w = {.port = lbw_sock_port(lfd), .out = buf, .outlen = k, .want_in = 4};
    char logpath[] = "/tmp/lbw-msgnet-log-XXXXXX";
    int lg = mkstemp(logpath);
    unlink(logpath);
    lbw_log_set_fd(lg);
    pthread_t th;
    pthread_create(&th, NULL, raw_peer, &w);
    lbw_test_run_until(r, &w.done, 10);
    pthread_join(th, NULL);
    lbw_log_set_fd(-1);
    char logbuf[2048] = {0};
    CU_ASSERT(pread(lg, logbuf, sizeof(logbuf) - 1, 0) > 0);
    CU_ASSERT(strstr(logbuf, "is not for us") && strstr(logbuf, "does not forward"));
    close(lg);
    /* not ours: 1; ours: 1; more hops: 0 (a worker does not forward); ping: 1 */
    CU_ASSERT(w.inlen == 4 && w.in[0] == 1 && w.in[1] == 1 && w.in[2] == 0 && w.in[3] == 1);
    CU_ASSERT_EQUAL(g_requests, 1);
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(n, &st);
    CU_ASSERT(st.dropped_not_ours == 1 && st.pings_in == 1 && st.acks_sent_0 == 1);
    lbw_msgnet_close(n);
    int spin = 0;
    lbw_test_run_until(r, &spin, 0.1);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

static void test_limits_and_timeouts(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    struct lbw_msgnet_opts o = {.self = self,
                                .max_frame = 4096,
                                .frame_timeout_ns = 300000000ull,
                                .idle_timeout_ns = 600000000ull};
    g_requests = 0;
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, req_count, NULL);
    lbw_msgnet_listen(n, lfd);
    int port = lbw_sock_port(lfd);
    char logpath[] = "/tmp/lbw-msgnet-log-XXXXXX";
    int lg = mkstemp(logpath);
    unlink(logpath);
    lbw_log_set_fd(lg);
    /* 1: oversized frame -> closed; 2: half a frame then silence -> timed
     * out; 3: a well-behaved peer alongside gets its ack. */
    uint8_t big[256], half[256], good[256];
    size_t bl = mkframe(big, "127.0.0.1:1", LBW_MSG_DEFAULT, "127.0.0.1:1", self, "{}");
    big[8 + 11 + 6] = 0x7f; /* the frame's size field (after the 19-byte preamble): +32,512 */
    size_t hl = mkframe(half, "127.0.0.1:1", LBW_MSG_DEFAULT, "127.0.0.1:1", self, "{}");
    hl -= 5;
    size_t gl = mkframe(good, "127.0.0.1:1", LBW_MSG_DEFAULT, "127.0.0.1:1", self, "{}");
    struct raw w1 = {.port = port, .out = big, .outlen = bl};
    struct raw w2 = {.port = port, .out = half, .outlen = hl};
    struct raw w3 = {.port = port, .out = good, .outlen = gl, .want_in = 1};
    pthread_t t1, t2, t3;
    uint64_t t0 = lbw_now_ns();
    pthread_create(&t1, NULL, raw_peer, &w1);
    pthread_create(&t2, NULL, raw_peer, &w2);
    pthread_create(&t3, NULL, raw_peer, &w3);
    volatile int all = 0;
    while (!all && lbw_now_ns() - t0 < 10000000000ull) {
        lbw_reactor_run_once(r, 20000000ull);
        all = w1.done && w2.done && w3.done;
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    lbw_log_set_fd(-1);
    CU_ASSERT(w1.eof && w1.inlen == 0);
    CU_ASSERT(w2.eof && w2.inlen == 0);
    CU_ASSERT(w3.inlen == 1 && w3.in[0] == 1);
    CU_ASSERT_EQUAL(g_requests, 1);
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(n, &st);
    CU_ASSERT_EQUAL(st.conns_closed_bad, 1);
    CU_ASSERT_EQUAL(st.conns_timed_out, 1);
    char logbuf[2048] = {0};
    CU_ASSERT(pread(lg, logbuf, sizeof(logbuf) - 1, 0) > 0);
    CU_ASSERT(strstr(logbuf, "frame larger than the configured maximum") != NULL);
    CU_ASSERT(strstr(logbuf, "no rest of the frame within") != NULL);
    close(lg);
    lbw_msgnet_close(n);
    int spin = 0;
    lbw_test_run_until(r, &spin, 0.1);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

/* ---- send failures, ack 0, close with work pending ----------------------------- */

struct outcome {
    int calls, status;
    volatile int done;
};

static void outcome_cb(void *ctx, int status)
{
    struct outcome *o = ctx;
    o->calls++;
    o->status = status;
    o->done = 1;
}

static int refuse_all(void *ctx, struct lbw_frame *f) { return 0; }

static void test_send_failures(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64], dead[64], refuser[64];
    int lfd = listen_any(self, sizeof(self));
    int dfd = listen_any(dead, sizeof(dead));
    close(dfd); /* nothing listens there now */
    int rfd = listen_any(refuser, sizeof(refuser));
    struct lbw_msgnet_opts o = {.self = self, .backoff_ns = 50000000ull};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, NULL, NULL);
    struct lbw_msgnet_opts ro = {.self = refuser};
    struct lbw_msgnet *rn = lbw_msgnet_new(r, &ro, refuse_all, NULL);
    lbw_msgnet_listen(n, lfd);
    lbw_msgnet_listen(rn, rfd);
    uint8_t s[16];
    lbw_session_new(s);
    struct outcome a = {0}, b = {0}, c = {0};
    uint64_t t0 = lbw_now_ns();
    CU_ASSERT(lbw_msgnet_send(n, dead, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &a) == 0);
    lbw_test_run_until(r, &a.done, 10);
    CU_ASSERT(a.calls == 1 && a.status == -ECONNREFUSED);
    CU_ASSERT(lbw_now_ns() - t0 >= 50000000ull); /* backed off before the 2nd attempt */
    CU_ASSERT(lbw_msgnet_send(n, refuser, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &b) == 0);
    lbw_test_run_until(r, &b.done, 10);
    CU_ASSERT(b.calls == 1 && b.status == -EPROTO);
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(rn, &st);
    CU_ASSERT_EQUAL(st.frames_in, 2); /* tried twice */
    lbw_msgnet_stats(n, &st);
    CU_ASSERT_EQUAL(st.send_failures, 2);
    CU_ASSERT(lbw_msgnet_send(n, "not an address", 0, s, "{}", 2, outcome_cb, &c) == -EINVAL);
    /* closing with a send in flight: the callback gets -ECANCELED */
    CU_ASSERT(lbw_msgnet_send(n, refuser, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &c) == 0);
    lbw_msgnet_close(n);
    lbw_msgnet_close(rn);
    int spin = 0;
    lbw_test_run_until(r, &spin, 0.3);
    CU_ASSERT(c.calls == 1 && c.status == -ECANCELED);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

/* A peer restarts on the same port while we hold several pooled
 * connections to it: the next send must not spend its attempts on them. */
static void test_stale_pool_after_restart(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64], peer[64];
    int lfd = listen_any(self, sizeof(self));
    int pfd = listen_any(peer, sizeof(peer));
    int port = lbw_sock_port(pfd);
    struct lbw_msgnet_opts o = {.self = self, .backoff_ns = 50000000ull};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, NULL, NULL);
    lbw_msgnet_listen(n, lfd);
    struct lbw_msgnet_opts po = {.self = peer};
    g_requests = 0;
    struct lbw_msgnet *pn = lbw_msgnet_new(r, &po, req_count, NULL);
    lbw_msgnet_listen(pn, pfd);
    uint8_t s[16];
    lbw_session_new(s);
    struct outcome a[4] = {{0}};
    for (int i = 0; i < 4; i++) /* at once: four connections, then idle in the pool */
        CU_ASSERT(lbw_msgnet_send(n, peer, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &a[i]) == 0);
    for (int i = 0; i < 4; i++) {
        lbw_test_run_until(r, &a[i].done, 10);
        CU_ASSERT(a[i].status == 0);
    }
    CU_ASSERT_EQUAL(g_requests, 4);
    /* the peer goes away and a new one listens on the same port */
    lbw_msgnet_close(pn);
    int spin = 0;
    lbw_test_run_until(r, &spin, 0.2);
    int pfd2 = lbw_tcp_listen("127.0.0.1", (uint16_t)port, 64);
    CU_ASSERT_FATAL(pfd2 >= 0);
    struct lbw_msgnet *pn2 = lbw_msgnet_new(r, &po, req_count, NULL);
    lbw_msgnet_listen(pn2, pfd2);
    struct outcome b = {0};
    CU_ASSERT(lbw_msgnet_send(n, peer, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &b) == 0);
    lbw_test_run_until(r, &b.done, 10);
    CU_ASSERT(b.calls == 1 && b.status == 0);
    CU_ASSERT_EQUAL(g_requests, 5);
    lbw_msgnet_close(n);
    lbw_msgnet_close(pn2);
    lbw_test_run_until(r, &spin, 0.3);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

static const struct lbw_test tests[] = {
    {"captured connection replayed: upstream's acks exactly", test_replay_capture},
    {"request/reply by session; reuse preceded by SYSTEM_PING", test_request_reply_reuse},
    {"receiver rules: not ours, more hops, ping", test_receiver_rules},
    {"limit breach and read timeout close only that connection", test_limits_and_timeouts},
    {"refused, ack 0, retries, close with a send pending", test_send_failures},
    {"a peer restarted on the same port: stale pooled connections", test_stale_pool_after_restart},
    {NULL, NULL},
};

static int register_msgnet_suites(void) { return lbw_add_backend_suites("msgnet", tests); }

LBW_TEST_SUITES(register_msgnet_suites)
