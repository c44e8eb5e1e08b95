/* ledger_alloc.c — the allocation policy of the host ledger (see
 * ledger_alloc.h). */
#include "ledger_alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CPU_EPS 1e-9

void lbw_alloc_usage(const struct lbw_claim *claims, size_t n, struct lbw_usage *u)
{
    memset(u, 0, sizeof(*u));
    for (size_t i = 0; i < n; i++) {
        u->cpu += claims[i].cpu;
        u->mem += claims[i].mem;
        u->gpu += claims[i].gpu;
        u->gmem += claims[i].gmem;
        u->gpus |= claims[i].gpus;
        if (claims[i].mem_node >= 0 && claims[i].mem_node < LBW_MAX_NODES)
            u->node_mem[claims[i].mem_node] += claims[i].mem;
        for (size_t w = 0; w < LBW_MAX_CPUS / 64; w++)
            u->cpus.bits[w] |= claims[i].cpus.bits[w];
    }
}

static double amount_d(double avail, double min, double pref, int *short_)
{
    if (avail < 0)
        avail = 0;
    double want = pref > 0 && pref > min ? pref : min;
    if (min > avail + CPU_EPS)
        *short_ = 1;
    return want < avail ? want : avail;
}

static uint64_t amount_u(uint64_t cap, uint64_t used, uint64_t min, uint64_t pref, int *short_)
{
    uint64_t avail = used < cap ? cap - used : 0;
    uint64_t want = pref > min ? pref : min;
    if (min > avail)
        *short_ = 1;
    return want < avail ? want : avail;
}

static int node_of(int node) { return node >= 0 && node < LBW_MAX_NODES ? node : 0; }

struct cand {
    unsigned pass, eff, id;
    int node;
    uint32_t core;
    int used;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->pass != y->pass)
        return x->pass < y->pass ? -1 : 1;
    if (x->eff != y->eff)
        return x->eff < y->eff ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int core_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    if (x->core != y->core)
        return x->core < y->core ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The free CPUs, best first: pass 0 one thread (the lowest) of each core
 * with every thread free, pass 1 the other threads of those cores, pass 2
 * the free threads of cores another claim uses; within a pass the faster
 * tier, then the lower id. Returns how many (written to c, which holds
 * t->ncpus). */
static unsigned rank_free(const struct lbw_topo *t, const struct lbw_cpuset *used, struct cand *c)
{
    for (unsigned i = 0; i < t->ncpus; i++)
        c[i] = (struct cand){.eff = t->cpus[i].eff, .id = t->cpus[i].id,
                             .node = node_of(t->cpus[i].node), .core = t->cpus[i].core,
                             .used = lbw_cpuset_has(used, t->cpus[i].id)};
    qsort(c, t->ncpus, sizeof(*c), core_cmp);
    unsigned nc = 0;
    for (unsigned g = 0; g < t->ncpus;) {
        unsigned e = g, busy = 0;
        while (e < t->ncpus && c[e].node == c[g].node && c[e].core == c[g].core)
            busy |= (unsigned)c[e++].used;
        for (unsigned i = g; i < e; i++) {
            if (c[i].used)
                continue;
            struct cand x = c[i];
            x.pass = busy ? 2 : i == g ? 0 : 1;
            c[nc++] = x; /* nc <= i: compaction in place */
        }
        g = e;
    }
    qsort(c, nc, sizeof(*c), cand_cmp);
    return nc;
}

/* What a claim wants of a node besides CPUs, and what each node has free. */
struct node_want {
    uint32_t gpu;
    uint64_t mem;
    unsigned free_gpu[LBW_MAX_NODES];
    uint64_t free_mem[LBW_MAX_NODES];
};

/* Is node a better home than b (-1: none yet)? The GPUs fit, then the
 * memory fits, then the fewest free CPUs (big holes stay whole). */
static int node_better(const struct node_want *w, const unsigned *per_node, int a, int b)
{
    if (b < 0)
        return 1;
    int ga = !w->gpu || w->free_gpu[a] >= w->gpu, gb = !w->gpu || w->free_gpu[b] >= w->gpu;
    if (ga != gb)
        return ga;
    int ma = !w->mem || w->free_mem[a] >= w->mem, mb = !w->mem || w->free_mem[b] >= w->mem;
    if (ma != mb)
        return ma;
    return per_node[a] < per_node[b];
}

/* Picks k free CPUs into out; returns how many were picked. *node_out: the
 * node they are on (the first of several when they do not fit one; with
 * k = 0, the node whose GPUs fit, else -1); *packed: all on that node. */
static unsigned pick_cpus(const struct lbw_topo *t, const struct lbw_cpuset *used, unsigned k,
                          const struct node_want *w, struct lbw_cpuset *out, int *node_out,
                          int *packed)
{
    *node_out = -1;
    *packed = 1;
    if (!k) {
        for (int n = 0; w->gpu && n < LBW_MAX_NODES; n++)
            if (w->free_gpu[n] >= w->gpu &&
                (*node_out < 0 || w->free_gpu[n] < w->free_gpu[*node_out]))
                *node_out = n;
        return 0;
    }
    struct cand *c = malloc(sizeof(*c) * (t->ncpus + 1));
    if (!c)
        return 0;
    unsigned nc = rank_free(t, used, c);
    unsigned per_node[LBW_MAX_NODES] = {0};
    for (unsigned i = 0; i < nc; i++)
        per_node[c[i].node]++;
    int best = -1;
    for (int n = 0; n < LBW_MAX_NODES; n++)
        if (per_node[n] >= k && node_better(w, per_node, n, best))
            best = n;
    unsigned got = 0;
    if (best >= 0) {
        for (unsigned i = 0; i < nc && got < k; i++)
            if (c[i].node == best) {
                lbw_cpuset_set(out, c[i].id);
                got++;
            }
        *node_out = best;
    } else {
        /* spread: nodes by most free first */
        *packed = 0;
        int done[LBW_MAX_NODES] = {0};
        for (int round = 0; round < LBW_MAX_NODES && got < k; round++) {
            int n = -1;
            for (int m = 0; m < LBW_MAX_NODES; m++)
                if (!done[m] && per_node[m] && (n < 0 || per_node[m] > per_node[n]))
                    n = m;
            if (n < 0)
                break;
            done[n] = 1;
            if (*node_out < 0)
                *node_out = n;
            for (unsigned i = 0; i < nc && got < k; i++)
                if (c[i].node == n) {
                    lbw_cpuset_set(out, c[i].id);
                    got++;
                }
        }
    }
    free(c);
    return got;
}

int lbw_alloc_grant(const struct lbw_topo *t, const struct lbw_claim *claims, size_t n,
                    const struct lbw_claim_req *req, struct lbw_claim *out)
{
    struct lbw_usage *u = malloc(sizeof(*u));
    struct node_want *w = calloc(1, sizeof(*w));
    if (!u || !w) {
        free(u);
        free(w);
        return -1;
    }
    lbw_alloc_usage(claims, n, u);
    uint64_t id = out->id;
    int32_t pid = out->pid;
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->pid = pid;
    out->mem_node = -1;
    int s[4] = {0};
    int flags = 0;
    out->cpu = amount_d(t->cpu_cap - u->cpu, req->min_cpu, req->pref_cpu, &s[0]);
    out->mem = amount_u(t->mem_cap, u->mem, req->min_mem, req->pref_mem, &s[1]);
    out->gpu = (uint32_t)amount_u(t->gpu_cap, u->gpu, req->min_gpu, req->pref_gpu, &s[2]);
    out->gmem = amount_u(t->gmem_cap, u->gmem, req->min_gmem, req->pref_gmem, &s[3]);
    for (int i = 0; i < 4; i++)
        flags |= s[i] << i;
    unsigned k = (unsigned)ceil(out->cpu - CPU_EPS);
    if (out->cpu <= CPU_EPS)
        k = 0;
    w->gpu = t->ngpus ? out->gpu : 0;
    w->mem = out->mem;
    for (unsigned i = 0; i < t->ngpus && i < 32; i++)
        if (!(u->gpus & (1u << i)) && t->gpus[i].node >= 0 && t->gpus[i].node < LBW_MAX_NODES)
            w->free_gpu[t->gpus[i].node]++;
    for (int nd = 0; nd < LBW_MAX_NODES; nd++)
        w->free_mem[nd] = t->node_mem[nd] > u->node_mem[nd] ? t->node_mem[nd] - u->node_mem[nd] : 0;
    int packed;
    unsigned got = pick_cpus(t, &u->cpus, k, w, &out->cpus, &out->node, &packed);
    if (got < k)
        flags |= 16;
    /* memory: bound to the node when the claim is on one node and the
     * node's memory not bound by others holds it */
    if (out->mem && out->node >= 0 && packed && w->free_mem[out->node] >= out->mem)
        out->mem_node = out->node;
    /* GPUs: local to the node first, then any */
    unsigned gg = 0;
    for (int pass = 0; pass < 2 && gg < out->gpu; pass++)
        for (unsigned i = 0; i < t->ngpus && i < 32 && gg < out->gpu; i++) {
            uint32_t bit = 1u << i;
            if ((u->gpus | out->gpus) & bit)
                continue;
            if (pass == 0 && (out->node < 0 || t->gpus[i].node != out->node))
                continue;
            out->gpus |= bit;
            gg++;
        }
    if (gg < out->gpu && t->ngpus > 0)
        flags |= 32;
    free(u);
    free(w);
    return flags;
}

int lbw_alloc_check(const struct lbw_topo *t, const struct lbw_claim *claims, size_t n,
                    char *why, size_t whylen)
{
    double cpu = 0;
    uint64_t mem = 0, gmem = 0;
    uint64_t gpu = 0;
    uint32_t gpus = 0;
    struct lbw_cpuset *seen = calloc(1, sizeof(*seen));
    if (!seen)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        cpu += claims[i].cpu;
        mem += claims[i].mem;
        gpu += claims[i].gpu;
        gmem += claims[i].gmem;
        if (gpus & claims[i].gpus) {
            snprintf(why, whylen, "claim %llx: a GPU is already in another claim",
                     (unsigned long long)claims[i].id);
            rc = -1;
        }
        gpus |= claims[i].gpus;
        for (size_t w = 0; w < LBW_MAX_CPUS / 64 && !rc; w++) {
            if (seen->bits[w] & claims[i].cpus.bits[w]) {
                snprintf(why, whylen, "claim %llx: CPU %zu.. is already in another claim",
                         (unsigned long long)claims[i].id, w * 64);
                rc = -1;
            }
            seen->bits[w] |= claims[i].cpus.bits[w];
        }
    }
    free(seen);
    if (rc)
        return rc;
    uint64_t bound[LBW_MAX_NODES] = {0};
    for (size_t i = 0; i < n; i++)
        if (claims[i].mem_node >= 0 && claims[i].mem_node < LBW_MAX_NODES)
            bound[claims[i].mem_node] += claims[i].mem;
    for (int nd = 0; nd < LBW_MAX_NODES; nd++)
        if (t->node_mem[nd] && bound[nd] > t->node_mem[nd]) {
            snprintf(why, whylen, "memory bound to node %d sums above it: %llu/%llu", nd,
                     (unsigned long long)bound[nd], (unsigned long long)t->node_mem[nd]);
            return -1;
        }
    if (cpu > t->cpu_cap + 1e-6 || mem > t->mem_cap || gpu > t->gpu_cap || gmem > t->gmem_cap) {
        snprintf(why, whylen, "claims sum above capacity: cpu %.3f/%.3f mem %llu/%llu gpu %llu/%u",
                 cpu, t->cpu_cap, (unsigned long long)mem, (unsigned long long)t->mem_cap,
                 (unsigned long long)gpu, t->gpu_cap);
        return -1;
    }
    return 0;
}
