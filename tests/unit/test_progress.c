/* test_progress.c — progress regexes with Python re semantics and
 * upstream's group rules; Python float() parsing. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "progress.h"
#include "suites.h"

static struct lbw_progress_re *rx(const char *p, int is_bytes, int flags)
{
    char err[200];
    struct lbw_progress_re *re = lbw_progress_compile(p, strlen(p), is_bytes, flags, err, sizeof(err));
    CU_ASSERT_FATAL(re != NULL);
    return re;
}

static int line(struct lbw_progress_re *re, const char *l, double *v)
{
    return lbw_progress_line(re, (const uint8_t *)l, strlen(l), v);
}

static void test_styles(void)
{
    double v = -1;
    /* upstream's default stdout regex (bytes, flags 0) */
    struct lbw_progress_re *re = rx("ALF_PROGRESS\\s+(\\d+)%", 1, 0);
    CU_ASSERT(line(re, "ALF_PROGRESS 10%\n", &v) == 1 && v == 10);
    CU_ASSERT(line(re, "ALF_PROGRESS  75% and more\n", &v) == 1 && v == 75);
    CU_ASSERT(line(re, " ALF_PROGRESS 10%\n", &v) == 0); /* re.match: anchored */
    CU_ASSERT(line(re, "alf_progress 10%\n", &v) == 0);
    lbw_progress_free(re);
    re = rx("alf_progress\\s+(\\d+)%", 1, 2); /* re.I */
    CU_ASSERT(line(re, "ALF_PROGRESS 5%\n", &v) == 1 && v == 5);
    lbw_progress_free(re);
    /* the full job's named-group regex */
    re = rx("^\\s*(?P<current>\\d+)\\s*/\\s*(?P<total>\\d+)", 1, 0);
    CU_ASSERT(line(re, "  3 / 12 frames\n", &v) == 1 && v == 25);
    CU_ASSERT(line(re, "3/0\n", &v) == 0); /* division by zero: unchanged */
    lbw_progress_free(re);
    /* two unnamed groups */
    re = rx("PROGRESS: (\\d+) of (\\d+)", 1, 0);
    CU_ASSERT(line(re, "PROGRESS: 1 of 4\n", &v) == 1 && v == 25);
    lbw_progress_free(re);
    /* floats in the group */
    re = rx("([\\d.]+)%", 0, 32);
    CU_ASSERT(line(re, "12.5%\n", &v) == 1 && v == 12.5);
    CU_ASSERT(line(re, "1.2.3%\n", &v) == 0); /* not a number: unchanged, regex stays on */
    CU_ASSERT(lbw_progress_active(re));
    lbw_progress_free(re);
    /* other named groups: unchanged */
    re = rx("(?P<x>\\d+)", 1, 0);
    CU_ASSERT(line(re, "42\n", &v) == 0);
    lbw_progress_free(re);
    /* no group: the regex switches itself off */
    re = rx("done", 1, 0);
    CU_ASSERT(line(re, "done\n", &v) == -1);
    CU_ASSERT(!lbw_progress_active(re));
    CU_ASSERT(line(re, "done\n", &v) == 0);
    lbw_progress_free(re);
    /* bytes patterns: \d is ASCII; str patterns are Unicode */
    re = rx("(\\d)", 1, 0);
    CU_ASSERT(line(re, "\xd9\xa3\n", &v) == 0); /* ARABIC-INDIC DIGIT THREE */
    lbw_progress_free(re);
    re = rx("(\\w+) (\\d+)", 0, 32);
    CU_ASSERT(line(re, "\xc3\xa9t\xc3\xa9 7\n", &v) == 0); /* 2 groups: "été"/7 is not a number */
    CU_ASSERT(line(re, "\xff 7\n", &v) == 0);            /* not UTF-8: str pattern cannot match */
    lbw_progress_free(re);
    /* the line keeps its newline: $ before it matches, as in Python */
    re = rx("(\\d+)$", 1, 0);
    CU_ASSERT(line(re, "55\n", &v) == 1 && v == 55);
    lbw_progress_free(re);
}

static void test_broken_regex(void)
{
    char err[200];
    CU_ASSERT(lbw_progress_compile("(unclosed", 9, 1, 0, err, sizeof(err)) == NULL);
    CU_ASSERT(strstr(err, "does not compile") != NULL);
}

static void test_py_float(void)
{
    struct {
        const char *s;
        int ok;
        double v;
    } c[] = {
        {"42", 1, 42}, {" 12.5\n", 1, 12.5}, {"-3", 1, -3}, {"+1e3", 1, 1000}, {"1_000", 1, 1000},
        {".5", 1, 0.5}, {"5.", 1, 5}, {"1__0", 0, 0}, {"_1", 0, 0}, {"1_", 0, 0}, {"", 0, 0},
        {"abc", 0, 0}, {"1.2.3", 0, 0}, {"0x10", 0, 0}, {"--1", 0, 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        double v = 0;
        int rc = lbw_py_float(c[i].s, strlen(c[i].s), &v);
        CU_ASSERT((rc == 0) == c[i].ok);
        if (c[i].ok)
            CU_ASSERT(v == c[i].v);
    }
    double v;
    CU_ASSERT(lbw_py_float("inf", 3, &v) == 0 && isinf(v) && v > 0);
    CU_ASSERT(lbw_py_float("-Infinity", 9, &v) == 0 && isinf(v) && v < 0);
    CU_ASSERT(lbw_py_float("nan", 3, &v) == 0 && isnan(v));
}

/* Python's float() and a str regex's \d take every Unicode decimal digit:
 * upstream reports "٣%" (ARABIC-INDIC THREE) as 3 % and "５０%" as 50 %. */
static void test_unicode_digits(void)
{
    double v = -1;
    CU_ASSERT(lbw_py_float("\xd9\xa3", 2, &v) == 0 && v == 3);           /* ٣ */
    CU_ASSERT(lbw_py_float("\xef\xbc\x95\xef\xbc\x90", 6, &v) == 0 && v == 50); /* ５０ */
    CU_ASSERT(lbw_py_float("1\xe0\xa5\xa8.5", 6, &v) == 0 && v == 12.5); /* 1२.5 */
    CU_ASSERT(lbw_py_float("\xc3\xa9", 2, &v) < 0);                      /* é */
    CU_ASSERT(lbw_py_float("\xff" "1", 2, &v) < 0);                          /* not UTF-8 */
    const char *pat = "(\\d+)%";
    char err[128];
    struct lbw_progress_re *re = lbw_progress_compile(pat, strlen(pat), 0, 0, err, sizeof(err));
    CU_ASSERT_FATAL(re != NULL);
    const char *line = "\xd9\xa3\xd9\xa0% done"; /* ٣٠% (re.match: from the start) */
    v = -1;
    int got = lbw_progress_line(re, (const uint8_t *)line, strlen(line), &v);
    if (got != 1 || v != 30)
        fprintf(stderr, "progress line: %d, %g\n", got, v);
    CU_ASSERT(got == 1 && v == 30);
    lbw_progress_free(re);
}

static const struct lbw_test tests[] = {
    {"Python float(): non-ASCII decimal digits", test_unicode_digits},
    {"regex styles: default, named, two groups, none", test_styles},
    {"a broken regex is an error, not a crash", test_broken_regex},
    {"Python float()", test_py_float},
    {NULL, NULL},
};

static int register_progress_suites(void) { return lbw_add_suite("progress", NULL, NULL, tests); }

LBW_TEST_SUITES(register_progress_suites)
