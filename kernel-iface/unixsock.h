/* unixsock.h — abstract-namespace Unix sockets for processes of one host
 * (and one network namespace): exclusive bind of a name (the kernel keeps
 * one owner and frees the name when the owner dies), connect, the
 * credentials of the process at the other end (SO_PEERCRED), and a
 * listing of the abstract names bound under a prefix (NETLINK_SOCK_DIAG
 * unix_diag, falling back to /proc/net/unix). Names are given without the
 * leading NUL. Sockets are non-blocking and close-on-exec. */
#ifndef LBW_UNIXSOCK_H
#define LBW_UNIXSOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define LBW_UNIX_NAME_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Builds the abstract address of `name`. Returns 0 or -ENAMETOOLONG / -EINVAL. */
int lbw_unix_addr(const char *name, struct sockaddr_un *sa, socklen_t *len);
/* Binds `name` and listens. type: SOCK_STREAM or SOCK_SEQPACKET. Returns the
 * fd, -EADDRINUSE when another socket holds the name, or -errno. */
int lbw_unix_listen(const char *name, int type, int backlog);
/* Connects (blocking for the handshake, which for Unix sockets never
 * waits on the network) and returns a non-blocking fd, -ECONNREFUSED when
 * nobody listens, or -errno. */
int lbw_unix_connect(const char *name, int type);
/* The peer's pid, uid, gid. 0 or -errno. */
int lbw_unix_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/* Calls fn for every abstract name bound in this network namespace that
 * starts with `prefix` (each name once). Returns the number of names,
 * or -errno. proc_root: "/" live, a fixture tree in tests (then only the
 * /proc/net/unix fallback is read). */
typedef void (*lbw_unix_name_fn)(void *ctx, const char *name);
int lbw_unix_list(const char *prefix, lbw_unix_name_fn fn, void *ctx);
/* The same from /proc/net/unix under root (the fallback; exposed for tests). */
int lbw_unix_list_proc(const char *root, const char *prefix, lbw_unix_name_fn fn, void *ctx);

#endif
