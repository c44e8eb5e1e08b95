/* test_probe.c — host probes against fixture trees made here: a two-socket
 * NUMA server with offline CPUs; a cgroup v2 container (cpu.max 2.5,
 * cpuset of 4, memory.max 4G); this machine's v1/v2 hybrid layout; two
 * NVIDIA GPUs without NVML plus an AMD GPU; no GPU and no NUMA; machine-id
 * fallbacks; NVML through a fake library; [resources] overrides; the route
 * to the scheduler. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "netlink.h"
#include "probe.h"
#include "resources.h"
#include "suites.h"
#include "toml.h"

static char g_root[64];

static void mkroot(void)
{
    snprintf(g_root, sizeof(g_root), "/tmp/lbw-probe-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(g_root) != NULL);
}

static void rmroot(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
    CU_ASSERT(system(cmd) == 0);
}

/* Writes root/path with printf-style content, creating directories. */
static void wr(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fx_vwrite(g_root, path, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(rc == 0);
}

static void all_affinity(struct lbw_probe_opts *o, unsigned n)
{
    o->use_affinity = 1;
    lbw_cpuset_clear(&o->affinity);
    for (unsigned c = 0; c < n; c++)
        lbw_cpuset_set(&o->affinity, c);
}

static void test_cpulists(void)
{
    struct lbw_cpuset s;
    char b[128];
    CU_ASSERT(lbw_cpuset_parse("0-3,8,10-11\n", &s) == 0 && lbw_cpuset_count(&s) == 7);
    lbw_cpuset_format(&s, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "0-3,8,10-11");
    CU_ASSERT(lbw_cpuset_parse("\n", &s) == 0 && lbw_cpuset_count(&s) == 0);
    CU_ASSERT(lbw_cpuset_parse("3-1", &s) == -1);
    CU_ASSERT(lbw_cpuset_parse("0-99999", &s) == -1);
    CU_ASSERT(lbw_cpuset_parse("a", &s) == -1);
    CU_ASSERT(lbw_cpuset_parse("1,", &s) == -1);
}

static void test_numa_server(void)
{
    mkroot();
    wr("/sys/devices/system/cpu/online", "0-31,33-63\n");
    for (unsigned c = 0; c < 64; c++) {
        char p[128];
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
        wr(p, "%u\n", c % 16);
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
        wr(p, "%u\n", c / 32);
    }
    wr("/proc/meminfo", "MemTotal:       268435456 kB\nMemFree:        1 kB\n");
    wr("/sys/devices/system/node/node0/cpulist", "0-31\n");
    wr("/sys/devices/system/node/node1/cpulist", "33-63\n");
    wr("/sys/devices/system/node/node0/meminfo", "Node 0 MemTotal:       134217728 kB\n");
    wr("/sys/devices/system/node/node1/meminfo", "Node 1 MemTotal:       134217728 kB\n");
    wr("/sys/devices/system/node/node0/distance", "10 21\n");
    wr("/sys/devices/system/node/node1/distance", "21 10\n");
    wr("/sys/devices/system/node/online", "0-1\n");
    wr("/proc/self/cgroup", "0::/\n");
    wr("/proc/self/mountinfo", "30 22 0:27 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n");
    wr("/etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
    struct lbw_probe_opts o = {.root = g_root, .nvml_library = ""};
    all_affinity(&o, 64);
    struct lbw_host *h = malloc(sizeof(*h));
    lbw_probe_host(&o, h);
    CU_ASSERT_EQUAL(h->usable_count, 63);
    CU_ASSERT(h->cpu_quota == 0 && h->cpu_count == 63);
    CU_ASSERT_EQUAL(h->physical_cores, 32);
    CU_ASSERT_EQUAL(h->mem_total, 268435456ull * 1024);
    CU_ASSERT(h->mem_limit == 0 && h->mem_bytes == h->mem_total);
    CU_ASSERT_FATAL(h->nnodes == 2);
    CU_ASSERT(h->nodes[0].id == 0 && lbw_cpuset_count(&h->nodes[0].cpus) == 32);
    CU_ASSERT(h->nodes[1].id == 1 && lbw_cpuset_count(&h->nodes[1].cpus) == 31);
    CU_ASSERT(h->nodes[1].mem_bytes == 134217728ull * 1024);
    CU_ASSERT(h->nodes[0].ndist == 2 && h->nodes[0].distance[1] == 21);
    CU_ASSERT_EQUAL(h->hwid, 3035264702246419876ull);
    CU_ASSERT_STRING_EQUAL(h->cgroup_mode, "v2");
    CU_ASSERT_EQUAL(h->ngpus, 0);
    /* a narrower affinity mask narrows the usable set */
    all_affinity(&o, 8);
    lbw_probe_cpu(&o, h);
    CU_ASSERT_EQUAL(h->usable_count, 8);
    free(h);
    rmroot();
}

static void test_container_v2(void)
{
    mkroot();
    wr("/sys/devices/system/cpu/online", "0-7\n");
    wr("/proc/meminfo", "MemTotal:       16777216 kB\n");
    wr("/proc/self/cgroup", "0::/kubepods/pod1/c1\n");
    wr("/proc/self/mountinfo",
       "25 20 0:22 / / rw - overlay overlay rw\n"
       "30 25 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    wr("/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "250000 100000\n");
    wr("/sys/fs/cgroup/kubepods/pod1/c1/cpuset.cpus.effective", "2-5\n");
    wr("/sys/fs/cgroup/kubepods/pod1/c1/memory.max", "4294967296\n");
    wr("/sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
    wr("/sys/fs/cgroup/kubepods/pod1/memory.max", "max\n");
    wr("/sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n");
    wr("/sys/fs/cgroup/kubepods/memory.max", "8589934592\n");
    wr("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    struct lbw_probe_opts o = {.root = g_root, .nvml_library = ""};
    all_affinity(&o, 8);
    struct lbw_host *h = malloc(sizeof(*h));
    lbw_probe_host(&o, h);
    CU_ASSERT(h->has_cgroup_cpuset && h->usable_count == 4);
    CU_ASSERT(h->cpu_quota == 2.5 && h->cpu_count == 2.5);
    CU_ASSERT(strstr(h->cpu_quota_source, "/kubepods/pod1/c1/cpu.max") != NULL);
    CU_ASSERT_EQUAL(h->mem_limit, 4294967296ull);
    CU_ASSERT_EQUAL(h->mem_bytes, 4294967296ull);
    CU_ASSERT(strstr(h->mem_limit_source, "c1/memory.max") != NULL);
    CU_ASSERT_EQUAL(h->nnodes, 0); /* no NUMA directory */
    CU_ASSERT_EQUAL(h->hwid, 0x0123456789abcdefull & 0x7FFFFFFFFFFFFFFFull);
    struct lbw_advertised a;
    lbw_advertise(h, NULL, &a);
    CU_ASSERT(a.res.cpu_count.is_float && a.res.cpu_count.f == 2.5);
    CU_ASSERT(!a.res.cpu_mem.is_float && a.res.cpu_mem.i == 4294967296LL);
    CU_ASSERT(a.res.total_cpu_count.f == 2.5 && a.res.total_cpu_mem.i == 4294967296LL);
    CU_ASSERT_STRING_EQUAL(a.cpu_src, "cgroup CPU quota");
    CU_ASSERT_STRING_EQUAL(a.mem_src, "cgroup memory limit");
    /* a tighter parent wins */
    wr("/sys/fs/cgroup/kubepods/cpu.max", "150000 100000\n");
    wr("/sys/fs/cgroup/kubepods/memory.max", "1073741824\n");
    lbw_probe_cpu(&o, h);
    lbw_probe_mem(&o, h);
    CU_ASSERT(h->cpu_quota == 1.5 && h->mem_bytes == 1073741824ull);
    free(h);
    rmroot();
}

static void test_hybrid_like_this_machine(void)
{
    mkroot();
    wr("/sys/devices/system/cpu/online", "0-1\n");
    wr("/proc/meminfo", "MemTotal:       24683620 kB\n");
    wr("/proc/self/cgroup", "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n3:cpuset:/\n"
                            "2:cpuacct:/\n1:cpu:/\n0::/\n");
    wr("/proc/self/mountinfo",
       "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
       "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
       "33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
       "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
       "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
    wr("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    wr("/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "9223372036854771712\n");
    wr("/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "2147483648\n");
    wr("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "150000\n");
    wr("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    wr("/sys/fs/cgroup/cpuset/cpuset.effective_cpus", "0-1\n");
    struct lbw_probe_opts o = {.root = g_root, .nvml_library = ""};
    all_affinity(&o, 2);
    struct lbw_host *h = malloc(sizeof(*h));
    lbw_probe_host(&o, h);
    CU_ASSERT_STRING_EQUAL(h->cgroup_mode, "hybrid");
    CU_ASSERT_EQUAL(h->mem_limit, 2147483648ull);
    CU_ASSERT(strstr(h->mem_limit_source, "/sys/fs/cgroup/memory/process_api/abc/") != NULL);
    CU_ASSERT(h->cpu_quota == 1.5 && h->cpu_count == 1.5);
    CU_ASSERT(h->usable_count == 2 && h->has_cgroup_cpuset);
    /* no machine-id at all: the dbus copy, then the first non-zero MAC */
    CU_ASSERT(h->hwid != 0 && strstr(h->hwid_source, "random") != NULL);
    wr("/var/lib/dbus/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4");
    uint64_t id;
    char src[160];
    CU_ASSERT(lbw_probe_hwid(&o, &id, src, sizeof(src)) == 0 && id == 3035264702246419876ull);
    CU_ASSERT_STRING_EQUAL(src, "/var/lib/dbus/machine-id");
    wr("/var/lib/dbus/machine-id", "not hex\n");
    wr("/sys/class/net/lo/address", "00:00:00:00:00:00\n");
    wr("/sys/class/net/wlan0/address", "aa:bb:cc:dd:ee:ff\n");
    wr("/sys/class/net/eth0/address", "52:54:00:12:34:56\n");
    CU_ASSERT(lbw_probe_hwid(&o, &id, src, sizeof(src)) == 0 && id == 0x525400123456ull);
    CU_ASSERT(strstr(src, "eth0") != NULL);
    free(h);
    rmroot();
}

static void test_gpus_without_nvml(void)
{
    mkroot();
    wr("/proc/driver/nvidia/gpus/0000:01:00.0/information",
       "Model: \t\t NVIDIA GeForce RTX 3090\nIRQ:   \t\t 130\nGPU UUID: \t GPU-01234567-89ab-cdef-0123-456789abcdef\n"
       "Bus Location: \t 0000:01:00.0\n");
    wr("/proc/driver/nvidia/gpus/0000:21:00.0/information",
       "Model: \t\t NVIDIA GeForce RTX 3090\nGPU UUID: \t GPU-fedcba98-7654-3210-fedc-ba9876543210\n"
       "Bus Location: \t 0000:21:00.0\n");
    wr("/sys/bus/pci/devices/0000:01:00.0/numa_node", "0\n");
    wr("/sys/bus/pci/devices/0000:21:00.0/numa_node", "1\n");
    wr("/sys/class/drm/card0/device/uevent", "DRIVER=nvidia\nPCI_ID=10DE:2204\nPCI_SLOT_NAME=0000:01:00.0\n");
    wr("/sys/class/drm/card2/device/uevent", "DRIVER=amdgpu\nPCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:43:00.0\n");
    wr("/sys/class/drm/card2/device/mem_info_vram_total", "17163091968\n");
    wr("/sys/class/drm/card2-DP-1/status", "connected\n");
    wr("/sys/class/drm/card3/device/uevent", "DRIVER=i915\nPCI_ID=8086:4680\nPCI_SLOT_NAME=0000:00:02.0\n");
    wr("/sys/bus/pci/devices/0000:43:00.0/numa_node", "1\n");
    struct lbw_probe_opts o = {.root = g_root, .nvml_library = ""};
    struct lbw_host *h = calloc(1, sizeof(*h));
    lbw_probe_gpu(&o, h);
    CU_ASSERT_FATAL(h->ngpus == 3); /* 2 NVIDIA, 1 AMD; integrated Intel not counted */
    CU_ASSERT(h->gpus[0].vendor == LBW_GPU_NVIDIA && !strcmp(h->gpus[0].source, "procfs"));
    CU_ASSERT_STRING_EQUAL(h->gpus[0].uuid, "GPU-01234567-89ab-cdef-0123-456789abcdef");
    CU_ASSERT_STRING_EQUAL(h->gpus[0].name, "NVIDIA GeForce RTX 3090");
    CU_ASSERT(h->gpus[1].numa_node == 1 && !strcmp(h->gpus[1].pci_bus_id, "0000:21:00.0"));
    CU_ASSERT(h->gpus[2].vendor == LBW_GPU_AMD && h->gpus[2].mem_bytes == 17163091968ull &&
              h->gpus[2].numa_node == 1);
    CU_ASSERT_EQUAL(h->gpu_mem_bytes, 17163091968ull);
    CU_ASSERT(strstr(h->gpu_note, "memory is unknown") != NULL);
    /* an Intel discrete card with local memory counts */
    wr("/sys/class/drm/card4/device/uevent", "DRIVER=i915\nPCI_ID=8086:56A0\nPCI_SLOT_NAME=0000:03:00.0\n");
    wr("/sys/class/drm/card4/lmem_total_bytes", "17179869184\n");
    lbw_probe_gpu(&o, h);
    CU_ASSERT(h->ngpus == 4 && h->gpus[3].vendor == LBW_GPU_INTEL &&
              h->gpus[3].mem_bytes == 17179869184ull);
    free(h);
    rmroot();
    /* no GPU at all */
    mkroot();
    h = calloc(1, sizeof(*h));
    lbw_probe_gpu(&o, h);
    CU_ASSERT(h->ngpus == 0 && h->gpu_mem_bytes == 0 && h->gpu_note[0] == 0);
    free(h);
    rmroot();
}

static void test_nvml_fake(void)
{
    char lib[512];
    snprintf(lib, sizeof(lib), "%s/tests/fake-nvml/libnvidia-ml.so.1", lbw_test_build_dir());
    if (access(lib, R_OK) != 0)
        CU_FAIL_FATAL("fake NVML library not built");
    char abs[1024];
    if (lib[0] != '/') {
        char cwd[400];
        CU_ASSERT_FATAL(getcwd(cwd, sizeof(cwd)) != NULL);
        snprintf(abs, sizeof(abs), "%s/%s", cwd, lib);
    } else {
        snprintf(abs, sizeof(abs), "%s", lib);
    }
    mkroot();
    wr("/sys/bus/pci/devices/0000:41:00.0/numa_node", "1\n");
    /* the same GPUs also visible in /proc: NVML wins, no duplicates */
    wr("/proc/driver/nvidia/gpus/0000:41:00.0/information", "Model: x\n");
    wr("/sys/class/drm/card0/device/uevent", "DRIVER=nvidia\nPCI_ID=10DE:2330\nPCI_SLOT_NAME=0000:41:00.0\n");
    struct lbw_probe_opts o = {.root = g_root, .nvml_library = abs};
    struct lbw_host *h = calloc(1, sizeof(*h));
    lbw_probe_gpu(&o, h);
    CU_ASSERT_FATAL(h->ngpus == 2);
    CU_ASSERT_STRING_EQUAL(h->gpus[0].name, "NVIDIA H100 80GB HBM3");
    CU_ASSERT_STRING_EQUAL(h->gpus[0].uuid, "GPU-11111111-2222-3333-4444-555555555555");
    CU_ASSERT_STRING_EQUAL(h->gpus[0].pci_bus_id, "0000:41:00.0");
    CU_ASSERT(h->gpus[0].numa_node == 1 && h->gpus[1].numa_node == -1);
    CU_ASSERT_STRING_EQUAL(h->gpus[1].pci_bus_id, "0000:c1:00.0");
    CU_ASSERT_EQUAL(h->gpu_mem_bytes, 85899345920ull + 25769803776ull);
    CU_ASSERT_STRING_EQUAL(h->gpus[0].source, "nvml");
    /* a library that is not there: the /proc path takes over */
    o.nvml_library = "/nonexistent/libnvidia-ml.so.1";
    lbw_probe_gpu(&o, h);
    CU_ASSERT(h->ngpus == 1 && !strcmp(h->gpus[0].source, "procfs"));
    free(h);
    rmroot();
}

static void test_overrides(void)
{
    struct lbw_host *h = calloc(1, sizeof(*h));
    h->cpu_count = 2;
    h->usable_count = 2;
    h->mem_total = h->mem_bytes = 1000;
    h->hwid = 42;
    char err[200];
    const char *t = "[resources]\ncpu_count = 7.5\ncpu_mem = \"16G\"\ngpu_count = 1\n"
                    "gpu_mem = 8000000000\n";
    struct lbw_toml *cfg = lbw_toml_parse(t, strlen(t), err, sizeof(err));
    CU_ASSERT_FATAL(cfg != NULL);
    struct lbw_advertised a;
    lbw_advertise(h, cfg, &a);
    CU_ASSERT(a.res.hwid == 42);
    CU_ASSERT(a.res.cpu_count.is_float && a.res.cpu_count.f == 7.5);
    CU_ASSERT(a.res.cpu_mem.i == 16000000000LL && a.res.gpu_count.i == 1 &&
              a.res.gpu_mem.i == 8000000000LL);
    CU_ASSERT(a.res.total_cpu_mem.i == 16000000000LL);
    CU_ASSERT_STRING_EQUAL(a.mem_src, "config resources.cpu_mem");
    lbw_toml_free(cfg);
    /* a bad memory string: detected value and a warning (upstream sent None) */
    t = "[resources]\ncpu_mem = \"16g\"\ncpu_count = -1\n";
    cfg = lbw_toml_parse(t, strlen(t), err, sizeof(err));
    char lp[] = "/tmp/lbw-probe-log-XXXXXX";
    int lg = mkstemp(lp);
    unlink(lp);
    lbw_log_set_fd(lg);
    lbw_advertise(h, cfg, &a);
    lbw_log_set_fd(-1);
    CU_ASSERT(a.res.cpu_mem.i == 1000 && a.res.cpu_count.i == 2);
    char lb[1024] = {0};
    CU_ASSERT(pread(lg, lb, sizeof(lb) - 1, 0) > 0);
    CU_ASSERT(strstr(lb, "resources.cpu_mem") && strstr(lb, "resources.cpu_count"));
    close(lg);
    lbw_toml_free(cfg);
    free(h);
}

static void test_route_and_watch(void)
{
    char src[64];
    CU_ASSERT(lbw_route_source("127.0.0.1", src, sizeof(src)) == 0);
    CU_ASSERT_STRING_EQUAL(src, "127.0.0.1");
    CU_ASSERT(lbw_route_source("not-an-ip", src, sizeof(src)) == -EINVAL);
    int fd = -1;
    struct lbw_addrwatch *w = lbw_addrwatch_open(&fd);
    CU_ASSERT_FATAL(w != NULL && fd >= 0);
    CU_ASSERT(lbw_addrwatch_drain(w) == 0); /* nothing changed */
    lbw_addrwatch_close(w);
}

/* The committed cgroup layouts (tests/fixtures/cgroups): limits set by an
 * ancestor win the walk-up; a container's v1 view (namespace roots, a
 * mount point with an escaped space) is followed to the right files. */
static void fixture_root(const char *layout, char *out, size_t cap)
{
    const char *dir = getenv("LBW_FIXTURES");
    snprintf(out, cap, "%s/cgroups/%s", dir && *dir ? dir : "tests/fixtures", layout);
}

static void test_cgroup_fixture_layouts(void)
{
    char root[512];
    struct lbw_host *h = calloc(1, sizeof(*h));
    CU_ASSERT_FATAL(h != NULL);
    fixture_root("v2", root, sizeof(root));
    struct lbw_probe_opts o = {.root = root, .nvml_library = ""};
    all_affinity(&o, 16);
    lbw_probe_cpu(&o, h);
    lbw_probe_mem(&o, h);
    CU_ASSERT(h->has_cgroup_cpuset && lbw_cpuset_count(&h->cgroup_cpuset) == 8);
    CU_ASSERT(h->cpu_quota == 3.0);
    CU_ASSERT(strstr(h->cpu_quota_source, "render.service/cpu.max") != NULL);
    CU_ASSERT(h->mem_limit == 8589934592ull); /* the slice's, above the service */
    CU_ASSERT(strstr(h->mem_limit_source, "/sys/fs/cgroup/system.slice/memory.max") != NULL);
    fixture_root("v1", root, sizeof(root));
    lbw_probe_cpu(&o, h);
    lbw_probe_mem(&o, h);
    CU_ASSERT(h->cpu_quota == 0.5 && h->cpu_count == 0.5);
    CU_ASSERT(h->mem_limit == 536870912ull);
    CU_ASSERT(strstr(h->mem_limit_source, "/cg root/memory/memory.limit_in_bytes") != NULL);
    free(h);
}

static const struct lbw_test tests[] = {
    {"CPU lists", test_cpulists},
    {"two-socket NUMA server, offline CPUs", test_numa_server},
    {"cgroup v2 container: quota 2.5, cpuset 4, memory.max 4G", test_container_v2},
    {"v1/v2 hybrid like this machine; hwid fallbacks", test_hybrid_like_this_machine},
    {"two NVIDIA GPUs without NVML + AMD (+ Intel discrete); no GPU", test_gpus_without_nvml},
    {"NVML through a fake library with two GPUs", test_nvml_fake},
    {"cgroup layouts from tests/fixtures/cgroups (v2 service, v1 container)",
     test_cgroup_fixture_layouts},
    {"[resources] overrides", test_overrides},
    {"route source address; address watch", test_route_and_watch},
    {NULL, NULL},
};

static int register_probe_suites(void) { return lbw_add_suite("probe", NULL, NULL, tests); }

LBW_TEST_SUITES(register_probe_suites)
