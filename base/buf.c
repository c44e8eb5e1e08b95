/* buf.c — see buf.h. */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int lbw_grow(void *arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    if (size == 0)
        return -EINVAL;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -EOVERFLOW;
        nc *= 2;
    }
    if (nc > SIZE_MAX / size)
        return -EOVERFLOW;
    void **pp = arr;
    void *n = realloc(*pp, nc * size);
    if (!n)
        return -ENOMEM;
    *pp = n;
    *cap = nc;
    return 0;
}

int lbw_buf_reserve(struct lbw_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return -EOVERFLOW;
    return lbw_grow(&b->p, &b->cap, b->len + extra, 1);
}

int lbw_buf_append(struct lbw_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = lbw_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int lbw_buf_putc(struct lbw_buf *b, uint8_t c)
{
    return lbw_buf_append(b, &c, 1);
}

int lbw_buf_terminate(struct lbw_buf *b)
{
    int rc = lbw_buf_reserve(b, 1);
    if (rc < 0)
        return rc;
    b->p[b->len] = 0;
    return 0;
}

void lbw_buf_consume(struct lbw_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

uint8_t *lbw_buf_steal(struct lbw_buf *b)
{
    uint8_t *p = b->p;
    *b = (struct lbw_buf){0};
    return p;
}

void lbw_buf_free(struct lbw_buf *b)
{
    free(b->p);
    *b = (struct lbw_buf){0};
}
