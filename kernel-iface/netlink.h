/* netlink.h — route netlink through libnl-3: the local source address the
 * kernel would use to reach a destination (RTM_GETROUTE, the same answer as
 * `ip route get`), and a subscription to address changes (RTM_NEWADDR /
 * RTM_DELADDR) whose fd the reactor can poll. */
#ifndef LBW_NETLINK_H
#define LBW_NETLINK_H

#include <stddef.h>

/* Numeric destination (IPv4 or IPv6) -> numeric source address into out.
 * Returns 0 or -errno (-ENETUNREACH when there is no route). */
int lbw_route_source(const char *dst_ip, char *out, size_t cap);

struct lbw_addrwatch;
/* Opens a non-blocking subscription; *fd is for lbw_poll(POLLIN).
 * Returns NULL with errno set on failure. */
struct lbw_addrwatch *lbw_addrwatch_open(int *fd);
/* Reads what is pending; returns how many address changes were seen
 * (0 if none), or -errno. */
int lbw_addrwatch_drain(struct lbw_addrwatch *w);
void lbw_addrwatch_close(struct lbw_addrwatch *w);

#endif
