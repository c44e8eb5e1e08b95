/* test_cgroup.c — kernel-iface/cgroup and daemon/run/invcg.
 *
 * Fixture trees (tests/fixtures/cgroups: pure v2, hybrid, pure v1 in a
 * container): mountinfo and /proc/self/cgroup parsing, directories,
 * walk-ups, cgroup.events and recursive cgroup.procs, owner names.
 *
 * Live, on this host's real hierarchies (root and writable, else a SKIP
 * line): a child cgroup under a test-owned parent in the v2 hierarchy,
 * a forked process moved in (and one born in through CLONE_INTO_CGROUP),
 * "populated" seen through cgroup.events polled by the reactor on both
 * backends, cgroup.kill, removal; the same on the v1 memory, pids and
 * freezer hierarchies (SIGKILL loop, freeze + kill + thaw); a dead
 * worker's invocation cgroups reclaimed while a live one's stay. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "invcg.h"
#include "log.h"
#include "reactor.h"
#include "spawn.h"
#include "suites.h"

/* ---- fixtures ------------------------------------------------------------------ */

static void fx_root(const char *layout, char *out, size_t cap)
{
    const char *dir = getenv("LBW_FIXTURES");
    char rel[PATH_MAX];
    snprintf(rel, sizeof(rel), "%s/cgroups/%s", dir && *dir ? dir : "tests/fixtures", layout);
    if (!realpath(rel, out))
        snprintf(out, cap, "%s", rel);
}

static void test_fixture_v2(void)
{
    char root[PATH_MAX], dir[LBW_CG_PATH_MAX], mnt[LBW_CG_PATH_MAX], buf[256];
    fx_root("v2", root, sizeof(root));
    CU_ASSERT_STRING_EQUAL(lbw_cg_mode(root), "v2");
    struct lbw_cg_mount m;
    CU_ASSERT(lbw_cg_find_mount(root, NULL, &m) == 0);
    CU_ASSERT(m.version == 2);
    CU_ASSERT_STRING_EQUAL(m.point, "/sys/fs/cgroup");
    CU_ASSERT(lbw_cg_find_mount(root, "memory", &m) == -ENOENT);
    CU_ASSERT(lbw_cg_self_path(root, NULL, dir, sizeof(dir)) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/system.slice/render.service");
    CU_ASSERT(lbw_cg_self_dir(root, NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup/system.slice/render.service");
    CU_ASSERT_STRING_EQUAL(mnt, "/sys/fs/cgroup");
    CU_ASSERT(lbw_cg_self_dir(root, "cpu", dir, sizeof(dir), NULL, 0) == -ENOENT);
    CU_ASSERT(lbw_cg_read(root, "/sys/fs/cgroup/system.slice", "memory.max", buf,
                          sizeof(buf)) == 11);
    CU_ASSERT_STRING_EQUAL(buf, "8589934592\n");
    /* up: service -> slice -> top, then no further */
    snprintf(dir, sizeof(dir), "/sys/fs/cgroup/system.slice/render.service");
    CU_ASSERT(lbw_cg_up(dir, mnt) == 1);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup/system.slice");
    CU_ASSERT(lbw_cg_up(dir, mnt) == 1);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup");
    CU_ASSERT(lbw_cg_up(dir, mnt) == 0);
    /* events and recursive procs on a tree of plain files */
    char svc[PATH_MAX + 64], inv[PATH_MAX + 128];
    snprintf(svc, sizeof(svc), "%s/sys/fs/cgroup/system.slice/render.service", root);
    snprintf(inv, sizeof(inv), "%s/lifeblood-worker/worker-1-1/inv-7", svc);
    pid_t pids[8];
    CU_ASSERT(lbw_cg_procs(svc, 0, pids, 8) == 1 && pids[0] == 412);
    CU_ASSERT(lbw_cg_procs(svc, 1, pids, 8) == 3);
    CU_ASSERT(lbw_cg_procs(svc, 1, pids, 2) == 3); /* the count, two stored */
    CU_ASSERT(lbw_cg_procs(inv, 1, NULL, 0) == 2);
    CU_ASSERT(lbw_cg_populated(inv) == 1);
    int fd = lbw_cg_events_open(inv);
    CU_ASSERT_FATAL(fd >= 0);
    struct lbw_cg_events ev = {0, 1};
    CU_ASSERT(lbw_cg_events_read(fd, &ev) == 0 && ev.populated == 1 && ev.frozen == 0);
    close(fd);
    CU_ASSERT(lbw_cg_read_file(inv, "memory.events", buf, sizeof(buf)) > 0 &&
              strstr(buf, "oom_group_kill 1") != NULL);
    CU_ASSERT(lbw_cg_procs("/nonexistent-cgroup", 1, NULL, 0) == -ENOENT);
}

static void test_fixture_hybrid(void)
{
    char root[PATH_MAX], dir[LBW_CG_PATH_MAX], mnt[LBW_CG_PATH_MAX];
    fx_root("hybrid", root, sizeof(root));
    CU_ASSERT_STRING_EQUAL(lbw_cg_mode(root), "hybrid");
    CU_ASSERT(lbw_cg_self_dir(root, NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup/unified");
    CU_ASSERT_STRING_EQUAL(mnt, "/sys/fs/cgroup/unified");
    CU_ASSERT(lbw_cg_self_dir(root, "memory", dir, sizeof(dir), mnt, sizeof(mnt)) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup/memory/process_api/abc");
    CU_ASSERT_STRING_EQUAL(mnt, "/sys/fs/cgroup/memory");
    /* "cpu" is one of two controllers on its hierarchy; "cpuacct" finds it too */
    CU_ASSERT(lbw_cg_self_dir(root, "cpu", dir, sizeof(dir), NULL, 0) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup/cpu");
    CU_ASSERT(lbw_cg_self_dir(root, "cpuacct", dir, sizeof(dir), NULL, 0) == 0);
    CU_ASSERT(lbw_cg_self_dir(root, "name=systemd", dir, sizeof(dir), NULL, 0) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup/systemd");
    CU_ASSERT(lbw_cg_self_dir(root, "freezer", dir, sizeof(dir), NULL, 0) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/sys/fs/cgroup/freezer");
    /* no hierarchy for it: not found, never a guess */
    CU_ASSERT(lbw_cg_self_dir(root, "blkio", dir, sizeof(dir), NULL, 0) == -ENOENT);
    /* a prefix of a controller's name is not that controller */
    CU_ASSERT(lbw_cg_self_dir(root, "mem", dir, sizeof(dir), NULL, 0) == -ENOENT);
}

struct levels {
    char seen[8][LBW_CG_PATH_MAX];
    int n, stop_at;
};

static int level_fn(void *ctx, const char *level)
{
    struct levels *l = ctx;
    if (l->n < 8)
        snprintf(l->seen[l->n], sizeof(l->seen[0]), "%s", level);
    l->n++;
    return l->n == l->stop_at ? 7 : 0;
}

static void test_fixture_v1_namespace(void)
{
    char root[PATH_MAX], dir[LBW_CG_PATH_MAX], mnt[LBW_CG_PATH_MAX], buf[64];
    fx_root("v1", root, sizeof(root));
    CU_ASSERT_STRING_EQUAL(lbw_cg_mode(root), "v1");
    struct lbw_cg_mount m;
    CU_ASSERT(lbw_cg_find_mount(root, "memory", &m) == 0);
    CU_ASSERT(m.version == 1);
    CU_ASSERT_STRING_EQUAL(m.point, "/cg root/memory"); /* \040 decoded */
    CU_ASSERT_STRING_EQUAL(m.root, "/docker/c1");
    CU_ASSERT(lbw_cg_find_mount(root, NULL, &m) == -ENOENT);
    /* the path below the namespace's root, at the mount point */
    CU_ASSERT(lbw_cg_self_dir(root, "memory", dir, sizeof(dir), mnt, sizeof(mnt)) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/cg root/memory/job");
    CU_ASSERT_STRING_EQUAL(mnt, "/cg root/memory");
    CU_ASSERT(lbw_cg_read(root, dir, "memory.limit_in_bytes", buf, sizeof(buf)) > 0);
    CU_ASSERT_STRING_EQUAL(buf, "1073741824\n");
    CU_ASSERT(lbw_cg_self_dir(root, "pids", dir, sizeof(dir), NULL, 0) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/cg root/pids/job");
    CU_ASSERT(lbw_cg_self_dir(root, NULL, dir, sizeof(dir), NULL, 0) == -ENOENT);
    /* walk-up: every level nearest first, and an early stop */
    struct levels l = {.stop_at = 0};
    CU_ASSERT(lbw_cg_walk_up("/cg root/memory/job", "/cg root/memory", level_fn, &l) == 0);
    CU_ASSERT(l.n == 2);
    CU_ASSERT_STRING_EQUAL(l.seen[0], "/cg root/memory/job");
    CU_ASSERT_STRING_EQUAL(l.seen[1], "/cg root/memory");
    struct levels l2 = {.stop_at = 1};
    CU_ASSERT(lbw_cg_walk_up("/cg root/memory/job", "/cg root/memory", level_fn, &l2) == 7);
    CU_ASSERT(l2.n == 1);
}

static void test_fixture_missing(void)
{
    char dir[64];
    CU_ASSERT_STRING_EQUAL(lbw_cg_mode("/nonexistent-root"), "none");
    CU_ASSERT(lbw_cg_self_dir("/nonexistent-root", NULL, dir, sizeof(dir), NULL, 0) < 0);
    struct lbw_cg_mount m;
    CU_ASSERT(lbw_cg_find_mount("/nonexistent-root", "memory", &m) < 0);
}

static void test_owner_names(void)
{
    char name[128];
    pid_t pid = 0;
    CU_ASSERT_FATAL(lbw_cg_owner_name("worker", getpid(), name, sizeof(name)) == 0);
    CU_ASSERT(lbw_cg_owner_alive("worker", name, &pid) == 1 && pid == getpid());
    /* the same pid with another start time: a reused pid, not the owner */
    char other[160], ns[64];
    struct stat nst;
    CU_ASSERT_FATAL(stat("/proc/self/ns/pid", &nst) == 0);
    snprintf(ns, sizeof(ns), "%llu", (unsigned long long)nst.st_ino);
    CU_ASSERT(strcmp(name + strlen(name) - strlen(ns), ns) == 0);
    snprintf(other, sizeof(other), "worker-%d-1-%s", (int)getpid(), ns);
    CU_ASSERT(lbw_cg_owner_alive("worker", other, NULL) == 0);
    snprintf(other, sizeof(other), "worker-1073741822-5-%s", ns);
    CU_ASSERT(lbw_cg_owner_alive("worker", other, NULL) == 0);
    /* another pid namespace's name: never taken for dead */
    CU_ASSERT(lbw_cg_owner_alive("worker", "worker-1073741822-5-1", NULL) == 1);
    CU_ASSERT(lbw_cg_owner_alive("worker", "inv-7", NULL) == -EINVAL);
    CU_ASSERT(lbw_cg_owner_alive("worker", "worker-12-1", NULL) == -EINVAL);
    CU_ASSERT(lbw_cg_owner_alive("worker", "worker-x-1-1", NULL) == -EINVAL);
    CU_ASSERT(lbw_cg_owner_alive("worker", "worker-12-1x-1", NULL) == -EINVAL);
    CU_ASSERT(lbw_cg_owner_alive("worker", "worker-12-1-1-1", NULL) == -EINVAL);
    CU_ASSERT(lbw_cg_owner_alive("worker", "worker--12-1-1", NULL) == -EINVAL);
    CU_ASSERT(lbw_cg_owner_alive("worker", "workers-12-1-1", NULL) == -EINVAL);
    /* a zombie owner is dead */
    pid_t z = fork();
    CU_ASSERT_FATAL(z >= 0);
    if (z == 0)
        _exit(0);
    char zn[128];
    for (int i = 0; i < 200; i++) { /* until it is a zombie */
        char st[64], b[512];
        snprintf(st, sizeof(st), "/proc/%d/stat", (int)z);
        FILE *f = fopen(st, "r");
        size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
        if (f)
            fclose(f);
        b[n] = 0;
        char *rp = strrchr(b, ')');
        if (rp && rp[2] == 'Z')
            break;
        usleep(5000);
    }
    snprintf(zn, sizeof(zn), "worker-%d-0-%s", (int)z, ns);
    CU_ASSERT(lbw_cg_owner_alive("worker", zn, NULL) == 0);
    waitpid(z, NULL, 0);
}

/* ---- live ------------------------------------------------------------------------ */

static void skip(const char *what, const char *why)
{
    printf("\n    SKIP: %s: %s ", what, why);
    fflush(stdout);
}

/* A test-owned cgroup below this process's own in a live hierarchy
 * (controller NULL: v2). Returns 0, or -1 after a SKIP line. */
static int live_parent(const char *controller, const char *what, char *out, size_t cap)
{
    if (geteuid() != 0) {
        skip(what, "not root");
        return -1;
    }
    char own[LBW_CG_PATH_MAX];
    if (lbw_cg_self_dir("/", controller, own, sizeof(own), NULL, 0) < 0) {
        skip(what, "no such hierarchy in /proc/self/mountinfo");
        return -1;
    }
    snprintf(out, cap, "%s/lbw-test-%d", own, (int)getpid());
    int rc = lbw_cg_create(out);
    if (rc < 0) {
        char why[LBW_CG_PATH_MAX + 64];
        snprintf(why, sizeof(why), "%s not writable (%s)", own, strerror(-rc));
        skip(what, why);
        return -1;
    }
    return 0;
}

/* Forks a process that waits for a byte on a pipe, then starts `kids`
 * sleeping children of its own and pauses. */
static pid_t fork_family(int *go, int kids)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        char c;
        if (read(p[0], &c, 1) != 1)
            _exit(1);
        for (int i = 0; i < kids; i++)
            if (fork() == 0) {
                for (;;)
                    pause();
            }
        for (;;)
            pause();
    }
    close(p[0]);
    *go = p[1];
    return pid;
}

static int wait_count(const char *dir, ssize_t want, double seconds)
{
    for (int i = 0; i < (int)(seconds * 200); i++) {
        if (lbw_cg_procs(dir, 1, NULL, 0) == want)
            return 1;
        usleep(5000);
    }
    return 0;
}

static int wait_empty(const char *dir, double seconds)
{
    for (int i = 0; i < (int)(seconds * 200); i++) {
        if (lbw_cg_populated(dir) == 0)
            return 1;
        usleep(5000);
    }
    return 0;
}

static lbw_reactor *mk_reactor(void)
{
    struct lbw_reactor_opts o = {.backend = lbw_test_backend()};
    lbw_reactor *r = NULL;
    char err[256];
    CU_ASSERT_FATAL(lbw_reactor_new(&r, &o, err, sizeof(err)) == 0);
    return r;
}

struct watch {
    int fd;
    int fired;
    struct lbw_cg_events ev;
};

static void events_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct watch *w = op->user;
    CU_ASSERT(res > 0);
    w->fired++;
    CU_ASSERT(lbw_cg_events_read(w->fd, &w->ev) == 0);
    if (w->ev.populated && w->fired < 10)
        lbw_poll(r, op, w->fd, POLLPRI, events_cb); /* not yet: wait for the next change */
}

static void test_live_v2(void)
{
    char parent[LBW_CG_PATH_MAX + 64], child[LBW_CG_PATH_MAX + 96];
    if (live_parent(NULL, "live cgroup v2", parent, sizeof(parent)) < 0)
        return;
    snprintf(child, sizeof(child), "%s/c", parent);
    CU_ASSERT_FATAL(lbw_cg_create(child) == 0);
    CU_ASSERT(lbw_cg_create(child) == 0); /* already there: fine */
    int go;
    pid_t pid = fork_family(&go, 2);
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT(lbw_cg_join(child, pid) == 0);
    CU_ASSERT(write(go, "x", 1) == 1);
    close(go);
    CU_ASSERT(wait_count(child, 3, 5));
    pid_t pids[8];
    CU_ASSERT(lbw_cg_procs(child, 0, pids, 8) == 3);
    CU_ASSERT(lbw_cg_procs(parent, 0, NULL, 0) == 0);
    CU_ASSERT(lbw_cg_procs(parent, 1, NULL, 0) == 3);
    CU_ASSERT(lbw_cg_populated(parent) == 1);
    /* emptiness through the reactor: cgroup.events polled for POLLPRI */
    lbw_reactor *r = mk_reactor();
    struct watch w = {.fd = lbw_cg_events_open(child)};
    CU_ASSERT_FATAL(w.fd >= 0);
    CU_ASSERT(lbw_cg_events_read(w.fd, &w.ev) == 0 && w.ev.populated == 1);
    struct lbw_op op = {.user = &w};
    CU_ASSERT_FATAL(lbw_poll(r, &op, w.fd, POLLPRI, events_cb) == 0);
    CU_ASSERT(lbw_reactor_run_once(r, 50000000ull) == 0); /* nothing changed yet */
    CU_ASSERT(w.fired == 0);
    CU_ASSERT(lbw_cg_kill(child) == 3);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 100 && lbw_reactor_pending(r); i++)
        lbw_reactor_run_once(r, 50000000ull);
    CU_ASSERT(w.fired >= 1 && w.ev.populated == 0);
    if (lbw_op_pending(&op)) {
        lbw_cancel(r, &op);
        lbw_reactor_run_once(r, 0);
    }
    lbw_reactor_free(r);
    close(w.fd);
    CU_ASSERT(lbw_cg_populated(parent) == 0);
    CU_ASSERT(lbw_cg_remove(parent) == 0);
    CU_ASSERT(access(parent, F_OK) < 0 && errno == ENOENT);
    CU_ASSERT(lbw_cg_remove(parent) == 0); /* gone already: fine */
}

/* Born inside: clone3(CLONE_INTO_CGROUP) with the fd from lbw_cg_open; a
 * double-forked daemon in its own session stays in the cgroup and dies
 * with it. */
static void test_live_v2_clone_into(void)
{
    char parent[LBW_CG_PATH_MAX + 64], child[LBW_CG_PATH_MAX + 96];
    if (live_parent(NULL, "live cgroup v2 (clone into)", parent, sizeof(parent)) < 0)
        return;
    snprintf(child, sizeof(child), "%s/inv", parent);
    CU_ASSERT_FATAL(lbw_cg_create(child) == 0);
    int cgfd = lbw_cg_open(child);
    CU_ASSERT_FATAL(cgfd >= 0);
    char *argv[] = {"sh", "-c", "(setsid sleep 100 &) ; exec sleep 100", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct lbw_spawn_opts so = {.path = "/bin/sh", .argv = argv, .envp = envp,
                                .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                                .cgroup_fd = cgfd};
    struct lbw_child c;
    char err[256];
    int rc = lbw_spawn(&so, &c, err, sizeof(err));
    close(cgfd);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(wait_count(child, 2, 5));
    char p[64], buf[LBW_CG_PATH_MAX];
    snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)c.pid);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    CU_ASSERT(strstr(buf, "/lbw-test-") != NULL && strstr(buf, "/inv\n") != NULL);
    /* at least the two sleepers; on a loaded host the subshell that
     * started the daemon may not have exited yet */
    CU_ASSERT(lbw_cg_kill(child) >= 2);
    CU_ASSERT(wait_empty(child, 5));
    siginfo_t si;
    waitid(P_PID, (id_t)c.pid, &si, WEXITED);
    close(c.pidfd);
    CU_ASSERT(lbw_cg_remove(parent) == 0);
}

static void live_v1(const char *controller, const char *what)
{
    char parent[LBW_CG_PATH_MAX + 64], child[LBW_CG_PATH_MAX + 96];
    if (live_parent(controller, what, parent, sizeof(parent)) < 0)
        return;
    snprintf(child, sizeof(child), "%s/c", parent);
    CU_ASSERT_FATAL(lbw_cg_create(child) == 0);
    int go;
    pid_t pid = fork_family(&go, 3);
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT(lbw_cg_join(child, pid) == 0);
    CU_ASSERT(write(go, "x", 1) == 1);
    close(go);
    CU_ASSERT(wait_count(parent, 4, 5));
    CU_ASSERT(lbw_cg_populated(parent) == 1);
    CU_ASSERT(lbw_cg_kill(parent) == 4);
    waitpid(pid, NULL, 0);
    CU_ASSERT(wait_empty(parent, 5));
    char st[64];
    if (!strcmp(controller, "freezer") && lbw_cg_read_file(child, "freezer.state", st, sizeof(st)) > 0)
        CU_ASSERT(strncmp(st, "THAWED", 6) == 0); /* thawed after the kill */
    CU_ASSERT(lbw_cg_remove(parent) == 0);
    CU_ASSERT(access(parent, F_OK) < 0);
}

static void test_live_v1_memory(void) { live_v1("memory", "live cgroup v1 memory"); }
static void test_live_v1_pids(void) { live_v1("pids", "live cgroup v1 pids"); }
static void test_live_v1_freezer(void) { live_v1("freezer", "live cgroup v1 freezer"); }

/* v1: born inside through cgroup.procs fds that the child writes before
 * execve (clone3 cannot place a process in a v1 hierarchy). */
static void test_live_v1_join_at_spawn(void)
{
    char parent[LBW_CG_PATH_MAX + 64];
    if (live_parent("pids", "live cgroup v1 join at spawn", parent, sizeof(parent)) < 0)
        return;
    int jfd = lbw_cg_procs_open(parent);
    CU_ASSERT_FATAL(jfd >= 0);
    char *argv[] = {"sleep", "100", NULL};
    char *envp[] = {NULL};
    int joins[] = {jfd};
    struct lbw_spawn_opts so = {.path = "/bin/sleep", .argv = argv, .envp = envp,
                                .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                                .cgroup_fd = -1, .join_fds = joins, .njoin = 1};
    struct lbw_child c;
    char err[256];
    CU_ASSERT_FATAL(lbw_spawn(&so, &c, err, sizeof(err)) == 0);
    close(jfd);
    pid_t pids[4];
    CU_ASSERT(lbw_cg_procs(parent, 0, pids, 4) == 1 && pids[0] == c.pid);
    CU_ASSERT(lbw_cg_kill(parent) == 1);
    siginfo_t si;
    waitid(P_PID, (id_t)c.pid, &si, WEXITED);
    close(c.pidfd);
    CU_ASSERT(wait_empty(parent, 5));
    CU_ASSERT(lbw_cg_remove(parent) == 0);
    /* a cgroup.procs that refuses the write fails the spawn, naming the step */
    int bad = open("/dev/full", O_WRONLY | O_CLOEXEC);
    int badj[] = {bad};
    so.join_fds = badj;
    CU_ASSERT(lbw_spawn(&so, &c, err, sizeof(err)) == -ENOSPC);
    CU_ASSERT(strstr(err, "cgroup.procs") != NULL);
    close(bad);
}

/* Controller files: written and read back where the kernel has them. */
static void test_live_controller_files(void)
{
    char parent[LBW_CG_PATH_MAX + 64];
    if (live_parent("pids", "live cgroup v1 pids.max", parent, sizeof(parent)) < 0)
        return;
    char buf[64];
    CU_ASSERT(lbw_cg_write_file(parent, "pids.max", "50") == 0);
    CU_ASSERT(lbw_cg_read_file(parent, "pids.max", buf, sizeof(buf)) > 0);
    CU_ASSERT_STRING_EQUAL(buf, "50\n");
    CU_ASSERT(lbw_cg_write_file(parent, "pids.max", "not-a-number") == -EINVAL);
    CU_ASSERT(lbw_cg_write_file(parent, "no.such.file", "1") == -ENOENT);
    CU_ASSERT(lbw_cg_remove(parent) == 0);
}

/* A payload that owns its cgroup may nest cgroups deeper than listings
 * look: the kill still reaches a process at the bottom (cgroup.kill), and
 * the whole tree is removed. */
static void test_live_v2_deep(void)
{
    char parent[LBW_CG_PATH_MAX + 64], d[LBW_CG_PATH_MAX + 1024];
    if (live_parent(NULL, "live cgroup v2 deep tree", parent, sizeof(parent)) < 0)
        return;
    snprintf(d, sizeof(d), "%s", parent);
    for (int i = 0; i < 48; i++) { /* deeper than the 32 levels a listing looks */
        size_t l = strlen(d);
        snprintf(d + l, sizeof(d) - l, "/d%d", i);
        CU_ASSERT_FATAL(lbw_cg_create(d) == 0);
    }
    char side[LBW_CG_PATH_MAX + 96];
    snprintf(side, sizeof(side), "%s/d0/side", parent); /* a sibling on the way */
    CU_ASSERT_FATAL(lbw_cg_create(side) == 0);
    int go;
    pid_t pid = fork_family(&go, 0);
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT(lbw_cg_join(d, pid) == 0);
    CU_ASSERT(write(go, "x", 1) == 1);
    close(go);
    CU_ASSERT(lbw_cg_populated(parent) == 1);
    char cgkill[LBW_CG_PATH_MAX + 96];
    snprintf(cgkill, sizeof(cgkill), "%s/cgroup.kill", parent);
    if (access(cgkill, F_OK) == 0) {
        CU_ASSERT(lbw_cg_kill(parent) >= 1);
        int st = 0;
        pid_t w = -1;
        for (int i = 0; i < 1000 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
            usleep(5000);
        CU_ASSERT(w == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    } else {
        skip("cgroup.kill", "not in this kernel");
    }
    if (kill(pid, 0) == 0) { /* the test's own clean-up when the kill missed it */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    CU_ASSERT(wait_empty(parent, 5));
    CU_ASSERT(lbw_cg_remove(parent) == 0);
    CU_ASSERT(access(parent, F_OK) < 0 && errno == ENOENT);
}

/* A dead worker's invocation cgroups are ended and removed; a live one's
 * are left alone. */
static void test_live_reclaim(void)
{
    char own[LBW_CG_PATH_MAX + 64];
    if (live_parent(NULL, "live invocation cgroup reclaim", own, sizeof(own)) < 0)
        return;
    char top[LBW_CG_PATH_MAX + 96], dead[LBW_CG_PATH_MAX + 160], live[LBW_CG_PATH_MAX + 256];
    char inv[LBW_CG_PATH_MAX + 200], name[128];
    snprintf(top, sizeof(top), "%s/%s", own, LBW_INVCG_TOP);
    CU_ASSERT_FATAL(lbw_cg_create(top) == 0);
    struct stat nst;
    CU_ASSERT_FATAL(stat("/proc/self/ns/pid", &nst) == 0);
    snprintf(dead, sizeof(dead), "%s/%s-1073741822-5-%llu", top, LBW_INVCG_OWNER,
             (unsigned long long)nst.st_ino);
    /* another pid namespace's worker: left alone */
    char foreign[LBW_CG_PATH_MAX + 160];
    snprintf(foreign, sizeof(foreign), "%s/%s-1073741822-5-1", top, LBW_INVCG_OWNER);
    CU_ASSERT_FATAL(lbw_cg_create(foreign) == 0);
    CU_ASSERT_FATAL(lbw_cg_owner_name(LBW_INVCG_OWNER, getpid(), name, sizeof(name)) == 0);
    snprintf(live, sizeof(live), "%s/%s", top, name);
    snprintf(inv, sizeof(inv), "%s/inv-9", dead);
    CU_ASSERT_FATAL(lbw_cg_create(dead) == 0 && lbw_cg_create(inv) == 0 &&
                    lbw_cg_create(live) == 0);
    int go1, go2;
    pid_t a = fork_family(&go1, 1), b = fork_family(&go2, 0);
    CU_ASSERT_FATAL(a > 0 && b > 0);
    CU_ASSERT(lbw_cg_join(inv, a) == 0 && lbw_cg_join(live, b) == 0);
    CU_ASSERT(write(go1, "x", 1) == 1 && write(go2, "x", 1) == 1);
    close(go1);
    close(go2);
    CU_ASSERT(wait_count(inv, 2, 5));
    size_t owners = 0;
    CU_ASSERT(lbw_invcg_reclaim(top, &owners) == 2);
    CU_ASSERT(owners == 1);
    waitpid(a, NULL, 0);
    CU_ASSERT(access(dead, F_OK) < 0);
    CU_ASSERT(lbw_cg_procs(live, 1, NULL, 0) == 1);
    CU_ASSERT(access(foreign, F_OK) == 0);
    CU_ASSERT(lbw_cg_remove(foreign) == 0);
    /* setup: a fresh worker directory of its own, next to the live one */
    char mine[LBW_CG_PATH_MAX + 256], why[256];
    CU_ASSERT(lbw_invcg_setup(top, mine, sizeof(mine), why, sizeof(why)) == 0);
    CU_ASSERT_STRING_EQUAL(mine, live);
    lbw_invcg_teardown(mine); /* ends b, removes it */
    waitpid(b, NULL, 0);
    CU_ASSERT(access(live, F_OK) < 0);
    CU_ASSERT(lbw_cg_remove(own) == 0);
}

/* Two workers start at once and both reclaim the same dead owners'
 * directories: everything dead is ended and removed, nothing is said
 * louder than INFO, the live owner's payload is left alone. */
static void test_live_reclaim_race(void)
{
    char own[LBW_CG_PATH_MAX + 64];
    if (live_parent(NULL, "live reclaim by two workers at once", own, sizeof(own)) < 0)
        return;
    char top[LBW_CG_PATH_MAX + 96], p[LBW_CG_PATH_MAX + 256], name[128];
    snprintf(top, sizeof(top), "%s/%s", own, LBW_INVCG_TOP);
    CU_ASSERT_FATAL(lbw_cg_create(top) == 0);
    struct stat nst;
    CU_ASSERT_FATAL(stat("/proc/self/ns/pid", &nst) == 0);
    enum { DEAD = 6 };
    pid_t kids[DEAD];
    for (int i = 0; i < DEAD; i++) {
        snprintf(p, sizeof(p), "%s/%s-%d-5-%llu", top, LBW_INVCG_OWNER, 1073741800 + i,
                 (unsigned long long)nst.st_ino);
        CU_ASSERT_FATAL(lbw_cg_create(p) == 0);
        size_t l = strlen(p);
        for (int k = 0; k < 3; k++) { /* invocations, one nested deeper */
            snprintf(p + l, sizeof(p) - l, "/inv-%d", k);
            CU_ASSERT_FATAL(lbw_cg_create(p) == 0);
        }
        int go;
        kids[i] = fork_family(&go, 1);
        CU_ASSERT_FATAL(kids[i] > 0);
        CU_ASSERT(lbw_cg_join(p, kids[i]) == 0);
        CU_ASSERT(write(go, "x", 1) == 1);
        close(go);
    }
    CU_ASSERT_FATAL(lbw_cg_owner_name(LBW_INVCG_OWNER, getpid(), name, sizeof(name)) == 0);
    char live[LBW_CG_PATH_MAX + 256];
    snprintf(live, sizeof(live), "%s/%s", top, name);
    CU_ASSERT_FATAL(lbw_cg_create(live) == 0);
    int go;
    pid_t keep = fork_family(&go, 0);
    CU_ASSERT_FATAL(keep > 0);
    CU_ASSERT(lbw_cg_join(live, keep) == 0);
    CU_ASSERT(write(go, "x", 1) == 1);
    close(go);
    char logf[] = "/tmp/lbw-reclaim-race-XXXXXX";
    int lfd = mkstemp(logf);
    CU_ASSERT_FATAL(lfd >= 0);
    pid_t w[2];
    for (int i = 0; i < 2; i++) {
        w[i] = fork();
        CU_ASSERT_FATAL(w[i] >= 0);
        if (w[i] == 0) {
            lbw_log_set_fd(lfd);
            size_t owners;
            lbw_invcg_reclaim(top, &owners);
            _exit(0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int st = -1;
        CU_ASSERT(waitpid(w[i], &st, 0) == w[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int i = 0; i < DEAD; i++) {
        int st = 0;
        pid_t r = -1;
        for (int k = 0; k < 1000 && (r = waitpid(kids[i], &st, WNOHANG)) == 0; k++)
            usleep(5000);
        CU_ASSERT(r == kids[i] && WIFSIGNALED(st));
        if (r != kids[i]) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
        }
    }
    char log[8192] = "";
    ssize_t n = pread(lfd, log, sizeof(log) - 1, 0);
    log[n > 0 ? n : 0] = 0;
    close(lfd);
    unlink(logf);
    CU_ASSERT(strstr(log, "cannot remove") == NULL);
    CU_ASSERT(strstr(log, "[ERROR]") == NULL);
    if (strstr(log, "cannot remove"))
        fprintf(stderr, "\n%s\n", log);
    CU_ASSERT(kill(keep, 0) == 0); /* the live owner's */
    CU_ASSERT(lbw_cg_procs(live, 1, NULL, 0) == 1);
    size_t left = 0;
    DIR *d = opendir(top);
    struct dirent *e;
    while (d && (e = readdir(d)))
        left += e->d_type == DT_DIR && e->d_name[0] != '.';
    if (d)
        closedir(d);
    CU_ASSERT_EQUAL(left, 1); /* only the live one */
    kill(keep, SIGKILL);
    waitpid(keep, NULL, 0);
    CU_ASSERT(wait_empty(own, 5));
    CU_ASSERT(lbw_cg_remove(own) == 0);
}

static const struct lbw_test fixture_tests[] = {
    {"pure v2 (systemd service): mount, own dir, up, events, procs", test_fixture_v2},
    {"hybrid like this host: v1 controllers and unified v2", test_fixture_hybrid},
    {"pure v1 in a container: namespace roots, escaped mount point, walk-up",
     test_fixture_v1_namespace},
    {"no /proc: none, not found", test_fixture_missing},
    {"owner names: live, reused pid, zombie, malformed", test_owner_names},
    {"live v1 memory: join, recursive procs, SIGKILL loop, remove", test_live_v1_memory},
    {"live v1 pids: join, recursive procs, SIGKILL loop, remove", test_live_v1_pids},
    {"live v1 freezer: freeze, SIGKILL, thaw, remove", test_live_v1_freezer},
    {"live controller file write and read back", test_live_controller_files},
    {"live v1: joined at spawn through cgroup.procs fds", test_live_v1_join_at_spawn},
    {"live v2: clone3 into a cgroup, a setsid daemon dies with it", test_live_v2_clone_into},
    {"live reclaim of a dead worker's invocation cgroups", test_live_reclaim},
    {"live v2: a tree deeper than listings look is killed and removed", test_live_v2_deep},
    {"live reclaim by two workers at once: quiet, complete, the live one kept",
     test_live_reclaim_race},
    {NULL, NULL},
};

static const struct lbw_test backend_tests[] = {
    {"live v2: join, populated through the reactor, cgroup.kill, remove", test_live_v2},
    {NULL, NULL},
};

static int register_cgroup_suites(void)
{
    if (lbw_add_suite("cgroup", NULL, NULL, fixture_tests) < 0)
        return -1;
    return lbw_add_backend_suites("cgroup-events", backend_tests);
}

LBW_TEST_SUITES(register_cgroup_suites)
