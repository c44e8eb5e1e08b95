/* main.c — the unit-test runner: registers every module's suites, runs them
 * with CUnit's basic interface, and exits non-zero on any failure. A suite
 * that cannot run here (io_uring unavailable) is named on a "SKIP name:
 * reason" line and counted; the closing line reads
 * "unit: N passed, N failed, N skipped" (tests).
 * Usage: unit-tests [SUITE-SUBSTRING]  (run only suites whose name matches) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <CUnit/Basic.h>

#include "suites.h"

static const char *g_filter;
static unsigned g_skipped; /* tests in suites that cannot run here */

int lbw_add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc fini,
                  const struct lbw_test *tests)
{
    if (g_filter && !strstr(name, g_filter))
        return 0;
    CU_pSuite s = CU_add_suite(name, init, fini);
    if (!s)
        return -1;
    for (; tests->name; tests++)
        if (!CU_add_test(s, tests->name, tests->fn))
            return -1;
    return 0;
}

void lbw_test_skip(const char *what, const char *why)
{
    const CU_pSuite s = CU_get_current_suite();
    printf("\nSKIP %s: %s: %s\n", s ? s->pName : "?", what, why);
    g_skipped++;
}

static enum lbw_backend g_backend;

enum lbw_backend lbw_test_backend(void) { return g_backend; }

static int init_uring(void)
{
    g_backend = LBW_BACKEND_URING;
    return 0;
}

static int init_epoll(void)
{
    g_backend = LBW_BACKEND_EPOLL;
    return 0;
}

int lbw_add_backend_suites(const char *name, const struct lbw_test *tests)
{
    struct lbw_reactor_opts o = {.backend = LBW_BACKEND_URING};
    lbw_reactor *r = NULL;
    char err[256], sname[128];
    int have_uring = lbw_reactor_new(&r, &o, err, sizeof(err)) == 0;
    if (r)
        lbw_reactor_free(r);
    snprintf(sname, sizeof(sname), "%s[io_uring]", name);
    if (!have_uring && (!g_filter || strstr(sname, g_filter))) {
        printf("SKIP %s: io_uring unavailable here: %s\n", sname, err);
        if (getenv("LBW_REQUIRE_URING")) {
            fprintf(stderr, "LBW_REQUIRE_URING is set: failing\n");
            return -1;
        }
        for (const struct lbw_test *t = tests; t->name; t++)
            g_skipped++;
    }
    if (have_uring && lbw_add_suite(sname, init_uring, NULL, tests))
        return -1;
    snprintf(sname, sizeof(sname), "%s[epoll]", name);
    return lbw_add_suite(sname, init_epoll, NULL, tests);
}

lbw_reactor *lbw_test_reactor(void)
{
    struct lbw_reactor_opts o = {.backend = lbw_test_backend()};
    lbw_reactor *r = NULL;
    char err[256];
    CU_ASSERT_FATAL(lbw_reactor_new(&r, &o, err, sizeof(err)) == 0);
    return r;
}

void lbw_test_run_until(lbw_reactor *r, volatile int *flag, double secs)
{
    uint64_t end = lbw_now_ns() + (uint64_t)(secs * 1e9);
    while (!*flag && lbw_now_ns() < end)
        lbw_reactor_run_once(r, 10000000ull);
}

const char *lbw_test_build_dir(void)
{
    const char *b = getenv("LBW_BUILD");
    return b && *b ? b : "build";
}

/* Filled by LBW_TEST_SUITES constructors before main runs. */
static struct {
    const char *name;
    lbw_register_fn fn;
} g_reg[64];
static size_t g_nreg;

void lbw_test_register(const char *name, lbw_register_fn fn)
{
    if (g_nreg == sizeof(g_reg) / sizeof(g_reg[0])) {
        fprintf(stderr, "unit-tests: more than %zu test files; raise g_reg\n", g_nreg);
        exit(2);
    }
    g_reg[g_nreg].name = name;
    g_reg[g_nreg].fn = fn;
    g_nreg++;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_filter = argv[1];
    /* The echo test holds ~2,000 sockets at once. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (size_t i = 0; i < g_nreg; i++) {
        if (g_reg[i].fn()) {
            fprintf(stderr, "unit-tests: cannot register suites (%s): %s\n", g_reg[i].name,
                    CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    unsigned ran = CU_get_number_of_tests_run();
    unsigned tfailed = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    printf("\nunit: %u passed, %u failed, %u skipped\n", ran - tfailed, tfailed, g_skipped);
    if (ran == 0) {
        fprintf(stderr, "unit-tests: no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
