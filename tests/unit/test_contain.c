/* test_contain.c — daemon/run/contain: choosing where invocation cgroups
 * come from, and what an invocation's cgroup files get and tell.
 *
 * Fixture trees built in a temporary directory (mountinfo, /proc/self/
 * cgroup, cgroup directories with plain files standing in for the
 * controller files): pure v2 as root (TOP/lifeblood-worker, memory pids
 * cpuset from v2, no v1), pure v2 with the service's cgroup marked
 * delegated (its own directory, not the top), hybrid like this host (v2
 * without controllers beside the v1 memory, cpuset, pids and freezer; a
 * configured parent), no cgroups at all and switched off (off, with why);
 * the v2 and v1 limit files an invocation's claim writes (memory.max or
 * memory.high, memory.swap.max, memory.oom.group, pids.max, cpuset.cpus/
 * mems; memory.limit_in_bytes and memory.memsw.limit_in_bytes); and the
 * verdicts read back from memory.events, pids.events and v1
 * memory.oom_control (OOM inside the limit, a host-wide OOM, the pids
 * limit, nothing). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "contain.h"
#include "fs.h"
#include "suites.h"

static char fx[256];

static void put(const char *rel, const char *text)
{
    char p[PATH_MAX + 256];
    snprintf(p, sizeof(p), "%s/%s", fx, rel);
    char *s = strrchr(p, '/');
    *s = 0;
    lbw_mkdirs(p);
    *s = '/';
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void mkd(const char *rel)
{
    char p[PATH_MAX + 256];
    snprintf(p, sizeof(p), "%s/%s", fx, rel);
    CU_ASSERT(lbw_mkdirs(p) == 0);
}

static const char *slurp(const char *dir, const char *file)
{
    static char buf[256];
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    buf[0] = 0;
    FILE *f = fopen(p, "r");
    if (!f)
        return "(missing)";
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void fx_new(void)
{
    snprintf(fx, sizeof(fx), "/tmp/lbw-contain-fx-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(fx) != NULL);
}

static void fx_done(void)
{
    lbw_rm_tree(fx);
}

#define V2_MOUNT "30 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"

static void test_plan_v2_root(void)
{
    fx_new();
    put("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" V2_MOUNT);
    put("proc/self/cgroup", "0::/system.slice/render.service\n");
    put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma\n");
    mkd("sys/fs/cgroup/system.slice/render.service");
    struct lbw_contain_cfg cfg = {.pids_max = 100};
    struct lbw_contain *c = malloc(sizeof(*c));
    lbw_contain_plan(fx, &cfg, c);
    if (geteuid() == 0) {
        CU_ASSERT(c->mode == LBW_CONTAIN_ROOT);
        CU_ASSERT_STRING_EQUAL(c->v2, "/sys/fs/cgroup/lifeblood-worker");
        CU_ASSERT_STRING_EQUAL(c->v2_ctl, "memory pids cpuset");
        for (int k = 0; k < LBW_V1_N; k++)
            CU_ASSERT(c->v1[k][0] == 0);
        CU_ASSERT_EQUAL(c->slow_joins, 0); /* CLONE_INTO_CGROUP alone: no join */
        char d[PATH_MAX * 2];
        lbw_contain_describe(c, d, sizeof(d));
        CU_ASSERT(strstr(d, "root; cgroup v2 /sys/fs/cgroup/lifeblood-worker (memory pids "
                            "cpuset)") == d);
    } else {
        lbw_test_skip("pure v2 as root", "not root: the fixture's top is not writable");
    }
    /* switched off: off whatever the host offers, and why */
    cfg.off = 1;
    cfg.why_off = "containment.mode = \"off\"";
    lbw_contain_plan(fx, &cfg, c);
    CU_ASSERT(c->mode == LBW_CONTAIN_OFF);
    CU_ASSERT_STRING_EQUAL(c->why, "containment.mode = \"off\"");
    free(c);
    fx_done();
}

static void test_plan_v2_delegated(void)
{
    fx_new();
    put("proc/self/mountinfo", V2_MOUNT);
    put("proc/self/cgroup", "0::/system.slice/render.service\n");
    put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
    put("sys/fs/cgroup/system.slice/render.service/cgroup.controllers", "memory pids\n");
    char svc[PATH_MAX + 64];
    snprintf(svc, sizeof(svc), "%s/sys/fs/cgroup/system.slice/render.service", fx);
    if (setxattr(svc, "user.delegate", "1", 1, 0) < 0 &&
        setxattr(svc, "trusted.delegate", "1", 1, 0) < 0) {
        lbw_test_skip("delegated v2", "no extended attributes on the fixture's filesystem");
        fx_done();
        return;
    }
    struct lbw_contain_cfg cfg = {.parent = "/farm/"};
    struct lbw_contain *c = malloc(sizeof(*c));
    lbw_contain_plan(fx, &cfg, c);
    CU_ASSERT(c->mode == LBW_CONTAIN_DELEGATED);
    CU_ASSERT_STRING_EQUAL(c->v2_base, "/sys/fs/cgroup/system.slice/render.service");
    CU_ASSERT_STRING_EQUAL(c->v2, "/sys/fs/cgroup/system.slice/render.service/farm");
    CU_ASSERT_STRING_EQUAL(c->v2_ctl, "memory pids"); /* what the delegated cgroup offers */
    /* a pool's next worker, already in the leaf the first one made */
    put("proc/self/cgroup", "0::/system.slice/render.service/lifeblood-worker-main\n");
    mkd("sys/fs/cgroup/system.slice/render.service/lifeblood-worker-main");
    lbw_contain_plan(fx, &cfg, c);
    CU_ASSERT(c->mode == LBW_CONTAIN_DELEGATED);
    CU_ASSERT_STRING_EQUAL(c->v2, "/sys/fs/cgroup/system.slice/render.service/farm");
    free(c);
    fx_done();
}

/* A hybrid host's v1 hierarchies, as in mountinfo (the v2 line is added
 * by each test). */
#define HYBRID_V1 \
    "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n" \
    "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n" \
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n" \
    "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" \
    "37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n" \
    "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"

static void test_plan_hybrid(void)
{
    if (geteuid() != 0) {
        lbw_test_skip("hybrid as root", "not root");
        return;
    }
    fx_new();
    put("proc/self/mountinfo", HYBRID_V1 "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 "
                               "cgroup2 rw\n");
    put("proc/self/cgroup", "8:pids:/\n6:freezer:/\n4:memory:/process_api/x\n3:cpuset:/\n"
                            "1:cpu:/\n0::/\n");
    put("sys/fs/cgroup/unified/cgroup.controllers", "\n");
    const char *d[] = {"cpu", "cpuset", "memory/process_api/x", "freezer", "pids"};
    for (size_t i = 0; i < 5; i++) {
        char r[128];
        snprintf(r, sizeof(r), "sys/fs/cgroup/%s", d[i]);
        mkd(r);
    }
    struct lbw_contain_cfg cfg = {.parent = "farm/lbw"};
    struct lbw_contain *c = malloc(sizeof(*c));
    lbw_contain_plan(fx, &cfg, c);
    CU_ASSERT(c->mode == LBW_CONTAIN_ROOT);
    CU_ASSERT_STRING_EQUAL(c->v2, "/sys/fs/cgroup/unified/farm/lbw");
    CU_ASSERT_STRING_EQUAL(c->v2_ctl, "");
    /* under each hierarchy's top, whatever cgroup the worker is in */
    CU_ASSERT_STRING_EQUAL(c->v1[LBW_V1_MEMORY], "/sys/fs/cgroup/memory/farm/lbw");
    CU_ASSERT_STRING_EQUAL(c->v1[LBW_V1_CPUSET], "/sys/fs/cgroup/cpuset/farm/lbw");
    CU_ASSERT_STRING_EQUAL(c->v1[LBW_V1_PIDS], "/sys/fs/cgroup/pids/farm/lbw");
    CU_ASSERT_STRING_EQUAL(c->v1[LBW_V1_FREEZER], "/sys/fs/cgroup/freezer/farm/lbw");
    /* v1 joins, and no hierarchy mounted with favordynmods */
    CU_ASSERT_EQUAL(c->slow_joins, 1);
    put("proc/self/mountinfo", HYBRID_V1 "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 "
                               "cgroup2 rw,favordynmods\n");
    lbw_contain_plan(fx, &cfg, c);
    CU_ASSERT_STRING_EQUAL(c->v1[LBW_V1_PIDS], "/sys/fs/cgroup/pids/farm/lbw");
    CU_ASSERT_EQUAL(c->slow_joins, 0); /* the lock is shared: one mount is enough */
    free(c);
    fx_done();
}

static void test_plan_none(void)
{
    fx_new();
    put("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
    put("proc/self/cgroup", "");
    struct lbw_contain_cfg cfg = {0};
    struct lbw_contain *c = malloc(sizeof(*c));
    lbw_contain_plan(fx, &cfg, c);
    CU_ASSERT(c->mode == LBW_CONTAIN_OFF);
    CU_ASSERT_STRING_EQUAL(c->why, "no cgroup hierarchy in /proc/self/mountinfo");
    char d[1024];
    lbw_contain_describe(c, d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "off (no cgroup hierarchy in /proc/self/mountinfo)");
    free(c);
    fx_done();
}

/* A worker directory per hierarchy, with inv-9 pre-made holding empty
 * stand-ins for the files the kernel would create. */
static void limits_fixture(struct lbw_contain *c, int high)
{
    memset(c, 0, sizeof(*c));
    c->mode = LBW_CONTAIN_ROOT;
    c->cfg.pids_max = 321;
    c->cfg.memory_high = high;
    snprintf(c->v2, sizeof(c->v2), "%s/v2/w", fx);
    snprintf(c->v2_ctl, sizeof(c->v2_ctl), "memory pids cpuset");
    snprintf(c->v1[LBW_V1_MEMORY], sizeof(c->v1[0]), "%s/mem/w", fx);
    snprintf(c->v1[LBW_V1_CPUSET], sizeof(c->v1[0]), "%s/cpuset/w", fx);
    const char *v2f[] = {"memory.max", "memory.high", "memory.swap.max", "memory.oom.group",
                         "pids.max", "cpuset.cpus", "cpuset.mems", "cgroup.procs"};
    char r[128];
    for (size_t i = 0; i < sizeof(v2f) / sizeof(v2f[0]); i++) {
        snprintf(r, sizeof(r), "v2/w/inv-9/%s", v2f[i]);
        put(r, "");
    }
    const char *memf[] = {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                          "memory.soft_limit_in_bytes", "cgroup.procs"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(r, sizeof(r), "mem/w/inv-9/%s", memf[i]);
        put(r, "");
    }
    put("cpuset/w/cpuset.cpus", "0-7\n");
    put("cpuset/w/cpuset.mems", "0-1\n");
    put("cpuset/w/inv-9/cpuset.cpus", "\n");
    put("cpuset/w/inv-9/cpuset.mems", "\n");
    put("cpuset/w/inv-9/cgroup.procs", "");
}

static void test_limits_written(void)
{
    fx_new();
    struct lbw_contain *c = malloc(sizeof(*c));
    limits_fixture(c, 0);
    struct lbw_cinv ci;
    struct lbw_cinv_limits l = {.cpus = "2-3", .node = 1, .mem = 64u << 20};
    char err[256] = "";
    CU_ASSERT_FATAL(lbw_cinv_create(c, 9, &l, &ci, err, sizeof(err)) == 0);
    CU_ASSERT(ci.cgfd >= 0);
    CU_ASSERT(ci.njoin == 2); /* the v1 memory and cpuset cgroup.procs */
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "memory.max"), "67108864");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "memory.high"), "");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "memory.swap.max"), "0");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "memory.oom.group"), "1");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "pids.max"), "321");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "cpuset.cpus"), "2-3");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "cpuset.mems"), "1");
    const char *m = ci.v1[LBW_V1_MEMORY];
    CU_ASSERT_STRING_EQUAL(slurp(m, "memory.limit_in_bytes"), "67108864");
    CU_ASSERT_STRING_EQUAL(slurp(m, "memory.memsw.limit_in_bytes"), "67108864");
    /* the parent's first (a new v1 cpuset is empty), then the claim's; a
     * plain file keeps the longer first value's tail, a cgroup file not */
    CU_ASSERT(strncmp(slurp(ci.v1[LBW_V1_CPUSET], "cpuset.cpus"), "2-3", 3) == 0);
    CU_ASSERT(strncmp(slurp(ci.v1[LBW_V1_CPUSET], "cpuset.mems"), "1", 1) == 0);
    CU_ASSERT(ci.mem_limit == 64u << 20 && ci.pids_limit == 321);
    CU_ASSERT_STRING_EQUAL(lbw_cinv_dir(&ci), ci.v2);
    lbw_cinv_close_fds(&ci);
    CU_ASSERT(ci.cgfd == -1 && ci.njoin == 0);
    fx_done();

    /* soft mode, no claim of CPUs: memory.high, the parent's cpuset */
    fx_new();
    limits_fixture(c, 1);
    struct lbw_cinv_limits l2 = {.node = -1, .mem = 1000};
    CU_ASSERT_FATAL(lbw_cinv_create(c, 9, &l2, &ci, err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "memory.high"), "1000");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v2, "memory.max"), "");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v1[LBW_V1_MEMORY], "memory.soft_limit_in_bytes"), "1000");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v1[LBW_V1_MEMORY], "memory.limit_in_bytes"), "");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v1[LBW_V1_CPUSET], "cpuset.cpus"), "0-7\n");
    CU_ASSERT_STRING_EQUAL(slurp(ci.v1[LBW_V1_CPUSET], "cpuset.mems"), "0-1\n");
    CU_ASSERT(ci.mem_limit == 0); /* no hard limit: an OOM there is not "inside its limit" */
    lbw_cinv_close_fds(&ci);
    free(c);
    fx_done();
}

/* inv-9 on the limits fixture with a 64 MiB claim, fds closed. */
static void create_inv9(struct lbw_contain *c, struct lbw_cinv *ci)
{
    struct lbw_cinv_limits l = {.node = -1, .mem = 64u << 20};
    char err[256];
    CU_ASSERT_FATAL(lbw_cinv_create(c, 9, &l, ci, err, sizeof(err)) == 0);
    lbw_cinv_close_fds(ci);
}

/* The verdict and its line. */
static void tell(const struct lbw_cinv *ci, struct lbw_cinv_verdict *v, char *why, size_t cap)
{
    lbw_cinv_verdict(ci, v);
    lbw_cinv_explain(ci, v, why, cap);
}

static void test_counters_and_verdicts(void)
{
    const char *ev = "low 0\nhigh 3\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n";
    CU_ASSERT(lbw_cg_counter(ev, "oom") == 2);
    CU_ASSERT(lbw_cg_counter(ev, "oom_kill") == 1);
    CU_ASSERT(lbw_cg_counter(ev, "max") == 12);
    CU_ASSERT(lbw_cg_counter(ev, "om") == 0);
    CU_ASSERT(lbw_cg_counter("", "oom") == 0);

    fx_new();
    struct lbw_contain *c = malloc(sizeof(*c));
    limits_fixture(c, 0);
    struct lbw_cinv ci;
    char why[512];
    create_inv9(c, &ci);
    struct lbw_cinv_verdict v;
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT_STRING_EQUAL(why, ""); /* nothing happened */

    put("v2/w/inv-9/memory.events", ev);
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT(v.oom_kills == 1 && v.oom_group == 1 && v.mem_max_hits == 2);
    CU_ASSERT(strstr(why, "killed by the kernel: out of memory inside its limit of 67108864 "
                          "bytes") == why);
    CU_ASSERT(strstr(why, "the whole payload") != NULL);

    put("v2/w/inv-9/memory.events", "oom 0\noom_kill 1\n"); /* the host's OOM killer */
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT(strstr(why, "the host (or a cgroup above the worker's) ran out of memory") != NULL);

    put("v2/w/inv-9/memory.events", "oom 0\noom_kill 0\n");
    put("v2/w/inv-9/pids.events", "max 7\n");
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT(strstr(why, "stopped by the process limit: 7 fork(s) refused at pids.max 321") ==
              why);

    /* v1 only: memory.oom_control's oom_kill and a peak at the limit */
    ci.v2[0] = 0;
    put("mem/w/inv-9/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    put("mem/w/inv-9/memory.failcnt", "0\n");
    put("mem/w/inv-9/memory.max_usage_in_bytes", "67108864\n");
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT(strstr(why, "out of memory inside its limit of 67108864 bytes") != NULL);
    put("mem/w/inv-9/memory.max_usage_in_bytes", "1048576\n");
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT(strstr(why, "the host (or a cgroup above") != NULL);
    CU_ASSERT_STRING_EQUAL(lbw_cinv_dir(&ci), ci.v1[LBW_V1_MEMORY]);
    free(c);
    fx_done();
}

/* The cgroup of an id seen before (left by an earlier run, the removal
 * failed) keeps the kernel's counters: this run is told only what
 * happened since it was created, and v1 peaks start again. */
static void test_verdict_reused_cgroup(void)
{
    fx_new();
    struct lbw_contain *c = malloc(sizeof(*c));
    limits_fixture(c, 0);
    put("v2/w/inv-9/memory.events", "oom 3\noom_kill 2\noom_group_kill 1\n");
    put("v2/w/inv-9/pids.events", "max 5\n");
    put("mem/w/inv-9/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    put("mem/w/inv-9/memory.max_usage_in_bytes", "67108864\n");
    struct lbw_cinv ci;
    char why[512];
    create_inv9(c, &ci);
    struct lbw_cinv_verdict v;
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT(v.oom_kills == 0 && v.oom_group == 0 && v.mem_max_hits == 0 &&
              v.pids_max_hits == 0);
    CU_ASSERT_STRING_EQUAL(why, ""); /* the earlier run's OOM is not this one's */
    CU_ASSERT(strncmp(slurp(ci.v1[LBW_V1_MEMORY], "memory.max_usage_in_bytes"), "0", 1) == 0);
    /* what happens after: told */
    put("v2/w/inv-9/memory.events", "oom 4\noom_kill 3\noom_group_kill 2\n");
    tell(&ci, &v, why, sizeof(why));
    CU_ASSERT(v.oom_kills == 1 && v.oom_group == 1 && v.mem_max_hits == 1);
    CU_ASSERT(strstr(why, "out of memory inside its limit") != NULL);
    /* v1 alone: the same */
    ci.v2[0] = 0;
    ci.base.oom_kills = 2;
    ci.base.mem_max_hits = 0;
    lbw_cinv_verdict(&ci, &v);
    CU_ASSERT(v.oom_kills == 0);
    free(c);
    fx_done();
}

static const struct lbw_test tests[] = {
    {"plan: pure v2 as root, and switched off", test_plan_v2_root},
    {"plan: pure v2, the service's cgroup delegated (also from inside the leaf)",
     test_plan_v2_delegated},
    {"plan: hybrid like this host, a configured parent", test_plan_hybrid},
    {"plan: no cgroups at all", test_plan_none},
    {"invocation limits: v2 and v1 files, hard and soft memory", test_limits_written},
    {"verdicts: OOM inside the limit, host OOM, pids limit, v1", test_counters_and_verdicts},
    {"verdicts: a reused cgroup's earlier counts are not this run's", test_verdict_reused_cgroup},
    {NULL, NULL},
};

static int register_contain_suites(void)
{
    return lbw_add_suite("contain", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_contain_suites)
