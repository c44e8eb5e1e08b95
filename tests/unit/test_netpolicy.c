/* test_netpolicy.c — address networks (kernel-iface/cidr: parsing,
 * IPv4/IPv6/mapped matching, once-a-minute memory) and the allowlist on
 * scheduler broadcasts (wire/net/discover), the latter once per reactor
 * backend on a private UDP port. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cidr.h"
#include "discover.h"
#include "log.h"
#include "msgnet.h"
#include "resolve.h"
#include "sock.h"
#include "suites.h"

static void test_cidr(void)
{
    struct lbw_cidr c;
    CU_ASSERT(lbw_cidr_parse("10.0.0.0/8", &c) == 0 && c.fam == 4 && c.bits == 8);
    CU_ASSERT(lbw_cidr_parse("192.168.1.7", &c) == 0 && c.bits == 32);
    CU_ASSERT(lbw_cidr_parse("fd00::/8", &c) == 0 && c.fam == 6 && c.bits == 8);
    CU_ASSERT(lbw_cidr_parse("::ffff:10.1.2.3/120", &c) == 0 && c.fam == 4 && c.bits == 24);
    const char *bad[] = {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "host.example", "1.2.3.4/x",
                         "::1/129", "/8", "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT(lbw_cidr_parse(bad[i], &c) < 0);
    struct lbw_cidr_set s = {0};
    char err[200];
    CU_ASSERT(lbw_cidr_set_match_ip(&s, "8.8.8.8")); /* empty: all */
    CU_ASSERT(lbw_cidr_set_add(&s, "10.0.0.0/8", err, sizeof(err)) == 0);
    CU_ASSERT(lbw_cidr_set_add(&s, "192.168.1.7", err, sizeof(err)) == 0);
    CU_ASSERT(lbw_cidr_set_add(&s, "fd00::/8", err, sizeof(err)) == 0);
    CU_ASSERT(lbw_cidr_set_add(&s, "nonsense", err, sizeof(err)) < 0);
    CU_ASSERT(strstr(err, "'nonsense' is not an IP address or network") != NULL);
    CU_ASSERT(lbw_cidr_set_match_ip(&s, "10.200.3.4"));
    CU_ASSERT(lbw_cidr_set_match_ip(&s, "::ffff:10.200.3.4"));
    CU_ASSERT(!lbw_cidr_set_match_ip(&s, "11.0.0.1"));
    CU_ASSERT(lbw_cidr_set_match_ip(&s, "192.168.1.7"));
    CU_ASSERT(!lbw_cidr_set_match_ip(&s, "192.168.1.8"));
    CU_ASSERT(lbw_cidr_set_match_ip(&s, "fd12::1"));
    CU_ASSERT(!lbw_cidr_set_match_ip(&s, "fe80::1"));
    CU_ASSERT(!lbw_cidr_set_match_ip(&s, "scheduler.example")); /* names never match */
    struct sockaddr_storage ss;
    socklen_t sl;
    lbw_sockaddr_from("10.1.1.1", 5, &ss, &sl);
    CU_ASSERT(lbw_cidr_set_match(&s, &ss));
    lbw_sockaddr_from("127.0.0.1", 5, &ss, &sl);
    CU_ASSERT(!lbw_cidr_set_match(&s, &ss));
    lbw_cidr_set_free(&s);
    struct lbw_seen seen = {0};
    CU_ASSERT(lbw_seen_due(&seen, "1.2.3.4", 1000, 60));
    CU_ASSERT(!lbw_seen_due(&seen, "1.2.3.4", 1030, 60));
    CU_ASSERT(lbw_seen_due(&seen, "1.2.3.5", 1030, 60));
    CU_ASSERT(lbw_seen_due(&seen, "1.2.3.4", 1061, 60));
    for (int i = 0; i < 200; i++) { /* a flood of sources does not grow it */
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
        CU_ASSERT(lbw_seen_due(&seen, ip, 2000, 60));
    }
}

/* Names given by a person are resolved off the loop with a deadline; a
 * name that does not resolve says so (not "No route to host"). */
static void test_resolve(void)
{
    char ip[64], err[256] = "", out[256];
    CU_ASSERT(lbw_resolve_host("10.1.2.3", ip, sizeof(ip), 1000000000ull, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(ip, "10.1.2.3");
    CU_ASSERT(lbw_resolve_host("localhost", ip, sizeof(ip), 5000000000ull, err, sizeof(err)) == 0);
    CU_ASSERT(strcmp(ip, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0);
    CU_ASSERT(lbw_resolve_host("no-such-host.invalid", ip, sizeof(ip), 5000000000ull, err,
                               sizeof(err)) < 0);
    CU_ASSERT(strncmp(err, "cannot resolve no-such-host.invalid: ", 37) == 0);
    CU_ASSERT(lbw_msgnet_resolve_chain("localhost:1386|10.0.0.2:22", out, sizeof(out),
                                       5000000000ull, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "127.0.0.1:1386|10.0.0.2:22");
    CU_ASSERT(lbw_msgnet_resolve_chain("10.0.0.1:1|no-such-host.invalid:2", out, sizeof(out),
                                       5000000000ull, err, sizeof(err)) < 0);
    CU_ASSERT(strstr(err, "cannot resolve no-such-host.invalid") != NULL);
    CU_ASSERT(lbw_msgnet_resolve_chain("not a chain", out, sizeof(out), 1000000000ull, err,
                                       sizeof(err)) == -EINVAL);
}

static char g_found[256];
static volatile int g_done;
static void on_found(void *ctx, const char *a)
{
    snprintf(g_found, sizeof(g_found), "%s", a);
    g_done = 1;
}

static void announce(uint16_t port, const char *addr)
{
    char body[256];
    int bl = snprintf(body, sizeof(body), "{\"message_address\": \"%s\"}", addr);
    uint8_t d[512];
    size_t n = lbw_discover_build((const uint8_t *)body, (size_t)bl, d, sizeof(d));
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT(sendto(fd, d, n, 0, (struct sockaddr *)&sa, sizeof(sa)) == (ssize_t)n);
    close(fd);
}

/* With an allowlist, a broadcast announcing another scheduler is ignored
 * (one log line) and the allowed one is taken. */
static void test_discover_allow(void)
{
    lbw_reactor *r = lbw_test_reactor();
    uint16_t port = (uint16_t)(40000 + getpid() % 20000);
    char err[200];
    g_done = 0;
    g_found[0] = 0;
    char p[] = "/tmp/lbw-disc-XXXXXX";
    int lg = mkstemp(p);
    unlink(p);
    lbw_log_set_fd(lg);
    struct lbw_discover *d = lbw_discover_start(r, port, on_found, NULL, err, sizeof(err));
    CU_ASSERT_FATAL(d != NULL);
    struct lbw_cidr_set allow = {0};
    lbw_cidr_set_add(&allow, "127.0.0.0/24", err, sizeof(err));
    lbw_discover_set_allow(d, &allow);
    lbw_cidr_set_free(&allow);
    announce(port, "10.9.9.9:1386");
    announce(port, "10.9.9.9:1386");
    announce(port, "rogue.example:1386");
    announce(port, "127.0.0.2:1386");
    uint64_t end = lbw_now_ns() + 3000000000ull;
    while (!g_done && lbw_now_ns() < end)
        lbw_reactor_run_once(r, 10000000ull);
    lbw_log_set_fd(-1);
    CU_ASSERT_STRING_EQUAL(g_found, "127.0.0.2:1386");
    char buf[4096] = {0};
    CU_ASSERT(pread(lg, buf, sizeof(buf) - 1, 0) > 0);
    const char *first = strstr(buf, "ignored a broadcast announcing 10.9.9.9:1386");
    CU_ASSERT(first != NULL);
    CU_ASSERT(first && !strstr(first + 30, "announcing 10.9.9.9:1386")); /* once a minute */
    CU_ASSERT(strstr(buf, "announcing rogue.example:1386") != NULL);
    close(lg);
    for (int i = 0; i < 20 && lbw_reactor_pending(r); i++)
        lbw_reactor_run_once(r, 10000000ull);
    CU_ASSERT_EQUAL(lbw_reactor_pending(r), 0);
    lbw_reactor_free(r);
}

/* A set grows past its first room, and a copy (sized exactly) grows again
 * when added to: each entry stays where match finds it. */
static void test_cidr_growth(void)
{
    struct lbw_cidr_set s = {0}, c;
    char err[200], ip[32];
    for (int i = 0; i < 40; i++) {
        snprintf(ip, sizeof(ip), "10.0.%d.1", i);
        CU_ASSERT_FATAL(lbw_cidr_set_add(&s, ip, err, sizeof(err)) == 0);
    }
    CU_ASSERT(s.n == 40 && s.cap >= 40);
    CU_ASSERT_FATAL(lbw_cidr_set_copy(&c, &s) == 0);
    lbw_cidr_set_free(&s);
    CU_ASSERT(s.v == NULL && s.n == 0 && s.cap == 0);
    for (int i = 40; i < 60; i++) {
        snprintf(ip, sizeof(ip), "10.0.%d.1", i);
        CU_ASSERT_FATAL(lbw_cidr_set_add(&c, ip, err, sizeof(err)) == 0);
    }
    CU_ASSERT(c.n == 60);
    for (int i = 0; i < 60; i++) {
        snprintf(ip, sizeof(ip), "10.0.%d.1", i);
        CU_ASSERT(lbw_cidr_set_match_ip(&c, ip));
    }
    CU_ASSERT(!lbw_cidr_set_match_ip(&c, "10.0.60.1"));
    lbw_cidr_set_free(&c);
}

static const struct lbw_test cidr_tests[] = {
    {"networks: parse, match, once-a-minute memory", test_cidr},
    {"a network set grows, and its copy grows again", test_cidr_growth},
    {"names resolved with a deadline; unresolvable ones say so", test_resolve},
    {NULL, NULL},
};
static const struct lbw_test disc_tests[] = {
    {"broadcasts outside the allowlist are ignored", test_discover_allow},
    {NULL, NULL},
};

static int register_netpolicy_suites(void)
{
    if (lbw_add_suite("netpolicy", NULL, NULL, cidr_tests) < 0)
        return -1;
    return lbw_add_backend_suites("discover-allow", disc_tests);
}

LBW_TEST_SUITES(register_netpolicy_suites)
