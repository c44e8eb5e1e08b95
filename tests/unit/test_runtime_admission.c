/* test_runtime_admission.c — who gets into the runtime API server
 * (daemon/runtime/runtime_server.c), once per reactor backend: idle
 * connections filling the table do not lock out a payload's valid
 * request; a connection that never negotiates is closed at its deadline;
 * another local user (a child switched to uid 65534) is refused with a
 * WARNING naming its uid and pid. Clients run in threads or child
 * processes while the reactor thread serves. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "msgnet.h"
#include "runtime_server.h"
#include "sock.h"
#include "suites.h"

#define MS 1000000ull

struct srv {
    lbw_reactor *r;
    struct lbw_msgnet *net;
    struct lbw_rt *rt;
    int port;
    volatile int closed;
};

static void on_closed(void *ctx) { ((struct srv *)ctx)->closed = 1; }

static void srv_start(struct srv *s, size_t max_conns, uint64_t hello_ns)
{
    s->r = lbw_test_reactor();
    char self[64];
    int nfd = lbw_tcp_listen("127.0.0.1", 0, 64);
    snprintf(self, sizeof(self), "127.0.0.1:%d", lbw_sock_port(nfd));
    struct lbw_msgnet_opts no = {.self = self};
    s->net = lbw_msgnet_new(s->r, &no, NULL, NULL);
    lbw_msgnet_listen(s->net, nfd);
    int fd = lbw_tcp_listen("127.0.0.1", 0, 4096);
    CU_ASSERT_FATAL(fd >= 0);
    s->port = lbw_sock_port(fd);
    struct lbw_rt_opts o = {.r = s->r, .listen_fd = fd, .net = s->net,
                            .scheduler = "127.0.0.1:1", .max_conns = max_conns,
                            .hello_timeout_ns = hello_ns, .on_closed = on_closed, .ctx = s};
    s->rt = lbw_rt_start(&o);
    CU_ASSERT_FATAL(s->rt != NULL);
    lbw_rt_invocation_begin(s->rt, 7);
}

static void srv_stop(struct srv *s)
{
    lbw_rt_close(s->rt);
    lbw_test_run_until(s->r, &s->closed, 2);
    CU_ASSERT(s->closed);
    lbw_msgnet_close(s->net);
    int never = 0;
    lbw_test_run_until(s->r, &never, 0.2);
    CU_ASSERT_EQUAL(lbw_reactor_pending(s->r), 0);
    lbw_reactor_free(s->r);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    lbw_sockaddr_from("127.0.0.1", (uint16_t)port, &ss, &sl);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* lifeblood_connection's negotiation: one version offered, 1.0. */
static const uint8_t HELLO[16] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};

/* Sends the negotiation; returns the bytes of the answer (8 = served, 0 =
 * closed without a word). */
static int negotiate(int port, uint64_t *took)
{
    uint64_t t0 = lbw_now_ns();
    int fd = dial(port);
    if (fd < 0)
        return -1;
    int got = 0;
    if (send(fd, HELLO, sizeof(HELLO), MSG_NOSIGNAL) == (ssize_t)sizeof(HELLO)) {
        uint8_t v[8];
        while (got < 8) {
            ssize_t n = recv(fd, v + got, sizeof(v) - (size_t)got, 0);
            if (n <= 0)
                break;
            got += (int)n;
        }
    }
    close(fd);
    if (took)
        *took = lbw_now_ns() - t0;
    return got;
}

struct client {
    int port, got;
    uint64_t took;
    volatile int done;
};

static void *client_thread(void *arg)
{
    struct client *c = arg;
    c->got = negotiate(c->port, &c->took);
    c->done = 1;
    return NULL;
}

/* 20 idle connections on a table of 16: the payload's request is served
 * at once (the oldest idle one makes room). */
static void test_idle_flood(void)
{
    struct srv s = {0};
    srv_start(&s, 16, 0);
    int idle[20];
    for (int i = 0; i < 20; i++)
        idle[i] = dial(s.port);
    int never = 0;
    lbw_test_run_until(s.r, &never, 0.3);
    struct client c = {.port = s.port};
    pthread_t t;
    pthread_create(&t, NULL, client_thread, &c);
    lbw_test_run_until(s.r, &c.done, 5);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(c.got, 8);
    CU_ASSERT(c.took < 2000 * MS);
    for (int i = 0; i < 20; i++)
        if (idle[i] >= 0)
            close(idle[i]);
    srv_stop(&s);
}

/* A connection that never negotiates is closed at the hello deadline. */
static void test_hello_deadline(void)
{
    struct srv s = {0};
    srv_start(&s, 0, 200 * MS);
    int fd = dial(s.port);
    CU_ASSERT_FATAL(fd >= 0);
    uint64_t t0 = lbw_now_ns();
    int never = 0;
    lbw_test_run_until(s.r, &never, 1.0);
    uint8_t b;
    CU_ASSERT(recv(fd, &b, 1, MSG_DONTWAIT) == 0); /* closed */
    CU_ASSERT(lbw_now_ns() - t0 < 2000 * MS);
    close(fd);
    srv_stop(&s);
}

/* Another local user is refused, named by uid and pid; our own user is
 * served. */
static void test_stranger_refused(void)
{
    if (geteuid() != 0) {
        printf("SKIP: needs root to act as another user ");
        return;
    }
    struct srv s = {0};
    srv_start(&s, 0, 0);
    char p[] = "/tmp/lbw-rt-adm-XXXXXX";
    int lg = mkstemp(p);
    unlink(p);
    lbw_log_set_fd(lg);
    int pipefd[2];
    CU_ASSERT_FATAL(pipe(pipefd) == 0);
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[0]);
        if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
            _exit(3);
        int got = negotiate(s.port, NULL);
        _exit(got == 0 ? 0 : 1);
    }
    close(pipefd[1]);
    int status = -1;
    uint64_t end = lbw_now_ns() + 5000 * MS;
    while (lbw_now_ns() < end) {
        lbw_reactor_run_once(s.r, 10 * MS);
        if (waitpid(child, &status, WNOHANG) == child)
            break;
    }
    close(pipefd[0]);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct client c = {.port = s.port};
    pthread_t t;
    pthread_create(&t, NULL, client_thread, &c);
    lbw_test_run_until(s.r, &c.done, 5);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(c.got, 8);
    lbw_log_set_fd(-1);
    char buf[4096] = {0};
    CU_ASSERT(pread(lg, buf, sizeof(buf) - 1, 0) > 0);
    CU_ASSERT(strstr(buf, "refusing a runtime API connection from uid 65534 (pid ") != NULL);
    close(lg);
    srv_stop(&s);
}

static const struct lbw_test tests[] = {
    {"idle connections do not lock out a payload", test_idle_flood},
    {"a connection that never negotiates is closed", test_hello_deadline},
    {"another local user is refused and named", test_stranger_refused},
    {NULL, NULL},
};

static int register_rt_admission_suites(void)
{
    return lbw_add_backend_suites("runtime-admission", tests);
}

LBW_TEST_SUITES(register_rt_admission_suites)
