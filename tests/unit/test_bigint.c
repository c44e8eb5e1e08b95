/* test_bigint.c — integers of any size as text, bounded as Python bounds
 * them: 4,300 digits are written, 4,301 are refused (in pickle -> text,
 * LBATTR_* from task attributes, the inspect view), and a 1 MiB LONG4 is
 * refused before any arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "environment.h"
#include "fixture.h"
#include "inspect.h"
#include "invocation.h"
#include "json.h"
#include "pickle.h"
#include "suites.h"

/* Little-endian two's complement bytes of a decimal string (schoolbook;
 * test sizes only). */
static uint8_t *le_of(const char *dec, size_t *n)
{
    int neg = dec[0] == '-';
    size_t nd = strlen(dec + neg), cap = nd / 2 + 4, len = 1;
    uint8_t *b = calloc(cap, 1);
    for (size_t i = 0; i < nd; i++) {
        unsigned carry = (unsigned)(dec[neg + i] - '0');
        for (size_t k = 0; k < len; k++) {
            unsigned v = b[k] * 10u + carry;
            b[k] = (uint8_t)v;
            carry = v >> 8;
        }
        while (carry) {
            b[len++] = (uint8_t)carry;
            carry >>= 8;
        }
    }
    len++; /* room for the sign bit */
    if (neg) {
        unsigned carry = 1;
        for (size_t k = 0; k < len; k++) {
            unsigned v = (uint8_t)~b[k] + carry;
            b[k] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    *n = len;
    return b;
}

static char *digits(char first, char rest, size_t count, int neg)
{
    char *s = malloc(count + 2);
    size_t k = 0;
    if (neg)
        s[k++] = '-';
    s[k++] = first;
    memset(s + k, rest, count - 1);
    s[k + count - 1] = 0;
    return s;
}

static void test_text_limit(void)
{
    char out[LBW_PK_INT_TEXT_CAP];
    for (int neg = 0; neg <= 1; neg++) {
        char *ok = digits('9', '9', LBW_PK_INT_MAX_DIGITS, neg);
        size_t n;
        uint8_t *b = le_of(ok, &n);
        CU_ASSERT(lbw_pk_bigint_text(b, n, out, sizeof(out)) == (int)strlen(ok));
        CU_ASSERT_STRING_EQUAL(out, ok);
        free(b);
        free(ok);
        char *over = digits('1', '0', LBW_PK_INT_MAX_DIGITS + 1, neg);
        b = le_of(over, &n);
        CU_ASSERT(lbw_pk_bigint_text(b, n, out, sizeof(out)) == -1);
        CU_ASSERT(out[0] == 0);
        free(b);
        free(over);
    }
    /* small values and the edges of the byte forms */
    static const char *const small[] = {"0", "-1", "127", "-128", "255", "-129",
                                        "18446744073709551616", "-9223372036854775809"};
    for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
        size_t n;
        uint8_t *b = le_of(small[i], &n);
        CU_ASSERT(lbw_pk_bigint_text(b, n, out, sizeof(out)) == (int)strlen(small[i]));
        CU_ASSERT_STRING_EQUAL(out, small[i]);
        free(b);
    }
    CU_ASSERT(lbw_pk_bigint_text((const uint8_t *)"\x01", 1, out, 10) == -1); /* cap */
}

/* A 1 MiB LONG4 decodes (it is valid) and is refused as text at once. */
static void test_huge_long4(void)
{
    size_t n = 1u << 20;
    uint8_t *p = malloc(n + 16);
    size_t k = 0;
    p[k++] = 0x80;
    p[k++] = 4;
    p[k++] = 0x8b;
    p[k++] = (uint8_t)n;
    p[k++] = (uint8_t)(n >> 8);
    p[k++] = (uint8_t)(n >> 16);
    p[k++] = (uint8_t)(n >> 24);
    for (size_t i = 0; i < n; i++)
        p[k++] = (uint8_t)(i * 37 + 1);
    p[k - 1] = 0x12;
    p[k++] = '.';
    struct lbw_pk_doc d;
    char err[300];
    CU_ASSERT_FATAL(lbw_pk_decode(&d, p, k, NULL, err, sizeof(err)) == 0);
    CU_ASSERT_FATAL(d.root->kind == LBW_PK_BIGINT && d.root->u.s.n == n);
    char out[LBW_PK_INT_TEXT_CAP];
    CU_ASSERT(lbw_pk_bigint_text(d.root->u.s.p, d.root->u.s.n, out, sizeof(out)) == -1);
    /* the inspect view shows it in hex, linear in its size */
    struct lbw_jw w;
    lbw_jw_init(&w);
    CU_ASSERT(lbw_pk_to_json(&d, d.root, &w, err, sizeof(err)) == 0);
    size_t l;
    char *o = lbw_jw_take(&w, &l);
    CU_ASSERT(o && l > 2 * n && !strncmp(o, "{\"$int_hex\": \"0x12", 18));
    free(o);
    lbw_pk_doc_free(&d);
    free(p);
}

/* LBATTR_x of an integer beyond the limit is skipped (with a WARNING);
 * the task's other attributes and the task itself are unaffected. */
static void test_lbattr_skipped(void)
{
    size_t n;
    uint8_t *b = fx_read("pickles/invocationjob_full.pickle", &n);
    struct lbw_inv inv;
    char err[300];
    CU_ASSERT_FATAL(b && lbw_inv_load(&inv, b, n, err, sizeof(err)) == 0);
    free(b);
    struct lbw_pk *none = lbw_pk_new(&inv.doc, LBW_PK_NONE);
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, inv.state, "_InvocationJob__envres_args", none) == 0);
    char *s_ok = digits('9', '9', LBW_PK_INT_MAX_DIGITS, 0);
    char *s_over = digits('1', '0', LBW_PK_INT_MAX_DIGITS + 1, 0);
    size_t nok, nover;
    uint8_t *b_ok = le_of(s_ok, &nok), *b_over = le_of(s_over, &nover);
    struct lbw_pk *v_ok = lbw_pk_new(&inv.doc, LBW_PK_BIGINT);
    struct lbw_pk *v_over = lbw_pk_new(&inv.doc, LBW_PK_BIGINT);
    CU_ASSERT_FATAL(v_ok && v_over);
    v_ok->u.s.p = b_ok;
    v_ok->u.s.n = nok;
    v_over->u.s.p = b_over;
    v_over->u.s.n = nover;
    struct lbw_pk *attrs = lbw_inv_attrs(&inv);
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, attrs, "huge_ok", v_ok) == 0);
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, attrs, "huge_over", v_over) == 0);
    char *environ_[] = {"PATH=/usr/bin:/bin", NULL};
    struct lbw_env_inputs in = {.worker_environ = environ_, .job = &inv};
    struct lbw_env e;
    CU_ASSERT_FATAL(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_OK);
    CU_ASSERT(lbw_env_get(&e, "LBATTR_huge_ok") && !strcmp(lbw_env_get(&e, "LBATTR_huge_ok"), s_ok));
    CU_ASSERT(lbw_env_get(&e, "LBATTR_huge_over") == NULL);
    CU_ASSERT(lbw_env_get(&e, "LBATTR_frame") && !strcmp(lbw_env_get(&e, "LBATTR_frame"), "1001"));
    lbw_env_free(&e);
    lbw_inv_free(&inv);
    free(b_ok);
    free(b_over);
    free(s_ok);
    free(s_over);
}

static const struct lbw_test tests[] = {
    {"4,300 digits written, 4,301 refused", test_text_limit},
    {"1 MiB LONG4: decoded, refused as text, shown in hex", test_huge_long4},
    {"LBATTR_ of an over-long integer is skipped", test_lbattr_skipped},
    {NULL, NULL},
};

static int register_bigint_suites(void) { return lbw_add_suite("bigint", NULL, NULL, tests); }

LBW_TEST_SUITES(register_bigint_suites)
