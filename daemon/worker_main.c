/* worker_main.c — `lifeblood-worker worker` (see worker_main.h). */
#include "worker_main.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <math.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "argmatch.h"
#include "capacity.h"
#include "config.h"
#include "contain.h"
#include "fs.h"
#include "ledger.h"
#include "ledger_cfg.h"
#include "log.h"
#include "msgnet.h"
#include "probe.h"
#include "proc.h"
#include "resources.h"
#include "run.h"
#include "sched_src.h"
#include "sdnotify.h"
#include "spawn.h"
#include "worker.h"

#define SEC 1000000000ull

extern char **environ;

struct wopts {
    const char *scheduler_address;
    int no_listen_broadcast, no_loop, singleshot, gen_config;
    int type;          /* 0 STANDARD, 1 SCHEDULER_HELPER */
    int has_id;
    long long id;
    const char *pool_address;
    int lower;         /* --priority LOWER */
    const char *overrides[64];
    int noverrides;
};

static void worker_usage(FILE *f)
{
    fprintf(f,
"Usage: lifeblood-worker [--loglevel L] worker [options]\n"
"       lifeblood [--loglevel L] worker [options]   (when installed as 'lifeblood')\n"
"\n"
"Runs a Lifeblood worker: finds the scheduler, registers, runs one payload at a\n"
"time and reports its logs, progress and result. Options as upstream's\n"
"'lifeblood worker' (unambiguous prefixes of long options are accepted):\n"
"\n"
"  --scheduler-address ADDR  scheduler address chain (ip:port[|ip:port...]);\n"
"                            disables broadcast discovery\n"
"  --no-listen-broadcast     use worker.scheduler_address from the config\n"
"                            instead of waiting for the scheduler's broadcast\n"
"  --no-loop                 exit after the first worker instance stops\n"
"                            (default: start again, e.g. after a scheduler restart)\n"
"  --singleshot              stop after one invocation\n"
"  --type {STANDARD,SCHEDULER_HELPER}\n"
"                            worker type (SCHEDULER_HELPER implies --singleshot)\n"
"  --id N                    pool worker id; requires --pool-address\n"
"  --pool-address ADDR       the pool's message proxy; requires --id\n"
"  --priority {NO_CHANGE,LOWER}\n"
"                            LOWER runs payloads at nice 10 (upstream renices the\n"
"                            worker itself; here only the payload is lowered)\n"
"  --generate-config-only    write the default config if missing, and exit\n"
"  -h, --help                this text\n"
"\n"
"Extensions:\n"
"  --config KEY=VALUE        override a worker config key (dotted, TOML value;\n"
"                            repeatable), e.g. --config worker.logpath=/scratch/lb\n"
"  --reactor uring|epoll     (global option, before 'worker') event loop backend\n"
"\n"
"Configuration: $LIFEBLOOD_CONFIG_LOCATION/worker or ~/lifeblood/worker\n"
"(config.toml, then config.d/*.toml); see docs/CONFIGURATION.md. A file that\n"
"does not parse or a value of the wrong type stops the start (exit status 2);\n"
"'lifeblood-worker config check' finds such problems before a roll-out.\n"
"Containment: each payload is born in cgroups of its own (its claim's CPUs and\n"
"memory, containment.pids_max processes) where the worker's cgroup is delegated\n"
"or it runs as root; 'lifeblood-worker probe' shows which; containment.mode =\n"
"\"off\" or LBW_CGROUPS=off turns it off. As root, payloads run as\n"
"worker.payload_user (never root unless it says \"root\").\n"
"Signals: SIGINT/SIGTERM stop gracefully (a running payload is killed and\n"
"reported as dropped, worker.bye is sent); a second signal exits at once.\n");
}

static const char *const LONGS[] = {
    "scheduler-address", "no-listen-broadcast", "no-loop", "singleshot", "type",
    "id", "pool-address", "priority", "generate-config-only", "config", "help", NULL,
};
static const int TAKES_ARG[] = {1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0};

static int parse_args(int argc, char **argv, struct wopts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h")) {
            worker_usage(stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            if (a[0] == '-')
                fprintf(stderr, "lifeblood-worker worker: unknown option %s", a);
            else
                fprintf(stderr, "lifeblood-worker worker: unexpected argument '%s'", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        int k = lbw_match_long(LONGS, name, n);
        if (k == -2) {
            fprintf(stderr, "lifeblood-worker worker: ambiguous option: --%.*s", (int)n, name);
            return -1;
        }
        if (k < 0) {
            fprintf(stderr, "lifeblood-worker worker: unknown option --%.*s", (int)n, name);
            return -1;
        }
        const char *val = NULL;
        if (TAKES_ARG[k]) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                fprintf(stderr, "lifeblood-worker worker: --%s expects one argument",
                        LONGS[k]);
                return -1;
            }
        } else if (eq) {
            fprintf(stderr, "lifeblood-worker worker: --%s takes no argument", LONGS[k]);
            return -1;
        }
        switch (k) {
        case 0: o->scheduler_address = val; break;
        case 1: o->no_listen_broadcast = 1; break;
        case 2: o->no_loop = 1; break;
        case 3: o->singleshot = 1; break;
        case 4:
            if (!strcmp(val, "STANDARD"))
                o->type = 0;
            else if (!strcmp(val, "SCHEDULER_HELPER"))
                o->type = 1;
            else {
                fprintf(stderr, "lifeblood-worker worker: --type: invalid choice: '%s' "
                                "(choose from 'STANDARD', 'SCHEDULER_HELPER')", val);
                return -1;
            }
            break;
        case 5: {
            char *end;
            errno = 0;
            o->id = strtoll(val, &end, 10);
            if (!*val || *end || errno) {
                fprintf(stderr, "lifeblood-worker worker: --id: invalid int value: '%s'",
                        val);
                return -1;
            }
            o->has_id = 1;
            break;
        }
        case 6: o->pool_address = val; break;
        case 7:
            if (!strcmp(val, "NO_CHANGE"))
                o->lower = 0;
            else if (!strcmp(val, "LOWER"))
                o->lower = 1;
            else {
                fprintf(stderr, "lifeblood-worker worker: --priority: invalid choice: '%s' "
                                "(choose from 'NO_CHANGE', 'LOWER')", val);
                return -1;
            }
            break;
        case 8: o->gen_config = 1; break;
        case 9:
            if (o->noverrides == 64) {
                fprintf(stderr, "lifeblood-worker worker: too many --config options");
                return -1;
            }
            o->overrides[o->noverrides++] = val;
            break;
        case 10:
            worker_usage(stdout);
            exit(0);
        }
    }
    if (o->has_id != (o->pool_address != NULL)) {
        fprintf(stderr, "lifeblood-worker worker: --id and --pool-address must be given "
                        "together");
        return -1;
    }
    if (o->pool_address && !lbw_addr_is_direct(o->pool_address, strlen(o->pool_address))) {
        fprintf(stderr, "lifeblood-worker worker: --pool-address %s is not an ip:port "
                        "address", o->pool_address);
        return -1;
    }
    if (o->scheduler_address &&
        !lbw_chain_is_valid(o->scheduler_address, strlen(o->scheduler_address))) {
        fprintf(stderr, "lifeblood-worker worker: --scheduler-address %s is not an address "
                        "chain (ip:port[|ip:port...])", o->scheduler_address);
        return -1;
    }
    if (o->type == 1)
        o->singleshot = 1;
    return 0;
}

/* ---- paths ------------------------------------------------------------------------- */

/* os.path.expandvars: $NAME and ${NAME}; unknown names stay as written. */
static void expandvars(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < cap;) {
        if (*p == '$') {
            const char *s = p + 1, *e;
            int br = *s == '{';
            if (br)
                s++;
            e = s;
            while (*e && (*e == '_' || (*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'z') ||
                          (*e >= 'A' && *e <= 'Z')))
                e++;
            if (e > s && (!br || *e == '}')) {
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)(e - s), s);
                const char *v = getenv(name);
                if (v) {
                    o += (size_t)snprintf(out + o, cap - o, "%s", v);
                    if (o >= cap)
                        o = cap - 1;
                    p = e + br;
                    continue;
                }
            }
        }
        out[o++] = *p++;
    }
    out[o] = 0;
}

/* Makes sure `path` is a directory this process can create files in,
 * creating it and its parents when missing. Returns 0, or -1 with the
 * problem in plain words in why. own != 0: it must also belong to this user
 * (a directory in a shared temporary place). */
static int dir_check(const char *path, int own, char *why, size_t cap)
{
    struct stat st;
    if (!path[0]) {
        snprintf(why, cap, "the path is empty");
        return -1;
    }
    int rc = lbw_mkdirs(path);
    if (rc < 0) {
        snprintf(why, cap, "cannot create it: %s", strerror(-rc));
        return -1;
    }
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "it is not a directory");
        return -1;
    }
    if (own && st.st_uid != geteuid()) {
        snprintf(why, cap, "it belongs to uid %u, not to this user (uid %u)",
                 (unsigned)st.st_uid, (unsigned)geteuid());
        return -1;
    }
    if (access(path, W_OK | X_OK) < 0) {
        snprintf(why, cap, "this user (uid %u) cannot write into it: %s", (unsigned)geteuid(),
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* The first entry of a systemd directory list ("a:b" when a unit names
 * several), into out; 0 when the variable is unset or empty. */
static int systemd_dir(const char *var, char *out, size_t cap)
{
    const char *v = getenv(var);
    if (!v || !*v)
        return 0;
    size_t n = strcspn(v, ":");
    return (size_t)snprintf(out, cap, "%.*s", (int)n, v) < cap;
}

/* Where invocation logs go when worker.logpath is not set: upstream's
 * <config dir>/logs for a user; for a service the FHS places instead of the
 * configuration directory: under systemd's StateDirectory= or
 * LogsDirectory=, else /var/lib/lifeblood when the configuration lives
 * under /etc. *what names the choice for messages. */
static void default_log_root(const char *cfgdir, int home_ok, char *out, size_t cap,
                             const char **what)
{
    char d[PATH_MAX];
    if (systemd_dir("STATE_DIRECTORY", d, sizeof(d))) {
        if ((size_t)snprintf(out, cap, "%s/worker/logs", d) >= cap)
            out[0] = 0;
        *what = "$STATE_DIRECTORY/worker/logs";
    } else if (systemd_dir("LOGS_DIRECTORY", d, sizeof(d))) {
        if ((size_t)snprintf(out, cap, "%s/worker", d) >= cap)
            out[0] = 0;
        *what = "$LOGS_DIRECTORY/worker";
    } else if (!strncmp(cfgdir, "/etc/", 5)) {
        snprintf(out, cap, "/var/lib/lifeblood/worker/logs");
        *what = "the default for a configuration under /etc";
    } else if (home_ok && cfgdir[0]) {
        if ((size_t)snprintf(out, cap, "%s/logs", cfgdir) >= cap)
            out[0] = 0;
        *what = "the default, <config dir>/logs";
    } else {
        out[0] = 0;
        *what = "the default, <config dir>/logs, under a HOME that does not exist";
    }
}

/* The invocation log root, checked; upstream's fallback (<tmp>/lifeblood/
 * worker_logs) when the chosen one cannot be used, checked too. One line
 * per problem. Returns 0, or -1 when no directory can be used. */
static int log_root(const struct lbw_toml *cfg, const char *cfgdir, int home_ok, char *out,
                    size_t cap)
{
    const char *lp = lbw_cfg_string(cfg, LBW_CFG_LOGPATH), *what = "worker.logpath";
    char why[512], why2[512];
    if (lp)
        expandvars(lp, out, cap);
    else
        default_log_root(cfgdir, home_ok, out, cap, &what);
    if (out[0] && dir_check(out, 0, why, sizeof(why)) == 0)
        return 0;
    if (!out[0])
        snprintf(why, sizeof(why), "no such directory can be made");
    char first[PATH_MAX];
    if ((size_t)snprintf(first, sizeof(first), "%s", out) >= sizeof(first))
        first[0] = 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/lifeblood/worker_logs", tmp && *tmp ? tmp : "/tmp");
    if (dir_check(out, 1, why2, sizeof(why2)) == 0) {
        LBW_WARN("worker", "log directory %s (%s): %s; using %s instead", first, what, why, out);
        return 0;
    }
    LBW_CRIT("worker", "no usable log directory: %s (%s): %s; fallback %s: %s. Set "
                       "worker.logpath to a directory this user can write", first, what, why,
             out, why2);
    return -1;
}

/* Where lifeblood_connection.py lives: LBW_RUNTIME_DIR, the installed
 * share directory next to the binary, or the source tree (a binary in
 * build/ or build/san/). */
static void runtime_dir(char *out, size_t cap)
{
    const char *env = getenv("LBW_RUNTIME_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *s = strrchr(exe, '/');
        if (s)
            *s = 0;
        const char *cands[] = {"%s/../share/lifeblood-worker/runtime", "%s/../daemon/runtime",
                               "%s/../../daemon/runtime"};
        for (int i = 0; i < 3; i++) {
            char p[PATH_MAX + 64], f[PATH_MAX + 96];
            snprintf(p, sizeof(p), cands[i], exe);
            snprintf(f, sizeof(f), "%s/lifeblood_connection.py", p);
            char rp[PATH_MAX];
            if (access(f, R_OK) == 0 && realpath(p, rp)) {
                snprintf(out, cap, "%s", rp);
                return;
            }
        }
    }
    snprintf(out, cap, "/usr/share/lifeblood-worker/runtime");
}

/* A directory holding `python` for the python fallback (7.4): a link to
 * the configured interpreter (worker.python, an extension) or to the
 * python3 found on the worker's PATH. */
static int python_dir(const struct lbw_toml *cfg, const char *state, char *out, size_t cap)
{
    char interp[PATH_MAX];
    const char *py = lbw_cfg_string(cfg, LBW_CFG_PYTHON);
    if (py) {
        snprintf(interp, sizeof(interp), "%s", py);
        if (access(interp, X_OK) < 0) {
            LBW_WARN("worker", "worker.python %s cannot be run: %s; jobs that call python "
                               "need it on their own PATH", interp, strerror(errno));
            return -1;
        }
    } else if (lbw_find_executable("python3", getenv("PATH"), interp, sizeof(interp)) < 0) {
        LBW_INFO("worker", "no python3 on the worker's PATH: jobs that call python need it "
                           "on their own PATH (or set worker.python)");
        return -1;
    }
    snprintf(out, cap, "%s/.python-fallback", state);
    char why[512];
    if (dir_check(out, 0, why, sizeof(why)) < 0) {
        LBW_WARN("worker", "python fallback directory %s: %s; jobs that call python need it "
                           "on their own PATH", out, why);
        return -1;
    }
    char link[PATH_MAX + 32];
    if ((size_t)snprintf(link, sizeof(link), "%s/python", out) >= sizeof(link))
        return -1;
    unlink(link);
    return symlink(interp, link) == 0 ? 0 : -1;
}

/* Containment's settings from [containment] (LBW_CGROUPS=off in the
 * environment switches it off as well). */
void lbw_contain_cfg_read(const struct lbw_toml *cfg, struct lbw_contain_cfg *cc)
{
    const char *env = getenv("LBW_CGROUPS");
    const char *mode = lbw_cfg_string(cfg, LBW_CFG_CONTAINMENT_MODE);
    *cc = (struct lbw_contain_cfg){
        .parent = lbw_cfg_string(cfg, LBW_CFG_CONTAINMENT_PARENT),
        .pids_max = lbw_cfg_int(cfg, LBW_CFG_CONTAINMENT_PIDS_MAX),
        .swap = lbw_cfg_bool(cfg, LBW_CFG_CONTAINMENT_SWAP),
    };
    const char *mm = lbw_cfg_string(cfg, LBW_CFG_CONTAINMENT_MEMORY_MODE);
    cc->memory_high = mm && !strcmp(mm, "high");
    if (mode && !strcmp(mode, "off")) {
        cc->off = 1;
        cc->why_off = "containment.mode = \"off\"";
    } else if (env && !strcmp(env, "off")) {
        cc->off = 1;
        cc->why_off = "LBW_CGROUPS=off";
    }
}

/* Where invocations' cgroups come from, set up once (a dead predecessor's
 * leftovers are ended on the way), in one INFO line. */
static void containment(const struct lbw_toml *cfg, struct lbw_contain *c)
{
    struct lbw_contain_cfg cc;
    lbw_contain_cfg_read(cfg, &cc);
    lbw_contain_setup(&cc, c);
    char d[PATH_MAX * 2];
    lbw_contain_describe(c, d, sizeof(d));
    if (c->mode == LBW_CONTAIN_OFF)
        LBW_INFO("worker", "containment is off: %s; invocations are tracked as the worker's "
                           "descendants (process group and child subreaper)", c->why);
    else
        LBW_INFO("worker", "containment: %s; invocations get their own cgroups under %s",
                 d, c->v2[0] ? c->v2 : lbw_contain_first_dir(c));
    if (c->mode != LBW_CONTAIN_OFF && c->slow_joins)
        LBW_INFO("worker", "payloads join their v1 cgroups before they start, and no cgroup "
                           "hierarchy is mounted with favordynmods: each join may first wait "
                           "for an RCU grace period (milliseconds; `mount -o "
                           "remount,favordynmods` on one hierarchy avoids it, DEPLOYING.md)");
}

/* 1 when user u may search dir and every directory above it (the mode
 * bits; enough to warn about a TMPDIR the payload user cannot reach). */
static int user_reaches(const struct lbw_payload_user *u, const char *dir)
{
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof(p), "%s", dir) >= sizeof(p) || p[0] != '/')
        return 1;
    for (;;) {
        struct stat st;
        if (stat(p[0] ? p : "/", &st) < 0)
            return 1; /* not there: the start of an invocation says so */
        int in_group = st.st_gid == u->gid;
        for (size_t i = 0; i < u->ngroups && !in_group; i++)
            in_group = st.st_gid == u->groups[i];
        mode_t bit = st.st_uid == u->uid ? S_IXUSR : in_group ? S_IXGRP : S_IXOTH;
        if (u->uid != 0 && !(st.st_mode & bit))
            return 0;
        char *sl = strrchr(p, '/');
        if (!sl || !p[0])
            return 1;
        *sl = 0;
    }
}

int lbw_payload_user_check(const struct lbw_payload_user *u, char *why, size_t cap)
{
    if (!strcmp(u->name, "root"))
        return 0; /* said explicitly */
    const char *what = u->uid == 0 ? "has uid 0" : u->gid == 0 ? "has group 0 (root's)" : NULL;
    for (size_t i = 0; !what && i < u->ngroups; i++)
        if (u->groups[i] == 0)
            what = "is in group 0 (root's)";
    if (!what)
        return 0;
    snprintf(why, cap, "user %.63s %s: a payload would run with root's %s; set it to \"root\" "
             "if that is meant, or choose a user without", u->name, what,
             u->uid == 0 ? "powers" : "group");
    return -1;
}

/* Who payloads run as: a root worker's worker.payload_user (default: the
 * package's `lifeblood` user when it exists, else `nobody`; root only when
 * configured so); any other worker runs them as itself (u->name[0] = 0).
 * -1 (the start stops, exit 2) for a user that does not exist. */
static int payload_user(const struct lbw_toml *cfg, struct lbw_payload_user *u)
{
    memset(u, 0, sizeof(*u));
    const char *name = lbw_cfg_string(cfg, LBW_CFG_PAYLOAD_USER);
    if (geteuid() != 0) {
        if (name)
            LBW_INFO("worker", "worker.payload_user %s is not used: a worker that is not root "
                               "runs payloads as itself", name);
        return 0;
    }
    int dflt = !name;
    if (dflt)
        name = getpwnam("lifeblood") ? "lifeblood" : "nobody";
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        LBW_CRIT("worker", "worker.payload_user: no user %s on this host", name);
        return -1;
    }
    snprintf(u->name, sizeof(u->name), "%s", name);
    if (pw->pw_dir && strlen(pw->pw_dir) < sizeof(u->home))
        snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    int ng = (int)(sizeof(u->groups) / sizeof(u->groups[0]));
    if (getgrouplist(name, pw->pw_gid, u->groups, &ng) < 0) {
        LBW_WARN("worker", "user %s is in %d groups, more than %zu: payloads get the first "
                 "%zu only", name, ng, sizeof(u->groups) / sizeof(u->groups[0]),
                 sizeof(u->groups) / sizeof(u->groups[0]));
        ng = (int)(sizeof(u->groups) / sizeof(u->groups[0]));
    }
    u->ngroups = (size_t)ng;
    char why[256];
    if (lbw_payload_user_check(u, why, sizeof(why)) < 0) {
        LBW_CRIT("worker", "worker.payload_user: %s", why);
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && *tmp ? tmp : "/tmp";
    if (!user_reaches(u, tmp))
        LBW_WARN("worker", "user %s cannot reach %s (TMPDIR): the extra files of its payloads "
                           "are written there and would be out of its reach", name, tmp);
    if (dflt)
        LBW_WARN("worker", "running as root: payloads run as user %s (uid %d), since "
                           "worker.payload_user is not set (set it to choose another user, or "
                           "to \"root\")", name, (int)u->uid);
    else
        LBW_INFO("worker", "payloads run as user %s (uid %d, gid %d, %zu groups)", name,
                 (int)u->uid, (int)u->gid, u->ngroups);
    return 0;
}

/* worker.scheduler_allow: a list of addresses/networks (or one string). */

/* ---- the loop ------------------------------------------------------------------------ */

struct loop {
    lbw_reactor *r;
    struct wopts *a;
    struct lbw_toml *cfg;
    struct lbw_worker_opts wo;
    struct lbw_worker *w;
    struct lbw_sched_src src;   /* where the scheduler is found */
    struct lbw_op sig_op, sleep_op;
    struct lbw_sdnotify *notify;
    struct lbw_op watchdog_op;  /* WATCHDOG=1 at half the manager's interval */
    int sfd;
    uint32_t sigbuf[32]; /* a signalfd_siginfo is 128 bytes */
    int signalled;
    int broadcast;
    int exit_code;
    char sched[1024];
};

static void next_instance(struct loop *L);

static void sleep_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    if (res > 0)
        next_instance(op->user);
}

static void on_worker_end(void *ctx, enum lbw_worker_end why)
{
    struct loop *L = ctx;
    lbw_worker_free(L->w);
    L->w = NULL;
    if (L->signalled || L->a->no_loop) {
        if (why != LBW_WORKER_STOPPED && !L->signalled)
            L->exit_code = 1;
        lbw_sdnotify_stopping(L->notify, "the worker stopped; exiting");
        lbw_reactor_stop(L->r);
        return;
    }
    if (why == LBW_WORKER_UNREACHABLE && !L->broadcast) {
        LBW_INFO("worker", "scheduler %s unreachable; trying again in 10 s", L->sched);
        lbw_sdnotify_status(L->notify, "the scheduler at %s is unreachable; trying again "
                            "in 10 s", L->sched);
        lbw_timer(L->r, &L->sleep_op, 10 * SEC, 0, sleep_cb);
        return;
    }
    next_instance(L);
}

static void start_worker(struct loop *L, const char *address)
{
    lbw_sdnotify_status(L->notify, "saying hello to the scheduler at %s", address);
    char err[512];
    /* names resolved here, bounded, never inside the transport */
    if (lbw_msgnet_resolve_chain(address, L->sched, sizeof(L->sched), 5 * SEC, err,
                                 sizeof(err)) == 0) {
        L->wo.scheduler = L->sched;
        L->w = lbw_worker_start(&L->wo, err, sizeof(err));
    }
    if (!L->w) {
        LBW_ERROR("worker", "cannot start the worker: %s", err);
        if (L->a->no_loop || L->signalled) {
            L->exit_code = 1;
            lbw_reactor_stop(L->r);
            return;
        }
        lbw_timer(L->r, &L->sleep_op, 10 * SEC, 0, sleep_cb);
    }
}

static void on_found(void *ctx, const char *address)
{
    start_worker(ctx, address);
}

static void next_instance(struct loop *L)
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

/* The host's claims changed (ledger.h): an idle worker may say hello again. */
static void ledger_changed(void *ctx)
{
    struct loop *L = ctx;
    lbw_worker_host_changed(L->w);
}

static void sig_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct loop *L = op->user;
    if (res == -ECANCELED)
        return;
    int sig = 0;
    if (res > 0)
        sig = lbw_signalfd_read(L->sfd, NULL);
    if (sig > 0) {
        if (L->signalled) {
            LBW_WARN("worker", "DOUBLE SIGNAL CAUGHT: ALREADY EXITING (payload killed, no "
                               "report)");
            if (L->w)
                lbw_worker_kill_now(L->w);
            _exit(128 + sig);
        }
        L->signalled = 1;
        LBW_INFO("worker", "%s received: stopping", strsignal(sig));
        lbw_sdnotify_stopping(L->notify, "%s received: stopping (a running invocation is "
                              "cancelled and reported as dropped)", strsignal(sig));
        lbw_sched_src_cancel(&L->src);
        if (lbw_op_pending(&L->sleep_op))
            lbw_cancel(r, &L->sleep_op);
        if (L->w)
            lbw_worker_stop(L->w);
        else
            lbw_reactor_stop(r);
    }
    lbw_poll(r, &L->sig_op, L->sfd, POLLIN, sig_cb);
}

/* Reads the worker's and the standard resolver's configuration, checked:
 * every problem is logged on its own line; any error stops the start.
 * Returns 0, 2 (configuration errors) or 1 (out of memory). */
static int load_config(const struct wopts *a, const char *cfgdir, int home_ok,
                       struct lbw_toml **cfg, struct lbw_toml **stdres)
{
    struct lbw_cfg_diag d = {0};
    char err[64], sdir[PATH_MAX];
    *cfg = home_ok ? lbw_config_load_checked(cfgdir, lbw_cfg_worker_schema(), &d)
                   : lbw_toml_parse("", 0, err, sizeof(err));
    int files = d.files;
    for (int i = 0; *cfg && i < a->noverrides; i++)
        lbw_config_override_checked(*cfg, a->overrides[i], lbw_cfg_worker_schema(), &d);
    if (home_ok && lbw_config_dir("standard_environment_resolver", sdir, sizeof(sdir)) == 0)
        *stdres = lbw_config_load_checked(sdir, lbw_cfg_stdres_schema(), &d);
    else
        *stdres = lbw_toml_parse("", 0, err, sizeof(err));
    lbw_cfg_diag_log(&d);
    int rc = 0;
    if (!*cfg || !*stdres) {
        LBW_CRIT("worker", "out of memory reading the config");
        rc = 1;
    } else if (d.errors) {
        LBW_CRIT("worker", "the configuration has %d error%s (above); not starting. Fix %s, "
                           "then check with 'lifeblood-worker config check'", d.errors,
                 d.errors == 1 ? "" : "s", d.errors == 1 ? "it" : "them");
        rc = 2;
    } else if (home_ok) {
        LBW_INFO("worker", "configuration: %d file%s from %s", files, files == 1 ? "" : "s",
                 cfgdir);
    }
    lbw_cfg_diag_free(&d);
    if (rc) {
        lbw_toml_free(*cfg);
        lbw_toml_free(*stdres);
        *cfg = *stdres = NULL;
    }
    return rc;
}

/* Directories a job needs besides the log root, one line per problem. */
static void check_other_dirs(const char *rtdir)
{
    char f[PATH_MAX + 32];
    snprintf(f, sizeof(f), "%s/lifeblood_connection.py", rtdir);
    if (access(f, R_OK) < 0)
        LBW_WARN("worker", "runtime directory %s: no readable lifeblood_connection.py (%s); "
                           "payloads that import lifeblood_connection will fail: set "
                           "LBW_RUNTIME_DIR or reinstall", rtdir, strerror(errno));
    const char *tmp = getenv("TMPDIR");
    struct stat st;
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (stat(tmp, &st) < 0 || !S_ISDIR(st.st_mode) || access(tmp, W_OK | X_OK) < 0)
        LBW_WARN("worker", "temporary directory %s (TMPDIR) is not a directory this user can "
                           "write: jobs with extra files will fail", tmp);
}

/* The service manager's watchdog: proof that the event loop turns. */
static void watchdog_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct loop *L = op->user;
    if (res > 0)
        lbw_sdnotify_watchdog(L->notify);
}

/* What a worker process sets up before its first instance, released by
 * start_free whatever step failed. */
struct start {
    char cfgdir[PATH_MAX];
    char logs[PATH_MAX];
    char rtdir[PATH_MAX];
    char pydir[PATH_MAX + 32];
    struct lbw_contain contain;
    struct lbw_payload_user user;
    char hostname[256];
    int home_ok, have_py;
    struct lbw_toml *cfg, *stdres;
    struct lbw_sdnotify notify;
    lbw_reactor *r;
    struct lbw_host host;
    struct lbw_advertised adv;
    struct lbw_cidr_set allow;
    struct lbw_ledger *ledger;
    struct lbw_capacity *capacity;
};

static void start_free(struct start *s)
{
    lbw_capacity_close(s->capacity);
    lbw_ledger_close(s->ledger);
    if (s->r)
        lbw_reactor_free(s->r); /* delivers the cancellations; frees what is left */
    lbw_contain_teardown(&s->contain);
    lbw_sdnotify_close(&s->notify);
    lbw_toml_free(s->cfg);
    lbw_toml_free(s->stdres);
    lbw_cidr_set_free(&s->allow);
}

/* The config directory, and the default config written on the first run
 * (all of --generate-config-only). Returns -1 to go on, else the exit
 * status. */
static int step_config_files(const struct wopts *a, struct start *s)
{
    char err[512];
    if (lbw_config_dir("worker", s->cfgdir, sizeof(s->cfgdir)) < 0) {
        LBW_CRIT("worker", "cannot find the config directory: set HOME or "
                           "LIFEBLOOD_CONFIG_LOCATION");
        return 1;
    }
    /* a system user's HOME (/nonexistent) is neither read nor created */
    s->home_ok = lbw_config_home_ok(err, sizeof(err)) == 0;
    if (!s->home_ok) {
        if (a->gen_config) {
            LBW_CRIT("worker", "cannot write the default config: %s", err);
            return 1;
        }
        LBW_WARN("worker", "%s; running on the defaults", err);
    }
    int created = 0;
    if (s->home_ok && lbw_config_write_default(s->cfgdir, &created, err, sizeof(err)) < 0) {
        if (a->gen_config) {
            LBW_CRIT("worker", "%s", err);
            return 1;
        }
        LBW_WARN("worker", "cannot write the default config: %s", err);
    } else if (created) {
        LBW_INFO("worker", "wrote the default config to %s/config.toml", s->cfgdir);
    }
    if (a->gen_config) {
        if (!created)
            LBW_INFO("worker", "config already present, left unchanged: %s/config.toml",
                     s->cfgdir);
        return 0;
    }
    return -1;
}

/* The checked configuration and the log root. -1 to go on, else the exit
 * status. */
static int step_config(const struct wopts *a, struct start *s)
{
    int rc = load_config(a, s->cfgdir, s->home_ok, &s->cfg, &s->stdres);
    if (rc)
        return rc;
    if (log_root(s->cfg, s->cfgdir, s->home_ok, s->logs, sizeof(s->logs)) < 0)
        return 1;
    return -1;
}

/* The service manager (read and removed from the environment before any
 * payload could inherit it), the event loop, the subreaper. */
static int step_process(const struct lbw_reactor_opts *ropts, struct start *s)
{
    char err[512];
    if (lbw_sdnotify_open(&s->notify, 1, err, sizeof(err)) < 0)
        LBW_WARN("worker", "%s", err);
    if (lbw_reactor_new(&s->r, ropts, err, sizeof(err)) < 0) {
        s->r = NULL;
        LBW_CRIT("worker", "%s", err);
        return 1;
    }
    LBW_INFO("worker", "event loop: %s (%s)", lbw_reactor_backend_name(s->r),
             lbw_reactor_backend_reason(s->r));
    if (lbw_become_subreaper() < 0)
        LBW_WARN("worker", "cannot become a child subreaper: daemonised payload processes "
                           "may escape a drop");
    signal(SIGPIPE, SIG_IGN);
    return -1;
}

/* What hello advertises, and where payloads' files, runtime module,
 * python fallback and cgroups live. */
static void step_host(struct start *s)
{
    struct lbw_probe_opts po = {.root = "/"};
    lbw_probe_host(&po, &s->host);
    lbw_advertise(&s->host, s->cfg, &s->adv);
    gethostname(s->hostname, sizeof(s->hostname) - 1);
    runtime_dir(s->rtdir, sizeof(s->rtdir));
    check_other_dirs(s->rtdir);
    s->have_py = python_dir(s->cfg, s->logs, s->pydir, sizeof(s->pydir)) == 0;
    LBW_INFO("worker", "logs in %s", s->logs);
    containment(s->cfg, &s->contain);
}

/* Every worker instance's options, from the flags and the configuration. */
static void worker_opts(struct loop *L, const struct wopts *a, struct start *s)
{
    /* extensions: the pinger's period and the kill grace (upstream: 10 s
     * each), the runtime API's request deadline */
    double ping_s = lbw_cfg_number(s->cfg, LBW_CFG_PING_INTERVAL);
    double grace_s = lbw_cfg_number(s->cfg, LBW_CFG_KILL_GRACE);
    double rtreq_s = lbw_cfg_number(s->cfg, LBW_CFG_RUNTIME_REQUEST_TIMEOUT);
    L->wo = (struct lbw_worker_opts){
        .r = s->r,
        .pool_address = a->pool_address,
        .pool_id = a->id,
        .worker_type = a->type,
        .singleshot = a->singleshot,
        .payload_nice = a->lower ? 10 : 0,
        .cfg = s->cfg,
        .stdres_cfg = s->stdres,
        .res = &s->adv.res,
        .hostname = s->hostname,
        .log_root = s->logs,
        .runtime_dir = s->rtdir,
        .python_dir = s->have_py ? s->pydir : NULL,
        .contain = &s->contain,
        .payload_user = s->user.name[0] ? &s->user : NULL,
        .environ = environ,
        .progress_interval = lbw_cfg_number(s->cfg, LBW_CFG_MIN_PROGRESS_INTERVAL),
        .ping_interval_ns = (uint64_t)(ping_s * 1e9),
        .retry_wait_ns = (uint64_t)(ping_s * 1e9),
        .kill_grace_ns = (uint64_t)(grace_s * 1e9),
        .runtime_request_timeout_ns = (uint64_t)(rtreq_s * 1e9),
        .notify = &s->notify,
        .scheduler_allow = &s->allow,
        .ledger = s->ledger,
        .readvertise = lbw_cfg_bool(s->cfg, LBW_CFG_MESH_READVERTISE),
        .on_end = on_worker_end,
        .ctx = L,
    };
}

/* The loop's own operations: signals and the service watchdog. 0 or -1. */
static int step_loop(struct loop *L, struct start *s)
{
    int sigs[] = {SIGINT, SIGTERM};
    L->sfd = lbw_signalfd_open(sigs, 2);
    if (L->sfd < 0 || lbw_poll(s->r, &L->sig_op, L->sfd, POLLIN, sig_cb) < 0) {
        LBW_CRIT("worker", "cannot watch for signals");
        return -1;
    }
    uint64_t wd_ns = lbw_sdnotify_watchdog_usec(&s->notify) * 1000 / 2;
    if (wd_ns && lbw_timer(s->r, &L->watchdog_op, wd_ns, wd_ns, watchdog_cb) < 0)
        LBW_WARN("worker", "cannot start the service watchdog timer");
    return 0;
}

int lbw_cmd_worker(int argc, char **argv, const struct lbw_reactor_opts *ropts)
{
    struct wopts a;
    if (parse_args(argc, argv, &a) < 0) {
        fprintf(stderr, "; see 'lifeblood-worker worker --help'\n");
        return 2;
    }
    struct start s = {.notify = {.fd = -1}};
    int rc = step_config_files(&a, &s);
    if (rc < 0)
        rc = step_config(&a, &s);
    if (rc < 0)
        rc = step_process(ropts, &s);
    if (rc < 0 && payload_user(s.cfg, &s.user) < 0)
        rc = 2;
    if (rc < 0) {
        step_host(&s);
        if (lbw_cfg_scheduler_allow(s.cfg, &s.allow, "worker") < 0)
            rc = 2;
    }
    struct loop L = {.sfd = -1};
    if (rc < 0) {
        char lerr[512];
        s.ledger = lbw_ledger_join(s.r, s.cfg, &s.host, &s.adv, "worker", ledger_changed, &L, lerr,
                                   sizeof(lerr));
        if (!s.ledger && !strcmp(lerr, "mesh.enabled = false"))
            LBW_INFO("worker", "mesh.enabled = false: no host ledger (payloads are not pinned)");
        else if (!s.ledger)
            LBW_WARN("worker", "no host ledger: %s; payloads run unpinned and hello advertises "
                               "the whole host", lerr);
        /* capacity follows the host: hello's values and the ledger change in place */
        s.capacity = lbw_capacity_open(&(struct lbw_capacity_opts){
            .r = s.r, .cfg = s.cfg, .host = &s.host, .adv = &s.adv, .ledger = s.ledger});
        L.r = s.r;
        L.a = &a;
        L.cfg = s.cfg;
        L.sig_op.user = &L;
        L.sleep_op.user = &L;
        L.notify = &s.notify;
        L.watchdog_op.user = &L;
        worker_opts(&L, &a, &s);
        L.broadcast = lbw_cfg_bool(s.cfg, LBW_CFG_LISTEN_TO_BROADCAST) &&
                      !a.no_listen_broadcast && !a.scheduler_address;
        L.src = (struct lbw_sched_src){
            .r = s.r, .who = "worker", .cli_option = "--scheduler-address",
            .broadcast = L.broadcast, .address = a.scheduler_address, .cfg = s.cfg,
            .allow = L.wo.scheduler_allow, .notify = L.notify, .found = on_found, .ctx = &L};
        if (step_loop(&L, &s) < 0)
            rc = 1;
    }
    if (rc < 0) {
        next_instance(&L);
        lbw_reactor_run(s.r);
        if (L.w) /* stopped by a fatal reactor error */
            lbw_worker_kill_now(L.w);
        rc = L.exit_code;
    }
    start_free(&s);
    if (L.sfd >= 0)
        close(L.sfd);
    return rc;
}
