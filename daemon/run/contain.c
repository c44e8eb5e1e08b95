/* contain.c — see contain.h. */
#include "contain.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cgroup.h"
#include "invcg.h"
#include "log.h"

static const char *const V1_NAME[LBW_V1_N] = {"memory", "cpuset", "pids", "freezer"};
static const char *const V2_WANT[] = {"memory", "pids", "cpuset"};
#define MOVE_ROUNDS 8 /* delegated: passes over D's processes while moving them */

const char *lbw_contain_mode_name(int mode)
{
    return mode == LBW_CONTAIN_DELEGATED ? "delegated" : mode == LBW_CONTAIN_ROOT ? "root" : "off";
}

/* root + dir, for reading through a fixture. */
static int rooted(char *out, size_t cap, const char *root, const char *dir)
{
    const char *r = root && strcmp(root, "/") ? root : "";
    int n = snprintf(out, cap, "%s%s", r, dir);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* 1 when word is one of the space-separated words of list. */
static int has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += wl)
        if ((p == list || p[-1] == ' ' || p[-1] == '\n') &&
            (p[wl] == 0 || p[wl] == ' ' || p[wl] == '\n'))
            return 1;
    return 0;
}

static int writable(const char *root, const char *dir, const char *file)
{
    char p[PATH_MAX + 64], d[PATH_MAX + 32];
    if (file)
        snprintf(d, sizeof(d), "%s/%s", dir, file);
    else
        snprintf(d, sizeof(d), "%s", dir);
    return rooted(p, sizeof(p), root, d) == 0 && access(p, W_OK) == 0;
}

/* 1 when dir holds no process but this one and its parent (a pool). */
static int only_us(const char *root, const char *dir)
{
    char p[PATH_MAX + 64];
    pid_t pids[64];
    if (rooted(p, sizeof(p), root, dir) < 0)
        return 0;
    ssize_t n = lbw_cg_procs(p, 0, pids, 64);
    if (n < 0 || n > 64)
        return 0;
    for (ssize_t i = 0; i < n; i++)
        if (pids[i] != getpid() && pids[i] != getppid())
            return 0;
    return 1;
}

/* The service manager marked dir as delegated (systemd 251+ sets the
 * extended attribute), or a non-root worker may manage it and shares it
 * with nothing but its pool (a user's terminal scope is not moved). */
static int delegated(const char *root, const char *dir)
{
    char p[PATH_MAX + 64], v[8];
    if (rooted(p, sizeof(p), root, dir) < 0)
        return 0;
    const char *attrs[] = {"trusted.delegate", "user.delegate"};
    for (int i = 0; i < 2; i++) {
        ssize_t n = getxattr(p, attrs[i], v, sizeof(v) - 1);
        if (n > 0) {
            v[n] = 0;
            return v[0] == '1';
        }
    }
    return geteuid() != 0 && writable(root, dir, "cgroup.procs") &&
           writable(root, dir, "cgroup.subtree_control") && only_us(root, dir);
}

/* containment.parent without leading and trailing slashes. */
static const char *parent_name(const struct lbw_contain_cfg *cfg, char *buf, size_t cap)
{
    const char *p = cfg->parent ? cfg->parent : "";
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    while (n && p[n - 1] == '/')
        n--;
    if (!n || n >= cap)
        return LBW_INVCG_TOP;
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

void lbw_contain_plan(const char *root, const struct lbw_contain_cfg *cfg, struct lbw_contain *c)
{
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    if (cfg->off) {
        snprintf(c->why, sizeof(c->why), "%s", cfg->why_off ? cfg->why_off : "switched off");
        return;
    }
    struct lbw_cg_mount *m = malloc(sizeof(*m));
    if (!m) {
        snprintf(c->why, sizeof(c->why), "out of memory");
        return;
    }
    char own[PATH_MAX], ctl[512] = "", pbuf[256];
    const char *parent = parent_name(cfg, pbuf, sizeof(pbuf));
    int have2 = lbw_cg_find_mount(root, NULL, m) == 0;
    int own_ok = have2 && lbw_cg_self_dir(root, NULL, own, sizeof(own), NULL, 0) == 0;
    /* in the leaf already (a pool's next worker, moved there by the first):
     * the delegated cgroup is the one above it */
    char *leaf = own_ok ? strrchr(own, '/') : NULL;
    if (leaf && leaf != own && !strcmp(leaf + 1, LBW_CONTAIN_LEAF))
        *leaf = 0;
    if (own_ok && strcmp(own, m->point) && delegated(root, own)) {
        c->mode = LBW_CONTAIN_DELEGATED;
        snprintf(c->v2_base, sizeof(c->v2_base), "%s", own);
    } else if (have2 && writable(root, m->point, NULL)) {
        c->mode = LBW_CONTAIN_ROOT;
        snprintf(c->v2_base, sizeof(c->v2_base), "%s", m->point);
    }
    if (c->v2_base[0]) {
        lbw_cg_read(root, c->v2_base, "cgroup.controllers", ctl, sizeof(ctl));
        if ((size_t)snprintf(c->v2, sizeof(c->v2), "%s/%s", c->v2_base, parent) >=
            sizeof(c->v2))
            c->v2[0] = 0;
    }
    for (size_t i = 0, k = 0; c->v2[0] && i < sizeof(V2_WANT) / sizeof(V2_WANT[0]); i++)
        if (has_word(ctl, V2_WANT[i])) { /* to be enabled; setup says what was */
            int n = snprintf(c->v2_ctl + k, sizeof(c->v2_ctl) - k, "%s%s", k ? " " : "",
                             V2_WANT[i]);
            if (n > 0 && (size_t)n < sizeof(c->v2_ctl) - k)
                k += (size_t)n;
        }
    /* v1 controllers that v2 does not provide (a hybrid or v1 host) */
    for (int k = 0; k < LBW_V1_N; k++) {
        if (has_word(ctl, V1_NAME[k]) || lbw_cg_find_mount(root, V1_NAME[k], m) < 0)
            continue;
        char base[PATH_MAX];
        if (c->mode == LBW_CONTAIN_DELEGATED) {
            if (lbw_cg_self_dir(root, V1_NAME[k], base, sizeof(base), NULL, 0) < 0)
                continue;
        } else {
            snprintf(base, sizeof(base), "%s", m->point);
        }
        if (!writable(root, base, NULL))
            continue;
        snprintf(c->v1_base[k], sizeof(c->v1_base[k]), "%s", base);
        if ((size_t)snprintf(c->v1[k], sizeof(c->v1[k]), "%s/%s", base, parent) >=
            sizeof(c->v1[k]))
            continue;
        if (c->mode == LBW_CONTAIN_OFF)
            c->mode = LBW_CONTAIN_ROOT;
    }
    int v1 = 0;
    for (int k = 0; k < LBW_V1_N; k++)
        v1 |= c->v1[k][0] != 0;
    c->slow_joins = v1 && !lbw_cg_favordynmods(root);
    if (c->mode == LBW_CONTAIN_OFF)
        snprintf(c->why, sizeof(c->why), "%s",
                 !have2 && strcmp(lbw_cg_mode(root), "none") == 0
                     ? "no cgroup hierarchy in /proc/self/mountinfo"
                     : "no writable cgroup: the worker's cgroup is not delegated to it "
                       "(Delegate=yes) and it cannot write the hierarchies' tops (not root)");
    free(m);
}

/* ---- set-up ------------------------------------------------------------------------ */

/* Enables the wanted v2 controllers that dir offers for its children. */
static void enable_v2(const char *dir)
{
    char have[512];
    if (lbw_cg_read_file(dir, "cgroup.controllers", have, sizeof(have)) < 0)
        return;
    for (size_t i = 0; i < sizeof(V2_WANT) / sizeof(V2_WANT[0]); i++) {
        char v[32];
        snprintf(v, sizeof(v), "+%s", V2_WANT[i]);
        if (has_word(have, V2_WANT[i])) {
            int rc = lbw_cg_write_file(dir, "cgroup.subtree_control", v);
            if (rc < 0)
                LBW_DEBUG("contain", "enabling %s in %s: %s", V2_WANT[i], dir, strerror(-rc));
        }
    }
}

/* A new v1 cpuset starts with no CPUs and no memory nodes: its parent's. */
static void cpuset_inherit(const char *dir)
{
    char parent[PATH_MAX], v[4096];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *s = strrchr(parent, '/');
    if (!s || s == parent)
        return;
    *s = 0;
    const char *files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        ssize_t n = lbw_cg_read_file(dir, files[i], v, sizeof(v));
        if (n > 0 && v[0] != '\n')
            continue; /* already set */
        if (lbw_cg_read_file(parent, files[i], v, sizeof(v)) > 0)
            lbw_cg_write_file(dir, files[i], v);
    }
}

/* Moves every process of d into leaf (the no-internal-process rule). */
static int move_to_leaf(const char *d, const char *leaf)
{
    pid_t pids[256];
    for (int round = 0; round < MOVE_ROUNDS; round++) {
        ssize_t n = lbw_cg_procs(d, 0, pids, 256);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return 0;
        for (ssize_t i = 0; i < n && i < 256; i++) {
            int rc = lbw_cg_join(leaf, pids[i]);
            if (rc < 0 && rc != -ESRCH && pids[i] == getpid())
                return rc;
        }
    }
    return -EBUSY;
}

/* PARENT and this worker's directory under it, after reclaiming dead
 * workers' there (invcg.h); v2: controllers enabled on the way down; v1
 * cpuset: CPUs and memory nodes copied down. */
static int make_worker_dir(char *dir, size_t cap, int v2, int cpuset, char *why, size_t wl)
{
    char top[PATH_MAX];
    snprintf(top, sizeof(top), "%s", dir);
    int rc = lbw_invcg_setup(top, dir, cap, why, wl);
    if (rc < 0)
        return rc;
    if (cpuset) {
        cpuset_inherit(top);
        cpuset_inherit(dir);
    }
    if (v2) {
        enable_v2(top);
        enable_v2(dir);
    }
    return 0;
}

void lbw_contain_setup(const struct lbw_contain_cfg *cfg, struct lbw_contain *c)
{
    lbw_contain_plan("/", cfg, c);
    if (c->mode == LBW_CONTAIN_OFF)
        return;
    char why[PATH_MAX + 128] = "";
    if (c->v2[0] && c->mode == LBW_CONTAIN_DELEGATED) {
        char leaf[PATH_MAX + 64];
        snprintf(leaf, sizeof(leaf), "%s/%s", c->v2_base, LBW_CONTAIN_LEAF);
        int rc = lbw_cg_create(leaf);
        if (rc == 0)
            rc = move_to_leaf(c->v2_base, leaf);
        if (rc < 0) {
            snprintf(why, sizeof(why), "cannot move into the leaf cgroup %s: %s", leaf,
                     strerror(-rc));
            c->v2[0] = 0;
        } else {
            enable_v2(c->v2_base);
        }
    } else if (c->v2[0]) {
        enable_v2(c->v2_base);
    }
    if (c->v2[0] && make_worker_dir(c->v2, sizeof(c->v2), 1, 0, why, sizeof(why)) < 0)
        c->v2[0] = 0;
    if (c->v2[0]) {
        char have[512] = "";
        lbw_cg_read_file(c->v2, "cgroup.subtree_control", have, sizeof(have));
        size_t k = 0;
        c->v2_ctl[0] = 0;
        for (size_t i = 0; i < sizeof(V2_WANT) / sizeof(V2_WANT[0]); i++)
            if (has_word(have, V2_WANT[i])) {
                int n = snprintf(c->v2_ctl + k, sizeof(c->v2_ctl) - k, "%s%s", k ? " " : "",
                                 V2_WANT[i]);
                if (n > 0 && (size_t)n < sizeof(c->v2_ctl) - k)
                    k += (size_t)n;
            }
    }
    for (int k = 0; k < LBW_V1_N; k++)
        if (c->v1[k][0] && make_worker_dir(c->v1[k], sizeof(c->v1[k]), 0, k == LBW_V1_CPUSET,
                                           why, sizeof(why)) < 0)
            c->v1[k][0] = 0;
    /* the kernel copies the CPUs and memory nodes into each new invocation
     * cgroup: a dozen file operations fewer on the task path */
    c->cpuset_clone = c->v1[LBW_V1_CPUSET][0] &&
                      lbw_cg_write_file(c->v1[LBW_V1_CPUSET], "cgroup.clone_children", "1") == 0;
    int any = c->v2[0] != 0, v1 = 0;
    for (int k = 0; k < LBW_V1_N; k++)
        v1 |= c->v1[k][0] != 0;
    any |= v1;
    c->slow_joins &= v1;
    if (!any) {
        c->mode = LBW_CONTAIN_OFF;
        snprintf(c->why, sizeof(c->why), "%.500s", why[0] ? why : "no usable cgroup");
    } else if (why[0]) {
        LBW_WARN("contain", "%s: containment goes on with the other hierarchies", why);
    }
}

void lbw_contain_teardown(struct lbw_contain *c)
{
    if (c->mode == LBW_CONTAIN_OFF)
        return;
    if (c->v2[0])
        lbw_invcg_teardown(c->v2);
    for (int k = 0; k < LBW_V1_N; k++)
        if (c->v1[k][0])
            lbw_invcg_teardown(c->v1[k]);
    c->mode = LBW_CONTAIN_OFF;
}

void lbw_contain_describe(const struct lbw_contain *c, char *out, size_t cap)
{
    if (c->mode == LBW_CONTAIN_OFF) {
        snprintf(out, cap, "off (%s)", c->why);
        return;
    }
    size_t k = 0;
    int n = snprintf(out, cap, "%s", lbw_contain_mode_name(c->mode));
    k = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
    if (c->v2[0]) {
        n = snprintf(out + k, cap - k, "; cgroup v2 %s (%s)", c->v2,
                     c->v2_ctl[0] ? c->v2_ctl : "no controllers");
        k = n > 0 && (size_t)n < cap - k ? k + (size_t)n : cap - 1;
    }
    for (int i = 0; i < LBW_V1_N; i++) {
        if (!c->v1[i][0])
            continue;
        n = snprintf(out + k, cap - k, "; v1 %s %s", V1_NAME[i], c->v1[i]);
        k = n > 0 && (size_t)n < cap - k ? k + (size_t)n : cap - 1;
    }
}

const char *lbw_contain_first_dir(const struct lbw_contain *c)
{
    if (c->v2[0])
        return c->v2;
    for (int k = 0; k < LBW_V1_N; k++)
        if (c->v1[k][0])
            return c->v1[k];
    return "";
}

/* ---- one invocation ------------------------------------------------------------------ */

uint64_t lbw_cg_counter(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return strtoull(p + kl + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

static void set_limit(const char *dir, const char *file, const char *value)
{
    int rc = lbw_cg_write_file(dir, file, value);
    if (rc < 0)
        LBW_WARN("contain", "cannot set %s/%s to %s: %s", dir, file, value, strerror(-rc));
}

static int exists(const char *dir, const char *file)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

static void counters(const struct lbw_cinv *ci, struct lbw_cinv_verdict *v);

static void limits_v2(const struct lbw_contain *c, const struct lbw_cinv_limits *l,
                      struct lbw_cinv *ci)
{
    char v[64];
    const char *d = ci->v2;
    if (has_word(c->v2_ctl, "memory")) {
        if (l->mem) {
            snprintf(v, sizeof(v), "%llu", (unsigned long long)l->mem);
            set_limit(d, c->cfg.memory_high ? "memory.high" : "memory.max", v);
            if (!c->cfg.memory_high)
                ci->mem_limit = l->mem;
        }
        if (!c->cfg.swap && exists(d, "memory.swap.max"))
            set_limit(d, "memory.swap.max", "0");
        set_limit(d, "memory.oom.group", "1");
    }
    if (has_word(c->v2_ctl, "pids") && c->cfg.pids_max > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)c->cfg.pids_max);
        set_limit(d, "pids.max", v);
        ci->pids_limit = c->cfg.pids_max;
    }
    if (has_word(c->v2_ctl, "cpuset")) {
        if (l->cpus && *l->cpus)
            set_limit(d, "cpuset.cpus", l->cpus);
        if (l->node >= 0) {
            snprintf(v, sizeof(v), "%d", l->node);
            set_limit(d, "cpuset.mems", v);
        }
    }
}

static void limits_v1(const struct lbw_contain *c, int k, const struct lbw_cinv_limits *l,
                      struct lbw_cinv *ci)
{
    char v[64];
    const char *d = ci->v1[k];
    if (k == LBW_V1_MEMORY && l->mem) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)l->mem);
        if (c->cfg.memory_high) {
            set_limit(d, "memory.soft_limit_in_bytes", v);
        } else {
            set_limit(d, "memory.limit_in_bytes", v);
            ci->mem_limit = l->mem;
            /* memory + swap no higher than the memory: no swap */
            if (!c->cfg.swap && exists(d, "memory.memsw.limit_in_bytes"))
                set_limit(d, "memory.memsw.limit_in_bytes", v);
        }
    } else if (k == LBW_V1_CPUSET) {
        if (!c->cpuset_clone)
            cpuset_inherit(d);
        if (l->cpus && *l->cpus)
            set_limit(d, "cpuset.cpus", l->cpus);
        if (l->node >= 0) {
            snprintf(v, sizeof(v), "%d", l->node);
            set_limit(d, "cpuset.mems", v);
        }
    } else if (k == LBW_V1_PIDS && c->cfg.pids_max > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)c->cfg.pids_max);
        set_limit(d, "pids.max", v);
        ci->pids_limit = c->cfg.pids_max;
    }
}

int lbw_cinv_create(const struct lbw_contain *c, int64_t inv_id, const struct lbw_cinv_limits *l,
                    struct lbw_cinv *ci, char *err, size_t errlen)
{
    memset(ci, 0, sizeof(*ci));
    ci->cgfd = -1;
    if (c->mode == LBW_CONTAIN_OFF)
        return -ENOENT;
    int rc = 0, reused = 0;
    if (c->v2[0]) {
        rc = (size_t)snprintf(ci->v2, sizeof(ci->v2), "%s/inv-%lld", c->v2,
                              (long long)inv_id) >= sizeof(ci->v2) ? -ENAMETOOLONG
                                                                   : 0;
        reused |= rc == 0 && access(ci->v2, F_OK) == 0;
        rc = rc < 0 ? rc : lbw_cg_create(ci->v2);
        if (rc == 0) {
            limits_v2(c, l, ci);
            ci->cgfd = lbw_cg_open(ci->v2);
            rc = ci->cgfd < 0 ? ci->cgfd : 0;
        }
        if (rc < 0) {
            snprintf(err, errlen, "cgroup %s: %s", ci->v2, strerror(-rc));
            goto fail;
        }
    }
    for (int k = 0; k < LBW_V1_N; k++) {
        if (!c->v1[k][0])
            continue;
        rc = (size_t)snprintf(ci->v1[k], sizeof(ci->v1[k]), "%s/inv-%lld", c->v1[k],
                              (long long)inv_id) >= sizeof(ci->v1[k]) ? -ENAMETOOLONG
                                                                      : 0;
        reused |= rc == 0 && access(ci->v1[k], F_OK) == 0;
        rc = rc < 0 ? rc : lbw_cg_create(ci->v1[k]);
        if (rc == 0) {
            limits_v1(c, k, l, ci);
            int fd = lbw_cg_procs_open(ci->v1[k]);
            if (fd < 0)
                rc = fd;
            else
                ci->join_fds[ci->njoin++] = fd;
        }
        if (rc < 0) {
            snprintf(err, errlen, "cgroup %s: %s", ci->v1[k], strerror(-rc));
            goto fail;
        }
    }
    if (!reused)
        return 0; /* new: every counter starts at 0 */
    if (ci->v1[LBW_V1_MEMORY][0]) { /* v1 peaks and failcnt restart at 0 when written */
        const char *reset[] = {"memory.failcnt", "memory.max_usage_in_bytes",
                               "memory.memsw.max_usage_in_bytes"};
        for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
            if (exists(ci->v1[LBW_V1_MEMORY], reset[i]))
                lbw_cg_write_file(ci->v1[LBW_V1_MEMORY], reset[i], "0");
    }
    counters(ci, &ci->base); /* an existing cgroup (the same id again) keeps its counts */
    return 0;
fail:
    lbw_cinv_close_fds(ci);
    lbw_cinv_remove(ci);
    return rc;
}

void lbw_cinv_close_fds(struct lbw_cinv *ci)
{
    if (ci->cgfd >= 0)
        close(ci->cgfd);
    ci->cgfd = -1;
    for (size_t i = 0; i < ci->njoin; i++)
        close(ci->join_fds[i]);
    ci->njoin = 0;
}

const char *lbw_cinv_dir(const struct lbw_cinv *ci)
{
    if (ci->v2[0])
        return ci->v2;
    static const int order[] = {LBW_V1_FREEZER, LBW_V1_PIDS, LBW_V1_MEMORY, LBW_V1_CPUSET};
    for (int i = 0; i < LBW_V1_N; i++)
        if (ci->v1[order[i]][0])
            return ci->v1[order[i]];
    return NULL;
}

int lbw_cinv_active(const struct lbw_cinv *ci)
{
    return lbw_cinv_dir(ci) != NULL;
}

size_t lbw_cinv_procs(const struct lbw_cinv *ci, pid_t *pids, size_t cap)
{
    const char *d = lbw_cinv_dir(ci);
    ssize_t n = d ? lbw_cg_procs(d, 1, pids, cap) : 0;
    if (n <= 0)
        return 0;
    /* born inside every hierarchy at once: one listing has them all */
    return (size_t)n < cap ? (size_t)n : cap;
}

ssize_t lbw_cinv_kill(const struct lbw_cinv *ci)
{
    if (ci->v2[0] && exists(ci->v2, "cgroup.kill"))
        return lbw_cg_kill(ci->v2);
    if (ci->v1[LBW_V1_FREEZER][0])
        return lbw_cg_kill(ci->v1[LBW_V1_FREEZER]);
    const char *d = lbw_cinv_dir(ci);
    return d ? lbw_cg_kill(d) : 0;
}

static uint64_t since(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

void lbw_cinv_verdict(const struct lbw_cinv *ci, struct lbw_cinv_verdict *v)
{
    counters(ci, v);
    v->oom_kills = since(v->oom_kills, ci->base.oom_kills);
    v->oom_group = since(v->oom_group, ci->base.oom_group);
    v->mem_max_hits = since(v->mem_max_hits, ci->base.mem_max_hits);
    v->pids_max_hits = since(v->pids_max_hits, ci->base.pids_max_hits);
}

/* The counters as the kernel has them now. */
static void counters(const struct lbw_cinv *ci, struct lbw_cinv_verdict *v)
{
    memset(v, 0, sizeof(*v));
    char buf[1024];
    if (ci->v2[0] && lbw_cg_read_file(ci->v2, "memory.events", buf, sizeof(buf)) > 0) {
        v->oom_kills = lbw_cg_counter(buf, "oom_kill");
        v->oom_group = lbw_cg_counter(buf, "oom_group_kill");
        v->mem_max_hits = lbw_cg_counter(buf, "oom");
    } else if (ci->v1[LBW_V1_MEMORY][0]) {
        const char *d = ci->v1[LBW_V1_MEMORY];
        if (lbw_cg_read_file(d, "memory.oom_control", buf, sizeof(buf)) > 0)
            v->oom_kills = lbw_cg_counter(buf, "oom_kill");
        if (lbw_cg_read_file(d, "memory.failcnt", buf, sizeof(buf)) > 0)
            v->mem_max_hits = strtoull(buf, NULL, 10);
        /* v1 has no count of OOMs at the limit (failcnt often stays 0 when
         * the OOM killer acts first): a peak at the limit tells the same */
        const char *peak[] = {"memory.memsw.max_usage_in_bytes", "memory.max_usage_in_bytes"};
        for (int i = 0; i < 2 && !v->mem_max_hits && ci->mem_limit; i++)
            if (lbw_cg_read_file(d, peak[i], buf, sizeof(buf)) > 0 &&
                strtoull(buf, NULL, 10) >= ci->mem_limit - ci->mem_limit / 16)
                v->mem_max_hits = 1;
    }
    const char *pd = ci->v2[0] && exists(ci->v2, "pids.events") ? ci->v2 : ci->v1[LBW_V1_PIDS];
    if (pd[0] && lbw_cg_read_file(pd, "pids.events", buf, sizeof(buf)) > 0)
        v->pids_max_hits = lbw_cg_counter(buf, "max");
}

void lbw_cinv_explain(const struct lbw_cinv *ci, const struct lbw_cinv_verdict *v, char *out,
                      size_t cap)
{
    out[0] = 0;
    if (v->oom_kills && v->mem_max_hits && ci->mem_limit)
        snprintf(out, cap, "killed by the kernel: out of memory inside its limit of %llu bytes "
                 "(%llu process(es) killed by the OOM killer%s)",
                 (unsigned long long)ci->mem_limit, (unsigned long long)v->oom_kills,
                 v->oom_group ? ", the whole payload with them" : "");
    else if (v->oom_kills)
        snprintf(out, cap, "killed by the kernel: the host (or a cgroup above the worker's) ran "
                 "out of memory, not the payload's own limit (%llu process(es) killed by the "
                 "OOM killer)", (unsigned long long)v->oom_kills);
    else if (v->pids_max_hits)
        snprintf(out, cap, "stopped by the process limit: %llu fork(s) refused at pids.max %lld "
                 "(a fork bomb, or a payload that needs containment.pids_max raised)",
                 (unsigned long long)v->pids_max_hits, (long long)ci->pids_limit);
}

int lbw_cinv_remove(struct lbw_cinv *ci)
{
    int first = 0;
    if (ci->v2[0]) {
        int rc = lbw_cg_remove(ci->v2);
        if (rc < 0 && !first)
            first = rc;
    }
    for (int k = 0; k < LBW_V1_N; k++) {
        if (!ci->v1[k][0])
            continue;
        int rc = lbw_cg_remove(ci->v1[k]);
        if (rc < 0 && !first)
            first = rc;
    }
    return first;
}
