/* ledger.c (bench) — the host ledger between real processes, each with
 * its own reactor, on an abstract namespace of the bench's own:
 *   propagation  a claim granted → known to all 32 members (the arbiter,
 *                30 other members, the claimer): the claimer takes t0 just
 *                before lbw_ledger_claim(); every other member stamps, in
 *                its on_change callback, when it first sees the new total;
 *                the figure is the last of those stamps − t0 (and the
 *                same for the release), p50/p99 over the rounds;
 *   claims/s     claim + release back to back in one member, with 31
 *                members listening, and alone (the worker is its own
 *                arbiter);
 *   dispatch     what the ledger adds to the task path (the worker's
 *                synchronous claim before the spawn, and its release):
 *                alone vs 8 peers, as a member and as the arbiter;
 *   status       `lifeblood-worker status --json` answer time against the
 *                32-member mesh with claims held: the whole command (fork,
 *                exec, snapshot, JSON) and the snapshot alone, in process.
 * Usage: ledger [--rounds N] [--seconds S] [--bin PATH] [--json FILE] */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"
#include "log.h"
#include "reactor.h"

#define PEERS 32

extern char **environ;

struct slot {
    uint64_t t;   /* when on_change first saw `used` */
    int64_t used; /* thousandths of a CPU */
};

struct shm {
    int ready;
    int stop;
    struct slot s[PEERS];
};

static struct shm *sh;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static struct lbw_topo *topo64(void)
{
    struct lbw_topo *t = calloc(1, sizeof(*t));
    for (unsigned c = 0; c < 64; c++)
        t->cpus[t->ncpus++] = (struct lbw_topo_cpu){.id = (uint16_t)c, .core = c};
    t->cpu_cap = 64;
    t->mem_cap = 256ull << 30;
    return t;
}

struct member_ctx {
    struct lbw_ledger *l;
    int i;
};

static void on_change(void *ctx)
{
    struct member_ctx *m = ctx;
    if (!m->l)
        return;
    struct lbw_usage u;
    lbw_ledger_used(m->l, &u);
    int64_t mc = (int64_t)(u.cpu * 1000 + 0.5);
    if (mc != __atomic_load_n(&sh->s[m->i].used, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&sh->s[m->i].t, lbw_now_ns(), __ATOMIC_RELAXED);
        __atomic_store_n(&sh->s[m->i].used, mc, __ATOMIC_RELEASE);
    }
}

static lbw_reactor *mkreactor(void)
{
    struct lbw_reactor_opts ro = {0};
    lbw_reactor *r = NULL;
    char e[200];
    if (lbw_reactor_new(&r, &ro, e, sizeof(e)) < 0) {
        fprintf(stderr, "reactor: %s\n", e);
        exit(1);
    }
    return r;
}

static struct lbw_ledger *open_l(lbw_reactor *r, const char *ns, struct member_ctx *m)
{
    struct lbw_topo *t = topo64();
    struct lbw_ledger_opts o = {.r = r, .hwid = 0xbe4c, .ns = ns, .topo = t,
                                .allow_gid = (gid_t)-1, .on_change = on_change, .ctx = m};
    char err[300];
    struct lbw_ledger *l = lbw_ledger_open(&o, err, sizeof(err));
    free(t);
    if (!l)
        fprintf(stderr, "ledger: %s\n", err);
    return l;
}

/* A member process: joins, publishes a descriptor, serves until stop. */
static pid_t member(const char *ns, int i)
{
    pid_t p = fork();
    if (p != 0)
        return p;
    lbw_reactor *r = mkreactor();
    struct member_ctx m = {.i = i};
    m.l = open_l(r, ns, &m);
    if (!m.l)
        _exit(2);
    struct lbw_ledger_desc d = {.role = LBW_ROLE_WORKER, .state = LBW_MS_IDLE,
                                .invocation_id = -1, .task_id = -1, .progress = -1};
    snprintf(d.listen, sizeof(d.listen), "127.0.0.1:%d", 6969 + i);
    snprintf(d.scheduler, sizeof(d.scheduler), "127.0.0.1:1384");
    lbw_ledger_publish(m.l, &d);
    __atomic_add_fetch(&sh->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE))
        lbw_reactor_run_once(r, 50000000);
    lbw_ledger_close(m.l);
    lbw_reactor_free(r);
    _exit(0);
}

static void wait_ready(int n)
{
    for (unsigned i = 0; i < 20000 && __atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) < n; i++)
        usleep(500);
}

/* Waits (serving our own reactor) until members [1, n) all saw `want`
 * at or after t0; returns the last stamp − t0, or 0 on timeout. */
static uint64_t wait_seen(lbw_reactor *r, int n, double want, uint64_t t0)
{
    for (unsigned k = 0; k < 40000; k++) {
        uint64_t last = 0;
        int all = 1;
        for (int i = 1; i < n && all; i++) {
            int64_t u = __atomic_load_n(&sh->s[i].used, __ATOMIC_ACQUIRE);
            uint64_t t = __atomic_load_n(&sh->s[i].t, __ATOMIC_RELAXED);
            if (u != (int64_t)(want * 1000 + 0.5) || t < t0)
                all = 0;
            else if (t > last)
                last = t;
        }
        if (all)
            return last - t0;
        lbw_reactor_run_once(r, 100000);
    }
    return 0;
}

static void stats(uint64_t *v, size_t n, double *p50, double *p99)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    *p50 = (double)v[n / 2] / 1000.0;
    *p99 = (double)v[n * 99 / 100] / 1000.0;
}

/* Starts n members (index 1..n; 1 founds the mesh as its arbiter). */
static void start_members(const char *ns, int n, pid_t *pids)
{
    sh->ready = 0;
    sh->stop = 0;
    memset(sh->s, 0, sizeof(sh->s));
    if (n < 1)
        return;
    pids[1] = member(ns, 1);
    wait_ready(1);
    for (int i = 2; i <= n; i++)
        pids[i] = member(ns, i);
    wait_ready(n);
}

static void stop_members(int n, pid_t *pids)
{
    __atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
    for (int i = 1; i <= n; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0)
            kill(pids[i], SIGKILL);
    }
}

/* Claim + release latency in us (one grant = one claim call), for the
 * process's ledger l; rounds samples into v. */
static void time_claims(lbw_reactor *r, struct lbw_ledger *l, uint64_t *v, int rounds)
{
    struct lbw_claim_req q = {.min_cpu = 1, .min_mem = 1 << 20};
    for (int k = 0; k < rounds; k++) {
        struct lbw_claim c;
        uint64_t t0 = lbw_now_ns();
        lbw_ledger_claim(l, &q, &c);
        lbw_ledger_release(l, c.id);
        v[k] = lbw_now_ns() - t0;
        lbw_reactor_run_once(r, 0);
    }
}

/* Claim + release with 8 peers: the bench's process a member (the
 * arbiter another process) or, arbiter != 0, the arbiter itself. */
static void dispatch_8(lbw_reactor *r, struct member_ctx *me, int arbiter, uint64_t *v,
                       int rounds, double *p50, double *p99)
{
    char ns[96];
    pid_t pids[PEERS + 1];
    snprintf(ns, sizeof(ns), "lbw-bench/%d/8%c", (int)getpid(), arbiter ? 'a' : 'm');
    if (arbiter) {
        sh->ready = 0;
        sh->stop = 0;
        me->l = open_l(r, ns, me); /* first: it founds the mesh */
        for (int i = 1; i <= 8; i++)
            pids[i] = member(ns, i);
        wait_ready(8);
    } else {
        start_members(ns, 8, pids);
        me->l = open_l(r, ns, me);
    }
    time_claims(r, me->l, v, rounds);
    stats(v, (size_t)rounds, p50, p99);
    lbw_ledger_close(me->l);
    me->l = NULL;
    stop_members(8, pids);
}

static double run_status(const char *bin, const char *ns)
{
    char *argv[] = {(char *)bin, "status", "--json", "--namespace", (char *)ns, NULL};
    uint64_t t0 = lbw_now_ns();
    int st = -1;
    pid_t p = fork();
    if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execve(bin, argv, environ);
        _exit(127);
    }
    if (p > 0)
        waitpid(p, &st, 0);
    uint64_t t = lbw_now_ns() - t0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? (double)t : -1;
}

int main(int argc, char **argv)
{
    int rounds = 500;
    double seconds = 2;
    const char *bin = NULL, *json = NULL;
    static const struct option lo[] = {{"rounds", 1, NULL, 'n'}, {"seconds", 1, NULL, 's'},
                                       {"bin", 1, NULL, 'b'}, {"json", 1, NULL, 'j'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'n')
            rounds = atoi(optarg);
        else if (c == 's')
            seconds = atof(optarg);
        else if (c == 'b')
            bin = optarg;
        else if (c == 'j')
            json = optarg;
        else
            return 2;
    }
    if (rounds < 10 || seconds <= 0)
        return 2;
    lbw_log_set_level(LBW_LOG_WARNING); /* (members leaving re-elect: INFO lines) */
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    char ns[96];
    pid_t pids[PEERS + 1];
    uint64_t *v = calloc((size_t)rounds, sizeof(*v)), *w = calloc((size_t)rounds, sizeof(*w));
    lbw_reactor *r = mkreactor();
    struct member_ctx me = {.i = 0};

    /* ---- propagation, claims/s and status with 32 members ---- */
    snprintf(ns, sizeof(ns), "lbw-bench/%d/32", (int)getpid());
    start_members(ns, PEERS - 1, pids);
    me.l = open_l(r, ns, &me);
    if (!me.l)
        return 1;
    int missed = 0;
    for (int k = 0; k < rounds; k++) {
        struct lbw_claim_req q = {.min_cpu = 1};
        struct lbw_claim cl;
        uint64_t t0 = lbw_now_ns();
        lbw_ledger_claim(me.l, &q, &cl);
        v[k] = wait_seen(r, PEERS, 1, t0);
        t0 = lbw_now_ns();
        lbw_ledger_release(me.l, cl.id);
        w[k] = wait_seen(r, PEERS, 0, t0);
        missed += !v[k] || !w[k];
    }
    double gp50, gp99, rp50, rp99;
    stats(v, (size_t)rounds, &gp50, &gp99);
    stats(w, (size_t)rounds, &rp50, &rp99);
    printf("ledger: %d members, one process each (%ld CPUs)\n", PEERS,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("  claim granted -> known to all %d: p50 %.1f us, p99 %.1f us (%d rounds%s)\n", PEERS,
           gp50, gp99, rounds, missed ? ", some timed out" : "");
    printf("  release      -> known to all %d: p50 %.1f us, p99 %.1f us\n", PEERS, rp50, rp99);

    uint64_t end = lbw_now_ns() + (uint64_t)(seconds * 1e9), n32 = 0;
    struct lbw_claim_req q1 = {.min_cpu = 1};
    while (lbw_now_ns() < end) {
        struct lbw_claim cl;
        lbw_ledger_claim(me.l, &q1, &cl);
        lbw_ledger_release(me.l, cl.id);
        lbw_reactor_run_once(r, 0);
        n32++;
    }
    double cps32 = (double)n32 / seconds;
    printf("  claims/s (claim + release, one member, %d listening): %.0f\n", PEERS - 1, cps32);

    /* status against the 32-member mesh with 16 claims held */
    struct lbw_claim held[16];
    for (int k = 0; k < 16; k++)
        lbw_ledger_claim(me.l, &q1, &held[k]);
    int sn = rounds < 200 ? rounds : 200;
    for (int k = 0; k < sn; k++) {
        char name[128], err[200];
        struct lbw_ledger_snap s = {0};
        uint64_t t0 = lbw_now_ns();
        int fd = lbw_ledger_observe(ns, name, sizeof(name));
        int rc = fd >= 0 ? lbw_ledger_snapshot(fd, &s, err, sizeof(err)) : fd;
        v[k] = lbw_now_ns() - t0;
        if (rc < 0 || s.nmembers != PEERS)
            missed++;
        lbw_ledger_snap_free(&s);
        if (fd >= 0)
            close(fd);
    }
    double sp50, sp99, cp50 = -1, cp99 = -1;
    stats(v, (size_t)sn, &sp50, &sp99);
    printf("  status snapshot in process (%d members, 16 claims): p50 %.1f us, p99 %.1f us\n",
           PEERS, sp50, sp99);
    int cn = 0;
    if (bin) {
        for (int k = 0; k < 50; k++) {
            double t = run_status(bin, ns);
            if (t > 0)
                v[cn++] = (uint64_t)t;
        }
        if (cn) {
            stats(v, (size_t)cn, &cp50, &cp99);
            printf("  `lifeblood-worker status --json` (fork, exec, snapshot, JSON): p50 %.2f ms, "
                   "p99 %.2f ms (%d runs)\n", cp50 / 1000, cp99 / 1000, cn);
        }
    }
    for (int k = 0; k < 16; k++)
        lbw_ledger_release(me.l, held[k].id);
    lbw_ledger_close(me.l);
    me.l = NULL;
    stop_members(PEERS - 1, pids);

    /* ---- dispatch: the claim on the task path, alone vs 8 peers ---- */
    snprintf(ns, sizeof(ns), "lbw-bench/%d/0", (int)getpid());
    sh->ready = 0;
    memset(sh->s, 0, sizeof(sh->s));
    me.l = open_l(r, ns, &me);
    time_claims(r, me.l, v, rounds);
    double a50, a99;
    stats(v, (size_t)rounds, &a50, &a99);
    end = lbw_now_ns() + (uint64_t)(seconds * 1e9);
    uint64_t n0 = 0;
    while (lbw_now_ns() < end) {
        struct lbw_claim cl;
        lbw_ledger_claim(me.l, &q1, &cl);
        lbw_ledger_release(me.l, cl.id);
        n0++;
    }
    double cps0 = (double)n0 / seconds;
    lbw_ledger_close(me.l);
    me.l = NULL;

    double m50, m99, b50, b99;
    dispatch_8(r, &me, 0, v, rounds, &m50, &m99);
    dispatch_8(r, &me, 1, v, rounds, &b50, &b99);
    printf("  claims/s alone (own arbiter): %.0f\n", cps0);
    printf("  dispatch cost (claim + release on the task path): alone p50 %.1f us p99 %.1f us; "
           "8 peers as a member p50 %.1f us p99 %.1f us; as the arbiter p50 %.1f us p99 %.1f us\n",
           a50, a99, m50, m99, b50, b99);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"benchmark\":\"ledger\",\"members\":%d,\"rounds\":%d,"
                       "\"propagation_p50_us\":%.1f,\"propagation_p99_us\":%.1f,"
                       "\"release_p50_us\":%.1f,\"release_p99_us\":%.1f,"
                       "\"claims_per_s_32\":%.0f,\"claims_per_s_alone\":%.0f,"
                       "\"status_snapshot_p50_us\":%.1f,\"status_snapshot_p99_us\":%.1f,"
                       "\"status_cmd_p50_ms\":%.2f,\"status_cmd_p99_ms\":%.2f,"
                       "\"dispatch_alone_p50_us\":%.1f,\"dispatch_8_member_p50_us\":%.1f,"
                       "\"dispatch_8_arbiter_p50_us\":%.1f,\"timeouts\":%d}\n",
                    PEERS, rounds, gp50, gp99, rp50, rp99, cps32, cps0, sp50, sp99,
                    cp50 / 1000, cp99 / 1000, a50, m50, b50, missed);
            fclose(f);
        }
    }
    free(v);
    free(w);
    lbw_reactor_free(r);
    return missed ? 1 : 0;
}
