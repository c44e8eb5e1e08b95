/* discover.h — scheduler discovery by UDP broadcast (docs/PROTOCOL.md 5):
 * listen on 0.0.0.0:34305 (SO_REUSEPORT, shared with other workers and
 * pools on the host), take the first datagram that starts with the magic,
 * re-send its body once to 127.0.0.1:34305 for the other listeners here,
 * and hand over the body's message_address. Datagrams without a usable
 * message_address are logged and skipped (upstream crashes: MAY-FIX). */
#ifndef LBW_DISCOVER_H
#define LBW_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "reactor.h"

#define LBW_BROADCAST_PORT 34305

/* Parses a datagram. Returns 0 with the message address (NUL-terminated)
 * and the body's position, -1 when it does not start with the magic, -2
 * when it does but is malformed (err says how). */
int lbw_discover_parse(const uint8_t *p, size_t n, char *addr, size_t cap, size_t *body_off,
                       size_t *body_len, char *err, size_t errlen);
/* Builds a datagram (identifier "lifeblood_scheduler") around body into
 * out. Returns its length, or 0 if cap is too small. */
size_t lbw_discover_build(const uint8_t *body, size_t n, uint8_t *out, size_t cap);

struct lbw_discover;
/* Starts listening on `port` (0 = 34305). cb gets the scheduler address
 * once; then the listener is closed and the discovery may be freed. */
struct lbw_discover *lbw_discover_start(lbw_reactor *r, uint16_t port,
                                        void (*cb)(void *ctx, const char *address), void *ctx,
                                        char *err, size_t errlen);
/* Only broadcasts announcing a scheduler whose host is in `allow` are
 * taken (copied; NULL or empty = all); others are logged once a minute. */
void lbw_discover_set_allow(struct lbw_discover *d, const struct lbw_cidr_set *allow);
/* Stops listening (no callback after this returns... once the reactor
 * delivered the cancellation the object frees itself). */
void lbw_discover_cancel(struct lbw_discover *d);

#endif
