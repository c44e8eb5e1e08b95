/* test_sdnotify.c — kernel-iface/sdnotify: the notification datagrams as a
 * service manager receives them, on a socket of the test's own (a path and
 * an abstract name), the environment variables, and the no-op without a
 * manager. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include "sdnotify.h"
#include "suites.h"

/* A receiving datagram socket standing in for the service manager. `name`
 * is written with the NOTIFY_SOCKET spelling ('@' for abstract). */
static int manager_socket(char *name, size_t cap, int abstract)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    socklen_t al;
    if (abstract) {
        snprintf(name, cap, "@lbw-test-notify-%d-%p", (int)getpid(), (void *)name);
        memcpy(a.sun_path, name, strlen(name));
        a.sun_path[0] = 0;
        al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    } else {
        char dir[] = "/tmp/lbw-notify-XXXXXX";
        if (!mkdtemp(dir)) {
            close(fd);
            return -1;
        }
        snprintf(name, cap, "%s/notify", dir);
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", name);
        al = sizeof(a);
    }
    if (bind(fd, (struct sockaddr *)&a, al) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void manager_close(int fd, const char *name)
{
    close(fd);
    if (name[0] == '/') {
        unlink(name);
        char dir[128];
        snprintf(dir, sizeof(dir), "%s", name);
        char *s = strrchr(dir, '/');
        if (s) {
            *s = 0;
            rmdir(dir);
        }
    }
}

/* The next datagram, waiting at most 1 s; "" when none came. */
static void receive(int fd, char *out, size_t cap)
{
    out[0] = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) != 1)
        return;
    ssize_t n = recv(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = 0;
}

static void exchange(int abstract)
{
    char name[108], got[2048];
    int m = manager_socket(name, sizeof(name), abstract);
    CU_ASSERT_FATAL(m >= 0);
    struct lbw_sdnotify n;
    char err[256];
    CU_ASSERT_FATAL(lbw_sdnotify_open_at(&n, name, 0, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_sdnotify_enabled(&n));

    CU_ASSERT(lbw_sdnotify_ready(&n, "registered with %s; idle", "127.0.0.1:1386") == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "READY=1\nSTATUS=registered with 127.0.0.1:1386; idle\n");

    CU_ASSERT(lbw_sdnotify_status(&n, "running invocation %d", 42) == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "STATUS=running invocation 42\n");

    /* one line per key: a newline in the text cannot start a new key */
    CU_ASSERT(lbw_sdnotify_status(&n, "a\nREADY=1\r") == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "STATUS=a READY=1 \n");

    CU_ASSERT(lbw_sdnotify_watchdog(&n) == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "WATCHDOG=1");

    CU_ASSERT(lbw_sdnotify_stopping(&n, "%s received", "SIGTERM") == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "STOPPING=1\nSTATUS=SIGTERM received\n");

    CU_ASSERT(lbw_sdnotify_stopping(&n, "%s", "") == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "STOPPING=1\n");

    /* a long status is cut, never overflows, and stays one datagram */
    char big[4096];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    CU_ASSERT(lbw_sdnotify_status(&n, "%s", big) == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT(strncmp(got, "STATUS=xxx", 10) == 0);
    CU_ASSERT(strlen(got) > 1000 && strlen(got) < 1100);
    CU_ASSERT(got[strlen(got) - 1] == '\n');

    lbw_sdnotify_close(&n);
    CU_ASSERT(!lbw_sdnotify_enabled(&n));
    manager_close(m, name);
}

static void test_path_socket(void) { exchange(0); }
static void test_abstract_socket(void) { exchange(1); }

static void test_no_manager_is_noop(void)
{
    char err[256] = "x";
    struct lbw_sdnotify n;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    CU_ASSERT(lbw_sdnotify_open(&n, 1, err, sizeof(err)) == 0);
    CU_ASSERT(n.fd == -1 && !lbw_sdnotify_enabled(&n));
    CU_ASSERT(lbw_sdnotify_watchdog_usec(&n) == 0);
    CU_ASSERT(lbw_sdnotify_ready(&n, "x") == 0);
    CU_ASSERT(lbw_sdnotify_status(&n, "%s", "x") == 0);
    CU_ASSERT(lbw_sdnotify_stopping(&n, "x") == 0);
    CU_ASSERT(lbw_sdnotify_watchdog(&n) == 0);
    lbw_sdnotify_close(&n);
    /* a NULL handle too (a worker started without service integration) */
    CU_ASSERT(lbw_sdnotify_ready(NULL, "x") == 0);
    CU_ASSERT(lbw_sdnotify_status(NULL, "x") == 0);
    CU_ASSERT(lbw_sdnotify_stopping(NULL, "x") == 0);
    CU_ASSERT(lbw_sdnotify_watchdog(NULL) == 0);
    CU_ASSERT(lbw_sdnotify_watchdog_usec(NULL) == 0);
}

static void test_env_and_watchdog(void)
{
    char name[108], got[256], err[256], pid[32];
    int m = manager_socket(name, sizeof(name), 1);
    CU_ASSERT_FATAL(m >= 0);
    struct lbw_sdnotify n;

    setenv("NOTIFY_SOCKET", name, 1);
    setenv("WATCHDOG_USEC", "30000000", 1);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    CU_ASSERT(lbw_sdnotify_open(&n, 1, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_sdnotify_watchdog_usec(&n) == 30000000);
    /* removed, so payloads started later do not inherit them */
    CU_ASSERT(getenv("NOTIFY_SOCKET") == NULL);
    CU_ASSERT(getenv("WATCHDOG_USEC") == NULL);
    CU_ASSERT(getenv("WATCHDOG_PID") == NULL);
    CU_ASSERT(lbw_sdnotify_watchdog(&n) == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "WATCHDOG=1");
    lbw_sdnotify_close(&n);

    /* the watchdog of another process is not ours; notifications still go */
    setenv("NOTIFY_SOCKET", name, 1);
    setenv("WATCHDOG_USEC", "30000000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    CU_ASSERT(lbw_sdnotify_open(&n, 0, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_sdnotify_enabled(&n));
    CU_ASSERT(lbw_sdnotify_watchdog_usec(&n) == 0);
    CU_ASSERT(getenv("NOTIFY_SOCKET") != NULL); /* unset_env = 0 keeps them */
    lbw_sdnotify_close(&n);

    /* a malformed interval: said, the socket still usable, no watchdog */
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "30s", 1);
    CU_ASSERT(lbw_sdnotify_open(&n, 1, err, sizeof(err)) == -EINVAL);
    CU_ASSERT(strstr(err, "WATCHDOG_USEC") != NULL);
    CU_ASSERT(lbw_sdnotify_enabled(&n));
    CU_ASSERT(lbw_sdnotify_watchdog_usec(&n) == 0);
    CU_ASSERT(lbw_sdnotify_ready(&n, "%s", "") == 0);
    receive(m, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "READY=1\n");
    lbw_sdnotify_close(&n);

    /* without WATCHDOG_PID the interval is ours */
    setenv("NOTIFY_SOCKET", name, 1);
    setenv("WATCHDOG_USEC", "2000000", 1);
    CU_ASSERT(lbw_sdnotify_open(&n, 1, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_sdnotify_watchdog_usec(&n) == 2000000);
    lbw_sdnotify_close(&n);
    manager_close(m, name);
}

static void test_bad_socket_names(void)
{
    struct lbw_sdnotify n;
    char err[256];
    /* a relative path or another address family (vsock:...) is refused
     * with a sentence, and the handle is a no-op */
    CU_ASSERT(lbw_sdnotify_open_at(&n, "run/notify", 0, err, sizeof(err)) == -EAFNOSUPPORT);
    CU_ASSERT(strstr(err, "NOTIFY_SOCKET=run/notify") != NULL);
    CU_ASSERT(!lbw_sdnotify_enabled(&n) && lbw_sdnotify_ready(&n, "%s", "") == 0);
    CU_ASSERT(lbw_sdnotify_open_at(&n, "vsock:2:1234", 0, err, sizeof(err)) == -EAFNOSUPPORT);
    CU_ASSERT(lbw_sdnotify_open_at(&n, "@", 0, err, sizeof(err)) == -EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = 0;
    CU_ASSERT(lbw_sdnotify_open_at(&n, longname, 0, err, sizeof(err)) == -EINVAL);
    CU_ASSERT(!lbw_sdnotify_enabled(&n));
    setenv("NOTIFY_SOCKET", longname, 1);
    CU_ASSERT(lbw_sdnotify_open(&n, 1, err, sizeof(err)) == -EINVAL);
    CU_ASSERT(!lbw_sdnotify_enabled(&n));
    /* a manager that has gone away: the send fails, nothing else happens */
    CU_ASSERT(lbw_sdnotify_open_at(&n, "@lbw-test-nobody-listens", 0, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_sdnotify_ready(&n, "%s", "") == -ECONNREFUSED);
    lbw_sdnotify_close(&n);
}

static const struct lbw_test tests[] = {
    {"sdnotify: ready, status, watchdog, stopping to a path socket", test_path_socket},
    {"sdnotify: the same to an abstract '@' socket", test_abstract_socket},
    {"sdnotify: no NOTIFY_SOCKET, or no handle: every call is a no-op", test_no_manager_is_noop},
    {"sdnotify: environment read once and removed; WATCHDOG_USEC/_PID",
     test_env_and_watchdog},
    {"sdnotify: unusable socket names refused with a sentence", test_bad_socket_names},
    {NULL, NULL},
};

static int register_sdnotify_suites(void)
{
    return lbw_add_suite("sdnotify", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_sdnotify_suites)
