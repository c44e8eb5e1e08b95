/* msgnet.h — the message transport on the reactor (docs/PROTOCOL.md 1.2–1.9).
 *
 * Receiving: accepts connections, reads the preamble and frames with the
 * incremental decoder, applies the receiver rules in order (not our
 * address: log, drop, ack 1; more hops: forward or refuse; SYSTEM_PING:
 * ack 1; a session someone expects: hand it over; else a new request) and
 * acks each frame with one byte. Frames that name further hops are
 * forwarded (1.7: first hop removed from the destination, our address put
 * in front of the source, the upstream sender acked only after the next
 * hop acked) when the owner gives a forward_ok that accepts the next hop
 * (the pool's message proxy); otherwise, as in a worker, they are refused
 * with ack 0 and a log line. A peer that breaks a limit or stalls past
 * a read timeout gets its connection closed and one log line; every other
 * connection goes on.
 *
 * Admission (through kernel-iface/acceptor): at most max_connections at
 * once and max_per_source from one address; `reserved` of them are kept
 * for preferred peers (lbw_msgnet_prefer: the scheduler); a connection
 * must deliver its preamble and first frame header within
 * preamble_timeout_ns; when the table is full the oldest silent (then the
 * least recently active idle) connection is closed. Peers outside `allow`
 * (when given) are refused at accept. All partial frames together hold at
 * most max_buffered bytes (the body buffer grows as bytes arrive); a frame
 * of a preferred peer makes others' partial frames give way. Memory of a
 * large frame is handed back to the system once it is handled.
 *
 * Sending: one connection per first hop, reused while idle (with a
 * SYSTEM_PING first, as upstream does) and closed after 300 s idle or as
 * soon as the peer closes it (a read stays posted on idle connections);
 * each frame waits for its ack; 2 attempts with a 1 s back-off. Replies
 * arrive on our own listener, on another connection, paired by session.
 * Outgoing connections are bounded: max_out in all, max_out_per_dest to
 * one first hop (a preferred peer is exempt, and a quarter of max_out is
 * kept for it); sends beyond wait in a queue (max_queued for other peers;
 * beyond it they fail with -ENOBUFS). Destination hosts must be numeric
 * addresses: a host name fails the send with -EINVAL and one log line
 * (names are resolved before they reach the net, off the event loop). */
#ifndef LBW_MSGNET_H
#define LBW_MSGNET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cidr.h"
#include "frame.h"
#include "reactor.h"

/* Upstream's listen backlog for the worker's message port. */
#define LBW_LISTEN_BACKLOG 4096

struct lbw_msgnet;

struct lbw_msgnet_opts {
    const char *self;              /* our identity "ip:port" (exact string) */
    uint64_t max_frame;            /* incoming frame size limit; 0 = 64 MiB */
    uint64_t idle_timeout_ns;      /* waiting for the next frame; 0 = 90 s */
    uint64_t frame_timeout_ns;     /* reading the rest of a frame; 0 = 90 s */
    uint64_t ack_timeout_ns;       /* waiting for an ack; 0 = 90 s */
    unsigned attempts;             /* per frame; 0 = 2 */
    uint64_t backoff_ns;           /* before the 2nd attempt (doubling); 0 = 1 s */
    uint64_t pool_idle_ns;         /* close idle outgoing connections; 0 = 300 s */
    size_t max_connections;        /* incoming connections at once; 0 = 4096 */
    size_t max_per_source;         /* incoming from one address; 0 = 64 */
    size_t reserved;               /* of max_connections, for preferred peers; 0 = 64 */
    uint64_t preamble_timeout_ns;  /* preamble + first frame header; 0 = 10 s */
    uint64_t max_buffered;         /* all partial incoming frames; 0 = 256 MiB */
    size_t max_out;                /* outgoing connections at once; 0 = 256 */
    size_t max_out_per_dest;       /* to one first hop; 0 = 4 */
    size_t max_queued;             /* sends waiting for a connection; 0 = 1024 */
    const struct lbw_cidr_set *allow; /* peers admitted; NULL/empty = all (copied) */
    /* A message proxy: 1 when a frame may be forwarded to next_hop (one
     * direct address, len bytes, not NUL-terminated); NULL = never forward.
     * Called with the net's ctx. */
    int (*forward_ok)(void *ctx, const char *next_hop, size_t len);
};

/* A frame for us. Return the ack byte: 1 accepted, 0 refused. The callback
 * may take the frame (move it out and zero *f); otherwise it is freed. */
typedef int (*lbw_msg_frame_cb)(void *ctx, struct lbw_frame *f);

/* Outcome of a send: 0 = acked, -ECONNREFUSED/-ETIMEDOUT/... = failed
 * after all attempts, -EPROTO = the receiver acked 0. */
typedef void (*lbw_msg_sent_cb)(void *ctx, int status);

struct lbw_msgnet *lbw_msgnet_new(lbw_reactor *r, const struct lbw_msgnet_opts *o,
                                  lbw_msg_frame_cb on_request, void *ctx);
/* Starts accepting on a listening socket (the net owns and closes it). */
int lbw_msgnet_listen(struct lbw_msgnet *n, int listen_fd);
/* Moves to a new identity and listening socket (the address changed):
 * frames for the new self are ours from now on; connections accepted on
 * the old socket are served on; the old socket and the idle outgoing
 * connections (opened under the old identity) are closed. */
int lbw_msgnet_relisten(struct lbw_msgnet *n, const char *self, int listen_fd);
/* Closes everything, cancels pending sends (their callbacks get
 * -ECANCELED) and frees the net once the reactor has delivered the
 * cancellations; safe to call from a callback. */
void lbw_msgnet_close(struct lbw_msgnet *n);

/* Sends one frame from us (src = self) to a destination chain. The body is
 * copied. session: 16 bytes or NULL. Returns 0 (cb will be called) or
 * -errno. */
int lbw_msgnet_send(struct lbw_msgnet *n, const char *dst, uint16_t type,
                    const uint8_t *session, const void *body, size_t len, lbw_msg_sent_cb cb,
                    void *ctx);
/* Produces body bytes [off, off + cap) into buf, for a streamed send;
 * returns how many (> 0, at most cap) or -errno. Calls come in order from
 * off 0; a retry starts again from 0, so a producer must be able to
 * rewind. */
typedef ssize_t (*lbw_msg_fill_cb)(void *ctx, uint64_t off, uint8_t *buf, size_t cap);

/* Like lbw_msgnet_send, with a body of `len` bytes made by `fill` while
 * it is written (memory stays flat whatever the size). fill_ctx must stay
 * valid until cb. */
int lbw_msgnet_send_stream(struct lbw_msgnet *n, const char *dst, uint16_t type,
                           const uint8_t *session, size_t len, lbw_msg_fill_cb fill,
                           void *fill_ctx, lbw_msg_sent_cb cb, void *ctx);

/* Shutting down: frames that would start a new exchange get ack 0 from
 * now on; replies to our own exchanges still come in. */
void lbw_msgnet_drain(struct lbw_msgnet *n);

/* Frames with this session go to cb instead of on_request, until
 * lbw_msgnet_unexpect. Register before sending the request. */
int lbw_msgnet_expect(struct lbw_msgnet *n, const uint8_t session[16], lbw_msg_frame_cb cb,
                      void *ctx);
void lbw_msgnet_unexpect(struct lbw_msgnet *n, const uint8_t session[16]);

/* The peer we are registered with (a chain; its first hop's numeric host
 * counts): its connections get the reserved room and are exempt from the
 * per-source limit, and sends to it go ahead of others. Up to 8 remembered. */
void lbw_msgnet_prefer(struct lbw_msgnet *n, const char *chain);

/* Counters, for tests and status. */
struct lbw_msgnet_stats {
    uint64_t frames_in, acks_sent_0, pings_in, dropped_not_ours, conns_closed_bad,
        conns_timed_out, frames_out, send_failures, conns_evicted, refused_not_allowed,
        sends_queued, sends_refused, names_refused, forwarded, forward_failures;
    uint64_t buffered;             /* partial incoming frames now */
    size_t conns_in, conns_out;    /* open now */
};
void lbw_msgnet_stats(const struct lbw_msgnet *n, struct lbw_msgnet_stats *s);

/* Rewrites every hop of an address chain given by a person (a config or a
 * command line) to numeric hosts, resolving names off the event loop with
 * a deadline per name (kernel-iface/resolve). 0, or -errno with err saying
 * "cannot resolve NAME: ...". */
int lbw_msgnet_resolve_chain(const char *chain, char *out, size_t cap, uint64_t timeout_ns,
                             char *err, size_t errlen);

/* A random (version 4) session UUID. */
void lbw_session_new(uint8_t out[16]);

#endif
