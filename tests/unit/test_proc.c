/* test_proc.c — pidfd and signalfd helpers outside the reactor. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "run.h"
#include "suites.h"

static void test_pidfd_blocking_wait(void)
{
    pid_t p = fork();
    CU_ASSERT_FATAL(p >= 0);
    if (p == 0)
        _exit(3);
    int fd = lbw_pidfd_open(p);
    if (fd < 0) {
        waitpid(p, NULL, 0);
        CU_FAIL_FATAL("pidfd_open failed");
    }
    struct lbw_exit e;
    CU_ASSERT(lbw_pidfd_wait(fd, &e, 0) == 0);
    CU_ASSERT(e.exited && e.code == 3 && !e.signaled);
    /* Reaped: a second wait has nothing to report. */
    CU_ASSERT(lbw_pidfd_wait(fd, &e, 0) == -ECHILD);
    CU_ASSERT(lbw_pidfd_kill(fd, 0) == -ESRCH);
    close(fd);
    CU_ASSERT(lbw_pidfd_open(-5) < 0);
}

static void test_exit_codes(void)
{
    struct lbw_exit e = {.exited = 1, .code = 0};
    CU_ASSERT_EQUAL(lbw_run_exit_code(&e), 0);
    e = (struct lbw_exit){.signaled = 1, .sig = SIGTERM};
    CU_ASSERT_EQUAL(lbw_run_exit_code(&e), -15);
}

static void test_signalfd_bad(void)
{
    int bad[] = {9999};
    CU_ASSERT(lbw_signalfd_open(bad, 1) == -EINVAL);
    CU_ASSERT(lbw_signalfd_read(-1, NULL) == -EBADF);
}

static const struct lbw_test tests[] = {
    {"pidfd blocking wait and reap", test_pidfd_blocking_wait},
    {"exit code convention", test_exit_codes},
    {"signalfd errors", test_signalfd_bad},
    {NULL, NULL},
};

static int register_proc_suites(void) { return lbw_add_suite("proc", NULL, NULL, tests); }

LBW_TEST_SUITES(register_proc_suites)
