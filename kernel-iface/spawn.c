/* spawn.c — see spawn.h. */
#include "spawn.h"

#include "buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/mempolicy.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

enum { STEP_JOIN = 1, STEP_CREDS, STEP_PDEATHSIG, STEP_SETSID, STEP_FDS, STEP_NICE, STEP_AFFINITY, STEP_CWD, STEP_EXEC };

static const char *step_name(int s)
{
    switch (s) {
    case STEP_JOIN: return "joining a cgroup (cgroup.procs)";
    case STEP_CREDS: return "becoming the payload user (setgroups/setgid/setuid)";
    case STEP_PDEATHSIG: return "prctl(PR_SET_PDEATHSIG)";
    case STEP_SETSID: return "setsid";
    case STEP_FDS: return "setting up stdin/stdout/stderr";
    case STEP_NICE: return "setpriority";
    case STEP_AFFINITY: return "sched_setaffinity";
    case STEP_CWD: return "chdir to";
    case STEP_EXEC: return "execve";
    }
    return "?";
}

/* In the child: async-signal-safe calls only. */
static void child_fail(int errfd, int step)
{
    int msg[2] = {step, errno};
    ssize_t w = write(errfd, msg, sizeof(msg));
    (void)w;
    _exit(127);
}

static void child(const struct lbw_spawn_opts *o, int errfd, int devnull, pid_t parent)
{
    for (size_t i = 0; i < o->njoin; i++)
        if (write(o->join_fds[i], "0", 1) != 1)
            child_fail(errfd, STEP_JOIN);
    /* before the parent-death signal: a change of credentials clears it */
    if (o->set_creds && (setgroups(o->ngroups, o->groups) < 0 || setgid(o->gid) < 0 ||
                         setuid(o->uid) < 0))
        child_fail(errfd, STEP_CREDS);
    if (o->pdeathsig > 0) {
        if (prctl(PR_SET_PDEATHSIG, o->pdeathsig, 0, 0, 0) < 0)
            child_fail(errfd, STEP_PDEATHSIG);
        if (getppid() != parent) /* the parent died before the line above */
            _exit(127);
    }
    if (setsid() < 0)
        child_fail(errfd, STEP_SETSID);
    int in = o->stdin_fd >= 0 ? o->stdin_fd : devnull;
    int out = o->stdout_fd >= 0 ? o->stdout_fd : devnull;
    int er = o->stderr_fd >= 0 ? o->stderr_fd : devnull;
    /* Move the error pipe out of the way of 0..2 first. */
    if (errfd <= 2) {
        int e = fcntl(errfd, F_DUPFD_CLOEXEC, 3);
        if (e < 0)
            _exit(127);
        errfd = e;
    }
    /* dup2 to 0..2 (dup3 clears CLOEXEC on the new fds) */
    int src[3] = {in, out, er};
    int tmp[3];
    for (int i = 0; i < 3; i++) { /* avoid clobbering a source that is 0..2 */
        tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
        if (tmp[i] < 0)
            child_fail(errfd, STEP_FDS);
    }
    for (int i = 0; i < 3; i++)
        if (dup2(tmp[i], i) < 0)
            child_fail(errfd, STEP_FDS);
    /* Close everything else but the error pipe (which is CLOEXEC). */
    if (syscall(SYS_close_range, 3, (unsigned)errfd - 1, 0) < 0 && errfd > 3) {
        for (int fd = 3; fd < errfd; fd++)
            close(fd);
    }
    syscall(SYS_close_range, (unsigned)errfd + 1, ~0u, 0);
    /* Signals: default dispositions, nothing blocked (the worker blocks the
     * ones it reads through signalfd). */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (o->nice) {
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, 0);
        if (errno == 0 && setpriority(PRIO_PROCESS, 0, cur + o->nice) < 0)
            child_fail(errfd, STEP_NICE);
    }
    if (o->affinity && sched_setaffinity(0, o->affinity_size, o->affinity) < 0)
        child_fail(errfd, STEP_AFFINITY);
    if (o->mem_nodes) /* a preference: where the kernel has no NUMA it changes nothing */
        syscall(SYS_set_mempolicy, MPOL_PREFERRED, o->mem_nodes, o->mem_maxnode);
    if (o->cwd && chdir(o->cwd) < 0)
        child_fail(errfd, STEP_CWD);
    execve(o->path, o->argv, o->envp);
    child_fail(errfd, STEP_EXEC);
}

int lbw_spawn(const struct lbw_spawn_opts *o, struct lbw_child *out, char *err, size_t errlen)
{
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -errno;
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        snprintf(err, errlen, "/dev/null: %s", strerror(e));
        return -e;
    }
    int pidfd = -1;
    struct clone_args ca;
    memset(&ca, 0, sizeof(ca));
    ca.flags = CLONE_PIDFD;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    if (o->cgroup_fd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t)o->cgroup_fd;
    }
    pid_t parent = getpid();
    long pid = syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid == 0) {
        close(ep[0]);
        child(o, ep[1], devnull, parent);
    }
    int e = errno;
    close(ep[1]);
    close(devnull);
    if (pid < 0) {
        close(ep[0]);
        snprintf(err, errlen, "clone3: %s", strerror(e));
        return -e;
    }
    /* The pipe closes on a successful execve; otherwise it says why. */
    int msg[2];
    ssize_t n;
    do
        n = read(ep[0], msg, sizeof(msg));
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof(msg)) {
        siginfo_t si;
        waitid(P_PID, (id_t)pid, &si, WEXITED);
        close(pidfd);
        if (msg[0] == STEP_EXEC || msg[0] == STEP_CWD)
            snprintf(err, errlen, "%s %s: %s", step_name(msg[0]),
                     msg[0] == STEP_EXEC ? o->path : o->cwd, strerror(msg[1]));
        else
            snprintf(err, errlen, "%s: %s", step_name(msg[0]), strerror(msg[1]));
        return -msg[1];
    }
    out->pid = (pid_t)pid;
    out->pidfd = pidfd;
    return 0;
}

int lbw_become_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/* Every process as (pid, ppid, zombie), read once. */
struct pinfo {
    pid_t pid, ppid;
    int zombie;
};

static size_t snapshot(struct pinfo **out)
{
    *out = NULL;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct pinfo *all = NULL;
    if (lbw_grow(&all, &cap, 1024, sizeof(*all)) < 0)
        all = NULL;
    struct dirent *e;
    while (all && (e = readdir(d))) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        if (*end || p <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", p);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0)
            continue;
        buf[r] = 0;
        char *rp = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
        char state;
        int ppid;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (lbw_grow(&all, &cap, n + 1, sizeof(*all)) < 0)
            break;
        all[n].pid = (pid_t)p;
        all[n].ppid = (pid_t)ppid;
        all[n].zombie = state == 'Z' || state == 'X';
        n++;
    }
    closedir(d);
    *out = all;
    return all ? n : 0;
}

/* 0 when this process has no child at all, live or zombie: then, as a
 * subreaper, it has no descendant either (an orphan would have been
 * re-parented to it). One waitid instead of a walk over all of /proc. */
static int have_children(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    return !(waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) < 0 &&
             errno == ECHILD);
}

size_t lbw_tree_list(pid_t root, pid_t *pids, size_t cap)
{
    if (root == getpid() && !have_children())
        return 0;
    struct pinfo *all;
    size_t n = snapshot(&all);
    pid_t self = getpid();
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].pid == root && !all[i].zombie && root != self && k < cap)
            pids[k++] = root;
    /* Breadth first from root; root's own entry is only the start. */
    pid_t *queue = malloc((cap + 1) * sizeof(*queue));
    size_t qn = 0, qi = 0;
    if (queue)
        queue[qn++] = root;
    while (queue && qi < qn) {
        pid_t cur = queue[qi++];
        for (size_t i = 0; i < n && qn <= cap; i++) {
            if (all[i].ppid != cur || all[i].pid == root)
                continue;
            queue[qn++] = all[i].pid;
            if (!all[i].zombie && all[i].pid != self && k < cap)
                pids[k++] = all[i].pid;
        }
    }
    free(queue);
    free(all);
    return k;
}

size_t lbw_tree_signal(pid_t root, int sig)
{
    pid_t pids[4096];
    size_t n = lbw_tree_list(root, pids, sizeof(pids) / sizeof(pids[0]));
    size_t sent = 0;
    for (size_t i = 0; i < n; i++)
        if (kill(pids[i], sig) == 0)
            sent++;
    return sent;
}

int lbw_reap_orphans(pid_t keep)
{
    if (!have_children())
        return 0;
    struct pinfo *all;
    size_t n = snapshot(&all);
    pid_t self = getpid();
    int reaped = 0;
    for (size_t i = 0; i < n; i++) {
        if (all[i].ppid != self || !all[i].zombie || all[i].pid == keep)
            continue;
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)all[i].pid, &si, WEXITED | WNOHANG) == 0 && si.si_pid)
            reaped++;
    }
    free(all);
    return reaped;
}
