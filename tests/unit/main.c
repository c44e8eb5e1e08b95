/* main.c — the unit-test runner: registers every module's suites, runs them
 * with CUnit's basic interface, and exits non-zero on any failure.
 * Usage: unit-tests [SUITE-SUBSTRING]  (run only suites whose name matches) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <CUnit/Basic.h>

#include "suites.h"

static const char *g_filter;

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

const char *lbw_test_build_dir(void)
{
    const char *b = getenv("LBW_BUILD");
    return b && *b ? b : "build";
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
    if (register_log_suites() || register_proc_suites() || register_reactor_suites() ||
        register_frame_suites() || register_json_suites() || register_pickle_suites() ||
        register_config_suites() || register_msgnet_suites() ||
        register_probe_suites() || register_spawn_suites() ||
        register_environment_suites() || register_progress_suites() ||
        register_invlog_suites()) {
        fprintf(stderr, "unit-tests: cannot register suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "unit-tests: no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
