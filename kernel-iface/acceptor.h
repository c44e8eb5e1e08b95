/* acceptor.h — accepting TCP connections on the reactor, fairly and within
 * bounds. Owns: the accept loop on a listening socket, back-off when the
 * process or system is out of descriptors (EMFILE/ENFILE), a limit on
 * connections at once, a limit per source address, room kept for
 * preferred sources, a deadline for a new connection to prove itself, and
 * eviction of the oldest silent (then oldest idle) connection when full.
 * Knows nothing of what is spoken on the connections.
 *
 * The owner embeds a `struct lbw_acc_conn` in each of its connection
 * objects and tells the acceptor what the connection is doing:
 *   NEW   accepted, nothing useful received yet (evictable first; closed
 *         when the probation deadline passes)
 *   IDLE  between exchanges (evictable when full, least recently active
 *         first)
 *   BUSY  in the middle of something (never evicted by the acceptor)
 * The acceptor asks the owner to close a connection through `evict`; the
 * connection stops counting at once, and the owner's later
 * lbw_acc_conn_done is a no-op for it.
 *
 * Log lines (component `name`): one WARNING per minute at most naming the
 * source that floods (per-source limit reached, or the busiest source when
 * the whole table is full), and one when accepting fails for lack of
 * descriptors. */
#ifndef LBW_ACCEPTOR_H
#define LBW_ACCEPTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "list.h"
#include "reactor.h"

struct lbw_acceptor;
struct lbw_acc_source;

enum lbw_acc_state { LBW_ACC_NEW, LBW_ACC_IDLE, LBW_ACC_BUSY };

/* Embedded in the owner's connection; the acceptor fills it in. */
struct lbw_acc_conn {
    struct lbw_acceptor *acc;      /* NULL once no longer counted */
    struct lbw_list link;          /* in the NEW or IDLE list */
    struct lbw_acc_source *src;
    uint64_t since;                /* accepted, or last became IDLE */
    uint8_t state;
    uint8_t preferred;
    char peer[64];                 /* "ip:port" (IPv6 in brackets) */
    char ip[48];                   /* numeric source address */
    struct sockaddr_storage addr;
};

struct lbw_acceptor_opts {
    const char *name;              /* log component, e.g. "net" */
    size_t max_conns;              /* at once; 0 = 1024 */
    size_t per_source;             /* per source address; 0 = no limit */
    size_t reserved;               /* of max_conns, kept for preferred sources */
    uint64_t probation_ns;         /* a NEW connection's deadline; 0 = 10 s */
    /* Optional: 0 to admit, < 0 to refuse (fd is closed by the acceptor;
     * the callback logs why). Runs before the limits are applied. */
    int (*admit)(void *ctx, int fd, const struct sockaddr_storage *peer, const char *ip);
    /* Required: take the connection; return its embedded lbw_acc_conn
     * (initialised with lbw_acc_conn_init or zeroed) or NULL to refuse
     * (the acceptor closes fd). */
    struct lbw_acc_conn *(*on_conn)(void *ctx, int fd, const char *peer);
    /* Required: close this connection (the acceptor has stopped counting
     * it). why: a short phrase for the owner's log line. */
    void (*evict)(void *ctx, struct lbw_acc_conn *c, const char *why);
    void *ctx;
};

struct lbw_acceptor_stats {
    uint64_t accepted, refused_admit, refused_source, refused_full, evicted_new,
        evicted_idle, expired, fd_exhausted;
};

/* Starts accepting on listen_fd (the acceptor owns and closes it). NULL on
 * failure (listen_fd is then still the caller's). */
struct lbw_acceptor *lbw_acceptor_new(lbw_reactor *r, int listen_fd,
                                      const struct lbw_acceptor_opts *o);
/* Stops accepting, forgets every counted connection (their owners close
 * them) and frees itself once the reactor delivered the cancellations. No
 * callback runs after this returns. */
void lbw_acceptor_close(struct lbw_acceptor *a);

/* A source address whose connections get the reserved room and are exempt
 * from the per-source limit (e.g. the peer we are registered with).
 * Numeric address; up to 8 kept (the oldest is forgotten). 0 or -EINVAL. */
int lbw_acceptor_prefer(struct lbw_acceptor *a, const char *ip);
void lbw_acceptor_stats(const struct lbw_acceptor *a, struct lbw_acceptor_stats *s);
size_t lbw_acceptor_count(const struct lbw_acceptor *a);

void lbw_acc_conn_init(struct lbw_acc_conn *c);
/* The owner's view of what the connection does now. */
void lbw_acc_conn_set(struct lbw_acc_conn *c, enum lbw_acc_state s);
/* The owner closed the connection (idempotent). */
void lbw_acc_conn_done(struct lbw_acc_conn *c);

/* "ip" of a socket address, IPv4-mapped IPv6 shown as IPv4. */
void lbw_acc_format_ip(const struct sockaddr_storage *ss, char *ip, size_t cap, int *port);

#endif
