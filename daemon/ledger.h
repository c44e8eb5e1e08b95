/* ledger.h — the host ledger: the workers of one host (one network
 * namespace) agree on which CPUs, memory and GPUs each payload holds.
 *
 * The scheme (docs/ARCHITECTURE.md, "The host ledger"): an arbiter is
 * elected by an exclusive bind of the abstract name
 * "<namespace>/<hwid>" (the kernel keeps one owner and frees the name
 * when it dies); every other worker connects to it. A claim is a request
 * to the arbiter, which grants it from what is free (ledger_alloc.c), so
 * the invariant holds by construction. A worker's claims live as long as
 * its connection: the kernel closes it when the worker dies, and the
 * arbiter drops them. When the arbiter dies, the survivors race for the
 * name; the winner waits (at most 1 s) for every member, each re-sending
 * its own claims, before granting anything. Members are found by their
 * own abstract names "<namespace>/<hwid>/m/<pid>" (unixsock listing).
 *
 * The wire between members is one fixed-size binary record per
 * SOCK_SEQPACKET message (struct in ledger.c), checked field by field:
 * every byte from a peer is untrusted; the claimer's pid comes from
 * SO_PEERCRED, never from the record. Peers are admitted when their uid
 * is ours or root, or their groups include allow_gid. */
#ifndef LBW_LEDGER_H
#define LBW_LEDGER_H

#include <sched.h>
#include <stdint.h>
#include <sys/types.h>

#include "ledger_alloc.h"
#include "reactor.h"

#define LBW_LEDGER_NAMESPACE "lifeblood-worker/ledger"

struct lbw_ledger;

struct lbw_ledger_opts {
    lbw_reactor *r;
    uint64_t hwid;
    const char *ns;          /* name prefix; NULL = LBW_LEDGER_NAMESPACE */
    const struct lbw_topo *topo; /* copied */
    gid_t allow_gid;         /* (gid_t)-1: none */
    /* What the host's claims add up to changed (any member's claim). */
    void (*on_change)(void *ctx);
    void *ctx;
};

/* The host's topology as claims see it: the usable CPUs (with their cores
 * and NUMA nodes, from sysfs under root), the GPUs, and the capacity =
 * the advertised totals (after [resources] overrides). */
struct lbw_resources;
void lbw_ledger_topo_from_host(const struct lbw_host *h, const char *root,
                               const struct lbw_resources *caps, struct lbw_topo *t);

/* Joins (or founds) the host's mesh. NULL with a message on failure. */
struct lbw_ledger *lbw_ledger_open(const struct lbw_ledger_opts *o, char *err, size_t errlen);
void lbw_ledger_close(struct lbw_ledger *l);

/* Claims resources for one payload (synchronous: the arbiter answers in
 * microseconds; at most 2 s when it is being replaced). out->id is set.
 * Returns lbw_alloc_grant's shortfall flags (0 = all granted) or -errno
 * (then nothing is held). */
int lbw_ledger_claim(struct lbw_ledger *l, const struct lbw_claim_req *req,
                     struct lbw_claim *out);
void lbw_ledger_release(struct lbw_ledger *l, uint64_t id);
/* What all live claims on the host add up to, as last heard. */
void lbw_ledger_used(const struct lbw_ledger *l, struct lbw_usage *u);
int lbw_ledger_is_arbiter(const struct lbw_ledger *l);
const struct lbw_topo *lbw_ledger_topo(const struct lbw_ledger *l);

/* The host changed (CPU hot-plug, a cgroup's cpuset or limit, a GPU added
 * or removed: daemon/capacity.c): claims are granted from t from now on,
 * never from CPUs or GPUs that went away. Claims already held stay until
 * released, also on what went away (a WARNING names them; a held GPU
 * that went away leaves its claim's GPU list, its amount stays counted);
 * GPUs are matched by key, so the ones that stay keep their claims.
 * Calls on_change (the arbiter broadcasts the sums first). */
void lbw_ledger_set_topo(struct lbw_ledger *l, const struct lbw_topo *t);

/* Checks one record as received from a peer (n: its length as recv
 * reported it with MSG_TRUNC). to_arbiter: one a member sent the arbiter
 * (HELLO, RESTORE with amounts and nodes in range, END, CLAIM with
 * finite CPU amounts, RELEASE); else one the arbiter sent a member (any known type).
 * Pure. Returns the record's type, or -1 with err saying what is wrong. */
int lbw_ledger_record_check(const struct lbw_topo *t, int to_arbiter, const void *p, size_t n,
                            char *err, size_t errlen);

/* ---- for the worker: one task's claim ----------------------------------------- */

struct lbw_inv;
struct lbw_task_claim {
    int held;
    struct lbw_claim c;
    cpu_set_t *mask;                 /* NULL: no CPUs to pin to (runs unpinned) */
    size_t mask_size;
    int mem_node;                    /* -1: memory not bound to a node */
    unsigned long mem_nodes[LBW_MAX_NODES / (8 * sizeof(unsigned long))]; /* its mask */
    const char *env[8];              /* LIFEBLOOD_CLAIM_*: always set (NULL-ended) */
    const char *env_default[4];      /* *_VISIBLE_DEVICES, ZE_AFFINITY_MASK: unless set */
    char *strs[12];
};

/* Claims what the job requires (PROTOCOL.md 10.2 amounts) and fills the
 * payload's affinity and variables. A claim the ledger cannot grant in
 * full is a WARNING and the task runs with what was granted (fewer or no
 * pinned CPUs; never a CPU or GPU held by another claim). 0, or -errno
 * when nothing is held (the task runs unpinned). */
int lbw_ledger_claim_task(struct lbw_ledger *l, const struct lbw_inv *job, struct lbw_task_claim *tc);
void lbw_ledger_release_task(struct lbw_ledger *l, struct lbw_task_claim *tc);
/* caps with the non-total values lowered by every live claim on the host. */
void lbw_ledger_left(const struct lbw_ledger *l, const struct lbw_resources *caps,
                     struct lbw_resources *out);

#endif
