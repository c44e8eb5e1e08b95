/* msgnet.c — see msgnet.h.
 *
 * Lifetime rule for connections: every reactor op a connection starts is
 * counted in conn->pending; closing cancels them, and the connection is
 * freed when the last callback has run. The net itself is freed when it is
 * closed and nothing of it is pending any more. */
#include "msgnet.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "address.h"
#include "log.h"
#include "sock.h"

#define RBUF 65536
#define STREAM_CHUNK (256u * 1024u)
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
    int lfd;
    int next_lfd; /* lbw_msgnet_relisten: taken when the accept op comes back */
    struct lbw_op aop;
    int closing;
    int draining; /* refuse new exchanges (ack 0), keep serving replies */
    size_t live; /* connections + pending net-level ops + queued jobs */
    struct in_conn *ins;
    size_t nins;
    struct out_conn *outs;
    struct expect *exp;
    size_t nexp, cexp;
    struct lbw_msgnet_stats st;
};

struct in_conn {
    struct lbw_msgnet *net;
    int fd;
    int closing;
    unsigned pending;
    struct lbw_op rop, sop, top;
    struct lbw_frame_dec dec;
    uint8_t *buf;
    size_t len, pos;
    uint8_t ackb;
    int was_mid;
    uint64_t deadline;
    char peer[80];
    struct in_conn *next, *prev;
};

enum { OC_CONNECTING, OC_IDLE, OC_BUSY };
enum { PH_NONE, PH_PING, PH_FRAME };

struct send_job {
    struct lbw_msgnet *net;
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
    uint8_t *head;
    size_t head_len;
    uint8_t ackb;
    struct send_job *job;
    uint64_t last_used;
    struct out_conn *next, *prev;
};

static void net_maybe_free(struct lbw_msgnet *n);
static void job_attempt(struct send_job *j);
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

void lbw_msgnet_stats(const struct lbw_msgnet *n, struct lbw_msgnet_stats *s) { *s = n->st; }

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
    lbw_frame_dec_reset(&c->dec);
    free(c->buf);
    free(c);
    n->live--;
    net_maybe_free(n);
}

static void in_close(struct in_conn *c)
{
    if (!c->closing) {
        c->closing = 1;
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
    if (c->closing || res != 1) {
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
    if (lbw_chain_first_len(f->dst, f->dst_len) != f->dst_len) {
        LBW_WARN("net", "frame from %s names further hops (%s); a worker does not forward: "
                        "refused", c->peer, f->dst);
        n->st.acks_sent_0++;
        return 0;
    }
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
        in_update_deadline(c);
        c->ackb = (uint8_t)in_handle(c, &f);
        lbw_frame_free(&f);
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

static void accept_retry_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void take_next_listener(struct lbw_msgnet *n)
{
    if (n->next_lfd < 0)
        return;
    close(n->lfd);
    n->lfd = n->next_lfd;
    n->next_lfd = -1;
}

static void accept_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_msgnet *n = op->user;
    n->live--;
    if (n->closing) {
        if (res >= 0)
            close((int)res);
        net_maybe_free(n);
        return;
    }
    if (res >= 0) {
        int fd = (int)res;
        struct in_conn *c = NULL;
        if (n->nins >= n->o.max_connections) {
            LBW_WARN("net", "refusing a connection: %zu connections already open",
                     n->nins);
            close(fd);
        } else if (!(c = calloc(1, sizeof(*c))) || !(c->buf = malloc(RBUF))) {
            free(c);
            close(fd);
            c = NULL;
        }
        if (c) {
            c->net = n;
            c->fd = fd;
            c->rop.user = c->sop.user = c->top.user = c;
            struct lbw_frame_limits lim = {.max_frame = n->o.max_frame};
            lbw_frame_dec_init(&c->dec, &lim, 1);
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            char host[64] = "?";
            int port = 0;
            if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
                getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), NULL, 0,
                            NI_NUMERICHOST) == 0)
                port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                               : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
            c->next = n->ins;
            if (n->ins)
                n->ins->prev = c;
            n->ins = c;
            n->nins++;
            n->live++;
            c->deadline = lbw_now_ns() + n->o.idle_timeout_ns;
            if (lbw_timer(r, &c->top, n->o.idle_timeout_ns, 0, in_timer_cb) == 0)
                c->pending++;
            in_arm_recv(c);
        }
    } else if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED && res != -ECANCELED) {
        LBW_ERROR("net", "accepting connections failed: %s%s", strerror((int)-res),
                  res == -EMFILE || res == -ENFILE ? "; retrying in 1 s" : "");
        /* Out of descriptors (or worse): keep serving the open connections
         * and try again later rather than spin. */
        if (lbw_timer(r, &n->aop, 1000000000ull, 0, accept_retry_cb) == 0)
            n->live++;
        return;
    }
    take_next_listener(n);
    if (lbw_accept(r, &n->aop, n->lfd, accept_cb) == 0)
        n->live++;
}

static void accept_retry_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_msgnet *n = op->user;
    n->live--;
    if (n->closing) {
        net_maybe_free(n);
        return;
    }
    take_next_listener(n);
    if (lbw_accept(r, &n->aop, n->lfd, accept_cb) == 0)
        n->live++;
}

/* ---- outgoing ---------------------------------------------------------------- */

static void job_free(struct send_job *j)
{
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
    size_t hl = lbw_frame_head_len(n->self_len, dst_len, !ping && j->has_session);
    size_t pl = with_preamble ? 8 + n->self_len : 0;
    free(c->head);
    c->head = malloc(pl + hl);
    if (!c->head)
        return -ENOMEM;
    if (with_preamble)
        lbw_preamble_write(c->head, n->self, n->self_len);
    lbw_frame_write_head(c->head + pl, ping ? LBW_MSG_SYSTEM_PING : j->type,
                         !ping && j->has_session ? j->session : NULL, n->self, n->self_len,
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

static void out_frame_sent(struct out_conn *c)
{
    struct send_job *j = c->job;
    c->job = NULL;
    c->phase = PH_NONE;
    c->state = OC_IDLE;
    c->last_used = lbw_now_ns();
    c->net->st.frames_out++;
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

static int resolve(const char *hop, size_t len, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[LBW_ADDR_MAX + 1];
    uint16_t port;
    if (lbw_addr_split(hop, len, host, sizeof(host), &port) < 0)
        return -EINVAL;
    if (lbw_sockaddr_from(host, port, ss, sl) == 0)
        return 0;
    /* A host name: resolved synchronously (rare; scheduler addresses are
     * normally numeric). */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return -EHOSTUNREACH;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
    freeaddrinfo(ai);
    return 0;
}

static void job_attempt(struct send_job *j)
{
    struct lbw_msgnet *n = j->net;
    size_t hl = lbw_chain_first_len(j->dst, j->dst_len);
    uint64_t now = lbw_now_ns();
    /* Reuse an idle connection to the same first hop, after a ping. Idle
     * ones past their life are closed on the way. */
    for (struct out_conn *c = n->outs, *next; c; c = next) {
        next = c->next;
        if (c->state != OC_IDLE || c->closing)
            continue;
        if (now - c->last_used > n->o.pool_idle_ns) {
            out_close(c);
            continue;
        }
        if (strlen(c->hop) == hl && !memcmp(c->hop, j->dst, hl)) {
            c->state = OC_BUSY;
            c->job = j;
            c->phase = PH_PING;
            out_send_head(c, 0);
            return;
        }
    }
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
    c->next = n->outs;
    if (n->outs)
        n->outs->prev = c;
    n->outs = c;
    n->live++;
    c->job = j;
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = resolve(c->hop, hl, &ss, &sl);
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

static int send_common(struct lbw_msgnet *n, const char *dst, uint16_t type,
                       const uint8_t *session, const void *body, size_t len,
                       lbw_msg_fill_cb fill, void *fill_ctx, lbw_msg_sent_cb cb, void *ctx)
{
    if (n->closing)
        return -ESHUTDOWN;
    size_t dl = strlen(dst);
    if (dl == 0 || !lbw_chain_is_valid(dst, dl) || !cb)
        return -EINVAL;
    struct send_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->net = n;
    j->dst = strdup(dst);
    j->dst_len = dl;
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
    if (!j->dst || (len && !j->body && !j->chunk)) {
        job_free(j);
        return -ENOMEM;
    }
    j->len = len;
    j->cb = cb;
    j->ctx = ctx;
    j->backoff.user = j;
    n->live++;
    job_attempt(j);
    return 0;
}

int lbw_msgnet_send(struct lbw_msgnet *n, const char *dst, uint16_t type,
                    const uint8_t *session, const void *body, size_t len, lbw_msg_sent_cb cb,
                    void *ctx)
{
    return send_common(n, dst, type, session, body, len, NULL, NULL, cb, ctx);
}

int lbw_msgnet_send_stream(struct lbw_msgnet *n, const char *dst, uint16_t type,
                           const uint8_t *session, size_t len, lbw_msg_fill_cb fill,
                           void *fill_ctx, lbw_msg_sent_cb cb, void *ctx)
{
    if (!fill)
        return -EINVAL;
    return send_common(n, dst, type, session, NULL, len, fill, fill_ctx, cb, ctx);
}

void lbw_msgnet_drain(struct lbw_msgnet *n) { n->draining = 1; }

/* ---- sessions ---------------------------------------------------------------- */

int lbw_msgnet_expect(struct lbw_msgnet *n, const uint8_t session[16], lbw_msg_frame_cb cb,
                      void *ctx)
{
    if (n->nexp == n->cexp) {
        size_t cap = n->cexp ? n->cexp * 2 : 8;
        struct expect *e = realloc(n->exp, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        n->exp = e;
        n->cexp = cap;
    }
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
    n->on_request = on_request;
    n->ctx = ctx;
    n->lfd = -1;
    n->next_lfd = -1;
    n->aop.user = n;
    return n;
}

int lbw_msgnet_listen(struct lbw_msgnet *n, int fd)
{
    n->lfd = fd;
    int rc = lbw_accept(n->r, &n->aop, fd, accept_cb);
    if (rc == 0)
        n->live++;
    return rc;
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
    if (n->next_lfd >= 0)
        close(n->next_lfd);
    n->next_lfd = listen_fd;
    /* idle connections were opened under the old identity (perhaps from an
     * address that is gone): the next send opens a new one */
    for (struct out_conn *c = n->outs, *next; c; c = next) {
        next = c->next;
        if (c->state == OC_IDLE && !c->closing)
            out_close(c);
    }
    if (lbw_op_pending(&n->aop)) {
        lbw_cancel(n->r, &n->aop); /* its callback takes the new listener */
    } else if (n->lfd >= 0) {
        take_next_listener(n);
        if (lbw_accept(n->r, &n->aop, n->lfd, accept_cb) == 0)
            n->live++;
    } else {
        n->lfd = n->next_lfd;
        n->next_lfd = -1;
    }
    return 0;
}

static void net_maybe_free(struct lbw_msgnet *n)
{
    if (!n->closing || n->live > 0)
        return;
    if (n->lfd >= 0)
        close(n->lfd);
    if (n->next_lfd >= 0)
        close(n->next_lfd);
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
    if (lbw_op_pending(&n->aop))
        lbw_cancel(n->r, &n->aop);
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
