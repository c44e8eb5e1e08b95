/* text.c — see text.h. */
#include "text.h"

size_t lbw_text_clean(char *dst, size_t cap, const char *src, size_t len, unsigned flags)
{
    size_t i = 0;
    for (; src && i < len && i + 1 < cap && src[i]; i++)
        dst[i] = lbw_text_char((unsigned char)src[i], flags);
    dst[i] = 0;
    return i;
}
