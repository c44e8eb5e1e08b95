/* test_capacity.c — capacity following the host: kernel uevent messages
 * parsed (hostile ones refused) and classified; the cgroup files watched
 * (the worker's and its ancestors'); a fixture host whose v1 cpuset is
 * narrowed while a ledger runs (inotify through the reactor: advertised
 * values, the ledger's topology, claims and [resources] overrides); the
 * ledger's topology replaced under live claims (GPUs matched by key, a
 * claim on what went away kept, nothing granted from it). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capacity.h"
#include "fixture.h"
#include "ledger.h"
#include "proc.h"
#include "spawn.h"
#include "suites.h"
#include "uevent.h"

/* ---- uevents ------------------------------------------------------------------- */

static int parse(const char *msg, size_t len, struct lbw_uevent *ev)
{
    return lbw_uevent_parse(msg, len, ev);
}

#define MSG(s) s, sizeof(s) - 1 /* with its inner NULs, without the literal's own */

static void test_uevent_parse(void)
{
    struct lbw_uevent ev;
    CU_ASSERT_EQUAL(parse(MSG("offline@/devices/system/cpu/cpu3\0ACTION=offline\0"
                              "DEVPATH=/devices/system/cpu/cpu3\0SUBSYSTEM=cpu\0SEQNUM=4711\0"),
                          &ev), 0);
    CU_ASSERT_STRING_EQUAL(ev.action, "offline");
    CU_ASSERT_STRING_EQUAL(ev.devpath, "/devices/system/cpu/cpu3");
    CU_ASSERT_STRING_EQUAL(ev.subsystem, "cpu");
    CU_ASSERT_EQUAL(ev.pci_class, -1);
    CU_ASSERT_EQUAL(lbw_uevent_capacity(&ev), 1);
    CU_ASSERT_EQUAL(parse(MSG("bind@/devices/pci0000:00/0000:00:01.0/0000:01:00.0\0ACTION=bind\0"
                              "SUBSYSTEM=pci\0DRIVER=nvidia\0PCI_CLASS=30200\0"), &ev), 0);
    CU_ASSERT_STRING_EQUAL(ev.driver, "nvidia");
    CU_ASSERT_EQUAL(ev.pci_class, 0x30200);
    CU_ASSERT_EQUAL(lbw_uevent_capacity(&ev), 1);
    /* no trailing NUL: the last field ends with the message */
    CU_ASSERT_EQUAL(parse(MSG("add@/devices/virtual/drm/card1\0SUBSYSTEM=drm"), &ev), 0);
    CU_ASSERT_STRING_EQUAL(ev.subsystem, "drm");
    /* the header alone */
    CU_ASSERT_EQUAL(parse(MSG("remove@/devices/system/memory/memory40"), &ev), 0);
    CU_ASSERT_EQUAL(ev.subsystem[0], 0);
    /* refused: not the form, fields too long, contradictions */
    static const struct {
        const char *m;
        size_t n;
    } bad[] = {
        {MSG("")},
        {MSG("\0")},
        {MSG("libudev\0\xfe\xed\xca\xfe")},          /* udev's, not the kernel's */
        {MSG("add@\0SUBSYSTEM=cpu\0")},                /* no devpath */
        {MSG("@/devices/x\0")},                        /* no action */
        {MSG("add@devices/x\0")},                      /* devpath not absolute */
        {MSG("add@/devices/x\0SUBSYSTEM\0")},          /* a key without '=' */
        {MSG("add@/devices/x\0=cpu\0")},               /* a value without key */
        {MSG("add@/devices/x\0ACTION=remove\0")},      /* contradicts the header */
        {MSG("add@/devices/x\0DEVPATH=/devices/y\0")}, /* contradicts the header */
        {MSG("add@/devices/x\0PCI_CLASS=3g0000\0")},   /* not hex */
        {MSG("add@/devices/x\0PCI_CLASS=\0")},
        {MSG("add@/devices/x\0PCI_CLASS=123456789\0")}, /* more than 8 digits */
        {MSG("averyveryverylongaction@/devices/x\0")},
        {MSG("add@/devices/x\0SUBSYSTEM=an-overly-long-subsystem-name-here\0")},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = lbw_uevent_parse(bad[i].m, bad[i].n, &ev);
        CU_ASSERT_EQUAL(rc, -1);
        if (rc != -1)
            fprintf(stderr, "accepted bad uevent %zu\n", i);
    }
    /* a devpath of 300 bytes does not fit */
    char big[400];
    memset(big, 'a', sizeof(big));
    memcpy(big, "add@/", 5);
    CU_ASSERT_EQUAL(lbw_uevent_parse(big, sizeof(big), &ev), -1);
    /* longer than LBW_UEVENT_MAX: read no further than that */
    char *huge = malloc(LBW_UEVENT_MAX * 2);
    CU_ASSERT_FATAL(huge != NULL);
    memset(huge, 0, LBW_UEVENT_MAX * 2);
    strcpy(huge, "add@/devices/system/cpu/cpu9");
    memset(huge + LBW_UEVENT_MAX, 'x', LBW_UEVENT_MAX); /* no '=': refused if it were read */
    CU_ASSERT_EQUAL(lbw_uevent_parse(huge, LBW_UEVENT_MAX * 2, &ev), 0);
    free(huge);
}

static void test_uevent_classes(void)
{
    static const struct {
        const char *action, *subsystem;
        long pci_class;
        int want;
    } c[] = {
        {"online", "cpu", -1, 1},      {"offline", "cpu", -1, 1},
        {"add", "cpu", -1, 1},         {"change", "cpu", -1, 0},
        {"online", "memory", -1, 1},   {"add", "node", -1, 1},
        {"add", "pci", 0x030000, 1},   {"unbind", "pci", 0x030200, 1},
        {"remove", "pci", 0x120000, 1}, {"add", "pci", 0x020000, 0}, /* a NIC */
        {"add", "pci", -1, 0},         {"change", "pci", 0x030000, 0},
        {"add", "drm", -1, 1},         {"change", "drm", -1, 0},
        {"add", "accel", -1, 1},       {"add", "net", -1, 0},
        {"add", "usb", -1, 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct lbw_uevent ev = {.pci_class = c[i].pci_class};
        snprintf(ev.action, sizeof(ev.action), "%s", c[i].action);
        snprintf(ev.subsystem, sizeof(ev.subsystem), "%s", c[i].subsystem);
        CU_ASSERT_EQUAL(lbw_uevent_capacity(&ev), c[i].want);
    }
    /* the real socket opens (root or not, in the initial network namespace) */
    int fd = lbw_uevent_open();
    if (fd < 0) {
        lbw_test_skip("uevent socket", strerror(-fd));
        return;
    }
    char buf[64];
    ssize_t n = lbw_uevent_recv(fd, buf, sizeof(buf));
    CU_ASSERT(n >= 0 || n == -EMSGSIZE); /* nothing pending, or a real event */
    close(fd);
}

/* ---- the files watched --------------------------------------------------------- */

struct names {
    char s[8][512];
    size_t n;
};

static void collect(void *ctx, const char *path)
{
    struct names *nm = ctx;
    if (nm->n < 8)
        snprintf(nm->s[nm->n++], sizeof(nm->s[0]), "%s", path);
}

static int has_suffix(const struct names *nm, const char *suffix)
{
    for (size_t i = 0; i < nm->n; i++) {
        size_t a = strlen(nm->s[i]), b = strlen(suffix);
        if (a >= b && !strcmp(nm->s[i] + a - b, suffix))
            return 1;
    }
    return 0;
}

static void test_files_watched(void)
{
    const char *dir = getenv("LBW_FIXTURES");
    char root[512];
    snprintf(root, sizeof(root), "%s/cgroups/v1", dir && *dir ? dir : "tests/fixtures");
    struct names nm = {.n = 0};
    CU_ASSERT_EQUAL(lbw_capacity_files(root, 64, collect, &nm), 4);
    CU_ASSERT(has_suffix(&nm, "/cg root/memory/job/memory.limit_in_bytes"));
    CU_ASSERT(has_suffix(&nm, "/cg root/memory/memory.limit_in_bytes")); /* the ancestor */
    CU_ASSERT(has_suffix(&nm, "/cg root/cpu,cpuacct/job/cpu.cfs_quota_us"));
    CU_ASSERT(has_suffix(&nm, "/cg root/cpu,cpuacct/job/cpu.cfs_period_us"));
    nm.n = 0;
    CU_ASSERT_EQUAL(lbw_capacity_files(root, 1, collect, &nm), 1); /* bounded */
}

/* ---- a fixture host that changes ----------------------------------------------- */

static char g_root[64];

static void wr(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fx_vwrite(g_root, path, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(rc == 0);
}

/* 4 CPUs (2 cores x 2 threads), one node of 16 GiB, 8 GiB total, a v1
 * cpuset cgroup /job holding all 4. */
static void make_host(void)
{
    snprintf(g_root, sizeof(g_root), "/tmp/lbw-cap-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(g_root) != NULL);
    wr("/proc/self/mountinfo",
       "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n");
    wr("/proc/self/cgroup", "3:cpuset:/job\n");
    wr("/proc/meminfo", "MemTotal:       8388608 kB\n");
    wr("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    wr("/sys/devices/system/cpu/online", "0-3\n");
    for (unsigned c = 0; c < 4; c++) {
        char p[128];
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
        wr(p, "%u\n", c % 2);
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
        wr(p, "0\n");
    }
    wr("/sys/devices/system/node/node0/cpulist", "0-3\n");
    wr("/sys/devices/system/node/node0/meminfo", "Node 0 MemTotal:       8388608 kB\n");
    wr("/sys/fs/cgroup/cpuset/cpuset.cpus", "0-3\n");
    wr("/sys/fs/cgroup/cpuset/job/cpuset.effective_cpus", "0-3\n");
    wr("/sys/fs/cgroup/cpuset/job/cpuset.cpus", "0-3\n");
}

static void rm_host(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
    CU_ASSERT(system(cmd) == 0);
}

static void count_change(void *ctx) { (*(int *)ctx)++; }

static struct lbw_ledger *fixture_ledger(lbw_reactor *r, const struct lbw_host *h,
                                         const struct lbw_advertised *adv, int *changes)
{
    struct lbw_topo *t = malloc(sizeof(*t));
    CU_ASSERT_FATAL(t != NULL);
    lbw_ledger_topo_from_host(h, g_root, &adv->res, t);
    char ns[64], err[300];
    snprintf(ns, sizeof(ns), "lbw-unit-cap/%d/%.20s", (int)getpid(), g_root + 5);
    struct lbw_ledger_opts o = {.r = r, .hwid = 0x77, .ns = ns, .topo = t,
                                .allow_gid = (gid_t)-1, .on_change = count_change,
                                .ctx = changes};
    struct lbw_ledger *l = lbw_ledger_open(&o, err, sizeof(err));
    if (!l)
        fprintf(stderr, "ledger: %s\n", err);
    free(t);
    return l;
}

static double num(const struct lbw_num *n) { return n->is_float ? n->f : (double)n->i; }

/* How the fixture host is probed: its root, affinity on its 4 CPUs. */
static struct lbw_probe_opts host_opts(void)
{
    struct lbw_probe_opts po = {.root = g_root, .nvml_library = "", .use_affinity = 1};
    for (unsigned c = 0; c < 4; c++)
        lbw_cpuset_set(&po.affinity, c);
    return po;
}

static void narrowed(const char *cfgtext, double cpus_after)
{
    make_host();
    lbw_reactor *r = lbw_test_reactor();
    struct lbw_probe_opts po = host_opts();
    struct lbw_host *h = calloc(1, sizeof(*h));
    struct lbw_advertised adv;
    struct lbw_toml *cfg = NULL;
    if (cfgtext) {
        char err[200];
        cfg = lbw_toml_parse(cfgtext, strlen(cfgtext), err, sizeof(err));
        CU_ASSERT_FATAL(cfg != NULL);
    }
    lbw_probe_host(&po, h);
    lbw_advertise(h, cfg, &adv);
    double before = num(&adv.res.total_cpu_count);
    int changes = 0;
    struct lbw_ledger *l = fixture_ledger(r, h, &adv, &changes);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(lbw_ledger_topo(l)->ncpus, 4);
    CU_ASSERT_EQUAL(lbw_ledger_topo(l)->node_mem[0], 8ull << 30);
    /* a claim on CPU 3 (whole cores first: 0, 1, then the siblings 2, 3) */
    struct lbw_claim_req q = {.min_cpu = 4};
    struct lbw_claim held;
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &held), 0);
    lbw_ledger_release(l, held.id);
    q.min_cpu = 1;
    struct lbw_claim c1, c2, c3;
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &c1), 0); /* CPU 0 */
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &c2), 0); /* CPU 1 */
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &c3), 0); /* CPU 2 */
    CU_ASSERT(lbw_cpuset_has(&c3.cpus, 2));
    struct lbw_capacity_opts co = {.r = r, .probe = &po, .cfg = cfg, .host = h, .adv = &adv,
                                   .ledger = l, .no_uevents = 1};
    struct lbw_capacity *cap = lbw_capacity_open(&co);
    CU_ASSERT_FATAL(cap != NULL);
    /* the cpuset loses CPUs 2-3 (the kernel's effective list, then the file written) */
    int before_changes = changes;
    wr("/sys/fs/cgroup/cpuset/job/cpuset.effective_cpus", "0-1\n");
    wr("/sys/fs/cgroup/cpuset/job/cpuset.cpus", "0-1\n");
    for (unsigned i = 0; i < 100 && changes == before_changes; i++)
        lbw_test_run_until(r, &(int){0}, 0.05);
    CU_ASSERT(changes > before_changes);
    CU_ASSERT_DOUBLE_EQUAL(num(&adv.res.total_cpu_count), cpus_after, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(num(&adv.res.cpu_count), cpus_after, 1e-9);
    CU_ASSERT_EQUAL(lbw_ledger_topo(l)->ncpus, 2);
    CU_ASSERT(before == 4);
    /* the claim on CPU 2 stays until released; nothing more is pinned */
    struct lbw_usage u;
    lbw_ledger_used(l, &u);
    CU_ASSERT_DOUBLE_EQUAL(u.cpu, 3, 1e-9);
    struct lbw_claim c4;
    int f = lbw_ledger_claim(l, &q, &c4);
    CU_ASSERT(f >= 0);
    CU_ASSERT_EQUAL(lbw_cpuset_count(&c4.cpus), 0); /* CPUs 0 and 1 are held; 2, 3 gone */
    lbw_ledger_release(l, c4.id);
    lbw_ledger_release(l, c1.id);
    if (cpus_after < 4) /* the gone CPU's claim still counts against the 2 left */
        lbw_ledger_release(l, c3.id);
    struct lbw_claim c5;
    CU_ASSERT(lbw_ledger_claim(l, &q, &c5) >= 0);
    char b[64];
    lbw_cpuset_format(&c5.cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "0"); /* the CPU freed, never the gone ones */
    /* a refresh with nothing changed changes nothing */
    CU_ASSERT_EQUAL(lbw_capacity_refresh(cap, "test"), 0);
    lbw_capacity_close(cap);
    lbw_ledger_close(l);
    lbw_test_run_until(r, &(int){0}, 0.05);
    lbw_reactor_free(r);
    lbw_toml_free(cfg);
    free(h);
    rm_host();
}

/* A flood of changes to a watched file (10,000 writes, each seen by the
 * reactor on its own): the host is probed a bounded number of times, not
 * once per event, and the last state is what is advertised at the end. */
static void test_flood_coalesced(void)
{
    make_host();
    lbw_reactor *r = lbw_test_reactor();
    struct lbw_probe_opts po = host_opts();
    struct lbw_host *h = calloc(1, sizeof(*h));
    struct lbw_advertised adv;
    lbw_probe_host(&po, h);
    lbw_advertise(h, NULL, &adv);
    int changes = 0;
    struct lbw_capacity_opts co = {.r = r, .probe = &po, .host = h, .adv = &adv,
                                   .no_uevents = 1, .on_change = count_change, .ctx = &changes};
    struct lbw_capacity *cap = lbw_capacity_open(&co);
    CU_ASSERT_FATAL(cap != NULL);
    uint64_t t0 = lbw_now_ns();
    unsigned n = 10000;
    for (unsigned i = 0; i < n; i++) {
        const char *v = i % 2 ? "0-3\n" : "0-1\n"; /* ends on 0-3 */
        wr("/sys/fs/cgroup/cpuset/job/cpuset.effective_cpus", "%s", v);
        wr("/sys/fs/cgroup/cpuset/job/cpuset.cpus", "%s", v);
        lbw_reactor_run_once(r, 0);
    }
    uint64_t elapsed = lbw_now_ns() - t0;
    size_t during = lbw_capacity_probes(cap);
    /* the held-back probe comes within 250 ms */
    for (unsigned i = 0; i < 100 && lbw_capacity_probes(cap) == during; i++)
        lbw_test_run_until(r, &(int){0}, 0.05);
    size_t probes = lbw_capacity_probes(cap);
    /* one at once, then at most one per 250 ms, and the last one after
     * (one more to spare) */
    size_t bound = 3 + (size_t)(elapsed / 250000000ull);
    CU_ASSERT(probes >= 1);
    CU_ASSERT(probes <= bound);
    if (probes > bound)
        fprintf(stderr, "\n%zu probes for %u events in %.3f s (at most %zu)\n", probes, n,
                (double)elapsed / 1e9, bound);
    CU_ASSERT_DOUBLE_EQUAL(num(&adv.res.total_cpu_count), 4, 1e-9); /* the last state */
    lbw_capacity_close(cap);
    lbw_test_run_until(r, &(int){0}, 0.05);
    lbw_reactor_free(r);
    free(h);
    rm_host();
}

static void test_cpuset_narrowed(void) { narrowed(NULL, 2); }

static void test_cpuset_narrowed_override(void)
{
    narrowed("[resources]\ncpu_count = 4\n", 4); /* the override wins */
}

/* ---- the ledger's topology replaced ------------------------------------------- */

/* 4 CPUs (a core each), 16 GiB, ngpus GPUs on no node keyed by PCI bus id. */
static struct lbw_topo *small_topo(unsigned ngpus)
{
    struct lbw_topo *t = calloc(1, sizeof(*t));
    CU_ASSERT_FATAL(t != NULL);
    for (unsigned c = 0; c < 4; c++)
        t->cpus[t->ncpus++] = (struct lbw_topo_cpu){.id = (uint16_t)c, .core = c};
    t->cpu_cap = 4;
    t->mem_cap = 1ull << 34;
    for (unsigned g = 0; g < ngpus; g++) {
        t->gpus[g].node = -1;
        snprintf(t->gpus[g].id, sizeof(t->gpus[g].id), "GPU-%u", g);
        snprintf(t->gpus[g].key, sizeof(t->gpus[g].key), "0000:0%u:00.0", g + 1);
    }
    t->ngpus = t->gpu_cap = ngpus;
    return t;
}

static void test_set_topo_gpus(void)
{
    lbw_reactor *r = lbw_test_reactor();
    struct lbw_topo *t = small_topo(3);
    int changes = 0;
    char ns[64], err[300];
    snprintf(ns, sizeof(ns), "lbw-unit-settopo/%d", (int)getpid());
    struct lbw_ledger_opts o = {.r = r, .hwid = 0x78, .ns = ns, .topo = t,
                                .allow_gid = (gid_t)-1, .on_change = count_change,
                                .ctx = &changes};
    struct lbw_ledger *l = lbw_ledger_open(&o, err, sizeof(err));
    CU_ASSERT_FATAL(l != NULL);
    struct lbw_claim_req q = {.min_cpu = 1, .min_gpu = 1};
    struct lbw_claim a, b, c, d;
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &a), 0);
    CU_ASSERT(a.gpus == 1u); /* GPU 0 */
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &b), 0);
    CU_ASSERT(b.gpus == 2u); /* GPU 1 */
    /* GPU 0 goes away: GPU 1 becomes slot 0, GPU 2 slot 1 */
    struct lbw_topo *n = malloc(sizeof(*n));
    *n = *t;
    n->gpus[0] = t->gpus[1];
    n->gpus[1] = t->gpus[2];
    n->ngpus = n->gpu_cap = 2;
    int before = changes;
    lbw_ledger_set_topo(l, n);
    CU_ASSERT(changes > before);
    CU_ASSERT_STRING_EQUAL(lbw_ledger_topo(l)->gpus[1].id, "GPU-2");
    /* the amounts still count both claims: 2 of 2 GPUs, nothing to grant */
    q = (struct lbw_claim_req){.min_gpu = 1};
    int f = lbw_ledger_claim(l, &q, &c);
    CU_ASSERT(f > 0 && (f & 4));
    CU_ASSERT_EQUAL(c.gpus, 0u);
    lbw_ledger_release(l, c.id);
    /* the claim on the gone GPU released: GPU 2 (slot 1) is granted, never
     * GPU 1 (slot 0), which the second claim keeps through the change */
    lbw_ledger_release(l, a.id);
    f = lbw_ledger_claim(l, &q, &d);
    CU_ASSERT_EQUAL(f, 0);
    CU_ASSERT(d.gpus == 2u);
    lbw_ledger_close(l);
    lbw_test_run_until(r, &(int){0}, 0.05);
    lbw_reactor_free(r);
    free(n);
    free(t);
}

/* ---- the topology read from sysfs --------------------------------------------- */

/* Hybrid x86 (cpu_atom lists the E cores), Arm tiers from cpu_capacity,
 * the node's memory, GPUs keyed by their PCI bus id. */
/* Two GPUs with the same key (no PCI bus id: index 0 of NVIDIA and of
 * AMD): a topology change keeps each claim on its own GPU, never both on
 * one (which would also free the other for a third claim). */
static void test_set_topo_same_keys(void)
{
    lbw_reactor *r = lbw_test_reactor();
    struct lbw_topo *t = small_topo(2);
    for (unsigned g = 0; g < 2; g++) {
        t->gpus[g].vendor = g ? LBW_GPU_AMD : LBW_GPU_NVIDIA;
        snprintf(t->gpus[g].id, sizeof(t->gpus[g].id), "0");
        snprintf(t->gpus[g].key, sizeof(t->gpus[g].key), "0");
    }
    char ns[64], err[300];
    snprintf(ns, sizeof(ns), "lbw-unit-samekey/%d", (int)getpid());
    struct lbw_ledger_opts o = {.r = r, .hwid = 0x79, .ns = ns, .topo = t,
                                .allow_gid = (gid_t)-1};
    struct lbw_ledger *l = lbw_ledger_open(&o, err, sizeof(err));
    CU_ASSERT_FATAL(l != NULL);
    struct lbw_claim_req q = {.min_cpu = 1, .min_gpu = 1};
    struct lbw_claim a, b, c;
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &a), 0);
    CU_ASSERT_EQUAL(lbw_ledger_claim(l, &q, &b), 0);
    CU_ASSERT((a.gpus | b.gpus) == 3u && (a.gpus & b.gpus) == 0);
    struct lbw_topo *n = malloc(sizeof(*n));
    *n = *t;
    n->cpus[3].id = 9; /* something else changed: a CPU replaced */
    lbw_ledger_set_topo(l, n);
    struct lbw_usage u;
    lbw_ledger_used(l, &u);
    CU_ASSERT_EQUAL(u.gpus, 3u); /* both GPUs still held, one each */
    q = (struct lbw_claim_req){.min_gpu = 1};
    int f = lbw_ledger_claim(l, &q, &c);
    CU_ASSERT(f > 0);
    CU_ASSERT_EQUAL(c.gpus, 0u); /* none free */
    lbw_ledger_close(l);
    lbw_test_run_until(r, &(int){0}, 0.05);
    lbw_reactor_free(r);
    free(n);
    free(t);
}

static void test_topo_from_sysfs(void)
{
    make_host();
    struct lbw_probe_opts po = host_opts();
    struct lbw_host *h = calloc(1, sizeof(*h));
    struct lbw_advertised adv;
    struct lbw_topo *t = malloc(sizeof(*t));
    CU_ASSERT_FATAL(h && t);
    /* Arm: CPUs 0-1 little (capacity 446), 2 big (1024), 3 mid (871) */
    static const char *const caps[] = {"446", "446", "1024", "871"};
    for (unsigned c = 0; c < 4; c++) {
        char p[128];
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/cpu_capacity", c);
        wr(p, "%s\n", caps[c]);
    }
    lbw_probe_host(&po, h);
    h->ngpus = 1;
    h->gpus[0] = (struct lbw_gpu){.vendor = LBW_GPU_AMD, .numa_node = 0,
                                  .pci_bus_id = "0000:c1:00.0"};
    lbw_advertise(h, NULL, &adv);
    lbw_ledger_topo_from_host(h, g_root, &adv.res, t);
    CU_ASSERT_EQUAL(t->ncpus, 4);
    CU_ASSERT_EQUAL(t->cpus[0].eff, 2);
    CU_ASSERT_EQUAL(t->cpus[1].eff, 2);
    CU_ASSERT_EQUAL(t->cpus[2].eff, 0);
    CU_ASSERT_EQUAL(t->cpus[3].eff, 1);
    CU_ASSERT_EQUAL(t->node_mem[0], 8ull << 30);
    CU_ASSERT_STRING_EQUAL(t->gpus[0].key, "0000:c1:00.0");
    CU_ASSERT_STRING_EQUAL(t->gpus[0].id, "0");
    /* Intel hybrid: cpu_atom names the E cores and wins over capacities */
    wr("/sys/devices/cpu_atom/cpus", "3\n");
    wr("/sys/devices/cpu_core/cpus", "0-2\n");
    lbw_ledger_topo_from_host(h, g_root, &adv.res, t);
    CU_ASSERT(t->cpus[0].eff == 0 && t->cpus[1].eff == 0 && t->cpus[2].eff == 0);
    CU_ASSERT_EQUAL(t->cpus[3].eff, 1);
    free(t);
    free(h);
    rm_host();
}

/* ---- the payload's memory policy ---------------------------------------------- */

/* The first line of a child's numa_maps, spawned with mem_nodes (NULL: none). */
static void child_policy(const unsigned long *mask, char *out, size_t cap)
{
    int p[2];
    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
    char *argv[] = {"/bin/sh", "-c", "head -1 /proc/self/numa_maps", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct lbw_spawn_opts o = {.path = argv[0], .argv = argv, .envp = envp, .stdin_fd = -1,
                               .stdout_fd = p[1], .stderr_fd = -1, .cgroup_fd = -1,
                               .mem_nodes = mask, .mem_maxnode = mask ? 65 : 0};
    struct lbw_child c;
    char err[300];
    int rc = lbw_spawn(&o, &c, err, sizeof(err));
    close(p[1]);
    CU_ASSERT_FATAL(rc == 0);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(p[0]);
    struct lbw_exit ex;
    CU_ASSERT(lbw_pidfd_wait(c.pidfd, &ex, 0) == 0);
    close(c.pidfd);
}

/* MPOL_PREFERRED for the claim's node is set in the child before execve
 * (numa_maps shows "prefer:0"); without a mask the policy is inherited
 * ("default"). Node 0 only: other nodes are tested by the allocation
 * fixtures. */
static void test_spawn_mem_node(void)
{
    if (access("/proc/self/numa_maps", R_OK) != 0) {
        lbw_test_skip("memory policy", "no /proc/self/numa_maps (a kernel without NUMA)");
        return;
    }
    char out[512];
    unsigned long mask[1] = {1ul}; /* node 0 */
    child_policy(mask, out, sizeof(out));
    CU_ASSERT(strstr(out, " prefer:0 ") != NULL);
    child_policy(NULL, out, sizeof(out));
    CU_ASSERT(strstr(out, " default ") != NULL);
}

static const struct lbw_test tests[] = {
    {"uevent: kernel messages parsed, hostile ones refused", test_uevent_parse},
    {"uevent: which events change capacity; the socket", test_uevent_classes},
    {"the cgroup files watched: the worker's and its ancestors'", test_files_watched},
    {"the payload's memory prefers the claim's node (spawn mem_nodes)", test_spawn_mem_node},
    {"topology from sysfs: cpu_atom, cpu_capacity tiers, node memory, GPU keys",
     test_topo_from_sysfs},
    {NULL, NULL},
};

static const struct lbw_test reactor_tests[] = {
    {"a v1 cpuset narrowed: advertised values, ledger, claims follow", test_cpuset_narrowed},
    {"a v1 cpuset narrowed under a [resources] override: claims follow",
     test_cpuset_narrowed_override},
    {"the ledger's topology replaced: GPUs matched by key", test_set_topo_gpus},
    {"a flood of 10,000 changes: probes coalesced, the last state kept", test_flood_coalesced},
    {"the ledger's topology replaced: GPUs with equal keys stay one per claim",
     test_set_topo_same_keys},
    {NULL, NULL},
};

static int register_capacity_suites(void)
{
    if (lbw_add_suite("capacity", NULL, NULL, tests))
        return -1;
    return lbw_add_backend_suites("capacity_live", reactor_tests);
}

LBW_TEST_SUITES(register_capacity_suites)
