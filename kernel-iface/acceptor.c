/* acceptor.c — see acceptor.h.
 *
 * Every counted connection sits in exactly one of three lists (new, idle,
 * busy); new and idle are kept in time order by appending, so the oldest
 * is always at the head and the probation check and eviction are O(1) per
 * connection they touch. Sources are counted in a small chained hash. */
#include "acceptor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define SEC 1000000000ull
#define NBUCKET 256
#define NPREF 8
#define KEYLEN 17
#define WARN_EVERY (60 * SEC)
#define BACKOFF_MIN (10 * 1000000ull)
#define BACKOFF_MAX SEC

struct lbw_acc_source {
    struct lbw_acc_source *next;
    uint8_t key[KEYLEN];
    size_t count;
    uint64_t warned;
    char ip[48];
};

struct lbw_acceptor {
    lbw_reactor *r;
    int lfd;
    struct lbw_acceptor_opts o;
    struct lbw_op aop, retry_t, probe_t;
    unsigned pending;
    int closing;
    struct lbw_list news, idles, busies;
    size_t count;
    struct lbw_acc_source *buckets[NBUCKET];
    uint8_t pref[NPREF][KEYLEN];
    size_t npref, pref_next;
    uint64_t backoff;
    uint64_t warned_full, warned_fd;
    struct lbw_acceptor_stats st;
};

static void accept_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);

/* ---- addresses and sources ---------------------------------------------------- */

static void addr_key(const struct sockaddr_storage *ss, uint8_t key[KEYLEN])
{
    memset(key, 0, KEYLEN);
    if (ss->ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[0] = 4;
            memcpy(key + 1, a->s6_addr + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a->s6_addr, 16);
        }
    }
}

void lbw_acc_format_ip(const struct sockaddr_storage *ss, char *ip, size_t cap, int *port)
{
    uint8_t k[KEYLEN];
    addr_key(ss, k);
    snprintf(ip, cap, "?");
    if (port)
        *port = 0;
    if (k[0] == 4)
        inet_ntop(AF_INET, k + 1, ip, (socklen_t)cap);
    else if (k[0] == 6)
        inet_ntop(AF_INET6, k + 1, ip, (socklen_t)cap);
    if (port && ss->ss_family == AF_INET)
        *port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    else if (port && ss->ss_family == AF_INET6)
        *port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static unsigned key_hash(const uint8_t k[KEYLEN])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < KEYLEN; i++)
        h = (h ^ k[i]) * 16777619u;
    return h % NBUCKET;
}

static struct lbw_acc_source *source_get(struct lbw_acceptor *a, const uint8_t k[KEYLEN],
                                         const char *ip)
{
    unsigned h = key_hash(k);
    for (struct lbw_acc_source *s = a->buckets[h]; s; s = s->next)
        if (!memcmp(s->key, k, KEYLEN))
            return s;
    struct lbw_acc_source *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    memcpy(s->key, k, KEYLEN);
    snprintf(s->ip, sizeof(s->ip), "%s", ip);
    s->next = a->buckets[h];
    a->buckets[h] = s;
    return s;
}

static void source_put(struct lbw_acceptor *a, struct lbw_acc_source *s)
{
    if (s->count)
        return;
    struct lbw_acc_source **p = &a->buckets[key_hash(s->key)];
    while (*p && *p != s)
        p = &(*p)->next;
    if (*p)
        *p = s->next;
    free(s);
}

static int is_preferred(const struct lbw_acceptor *a, const uint8_t k[KEYLEN])
{
    for (size_t i = 0; i < a->npref; i++)
        if (!memcmp(a->pref[i], k, KEYLEN))
            return 1;
    return 0;
}

int lbw_acceptor_prefer(struct lbw_acceptor *a, const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        return -EINVAL;
    uint8_t k[KEYLEN];
    addr_key(&ss, k);
    if (is_preferred(a, k))
        return 0;
    memcpy(a->pref[a->pref_next], k, KEYLEN);
    a->pref_next = (a->pref_next + 1) % NPREF;
    if (a->npref < NPREF)
        a->npref++;
    return 0;
}

static const struct lbw_acc_source *busiest(const struct lbw_acceptor *a)
{
    const struct lbw_acc_source *best = NULL;
    for (size_t i = 0; i < NBUCKET; i++)
        for (const struct lbw_acc_source *s = a->buckets[i]; s; s = s->next)
            if (!best || s->count > best->count)
                best = s;
    return best;
}

/* ---- connection accounting ---------------------------------------------------- */

void lbw_acc_conn_init(struct lbw_acc_conn *c)
{
    memset(c, 0, sizeof(*c));
    lbw_list_init(&c->link);
}

static void arm_probation(struct lbw_acceptor *a);

void lbw_acc_conn_set(struct lbw_acc_conn *c, enum lbw_acc_state s)
{
    struct lbw_acceptor *a = c->acc;
    if (!a || (c->state == s && s != LBW_ACC_IDLE))
        return;
    lbw_list_del(&c->link);
    c->state = (uint8_t)s;
    if (s == LBW_ACC_IDLE)
        c->since = lbw_now_ns();
    lbw_list_add_tail(s == LBW_ACC_NEW ? &a->news : s == LBW_ACC_IDLE ? &a->idles : &a->busies,
                      &c->link);
    if (s == LBW_ACC_NEW)
        arm_probation(a);
}

void lbw_acc_conn_done(struct lbw_acc_conn *c)
{
    struct lbw_acceptor *a = c->acc;
    if (!a)
        return;
    lbw_list_del(&c->link);
    c->acc = NULL;
    a->count--;
    if (c->src) {
        c->src->count--;
        source_put(a, c->src);
        c->src = NULL;
    }
}

static void evict(struct lbw_acceptor *a, struct lbw_acc_conn *c, const char *why)
{
    lbw_acc_conn_done(c);
    a->o.evict(a->o.ctx, c, why);
}

/* Frees one slot: the oldest silent connection, else the least recently
 * active idle one; connections of preferred sources go last. Returns 1 if
 * one was closed. */
static int evict_one(struct lbw_acceptor *a, int for_preferred)
{
    struct lbw_list *lists[2] = {&a->news, &a->idles};
    for (int pass = 0; pass < 2; pass++)
        for (int l = 0; l < 2; l++) {
            struct lbw_list *pos;
            lbw_list_for_each(pos, lists[l]) {
                struct lbw_acc_conn *c = lbw_list_entry(pos, struct lbw_acc_conn, link);
                if (c->preferred && (pass == 0 || !for_preferred))
                    continue;
                if (l == 0)
                    a->st.evicted_new++;
                else
                    a->st.evicted_idle++;
                evict(a, c, l == 0 ? "the connection table is full and it has sent nothing"
                                   : "the connection table is full and it is idle");
                return 1;
            }
        }
    return 0;
}

/* ---- probation ------------------------------------------------------------------ */

static void probe_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_acceptor *a = op->user;
    a->pending--;
    if (a->closing) {
        lbw_acceptor_close(a);
        return;
    }
    uint64_t now = lbw_now_ns();
    struct lbw_list *first;
    while ((first = lbw_list_first(&a->news))) {
        struct lbw_acc_conn *c = lbw_list_entry(first, struct lbw_acc_conn, link);
        if (now < c->since + a->o.probation_ns)
            break;
        a->st.expired++;
        evict(a, c, "it sent nothing useful in time");
    }
    arm_probation(a);
}

static void arm_probation(struct lbw_acceptor *a)
{
    struct lbw_list *first = lbw_list_first(&a->news);
    if (!first || a->closing || lbw_op_pending(&a->probe_t))
        return;
    struct lbw_acc_conn *c = lbw_list_entry(first, struct lbw_acc_conn, link);
    uint64_t now = lbw_now_ns(), due = c->since + a->o.probation_ns;
    if (lbw_timer(a->r, &a->probe_t, due > now ? due - now : 1, 0, probe_cb) == 0)
        a->pending++;
}

/* ---- accepting ------------------------------------------------------------------- */

static void accept_again(struct lbw_acceptor *a, uint64_t delay)
{
    int rc = delay ? lbw_timer(a->r, &a->retry_t, delay, 0, accept_cb)
                   : lbw_accept(a->r, &a->aop, a->lfd, accept_cb);
    if (rc == 0)
        a->pending++;
    else
        LBW_ERROR(a->o.name, "cannot accept connections any more: %s", strerror(-rc));
}

static void warn_full(struct lbw_acceptor *a, const char *what)
{
    uint64_t now = lbw_now_ns();
    if (a->warned_full && now - a->warned_full < WARN_EVERY)
        return;
    a->warned_full = now;
    const struct lbw_acc_source *b = busiest(a);
    LBW_WARN(a->o.name, "%zu connections open (the limit): %s; the most come from %s (%zu)",
             a->count, what, b ? b->ip : "?", b ? b->count : (size_t)0);
}

static void admit(struct lbw_acceptor *a, int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    char ip[48], peer[64];
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
        close(fd); /* gone already */
        return;
    }
    lbw_acc_format_ip(&ss, ip, sizeof(ip), &port);
    snprintf(peer, sizeof(peer), strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
    if (a->o.admit && a->o.admit(a->o.ctx, fd, &ss, ip) < 0) {
        a->st.refused_admit++;
        close(fd);
        return;
    }
    uint8_t k[KEYLEN];
    addr_key(&ss, k);
    int pref = is_preferred(a, k);
    struct lbw_acc_source *src = source_get(a, k, ip);
    if (!src) {
        close(fd);
        return;
    }
    if (!pref && a->o.per_source && src->count >= a->o.per_source) {
        a->st.refused_source++;
        uint64_t now = lbw_now_ns();
        if (!src->warned || now - src->warned >= WARN_EVERY) {
            src->warned = now;
            LBW_WARN(a->o.name, "connection flood from %s: %zu connections open, the limit "
                                "per source; refusing more from it", ip, src->count);
        }
        close(fd);
        source_put(a, src);
        return;
    }
    size_t limit = pref ? a->o.max_conns : a->o.max_conns - a->o.reserved;
    int evicted = 0;
    while (a->count >= limit && evict_one(a, pref))
        evicted = 1;
    if (a->count >= limit) {
        a->st.refused_full++;
        warn_full(a, "refusing new ones");
        close(fd);
        source_put(a, src);
        return;
    }
    if (evicted)
        warn_full(a, "closing the oldest silent or idle ones");
    struct lbw_acc_conn *c = a->o.on_conn(a->o.ctx, fd, peer);
    if (!c) {
        close(fd);
        source_put(a, src);
        return;
    }
    a->st.accepted++;
    c->acc = a;
    c->src = src;
    c->preferred = (uint8_t)pref;
    c->addr = ss;
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->since = lbw_now_ns();
    c->state = LBW_ACC_NEW;
    lbw_list_init(&c->link);
    lbw_list_add_tail(&a->news, &c->link);
    src->count++;
    a->count++;
    arm_probation(a);
}

static void accept_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_acceptor *a = op->user;
    a->pending--;
    if (a->closing) {
        if (op == &a->aop && res >= 0)
            close((int)res);
        lbw_acceptor_close(a);
        return;
    }
    if (op == &a->retry_t) {
        accept_again(a, 0);
        return;
    }
    if (res >= 0) {
        a->backoff = 0;
        admit(a, (int)res);
        accept_again(a, 0);
        return;
    }
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        a->st.fd_exhausted++;
        uint64_t now = lbw_now_ns();
        if (!a->warned_fd || now - a->warned_fd >= WARN_EVERY) {
            a->warned_fd = now;
            LBW_WARN(a->o.name, "cannot accept a connection: %s (%zu open here); closing the "
                                "oldest silent one and backing off", strerror((int)-res),
                     a->count);
        }
        struct lbw_list *first = lbw_list_first(&a->news);
        if (first)
            evict(a, lbw_list_entry(first, struct lbw_acc_conn, link),
                  "the process is out of file descriptors and it has sent nothing");
        a->backoff = a->backoff ? a->backoff * 2 : BACKOFF_MIN;
        if (a->backoff > BACKOFF_MAX)
            a->backoff = BACKOFF_MAX;
        accept_again(a, a->backoff);
        return;
    }
    if (res == -EAGAIN || res == -EINTR || res == -ECONNABORTED || res == -EPROTO ||
        res == -EPERM) {
        accept_again(a, 0);
        return;
    }
    LBW_ERROR(a->o.name, "accepting connections failed: %s; retrying in 1 s",
              strerror((int)-res));
    accept_again(a, SEC);
}

/* ---- lifetime -------------------------------------------------------------------- */

struct lbw_acceptor *lbw_acceptor_new(lbw_reactor *r, int listen_fd,
                                      const struct lbw_acceptor_opts *o)
{
    struct lbw_acceptor *a = calloc(1, sizeof(*a));
    if (!a || !o->on_conn || !o->evict) {
        free(a);
        return NULL;
    }
    a->r = r;
    a->lfd = listen_fd;
    a->o = *o;
    if (!a->o.name)
        a->o.name = "accept";
    if (!a->o.max_conns)
        a->o.max_conns = 1024;
    if (a->o.reserved >= a->o.max_conns)
        a->o.reserved = a->o.max_conns / 2;
    if (!a->o.probation_ns)
        a->o.probation_ns = 10 * SEC;
    a->aop.user = a->retry_t.user = a->probe_t.user = a;
    lbw_list_init(&a->news);
    lbw_list_init(&a->idles);
    lbw_list_init(&a->busies);
    if (lbw_accept(r, &a->aop, listen_fd, accept_cb) < 0) {
        free(a);
        return NULL;
    }
    a->pending++;
    return a;
}

static void forget_all(struct lbw_acceptor *a, struct lbw_list *l)
{
    struct lbw_list *pos, *tmp;
    lbw_list_for_each_safe(pos, tmp, l) {
        struct lbw_acc_conn *c = lbw_list_entry(pos, struct lbw_acc_conn, link);
        lbw_acc_conn_done(c);
    }
}

void lbw_acceptor_close(struct lbw_acceptor *a)
{
    if (!a->closing) {
        a->closing = 1;
        forget_all(a, &a->news);
        forget_all(a, &a->idles);
        forget_all(a, &a->busies);
        if (lbw_op_pending(&a->aop))
            lbw_cancel(a->r, &a->aop);
        if (lbw_op_pending(&a->retry_t))
            lbw_cancel(a->r, &a->retry_t);
        if (lbw_op_pending(&a->probe_t))
            lbw_cancel(a->r, &a->probe_t);
    }
    if (a->pending)
        return;
    close(a->lfd); /* only now: the accept op referred to its number */
    for (size_t i = 0; i < NBUCKET; i++)
        while (a->buckets[i]) {
            struct lbw_acc_source *s = a->buckets[i];
            a->buckets[i] = s->next;
            free(s);
        }
    free(a);
}

void lbw_acceptor_stats(const struct lbw_acceptor *a, struct lbw_acceptor_stats *s)
{
    *s = a->st;
}

size_t lbw_acceptor_count(const struct lbw_acceptor *a) { return a->count; }
