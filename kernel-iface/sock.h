/* sock.h — TCP socket set-up for the reactor: numeric address parsing,
 * non-blocking close-on-exec sockets, listening, and reading back the bound address. Name resolution is not here. */
#ifndef LBW_SOCK_H
#define LBW_SOCK_H

#include <stdint.h>
#include <sys/socket.h>

/* Parses a numeric IPv4 or IPv6 address and a port into ss.
 * Returns 0 or -EINVAL. */
int lbw_sockaddr_from(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                      socklen_t *len);
/* A non-blocking, close-on-exec TCP socket of the family of ss. */
int lbw_tcp_socket(const struct sockaddr_storage *ss);
/* Binds and listens (SO_REUSEADDR set). port 0 = any free port.
 * Returns the fd or -errno (-EADDRINUSE when taken). */
int lbw_tcp_listen(const char *ip, uint16_t port, int backlog);
/* The local port of a bound socket, or -errno. */
int lbw_sock_port(int fd);
/* Disables Nagle (request/response traffic). Returns 0 or -errno. */
int lbw_tcp_nodelay(int fd);

#endif
