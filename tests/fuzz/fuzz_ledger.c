/* fuzz_ledger.c — the host ledger's check of one peer record (what other
 * local processes send over the mesh's SOCK_SEQPACKET sockets) on
 * arbitrary bytes: the first byte says which way the record goes (bit 0:
 * to the arbiter), the rest is the record. A record the arbiter accepts is
 * one of the types members send; a claim request it accepts is granted
 * on an empty table and by a table it shares with a re-sent claim without
 * breaking the invariant (lbw_alloc_check), and what is granted passes the
 * check as a re-sent claim; a re-sent claim it accepts is in range and a
 * grant beside it never shares a CPU or GPU with it. A descriptor or
 * snapshot record that passes has printable, terminated strings and fields
 * in range. */
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Field offsets of the record (ledger.c's struct wmsg, host order). */
struct rec {
    uint32_t magic, type;
    uint64_t seq;
    int32_t flags, pad;
    struct lbw_claim_req req;
    struct lbw_claim claim;
    double used_cpu;
    uint64_t used_mem, used_gpu, used_gmem;
    struct lbw_ledger_desc desc;
    struct lbw_topo_gpu gpu;
};

/* A string the check let through: NUL-terminated inside its array, then
 * only zeros, printable ASCII before. */
static void str_ok(const char *p, size_t cap)
{
    size_t i = 0;
    while (i < cap && p[i]) {
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
            abort();
        i++;
    }
    if (i == cap)
        abort();
    for (; i < cap; i++)
        if (p[i])
            abort();
}

static void topo(struct lbw_topo *t)
{
    memset(t, 0, sizeof(*t));
    t->ncpus = 8;
    for (unsigned i = 0; i < t->ncpus; i++) {
        t->cpus[i].id = (uint16_t)(i * 2); /* not every id: a gap to hit */
        t->cpus[i].node = (int16_t)(i / 4);
        t->cpus[i].core = i / 2;
    }
    t->ngpus = 2;
    t->gpus[0].node = 0;
    t->gpus[1].node = -1;
    strcpy(t->gpus[0].id, "0");
    strcpy(t->gpus[1].id, "1");
    t->cpu_cap = 8;
    t->mem_cap = 1ull << 34;
    t->gpu_cap = 2;
    t->gmem_cap = 1ull << 33;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static struct lbw_topo t; /* large: built once */
    if (!t.ncpus)
        topo(&t);
    int to_arbiter = data[0] & 1;
    char err[200] = "";
    int type = lbw_ledger_record_check(&t, to_arbiter, data + 1, size - 1, err, sizeof(err));
    if (type < 0) {
        if (!err[0])
            abort(); /* every refusal says why */
        return 0;
    }
    if (size - 1 != sizeof(struct rec))
        abort();
    struct rec m;
    memcpy(&m, data + 1, sizeof(m));
    if (type != (int)m.type || m.magic != 0x4c424c31u)
        abort();
    if (type == 9 || type == 13) { /* DESC, SNAP_MEMBER with one */
        if (type == 9 || (m.flags & 2)) {
            str_ok(m.desc.listen, sizeof(m.desc.listen));
            str_ok(m.desc.scheduler, sizeof(m.desc.scheduler));
            if (m.desc.role > 2 || m.desc.state >= LBW_MS_LAST || m.desc.progress > 100 ||
                (m.desc.progress < 0 && m.desc.progress != -1) || m.desc.progress != m.desc.progress)
                abort();
        }
    }
    if (type == 12) /* SNAP_GPU */
        str_ok(m.gpu.id, sizeof(m.gpu.id));
    if (!to_arbiter)
        return 0;
    if (type != 1 && type != 2 && type != 3 && type != 4 && type != 6 && type != 9 && type != 10)
        abort(); /* HELLO RESTORE END CLAIM RELEASE DESC QUERY */
    char why[200];
    struct lbw_claim tab[2];
    size_t n = 0;
    if (type == 2) { /* RESTORE: in range (the host may have shrunk since its grant) */
        if (!(m.claim.cpu >= 0 && m.claim.cpu <= LBW_MAX_CPUS) || m.claim.mem > (1ull << 50) ||
            m.claim.gmem > (1ull << 50) || m.claim.gpu > LBW_MAX_GPUS || m.claim.node < -1 ||
            m.claim.node >= LBW_MAX_NODES || m.claim.mem_node < -1 ||
            m.claim.mem_node >= LBW_MAX_NODES)
            abort();
        /* granting next to it never overlaps it */
        tab[n++] = m.claim;
        struct lbw_claim_req q = {.min_cpu = 8, .min_gpu = 2};
        struct lbw_claim g = {0};
        if (lbw_alloc_grant(&t, tab, n, &q, &g) >= 0) {
            tab[n++] = g;
            struct lbw_topo big = t;
            big.cpu_cap = 1e9;
            big.mem_cap = big.gmem_cap = ~0ull;
            big.gpu_cap = ~0u;
            memset(big.node_mem, 0, sizeof(big.node_mem));
            if (lbw_alloc_check(&big, tab, n, why, sizeof(why)) < 0)
                abort();
        }
        return 0;
    }
    if (type != 4)
        return 0;
    for (int round = 0; round < 2; round++) {
        struct lbw_claim g = {0};
        int f = lbw_alloc_grant(&t, tab, n, &m.req, &g);
        if (f < 0)
            return 0;
        tab[n++] = g;
        if (lbw_alloc_check(&t, tab, n, why, sizeof(why)) < 0)
            abort(); /* grants never overlap or exceed the capacity */
        struct rec back;
        memset(&back, 0, sizeof(back));
        back.magic = m.magic;
        back.type = 2;
        back.claim = g;
        if (lbw_ledger_record_check(&t, 1, &back, sizeof(back), err, sizeof(err)) != 2)
            abort(); /* what is granted may be re-sent */
    }
    return 0;
}
