/* cidr.c — see cidr.h. */
#include "cidr.h"

#include "buf.h"
#include "text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int addr_of(const char *ip, struct lbw_cidr *c)
{
    struct in6_addr a6;
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, ip, c->a) == 1) {
        c->fam = 4;
        c->bits = 32;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            c->fam = 4;
            c->bits = 32;
            memcpy(c->a, a6.s6_addr + 12, 4);
        } else {
            c->fam = 6;
            c->bits = 128;
            memcpy(c->a, a6.s6_addr, 16);
        }
        return 0;
    }
    return -EINVAL;
}

int lbw_cidr_parse(const char *s, struct lbw_cidr *out)
{
    char ip[64];
    const char *slash = strchr(s, '/');
    size_t l = slash ? (size_t)(slash - s) : strlen(s);
    if (l == 0 || l >= sizeof(ip))
        return -EINVAL;
    memcpy(ip, s, l);
    ip[l] = 0;
    if (addr_of(ip, out) < 0)
        return -EINVAL;
    if (slash) {
        const char *p = slash + 1;
        unsigned bits = 0;
        if (!*p || strlen(p) > 3)
            return -EINVAL;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        unsigned max = strchr(ip, ':') ? 128 : 32;
        if (bits > max)
            return -EINVAL;
        /* an IPv4-mapped network keeps its IPv4 part of the prefix */
        if (strchr(ip, ':') && out->fam == 4)
            bits = bits >= 96 ? bits - 96 : 0;
        out->bits = (uint8_t)bits;
    }
    return 0;
}

int lbw_cidr_set_add(struct lbw_cidr_set *s, const char *text, char *err, size_t errlen)
{
    struct lbw_cidr c;
    if (lbw_cidr_parse(text, &c) < 0) {
        /* the text is from a config file: at most 64 bytes of it are
         * quoted, control characters as '?' */
        char q[65];
        size_t k = lbw_text_clean(q, sizeof(q), text, strlen(text), 0);
        snprintf(err, errlen, "'%s%s' is not an IP address or network (e.g. 192.168.1.10, "
                              "10.0.0.0/8, fd00::/8)", q, text[k] ? "..." : "");
        return -EINVAL;
    }
    if (lbw_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v)) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->v[s->n++] = c;
    return 0;
}

int lbw_cidr_set_copy(struct lbw_cidr_set *dst, const struct lbw_cidr_set *src)
{
    dst->v = NULL;
    dst->n = dst->cap = 0;
    if (!src || !src->n)
        return 0;
    dst->v = malloc(src->n * sizeof(*dst->v));
    if (!dst->v)
        return -ENOMEM;
    memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
    dst->n = dst->cap = src->n;
    return 0;
}

void lbw_cidr_set_free(struct lbw_cidr_set *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int in_net(const struct lbw_cidr *net, const struct lbw_cidr *a)
{
    if (net->fam != a->fam)
        return 0;
    unsigned full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->a, a->a, full))
        return 0;
    if (rest) {
        uint8_t m = (uint8_t)(0xff << (8 - rest));
        if ((net->a[full] & m) != (a->a[full] & m))
            return 0;
    }
    return 1;
}

static int match(const struct lbw_cidr_set *s, const struct lbw_cidr *a)
{
    if (!s || !s->n)
        return 1;
    for (size_t i = 0; i < s->n; i++)
        if (in_net(&s->v[i], a))
            return 1;
    return 0;
}

int lbw_cidr_set_match(const struct lbw_cidr_set *s, const struct sockaddr_storage *ss)
{
    struct lbw_cidr a = {0};
    if (ss->ss_family == AF_INET) {
        a.fam = 4;
        memcpy(a.a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *p = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(p)) {
            a.fam = 4;
            memcpy(a.a, p->s6_addr + 12, 4);
        } else {
            a.fam = 6;
            memcpy(a.a, p->s6_addr, 16);
        }
    } else {
        return !s || !s->n;
    }
    return match(s, &a);
}

int lbw_cidr_set_match_ip(const struct lbw_cidr_set *s, const char *ip)
{
    struct lbw_cidr a;
    if (addr_of(ip, &a) < 0)
        return !s || !s->n;
    return match(s, &a);
}

int lbw_seen_due(struct lbw_seen *s, const char *ip, uint64_t now, uint64_t every_ns)
{
    size_t oldest = 0;
    for (size_t i = 0; i < 64; i++) {
        if (s->at[i] && !strcmp(s->ip[i], ip)) {
            if (now - s->at[i] < every_ns)
                return 0;
            s->at[i] = now;
            return 1;
        }
        if (s->at[i] < s->at[oldest])
            oldest = i;
    }
    snprintf(s->ip[oldest], sizeof(s->ip[oldest]), "%s", ip);
    s->at[oldest] = now ? now : 1;
    return 1;
}
