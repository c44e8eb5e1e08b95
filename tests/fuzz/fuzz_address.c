/* fuzz_address.c — address and chain parsing (the src/dst chains of every
 * frame) on arbitrary bytes. A valid chain splits into its hops; each hop
 * splits into host and port, and "host:port" formatted back is the hop
 * (when the port has no leading zeros) or splits to the same host and
 * port; the hops joined again with lbw_chain_join are the trimmed chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t len = size;
    int direct = lbw_addr_is_direct(s, len);
    int valid = lbw_chain_is_valid(s, len);
    lbw_chain_trim(&s, &len);
    if (lbw_chain_is_valid(s, len) != valid)
        abort(); /* trimming is idempotent */
    /* a direct address is a one-hop chain (a direct address is taken as
     * it is, a chain trimmed: " \t:1" is the first, not the second) */
    if (direct && len == size && (!valid || lbw_chain_hops(s, len) != 1))
        abort();
    if (!valid)
        return 0;
    size_t hops = lbw_chain_hops(s, len), seen = 0;
    if (len > LBW_ADDR_MAX || (len == 0) != (hops == 0))
        abort();
    char *acc = NULL;
    size_t acclen = 0;
    const char *p = s;
    size_t rest = len;
    while (rest) {
        size_t h = lbw_chain_first_len(p, rest);
        char host[LBW_ADDR_MAX + 1], again[LBW_ADDR_MAX + 1], txt[LBW_ADDR_MAX + 8];
        uint16_t port, port2;
        if (h == 0 || !lbw_addr_is_direct(p, h) || lbw_addr_split(p, h, host, sizeof(host), &port))
            abort();
        int n = snprintf(txt, sizeof(txt), "%s:%u", host, (unsigned)port);
        if (n < 0 || (size_t)n >= sizeof(txt) || lbw_addr_split(txt, (size_t)n, again,
                                                                sizeof(again), &port2))
            abort();
        if (strcmp(host, again) || port != port2)
            abort();
        const char *colon = memchr(p, ':', h);
        int lead0 = colon[1] == '0' && (size_t)(colon + 2 - p) < h;
        if (!lead0 && ((size_t)n != h || memcmp(txt, p, h)))
            abort(); /* re-formats to the same text */
        size_t nl;
        char *j = lbw_chain_join(acc ? acc : "", acclen, p, h, &nl);
        if (!j)
            abort();
        free(acc);
        acc = j;
        acclen = nl;
        seen++;
        if (h == rest)
            break;
        p += h + 1;
        rest -= h + 1;
        if (!rest)
            abort(); /* a valid chain does not end with '|' */
    }
    if (seen != hops || acclen != len || (len && memcmp(acc, s, len)))
        abort();
    free(acc);
    return 0;
}
