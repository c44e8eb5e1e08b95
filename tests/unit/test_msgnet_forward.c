/* test_msgnet_forward.c — forwarding by a message proxy (PROTOCOL.md 1.7),
 * once per reactor backend: a frame for P|B sent to a net P with forward_ok
 * reaches B with the source P|A, the destination B and the same session,
 * type and body, and A's send is acked only after B acked; B's ack 0, a
 * next hop nobody listens on and a next hop forward_ok refuses all come
 * back to A as ack 0; a net without forward_ok refuses to forward. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "msgnet.h"
#include "sock.h"
#include "suites.h"

struct fw {
    char a[64], p[64], b[64], dead[64];
    int b_requests, b_ack;
    char got_src[160], got_dst[64], got_body[64];
    uint8_t got_session[16];
    uint16_t got_type;
    int refuse_hop_b; /* forward_ok says no to b */
};

struct out {
    int calls, status;
    volatile int done;
};

static void out_cb(void *ctx, int status)
{
    struct out *o = ctx;
    o->calls++;
    o->status = status;
    o->done = 1;
}

static int b_on_request(void *ctx, struct lbw_frame *f)
{
    struct fw *t = ctx;
    t->b_requests++;
    snprintf(t->got_src, sizeof(t->got_src), "%s", f->src);
    snprintf(t->got_dst, sizeof(t->got_dst), "%s", f->dst);
    snprintf(t->got_body, sizeof(t->got_body), "%.*s", (int)f->body_len, (char *)f->body);
    memcpy(t->got_session, f->session, 16);
    t->got_type = f->type;
    return t->b_ack;
}

static int p_forward_ok(void *ctx, const char *hop, size_t len)
{
    struct fw *t = ctx;
    return !(t->refuse_hop_b && len == strlen(t->b) && !memcmp(hop, t->b, len));
}

static int listen_on(char *self, size_t cap)
{
    int fd = lbw_tcp_listen("127.0.0.1", 0, 64);
    CU_ASSERT_FATAL(fd >= 0);
    snprintf(self, cap, "127.0.0.1:%d", lbw_sock_port(fd));
    return fd;
}

static void send_via(lbw_reactor *r, struct lbw_msgnet *a, const char *dst, struct out *o)
{
    uint8_t s[16];
    lbw_session_new(s);
    *o = (struct out){0};
    CU_ASSERT(lbw_msgnet_send(a, dst, LBW_MSG_DEFAULT, s, "{\"x\": 1}", 8, out_cb, o) == 0);
    lbw_test_run_until(r, &o->done, 10);
    CU_ASSERT_EQUAL(o->calls, 1);
}

static void test_forward(void)
{
    lbw_reactor *r = lbw_test_reactor();
    struct fw t = {.b_ack = 1};
    int la = listen_on(t.a, sizeof(t.a));
    int lp = listen_on(t.p, sizeof(t.p));
    int lb = listen_on(t.b, sizeof(t.b));
    int ld = listen_on(t.dead, sizeof(t.dead));
    close(ld); /* nothing listens there */
    struct lbw_msgnet_opts oa = {.self = t.a, .attempts = 1};
    struct lbw_msgnet_opts op = {.self = t.p, .backoff_ns = 10000000ull,
                                 .forward_ok = p_forward_ok};
    struct lbw_msgnet_opts ob = {.self = t.b};
    struct lbw_msgnet *a = lbw_msgnet_new(r, &oa, NULL, &t);
    struct lbw_msgnet *p = lbw_msgnet_new(r, &op, NULL, &t);
    struct lbw_msgnet *b = lbw_msgnet_new(r, &ob, b_on_request, &t);
    CU_ASSERT_FATAL(a && p && b);
    lbw_msgnet_listen(a, la);
    lbw_msgnet_listen(p, lp);
    lbw_msgnet_listen(b, lb);
    char via[200], via_dead[200], want_src[200];
    snprintf(via, sizeof(via), "%s|%s", t.p, t.b);
    snprintf(via_dead, sizeof(via_dead), "%s|%s", t.p, t.dead);
    snprintf(want_src, sizeof(want_src), "%s|%s", t.p, t.a);

    struct out o;
    uint8_t s[16];
    lbw_session_new(s);
    o = (struct out){0};
    CU_ASSERT(lbw_msgnet_send(a, via, LBW_MSG_DEFAULT, s, "{\"x\": 1}", 8, out_cb, &o) == 0);
    lbw_test_run_until(r, &o.done, 10);
    CU_ASSERT(o.calls == 1 && o.status == 0);
    CU_ASSERT_EQUAL(t.b_requests, 1);
    CU_ASSERT_STRING_EQUAL(t.got_src, want_src);
    CU_ASSERT_STRING_EQUAL(t.got_dst, t.b);
    CU_ASSERT_STRING_EQUAL(t.got_body, "{\"x\": 1}");
    CU_ASSERT(memcmp(t.got_session, s, 16) == 0);
    CU_ASSERT_EQUAL(t.got_type, LBW_MSG_DEFAULT);

    t.b_ack = 0; /* B refuses: A hears ack 0 */
    send_via(r, a, via, &o);
    CU_ASSERT_EQUAL(o.status, -EPROTO);
    CU_ASSERT_EQUAL(t.b_requests, 3); /* the proxy tried B twice */
    t.b_ack = 1;
    send_via(r, a, via_dead, &o); /* nobody at the next hop */
    CU_ASSERT_EQUAL(o.status, -EPROTO);
    t.refuse_hop_b = 1; /* not a hop the proxy serves */
    send_via(r, a, via, &o);
    CU_ASSERT_EQUAL(o.status, -EPROTO);
    CU_ASSERT_EQUAL(t.b_requests, 3);
    /* B has no forward_ok: a frame for B|P is refused there */
    char via_b[200];
    snprintf(via_b, sizeof(via_b), "%s|%s", t.b, t.p);
    send_via(r, a, via_b, &o);
    CU_ASSERT_EQUAL(o.status, -EPROTO);
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(p, &st);
    CU_ASSERT_EQUAL(st.forwarded, 3);
    CU_ASSERT_EQUAL(st.forward_failures, 2);
    lbw_msgnet_close(a);
    lbw_msgnet_close(p);
    lbw_msgnet_close(b);
    int spin = 0;
    lbw_test_run_until(r, &spin, 0.3);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

static const struct lbw_test tests[] = {
    {"a proxy forwards (source P|A, same session and body), acks after the next hop, "
     "and passes ack 0 back",
     test_forward},
    {NULL, NULL},
};

static int register_msgnet_forward_suites(void)
{
    return lbw_add_backend_suites("msgnet: forwarding", tests);
}

LBW_TEST_SUITES(register_msgnet_forward_suites)
