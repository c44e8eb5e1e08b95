/* test_ledger.c — daemon/ledger between real processes (forked members on
 * an abstract namespace of the test's own): a member's claim is seen by
 * the arbiter, freed when the member is SIGKILLed; members claiming at
 * the same instant get disjoint CPUs; when the arbiter is SIGKILLed a
 * survivor takes over with its own claims; a record that is not the
 * ledger's gets the sender disconnected; a member in another network
 * namespace founds a ledger of its own; and a stress run (32 members,
 * 10,000 claims, random SIGKILLs) checked by an observer outside the mesh.
 * Descriptors and the status snapshot: hostile records refused field by
 * field, a member with a hostile descriptor disconnected, an observer's
 * snapshot and its change notes. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"
#include "suites.h"
#include "unixsock.h"

static struct lbw_topo *topo8(void)
{
    struct lbw_topo *t = calloc(1, sizeof(*t));
    for (unsigned c = 0; c < 8; c++)
        t->cpus[t->ncpus++] = (struct lbw_topo_cpu){.id = (uint16_t)c, .core = c};
    t->cpu_cap = 8;
    t->mem_cap = 64ull << 30;
    return t;
}

static void on_change(void *ctx) { (*(int *)ctx)++; }

static lbw_reactor *mkreactor(void)
{
    struct lbw_reactor_opts ro = {.backend = lbw_test_backend()};
    lbw_reactor *r = NULL;
    char e[200];
    lbw_reactor_new(&r, &ro, e, sizeof(e));
    return r;
}

static struct lbw_ledger *open_l(lbw_reactor *r, const char *ns, const struct lbw_topo *t,
                                 int *changes)
{
    struct lbw_ledger_opts o = {.r = r, .hwid = 0x1234, .ns = ns, .topo = t,
                                .allow_gid = (gid_t)-1, .on_change = on_change, .ctx = changes};
    char err[300];
    struct lbw_ledger *l = lbw_ledger_open(&o, err, sizeof(err));
    if (!l)
        fprintf(stderr, "ledger: %s\n", err);
    return l;
}

/* Runs the loop until used.cpu == want (at most ~3 s). */
static int wait_used(lbw_reactor *r, struct lbw_ledger *l, double want)
{
    for (unsigned i = 0; i < 300; i++) {
        struct lbw_usage u;
        lbw_ledger_used(l, &u);
        if (u.cpu > want - 1e-9 && u.cpu < want + 1e-9)
            return 0;
        lbw_reactor_run_once(r, 10000000);
    }
    return -1;
}

/* A member process: opens, claims `cpus` CPUs, writes the CPU list to
 * fd, then serves its ledger until killed. */
static pid_t member(const char *ns, double cpus, int wfd, int go_fd)
{
    pid_t p = fork();
    if (p != 0)
        return p;
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *l = open_l(r, ns, t, &ch);
    if (!l)
        _exit(2);
    char c;
    if (go_fd >= 0 && read(go_fd, &c, 1) != 1)
        _exit(3);
    struct lbw_claim_req q = {.min_cpu = cpus};
    struct lbw_claim cl;
    int f = lbw_ledger_claim(l, &q, &cl);
    char line[512];
    lbw_cpuset_format(&cl.cpus, line, sizeof(line) - 40);
    size_t n = strlen(line);
    snprintf(line + n, sizeof(line) - n, " %d\n", f);
    if (write(wfd, line, strlen(line)) < 0)
        _exit(4);
    for (unsigned i = 0; i < 3000; i++)
        lbw_reactor_run_once(r, 10000000);
    _exit(0);
}

/* Reads a line from a member while serving our own ledger (r may be NULL). */
static int read_line_r(lbw_reactor *r, int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (unsigned i = 0; i < 500 && r; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1)
            break;
        lbw_reactor_run_once(r, 10000000);
    }
    while (n + 1 < cap) {
        ssize_t k = read(fd, buf + n, 1);
        if (k <= 0)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = 0;
    return 0;
}

static void uniq_ns(char *ns, size_t cap, const char *what)
{
    snprintf(ns, cap, "lbw-test/%d/%s/%d", (int)getpid(), what, (int)lbw_test_backend());
}

static void test_claim_seen_and_freed_on_sigkill(void)
{
    char ns[64];
    uniq_ns(ns, sizeof(ns), "kill");
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *a = open_l(r, ns, t, &ch);
    CU_ASSERT_FATAL(a != NULL);
    CU_ASSERT(lbw_ledger_is_arbiter(a));
    int pp[2];
    CU_ASSERT_FATAL(pipe(pp) == 0);
    pid_t m = member(ns, 3, pp[1], -1);
    char line[512];
    CU_ASSERT_FATAL(read_line_r(r, pp[0], line, sizeof(line)) == 0);
    CU_ASSERT_STRING_EQUAL(line, "0-2 0");
    CU_ASSERT_EQUAL(wait_used(r, a, 3), 0);
    /* our own claim avoids the member's CPUs */
    struct lbw_claim_req q = {.min_cpu = 2};
    struct lbw_claim cl;
    CU_ASSERT_EQUAL(lbw_ledger_claim(a, &q, &cl), 0);
    lbw_cpuset_format(&cl.cpus, line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "3-4");
    kill(m, SIGKILL);
    waitpid(m, NULL, 0);
    CU_ASSERT_EQUAL(wait_used(r, a, 2), 0); /* its 3 are free: no timer, the socket closed */
    lbw_ledger_release(a, cl.id);
    CU_ASSERT_EQUAL(wait_used(r, a, 0), 0);
    CU_ASSERT(ch > 0);
    close(pp[0]);
    close(pp[1]);
    lbw_ledger_close(a);
    lbw_reactor_free(r);
    free(t);
}

static void test_same_instant_disjoint(void)
{
    char ns[64];
    uniq_ns(ns, sizeof(ns), "race");
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *a = open_l(r, ns, t, &ch);
    CU_ASSERT_FATAL(a != NULL);
    int pp[2], go[2];
    CU_ASSERT_FATAL(pipe(pp) == 0 && pipe(go) == 0);
    pid_t kids[4];
    for (int i = 0; i < 4; i++)
        kids[i] = member(ns, 3, pp[1], go[0]);
    /* let all four join, then release them at once */
    for (unsigned i = 0; i < 50; i++)
        lbw_reactor_run_once(r, 10000000);
    CU_ASSERT(write(go[1], "gggg", 4) == 4);
    struct lbw_cpuset all;
    lbw_cpuset_clear(&all);
    unsigned total = 0, short_ = 0;
    for (int i = 0; i < 4; i++) {
        char line[512];
        /* serve the claims while reading the answers */
        CU_ASSERT_FATAL(read_line_r(r, pp[0], line, sizeof(line)) == 0);
        char *sp = strrchr(line, ' ');
        int f = atoi(sp + 1);
        *sp = 0;
        struct lbw_cpuset s;
        lbw_cpuset_clear(&s);
        if (strcmp(line, "none"))
            CU_ASSERT(lbw_cpuset_parse(line, &s) == 0);
        for (unsigned c = 0; c < 8; c++) {
            if (lbw_cpuset_has(&s, c)) {
                CU_ASSERT(!lbw_cpuset_has(&all, c)); /* never in two claims */
                lbw_cpuset_set(&all, c);
                total++;
            }
        }
        short_ += f != 0;
    }
    CU_ASSERT_EQUAL(total, 8);  /* 3 + 3 + 2 + 0: everything, nothing twice */
    CU_ASSERT_EQUAL(short_, 2); /* two were told they got less */
    CU_ASSERT_EQUAL(wait_used(r, a, 8), 0);
    for (int i = 0; i < 4; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    CU_ASSERT_EQUAL(wait_used(r, a, 0), 0);
    close(pp[0]);
    close(pp[1]);
    close(go[0]);
    close(go[1]);
    lbw_ledger_close(a);
    lbw_reactor_free(r);
    free(t);
}

static void test_arbiter_killed_survivor_takes_over(void)
{
    char ns[64];
    uniq_ns(ns, sizeof(ns), "takeover");
    int pp[2];
    CU_ASSERT_FATAL(pipe(pp) == 0);
    pid_t arb = member(ns, 4, pp[1], -1); /* founds the mesh, holds 0-3 */
    char line[512];
    CU_ASSERT_FATAL(read_line_r(NULL, pp[0], line, sizeof(line)) == 0);
    CU_ASSERT_STRING_EQUAL(line, "0-3 0");
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *b = open_l(r, ns, t, &ch);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT(!lbw_ledger_is_arbiter(b));
    struct lbw_claim_req q = {.min_cpu = 2};
    struct lbw_claim cl;
    CU_ASSERT_EQUAL(lbw_ledger_claim(b, &q, &cl), 0);
    lbw_cpuset_format(&cl.cpus, line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "4-5");
    CU_ASSERT_EQUAL(wait_used(r, b, 6), 0);
    kill(arb, SIGKILL);
    waitpid(arb, NULL, 0);
    CU_ASSERT_EQUAL(wait_used(r, b, 2), 0); /* new arbiter, with our claim */
    CU_ASSERT(lbw_ledger_is_arbiter(b));
    q.min_cpu = 5;
    struct lbw_claim c2;
    CU_ASSERT_EQUAL(lbw_ledger_claim(b, &q, &c2), 0);
    lbw_cpuset_format(&c2.cpus, line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "0-3,6");
    close(pp[0]);
    close(pp[1]);
    lbw_ledger_close(b);
    lbw_reactor_free(r);
    free(t);
}

static void test_garbage_disconnects(void)
{
    char ns[64];
    uniq_ns(ns, sizeof(ns), "junk");
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *a = open_l(r, ns, t, &ch);
    CU_ASSERT_FATAL(a != NULL);
    char name[128];
    snprintf(name, sizeof(name), "%s/1234", ns);
    int fd = lbw_unix_connect(name, SOCK_SEQPACKET);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(send(fd, "hello", 5, 0) == 5);
    for (unsigned i = 0; i < 20; i++)
        lbw_reactor_run_once(r, 5000000);
    char b[8];
    CU_ASSERT_EQUAL(recv(fd, b, sizeof(b), MSG_DONTWAIT), 0); /* closed on us */
    close(fd);
    lbw_ledger_close(a);
    lbw_reactor_free(r);
    free(t);
}


static struct lbw_ledger_desc good_desc(void);

/* A member whose descriptor carries a terminal escape is disconnected; a
 * good one is taken; the arbiter goes on serving. */
static void test_hostile_descriptor_disconnects(void)
{
    char ns[64];
    uniq_ns(ns, sizeof(ns), "desc");
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *a = open_l(r, ns, t, &ch);
    CU_ASSERT_FATAL(a != NULL);
    char name[128], rec[8192], b[8192];
    snprintf(name, sizeof(name), "%s/1234", ns);
    struct lbw_ledger_desc d = good_desc();
    for (int hostile = 1; hostile >= 0; hostile--) {
        int fd = lbw_unix_connect(name, SOCK_SEQPACKET);
        CU_ASSERT_FATAL(fd >= 0);
        d.scheduler[1] = hostile ? '\033' : '9';
        long n = lbw_ledger_record_build(LBW_REC_DESC, 0, &d, NULL, NULL, rec, sizeof(rec));
        CU_ASSERT_FATAL(n > 0);
        CU_ASSERT(send(fd, rec, (size_t)n, 0) == n);
        for (unsigned i = 0; i < 20; i++)
            lbw_reactor_run_once(r, 5000000);
        ssize_t got = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (hostile) {
            CU_ASSERT_EQUAL(got, 0); /* closed on us */
        } else {
            /* still connected (it is told of the change as an observer) */
            CU_ASSERT(got > 0 || (got < 0 && errno == EAGAIN));
        }
        close(fd);
    }
    lbw_ledger_close(a);
    lbw_reactor_free(r);
    free(t);
}

/* Another network namespace has its own abstract names, hence its own
 * ledger: a member there founds a mesh of its own and sees none of ours. */
static void test_netns_apart(void)
{
    char ns[64];
    uniq_ns(ns, sizeof(ns), "netns");
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *a = open_l(r, ns, t, &ch);
    CU_ASSERT_FATAL(a != NULL);
    struct lbw_claim_req q = {.min_cpu = 8};
    struct lbw_claim cl;
    CU_ASSERT_EQUAL(lbw_ledger_claim(a, &q, &cl), 0); /* the whole host, here */
    pid_t p = fork();
    if (p == 0) {
        if (unshare(CLONE_NEWNET) < 0)
            _exit(77);
        lbw_reactor *r2 = mkreactor();
        int ch2 = 0;
        struct lbw_ledger *b = open_l(r2, ns, t, &ch2);
        struct lbw_claim c2;
        int ok = b && lbw_ledger_is_arbiter(b) && lbw_ledger_claim(b, &q, &c2) == 0 &&
                 lbw_cpuset_count(&c2.cpus) == 8;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    waitpid(p, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        lbw_test_skip("network namespaces", "unshare(CLONE_NEWNET) is not allowed here");
    else
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    lbw_ledger_close(a);
    lbw_reactor_free(r);
    free(t);
}

/* ---- stress: 32 members, random claims and releases, random SIGKILLs, the
 * invariant checked by an observer that is not a member -------------------------- */

enum { S_MEMBERS = 32, S_TARGET = 10000 };

struct slot {
    uint64_t gen;   /* odd while the member writes */
    uint64_t bits;  /* the CPUs it holds (of 64) */
};

struct shared {
    uint64_t ops;   /* claims granted, all members */
    int stop;
    struct slot slot[S_MEMBERS];
};

static void slot_write(struct slot *sl, uint64_t bits)
{
    __atomic_add_fetch(&sl->gen, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&sl->bits, bits, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&sl->gen, 1, __ATOMIC_SEQ_CST);
}

static pid_t stress_member(const char *ns, struct shared *sh, int i, uint64_t seed)
{
    pid_t p = fork();
    if (p != 0)
        return p;
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = calloc(1, sizeof(*t));
    for (unsigned c = 0; c < 64; c++)
        t->cpus[t->ncpus++] = (struct lbw_topo_cpu){.id = (uint16_t)c, .node = (int16_t)(c / 32),
                                                    .core = c % 32};
    t->cpu_cap = 64;
    t->mem_cap = 1ull << 40;
    int ch = 0;
    struct lbw_ledger *l = open_l(r, ns, t, &ch);
    if (!l)
        _exit(2);
    uint64_t x = seed | 1;
    for (unsigned round = 0; round < 1000000 && !__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST);
         round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        struct lbw_claim_req q = {.min_cpu = (double)(1 + x % 8), .pref_cpu = (double)(x >> 8 & 15)};
        struct lbw_claim cl;
        if (lbw_ledger_claim(l, &q, &cl) >= 0) {
            slot_write(&sh->slot[i], cl.cpus.bits[0]);
            __atomic_add_fetch(&sh->ops, 1, __ATOMIC_SEQ_CST);
            for (unsigned k = 0; k < (x >> 16) % 4; k++)
                lbw_reactor_run_once(r, 100000);
            slot_write(&sh->slot[i], 0);
            lbw_ledger_release(l, cl.id);
        }
        lbw_reactor_run_once(r, 500000); /* (a worker between tasks sleeps in its loop) */
    }
    _exit(0);
}

static void test_stress_invariant(void)
{
    char ns[64];
    uniq_ns(ns, sizeof(ns), "stress");
    struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                             -1, 0);
    CU_ASSERT_FATAL(sh != MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    pid_t kids[S_MEMBERS];
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < S_MEMBERS; i++)
        kids[i] = stress_member(ns, sh, i, x + (uint64_t)i * 7919);
    unsigned violations = 0, checks = 0, kills = 0;
    uint64_t g1[S_MEMBERS], b1[S_MEMBERS], g2[S_MEMBERS], b2[S_MEMBERS];
    uint64_t until = lbw_now_ns() + 60ull * 1000000000ull;
    while (__atomic_load_n(&sh->ops, __ATOMIC_SEQ_CST) < S_TARGET && lbw_now_ns() < until) {
        for (int round = 0; round < 200; round++) {
            for (int i = 0; i < S_MEMBERS; i++) {
                g1[i] = __atomic_load_n(&sh->slot[i].gen, __ATOMIC_SEQ_CST);
                b1[i] = __atomic_load_n(&sh->slot[i].bits, __ATOMIC_SEQ_CST);
            }
            for (int i = 0; i < S_MEMBERS; i++) {
                b2[i] = __atomic_load_n(&sh->slot[i].bits, __ATOMIC_SEQ_CST);
                g2[i] = __atomic_load_n(&sh->slot[i].gen, __ATOMIC_SEQ_CST);
            }
            /* a slot unchanged across both passes held its CPUs the whole time
             * between the last read of pass 1 and the first of pass 2 */
            for (int i = 0; i < S_MEMBERS; i++) {
                if (g1[i] != g2[i] || (g1[i] & 1) || b1[i] != b2[i])
                    continue;
                for (int j = 0; j < i; j++)
                    if (g1[j] == g2[j] && !(g1[j] & 1) && b1[j] == b2[j] && (b1[i] & b1[j]) &&
                        violations++ == 0)
                        fprintf(stderr, "members %d and %d both hold CPUs %llx\n", i, j,
                                (unsigned long long)(b1[i] & b1[j]));
            }
            checks++;
        }
        /* a random member dies; its slot is cleared before anyone is checked again */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int v = (int)(x % S_MEMBERS);
        kill(kids[v], SIGKILL);
        waitpid(kids[v], NULL, 0);
        slot_write(&sh->slot[v], 0);
        kills++;
        kids[v] = stress_member(ns, sh, v, x);
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < S_MEMBERS; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    fprintf(stderr, "ledger stress: %llu claims, %u kills, %u observer passes, %u violations\n",
            (unsigned long long)sh->ops, kills, checks, violations);
    CU_ASSERT_EQUAL(violations, 0);
    CU_ASSERT(sh->ops >= 1000); /* liveness: claims kept being granted */
    munmap(sh, sizeof(*sh));
}

/* The pure record check refuses what is not a record, saying why. */
static void test_record_check_refuses(void)
{
    struct lbw_topo *t = topo8();
    char rec[4096] = {0}, err[200];
    static const size_t sizes[] = {0, 1, 8, sizeof(rec)};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (int to_arbiter = 0; to_arbiter < 2; to_arbiter++) {
            err[0] = 0;
            CU_ASSERT_EQUAL(lbw_ledger_record_check(t, to_arbiter, rec, sizes[i], err, sizeof(err)), -1);
            CU_ASSERT(err[0] != 0);
        }
    free(t);
}

/* Descriptors and snapshot records: hostile fields are refused one by
 * one, each with a reason; the good ones pass; a record of one direction
 * is refused in the other. */
static struct lbw_ledger_desc good_desc(void)
{
    struct lbw_ledger_desc d = {.role = LBW_ROLE_WORKER, .state = LBW_MS_BUSY,
                                .invocation_id = 12, .task_id = 34, .progress = 50,
                                .started_ns = 1700000000ull * 1000000000ull};
    strcpy(d.listen, "127.0.0.1:6969");
    strcpy(d.scheduler, "192.168.0.2:1384");
    return d;
}

static int check_rec(const struct lbw_topo *t, int to_arbiter, enum lbw_ledger_rec_kind k,
                     int32_t flags, const struct lbw_ledger_desc *d, const struct lbw_claim *c,
                     const struct lbw_topo_gpu *g)
{
    char buf[8192], err[200] = "";
    long n = lbw_ledger_record_build(k, flags, d, c, g, buf, sizeof(buf));
    CU_ASSERT_FATAL(n > 0);
    int rc = lbw_ledger_record_check(t, to_arbiter, buf, (size_t)n, err, sizeof(err));
    if (rc < 0)
        CU_ASSERT(err[0] != 0); /* every refusal says why */
    return rc;
}

static void test_record_check_descriptors(void)
{
    struct lbw_topo *t = topo8();
    struct lbw_ledger_desc d = good_desc(), x;
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &d, NULL, NULL) > 0);
    CU_ASSERT(check_rec(t, 0, LBW_REC_DESC, 0, &d, NULL, NULL) < 0); /* not to a member */
    x = d; x.role = 3;
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; x.state = LBW_MS_LAST;
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; x.invocation_id = -2;
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; x.task_id = INT64_MIN;
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    static const double bad_p[] = {NAN, INFINITY, -INFINITY, -0.5, 100.5, -2, 1e300};
    for (size_t i = 0; i < sizeof(bad_p) / sizeof(bad_p[0]); i++) {
        x = d; x.progress = bad_p[i];
        CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    }
    x = d; x.progress = -1; /* none */
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) > 0);
    x = d; x.started_ns = ~0ull;
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; memset(x.listen, 'a', sizeof(x.listen)); /* no NUL inside */
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; memset(x.scheduler, 'a', sizeof(x.scheduler));
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; x.listen[3] = '\n'; /* a line break for a terminal */
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; x.scheduler[0] = '\033';
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; x.listen[2] = (char)0xc3; /* not ASCII */
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    x = d; x.listen[sizeof(x.listen) - 1] = 'z'; /* bytes hidden after the end */
    CU_ASSERT(check_rec(t, 1, LBW_REC_DESC, 0, &x, NULL, NULL) < 0);
    free(t);
}

static void test_record_check_snapshot(void)
{
    struct lbw_topo *t = topo8();
    struct lbw_ledger_desc d = good_desc(), x = good_desc();
    x.state = 77;
    struct lbw_claim c = {.id = 1, .pid = 100, .node = 0, .cpu = 2, .mem = 1 << 20};
    lbw_cpuset_set(&c.cpus, 0);
    lbw_cpuset_set(&c.cpus, 1);
    struct lbw_claim y;
    /* head */
    struct lbw_claim head = {.pid = 99, .cpu = 8, .node = -1};
    CU_ASSERT(check_rec(NULL, 0, LBW_REC_SNAP_HEAD, 0, NULL, &head, NULL) > 0);
    CU_ASSERT(check_rec(t, 1, LBW_REC_SNAP_HEAD, 0, NULL, &head, NULL) < 0); /* not to us */
    CU_ASSERT(check_rec(NULL, 0, LBW_REC_SNAP_HEAD, LBW_MAX_GPUS + 1, NULL, &head, NULL) < 0);
    CU_ASSERT(check_rec(NULL, 0, LBW_REC_SNAP_HEAD, -1, NULL, &head, NULL) < 0);
    y = head; y.cpu = NAN;
    CU_ASSERT(check_rec(NULL, 0, LBW_REC_SNAP_HEAD, 0, NULL, &y, NULL) < 0);
    y = head; y.pid = 0;
    CU_ASSERT(check_rec(NULL, 0, LBW_REC_SNAP_HEAD, 0, NULL, &y, NULL) < 0);
    /* GPU */
    struct lbw_topo_gpu g = {.node = 0, .vendor = LBW_GPU_NVIDIA}, h;
    strcpy(g.id, "GPU-8f3c");
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_GPU, 0, NULL, NULL, &g) > 0);
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_GPU, LBW_MAX_GPUS, NULL, NULL, &g) < 0);
    h = g; h.node = LBW_MAX_NODES;
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_GPU, 0, NULL, NULL, &h) < 0);
    h = g; h.vendor = 9;
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_GPU, 0, NULL, NULL, &h) < 0);
    h = g; memset(h.id, 'x', sizeof(h.id));
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_GPU, 0, NULL, NULL, &h) < 0);
    /* member: flags 1 arbiter, 2 has a descriptor (then it is checked) */
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_MEMBER, 3, &d, &c, NULL) > 0);
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_MEMBER, 2, &x, &c, NULL) < 0);
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_MEMBER, 0, &x, &c, NULL) > 0); /* none: unread */
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_MEMBER, 4, &d, &c, NULL) < 0);
    y = c; y.pid = -5;
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_MEMBER, 2, &d, &y, NULL) < 0);
    /* claim: inside the host the head described */
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_CLAIM, 0, NULL, &c, NULL) > 0);
    y = c; lbw_cpuset_set(&y.cpus, 9); /* not one of the host's CPUs */
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_CLAIM, 0, NULL, &y, NULL) < 0);
    y = c; y.cpu = 9; /* more than the capacity */
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_CLAIM, 0, NULL, &y, NULL) < 0);
    y = c; y.mem = t->mem_cap + 1;
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_CLAIM, 0, NULL, &y, NULL) < 0);
    y = c; y.gpus = 1; /* the host has no GPUs */
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_CLAIM, 0, NULL, &y, NULL) < 0);
    y = c; y.cpu = INFINITY;
    CU_ASSERT(check_rec(NULL, 0, LBW_REC_SNAP_CLAIM, 0, NULL, &y, NULL) < 0);
    y = c; y.pid = 0;
    CU_ASSERT(check_rec(t, 0, LBW_REC_SNAP_CLAIM, 0, NULL, &y, NULL) < 0);
    CU_ASSERT(check_rec(t, 1, LBW_REC_SNAP_CLAIM, 0, NULL, &c, NULL) < 0); /* not to us */
    CU_ASSERT(lbw_ledger_record_build(LBW_REC_DESC, 0, &d, NULL, NULL, (char[8]){0}, 8) < 0);
    free(t);
}

/* A member publishes its descriptor; an observer's snapshot shows the
 * host, both members (the arbiter first) with their descriptors, and the
 * member's claim; a descriptor update reaches the observer as a change. */
static void test_observer_snapshot(void)
{
    char ns[128];
    uniq_ns(ns, sizeof(ns), "snap");
    lbw_reactor *r = mkreactor();
    struct lbw_topo *t = topo8();
    int ch = 0;
    struct lbw_ledger *a = open_l(r, ns, t, &ch);
    CU_ASSERT_FATAL(a != NULL);
    struct lbw_ledger_desc d = good_desc();
    lbw_ledger_publish(a, &d);
    int pp[2];
    CU_ASSERT_FATAL(pipe(pp) == 0);
    pid_t m = member(ns, 3, pp[1], -1);
    char line[256], name[128];
    CU_ASSERT_FATAL(read_line_r(r, pp[0], line, sizeof(line)) == 0);
    CU_ASSERT_EQUAL(wait_used(r, a, 3), 0);
    CU_ASSERT_EQUAL(lbw_ledger_observe("lbw-test/none/such", name, sizeof(name)), -ENOENT);
    int fd = lbw_ledger_observe(ns, name, sizeof(name));
    CU_ASSERT_FATAL(fd >= 0);
    /* the arbiter serves the observer from its loop: ask from a child */
    int sp[2];
    CU_ASSERT_FATAL(pipe(sp) == 0);
    pid_t o = fork();
    if (o == 0) {
        struct lbw_ledger_snap s = {0};
        char err[200];
        int rc = lbw_ledger_snapshot(fd, &s, err, sizeof(err));
        char out[256];
        snprintf(out, sizeof(out), "%d %g %zu %zu %d %d %s %s %g %u\n", rc,
                 rc == 0 ? s.topo->cpu_cap : -1.0, s.nmembers, s.nclaims,
                 rc == 0 && s.nmembers ? s.members[0].arbiter : -1,
                 rc == 0 && s.nclaims ? (int)s.claims[0].pid : -1,
                 rc == 0 && s.nmembers ? s.members[0].d.listen : "-",
                 rc == 0 && s.nmembers ? lbw_ledger_mstate_name(s.members[0].d.state) : "-",
                 rc == 0 ? s.used.cpu : -1.0, rc == 0 ? s.topo->ncpus : 0);
        if (write(sp[1], out, strlen(out)) < 0)
            _exit(3);
        int w = lbw_ledger_observe_wait(fd, 3000); /* the update below */
        if (write(sp[1], w == 1 ? "changed\n" : "quiet\n", w == 1 ? 8 : 6) < 0)
            _exit(3);
        _exit(0);
    }
    CU_ASSERT_FATAL(read_line_r(r, sp[0], line, sizeof(line)) == 0);
    char want[256];
    snprintf(want, sizeof(want), "0 8 2 1 1 %d 127.0.0.1:6969 busy 3 8", (int)m);
    CU_ASSERT_STRING_EQUAL(line, want);
    d.progress = 75;
    lbw_ledger_publish(a, &d);
    CU_ASSERT_FATAL(read_line_r(r, sp[0], line, sizeof(line)) == 0);
    CU_ASSERT_STRING_EQUAL(line, "changed");
    int st;
    waitpid(o, &st, 0);
    kill(m, SIGKILL);
    waitpid(m, &st, 0);
    close(fd);
    close(pp[0]);
    close(pp[1]);
    close(sp[0]);
    close(sp[1]);
    lbw_ledger_close(a);
    lbw_reactor_free(r);
    free(t);
}

static const struct lbw_test stress_tests[] = {
    {"32 members, random claims, releases and SIGKILLs: the invariant holds", test_stress_invariant},
    {NULL, NULL},
};

static const struct lbw_test tests[] = {
    {"a member's claim is seen, and freed when it is SIGKILLed", test_claim_seen_and_freed_on_sigkill},
    {"four members claim at once: disjoint CPUs", test_same_instant_disjoint},
    {"arbiter SIGKILLed: a survivor takes over with its claims", test_arbiter_killed_survivor_takes_over},
    {"a record that is not the ledger's disconnects", test_garbage_disconnects},
    {"a descriptor with a terminal escape disconnects; a good one is kept", test_hostile_descriptor_disconnects},
    {"two network namespaces, two ledgers", test_netns_apart},
    {"the record check refuses bytes that are not a record, saying why", test_record_check_refuses},
    {"hostile descriptors are refused field by field", test_record_check_descriptors},
    {"hostile snapshot records are refused field by field", test_record_check_snapshot},
    {"an observer's snapshot: host, members, descriptors, claims; updates noted", test_observer_snapshot},
    {NULL, NULL},
};

static int register_ledger_suites(void)
{
    if (lbw_add_backend_suites("ledger", tests) < 0)
        return -1;
    return lbw_add_suite("ledger_stress", NULL, NULL, stress_tests);
}

LBW_TEST_SUITES(register_ledger_suites)
