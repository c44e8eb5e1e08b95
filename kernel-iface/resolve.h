/* resolve.h — host name to numeric address, with a deadline. The system
 * resolver (getaddrinfo) may block for as long as its configuration
 * allows; here it runs in a helper thread and the caller waits at most
 * `timeout_ns` (a late answer is dropped with the thread). Used before the
 * event loop needs the address, never for names that arrive from the
 * network. */
#ifndef LBW_RESOLVE_H
#define LBW_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

/* A numeric host is copied as it is. Otherwise the first IPv4 address
 * (else IPv6) of `host` into ip. Returns 0, or -ENOENT / -ETIMEDOUT /
 * -errno with err saying "cannot resolve HOST: <reason>". */
int lbw_resolve_host(const char *host, char *ip, size_t cap, uint64_t timeout_ns, char *err,
                     size_t errlen);

#endif
