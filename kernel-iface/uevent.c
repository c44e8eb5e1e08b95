/* uevent.c — see uevent.h. */
#include "uevent.h"

#include <errno.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int lbw_uevent_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    NETLINK_KOBJECT_UEVENT);
    if (fd < 0)
        return -errno;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1}; /* the kernel's group */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

ssize_t lbw_uevent_recv(int fd, void *buf, size_t cap)
{
    for (unsigned i = 0; i < 64; i++) {
        struct sockaddr_nl from;
        struct iovec iov = {.iov_base = buf, .iov_len = cap};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
                            .msg_iovlen = 1};
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        if (mh.msg_flags & MSG_TRUNC)
            return -EMSGSIZE;
        if (mh.msg_namelen != sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
            continue; /* not the kernel's */
        return n;
    }
    return 0;
}

/* Copies [s, s+n) into out (cap bytes with the NUL). -1 when it does not fit. */
static int field(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = 0;
    return 0;
}

static int is_hex(const char *s, size_t n)
{
    if (!n || n > 8)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

int lbw_uevent_parse(const void *msg, size_t len, struct lbw_uevent *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->pci_class = -1;
    const char *p = msg, *end = p + (len > LBW_UEVENT_MAX ? LBW_UEVENT_MAX : len);
    /* the header: ACTION@DEVPATH, up to the first NUL (or the end) */
    const char *z = memchr(p, 0, (size_t)(end - p));
    const char *hend = z ? z : end;
    const char *at = memchr(p, '@', (size_t)(hend - p));
    if (!at || at == p || at + 1 >= hend || at[1] != '/' ||
        field(ev->action, sizeof(ev->action), p, (size_t)(at - p)) < 0 ||
        field(ev->devpath, sizeof(ev->devpath), at + 1, (size_t)(hend - at - 1)) < 0)
        return -1;
    p = z ? z + 1 : end;
    while (p < end) {
        z = memchr(p, 0, (size_t)(end - p));
        const char *e = z ? z : end;
        if (e == p) { /* an empty field (a trailing NUL): skip */
            p++;
            continue;
        }
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (!eq || eq == p)
            return -1;
        size_t kn = (size_t)(eq - p), vn = (size_t)(e - eq - 1);
        const char *v = eq + 1;
        char tmp[256];
        if (kn == 6 && !memcmp(p, "ACTION", 6)) {
            if (field(tmp, sizeof(tmp), v, vn) < 0 || strcmp(tmp, ev->action))
                return -1;
        } else if (kn == 7 && !memcmp(p, "DEVPATH", 7)) {
            if (field(tmp, sizeof(tmp), v, vn) < 0 || strcmp(tmp, ev->devpath))
                return -1;
        } else if (kn == 9 && !memcmp(p, "SUBSYSTEM", 9)) {
            if (field(ev->subsystem, sizeof(ev->subsystem), v, vn) < 0)
                return -1;
        } else if (kn == 6 && !memcmp(p, "DRIVER", 6)) {
            if (field(ev->driver, sizeof(ev->driver), v, vn) < 0)
                return -1;
        } else if (kn == 9 && !memcmp(p, "PCI_CLASS", 9)) {
            if (!is_hex(v, vn))
                return -1;
            field(tmp, sizeof(tmp), v, vn);
            ev->pci_class = strtol(tmp, NULL, 16);
        }
        p = z ? z + 1 : end;
    }
    return 0;
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

int lbw_uevent_capacity(const struct lbw_uevent *ev)
{
    static const char *const hotplug[] = {"add", "remove", "online", "offline", NULL};
    static const char *const device[] = {"add", "remove", "bind", "unbind", NULL};
    static const char *const present[] = {"add", "remove", NULL};
    if (one_of(ev->subsystem, (const char *const[]){"cpu", "memory", "node", NULL}))
        return one_of(ev->action, hotplug);
    if (!strcmp(ev->subsystem, "pci"))
        return (ev->pci_class >> 16 == 0x03 || ev->pci_class >> 16 == 0x12) &&
               one_of(ev->action, device);
    if (!strcmp(ev->subsystem, "drm") || !strcmp(ev->subsystem, "accel"))
        return one_of(ev->action, present);
    return 0;
}
