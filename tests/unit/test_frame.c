/* test_frame.c — frame codec and addresses against the captured vectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "fixture.h"
#include "frame.h"
#include "suites.h"

/* Decodes exactly one frame from buf, fed in chunks of `step` bytes (0 =
 * all at once). Returns bytes consumed or a negative error. */
static ssize_t decode_one(const uint8_t *buf, size_t len, int preamble, size_t step,
                          struct lbw_frame *f, char *pre, size_t precap)
{
    struct lbw_frame_dec d;
    lbw_frame_dec_init(&d, NULL, preamble);
    size_t off = 0;
    int done = 0;
    while (off < len && !done) {
        size_t n = step ? (len - off < step ? len - off : step) : len - off;
        ssize_t u = lbw_frame_dec_feed(&d, buf + off, n, f, &done);
        if (u < 0) {
            lbw_frame_dec_reset(&d);
            return u;
        }
        off += (size_t)u;
        if (!done && (size_t)u < n)
            return -100; /* stopped early without a frame */
    }
    if (pre)
        snprintf(pre, precap, "%s", lbw_frame_dec_preamble(&d) ? lbw_frame_dec_preamble(&d) : "");
    lbw_frame_dec_reset(&d);
    return done ? (ssize_t)off : -101;
}

static void test_vector_frames(void)
{
    struct lbw_json j;
    char *text;
    CU_ASSERT_FATAL(fx_json("frames/frames.json", &j, &text) == 0);
    int n = lbw_json_size(&j, 0), checked = 0;
    CU_ASSERT_EQUAL(n, 33);
    for (int i = 0; i < n; i++) {
        int e = lbw_json_at(&j, 0, i);
        char *file, *src, *dst, *type, *preamble = NULL, *session = NULL;
        size_t l;
        int with_pre;
        uint64_t size_field, body_len, total;
        CU_ASSERT_FATAL(lbw_json_str(&j, lbw_json_get(&j, e, "file"), &file, &l) == 0);
        lbw_json_str(&j, lbw_json_get(&j, e, "src"), &src, &l);
        lbw_json_str(&j, lbw_json_get(&j, e, "dst"), &dst, &l);
        lbw_json_str(&j, lbw_json_get(&j, e, "type"), &type, &l);
        lbw_json_bool(&j, lbw_json_get(&j, e, "with_preamble"), &with_pre);
        if (with_pre)
            lbw_json_str(&j, lbw_json_get(&j, e, "preamble"), &preamble, &l);
        if (lbw_json_type(&j, lbw_json_get(&j, e, "session")) == LBW_JSON_STRING)
            lbw_json_str(&j, lbw_json_get(&j, e, "session"), &session, &l);
        lbw_json_u64(&j, lbw_json_get(&j, e, "size_field"), &size_field);
        lbw_json_u64(&j, lbw_json_get(&j, e, "body_len"), &body_len);
        lbw_json_u64(&j, lbw_json_get(&j, e, "len"), &total);

        char rel[256];
        snprintf(rel, sizeof(rel), "frames/%s", file);
        size_t len;
        uint8_t *buf = fx_read(rel, &len);
        CU_ASSERT_FATAL(buf != NULL);
        CU_ASSERT_EQUAL(len, total);
        /* Whole, and split at every byte boundary for the small ones. */
        size_t steps[] = {0, 1, 7, 4096};
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            struct lbw_frame f;
            char pre[300];
            ssize_t used = decode_one(buf, len, with_pre, steps[s], &f, pre, sizeof(pre));
            CU_ASSERT_EQUAL(used, (ssize_t)len);
            if (used != (ssize_t)len) {
                fprintf(stderr, "%s: decode %zd\n", file, used);
                continue;
            }
            if (with_pre)
                CU_ASSERT_STRING_EQUAL(pre, preamble);
            CU_ASSERT_STRING_EQUAL(f.src, src);
            CU_ASSERT_STRING_EQUAL(f.dst, dst);
            CU_ASSERT_EQUAL(f.type, !strcmp(type, "DEFAULT") ? LBW_MSG_DEFAULT : LBW_MSG_SYSTEM_PING);
            CU_ASSERT_EQUAL(f.body_len, body_len);
            CU_ASSERT_EQUAL(f.has_session, session != NULL);
            if (session) {
                uint8_t u[16];
                CU_ASSERT(fx_uuid(session, u) == 0 && memcmp(u, f.session, 16) == 0);
            }
            /* Re-encode byte-identically (preamble included). */
            size_t elen;
            uint8_t *enc = lbw_frame_encode(&f, &elen);
            size_t plen = with_pre ? 8 + strlen(preamble) : 0;
            CU_ASSERT(enc && plen + elen == len && memcmp(enc, buf + plen, elen) == 0);
            if (with_pre) {
                uint8_t pb[300];
                CU_ASSERT(lbw_preamble_write(pb, preamble, strlen(preamble)) == plen &&
                          memcmp(pb, buf, plen) == 0);
            }
            CU_ASSERT_EQUAL(elen - 8, size_field);
            free(enc);
            lbw_frame_free(&f);
        }
        if (len <= 1000) {
            for (size_t cut = 1; cut < len; cut++) {
                struct lbw_frame_dec d;
                lbw_frame_dec_init(&d, NULL, with_pre);
                struct lbw_frame f;
                int done = 0;
                ssize_t a = lbw_frame_dec_feed(&d, buf, cut, &f, &done);
                CU_ASSERT(a == (ssize_t)cut && !done);
                ssize_t b = lbw_frame_dec_feed(&d, buf + cut, len - cut, &f, &done);
                CU_ASSERT(b == (ssize_t)(len - cut) && done);
                if (done) {
                    CU_ASSERT_EQUAL(f.body_len, body_len);
                    lbw_frame_free(&f);
                }
                lbw_frame_dec_reset(&d);
            }
        }
        checked++;
        free(buf);
        free(file);
        free(src);
        free(dst);
        free(type);
        free(preamble);
        free(session);
    }
    CU_ASSERT_EQUAL(checked, 33);
    lbw_json_free(&j);
    free(text);
}

/* Every message connection of the capture: all frames decode in order at
 * the offsets the index lists, and re-encode to the same stream. */
static void test_vector_streams(void)
{
    struct lbw_json j;
    char *text;
    CU_ASSERT_FATAL(fx_json("streams/index.json", &j, &text) == 0);
    int conns = 0, frames = 0;
    for (int i = 0; i < lbw_json_size(&j, 0); i++) {
        int e = lbw_json_at(&j, 0, i);
        if (!lbw_json_str_eq(&j, lbw_json_get(&j, e, "kind"), "message"))
            continue;
        char *file, *pre;
        size_t l;
        lbw_json_str(&j, lbw_json_get(&j, e, "file"), &file, &l);
        lbw_json_str(&j, lbw_json_get(&j, e, "preamble"), &pre, &l);
        char rel[256];
        snprintf(rel, sizeof(rel), "streams/%s.c2s.bin", file);
        size_t len;
        uint8_t *buf = fx_read(rel, &len);
        CU_ASSERT_FATAL(buf != NULL);
        int msgs = lbw_json_get(&j, e, "messages");
        struct lbw_frame_dec d;
        lbw_frame_dec_init(&d, NULL, 1);
        uint8_t *re = malloc(len);
        size_t relen = lbw_preamble_write(re, pre, strlen(pre));
        size_t off = 0;
        int k = 0;
        /* Feed in 13-byte chunks to cross every kind of boundary. */
        while (off < len) {
            size_t n = len - off < 13 ? len - off : 13;
            struct lbw_frame f;
            int done;
            ssize_t u = lbw_frame_dec_feed(&d, buf + off, n, &f, &done);
            CU_ASSERT_FATAL(u >= 0);
            off += (size_t)u;
            if (!done)
                continue;
            int m = lbw_json_at(&j, msgs, k++);
            uint64_t end;
            lbw_json_u64(&j, lbw_json_get(&j, m, "end"), &end);
            CU_ASSERT_EQUAL(off, end);
            CU_ASSERT(lbw_json_str_eq(&j, lbw_json_get(&j, m, "src"), f.src));
            CU_ASSERT(lbw_json_str_eq(&j, lbw_json_get(&j, m, "dst"), f.dst));
            size_t el;
            uint8_t *enc = lbw_frame_encode(&f, &el);
            CU_ASSERT_FATAL(enc && relen + el <= len);
            memcpy(re + relen, enc, el);
            relen += el;
            free(enc);
            lbw_frame_free(&f);
            frames++;
        }
        CU_ASSERT_EQUAL(k, lbw_json_size(&j, msgs));
        CU_ASSERT(relen == len && memcmp(re, buf, len) == 0);
        CU_ASSERT(!lbw_frame_dec_midframe(&d));
        lbw_frame_dec_reset(&d);
        conns++;
        free(re);
        free(buf);
        free(file);
        free(pre);
    }
    CU_ASSERT(conns >= 8);
    CU_ASSERT(frames >= 40);
    lbw_json_free(&j);
    free(text);
}

static void forward_case(const char *in_file, const char *out_file, const char *self)
{
    size_t il, ol;
    uint8_t *in = fx_read(in_file, &il), *out = fx_read(out_file, &ol);
    CU_ASSERT_FATAL(in && out);
    struct lbw_frame f;
    /* Each starts a connection: skip preambles where present. */
    struct lbw_frame_dec d;
    uint64_t pl = 0;
    for (int i = 0; i < 8; i++)
        pl = pl << 8 | in[i];
    int in_pre = pl > 0 && pl < 64;
    lbw_frame_dec_init(&d, NULL, in_pre);
    int done = 0;
    CU_ASSERT_FATAL(lbw_frame_dec_feed(&d, in, il, &f, &done) == (ssize_t)il && done);
    CU_ASSERT(lbw_frame_forward(&f, self, strlen(self)) == 0);
    size_t el;
    uint8_t *enc = lbw_frame_encode(&f, &el);
    uint64_t opl = 0;
    for (int i = 0; i < 8; i++)
        opl = opl << 8 | out[i];
    size_t skip = (opl > 0 && opl < 64) ? 8 + (size_t)opl : 0;
    CU_ASSERT(el == ol - skip && memcmp(enc, out + skip, el) == 0);
    free(enc);
    lbw_frame_free(&f);
    free(in);
    free(out);
}

static void test_forwarding(void)
{
    forward_case("frames/pool_worker_hello_to_proxy.frame",
                 "frames/pool_proxy_hello_to_scheduler.frame", "127.0.0.1:22183");
    forward_case("frames/pool_scheduler_hello_reply_to_proxy.frame",
                 "frames/pool_proxy_hello_reply_to_worker.frame", "127.0.0.1:22183");
    forward_case("frames/pool_task_scheduler_to_proxy.frame",
                 "frames/pool_task_proxy_to_worker.frame", "127.0.0.1:22183");
    /* Not ours to forward: wrong first hop, or a single hop. */
    struct lbw_frame f = {0};
    char a[] = "127.0.0.1:1\0" "127.0.0.1:2|127.0.0.1:3";
    f.src = malloc(sizeof(a));
    memcpy(f.src, a, sizeof(a));
    f.src_len = 11;
    f.dst = f.src + 12;
    f.dst_len = strlen(f.dst);
    CU_ASSERT(lbw_frame_forward(&f, "127.0.0.1:9", 11) == -1);
    CU_ASSERT(lbw_frame_forward(&f, "127.0.0.1:2", 11) == 0);
    CU_ASSERT_STRING_EQUAL(f.src, "127.0.0.1:2|127.0.0.1:1");
    CU_ASSERT_STRING_EQUAL(f.dst, "127.0.0.1:3");
    CU_ASSERT(lbw_frame_forward(&f, "127.0.0.1:3", 11) == -1);
    lbw_frame_free(&f);
}

static ssize_t feed_hdr(uint64_t size, uint64_t sl, uint64_t dl, int sess, uint16_t type,
                        const char *rest, size_t restlen, int *done)
{
    uint8_t b[256];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(size >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(sl >> (56 - 8 * i));
        b[16 + i] = (uint8_t)(dl >> (56 - 8 * i));
    }
    b[24] = (uint8_t)sess;
    b[25] = (uint8_t)(type >> 8);
    b[26] = (uint8_t)type;
    memcpy(b + 27, rest, restlen);
    struct lbw_frame_dec d;
    struct lbw_frame_limits lim = {.max_frame = 1 << 20};
    lbw_frame_dec_init(&d, &lim, 0);
    struct lbw_frame f;
    ssize_t r = lbw_frame_dec_feed(&d, b, 27 + restlen, &f, done);
    if (*done)
        lbw_frame_free(&f);
    lbw_frame_dec_reset(&d);
    return r;
}

static void test_malformed(void)
{
    int done;
    /* well-formed control: ping a:1 -> b:2 */
    CU_ASSERT(feed_hdr(19 + 6, 3, 3, 0, 1, "a:1b:2", 6, &done) == 33 && done);
    CU_ASSERT(feed_hdr(2u << 20, 3, 3, 0, 0, "", 0, &done) == LBW_FE_TOO_BIG);
    CU_ASSERT(feed_hdr(UINT64_MAX, 3, 3, 0, 0, "", 0, &done) == LBW_FE_TOO_BIG);
    CU_ASSERT(feed_hdr(10, 3, 3, 0, 0, "", 0, &done) == LBW_FE_SIZE);
    CU_ASSERT(feed_hdr(19 + 6, 3, 3, 1, 0, "", 0, &done) == LBW_FE_SIZE); /* no room for session */
    CU_ASSERT(feed_hdr(1000, UINT64_MAX - 5, 10, 0, 0, "", 0, &done) == LBW_FE_ADDR_LEN);
    CU_ASSERT(feed_hdr(1000, 5000, 10, 0, 0, "", 0, &done) == LBW_FE_ADDR_LEN);
    CU_ASSERT(feed_hdr(19 + 6, 3, 3, 0, 0x0202, "a:1b:2", 6, &done) == LBW_FE_TYPE);
    CU_ASSERT(feed_hdr(19 + 6, 3, 3, 0, 0, "\xff:1b:2", 6, &done) == LBW_FE_ADDR);
    CU_ASSERT(feed_hdr(19 + 6, 3, 3, 0, 0, "a|1b:2", 6, &done) == LBW_FE_ADDR);
    CU_ASSERT(feed_hdr(19 + 6, 3, 3, 0, 0, "a:1b:x", 6, &done) == LBW_FE_ADDR);
    /* truncated header: consumed, no frame, mid-frame */
    struct lbw_frame_dec d;
    lbw_frame_dec_init(&d, NULL, 0);
    struct lbw_frame f;
    uint8_t z[10] = {0};
    CU_ASSERT(lbw_frame_dec_feed(&d, z, 10, &f, &done) == 10 && !done);
    CU_ASSERT(lbw_frame_dec_midframe(&d));
    lbw_frame_dec_reset(&d);
    /* preambles */
    uint8_t p1[] = {0, 0, 0, 0, 0, 0, 0, 5, 'a', '|', 'b', ':', '1'};
    lbw_frame_dec_init(&d, NULL, 1);
    CU_ASSERT(lbw_frame_dec_feed(&d, p1, sizeof(p1), &f, &done) == LBW_FE_PREAMBLE);
    uint8_t p2[] = {0, 0, 0, 0, 0, 0, 0, 0};
    lbw_frame_dec_init(&d, NULL, 1);
    CU_ASSERT(lbw_frame_dec_feed(&d, p2, sizeof(p2), &f, &done) == LBW_FE_PREAMBLE);
    uint8_t p3[] = {0xff, 0, 0, 0, 0, 0, 0, 1};
    lbw_frame_dec_init(&d, NULL, 1);
    CU_ASSERT(lbw_frame_dec_feed(&d, p3, sizeof(p3), &f, &done) == LBW_FE_PREAMBLE);
    CU_ASSERT(strstr(lbw_frame_strerror(LBW_FE_TOO_BIG), "maximum") != NULL);
}

static void test_addresses(void)
{
    CU_ASSERT(lbw_addr_is_direct("127.0.0.1:6969", 14));
    CU_ASSERT(lbw_addr_is_direct("render-01.studio:1386", 21));
    CU_ASSERT(!lbw_addr_is_direct("127.0.0.1", 9));
    CU_ASSERT(!lbw_addr_is_direct(":80", 3));
    CU_ASSERT(!lbw_addr_is_direct("::1:80", 6));
    CU_ASSERT(!lbw_addr_is_direct("a:65536", 7));
    CU_ASSERT(!lbw_addr_is_direct("a:", 2));
    CU_ASSERT(lbw_chain_is_valid("", 0));
    CU_ASSERT(lbw_chain_is_valid(" a:1|b:2 ", 9));
    CU_ASSERT(!lbw_chain_is_valid("a:1||b:2", 8));
    CU_ASSERT(!lbw_chain_is_valid("a:1|", 4));
    CU_ASSERT_EQUAL(lbw_chain_hops("a:1|b:2|c:3", 11), 3);
    CU_ASSERT_EQUAL(lbw_chain_first_len("a:1|b:2", 7), 3);
    char host[64];
    uint16_t port;
    CU_ASSERT(lbw_addr_split("10.1.2.3:1386", 13, host, sizeof(host), &port) == 0);
    CU_ASSERT(!strcmp(host, "10.1.2.3") && port == 1386);
    size_t l;
    char *j = lbw_chain_join("p:1", 3, "s:2", 3, &l);
    CU_ASSERT(j && !strcmp(j, "p:1|s:2") && l == 7);
    free(j);
}

static const struct lbw_test tests[] = {
    {"captured frames decode, split anywhere, re-encode", test_vector_frames},
    {"captured streams decode and re-encode", test_vector_streams},
    {"forwarding rewrite matches the pool capture", test_forwarding},
    {"malformed frames get defined errors", test_malformed},
    {"addresses and chains", test_addresses},
    {NULL, NULL},
};

static int register_frame_suites(void) { return lbw_add_suite("frame", NULL, NULL, tests); }

LBW_TEST_SUITES(register_frame_suites)
