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
 * is ours or root, or their groups include allow_gid.
 *
 * Members also publish a small descriptor of themselves (role, state,
 * addresses, invocation, progress); `lifeblood-worker status` connects to
 * the arbiter as an observer, admitted the same way, and reads a paged
 * snapshot of the host, the members and the claims. */
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
 * (HELLO, RESTORE with amounts and nodes in range, END, CLAIM with finite
 * CPU amounts, RELEASE, DESC with a valid descriptor, QUERY); else one the
 * arbiter sent a member (any known type; the snapshot's records checked
 * field by field, a claim against t when t is not NULL).
 * Pure. Returns the record's type, or -1 with err saying what is wrong. */
int lbw_ledger_record_check(const struct lbw_topo *t, int to_arbiter, const void *p, size_t n,
                            char *err, size_t errlen);

/* ---- what members say about themselves, and `lifeblood-worker status` ---------- */

enum lbw_ledger_role { LBW_ROLE_UNKNOWN = 0, LBW_ROLE_WORKER = 1, LBW_ROLE_POOL = 2 };
enum lbw_ledger_mstate {
    LBW_MS_NONE = 0,      /* no scheduler session (looking for one) */
    LBW_MS_STARTING,      /* worker.hello in flight */
    LBW_MS_IDLE,
    LBW_MS_BUSY,          /* an invocation is running or being reported */
    LBW_MS_REINTRODUCING,
    LBW_MS_STOPPING,
    LBW_MS_LAST
};
#define LBW_DESC_ADDR_MAX 64
#define LBW_DESC_SCHED_MAX 192
/* A member's descriptor: fixed size; strings NUL-terminated inside their
 * arrays, printable ASCII only (lbw_ledger_record_check). */
struct lbw_ledger_desc {
    uint32_t role;          /* enum lbw_ledger_role */
    uint32_t state;         /* enum lbw_ledger_mstate */
    int64_t invocation_id;  /* -1: none */
    int64_t task_id;        /* -1: none */
    double progress;        /* 0..100; -1: none reported */
    uint64_t started_ns;    /* CLOCK_REALTIME when the invocation started; 0: none */
    char listen[LBW_DESC_ADDR_MAX];     /* where the scheduler reaches it */
    char scheduler[LBW_DESC_SCHED_MAX]; /* its scheduler's address */
};
const char *lbw_ledger_mstate_name(uint32_t state);
/* Publishes (or updates) this member's descriptor to the arbiter; kept
 * and re-sent when the mesh elects a new arbiter. Strings are cut and
 * non-printable bytes replaced as needed. */
void lbw_ledger_publish(struct lbw_ledger *l, const struct lbw_ledger_desc *d);

/* A snapshot of the mesh as its arbiter knows it (status). */
struct lbw_ledger_member {
    pid_t pid;
    int arbiter;
    int have_desc;
    struct lbw_ledger_desc d;
};
struct lbw_ledger_snap {
    char name[128];         /* the arbiter's abstract name */
    pid_t arbiter;
    struct lbw_topo *topo;  /* capacity, CPUs (id, node), GPUs */
    struct lbw_usage used;
    size_t nmembers, nclaims;
    struct lbw_ledger_member *members;
    struct lbw_claim *claims;
};
/* Connects to the arbiter of the mesh under ns (NULL: the default) as an
 * observer; the arbiter admits it as it admits members. Returns the fd,
 * -ENOENT when no worker of that mesh runs in this network namespace, or
 * -errno; name (cap 128) is the arbiter's abstract name. */
int lbw_ledger_observe(const char *ns, char *name, size_t cap);
/* Reads one consistent snapshot over an observer's fd (at most 2 s).
 * 0; -EPERM refused; -EPIPE the arbiter went away; -EPROTO a record that
 * does not check (err says which); -ETIMEDOUT. */
int lbw_ledger_snapshot(int fd, struct lbw_ledger_snap *s, char *err, size_t errlen);
void lbw_ledger_snap_free(struct lbw_ledger_snap *s);
/* Waits (at most timeout_ms) for the arbiter to say the mesh changed:
 * 1 changed, 0 timeout, -EPIPE gone. */
int lbw_ledger_observe_wait(int fd, int timeout_ms);

/* Builds one descriptor or snapshot record as the mesh sends it, from the
 * values given (not checked: tests and fuzzing feed it hostile ones).
 * Returns its size, or -1 when cap is too small or kind unknown. */
enum lbw_ledger_rec_kind {
    LBW_REC_DESC, LBW_REC_SNAP_HEAD, LBW_REC_SNAP_GPU, LBW_REC_SNAP_MEMBER, LBW_REC_SNAP_CLAIM
};
long lbw_ledger_record_build(enum lbw_ledger_rec_kind kind, int32_t flags,
                             const struct lbw_ledger_desc *d, const struct lbw_claim *c,
                             const struct lbw_topo_gpu *g, void *buf, size_t cap);

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
