/* fuzz_frame.c — the incremental frame decoder on arbitrary bytes, fed in
 * chunks whose sizes come from the input; every frame it accepts must
 * re-encode to exactly the bytes it came from. A memory budget (its size
 * from the input) is charged as bodies grow: it must never be exceeded,
 * and everything charged must be given back by the end. */
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct budget {
    int64_t used, cap;
};

static int charge(void *ctx, int64_t delta)
{
    struct budget *b = ctx;
    if (delta > 0 && b->used + delta > b->cap)
        return -1;
    b->used += delta;
    if (b->used < 0 || b->used > b->cap)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct lbw_frame_dec d;
    struct budget b = {0, (int64_t)(data[0] >> 1) << 13}; /* 0..1 MiB */
    struct lbw_frame_limits lim = {.max_frame = 1 << 20, .charge = charge, .charge_ctx = &b};
    lbw_frame_dec_init(&d, &lim, data[0] & 1);
    size_t step = (size_t)data[1] + 1, off = 2, frame_start = 2;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        struct lbw_frame f;
        int done;
        ssize_t u = lbw_frame_dec_feed(&d, data + off, n, &f, &done);
        if (u < 0)
            break;
        off += (size_t)u;
        if (done) {
            size_t el;
            uint8_t *enc = lbw_frame_encode(&f, &el);
            /* The frame's own bytes end at off (after any preamble). The
             * has-session byte reads any non-zero as true and is written
             * as 0x01; everything else must come back unchanged. */
            const uint8_t *orig = data + off - el;
            if (enc && (el > off - frame_start || memcmp(enc, orig, 24) != 0 ||
                        enc[24] != (orig[24] != 0) ||
                        memcmp(enc + 25, orig + 25, el - 25) != 0))
                abort();
            free(enc);
            lbw_frame_free(&f);
            frame_start = off;
        }
    }
    lbw_frame_dec_reset(&d);
    if (b.used != 0)
        abort();
    return 0;
}
