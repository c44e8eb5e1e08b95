/* test_spawn.c — clone3 spawning (fds, env, cwd, nice, signal state,
 * failures reported with the step) and killing whole process trees,
 * including a payload that ignores SIGTERM and double-forks a daemon into
 * its own session. */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "run.h"
#include "spawn.h"
#include "suites.h"

/* Runs argv with env; collects stdout and stderr; returns the exit code
 * convention (status or -signal). */
static int run(char *const *argv, char *const *envp, const char *cwd, int nice, char *out,
               size_t ocap, char *err, size_t ecap)
{
    int po[2], pe[2];
    CU_ASSERT_FATAL(pipe2(po, O_CLOEXEC) == 0 && pipe2(pe, O_CLOEXEC) == 0);
    struct lbw_spawn_opts o = {.path = argv[0], .argv = argv, .envp = envp, .cwd = cwd,
                               .stdin_fd = -1, .stdout_fd = po[1], .stderr_fd = pe[1],
                               .nice = nice, .cgroup_fd = -1};
    struct lbw_child c;
    char msg[300];
    int rc = lbw_spawn(&o, &c, msg, sizeof(msg));
    close(po[1]);
    close(pe[1]);
    if (rc < 0) {
        close(po[0]);
        close(pe[0]);
        snprintf(err, ecap, "%s", msg);
        return 1000 + rc;
    }
    size_t on = 0, en = 0;
    ssize_t r;
    while ((r = read(po[0], out + on, ocap - 1 - on)) > 0)
        on += (size_t)r;
    while ((r = read(pe[0], err + en, ecap - 1 - en)) > 0)
        en += (size_t)r;
    out[on] = err[en] = 0;
    close(po[0]);
    close(pe[0]);
    struct lbw_exit ex;
    CU_ASSERT(lbw_pidfd_wait(c.pidfd, &ex, 0) == 0);
    close(c.pidfd);
    return lbw_run_exit_code(&ex);
}

static void test_spawn_basics(void)
{
    char out[4096], err[4096];
    char *argv[] = {"/bin/sh", "-c", "echo \"$FOO\"; pwd; cat; echo oops >&2; exit 3", NULL};
    char *envp[] = {"FOO=bar baz", "PATH=/usr/bin:/bin", NULL};
    int rc = run(argv, envp, "/tmp", 0, out, sizeof(out), err, sizeof(err));
    CU_ASSERT_EQUAL(rc, 3);
    CU_ASSERT_STRING_EQUAL(out, "bar baz\n/tmp\n"); /* stdin is /dev/null: cat ends */
    CU_ASSERT_STRING_EQUAL(err, "oops\n");
    /* only 0, 1, 2 are open in the payload (plus ls's own directory fd) */
    int stray = open("/dev/null", O_RDONLY); /* not CLOEXEC */
    char *ls[] = {"/bin/ls", "/proc/self/fd", NULL};
    rc = run(ls, envp, NULL, 0, out, sizeof(out), err, sizeof(err));
    CU_ASSERT(rc == 0 && !strcmp(out, "0\n1\n2\n3\n"));
    close(stray);
    /* killed by a signal: negative code */
    char *k[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
    CU_ASSERT_EQUAL(run(k, envp, NULL, 0, out, sizeof(out), err, sizeof(err)), -9);
}

static void test_spawn_signals_and_nice(void)
{
    char out[256], err[256];
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    /* The worker blocks SIGTERM (signalfd); the payload must not inherit it. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &old);
    struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
    sigaction(SIGPIPE, &ign, &prev);
    char *t[] = {"/bin/sh", "-c", "kill -TERM $$; sleep 5", NULL};
    CU_ASSERT_EQUAL(run(t, envp, NULL, 0, out, sizeof(out), err, sizeof(err)), -SIGTERM);
    /* SIGPIPE back to default although the worker ignores it: writing to a
     * closed pipe kills the writer */
    char *q[] = {"/usr/bin/perl", "-e", "pipe(R,W); close R; print W 'x'; close W; exit 0", NULL};
    if (access(q[0], X_OK) == 0) {
        CU_ASSERT_EQUAL(run(q, envp, NULL, 0, out, sizeof(out), err, sizeof(err)), -SIGPIPE);
    } else {
        lbw_test_skip("SIGPIPE back to default in the child", "/usr/bin/perl is not installed");
    }
    sigaction(SIGPIPE, &prev, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = 0;
    int mine = getpriority(PRIO_PROCESS, 0);
    char *n[] = {"/usr/bin/nice", NULL};
    CU_ASSERT(run(n, envp, NULL, 10, out, sizeof(out), err, sizeof(err)) == 0);
    int want = mine + 10 > 19 ? 19 : mine + 10;
    CU_ASSERT_EQUAL(atoi(out), want);
}

static void test_spawn_failures(void)
{
    char out[256], err[512];
    char *envp[] = {NULL};
    char *a[] = {"/nonexistent/tool", NULL};
    CU_ASSERT_EQUAL(run(a, envp, NULL, 0, out, sizeof(out), err, sizeof(err)), 1000 - ENOENT);
    CU_ASSERT(strstr(err, "execve /nonexistent/tool") && strstr(err, "No such file"));
    char tmp[] = "/tmp/lbw-noexec-XXXXXX";
    int fd = mkstemp(tmp);
    CU_ASSERT(write(fd, "#!/bin/sh\n", 10) == 10);
    close(fd);
    chmod(tmp, 0644);
    char *b[] = {tmp, NULL};
    CU_ASSERT_EQUAL(run(b, envp, NULL, 0, out, sizeof(out), err, sizeof(err)), 1000 - EACCES);
    unlink(tmp);
    char *c[] = {"/bin/true", NULL};
    CU_ASSERT_EQUAL(run(c, envp, "/nonexistent-dir", 0, out, sizeof(out), err, sizeof(err)),
                    1000 - ENOENT);
    CU_ASSERT(strstr(err, "chdir to /nonexistent-dir") != NULL);
}

static size_t count_tree(void)
{
    pid_t pids[256];
    return lbw_tree_list(getpid(), pids, 256);
}

static void tree_kill_daemon(void)
{
    CU_ASSERT_FATAL(lbw_become_subreaper() == 0);
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    /* ignores SIGTERM; starts a daemon in its own session that ignores it too */
    char *argv[] = {"/bin/sh", "-c",
                    "trap '' TERM; (setsid sh -c \"trap '' TERM; sleep 300\" &); sleep 300 & "
                    "echo started; wait",
                    NULL};
    int po[2];
    CU_ASSERT_FATAL(pipe2(po, O_CLOEXEC) == 0);
    struct lbw_spawn_opts o = {.path = argv[0], .argv = argv, .envp = envp, .stdin_fd = -1,
                               .stdout_fd = po[1], .stderr_fd = -1, .cgroup_fd = -1};
    struct lbw_child c;
    char msg[256];
    CU_ASSERT_FATAL(lbw_spawn(&o, &c, msg, sizeof(msg)) == 0);
    close(po[1]);
    char buf[64];
    CU_ASSERT(read(po[0], buf, sizeof(buf)) > 0);
    close(po[0]);
    usleep(200000);
    pid_t pids[64];
    size_t in_payload = lbw_tree_list(c.pid, pids, 64);
    size_t all = count_tree();
    /* the daemon left the payload's tree (re-parented to us) */
    CU_ASSERT(in_payload >= 2);
    CU_ASSERT(all >= in_payload + 2);
    /* SIGTERM is ignored by all of them */
    CU_ASSERT(lbw_tree_signal(getpid(), SIGTERM) == all);
    usleep(100000);
    CU_ASSERT_EQUAL(count_tree(), all);
    /* SIGKILL ends every one, the escaped daemon included */
    lbw_tree_signal(getpid(), SIGKILL);
    struct lbw_exit ex;
    CU_ASSERT(lbw_pidfd_wait(c.pidfd, &ex, 0) == 0 && ex.signaled && ex.sig == SIGKILL);
    close(c.pidfd);
    size_t left = 1;
    for (int i = 0; i < 50 && left; i++) {
        lbw_reap_orphans(-1);
        left = count_tree();
        if (left)
            usleep(20000);
    }
    CU_ASSERT_EQUAL(left, 0);
}

static void test_tree_kill_daemon(void)
{
    tree_kill_daemon(); /* from /proc/PID/task/TID/children */
}

static void test_tree_kill_daemon_snapshot(void)
{
    setenv("LBW_PROC_CHILDREN", "0", 1); /* a kernel without the children files */
    tree_kill_daemon();
    unsetenv("LBW_PROC_CHILDREN");
}

/* A spawner that dies: with pdeathsig its child goes too; without, the
 * child lives on (re-parented), which is what the option is for. */
static pid_t spawn_from_dying_parent(int pdeathsig)
{
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    pid_t mid = fork();
    CU_ASSERT_FATAL(mid >= 0);
    if (mid == 0) {
        close(p[0]);
        char *argv[] = {"sleep", "100", NULL};
        char *envp[] = {NULL};
        struct lbw_spawn_opts o = {.path = "/bin/sleep", .argv = argv, .envp = envp,
                                   .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                                   .cgroup_fd = -1, .pdeathsig = pdeathsig};
        struct lbw_child c;
        char msg[300];
        pid_t got = lbw_spawn(&o, &c, msg, sizeof(msg)) == 0 ? c.pid : -1;
        ssize_t w = write(p[1], &got, sizeof(got));
        _exit(w == sizeof(got) ? 0 : 1);
    }
    close(p[1]);
    pid_t child = -1;
    CU_ASSERT(read(p[0], &child, sizeof(child)) == sizeof(child));
    close(p[0]);
    waitpid(mid, NULL, 0);
    return child;
}

static int gone_within(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        char st[64], b[512] = "";
        snprintf(st, sizeof(st), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(st, "r");
        if (!f)
            return 1;
        size_t n = fread(b, 1, sizeof(b) - 1, f);
        fclose(f);
        b[n] = 0;
        char *rp = strrchr(b, ')');
        if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
            return 1;
        usleep(10000);
    }
    return 0;
}

static void test_pdeathsig(void)
{
    pid_t c = spawn_from_dying_parent(SIGKILL);
    CU_ASSERT_FATAL(c > 0);
    CU_ASSERT(gone_within(c, 3000));
    pid_t d = spawn_from_dying_parent(0);
    CU_ASSERT_FATAL(d > 0);
    CU_ASSERT(!gone_within(d, 200));
    kill(d, SIGKILL);
    CU_ASSERT(gone_within(d, 3000));
    lbw_reap_orphans(-1); /* ours if this process is a subreaper */
}

/* A field ("SigBlk:", "Cpus_allowed_list:") of a payload's own
 * /proc/self/status, as cat prints it. */
static int status_field(const char *text, const char *key, char *out, size_t cap)
{
    const char *p = strstr(text, key);
    if (!p)
        return -1;
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, "\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return 0;
}

static void on_usr1(int sig) { (void)sig; }

/* The child starts with every signal at its default and none blocked,
 * whatever the spawner has (handled, ignored, blocked); the spawner's own
 * dispositions, mask and descriptors are untouched by the child that ran
 * in its memory. Affinity is applied. */
static void test_spawn_child_state(void)
{
    char out[8192], err[512], f[256];
    char *envp[] = {NULL};
    struct sigaction h = {.sa_handler = on_usr1}, ign = {.sa_handler = SIG_IGN}, p1, p2;
    sigaction(SIGUSR1, &h, &p1);
    sigaction(SIGPIPE, &ign, &p2);
    sigset_t set, old, now;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    int stray = open("/dev/null", O_RDONLY); /* not CLOEXEC */
    int high = dup2(stray, 900);
    CU_ASSERT_FATAL(high == 900);
    char *cat[] = {"/bin/cat", "/proc/self/status", NULL};
    CU_ASSERT(run(cat, envp, NULL, 0, out, sizeof(out), err, sizeof(err)) == 0);
    CU_ASSERT(status_field(out, "SigBlk:", f, sizeof(f)) == 0 && !strcmp(f, "0000000000000000"));
    CU_ASSERT(status_field(out, "SigCgt:", f, sizeof(f)) == 0 && !strcmp(f, "0000000000000000"));
    /* SIGPIPE ignored comes back (as would any signal ignored when this
     * process first spawned), as does every handled one */
    CU_ASSERT(status_field(out, "SigIgn:", f, sizeof(f)) == 0);
    unsigned long long ignmask = strtoull(f, NULL, 16);
    CU_ASSERT((ignmask & (1ull << (SIGPIPE - 1))) == 0);
    CU_ASSERT((ignmask & (1ull << (SIGUSR1 - 1))) == 0);
    /* the spawner: same mask, same handlers, descriptors open */
    sigprocmask(SIG_SETMASK, NULL, &now);
    CU_ASSERT(sigismember(&now, SIGTERM) && sigismember(&now, SIGCHLD) &&
              !sigismember(&now, SIGUSR2));
    struct sigaction cur;
    sigaction(SIGUSR1, NULL, &cur);
    CU_ASSERT(cur.sa_handler == on_usr1);
    sigaction(SIGPIPE, NULL, &cur);
    CU_ASSERT(cur.sa_handler == SIG_IGN);
    CU_ASSERT(fcntl(stray, F_GETFD) >= 0 && fcntl(high, F_GETFD) >= 0);
    /* ... and the child had neither */
    char *ls[] = {"/bin/ls", "/proc/self/fd", NULL};
    CU_ASSERT(run(ls, envp, NULL, 0, out, sizeof(out), err, sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "0\n1\n2\n3\n");
    close(high);
    close(stray);
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGUSR1, &p1, NULL);
    sigaction(SIGPIPE, &p2, NULL);

    /* affinity: the last CPU this process may use, alone */
    cpu_set_t mine;
    CU_ASSERT_FATAL(sched_getaffinity(0, sizeof(mine), &mine) == 0);
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &mine))
            last = c;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    int po[2];
    CU_ASSERT_FATAL(pipe2(po, O_CLOEXEC) == 0);
    struct lbw_spawn_opts o = {.path = cat[0], .argv = cat, .envp = envp, .stdin_fd = -1,
                               .stdout_fd = po[1], .stderr_fd = -1, .cgroup_fd = -1,
                               .affinity = &one, .affinity_size = sizeof(one)};
    struct lbw_child c;
    char msg[300];
    CU_ASSERT_FATAL(lbw_spawn(&o, &c, msg, sizeof(msg)) == 0);
    close(po[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(po[0], out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(po[0]);
    struct lbw_exit ex;
    CU_ASSERT(lbw_pidfd_wait(c.pidfd, &ex, 0) == 0);
    close(c.pidfd);
    char want[16];
    snprintf(want, sizeof(want), "%d", last);
    CU_ASSERT(status_field(out, "Cpus_allowed_list:", f, sizeof(f)) == 0 && !strcmp(f, want));
}

/* This process's children, zombies included. */
static int children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        char p[300], b[512];
        snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
        FILE *f = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? fopen(p, "r") : NULL;
        if (!f)
            continue;
        size_t k = fread(b, 1, sizeof(b) - 1, f);
        fclose(f);
        b[k] = 0;
        char *rp = strrchr(b, ')');
        int ppid = 0;
        char st;
        if (rp && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == getpid())
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* A step that fails in the child comes back with its name and errno, and
 * leaves no child behind; the spawner's state is as before. */
static void test_spawn_child_failure(void)
{
    int kids = children();
    char *argv[] = {"/bin/true", NULL};
    char *envp[] = {NULL};
    cpu_set_t none; /* an empty set: sched_setaffinity says EINVAL */
    CPU_ZERO(&none);
    int fds_before = 0, fds_after = 0;
    for (int fd = 0; fd < 1024; fd++)
        fds_before += fcntl(fd, F_GETFD) >= 0;
    struct lbw_spawn_opts o = {.path = argv[0], .argv = argv, .envp = envp, .stdin_fd = -1,
                               .stdout_fd = -1, .stderr_fd = -1, .cgroup_fd = -1,
                               .affinity = &none, .affinity_size = sizeof(none)};
    struct lbw_child c = {.pid = -1, .pidfd = -1};
    char msg[300];
    CU_ASSERT(lbw_spawn(&o, &c, msg, sizeof(msg)) == -EINVAL);
    CU_ASSERT(strstr(msg, "sched_setaffinity") && strstr(msg, "Invalid argument"));
    CU_ASSERT(c.pid == -1 && c.pidfd == -1);
    CU_ASSERT_EQUAL(children(), kids);
    /* a refused working directory, then a good spawn: nothing leaks */
    o.affinity = NULL;
    o.cwd = "/nonexistent-dir";
    CU_ASSERT(lbw_spawn(&o, &c, msg, sizeof(msg)) == -ENOENT);
    CU_ASSERT_EQUAL(children(), kids);
    o.cwd = NULL;
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_FATAL(lbw_spawn(&o, &c, msg, sizeof(msg)) == 0);
        struct lbw_exit ex;
        CU_ASSERT(lbw_pidfd_wait(c.pidfd, &ex, 0) == 0 && !ex.signaled && ex.code == 0);
        close(c.pidfd);
    }
    CU_ASSERT_EQUAL(children(), kids);
    for (int fd = 0; fd < 1024; fd++)
        fds_after += fcntl(fd, F_GETFD) >= 0;
    CU_ASSERT_EQUAL(fds_after, fds_before);
    /* a stdout that is the spawner's fd 2 and a stderr that is its fd 1:
     * each lands where it was asked, neither clobbers the other */
    int po[2], pe[2];
    CU_ASSERT_FATAL(pipe2(po, O_CLOEXEC) == 0 && pipe2(pe, O_CLOEXEC) == 0);
    int save1 = dup(1), save2 = dup(2);
    dup2(po[1], 2); /* the payload's stdout source is our fd 2 */
    dup2(pe[1], 1); /* and its stderr source our fd 1 */
    char *sh[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
    struct lbw_spawn_opts so = {.path = sh[0], .argv = sh, .envp = envp, .stdin_fd = -1,
                                .stdout_fd = 2, .stderr_fd = 1, .cgroup_fd = -1};
    int rc = lbw_spawn(&so, &c, msg, sizeof(msg));
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    close(po[1]);
    close(pe[1]);
    CU_ASSERT_FATAL(rc == 0);
    char b1[64] = "", b2[64] = "";
    CU_ASSERT(read(po[0], b1, sizeof(b1) - 1) > 0);
    CU_ASSERT(read(pe[0], b2, sizeof(b2) - 1) > 0);
    CU_ASSERT_STRING_EQUAL(b1, "out\n");
    CU_ASSERT_STRING_EQUAL(b2, "err\n");
    close(po[0]);
    close(pe[0]);
    struct lbw_exit ex;
    CU_ASSERT(lbw_pidfd_wait(c.pidfd, &ex, 0) == 0);
    close(c.pidfd);
}

static const struct lbw_test tests[] = {
    {"the child's signals, mask, descriptors and affinity; the spawner's kept",
     test_spawn_child_state},
    {"a failed step in the child: named, no child left, nothing leaked", test_spawn_child_failure},
    {"fds, env, cwd, exit codes", test_spawn_basics},
    {"signal mask and dispositions reset, nice", test_spawn_signals_and_nice},
    {"failures name the step", test_spawn_failures},
    {"tree kill reaches a double-forked daemon", test_tree_kill_daemon},
    {"the same from a /proc snapshot (no children files)", test_tree_kill_daemon_snapshot},
    {"the parent-death signal ends a child whose spawner died", test_pdeathsig},
    {NULL, NULL},
};

static int register_spawn_suites(void) { return lbw_add_suite("spawn", NULL, NULL, tests); }

LBW_TEST_SUITES(register_spawn_suites)
