/* netlink.c — see netlink.h. */
#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <stdlib.h>
#include <string.h>

struct route_ctx {
    int family;
    char *out;
    size_t cap;
    int found;
};

static int route_cb(struct nl_msg *msg, void *arg)
{
    struct route_ctx *c = arg;
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    if (nlh->nlmsg_type != RTM_NEWROUTE)
        return NL_OK;
    struct nlattr *tb[RTA_MAX + 1];
    if (nlmsg_parse(nlh, sizeof(struct rtmsg), tb, RTA_MAX, NULL) < 0 || !tb[RTA_PREFSRC])
        return NL_OK;
    if (inet_ntop(c->family, nla_data(tb[RTA_PREFSRC]), c->out, (socklen_t)c->cap))
        c->found = 1;
    return NL_OK;
}

static int nl_to_errno(int e)
{
    switch (-e) {
    case NLE_NOMEM: return -ENOMEM;
    case NLE_PERM: return -EPERM;
    case NLE_NOADDR:
    case NLE_OBJ_NOTFOUND: return -ENETUNREACH;
    default: return e < 0 ? -EIO : 0;
    }
}

int lbw_route_source(const char *dst_ip, char *out, size_t cap)
{
    unsigned char addr[16];
    int family = AF_INET;
    size_t alen = 4;
    if (inet_pton(AF_INET, dst_ip, addr) != 1) {
        if (inet_pton(AF_INET6, dst_ip, addr) != 1)
            return -EINVAL;
        family = AF_INET6;
        alen = 16;
    }
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return -ENOMEM;
    int rc = nl_connect(sk, NETLINK_ROUTE);
    struct nl_msg *msg = NULL;
    if (rc == 0) {
        msg = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_REQUEST);
        struct rtmsg rtm = {.rtm_family = (unsigned char)family,
                            .rtm_dst_len = (unsigned char)(alen * 8)};
        if (!msg || nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
            nla_put(msg, RTA_DST, (int)alen, addr) < 0)
            rc = -NLE_NOMEM;
    }
    struct route_ctx c = {.family = family, .out = out, .cap = cap};
    if (rc == 0)
        rc = nl_send_auto(sk, msg);
    if (rc >= 0) {
        nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, route_cb, &c);
        rc = nl_recvmsgs_default(sk);
    }
    nlmsg_free(msg);
    nl_socket_free(sk);
    if (rc < 0) {
        int e = nl_to_errno(rc);
        return e == -EIO && rc == -NLE_FAILURE ? -ENETUNREACH : e;
    }
    return c.found ? 0 : -ENETUNREACH;
}

struct lbw_addrwatch {
    struct nl_sock *sk;
    int changes;
};

static int addr_cb(struct nl_msg *msg, void *arg)
{
    struct lbw_addrwatch *w = arg;
    int t = nlmsg_hdr(msg)->nlmsg_type;
    if (t == RTM_NEWADDR || t == RTM_DELADDR)
        w->changes++;
    return NL_OK;
}

struct lbw_addrwatch *lbw_addrwatch_open(int *fd)
{
    struct lbw_addrwatch *w = calloc(1, sizeof(*w));
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    w->sk = nl_socket_alloc();
    if (!w->sk) {
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    nl_socket_disable_seq_check(w->sk);
    nl_socket_modify_cb(w->sk, NL_CB_VALID, NL_CB_CUSTOM, addr_cb, w);
    if (nl_connect(w->sk, NETLINK_ROUTE) < 0 ||
        nl_socket_add_memberships(w->sk, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, 0) < 0 ||
        nl_socket_set_nonblocking(w->sk) < 0) {
        nl_socket_free(w->sk);
        free(w);
        errno = EIO;
        return NULL;
    }
    *fd = nl_socket_get_fd(w->sk);
    return w;
}

int lbw_addrwatch_drain(struct lbw_addrwatch *w)
{
    w->changes = 0;
    for (;;) {
        int rc = nl_recvmsgs_default(w->sk);
        if (rc == -NLE_AGAIN || rc == 0)
            break;
        if (rc < 0) {
            if (w->changes)
                break;
            return rc == -NLE_NOMEM ? -ENOBUFS : -EIO;
        }
    }
    return w->changes;
}

void lbw_addrwatch_close(struct lbw_addrwatch *w)
{
    if (!w)
        return;
    nl_socket_free(w->sk);
    free(w);
}
