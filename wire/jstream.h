/* jstream.h — a JSON message body assembled from pieces and produced in
 * order, chunk by chunk, for a streamed send: literal JSON text, and files
 * whose bytes become the inside of a JSON string (invalid UTF-8 replaced by
 * U+FFFD, as lbw_jesc does). The total length is known before the first
 * byte (one escaping pass over each file to count), so a multi-GiB log is
 * sent without ever being held in memory. The files must not change
 * between lbw_jstream_len and the end of the send, except by growing:
 * bytes appended later (a live log) are not part of this body. */
#ifndef LBW_JSTREAM_H
#define LBW_JSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"

struct lbw_jstream;

struct lbw_jstream *lbw_jstream_new(void);
void lbw_jstream_free(struct lbw_jstream *s);
/* Appends literal JSON text (copied). Returns 0 or -ENOMEM. */
int lbw_jstream_text(struct lbw_jstream *s, const char *text, size_t len);
/* Appends the escaped contents of fd (read with pread from offset 0; the
 * stream owns and closes fd; fd < 0 means an empty file). Returns 0 or
 * -errno. */
int lbw_jstream_file(struct lbw_jstream *s, int fd);
/* Total length in bytes (computes the file lengths on first call).
 * Returns 0 or -errno. */
int lbw_jstream_len(struct lbw_jstream *s, uint64_t *len);
/* lbw_msg_fill_cb: bytes [off, off + cap) in order; off 0 rewinds. */
ssize_t lbw_jstream_fill(void *s, uint64_t off, uint8_t *buf, size_t cap);

#endif
