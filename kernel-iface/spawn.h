/* spawn.h — starting a payload and ending its whole process tree.
 *
 * lbw_spawn: clone3(CLONE_PIDFD | CLONE_CLEAR_SIGHAND [| CLONE_INTO_CGROUP])
 * — no pid-reuse race — with CLONE_VM|CLONE_VFORK on a small stack of the
 * spawning thread, as posix_spawn does: the worker's page tables are not
 * copied, the spawning thread waits until the child's execve replaced its
 * memory (or the child exited). Then, in the child and in this order
 * (child_main in spawn.c, one step after the other): joining the given
 * cgroups (v1, where clone3 cannot place it), the payload user's
 * credentials (setgroups, setresgid, setresuid), the parent-death signal if
 * asked (set first, then checked against a parent that died before it was
 * set), new session, the given stdin/stdout/stderr and every other fd
 * closed (close_range), nice, CPU affinity, the preferred NUMA node of its
 * memory, cwd, then the signals: handled
 * ones are already back to default (the kernel, CLONE_CLEAR_SIGHAND), the
 * ones ignored when this process first spawned and SIGPIPE/SIGXFSZ are set
 * back to default, and the mask is emptied (every signal is blocked from
 * before the clone until then, so no handler of the worker runs in the
 * child). A step added to the child must be async-signal-safe, allocate
 * nothing and write nothing of the worker's memory: raw system calls
 * (syscall(SYS_setresuid, ...), not glibc's set*id, which signal every
 * thread). Failures before or in execve come back to the caller as an
 * errno and the step that failed; the caller never sees a half-started
 * child (the failed one is reaped). On architectures other than x86-64 and
 * arm64 the child is a plain copy (CLONE_VFORK only).
 *
 * lbw_tree_*: the processes of an invocation are found as the descendants
 * of the payload and, because the worker is a child subreaper
 * (lbw_become_subreaper), of the worker itself: a daemon that double-forks
 * and leaves its session is re-parented to the worker and still found. */
#ifndef LBW_SPAWN_H
#define LBW_SPAWN_H

#include <sched.h>
#include <stddef.h>
#include <sys/types.h>

struct lbw_spawn_opts {
    const char *path;          /* executable to run (resolved) */
    char *const *argv;         /* argv[0] as the payload should see it */
    char *const *envp;
    const char *cwd;           /* NULL: inherit */
    int stdin_fd;              /* -1: /dev/null */
    int stdout_fd, stderr_fd;  /* child ends; -1: /dev/null */
    int nice;                  /* added to the current niceness; 0: unchanged */
    const cpu_set_t *affinity; /* NULL: inherit */
    size_t affinity_size;
    const unsigned long *mem_nodes; /* NULL: inherit; else a NUMA node mask the child's
                                       memory prefers (set_mempolicy MPOL_PREFERRED, before
                                       execve; best effort: a kernel without NUMA runs it
                                       anyway) */
    unsigned long mem_maxnode; /* bits in mem_nodes */
    int cgroup_fd;             /* >= 0: start inside this cgroup v2 directory */
    const int *join_fds;       /* cgroup.procs fds (lbw_cg_procs_open): the child
                                  writes "0" to each before anything else; v1 */
    size_t njoin;
    int set_creds;             /* 1: become uid/gid with these supplementary groups
                                  right after joining (a root worker's payload user) */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    int pdeathsig;             /* > 0: the child gets this signal when the calling
                                  thread dies (PR_SET_PDEATHSIG; 0: none) */
};

struct lbw_child {
    pid_t pid;
    int pidfd;
};

/* Returns 0, or a negative errno with what failed in err ("execve
 * /opt/x/bin/tool: Permission denied"). -ENOENT: the executable does not
 * exist. */
int lbw_spawn(const struct lbw_spawn_opts *o, struct lbw_child *out, char *err, size_t errlen);

/* Makes this process the reaper of its orphaned descendants. */
int lbw_become_subreaper(void);

/* Fills pids with every live descendant of `root` (itself included if
 * alive; the calling process never), parents before children. The worker
 * passes its own pid to include payload processes re-parented to it.
 * Returns the count (capped at cap). */
size_t lbw_tree_list(pid_t root, pid_t *pids, size_t cap);
/* Sends sig to every process of the tree (parents first). Returns the
 * number signalled. */
size_t lbw_tree_signal(pid_t root, int sig);
/* Reaps our exited children except `keep` (whose status its pidfd's owner
 * collects): zombies of payload processes re-parented to us. Never blocks.
 * Returns how many. */
int lbw_reap_orphans(pid_t keep);

#endif
