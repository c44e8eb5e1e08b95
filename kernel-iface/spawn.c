/* spawn.c — see spawn.h. */
#include "spawn.h"

#include "buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mempolicy.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

/* ---- the child -------------------------------------------------------------------
 *
 * The child runs in the worker's memory (CLONE_VM) on its own small stack,
 * with the spawning thread suspended (CLONE_VFORK) until the execve or the
 * exit: no copy of the worker's page tables. So, in the child: system
 * calls and plain stores to the child's own stack only — no malloc, no
 * stdio, no locks, no glibc wrapper that talks to other threads (set*id,
 * setgroups: use syscall(SYS_setresuid, ...)), nothing written to the
 * worker's memory but the failure report in struct child_ctx. Every signal
 * is blocked from before the clone until just before the execve, and the
 * kernel gives the child default handlers (CLONE_CLEAR_SIGHAND), so no
 * handler of the worker ever runs in it. */

enum {
    STEP_JOIN = 1, STEP_CREDS, STEP_PDEATHSIG, STEP_SETSID, STEP_FDS, STEP_NICE, STEP_AFFINITY, STEP_CWD,
    STEP_SIGNALS, STEP_EXEC
};

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
    case STEP_SIGNALS: return "resetting signals";
    case STEP_EXEC: return "execve";
    }
    return "?";
}

struct child_ctx {
    const struct lbw_spawn_opts *o;
    pid_t parent;
    int sighand_cleared;       /* the kernel reset the handlers (CLONE_CLEAR_SIGHAND) */
    const sigset_t *ignored;   /* SIG_IGN in the worker: back to SIG_DFL */
    volatile int step, err;    /* the child's only writes to the worker's memory */
};

#define NO_ASAN __attribute__((no_sanitize_address))

/* Records the failed step for the parent and exits. */
NO_ASAN static int child_fail(struct child_ctx *c, int step)
{
    c->err = errno;
    c->step = step;
    syscall(SYS_exit_group, 127);
    return 127;
}

/* stdin/stdout/stderr onto 0..2 (/dev/null for -1), every other fd closed. */
NO_ASAN static int child_fds(const struct lbw_spawn_opts *o)
{
    int src[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
    int devnull = -1;
    for (int i = 0; i < 3; i++) {
        if (src[i] >= 0)
            continue;
        if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
            return -1;
        src[i] = devnull;
    }
    /* a source in 0..2 other than its own slot would be overwritten by the
     * dup2 to that slot: move it above 2 first */
    for (int i = 0; i < 3; i++)
        if (src[i] <= 2 && src[i] != i && (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3)) < 0)
            return -1;
    for (int i = 0; i < 3; i++) {
        if (src[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(src[i], i) < 0)
            return -1;
    }
    if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0) { /* before 5.9 */
        struct rlimit rl;
        long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (long)rl.rlim_cur
                                                                              : 65536;
        for (long fd = 3; fd < max; fd++)
            close((int)fd);
    }
    return 0;
}

/* Default dispositions and an empty mask, last before the execve. (A
 * signal sigaction refuses, such as the C library's own, is left alone.) */
NO_ASAN static int child_signals(const struct child_ctx *c)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if ((!c->sighand_cleared && s != SIGKILL && s != SIGSTOP) || sigismember(c->ignored, s))
            sigaction(s, &dfl, NULL);
    uint64_t none = 0;
    return (int)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
}

/* The payload's set-up, one step after the other, then the execve. */
NO_ASAN static int child_main(void *arg)
{
    struct child_ctx *c = arg;
    const struct lbw_spawn_opts *o = c->o;
    for (size_t i = 0; i < o->njoin; i++) /* v1 hierarchies, before anything else */
        if (write(o->join_fds[i], "0", 1) != 1)
            return child_fail(c, STEP_JOIN);
    /* before the parent-death signal: a change of credentials clears it.
     * Raw system calls: glibc's set*id would signal the worker's threads. */
    if (o->set_creds &&
        (syscall(SYS_setgroups, o->ngroups, o->groups) < 0 ||
         syscall(SYS_setresgid, o->gid, o->gid, o->gid) < 0 ||
         syscall(SYS_setresuid, o->uid, o->uid, o->uid) < 0))
        return child_fail(c, STEP_CREDS);
    if (o->pdeathsig > 0) {
        if (prctl(PR_SET_PDEATHSIG, o->pdeathsig, 0, 0, 0) < 0)
            return child_fail(c, STEP_PDEATHSIG);
        if (getppid() != c->parent) /* the parent died before the line above */
            syscall(SYS_exit_group, 127);
    }
    if (setsid() < 0)
        return child_fail(c, STEP_SETSID);
    if (child_fds(o) < 0)
        return child_fail(c, STEP_FDS);
    if (o->nice) {
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, 0);
        if (errno == 0 && setpriority(PRIO_PROCESS, 0, cur + o->nice) < 0)
            return child_fail(c, STEP_NICE);
    }
    if (o->affinity && sched_setaffinity(0, o->affinity_size, o->affinity) < 0)
        return child_fail(c, STEP_AFFINITY);
    if (o->mem_nodes) /* a preference: where the kernel has no NUMA it changes nothing */
        syscall(SYS_set_mempolicy, MPOL_PREFERRED, o->mem_nodes, o->mem_maxnode);
    if (o->cwd && chdir(o->cwd) < 0)
        return child_fail(c, STEP_CWD);
    if (child_signals(c) < 0)
        return child_fail(c, STEP_SIGNALS);
    execve(o->path, o->argv, o->envp);
    return child_fail(c, STEP_EXEC);
}

/* ---- the clone -------------------------------------------------------------------- */

#define CHILD_STACK (32 * 1024)

/* LBW_SPAWN_COPY builds the copying fallback on any architecture (tests). */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(LBW_SPAWN_COPY)
#define SHARED_VM 1
/* clone3 whose child starts fn(arg) on the stack given in args and exits
 * with its result; the parent gets the pid or -errno. (glibc has no
 * public clone3, and syscall() cannot return on a new stack.) */
long lbw_clone3_run(struct clone_args *args, size_t size, int (*fn)(void *), void *arg);
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl lbw_clone3_run\n"
        ".type lbw_clone3_run,@function\n"
        "lbw_clone3_run:\n"
        "    mov %rdx, %r8\n"        /* fn and arg survive the syscall in r8, r9 */
        "    mov %rcx, %r9\n"
        "    mov $435, %eax\n"       /* SYS_clone3 */
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    ret\n"
        "1:  xor %ebp, %ebp\n"       /* the child: outermost frame */
        "    and $-16, %rsp\n"
        "    mov %r9, %rdi\n"
        "    call *%r8\n"
        "    mov %eax, %edi\n"
        "    mov $231, %eax\n"       /* SYS_exit_group */
        "    syscall\n"
        "    hlt\n"
        ".size lbw_clone3_run, .-lbw_clone3_run\n");
#else
__asm__(".text\n"
        ".globl lbw_clone3_run\n"
        ".type lbw_clone3_run,%function\n"
        "lbw_clone3_run:\n"
        "    mov x10, x2\n"          /* fn and arg survive the syscall in x10, x11 */
        "    mov x11, x3\n"
        "    mov x8, #435\n"         /* SYS_clone3 */
        "    svc #0\n"
        "    cbz x0, 1f\n"
        "    ret\n"
        "1:  mov x29, #0\n"          /* the child: outermost frame */
        "    mov x30, #0\n"
        "    mov x0, x11\n"
        "    blr x10\n"
        "    mov x8, #94\n"          /* SYS_exit_group */
        "    svc #0\n"
        "    brk #0\n"
        ".size lbw_clone3_run, .-lbw_clone3_run\n");
#endif
#else
#define SHARED_VM 0
#endif

/* Signals ignored in this process when it first spawned, and SIGPIPE and
 * SIGXFSZ always: the child sets these back to SIG_DFL (handled ones the
 * kernel resets). One look at every disposition per process, not per
 * spawn. */
static const sigset_t *ignored_signals(void)
{
    static sigset_t set;
    static int known;
    if (!__atomic_load_n(&known, __ATOMIC_ACQUIRE)) {
        sigset_t s;
        sigemptyset(&s);
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction sa;
            if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
                sigaddset(&s, sig);
        }
        sigaddset(&s, SIGPIPE);
        sigaddset(&s, SIGXFSZ);
        set = s;
        __atomic_store_n(&known, 1, __ATOMIC_RELEASE);
    }
    return &set;
}

/* Starts the child with every signal blocked; returns its pid or -errno. */
static long start_child(struct clone_args *ca, struct child_ctx *c)
{
    uint64_t all = ~0ull, old;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(all));
    long pid;
#if SHARED_VM
    /* the spawning thread waits (CLONE_VFORK), so the stack can be its own */
    _Alignas(16) char stack[CHILD_STACK];
    ca->flags |= CLONE_VM | CLONE_VFORK;
    ca->stack = (uint64_t)(uintptr_t)stack;
    ca->stack_size = sizeof(stack);
    pid = lbw_clone3_run(ca, sizeof(*ca), child_main, c);
    if (pid == -EINVAL && (ca->flags & CLONE_CLEAR_SIGHAND)) { /* before 5.5 */
        ca->flags &= ~CLONE_CLEAR_SIGHAND;
        c->sighand_cleared = 0;
        pid = lbw_clone3_run(ca, sizeof(*ca), child_main, c);
    }
#else
    ca->flags |= CLONE_VFORK; /* c is in a shared mapping (lbw_spawn) */
    pid = syscall(SYS_clone3, ca, sizeof(*ca));
    if (pid < 0 && errno == EINVAL && (ca->flags & CLONE_CLEAR_SIGHAND)) {
        ca->flags &= ~CLONE_CLEAR_SIGHAND;
        c->sighand_cleared = 0;
        pid = syscall(SYS_clone3, ca, sizeof(*ca));
    }
    if (pid == 0)
        syscall(SYS_exit_group, child_main(c));
    pid = pid < 0 ? -errno : pid;
#endif
    int e = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(old));
    errno = e;
    return pid;
}

int lbw_spawn(const struct lbw_spawn_opts *o, struct lbw_child *out, char *err, size_t errlen)
{
    struct child_ctx local, *c = &local;
#if !SHARED_VM
    c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED) {
        int e = errno;
        snprintf(err, errlen, "mmap: %s", strerror(e));
        return -e;
    }
#endif
    *c = (struct child_ctx){.o = o, .parent = getpid(), .sighand_cleared = 1,
                            .ignored = ignored_signals()};
    int pidfd = -1;
    struct clone_args ca;
    memset(&ca, 0, sizeof(ca));
    ca.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = SIGCHLD;
    if (o->cgroup_fd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t)o->cgroup_fd;
    }
    long pid = start_child(&ca, c);
    int step = c->step, cerr = c->err;
#if !SHARED_VM
    munmap(c, sizeof(*c));
#endif
    if (pid < 0) {
        snprintf(err, errlen, "clone3: %s", strerror((int)-pid));
        return (int)pid;
    }
    /* The spawning thread went on when the child's execve replaced its
     * memory, or when it exited: then it said why. */
    if (step) {
        siginfo_t si;
        waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
        close(pidfd);
        if (step == STEP_EXEC || step == STEP_CWD)
            snprintf(err, errlen, "%s %s: %s", step_name(step),
                     step == STEP_EXEC ? o->path : o->cwd, strerror(cerr));
        else
            snprintf(err, errlen, "%s: %s", step_name(step), strerror(cerr));
        return -cerr;
    }
    out->pid = (pid_t)pid;
    out->pidfd = pidfd;
    return 0;
}

int lbw_become_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/* ---- process trees -----------------------------------------------------------------
 *
 * From each process's children (/proc/PID/task/TID/children, Linux 3.5+ with
 * CONFIG_PROC_CHILDREN), so that listing a tree reads the tree's processes
 * only, not every process of the host. Without those files: one snapshot of
 * /proc sorted by parent. Both cost at most n log n in what they read. */

/* 1 when the kernel has the children files (asked once); tests take the
 * fallback with LBW_PROC_CHILDREN=0. */
static int children_files(void)
{
    static int have = -1;
    if (have < 0) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/task/%d/children", (int)getpid());
        have = access(p, R_OK) == 0;
    }
    const char *force = getenv("LBW_PROC_CHILDREN");
    return have && !(force && !strcmp(force, "0"));
}

/* Appends the pid in num (nl digits) to *v; 0 or -ENOMEM. */
static int push_pid(char *num, size_t nl, pid_t **v, size_t *n, size_t *cap)
{
    num[nl] = 0;
    if (lbw_grow(v, cap, *n + 1, sizeof(**v)) < 0)
        return -ENOMEM;
    (*v)[(*n)++] = (pid_t)strtol(num, NULL, 10);
    return 0;
}

/* Appends the pids in one children file ("12 345 ") to *v; 0 or -ENOMEM.
 * A number may be cut between two reads: its digits are kept. */
static int read_children(const char *path, pid_t **v, size_t *n, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* the thread or the process is gone */
    char buf[4096], num[16];
    size_t nl = 0;
    int rc = 0;
    ssize_t r;
    while (rc == 0 && (r = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < r && rc == 0; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                if (nl < sizeof(num) - 1)
                    num[nl++] = buf[i];
            } else if (nl) {
                rc = push_pid(num, nl, v, n, cap);
                nl = 0;
            }
        }
    if (rc == 0 && nl)
        rc = push_pid(num, nl, v, n, cap);
    close(fd);
    return rc;
}

/* The children of every thread of pid (threads: from its stat; 0 when
 * unknown), appended to *v. 0 or -ENOMEM. */
static int children_of(pid_t pid, long threads, pid_t **v, size_t *n, size_t *cap)
{
    char path[64];
    if (threads == 1) { /* the one thread is the process: no directory to list */
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
        return read_children(path, v, n, cap);
    }
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0; /* gone */
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char cp[96];
        snprintf(cp, sizeof(cp), "/proc/%d/task/%.16s/children", (int)pid, e->d_name);
        rc = read_children(cp, v, n, cap);
    }
    closedir(d);
    return rc;
}

/* A process's state and thread count from its stat. 0, or -1 when it is
 * gone or a zombie (a zombie has no children left either). */
static int live_stat(pid_t pid, long *threads)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return -1;
    buf[r] = 0;
    char *rp = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    char state;
    /* after the comm: state ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime stime cutime cstime priority nice
     * num_threads */
    *threads = 0;
    if (!rp || sscanf(rp + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                              "%*d %*d %ld", &state, threads) != 2)
        return -1;
    return state == 'Z' || state == 'X' ? -1 : 0;
}

/* Every process as (pid, ppid, zombie), read once: the fallback. */
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
        char *rp = strrchr(buf, ')');
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

static int by_ppid(const void *a, const void *b)
{
    const struct pinfo *x = a, *y = b;
    return (x->ppid > y->ppid) - (x->ppid < y->ppid);
}

/* The first entry of the sorted snapshot with that parent, or n. */
static size_t first_child(const struct pinfo *all, size_t n, pid_t ppid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (all[mid].ppid < ppid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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

/* Breadth first from root over the children files; the queue holds at
 * most cap + 1 pids (root and what is listed), so a tree larger than cap
 * is cut, not followed. */
static size_t tree_by_children(pid_t root, pid_t self, pid_t *pids, size_t cap)
{
    size_t k = 0;
    long threads = 0;
    if (root != self && live_stat(root, &threads) == 0 && k < cap)
        pids[k++] = root;
    pid_t *queue = NULL, *kids = NULL;
    long *nthr = NULL;
    size_t qn = 0, qcap = 0, tcap = 0, kn = 0, kcap = 0;
    if (lbw_grow(&queue, &qcap, 1, sizeof(*queue)) < 0 ||
        lbw_grow(&nthr, &tcap, 1, sizeof(*nthr)) < 0)
        goto out;
    queue[qn] = root;
    nthr[qn++] = root == self ? 0 : threads;
    for (size_t qi = 0; qi < qn && k < cap; qi++) {
        kn = 0;
        if (children_of(queue[qi], nthr[qi], &kids, &kn, &kcap) < 0)
            break;
        for (size_t i = 0; i < kn && k < cap; i++) {
            if (kids[i] == self || kids[i] == root || live_stat(kids[i], &threads) < 0)
                continue; /* a zombie has no children left: not followed */
            if (lbw_grow(&queue, &qcap, qn + 1, sizeof(*queue)) < 0 ||
                lbw_grow(&nthr, &tcap, qn + 1, sizeof(*nthr)) < 0)
                goto out;
            pids[k++] = kids[i];
            queue[qn] = kids[i];
            nthr[qn++] = threads;
        }
    }
out:
    free(kids);
    free(queue);
    free(nthr);
    return k;
}

static size_t tree_by_snapshot(pid_t root, pid_t self, pid_t *pids, size_t cap)
{
    struct pinfo *all;
    size_t n = snapshot(&all);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].pid == root && !all[i].zombie && root != self && k < cap)
            pids[k++] = root;
    qsort(all, n, sizeof(*all), by_ppid);
    /* Breadth first from root; root's own entry is only the start. */
    pid_t *queue = malloc((cap + 1) * sizeof(*queue));
    size_t qn = 0, qi = 0;
    if (queue)
        queue[qn++] = root;
    while (queue && qi < qn) {
        pid_t cur = queue[qi++];
        for (size_t i = first_child(all, n, cur); i < n && all[i].ppid == cur && qn <= cap;
             i++) {
            if (all[i].pid == root)
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

size_t lbw_tree_list(pid_t root, pid_t *pids, size_t cap)
{
    pid_t self = getpid();
    if (root == self && !have_children())
        return 0;
    return children_files() ? tree_by_children(root, self, pids, cap)
                            : tree_by_snapshot(root, self, pids, cap);
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
    pid_t self = getpid();
    int reaped = 0;
    if (children_files()) {
        /* our children only: a waitid that finds one still running
         * takes nothing */
        pid_t *kids = NULL;
        size_t kn = 0, kcap = 0;
        children_of(self, 0, &kids, &kn, &kcap);
        for (size_t i = 0; i < kn; i++) {
            if (kids[i] == keep)
                continue;
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOHANG) == 0 && si.si_pid)
                reaped++;
        }
        free(kids);
        return reaped;
    }
    struct pinfo *all;
    size_t n = snapshot(&all);
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
