/* address.h — Lifeblood addresses (docs/PROTOCOL.md 1.1): a direct address is
 * "host:port" (exactly one ':', no '|'); a chain is direct addresses joined
 * by single '|' (the empty chain is valid). Comparisons are exact string
 * comparisons. Also the forwarding rewrite of 1.7. Pure functions on
 * (pointer, length) strings; nothing here allocates except lbw_chain_join. */
#ifndef LBW_ADDRESS_H
#define LBW_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

/* Longest address chain accepted from the network. */
#define LBW_ADDR_MAX 4096

/* 1 if s is a direct address host:port with port 0..65535. */
int lbw_addr_is_direct(const char *s, size_t len);
/* 1 if s (after trimming surrounding whitespace) is a valid chain. */
int lbw_chain_is_valid(const char *s, size_t len);
/* Trims surrounding ASCII whitespace, as upstream strips the chain. */
void lbw_chain_trim(const char **s, size_t *len);
/* Length of the first hop of a chain (the whole chain if it has one hop). */
size_t lbw_chain_first_len(const char *s, size_t len);
/* Number of hops (0 for the empty chain). */
size_t lbw_chain_hops(const char *s, size_t len);
/* Splits a direct address into host and port. Returns 0 or -1. */
int lbw_addr_split(const char *s, size_t len, char *host, size_t hostcap, uint16_t *port);
/* Returns a malloc'd NUL-terminated "a|b" (or a copy of whichever is empty
 * if one is), *outlen its length; NULL on allocation failure. */
char *lbw_chain_join(const char *a, size_t alen, const char *b, size_t blen, size_t *outlen);

#endif
