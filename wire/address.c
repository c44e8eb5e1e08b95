/* address.c — see address.h. */
#include "address.h"

#include <stdlib.h>
#include <string.h>

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

void lbw_chain_trim(const char **s, size_t *len)
{
    while (*len && is_ws(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_ws((*s)[*len - 1]))
        (*len)--;
}

int lbw_addr_is_direct(const char *s, size_t len)
{
    if (len == 0 || len > LBW_ADDR_MAX)
        return 0;
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '|' || s[i] == 0)
            return 0;
        if (s[i] == ':') {
            if (colon)
                return 0;
            colon = s + i;
        }
    }
    if (!colon || colon == s)
        return 0;
    size_t plen = len - (size_t)(colon + 1 - s);
    if (plen == 0 || plen > 5)
        return 0;
    unsigned port = 0;
    for (size_t i = 0; i < plen; i++) {
        char c = colon[1 + i];
        if (c < '0' || c > '9')
            return 0;
        port = port * 10 + (unsigned)(c - '0');
    }
    return port <= 65535;
}

int lbw_chain_is_valid(const char *s, size_t len)
{
    lbw_chain_trim(&s, &len);
    if (len == 0)
        return 1;
    if (len > LBW_ADDR_MAX)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '|') {
            if (!lbw_addr_is_direct(s + start, i - start))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

size_t lbw_chain_first_len(const char *s, size_t len)
{
    const char *bar = memchr(s, '|', len);
    return bar ? (size_t)(bar - s) : len;
}

size_t lbw_chain_hops(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '|';
    return n;
}

int lbw_addr_split(const char *s, size_t len, char *host, size_t hostcap, uint16_t *port)
{
    if (!lbw_addr_is_direct(s, len))
        return -1;
    const char *colon = memchr(s, ':', len);
    size_t hl = (size_t)(colon - s);
    if (hl + 1 > hostcap)
        return -1;
    memcpy(host, s, hl);
    host[hl] = 0;
    unsigned p = 0;
    for (const char *c = colon + 1; c < s + len; c++)
        p = p * 10 + (unsigned)(*c - '0');
    *port = (uint16_t)p;
    return 0;
}

char *lbw_chain_join(const char *a, size_t alen, const char *b, size_t blen, size_t *outlen)
{
    size_t n = alen + blen + (alen && blen ? 1 : 0);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    memcpy(o, a, alen);
    size_t p = alen;
    if (alen && blen)
        o[p++] = '|';
    memcpy(o + p, b, blen);
    o[n] = 0;
    *outlen = n;
    return o;
}
