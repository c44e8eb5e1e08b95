/* sockowner.h — who is at the other end of a local TCP connection: the
 * owner uid and inode of the peer's own socket (sock_diag over netlink,
 * the same lookup `ss -e` does), and a process holding that socket (a
 * bounded scan of /proc). For admitting only one user's processes to a
 * loopback port without changing what the client sends. */
#ifndef LBW_SOCKOWNER_H
#define LBW_SOCKOWNER_H

#include <sys/types.h>

/* For an accepted loopback TCP socket fd: the uid owning the connecting
 * socket and its inode. 0, -ENOENT (not found: not a local peer), or
 * -errno. */
int lbw_sock_peer_owner(int fd, uid_t *uid, unsigned long *inode);

/* A process of user `uid` that holds socket `inode` (at most 4096
 * processes and 65536 descriptors looked at). 0 or -ESRCH. */
int lbw_sock_inode_pid(unsigned long inode, uid_t uid, pid_t *pid);

#endif
