/* sdnotify.h — the service manager's notification protocol (sd_notify(3)),
 * spoken directly: one datagram of newline-separated KEY=VALUE lines to the
 * AF_UNIX socket named in $NOTIFY_SOCKET — a path ("/run/systemd/notify")
 * or an abstract name ("@name"). No libsystemd.
 *
 * Owns: reading $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID once at
 * start (and removing them from the environment, so children do not
 * inherit them), the datagram socket, and the messages READY=1, STATUS=,
 * STOPPING=1 and WATCHDOG=1.
 *
 * Without $NOTIFY_SOCKET (not started by a service manager) every call is a
 * no-op that returns 0; so is every call on a NULL handle. Sends never
 * block: a datagram the manager cannot take at once is dropped (the next
 * status or watchdog message follows soon). */
#ifndef LBW_SDNOTIFY_H
#define LBW_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct lbw_sdnotify {
    int fd;                     /* -1: no service manager; every call is a no-op */
    struct sockaddr_un addr;
    socklen_t addrlen;
    uint64_t watchdog_usec;     /* 0: no watchdog for this process */
};

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and, when
 * `unset_env`, removes them from the environment. Returns 0 (n->fd >= 0
 * when a manager listens, -1 when none), or a negative errno with a
 * sentence in err when the variables are malformed or the socket cannot be
 * made; n is then still a usable handle (a no-op when the socket is not). */
int lbw_sdnotify_open(struct lbw_sdnotify *n, int unset_env, char *err, size_t errlen);
/* The same for an explicit socket name (path or '@abstract') and watchdog
 * interval (0 = none); socket NULL or "" = no manager. */
int lbw_sdnotify_open_at(struct lbw_sdnotify *n, const char *socket, uint64_t watchdog_usec,
                         char *err, size_t errlen);
void lbw_sdnotify_close(struct lbw_sdnotify *n);

/* True when a service manager listens. */
int lbw_sdnotify_enabled(const struct lbw_sdnotify *n);
/* The watchdog interval the manager expects (µs), 0 when none; feed it
 * (lbw_sdnotify_watchdog) at half this interval. */
uint64_t lbw_sdnotify_watchdog_usec(const struct lbw_sdnotify *n);

/* Sends `state` as it is (lines of KEY=VALUE). Returns 0 or -errno. */
int lbw_sdnotify_send(const struct lbw_sdnotify *n, const char *state);
/* READY=1, and STATUS=<printf> unless the text is empty. A newline in
 * status text becomes a space (it stays one line). */
int lbw_sdnotify_ready(const struct lbw_sdnotify *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* STATUS=<printf>. */
int lbw_sdnotify_status(const struct lbw_sdnotify *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* STOPPING=1, and STATUS=<printf> unless the text is empty. */
int lbw_sdnotify_stopping(const struct lbw_sdnotify *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* WATCHDOG=1. */
int lbw_sdnotify_watchdog(const struct lbw_sdnotify *n);

#endif
