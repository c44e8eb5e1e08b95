/* ledger_alloc.h — the host ledger's allocation policy, pure (no I/O):
 * the host's topology and capacity, claims (amounts and the concrete CPUs
 * and GPUs they hold), how much a task is granted (as the upstream
 * scheduler computes it, PROTOCOL.md 10.2) and which CPUs/GPUs it gets
 * (packed into one NUMA node when they fit, whole cores before SMT
 * siblings, performance cores before efficiency cores, GPUs local to the
 * node first) and whether its memory is bound to that node (when the
 * node's memory not yet bound by other claims holds it), and the
 * invariant check: the live claims' amounts never sum above capacity, no
 * CPU or GPU is in two claims, and the memory bound to a node never sums
 * above what the node has. */
#ifndef LBW_LEDGER_ALLOC_H
#define LBW_LEDGER_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "probe.h"

struct lbw_topo_cpu {
    uint16_t id;
    int16_t node;     /* NUMA node, 0 when unknown */
    uint32_t core;    /* package << 16 | core id: SMT siblings share it */
    uint8_t eff;      /* performance tier: 0 the fastest cores (hybrid P cores, or the
                         highest cpu_capacity), 1 the next (E cores), ... */
};

struct lbw_topo_gpu {
    int node;         /* -1 unknown */
    int vendor;       /* enum lbw_gpu_vendor */
    char id[96];      /* what *_VISIBLE_DEVICES names: UUID when known, else the index */
    char key[32];     /* stable identity across probes: the PCI bus id (else id) */
};

struct lbw_topo {
    /* capacity (the advertised totals) */
    double cpu_cap;
    uint64_t mem_cap;
    uint32_t gpu_cap;
    uint64_t gmem_cap;
    /* the CPUs and GPUs claims are pinned to */
    unsigned ncpus;
    struct lbw_topo_cpu cpus[LBW_MAX_CPUS];
    unsigned ngpus;
    struct lbw_topo_gpu gpus[LBW_MAX_GPUS];
    /* memory of each NUMA node (bytes; 0 unknown: claims there are not bound) */
    uint64_t node_mem[LBW_MAX_NODES];
};

struct lbw_claim {
    uint64_t id;      /* unique per host: the claimer's pid << 24 | its sequence */
    int32_t pid;      /* the worker holding it */
    int32_t node;     /* NUMA node most of its CPUs are on; -1 none */
    double cpu;       /* amounts, exact */
    uint64_t mem;
    uint32_t gpu;
    uint32_t gpus;    /* bit i: topo gpus[i] */
    uint64_t gmem;
    int32_t mem_node; /* NUMA node its memory is bound to; -1 none */
    int32_t pad_;
    struct lbw_cpuset cpus;
};

/* What a job asks for (0 preferred = none given). */
struct lbw_claim_req {
    double min_cpu, pref_cpu;
    uint64_t min_mem, pref_mem;
    uint32_t min_gpu, pref_gpu;
    uint64_t min_gmem, pref_gmem;
};

struct lbw_usage {
    double cpu;
    uint64_t mem;
    uint32_t gpu;
    uint64_t gmem;
    struct lbw_cpuset cpus;
    uint32_t gpus;
    uint64_t node_mem[LBW_MAX_NODES]; /* memory bound to each node */
};

/* Sums of the claims (claims[i] with i < n). */
void lbw_alloc_usage(const struct lbw_claim *claims, size_t n, struct lbw_usage *u);

/* Grants `req` against what the claims leave: amounts per resource
 * min(available, max(preferred or min, min)); ceil(cpu) CPUs and gpu GPUs
 * chosen from the free ones: the node is the one that fits the CPUs and,
 * among those, has the GPUs and then the memory free, then the fewest free
 * CPUs; mem_node = that node when its unbound memory holds the claim.
 * The grant is never more than what is free, so the invariant holds
 * whatever is asked. Returns 0 when everything
 * asked for (the minimums and the CPUs/GPUs to pin) was granted, or a
 * bit set of what fell short: 1 cpu amount, 2 mem, 4 gpu, 8 gmem,
 * 16 fewer CPUs pinned than ceil(cpu), 32 fewer GPUs than asked. */
int lbw_alloc_grant(const struct lbw_topo *t, const struct lbw_claim *claims, size_t n,
                    const struct lbw_claim_req *req, struct lbw_claim *out);

/* 0 if the claims respect the invariant, else -1 with a reason in why. */
int lbw_alloc_check(const struct lbw_topo *t, const struct lbw_claim *claims, size_t n,
                    char *why, size_t whylen);

#endif
