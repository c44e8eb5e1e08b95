/* status_cmd.c — `lifeblood-worker status`: what the host's mesh knows,
 * asked of its arbiter as an observer (ledger.h), printed as a table or
 * as the JSON document of docs/STATUS-COMMAND.md; --watch redraws on
 * every change the arbiter announces (at most ten times a second, and
 * once a second for the running times). No scheduler is involved. */
#include "status_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "ledger.h"
#include "toml.h"
#include "unixsock.h"

enum { EXIT_NONE = 3, EXIT_REFUSED = 4 };

static void usage(FILE *f)
{
    fputs("Usage: lifeblood-worker status [--json] [--watch] [--count N] [--namespace NS]\n"
          "Shows what the workers on this host (this network namespace) hold, from their\n"
          "host ledger, without asking the scheduler: the host's capacity and what is\n"
          "left; each worker's pid, listen and scheduler addresses, state, invocation and\n"
          "task ids, progress, running time and its claim (CPUs, NUMA node, memory, GPUs);\n"
          "a pool that is a member of the mesh.\n"
          "  --json          one JSON document (schema: docs/STATUS-COMMAND.md)\n"
          "  --watch         a live view, redrawn when the mesh changes (with --json: one\n"
          "                  document a line); ends with Ctrl-C\n"
          "  --count N       with --watch: stop after N views\n"
          "  --namespace NS  the mesh's name prefix (default: [mesh] namespace of the\n"
          "                  worker config, else lifeblood-worker/ledger)\n"
          "Exit status: 0 shown; 3 no worker runs here; 4 the mesh does not admit this\n"
          "user (run as the workers' user, root, or a member of mesh.allow_group);\n"
          "1 another error; 2 a usage error.\n", f);
}

static const char *vendor_name(int v)
{
    static const char *const n[] = {"unknown", "nvidia", "amd", "intel"};
    return v >= 0 && v <= 3 ? n[v] : "unknown";
}

static const char *role_name(uint32_t r)
{
    return r == LBW_ROLE_WORKER ? "worker" : r == LBW_ROLE_POOL ? "pool" : "unknown";
}

static double now_rt(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double running_s(const struct lbw_ledger_desc *d)
{
    if (!d->started_ns)
        return -1;
    double v = now_rt() - (double)d->started_ns / 1e9;
    return v > 0 ? v : 0;
}

/* ---- JSON (docs/STATUS-COMMAND.md; schema 1) ---------------------------------- */

static void amounts_json(struct lbw_jw *j, double cpu, uint64_t mem, uint64_t gpu, uint64_t gmem)
{
    lbw_jw_obj(j);
    lbw_jw_key(j, "cpu_count");
    lbw_jw_double(j, cpu);
    lbw_jw_key(j, "cpu_mem");
    lbw_jw_u64(j, mem);
    lbw_jw_key(j, "gpu_count");
    lbw_jw_u64(j, gpu);
    lbw_jw_key(j, "gpu_mem");
    lbw_jw_u64(j, gmem);
    lbw_jw_obj_end(j);
}

static void i64_or_null(struct lbw_jw *j, int have, int64_t v)
{
    if (have)
        lbw_jw_i64(j, v);
    else
        lbw_jw_null(j);
}

static void double_or_null(struct lbw_jw *j, int have, double v)
{
    if (have)
        lbw_jw_double(j, v);
    else
        lbw_jw_null(j);
}

static void claim_json(struct lbw_jw *j, const struct lbw_topo *t, const struct lbw_claim *c)
{
    char b[8192];
    lbw_jw_obj(j);
    lbw_jw_key(j, "id");
    lbw_jw_u64(j, c->id);
    lbw_jw_key(j, "cpu_count");
    lbw_jw_double(j, c->cpu);
    lbw_cpuset_format(&c->cpus, b, sizeof(b));
    lbw_jw_key(j, "cpus");
    lbw_jw_cstr(j, b);
    lbw_jw_key(j, "numa_node");
    i64_or_null(j, c->node >= 0 && lbw_cpuset_count(&c->cpus), c->node);
    lbw_jw_key(j, "cpu_mem");
    lbw_jw_u64(j, c->mem);
    lbw_jw_key(j, "gpu_count");
    lbw_jw_u64(j, c->gpu);
    lbw_jw_key(j, "gpus");
    lbw_jw_arr(j);
    for (unsigned g = 0; g < t->ngpus && g < 32; g++)
        if (c->gpus & (1u << g))
            lbw_jw_i64(j, g);
    lbw_jw_arr_end(j);
    lbw_jw_key(j, "gpu_mem");
    lbw_jw_u64(j, c->gmem);
    lbw_jw_obj_end(j);
}

static void str_or_null(struct lbw_jw *j, const char *s)
{
    if (s && *s)
        lbw_jw_cstr(j, s);
    else
        lbw_jw_null(j);
}

static void member_json(struct lbw_jw *j, const struct lbw_ledger_snap *s,
                        const struct lbw_ledger_member *m)
{
    const struct lbw_ledger_desc *d = &m->d;
    lbw_jw_obj(j);
    lbw_jw_key(j, "pid");
    lbw_jw_i64(j, m->pid);
    lbw_jw_key(j, "arbiter");
    lbw_jw_bool(j, m->arbiter);
    lbw_jw_key(j, "role");
    lbw_jw_cstr(j, m->have_desc ? role_name(d->role) : "unknown");
    lbw_jw_key(j, "state");
    str_or_null(j, m->have_desc ? lbw_ledger_mstate_name(d->state) : NULL);
    lbw_jw_key(j, "listen");
    str_or_null(j, m->have_desc ? d->listen : NULL);
    lbw_jw_key(j, "scheduler");
    str_or_null(j, m->have_desc ? d->scheduler : NULL);
    lbw_jw_key(j, "invocation_id");
    i64_or_null(j, m->have_desc && d->invocation_id >= 0, d->invocation_id);
    lbw_jw_key(j, "task_id");
    i64_or_null(j, m->have_desc && d->task_id >= 0, d->task_id);
    lbw_jw_key(j, "progress");
    double_or_null(j, m->have_desc && d->progress >= 0, d->progress);
    double rs = m->have_desc ? running_s(d) : -1;
    lbw_jw_key(j, "running_s");
    double_or_null(j, rs >= 0, floor(rs * 1000) / 1000);
    lbw_jw_key(j, "claims");
    lbw_jw_arr(j);
    for (size_t i = 0; i < s->nclaims; i++)
        if (s->claims[i].pid == m->pid)
            claim_json(j, s->topo, &s->claims[i]);
    lbw_jw_arr_end(j);
    lbw_jw_obj_end(j);
}

/* The CPUs claims are pinned to, as a list. */
static void topo_cpus(const struct lbw_topo *t, char *out, size_t cap)
{
    struct lbw_cpuset all;
    lbw_cpuset_clear(&all);
    for (unsigned c = 0; c < t->ncpus; c++)
        lbw_cpuset_set(&all, t->cpus[c].id);
    lbw_cpuset_format(&all, out, cap);
}

/* {"schema": 1, "namespace": NS, (the caller goes on) */
static void json_head(struct lbw_jw *j, const char *ns)
{
    lbw_jw_init(j);
    lbw_jw_obj(j);
    lbw_jw_key(j, "schema");
    lbw_jw_i64(j, 1);
    lbw_jw_key(j, "namespace");
    lbw_jw_cstr(j, ns);
}

static char *snap_json(const struct lbw_ledger_snap *s, const char *ns)
{
    const struct lbw_topo *t = s->topo;
    char b[8192];
    struct lbw_jw j;
    json_head(&j, ns);
    lbw_jw_key(&j, "mesh");
    lbw_jw_cstr(&j, s->name);
    lbw_jw_key(&j, "arbiter_pid");
    lbw_jw_i64(&j, s->arbiter);
    lbw_jw_key(&j, "capacity");
    amounts_json(&j, t->cpu_cap, t->mem_cap, t->gpu_cap, t->gmem_cap);
    lbw_jw_key(&j, "cpus");
    topo_cpus(t, b, sizeof(b));
    lbw_jw_cstr(&j, b);
    lbw_jw_key(&j, "gpus");
    lbw_jw_arr(&j);
    for (unsigned g = 0; g < t->ngpus; g++) {
        lbw_jw_obj(&j);
        lbw_jw_key(&j, "index");
        lbw_jw_i64(&j, g);
        lbw_jw_key(&j, "id");
        lbw_jw_cstr(&j, t->gpus[g].id);
        lbw_jw_key(&j, "vendor");
        lbw_jw_cstr(&j, vendor_name(t->gpus[g].vendor));
        lbw_jw_key(&j, "numa_node");
        i64_or_null(&j, t->gpus[g].node >= 0, t->gpus[g].node);
        lbw_jw_obj_end(&j);
    }
    lbw_jw_arr_end(&j);
    lbw_jw_key(&j, "used");
    amounts_json(&j, s->used.cpu, s->used.mem, s->used.gpu, s->used.gmem);
    double lc = t->cpu_cap - s->used.cpu;
    lbw_jw_key(&j, "left");
    amounts_json(&j, lc > 0 ? lc : 0, t->mem_cap > s->used.mem ? t->mem_cap - s->used.mem : 0,
                 t->gpu_cap > s->used.gpu ? t->gpu_cap - s->used.gpu : 0,
                 t->gmem_cap > s->used.gmem ? t->gmem_cap - s->used.gmem : 0);
    for (int pools = 0; pools < 2; pools++) {
        lbw_jw_key(&j, pools ? "pools" : "workers");
        lbw_jw_arr(&j);
        for (size_t i = 0; i < s->nmembers; i++) {
            const struct lbw_ledger_member *m = &s->members[i];
            int is_pool = m->have_desc && m->d.role == LBW_ROLE_POOL;
            if (is_pool == pools)
                member_json(&j, s, m);
        }
        lbw_jw_arr_end(&j);
    }
    lbw_jw_obj_end(&j);
    size_t n;
    return lbw_jw_take(&j, &n);
}

/* ---- the table ------------------------------------------------------------------ */

static void human_bytes(uint64_t v, char *out, size_t cap)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double x = (double)v;
    unsigned i = 0;
    while (x >= 1024 && i < 5) {
        x /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, cap, "%llu B", (unsigned long long)v);
    else
        snprintf(out, cap, "%.1f %s", x, u[i]);
}

static void amounts_text(FILE *f, const char *label, double cpu, uint64_t mem, uint64_t gpu,
                         uint64_t gmem)
{
    char m[32], g[32];
    human_bytes(mem, m, sizeof(m));
    human_bytes(gmem, g, sizeof(g));
    fprintf(f, "%-9s %g CPUs, %s memory, %llu GPUs, %s GPU memory\n", label, cpu, m,
            (unsigned long long)gpu, g);
}

static void print_table(FILE *f, const struct lbw_ledger_snap *s)
{
    const struct lbw_topo *t = s->topo;
    char b[8192];
    topo_cpus(t, b, sizeof(b));
    fprintf(f, "host ledger @%s (arbiter: process %d)\n", s->name, (int)s->arbiter);
    amounts_text(f, "capacity", t->cpu_cap, t->mem_cap, t->gpu_cap, t->gmem_cap);
    fprintf(f, "%-9s %s\n", "CPUs", b);
    for (unsigned g = 0; g < t->ngpus; g++)
        fprintf(f, "GPU %-5u %s %s (NUMA node %d)\n", g, vendor_name(t->gpus[g].vendor),
                t->gpus[g].id, t->gpus[g].node);
    double lc = t->cpu_cap - s->used.cpu;
    amounts_text(f, "left", lc > 0 ? lc : 0,
                 t->mem_cap > s->used.mem ? t->mem_cap - s->used.mem : 0,
                 t->gpu_cap > s->used.gpu ? t->gpu_cap - s->used.gpu : 0,
                 t->gmem_cap > s->used.gmem ? t->gmem_cap - s->used.gmem : 0);
    fprintf(f, "\n%-8s %-7s %-13s %-21s %-21s %-11s %-8s %-8s %s\n", "PID", "ROLE", "STATE",
            "LISTEN", "SCHEDULER", "INVOCATION", "TASK", "PROGRESS", "RUNNING");
    for (size_t i = 0; i < s->nmembers; i++) {
        const struct lbw_ledger_member *m = &s->members[i];
        const struct lbw_ledger_desc *d = &m->d;
        char inv[24] = "-", task[24] = "-", prog[16] = "-", run[64] = "-";
        if (m->have_desc && d->invocation_id >= 0)
            snprintf(inv, sizeof(inv), "%lld", (long long)d->invocation_id);
        if (m->have_desc && d->task_id >= 0)
            snprintf(task, sizeof(task), "%lld", (long long)d->task_id);
        if (m->have_desc && d->progress >= 0)
            snprintf(prog, sizeof(prog), "%.0f%%", d->progress);
        double rs = m->have_desc ? running_s(d) : -1;
        if (rs >= 0)
            snprintf(run, sizeof(run), "%lldh%02lldm%02llds", (long long)rs / 3600,
                     ((long long)rs / 60) % 60, (long long)rs % 60);
        fprintf(f, "%-8d %-7s %-13s %-21s %-21s %-11s %-8s %-8s %s%s\n", (int)m->pid,
                m->have_desc ? role_name(d->role) : "unknown",
                m->have_desc ? lbw_ledger_mstate_name(d->state) : "-",
                m->have_desc && d->listen[0] ? d->listen : "-",
                m->have_desc && d->scheduler[0] ? d->scheduler : "-", inv, task, prog, run,
                m->arbiter ? "  (arbiter)" : "");
        for (size_t k = 0; k < s->nclaims; k++) {
            const struct lbw_claim *c = &s->claims[k];
            if (c->pid != m->pid)
                continue;
            char mem[32], gmem[32], gl[256] = "";
            human_bytes(c->mem, mem, sizeof(mem));
            human_bytes(c->gmem, gmem, sizeof(gmem));
            lbw_cpuset_format(&c->cpus, b, sizeof(b));
            size_t gk = 0;
            for (unsigned g = 0; g < t->ngpus && g < 32 && gk + 8 < sizeof(gl); g++)
                if (c->gpus & (1u << g))
                    gk += (size_t)snprintf(gl + gk, sizeof(gl) - gk, "%s%u", gk ? "," : "", g);
            fprintf(f, "%8s claim %g CPUs [%s]", "", c->cpu,
                    lbw_cpuset_count(&c->cpus) ? b : "unpinned");
            if (c->node >= 0 && lbw_cpuset_count(&c->cpus))
                fprintf(f, " NUMA node %d", c->node);
            fprintf(f, ", %s memory, %u GPUs [%s], %s GPU memory\n", mem, c->gpu,
                    gk ? gl : "-", gmem);
        }
    }
}

/* ---- the command ------------------------------------------------------------------- */

/* --watch --json with no worker: {"schema": 1, "namespace": NS, "mesh": null}. */
static void print_none_json(const char *ns)
{
    struct lbw_jw j;
    json_head(&j, ns);
    lbw_jw_key(&j, "mesh");
    lbw_jw_null(&j);
    lbw_jw_obj_end(&j);
    size_t n;
    char *t = lbw_jw_take(&j, &n);
    if (t)
        printf("%s\n", t);
    free(t);
}

/* The arbiter first, then by pid: the same order in every view. */
static int member_cmp(const void *a, const void *b)
{
    const struct lbw_ledger_member *x = a, *y = b;
    if (x->arbiter != y->arbiter)
        return x->arbiter ? -1 : 1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static void explain(const char *ns, const char *name, int rc, int fd, const char *err)
{
    if (rc == -ENOENT) {
        fprintf(stderr, "lifeblood-worker status: no lifeblood-worker is running in this "
                        "network namespace (mesh \"%s\")\n", ns);
        return;
    }
    if (rc == -EPIPE) {
        fprintf(stderr, "lifeblood-worker status: the workers' mesh @%s closed the connection "
                        "(its arbiter stopped, or it does not admit uid %u)\n",
                name, (unsigned)getuid());
        return;
    }
    if (rc == -EPERM) {
        pid_t pid = 0;
        uid_t uid = 0;
        gid_t gid = 0;
        if (fd >= 0)
            lbw_unix_peercred(fd, &pid, &uid, &gid);
        fprintf(stderr, "lifeblood-worker status: the workers' mesh @%s (process %d, uid %u) "
                        "does not admit uid %u: run status as uid %u, as root, or as a member "
                        "of the group in mesh.allow_group\n",
                name, (int)pid, (unsigned)uid, (unsigned)getuid(), (unsigned)uid);
        return;
    }
    fprintf(stderr, "lifeblood-worker status: cannot read the mesh @%s: %s\n", name,
            err && *err ? err : strerror(-rc));
}

static int exit_for(int rc)
{
    return rc == -ENOENT ? EXIT_NONE : rc == -EPERM ? EXIT_REFUSED : 1;
}

/* One view: 0 shown, or -errno (explained, except a lost arbiter when
 * quiet: then the caller tries again). */
static int one_view(const char *ns, int *fd, char *name, int json, int watch, int quiet)
{
    char err[256] = "";
    if (*fd < 0) {
        *fd = lbw_ledger_observe(ns, name, 128);
        if (*fd < 0) {
            int rc = *fd;
            *fd = -1;
            if (!watch || rc != -ENOENT)
                explain(ns, name, rc, -1, NULL);
            return rc;
        }
    }
    struct lbw_ledger_snap s = {0};
    snprintf(s.name, sizeof(s.name), "%s", name);
    int rc = lbw_ledger_snapshot(*fd, &s, err, sizeof(err));
    pid_t apid;
    uid_t auid = 0;
    gid_t agid;
    if (rc == -EPIPE && !err[0] && getuid() != 0 &&
        lbw_unix_peercred(*fd, &apid, &auid, &agid) == 0 && auid != getuid() && auid != 0)
        rc = -EPERM; /* closed on us by another user's arbiter: its refusal was lost */
    if (rc < 0) {
        if (!(quiet && (rc == -EPIPE || rc == -EAGAIN) && !err[0]))
            explain(ns, name, rc, *fd, err);
        close(*fd);
        *fd = -1;
        return rc;
    }
    if (s.nmembers)
        qsort(s.members, s.nmembers, sizeof(*s.members), member_cmp);
    if (watch && !json && isatty(STDOUT_FILENO))
        fputs("\033[H\033[2J", stdout);
    if (json) {
        char *j = snap_json(&s, ns);
        if (j)
            printf("%s\n", j);
        free(j);
    } else {
        print_table(stdout, &s);
        if (watch)
            putchar('\n');
    }
    fflush(stdout);
    lbw_ledger_snap_free(&s);
    return 0;
}

int lbw_cmd_status(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"watch", no_argument, NULL, 'w'},
        {"count", required_argument, NULL, 'c'},
        {"namespace", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0, watch = 0, c;
    long count = -1;
    const char *ns = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'w':
            watch = 1;
            break;
        case 'c': {
            char *e;
            count = strtol(optarg, &e, 10);
            if (*e || count < 1) {
                fprintf(stderr, "lifeblood-worker status: --count %s: a number of views, 1 or "
                                "more\n", optarg);
                return 2;
            }
            break;
        }
        case 'n':
            ns = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "lifeblood-worker status: %s needs a value; see 'lifeblood-worker "
                            "status --help'\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "lifeblood-worker status: unknown option %s; see "
                            "'lifeblood-worker status --help'\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lifeblood-worker status: unexpected argument '%s'; see "
                        "'lifeblood-worker status --help'\n", argv[optind]);
        return 2;
    }
    struct lbw_toml *cfg = NULL;
    if (!ns) { /* the worker config's [mesh] namespace, read as the worker reads it */
        cfg = lbw_config_load("worker");
        ns = cfg ? lbw_cfg_string(cfg, LBW_CFG_MESH_NAMESPACE) : NULL;
    }
    char nsbuf[128];
    snprintf(nsbuf, sizeof(nsbuf), "%s", ns && *ns ? ns : LBW_LEDGER_NAMESPACE);
    lbw_toml_free(cfg);
    if (strlen(nsbuf) > 64) {
        fprintf(stderr, "lifeblood-worker status: the mesh namespace \"%s\" is longer than 64 "
                        "bytes\n", nsbuf);
        return 2;
    }
    int fd = -1;
    char name[128] = "";
    if (!watch) {
        int rc = -EPIPE;
        for (unsigned tries = 0; tries < 3 && (rc == -EPIPE || rc == -EAGAIN); tries++)
            rc = one_view(nsbuf, &fd, name, json, 0, tries < 2); /* (an arbiter may be replaced) */
        if (fd >= 0)
            close(fd);
        return rc < 0 ? exit_for(rc) : 0;
    }
    uint64_t last = 0;
    int said_none = 0;
    for (long views = 0; count < 0 || views < count;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        if (last && now - last < 100000000ull) { /* at most ten views a second */
            struct timespec d = {0, (long)(100000000ull - (now - last))};
            nanosleep(&d, NULL);
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        last = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        int rc = one_view(nsbuf, &fd, name, json, 1, 1);
        if (rc == -ENOENT) {
            if (!said_none) {
                if (json)
                    print_none_json(nsbuf);
                else
                    printf("no lifeblood-worker is running in this network namespace (mesh "
                           "\"%s\"); waiting\n", nsbuf);
                fflush(stdout);
                said_none = 1;
                views++;
            }
            sleep(1);
            continue;
        }
        if (rc == -EPIPE || rc == -EAGAIN || rc == -ETIMEDOUT) {
            continue; /* the arbiter changed: find the new one */
        }
        if (rc < 0)
            return exit_for(rc);
        said_none = 0;
        views++;
        if (count >= 0 && views >= count)
            break;
        if (lbw_ledger_observe_wait(fd, 1000) < 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return 0;
}
