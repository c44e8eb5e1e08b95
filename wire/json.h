/* json.h — the JSON command layer's text format (docs/PROTOCOL.md 2.1).
 *
 * Reading: one linear pass tokenizes and validates the grammar (numbers,
 * literals, string keys, escapes, one top-level value) with containers
 * nested at most LBW_JSON_MAX_DEPTH deep; every token knows where its
 * subtree ends, so skipping a value is one step and a lookup is linear in
 * the members of one object. Strings are unescaped fully when read
 * (\uXXXX with surrogate pairs; a lone surrogate is kept as its 3-byte
 * "surrogatepass" form, as Python keeps it), and Latin-1 strings map back
 * to bytes (how pickles and message data travel).
 *
 * Writing: output that Python's json.dumps would produce with its defaults
 * (ensure_ascii, ", " and ": " separators, repr() floats, NaN/Infinity),
 * invalid UTF-8 replaced by U+FFFD as Python's errors='replace' does, and a
 * streaming escaper so a multi-GiB log can be sent as one string value with
 * its length known before the first byte. */
#ifndef LBW_JSON_H
#define LBW_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

enum lbw_json_type {
    LBW_JSON_INVALID = 0,
    LBW_JSON_OBJECT,
    LBW_JSON_ARRAY,
    LBW_JSON_STRING,
    LBW_JSON_NUMBER,
    LBW_JSON_TRUE,
    LBW_JSON_FALSE,
    LBW_JSON_NULL,
    LBW_JSON_NAN,      /* NaN, Infinity, -Infinity (Python extensions) */
};

struct lbw_json_tok; /* opaque token array entry */

struct lbw_json {
    const char *src;
    size_t len;
    struct lbw_json_tok *tok;
    int ntok;
    uint64_t work;   /* steps the parse took (bytes and tokens visited) */
};

/* Largest JSON text accepted (token offsets are ints). */
#define LBW_JSON_MAX_LEN ((size_t)0x7ffffff0)
/* Deepest nesting of arrays and objects accepted: deeper text is refused
 * with "JSON nested deeper than 512 at offset N" (Python's json gives up
 * near 1000; nothing upstream sends comes close). */
#define LBW_JSON_MAX_DEPTH 512

/* Parses s[0..n). Returns 0, or -1 with a message in err. The text must
 * stay alive while j is used. */
int lbw_json_parse(struct lbw_json *j, const char *s, size_t n, char *err, size_t errlen);
void lbw_json_free(struct lbw_json *j);

/* Tokens are indexes; 0 is the top-level value. -1 means "none". */
enum lbw_json_type lbw_json_type(const struct lbw_json *j, int t);
/* Number of elements (array) or members (object). */
int lbw_json_size(const struct lbw_json *j, int t);
/* The token following t's whole subtree. */
int lbw_json_skip(const struct lbw_json *j, int t);
/* Value token of member `key` of object t, or -1. */
int lbw_json_get(const struct lbw_json *j, int t, const char *key);
/* i-th element of array t (linear), or -1. */
int lbw_json_at(const struct lbw_json *j, int t, int i);
/* Raw text of a token's value (strings: without the quotes). */
const char *lbw_json_raw(const struct lbw_json *j, int t, size_t *len);
/* Raw text including quotes for strings: the exact JSON of the value. */
const char *lbw_json_text(const struct lbw_json *j, int t, size_t *len);

/* Unescaped UTF-8 of a string token, malloc'd and NUL-terminated.
 * Returns 0 or -1 (not a string, bad escape, out of memory). */
int lbw_json_str(const struct lbw_json *j, int t, char **out, size_t *len);
/* Bytes of a Latin-1 string token (each code point <= U+00FF is one byte).
 * Returns 0 or -1 (a code point above U+00FF, ...). */
int lbw_json_latin1(const struct lbw_json *j, int t, uint8_t **out, size_t *len);
/* 1 if string token t equals s exactly after unescaping. */
int lbw_json_str_eq(const struct lbw_json *j, int t, const char *s);
/* Numbers. Return 0, or -1 if not a number of that kind / out of range. */
int lbw_json_i64(const struct lbw_json *j, int t, int64_t *out);
int lbw_json_u64(const struct lbw_json *j, int t, uint64_t *out);
int lbw_json_double(const struct lbw_json *j, int t, double *out); /* also NaN/Infinity */
int lbw_json_bool(const struct lbw_json *j, int t, int *out);

/* ---- writer ----------------------------------------------------------- */

struct lbw_jw {
    struct lbw_buf out;   /* the text, kept NUL-terminated */
    struct lbw_buf first; /* a byte per open level: no element written yet */
    int err;              /* set on allocation failure; later calls do nothing */
    int after_key;
};

void lbw_jw_init(struct lbw_jw *w);
void lbw_jw_free(struct lbw_jw *w);
/* Takes the buffer (caller frees); NULL if an allocation failed. */
char *lbw_jw_take(struct lbw_jw *w, size_t *len);

void lbw_jw_obj(struct lbw_jw *w);
void lbw_jw_obj_end(struct lbw_jw *w);
void lbw_jw_arr(struct lbw_jw *w);
void lbw_jw_arr_end(struct lbw_jw *w);
void lbw_jw_key(struct lbw_jw *w, const char *k);
/* A string from UTF-8 bytes; invalid sequences become U+FFFD. */
void lbw_jw_str(struct lbw_jw *w, const char *s, size_t n);
void lbw_jw_cstr(struct lbw_jw *w, const char *s);
/* A string whose code points are the bytes (Latin-1), as upstream sends
 * pickles and message data. */
void lbw_jw_latin1(struct lbw_jw *w, const uint8_t *p, size_t n);
void lbw_jw_i64(struct lbw_jw *w, int64_t v);
void lbw_jw_u64(struct lbw_jw *w, uint64_t v);
void lbw_jw_double(struct lbw_jw *w, double v); /* Python repr() */
void lbw_jw_bool(struct lbw_jw *w, int v);
void lbw_jw_null(struct lbw_jw *w);
/* Splices already-valid JSON text as one value. */
void lbw_jw_raw(struct lbw_jw *w, const char *s, size_t n);

/* Python float repr into out (>= 32 bytes); returns the length. */
int lbw_json_fmt_double(double v, char *out, size_t cap);

/* ---- streaming string escaper ------------------------------------------- */

/* Escapes a byte stream as the inside of a JSON string (no quotes), like
 * lbw_jw_str, across chunk boundaries. */
struct lbw_jesc {
    uint8_t pend[4];
    size_t npend;
};
/* Output never exceeds LBW_JESC_OUT_MAX(n) bytes for n input bytes. */
#define LBW_JESC_OUT_MAX(n) (6 * ((n) + 4))
/* Escapes in[0..n) after any bytes held from the previous call; writes to
 * out when non-NULL (else only counts). final: the stream ends here (held
 * bytes of an unfinished sequence become U+FFFD). Returns output length. */
size_t lbw_jesc_feed(struct lbw_jesc *e, const uint8_t *in, size_t n, int final, char *out);
/* Escaped length (without quotes) of everything fd holds from offset 0,
 * reading it with pread. Returns 0 or -errno. */
int lbw_jesc_fd_len(int fd, uint64_t *out);

#endif
