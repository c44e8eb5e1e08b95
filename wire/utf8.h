/* utf8.h — UTF-8 as Python sees it: strict validation (no surrogates, no
 * overlongs, max U+10FFFF), one-code-point decode/encode, and the
 * "surrogatepass" variant pickles use for lone surrogates. */
#ifndef LBW_UTF8_H
#define LBW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at p (n bytes available). Returns its length
 * (1..4) and sets *cp, or 0 if the bytes are not valid UTF-8 there.
 * surrogatepass: accept encoded U+D800..U+DFFF. */
size_t lbw_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp, int surrogatepass);
/* 1 if all n bytes are valid strict UTF-8. */
int lbw_utf8_valid(const uint8_t *p, size_t n);
/* The same, accepting encoded surrogates when surrogatepass is set (how
 * pickles carry lone surrogates). */
int lbw_utf8_valid_ex(const uint8_t *p, size_t n, int surrogatepass);
/* Writes cp as UTF-8 into out (4 bytes room); returns the length. */
size_t lbw_utf8_encode(uint32_t cp, uint8_t *out);

#endif
