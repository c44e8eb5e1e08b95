/* test_semver.c — semantic versions and the SimpleSpec specs of the
 * Standard environment resolver (daemon/run/semver.c). */
#include <CUnit/CUnit.h>
#include <stdio.h>

#include "semver.h"
#include "suites.h"

static int m(const char *spec, const char *ver)
{
    struct lbw_semver v;
    if (lbw_semver_parse(ver, &v) < 0)
        return -2;
    return lbw_semver_match(spec, &v);
}

static void test_semver(void)
{
    struct lbw_semver a, b;
    CU_ASSERT(lbw_semver_parse("20.0.506", &a) == 0);
    CU_ASSERT(lbw_semver_parse("20.0", &a) < 0);
    CU_ASSERT(lbw_semver_parse("01.0.0", &a) < 0);
    CU_ASSERT(lbw_semver_parse("1.0.0-rc.1+build5", &a) == 0);
    CU_ASSERT_STRING_EQUAL(a.pre, "rc.1");
    /* ordering as SemVer 2.0 */
    const char *order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                           "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1",
                           "1.10.0", "2.0.0"};
    for (size_t i = 0; i + 1 < sizeof(order) / sizeof(*order); i++) {
        CU_ASSERT(lbw_semver_parse(order[i], &a) == 0);
        CU_ASSERT(lbw_semver_parse(order[i + 1], &b) == 0);
        CU_ASSERT(lbw_semver_cmp(&a, &b) < 0);
        CU_ASSERT(lbw_semver_cmp(&b, &a) > 0);
    }
    /* the spec forms docs/PROTOCOL.md 7.3 lists */
    CU_ASSERT(m("==1.2.3", "1.2.3") == 1);
    CU_ASSERT(m("==1.2.3", "1.2.4") == 0);
    CU_ASSERT(m("1.2.3", "1.2.3") == 1);
    CU_ASSERT(m("~=20.0.506", "20.0.600") == 1);
    CU_ASSERT(m("~=20.0.506", "20.1.0") == 0);
    CU_ASSERT(m("~=20.0.506", "20.0.505") == 0);
    CU_ASSERT(m("~=20.0", "20.5.1") == 1);
    CU_ASSERT(m("~=20.0", "21.0.0") == 0);
    CU_ASSERT(m("~20.0", "20.0.9") == 1);
    CU_ASSERT(m("~20.0", "20.1.0") == 0);
    CU_ASSERT(m("^20.0.0", "20.9.9") == 1);
    CU_ASSERT(m("^20.0.0", "21.0.0") == 0);
    CU_ASSERT(m("^0.2.1", "0.2.5") == 1);
    CU_ASSERT(m("^0.2.1", "0.3.0") == 0);
    CU_ASSERT(m("20.0.*", "20.0.7") == 1);
    CU_ASSERT(m("20.0.*", "20.1.0") == 0);
    CU_ASSERT(m("<20", "19.9.9") == 1);
    CU_ASSERT(m("<20", "20.0.0") == 0);
    CU_ASSERT(m(">=19", "19.0.0") == 1);
    CU_ASSERT(m(">=19,<20", "19.5.0") == 1);
    CU_ASSERT(m(">=19,<20", "20.5.0") == 0);
    CU_ASSERT(m("*", "3.2.1") == 1);
    CU_ASSERT(m("!=1.0.0", "1.0.0") == 0);
    /* pre-releases only when a clause names one of the same version */
    CU_ASSERT(m(">=1.0.0", "1.0.1-rc1") == 0);
    CU_ASSERT(m(">=1.0.1-rc1", "1.0.1-rc2") == 1);
    CU_ASSERT(m("==1.0.1-rc1", "1.0.1-rc1") == 1);
    /* invalid specs */
    CU_ASSERT(m("=>1", "1.0.0") == -1);
    CU_ASSERT(m("", "1.0.0") == -1);
    CU_ASSERT(m("abc", "1.0.0") == -1);
}

static const struct lbw_test tests[] = {
    {"semantic versions and SimpleSpec specs", test_semver},
    {NULL, NULL},
};

static int register_semver_suites(void) { return lbw_add_suite("semver", NULL, NULL, tests); }

LBW_TEST_SUITES(register_semver_suites)
