/* probe.h — what this host really offers payloads: CPUs (online ∩ affinity
 * ∩ cgroup cpuset, and the cgroup CPU quota), memory (MemTotal lowered to
 * the tightest cgroup limit), NUMA nodes, GPUs (NVML when present, else
 * /proc and sysfs), the machine id (hwid, exactly as upstream computes it),
 * and what the worker will advertise after [resources] overrides.
 *
 * Every file is read through a root prefix ("/" live, a fixture tree in
 * tests). Nothing here knows about the wire. */
#ifndef LBW_PROBE_H
#define LBW_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LBW_MAX_CPUS 8192
#define LBW_MAX_NODES 64
#define LBW_MAX_GPUS 32

struct lbw_cpuset {
    uint64_t bits[LBW_MAX_CPUS / 64];
};
void lbw_cpuset_clear(struct lbw_cpuset *s);
void lbw_cpuset_set(struct lbw_cpuset *s, unsigned cpu);
int lbw_cpuset_has(const struct lbw_cpuset *s, unsigned cpu);
unsigned lbw_cpuset_count(const struct lbw_cpuset *s);
void lbw_cpuset_and(struct lbw_cpuset *a, const struct lbw_cpuset *b);
/* Parses a kernel CPU list ("0-3,8,10-11"). Returns 0 or -1. */
int lbw_cpuset_parse(const char *s, struct lbw_cpuset *out);
/* Writes the list form into out. */
void lbw_cpuset_format(const struct lbw_cpuset *s, char *out, size_t cap);

struct lbw_probe_opts {
    const char *root;           /* "/" unless testing */
    const char *nvml_library;   /* default "libnvidia-ml.so.1"; "" disables NVML */
    /* Affinity: the live process's mask unless use_affinity is set (tests). */
    int use_affinity;
    struct lbw_cpuset affinity;
};

struct lbw_numa_node {
    int id;
    struct lbw_cpuset cpus;
    uint64_t mem_bytes;
    int ndist;
    int distance[LBW_MAX_NODES];
};

enum lbw_gpu_vendor { LBW_GPU_NVIDIA = 1, LBW_GPU_AMD, LBW_GPU_INTEL };

struct lbw_gpu {
    enum lbw_gpu_vendor vendor;
    char name[96];
    char uuid[96];
    char pci_bus_id[32];   /* 0000:01:00.0 */
    uint64_t mem_bytes;    /* 0 when unknown */
    int numa_node;         /* -1 when unknown */
    char source[32];       /* "nvml", "procfs", "sysfs" */
};

struct lbw_host {
    /* CPUs */
    struct lbw_cpuset online, affinity, cgroup_cpuset, usable;
    int has_cgroup_cpuset;
    unsigned usable_count;
    double cpu_quota;          /* CPUs allowed by the bandwidth quota; 0 = none */
    char cpu_quota_source[160];
    unsigned physical_cores;   /* distinct (package, core) among usable CPUs */
    unsigned perf_cores, eff_cores; /* hybrid CPUs, where sysfs tells */
    double cpu_count;          /* what can be used: min(usable, quota) */
    /* memory */
    uint64_t mem_total;        /* MemTotal */
    uint64_t mem_limit;        /* tightest cgroup limit; 0 = none */
    char mem_limit_source[160];
    uint64_t mem_bytes;        /* min(total, limit) */
    /* NUMA */
    int nnodes;
    struct lbw_numa_node nodes[LBW_MAX_NODES];
    /* GPUs */
    int ngpus;
    struct lbw_gpu gpus[LBW_MAX_GPUS];
    uint64_t gpu_mem_bytes;
    char gpu_note[160];        /* why detection was partial, if it was */
    /* identity */
    uint64_t hwid;
    char hwid_source[160];
    char cgroup_mode[16];      /* "v2", "v1", "hybrid", "none" */
};

/* Runs every probe. Never fails as a whole: a probe that cannot read its
 * source leaves its default and says so in the *_source/note fields. */
void lbw_probe_host(const struct lbw_probe_opts *o, struct lbw_host *h);

/* Individual probes (used by lbw_probe_host; exposed for tests). */
void lbw_probe_cpu(const struct lbw_probe_opts *o, struct lbw_host *h);
void lbw_probe_mem(const struct lbw_probe_opts *o, struct lbw_host *h);
void lbw_probe_numa(const struct lbw_probe_opts *o, struct lbw_host *h);
void lbw_probe_gpu(const struct lbw_probe_opts *o, struct lbw_host *h);
/* hwid per docs/PROTOCOL.md 10.1. Returns 0, or -1 when no source worked. */
int lbw_probe_hwid(const struct lbw_probe_opts *o, uint64_t *hwid, char *src, size_t srclen);

/* ---- helpers over the root prefix (probes/sysfs.c) ----------------------- */

/* Reads root+path (at most cap-1 bytes, NUL-terminated, trailing newline
 * kept). Returns the length or -errno. */
ssize_t lbw_root_read(const char *root, const char *path, char *buf, size_t cap);

#endif
