/* test_unixsock.c — kernel-iface/unixsock: exclusive bind of an abstract
 * name, connect, SO_PEERCRED, the name freed when its owner closes, and
 * the listing of bound names by prefix (sock_diag live, /proc/net/unix
 * from a fixture). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "unixsock.h"

static void uniq(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "lbw-test/%d/%s", (int)getpid(), what);
}

static void test_exclusive_bind(void)
{
    char name[96];
    uniq(name, sizeof(name), "excl");
    int a = lbw_unix_listen(name, SOCK_SEQPACKET, 8);
    CU_ASSERT_FATAL(a >= 0);
    CU_ASSERT_EQUAL(lbw_unix_listen(name, SOCK_SEQPACKET, 8), -EADDRINUSE);
    /* (each socket type has its own abstract namespace) */
    close(a);
    int b = lbw_unix_listen(name, SOCK_SEQPACKET, 8); /* freed with its owner */
    CU_ASSERT(b >= 0);
    close(b);
    CU_ASSERT_EQUAL(lbw_unix_listen("", SOCK_STREAM, 1), -EINVAL);
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CU_ASSERT_EQUAL(lbw_unix_listen(longname, SOCK_STREAM, 1), -ENAMETOOLONG);
}

static void test_connect_peercred(void)
{
    char name[96];
    uniq(name, sizeof(name), "cred");
    CU_ASSERT_EQUAL(lbw_unix_connect(name, SOCK_SEQPACKET), -ECONNREFUSED);
    int l = lbw_unix_listen(name, SOCK_SEQPACKET, 8);
    CU_ASSERT_FATAL(l >= 0);
    int c = lbw_unix_connect(name, SOCK_SEQPACKET);
    CU_ASSERT_FATAL(c >= 0);
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CU_ASSERT_FATAL(s >= 0);
    pid_t pid;
    uid_t uid;
    gid_t gid;
    CU_ASSERT_EQUAL(lbw_unix_peercred(s, &pid, &uid, &gid), 0);
    CU_ASSERT_EQUAL(pid, getpid());
    CU_ASSERT_EQUAL(uid, getuid());
    CU_ASSERT_EQUAL(gid, getgid());
    /* message boundaries are kept */
    CU_ASSERT_EQUAL(send(c, "ab", 2, 0), 2);
    CU_ASSERT_EQUAL(send(c, "cde", 3, 0), 3);
    char buf[16];
    CU_ASSERT_EQUAL(recv(s, buf, sizeof(buf), 0), 2);
    CU_ASSERT_EQUAL(recv(s, buf, sizeof(buf), 0), 3);
    close(c); /* the closing is seen as end of stream */
    CU_ASSERT_EQUAL(recv(s, buf, sizeof(buf), 0), 0);
    close(s);
    close(l);
}

struct names {
    char got[8][108];
    int n;
};

static void collect(void *ctx, const char *name)
{
    struct names *ns = ctx;
    if (ns->n < 8)
        snprintf(ns->got[ns->n], sizeof(ns->got[0]), "%s", name);
    ns->n++;
}

static void test_list_live(void)
{
    char prefix[96], n1[128], n2[128];
    uniq(prefix, sizeof(prefix), "list/");
    snprintf(n1, sizeof(n1), "%sone", prefix);
    snprintf(n2, sizeof(n2), "%stwo", prefix);
    int a = lbw_unix_listen(n1, SOCK_SEQPACKET, 8);
    int b = lbw_unix_listen(n2, SOCK_STREAM, 8);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    int c = lbw_unix_connect(n1, SOCK_SEQPACKET); /* a connection is not a second name */
    CU_ASSERT(c >= 0);
    struct names ns = {0};
    CU_ASSERT_EQUAL(lbw_unix_list(prefix, collect, &ns), 2);
    CU_ASSERT_EQUAL(ns.n, 2);
    int s1 = 0, s2 = 0;
    for (int i = 0; i < ns.n && i < 8; i++) {
        s1 |= !strcmp(ns.got[i], n1);
        s2 |= !strcmp(ns.got[i], n2);
    }
    CU_ASSERT(s1 && s2);
    close(b);
    ns = (struct names){0};
    CU_ASSERT_EQUAL(lbw_unix_list(prefix, collect, &ns), 1);
    /* the fallback agrees on this host */
    ns = (struct names){0};
    CU_ASSERT_EQUAL(lbw_unix_list_proc("/", prefix, collect, &ns), 1);
    close(c);
    close(a);
}

static void test_list_proc_fixture(void)
{
    const char *dir = getenv("LBW_FIXTURES");
    char root[512];
    snprintf(root, sizeof(root), "%s/unixsock", dir && *dir ? dir : "tests/fixtures");
    struct names ns = {0};
    /* listening sockets only, each name once, the prefix respected */
    CU_ASSERT_EQUAL(lbw_unix_list_proc(root, "lifeblood-worker/ledger/7/", collect, &ns), 2);
    CU_ASSERT_STRING_EQUAL(ns.got[0], "lifeblood-worker/ledger/7/m/100");
    CU_ASSERT_STRING_EQUAL(ns.got[1], "lifeblood-worker/ledger/7/m/200");
    CU_ASSERT(lbw_unix_list_proc("/nonexistent-root", "x", collect, &ns) < 0);
}

static const struct lbw_test tests[] = {
    {"exclusive bind of an abstract name", test_exclusive_bind},
    {"connect, peer credentials, message boundaries", test_connect_peercred},
    {"listing bound names by prefix (sock_diag)", test_list_live},
    {"listing from a /proc/net/unix fixture", test_list_proc_fixture},
    {NULL, NULL},
};

static int register_unixsock_suites(void) { return lbw_add_suite("unixsock", NULL, NULL, tests); }

LBW_TEST_SUITES(register_unixsock_suites)
