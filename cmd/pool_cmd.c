/* pool_cmd.c — see pool_cmd.h. */
#include "pool_cmd.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "argmatch.h"
#include "cidr.h"
#include "config.h"
#include "ledger.h"
#include "ledger_cfg.h"
#include "log.h"
#include "msgnet.h"
#include "pool.h"
#include "probe.h"
#include "proc.h"
#include "resources.h"
#include "sched_src.h"
#include "sdnotify.h"

#define SEC 1000000000ull

extern char **environ;

static void pool_usage(FILE *f)
{
    fprintf(f,
"Usage: lifeblood-worker [--loglevel L] pool simple [options]\n"
"       lifeblood-worker pool --list\n"
"       lifeblood [--loglevel L] pool simple [options]   (when installed as 'lifeblood')\n"
"\n"
"Runs a local worker pool: a message proxy the workers talk to the scheduler\n"
"through, a pulse to the scheduler every 10 s (the pool stops its workers and\n"
"waits for a scheduler again after 10 missed pulses), and worker processes\n"
"started and stopped as the options say. Options as upstream's 'lifeblood pool\n"
"simple' (unambiguous prefixes of long options are accepted):\n"
"\n"
"  -m N, --min-idle N    keep at least N workers idle or starting (default 1)\n"
"  --min-total N         keep at least N workers in all (default 0)\n"
"  -M N, --max N         never more than N worker processes, counting those\n"
"                        still stopping (default 256)\n"
"  --priority {NO_CHANGE,LOWER}\n"
"                        passed to the workers (default LOWER)\n"
"  -h, --help            this text\n"
"\n"
"Extensions:\n"
"  --on-demand           Lifeblood's documented pool: a worker is started when\n"
"                        none is free (and under --max), each worker runs one\n"
"                        task and exits, and with the host ledger a worker is\n"
"                        started only while something is left on the host\n"
"  --idle-timeout S      an idle worker above the minimums is stopped after S\n"
"                        seconds (default 10)\n"
"  --config KEY=VALUE    override a worker config key, for the pool and its\n"
"                        workers (repeatable)\n"
"\n"
"Environment: LBW_POOL_WORKER=PATH runs PATH instead of this binary as the\n"
"worker (with the same arguments); LBW_POOL_PULSE_INTERVAL=S pulses every S\n"
"seconds instead of 10 (tests).\n"
"\n"
"The scheduler is found as the worker finds it (worker.listen_to_broadcast,\n"
"worker.scheduler_address in $LIFEBLOOD_CONFIG_LOCATION/worker/config.toml).\n"
"Signals: SIGINT/SIGTERM stop the workers (SIGTERM, SIGKILL after\n"
"worker.kill_grace + 10 s), then the pool; a second signal SIGKILLs them at\n"
"once. Workers get SIGTERM from the kernel if the pool itself dies. See\n"
"lifeblood-worker(8), 'THE POOL'.\n");
}

struct popts {
    unsigned min_idle, min_total, max;
    int lower, on_demand;
    double idle_timeout;
    const char *overrides[64];
    int noverrides;
};

static const char *const LONGS[] = {
    "min-idle", "min-total", "max", "priority", "on-demand", "idle-timeout", "config", "help",
    NULL,
};
static const int TAKES_ARG[] = {1, 1, 1, 1, 0, 1, 1, 0};

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "lifeblood-worker pool simple: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "; see 'lifeblood-worker pool simple --help'\n");
    return -1;
}

static int count_arg(const char *name, const char *val, unsigned *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || errno || v < 0 || v > 100000)
        return bad("--%s: invalid count: '%s' (0 to 100000)", name, val);
    *out = (unsigned)v;
    return 0;
}

/* 0, 1 (help shown) or -1 (message printed). */
static int parse_args(int argc, char **argv, struct popts *o)
{
    *o = (struct popts){.min_idle = 1, .max = 256, .lower = 1, .idle_timeout = 10};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        int k;
        if (!strcmp(a, "-h")) {
            k = 7;
        } else if (!strcmp(a, "-m") || !strcmp(a, "-M")) {
            k = a[1] == 'm' ? 0 : 2;
            if (i + 1 >= argc)
                return bad("%s expects one argument%s", a, "");
            val = argv[++i];
        } else if (!strncmp(a, "--", 2) && a[2]) {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            k = lbw_match_long(LONGS, name, n);
            if (k == -2)
                return bad("ambiguous option: %s%s", a, "");
            if (k < 0)
                return bad("unknown option %s%s", a, "");
            if (TAKES_ARG[k]) {
                if (eq)
                    val = eq + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return bad("--%s expects one argument%s", LONGS[k], "");
            } else if (eq) {
                return bad("--%s takes no argument%s", LONGS[k], "");
            }
        } else {
            return bad(a[0] == '-' ? "unknown option %s%s" : "unexpected argument '%s'%s", a,
                       "");
        }
        switch (k) {
        case 0: if (count_arg("min-idle", val, &o->min_idle) < 0) return -1; break;
        case 1: if (count_arg("min-total", val, &o->min_total) < 0) return -1; break;
        case 2: if (count_arg("max", val, &o->max) < 0) return -1; break;
        case 3:
            if (strcmp(val, "LOWER") && strcmp(val, "NO_CHANGE"))
                return bad("--priority: invalid choice: '%s'%s (choose from 'NO_CHANGE', "
                           "'LOWER')", val, "");
            o->lower = !strcmp(val, "LOWER");
            break;
        case 4: o->on_demand = 1; break;
        case 5: {
            char *end;
            o->idle_timeout = strtod(val, &end);
            if (!*val || *end || !(o->idle_timeout >= 0 && o->idle_timeout <= 86400))
                return bad("--idle-timeout: invalid number of seconds: '%s'%s", val, "");
            break;
        }
        case 6:
            if (o->noverrides >= 64)
                return bad("too many --config options%s%s", "", "");
            o->overrides[o->noverrides++] = val;
            break;
        default:
            pool_usage(stdout);
            return 1;
        }
    }
    return 0;
}

/* ---- the loop: find the scheduler, run a pool, again after a lost pulse ------- */

struct ploop {
    lbw_reactor *r;
    const struct popts *a;
    struct lbw_toml *cfg;
    struct lbw_pool_opts po;
    struct lbw_pool *pool;
    struct lbw_sched_src src;   /* where the scheduler is found */
    struct lbw_ledger *ledger;
    struct lbw_advertised adv;
    struct lbw_sdnotify notify;
    struct lbw_cidr_set allow;  /* worker.scheduler_allow: broadcasts taken */
    struct lbw_op sig_op, sleep_op, watchdog_op;
    int sfd, signalled, broadcast, exit_code;
    char sched[LBW_ADDR_MAX + 1];
};

static void next_pool(struct ploop *L);

/* What `lifeblood-worker status` shows of the pool: its proxy address and
 * scheduler while it serves one, "no-scheduler" while it looks for one. */
static void publish(struct ploop *L)
{
    struct lbw_ledger_desc d = {.role = LBW_ROLE_POOL, .state = LBW_MS_NONE,
                                .invocation_id = -1, .task_id = -1, .progress = -1};
    if (L->pool) {
        d.state = LBW_MS_IDLE;
        snprintf(d.listen, sizeof(d.listen), "%.*s", (int)sizeof(d.listen) - 1,
                 lbw_pool_address(L->pool));
        snprintf(d.scheduler, sizeof(d.scheduler), "%.*s", (int)sizeof(d.scheduler) - 1,
                 L->sched); /* a longer chain is cut: status shows, it does not route */
    }
    lbw_ledger_publish(L->ledger, &d); /* no ledger: nothing */
}

static void sleep_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    if (res > 0)
        next_pool(op->user);
}

static void on_pool_end(void *ctx, enum lbw_pool_end why)
{
    struct ploop *L = ctx;
    lbw_pool_free(L->pool);
    L->pool = NULL;
    publish(L);
    if (L->signalled) {
        lbw_reactor_stop(L->r);
        return;
    }
    LBW_INFO("pool", "pool stopped (the scheduler stopped answering); waiting for a scheduler");
    next_pool(L);
}

static void start_pool(struct ploop *L, const char *address)
{
    char err[512];
    if (lbw_msgnet_resolve_chain(address, L->sched, sizeof(L->sched), 5 * SEC, err,
                                 sizeof(err)) == 0) {
        L->po.scheduler = L->sched;
        L->pool = lbw_pool_start(&L->po, err, sizeof(err));
    }
    if (!L->pool) {
        LBW_ERROR("pool", "could not start the pool: %s", err);
        if (lbw_timer(L->r, &L->sleep_op, (L->broadcast ? 1 : 10) * SEC, 0, sleep_cb) < 0)
            lbw_reactor_stop(L->r);
        return;
    }
    lbw_sdnotify_ready(&L->notify, "pool on %s for the scheduler %s",
                       lbw_pool_address(L->pool), L->sched);
    publish(L);
}

static void on_found(void *ctx, const char *address)
{
    start_pool(ctx, address);
}

static void next_pool(struct ploop *L)
{
    if (L->signalled) {
        lbw_reactor_stop(L->r);
        return;
    }
    if (lbw_sched_src_next(&L->src) < 0) {
        L->exit_code = 1;
        lbw_reactor_stop(L->r);
    }
}

static void sig_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct ploop *L = op->user;
    if (res == -ECANCELED)
        return;
    int sig = res > 0 ? lbw_signalfd_read(L->sfd, NULL) : 0;
    if (sig > 0 && L->signalled) {
        LBW_WARN("pool", "DOUBLE SIGNAL CAUGHT: ALREADY EXITING (workers get SIGKILL now)");
        if (L->pool)
            lbw_pool_kill_now(L->pool);
    } else if (sig > 0) {
        L->signalled = 1;
        LBW_INFO("pool", "%s received: stopping the pool", strsignal(sig));
        lbw_sdnotify_stopping(&L->notify, "%s received: stopping the workers", strsignal(sig));
        lbw_sched_src_cancel(&L->src);
        if (lbw_op_pending(&L->sleep_op))
            lbw_cancel(r, &L->sleep_op);
        if (L->pool)
            lbw_pool_stop(L->pool);
        else
            lbw_reactor_stop(r);
    }
    lbw_poll(r, &L->sig_op, L->sfd, POLLIN, sig_cb);
}

static void watchdog_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct ploop *L = op->user;
    if (res > 0)
        lbw_sdnotify_watchdog(&L->notify);
}

/* ---- the host ledger: the on-demand mode's gate -------------------------------- */

static int host_room(void *ctx)
{
    struct ploop *L = ctx;
    struct lbw_resources left;
    lbw_ledger_left(L->ledger, &L->adv.res, &left); /* no ledger: the whole host */
    return lbw_num_value(&left.cpu_count) > 0 && lbw_num_value(&left.cpu_mem) > 0;
}

static void ledger_changed(void *ctx)
{
    struct ploop *L = ctx;
    if (L->pool)
        lbw_pool_poke(L->pool);
}

/* ---- set-up -------------------------------------------------------------------- */

static struct lbw_toml *load_config(const struct popts *a)
{
    char dir[PATH_MAX], err[256];
    if (lbw_config_dir("worker", dir, sizeof(dir)) < 0) {
        LBW_CRIT("pool", "cannot find the config directory: set HOME or "
                         "LIFEBLOOD_CONFIG_LOCATION");
        return NULL;
    }
    struct lbw_cfg_diag d = {0};
    int home_ok = lbw_config_home_ok(err, sizeof(err)) == 0;
    struct lbw_toml *cfg = home_ok ? lbw_config_load_checked(dir, lbw_cfg_worker_schema(), &d)
                                   : lbw_toml_parse("", 0, err, sizeof(err));
    for (int i = 0; cfg && i < a->noverrides; i++)
        lbw_config_override_checked(cfg, a->overrides[i], lbw_cfg_worker_schema(), &d);
    lbw_cfg_diag_log(&d);
    if (cfg && d.errors) {
        LBW_CRIT("pool", "the configuration has %d error%s (above); not starting; check with "
                         "'lifeblood-worker config check'", d.errors, d.errors == 1 ? "" : "s");
        lbw_toml_free(cfg);
        cfg = NULL;
    }
    lbw_cfg_diag_free(&d);
    return cfg;
}

static void join_ledger(struct ploop *L)
{
    struct lbw_host host;
    struct lbw_probe_opts po = {.root = "/"};
    lbw_probe_host(&po, &host);
    lbw_advertise(&host, L->cfg, &L->adv);
    char err[512];
    L->ledger = lbw_ledger_join(L->r, L->cfg, &host, &L->adv, "pool", ledger_changed, L, err,
                                sizeof(err));
    if (!L->ledger && L->a->on_demand)
        LBW_WARN("pool", "no host ledger (%s): --on-demand starts workers without knowing "
                         "what is left on the host (only --max limits them)", err);
}

/* LBW_POOL_PULSE_INTERVAL (seconds; tests): upstream's 10 s otherwise. */
static uint64_t pulse_interval(void)
{
    const char *v = getenv("LBW_POOL_PULSE_INTERVAL");
    char *end;
    double s = v && *v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || !(s >= 0.01 && s <= 3600))
        return 0;
    LBW_INFO("pool", "pulse every %.2f s (LBW_POOL_PULSE_INTERVAL)", s);
    return (uint64_t)(s * 1e9);
}

/* 0, or 1 after a message. */
static int pool_opts(struct ploop *L, const struct lbw_reactor_opts *ropts, char *exe,
                     size_t exelen, char **head, char **tail)
{
    const char *alt = getenv("LBW_POOL_WORKER"); /* tests and benchmarks */
    ssize_t n = alt && *alt ? (ssize_t)snprintf(exe, exelen, "%s", alt)
                            : readlink("/proc/self/exe", exe, exelen - 1);
    if (n <= 0 || (size_t)n >= exelen) {
        LBW_CRIT("pool", "cannot find our own executable: %s", strerror(errno));
        return 1;
    }
    exe[n] = 0;
    if (alt && *alt)
        LBW_INFO("pool", "workers run %s (LBW_POOL_WORKER)", exe);
    int h = 0, t = 0;
    head[h++] = "lifeblood-worker";
    head[h++] = "--loglevel";
    head[h++] = (char *)lbw_log_level_name(lbw_log_get_level());
    if (ropts->backend != LBW_BACKEND_AUTO) {
        head[h++] = "--reactor";
        head[h++] = ropts->backend == LBW_BACKEND_EPOLL ? "epoll" : "uring";
    }
    head[h] = NULL;
    for (int i = 0; i < L->a->noverrides; i++) {
        tail[t++] = "--config";
        tail[t++] = (char *)L->a->overrides[i];
    }
    if (L->a->on_demand) {
        /* an idle worker follows what is left on the host by saying hello
         * again as claims change: without it, the last worker of a node
         * whose tasks ended would go on offering a sliver of it */
        if (!lbw_cfg_bool(L->cfg, LBW_CFG_MESH_READVERTISE))
            LBW_INFO("pool", "on demand: the workers say hello again as claims change "
                             "(mesh.readvertise = false does not apply to them)");
        tail[t++] = "--config";
        tail[t++] = "mesh.readvertise=true";
    }
    tail[t] = NULL;
    L->po = (struct lbw_pool_opts){
        .r = L->r,
        .exe = exe,
        .argv_head = head,
        .argv_tail = tail,
        .envp = environ,
        .lower = L->a->lower,
        .singleshot = L->a->on_demand,
        .hk = {.min_idle = L->a->on_demand && L->a->min_idle == 0 ? 1 : L->a->min_idle,
               .min_total = L->a->min_total,
               .max = L->a->max,
               .idle_timeout_ns = (uint64_t)(L->a->idle_timeout * 1e9) + 1},
        /* a worker stopping cancels its payload within worker.kill_grace, then
         * reports it: 10 s more for that (upstream's pool waits 10 s) */
        .kill_grace_ns = (uint64_t)((lbw_cfg_number(L->cfg, LBW_CFG_KILL_GRACE) + 10) * 1e9),
        .pulse_interval_ns = pulse_interval(),
        .allow = &L->allow,
        .room = L->a->on_demand ? host_room : NULL,
        .on_end = on_pool_end,
        .ctx = L,
    };
    return 0;
}

int lbw_cmd_pool(int argc, char **argv, const struct lbw_reactor_opts *ropts)
{
    if (argc < 2) {
        fprintf(stderr, "lifeblood-worker pool: give a pool type (simple) or --list; see "
                        "'lifeblood-worker pool --help'\n");
        return 2;
    }
    if (!strcmp(argv[1], "--list")) {
        printf("simple\n");
        return 0;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        pool_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "simple")) {
        fprintf(stderr, "lifeblood-worker pool: unknown pool type '%s' (pool --list names "
                        "them)\n", argv[1]);
        return 2;
    }
    struct popts a;
    int pr = parse_args(argc - 2, argv + 2, &a);
    if (pr)
        return pr > 0 ? 0 : 2;
    /* taken through the loop from the start: a signal while the config
     * is read stops the pool the same way */
    int sigs[] = {SIGINT, SIGTERM};
    struct ploop L = {.a = &a, .sfd = lbw_signalfd_open(sigs, 2), .notify = {.fd = -1}};
    L.sig_op.user = L.sleep_op.user = L.watchdog_op.user = &L;
    char err[512], exe[PATH_MAX];
    char *head[8], *tail[2 * 64 + 2 + 1];
    int rc = 0;
    L.cfg = load_config(&a);
    if (!L.cfg || lbw_cfg_scheduler_allow(L.cfg, &L.allow, "pool") < 0) {
        lbw_toml_free(L.cfg);
        if (L.sfd >= 0)
            close(L.sfd);
        return 2;
    }
    if (lbw_sdnotify_open(&L.notify, 1, err, sizeof(err)) < 0)
        LBW_WARN("pool", "%s", err);
    if (lbw_reactor_new(&L.r, ropts, err, sizeof(err)) < 0) {
        LBW_CRIT("pool", "%s", err);
        L.r = NULL;
        rc = 1;
        goto out;
    }
    LBW_INFO("pool", "event loop: %s (%s)", lbw_reactor_backend_name(L.r),
             lbw_reactor_backend_reason(L.r));
    signal(SIGPIPE, SIG_IGN);
    if (L.sfd < 0 || lbw_poll(L.r, &L.sig_op, L.sfd, POLLIN, sig_cb) < 0) {
        LBW_CRIT("pool", "cannot watch for signals");
        rc = 1;
        goto out;
    }
    uint64_t wd_ns = lbw_sdnotify_watchdog_usec(&L.notify) * 1000 / 2;
    if (wd_ns && lbw_timer(L.r, &L.watchdog_op, wd_ns, wd_ns, watchdog_cb) < 0)
        LBW_WARN("pool", "cannot start the service watchdog timer");
    if (pool_opts(&L, ropts, exe, sizeof(exe), head, tail)) {
        rc = 1;
        goto out;
    }
    join_ledger(&L);
    publish(&L);
    L.broadcast = lbw_cfg_bool(L.cfg, LBW_CFG_LISTEN_TO_BROADCAST);
    L.src = (struct lbw_sched_src){.r = L.r, .who = "pool", .broadcast = L.broadcast,
                                   .cfg = L.cfg, .allow = &L.allow, .notify = &L.notify,
                                   .found = on_found, .ctx = &L};
    next_pool(&L);
    lbw_reactor_run(L.r);
    if (L.pool) { /* stopped by a fatal reactor error: nothing may survive us */
        LBW_ERROR("pool", "the event loop failed: killing the workers");
        lbw_pool_stop(L.pool);
        lbw_pool_kill_now(L.pool);
        rc = 1;
    } else {
        rc = L.exit_code;
    }
    LBW_INFO("pool", "pool loop stopped");
out:
    lbw_ledger_close(L.ledger);
    if (L.r)
        lbw_reactor_free(L.r); /* the pool's last callbacks reap its workers */
    lbw_pool_free(L.pool);
    if (L.sfd >= 0)
        close(L.sfd);
    lbw_sdnotify_close(&L.notify);
    lbw_toml_free(L.cfg);
    lbw_cidr_set_free(&L.allow);
    return rc;
}
