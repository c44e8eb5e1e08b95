/* test_utf8.c — wire/utf8.c: strict UTF-8 as Python's decoder sees it, and
 * the surrogatepass variant pickles use for lone surrogates. */
#include <stdint.h>
#include <string.h>

#include "suites.h"
#include "utf8.h"

static int valid(const char *s) { return lbw_utf8_valid((const uint8_t *)s, strlen(s)); }

static void test_strict(void)
{
    CU_ASSERT(valid(""));
    CU_ASSERT(valid("plain ascii"));
    CU_ASSERT(valid("\xc3\xa9t\xc3\xa9"));             /* été */
    CU_ASSERT(valid("\xe2\x82\xac"));                  /* U+20AC */
    CU_ASSERT(valid("\xf0\x9f\x8e\xac"));              /* U+1F3AC */
    CU_ASSERT(valid("\xf4\x8f\xbf\xbf"));              /* U+10FFFF, the last */
    CU_ASSERT(!valid("\xf4\x90\x80\x80"));             /* above U+10FFFF */
    CU_ASSERT(!valid("\xc0\x80"));                     /* overlong NUL */
    CU_ASSERT(!valid("\xe0\x80\xaf"));                 /* overlong '/' */
    CU_ASSERT(!valid("\xf0\x80\x80\xaf"));             /* overlong '/' */
    CU_ASSERT(!valid("\xed\xa0\x80"));                 /* a surrogate */
    CU_ASSERT(!valid("\xc3"));                         /* truncated */
    CU_ASSERT(!valid("\xe2\x82"));                     /* truncated */
    CU_ASSERT(!valid("\x80"));                         /* a lone continuation */
    CU_ASSERT(!valid("\xff"));
    CU_ASSERT(!valid("ok\xc3("));                      /* bad continuation */
    /* NUL is a character like any other */
    CU_ASSERT(lbw_utf8_valid((const uint8_t *)"a\0b", 3));
}

static void test_surrogatepass(void)
{
    const uint8_t lone[] = {0xed, 0xa0, 0x80}; /* U+D800 */
    CU_ASSERT(!lbw_utf8_valid_ex(lone, 3, 0));
    CU_ASSERT(lbw_utf8_valid_ex(lone, 3, 1));
    uint32_t cp = 0;
    CU_ASSERT_EQUAL(lbw_utf8_decode(lone, 3, &cp, 1), 3);
    CU_ASSERT_EQUAL(cp, 0xD800);
    CU_ASSERT_EQUAL(lbw_utf8_decode(lone, 3, &cp, 0), 0);
    /* overlongs stay invalid with surrogatepass */
    const uint8_t over[] = {0xc0, 0x80};
    CU_ASSERT(!lbw_utf8_valid_ex(over, 2, 1));
}

/* Every code point encodes and decodes back to itself, with the length
 * Python's encoder gives it. */
static void test_roundtrip_all(void)
{
    uint8_t b[4];
    unsigned bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        int sur = cp >= 0xD800 && cp <= 0xDFFF;
        size_t n = lbw_utf8_encode(cp, b);
        size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        uint32_t back = 0;
        if (n != want || lbw_utf8_decode(b, n, &back, sur) != n || back != cp ||
            lbw_utf8_valid(b, n) == sur)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static const struct lbw_test tests[] = {
    {"strict validation as Python decodes", test_strict},
    {"surrogatepass for lone surrogates", test_surrogatepass},
    {"every code point round-trips", test_roundtrip_all},
    {NULL, NULL},
};

static int register_utf8_suites(void) { return lbw_add_suite("utf8", NULL, NULL, tests); }

LBW_TEST_SUITES(register_utf8_suites)
