/* test_discover.c — the scheduler discovery datagram of wire/net/discover.c
 * against the captured vector, and every truncation of it. */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "fixture.h"
#include "suites.h"

static void test_discovery_datagram(void)
{
    size_t n;
    uint8_t *p = fx_read("broadcast_datagram.bin", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char addr[256], err[200];
    size_t bo, bl;
    CU_ASSERT_FATAL(lbw_discover_parse(p, n, addr, sizeof(addr), &bo, &bl, err,
                                       sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(addr, "192.168.1.10:1386");
    uint8_t out[512];
    size_t ol = lbw_discover_build(p + bo, bl, out, sizeof(out));
    CU_ASSERT(ol == n && memcmp(out, p, n) == 0); /* same layout as upstream's */
    for (size_t cut = 0; cut < n; cut++) /* every truncation is refused */
        CU_ASSERT(lbw_discover_parse(p, cut, addr, sizeof(addr), &bo, &bl, err,
                                     sizeof(err)) < 0);
    CU_ASSERT(lbw_discover_parse((const uint8_t *)"hello", 5, addr, sizeof(addr), &bo, &bl,
                                 err, sizeof(err)) == -1);
    free(p);
}

static const struct lbw_test tests[] = {
    {"discovery datagram (captured vector, truncations)", test_discovery_datagram},
    {NULL, NULL},
};

static int register_discover_suites(void) { return lbw_add_suite("discover", NULL, NULL, tests); }

LBW_TEST_SUITES(register_discover_suites)
