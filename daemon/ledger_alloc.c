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

struct cand {
    unsigned pass, eff, id;
    int node;
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

/* Is `c` the lowest-numbered CPU of a core whose CPUs are all free? */
static int whole_core_first(const struct lbw_topo *t, const struct lbw_cpuset *used, unsigned i)
{
    for (unsigned j = 0; j < t->ncpus; j++) {
        if (t->cpus[j].core != t->cpus[i].core || t->cpus[j].node != t->cpus[i].node)
            continue;
        if (lbw_cpuset_has(used, t->cpus[j].id))
            return 0;
        if (t->cpus[j].id < t->cpus[i].id)
            return 0;
    }
    return 1;
}

/* Picks k free CPUs into out; returns how many were picked and the node. */
static unsigned pick_cpus(const struct lbw_topo *t, const struct lbw_cpuset *used, unsigned k,
                          struct lbw_cpuset *out, int *node_out)
{
    *node_out = -1;
    if (!k)
        return 0;
    struct cand *c = malloc(sizeof(*c) * (t->ncpus + 1));
    if (!c)
        return 0;
    unsigned nc = 0;
    unsigned per_node[LBW_MAX_NODES] = {0};
    for (unsigned i = 0; i < t->ncpus; i++) {
        if (lbw_cpuset_has(used, t->cpus[i].id))
            continue;
        int nd = t->cpus[i].node >= 0 && t->cpus[i].node < LBW_MAX_NODES ? t->cpus[i].node : 0;
        c[nc++] = (struct cand){.pass = whole_core_first(t, used, i) ? 0 : 1,
                                .eff = t->cpus[i].eff, .id = t->cpus[i].id, .node = nd};
        per_node[nd]++;
    }
    qsort(c, nc, sizeof(*c), cand_cmp);
    /* the node that fits k with the fewest free CPUs (keeps big holes whole) */
    int best = -1;
    for (int n = 0; n < LBW_MAX_NODES; n++)
        if (per_node[n] >= k && (best < 0 || per_node[n] < per_node[best]))
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
    if (!u)
        return -1;
    lbw_alloc_usage(claims, n, u);
    uint64_t id = out->id;
    int32_t pid = out->pid;
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->pid = pid;
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
    unsigned got = pick_cpus(t, &u->cpus, k, &out->cpus, &out->node);
    if (got < k)
        flags |= 16;
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
    if (cpu > t->cpu_cap + 1e-6 || mem > t->mem_cap || gpu > t->gpu_cap || gmem > t->gmem_cap) {
        snprintf(why, whylen, "claims sum above capacity: cpu %.3f/%.3f mem %llu/%llu gpu %llu/%u",
                 cpu, t->cpu_cap, (unsigned long long)mem, (unsigned long long)t->mem_cap,
                 (unsigned long long)gpu, t->gpu_cap);
        return -1;
    }
    return 0;
}
