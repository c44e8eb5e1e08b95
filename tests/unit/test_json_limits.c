/* test_json_limits.c — hostile JSON: the nesting limit (just under is
 * read, just over is refused with its offset), deep and wide inputs read
 * in work linear in their size (counted, not timed), lookups on wide
 * objects, and the writer at depths beyond one machine word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "suites.h"

/* `depth` openers, a leaf, `depth` closers; objects as {"a": ...}. */
static char *nest(size_t depth, int obj, size_t *len)
{
    size_t ol = obj ? 5 : 1;
    char *s = malloc(depth * (ol + 1) + 2);
    size_t k = 0;
    for (size_t i = 0; i < depth; i++) {
        memcpy(s + k, obj ? "{\"a\":" : "[", ol);
        k += ol;
    }
    s[k++] = '1';
    for (size_t i = 0; i < depth; i++)
        s[k++] = obj ? '}' : ']';
    s[k] = 0;
    *len = k;
    return s;
}

static void test_depth_limit(void)
{
    for (int obj = 0; obj <= 1; obj++) {
        size_t n;
        char err[200] = "";
        struct lbw_json j;
        char *s = nest(LBW_JSON_MAX_DEPTH, obj, &n);
        CU_ASSERT(lbw_json_parse(&j, s, n, err, sizeof(err)) == 0);
        CU_ASSERT(lbw_json_skip(&j, 0) == j.ntok);
        lbw_json_free(&j);
        free(s);
        s = nest(LBW_JSON_MAX_DEPTH + 1, obj, &n);
        CU_ASSERT(lbw_json_parse(&j, s, n, err, sizeof(err)) == -1);
        char want[100];
        snprintf(want, sizeof(want), "JSON nested deeper than %d at offset %d",
                 LBW_JSON_MAX_DEPTH, LBW_JSON_MAX_DEPTH * (obj ? 5 : 1));
        if (strcmp(err, want))
            fprintf(stderr, "got '%s', want '%s'\n", err, want);
        CU_ASSERT_STRING_EQUAL(err, want);
        free(s);
    }
}

/* 100,000 and 1,000,000 levels (200 kB and 2 MB of arrays; 600 kB and
 * 6 MB of objects): refused at the limit, without reading the rest. */
static void test_deep_refused_early(void)
{
    for (int obj = 0; obj <= 1; obj++) {
        for (size_t depth = 100000; depth <= 1000000; depth *= 10) {
            size_t n;
            char *s = nest(depth, obj, &n);
            struct lbw_json j;
            char err[200] = "";
            CU_ASSERT(lbw_json_parse(&j, s, n, err, sizeof(err)) == -1);
            CU_ASSERT(strstr(err, "JSON nested deeper than") != NULL);
            CU_ASSERT(j.work < 8 * LBW_JSON_MAX_DEPTH);
            free(s);
        }
    }
}

/* An array of many nests just under the limit (the worst shape the limit
 * allows): the work is a small multiple of the size, at 200 kB and 2 MB. */
static uint64_t many_nests_work(size_t total, int obj, int *ok)
{
    size_t one;
    char *leaf = nest(LBW_JSON_MAX_DEPTH - 1, obj, &one);
    size_t count = total / (one + 2) + 1;
    char *s = malloc(count * (one + 2) + 4);
    size_t k = 0;
    s[k++] = '[';
    for (size_t i = 0; i < count; i++) {
        if (i)
            s[k++] = ',';
        memcpy(s + k, leaf, one);
        k += one;
    }
    s[k++] = ']';
    struct lbw_json j;
    char err[200];
    *ok = lbw_json_parse(&j, s, k, err, sizeof(err)) == 0 && lbw_json_size(&j, 0) == (int)count &&
          lbw_json_skip(&j, 0) == j.ntok && lbw_json_at(&j, 0, (int)count - 1) > 0;
    uint64_t w = j.work;
    if (*ok)
        lbw_json_free(&j);
    CU_ASSERT(w <= 4 * (uint64_t)k);
    free(s);
    free(leaf);
    return w;
}

static void test_linear_work(void)
{
    for (int obj = 0; obj <= 1; obj++) {
        int ok1, ok2;
        uint64_t w1 = many_nests_work(200000, obj, &ok1);
        uint64_t w2 = many_nests_work(2000000, obj, &ok2);
        CU_ASSERT(ok1 && ok2);
        CU_ASSERT(w2 <= 12 * w1);
    }
}

/* 100,000 members whose values are nested: looking up the last key skips
 * each value in one step. */
static void test_wide_object(void)
{
    size_t count = 100000;
    char *s = malloc(count * 24 + 4);
    size_t k = 0;
    s[k++] = '{';
    for (size_t i = 0; i < count; i++)
        k += (size_t)sprintf(s + k, "%s\"k%zu\": [[[%zu]]]", i ? ", " : "", i, i);
    s[k++] = '}';
    struct lbw_json j;
    char err[200];
    CU_ASSERT_FATAL(lbw_json_parse(&j, s, k, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_json_size(&j, 0) == (int)count);
    int v = lbw_json_get(&j, 0, "k99999");
    CU_ASSERT(lbw_json_type(&j, v) == LBW_JSON_ARRAY);
    CU_ASSERT(lbw_json_get(&j, 0, "missing") == -1);
    int64_t x = -1;
    int in = lbw_json_at(&j, lbw_json_at(&j, v, 0), 0);
    CU_ASSERT(lbw_json_i64(&j, lbw_json_at(&j, in, 0), &x) == 0 && x == 99999);
    lbw_json_free(&j);
    free(s);
}

/* The writer tracks "first element" per level beyond 64 levels (an empty
 * array 64 levels down once hid the comma after it). */
static void test_writer_deep(void)
{
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_arr(&w);
    for (int i = 0; i < 64; i++)
        lbw_jw_arr(&w);
    for (int i = 0; i < 64; i++)
        lbw_jw_arr_end(&w);
    lbw_jw_i64(&w, 1);
    lbw_jw_arr_end(&w);
    size_t l;
    char *o = lbw_jw_take(&w, &l);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(l > 5 && !memcmp(o + l - 5, "], 1]", 5));
    struct lbw_json j;
    char err[200];
    CU_ASSERT(lbw_json_parse(&j, o, l, err, sizeof(err)) == 0);
    lbw_json_free(&j);
    free(o);
}

static void test_grammar_errors_name_offset(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"[1 2]", "malformed JSON text: ',' or ']' expected at offset 3"},
        {"{\"a\": 1,}", "object key is not a string at offset 8"},
        {"[1, 2", "truncated JSON text (',' or ']' expected at the end)"},
        {"{\"a\" 1}", "malformed JSON text: ':' expected at offset 5"},
        {"[1,]", "malformed JSON text: a value expected at offset 3"},
        {"\"abc", "truncated JSON text (a string from offset 0 is not closed)"},
        {"[\"a\x01\"]", "malformed JSON text: control character 0x01 in a string at offset 3"},
        {"[1] x", "extra data after the JSON value at offset 4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lbw_json j;
        char err[200] = "";
        CU_ASSERT(lbw_json_parse(&j, cases[i].in, strlen(cases[i].in), err, sizeof(err)) == -1);
        if (strcmp(err, cases[i].want))
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, err, cases[i].want);
        CU_ASSERT_STRING_EQUAL(err, cases[i].want);
    }
}

static const struct lbw_test tests[] = {
    {"nesting: 512 levels read, 513 refused with the offset", test_depth_limit},
    {"nesting: 200 kB and 2 MB deep input refused early", test_deep_refused_early},
    {"nesting: work is linear in the size", test_linear_work},
    {"wide object: lookups skip values in one step", test_wide_object},
    {"writer: separators right beyond 64 levels", test_writer_deep},
    {"grammar errors say what and where", test_grammar_errors_name_offset},
    {NULL, NULL},
};

static int register_json_limits_suites(void)
{
    return lbw_add_suite("json-limits", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_json_limits_suites)
