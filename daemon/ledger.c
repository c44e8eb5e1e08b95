/* ledger.c — the host ledger's mesh: arbiter election, members, claims
 * and their release, takeover with the survivors' claims, members'
 * descriptors and the observers' snapshots for status (see ledger.h). */
#include "ledger.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "invocation.h"
#include "log.h"
#include "text.h"
#include "unixsock.h"

#define MAGIC 0x4c424c31u /* "LBL1" */
#define RECOVERY_NS 1000000000ull
#define REPLY_NS 2000000000ull
#define MAX_CLAIMS 4096   /* live claims on one host, all members together */
#define MAX_OWN 64        /* claims of one member */
#define DRAIN_MAX 256     /* records handled per wake-up of one connection */

enum { M_HELLO = 1, M_RESTORE, M_END, M_CLAIM, M_GRANT, M_RELEASE, M_STATE, M_REFUSED,
       /* descriptors and the status snapshot (seq: the record's index in it;
        * END: seq the snapshot's generation, flags its record count) */
       M_DESC, M_QUERY, M_SNAP_HEAD, M_SNAP_GPU, M_SNAP_MEMBER, M_SNAP_CLAIM, M_SNAP_END,
       M_LAST };
#define SNAP_PAGE 32      /* snapshot records per QUERY */
#define SNAP_TRIES 16     /* pages read again when the mesh changed meanwhile */

/* The record: one per SOCK_SEQPACKET message, fixed size, host order
 * (both ends are on this host). */
struct wmsg {
    uint32_t magic;
    uint32_t type;
    uint64_t seq;     /* the claim's id, chosen by the claimer */
    int32_t flags;    /* GRANT: shortfall flags */
    int32_t pad;
    struct lbw_claim_req req;   /* CLAIM */
    struct lbw_claim claim;     /* RESTORE, GRANT */
    double used_cpu;            /* STATE, SNAP_HEAD: what all claims add up to */
    uint64_t used_mem, used_gpu, used_gmem;
    struct lbw_ledger_desc desc; /* DESC, SNAP_MEMBER */
    struct lbw_topo_gpu gpu;     /* SNAP_GPU */
};

struct conn { /* the arbiter's end of one member */
    struct lbw_ledger *l;
    int fd;
    pid_t pid;
    uint64_t serial; /* owner tag of its claims in the table (0: the arbiter's own) */
    int ready;       /* its claims are all re-sent (END seen) */
    int dead;
    int member;      /* said HELLO (else an observer: status) */
    int have_desc;
    struct lbw_ledger_desc desc;
    struct lbw_op op;
    struct conn *next;
};

struct link { /* a member's connection to the arbiter, or the arbiter's listener */
    struct lbw_ledger *l;
    int fd;
    int dead;
    struct lbw_op op;
};

struct lbw_ledger {
    struct lbw_ledger_opts o;
    struct lbw_topo *topo;
    char name[256], mprefix[256]; /* (too long names fail at bind) */
    int member_fd;
    pid_t self;
    /* arbiter */
    struct link *listener;
    struct conn *conns;
    struct lbw_claim *table;
    uint64_t *owner;  /* table[i] belongs to the connection with this serial */
    size_t n;
    uint64_t serials;
    /* member */
    struct link *link;
    /* both */
    struct lbw_claim own[MAX_OWN];
    size_t nown;
    uint64_t seq;
    struct lbw_usage used;
    struct lbw_ledger_desc desc; /* ours, as published */
    int have_desc;
    uint64_t gen;     /* arbiter: bumped by every change a snapshot shows */
};

static void link_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);
/* The ledger behind a socket's poll, or NULL when the socket was retired
 * while the poll was out (it is released here). */
static struct lbw_ledger *link_live(struct link *k)
{
    if (k->dead || !k->l) {
        close(k->fd);
        free(k);
        return NULL;
    }
    return k->l;
}

static void listen_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);
static void observers_note(struct lbw_ledger *l);
static void conn_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);
static int join(struct lbw_ledger *l);

/* ---- admission ----------------------------------------------------------------- */

static int in_groups(pid_t pid, gid_t g)
{
    char p[64], line[4096];
    snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
    _cleanup_fclose_ FILE *f = fopen(p, "re");
    if (!f)
        return 0;
    for (unsigned i = 0; i < 128 && fgets(line, sizeof(line), f); i++) {
        if (strncmp(line, "Groups:", 7))
            continue;
        char *s = line + 7, *e;
        for (unsigned k = 0; k < 1024; k++) {
            unsigned long v = strtoul(s, &e, 10);
            if (e == s)
                break;
            if ((gid_t)v == g)
                return 1;
            s = e;
        }
        return 0;
    }
    return 0;
}

/* 1 if the process at the other end of fd may join; else one WARNING. */
static int admitted(struct lbw_ledger *l, int fd, pid_t *pid_out, const char *what)
{
    pid_t pid;
    uid_t uid;
    gid_t gid;
    if (lbw_unix_peercred(fd, &pid, &uid, &gid) < 0) {
        LBW_WARN("ledger", "%s: cannot read the peer's credentials: refused", what);
        return 0;
    }
    *pid_out = pid;
    if (uid == getuid() || uid == 0)
        return 1;
    if (l->o.allow_gid != (gid_t)-1 && (gid == l->o.allow_gid || in_groups(pid, l->o.allow_gid)))
        return 1;
    LBW_WARN("ledger", "%s: refused the process %d of uid %u (not our uid, not root, not in "
                       "mesh.allow_group)", what, (int)pid, (unsigned)uid);
    return 0;
}

/* ---- records ------------------------------------------------------------------- */

static int finite_in(double v, double hi) { return isfinite(v) && v >= 0 && v <= hi; }

static int req_valid(const struct lbw_claim_req *q)
{
    return finite_in(q->min_cpu, 1e6) && finite_in(q->pref_cpu, 1e6);
}

/* A claim the arbiter granted us: everything inside the host's topology. */
static int claim_valid(const struct lbw_topo *t, const struct lbw_claim *c)
{
    if (!finite_in(c->cpu, t->cpu_cap + 1e-6) || c->mem > t->mem_cap || c->gpu > t->gpu_cap ||
        c->gmem > t->gmem_cap || c->node < -1 || c->node >= LBW_MAX_NODES ||
        c->mem_node < -1 || c->mem_node >= LBW_MAX_NODES)
        return 0;
    uint32_t gmask = t->ngpus >= 32 ? ~0u : (1u << t->ngpus) - 1;
    if (c->gpus & ~gmask)
        return 0;
    unsigned in = 0;
    for (unsigned i = 0; i < t->ncpus; i++)
        in += lbw_cpuset_has(&c->cpus, t->cpus[i].id) ? 1 : 0;
    return in == lbw_cpuset_count(&c->cpus);
}

/* A claim a member re-sends to a new arbiter. It was granted against the
 * capacity of its time, which may have shrunk since (a CPU unplugged, a
 * cpuset narrowed, a GPU removed: lbw_ledger_set_topo), and it stays until
 * released, so it is not held to today's topology; only to bounds that
 * keep the sums exact (at most MAX_CLAIMS claims of at most 2^50 bytes
 * cannot overflow) and to the record's own ranges. */
static int restored_valid(const struct lbw_claim *c)
{
    return finite_in(c->cpu, LBW_MAX_CPUS) && c->mem <= (1ull << 50) &&
           c->gmem <= (1ull << 50) && c->gpu <= LBW_MAX_GPUS && c->node >= -1 &&
           c->node < LBW_MAX_NODES && c->mem_node >= -1 && c->mem_node < LBW_MAX_NODES;
}

static int send_rec(int fd, const struct wmsg *m, int wait)
{
    uint64_t until = lbw_now_ns() + (wait ? REPLY_NS / 2 : 0);
    for (unsigned i = 0; i < 1000; i++) {
        if (send(fd, m, sizeof(*m), MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(*m))
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        uint64_t now = lbw_now_ns();
        if (!wait || now >= until)
            return -EAGAIN;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, (int)((until - now) / 1000000 + 1));
    }
    return -EAGAIN;
}

static int str_valid(const char *p, size_t cap)
{
    size_t i = 0;
    for (; i < cap && p[i]; i++)
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
            return 0;
    if (i == cap)
        return 0;
    for (; i < cap; i++) /* the rest is zero: nothing hidden after the end */
        if (p[i])
            return 0;
    return 1;
}

static int desc_valid(const struct lbw_ledger_desc *d)
{
    return d->role <= LBW_ROLE_POOL && d->state < LBW_MS_LAST && d->invocation_id >= -1 &&
           d->task_id >= -1 && isfinite(d->progress) &&
           (d->progress == -1 || (d->progress >= 0 && d->progress <= 100)) &&
           d->started_ns < (1ull << 62) && str_valid(d->listen, sizeof(d->listen)) &&
           str_valid(d->scheduler, sizeof(d->scheduler));
}

/* A record the arbiter sent an observer or a member. t: the host as the
 * snapshot's head described it (NULL before it). */
static int snap_check(const struct lbw_topo *t, const struct wmsg *m, char *err, size_t errlen)
{
    const char *bad = NULL;
    switch (m->type) {
    case M_SNAP_HEAD:
        if (!finite_in(m->claim.cpu, 1e6) || !finite_in(m->used_cpu, 1e6) ||
            m->flags < 0 || m->flags > LBW_MAX_GPUS || m->claim.pid <= 0)
            bad = "a snapshot head with a capacity, usage, GPU count or pid out of range";
        break;
    case M_SNAP_GPU:
        if (m->flags < 0 || m->flags >= LBW_MAX_GPUS || m->gpu.node < -1 ||
            m->gpu.node >= LBW_MAX_NODES || m->gpu.vendor < 0 || m->gpu.vendor > 3 ||
            !str_valid(m->gpu.id, sizeof(m->gpu.id)))
            bad = "a snapshot GPU with an index, node, vendor or id out of range";
        break;
    case M_SNAP_MEMBER:
        if (m->claim.pid <= 0 || m->flags < 0 || m->flags > 3 ||
            ((m->flags & 2) && !desc_valid(&m->desc)))
            bad = "a snapshot member with a bad pid or descriptor";
        break;
    case M_SNAP_CLAIM:
        if (m->claim.pid <= 0 || (t && !claim_valid(t, &m->claim)) ||
            (!t && !finite_in(m->claim.cpu, 1e6)))
            bad = "a snapshot claim outside the host's CPUs, GPUs or capacity";
        break;
    case M_SNAP_END:
        if (m->flags < 0)
            bad = "a snapshot end with a negative count";
        break;
    case M_DESC:
    case M_QUERY:
        bad = "a record only members send";
        break;
    default:
        break;
    }
    if (bad) {
        snprintf(err, errlen, "%s", bad);
        return -1;
    }
    return (int)m->type;
}

int lbw_ledger_record_check(const struct lbw_topo *t, int to_arbiter, const void *p, size_t n,
                            char *err, size_t errlen)
{
    struct wmsg m;
    if (n != sizeof(m)) {
        snprintf(err, errlen, "a record of %zu bytes (the ledger's are %zu)", n, sizeof(m));
        return -1;
    }
    memcpy(&m, p, sizeof(m));
    if (m.magic != MAGIC || m.type >= M_LAST) {
        snprintf(err, errlen, "not the ledger's magic or record type");
        return -1;
    }
    if (!to_arbiter) /* the arbiter's own: a GRANT's claim is checked by the claimer */
        return snap_check(t, &m, err, errlen);
    switch (m.type) {
    case M_DESC:
        if (desc_valid(&m.desc))
            return (int)m.type;
        snprintf(err, errlen, "a descriptor with an unknown role or state, progress outside "
                              "0..100, or a string not NUL-terminated printable ASCII");
        return -1;
    case M_QUERY:
    case M_HELLO:
    case M_END:
    case M_RELEASE:
        return (int)m.type;
    case M_RESTORE:
        if (restored_valid(&m.claim))
            return (int)m.type;
        snprintf(err, errlen, "a re-sent claim with amounts or nodes out of range");
        return -1;
    case M_CLAIM:
        if (req_valid(&m.req))
            return (int)m.type;
        snprintf(err, errlen, "a claim request whose CPU amounts are not finite in 0..1e6");
        return -1;
    default:
        snprintf(err, errlen, "record type %u is not sent to the arbiter", (unsigned)m.type);
        return -1;
    }
}

static void rec_init(struct wmsg *m, uint32_t type)
{
    memset(m, 0, sizeof(*m));
    m->magic = MAGIC;
    m->type = type;
}

/* ---- the arbiter's table ------------------------------------------------------- */

static void table_remove_at(struct lbw_ledger *l, size_t i)
{
    l->n--;
    l->table[i] = l->table[l->n];
    l->owner[i] = l->owner[l->n];
}

/* Claims are keyed by (connection, id): a member that reconnects has its
 * old connection's claims dropped with that connection, never its new ones. */
static int table_add(struct lbw_ledger *l, uint64_t owner, const struct lbw_claim *c)
{
    size_t mine = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->owner[i] != owner)
            continue;
        if (l->table[i].id == c->id) {
            l->table[i] = *c;
            return 0;
        }
        mine++;
    }
    if (l->n >= MAX_CLAIMS || mine >= MAX_OWN) /* one member cannot fill the table */
        return -ENOSPC;
    l->owner[l->n] = owner;
    l->table[l->n++] = *c;
    return 0;
}

static void state_rec(struct wmsg *m, const struct lbw_usage *u)
{
    rec_init(m, M_STATE);
    m->used_cpu = u->cpu;
    m->used_mem = u->mem;
    m->used_gpu = u->gpu;
    m->used_gmem = u->gmem;
}

/* The current sums to every connection (observers_only: to the status
 * observers), without waiting: one that does not read misses one state;
 * the next one is complete. A change of what a snapshot shows. */
static void send_state(struct lbw_ledger *l, int observers_only)
{
    l->gen++;
    struct wmsg m;
    state_rec(&m, &l->used);
    for (struct conn *c = l->conns; c; c = c->next)
        if (!c->dead && (!observers_only || !c->member))
            send_rec(c->fd, &m, 0);
}

static void broadcast(struct lbw_ledger *l)
{
    lbw_alloc_usage(l->table, l->n, &l->used);
    send_state(l, 0);
    if (l->o.on_change)
        l->o.on_change(l->o.ctx);
}

static void conn_drop(struct lbw_ledger *l, struct conn *c, int announce)
{
    if (c->dead)
        return;
    c->dead = 1;
    size_t before = l->n;
    for (size_t i = l->n; i-- > 0;)
        if (l->owner[i] == c->serial)
            table_remove_at(l, i);
    for (struct conn **p = &l->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    c->l = NULL;
    if (lbw_cancel(l->o.r, &c->op) < 0) { /* not pending: we are in its callback */
        close(c->fd);
        c->fd = -1;
    }
    if (announce && before != l->n)
        broadcast(l);
    else if (announce && c->member)
        observers_note(l);
}

/* ---- descriptors and snapshots (status) ----------------------------------------- */

/* Tells the observers that what a snapshot shows changed (they ask again). */
static void observers_note(struct lbw_ledger *l) { send_state(l, 1); }

/* Fills snapshot record i (0 head, GPUs, members: us first, claims); 0,
 * or -1 past the end. Linear in the members at most. */
static int snap_rec(struct lbw_ledger *l, size_t i, struct wmsg *m)
{
    const struct lbw_topo *t = l->topo;
    size_t k = i;
    if (k == 0) {
        state_rec(m, &l->used); /* the sums, as a STATE carries them */
        m->type = M_SNAP_HEAD;
        m->claim.pid = l->self;
        m->claim.cpu = t->cpu_cap;
        m->claim.mem = t->mem_cap;
        m->claim.gpu = t->gpu_cap;
        m->claim.gmem = t->gmem_cap;
        m->claim.node = -1;
        for (unsigned c = 0; c < t->ncpus; c++)
            lbw_cpuset_set(&m->claim.cpus, t->cpus[c].id);
        m->flags = (int32_t)t->ngpus;
        m->seq = i;
        return 0;
    }
    k--;
    if (k < t->ngpus) {
        rec_init(m, M_SNAP_GPU);
        m->flags = (int32_t)k;
        m->gpu = t->gpus[k];
        m->seq = i;
        return 0;
    }
    k -= t->ngpus;
    rec_init(m, M_SNAP_MEMBER);
    m->seq = i;
    if (k == 0) {
        m->claim.pid = l->self;
        m->flags = 1 | (l->have_desc ? 2 : 0);
        m->desc = l->desc;
        return 0;
    }
    k--;
    for (struct conn *c = l->conns; c; c = c->next) {
        if (c->dead || !c->member)
            continue;
        if (k-- == 0) {
            m->claim.pid = c->pid;
            m->flags = c->have_desc ? 2 : 0;
            m->desc = c->desc;
            return 0;
        }
    }
    if (k < l->n) { /* (k: less the members walked) */
        rec_init(m, M_SNAP_CLAIM);
        m->seq = i;
        m->claim = l->table[k];
        return 0;
    }
    return -1;
}

static size_t snap_count(const struct lbw_ledger *l)
{
    size_t members = 1;
    for (struct conn *c = l->conns; c; c = c->next)
        members += !c->dead && c->member;
    return 1 + l->topo->ngpus + members + l->n;
}

/* DESC from a member, QUERY from an observer (a page of the snapshot,
 * sent without waiting: an observer that does not read is dropped). */
static int snap_handle(struct lbw_ledger *l, struct conn *c, const struct wmsg *m)
{
    if (m->type == M_DESC) {
        c->desc = m->desc; /* checked by lbw_ledger_record_check */
        c->have_desc = 1;
        observers_note(l);
        return 0;
    }
    size_t total = snap_count(l);
    struct wmsg out;
    for (size_t i = m->seq, k = 0; i < total && k < SNAP_PAGE; i++, k++) {
        if (snap_rec(l, i, &out) < 0)
            break;
        if (send_rec(c->fd, &out, 0) < 0)
            return -2;
    }
    rec_init(&out, M_SNAP_END);
    out.seq = l->gen;
    out.flags = total > INT32_MAX ? INT32_MAX : (int32_t)total;
    return send_rec(c->fd, &out, 0) < 0 ? -2 : 0;
}

/* Handles one record from member c. 0, or -1: protocol error (drop it). */
static int conn_handle(struct lbw_ledger *l, struct conn *c, const struct wmsg *m)
{
    struct wmsg out;
    switch (m->type) {
    case M_HELLO:
        c->member = 1;
        return 0;
    case M_DESC:
    case M_QUERY:
        return snap_handle(l, c, m);
    case M_END: { /* admitted and complete: it hears the state at once */
        c->ready = 1;
        struct lbw_usage u;
        lbw_alloc_usage(l->table, l->n, &u);
        state_rec(&out, &u);
        return send_rec(c->fd, &out, 1) < 0 ? -2 : 0;
    }
    case M_RESTORE: {
        struct lbw_claim cl = m->claim; /* checked by lbw_ledger_record_check */
        cl.pid = c->pid;
        if (table_add(l, c->serial, &cl) < 0)
            return -1;
        char why[200];
        if (lbw_alloc_check(l->topo, l->table, l->n, why, sizeof(why)) < 0)
            LBW_WARN("ledger", "the claim process %d re-sent overlaps another (%s); kept, "
                               "its payload is running", (int)c->pid, why);
        return 0;
    }
    case M_CLAIM: { /* the request is checked by lbw_ledger_record_check */
        rec_init(&out, M_GRANT);
        out.seq = m->seq;
        out.claim.id = m->seq;
        out.claim.pid = c->pid;
        int f = lbw_alloc_grant(l->topo, l->table, l->n, &m->req, &out.claim);
        if (f < 0 || table_add(l, c->serial, &out.claim) < 0) {
            memset(&out.claim, 0, sizeof(out.claim));
            out.flags = -ENOMEM;
        } else {
            out.flags = f;
        }
        if (send_rec(c->fd, &out, 1) < 0)
            return -2; /* it stopped reading or went away: its claims go */
        broadcast(l);
        return 0;
    }
    case M_RELEASE:
        for (size_t i = 0; i < l->n; i++)
            if (l->owner[i] == c->serial && l->table[i].id == m->seq) {
                table_remove_at(l, i);
                broadcast(l);
                break;
            }
        return 0;
    default:
        return -1;
    }
}

/* Reads what c has sent. 0 while it lives; -1 when it was dropped. */
static int conn_drain(struct lbw_ledger *l, struct conn *c, int announce)
{
    struct wmsg m;
    for (unsigned i = 0; i < DRAIN_MAX; i++) {
        ssize_t n = recv(c->fd, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n == 0 || n < 0) {
            conn_drop(l, c, announce);
            return -1;
        }
        int h = lbw_ledger_record_check(l->topo, 1, &m, (size_t)n, NULL, 0) >= 0
                    ? conn_handle(l, c, &m) : -1;
        if (h == -2) {
            conn_drop(l, c, announce);
            return -1;
        }
        if (h < 0) {
            LBW_WARN("ledger", "process %d sent a record that is not the ledger's: "
                               "disconnected (its claims are released)", (int)c->pid);
            conn_drop(l, c, announce);
            return -1;
        }
    }
    return 0;
}

static void conn_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct conn *c = op->user;
    if (c->dead || !c->l) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return;
    }
    struct lbw_ledger *l = c->l;
    if (res < 0 && res != -EINTR) {
        conn_drop(l, c, 1);
        close(c->fd);
        free(c);
        return;
    }
    if (conn_drain(l, c, 1) < 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return;
    }
    lbw_poll(r, &c->op, c->fd, POLLIN, conn_cb);
}

static struct conn *accept_one(struct lbw_ledger *l)
{
    int fd = -1;
    pid_t pid = 0;
    for (unsigned i = 0; i < 64 && fd < 0; i++) {
        fd = accept4(l->listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return NULL;
        if (!admitted(l, fd, &pid, "ledger connection")) {
            struct wmsg no; /* says so, so that it is not taken for the arbiter's death */
            rec_init(&no, M_REFUSED);
            send_rec(fd, &no, 0);
            /* what it sent is read first: closing on unread records would
             * reset the connection and lose the refusal */
            for (unsigned k = 0; k < 64 && recv(fd, &no, sizeof(no), MSG_DONTWAIT) > 0; k++)
                ;
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        return NULL;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->l = l;
    c->fd = fd;
    c->pid = pid;
    c->serial = ++l->serials;
    c->op.user = c;
    c->next = l->conns;
    l->conns = c;
    return c;
}

static void listen_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct link *k = op->user;
    struct lbw_ledger *l = link_live(k);
    if (!l)
        return;
    for (unsigned i = 0; i < 64; i++) {
        struct conn *c = accept_one(l);
        if (!c)
            break;
        if (conn_drain(l, c, 1) == 0)
            lbw_poll(r, &c->op, c->fd, POLLIN, conn_cb);
        else
            free(c); /* dropped before it was ever polled */
    }
    lbw_poll(r, &k->op, k->fd, POLLIN, listen_cb);
}

/* ---- election and takeover ----------------------------------------------------- */

struct pending {
    struct lbw_ledger *l;
    int waiting;
};

static void member_seen(void *ctx, const char *name)
{
    struct pending *p = ctx;
    size_t pl = strlen(p->l->mprefix);
    char *e;
    long pid = strtol(name + pl, &e, 10);
    if (*e || pid <= 0 || pid == p->l->self)
        return;
    for (struct conn *c = p->l->conns; c; c = c->next)
        if (c->pid == pid && c->ready)
            return;
    p->waiting++;
}

/* Tries to become the arbiter: 1 = the name is held by another, 0 = we
 * are the arbiter (the members' claims gathered), -errno. */
static int try_arbiter(struct lbw_ledger *l)
{
    int fd = lbw_unix_listen(l->name, SOCK_SEQPACKET, 256);
    if (fd == -EADDRINUSE)
        return 1;
    if (fd < 0)
        return fd;
    struct link *k = calloc(1, sizeof(*k));
    if (!l->table)
        l->table = calloc(MAX_CLAIMS, sizeof(*l->table));
    if (!l->owner)
        l->owner = calloc(MAX_CLAIMS, sizeof(*l->owner));
    if (!k || !l->table || !l->owner) {
        free(k);
        close(fd);
        return -ENOMEM;
    }
    k->l = l;
    k->fd = fd;
    k->op.user = k;
    l->listener = k;
    l->n = 0;
    for (size_t i = 0; i < l->nown; i++)
        table_add(l, 0, &l->own[i]);
    /* the members: each re-sends its claims, then END */
    uint64_t until = lbw_now_ns() + RECOVERY_NS;
    int waiting = 0;
    for (unsigned round = 0; round < 1000; round++) {
        struct conn *c;
        while ((c = accept_one(l)))
            ;
        for (struct conn *x = l->conns, *nx; x; x = nx) {
            nx = x->next;
            if (conn_drain(l, x, 0) < 0)
                free(x);
        }
        struct pending p = {.l = l};
        lbw_unix_list(l->mprefix, member_seen, &p);
        waiting = p.waiting;
        if (!waiting || lbw_now_ns() >= until)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        poll(&pf, 1, 5);
    }
    if (waiting)
        LBW_WARN("ledger", "%d member(s) of the host's mesh did not re-send their claims within "
                           "1 s; they are taken as they come", waiting);
    for (struct conn *x = l->conns; x; x = x->next)
        lbw_poll(l->o.r, &x->op, x->fd, POLLIN, conn_cb);
    lbw_poll(l->o.r, &k->op, fd, POLLIN, listen_cb);
    broadcast(l);
    return 0;
}

static void link_retire(struct lbw_ledger *l)
{
    struct link *k = l->link;
    if (!k)
        return;
    l->link = NULL;
    k->dead = 1;
    k->l = NULL;
    if (lbw_cancel(l->o.r, &k->op) < 0) {
        close(k->fd);
        free(k);
    }
}

/* Reads what the arbiter sent. seq != 0: stops at that GRANT (copied to
 * *grant). Returns 1 grant seen, 0 nothing more now, -1 the arbiter is gone. */
static int link_drain(struct lbw_ledger *l, uint64_t seq, struct wmsg *grant)
{
    struct wmsg m;
    for (unsigned i = 0; i < DRAIN_MAX; i++) {
        ssize_t n = recv(l->link->fd, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0)
            return -1;
        if (lbw_ledger_record_check(l->topo, 0, &m, (size_t)n, NULL, 0) < 0)
            return -1; /* not the ledger: leave it */
        if (m.type == M_REFUSED)
            return -2;
        if (m.type == M_STATE) {
            l->used.cpu = isfinite(m.used_cpu) ? m.used_cpu : 0;
            l->used.mem = m.used_mem;
            l->used.gpu = (uint32_t)m.used_gpu;
            l->used.gmem = m.used_gmem;
            if (l->o.on_change)
                l->o.on_change(l->o.ctx);
        } else if (m.type == M_GRANT && seq && m.seq == seq) {
            *grant = m;
            return 1;
        }
    }
    return 0;
}

static void link_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct link *k = op->user;
    struct lbw_ledger *l = link_live(k);
    if (!l)
        return;
    if (res >= 0 && link_drain(l, 0, NULL) >= 0) {
        lbw_poll(r, &k->op, k->fd, POLLIN, link_cb);
        return;
    }
    /* the arbiter is gone: the survivors race for its name */
    l->link = NULL;
    close(k->fd);
    free(k);
    LBW_INFO("ledger", "the host ledger's arbiter is gone; electing a new one");
    if (join(l) < 0)
        LBW_WARN("ledger", "cannot rejoin the host's mesh: claims are kept locally only");
}

/* Finds the arbiter or becomes it. 0 or -errno. */
static int join(struct lbw_ledger *l)
{
    for (unsigned tries = 0; tries < 200; tries++) {
        int rc = try_arbiter(l);
        if (rc <= 0)
            return rc;
        int fd = lbw_unix_connect(l->name, SOCK_SEQPACKET);
        if (fd == -ECONNREFUSED || fd == -ENOENT) { /* bound, not yet listening; or gone */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (fd < 0)
            return fd;
        pid_t pid;
        if (!admitted(l, fd, &pid, "ledger arbiter")) {
            close(fd);
            return -EPERM;
        }
        struct wmsg m;
        rec_init(&m, M_HELLO);
        int bad = send_rec(fd, &m, 1) < 0;
        if (l->have_desc && !bad) {
            rec_init(&m, M_DESC);
            m.desc = l->desc;
            bad = send_rec(fd, &m, 1) < 0;
        }
        for (size_t i = 0; i < l->nown && !bad; i++) {
            rec_init(&m, M_RESTORE);
            m.claim = l->own[i];
            bad = send_rec(fd, &m, 1) < 0;
        }
        rec_init(&m, M_END);
        if (bad || send_rec(fd, &m, 1) < 0) {
            close(fd);
            continue; /* it died meanwhile: race again */
        }
        struct link *k = calloc(1, sizeof(*k));
        if (!k) {
            close(fd);
            return -ENOMEM;
        }
        k->l = l;
        k->fd = fd;
        k->op.user = k;
        l->link = k;
        /* the arbiter answers END with the state; a close instead is a refusal
         * (or its death: then race again) */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ok = poll(&p, 1, (int)(REPLY_NS / 1000000)) == 1 ? link_drain(l, 0, NULL) : 0;
        if (ok < 0) {
            l->link = NULL;
            close(fd);
            free(k);
            if (ok != -2)
                continue; /* it died (or closed before accepting us): race again */
            LBW_WARN("ledger", "the host ledger's arbiter (process %d) refused us: it does not "
                               "admit this user (mesh.allow_group)", (int)pid);
            return -EPERM;
        }
        lbw_poll(l->o.r, &k->op, fd, POLLIN, link_cb);
        return 0;
    }
    return -EAGAIN;
}

/* ---- the API ------------------------------------------------------------------- */

struct lbw_ledger *lbw_ledger_open(const struct lbw_ledger_opts *o, char *err, size_t errlen)
{
    struct lbw_ledger *l = calloc(1, sizeof(*l));
    if (!l || !(l->topo = malloc(sizeof(*l->topo)))) {
        free(l);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->o = *o;
    *l->topo = *o->topo;
    l->self = getpid();
    l->member_fd = -1;
    const char *ns = o->ns && *o->ns ? o->ns : LBW_LEDGER_NAMESPACE;
    if (strlen(ns) > 64) {
        snprintf(err, errlen, "the ledger's namespace \"%.64s...\" is longer than 64 bytes", ns);
        lbw_ledger_close(l);
        return NULL;
    }
    snprintf(l->name, sizeof(l->name), "%s/%llx", ns, (unsigned long long)o->hwid);
    snprintf(l->mprefix, sizeof(l->mprefix), "%s/%llx/m/", ns, (unsigned long long)o->hwid);
    char mname[300];
    snprintf(mname, sizeof(mname), "%s%d", l->mprefix, (int)l->self);
    l->member_fd = lbw_unix_listen(mname, SOCK_SEQPACKET, 1);
    if (l->member_fd < 0) {
        snprintf(err, errlen, "cannot bind the abstract name @%s: %s", mname,
                 strerror(-l->member_fd));
        lbw_ledger_close(l);
        return NULL;
    }
    int rc = join(l);
    if (rc < 0) {
        snprintf(err, errlen, "cannot join the host's ledger @%s: %s", l->name,
                 rc == -EPERM ? "the arbiter and this worker do not admit each other's users"
                              : strerror(-rc));
        lbw_ledger_close(l);
        return NULL;
    }
    return l;
}

void lbw_ledger_close(struct lbw_ledger *l)
{
    if (!l)
        return;
    link_retire(l);
    while (l->conns) {
        struct conn *c = l->conns;
        l->conns = c->next;
        c->dead = 1;
        c->l = NULL;
        if (lbw_cancel(l->o.r, &c->op) < 0) {
            close(c->fd);
            free(c);
        }
    }
    if (l->listener) {
        struct link *k = l->listener;
        k->dead = 1;
        k->l = NULL;
        if (lbw_cancel(l->o.r, &k->op) < 0) {
            close(k->fd);
            free(k);
        }
    }
    if (l->member_fd >= 0)
        close(l->member_fd);
    free(l->table);
    free(l->owner);
    free(l->topo);
    free(l);
}

int lbw_ledger_is_arbiter(const struct lbw_ledger *l) { return l->listener != NULL; }
const struct lbw_topo *lbw_ledger_topo(const struct lbw_ledger *l) { return l->topo; }
void lbw_ledger_used(const struct lbw_ledger *l, struct lbw_usage *u) { *u = l->used; }

static int own_add(struct lbw_ledger *l, const struct lbw_claim *c)
{
    if (l->nown >= MAX_OWN)
        return -ENOSPC;
    l->own[l->nown++] = *c;
    return 0;
}

int lbw_ledger_claim(struct lbw_ledger *l, const struct lbw_claim_req *req, struct lbw_claim *out)
{
    if (!req_valid(req) || l->nown >= MAX_OWN)
        return -EINVAL;
    uint64_t seq = ++l->seq;
    for (unsigned attempt = 0; attempt < 3; attempt++) {
        if (l->listener || !l->link) { /* the arbiter (or alone): grant here */
            struct lbw_claim *tab = l->listener ? l->table : l->own;
            size_t n = l->listener ? l->n : l->nown;
            memset(out, 0, sizeof(*out));
            out->id = seq;
            out->pid = l->self;
            int f = lbw_alloc_grant(l->topo, tab, n, req, out);
            if (f < 0)
                return -ENOMEM;
            own_add(l, out);
            if (l->listener) {
                table_add(l, 0, out);
                broadcast(l);
            } else {
                lbw_alloc_usage(l->own, l->nown, &l->used);
            }
            return f;
        }
        struct wmsg m, g;
        rec_init(&m, M_CLAIM);
        m.seq = seq;
        m.req = *req;
        int got = -1;
        if (send_rec(l->link->fd, &m, 1) == 0) {
            uint64_t until = lbw_now_ns() + REPLY_NS;
            for (unsigned i = 0; i < 10000; i++) {
                got = link_drain(l, seq, &g);
                if (got != 0)
                    break;
                uint64_t now = lbw_now_ns();
                if (now >= until) {
                    got = -1;
                    break;
                }
                struct pollfd p = {.fd = l->link->fd, .events = POLLIN};
                poll(&p, 1, (int)((until - now) / 1000000 + 1));
            }
        }
        if (got == 1) {
            if (g.flags < 0)
                return g.flags;
            *out = g.claim;
            out->id = seq;
            out->pid = l->self;
            if (!claim_valid(l->topo, out)) {
                lbw_ledger_release(l, seq);
                return -EPROTO;
            }
            own_add(l, out);
            return g.flags;
        }
        /* the arbiter did not answer: elect again, then ask the new one */
        link_retire(l);
        if (join(l) < 0)
            LBW_WARN("ledger", "cannot rejoin the host's mesh: claims are kept locally only");
    }
    return -EAGAIN;
}

void lbw_ledger_release(struct lbw_ledger *l, uint64_t id)
{
    for (size_t i = 0; i < l->nown; i++)
        if (l->own[i].id == id) {
            l->own[i] = l->own[--l->nown];
            break;
        }
    if (l->listener) {
        for (size_t i = 0; i < l->n; i++)
            if (l->owner[i] == 0 && l->table[i].id == id) {
                table_remove_at(l, i);
                broadcast(l);
                break;
            }
    } else if (l->link) {
        struct wmsg m;
        rec_init(&m, M_RELEASE);
        m.seq = id;
        send_rec(l->link->fd, &m, 1); /* lost only with the arbiter, whose claims go too */
    } else {
        lbw_alloc_usage(l->own, l->nown, &l->used);
    }
}

/* ---- capacity changes (lbw_ledger_set_topo) ---------------------------------- */

/* GPU slot i of `from` -> its slot in `to` by key, -1 when it went away.
 * One to one: GPUs whose keys are equal (no PCI bus id, the same index of
 * two vendors) go to distinct slots, in order, never two to one. */
static void gpu_remap(const struct lbw_topo *from, const struct lbw_topo *to, int *map)
{
    unsigned char taken[LBW_MAX_GPUS] = {0};
    for (unsigned i = 0; i < LBW_MAX_GPUS; i++) {
        map[i] = -1;
        for (unsigned j = 0; i < from->ngpus && j < to->ngpus && map[i] < 0; j++)
            if (!taken[j] && !strcmp(from->gpus[i].key, to->gpus[j].key)) {
                map[i] = (int)j;
                taken[j] = 1;
            }
    }
}

/* Re-indexes one claim's GPUs; says what it holds that the host no longer
 * has. */
static void claim_follow(struct lbw_claim *c, const struct lbw_topo *t, const int *map)
{
    uint32_t gpus = 0, lost = 0;
    for (unsigned i = 0; i < 32; i++)
        if (c->gpus & (1u << i)) {
            if (map[i] >= 0 && map[i] < 32)
                gpus |= 1u << map[i];
            else
                lost |= 1u << i;
        }
    c->gpus = gpus;
    struct lbw_cpuset gone = c->cpus;
    for (unsigned i = 0; i < t->ncpus; i++)
        if (lbw_cpuset_has(&gone, t->cpus[i].id))
            gone.bits[t->cpus[i].id / 64] &= ~(1ull << (t->cpus[i].id % 64));
    if (!lost && !lbw_cpuset_count(&gone))
        return;
    char what[300] = "";
    if (lbw_cpuset_count(&gone)) {
        char cpus[256];
        lbw_cpuset_format(&gone, cpus, sizeof(cpus));
        snprintf(what, sizeof(what), "CPUs %s%s", cpus, lost ? " and " : "");
    }
    LBW_WARN("ledger", "claim %llx of process %d holds %s%s that the host no longer offers; "
                       "it keeps its amounts until it is released",
             (unsigned long long)c->id, (int)c->pid, what, lost ? "GPUs" : "");
}

void lbw_ledger_set_topo(struct lbw_ledger *l, const struct lbw_topo *t)
{
    int map[LBW_MAX_GPUS];
    gpu_remap(l->topo, t, map);
    for (size_t i = 0; i < l->nown; i++)
        claim_follow(&l->own[i], t, map);
    if (l->listener) /* the arbiter: every claim on the host; its own are in both */
        for (size_t i = 0; i < l->n; i++) {
            if (l->owner[i] == 0)
                l->table[i].gpus = 0; /* re-set from own[] below, warned about once */
            else
                claim_follow(&l->table[i], t, map);
        }
    for (size_t i = 0; l->listener && i < l->n; i++)
        for (size_t k = 0; l->owner[i] == 0 && k < l->nown; k++)
            if (l->own[k].id == l->table[i].id)
                l->table[i].gpus = l->own[k].gpus;
    *l->topo = *t;
    char why[200];
    if (l->listener && lbw_alloc_check(l->topo, l->table, l->n, why, sizeof(why)) < 0)
        LBW_WARN("ledger", "the host now has less than its live claims hold (%s); new "
                           "claims get only what is left", why);
    if (l->listener)
        broadcast(l); /* the sums, and on_change */
    else if (l->o.on_change)
        l->o.on_change(l->o.ctx);
}

/* ---- descriptors and the status client ---------------------------------------- */

long lbw_ledger_record_build(enum lbw_ledger_rec_kind kind, int32_t flags,
                             const struct lbw_ledger_desc *d, const struct lbw_claim *c,
                             const struct lbw_topo_gpu *g, void *buf, size_t cap)
{
    static const uint32_t types[] = {
        [LBW_REC_DESC] = M_DESC, [LBW_REC_SNAP_HEAD] = M_SNAP_HEAD,
        [LBW_REC_SNAP_GPU] = M_SNAP_GPU, [LBW_REC_SNAP_MEMBER] = M_SNAP_MEMBER,
        [LBW_REC_SNAP_CLAIM] = M_SNAP_CLAIM};
    struct wmsg m;
    if (cap < sizeof(m) || (unsigned)kind > LBW_REC_SNAP_CLAIM)
        return -1;
    rec_init(&m, types[kind]);
    m.flags = flags;
    if (d)
        m.desc = *d;
    if (c)
        m.claim = *c;
    if (g)
        m.gpu = *g;
    memcpy(buf, &m, sizeof(m));
    return (long)sizeof(m);
}

const char *lbw_ledger_mstate_name(uint32_t state)
{
    static const char *const names[] = {
        [LBW_MS_NONE] = "no-scheduler", [LBW_MS_STARTING] = "starting",
        [LBW_MS_IDLE] = "idle",         [LBW_MS_BUSY] = "busy",
        [LBW_MS_REINTRODUCING] = "reintroducing", [LBW_MS_STOPPING] = "stopping",
    };
    return state < LBW_MS_LAST ? names[state] : "unknown";
}

/* published to other workers: printable ASCII, the rest of the field zero */
static void str_clean(char *dst, size_t cap, const char *src)
{
    memset(dst, 0, cap);
    if (src)
        lbw_text_clean(dst, cap, src, strlen(src), LBW_TEXT_ASCII);
}

void lbw_ledger_publish(struct lbw_ledger *l, const struct lbw_ledger_desc *d)
{
    if (!l)
        return;
    struct lbw_ledger_desc x = *d;
    str_clean(x.listen, sizeof(x.listen), d->listen);
    str_clean(x.scheduler, sizeof(x.scheduler), d->scheduler);
    if (!isfinite(x.progress) || x.progress < 0)
        x.progress = -1;
    else if (x.progress > 100)
        x.progress = 100;
    if (x.role > LBW_ROLE_POOL)
        x.role = LBW_ROLE_UNKNOWN;
    if (x.state >= LBW_MS_LAST)
        x.state = LBW_MS_NONE;
    x.invocation_id = x.invocation_id < -1 ? -1 : x.invocation_id;
    x.task_id = x.task_id < -1 ? -1 : x.task_id;
    x.started_ns &= (1ull << 62) - 1;
    if (l->have_desc && !memcmp(&x, &l->desc, sizeof(x)))
        return;
    l->desc = x;
    l->have_desc = 1;
    if (l->listener) {
        observers_note(l);
    } else if (l->link) {
        struct wmsg m;
        rec_init(&m, M_DESC);
        m.desc = x;
        send_rec(l->link->fd, &m, 0); /* a full socket loses one update; the next is whole */
    }
}

struct arb_find {
    size_t plen;
    char name[128];
};

static void arb_seen(void *ctx, const char *name)
{
    struct arb_find *f = ctx;
    const char *h = name + f->plen;
    if (f->name[0] || !*h || strlen(name) >= sizeof(f->name))
        return;
    for (const char *p = h; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return; /* a member's own name, or not ours */
    snprintf(f->name, sizeof(f->name), "%s", name);
}

int lbw_ledger_observe(const char *ns, char *name, size_t cap)
{
    ns = ns && *ns ? ns : LBW_LEDGER_NAMESPACE;
    if (strlen(ns) > 64)
        return -ENAMETOOLONG;
    char prefix[80];
    snprintf(prefix, sizeof(prefix), "%s/", ns);
    struct arb_find f = {.plen = strlen(prefix)};
    int rc = lbw_unix_list(prefix, arb_seen, &f);
    if (rc < 0)
        return rc;
    if (!f.name[0])
        return -ENOENT;
    snprintf(name, cap, "%s", f.name);
    int fd = lbw_unix_connect(f.name, SOCK_SEQPACKET);
    return fd == -ECONNREFUSED ? -ENOENT : fd;
}

/* The next record from the arbiter within the deadline: its type, or -errno. */
static int obs_recv(int fd, struct wmsg *m, uint64_t until, const struct lbw_topo *t, char *err,
                    size_t errlen)
{
    for (unsigned i = 0; i < 100000; i++) {
        ssize_t n = recv(fd, m, sizeof(*m), MSG_DONTWAIT | MSG_TRUNC);
        if (n > 0) {
            int ty = lbw_ledger_record_check(t, 0, m, (size_t)n, err, errlen);
            if (ty < 0)
                return -EPROTO;
            return ty == M_REFUSED ? -EPERM : ty;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            return -EPIPE;
        uint64_t now = lbw_now_ns();
        if (now >= until)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, (int)((until - now) / 1000000 + 1));
    }
    return -ETIMEDOUT;
}

void lbw_ledger_snap_free(struct lbw_ledger_snap *s)
{
    free(s->topo);
    free(s->members);
    free(s->claims);
    s->topo = NULL;
    s->members = NULL;
    s->claims = NULL;
    s->nmembers = s->nclaims = 0;
}

/* One pass over the snapshot's pages. 0 consistent, 1 changed meanwhile
 * (read again), -errno. */
static int snap_pass(int fd, struct lbw_ledger_snap *s, uint64_t until, char *err, size_t errlen)
{
    uint64_t gen = 0;
    size_t next = 0, total = 1, have_gpus = 0, ngpus = 0, cap_m = 0, cap_c = 0;
    int head = 0, have_gen = 0;
    struct wmsg m;
    while (next < total) {
        rec_init(&m, M_QUERY);
        m.seq = next;
        if (send_rec(fd, &m, 1) < 0) /* closed on us: a refusal says so first */
            return obs_recv(fd, &m, lbw_now_ns(), NULL, err, errlen) == -EPERM ? -EPERM
                                                                               : -EPIPE;
        for (;;) {
            int ty = obs_recv(fd, &m, until, head ? s->topo : NULL, err, errlen);
            if (ty < 0)
                return ty;
            if (ty == M_STATE)
                continue; /* a change note: the generation tells */
            if (ty == M_SNAP_END) {
                if (have_gen && m.seq != gen)
                    return 1;
                have_gen = 1;
                gen = m.seq;
                total = (size_t)m.flags;
                break;
            }
            if (m.seq != next) {
                snprintf(err, errlen, "snapshot record %llu where %zu was due",
                         (unsigned long long)m.seq, next);
                return -EPROTO;
            }
            next++;
            if (ty == M_SNAP_HEAD) {
                head = 1;
                s->arbiter = m.claim.pid;
                struct lbw_topo *t = s->topo;
                memset(t, 0, sizeof(*t));
                t->cpu_cap = m.claim.cpu;
                t->mem_cap = m.claim.mem;
                t->gpu_cap = m.claim.gpu;
                t->gmem_cap = m.claim.gmem;
                for (unsigned c = 0; c < LBW_MAX_CPUS; c++)
                    if (lbw_cpuset_has(&m.claim.cpus, c))
                        t->cpus[t->ncpus++].id = (uint16_t)c;
                ngpus = (size_t)m.flags;
                t->ngpus = (unsigned)ngpus;
                s->used.cpu = m.used_cpu;
                s->used.mem = m.used_mem;
                s->used.gpu = (uint32_t)m.used_gpu;
                s->used.gmem = m.used_gmem;
            } else if (!head) {
                snprintf(err, errlen, "a snapshot without its head first");
                return -EPROTO;
            } else if (ty == M_SNAP_GPU) {
                if ((size_t)m.flags != have_gpus || have_gpus >= ngpus) {
                    snprintf(err, errlen, "snapshot GPU %d out of order", (int)m.flags);
                    return -EPROTO;
                }
                s->topo->gpus[have_gpus++] = m.gpu;
            } else if (ty == M_SNAP_MEMBER || ty == M_SNAP_CLAIM) {
                int mem = ty == M_SNAP_MEMBER;
                size_t *n = mem ? &s->nmembers : &s->nclaims, *cap = mem ? &cap_m : &cap_c;
                if (*n >= MAX_CLAIMS * 2) {
                    snprintf(err, errlen, "more than %d snapshot records", MAX_CLAIMS * 2);
                    return -EPROTO;
                }
                if (*n == *cap) {
                    size_t nc = *cap ? *cap * 2 : 16;
                    void *p = mem ? realloc(s->members, nc * sizeof(*s->members))
                                  : realloc(s->claims, nc * sizeof(*s->claims));
                    if (!p)
                        return -ENOMEM;
                    if (mem)
                        s->members = p;
                    else
                        s->claims = p;
                    *cap = nc;
                }
                if (mem)
                    s->members[(*n)++] = (struct lbw_ledger_member){
                        .pid = m.claim.pid, .arbiter = m.flags & 1,
                        .have_desc = (m.flags & 2) != 0, .d = m.desc};
                else
                    s->claims[(*n)++] = m.claim;
            }
        }
    }
    if (!head || have_gpus != ngpus) {
        snprintf(err, errlen, "a snapshot without its head or GPUs");
        return -EPROTO;
    }
    return 0;
}

int lbw_ledger_snapshot(int fd, struct lbw_ledger_snap *s, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    uint64_t until = lbw_now_ns() + REPLY_NS;
    for (unsigned tries = 0; tries < SNAP_TRIES; tries++) {
        lbw_ledger_snap_free(s);
        if (!(s->topo = calloc(1, sizeof(*s->topo))))
            return -ENOMEM;
        int rc = snap_pass(fd, s, until, err, errlen);
        if (rc <= 0) {
            if (rc < 0)
                lbw_ledger_snap_free(s);
            return rc;
        }
    }
    lbw_ledger_snap_free(s);
    snprintf(err, errlen, "the mesh changed during each of %d reads", SNAP_TRIES);
    return -EAGAIN;
}

int lbw_ledger_observe_wait(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n <= 0)
        return 0;
    struct wmsg m;
    int changed = 0;
    for (unsigned i = 0; i < DRAIN_MAX; i++) {
        ssize_t r = recv(fd, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC);
        if (r > 0) {
            changed = 1;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            return -EPIPE;
        break;
    }
    return changed;
}

/* ---- topology ------------------------------------------------------------------ */

static double num_d(const struct lbw_num *n) { return n->is_float ? n->f : (double)n->i; }
static uint64_t num_u(const struct lbw_num *n)
{
    double v = num_d(n);
    return v > 0 && v < 1.8e19 ? (uint64_t)v : 0;
}

/* Without Intel's cpu_atom list: the performance tiers from each CPU's
 * cpu_capacity (Arm big.LITTLE, and hybrid x86 on kernels that give it):
 * tier = how many distinct capacities are above the CPU's, at most 255.
 * All equal (or unreadable): one tier. */
static void topo_tiers_from_capacity(const char *root, struct lbw_topo *t)
{
    enum { MAXCAPS = 16 };
    long caps[MAXCAPS];
    unsigned ncaps = 0;
    long *cap = malloc(sizeof(long) * (t->ncpus + 1));
    if (!cap)
        return;
    for (unsigned i = 0; i < t->ncpus; i++) {
        char p[128], b[32];
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/cpu_capacity", t->cpus[i].id);
        cap[i] = lbw_root_read(root, p, b, sizeof(b)) > 0 ? strtol(b, NULL, 10) : -1;
        unsigned k = 0;
        while (k < ncaps && caps[k] != cap[i])
            k++;
        if (k == ncaps && ncaps < MAXCAPS && cap[i] > 0)
            caps[ncaps++] = cap[i];
    }
    for (unsigned i = 0; ncaps > 1 && i < t->ncpus; i++) {
        unsigned above = 0;
        for (unsigned k = 0; k < ncaps; k++)
            above += caps[k] > cap[i];
        t->cpus[i].eff = (uint8_t)(cap[i] > 0 ? above : 0);
    }
    free(cap);
}

void lbw_ledger_topo_from_host(const struct lbw_host *h, const char *root,
                               const struct lbw_resources *caps, struct lbw_topo *t)
{
    memset(t, 0, sizeof(*t));
    t->cpu_cap = num_d(&caps->total_cpu_count);
    if (!(t->cpu_cap >= 0) || !isfinite(t->cpu_cap))
        t->cpu_cap = 0;
    t->mem_cap = num_u(&caps->total_cpu_mem);
    t->gpu_cap = (uint32_t)num_u(&caps->total_gpu_count);
    t->gmem_cap = num_u(&caps->total_gpu_mem);
    struct lbw_cpuset eff;
    lbw_cpuset_clear(&eff);
    char buf[4096];
    int hybrid = lbw_root_read(root, "/sys/devices/cpu_atom/cpus", buf, sizeof(buf)) > 0 &&
                 lbw_cpuset_parse(buf, &eff) == 0 && lbw_cpuset_count(&eff);
    for (unsigned c = 0; c < LBW_MAX_CPUS && t->ncpus < LBW_MAX_CPUS; c++) {
        if (!lbw_cpuset_has(&h->usable, c))
            continue;
        char p[128], b1[32], b2[32];
        long core = c, pkg = 0;
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
        if (lbw_root_read(root, p, b1, sizeof(b1)) > 0)
            core = strtol(b1, NULL, 10);
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
        if (lbw_root_read(root, p, b2, sizeof(b2)) > 0)
            pkg = strtol(b2, NULL, 10);
        int node = 0;
        for (int n = 0; n < h->nnodes; n++)
            if (lbw_cpuset_has(&h->nodes[n].cpus, c))
                node = h->nodes[n].id >= 0 && h->nodes[n].id < LBW_MAX_NODES ? h->nodes[n].id : 0;
        t->cpus[t->ncpus++] = (struct lbw_topo_cpu){
            .id = (uint16_t)c, .node = (int16_t)node,
            .core = (uint32_t)((pkg & 0xffff) << 16 | (core & 0xffff)),
            .eff = (uint8_t)lbw_cpuset_has(&eff, c)};
    }
    if (!hybrid)
        topo_tiers_from_capacity(root, t);
    for (int n = 0; n < h->nnodes; n++)
        if (h->nodes[n].id >= 0 && h->nodes[n].id < LBW_MAX_NODES)
            t->node_mem[h->nodes[n].id] = h->nodes[n].mem_bytes;
    int per_vendor[4] = {0};
    for (int i = 0; i < h->ngpus && i < LBW_MAX_GPUS; i++) {
        struct lbw_topo_gpu *g = &t->gpus[t->ngpus++];
        g->node = h->gpus[i].numa_node;
        g->vendor = h->gpus[i].vendor;
        int v = g->vendor >= 1 && g->vendor <= 3 ? g->vendor : 0;
        if (g->vendor == LBW_GPU_NVIDIA && h->gpus[i].uuid[0])
            snprintf(g->id, sizeof(g->id), "%s", h->gpus[i].uuid);
        else
            snprintf(g->id, sizeof(g->id), "%d", per_vendor[v]);
        snprintf(g->key, sizeof(g->key), "%.31s", h->gpus[i].pci_bus_id[0] ? h->gpus[i].pci_bus_id
                                                                          : g->id);
        per_vendor[v]++;
    }
}

/* ---- one task's claim ---------------------------------------------------------- */

static uint64_t req_u(const struct lbw_num *n)
{
    double v = num_d(n);
    return v > 0 && v < 1.8e19 ? (uint64_t)v : 0;
}

static double req_d(const struct lbw_num *n)
{
    double v = num_d(n);
    return isfinite(v) && v > 0 ? (v < 1e6 ? v : 1e6) : 0;
}

static char *tc_str(struct lbw_task_claim *tc, size_t *k, const char *fmt, const char *name,
                    const char *val)
{
    if (*k >= sizeof(tc->strs) / sizeof(tc->strs[0]))
        return NULL;
    char *s = NULL;
    if (asprintf(&s, fmt, name, val) < 0)
        return NULL;
    tc->strs[(*k)++] = s;
    return s;
}

static void gpu_list(const struct lbw_topo *t, uint32_t gpus, int vendor, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (unsigned i = 0; i < t->ngpus && i < 32; i++) {
        if (!(gpus & (1u << i)) || (vendor && t->gpus[i].vendor != vendor))
            continue;
        int n = snprintf(out + k, cap - k, "%s%s", k ? "," : "", t->gpus[i].id);
        if (n < 0 || (size_t)n >= cap - k)
            return;
        k += (size_t)n;
    }
}

/* The node the claim's memory prefers, as set_mempolicy's mask (-1, mask
 * empty: none). MPOL_PREFERRED, not MPOL_BIND: the claim is the scheduler's
 * estimate, and a payload that outgrows it should spill to another node
 * rather than meet the OOM killer on a full one (the cgroup's memory
 * limit, not the policy, is what bounds it). */
static int claim_mem_policy(const struct lbw_claim *c, unsigned long *mask)
{
    memset(mask, 0, LBW_MAX_NODES / 8);
    if (c->mem_node < 0 || c->mem_node >= LBW_MAX_NODES)
        return -1;
    unsigned n = (unsigned)c->mem_node, bits = 8 * sizeof(*mask);
    mask[n / bits] |= 1ul << (n % bits);
    return c->mem_node;
}

int lbw_ledger_claim_task(struct lbw_ledger *l, const struct lbw_inv *job, struct lbw_task_claim *tc)
{
    memset(tc, 0, sizeof(*tc));
    tc->mem_node = -1;
    struct lbw_requirements rq;
    memset(&rq, 0, sizeof(rq));
    struct lbw_claim_req q = {0};
    if (lbw_inv_requirements(job, &rq) == 0) {
        q.min_cpu = req_d(&rq.min_cpu);
        q.pref_cpu = rq.has_pref_cpu ? req_d(&rq.pref_cpu) : 0;
        q.min_mem = req_u(&rq.min_mem);
        q.pref_mem = rq.has_pref_mem ? req_u(&rq.pref_mem) : 0;
        q.min_gpu = (uint32_t)(req_u(&rq.min_gpu) < 64 ? req_u(&rq.min_gpu) : 64);
        q.pref_gpu = rq.has_pref_gpu ? (uint32_t)(req_u(&rq.pref_gpu) < 64 ? req_u(&rq.pref_gpu) : 64) : 0;
        q.min_gmem = req_u(&rq.min_gpu_mem);
        q.pref_gmem = rq.has_pref_gpu_mem ? req_u(&rq.pref_gpu_mem) : 0;
    }
    free(rq.groups);
    int64_t inv = -1;
    lbw_inv_invocation_id(job, &inv);
    int f = lbw_ledger_claim(l, &q, &tc->c);
    if (f < 0) {
        LBW_WARN("ledger", "invocation %lld: the host ledger did not answer (%s): the payload "
                           "runs unpinned, with no claim",
                 (long long)inv, strerror(-f));
        return f;
    }
    tc->held = 1;
    tc->mem_node = claim_mem_policy(&tc->c, tc->mem_nodes);
    char cpus[1024];
    lbw_cpuset_format(&tc->c.cpus, cpus, sizeof(cpus));
    if (f) {
        struct lbw_usage u;
        lbw_ledger_used(l, &u);
        LBW_WARN("ledger", "invocation %lld: the host cannot give what the job asks for (min "
                           "%.2f CPUs, %llu bytes, %u GPUs; the other claims on this host leave "
                           "less: another worker, a [resources] override or a scheduler that "
                           "does not count per host); it runs with what is free: %.2f CPUs (%s), "
                           "%llu bytes, %u GPUs",
                 (long long)inv, q.min_cpu, (unsigned long long)q.min_mem, q.min_gpu, tc->c.cpu,
                 cpus, (unsigned long long)tc->c.mem, tc->c.gpu);
    }
    unsigned ncpu = lbw_cpuset_count(&tc->c.cpus);
    if (ncpu) {
        tc->mask = CPU_ALLOC(LBW_MAX_CPUS);
        tc->mask_size = CPU_ALLOC_SIZE(LBW_MAX_CPUS);
        if (tc->mask) {
            CPU_ZERO_S(tc->mask_size, tc->mask);
            for (unsigned c = 0; c < LBW_MAX_CPUS; c++)
                if (lbw_cpuset_has(&tc->c.cpus, c))
                    CPU_SET_S(c, tc->mask_size, tc->mask);
        }
    }
    const struct lbw_topo *t = l->topo;
    size_t k = 0, e = 0, d = 0;
    char v[1200];
    tc->env[e++] = tc_str(tc, &k, "%s=%s", "LIFEBLOOD_CLAIM_CPUS", ncpu ? cpus : "");
    snprintf(v, sizeof(v), "%g", tc->c.cpu);
    tc->env[e++] = tc_str(tc, &k, "%s=%s", "LIFEBLOOD_CLAIM_CPU_COUNT", v);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)tc->c.mem);
    tc->env[e++] = tc_str(tc, &k, "%s=%s", "LIFEBLOOD_CLAIM_MEM", v);
    snprintf(v, sizeof(v), "%d", tc->c.node);
    tc->env[e++] = tc_str(tc, &k, "%s=%s", "LIFEBLOOD_CLAIM_NUMA_NODE", ncpu ? v : "");
    snprintf(v, sizeof(v), "%d", tc->mem_node);
    tc->env[e++] = tc_str(tc, &k, "%s=%s", "LIFEBLOOD_CLAIM_MEM_NODE", tc->mem_node >= 0 ? v : "");
    gpu_list(t, tc->c.gpus, 0, v, sizeof(v));
    tc->env[e++] = tc_str(tc, &k, "%s=%s", "LIFEBLOOD_CLAIM_GPUS", v);
    static const struct {
        int vendor;
        const char *var;
    } gv[] = {{LBW_GPU_NVIDIA, "CUDA_VISIBLE_DEVICES"},
              {LBW_GPU_AMD, "ROCR_VISIBLE_DEVICES"},
              {LBW_GPU_INTEL, "ZE_AFFINITY_MASK"}};
    for (size_t i = 0; i < 3; i++) {
        int present = 0;
        for (unsigned g = 0; g < t->ngpus; g++)
            present |= t->gpus[g].vendor == gv[i].vendor;
        if (!present)
            continue; /* no such GPUs here: the variable is not ours to set */
        gpu_list(t, tc->c.gpus, gv[i].vendor, v, sizeof(v));
        tc->env_default[d++] = tc_str(tc, &k, "%s=%s", gv[i].var, v);
    }
    for (size_t i = 0; i < e; i++)
        if (!tc->env[i]) { /* out of memory: compact (the array stays NULL-ended) */
            memmove(&tc->env[i], &tc->env[i + 1], (e - i) * sizeof(tc->env[0]));
            e--, i--;
        }
    char on[32] = "";
    if (tc->mem_node >= 0)
        snprintf(on, sizeof(on), " on node %d", tc->mem_node);
    LBW_INFO("ledger", "invocation %lld: claimed %g CPUs (%s, NUMA node %d), %llu bytes%s, "
                       "%u GPU(s)",
             (long long)inv, tc->c.cpu, cpus, tc->c.node, (unsigned long long)tc->c.mem, on,
             tc->c.gpu);
    return 0;
}

void lbw_ledger_release_task(struct lbw_ledger *l, struct lbw_task_claim *tc)
{
    if (tc->held && l)
        lbw_ledger_release(l, tc->c.id);
    if (tc->mask)
        CPU_FREE(tc->mask);
    for (size_t i = 0; i < sizeof(tc->strs) / sizeof(tc->strs[0]); i++)
        free(tc->strs[i]);
    memset(tc, 0, sizeof(*tc));
}

static struct lbw_num left_num(const struct lbw_num *total, double used, int integral)
{
    double v = num_d(total) - used;
    if (!(v > 0))
        v = 0;
    if (integral || (!total->is_float && v == floor(v)))
        return (struct lbw_num){.i = (int64_t)v};
    return (struct lbw_num){.is_float = 1, .f = v};
}

void lbw_ledger_left(const struct lbw_ledger *l, const struct lbw_resources *caps,
                     struct lbw_resources *out)
{
    *out = *caps;
    if (!l)
        return;
    struct lbw_usage u;
    lbw_ledger_used(l, &u);
    out->cpu_count = left_num(&caps->total_cpu_count, u.cpu, 0);
    out->cpu_mem = left_num(&caps->total_cpu_mem, (double)u.mem, 1);
    out->gpu_count = left_num(&caps->total_gpu_count, (double)u.gpu, 1);
    out->gpu_mem = left_num(&caps->total_gpu_mem, (double)u.gmem, 1);
}
