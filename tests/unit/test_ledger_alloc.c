/* test_ledger_alloc.c — daemon/ledger_alloc: grants on fixture topologies
 * (2 sockets x 32 cores with SMT, hybrid P/E, 4 GPUs on 2 NUMA nodes, a
 * cpuset-restricted container) and a property test of the invariant over
 * random claims and releases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_alloc.h"
#include "suites.h"

static struct lbw_topo *topo_new(void) { return calloc(1, sizeof(struct lbw_topo)); }

static void add_cpu(struct lbw_topo *t, unsigned id, int node, unsigned core, int eff)
{
    t->cpus[t->ncpus++] = (struct lbw_topo_cpu){.id = (uint16_t)id, .node = (int16_t)node,
                                                .core = core, .eff = (uint8_t)eff};
}

/* 2 sockets x 32 cores, SMT: cpu c (0..63) and its sibling c+64; node = c / 32 */
static struct lbw_topo *two_socket(void)
{
    struct lbw_topo *t = topo_new();
    for (unsigned c = 0; c < 128; c++) {
        unsigned phys = c % 64;
        add_cpu(t, c, (int)(phys / 32), (phys / 32) << 16 | (phys % 32), 0);
    }
    t->cpu_cap = 128;
    t->mem_cap = 256ull << 30;
    for (int g = 0; g < 4; g++) {
        t->gpus[g].node = g < 2 ? 0 : 1;
        snprintf(t->gpus[g].id, sizeof(t->gpus[g].id), "GPU-%d", g);
    }
    t->ngpus = 4;
    t->gpu_cap = 4;
    t->gmem_cap = 4 * (24ull << 30);
    return t;
}

static void fmt(const struct lbw_cpuset *s, char *out, size_t cap) { lbw_cpuset_format(s, out, cap); }

static void test_pack_whole_cores_one_node(void)
{
    struct lbw_topo *t = two_socket();
    struct lbw_claim c[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    struct lbw_claim_req q = {.min_cpu = 8, .min_mem = 16ull << 30};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 0, &q, &c[0]), 0);
    char b[256];
    fmt(&c[0].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "0-7"); /* whole cores, no SMT sibling, one node */
    CU_ASSERT_EQUAL(c[0].node, 0);
    CU_ASSERT_EQUAL(c[0].mem, 16ull << 30);
    /* 30 more: node 0 has 56 free (24 whole cores + siblings), node 1 64;
     * best fit is node 0, whole cores first, then the siblings of free
     * cores (72..), never a sibling of a core the first claim holds (64-71) */
    q = (struct lbw_claim_req){.min_cpu = 30};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 1, &q, &c[1]), 0);
    fmt(&c[1].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "8-31,72-77");
    CU_ASSERT_EQUAL(c[1].node, 0);
    /* with preferred above min, the preferred amount */
    q = (struct lbw_claim_req){.min_cpu = 2, .pref_cpu = 4, .min_gpu = 1};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 2, &q, &c[2]), 0);
    CU_ASSERT_EQUAL(lbw_cpuset_count(&c[2].cpus), 4);
    CU_ASSERT_EQUAL(c[2].gpu, 1);
    char why[200];
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 3, why, sizeof(why)), 0);
    free(t);
}

static void test_gpus_local_to_node(void)
{
    struct lbw_topo *t = two_socket();
    struct lbw_claim c[2] = {{.id = 1}, {.id = 2}};
    /* 40 CPUs do not fit node 0 after nothing... they fit node 0 (64 free):
     * take a claim that fills node 0 first so the next lands on node 1 */
    struct lbw_claim_req q = {.min_cpu = 64, .min_gpu = 1};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 0, &q, &c[0]), 0);
    CU_ASSERT_EQUAL(c[0].node, 0);
    CU_ASSERT(c[0].gpus == 1u); /* GPU 0, on node 0 */
    q = (struct lbw_claim_req){.min_cpu = 4, .min_gpu = 2};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 1, &q, &c[1]), 0);
    CU_ASSERT_EQUAL(c[1].node, 1);
    CU_ASSERT(c[1].gpus == (4u | 8u)); /* GPUs 2 and 3, on node 1 */
    free(t);
}

static void test_hybrid_p_before_e(void)
{
    struct lbw_topo *t = topo_new();
    for (unsigned c = 0; c < 16; c++) /* 8 P cores with SMT: (0,1) (2,3) ... */
        add_cpu(t, c, 0, c / 2, 0);
    for (unsigned c = 16; c < 24; c++) /* 8 E cores */
        add_cpu(t, c, 0, 100 + c, 1);
    t->cpu_cap = 24;
    struct lbw_claim c[2] = {{.id = 1}, {.id = 2}};
    struct lbw_claim_req q = {.min_cpu = 10};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 0, &q, &c[0]), 0);
    char b[128];
    fmt(&c[0].cpus, b, sizeof(b));
    /* 8 P cores (one thread each), then 2 E cores, before any SMT sibling */
    CU_ASSERT_STRING_EQUAL(b, "0,2,4,6,8,10,12,14,16-17");
    free(t);
}

static void test_cpuset_container_and_fraction(void)
{
    struct lbw_topo *t = topo_new();
    unsigned ids[] = {4, 5, 6, 7, 12, 13};
    for (unsigned i = 0; i < 6; i++)
        add_cpu(t, ids[i], 0, ids[i], 0);
    t->cpu_cap = 5.5; /* a quota below the cpuset */
    struct lbw_claim c[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    struct lbw_claim_req q = {.min_cpu = 2.5};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 0, &q, &c[0]), 0);
    CU_ASSERT_DOUBLE_EQUAL(c[0].cpu, 2.5, 1e-9); /* exact amount, pinned to 3 CPUs */
    char b[64];
    fmt(&c[0].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "4-6");
    q = (struct lbw_claim_req){.min_cpu = 2, .pref_cpu = 8};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 1, &q, &c[1]), 0);
    CU_ASSERT_DOUBLE_EQUAL(c[1].cpu, 3.0, 1e-9); /* min(available 3, preferred 8) */
    fmt(&c[1].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "7,12-13");
    /* nothing left: a short grant, nothing pinned, never a double grant */
    q = (struct lbw_claim_req){.min_cpu = 1};
    int f = lbw_alloc_grant(t, c, 2, &q, &c[2]);
    CU_ASSERT(f & 1);
    CU_ASSERT_EQUAL(lbw_cpuset_count(&c[2].cpus), 0);
    CU_ASSERT_DOUBLE_EQUAL(c[2].cpu, 0, 1e-9);
    char why[200];
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 3, why, sizeof(why)), 0);
    free(t);
}

static void test_check_catches_violations(void)
{
    struct lbw_topo *t = two_socket();
    struct lbw_claim c[2] = {{.id = 1, .cpu = 1}, {.id = 2, .cpu = 1}};
    lbw_cpuset_set(&c[0].cpus, 3);
    lbw_cpuset_set(&c[1].cpus, 3);
    char why[200];
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 2, why, sizeof(why)), -1);
    lbw_cpuset_clear(&c[1].cpus);
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 2, why, sizeof(why)), 0);
    c[1].gpus = c[0].gpus = 2;
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 2, why, sizeof(why)), -1);
    c[1].gpus = 0;
    c[1].cpu = 200;
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 2, why, sizeof(why)), -1);
    free(t);
}

/* The invariant over 20,000 random grants and releases (xorshift, fixed seed). */
static void test_property_invariant(void)
{
    struct lbw_topo *t = two_socket();
    t->cpu_cap = 100.5; /* a quota below the 128 CPUs */
    t->node_mem[0] = t->node_mem[1] = 128ull << 30;
    enum { N = 64 };
    struct lbw_claim *c = calloc(N, sizeof(*c));
    size_t n = 0;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned bad = 0;
    for (unsigned step = 0; step < 20000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (n && (n == N || (x & 3) == 0)) {
            size_t k = (size_t)(x >> 8) % n;
            c[k] = c[--n]; /* release */
        } else {
            struct lbw_claim_req q = {
                .min_cpu = (double)((x >> 8) % 40) / 2.0,
                .pref_cpu = (double)((x >> 16) % 50),
                .min_mem = ((x >> 24) % 64) << 30,
                .min_gpu = (uint32_t)((x >> 32) % 3),
                .min_gmem = ((x >> 40) % 30) << 30,
            };
            c[n].id = step;
            lbw_alloc_grant(t, c, n, &q, &c[n]);
            n++;
        }
        char why[200];
        if (lbw_alloc_check(t, c, n, why, sizeof(why)) < 0 && bad++ == 0)
            fprintf(stderr, "step %u: %s\n", step, why);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(c);
    free(t);
}

/* SMT siblings are used once the whole cores run out: a claim of a whole
 * node gets every thread of it; the next one, on a node whose free threads
 * are all siblings of held cores, takes them (sharing cores) before
 * spreading. */
static void test_smt_after_whole_cores(void)
{
    struct lbw_topo *t = two_socket();
    struct lbw_claim c[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    struct lbw_claim_req q = {.min_cpu = 64};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 0, &q, &c[0]), 0);
    char b[256];
    fmt(&c[0].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "0-31,64-95"); /* node 0, both threads of each core */
    q = (struct lbw_claim_req){.min_cpu = 32};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 1, &q, &c[1]), 0);
    fmt(&c[1].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "32-63"); /* one thread of each core of node 1 */
    q = (struct lbw_claim_req){.min_cpu = 4};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 2, &q, &c[2]), 0);
    fmt(&c[2].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "96-99"); /* no whole core left: the siblings */
    char why[200];
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 3, why, sizeof(why)), 0);
    free(t);
}

/* The node is chosen for the GPUs too: node 0 fits the CPUs more tightly,
 * but its GPUs are taken, so a claim with a GPU goes where CPUs and GPU
 * are together. */
static void test_node_for_gpus(void)
{
    struct lbw_topo *t = two_socket();
    struct lbw_claim c[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    struct lbw_claim_req q = {.min_cpu = 4, .min_gpu = 2};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 0, &q, &c[0]), 0);
    CU_ASSERT_EQUAL(c[0].node, 0);
    CU_ASSERT(c[0].gpus == 3u); /* GPUs 0 and 1, node 0's */
    q = (struct lbw_claim_req){.min_cpu = 4, .min_gpu = 1};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 1, &q, &c[1]), 0);
    CU_ASSERT_EQUAL(c[1].node, 1);
    CU_ASSERT(c[1].gpus == 4u); /* GPU 2, on node 1 with the CPUs */
    char b[64];
    fmt(&c[1].cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "32-35");
    /* without GPUs, best fit again: node 0 (fewer free CPUs) */
    q = (struct lbw_claim_req){.min_cpu = 4};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 2, &q, &c[2]), 0);
    CU_ASSERT_EQUAL(c[2].node, 0);
    /* a GPU-only claim goes to the node whose GPUs fit it */
    struct lbw_claim g = {.id = 4};
    q = (struct lbw_claim_req){.min_gpu = 1};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 3, &q, &g), 0);
    CU_ASSERT_EQUAL(g.node, 1);
    CU_ASSERT(g.gpus == 8u);
    free(t);
}

/* Memory is bound to the claim's node when the node's memory not bound by
 * other claims holds it; the node is chosen for the memory after the GPUs;
 * a claim that fits no node's memory is not bound; the check catches a
 * node bound above its memory. */
static void test_memory_node(void)
{
    struct lbw_topo *t = two_socket();
    t->node_mem[0] = t->node_mem[1] = 128ull << 30;
    struct lbw_claim c[4] = {{.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    struct lbw_claim_req q = {.min_cpu = 8, .min_mem = 100ull << 30};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 0, &q, &c[0]), 0);
    CU_ASSERT_EQUAL(c[0].node, 0);
    CU_ASSERT_EQUAL(c[0].mem_node, 0);
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 1, &q, &c[1]), 0);
    CU_ASSERT_EQUAL(c[1].node, 1); /* node 0 fits the CPUs better, node 1 the memory */
    CU_ASSERT_EQUAL(c[1].mem_node, 1);
    q.min_mem = 50ull << 30; /* 28 GiB left on each node */
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 2, &q, &c[2]), 0);
    CU_ASSERT_EQUAL(c[2].mem_node, -1);
    CU_ASSERT_EQUAL(c[2].mem, 50ull << 30); /* granted all the same: the host has it */
    q = (struct lbw_claim_req){.min_cpu = 1}; /* no memory asked: nothing to bind */
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, c, 3, &q, &c[3]), 0);
    CU_ASSERT_EQUAL(c[3].mem_node, -1);
    char why[200];
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 4, why, sizeof(why)), 0);
    c[2].mem_node = 0; /* 150 GiB bound to a node of 128 */
    CU_ASSERT_EQUAL(lbw_alloc_check(t, c, 4, why, sizeof(why)), -1);
    CU_ASSERT(strstr(why, "node 0") != NULL);
    /* a claim spread over both nodes is not bound */
    struct lbw_topo *u = two_socket();
    u->node_mem[0] = u->node_mem[1] = 128ull << 30;
    struct lbw_claim s = {.id = 9};
    q = (struct lbw_claim_req){.min_cpu = 100, .min_mem = 1ull << 30};
    CU_ASSERT_EQUAL(lbw_alloc_grant(u, NULL, 0, &q, &s), 0);
    CU_ASSERT_EQUAL(lbw_cpuset_count(&s.cpus), 100);
    CU_ASSERT_EQUAL(s.mem_node, -1);
    free(u);
    free(t);
}

/* Performance tiers beyond two (Arm big.LITTLE with three capacities):
 * the fastest tier's whole cores first. */
static void test_three_tiers(void)
{
    struct lbw_topo *t = topo_new();
    for (unsigned c = 0; c < 8; c++) /* 0-3 little (tier 2), 4-6 big (1), 7 prime (0) */
        add_cpu(t, c, 0, c, c < 4 ? 2 : c < 7 ? 1 : 0);
    t->cpu_cap = 8;
    struct lbw_claim c = {.id = 1};
    struct lbw_claim_req q = {.min_cpu = 3};
    CU_ASSERT_EQUAL(lbw_alloc_grant(t, NULL, 0, &q, &c), 0);
    char b[64];
    fmt(&c.cpus, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "4-5,7");
    free(t);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The host changing under live claims (CPUs unplugged and back, a cpuset
 * narrowed and widened, a GPU gone): over 20,000 random grants, releases
 * and topology changes, no CPU or GPU is ever in two claims, a grant never
 * names a CPU or GPU the host does not offer at that moment, and a grant
 * never takes more than capacity minus what is held. */
static void test_property_topology_changes(void)
{
    struct lbw_topo *full = two_socket();
    struct lbw_topo *t = malloc(sizeof(*t));
    *t = *full;
    enum { N = 48 };
    struct lbw_claim *c = calloc(N, sizeof(*c));
    struct lbw_usage *u = malloc(sizeof(*u));
    size_t n = 0;
    uint64_t x = 0x2545f4914f6cdd1dull;
    unsigned bad = 0, changes = 0;
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = xorshift(&x);
        if ((r & 63) == 0) { /* the host changes: a random subset of the CPUs and GPUs */
            changes++;
            *t = *full;
            t->ncpus = 0;
            uint64_t keep = xorshift(&x) | 1;
            for (unsigned i = 0; i < full->ncpus; i++)
                if ((keep >> (i % 64)) & 1 || (r >> 8 & 1))
                    t->cpus[t->ncpus++] = full->cpus[i];
            t->cpu_cap = t->ncpus;
            t->ngpus = (unsigned)(r >> 16) % 5;
            t->gpu_cap = t->ngpus;
            continue;
        }
        if (n && (n == N || (r & 3) == 0)) {
            size_t k = (size_t)(r >> 8) % n;
            c[k] = c[--n];
            continue;
        }
        struct lbw_claim_req q = {
            .min_cpu = (double)((r >> 8) % 40) / 2.0,
            .pref_cpu = (double)((r >> 16) % 50),
            .min_gpu = (uint32_t)((r >> 32) % 3),
        };
        lbw_alloc_usage(c, n, u);
        c[n].id = step;
        lbw_alloc_grant(t, c, n, &q, &c[n]);
        struct lbw_claim *g = &c[n++];
        unsigned in = 0;
        for (unsigned i = 0; i < t->ncpus; i++)
            in += lbw_cpuset_has(&g->cpus, t->cpus[i].id) ? 1u : 0u;
        double room = t->cpu_cap - u->cpu;
        if ((in != lbw_cpuset_count(&g->cpus) || (g->gpus >> t->ngpus) ||
             g->cpu > (room > 0 ? room : 0) + 1e-9 || (g->gpu && g->gpu + u->gpu > t->gpu_cap)) &&
            bad++ == 0)
            fprintf(stderr, "step %u: a grant outside what the host offers\n", step);
        /* no CPU or GPU in two claims, whatever the capacity did */
        struct lbw_topo *big = malloc(sizeof(*big));
        *big = *full;
        big->cpu_cap = 1e9;
        big->gpu_cap = 1000;
        char why[200];
        if (lbw_alloc_check(big, c, n, why, sizeof(why)) < 0 && bad++ == 0)
            fprintf(stderr, "step %u: %s\n", step, why);
        free(big);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(changes > 100);
    free(u);
    free(c);
    free(t);
    free(full);
}

static const struct lbw_test tests[] = {
    {"2 sockets x 32 cores: one node, whole cores first", test_pack_whole_cores_one_node},
    {"4 GPUs on 2 nodes: GPUs local to the claim's node", test_gpus_local_to_node},
    {"hybrid: P cores, then E cores, then SMT siblings", test_hybrid_p_before_e},
    {"cpuset container, quota, fractional CPUs, short grant", test_cpuset_container_and_fraction},
    {"the invariant check catches violations", test_check_catches_violations},
    {"property: random grants and releases keep the invariant", test_property_invariant},
    {"2 sockets x 32 cores: SMT siblings once the whole cores run out", test_smt_after_whole_cores},
    {"4 GPUs on 2 nodes: the node is chosen for CPUs and GPUs together", test_node_for_gpus},
    {"memory bound to the claim's node when the node holds it", test_memory_node},
    {"three performance tiers: the fastest whole cores first", test_three_tiers},
    {"property: the host changing under live claims", test_property_topology_changes},
    {NULL, NULL},
};

static int register_ledger_alloc_suites(void)
{
    return lbw_add_suite("ledger_alloc", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_ledger_alloc_suites)
