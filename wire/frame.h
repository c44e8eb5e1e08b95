/* frame.h — the message transport's byte layout (docs/PROTOCOL.md 1.2–1.5):
 * the connection preamble, frames (header, address chains, optional
 * session, body), and the forwarding rewrite (1.7). The decoder is
 * incremental: it takes bytes in any chunks, checks every length against
 * the limits before allocating, and stops after each complete frame so the
 * caller can ack it. No I/O here. */
#ifndef LBW_FRAME_H
#define LBW_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LBW_FRAME_FIXED 27      /* Q size, Q src_len, Q dst_len, ? session, H type */
#define LBW_FRAME_SIZE_BASE 19  /* what `size` counts besides src, dst, session, body */
/* The largest frame a worker takes by default: a task frame carries one
 * pickled job (tens of MiB at most); anything bigger is refused before a
 * byte of it is buffered. */
#define LBW_FRAME_MAX_DEFAULT (64ull << 20)

enum lbw_msg_type {
    LBW_MSG_DEFAULT = 0x0000,
    LBW_MSG_SYSTEM_PING = 0x0001,
    LBW_MSG_DELIVERY_ERROR = 0x0100,
};

enum lbw_frame_err {
    LBW_FE_OK = 0,
    LBW_FE_TOO_BIG = -1,      /* size above the configured maximum */
    LBW_FE_SIZE = -2,         /* size smaller than its parts / overflowing lengths */
    LBW_FE_ADDR_LEN = -3,     /* an address chain longer than LBW_ADDR_MAX */
    LBW_FE_TYPE = -4,         /* unknown message type */
    LBW_FE_ADDR = -5,         /* address not UTF-8 or not a valid chain */
    LBW_FE_PREAMBLE = -6,     /* bad connection preamble */
    LBW_FE_NOMEM = -7,
    LBW_FE_BUDGET = -8,       /* the receiver's memory budget refused the body */
};
const char *lbw_frame_strerror(int err);

struct lbw_frame {
    uint16_t type;
    uint8_t has_session;
    uint8_t session[16];
    char *src; /* NUL-terminated; src_len bytes */
    size_t src_len;
    char *dst;
    size_t dst_len;
    uint8_t *body; /* its own allocation (NULL when empty) */
    uint64_t body_len;
    /* src and dst share one allocation starting at src, so forwarding
     * rewrites them without copying the body */
};
void lbw_frame_free(struct lbw_frame *f);

struct lbw_frame_limits {
    uint64_t max_frame; /* largest `size` accepted; 0 = LBW_FRAME_MAX_DEFAULT */
    /* Optional memory accounting. The body buffer grows as its bytes
     * arrive (never ahead of them by more than it already holds, so a
     * header that only claims a size costs nothing). charge(ctx, +n) is
     * asked before each growth (return < 0 to refuse: the feed fails with
     * LBW_FE_BUDGET); charge(ctx, -n) gives back what a finished, reset or
     * failed frame held. */
    int (*charge)(void *ctx, int64_t delta);
    void *charge_ctx;
};

enum { LBW_DEC_PRE_LEN, LBW_DEC_PRE, LBW_DEC_HDR, LBW_DEC_REST };

struct lbw_frame_dec {
    int state;
    uint64_t max_frame;
    int (*charge)(void *ctx, int64_t delta);
    void *charge_ctx;
    uint64_t body_cap, charged; /* bytes allocated for cur.body / charged */
    uint8_t hdr[LBW_FRAME_FIXED];
    size_t have;
    uint64_t need, got;
    char preamble[256 + 1];
    size_t preamble_len;
    struct lbw_frame cur;
};

/* expect_preamble: 1 on a connection's receiving side (the sender writes
 * its address first). */
void lbw_frame_dec_init(struct lbw_frame_dec *d, const struct lbw_frame_limits *lim,
                        int expect_preamble);
void lbw_frame_dec_reset(struct lbw_frame_dec *d);
/* Bytes the decoder holds for the frame in progress. */
uint64_t lbw_frame_dec_buffered(const struct lbw_frame_dec *d);
/* Consumes up to n bytes. Returns the number consumed (>= 0) or a negative
 * lbw_frame_err (the connection must then be closed). When a frame is
 * complete it stops right after it, sets *complete and moves the frame into
 * *out (free with lbw_frame_free). */
ssize_t lbw_frame_dec_feed(struct lbw_frame_dec *d, const uint8_t *p, size_t n,
                           struct lbw_frame *out, int *complete);
/* The preamble once read (NUL-terminated), or NULL. */
const char *lbw_frame_dec_preamble(const struct lbw_frame_dec *d);
/* 1 while the decoder holds part of a frame (for read timeouts). */
int lbw_frame_dec_midframe(const struct lbw_frame_dec *d);

/* Bytes of the frame before its body: fixed part, src, dst, session. */
size_t lbw_frame_head_len(size_t src_len, size_t dst_len, int has_session);
/* Writes the head (everything but the body) of a frame whose body will be
 * body_len bytes. out must hold lbw_frame_head_len() bytes. Returns that
 * length. */
size_t lbw_frame_write_head(uint8_t *out, uint16_t type, const uint8_t *session,
                            const char *src, size_t src_len, const char *dst, size_t dst_len,
                            uint64_t body_len);
/* Encodes a whole frame into a malloc'd buffer. NULL on allocation failure. */
uint8_t *lbw_frame_encode(const struct lbw_frame *f, size_t *len);
/* Writes the preamble for `addr` into out (8 + len bytes). */
size_t lbw_preamble_write(uint8_t *out, const char *addr, size_t len);

/* Forwarding (1.7) by the process whose own address is `self`: the
 * destination loses its first hop, the source gains `self` in front. The
 * frame's first destination hop must equal self and another hop must
 * follow. Returns 0, -1 if the frame is not for forwarding by self, or
 * LBW_FE_NOMEM. */
int lbw_frame_forward(struct lbw_frame *f, const char *self, size_t self_len);

#endif
