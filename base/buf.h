/* buf.h — the one growable byte buffer and the one growable array, with
 * overflow-checked growth. Pure C: no I/O, no logging.
 *
 *   struct lbw_buf b = {0};
 *   if (lbw_buf_append(&b, p, n) < 0) ...   // -ENOMEM or -EOVERFLOW
 *   ... b.p, b.len ...
 *   lbw_buf_free(&b);
 *
 * lbw_grow() grows any array: `lbw_grow(&arr, &cap, len + 1, sizeof *arr)`
 * makes room for at least len + 1 elements, doubling the capacity. */
#ifndef LBW_BUF_H
#define LBW_BUF_H

#include <stddef.h>
#include <stdint.h>

struct lbw_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
};

/* Ensures *arr has room for at least `need` elements of `size` bytes;
 * *cap is in elements. Returns 0, -ENOMEM, or -EOVERFLOW when need * size
 * does not fit a size_t. On failure *arr and *cap are unchanged. */
int lbw_grow(void *arr, size_t *cap, size_t need, size_t size);

/* Ensures room for `extra` more bytes after len. 0 or -ENOMEM/-EOVERFLOW. */
int lbw_buf_reserve(struct lbw_buf *b, size_t extra);
int lbw_buf_append(struct lbw_buf *b, const void *p, size_t n);
int lbw_buf_putc(struct lbw_buf *b, uint8_t c);
/* Appends a NUL after len without counting it (b->p becomes a C string). */
int lbw_buf_terminate(struct lbw_buf *b);
/* Drops the first n bytes (n <= len), keeping the rest. */
void lbw_buf_consume(struct lbw_buf *b, size_t n);
/* Hands the storage to the caller (may be NULL when empty) and empties b. */
uint8_t *lbw_buf_steal(struct lbw_buf *b);
void lbw_buf_free(struct lbw_buf *b);

#endif
