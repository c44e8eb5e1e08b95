/* sdnotify.c — see sdnotify.h. */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATUS_MAX 1024 /* bytes of STATUS= text; longer text is cut */

int lbw_sdnotify_open_at(struct lbw_sdnotify *n, const char *socket_name, uint64_t watchdog_usec,
                         char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    n->fd = -1;
    if (err && errlen)
        err[0] = 0;
    if (!socket_name || !*socket_name)
        return 0;
    size_t len = strlen(socket_name);
    if (socket_name[0] != '/' && socket_name[0] != '@') {
        if (err && errlen)
            snprintf(err, errlen,
                     "NOTIFY_SOCKET=%.200s is neither an absolute path nor an abstract '@' "
                     "name (only AF_UNIX notification sockets are supported); the service "
                     "manager is not notified", socket_name);
        return -EAFNOSUPPORT;
    }
    if (len < 2 || len >= sizeof(n->addr.sun_path)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "NOTIFY_SOCKET=%.200s is not a usable Unix socket name (too short or "
                     "longer than %zu bytes); the service manager is not notified",
                     socket_name, sizeof(n->addr.sun_path) - 1);
        return -EINVAL;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, socket_name, len);
    if (socket_name[0] == '@')
        n->addr.sun_path[0] = 0; /* abstract: the name's length is the address length */
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "cannot create the service notification socket: %s; the "
                                  "service manager is not notified", strerror(e));
        return -e;
    }
    n->fd = fd;
    n->watchdog_usec = watchdog_usec;
    return 0;
}

/* A positive decimal integer that fits in 64 bits, nothing else. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

int lbw_sdnotify_open(struct lbw_sdnotify *n, int unset_env, char *err, size_t errlen)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    const char *usec = getenv("WATCHDOG_USEC");
    const char *wpid = getenv("WATCHDOG_PID");
    uint64_t wd = 0, pid = 0;
    int wd_bad = 0;
    if (usec) {
        if (parse_u64(usec, &wd) < 0 || wd == 0)
            wd_bad = 1, wd = 0;
        /* WATCHDOG_PID names the process the watchdog is for; another
         * process's (our parent's, say) is not ours to feed */
        if (wpid && (parse_u64(wpid, &pid) < 0 || pid != (uint64_t)getpid()))
            wd = 0;
    }
    /* copied before unsetenv frees it; a longer name is cut to one byte
     * over the limit, which lbw_sdnotify_open_at refuses */
    char sockcopy[sizeof(n->addr.sun_path) + 1], usecopy[48];
    snprintf(sockcopy, sizeof(sockcopy), "%s", sock ? sock : "");
    snprintf(usecopy, sizeof(usecopy), "%s", usec ? usec : "");
    if (unset_env) {
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
    }
    int rc = lbw_sdnotify_open_at(n, sockcopy, wd, err, errlen);
    if (rc == 0 && wd_bad && n->fd >= 0) {
        if (err && errlen)
            snprintf(err, errlen, "WATCHDOG_USEC=%.40s is not a positive number of "
                                  "microseconds; the watchdog is not fed", usecopy);
        return -EINVAL;
    }
    return rc;
}

void lbw_sdnotify_close(struct lbw_sdnotify *n)
{
    if (n && n->fd >= 0)
        close(n->fd);
    if (n)
        n->fd = -1;
}

int lbw_sdnotify_enabled(const struct lbw_sdnotify *n) { return n && n->fd >= 0; }

uint64_t lbw_sdnotify_watchdog_usec(const struct lbw_sdnotify *n)
{
    return lbw_sdnotify_enabled(n) ? n->watchdog_usec : 0;
}

int lbw_sdnotify_send(const struct lbw_sdnotify *n, const char *state)
{
    if (!lbw_sdnotify_enabled(n) || !state)
        return 0;
    ssize_t r = sendto(n->fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
                       (const struct sockaddr *)&n->addr, n->addrlen);
    return r < 0 ? -errno : 0;
}

/* Appends "KEY=text\n" to out (capacity cap, used *len), text cut at
 * STATUS_MAX bytes and newlines made spaces. */
static void append_line(char *out, size_t cap, size_t *len, const char *key, const char *text)
{
    int k = snprintf(out + *len, cap - *len, "%s=", key);
    if (k < 0 || (size_t)k >= cap - *len)
        return;
    *len += (size_t)k;
    for (size_t i = 0; text[i] && i < STATUS_MAX && *len + 2 < cap; i++)
        out[(*len)++] = text[i] == '\n' || text[i] == '\r' ? ' ' : text[i];
    out[(*len)++] = '\n';
    out[*len] = 0;
}

static int send_with_status(const struct lbw_sdnotify *n, const char *first, const char *fmt,
                            va_list ap)
{
    char text[STATUS_MAX + 1], msg[STATUS_MAX + 64];
    size_t len = 0;
    vsnprintf(text, sizeof(text), fmt, ap);
    msg[0] = 0;
    if (first)
        len = (size_t)snprintf(msg, sizeof(msg), "%s\n", first);
    if (!first || text[0])
        append_line(msg, sizeof(msg), &len, "STATUS", text);
    return lbw_sdnotify_send(n, msg);
}

#define SEND_WITH_STATUS(n, first, fmt)                                                  \
    do {                                                                                 \
        if (!lbw_sdnotify_enabled(n))                                                    \
            return 0;                                                                    \
        va_list ap;                                                                      \
        va_start(ap, fmt);                                                               \
        int rc_ = send_with_status(n, first, fmt, ap);                                   \
        va_end(ap);                                                                      \
        return rc_;                                                                      \
    } while (0)

int lbw_sdnotify_ready(const struct lbw_sdnotify *n, const char *fmt, ...)
{
    SEND_WITH_STATUS(n, "READY=1", fmt);
}

int lbw_sdnotify_stopping(const struct lbw_sdnotify *n, const char *fmt, ...)
{
    SEND_WITH_STATUS(n, "STOPPING=1", fmt);
}

int lbw_sdnotify_status(const struct lbw_sdnotify *n, const char *fmt, ...)
{
    SEND_WITH_STATUS(n, NULL, fmt);
}

int lbw_sdnotify_watchdog(const struct lbw_sdnotify *n)
{
    return lbw_sdnotify_send(n, "WATCHDOG=1");
}
