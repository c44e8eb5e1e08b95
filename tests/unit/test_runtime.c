/* test_runtime.c — the runtime API request parser and relay arguments
 * (daemon/runtime/runtime_server.c) against the byte streams of a real payload talking to
 * the upstream worker (tests/fixtures/streams/0[3-6]_runtime_*) and the
 * frames upstream sent the scheduler for them; the parser's bounds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "frame.h"
#include "rpc.h"
#include "runtime_server.h"
#include "suites.h"

#define MAXB (64u << 20)

/* Parses a whole captured client stream: negotiation, then the request.
 * Every strict prefix must ask for more bytes, never fail or complete. */
static uint8_t *parse_stream(const char *name, struct lbw_rt_req *req, size_t *len)
{
    char rel[160];
    snprintf(rel, sizeof(rel), "streams/%s.c2s.bin", name);
    uint8_t *b = fx_read(rel, len);
    CU_ASSERT_FATAL(b != NULL);
    size_t used = 0;
    int v10 = 0;
    CU_ASSERT(lbw_rt_parse_hello(b, *len, &used, &v10) == 0);
    CU_ASSERT(used == 16 && v10 == 1);
    char err[200];
    for (size_t n = 0; n < *len - used; n++) {
        long need = lbw_rt_parse_request(b + used, n, MAXB, req, err, sizeof(err));
        CU_ASSERT(need > (long)n);
        if (need <= (long)n) {
            fprintf(stderr, "%s: prefix %zu gave %ld (%s)\n", name, n, need, err);
            break;
        }
    }
    CU_ASSERT(lbw_rt_parse_request(b + used, *len - used, MAXB, req, err, sizeof(err)) == 0);
    CU_ASSERT(req->consumed == *len - used);
    return b;
}

/* The body of a captured frame. */
static uint8_t *frame_body(const char *name, size_t *len)
{
    char rel[160];
    snprintf(rel, sizeof(rel), "frames/%s", name);
    size_t n;
    uint8_t *raw = fx_read(rel, &n);
    CU_ASSERT_FATAL(raw != NULL);
    struct lbw_frame_dec d;
    lbw_frame_dec_init(&d, NULL, 0);
    struct lbw_frame f;
    int complete = 0;
    ssize_t used = lbw_frame_dec_feed(&d, raw, n, &f, &complete);
    CU_ASSERT_FATAL(used == (ssize_t)n && complete);
    free(raw);
    uint8_t *body = f.body;
    *len = f.body_len;
    f.body = NULL;
    lbw_frame_free(&f);
    lbw_frame_dec_reset(&d);
    return body;
}

/* What we would send the scheduler for req equals the captured frame's body. */
static void relay_equals_frame(const struct lbw_rt_req *req, const char *cmd, const char *frame)
{
    size_t al;
    char *args = lbw_rt_relay_args(req, &al);
    CU_ASSERT_FATAL(args != NULL);
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_command(&w, cmd, args);
    size_t ml;
    char *mine = lbw_jw_take(&w, &ml);
    size_t fl;
    uint8_t *theirs = frame_body(frame, &fl);
    CU_ASSERT(ml == fl && !memcmp(mine, theirs, fl));
    if (ml != fl || memcmp(mine, theirs, fl))
        fprintf(stderr, "\nmine:   %.*s\ntheirs: %.*s\n", (int)ml, mine, (int)fl, theirs);
    free(args);
    free(mine);
    free(theirs);
}

static void test_tupdateattribs_stream(void)
{
    struct lbw_rt_req q;
    size_t n;
    uint8_t *b = parse_stream("03_runtime_51184_to_10662", &q, &n);
    CU_ASSERT(q.cmd == LBW_RT_TUPDATEATTRIBS && q.task_id == 1 && q.n_delete == 0);
    const char *js = "{\"result\": [1, 2, {\"k\": \"v\"}], \"big\": 1180591620717411303424, "
                     "\"uni\": \"\\u00e9\\u65e5\"}";
    CU_ASSERT(q.data_len == strlen(js) && q.data_len == 84 && !memcmp(q.data, js, 84));
    relay_equals_frame(&q, "tupdateattribs", "tupdateattribs_direct.frame");
    free(b);
}

static void test_spawn_stream(void)
{
    struct lbw_rt_req q;
    size_t n;
    uint8_t *b = parse_stream("04_runtime_51186_to_10662", &q, &n);
    CU_ASSERT(q.cmd == LBW_RT_SPAWN && q.data_len == 335);
    /* the payload's pickle, forwarded unchanged (3.5) */
    CU_ASSERT(q.data[0] == 0x80 && q.data[q.data_len - 1] == '.');
    CU_ASSERT(memmem(q.data, q.data_len, "lifeblood_connection", 20) != NULL);
    CU_ASSERT(memmem(q.data, q.data_len, "child", 5) != NULL);
    size_t al;
    char *args = lbw_rt_relay_args(&q, &al);
    struct lbw_json j;
    char err[160];
    CU_ASSERT_FATAL(lbw_json_parse(&j, args, al, err, sizeof(err)) == 0);
    uint8_t *pk;
    size_t pkl;
    CU_ASSERT(lbw_json_latin1(&j, lbw_json_get(&j, 0, "task"), &pk, &pkl) == 0);
    CU_ASSERT(pkl == q.data_len && !memcmp(pk, q.data, pkl));
    free(pk);
    lbw_json_free(&j);
    free(args);
    free(b);
}

static void test_recvinvmessage_stream(void)
{
    struct lbw_rt_req q;
    size_t n;
    uint8_t *b = parse_stream("05_runtime_51200_to_10662", &q, &n);
    CU_ASSERT(q.cmd == LBW_RT_RECVINVMESSAGE);
    CU_ASSERT(q.addressee_len == 5 && !memcmp(q.addressee, "mybox", 5));
    uint32_t u;
    memcpy(&u, &q.seconds, 4);
    CU_ASSERT(u == 0x4120020c); /* ~10.0005 s: a 20 s timeout in two slices */
    free(b);
}

static void test_sendinvmessage_stream(void)
{
    struct lbw_rt_req q;
    size_t n;
    uint8_t *b = parse_stream("06_runtime_51216_to_10662", &q, &n);
    CU_ASSERT(q.cmd == LBW_RT_SENDINVMESSAGE && q.dst_iid == 1 && q.src_iid == 1);
    CU_ASSERT(q.seconds == 90.0f);
    CU_ASSERT(q.addressee_len == 5 && !memcmp(q.addressee, "mybox", 5));
    CU_ASSERT(q.data_len == 7 && !memcmp(q.data, "\0hello\xff", 7));
    relay_equals_frame(&q, "forward_invocation_message",
                       "forward_invocation_message_direct.frame");
    /* a timeout above 300 s becomes the overall timeout too (a float) */
    q.seconds = 500.0f;
    size_t al;
    char *args = lbw_rt_relay_args(&q, &al);
    CU_ASSERT(strstr(args, "\"addressee_timeout\": 500.0, \"overall_timeout\": 500.0,") != NULL);
    free(args);
    /* no usable timeout: upstream's client default, 90 */
    q.seconds = NAN;
    args = lbw_rt_relay_args(&q, &al);
    CU_ASSERT(strstr(args, "\"addressee_timeout\": 90.0, \"overall_timeout\": 300,") != NULL);
    free(args);
    free(b);
}

/* ---- bounds -------------------------------------------------------------------- */

struct wb {
    uint8_t b[512];
    size_t n;
};

static void put_u64(struct wb *w, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        w->b[w->n++] = (uint8_t)(v >> (i * 8));
}

static void put_s(struct wb *w, const char *s, size_t l)
{
    put_u64(w, l);
    memcpy(w->b + w->n, s, l);
    w->n += l;
}

static long parse(struct wb *w, size_t max, char *err)
{
    struct lbw_rt_req q;
    return lbw_rt_parse_request(w->b, w->n, max, &q, err, 200);
}

static void test_bounds(void)
{
    char err[200];
    struct wb w = {0};
    /* negotiation */
    put_u64(&w, LBW_RT_MAX_VERSIONS + 1);
    size_t used;
    int v10;
    CU_ASSERT(lbw_rt_parse_hello(w.b, w.n, &used, &v10) == -1);
    w.n = 0;
    put_u64(&w, 2);
    uint8_t v[] = {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(w.b + 8, v, sizeof(v));
    CU_ASSERT(lbw_rt_parse_hello(w.b, 16, &used, &v10) == 24);
    CU_ASSERT(lbw_rt_parse_hello(w.b, 24, &used, &v10) == 0 && used == 24 && v10 == 0);
    /* unknown and overlong commands */
    w.n = 0;
    put_s(&w, "selfdestruct", 12);
    CU_ASSERT(parse(&w, MAXB, err) == -1 && strstr(err, "unknown command 'selfdestruct'"));
    w.n = 0;
    put_u64(&w, LBW_RT_MAX_COMMAND + 1);
    CU_ASSERT(parse(&w, MAXB, err) == -1 && strstr(err, "over the limit"));
    /* sizes above the body limit fail before any of the body arrives */
    w.n = 0;
    put_s(&w, "spawn", 5);
    put_u64(&w, 1ull << 62);
    CU_ASSERT(parse(&w, MAXB, err) == -1 && strstr(err, "spawn pickle"));
    w.n = 0;
    put_s(&w, "spawn", 5);
    put_u64(&w, 100);
    CU_ASSERT(parse(&w, 99, err) == -1);
    CU_ASSERT(parse(&w, 100, err) == (long)w.n + 100);
    w.n = 0;
    put_s(&w, "tupdateattribs", 14);
    put_u64(&w, 1);
    put_u64(&w, 2);
    put_u64(&w, LBW_RT_MAX_DELETE + 1);
    CU_ASSERT(parse(&w, MAXB, err) == -1 && strstr(err, "names"));
    w.n = 0;
    put_s(&w, "recvinvmessage", 14);
    put_u64(&w, LBW_RT_MAX_ADDRESSEE + 1);
    CU_ASSERT(parse(&w, MAXB, err) == -1 && strstr(err, "addressee"));
    /* text must be UTF-8 */
    w.n = 0;
    put_s(&w, "recvinvmessage", 14);
    put_s(&w, "\xff\xfe", 2);
    CU_ASSERT(parse(&w, MAXB, err) == -1 && strstr(err, "not UTF-8"));
    w.n = 0;
    put_s(&w, "tupdateattribs", 14);
    put_u64(&w, 1);
    put_u64(&w, 2);
    put_u64(&w, 1);
    memcpy(w.b + w.n, "{}", 2);
    w.n += 2;
    CU_ASSERT(parse(&w, MAXB, err) == (long)w.n + 8);
    put_s(&w, "a\xc0", 2);
    CU_ASSERT(parse(&w, MAXB, err) == -1 && strstr(err, "attribute name"));
    /* names to delete are relayed in order */
    w.n = 0;
    put_s(&w, "tupdateattribs", 14);
    put_u64(&w, 7);
    put_u64(&w, 2);
    put_u64(&w, 2);
    memcpy(w.b + w.n, "{}", 2);
    w.n += 2;
    put_s(&w, "b", 1);
    put_s(&w, "\xc3\xa9", 2);
    struct lbw_rt_req q;
    CU_ASSERT_FATAL(lbw_rt_parse_request(w.b, w.n, MAXB, &q, err, sizeof(err)) == 0);
    size_t al;
    char *args = lbw_rt_relay_args(&q, &al);
    CU_ASSERT(args && !strcmp(args, "{\"task_id\": 7, \"attribs_to_update\": {}, "
                                    "\"attribs_to_delete\": [\"b\", \"\\u00e9\"]}"));
    free(args);
}

/* The scheduler unpickles a payload's spawn pickle: upstream's TaskSpawn
 * shapes pass (and are forwarded unchanged), anything that would run code
 * there is refused with the global's name. */
static void test_spawn_shapes(void)
{
    static const char *const ok[] = {"pickles/taskspawn_runtime.pickle",
                                     "pickles/taskspawn_runtime_envargs.pickle",
                                     "pickles/taskspawn_forwarded.pickle",
                                     "pickles/taskspawn_forwarded_envargs.pickle"};
    char err[256];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n;
        uint8_t *p = fx_read(ok[i], &n);
        CU_ASSERT_FATAL(p != NULL);
        int rc = lbw_rt_check_spawn(p, n, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "%s: %s\n", ok[i], err);
        CU_ASSERT_EQUAL(rc, 0);
        free(p);
    }
#define PK(lit) lit, sizeof(lit) - 1
    static const struct {
        const char *pk;
        size_t n;
        const char *name;
    } bad[] = {
        {PK("\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05\x70\x6f\x73\x69\x78\x94\x8c\x06\x73\x79\x73\x74\x65\x6d\x94\x93\x94\x8c\x04\x74\x72\x75\x65\x94\x85\x94\x52\x94\x2e"), "posix.system"},
        {PK("\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x08\x62\x75\x69\x6c\x74\x69\x6e\x73\x94\x8c\x04\x65\x76\x61\x6c\x94\x93\x94\x8c\x01\x31\x94\x85\x94\x52\x94\x2e"), "builtins.eval"},
        {PK("\x80\x04\x95\x22\x00\x00\x00\x00\x00\x00\x00\x8c\x0a\x73\x75\x62\x70\x72\x6f\x63\x65\x73\x73\x94\x8c\x04\x63\x61\x6c\x6c\x94\x93\x94\x8c\x04\x74\x72\x75\x65\x94\x85\x94\x52\x94\x2e"), "subprocess.call"},
        /* getattr(getattr(getattr, '__self__'), 'eval') */
        {PK("\x80\x04\x95\x36\x00\x00\x00\x00\x00\x00\x00\x8c\x08\x62\x75\x69\x6c\x74\x69\x6e\x73\x94\x8c\x07\x67\x65\x74\x61\x74\x74\x72\x94\x93\x94\x68\x02\x68\x02\x8c\x08\x5f\x5f\x73\x65\x6c\x66\x5f\x5f\x94\x86\x94\x52\x94\x8c\x04\x65\x76\x61\x6c\x94\x86\x94\x52\x94\x2e"), "builtins.getattr"},
    };
#undef PK
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        CU_ASSERT_EQUAL(lbw_rt_check_spawn((const uint8_t *)bad[i].pk, bad[i].n, err,
                                           sizeof(err)),
                        -1);
        if (!strstr(err, bad[i].name))
            fprintf(stderr, "case %zu: %s\n", i, err);
        CU_ASSERT(strstr(err, bad[i].name) != NULL);
    }
}

static const struct lbw_test tests[] = {
    {"spawn: upstream's TaskSpawn shapes pass, code-running globals are refused",
     test_spawn_shapes},
    {"tupdateattribs: captured stream, relayed as upstream's frame", test_tupdateattribs_stream},
    {"spawn: captured stream, pickle forwarded unchanged", test_spawn_stream},
    {"recvinvmessage: captured stream", test_recvinvmessage_stream},
    {"sendinvmessage: captured stream, relayed as upstream's frame", test_sendinvmessage_stream},
    {"bounds: versions, commands, sizes, UTF-8, deletions", test_bounds},
    {NULL, NULL},
};

static int register_runtime_suites(void)
{
    return lbw_add_suite("runtime api", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_runtime_suites)
