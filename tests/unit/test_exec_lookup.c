/* test_exec_lookup.c — executable lookup along PATH
 * (lbw_find_executable of daemon/run/run.c), as the payload's argv[0] is
 * found. */
#include <CUnit/CUnit.h>

#include "run.h"
#include "suites.h"

static void test_find_executable(void)
{
    char out[4096];
    CU_ASSERT(lbw_find_executable("sh", "/nonexistent:/bin", out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "/bin/sh");
    CU_ASSERT(lbw_find_executable("/bin/sh", "", out, sizeof(out)) == 0);
    CU_ASSERT(lbw_find_executable("no-such-tool-lbw", "/bin:/usr/bin", out, sizeof(out)) < 0);
    CU_ASSERT(lbw_find_executable("passwd", "/etc", out, sizeof(out)) < 0); /* not executable */
    CU_ASSERT(lbw_find_executable("", "/bin", out, sizeof(out)) < 0);
}

static const struct lbw_test tests[] = {
    {"executable lookup along PATH", test_find_executable},
    {NULL, NULL},
};

static int register_exec_lookup_suites(void)
{
    return lbw_add_suite("run: executable lookup", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_exec_lookup_suites)
