/* cidr.h — sets of IP networks ("10.0.0.0/8", "192.168.1.7", "fd00::/8")
 * and matching socket addresses against them (an IPv4-mapped IPv6
 * address matches as IPv4), plus a small memory of recently seen sources
 * for "once per source per minute" log lines. Knows nothing of what the
 * addresses are for. */
#ifndef LBW_CIDR_H
#define LBW_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct lbw_cidr {
    uint8_t fam;   /* 4 or 6 */
    uint8_t bits;  /* prefix length */
    uint8_t a[16];
};

struct lbw_cidr_set {
    struct lbw_cidr *v;
    size_t n, cap; /* cap: room in v, in entries */
};

/* Parses one network: an address, or address/prefix. 0 or -EINVAL. */
int lbw_cidr_parse(const char *s, struct lbw_cidr *out);
/* Adds one network to the set; on -EINVAL err says what is wrong. */
int lbw_cidr_set_add(struct lbw_cidr_set *s, const char *text, char *err, size_t errlen);
int lbw_cidr_set_copy(struct lbw_cidr_set *dst, const struct lbw_cidr_set *src);
void lbw_cidr_set_free(struct lbw_cidr_set *s);
/* 1 if the address is in one of the networks, or the set is empty. */
int lbw_cidr_set_match(const struct lbw_cidr_set *s, const struct sockaddr_storage *ss);
/* The same for a numeric address text; 0 for anything else. */
int lbw_cidr_set_match_ip(const struct lbw_cidr_set *s, const char *ip);

/* Remembers up to 64 sources with when they were last reported. */
struct lbw_seen {
    char ip[64][48];
    uint64_t at[64];
};
/* 1 if `ip` was not reported within `every_ns` (and marks it now). */
int lbw_seen_due(struct lbw_seen *s, const char *ip, uint64_t now, uint64_t every_ns);

#endif
