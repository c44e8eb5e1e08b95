/* bytes.h — big-endian integers in wire buffers (frame headers, the
 * discovery datagram, the runtime API) and little-endian ones (pickle
 * arguments), shared so each codec does not carry its own copy. */
#ifndef LBW_BYTES_H
#define LBW_BYTES_H

#include <stdint.h>

static inline uint32_t lbw_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t lbw_be64(const uint8_t *p)
{
    return (uint64_t)lbw_be32(p) << 32 | lbw_be32(p + 4);
}

static inline void lbw_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void lbw_put_be64(uint8_t *p, uint64_t v)
{
    lbw_put_be32(p, (uint32_t)(v >> 32));
    lbw_put_be32(p + 4, (uint32_t)v);
}

/* Little-endian, k bytes (k <= 8). */
static inline uint64_t lbw_le(const uint8_t *p, unsigned k)
{
    uint64_t v = 0;
    for (unsigned i = k; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static inline uint32_t lbw_le32(const uint8_t *p) { return (uint32_t)lbw_le(p, 4); }

static inline void lbw_put_le(uint8_t *p, uint64_t v, unsigned k)
{
    for (unsigned i = 0; i < k; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#endif
