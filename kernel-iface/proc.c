/* proc.c — see proc.h. */
#include "proc.h"

#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int lbw_pidfd_open(pid_t pid)
{
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -errno;
    return (int)fd;
}

int lbw_pidfd_kill(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        return -errno;
    return 0;
}

int lbw_pidfd_wait(int pidfd, struct lbw_exit *out, int nohang)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int rc;
    do
        rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | (nohang ? WNOHANG : 0));
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (si.si_pid == 0)
        return -EAGAIN;
    memset(out, 0, sizeof(*out));
    switch (si.si_code) {
    case CLD_EXITED:
        out->exited = 1;
        out->code = si.si_status;
        break;
    case CLD_DUMPED:
        out->core = 1;
        /* fall through */
    case CLD_KILLED:
        out->signaled = 1;
        out->sig = si.si_status;
        break;
    default:
        return -EINVAL;
    }
    return 0;
}

int lbw_signalfd_open(const int *sigs, int n)
{
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < n; i++)
        if (sigaddset(&set, sigs[i]) < 0)
            return -EINVAL;
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    return fd;
}

int lbw_signalfd_read(int sfd, uint32_t *sender_pid)
{
    struct signalfd_siginfo si;
    ssize_t n;
    do
        n = read(sfd, &si, sizeof(si));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? 0 : -errno;
    if (n != (ssize_t)sizeof(si))
        return -EIO;
    if (sender_pid)
        *sender_pid = si.ssi_pid;
    return (int)si.ssi_signo;
}
