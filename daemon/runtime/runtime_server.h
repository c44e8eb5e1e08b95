/* runtime_server.h — the payload runtime API (docs/PROTOCOL.md 8.1–8.3) and the
 * running invocation's message mailboxes (7.10).
 *
 * Payloads reach the worker through `lifeblood_connection` on a loopback
 * TCP port (LIFEBLOOD_RUNTIME_SCHEDULER_ADDR): one command per connection,
 * after a version negotiation. This module serves those connections on the
 * reactor: it parses each request with hard bounds, relays `spawn`,
 * `tupdateattribs` and `sendinvmessage` to the scheduler as JSON commands,
 * answers with upstream's byte layouts, and keeps the receivers that wait in
 * `recvinvmessage`. A scheduler's `invocation_message` is handed to a
 * waiting receiver of the running invocation (lbw_rt_deliver).
 *
 * Every byte from a payload is untrusted: sizes are bounded per request and
 * across all connections, a request must arrive within a deadline, and a
 * client that breaks a rule loses its connection and nothing else.
 *
 * Admission (kernel-iface/acceptor): only sockets owned by the payload's
 * user (the worker's own uid unless told otherwise; found with sock_diag)
 * are served — any other local user is refused with a WARNING naming its
 * uid and pid; a connection must complete the version negotiation within
 * hello_timeout_ns; when all max_conns are taken the oldest connection
 * that has not negotiated yet is closed for the new one.
 *
 * The request parser is a pure function (lbw_rt_parse_*) so the unit tests
 * and the fuzzer drive it without sockets. */
#ifndef LBW_RUNTIME_H
#define LBW_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "msgnet.h"
#include "reactor.h"

/* ---- request parsing ------------------------------------------------------- */

#define LBW_RT_MAX_VERSIONS 256       /* offered protocol versions */
#define LBW_RT_MAX_COMMAND 64         /* command name bytes */
#define LBW_RT_MAX_ADDRESSEE 4096     /* mailbox name bytes */
#define LBW_RT_MAX_NAME 65536         /* attribute name bytes */
#define LBW_RT_MAX_DELETE 65536       /* attribute names to delete */

enum lbw_rt_cmd {
    LBW_RT_SPAWN = 1,
    LBW_RT_TUPDATEATTRIBS,
    LBW_RT_SENDINVMESSAGE,
    LBW_RT_RECVINVMESSAGE,
};

/* A parsed request. Pointers point into the parsed buffer. */
struct lbw_rt_req {
    enum lbw_rt_cmd cmd;
    size_t consumed;             /* bytes of the request */
    const uint8_t *data;         /* spawn: pickle; tupdateattribs: JSON; send: message */
    size_t data_len;
    const char *addressee;       /* send / recv (UTF-8, not NUL-terminated) */
    size_t addressee_len;
    uint64_t task_id;            /* tupdateattribs */
    uint64_t n_delete;           /* tupdateattribs: names to delete ... */
    const uint8_t *delete_names; /* ... as n_delete `S` strings from here */
    uint64_t dst_iid, src_iid;   /* sendinvmessage */
    float seconds;               /* send: addressee timeout; recv: poll interval */
};

/* The version negotiation at buf[0..n): returns 0 when complete (*consumed
 * bytes, *has_v10 whether 1.0 was offered), N > 0 when at least N bytes are
 * needed, or -1 (more than LBW_RT_MAX_VERSIONS offered). */
long lbw_rt_parse_hello(const uint8_t *buf, size_t n, size_t *consumed, int *has_v10);

/* A protocol 1.0 request at buf[0..n): returns 0 when complete (req
 * filled), N > 0 when at least N bytes are needed in all, or -1 with a
 * message (unknown command, a size above its bound or above max_body, text
 * that is not UTF-8). */
long lbw_rt_parse_request(const uint8_t *buf, size_t n, size_t max_body, struct lbw_rt_req *req,
                          char *err, size_t errlen);

/* The i-th (in order) attribute name to delete, from a parsed request. */
int lbw_rt_delete_name(const struct lbw_rt_req *req, uint64_t i, const char **s, size_t *len);

/* The JSON argument object the scheduler gets for a relayed request
 * (spawn / tupdateattribs / forward_invocation_message), malloc'd. For
 * tupdateattribs the attribute JSON must already be validated as an
 * object. NULL on allocation failure. */
char *lbw_rt_relay_args(const struct lbw_rt_req *req, size_t *len);

/* ---- the server ------------------------------------------------------------ */

struct lbw_rt;

struct lbw_rt_opts {
    lbw_reactor *r;
    int listen_fd;               /* bound and listening; the server closes it */
    struct lbw_msgnet *net;      /* relays go out through this ... */
    const char *scheduler;       /* ... to this chain */
    size_t max_conns;            /* at once; 0 = 1024 */
    size_t max_body;             /* one request; 0 = 64 MiB */
    size_t max_buffered;         /* all connections together; 0 = 256 MiB */
    uint64_t request_timeout_ns; /* to send a whole request / a reply byte; 0 = 60 s */
    uint64_t hello_timeout_ns;   /* to send the version negotiation; 0 = 10 s */
    uid_t owner_uid;             /* the payload's user; 0 = our effective uid */
    int any_local_user;          /* 1: no owner check (tests of the parser only) */
    /* The server closed everything after lbw_rt_close. */
    void (*on_closed)(void *ctx);
    void *ctx;
};

struct lbw_rt *lbw_rt_start(const struct lbw_rt_opts *o);
/* Closes the listener and every connection, cancels relays; on_closed
 * comes from the reactor once all of it is done. Frees the server after
 * on_closed returns. */
void lbw_rt_close(struct lbw_rt *rt);
/* The same without the on_closed callback (its owner is going away now). */
void lbw_rt_abandon(struct lbw_rt *rt);

/* The running invocation: mailboxes exist only between begin and end. end
 * closes waiting receivers without a message, answers pending deliveries
 * `error-invoc-not-running` and refuses new receivers until the next begin.
 * Both are idempotent. */
void lbw_rt_invocation_begin(struct lbw_rt *rt, int64_t invocation_id);
void lbw_rt_invocation_end(struct lbw_rt *rt);

/* Result of a delivery: "delivered", "error-invoc-not-running",
 * "error-receiver-timeout" or "error-unknown". */
typedef void (*lbw_rt_deliver_cb)(void *ctx, const char *result);

/* Hands (src, data) to a receiver waiting on `addressee` in the running
 * invocation dst_iid, waiting up to timeout_s for one to appear. The data
 * is copied. cb may run before this returns (an immediate answer). */
void lbw_rt_deliver(struct lbw_rt *rt, int64_t dst_iid, const char *addressee, size_t alen,
                    uint64_t src_iid, const uint8_t *data, size_t len, double timeout_s,
                    lbw_rt_deliver_cb cb, void *ctx);

/* Decodes a payload's spawn pickle inertly and checks that every global in
 * it is used in a shape upstream's TaskSpawn pickles have (the scheduler
 * unpickles it). 0, or -1 with a message naming the global and offset. */
int lbw_rt_check_spawn(const uint8_t *p, size_t n, char *err, size_t errlen);

#endif
