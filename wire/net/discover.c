/* discover.c — broadcast discovery of the scheduler (see discover.h). */
#include "discover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "address.h"
#include "bytes.h"
#include "json.h"
#include "log.h"

static const uint8_t MAGIC[11] = {0x3d, 0xe2, 0x88, 0x88, 0xe2, 0xad,
                                  0x95, 0xe2, 0x88, 0x8b, 0x3d};
#define DGRAM_MAX 65536

int lbw_discover_parse(const uint8_t *p, size_t n, char *addr, size_t cap, size_t *body_off,
                       size_t *body_len, char *err, size_t errlen)
{
    if (n < sizeof(MAGIC) || memcmp(p, MAGIC, sizeof(MAGIC)))
        return -1;
    if (n < sizeof(MAGIC) + 8) {
        snprintf(err, errlen, "truncated header");
        return -2;
    }
    uint64_t il = lbw_be32(p + 11), bl = lbw_be32(p + 15);
    if (19 + il + bl > n) {
        snprintf(err, errlen, "lengths (%llu + %llu) exceed the datagram (%zu bytes)",
                 (unsigned long long)il, (unsigned long long)bl, n);
        return -2;
    }
    const char *body = (const char *)p + 19 + il;
    struct lbw_json j;
    if (lbw_json_parse(&j, body, (size_t)bl, err, errlen) < 0)
        return -2;
    int t = lbw_json_type(&j, 0) == LBW_JSON_OBJECT ? lbw_json_get(&j, 0, "message_address")
                                                     : -1;
    char *s = NULL;
    size_t sl = 0;
    int rc = -2;
    if (t < 0 || lbw_json_str(&j, t, &s, &sl) < 0)
        snprintf(err, errlen, "no message_address string in the body");
    else if (sl == 0 || sl >= cap || !lbw_chain_is_valid(s, sl))
        snprintf(err, errlen, "message_address is not an address chain");
    else {
        memcpy(addr, s, sl + 1);
        *body_off = 19 + (size_t)il;
        *body_len = (size_t)bl;
        rc = 0;
    }
    free(s);
    lbw_json_free(&j);
    return rc;
}

size_t lbw_discover_build(const uint8_t *body, size_t n, uint8_t *out, size_t cap)
{
    static const char id[] = "lifeblood_scheduler";
    size_t il = sizeof(id) - 1, total = 19 + il + n;
    if (total > cap || n > UINT32_MAX)
        return 0;
    memcpy(out, MAGIC, 11);
    uint32_t v[2] = {htonl((uint32_t)il), htonl((uint32_t)n)};
    memcpy(out + 11, v, 8);
    memcpy(out + 19, id, il);
    memcpy(out + 19 + il, body, n);
    return total;
}

struct lbw_discover {
    lbw_reactor *r;
    int fd;
    uint16_t port;
    struct lbw_op op;
    uint8_t *buf;
    void (*cb)(void *ctx, const char *address);
    void *ctx;
    int cancelled;
    struct lbw_cidr_set allow; /* announced schedulers admitted; empty = all */
    struct lbw_seen seen;
};

static void d_free(struct lbw_discover *d)
{
    if (d->fd >= 0)
        close(d->fd);
    lbw_cidr_set_free(&d->allow);
    free(d->buf);
    free(d);
}

static void resend_local(const struct lbw_discover *d, const uint8_t *body, size_t n)
{
    uint8_t out[DGRAM_MAX];
    size_t len = lbw_discover_build(body, n, out, sizeof(out));
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || !len) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(d->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sendto(fd, out, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        LBW_DEBUG("discover", "re-broadcast to 127.0.0.1: %s", strerror(errno));
    close(fd);
}

/* worker.scheduler_allow: the announced scheduler's host must be in the
 * list (the worker would talk to it); refused ones are logged once a
 * minute per host. */
static int announced_allowed(struct lbw_discover *d, const char *addr)
{
    if (!d->allow.n)
        return 1;
    char host[1024];
    uint16_t port;
    size_t fl = lbw_chain_first_len(addr, strlen(addr));
    if (lbw_addr_split(addr, fl, host, sizeof(host), &port) == 0 &&
        lbw_cidr_set_match_ip(&d->allow, host))
        return 1;
    if (lbw_seen_due(&d->seen, fl < 48 ? addr : "(long)", lbw_now_ns(), 60000000000ull))
        LBW_WARN("discover", "ignored a broadcast announcing %s: not in the allowed scheduler "
                             "addresses (shown once a minute per address)", addr);
    return 0;
}

void lbw_discover_set_allow(struct lbw_discover *d, const struct lbw_cidr_set *allow)
{
    lbw_cidr_set_free(&d->allow);
    if (lbw_cidr_set_copy(&d->allow, allow) < 0)
        d->allow.n = 0, d->allow.v = NULL;
}

static void d_recv_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_discover *d = op->user;
    if (d->cancelled || res == -ECANCELED) {
        d_free(d);
        return;
    }
    if (res > 0) {
        char addr[1024], err[256];
        size_t bo, bl;
        int rc = lbw_discover_parse(d->buf, (size_t)res, addr, sizeof(addr), &bo, &bl, err,
                                    sizeof(err));
        if (rc == 0 && !announced_allowed(d, addr)) {
            rc = -3;
        } else if (rc == 0) {
            close(d->fd);
            d->fd = -1;
            LBW_INFO("discover", "scheduler found by broadcast: %s", addr);
            resend_local(d, d->buf + bo, bl);
            d->cb(d->ctx, addr);
            d_free(d);
            return;
        }
        if (rc == -2)
            LBW_WARN("discover", "ignored a malformed scheduler broadcast: %s", err);
    } else if (res < 0) {
        LBW_WARN("discover", "receiving broadcasts: %s", strerror((int)-res));
    }
    if (lbw_recv(r, &d->op, d->fd, d->buf, DGRAM_MAX, d_recv_cb) < 0) {
        LBW_ERROR("discover", "cannot wait for broadcasts");
        d_free(d);
    }
}

struct lbw_discover *lbw_discover_start(lbw_reactor *r, uint16_t port,
                                        void (*cb)(void *ctx, const char *address), void *ctx,
                                        char *err, size_t errlen)
{
    struct lbw_discover *d = calloc(1, sizeof(*d));
    if (!d || !(d->buf = malloc(DGRAM_MAX))) {
        free(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->r = r;
    d->port = port ? port : LBW_BROADCAST_PORT;
    d->cb = cb;
    d->ctx = ctx;
    d->op.user = d;
    d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(d->port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (d->fd < 0 || setsockopt(d->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(d->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        setsockopt(d->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
        bind(d->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "cannot listen for scheduler broadcasts on UDP port %u: %s",
                 (unsigned)d->port, strerror(errno));
        d_free(d);
        return NULL;
    }
    if (lbw_recv(r, &d->op, d->fd, d->buf, DGRAM_MAX, d_recv_cb) < 0) {
        snprintf(err, errlen, "cannot wait for broadcasts");
        d_free(d);
        return NULL;
    }
    LBW_INFO("discover", "waiting for a scheduler broadcast on UDP port %u", (unsigned)d->port);
    return d;
}

void lbw_discover_cancel(struct lbw_discover *d)
{
    d->cancelled = 1;
    lbw_cancel(d->r, &d->op);
}
