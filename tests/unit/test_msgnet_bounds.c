/* test_msgnet_bounds.c — the message transport under hostile load, once
 * per reactor backend: silent connection floods, one source hogging the
 * table, the scheduler's reserved room, a per-frame and a global memory
 * budget, outgoing connections to peers that never read, a pooled peer's
 * close seen at once, host names refused in chains, the address
 * allowlist, and resident memory after a large frame. Raw peers run in
 * threads (bound to 127.0.0.x sources) while the reactor thread serves. */
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "cidr.h"
#include "fixture.h"
#include "log.h"
#include "msgnet.h"
#include "sock.h"
#include "suites.h"

#define MS 1000000ull

static void spin(lbw_reactor *r, double secs)
{
    uint64_t end = lbw_now_ns() + (uint64_t)(secs * 1e9);
    while (lbw_now_ns() < end)
        lbw_reactor_run_once(r, 10 * MS);
}

static void finish(lbw_reactor *r, struct lbw_msgnet **nets, int k)
{
    for (int i = 0; i < k; i++)
        lbw_msgnet_close(nets[i]);
    spin(r, 0.2);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

static int listen_any(char *self, size_t cap)
{
    int fd = lbw_tcp_listen("127.0.0.1", 0, 4096);
    CU_ASSERT_FATAL(fd >= 0);
    snprintf(self, cap, "127.0.0.1:%d", lbw_sock_port(fd));
    return fd;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A blocking client from a chosen 127.0.0.x source. */
static int dial(const char *src_ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    if (src_ip) {
        lbw_sockaddr_from(src_ip, 0, &ss, &sl);
        if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
            close(fd);
            return -1;
        }
    }
    lbw_sockaddr_from("127.0.0.1", (uint16_t)port, &ss, &sl);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static size_t mkframe(uint8_t *out, const char *pre, uint16_t type, const char *src,
                      const char *dst, const void *body, size_t blen, size_t claim)
{
    size_t k = 0;
    if (pre)
        k += lbw_preamble_write(out, pre, strlen(pre));
    uint8_t sess[16] = {1, 2, 3};
    k += lbw_frame_write_head(out + k, type, type == LBW_MSG_DEFAULT ? sess : NULL, src,
                              strlen(src), dst, strlen(dst), claim ? claim : blen);
    if (blen)
        memcpy(out + k, body, blen);
    return k + blen;
}

/* A peer thread: dial from src_ip, write `out`, read up to want_in bytes. */
struct raw {
    const char *src_ip;
    int port;
    const uint8_t *out;
    size_t outlen;
    int hold_ms;
    uint8_t in[16];
    size_t inlen, want_in;
    int eof;
    uint64_t took_ns;
    volatile int done;
};

static void *raw_peer(void *arg)
{
    struct raw *w = arg;
    uint64_t t0 = lbw_now_ns();
    int fd = dial(w->src_ip, w->port);
    if (fd >= 0) {
        size_t off = 0;
        while (off < w->outlen) {
            ssize_t n = send(fd, w->out + off, w->outlen - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        if (w->hold_ms)
            usleep((useconds_t)w->hold_ms * 1000);
        while (!w->want_in || w->inlen < w->want_in) {
            ssize_t n = recv(fd, w->in + w->inlen, sizeof(w->in) - w->inlen, 0);
            if (n == 0)
                w->eof = 1;
            if (n <= 0)
                break;
            w->inlen += (size_t)n;
        }
        close(fd);
    }
    w->took_ns = lbw_now_ns() - t0;
    w->done = 1;
    return NULL;
}

static void raw_run(lbw_reactor *r, struct raw *w, double secs)
{
    pthread_t t;
    pthread_create(&t, NULL, raw_peer, w);
    lbw_test_run_until(r, &w->done, secs);
    pthread_join(t, NULL);
}

static int g_reqs;
static int count_req(void *ctx, struct lbw_frame *f)
{
    g_reqs++;
    return 1;
}

static int log_capture(void)
{
    char p[] = "/tmp/lbw-bounds-log-XXXXXX";
    int fd = mkstemp(p);
    unlink(p);
    lbw_log_set_fd(fd);
    return fd;
}

static int log_has(int fd, const char *needle)
{
    static char buf[65536];
    memset(buf, 0, sizeof(buf));
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    return n > 0 && strstr(buf, needle) != NULL;
}

/* ---- admission --------------------------------------------------------------------- */

/* 40 connections that never send a byte fill a table of 32: the
 * scheduler's connection (another source) is still served at once. */
static void test_silent_flood(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    int port = lbw_sock_port(lfd);
    struct lbw_msgnet_opts o = {.self = self, .max_connections = 32};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    int lg = log_capture();
    int silent[40];
    for (int i = 0; i < 40; i++)
        silent[i] = dial("127.0.0.1", port);
    spin(r, 0.3);
    uint8_t f[256];
    size_t fl = mkframe(f, "127.0.0.2:1", LBW_MSG_DEFAULT, "127.0.0.2:1", self, "{}", 2, 0);
    struct raw w = {.src_ip = "127.0.0.2", .port = port, .out = f, .outlen = fl, .want_in = 1};
    g_reqs = 0;
    raw_run(r, &w, 5);
    CU_ASSERT(w.inlen == 1 && w.in[0] == 1);
    CU_ASSERT(w.took_ns < 2000 * MS);
    CU_ASSERT_EQUAL(g_reqs, 1);
    lbw_log_set_fd(-1);
    CU_ASSERT(log_has(lg, "connections open (the limit)"));
    close(lg);
    for (int i = 0; i < 40; i++)
        if (silent[i] >= 0)
            close(silent[i]);
    finish(r, &n, 1);
}

/* One source may hold only max_per_source connections; the WARNING names
 * it. */
static void test_per_source_limit(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    int port = lbw_sock_port(lfd);
    struct lbw_msgnet_opts o = {.self = self, .max_per_source = 8};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    int lg = log_capture();
    int fds[20];
    for (int i = 0; i < 20; i++)
        fds[i] = dial("127.0.0.5", port);
    spin(r, 0.3);
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(n, &st);
    CU_ASSERT(st.conns_in <= 8);
    lbw_log_set_fd(-1);
    CU_ASSERT(log_has(lg, "connection flood from 127.0.0.5"));
    close(lg);
    for (int i = 0; i < 20; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    finish(r, &n, 1);
}

/* A connection that sends nothing is closed after the preamble deadline,
 * long before the idle timeout. */
static void test_preamble_deadline(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    struct lbw_msgnet_opts o = {.self = self, .preamble_timeout_ns = 200 * MS};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    struct raw w = {.src_ip = "127.0.0.1", .port = lbw_sock_port(lfd)};
    raw_run(r, &w, 3);
    CU_ASSERT(w.eof);
    CU_ASSERT(w.took_ns < 1500 * MS);
    finish(r, &n, 1);
}

/* Other sources hold every unreserved slot in the middle of frames (not
 * evictable): a stranger is refused, the preferred peer gets through. */
static void test_reserved_for_scheduler(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    int port = lbw_sock_port(lfd);
    struct lbw_msgnet_opts o = {.self = self, .max_connections = 16, .reserved = 4,
                                .max_per_source = 16};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    lbw_msgnet_prefer(n, "127.0.0.2:1386");
    uint8_t part[256];
    size_t pl = mkframe(part, "127.0.0.9:1", LBW_MSG_DEFAULT, "127.0.0.9:1", self, "{", 1, 1000);
    int hogs[12];
    for (int i = 0; i < 12; i++) {
        hogs[i] = dial("127.0.0.9", port);
        if (hogs[i] >= 0)
            CU_ASSERT(send(hogs[i], part, pl, MSG_NOSIGNAL) == (ssize_t)pl);
    }
    spin(r, 0.3);
    uint8_t f[256];
    size_t fl = mkframe(f, "127.0.0.3:1", LBW_MSG_DEFAULT, "127.0.0.3:1", self, "{}", 2, 0);
    struct raw stranger = {.src_ip = "127.0.0.3", .port = port, .out = f, .outlen = fl,
                           .want_in = 1};
    raw_run(r, &stranger, 5);
    CU_ASSERT(stranger.inlen == 0);
    fl = mkframe(f, "127.0.0.2:1386", LBW_MSG_DEFAULT, "127.0.0.2:1386", self, "{}", 2, 0);
    struct raw sched = {.src_ip = "127.0.0.2", .port = port, .out = f, .outlen = fl,
                        .want_in = 1};
    raw_run(r, &sched, 5);
    CU_ASSERT(sched.inlen == 1 && sched.in[0] == 1);
    for (int i = 0; i < 12; i++)
        if (hogs[i] >= 0)
            close(hogs[i]);
    finish(r, &n, 1);
}

/* worker.scheduler_allow: a source outside the list gets a closed
 * connection and one log line; an allowed one is served. */
static void test_allowlist(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64], err[200];
    int lfd = listen_any(self, sizeof(self));
    int port = lbw_sock_port(lfd);
    struct lbw_cidr_set allow = {0};
    CU_ASSERT_FATAL(lbw_cidr_set_add(&allow, "127.0.0.2/32", err, sizeof(err)) == 0);
    struct lbw_msgnet_opts o = {.self = self, .allow = &allow};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    lbw_cidr_set_free(&allow); /* the net keeps its own copy */
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    int lg = log_capture();
    uint8_t f[256];
    size_t fl = mkframe(f, "127.0.0.1:1", LBW_MSG_DEFAULT, "127.0.0.1:1", self, "{}", 2, 0);
    g_reqs = 0;
    for (int i = 0; i < 3; i++) {
        struct raw bad = {.src_ip = "127.0.0.1", .port = port, .out = f, .outlen = fl,
                          .want_in = 1};
        raw_run(r, &bad, 5);
        CU_ASSERT(bad.inlen == 0);
    }
    CU_ASSERT_EQUAL(g_reqs, 0);
    struct raw good = {.src_ip = "127.0.0.2", .port = port, .out = f, .outlen = fl,
                       .want_in = 1};
    raw_run(r, &good, 5);
    CU_ASSERT(good.inlen == 1 && good.in[0] == 1);
    CU_ASSERT_EQUAL(g_reqs, 1);
    lbw_log_set_fd(-1);
    static char buf[8192];
    memset(buf, 0, sizeof(buf));
    CU_ASSERT(pread(lg, buf, sizeof(buf) - 1, 0) > 0);
    const char *first = strstr(buf, "not in the allowed");
    CU_ASSERT(first != NULL);
    CU_ASSERT(first && strstr(first + 1, "not in the allowed") == NULL); /* once a minute */
    close(lg);
    finish(r, &n, 1);
}

/* Out of descriptors (RLIMIT_NOFILE reached by a flood from another
 * process): the acceptor closes the oldest silent connection and backs
 * off, and the scheduler's connection (a second process) is served. */
static void test_fd_exhaustion(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    int port = lbw_sock_port(lfd);
    struct lbw_msgnet_opts o = {.self = self};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    spin(r, 0.05);
    int lg = log_capture();
    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    pid_t flood = fork();
    if (flood == 0) {
        int fds[40];
        for (int i = 0; i < 40; i++)
            fds[i] = dial("127.0.0.1", port);
        sleep(4);
        for (int i = 0; i < 40; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        _exit(0);
    }
    struct rlimit low = {(rlim_t)count_fds() + 8, old.rlim_max};
    setrlimit(RLIMIT_NOFILE, &low);
    spin(r, 0.5);
    uint8_t f[256];
    size_t fl = mkframe(f, "127.0.0.2:1", LBW_MSG_DEFAULT, "127.0.0.2:1", self, "{}", 2, 0);
    g_reqs = 0;
    pid_t sched = fork();
    if (sched == 0) {
        struct raw w = {.src_ip = "127.0.0.2", .port = port, .out = f, .outlen = fl,
                        .want_in = 1};
        raw_peer(&w);
        _exit(w.inlen == 1 && w.in[0] == 1 ? 0 : 1);
    }
    int status = -1;
    uint64_t end = lbw_now_ns() + 5000 * MS;
    while (lbw_now_ns() < end) {
        lbw_reactor_run_once(r, 10 * MS);
        if (waitpid(sched, &status, WNOHANG) == sched)
            break;
    }
    setrlimit(RLIMIT_NOFILE, &old);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(g_reqs, 1);
    kill(flood, SIGKILL);
    waitpid(flood, NULL, 0);
    lbw_log_set_fd(-1);
    CU_ASSERT(log_has(lg, "cannot accept a connection: Too many open files"));
    close(lg);
    finish(r, &n, 1);
}

/* ---- memory ------------------------------------------------------------------------- */

/* Partial frames together stay within max_buffered: the second hog is
 * closed, and the preferred peer's frame makes the first give way. */
static void test_inbound_budget(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    int port = lbw_sock_port(lfd);
    struct lbw_msgnet_opts o = {.self = self, .max_buffered = 1u << 20,
                                .max_frame = 4u << 20};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    lbw_msgnet_prefer(n, "127.0.0.2:1386");
    size_t part = 700u << 10;
    uint8_t *buf = calloc(1, part + 512);
    memset(buf + 512, '7', part);
    size_t hl = mkframe(buf, "127.0.0.7:1", LBW_MSG_DEFAULT, "127.0.0.7:1", self, NULL, 0,
                        3u << 20);
    memmove(buf + hl, buf + 512, part);
    struct raw h1 = {.src_ip = "127.0.0.7", .port = port, .out = buf, .outlen = hl + part,
                     .want_in = 1};
    struct raw h2 = h1;
    h2.src_ip = "127.0.0.8";
    pthread_t t1, t2;
    pthread_create(&t1, NULL, raw_peer, &h1);
    spin(r, 0.3);
    pthread_create(&t2, NULL, raw_peer, &h2);
    lbw_test_run_until(r, &h2.done, 5);
    CU_ASSERT(h2.done && h2.inlen == 0); /* refused: over the budget */
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(n, &st);
    CU_ASSERT(st.buffered <= (1u << 20));
    CU_ASSERT(st.buffered > 0);
    /* the scheduler's 700 KiB frame: the hog gives way */
    size_t body = 700u << 10;
    uint8_t *sf = calloc(1, body + 512);
    uint8_t *sbody = malloc(body);
    memset(sbody, ' ', body);
    sbody[0] = '{';
    sbody[body - 1] = '}';
    size_t sl = mkframe(sf, "127.0.0.2:1386", LBW_MSG_DEFAULT, "127.0.0.2:1386", self, sbody,
                        body, 0);
    g_reqs = 0;
    struct raw sched = {.src_ip = "127.0.0.2", .port = port, .out = sf, .outlen = sl,
                        .want_in = 1};
    raw_run(r, &sched, 5);
    CU_ASSERT(sched.inlen == 1 && sched.in[0] == 1);
    CU_ASSERT_EQUAL(g_reqs, 1);
    lbw_test_run_until(r, &h1.done, 5);
    CU_ASSERT(h1.done && h1.inlen == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    lbw_msgnet_stats(n, &st);
    CU_ASSERT_EQUAL(st.buffered, 0);
    free(buf);
    free(sf);
    free(sbody);
    finish(r, &n, 1);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* After a 48 MiB frame has been handled, resident memory is back near
 * where it was (the buffer is handed back to the system). */
static void test_rss_after_large_frame(void)
{
#if defined(__SANITIZE_ADDRESS__)
    printf("SKIP: AddressSanitizer keeps freed memory in quarantine ");
    return;
#endif
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    struct lbw_msgnet_opts o = {.self = self};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, count_req, NULL);
    CU_ASSERT_FATAL(lbw_msgnet_listen(n, lfd) == 0);
    size_t body = 48u << 20;
    uint8_t *f = malloc(body + 512);
    size_t hl = mkframe(f, "127.0.0.1:1", LBW_MSG_DEFAULT, "127.0.0.1:1", self, NULL, 0, body);
    memset(f + hl, ' ', body);
    f[hl] = '{';
    f[hl + body - 1] = '}';
    long before = rss_kib();
    g_reqs = 0;
    struct raw w = {.src_ip = "127.0.0.1", .port = lbw_sock_port(lfd), .out = f,
                    .outlen = hl + body, .want_in = 1};
    pthread_t t;
    pthread_create(&t, NULL, raw_peer, &w);
    lbw_test_run_until(r, &w.done, 20);
    pthread_join(t, NULL);
    CU_ASSERT(w.inlen == 1 && w.in[0] == 1);
    free(f);
    spin(r, 0.1);
    long after = rss_kib();
    CU_ASSERT(after - before < 16 * 1024);
    if (after - before >= 16 * 1024)
        fprintf(stderr, "VmRSS %ld kB before, %ld kB after a 48 MiB frame\n", before, after);
    finish(r, &n, 1);
}

/* ---- outgoing ---------------------------------------------------------------------- */

struct outcome {
    int calls, status;
    volatile int done;
};

static void outcome_cb(void *ctx, int status)
{
    struct outcome *o = ctx;
    o->calls++;
    o->status = status;
    o->done = 1;
}

/* 30 sends to a listener that never reads: at most max_out_per_dest
 * connections; sends beyond the queue fail at once; a send to another
 * peer goes through meanwhile. */
static void test_outbound_bounds(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64], sink[64], peer[64];
    int lfd = listen_any(self, sizeof(self));
    int sfd = listen_any(sink, sizeof(sink)); /* never accepted, never read */
    int pfd = listen_any(peer, sizeof(peer));
    struct lbw_msgnet_opts o = {.self = self, .max_out_per_dest = 4, .max_queued = 10};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, NULL, NULL);
    lbw_msgnet_listen(n, lfd);
    struct lbw_msgnet_opts po = {.self = peer};
    g_reqs = 0;
    struct lbw_msgnet *pn = lbw_msgnet_new(r, &po, count_req, NULL);
    lbw_msgnet_listen(pn, pfd);
    spin(r, 0.05);
    int fds0 = count_fds();
    uint8_t s[16];
    lbw_session_new(s);
    static struct outcome a[30];
    memset(a, 0, sizeof(a));
    int refused = 0;
    for (int i = 0; i < 30; i++) {
        int rc = lbw_msgnet_send(n, sink, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &a[i]);
        CU_ASSERT(rc == 0 || rc == -ENOBUFS);
        refused += rc == -ENOBUFS;
    }
    spin(r, 0.3);
    int fds1 = count_fds();
    CU_ASSERT(fds1 - fds0 <= 4);
    CU_ASSERT_EQUAL(refused, 16);
    struct outcome b = {0};
    CU_ASSERT(lbw_msgnet_send(n, peer, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &b) == 0);
    lbw_test_run_until(r, &b.done, 2);
    CU_ASSERT(b.done && b.status == 0);
    CU_ASSERT_EQUAL(g_reqs, 1);
    lbw_msgnet_close(n);
    spin(r, 0.2);
    int cancelled = 0;
    for (int i = 0; i < 30; i++)
        cancelled += a[i].calls == 1 && a[i].status == -ECANCELED;
    CU_ASSERT_EQUAL(cancelled, 14);
    close(sfd);
    finish(r, &pn, 1);
}

/* A pooled connection whose peer closes is closed here at once (no
 * CLOSE_WAIT until the pool's idle limit). */
static void test_pooled_close_seen(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64], peer[64];
    int lfd = listen_any(self, sizeof(self));
    int pfd = listen_any(peer, sizeof(peer));
    struct lbw_msgnet_opts o = {.self = self};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, NULL, NULL);
    lbw_msgnet_listen(n, lfd);
    struct lbw_msgnet_opts po = {.self = peer};
    struct lbw_msgnet *pn = lbw_msgnet_new(r, &po, count_req, NULL);
    lbw_msgnet_listen(pn, pfd);
    spin(r, 0.05);
    int fds0 = count_fds();
    uint8_t s[16];
    lbw_session_new(s);
    struct outcome b = {0};
    CU_ASSERT(lbw_msgnet_send(n, peer, LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb, &b) == 0);
    lbw_test_run_until(r, &b.done, 2);
    CU_ASSERT(b.status == 0);
    lbw_msgnet_close(pn); /* the peer goes away: its listener and connections */
    spin(r, 0.3);
    struct lbw_msgnet_stats st;
    lbw_msgnet_stats(n, &st);
    CU_ASSERT_EQUAL(st.conns_out, 0);
    CU_ASSERT(count_fds() <= fds0 - 1); /* the peer's listener is gone too */
    finish(r, &n, 1);
}

/* Host names in chains are refused with one clear line, never resolved
 * inside the loop. */
static void test_names_refused(void)
{
    lbw_reactor *r = lbw_test_reactor();
    char self[64];
    int lfd = listen_any(self, sizeof(self));
    struct lbw_msgnet_opts o = {.self = self};
    struct lbw_msgnet *n = lbw_msgnet_new(r, &o, NULL, NULL);
    lbw_msgnet_listen(n, lfd);
    int lg = log_capture();
    uint8_t s[16];
    lbw_session_new(s);
    struct outcome a = {0};
    CU_ASSERT(lbw_msgnet_send(n, "localhost:1386", LBW_MSG_DEFAULT, s, "{}", 2, outcome_cb,
                              &a) == -EINVAL);
    CU_ASSERT(lbw_msgnet_send(n, "no-such-host.invalid:1386", LBW_MSG_DEFAULT, s, "{}", 2,
                              outcome_cb, &a) == -EINVAL);
    lbw_log_set_fd(-1);
    CU_ASSERT(log_has(lg, "host names are not resolved"));
    CU_ASSERT(log_has(lg, "'localhost'"));
    close(lg);
    spin(r, 0.05);
    CU_ASSERT_EQUAL(a.calls, 0);
    finish(r, &n, 1);
}

static const struct lbw_test tests[] = {
    {"40 silent connections: the scheduler still gets through", test_silent_flood},
    {"one source is held to its limit and named", test_per_source_limit},
    {"a silent connection is closed at the preamble deadline", test_preamble_deadline},
    {"room reserved for the preferred peer", test_reserved_for_scheduler},
    {"allowlist: others refused and logged once", test_allowlist},
    {"out of descriptors: the oldest silent connection makes room", test_fd_exhaustion},
    {"partial frames share one memory budget", test_inbound_budget},
    {"resident memory returns after a 48 MiB frame", test_rss_after_large_frame},
    {"outgoing connections bounded per destination, queue bounded", test_outbound_bounds},
    {"a pooled peer's close is seen at once", test_pooled_close_seen},
    {"host names in chains refused", test_names_refused},
    {NULL, NULL},
};

static int register_msgnet_bounds_suites(void)
{
    return lbw_add_backend_suites("msgnet-bounds", tests);
}

LBW_TEST_SUITES(register_msgnet_bounds_suites)
