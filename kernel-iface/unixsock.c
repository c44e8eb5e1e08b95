/* unixsock.c — abstract Unix sockets: bind, connect, peer credentials and
 * the listing of bound names (see unixsock.h). */
#include "unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

#define LIST_MAX_NAMES 4096 /* names reported at most (a bound on work per call) */

int lbw_unix_addr(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0)
        return -EINVAL;
    if (n > LBW_UNIX_NAME_MAX)
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path + 1, name, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    return 0;
}

int lbw_unix_listen(const char *name, int type, int backlog)
{
    struct sockaddr_un sa;
    socklen_t l;
    int rc = lbw_unix_addr(name, &sa, &l);
    if (rc < 0)
        return rc;
    _cleanup_close_ int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, l) < 0 || listen(fd, backlog) < 0)
        return -errno;
    return TAKE_FD(fd);
}

int lbw_unix_connect(const char *name, int type)
{
    struct sockaddr_un sa;
    socklen_t l;
    int rc = lbw_unix_addr(name, &sa, &l);
    if (rc < 0)
        return rc;
    _cleanup_close_ int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, l) < 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return TAKE_FD(fd);
}

int lbw_unix_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
    struct ucred c;
    socklen_t l = sizeof(c);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &l) < 0)
        return -errno;
    if (pid)
        *pid = c.pid;
    if (uid)
        *uid = c.uid;
    if (gid)
        *gid = c.gid;
    return 0;
}

/* ---- listing ------------------------------------------------------------------- */

struct seen {
    char **names;
    size_t n;
};

static int seen_add(struct seen *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name))
            return 0;
    if (s->n >= LIST_MAX_NAMES)
        return 0;
    if (s->n % 64 == 0) {
        char **nn = realloc(s->names, (s->n + 64) * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        s->names = nn;
    }
    if (!(s->names[s->n] = strdup(name)))
        return -ENOMEM;
    s->n++;
    return 1;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
}

static int report(struct seen *s, const char *prefix, const char *name, size_t n,
                  lbw_unix_name_fn fn, void *ctx)
{
    char buf[LBW_UNIX_NAME_MAX + 1];
    size_t pl = strlen(prefix);
    if (n > LBW_UNIX_NAME_MAX || n < pl || memcmp(name, prefix, pl) != 0)
        return 0;
    memcpy(buf, name, n);
    buf[n] = 0;
    if (strlen(buf) != n) /* a NUL inside: not one of ours */
        return 0;
    int rc = seen_add(s, buf);
    if (rc > 0)
        fn(ctx, buf);
    return rc < 0 ? rc : 0;
}

static int list_diag(const char *prefix, struct seen *s, lbw_unix_name_fn fn, void *ctx)
{
    _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -errno;
    struct {
        struct nlmsghdr nh;
        struct unix_diag_req req;
    } q = {
        .nh = {.nlmsg_len = sizeof(q), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
               .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1},
        .req = {.sdiag_family = AF_UNIX, .udiag_states = 1u << 10 /* TCP_LISTEN */,
                .udiag_show = UDIAG_SHOW_NAME},
    };
    struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
    if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
        return -errno;
    long buf[8192 / sizeof(long)];
    for (unsigned rounds = 0; rounds < 100000; rounds++) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0)
            return errno == EINTR ? 0 : -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error ? e->error : -EIO;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
                continue;
            struct unix_diag_msg *m = NLMSG_DATA(h);
            int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
            for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
                 a = RTA_NEXT(a, alen)) {
                if (a->rta_type != UNIX_DIAG_NAME)
                    continue;
                const char *p = RTA_DATA(a);
                size_t pl = RTA_PAYLOAD(a);
                if (pl < 2 || p[0] != 0) /* abstract names start with NUL */
                    continue;
                int rc = report(s, prefix, p + 1, pl - 1, fn, ctx);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return -EIO;
}

static int list_proc(const char *root, const char *prefix, struct seen *s,
                     lbw_unix_name_fn fn, void *ctx)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/proc/net/unix", root && *root ? root : "/");
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[512];
    int rc = 0;
    unsigned lines = 0;
    while (rc >= 0 && lines++ < 1000000 && fgets(line, sizeof(line), f)) {
        /* Num RefCount Protocol Flags Type St Inode Path */
        char *at = strchr(line, '@');
        unsigned long flags;
        if (!at || sscanf(line, "%*s %*s %*s %lx", &flags) != 1 || !(flags & 0x10000))
            continue; /* listening sockets only (__SO_ACCEPTCON) */
        size_t n = strcspn(at + 1, "\n");
        rc = report(s, prefix, at + 1, n, fn, ctx);
    }
    fclose(f);
    return rc;
}

int lbw_unix_list_proc(const char *root, const char *prefix, lbw_unix_name_fn fn, void *ctx)
{
    struct seen s = {0};
    int rc = list_proc(root, prefix, &s, fn, ctx);
    int n = (int)s.n;
    seen_free(&s);
    return rc < 0 ? rc : n;
}

int lbw_unix_list(const char *prefix, lbw_unix_name_fn fn, void *ctx)
{
    struct seen s = {0};
    int rc = list_diag(prefix, &s, fn, ctx);
    if (rc < 0)
        rc = list_proc("/", prefix, &s, fn, ctx);
    int n = (int)s.n;
    seen_free(&s);
    return rc < 0 ? rc : n;
}
