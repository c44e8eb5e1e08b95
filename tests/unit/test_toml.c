/* test_toml.c — the TOML reader's bookkeeping for configuration messages:
 * the line each value and table was defined on, and the short
 * descriptions of values that errors quote. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "toml.h"

static struct lbw_toml *parse(const char *t)
{
    char err[300];
    struct lbw_toml *v = lbw_toml_parse(t, strlen(t), err, sizeof(err));
    if (!v)
        fprintf(stderr, "parse: %s\n", err);
    return v;
}

static void test_lines(void)
{
    struct lbw_toml *t = parse("# comment\n"
                               "top = 1\n"
                               "\n"
                               "[worker]\n"
                               "a = \"x\"\n"
                               "b = \"\"\"multi\n"
                               "line\"\"\"\n"
                               "c = [\n"
                               "  1,\n"
                               "  2 ]\n"
                               "d.e = true\n"
                               "[[jobs]]\n"
                               "n = 1\n"
                               "[[jobs]]\n"
                               "n = 2\n"
                               "[x.y]\n"
                               "[x]\n"
                               "z = 0\n");
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "top")->line, 2);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "worker")->line, 4);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "worker.a")->line, 5);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "worker.b")->line, 6);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "worker.c")->line, 8);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "worker.c")->u.arr.v[1]->line, 10);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "worker.d")->line, 11);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "worker.d.e")->line, 11);
    const struct lbw_toml *jobs = lbw_toml_get(t, "jobs");
    CU_ASSERT_FATAL(jobs && jobs->type == LBW_TOML_ARRAY && jobs->u.arr.n == 2);
    CU_ASSERT_EQUAL(jobs->u.arr.v[0]->line, 12);
    CU_ASSERT_EQUAL(jobs->u.arr.v[1]->line, 14);
    /* a table implied by [x.y] and defined later by [x]: the definition */
    CU_ASSERT_EQUAL(lbw_toml_get(t, "x")->line, 17);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "x.y")->line, 16);
    lbw_toml_free(t);
    /* CRLF files count lines the same way */
    t = parse("a = 1\r\n\r\nb = 2\r\n");
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "b")->line, 3);
    lbw_toml_free(t);
}

static void test_describe(void)
{
    struct lbw_toml *t = parse("s = \"false\"\ni = 5\nf = 0.5\nb = true\na = [1, 2]\n"
                               "t = {}\nlong = \"0123456789012345678901234567890123456789xyz\"\n"
                               "ctl = \"a\\u0001b\"\n");
    CU_ASSERT_FATAL(t != NULL);
    char d[120];
    lbw_toml_describe(lbw_toml_get(t, "s"), d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "the string \"false\"");
    lbw_toml_describe(lbw_toml_get(t, "i"), d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "the integer 5");
    lbw_toml_describe(lbw_toml_get(t, "f"), d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "the float 0.5");
    lbw_toml_describe(lbw_toml_get(t, "b"), d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "the boolean true");
    lbw_toml_describe(lbw_toml_get(t, "a"), d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "an array of 2 values");
    lbw_toml_describe(lbw_toml_get(t, "t"), d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "a table");
    lbw_toml_describe(lbw_toml_get(t, "long"), d, sizeof(d));
    CU_ASSERT(strstr(d, "\"...") != NULL && strlen(d) < 60);
    lbw_toml_describe(lbw_toml_get(t, "ctl"), d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "the string \"a?b\"");
    CU_ASSERT_STRING_EQUAL(lbw_toml_type_name(LBW_TOML_BOOL), "a boolean");
    lbw_toml_free(t);
}

static void test_many_keys(void)
{
    /* tables and arrays grow past any initial capacity */
    char *text = malloc(20000);
    CU_ASSERT_FATAL(text != NULL);
    size_t k = 0;
    for (int i = 0; i < 1000; i++)
        k += (size_t)snprintf(text + k, 20000 - k, "k%d = %d\n", i, i);
    k += (size_t)snprintf(text + k, 20000 - k, "a = [");
    for (int i = 0; i < 500; i++)
        k += (size_t)snprintf(text + k, 20000 - k, "%d,", i);
    snprintf(text + k, 20000 - k, "]\n");
    struct lbw_toml *t = parse(text);
    free(text);
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(t->u.tab.n, 1001);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "k999")->u.i, 999);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "k999")->line, 1000);
    CU_ASSERT_EQUAL(lbw_toml_get(t, "a")->u.arr.n, 500);
    for (int i = 0; i < 1000; i += 37) { /* every key is found through the index */
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        CU_ASSERT(lbw_toml_get(t, name) && lbw_toml_get(t, name)->u.i == i);
    }
    CU_ASSERT(lbw_toml_get(t, "k1000") == NULL);
    /* merging a large table into itself replaces key by key, adds none */
    struct lbw_toml *u = parse("k998 = \"x\"\nnew = 1\n");
    CU_ASSERT_FATAL(u != NULL);
    CU_ASSERT(lbw_toml_merge(t, u) == 0);
    CU_ASSERT_EQUAL(t->u.tab.n, 1002);
    CU_ASSERT(lbw_toml_get(t, "k998")->type == LBW_TOML_STRING);
    CU_ASSERT(lbw_toml_get(t, "new") != NULL);
    lbw_toml_free(t);
    /* a duplicate far into a large table is still found */
    char *dup = malloc(20000);
    CU_ASSERT_FATAL(dup != NULL);
    k = 0;
    for (int i = 0; i < 500; i++)
        k += (size_t)snprintf(dup + k, 20000 - k, "k%d = %d\n", i, i);
    snprintf(dup + k, 20000 - k, "k321 = 0\n");
    char err[300];
    CU_ASSERT(lbw_toml_parse(dup, strlen(dup), err, sizeof(err)) == NULL);
    CU_ASSERT(strstr(err, "line 501") && strstr(err, "duplicate key 'k321'"));
    free(dup);
}

static const struct lbw_test tests[] = {
    {"values and tables remember their line", test_lines},
    {"values described for messages", test_describe},
    {"tables and arrays grow; large tables stay indexed", test_many_keys},
    {NULL, NULL},
};

static int register_toml_suites(void) { return lbw_add_suite("toml", NULL, NULL, tests); }

LBW_TEST_SUITES(register_toml_suites)
