/* text.h — untrusted text made safe to show: the one place that decides
 * which bytes of a peer's, a payload's or a config file's string reach a
 * log line, an error message or another worker. Pure C: no I/O.
 *
 *   char q[68];
 *   size_t used = lbw_text_clean(q, sizeof(q), s, strlen(s), 0);
 *   ... "'%s%s'", q, used < strlen(s) ? "..." : "" ...
 *
 * Control characters (below 0x20, and DEL) become '?': a newline would
 * let the text forge a log line, ESC and its terminal sequences hide or
 * rewrite what an operator sees, NUL cut it short. */
#ifndef LBW_TEXT_H
#define LBW_TEXT_H

#include <stddef.h>

#define LBW_TEXT_ASCII 1u    /* bytes 0x80 and above become '?' too */
#define LBW_TEXT_KEEP_TAB 2u /* tabs stay */
#define LBW_TEXT_NL_SPACE 4u /* newline and carriage return become a space */

/* One byte as shown. */
static inline char lbw_text_char(unsigned char c, unsigned flags)
{
    if ((c == '\n' || c == '\r') && (flags & LBW_TEXT_NL_SPACE))
        return ' ';
    if (c == '\t' && (flags & LBW_TEXT_KEEP_TAB))
        return '\t';
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && (flags & LBW_TEXT_ASCII)))
        return '?';
    return (char)c;
}

/* Copies at most cap - 1 of src's len bytes into dst as shown (cap > 0),
 * NUL-terminated; stops early at a NUL in src. Returns the number of
 * src bytes used, less than len when it was cut. dst may equal src. */
size_t lbw_text_clean(char *dst, size_t cap, const char *src, size_t len, unsigned flags);

#endif
