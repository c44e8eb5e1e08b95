/* test_json.c — JSON reading (captured bodies, escapes, Latin-1 bytes,
 * Python extensions, malformed text) and writing (Python json.dumps
 * output, repr floats, U+FFFD replacement, streaming escaper). */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "frame.h"
#include "json.h"
#include "suites.h"

static int parse(struct lbw_json *j, const char *s)
{
    char err[200];
    return lbw_json_parse(j, s, strlen(s), err, sizeof(err));
}

/* Body of a captured frame (no preamble handling needed for these). */
static char *frame_body(const char *file, size_t *len)
{
    size_t n;
    uint8_t *b = fx_read(file, &n);
    if (!b)
        return NULL;
    uint64_t pl = 0;
    for (int i = 0; i < 8; i++)
        pl = pl << 8 | b[i];
    int pre = pl > 0 && pl < 64;
    struct lbw_frame_dec d;
    lbw_frame_dec_init(&d, NULL, pre);
    struct lbw_frame f;
    int done = 0;
    lbw_frame_dec_feed(&d, b, n, &f, &done);
    free(b);
    if (!done)
        return NULL;
    char *body = malloc(f.body_len + 1);
    memcpy(body, f.body, f.body_len);
    body[f.body_len] = 0;
    *len = f.body_len;
    lbw_frame_free(&f);
    return body;
}

static void test_captured_bodies(void)
{
    size_t bl, pl;
    char *body = frame_body("frames/worker_hello_direct.frame", &bl);
    CU_ASSERT_FATAL(body != NULL);
    struct lbw_json j;
    char err[200];
    CU_ASSERT_FATAL(lbw_json_parse(&j, body, bl, err, sizeof(err)) == 0);
    int cmd = lbw_json_get(&j, 0, "command");
    CU_ASSERT(lbw_json_str_eq(&j, lbw_json_get(&j, cmd, "name"), "worker.hello"));
    int args = lbw_json_get(&j, cmd, "arguments");
    CU_ASSERT(lbw_json_str_eq(&j, lbw_json_get(&j, args, "worker_addr"), "127.0.0.1:6969"));
    int64_t wt = -1;
    CU_ASSERT(lbw_json_i64(&j, lbw_json_get(&j, args, "worker_type"), &wt) == 0 && wt == 0);
    uint8_t *res;
    size_t rl;
    CU_ASSERT_FATAL(lbw_json_latin1(&j, lbw_json_get(&j, args, "worker_res"), &res, &rl) == 0);
    uint8_t *pk = fx_read("pickles/capture_workerresources.pickle", &pl);
    CU_ASSERT(pk && rl == 219 && pl == 219 && memcmp(res, pk, pl) == 0);
    free(res);
    free(pk);
    lbw_json_free(&j);
    free(body);

    body = frame_body("frames/forward_invocation_message_direct.frame", &bl);
    CU_ASSERT_FATAL(lbw_json_parse(&j, body, bl, err, sizeof(err)) == 0);
    args = lbw_json_get(&j, lbw_json_get(&j, 0, "command"), "arguments");
    CU_ASSERT_FATAL(lbw_json_latin1(&j, lbw_json_get(&j, args, "message_data_raw"), &res, &rl) == 0);
    CU_ASSERT(rl == 7 && !memcmp(res, "\x00hello\xff", 7));
    free(res);
    double d;
    CU_ASSERT(lbw_json_double(&j, lbw_json_get(&j, args, "addressee_timeout"), &d) == 0 && d == 90.0);
    lbw_json_free(&j);
    free(body);

    body = frame_body("frames/worker_hello_reply_direct.frame", &bl);
    CU_ASSERT_FATAL(lbw_json_parse(&j, body, bl, err, sizeof(err)) == 0);
    uint64_t uid;
    CU_ASSERT(lbw_json_u64(&j, lbw_json_get(&j, 0, "db_uid"), &uid) == 0 &&
              uid == 3120782536696014165ull);
    lbw_json_free(&j);
    free(body);

    body = frame_body("frames/tupdateattribs_direct.frame", &bl);
    CU_ASSERT_FATAL(lbw_json_parse(&j, body, bl, err, sizeof(err)) == 0);
    args = lbw_json_get(&j, lbw_json_get(&j, 0, "command"), "arguments");
    int up = lbw_json_get(&j, args, "attribs_to_update");
    size_t tl;
    const char *big = lbw_json_raw(&j, lbw_json_get(&j, up, "big"), &tl);
    CU_ASSERT(tl == 22 && !memcmp(big, "1180591620717411303424", 22)); /* 2^70 kept as text */
    int64_t tooBig;
    CU_ASSERT(lbw_json_i64(&j, lbw_json_get(&j, up, "big"), &tooBig) == -1);
    char *uni;
    size_t ul;
    CU_ASSERT(lbw_json_str(&j, lbw_json_get(&j, up, "uni"), &uni, &ul) == 0);
    CU_ASSERT(ul == 5 && !memcmp(uni, "\xc3\xa9\xe6\x97\xa5", 5));
    free(uni);
    lbw_json_free(&j);
    free(body);

    /* Our writer reproduces upstream's reply bodies byte for byte. */
    body = frame_body("frames/scheduler_ping_reply_direct.frame", &bl);
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "ps");
    lbw_jw_i64(&w, 1);
    lbw_jw_key(&w, "pv");
    lbw_jw_i64(&w, 50);
    lbw_jw_obj_end(&w);
    size_t wl;
    char *out = lbw_jw_take(&w, &wl);
    CU_ASSERT(wl == bl && !memcmp(out, body, bl));
    free(out);
    free(body);
}

static void test_escapes(void)
{
    struct lbw_json j;
    char *s;
    size_t l;
    CU_ASSERT_FATAL(parse(&j, "[\"\\ud83c\\udfac\", \"\\ud800x\", \"a\\u00e9\\n\\t\\\"\\\\\\/\", "
                              "\"\\u0000\", \"\\udc00\\ud800\"]") == 0);
    CU_ASSERT(lbw_json_str(&j, lbw_json_at(&j, 0, 0), &s, &l) == 0 && l == 4 &&
              !memcmp(s, "\xf0\x9f\x8e\xac", 4));
    free(s);
    /* lone surrogate: kept as its surrogatepass bytes */
    CU_ASSERT(lbw_json_str(&j, lbw_json_at(&j, 0, 1), &s, &l) == 0 && l == 4 &&
              !memcmp(s, "\xed\xa0\x80x", 4));
    free(s);
    CU_ASSERT(lbw_json_str(&j, lbw_json_at(&j, 0, 2), &s, &l) == 0 &&
              !strcmp(s, "a\xc3\xa9\n\t\"\\/"));
    free(s);
    CU_ASSERT(lbw_json_str(&j, lbw_json_at(&j, 0, 3), &s, &l) == 0 && l == 1 && s[0] == 0);
    free(s);
    CU_ASSERT(lbw_json_str(&j, lbw_json_at(&j, 0, 4), &s, &l) == 0 && l == 6 &&
              !memcmp(s, "\xed\xb0\x80\xed\xa0\x80", 6));
    free(s);
    uint8_t *b;
    CU_ASSERT(lbw_json_latin1(&j, lbw_json_at(&j, 0, 0), &b, &l) == -1); /* > U+00FF */
    lbw_json_free(&j);
    CU_ASSERT(parse(&j, "{\"k\\u0065y\": 1}") == 0);
    CU_ASSERT(lbw_json_get(&j, 0, "key") == 2);
    lbw_json_free(&j);
}

static void test_numbers_literals(void)
{
    struct lbw_json j;
    CU_ASSERT_FATAL(parse(&j, "[NaN, Infinity, -Infinity, -0, 1.5e3, 18446744073709551615, "
                              "-9223372036854775808, true, false, null]") == 0);
    double d;
    CU_ASSERT(lbw_json_double(&j, lbw_json_at(&j, 0, 0), &d) == 0 && isnan(d));
    CU_ASSERT(lbw_json_double(&j, lbw_json_at(&j, 0, 1), &d) == 0 && isinf(d) && d > 0);
    CU_ASSERT(lbw_json_double(&j, lbw_json_at(&j, 0, 2), &d) == 0 && isinf(d) && d < 0);
    CU_ASSERT(lbw_json_double(&j, lbw_json_at(&j, 0, 4), &d) == 0 && d == 1500.0);
    uint64_t u;
    int64_t i;
    CU_ASSERT(lbw_json_u64(&j, lbw_json_at(&j, 0, 5), &u) == 0 && u == UINT64_MAX);
    CU_ASSERT(lbw_json_i64(&j, lbw_json_at(&j, 0, 5), &i) == -1);
    CU_ASSERT(lbw_json_i64(&j, lbw_json_at(&j, 0, 6), &i) == 0 && i == INT64_MIN);
    CU_ASSERT(lbw_json_i64(&j, lbw_json_at(&j, 0, 4), &i) == -1);
    int bv;
    CU_ASSERT(lbw_json_bool(&j, lbw_json_at(&j, 0, 7), &bv) == 0 && bv == 1);
    CU_ASSERT(lbw_json_type(&j, lbw_json_at(&j, 0, 9)) == LBW_JSON_NULL);
    CU_ASSERT(lbw_json_at(&j, 0, 10) == -1);
    lbw_json_free(&j);
}

static void test_malformed(void)
{
    static const char *bad[] = {
        "", "   ", "{", "[1, 2", "{\"a\" 1}", "{1: 2}", "[tru]", "[01]", "[1.]", "[.5]",
        "[1e]", "[-]", "[\"a\\x\"]", "[\"\\u12\"]", "{} {}", "[1] x", "\"a\nb\"", "nul",
        "[\"\xff\"]", "[+1]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lbw_json j;
        char err[200] = "";
        int rc = lbw_json_parse(&j, bad[i], strlen(bad[i]), err, sizeof(err));
        if (rc == 0) {
            /* strings are checked when read */
            char *s;
            size_t l;
            int t = lbw_json_type(&j, 0) == LBW_JSON_ARRAY ? lbw_json_at(&j, 0, 0) : 0;
            rc = lbw_json_str(&j, t, &s, &l);
            if (rc == 0)
                free(s);
            lbw_json_free(&j);
        }
        if (rc == 0)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CU_ASSERT(rc == -1);
    }
}

static char *w_str(const char *s, size_t n)
{
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_str(&w, s, n);
    size_t l;
    return lbw_jw_take(&w, &l);
}

static void test_writer(void)
{
    struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"q\"b\\s/\n\r\t\b\f\x01\x7f", 13, "\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u007f\""},
        {"\xe6\x97\xa5", 3, "\"\\u65e5\""},
        {"\xf0\x9f\x8e\xac", 4, "\"\\ud83c\\udfac\""},
        {"a\xff" "b", 3, "\"a\\ufffdb\""},
        {"\xe6\x97", 2, "\"\\ufffd\""},            /* truncated: one replacement */
        {"\xe6\x97x", 3, "\"\\ufffdx\""},
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""}, /* surrogate bytes: 3 */
        {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},     /* overlong */
        {"\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
        {"\0", 1, "\"\\u0000\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *o = w_str(cases[i].in, cases[i].n);
        if (strcmp(o, cases[i].out))
            fprintf(stderr, "case %zu: got %s want %s\n", i, o, cases[i].out);
        CU_ASSERT_STRING_EQUAL(o, cases[i].out);
        free(o);
    }
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "a");
    lbw_jw_arr(&w);
    lbw_jw_i64(&w, -1);
    lbw_jw_u64(&w, 18446744073709551615ull);
    lbw_jw_null(&w);
    lbw_jw_bool(&w, 0);
    lbw_jw_obj(&w);
    lbw_jw_obj_end(&w);
    lbw_jw_arr_end(&w);
    lbw_jw_key(&w, "b");
    lbw_jw_latin1(&w, (const uint8_t *)"\x00hi\xff", 4);
    lbw_jw_key(&w, "c");
    lbw_jw_raw(&w, "{\"x\": 1}", 8);
    lbw_jw_obj_end(&w);
    size_t l;
    char *o = lbw_jw_take(&w, &l);
    CU_ASSERT_STRING_EQUAL(o, "{\"a\": [-1, 18446744073709551615, null, false, {}], "
                              "\"b\": \"\\u0000hi\\u00ff\", \"c\": {\"x\": 1}}");
    free(o);
}

static void test_float_repr(void)
{
    struct {
        double v;
        const char *repr;
    } c[] = {
        {0.25, "0.25"}, {10.0, "10.0"}, {23.976, "23.976"}, {1e16, "1e+16"},
        {1e15, "1000000000000000.0"}, {1e-5, "1e-05"}, {0.0001, "0.0001"},
        {15.09822940826416, "15.09822940826416"}, {12.345, "12.345"}, {-9.5e-07, "-9.5e-07"},
        {1.5e300, "1.5e+300"}, {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"},
        {-0.0, "-0.0"}, {2.5, "2.5"}, {123456789012345678.0, "1.2345678901234568e+17"},
        {NAN, "NaN"}, {INFINITY, "Infinity"}, {-INFINITY, "-Infinity"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char b[64];
        lbw_json_fmt_double(c[i].v, b, sizeof(b));
        if (strcmp(b, c[i].repr))
            fprintf(stderr, "repr: got %s want %s\n", b, c[i].repr);
        CU_ASSERT_STRING_EQUAL(b, c[i].repr);
    }
}

static void test_stream_escaper(void)
{
    /* Random bytes with many multi-byte and broken sequences: escaping in
     * chunks of every size from 1 to 9 equals escaping in one go. */
    size_t n = 20000;
    uint8_t *in = malloc(n);
    uint64_t s = 88172645463325252ull;
    static const uint8_t pieces[][4] = {{0xe6, 0x97, 0xa5}, {0xf0, 0x9f, 0x8e, 0xac}, {0xc3, 0xa9},
                                        {0xed, 0xa0, 0x80}, {0xff}, {'\n'}, {'"'}};
    static const size_t plen[] = {3, 4, 2, 3, 1, 1, 1};
    for (size_t i = 0; i < n;) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t k = s % 10;
        if (k < 7 && i + plen[k] <= n) {
            memcpy(in + i, pieces[k], plen[k]);
            i += plen[k];
        } else {
            in[i++] = (uint8_t)(s >> 40);
        }
    }
    char *whole = w_str((const char *)in, n);
    size_t wl = strlen(whole) - 2;
    char *buf = malloc(LBW_JESC_OUT_MAX(n));
    for (size_t chunk = 1; chunk <= 9; chunk++) {
        struct lbw_jesc e = {0};
        size_t o = 0;
        for (size_t i = 0; i < n; i += chunk) {
            size_t k = n - i < chunk ? n - i : chunk;
            o += lbw_jesc_feed(&e, in + i, k, i + k == n, buf + o);
        }
        CU_ASSERT(o == wl && !memcmp(buf, whole + 1, wl));
    }
    /* length pass over a file equals the escaped length */
    char path[] = "/tmp/lbw-jesc-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    CU_ASSERT(write(fd, in, n) == (ssize_t)n);
    uint64_t fl = 0;
    CU_ASSERT(lbw_jesc_fd_len(fd, &fl) == 0 && fl == wl);
    close(fd);
    /* the stream ends inside a sequence */
    struct lbw_jesc e = {0};
    size_t o = lbw_jesc_feed(&e, (const uint8_t *)"ab\xe6\x97", 4, 0, buf);
    CU_ASSERT(o == 2);
    o += lbw_jesc_feed(&e, NULL, 0, 1, buf + o);
    buf[o] = 0;
    CU_ASSERT_STRING_EQUAL(buf, "ab\\ufffd");
    free(buf);
    free(whole);
    free(in);
}

static const struct lbw_test tests[] = {
    {"captured bodies: Latin-1 pickles, big ints, replies", test_captured_bodies},
    {"string escapes and surrogates", test_escapes},
    {"numbers and Python literals", test_numbers_literals},
    {"malformed text is rejected", test_malformed},
    {"writer output is json.dumps output", test_writer},
    {"floats are Python repr", test_float_repr},
    {"streaming escaper equals one-shot", test_stream_escaper},
    {NULL, NULL},
};

static int register_json_suites(void) { return lbw_add_suite("json", NULL, NULL, tests); }

LBW_TEST_SUITES(register_json_suites)
