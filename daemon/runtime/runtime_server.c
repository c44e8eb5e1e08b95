/* runtime_server.c — the payload runtime API server and the mailboxes (see
 * runtime_server.h).
 *
 * Lifetime rule for connections (as in msgnet.c): every reactor op and
 * relay call a connection starts is counted in conn->pending; closing
 * cancels them and the connection is freed when the last one has come
 * back. The server is freed after lbw_rt_close once no connection, accept
 * or timer of it is left. */
#include "runtime_server.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acceptor.h"
#include "buf.h"
#include "bytes.h"
#include "cidr.h"
#include "invocation.h"
#include "json.h"
#include "log.h"
#include "rpc.h"
#include "sock.h"
#include "sockowner.h"
#include "utf8.h"

#define SEC 1000000000ull
#define MIN_READ 4096
#define OVERALL_MIN 300.0 /* forward_invocation_message's overall timeout floor */

/* ---- parsing ------------------------------------------------------------------ */

static float bef32(const uint8_t *p)
{
    uint32_t u = lbw_be32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

long lbw_rt_parse_hello(const uint8_t *buf, size_t n, size_t *consumed, int *has_v10)
{
    if (n < 8)
        return 8;
    uint64_t count = lbw_be64(buf);
    if (count > LBW_RT_MAX_VERSIONS)
        return -1;
    size_t need = 8 + (size_t)count * 8;
    if (n < need)
        return (long)need;
    *has_v10 = 0;
    for (uint64_t i = 0; i < count; i++)
        if (lbw_be32(buf + 8 + i * 8) == 1 && lbw_be32(buf + 12 + i * 8) == 0)
            *has_v10 = 1;
    *consumed = need;
    return 0;
}

/* A cursor over the request; each take either succeeds or records how
 * many bytes it needed (or an error). */
struct cur {
    const uint8_t *b;
    size_t n, off;
    size_t need;      /* > 0: incomplete */
    int bad;
    char *err;
    size_t errlen;
};

static int cur_ok(struct cur *c) { return !c->need && !c->bad; }

static const uint8_t *take(struct cur *c, uint64_t len)
{
    if (!cur_ok(c))
        return NULL;
    if (len > c->n - c->off) {
        c->need = c->off + (size_t)len;
        return NULL;
    }
    const uint8_t *p = c->b + c->off;
    c->off += (size_t)len;
    return p;
}

static uint64_t take64(struct cur *c)
{
    const uint8_t *p = take(c, 8);
    return p ? lbw_be64(p) : 0;
}

static void fail(struct cur *c, const char *fmt, const char *what, uint64_t v)
{
    if (c->bad || c->need)
        return;
    c->bad = 1;
    snprintf(c->err, c->errlen, fmt, what, (unsigned long long)v);
}

/* An `S` string of at most max bytes, valid UTF-8. */
static const char *take_str(struct cur *c, size_t max, const char *what, size_t *len)
{
    uint64_t l = take64(c);
    if (!cur_ok(c))
        return NULL;
    if (l > max) {
        fail(c, "%s of %llu bytes is over the limit", what, l);
        return NULL;
    }
    const uint8_t *p = take(c, l);
    if (p && !lbw_utf8_valid(p, (size_t)l)) {
        fail(c, "%s is not UTF-8%.0llu", what, 0);
        return NULL;
    }
    *len = (size_t)l;
    return (const char *)p;
}

static void check_body(struct cur *c, uint64_t len, size_t max_body, const char *what)
{
    if (cur_ok(c) && len > max_body)
        fail(c, "%s of %llu bytes is over the limit", what, len);
}

long lbw_rt_parse_request(const uint8_t *buf, size_t n, size_t max_body, struct lbw_rt_req *req,
                          char *err, size_t errlen)
{
    struct cur c = {.b = buf, .n = n, .err = err, .errlen = errlen};
    memset(req, 0, sizeof(*req));
    size_t cl = 0;
    const char *cmd = take_str(&c, LBW_RT_MAX_COMMAND, "the command name", &cl);
    if (!cur_ok(&c))
        goto out;
#define IS(s) (cl == sizeof(s) - 1 && !memcmp(cmd, s, cl))
    if (IS("spawn")) {
        req->cmd = LBW_RT_SPAWN;
        uint64_t l = take64(&c);
        check_body(&c, l, max_body, "a spawn pickle");
        req->data = take(&c, l);
        req->data_len = (size_t)l;
    } else if (IS("tupdateattribs")) {
        req->cmd = LBW_RT_TUPDATEATTRIBS;
        req->task_id = take64(&c);
        uint64_t jl = take64(&c);
        req->n_delete = take64(&c);
        check_body(&c, jl, max_body, "an attribute JSON");
        if (cur_ok(&c) && req->n_delete > LBW_RT_MAX_DELETE)
            fail(&c, "%s: %llu names is over the limit", "tupdateattribs", req->n_delete);
        req->data = take(&c, jl);
        req->data_len = (size_t)jl;
        if (req->data && !lbw_utf8_valid(req->data, req->data_len))
            fail(&c, "%s is not UTF-8%.0llu", "the attribute JSON", 0);
        req->delete_names = cur_ok(&c) ? buf + c.off : NULL;
        for (uint64_t i = 0; i < req->n_delete && cur_ok(&c); i++) {
            size_t l;
            take_str(&c, LBW_RT_MAX_NAME, "an attribute name", &l);
            if (cur_ok(&c) && c.off > max_body + 24 + jl)
                fail(&c, "%s: the names to delete exceed %llu bytes", "tupdateattribs",
                     max_body);
        }
    } else if (IS("sendinvmessage")) {
        req->cmd = LBW_RT_SENDINVMESSAGE;
        req->dst_iid = take64(&c);
        req->src_iid = take64(&c);
        uint64_t dl = take64(&c);
        const uint8_t *f = take(&c, 4);
        if (f)
            req->seconds = bef32(f);
        check_body(&c, dl, max_body, "a message");
        req->addressee = take_str(&c, LBW_RT_MAX_ADDRESSEE, "the addressee", &req->addressee_len);
        req->data = take(&c, dl);
        req->data_len = (size_t)dl;
    } else if (IS("recvinvmessage")) {
        req->cmd = LBW_RT_RECVINVMESSAGE;
        req->addressee = take_str(&c, LBW_RT_MAX_ADDRESSEE, "the addressee", &req->addressee_len);
        const uint8_t *f = take(&c, 4);
        if (f)
            req->seconds = bef32(f);
    } else {
        char shown[LBW_RT_MAX_COMMAND + 1];
        memcpy(shown, cmd, cl);
        shown[cl] = 0;
        for (size_t i = 0; i < cl; i++)
            if ((unsigned char)shown[i] < 0x20)
                shown[i] = '?';
        snprintf(err, errlen, "unknown command '%s'", shown);
        return -1;
    }
#undef IS
out:
    if (c.bad)
        return -1;
    if (c.need)
        return (long)c.need;
    req->consumed = c.off;
    return 0;
}

int lbw_rt_delete_name(const struct lbw_rt_req *req, uint64_t i, const char **s, size_t *len)
{
    if (i >= req->n_delete)
        return -1;
    const uint8_t *p = req->delete_names;
    for (uint64_t k = 0;; k++) {
        uint64_t l = lbw_be64(p);
        if (k == i) {
            *s = (const char *)p + 8;
            *len = (size_t)l;
            return 0;
        }
        p += 8 + l;
    }
}

/* A usable addressee timeout from the payload's f32: upstream's client
 * never sends <= 0 (it substitutes 90); NaN and infinities are refused the
 * same way rather than forwarded as JSON NaN. */
static double send_timeout(float f)
{
    double t = f;
    if (!isfinite(t) || t <= 0)
        return 90.0;
    return t > 1e7 ? 1e7 : t;
}

char *lbw_rt_relay_args(const struct lbw_rt_req *req, size_t *len)
{
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    switch (req->cmd) {
    case LBW_RT_SPAWN:
        lbw_jw_key(&j, "task");
        lbw_jw_latin1(&j, req->data, req->data_len);
        break;
    case LBW_RT_TUPDATEATTRIBS:
        lbw_jw_key(&j, "task_id");
        lbw_jw_u64(&j, req->task_id);
        lbw_jw_key(&j, "attribs_to_update");
        lbw_jw_raw(&j, (const char *)req->data, req->data_len);
        lbw_jw_key(&j, "attribs_to_delete");
        lbw_jw_arr(&j);
        for (uint64_t i = 0; i < req->n_delete; i++) {
            const char *s;
            size_t l;
            lbw_rt_delete_name(req, i, &s, &l);
            lbw_jw_str(&j, s, l);
        }
        lbw_jw_arr_end(&j);
        break;
    case LBW_RT_SENDINVMESSAGE: {
        double t = send_timeout(req->seconds);
        lbw_jw_key(&j, "dst_invoc_id");
        lbw_jw_u64(&j, req->dst_iid);
        lbw_jw_key(&j, "src_invoc_id");
        lbw_jw_u64(&j, req->src_iid);
        lbw_jw_key(&j, "addressee");
        lbw_jw_str(&j, req->addressee, req->addressee_len);
        lbw_jw_key(&j, "addressee_timeout");
        lbw_jw_double(&j, t);
        lbw_jw_key(&j, "overall_timeout"); /* upstream: the int 300 unless t is larger */
        if (t > OVERALL_MIN)
            lbw_jw_double(&j, t);
        else
            lbw_jw_i64(&j, (int64_t)OVERALL_MIN);
        lbw_jw_key(&j, "message_data_raw");
        lbw_jw_latin1(&j, req->data, req->data_len);
        break;
    }
    case LBW_RT_RECVINVMESSAGE:
        break;
    }
    lbw_jw_obj_end(&j);
    return lbw_jw_take(&j, len);
}

/* ---- the server ------------------------------------------------------------------ */

enum conn_state {
    C_REQUEST,   /* reading negotiation + request */
    C_RELAY,     /* a call to the scheduler in flight */
    C_WAIT,      /* recvinvmessage: in the mailbox, slice timer running */
    C_ASK,       /* sent `? false`, waiting for the cancel byte */
    C_CLOSING,   /* flushing the answer, then closed */
};

struct delivery;

struct conn {
    struct lbw_rt *rt;
    struct lbw_acc_conn ac;    /* admission (kernel-iface/acceptor) */
    int fd;
    enum conn_state state;
    struct lbw_op rop, wop;
    struct lbw_op top;         /* deadline: the request, or the answer to `? false` */
    struct lbw_op sop;         /* recvinvmessage poll slice */
    unsigned pending;          /* ops + relay call */
    int closed;                /* fd closed / being torn down */
    uint8_t *buf;
    size_t len, cap;
    size_t hello_len;          /* negotiation bytes, once done (0 before) */
    struct lbw_rt_req req;
    struct lbw_call *call;
    /* answer bytes */
    struct lbw_buf out;
    size_t out_sent;
    int close_after;           /* close once the answer is written */
    /* recvinvmessage */
    char *addressee;
    size_t alen;
    uint64_t slice_ns;
    uint64_t wait_since;
    struct conn *next, *prev;  /* all connections */
};

struct delivery {
    struct lbw_rt *rt;
    char *addressee;
    size_t alen;
    uint64_t src;
    uint8_t *data;
    size_t len;
    lbw_rt_deliver_cb cb;
    void *ctx;
    struct lbw_op t;
    struct delivery *next, *prev;
};

struct lbw_rt {
    struct lbw_rt_opts o;
    lbw_reactor *r;
    struct lbw_acceptor *acc;
    struct lbw_seen seen;      /* refused users, for once-a-minute lines */
    unsigned live;             /* end timer, delivery timers */
    struct conn *conns;
    size_t nconns;
    size_t buffered;
    struct delivery *dels;     /* pending deliveries, oldest last */
    int have_inv;
    int64_t inv;
    int closing;
    int closed_sent;
    struct lbw_op end_t;
};

static void conn_close(struct conn *c);
static void conn_read(struct conn *c);
static void rt_maybe_end(struct lbw_rt *rt);
static void deliver_to(struct conn *c, struct delivery *d);

static void conn_maybe_free(struct conn *c)
{
    if (!c->closed || c->pending)
        return;
    struct lbw_rt *rt = c->rt;
    if (c->prev)
        c->prev->next = c->next;
    else
        rt->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    rt->nconns--;
    rt->buffered -= c->cap;
    lbw_acc_conn_done(&c->ac);
    close(c->fd);
    free(c->buf);
    lbw_buf_free(&c->out);
    free(c->addressee);
    free(c);
    rt_maybe_end(rt);
}

/* Cancels what is pending (the ops refer to the fd number, so the fd is
 * closed only once they are all back). */
static void conn_close(struct conn *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    c->state = C_CLOSING;
    lbw_acc_conn_done(&c->ac); /* its slot is free at once */
    lbw_reactor *r = c->rt->r;
    if (lbw_op_pending(&c->rop))
        lbw_cancel(r, &c->rop);
    if (lbw_op_pending(&c->wop))
        lbw_cancel(r, &c->wop);
    if (lbw_op_pending(&c->top))
        lbw_cancel(r, &c->top);
    if (lbw_op_pending(&c->sop))
        lbw_cancel(r, &c->sop);
    if (c->call)
        lbw_call_cancel(c->call);
    conn_maybe_free(c);
}

static void conn_flush(struct conn *c);

/* Ends a connection whose client broke a rule: what was already answered
 * (the version) is still written, as upstream's writer flushes on close;
 * nothing more is read. The request deadline bounds the flush. */
static void conn_bad(struct conn *c, const char *why)
{
    LBW_WARN("runtime", "payload connection closed: %s", why);
    if (c->out_sent == c->out.len) {
        conn_close(c);
        return;
    }
    c->state = C_CLOSING;
    if (lbw_op_pending(&c->rop))
        lbw_cancel(c->rt->r, &c->rop);
    if (lbw_op_pending(&c->sop))
        lbw_cancel(c->rt->r, &c->sop);
    c->close_after = 1;
    conn_flush(c);
}

/* ---- answers --------------------------------------------------------------------- */

static void write_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void conn_flush(struct conn *c)
{
    if (c->closed || lbw_op_pending(&c->wop))
        return;
    if (c->out_sent == c->out.len) {
        c->out_sent = c->out.len = 0;
        if (c->close_after)
            conn_close(c);
        return;
    }
    if (lbw_send(c->rt->r, &c->wop, c->fd, c->out.p + c->out_sent, c->out.len - c->out_sent,
                 write_cb) == 0)
        c->pending++;
    else
        conn_close(c);
}

static void write_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct conn *c = op->user;
    c->pending--;
    if (c->closed) {
        conn_maybe_free(c);
        return;
    }
    if (res < 0) {
        LBW_DEBUG("runtime", "writing to a payload failed: %s", strerror((int)-res));
        conn_close(c);
        return;
    }
    c->out_sent += (size_t)res;
    conn_flush(c);
}

static int conn_put(struct conn *c, const void *p, size_t n)
{
    return lbw_buf_append(&c->out, p, n) < 0 ? -1 : 0;
}

static void conn_answer(struct conn *c, const void *p, size_t n, int close_after)
{
    if (conn_put(c, p, n) < 0) {
        conn_close(c);
        return;
    }
    c->close_after = close_after;
    conn_flush(c);
}

static void answer_string(struct conn *c, const char *s)
{
    size_t l = strlen(s);
    uint8_t h[8];
    lbw_put_be64(h, l);
    if (conn_put(c, h, 8) < 0) {
        conn_close(c);
        return;
    }
    conn_answer(c, s, l, 1);
}

/* ---- relays ----------------------------------------------------------------------- */

static void relay_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct conn *c = ctx;
    c->pending--;
    c->call = NULL;
    if (c->closed) {
        conn_maybe_free(c);
        return;
    }
    switch (c->req.cmd) {
    case LBW_RT_SPAWN: {
        int64_t st = 0;
        uint64_t tid = 0;
        int t = status == 0 ? lbw_json_get(reply, 0, "status") : -1;
        if (t < 0 || lbw_json_i64(reply, t, &st) < 0 || st < 0 || st > UINT32_MAX) {
            LBW_WARN("runtime", "spawn from a payload: %s",
                     status ? strerror(-status) : "the scheduler's reply has no status");
            conn_close(c);
            return;
        }
        int k = lbw_json_get(reply, 0, "task_id");
        int has = k >= 0 && lbw_json_u64(reply, k, &tid) == 0;
        uint8_t a[13];
        lbw_put_be32(a, (uint32_t)st);
        a[4] = (uint8_t)has;
        lbw_put_be64(a + 5, has ? tid : 0);
        conn_answer(c, a, sizeof(a), 1);
        break;
    }
    case LBW_RT_TUPDATEATTRIBS: {
        int ok = 0;
        int t = status == 0 ? lbw_json_get(reply, 0, "ok") : -1;
        if (t < 0 || lbw_json_bool(reply, t, &ok) < 0 || !ok) {
            LBW_WARN("runtime", "tupdateattribs from a payload: %s",
                     status ? strerror(-status) : "the scheduler did not answer ok");
            conn_close(c);
            return;
        }
        uint8_t one = 1;
        conn_answer(c, &one, 1, 1);
        break;
    }
    case LBW_RT_SENDINVMESSAGE: {
        if (status == -ETIMEDOUT) {
            answer_string(c, "error-delivery-timeout");
            return;
        }
        int t = status == 0 ? lbw_json_get(reply, 0, "result") : -1;
        char *res = NULL;
        size_t rl;
        if (t < 0 || lbw_json_str(reply, t, &res, &rl) < 0 || rl > 256) {
            free(res);
            LBW_WARN("runtime", "sendinvmessage from a payload: %s",
                     status ? strerror(-status) : "the scheduler's reply has no result");
            conn_close(c);
            return;
        }
        answer_string(c, res);
        free(res);
        break;
    }
    case LBW_RT_RECVINVMESSAGE:
        break;
    }
}

int lbw_rt_check_spawn(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    struct lbw_pk_doc d;
    int rc = lbw_pk_decode(&d, p, n, NULL, err, errlen);
    if (rc == 0)
        rc = lbw_pk_check_upstream(&d, d.root, err, errlen);
    lbw_pk_doc_free(&d);
    return rc < 0 ? -1 : 0;
}

static void relay(struct conn *c)
{
    struct lbw_rt *rt = c->rt;
    static const char *names[] = {
        [LBW_RT_SPAWN] = "spawn",
        [LBW_RT_TUPDATEATTRIBS] = "tupdateattribs",
        [LBW_RT_SENDINVMESSAGE] = "forward_invocation_message",
    };
    uint64_t timeout = 0; /* the call's default (90 s) */
    if (c->req.cmd == LBW_RT_TUPDATEATTRIBS) {
        char err[160];
        struct lbw_json j;
        if (lbw_json_parse(&j, (const char *)c->req.data, c->req.data_len, err,
                           sizeof(err)) < 0) {
            conn_bad(c, "tupdateattribs: the attributes are not JSON");
            return;
        }
        int obj = lbw_json_type(&j, 0) == LBW_JSON_OBJECT;
        lbw_json_free(&j);
        if (!obj) {
            conn_bad(c, "tupdateattribs: the attributes are not a JSON object");
            return;
        }
    } else if (c->req.cmd == LBW_RT_SPAWN) {
        /* The scheduler unpickles what it gets: a payload may send only the
         * shapes upstream's TaskSpawn pickles have (the bytes still go out
         * unchanged). */
        char err[256], why[320];
        if (lbw_rt_check_spawn(c->req.data, c->req.data_len, err, sizeof(err)) < 0) {
            snprintf(why, sizeof(why), "spawn: refused: %s", err);
            conn_bad(c, why);
            return;
        }
    } else if (c->req.cmd == LBW_RT_SENDINVMESSAGE) {
        double t = send_timeout(c->req.seconds);
        timeout = (uint64_t)((t > OVERALL_MIN ? t : OVERALL_MIN) * 1e9);
    }
    size_t al;
    char *args = lbw_rt_relay_args(&c->req, &al);
    if (!args) {
        conn_close(c);
        return;
    }
    c->state = C_RELAY;
    c->call = lbw_call_start(rt->o.net, rt->r, rt->o.scheduler, names[c->req.cmd], args,
                             timeout, relay_cb, c);
    free(args);
    if (!c->call) {
        LBW_WARN("runtime", "cannot relay %s to %s: %s", names[c->req.cmd], rt->o.scheduler,
                 strerror(errno));
        conn_close(c);
        return;
    }
    c->pending++;
    /* the request buffer is not needed any more beyond req (kept until the
     * answer: req points into it) */
}

/* ---- receivers and deliveries ------------------------------------------------------ */

static void slice_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);
static void request_timer_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void del_unlink(struct lbw_rt *rt, struct delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        rt->dels = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->next = d->prev = NULL;
}

static void del_free(struct delivery *d)
{
    free(d->addressee);
    free(d->data);
    free(d);
}

/* Finishes a delivery: cb now, the struct once its timer is back. */
static void del_finish(struct delivery *d, const char *result)
{
    struct lbw_rt *rt = d->rt;
    del_unlink(rt, d);
    lbw_rt_deliver_cb cb = d->cb;
    d->cb = NULL;
    if (lbw_op_pending(&d->t))
        lbw_cancel(rt->r, &d->t); /* its callback frees d */
    cb(d->ctx, result);
    if (!lbw_op_pending(&d->t))
        del_free(d);
}

static void del_timer_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct delivery *d = op->user;
    struct lbw_rt *rt = d->rt;
    rt->live--;
    if (d->cb) { /* the addressee never came */
        d->t.user = d; /* (the op is done: del_finish frees d) */
        del_finish(d, "error-receiver-timeout");
    } else {
        del_free(d);
    }
    rt_maybe_end(rt);
}

/* The oldest pending delivery for this receiver's addressee. */
static struct delivery *del_for(struct lbw_rt *rt, const char *a, size_t al)
{
    struct delivery *found = NULL;
    for (struct delivery *d = rt->dels; d; d = d->next)
        if (d->cb && d->alen == al && !memcmp(d->addressee, a, al))
            found = d; /* the list is newest first: keep the last match */
    return found;
}

static void wait_begin(struct conn *c)
{
    struct lbw_rt *rt = c->rt;
    c->state = C_WAIT;
    struct delivery *d = del_for(rt, c->addressee, c->alen);
    if (d) {
        deliver_to(c, d);
        return;
    }
    c->wait_since = lbw_now_ns();
    if (lbw_timer(rt->r, &c->sop, c->slice_ns, 0, slice_cb) == 0)
        c->pending++;
    else
        conn_close(c);
    /* a read stays posted: the payload going away ends the wait, and the
     * same read takes its answer to `? false` */
    conn_read(c);
}

/* Gives d's message to receiver c (in C_WAIT) and finishes d. */
static void deliver_to(struct conn *c, struct delivery *d)
{
    struct lbw_rt *rt = c->rt;
    c->state = C_CLOSING;
    if (lbw_op_pending(&c->sop))
        lbw_cancel(rt->r, &c->sop);
    uint8_t h[17];
    h[0] = 1;
    lbw_put_be64(h + 1, d->src);
    lbw_put_be64(h + 9, d->len);
    if (conn_put(c, h, sizeof(h)) < 0 || conn_put(c, d->data, d->len) < 0) {
        conn_close(c);
        del_finish(d, "error-unknown");
        return;
    }
    c->close_after = 1;
    conn_flush(c);
    del_finish(d, "delivered");
}

static void slice_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct conn *c = op->user;
    c->pending--;
    if (c->closed) {
        conn_maybe_free(c);
        return;
    }
    if (res < 0 || c->state != C_WAIT)
        return; /* cancelled: a message came, or the wait ended */
    /* the slice elapsed: ask the payload whether it still waits; the read
     * posted in wait_begin takes the answer */
    c->state = C_ASK;
    uint8_t no = 0;
    conn_answer(c, &no, 1, 0);
    if (!c->closed && !lbw_op_pending(&c->top) &&
        lbw_timer(r, &c->top, c->rt->o.request_timeout_ns, 0, request_timer_cb) == 0)
        c->pending++;
    conn_read(c);
}

/* ---- reading requests ------------------------------------------------------------ */

static void request_done(struct conn *c)
{
    struct lbw_rt *rt = c->rt;
    if (lbw_op_pending(&c->top))
        lbw_cancel(rt->r, &c->top);
    if (c->req.cmd != LBW_RT_RECVINVMESSAGE) {
        relay(c);
        return;
    }
    if (!rt->have_inv) {
        LBW_INFO("runtime", "a payload waits for a message while no invocation runs: closed");
        conn_close(c);
        return;
    }
    double s = c->req.seconds;
    if (!isfinite(s) || s < 0.01)
        s = s > 0 ? 0.01 : 10.0; /* NaN/negative: upstream's default slice */
    if (s > 3600)
        s = 3600;
    c->slice_ns = (uint64_t)(s * 1e9);
    c->addressee = malloc(c->req.addressee_len + 1);
    if (!c->addressee) {
        conn_close(c);
        return;
    }
    memcpy(c->addressee, c->req.addressee, c->req.addressee_len);
    c->addressee[c->req.addressee_len] = 0;
    c->alen = c->req.addressee_len;
    c->len = 0; /* the request is consumed; the buffer now takes cancel bytes */
    wait_begin(c);
}

static int conn_reserve(struct conn *c, size_t need)
{
    struct lbw_rt *rt = c->rt;
    if (need <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : MIN_READ;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > rt->o.max_body + 65536 + 64)
        cap = need;
    if (rt->buffered - c->cap + cap > rt->o.max_buffered)
        return -1;
    uint8_t *b = realloc(c->buf, cap);
    if (!b)
        return -1;
    rt->buffered += cap - c->cap;
    c->buf = b;
    c->cap = cap;
    return 0;
}

static void read_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void conn_read(struct conn *c)
{
    if (c->closed || lbw_op_pending(&c->rop))
        return;
    if (c->len == c->cap && conn_reserve(c, c->cap + 1) < 0) {
        conn_bad(c, "the request does not fit the runtime server's memory budget");
        return;
    }
    if (lbw_recv(c->rt->r, &c->rop, c->fd, c->buf + c->len, c->cap - c->len, read_cb) == 0)
        c->pending++;
    else
        conn_close(c);
}

/* Parses what has arrived; returns 1 to keep reading. */
static int conn_parse(struct conn *c)
{
    struct lbw_rt *rt = c->rt;
    char err[200];
    long need;
    if (!c->hello_len) {
        size_t used;
        int v10;
        need = lbw_rt_parse_hello(c->buf, c->len, &used, &v10);
        if (need < 0) {
            conn_bad(c, "version negotiation: too many versions offered");
            return 0;
        }
        if (need > 0)
            goto more;
        if (!v10) {
            conn_bad(c, "version negotiation: protocol 1.0 not offered");
            return 0;
        }
        c->hello_len = used;
        lbw_acc_conn_set(&c->ac, LBW_ACC_BUSY); /* a real client: no longer evictable */
        static const uint8_t v[8] = {0, 0, 0, 1, 0, 0, 0, 0};
        conn_answer(c, v, sizeof(v), 0);
        if (c->closed)
            return 0;
    }
    need = lbw_rt_parse_request(c->buf + c->hello_len, c->len - c->hello_len, rt->o.max_body,
                                &c->req, err, sizeof(err));
    if (need < 0) {
        conn_bad(c, err);
        return 0;
    }
    if (need == 0) {
        request_done(c);
        return 0;
    }
    need += (long)c->hello_len;
more:
    if (conn_reserve(c, (size_t)need) < 0) {
        conn_bad(c, "the request does not fit the runtime server's memory budget");
        return 0;
    }
    return 1;
}

static void read_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct conn *c = op->user;
    c->pending--;
    if (c->closed) {
        conn_maybe_free(c);
        return;
    }
    if (res == -ECANCELED)
        return; /* re-posted by whoever cancelled it */
    if (res <= 0) {
        if (c->state == C_REQUEST && (c->len > 0 || res < 0))
            LBW_WARN("runtime", "a payload closed its connection in the middle of a request");
        else if (c->state == C_WAIT || c->state == C_ASK)
            LBW_DEBUG("runtime", "a waiting payload went away");
        conn_close(c);
        return;
    }
    c->len += (size_t)res;
    switch (c->state) {
    case C_REQUEST:
        if (conn_parse(c))
            conn_read(c);
        break;
    case C_WAIT:
        conn_bad(c, "recvinvmessage: bytes from the payload while it waits");
        break;
    case C_ASK:
        c->len = 0;
        if (lbw_op_pending(&c->top))
            lbw_cancel(r, &c->top);
        /* a non-zero answer: the payload gave up waiting */
        if (c->buf[0] || !c->rt->have_inv)
            conn_close(c);
        else
            wait_begin(c);
        break;
    default:
        /* after the request (the answer is being written): ignored */
        c->len = 0;
        break;
    }
}

static void request_timer_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct conn *c = op->user;
    c->pending--;
    if (c->closed) {
        conn_maybe_free(c);
        return;
    }
    if (res < 0)
        return;
    LBW_WARN("runtime", "a payload did not send its %s in %llu s: closed",
             c->state == C_ASK ? "answer to a receive poll" : "whole request",
             (unsigned long long)(c->rt->o.request_timeout_ns / SEC));
    conn_close(c);
}

/* ---- accepting ---------------------------------------------------------------------- */

/* Only the payload's own processes (the worker's user, which payloads run
 * as) may use the API: anyone else on the host could spawn tasks and set
 * attributes in the payload's name. */
static int rt_admit(void *ctx, int fd, const struct sockaddr_storage *peer, const char *ip)
{
    struct lbw_rt *rt = ctx;
    uid_t uid;
    unsigned long inode;
    int rc = lbw_sock_peer_owner(fd, &uid, &inode);
    if (rc == 0 && uid == rt->o.owner_uid)
        return 0;
    char key[48];
    snprintf(key, sizeof(key), "uid %ld", rc == 0 ? (long)uid : -1L);
    if (!lbw_seen_due(&rt->seen, key, lbw_now_ns(), 60 * SEC))
        return -1;
    if (rc < 0) {
        LBW_WARN("runtime", "refusing a runtime API connection from %s: its owner cannot be "
                            "found (%s)", ip, strerror(-rc));
        return -1;
    }
    pid_t pid = 0;
    char who[48] = "pid unknown";
    if (lbw_sock_inode_pid(inode, uid, &pid) == 0)
        snprintf(who, sizeof(who), "pid %ld", (long)pid);
    LBW_WARN("runtime", "refusing a runtime API connection from uid %ld (%s): only the "
                        "payload's user (uid %ld) may use it (shown once a minute per user)",
             (long)uid, who, (long)rt->o.owner_uid);
    return -1;
}

static struct lbw_acc_conn *rt_new_conn(void *ctx, int fd, const char *peer)
{
    struct lbw_rt *rt = ctx;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    lbw_acc_conn_init(&c->ac);
    lbw_tcp_nodelay(fd); /* answers are small and awaited */
    c->rt = rt;
    c->fd = fd;
    c->rop.user = c->wop.user = c->top.user = c->sop.user = c;
    c->next = rt->conns;
    if (rt->conns)
        rt->conns->prev = c;
    rt->conns = c;
    rt->nconns++;
    if (lbw_timer(rt->r, &c->top, rt->o.request_timeout_ns, 0, request_timer_cb) == 0)
        c->pending++;
    conn_read(c);
    return &c->ac;
}

static void rt_evict(void *ctx, struct lbw_acc_conn *ac, const char *why)
{
    struct conn *c = lbw_list_entry(ac, struct conn, ac);
    LBW_DEBUG("runtime", "closing a payload connection: %s", why);
    conn_close(c);
}

/* ---- server lifetime ----------------------------------------------------------------- */

static void end_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_rt *rt = op->user;
    rt->live--;
    if (rt->o.on_closed)
        rt->o.on_closed(rt->o.ctx);
    free(rt);
}

static void rt_maybe_end(struct lbw_rt *rt)
{
    if (!rt->closing || rt->closed_sent || rt->live || rt->conns || rt->dels)
        return;
    rt->closed_sent = 1;
    if (lbw_timer(rt->r, &rt->end_t, 1, 0, end_cb) == 0)
        rt->live++;
}

struct lbw_rt *lbw_rt_start(const struct lbw_rt_opts *o)
{
    struct lbw_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    rt->o = *o;
    rt->r = o->r;
    if (!rt->o.max_conns)
        rt->o.max_conns = 1024;
    if (!rt->o.max_body)
        rt->o.max_body = 64u << 20;
    if (!rt->o.max_buffered)
        rt->o.max_buffered = 256u << 20;
    if (!rt->o.request_timeout_ns)
        rt->o.request_timeout_ns = 60 * SEC;
    if (!rt->o.hello_timeout_ns)
        rt->o.hello_timeout_ns = 10 * SEC;
    if (!rt->o.any_local_user)
        rt->o.owner_uid = o->owner_uid ? o->owner_uid : geteuid();
    rt->end_t.user = rt;
    struct lbw_acceptor_opts ao = {
        .name = "runtime",
        .max_conns = rt->o.max_conns,
        .probation_ns = rt->o.hello_timeout_ns,
        .admit = rt->o.any_local_user ? NULL : rt_admit,
        .on_conn = rt_new_conn,
        .evict = rt_evict,
        .ctx = rt,
    };
    rt->acc = lbw_acceptor_new(rt->r, o->listen_fd, &ao);
    if (!rt->acc) {
        free(rt);
        return NULL;
    }
    return rt;
}

void lbw_rt_invocation_begin(struct lbw_rt *rt, int64_t invocation_id)
{
    rt->have_inv = 1;
    rt->inv = invocation_id;
}

void lbw_rt_invocation_end(struct lbw_rt *rt)
{
    rt->have_inv = 0;
    /* waiting receivers: released without a message */
    for (struct conn *c = rt->conns, *n; c; c = n) {
        n = c->next;
        if (c->state == C_WAIT || c->state == C_ASK)
            conn_close(c);
    }
    while (rt->dels) {
        struct delivery *d = rt->dels;
        if (d->cb)
            del_finish(d, "error-invoc-not-running");
        else
            del_unlink(rt, d);
    }
}

void lbw_rt_close(struct lbw_rt *rt)
{
    if (rt->closing)
        return;
    lbw_rt_invocation_end(rt);
    rt->closing = 1;
    lbw_acceptor_close(rt->acc);
    rt->acc = NULL;
    for (struct conn *c = rt->conns, *n; c; c = n) {
        n = c->next;
        conn_close(c);
    }
    rt_maybe_end(rt);
}

void lbw_rt_abandon(struct lbw_rt *rt)
{
    rt->o.on_closed = NULL;
    lbw_rt_close(rt);
}

void lbw_rt_deliver(struct lbw_rt *rt, int64_t dst_iid, const char *addressee, size_t alen,
                    uint64_t src_iid, const uint8_t *data, size_t len, double timeout_s,
                    lbw_rt_deliver_cb cb, void *ctx)
{
    if (rt->closing || !rt->have_inv || rt->inv != dst_iid) {
        cb(ctx, "error-invoc-not-running");
        return;
    }
    struct delivery *d = calloc(1, sizeof(*d));
    if (!d || !(d->addressee = malloc(alen + 1)) || !(d->data = malloc(len ? len : 1))) {
        if (d)
            free(d->addressee);
        free(d);
        cb(ctx, "error-unknown");
        return;
    }
    memcpy(d->addressee, addressee, alen);
    d->addressee[alen] = 0;
    d->alen = alen;
    memcpy(d->data, data, len);
    d->len = len;
    d->src = src_iid;
    d->cb = cb;
    d->ctx = ctx;
    d->rt = rt;
    d->t.user = d;
    d->next = rt->dels;
    if (rt->dels)
        rt->dels->prev = d;
    rt->dels = d;
    /* a receiver already waiting (the longest-waiting one) takes it now */
    struct conn *best = NULL;
    for (struct conn *c = rt->conns; c; c = c->next)
        if (c->state == C_WAIT && !c->closed && c->alen == alen &&
            !memcmp(c->addressee, addressee, alen) &&
            (!best || c->wait_since < best->wait_since))
            best = c;
    if (best) {
        deliver_to(best, d);
        return;
    }
    if (!(timeout_s > 0))
        timeout_s = 0;
    if (timeout_s > 1e7)
        timeout_s = 1e7;
    if (lbw_timer(rt->r, &d->t, (uint64_t)(timeout_s * 1e9) + 1, 0, del_timer_cb) == 0)
        rt->live++;
    else
        del_finish(d, "error-unknown");
}
