/* proc.h — process handles without pid races: pidfd_open, waiting for a
 * pidfd's status with waitid(P_PIDFD), pidfd_send_signal, and the
 * signalfd set-up the daemon uses to take SIGTERM/SIGINT/SIGCHLD through
 * the reactor. */
#ifndef LBW_PROC_H
#define LBW_PROC_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* Returns a CLOEXEC pidfd for pid, or -errno. */
int lbw_pidfd_open(pid_t pid);
/* Sends sig through the pidfd. Returns 0 or -errno. */
int lbw_pidfd_kill(int pidfd, int sig);

/* Status of an exited child, as waitid(P_PIDFD) reports it. */
struct lbw_exit {
    int exited;   /* 1: exited normally, code holds the exit status */
    int signaled; /* 1: killed by a signal, sig holds it */
    int code;
    int sig;
    int core;
};
/* Reaps the child behind pidfd. nohang: return -EAGAIN if it is still
 * running. Returns 0 or -errno. */
int lbw_pidfd_wait(int pidfd, struct lbw_exit *out, int nohang);

/* Blocks `sigs` (count n) for the calling thread and returns a
 * CLOEXEC|NONBLOCK signalfd for them, or -errno. */
int lbw_signalfd_open(const int *sigs, int n);
/* Reads one pending signal from a signalfd. Returns the signal number,
 * 0 if none is pending, or -errno. */
int lbw_signalfd_read(int sfd, uint32_t *sender_pid);

#endif
