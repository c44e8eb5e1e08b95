/* suites.h — every unit-test file registers its CUnit suites here. */
#ifndef LBW_TEST_SUITES_H
#define LBW_TEST_SUITES_H

#include <CUnit/CUnit.h>

/* A test file registers its suites by naming its registration function:
 *   static int register_foo_suites(void) { return lbw_add_suite(...); }
 *   LBW_TEST_SUITES(register_foo_suites)
 * The runner calls every registered function, in link order; no list to
 * keep in main.c. */
typedef int (*lbw_register_fn)(void);
void lbw_test_register(const char *name, lbw_register_fn fn);
#define LBW_TEST_SUITES(fn)                                                  \
    __attribute__((constructor)) static void fn##_ctor(void)                 \
    {                                                                         \
        lbw_test_register(#fn, fn);                                          \
    }


/* Adds a suite with the given tests; returns 0 or -1 (CUnit error). */
struct lbw_test {
    const char *name;
    CU_TestFunc fn;
};
int lbw_add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc fini,
                  const struct lbw_test *tests);

/* Registers `tests` once per reactor backend as "<name>[io_uring]" and
 * "<name>[epoll]"; lbw_test_backend() tells a test which one it runs
 * under. Where io_uring cannot be set up the io_uring suite is not run: a
 * "SKIP name[io_uring]: reason" line is printed and its tests are counted as
 * skipped (a failure when LBW_REQUIRE_URING is set). */
#include "reactor.h"
int lbw_add_backend_suites(const char *name, const struct lbw_test *tests);
enum lbw_backend lbw_test_backend(void);
/* A reactor of the backend under test (fails the test when it cannot be
 * made). */
lbw_reactor *lbw_test_reactor(void);
/* Runs r until *flag is set or secs pass (bounded). */
void lbw_test_run_until(lbw_reactor *r, volatile int *flag, double secs);

/* A check inside a test that cannot run here: prints "SKIP suite: what:
 * why" and counts one skip in the closing line (never a silent pass). */
void lbw_test_skip(const char *what, const char *why);

/* Directory of the build (LBW_BUILD), for helper programs. */
const char *lbw_test_build_dir(void);

#endif
