/* test_hex.c — base/hex.h: one hexadecimal digit's value, shared by the
 * TOML reader, the JSON reader's \uXXXX and the host id parser. */
#include "hex.h"
#include "suites.h"

static void test_hexval(void)
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        CU_ASSERT(lbw_hexval(d[i]) == i);
        CU_ASSERT(lbw_hexval(d[i] >= 'a' ? d[i] - 32 : d[i]) == i);
    }
    static const int bad[] = {'g', 'G', '/', ':', '@', '`', ' ', 0, -1, 0x80, 0xff, 'x'};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT(lbw_hexval(bad[i]) == -1);
}

static const struct lbw_test tests[] = {
    {"digit values, both cases, and everything else refused", test_hexval},
    {NULL, NULL},
};

static int register_hex_suites(void) { return lbw_add_suite("base: hex", NULL, NULL, tests); }

LBW_TEST_SUITES(register_hex_suites)
