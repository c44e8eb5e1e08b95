/* fuzz_cidr.c — the network parser and matcher (worker.scheduler_allow and
 * the other address lists in the configuration) on arbitrary text. A
 * network that parses matches its own network address (formatted back
 * with inet_ntop and parsed again), any address whose host bits differ,
 * and not the address with the last prefix bit flipped; matching is the
 * same through the text and the socket-address paths. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The address of c with bit i (from the top) flipped, as text and sockaddr. */
static void fmt(const struct lbw_cidr *c, const uint8_t *a, char *txt, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (c->fam == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        if (!inet_ntop(AF_INET, a, txt, INET6_ADDRSTRLEN))
            abort();
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        if (!inet_ntop(AF_INET6, a, txt, INET6_ADDRSTRLEN))
            abort();
    }
}

static int both(const struct lbw_cidr_set *set, const struct lbw_cidr *c, const uint8_t *a)
{
    char txt[INET6_ADDRSTRLEN];
    struct sockaddr_storage ss;
    fmt(c, a, txt, &ss);
    int x = lbw_cidr_set_match_ip(set, txt), y = lbw_cidr_set_match(set, &ss);
    if (x != y)
        abort();
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char s[257];
    memcpy(s, data, size);
    s[size] = 0;
    struct lbw_cidr c;
    int rc = lbw_cidr_parse(s, &c);
    struct lbw_cidr_set set = {0};
    char err[512];
    if (lbw_cidr_set_add(&set, s, err, sizeof(err)) != rc)
        abort(); /* the set takes exactly what parses */
    lbw_cidr_set_match_ip(&set, s); /* the text itself as an address */
    if (rc < 0) {
        lbw_cidr_set_free(&set);
        return 0;
    }
    unsigned width = c.fam == 4 ? 32 : 128;
    if ((c.fam != 4 && c.fam != 6) || c.bits > width)
        abort();
    uint8_t net[16] = {0}, a[16];
    for (unsigned i = 0; i < c.bits; i++)
        net[i / 8] |= c.a[i / 8] & (uint8_t)(0x80 >> (i % 8));
    if (!both(&set, &c, net))
        abort(); /* its own network address */
    if (!both(&set, &c, c.a))
        abort(); /* the address it was written with */
    memcpy(a, c.a, 16);
    for (unsigned i = c.bits; i < width; i++)
        a[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
    /* every host bit flipped (unless that spells an IPv4-mapped address,
     * which matches as IPv4, not in an IPv6 network) */
    struct in6_addr a6;
    memcpy(&a6, a, 16);
    int mapped = c.fam == 6 && IN6_IS_ADDR_V4MAPPED(&a6);
    if (!mapped && !both(&set, &c, a))
        abort();
    if (c.bits > 0) {
        memcpy(a, net, 16);
        a[(c.bits - 1) / 8] ^= (uint8_t)(0x80 >> ((c.bits - 1) % 8));
        if (both(&set, &c, a))
            abort(); /* outside the prefix */
    }
    struct lbw_cidr_set cp;
    if (lbw_cidr_set_copy(&cp, &set) == 0) {
        if (!both(&cp, &c, net))
            abort();
        lbw_cidr_set_free(&cp);
    }
    lbw_cidr_set_free(&set);
    return 0;
}
