/* test_jstream.c — the streamed JSON body of wire/jstream.c equals
 * the one-shot encoding of wire/json.c, in any chunking, on a retry, and
 * when the file grows after its length was taken. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "jstream.h"
#include "suites.h"

static void test_jstream(void)
{
    char path[] = "/tmp/lbw-jstream-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    /* 300 KiB of mixed bytes: crosses the internal chunk sizes */
    size_t n = 300 * 1024;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)((i * 7919u) >> 3);
    CU_ASSERT(write(fd, data, n) == (ssize_t)n);
    struct lbw_jstream *s = lbw_jstream_new();
    CU_ASSERT(lbw_jstream_text(s, "{\"a\": \"", 7) == 0);
    CU_ASSERT(lbw_jstream_file(s, open(path, O_RDONLY)) == 0);
    CU_ASSERT(lbw_jstream_text(s, "\", \"b\": \"", 9) == 0);
    CU_ASSERT(lbw_jstream_file(s, -1) == 0);
    CU_ASSERT(lbw_jstream_text(s, "\"}", 2) == 0);
    uint64_t len;
    CU_ASSERT_FATAL(lbw_jstream_len(s, &len) == 0);
    /* the reference: the whole file through the one-shot writer */
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "a");
    lbw_jw_str(&w, (const char *)data, n);
    lbw_jw_key(&w, "b");
    lbw_jw_str(&w, "", 0);
    lbw_jw_obj_end(&w);
    size_t rl;
    char *ref = lbw_jw_take(&w, &rl);
    CU_ASSERT_FATAL(ref != NULL);
    CU_ASSERT(len == rl);
    /* produce it twice (a retry rewinds), in odd chunk sizes */
    for (int pass = 0; pass < 2; pass++) {
        char *got = malloc(len + 1);
        uint64_t off = 0;
        size_t step = pass ? 4093 : 65536;
        while (off < len) {
            ssize_t r = lbw_jstream_fill(s, off, (uint8_t *)got + off, step);
            if (r <= 0)
                break;
            off += (uint64_t)r;
        }
        CU_ASSERT(off == len && memcmp(got, ref, len) == 0);
        free(got);
    }
    /* the file grows after the length was taken: the body stays the same */
    CU_ASSERT(write(fd, "more", 4) == 4);
    char *got = malloc(len);
    uint64_t off = 0;
    while (off < len) {
        ssize_t r = lbw_jstream_fill(s, off, (uint8_t *)got + off, 100000);
        if (r <= 0)
            break;
        off += (uint64_t)r;
    }
    CU_ASSERT(off == len && memcmp(got, ref, len) == 0);
    free(got);
    free(ref);
    lbw_jstream_free(s);
    close(fd);
    unlink(path);
    free(data);
}

static const struct lbw_test tests[] = {
    {"streamed JSON body equals the one-shot encoding", test_jstream},
    {NULL, NULL},
};

static int register_jstream_suites(void) { return lbw_add_suite("jstream", NULL, NULL, tests); }

LBW_TEST_SUITES(register_jstream_suites)
