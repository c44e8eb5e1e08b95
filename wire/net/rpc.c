/* rpc.c — JSON commands over the message transport: calls with session
 * pairing and a reply timeout, request parsing, replies (see rpc.h). */
#include "rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct lbw_call {
    struct lbw_msgnet *net;
    lbw_reactor *r;
    uint8_t session[16];
    lbw_call_cb cb;
    void *ctx;
    struct lbw_op timer;
    unsigned pending; /* the send and the timer */
    int done;
    char dst[256];
};

static void call_maybe_free(struct lbw_call *c)
{
    if (c->done && c->pending == 0)
        free(c);
}

static void call_finish(struct lbw_call *c, int status, struct lbw_json *reply)
{
    if (c->done)
        return;
    c->done = 1;
    lbw_msgnet_unexpect(c->net, c->session);
    if (lbw_op_pending(&c->timer))
        lbw_cancel(c->r, &c->timer);
    c->cb(c->ctx, status, reply);
}

static int call_reply_cb(void *ctx, struct lbw_frame *f)
{
    struct lbw_call *c = ctx;
    if (c->done)
        return 1;
    struct lbw_json j;
    char err[160];
    if (f->body_len > LBW_JSON_MAX_LEN ||
        lbw_json_parse(&j, (const char *)f->body, f->body_len, err, sizeof(err)) < 0) {
        LBW_WARN("rpc", "reply from %s is not JSON: %s", f->src,
                 f->body_len > LBW_JSON_MAX_LEN ? "too large" : err);
        call_finish(c, -EBADMSG, NULL);
    } else if (lbw_json_type(&j, 0) != LBW_JSON_OBJECT) {
        lbw_json_free(&j);
        LBW_WARN("rpc", "reply from %s is not a JSON object", f->src);
        call_finish(c, -EBADMSG, NULL);
    } else {
        call_finish(c, 0, &j);
        lbw_json_free(&j);
    }
    call_maybe_free(c);
    return 1;
}

static void call_sent_cb(void *ctx, int status)
{
    struct lbw_call *c = ctx;
    c->pending--;
    if (status < 0)
        call_finish(c, status, NULL);
    call_maybe_free(c);
}

static void call_timer_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_call *c = op->user;
    if (!c->done) {
        if (res > 0)
            LBW_WARN("rpc", "no reply from %s in time", c->dst);
        /* The timer still counts while the owner's callback runs: it may
         * close the transport, which fails this call's send at once and
         * must not free the call under us. */
        call_finish(c, res > 0 ? -ETIMEDOUT : -ECANCELED, NULL);
    }
    c->pending--;
    call_maybe_free(c);
}

static struct lbw_call *call_new(struct lbw_msgnet *n, lbw_reactor *r, const char *dst,
                                 uint64_t timeout_ns, lbw_call_cb cb, void *ctx)
{
    struct lbw_call *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->net = n;
    c->r = r;
    c->cb = cb;
    c->ctx = ctx;
    c->timer.user = c;
    snprintf(c->dst, sizeof(c->dst), "%s", dst);
    lbw_session_new(c->session);
    if (lbw_msgnet_expect(n, c->session, call_reply_cb, c) < 0) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    if (lbw_timer(r, &c->timer, timeout_ns ? timeout_ns : 90ull * 1000000000ull, 0,
                  call_timer_cb) < 0) {
        lbw_msgnet_unexpect(n, c->session);
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->pending = 2; /* timer + send (the send is started by the caller) */
    return c;
}

/* The send could not start: undo what call_new did, without a callback. */
static void call_abort(struct lbw_call *c, int rc)
{
    c->pending--; /* no send */
    c->done = 1;
    lbw_msgnet_unexpect(c->net, c->session);
    c->cb = NULL;
    lbw_cancel(c->r, &c->timer); /* its callback frees the call */
    errno = -rc;
}

void lbw_jw_command(struct lbw_jw *w, const char *name, const char *args_json)
{
    lbw_jw_obj(w);
    lbw_jw_key(w, "command");
    lbw_jw_obj(w);
    lbw_jw_key(w, "name");
    lbw_jw_cstr(w, name);
    lbw_jw_key(w, "arguments");
    if (args_json)
        lbw_jw_raw(w, args_json, strlen(args_json));
    else {
        lbw_jw_obj(w);
        lbw_jw_obj_end(w);
    }
    lbw_jw_obj_end(w);
    lbw_jw_obj_end(w);
}

struct lbw_call *lbw_call_start(struct lbw_msgnet *n, lbw_reactor *r, const char *dst,
                                const char *name, const char *args_json, uint64_t timeout_ns,
                                lbw_call_cb cb, void *ctx)
{
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_command(&w, name, args_json);
    size_t len;
    char *body = lbw_jw_take(&w, &len);
    if (!body) {
        errno = ENOMEM;
        return NULL;
    }
    struct lbw_call *c = call_new(n, r, dst, timeout_ns, cb, ctx);
    if (!c) {
        free(body);
        return NULL;
    }
    int rc = lbw_msgnet_send(n, dst, LBW_MSG_DEFAULT, c->session, body, len, call_sent_cb, c);
    free(body);
    if (rc < 0) {
        call_abort(c, rc);
        return NULL;
    }
    return c;
}

struct lbw_call *lbw_call_start_stream(struct lbw_msgnet *n, lbw_reactor *r, const char *dst,
                                       size_t len, lbw_msg_fill_cb fill, void *fill_ctx,
                                       uint64_t timeout_ns, lbw_call_cb cb, void *ctx)
{
    struct lbw_call *c = call_new(n, r, dst, timeout_ns, cb, ctx);
    if (!c)
        return NULL;
    int rc = lbw_msgnet_send_stream(n, dst, LBW_MSG_DEFAULT, c->session, len, fill, fill_ctx,
                                    call_sent_cb, c);
    if (rc < 0) {
        call_abort(c, rc);
        return NULL;
    }
    return c;
}

void lbw_call_cancel(struct lbw_call *c)
{
    if (!c->done && lbw_op_pending(&c->timer))
        lbw_cancel(c->r, &c->timer);
}

int lbw_request_parse(struct lbw_request *q, const struct lbw_frame *f, char *err, size_t errlen)
{
    memset(q, 0, sizeof(*q));
    q->args = -1;
    if (f->body_len > LBW_JSON_MAX_LEN) {
        snprintf(err, errlen, "body of %llu bytes is too large",
                 (unsigned long long)f->body_len);
        return -1;
    }
    q->body = malloc(f->body_len + 1);
    q->src = strdup(f->src);
    if (!q->body || !q->src) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (f->body_len)
        memcpy(q->body, f->body, f->body_len);
    q->body[f->body_len] = 0;
    q->has_session = f->has_session;
    memcpy(q->session, f->session, 16);
    if (lbw_json_parse(&q->json, q->body, f->body_len, err, errlen) < 0)
        return -1;
    int cmd = lbw_json_type(&q->json, 0) == LBW_JSON_OBJECT ?
                  lbw_json_get(&q->json, 0, "command") : -1;
    int name = cmd >= 0 && lbw_json_type(&q->json, cmd) == LBW_JSON_OBJECT ?
                   lbw_json_get(&q->json, cmd, "name") : -1;
    char *s = NULL;
    size_t sl;
    if (name < 0 || lbw_json_str(&q->json, name, &s, &sl) < 0) {
        snprintf(err, errlen, "not a command (no command.name string)");
        return -1;
    }
    if (sl >= sizeof(q->name) || memchr(s, 0, sl)) {
        free(s);
        snprintf(err, errlen, "command name too long");
        return -1;
    }
    memcpy(q->name, s, sl + 1);
    free(s);
    q->args = lbw_json_get(&q->json, cmd, "arguments");
    if (q->args >= 0 && lbw_json_type(&q->json, q->args) != LBW_JSON_OBJECT) {
        if (lbw_json_type(&q->json, q->args) != LBW_JSON_NULL) {
            snprintf(err, errlen, "command %s: arguments is not an object", q->name);
            return -1;
        }
        q->args = -1;
    }
    return 0;
}

void lbw_request_free(struct lbw_request *q)
{
    lbw_json_free(&q->json);
    free(q->body);
    free(q->src);
    memset(q, 0, sizeof(*q));
}

static void reply_sent_cb(void *ctx, int status)
{
    if (status < 0)
        LBW_WARN("rpc", "sending a reply failed: %s", strerror(-status));
}

void lbw_reply(struct lbw_msgnet *n, const char *src, const uint8_t session[16],
               const char *json, size_t len)
{
    int rc = lbw_msgnet_send(n, src, LBW_MSG_DEFAULT, session, json, len, reply_sent_cb, NULL);
    if (rc < 0)
        LBW_WARN("rpc", "cannot reply to %s: %s", src, strerror(-rc));
}
