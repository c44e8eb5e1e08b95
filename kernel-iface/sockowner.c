/* sockowner.c — see sockowner.h. */
#include "sockowner.h"

#include <dirent.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

int lbw_sock_peer_owner(int fd, uid_t *uid, unsigned long *inode)
{
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof(me), pl = sizeof(peer);
    if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
        return -errno;
    if (me.ss_family != peer.ss_family ||
        (me.ss_family != AF_INET && me.ss_family != AF_INET6))
        return -EAFNOSUPPORT;
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = sizeof(req);
    req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = 1;
    req.r.sdiag_family = (unsigned char)me.ss_family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    /* the peer's socket: its source is our peer, its destination is us */
    if (me.ss_family == AF_INET) {
        struct sockaddr_in *m = (struct sockaddr_in *)&me, *p = (struct sockaddr_in *)&peer;
        req.r.id.idiag_sport = p->sin_port;
        req.r.id.idiag_dport = m->sin_port;
        memcpy(req.r.id.idiag_src, &p->sin_addr, 4);
        memcpy(req.r.id.idiag_dst, &m->sin_addr, 4);
    } else {
        struct sockaddr_in6 *m = (struct sockaddr_in6 *)&me, *p = (struct sockaddr_in6 *)&peer;
        req.r.id.idiag_sport = p->sin6_port;
        req.r.id.idiag_dport = m->sin6_port;
        memcpy(req.r.id.idiag_src, &p->sin6_addr, 16);
        memcpy(req.r.id.idiag_dst, &m->sin6_addr, 16);
    }
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    _cleanup_close_ int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -errno;
    struct timeval tv = {.tv_sec = 1};
    setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&k, sizeof(k)) < 0)
        return -errno;
    long buf[2048];
    ssize_t n = recv(nl, buf, sizeof(buf), 0);
    if (n < 0)
        return -errno;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            struct nlmsgerr *e = NLMSG_DATA(h);
            return e->error ? e->error : -ENOENT;
        }
        if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
            h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
            struct inet_diag_msg *m = NLMSG_DATA(h);
            *uid = m->idiag_uid;
            *inode = m->idiag_inode;
            return 0;
        }
    }
    return -ENOENT;
}

int lbw_sock_inode_pid(unsigned long inode, uid_t uid, pid_t *pid)
{
    char want[64];
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    DIR *proc = opendir("/proc");
    if (!proc)
        return -ESRCH;
    int procs = 0, fds = 0, rc = -ESRCH;
    struct dirent *de;
    while (rc && (de = readdir(proc)) && procs < 4096 && fds < 65536) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char p[300];
        struct stat st;
        snprintf(p, sizeof(p), "/proc/%s", de->d_name);
        if (stat(p, &st) < 0 || st.st_uid != uid)
            continue;
        procs++;
        snprintf(p, sizeof(p), "/proc/%s/fd", de->d_name);
        DIR *fdd = opendir(p);
        if (!fdd)
            continue;
        struct dirent *fe;
        while ((fe = readdir(fdd)) && fds < 65536) {
            if (fe->d_name[0] == '.')
                continue;
            fds++;
            char lp[600], target[64];
            snprintf(lp, sizeof(lp), "/proc/%s/fd/%s", de->d_name, fe->d_name);
            ssize_t l = readlink(lp, target, sizeof(target) - 1);
            if (l <= 0)
                continue;
            target[l] = 0;
            if (!strcmp(target, want)) {
                *pid = (pid_t)atoi(de->d_name);
                rc = 0;
                break;
            }
        }
        closedir(fdd);
    }
    closedir(proc);
    return rc;
}
