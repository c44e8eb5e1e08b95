/* msgnet.c — see msgnet.h.
 *
 * Lifetime rule for connections: every reactor op a connection starts is
 * counted in conn->pending; closing cancels them, and the connection is
 * freed when the last callback has run. The net itself is freed when it is
 * closed and nothing of it is pending any more. */
#include "msgnet.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "acceptor.h"
#include "address.h"
#include "buf.h"
#include "cidr.h"
#include "log.h"
#include "resolve.h"
#include "sock.h"

#define RBUF 65536
#define STREAM_CHUNK (256u * 1024u)
#define LARGE (1u << 20)
#define S(ns) ((ns) / 1000000000ull)

struct in_conn;
struct out_conn;
struct send_job;

struct expect {
    uint8_t session[16];
    lbw_msg_frame_cb cb;
    void *ctx;
};

struct lbw_msgnet {
    lbw_reactor *r;
    struct lbw_msgnet_opts o;
    char *self;
    size_t self_len;
    lbw_msg_frame_cb on_request;
    void *ctx;
    struct lbw_acceptor *acc;
    struct lbw_cidr_set allow;
    struct lbw_seen seen;
    uint64_t buffered; /* partial frames of all connections */
    int closing;
    int draining; /* refuse new exchanges (ack 0), keep serving replies */
    size_t live; /* connections + pending net-level ops + queued jobs */
    struct in_conn *ins;
    size_t nins;
    struct out_conn *outs;
    struct lbw_list queue;    /* sends waiting for a connection */
    size_t nqueued;           /* of them, to peers that are not preferred */
    struct lbw_op kick;       /* deferred dispatch of the queue */
    char pref_ip[8][48];
    char pref_hop[8][LBW_ADDR_MAX + 1];
    size_t npref, pref_next;
    struct expect *exp;
    size_t nexp, cexp;
    struct lbw_msgnet_stats st;
};

struct in_conn {
    struct lbw_msgnet *net;
    struct lbw_acc_conn ac;
    int fd;
    int closing;
    unsigned pending;
    struct lbw_op rop, sop, top;
    struct lbw_frame_dec dec;
    uint8_t *buf;
    size_t len, pos;
    uint8_t ackb;
    int close_after_ack; /* a forward failed: ack 0, then close (1.5) */
    int fwd_calling, fwd_status; /* the forward's outcome while its send starts */
    int was_mid;
    uint64_t frames;
    uint64_t charged; /* inbound budget held by the frame in progress */
    uint64_t deadline;
    char peer[80];
    struct in_conn *next, *prev;
};

enum { OC_CONNECTING, OC_IDLE, OC_BUSY };
enum { PH_NONE, PH_PING, PH_FRAME };

struct send_job {
    struct lbw_msgnet *net;
    char *src;           /* a forwarded frame's source chain; NULL = self */
    size_t src_len;
    char *dst;
    size_t dst_len;
    uint16_t type;
    int has_session;
    uint8_t session[16];
    uint8_t *body;
    size_t len;          /* body length (in memory or produced by fill) */
    lbw_msg_fill_cb fill; /* streamed body: produced chunk by chunk */
    void *fill_ctx;
    uint8_t *chunk;
    size_t chunk_len;
    uint64_t sent;       /* streamed bytes handed to the socket so far */
    lbw_msg_sent_cb cb;
    void *ctx;
    unsigned attempt;
    int preferred;       /* to the peer we are registered with */
    int queued;
    struct lbw_list qlink;
    struct lbw_op backoff;
};

struct out_conn {
    struct lbw_msgnet *net;
    int fd;
    int closing;
    unsigned pending;
    int state, phase, waiting_ack;
    char hop[LBW_ADDR_MAX + 1];
    struct lbw_op cop, hop_send, body_send, rop, top;
    struct lbw_op irop, itop; /* while idle: the peer's close, the pool life */
    int idle_ops;             /* of irop/itop still pending */
    int reusing, idle_broke;
    uint8_t idleb;
    uint8_t *head;
    size_t head_len;
    uint8_t ackb;
    struct send_job *job;
    uint64_t last_used;
    struct out_conn *next, *prev;
};

static void net_maybe_free(struct lbw_msgnet *n);
static void job_attempt(struct send_job *j);
static void schedule_kick(struct lbw_msgnet *n);
static void job_fail(struct send_job *j, int err);

void lbw_session_new(uint8_t out[16])
{
    if (getrandom(out, 16, 0) != 16) {
        /* getrandom on Linux >= 3.17 does not fail for 16 bytes; keep the
         * session distinct anyway */
        uint64_t t = lbw_now_ns();
        memcpy(out, &t, 8);
        memcpy(out + 8, &out, 8);
    }
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

int lbw_msgnet_resolve_chain(const char *chain, char *out, size_t cap, uint64_t timeout_ns,
                             char *err, size_t errlen)
{
    const char *s = chain;
    size_t len = strlen(chain), o = 0;
    lbw_chain_trim(&s, &len);
    if (!len || !lbw_chain_is_valid(s, len)) {
        snprintf(err, errlen, "'%s' is not an address chain (host:port|...)", chain);
        return -EINVAL;
    }
    while (len) {
        size_t hl = lbw_chain_first_len(s, len);
        char host[LBW_ADDR_MAX + 1], ip[64];
        uint16_t port;
        if (lbw_addr_split(s, hl, host, sizeof(host), &port) < 0) {
            snprintf(err, errlen, "'%s' is not an address chain (host:port|...)", chain);
            return -EINVAL;
        }
        int rc = lbw_resolve_host(host, ip, sizeof(ip), timeout_ns, err, errlen);
        if (rc < 0)
            return rc;
        if (strchr(ip, ':')) {
            snprintf(err, errlen, "cannot resolve %s: it has no IPv4 address", host);
            return -EAFNOSUPPORT;
        }
        int k = snprintf(out + o, cap - o, "%s%s:%u", o ? "|" : "", ip, (unsigned)port);
        if (k < 0 || (size_t)k >= cap - o) {
            snprintf(err, errlen, "the address chain '%s' is too long", chain);
            return -ENAMETOOLONG;
        }
        o += (size_t)k;
        s += hl;
        len -= hl;
        if (len) {
            s++;
            len--;
        }
    }
    return 0;
}

void lbw_msgnet_stats(const struct lbw_msgnet *n, struct lbw_msgnet_stats *s)
{
    *s = n->st;
    s->buffered = n->buffered;
    s->conns_in = n->nins;
    s->conns_out = 0;
    for (const struct out_conn *c = n->outs; c; c = c->next)
        s->conns_out++;
}

void lbw_msgnet_prefer(struct lbw_msgnet *n, const char *chain)
{
    const char *s = chain;
    size_t len = strlen(chain);
    lbw_chain_trim(&s, &len);
    size_t hl = lbw_chain_first_len(s, len);
    char host[LBW_ADDR_MAX + 1];
    uint16_t port;
    if (hl == 0 || hl > LBW_ADDR_MAX || lbw_addr_split(s, hl, host, sizeof(host), &port) < 0)
        return;
    for (size_t i = 0; i < n->npref; i++)
        if (strlen(n->pref_hop[i]) == hl && !memcmp(n->pref_hop[i], s, hl))
            return;
    size_t i = n->pref_next;
    memcpy(n->pref_hop[i], s, hl);
    n->pref_hop[i][hl] = 0;
    snprintf(n->pref_ip[i], sizeof(n->pref_ip[i]), "%.47s", host);
    n->pref_next = (i + 1) % 8;
    if (n->npref < 8)
        n->npref++;
    if (n->acc)
        lbw_acceptor_prefer(n->acc, host);
}

/* ---- incoming ---------------------------------------------------------------- */

static void in_free(struct in_conn *c)
{
    struct lbw_msgnet *n = c->net;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->ins = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nins--;
    lbw_acc_conn_done(&c->ac);
    lbw_frame_dec_reset(&c->dec);
    free(c->buf);
    free(c);
    n->live--;
    net_maybe_free(n);
}

/* Hands the memory of a large frame back to the system at once, so the
 * resident size returns near idle after it (glibc keeps freed heap
 * memory otherwise). */
static void give_back(uint64_t size)
{
#ifdef __GLIBC__
    if (size >= LARGE)
        malloc_trim(0);
#else
    (void)size;
#endif
}

static void in_close(struct in_conn *c)
{
    if (!c->closing) {
        c->closing = 1;
        /* stop counting at once: the slot and the partial frame's budget
         * are free for others even while the cancellations come back */
        lbw_acc_conn_done(&c->ac);
        uint64_t held = c->charged;
        lbw_frame_dec_reset(&c->dec);
        give_back(held);
        if (c->fd >= 0) {
            /* Cancel first: the ops refer to the fd number. */
            lbw_cancel(c->net->r, &c->rop);
            lbw_cancel(c->net->r, &c->sop);
            lbw_cancel(c->net->r, &c->top);
        }
    }
    if (c->pending == 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        in_free(c);
    }
}

static void in_recv_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);
static void in_process(struct in_conn *c);

/* The budget on all partial frames together. When it is used up, a frame
 * from a preferred peer (the scheduler) makes the largest partial frames
 * of other peers give way; anyone else's frame is refused. */
static int in_charge(void *ctx, int64_t delta)
{
    struct in_conn *c = ctx;
    struct lbw_msgnet *n = c->net;
    if (delta <= 0) {
        n->buffered -= (uint64_t)-delta;
        c->charged -= (uint64_t)-delta;
        return 0;
    }
    while (n->buffered + (uint64_t)delta > n->o.max_buffered && c->ac.preferred) {
        struct in_conn *big = NULL;
        for (struct in_conn *o = n->ins; o; o = o->next)
            if (o != c && !o->closing && !o->ac.preferred && o->charged &&
                (!big || o->charged > big->charged))
                big = o;
        if (!big)
            break;
        LBW_WARN("net", "the budget for incoming frames (%llu MiB) is used up: dropping a "
                        "partial frame of %llu MiB from %s to make room for %s",
                 (unsigned long long)(n->o.max_buffered >> 20),
                 (unsigned long long)(big->charged >> 20), big->peer, c->peer);
        n->st.conns_closed_bad++;
        in_close(big);
    }
    if (n->buffered + (uint64_t)delta > n->o.max_buffered)
        return -1;
    n->buffered += (uint64_t)delta;
    c->charged += (uint64_t)delta;
    return 0;
}

static void in_arm_recv(struct in_conn *c)
{
    c->pos = c->len = 0;
    if (lbw_recv(c->net->r, &c->rop, c->fd, c->buf, RBUF, in_recv_cb) == 0)
        c->pending++;
    else
        in_close(c);
}

static void in_ack_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct in_conn *c = op->user;
    c->pending--;
    if (c->closing || res != 1 || c->close_after_ack) {
        in_close(c);
        return;
    }
    in_process(c);
}

static int first_hop_is(const struct lbw_frame *f, const char *self, size_t self_len)
{
    size_t fl = lbw_chain_first_len(f->dst, f->dst_len);
    return fl == self_len && !memcmp(f->dst, self, self_len);
}

static int send_common(struct lbw_msgnet *n, const char *src, const char *dst, uint16_t type,
                       const uint8_t *session, const void *body, size_t len,
                       lbw_msg_fill_cb fill, void *fill_ctx, lbw_msg_sent_cb cb, void *ctx);

/* The forwarded frame's next hop acked (status 0) or not: now the sender
 * gets its ack (0 and a closed connection on failure, as upstream). */
static void in_fwd_done(void *ctx, int status)
{
    struct in_conn *c = ctx;
    c->pending--;
    if (status < 0)
        c->net->st.forward_failures++;
    if (c->fwd_calling) { /* failed inside lbw_msgnet_send: in_forward answers */
        c->fwd_status = status;
        return;
    }
    if (c->closing || c->net->closing) {
        in_close(c);
        return;
    }
    c->ackb = status == 0;
    if (status < 0) {
        c->net->st.acks_sent_0++;
        c->close_after_ack = 1;
    }
    if (lbw_send(c->net->r, &c->sop, c->fd, &c->ackb, 1, in_ack_cb) == 0)
        c->pending++;
    else
        in_close(c);
}

/* Forwarding (1.7). Returns the ack byte, or 2 when it is sent later by
 * in_fwd_done (after the next hop acked). */
static int in_forward(struct in_conn *c, struct lbw_frame *f)
{
    struct lbw_msgnet *n = c->net;
    size_t first = lbw_chain_first_len(f->dst, f->dst_len);
    const char *next = f->dst + first + 1;
    size_t nl = lbw_chain_first_len(next, f->dst_len - first - 1);
    if (!n->o.forward_ok || !n->o.forward_ok(n->ctx, next, nl)) {
        LBW_WARN("net", "frame from %s names further hops (%s); %s: refused", c->peer, f->dst,
                 n->o.forward_ok ? "not forwarded to that hop" : "a worker does not forward");
        n->st.acks_sent_0++;
        return 0;
    }
    if (n->closing || f->src_len + n->self_len + 1 > LBW_ADDR_MAX ||
        lbw_frame_forward(f, n->self, n->self_len) < 0) {
        n->st.acks_sent_0++;
        return 0;
    }
    c->pending++;
    c->fwd_calling = 1;
    c->fwd_status = 1; /* not finished */
    int rc = send_common(n, f->src, f->dst, f->type, f->has_session ? f->session : NULL,
                         f->body, (size_t)f->body_len, NULL, NULL, in_fwd_done, c);
    c->fwd_calling = 0;
    if (rc < 0) {
        c->pending--;
        c->fwd_status = rc;
    }
    if (c->fwd_status == 1) {
        n->st.forwarded++;
        return 2;
    }
    LBW_DEBUG("net", "forwarding from %s to %s failed: %s", c->peer, f->dst,
              strerror(-c->fwd_status));
    n->st.acks_sent_0++;
    c->close_after_ack = 1;
    return 0;
}

/* The receiver rules of docs/PROTOCOL.md 1.6; returns the ack byte. */
static int in_handle(struct in_conn *c, struct lbw_frame *f)
{
    struct lbw_msgnet *n = c->net;
    n->st.frames_in++;
    if (!first_hop_is(f, n->self, n->self_len)) {
        LBW_WARN("net", "frame from %s for %s is not for us (%s): dropped", c->peer, f->dst,
                 n->self);
        n->st.dropped_not_ours++;
        return 1;
    }
    if (lbw_chain_first_len(f->dst, f->dst_len) != f->dst_len)
        return in_forward(c, f);
    if (f->type == LBW_MSG_SYSTEM_PING) {
        n->st.pings_in++;
        return 1;
    }
    if (f->has_session) {
        for (size_t i = 0; i < n->nexp; i++)
            if (!memcmp(n->exp[i].session, f->session, 16))
                return n->exp[i].cb(n->exp[i].ctx, f) ? 1 : 0;
    }
    if (n->closing || n->draining) { /* shutting down: no new exchanges */
        n->st.acks_sent_0++;
        return 0;
    }
    int ack = n->on_request ? n->on_request(n->ctx, f) : 1;
    if (!ack)
        n->st.acks_sent_0++;
    return ack ? 1 : 0;
}

static void in_update_deadline(struct in_conn *c)
{
    int mid = lbw_frame_dec_midframe(&c->dec);
    /* for the acceptor: silent until the first frame's header is in */
    if (c->dec.state == LBW_DEC_REST)
        lbw_acc_conn_set(&c->ac, LBW_ACC_BUSY);
    else if (c->frames)
        lbw_acc_conn_set(&c->ac, LBW_ACC_IDLE);
    uint64_t now = lbw_now_ns();
    if (mid && !c->was_mid)
        c->deadline = now + c->net->o.frame_timeout_ns;
    else if (!mid)
        c->deadline = now + c->net->o.idle_timeout_ns;
    c->was_mid = mid;
}

static void in_process(struct in_conn *c)
{
    while (c->pos < c->len) {
        struct lbw_frame f;
        int done;
        ssize_t u = lbw_frame_dec_feed(&c->dec, c->buf + c->pos, c->len - c->pos, &f, &done);
        if (u < 0) {
            const char *pre = lbw_frame_dec_preamble(&c->dec);
            LBW_WARN("net", "closing connection from %s%s%s: %s", c->peer, pre ? " as " : "",
                     pre ? pre : "", lbw_frame_strerror((int)u));
            c->net->st.conns_closed_bad++;
            in_close(c);
            return;
        }
        c->pos += (size_t)u;
        if (!done)
            continue;
        c->frames++;
        in_update_deadline(c);
        lbw_acc_conn_set(&c->ac, LBW_ACC_BUSY); /* until the ack is out */
        uint64_t size = f.body_len;
        int ack = in_handle(c, &f);
        lbw_frame_free(&f);
        give_back(size);
        if (ack == 2) /* forwarded: acked when the next hop acked */
            return;
        c->ackb = (uint8_t)ack;
        if (lbw_send(c->net->r, &c->sop, c->fd, &c->ackb, 1, in_ack_cb) == 0) {
            c->pending++;
        } else {
            in_close(c);
        }
        return; /* continue after the ack is out */
    }
    in_update_deadline(c);
    in_arm_recv(c);
}

static void in_recv_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct in_conn *c = op->user;
    c->pending--;
    if (c->closing) {
        in_close(c);
        return;
    }
    if (res <= 0) {
        if (res < 0 || lbw_frame_dec_midframe(&c->dec))
            LBW_DEBUG("net", "connection from %s ended%s: %s", c->peer,
                      lbw_frame_dec_midframe(&c->dec) ? " in the middle of a frame" : "",
                      res < 0 ? strerror((int)-res) : "closed by the peer");
        in_close(c);
        return;
    }
    c->len = (size_t)res;
    c->pos = 0;
    in_process(c);
}

static void in_timer_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct in_conn *c = op->user;
    c->pending--;
    if (c->closing || res < 0) {
        if (c->closing)
            in_close(c);
        return;
    }
    uint64_t now = lbw_now_ns();
    if (now >= c->deadline) {
        LBW_WARN("net", "closing connection from %s: no %s within %llu s", c->peer,
                 c->was_mid ? "rest of the frame" : "new frame",
                 (unsigned long long)S(c->was_mid ? c->net->o.frame_timeout_ns
                                                  : c->net->o.idle_timeout_ns));
        c->net->st.conns_timed_out++;
        in_close(c);
        return;
    }
    if (lbw_timer(r, &c->top, c->deadline - now, 0, in_timer_cb) == 0)
        c->pending++;
}

/* The acceptor hands over a connection that passed admission. */
static struct lbw_acc_conn *in_new(void *ctx, int fd, const char *peer)
{
    struct lbw_msgnet *n = ctx;
    struct in_conn *c = calloc(1, sizeof(*c));
    if (!c || !(c->buf = malloc(RBUF))) {
        free(c);
        return NULL;
    }
    lbw_acc_conn_init(&c->ac);
    c->net = n;
    c->fd = fd;
    c->rop.user = c->sop.user = c->top.user = c;
    struct lbw_frame_limits lim = {.max_frame = n->o.max_frame, .charge = in_charge,
                                   .charge_ctx = c};
    lbw_frame_dec_init(&c->dec, &lim, 1);
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->next = n->ins;
    if (n->ins)
        n->ins->prev = c;
    n->ins = c;
    n->nins++;
    n->live++;
    c->deadline = lbw_now_ns() + n->o.idle_timeout_ns;
    if (lbw_timer(n->r, &c->top, n->o.idle_timeout_ns, 0, in_timer_cb) == 0)
        c->pending++;
    in_arm_recv(c);
    return &c->ac;
}

static void in_evict(void *ctx, struct lbw_acc_conn *ac, const char *why)
{
    struct in_conn *c = lbw_list_entry(ac, struct in_conn, ac);
    LBW_DEBUG("net", "closing connection from %s: %s", c->peer, why);
    c->net->st.conns_evicted++;
    in_close(c);
}

/* worker.scheduler_allow: a peer outside it gets nothing but a closed
 * connection, and one line per minute. */
static int in_admit(void *ctx, int fd, const struct sockaddr_storage *peer, const char *ip)
{
    struct lbw_msgnet *n = ctx;
    if (lbw_cidr_set_match(&n->allow, peer))
        return 0;
    n->st.refused_not_allowed++;
    if (lbw_seen_due(&n->seen, ip, lbw_now_ns(), 60ull * 1000000000ull))
        LBW_WARN("net", "refusing connections from %s: not in the allowed scheduler "
                        "addresses (shown once a minute per source)", ip);
    return -1;
}

/* ---- outgoing ---------------------------------------------------------------- */

static void job_free(struct send_job *j)
{
    free(j->src);
    free(j->dst);
    free(j->body);
    free(j->chunk);
    free(j);
}

static void out_free(struct out_conn *c)
{
    struct lbw_msgnet *n = c->net;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->outs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->head);
    free(c);
    n->live--;
    schedule_kick(n);
    net_maybe_free(n);
}

static void out_close(struct out_conn *c)
{
    if (!c->closing) {
        c->closing = 1;
        lbw_cancel(c->net->r, &c->cop);
        lbw_cancel(c->net->r, &c->hop_send);
        lbw_cancel(c->net->r, &c->body_send);
        lbw_cancel(c->net->r, &c->rop);
        lbw_cancel(c->net->r, &c->top);
        lbw_cancel(c->net->r, &c->irop);
        lbw_cancel(c->net->r, &c->itop);
    }
    if (c->pending == 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        out_free(c);
    }
}

/* The attempt on this connection failed: close it, then retry the job.
 * A pooled connection that fails its SYSTEM_PING is stale (the peer
 * restarted, perhaps on the same port): every idle connection to that hop
 * is then closed too, and the job goes out at once on a fresh connection
 * without spending one of its attempts — otherwise a pool of N stale
 * connections would eat all the attempts. */
static void out_fail(struct out_conn *c, int err)
{
    struct lbw_msgnet *n = c->net;
    struct send_job *j = c->job;
    int stale = c->phase == PH_PING;
    c->job = NULL;
    c->waiting_ack = 0;
    if (stale)
        for (struct out_conn *o = n->outs, *next; o; o = next) {
            next = o->next;
            if (o != c && o->state == OC_IDLE && !o->closing && !strcmp(o->hop, c->hop))
                out_close(o);
        }
    out_close(c);
    if (j && stale && err != -ECANCELED && !n->closing) {
        LBW_DEBUG("net", "a pooled connection to %s was stale; sending on a new one", j->dst);
        job_attempt(j);
        return;
    }
    if (j)
        job_fail(j, err);
}

static void out_frame_sent(struct out_conn *c);
static void out_send_frame(struct out_conn *c);

static void out_timer_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct out_conn *c = op->user;
    c->pending--;
    if (c->closing) {
        out_close(c);
        return;
    }
    if (res < 0 || !c->waiting_ack)
        return;
    LBW_WARN("net", "no ack from %s within %llu s", c->hop,
             (unsigned long long)S(c->net->o.ack_timeout_ns));
    out_fail(c, -ETIMEDOUT);
}

static void out_ack_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct out_conn *c = op->user;
    c->pending--;
    if (c->closing) {
        out_close(c);
        return;
    }
    if (!c->waiting_ack)
        return;
    c->waiting_ack = 0;
    lbw_cancel(r, &c->top);
    if (res != 1) {
        out_fail(c, res == 0 ? -ECONNRESET : (int)res);
        return;
    }
    if (c->ackb == 0) {
        out_fail(c, -EPROTO);
        return;
    }
    if (c->phase == PH_PING) {
        out_send_frame(c);
        return;
    }
    out_frame_sent(c);
}

static void out_wait_ack(struct out_conn *c)
{
    c->waiting_ack = 1;
    if (lbw_recv(c->net->r, &c->rop, c->fd, &c->ackb, 1, out_ack_cb) == 0)
        c->pending++;
    else {
        out_fail(c, -EIO);
        return;
    }
    if (lbw_timer(c->net->r, &c->top, c->net->o.ack_timeout_ns, 0, out_timer_cb) == 0)
        c->pending++;
}

static void out_sent_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct out_conn *c = op->user;
    c->pending--;
    if (c->closing) {
        out_close(c);
        return;
    }
    if (res < 0) {
        out_fail(c, (int)res);
        return;
    }
    /* head first, then the body (if any), then the ack */
    struct send_job *j = c->job;
    if (c->phase == PH_FRAME && j && j->fill) {
        if (op == &c->hop_send)
            j->sent = 0;
        else
            j->sent += j->chunk_len;
        if (j->sent < j->len) {
            size_t want = j->len - j->sent < STREAM_CHUNK ? (size_t)(j->len - j->sent)
                                                          : STREAM_CHUNK;
            ssize_t got = j->fill(j->fill_ctx, j->sent, j->chunk, want);
            if (got <= 0 || (size_t)got > want) {
                LBW_ERROR("net", "producing a streamed message body for %s failed at byte %llu"
                          " of %zu: %s", j->dst, (unsigned long long)j->sent, j->len,
                          got < 0 ? strerror((int)-got) : "short body");
                out_fail(c, got < 0 ? (int)got : -EIO);
                return;
            }
            j->chunk_len = (size_t)got;
            if (lbw_send(r, &c->body_send, c->fd, j->chunk, j->chunk_len, out_sent_cb) == 0)
                c->pending++;
            else
                out_fail(c, -EIO);
            return;
        }
    } else if (op == &c->hop_send && c->phase == PH_FRAME && j && j->len) {
        if (lbw_send(r, &c->body_send, c->fd, j->body, j->len, out_sent_cb) == 0)
            c->pending++;
        else
            out_fail(c, -EIO);
        return;
    }
    out_wait_ack(c);
}

/* Builds [preamble] + frame head for the current phase into c->head. */
static int out_build_head(struct out_conn *c, int with_preamble)
{
    struct lbw_msgnet *n = c->net;
    struct send_job *j = c->job;
    int ping = c->phase == PH_PING;
    const char *dst = ping ? c->hop : j->dst;
    size_t dst_len = ping ? strlen(c->hop) : j->dst_len;
    const char *src = !ping && j->src ? j->src : n->self;
    size_t src_len = !ping && j->src ? j->src_len : n->self_len;
    size_t hl = lbw_frame_head_len(src_len, dst_len, !ping && j->has_session);
    size_t pl = with_preamble ? 8 + n->self_len : 0;
    free(c->head);
    c->head = malloc(pl + hl);
    if (!c->head)
        return -ENOMEM;
    if (with_preamble)
        lbw_preamble_write(c->head, n->self, n->self_len);
    lbw_frame_write_head(c->head + pl, ping ? LBW_MSG_SYSTEM_PING : j->type,
                         !ping && j->has_session ? j->session : NULL, src, src_len,
                         dst, dst_len, ping ? 0 : j->len);
    c->head_len = pl + hl;
    return 0;
}

static void out_send_head(struct out_conn *c, int with_preamble)
{
    int rc = out_build_head(c, with_preamble);
    if (rc == 0 &&
        lbw_send(c->net->r, &c->hop_send, c->fd, c->head, c->head_len, out_sent_cb) == 0) {
        c->pending++;
        return;
    }
    out_fail(c, rc ? rc : -EIO);
}

static void out_send_frame(struct out_conn *c)
{
    c->phase = PH_FRAME;
    out_send_head(c, 0);
}

static void out_idle_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct out_conn *c = op->user;
    c->pending--;
    c->idle_ops--;
    if (c->closing) {
        out_close(c);
        return;
    }
    if (c->reusing) {
        /* taken for a send: both watchers must be back before the ping */
        if (op == &c->irop && res != -ECANCELED)
            c->idle_broke = 1; /* the peer closed (or spoke) just before */
        if (c->idle_ops)
            return;
        c->reusing = 0;
        if (c->idle_broke) {
            out_fail(c, -ECONNRESET); /* stale: the job goes out on a new connection */
            return;
        }
        out_send_head(c, 0);
        return;
    }
    if (res == -ECANCELED)
        return;
    if (op == &c->itop)
        LBW_DEBUG("net", "closing the idle connection to %s after %llu s", c->hop,
                  (unsigned long long)S(c->net->o.pool_idle_ns));
    else
        LBW_DEBUG("net", "the idle connection to %s was %s by the peer", c->hop,
                  res == 0 ? "closed" : res < 0 ? "reset" : "spoken on");
    out_close(c);
}

/* An idle pooled connection keeps a read posted (so a peer's close is
 * seen at once, not at the next send) and a timer for its pool life. */
static void out_watch_idle(struct out_conn *c)
{
    lbw_reactor *r = c->net->r;
    if (lbw_recv(r, &c->irop, c->fd, &c->idleb, 1, out_idle_cb) == 0) {
        c->pending++;
        c->idle_ops++;
    }
    if (lbw_timer(r, &c->itop, c->net->o.pool_idle_ns, 0, out_idle_cb) == 0) {
        c->pending++;
        c->idle_ops++;
    }
}

/* Takes an idle connection for a job: the watchers are cancelled first,
 * then the SYSTEM_PING goes out (out_idle_cb). */
static void out_reuse(struct out_conn *c, struct send_job *j)
{
    c->state = OC_BUSY;
    c->job = j;
    c->phase = PH_PING;
    c->idle_broke = 0;
    if (!c->idle_ops) {
        out_send_head(c, 0);
        return;
    }
    c->reusing = 1;
    lbw_cancel(c->net->r, &c->irop);
    lbw_cancel(c->net->r, &c->itop);
}

static void out_frame_sent(struct out_conn *c)
{
    struct send_job *j = c->job;
    c->job = NULL;
    c->phase = PH_NONE;
    c->state = OC_IDLE;
    c->last_used = lbw_now_ns();
    c->net->st.frames_out++;
    out_watch_idle(c);
    schedule_kick(c->net);
    j->cb(j->ctx, 0);
    job_free(j);
    c->net->live--;
    net_maybe_free(c->net);
}

static void out_connected_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct out_conn *c = op->user;
    c->pending--;
    if (c->closing) {
        out_close(c);
        return;
    }
    if (res < 0) {
        LBW_DEBUG("net", "connecting to %s failed: %s", c->hop, strerror((int)-res));
        out_fail(c, (int)res);
        return;
    }
    lbw_tcp_nodelay(c->fd);
    c->state = OC_BUSY;
    c->phase = PH_FRAME;
    out_send_head(c, 1); /* preamble + the frame, no ping on a new connection */
}

/* Hosts in destination chains must be numeric: chains come from frames
 * (upstream always puts addresses there) and a name would have to be
 * resolved inside the event loop. */
static int hop_sockaddr(struct lbw_msgnet *n, const char *hop, size_t len,
                        struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[LBW_ADDR_MAX + 1];
    uint16_t port;
    if (lbw_addr_split(hop, len, host, sizeof(host), &port) < 0)
        return -EINVAL;
    if (lbw_sockaddr_from(host, port, ss, sl) == 0)
        return 0;
    n->st.names_refused++;
    if (lbw_seen_due(&n->seen, host, lbw_now_ns(), 60ull * 1000000000ull))
        LBW_WARN("net", "not sending to '%s': host names are not resolved in address chains "
                        "(give a numeric address)", host);
    return -EINVAL;
}

static int hop_is_preferred(const struct lbw_msgnet *n, const char *hop, size_t hl)
{
    for (size_t i = 0; i < n->npref; i++)
        if (strlen(n->pref_hop[i]) == hl && !memcmp(n->pref_hop[i], hop, hl))
            return 1;
    return 0;
}

enum { SLOT_WAIT, SLOT_REUSE, SLOT_NEW };

/* Where a send to `hop` can go now: an idle connection to it, a new one
 * (perhaps after closing *victim, the least recently used idle connection
 * to another hop), or nowhere yet. */
static int out_slot(struct lbw_msgnet *n, const char *hop, size_t hl, int pref,
                    struct out_conn **reuse, struct out_conn **victim)
{
    size_t total = 0, to_hop = 0;
    *reuse = *victim = NULL;
    for (struct out_conn *c = n->outs; c; c = c->next) {
        if (c->closing)
            continue;
        total++;
        int same = strlen(c->hop) == hl && !memcmp(c->hop, hop, hl);
        if (c->state != OC_IDLE || c->reusing)
            to_hop += (size_t)same;
        else if (same)
            *reuse = c;
        else if ((pref || !hop_is_preferred(n, c->hop, strlen(c->hop))) &&
                 (!*victim || c->last_used < (*victim)->last_used))
            *victim = c; /* never the scheduler's idle connection for a stranger */
        if (same && c->state == OC_IDLE && !c->reusing)
            to_hop++;
    }
    if (*reuse)
        return SLOT_REUSE;
    if (!pref && to_hop >= n->o.max_out_per_dest)
        return SLOT_WAIT;
    size_t cap = pref ? n->o.max_out : n->o.max_out - n->o.max_out / 4;
    if (total < cap) {
        *victim = NULL;
        return SLOT_NEW;
    }
    return *victim ? SLOT_NEW : SLOT_WAIT;
}

static void queue_full(struct lbw_msgnet *n, const char *dst)
{
    n->st.sends_refused++;
    if (lbw_seen_due(&n->seen, "(queue)", lbw_now_ns(), 60ull * 1000000000ull))
        LBW_WARN("net", "%zu sends already wait for a connection: refusing one to %s "
                        "(shown once a minute)", n->nqueued, dst);
}

/* A send that must wait for a connection (send_common refuses new ones
 * beyond the bound; a retry that finds the queue full fails). */
static void job_enqueue(struct send_job *j)
{
    struct lbw_msgnet *n = j->net;
    if (!j->preferred && n->nqueued >= n->o.max_queued) {
        queue_full(n, j->dst);
        j->attempt = n->o.attempts; /* no retry: this is the bound */
        job_fail(j, -ENOBUFS);
        return;
    }
    n->st.sends_queued++;
    j->queued = 1;
    if (!j->preferred)
        n->nqueued++;
    lbw_list_add_tail(&n->queue, &j->qlink);
    schedule_kick(n);
}

static void kick_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_msgnet *n = op->user;
    n->live--;
    if (n->closing) {
        net_maybe_free(n);
        return;
    }
    /* sends to the preferred peer first, then the others in order */
    for (int pass = 0; pass < 2; pass++) {
        struct lbw_list *pos, *tmp;
        lbw_list_for_each_safe(pos, tmp, &n->queue) {
            struct send_job *j = lbw_list_entry(pos, struct send_job, qlink);
            if (j->preferred != (pass == 0))
                continue;
            struct out_conn *reuse, *victim;
            size_t hl = lbw_chain_first_len(j->dst, j->dst_len);
            if (out_slot(n, j->dst, hl, j->preferred, &reuse, &victim) == SLOT_WAIT)
                continue;
            lbw_list_del(&j->qlink);
            j->queued = 0;
            if (!j->preferred)
                n->nqueued--;
            job_attempt(j);
            /* job_attempt may have closed connections: start over later */
            schedule_kick(n);
            return;
        }
    }
}

static void schedule_kick(struct lbw_msgnet *n)
{
    if (n->closing || lbw_list_empty(&n->queue) || lbw_op_pending(&n->kick))
        return;
    if (lbw_timer(n->r, &n->kick, 1, 0, kick_cb) == 0)
        n->live++;
}

static void job_attempt(struct send_job *j)
{
    struct lbw_msgnet *n = j->net;
    size_t hl = lbw_chain_first_len(j->dst, j->dst_len);
    struct out_conn *reuse, *victim;
    int slot = out_slot(n, j->dst, hl, j->preferred, &reuse, &victim);
    if (slot == SLOT_REUSE) {
        out_reuse(reuse, j);
        return;
    }
    if (slot == SLOT_WAIT) {
        job_enqueue(j);
        return;
    }
    if (victim)
        out_close(victim);
    struct out_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        job_fail(j, -ENOMEM);
        return;
    }
    c->net = n;
    c->fd = -1;
    memcpy(c->hop, j->dst, hl);
    c->hop[hl] = 0;
    c->cop.user = c->hop_send.user = c->body_send.user = c->rop.user = c->top.user = c;
    c->irop.user = c->itop.user = c;
    c->next = n->outs;
    if (n->outs)
        n->outs->prev = c;
    n->outs = c;
    n->live++;
    c->job = j;
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = hop_sockaddr(n, c->hop, hl, &ss, &sl);
    if (rc == 0) {
        c->fd = lbw_tcp_socket(&ss);
        rc = c->fd < 0 ? c->fd : 0;
    }
    if (rc == 0 && lbw_connect(n->r, &c->cop, c->fd, (struct sockaddr *)&ss, sl,
                               out_connected_cb) == 0) {
        c->pending++;
        c->state = OC_CONNECTING;
        return;
    }
    out_fail(c, rc ? rc : -EIO);
}

static void backoff_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct send_job *j = op->user;
    j->net->live--; /* the timer; job_fail accounts for the job itself */
    if (res < 0 || j->net->closing) {
        job_fail(j, -ECANCELED);
        return;
    }
    job_attempt(j);
}

static void job_fail(struct send_job *j, int err)
{
    struct lbw_msgnet *n = j->net;
    j->attempt++;
    if (err != -ECANCELED && !n->closing && j->attempt < n->o.attempts) {
        uint64_t wait = n->o.backoff_ns << (j->attempt - 1);
        if (lbw_timer(n->r, &j->backoff, wait, 0, backoff_cb) == 0) {
            n->live++;
            return;
        }
    }
    n->st.send_failures++;
    LBW_DEBUG("net", "sending to %s failed after %u attempt(s): %s", j->dst, j->attempt,
              strerror(-err));
    j->cb(j->ctx, err);
    job_free(j);
    n->live--;
    net_maybe_free(n);
}

static int send_common(struct lbw_msgnet *n, const char *src, const char *dst, uint16_t type,
                       const uint8_t *session, const void *body, size_t len,
                       lbw_msg_fill_cb fill, void *fill_ctx, lbw_msg_sent_cb cb, void *ctx)
{
    if (n->closing)
        return -ESHUTDOWN;
    size_t dl = strlen(dst);
    if (dl == 0 || !lbw_chain_is_valid(dst, dl) || !cb)
        return -EINVAL;
    struct sockaddr_storage ss;
    socklen_t sl;
    size_t hl = lbw_chain_first_len(dst, dl);
    if (hop_sockaddr(n, dst, hl, &ss, &sl) < 0)
        return -EINVAL;
    int pref = hop_is_preferred(n, dst, hl);
    struct out_conn *reuse, *victim;
    if (!pref && n->nqueued >= n->o.max_queued &&
        out_slot(n, dst, hl, 0, &reuse, &victim) == SLOT_WAIT) {
        queue_full(n, dst);
        return -ENOBUFS;
    }
    struct send_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->net = n;
    j->dst = strdup(dst);
    j->dst_len = dl;
    if (src) {
        j->src = strdup(src);
        j->src_len = strlen(src);
    }
    j->type = type;
    j->has_session = session != NULL;
    if (session)
        memcpy(j->session, session, 16);
    if (fill) {
        j->fill = fill;
        j->fill_ctx = fill_ctx;
        j->chunk = len ? malloc(len < STREAM_CHUNK ? len : STREAM_CHUNK) : NULL;
    } else {
        j->body = len ? malloc(len) : NULL;
        if (j->body)
            memcpy(j->body, body, len);
    }
    if (!j->dst || (src && !j->src) || (len && !j->body && !j->chunk)) {
        job_free(j);
        return -ENOMEM;
    }
    j->len = len;
    j->cb = cb;
    j->ctx = ctx;
    j->backoff.user = j;
    j->preferred = pref;
    lbw_list_init(&j->qlink);
    n->live++;
    job_attempt(j);
    return 0;
}

int lbw_msgnet_send(struct lbw_msgnet *n, const char *dst, uint16_t type,
                    const uint8_t *session, const void *body, size_t len, lbw_msg_sent_cb cb,
                    void *ctx)
{
    return send_common(n, NULL, dst, type, session, body, len, NULL, NULL, cb, ctx);
}

int lbw_msgnet_send_stream(struct lbw_msgnet *n, const char *dst, uint16_t type,
                           const uint8_t *session, size_t len, lbw_msg_fill_cb fill,
                           void *fill_ctx, lbw_msg_sent_cb cb, void *ctx)
{
    if (!fill)
        return -EINVAL;
    return send_common(n, NULL, dst, type, session, NULL, len, fill, fill_ctx, cb, ctx);
}

void lbw_msgnet_drain(struct lbw_msgnet *n) { n->draining = 1; }

/* ---- sessions ---------------------------------------------------------------- */

int lbw_msgnet_expect(struct lbw_msgnet *n, const uint8_t session[16], lbw_msg_frame_cb cb,
                      void *ctx)
{
    int rc = lbw_grow(&n->exp, &n->cexp, n->nexp + 1, sizeof(*n->exp));
    if (rc < 0)
        return rc;
    memcpy(n->exp[n->nexp].session, session, 16);
    n->exp[n->nexp].cb = cb;
    n->exp[n->nexp].ctx = ctx;
    n->nexp++;
    return 0;
}

void lbw_msgnet_unexpect(struct lbw_msgnet *n, const uint8_t session[16])
{
    for (size_t i = 0; i < n->nexp; i++) {
        if (!memcmp(n->exp[i].session, session, 16)) {
            n->exp[i] = n->exp[--n->nexp];
            return;
        }
    }
}

/* ---- the net ----------------------------------------------------------------- */

struct lbw_msgnet *lbw_msgnet_new(lbw_reactor *r, const struct lbw_msgnet_opts *o,
                                  lbw_msg_frame_cb on_request, void *ctx)
{
    if (!o || !o->self || !lbw_addr_is_direct(o->self, strlen(o->self)))
        return NULL;
    struct lbw_msgnet *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->r = r;
    n->o = *o;
    n->self = strdup(o->self);
    if (!n->self) {
        free(n);
        return NULL;
    }
    n->self_len = strlen(n->self);
    n->o.self = n->self;
    if (!n->o.idle_timeout_ns)
        n->o.idle_timeout_ns = 90ull * 1000000000ull;
    if (!n->o.frame_timeout_ns)
        n->o.frame_timeout_ns = 90ull * 1000000000ull;
    if (!n->o.ack_timeout_ns)
        n->o.ack_timeout_ns = 90ull * 1000000000ull;
    if (!n->o.attempts)
        n->o.attempts = 2;
    if (!n->o.backoff_ns)
        n->o.backoff_ns = 1000000000ull;
    if (!n->o.pool_idle_ns)
        n->o.pool_idle_ns = 300ull * 1000000000ull;
    if (!n->o.max_connections)
        n->o.max_connections = 4096;
    if (!n->o.max_per_source)
        n->o.max_per_source = 64;
    if (!n->o.reserved)
        n->o.reserved = 64;
    if (!n->o.preamble_timeout_ns)
        n->o.preamble_timeout_ns = 10ull * 1000000000ull;
    if (!n->o.max_frame)
        n->o.max_frame = LBW_FRAME_MAX_DEFAULT;
    if (!n->o.max_buffered)
        n->o.max_buffered = 256ull << 20;
    if (!n->o.max_out)
        n->o.max_out = 256;
    if (!n->o.max_out_per_dest)
        n->o.max_out_per_dest = 4;
    if (!n->o.max_queued)
        n->o.max_queued = 1024;
    if (lbw_cidr_set_copy(&n->allow, o->allow) < 0) {
        free(n->self);
        free(n);
        return NULL;
    }
    n->o.allow = NULL;
    n->on_request = on_request;
    n->ctx = ctx;
    lbw_list_init(&n->queue);
    n->kick.user = n;
    return n;
}

int lbw_msgnet_listen(struct lbw_msgnet *n, int fd)
{
    struct lbw_acceptor_opts ao = {
        .name = "net",
        .max_conns = n->o.max_connections,
        .per_source = n->o.max_per_source,
        .reserved = n->o.reserved,
        .probation_ns = n->o.preamble_timeout_ns,
        .admit = n->allow.n ? in_admit : NULL,
        .on_conn = in_new,
        .evict = in_evict,
        .ctx = n,
    };
    n->acc = lbw_acceptor_new(n->r, fd, &ao);
    if (!n->acc) {
        close(fd); /* the net owns it either way */
        return -ENOMEM;
    }
    for (size_t i = 0; i < n->npref; i++)
        lbw_acceptor_prefer(n->acc, n->pref_ip[i]);
    return 0;
}

int lbw_msgnet_relisten(struct lbw_msgnet *n, const char *self, int listen_fd)
{
    if (n->closing || !self || !lbw_addr_is_direct(self, strlen(self)))
        return -EINVAL;
    char *s = strdup(self);
    if (!s)
        return -ENOMEM;
    free(n->self);
    n->self = s;
    n->self_len = strlen(s);
    n->o.self = s;
    /* idle connections were opened under the old identity (perhaps from an
     * address that is gone): the next send opens a new one */
    for (struct out_conn *c = n->outs, *next; c; c = next) {
        next = c->next;
        if (c->state == OC_IDLE && !c->closing)
            out_close(c);
    }
    /* The open incoming connections go on (no longer counted by the old
     * acceptor); new ones arrive on the new socket. */
    if (n->acc)
        lbw_acceptor_close(n->acc);
    n->acc = NULL;
    return lbw_msgnet_listen(n, listen_fd);
}

static void net_maybe_free(struct lbw_msgnet *n)
{
    if (!n->closing || n->live > 0)
        return;
    lbw_cidr_set_free(&n->allow);
    free(n->exp);
    free(n->self);
    free(n);
}

void lbw_msgnet_close(struct lbw_msgnet *n)
{
    if (n->closing)
        return;
    n->closing = 1;
    n->live++; /* hold the net while closing things below */
    if (n->acc)
        lbw_acceptor_close(n->acc);
    n->acc = NULL;
    if (lbw_op_pending(&n->kick))
        lbw_cancel(n->r, &n->kick);
    while (!lbw_list_empty(&n->queue)) {
        struct send_job *j = lbw_list_entry(n->queue.next, struct send_job, qlink);
        lbw_list_del(&j->qlink);
        if (!j->preferred)
            n->nqueued--;
        job_fail(j, -ECANCELED);
    }
    for (struct in_conn *c = n->ins, *next; c; c = next) {
        next = c->next;
        in_close(c);
    }
    for (struct out_conn *c = n->outs, *next; c; c = next) {
        next = c->next;
        if (c->job) {
            struct send_job *j = c->job;
            c->job = NULL;
            job_fail(j, -ECANCELED);
        }
        out_close(c);
    }
    n->live--;
    net_maybe_free(n);
}
