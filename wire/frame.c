/* frame.c — see frame.h. */
#include "frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "bytes.h"
#include "utf8.h"

#define PREAMBLE_MAX 256

const char *lbw_frame_strerror(int err)
{
    switch (err) {
    case LBW_FE_OK: return "ok";
    case LBW_FE_TOO_BIG: return "frame larger than the configured maximum";
    case LBW_FE_SIZE: return "frame size inconsistent with its field lengths";
    case LBW_FE_ADDR_LEN: return "address chain longer than allowed";
    case LBW_FE_TYPE: return "unknown message type";
    case LBW_FE_ADDR: return "address chain is not valid UTF-8 host:port|... text";
    case LBW_FE_PREAMBLE: return "bad connection preamble (expected the sender's host:port)";
    case LBW_FE_NOMEM: return "out of memory";
    case LBW_FE_BUDGET: return "the memory budget for incoming frames is exhausted";
    }
    return "unknown frame error";
}

void lbw_frame_free(struct lbw_frame *f)
{
    if (!f)
        return;
    free(f->src);
    free(f->body);
    memset(f, 0, sizeof(*f));
}

void lbw_frame_dec_init(struct lbw_frame_dec *d, const struct lbw_frame_limits *lim,
                        int expect_preamble)
{
    memset(d, 0, sizeof(*d));
    d->max_frame = lim && lim->max_frame ? lim->max_frame : LBW_FRAME_MAX_DEFAULT;
    d->charge = lim ? lim->charge : NULL;
    d->charge_ctx = lim ? lim->charge_ctx : NULL;
    d->state = expect_preamble ? LBW_DEC_PRE_LEN : LBW_DEC_HDR;
}

/* The frame in progress ends (handed out, reset or failed): give back
 * what it was charged. */
static void discharge(struct lbw_frame_dec *d)
{
    if (d->charged && d->charge)
        d->charge(d->charge_ctx, -(int64_t)d->charged);
    d->charged = 0;
    d->body_cap = 0;
}

uint64_t lbw_frame_dec_buffered(const struct lbw_frame_dec *d) { return d->body_cap; }

void lbw_frame_dec_reset(struct lbw_frame_dec *d)
{
    lbw_frame_free(&d->cur);
    discharge(d);
    d->have = 0;
    d->got = d->need = 0;
    if (d->state == LBW_DEC_REST)
        d->state = LBW_DEC_HDR;
}

const char *lbw_frame_dec_preamble(const struct lbw_frame_dec *d)
{
    return d->preamble_len ? d->preamble : NULL;
}

int lbw_frame_dec_midframe(const struct lbw_frame_dec *d)
{
    return d->state == LBW_DEC_REST || d->have > 0;
}

static int valid_chain_bytes(const char *s, size_t n)
{
    return lbw_utf8_valid((const uint8_t *)s, n) && lbw_chain_is_valid(s, n) &&
           memchr(s, 0, n) == NULL;
}

/* Header complete: check it and allocate the frame. */
static int start_frame(struct lbw_frame_dec *d)
{
    const uint8_t *h = d->hdr;
    uint64_t size = lbw_be64(h), sl = lbw_be64(h + 8), dl = lbw_be64(h + 16);
    int has_session = h[24] != 0;
    uint16_t type = (uint16_t)(h[25] << 8 | h[26]);
    if (size > d->max_frame)
        return LBW_FE_TOO_BIG;
    if (type != LBW_MSG_DEFAULT && type != LBW_MSG_SYSTEM_PING && type != LBW_MSG_DELIVERY_ERROR)
        return LBW_FE_TYPE;
    if (sl > LBW_ADDR_MAX || dl > LBW_ADDR_MAX)
        return LBW_FE_ADDR_LEN;
    uint64_t fixed = LBW_FRAME_SIZE_BASE + sl + dl + (has_session ? 16 : 0);
    if (size < fixed)
        return LBW_FE_SIZE;
    struct lbw_frame *f = &d->cur;
    memset(f, 0, sizeof(*f));
    f->type = type;
    f->has_session = (uint8_t)has_session;
    f->src_len = (size_t)sl;
    f->dst_len = (size_t)dl;
    f->body_len = size - fixed;
    f->src = malloc((size_t)(sl + dl + 2));
    if (!f->src)
        return LBW_FE_NOMEM;
    f->dst = f->src + sl + 1;
    d->body_cap = 0; /* the body grows as it arrives (grow_body) */
    d->need = size - LBW_FRAME_SIZE_BASE;
    d->got = 0;
    return 0;
}

/* Makes room for body bytes up to `upto`: doubling from 64 KiB, capped at
 * the body's length, each growth charged first. */
static int grow_body(struct lbw_frame_dec *d, uint64_t upto)
{
    struct lbw_frame *f = &d->cur;
    if (upto <= d->body_cap)
        return 0;
    uint64_t cap = 65536;
    if (d->body_cap)
        cap = d->body_cap > UINT64_MAX / 2 ? UINT64_MAX : d->body_cap * 2;
    if (cap < upto)
        cap = upto;
    if (cap > f->body_len)
        cap = f->body_len;
#if UINT64_MAX > SIZE_MAX
    if (cap > SIZE_MAX) /* realloc's size_t could not say it */
        return LBW_FE_NOMEM;
#endif
    uint64_t delta = cap - d->body_cap;
    if (delta > INT64_MAX) /* the charge is signed */
        return LBW_FE_NOMEM;
    if (d->charge && d->charge(d->charge_ctx, (int64_t)delta) < 0)
        return LBW_FE_BUDGET;
    uint8_t *b = realloc(f->body, (size_t)cap);
    if (!b) {
        if (d->charge)
            d->charge(d->charge_ctx, -(int64_t)delta);
        return LBW_FE_NOMEM;
    }
    f->body = b;
    d->body_cap = cap;
    d->charged += delta;
    return 0;
}

/* Copies rest-of-frame bytes to where they belong: src, dst, session, body. */
static ssize_t take_rest(struct lbw_frame_dec *d, const uint8_t *p, size_t n)
{
    struct lbw_frame *f = &d->cur;
    size_t used = 0;
    while (used < n && d->got < d->need) {
        uint64_t at = d->got;
        uint64_t seg_end;
        uint8_t *dst;
        if (at < f->src_len) {
            seg_end = f->src_len;
            dst = (uint8_t *)f->src + at;
        } else if (at < f->src_len + f->dst_len) {
            seg_end = f->src_len + f->dst_len;
            dst = (uint8_t *)f->dst + (at - f->src_len);
        } else if (f->has_session && at < f->src_len + f->dst_len + 16) {
            seg_end = f->src_len + f->dst_len + 16;
            dst = f->session + (at - f->src_len - f->dst_len);
        } else {
            uint64_t boff = at - (d->need - f->body_len);
            uint64_t want = d->need - at;
            if (want > n - used)
                want = n - used;
            int rc = grow_body(d, boff + want);
            if (rc < 0)
                return rc;
            seg_end = d->need;
            dst = f->body + boff;
        }
        uint64_t k = seg_end - at;
        if (k > n - used)
            k = n - used;
        memcpy(dst, p + used, (size_t)k);
        used += (size_t)k;
        d->got += k;
    }
    return (ssize_t)used;
}

ssize_t lbw_frame_dec_feed(struct lbw_frame_dec *d, const uint8_t *p, size_t n,
                           struct lbw_frame *out, int *complete)
{
    size_t used = 0;
    *complete = 0;
    while (used < n || (d->state == LBW_DEC_REST && d->got == d->need)) {
        switch (d->state) {
        case LBW_DEC_PRE_LEN: {
            size_t k = 8 - d->have;
            if (k > n - used)
                k = n - used;
            memcpy(d->hdr + d->have, p + used, k);
            d->have += k;
            used += k;
            if (d->have < 8)
                return (ssize_t)used;
            uint64_t len = lbw_be64(d->hdr);
            if (len == 0 || len > PREAMBLE_MAX)
                return LBW_FE_PREAMBLE;
            d->need = len;
            d->got = 0;
            d->have = 0;
            d->state = LBW_DEC_PRE;
            break;
        }
        case LBW_DEC_PRE: {
            size_t k = (size_t)(d->need - d->got);
            if (k > n - used)
                k = n - used;
            memcpy(d->preamble + d->got, p + used, k);
            d->got += k;
            used += k;
            if (d->got < d->need)
                return (ssize_t)used;
            d->preamble[d->need] = 0;
            if (!lbw_utf8_valid((uint8_t *)d->preamble, (size_t)d->need) ||
                !lbw_addr_is_direct(d->preamble, (size_t)d->need))
                return LBW_FE_PREAMBLE;
            d->preamble_len = (size_t)d->need;
            d->need = d->got = 0;
            d->state = LBW_DEC_HDR;
            break;
        }
        case LBW_DEC_HDR: {
            size_t k = LBW_FRAME_FIXED - d->have;
            if (k > n - used)
                k = n - used;
            memcpy(d->hdr + d->have, p + used, k);
            d->have += k;
            used += k;
            if (d->have < LBW_FRAME_FIXED)
                return (ssize_t)used;
            d->have = 0;
            int rc = start_frame(d);
            if (rc)
                return rc;
            d->state = LBW_DEC_REST;
            break;
        }
        case LBW_DEC_REST: {
            ssize_t t = take_rest(d, p + used, n - used);
            if (t < 0) {
                lbw_frame_free(&d->cur);
                discharge(d);
                d->state = LBW_DEC_HDR;
                return t;
            }
            used += (size_t)t;
            if (d->got < d->need)
                return (ssize_t)used;
            d->cur.src[d->cur.src_len] = 0;
            d->cur.dst[d->cur.dst_len] = 0;
            d->state = LBW_DEC_HDR;
            discharge(d);
            if (!valid_chain_bytes(d->cur.src, d->cur.src_len) ||
                !valid_chain_bytes(d->cur.dst, d->cur.dst_len)) {
                lbw_frame_free(&d->cur);
                return LBW_FE_ADDR;
            }
            *out = d->cur;
            memset(&d->cur, 0, sizeof(d->cur));
            *complete = 1;
            return (ssize_t)used;
        }
        }
    }
    return (ssize_t)used;
}

size_t lbw_frame_head_len(size_t src_len, size_t dst_len, int has_session)
{
    return LBW_FRAME_FIXED + src_len + dst_len + (has_session ? 16 : 0);
}

size_t lbw_frame_write_head(uint8_t *out, uint16_t type, const uint8_t *session,
                            const char *src, size_t src_len, const char *dst, size_t dst_len,
                            uint64_t body_len)
{
    size_t hl = lbw_frame_head_len(src_len, dst_len, session != NULL);
    lbw_put_be64(out, hl - 8 + body_len);
    lbw_put_be64(out + 8, src_len);
    lbw_put_be64(out + 16, dst_len);
    out[24] = session ? 1 : 0;
    out[25] = (uint8_t)(type >> 8);
    out[26] = (uint8_t)type;
    uint8_t *p = out + LBW_FRAME_FIXED;
    memcpy(p, src, src_len);
    p += src_len;
    memcpy(p, dst, dst_len);
    p += dst_len;
    if (session)
        memcpy(p, session, 16);
    return hl;
}

uint8_t *lbw_frame_encode(const struct lbw_frame *f, size_t *len)
{
    size_t hl = lbw_frame_head_len(f->src_len, f->dst_len, f->has_session);
    uint8_t *o = malloc(hl + (size_t)f->body_len);
    if (!o)
        return NULL;
    lbw_frame_write_head(o, f->type, f->has_session ? f->session : NULL, f->src, f->src_len,
                         f->dst, f->dst_len, f->body_len);
    if (f->body_len)
        memcpy(o + hl, f->body, (size_t)f->body_len);
    *len = hl + (size_t)f->body_len;
    return o;
}

size_t lbw_preamble_write(uint8_t *out, const char *addr, size_t len)
{
    lbw_put_be64(out, len);
    memcpy(out + 8, addr, len);
    return 8 + len;
}

int lbw_frame_forward(struct lbw_frame *f, const char *self, size_t self_len)
{
    size_t first = lbw_chain_first_len(f->dst, f->dst_len);
    if (first == f->dst_len || first != self_len || memcmp(f->dst, self, self_len) != 0)
        return -1;
    const char *ndst = f->dst + first + 1;
    size_t ndst_len = f->dst_len - first - 1;
    size_t nsrc_len = self_len + (f->src_len ? 1 + f->src_len : 0);
    char *m = malloc(nsrc_len + ndst_len + 2);
    if (!m)
        return LBW_FE_NOMEM;
    memcpy(m, self, self_len);
    if (f->src_len) {
        m[self_len] = '|';
        memcpy(m + self_len + 1, f->src, f->src_len);
    }
    m[nsrc_len] = 0;
    memcpy(m + nsrc_len + 1, ndst, ndst_len);
    m[nsrc_len + 1 + ndst_len] = 0;
    free(f->src);
    f->src = m;
    f->src_len = nsrc_len;
    f->dst = m + nsrc_len + 1;
    f->dst_len = ndst_len;
    return 0;
}
