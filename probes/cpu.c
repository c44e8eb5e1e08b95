/* cpu.c — usable CPUs: online ∩ affinity ∩ cgroup cpuset; the CPU
 * bandwidth quota (v2 cpu.max, v1 cfs quota/period, tightest level up the
 * hierarchy); physical cores and hybrid core types for the report. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "probe.h"

static void live_affinity(struct lbw_cpuset *out)
{
    lbw_cpuset_clear(out);
    cpu_set_t *set = CPU_ALLOC(LBW_MAX_CPUS);
    size_t sz = CPU_ALLOC_SIZE(LBW_MAX_CPUS);
    if (set && sched_getaffinity(0, sz, set) == 0) {
        for (unsigned c = 0; c < LBW_MAX_CPUS; c++)
            if (CPU_ISSET_S(c, sz, set))
                lbw_cpuset_set(out, c);
    } else {
        memset(out->bits, 0xff, sizeof(out->bits)); /* unknown: no restriction */
    }
    if (set)
        CPU_FREE(set);
}

/* One level of the quota walk: v2 cpu.max, v1 cfs quota/period. */
struct quota_walk {
    const char *root;
    int v2;
    double best;  /* CPUs; 0 = none */
    char *src;
    size_t srclen;
};

static int quota_level(void *ctx, const char *d)
{
    struct quota_walk *w = ctx;
    char buf[128];
    double q = 0;
    if (w->v2) {
        if (lbw_cg_read(w->root, d, "cpu.max", buf, sizeof(buf)) > 0 && strncmp(buf, "max", 3)) {
            unsigned long long quota, period;
            if (sscanf(buf, "%llu %llu", &quota, &period) == 2 && period > 0)
                q = (double)quota / (double)period;
        }
    } else {
        char pb[64];
        if (lbw_cg_read(w->root, d, "cpu.cfs_quota_us", buf, sizeof(buf)) > 0 &&
            lbw_cg_read(w->root, d, "cpu.cfs_period_us", pb, sizeof(pb)) > 0) {
            long long quota = strtoll(buf, NULL, 10), period = strtoll(pb, NULL, 10);
            if (quota > 0 && period > 0)
                q = (double)quota / (double)period;
        }
    }
    if (q > 0 && (w->best == 0 || q < w->best)) {
        w->best = q;
        char f[LBW_CG_PATH_MAX + 32];
        snprintf(f, sizeof(f), "%s/%s", d, w->v2 ? "cpu.max" : "cpu.cfs_quota_us");
        snprintf(w->src, w->srclen, "%.130s (%g CPUs)", f, q);
    }
    return 0; /* on to the top: the tightest level wins */
}

/* The tightest quota from dir up to the mount point (0 = none). */
static double walk_quota(const char *root, const char *dir, const char *mnt, int v2,
                         char *src, size_t srclen)
{
    struct quota_walk w = {.root = root, .v2 = v2, .src = src, .srclen = srclen};
    lbw_cg_walk_up(dir, mnt, quota_level, &w);
    return w.best;
}

void lbw_probe_cpu(const struct lbw_probe_opts *o, struct lbw_host *h)
{
    const char *root = o->root ? o->root : "/";
    char buf[65536];
    lbw_cpuset_clear(&h->online);
    if (lbw_root_read(root, "/sys/devices/system/cpu/online", buf, sizeof(buf)) <= 0 ||
        lbw_cpuset_parse(buf, &h->online) < 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (long c = 0; c < n && c < LBW_MAX_CPUS; c++)
            lbw_cpuset_set(&h->online, (unsigned)c);
    }
    if (o->use_affinity)
        h->affinity = o->affinity;
    else
        live_affinity(&h->affinity);
    h->usable = h->online;
    lbw_cpuset_and(&h->usable, &h->affinity);
    /* cgroup cpuset: v2 first, then v1 */
    char dir[LBW_CG_PATH_MAX], mnt[LBW_CG_PATH_MAX];
    h->has_cgroup_cpuset = 0;
    if (lbw_cg_self_dir(root, NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
        if (lbw_cg_read(root, dir, "cpuset.cpus.effective", buf, sizeof(buf)) > 0 &&
            lbw_cpuset_parse(buf, &h->cgroup_cpuset) == 0 && lbw_cpuset_count(&h->cgroup_cpuset))
            h->has_cgroup_cpuset = 1;
    }
    if (!h->has_cgroup_cpuset && lbw_cg_self_dir(root, "cpuset", dir, sizeof(dir), NULL, 0) == 0) {
        if (lbw_cg_read(root, dir, "cpuset.effective_cpus", buf, sizeof(buf)) > 0 &&
            lbw_cpuset_parse(buf, &h->cgroup_cpuset) == 0 && lbw_cpuset_count(&h->cgroup_cpuset))
            h->has_cgroup_cpuset = 1;
    }
    if (h->has_cgroup_cpuset)
        lbw_cpuset_and(&h->usable, &h->cgroup_cpuset);
    h->usable_count = lbw_cpuset_count(&h->usable);
    /* bandwidth quota: the tightest of v2 and v1 */
    h->cpu_quota = 0;
    snprintf(h->cpu_quota_source, sizeof(h->cpu_quota_source), "none");
    char src[160];
    if (lbw_cg_self_dir(root, NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
        double q = walk_quota(root, dir, mnt, 1, src, sizeof(src));
        if (q > 0) {
            h->cpu_quota = q;
            snprintf(h->cpu_quota_source, sizeof(h->cpu_quota_source), "%s", src);
        }
    }
    if (lbw_cg_self_dir(root, "cpu", dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
        double q = walk_quota(root, dir, mnt, 0, src, sizeof(src));
        if (q > 0 && (h->cpu_quota == 0 || q < h->cpu_quota)) {
            h->cpu_quota = q;
            snprintf(h->cpu_quota_source, sizeof(h->cpu_quota_source), "%s", src);
        }
    }
    h->cpu_count = h->usable_count;
    if (h->cpu_quota > 0 && h->cpu_quota < h->cpu_count)
        h->cpu_count = h->cpu_quota;
    /* physical cores: distinct (package, core) pairs among usable CPUs */
    unsigned ncores = 0;
    long *pairs = malloc(sizeof(long) * 2 * (h->usable_count + 1));
    for (unsigned c = 0; pairs && c < LBW_MAX_CPUS; c++) {
        if (!lbw_cpuset_has(&h->usable, c))
            continue;
        char p1[128], p2[128], b1[32], b2[32];
        snprintf(p1, sizeof(p1), "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
        snprintf(p2, sizeof(p2), "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
        if (lbw_root_read(root, p1, b1, sizeof(b1)) <= 0 || lbw_root_read(root, p2, b2, sizeof(b2)) <= 0)
            continue;
        long core = strtol(b1, NULL, 10), pkg = strtol(b2, NULL, 10);
        int seen = 0;
        for (unsigned i = 0; i < ncores && !seen; i++)
            seen = pairs[2 * i] == pkg && pairs[2 * i + 1] == core;
        if (!seen) {
            pairs[2 * ncores] = pkg;
            pairs[2 * ncores + 1] = core;
            ncores++;
        }
    }
    free(pairs);
    h->physical_cores = ncores;
    /* hybrid CPUs (Intel P/E cores) */
    struct lbw_cpuset t;
    h->perf_cores = h->eff_cores = 0;
    if (lbw_root_read(root, "/sys/devices/cpu_core/cpus", buf, sizeof(buf)) > 0 &&
        lbw_cpuset_parse(buf, &t) == 0) {
        lbw_cpuset_and(&t, &h->usable);
        h->perf_cores = lbw_cpuset_count(&t);
    }
    if (lbw_root_read(root, "/sys/devices/cpu_atom/cpus", buf, sizeof(buf)) > 0 &&
        lbw_cpuset_parse(buf, &t) == 0) {
        lbw_cpuset_and(&t, &h->usable);
        h->eff_cores = lbw_cpuset_count(&t);
    }
}
