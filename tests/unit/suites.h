/* suites.h — every unit-test file registers its CUnit suites here. */
#ifndef LBW_TEST_SUITES_H
#define LBW_TEST_SUITES_H

#include <CUnit/CUnit.h>

int register_reactor_suites(void);
int register_log_suites(void);
int register_proc_suites(void);
int register_frame_suites(void);
int register_json_suites(void);
int register_pickle_suites(void);
int register_config_suites(void);
int register_msgnet_suites(void);
int register_probe_suites(void);
int register_spawn_suites(void);
int register_environment_suites(void);
int register_progress_suites(void);
int register_invlog_suites(void);
int register_worker_parts_suites(void);
int register_runtime_suites(void);

/* Adds a suite with the given tests; returns 0 or -1 (CUnit error). */
struct lbw_test {
    const char *name;
    CU_TestFunc fn;
};
int lbw_add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc fini,
                  const struct lbw_test *tests);

/* Registers `tests` once per reactor backend as "<name>[io_uring]" and
 * "<name>[epoll]"; lbw_test_backend() tells a test which one it runs
 * under. The io_uring suite is skipped with a NOTE where io_uring cannot be
 * set up (a failure when LBW_REQUIRE_URING is set). */
#include "reactor.h"
int lbw_add_backend_suites(const char *name, const struct lbw_test *tests);
enum lbw_backend lbw_test_backend(void);

/* Directory of the build (LBW_BUILD), for helper programs. */
const char *lbw_test_build_dir(void);

#endif
