/* fuzz_utf8.c — the UTF-8 decoder on arbitrary bytes: validation agrees
 * with decoding one code point at a time, every decoded code point
 * re-encodes to the same bytes, and strict validity implies surrogatepass
 * validity. */
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int sp = 0; sp <= 1; sp++) {
        size_t i = 0;
        int ok = 1;
        while (i < size) {
            uint32_t cp;
            size_t l = lbw_utf8_decode(data + i, size - i, &cp, sp);
            if (!l) {
                ok = 0;
                break;
            }
            uint8_t enc[4];
            if (l > 4 || cp > 0x10FFFF || lbw_utf8_encode(cp, enc) != l ||
                memcmp(enc, data + i, l) != 0)
                abort();
            if (!sp && cp >= 0xD800 && cp <= 0xDFFF)
                abort(); /* strict: no surrogates */
            i += l;
        }
        if (ok != lbw_utf8_valid_ex(data, size, sp))
            abort();
    }
    if (lbw_utf8_valid(data, size) && !lbw_utf8_valid_ex(data, size, 1))
        abort();
    return 0;
}
