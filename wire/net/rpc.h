/* rpc.h — the JSON command layer (docs/PROTOCOL.md 2.1) on the message transport:
 * calling a command on a peer (a fresh session registered before the
 * request goes out, the reply paired by session, a reply timeout), parsing
 * an incoming request, and replying to it on the request's session towards
 * its source chain. Bodies may be streamed (worker.done with a 1 GiB log)
 * so memory does not grow with them. */
#ifndef LBW_RPC_H
#define LBW_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "msgnet.h"

struct lbw_call;

/* status 0: reply is the parsed reply object (valid during the callback).
 * Otherwise -errno: -ETIMEDOUT (no reply in time), -ECANCELED (cancelled
 * or the net closed), -EBADMSG (the reply was not JSON), or the transport's
 * send error. The call is freed after the callback. */
typedef void (*lbw_call_cb)(void *ctx, int status, struct lbw_json *reply);

/* Calls `name` on dst with `args_json` (the text of a JSON object, or NULL
 * for none). timeout_ns 0 = 90 s. Returns the call (cancel it with
 * lbw_call_cancel) or NULL with errno set. */
struct lbw_call *lbw_call_start(struct lbw_msgnet *n, lbw_reactor *r, const char *dst,
                                const char *name, const char *args_json, uint64_t timeout_ns,
                                lbw_call_cb cb, void *ctx);
/* The same with the whole request body produced by fill (streamed). */
struct lbw_call *lbw_call_start_stream(struct lbw_msgnet *n, lbw_reactor *r, const char *dst,
                                       size_t len, lbw_msg_fill_cb fill, void *fill_ctx,
                                       uint64_t timeout_ns, lbw_call_cb cb, void *ctx);
/* The callback comes later (from the reactor) with -ECANCELED, or with the
 * real outcome if it had already arrived. */
void lbw_call_cancel(struct lbw_call *c);

/* An incoming request: the parsed body, the command name and the argument
 * object token (-1 when absent). Returns 0 or -1 with a message. */
struct lbw_request {
    struct lbw_json json;
    char *body; /* NUL-terminated copy of the frame body */
    char name[64];
    int args;
    char *src;  /* reply chain */
    uint8_t session[16];
    int has_session;
};
int lbw_request_parse(struct lbw_request *q, const struct lbw_frame *f, char *err, size_t errlen);
void lbw_request_free(struct lbw_request *q);

/* Sends a reply (JSON object text) to a request's source on its session.
 * Failures are logged. */
void lbw_reply(struct lbw_msgnet *n, const char *src, const uint8_t session[16],
               const char *json, size_t len);

/* Wire envelope: {"command": {"name": NAME, "arguments": ARGS}} into w. */
void lbw_jw_command(struct lbw_jw *w, const char *name, const char *args_json);

#endif
