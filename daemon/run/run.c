/* run.c — one invocation: set-up, spawn, output, exit, tree kill (see run.h). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "contain.h"
#include "environment.h"
#include "fs.h"
#include "invlog.h"
#include "log.h"
#include "proc.h"
#include "progress.h"
#include "spawn.h"

#define RBUF (256u * 1024u)
#define PIPE_SIZE (1024 * 1024) /* fewer wake-ups for a chatty payload */
#define MS 1000000ull
#define LINGER_NS (2000 * MS) /* output still open this long after the exit: leftovers */

struct lbw_run {
    struct lbw_run_opts o;
    struct lbw_inv *job;
    int64_t inv_id;
    struct lbw_invlog log;
    int log_open;
    struct lbw_progress_re *re[2];
    int re_lent[2];             /* re[s] belongs to o.prep's cache */
    char ef_dir[PATH_MAX];      /* extra files, or "" */
    struct lbw_cinv cg;         /* its cgroups (lbw_cinv_active), contain.h */
    int cg_events;              /* the v2 cgroup.events fd, or -1 */
    struct lbw_op gop;          /* cgroup.events watch: the tree is gone */
    struct lbw_child child;
    int rfd[2];
    uint8_t *buf[2];
    struct lbw_op rop[2], xop, kop;
    int eof[2];
    int exited;
    struct lbw_exit ex;
    uint64_t t_start;           /* CLOCK_MONOTONIC ns, just before spawn */
    double running_time;
    int killed;                 /* a kill was asked for (drop/stop) */
    int term_sent;              /* the tree got SIGTERM */
    int kill_sent;              /* ... and SIGKILL */
    uint64_t term_at;
    uint64_t poll_ns;
    int ended;
};

static void maybe_end(struct lbw_run *run);
static void tree_step(struct lbw_run *run);

/* ---- helpers ---------------------------------------------------------------- */

/* May user u (NULL: the worker) do `bit` (1 search/execute) on st, by its
 * mode bits (ACLs are not read: a file only an ACL opens is not found). */
static int user_may_x(const struct stat *st, const struct lbw_payload_user *u)
{
    if (!u || u->uid == 0)
        return S_ISDIR(st->st_mode) || (st->st_mode & 0111);
    if (st->st_uid == u->uid)
        return (st->st_mode & S_IXUSR) != 0;
    int in_group = st->st_gid == u->gid;
    for (size_t i = 0; !in_group && i < u->ngroups; i++)
        in_group = st->st_gid == u->groups[i];
    return (st->st_mode & (in_group ? S_IXGRP : S_IXOTH)) != 0;
}

/* Every directory on the way to `file` searchable by u, the file a regular
 * file u may execute; checked along the path as written and as resolved
 * (a symlink's target too). */
static int user_can_exec(const char *file, const struct lbw_payload_user *u)
{
    struct stat st;
    if (stat(file, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    if (!u)
        return access(file, X_OK) == 0;
    if (!user_may_x(&st, u))
        return 0;
    char real[PATH_MAX];
    const char *paths[2] = {file, realpath(file, real) ? real : NULL};
    for (int k = 0; k < 2 && paths[k]; k++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", paths[k]);
        for (char *sl = strrchr(dir, '/'); sl; sl = strrchr(dir, '/')) {
            sl[sl == dir] = 0; /* "/a/b" -> "/a" -> "/" */
            if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || !user_may_x(&st, u))
                return 0;
            if (sl == dir)
                break;
        }
    }
    return 1;
}

int lbw_find_executable_as(const char *name, const char *path, const struct lbw_payload_user *u,
                           char *out, size_t cap)
{
    if (!name || !*name)
        return -ENOENT;
    if (strchr(name, '/')) {
        if (name[0] == '/')
            snprintf(out, cap, "%s", name);
        else {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof(cwd)))
                return -ENOENT;
            if ((size_t)snprintf(out, cap, "%s/%s", cwd, name) >= cap)
                return -ENAMETOOLONG;
        }
        return user_can_exec(out, u) ? 0 : -ENOENT;
    }
    const char *p = path ? path : "";
    for (;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        /* an empty PATH entry means the current directory, as in execvp */
        int w = n ? snprintf(out, cap, "%.*s/%s", (int)n, p, name)
                  : snprintf(out, cap, "./%s", name);
        if (w > 0 && (size_t)w < cap && (out[0] == '/' || !u) && user_can_exec(out, u)) {
            if (out[0] != '/') {
                char rel[PATH_MAX];
                snprintf(rel, sizeof(rel), "%s", out);
                return lbw_find_executable_as(rel, NULL, u, out, cap);
            }
            return 0;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return -ENOENT;
}

int lbw_find_executable(const char *name, const char *path, char *out, size_t cap)
{
    return lbw_find_executable_as(name, path, NULL, out, cap);
}

/* A key is usable when it is relative and has no empty, "." or ".."
 * component (upstream writes "../x" outside the directory: MAY-FIX). */
static int key_is_safe(const char *k)
{
    if (!*k || k[0] == '/')
        return 0;
    for (const char *s = k;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        if (!e)
            return 1;
        s = e + 1;
    }
}

static int write_extra_files(struct lbw_run *run, struct lbw_extra_file *ef, size_t n, char *msg,
                             size_t msglen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(run->ef_dir, sizeof(run->ef_dir), "%s/lifeblood_efs_XXXXXX", tmp);
    if (!mkdtemp(run->ef_dir)) {
        snprintf(msg, msglen, "cannot create the extra files directory in %s: %s", tmp,
                 strerror(errno));
        run->ef_dir[0] = 0;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!key_is_safe(ef[i].path)) {
            snprintf(msg, msglen, "extra file name '%s' is not a relative path inside the "
                                  "extra files directory", ef[i].path);
            return -1;
        }
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof(p), "%s/%s", run->ef_dir, ef[i].path) >= sizeof(p)) {
            snprintf(msg, msglen, "extra file name '%s' is too long", ef[i].path);
            return -1;
        }
        char *slash = strrchr(p, '/');
        *slash = 0; /* the file's directory (the key has no empty parts) */
        int rc = lbw_mkdirs(p);
        *slash = '/';
        int fd = rc < 0 ? -1 : open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            snprintf(msg, msglen, "cannot create extra file %.900s: %s", p,
                     strerror(rc < 0 ? -rc : errno));
            return -1;
        }
        size_t off = 0;
        while (off < ef[i].len) {
            ssize_t w = write(fd, ef[i].data + off, ef[i].len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                snprintf(msg, msglen, "writing extra file %.900s: %s", p, strerror(errno));
                close(fd);
                return -1;
            }
            off += (size_t)w;
        }
        close(fd);
    }
    return 0;
}

/* ---- the process tree --------------------------------------------------------- */

/* Every process of this invocation: the payload's descendants and the
 * orphans re-parented to the worker (the worker runs one invocation at a
 * time, so all of its descendants are this invocation's), plus the
 * members of its cgroup. */
static int pid_cmp(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static size_t tree_pids(struct lbw_run *run, pid_t *pids, size_t cap)
{
    if (!lbw_cinv_active(&run->cg))
        return lbw_tree_list(getpid(), pids, cap);
    /* Born inside its cgroups, a payload of another user cannot leave
     * them: their listing is the whole tree, without a walk over /proc.
     * One that runs as the worker's own user owns them as the worker does
     * and could move itself into the worker's cgroup (cgroup.procs of a
     * common ancestor it may write): the worker's descendants are added
     * (it is their child subreaper, so a double-forked one is among them). */
    size_t n = lbw_cinv_procs(&run->cg, pids, cap);
    if (run->o.user && run->o.user->uid != geteuid())
        return n;
    qsort(pids, n, sizeof(*pids), pid_cmp);
    static pid_t more[4096];
    size_t m = lbw_tree_list(getpid(), more, sizeof(more) / sizeof(*more));
    size_t sorted = n;
    for (size_t i = 0; i < m && n < cap; i++)
        if (!bsearch(&more[i], pids, sorted, sizeof(*pids), pid_cmp))
            pids[n++] = more[i];
    return n;
}

static size_t tree_signal(struct lbw_run *run, int sig)
{
    if (sig == SIGKILL && lbw_cinv_active(&run->cg)) {
        ssize_t k = lbw_cinv_kill(&run->cg);
        if (k < 0)
            LBW_DEBUG("run", "killing cgroup %s: %s", lbw_cinv_dir(&run->cg), strerror((int)-k));
        else
            LBW_DEBUG("run", "invocation %lld: cgroup kill of %zd process(es) in %s",
                      (long long)run->inv_id, k, lbw_cinv_dir(&run->cg));
    }
    pid_t pids[4096];
    size_t n = tree_pids(run, pids, 4096);
    for (size_t i = 0; i < n; i++) {
        if (pids[i] == run->child.pid && run->child.pidfd >= 0 && !run->exited)
            lbw_pidfd_kill(run->child.pidfd, sig);
        else
            kill(pids[i], sig);
    }
    return n;
}

/* The payload exited and left processes behind: say how many, end them. */
static void end_leftovers(struct lbw_run *run)
{
    pid_t pids[64];
    size_t n = tree_pids(run, pids, 64);
    if (n == 0)
        return;
    LBW_WARN("run", "invocation %lld: the payload exited and left %s%zu process(es) behind "
                    "(pid %d, ...): ending them", (long long)run->inv_id, n == 64 ? "at least " : "",
             n, (int)pids[0]);
    tree_step(run);
}

static void kop_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_run *run = op->user;
    if (res < 0 || run->ended) {
        maybe_end(run);
        return;
    }
    if (run->exited && !run->term_sent) /* the output lingered after the exit */
        end_leftovers(run);
    if (!run->term_sent)
        maybe_end(run);
    else
        tree_step(run);
}

static void arm_kop(struct lbw_run *run, uint64_t ns)
{
    if (lbw_op_pending(&run->kop))
        return;
    if (lbw_timer(run->o.r, &run->kop, ns, 0, kop_cb) < 0)
        LBW_ERROR("run", "cannot start a timer");
}

/* cgroup.events changed (populated 1 -> 0: the tree is gone). */
static void gop_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_run *run = op->user;
    struct lbw_cg_events ev;
    if (run->cg_events >= 0)
        lbw_cg_events_read(run->cg_events, &ev); /* also re-arms the notification */
    if (res < 0 || run->ended || !run->term_sent) {
        maybe_end(run);
        return;
    }
    tree_step(run);
}

/* Watches the invocation's v2 cgroup.events through the reactor, so that
 * the end of the tree is seen when it happens; the timer stays as the
 * bound (and the only watch on v1). */
static void arm_gop(struct lbw_run *run)
{
    if (run->cg_events < 0 || run->ended || lbw_op_pending(&run->gop))
        return;
    if (lbw_poll(run->o.r, &run->gop, run->cg_events, POLLPRI, gop_cb) < 0)
        LBW_DEBUG("run", "cannot watch cgroup.events; the timer watches alone");
}

/* One step of ending the tree: SIGTERM everything once, then watch (fast
 * at first, then every 250 ms) until all are gone or the grace ran out,
 * then SIGKILL (and killpg of the payload's group, as upstream). */
static void tree_step(struct lbw_run *run)
{
    lbw_reap_orphans(run->exited ? 0 : run->child.pid);
    uint64_t now = lbw_now_ns();
    if (!run->term_sent) {
        run->term_sent = 1;
        run->term_at = now;
        size_t n = tree_signal(run, SIGTERM);
        LBW_DEBUG("run", "invocation %lld: SIGTERM to %zu process(es)", (long long)run->inv_id,
                  n);
        run->poll_ns = 5 * MS;
    } else if (!run->kill_sent) {
        pid_t pids[16];
        size_t left = tree_pids(run, pids, 16);
        if (left == 0) {
            run->kill_sent = 1; /* nothing left to kill */
            killpg(run->child.pid, SIGKILL);
        } else if (now - run->term_at >= run->o.kill_grace_ns) {
            size_t n = tree_signal(run, SIGKILL);
            killpg(run->child.pid, SIGKILL);
            run->kill_sent = 1;
            LBW_INFO("run", "invocation %lld: %zu process(es) ignored SIGTERM for %.1f s: "
                            "SIGKILL", (long long)run->inv_id, n,
                     (double)run->o.kill_grace_ns / 1e9);
        }
    }
    if (!run->kill_sent) {
        arm_gop(run);
        arm_kop(run, run->poll_ns);
        if (run->poll_ns < 250 * MS)
            run->poll_ns *= 2;
    } else {
        /* after SIGKILL: wait for the processes to be gone and reaped */
        pid_t pids[16];
        lbw_reap_orphans(run->exited ? 0 : run->child.pid);
        if (tree_pids(run, pids, 16) > 0 || !run->exited) {
            arm_gop(run);
            arm_kop(run, run->cg_events >= 0 ? 100 * MS : 10 * MS);
        } else {
            maybe_end(run);
        }
    }
}

static int tree_done(struct lbw_run *run)
{
    if (!run->term_sent) {
        pid_t pids[4];
        return tree_pids(run, pids, 4) == 0;
    }
    return run->kill_sent && !lbw_op_pending(&run->kop);
}

/* ---- output and exit --------------------------------------------------------- */

static void maybe_end(struct lbw_run *run)
{
    if (run->ended || !run->exited || !run->eof[0] || !run->eof[1])
        return;
    if (lbw_op_pending(&run->rop[0]) || lbw_op_pending(&run->rop[1]) ||
        lbw_op_pending(&run->xop))
        return;
    if (!tree_done(run)) {
        if (!run->term_sent)
            end_leftovers(run);
        return;
    }
    if (lbw_op_pending(&run->kop)) {
        lbw_cancel(run->o.r, &run->kop);
        return;
    }
    if (lbw_op_pending(&run->gop)) {
        lbw_cancel(run->o.r, &run->gop);
        return;
    }
    run->ended = 1;
    time_t now = time(NULL);
    if (lbw_cinv_active(&run->cg)) {
        /* what the kernel did to it: OOM inside its limit or the host's,
         * the pids limit; a drop says "killed by worker" below */
        struct lbw_cinv_verdict v;
        char why[512];
        lbw_cinv_verdict(&run->cg, &v);
        lbw_cinv_explain(&run->cg, &v, why, sizeof(why));
        if (why[0]) {
            LBW_ERROR("run", "invocation %lld: %s", (long long)run->inv_id, why);
            if (lbw_invlog_note(&run->log, why, now) < 0)
                LBW_ERROR("run", "invocation %lld: cannot write the log end",
                          (long long)run->inv_id);
        }
    }
    if (lbw_invlog_finish(&run->log, run->killed, now) < 0)
        LBW_ERROR("run", "invocation %lld: cannot write the log end", (long long)run->inv_id);
    double v;
    if (lbw_invlog_progress(&run->log, &v) && run->o.on_progress)
        run->o.on_progress(run->o.ctx, v);
    if (lbw_cinv_active(&run->cg)) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", lbw_cinv_dir(&run->cg));
        int rc = lbw_cinv_remove(&run->cg);
        LBW_DEBUG("run", "invocation %lld: removing cgroup %s: %s", (long long)run->inv_id,
                  dir, rc < 0 ? strerror(-rc) : "done");
    }
    run->o.on_end(run->o.ctx, run);
}

static void read_cb(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void arm_read(struct lbw_run *run, int s)
{
    if (lbw_read(run->o.r, &run->rop[s], run->rfd[s], run->buf[s], RBUF, -1, read_cb) < 0) {
        LBW_ERROR("run", "cannot read the payload's output");
        run->eof[s] = 1;
    }
}

static void read_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_run *run = op->user;
    int s = op == &run->rop[1];
    if (res > 0) {
        if (lbw_invlog_feed(&run->log, s, run->buf[s], (size_t)res, time(NULL)) < 0)
            LBW_ERROR("run", "invocation %lld: writing the log failed: %s",
                      (long long)run->inv_id, strerror(errno));
        double v;
        if (lbw_invlog_progress(&run->log, &v) && run->o.on_progress)
            run->o.on_progress(run->o.ctx, v);
        if (!run->ended) {
            arm_read(run, s);
            return;
        }
    }
    if (res < 0 && res != -ECANCELED && res != -EAGAIN)
        LBW_WARN("run", "reading the payload's %s: %s", s ? "stderr" : "stdout",
                 strerror((int)-res));
    if (res == -EAGAIN) {
        arm_read(run, s);
        return;
    }
    run->eof[s] = 1;
    close(run->rfd[s]);
    run->rfd[s] = -1;
    maybe_end(run);
}

static void exit_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_run *run = op->user;
    if (res < 0 && res != -ECANCELED) {
        LBW_ERROR("run", "watching the payload: %s", strerror((int)-res));
    }
    int rc = lbw_pidfd_wait(run->child.pidfd, &run->ex, 1);
    if (rc == 0 && !run->ex.exited && !run->ex.signaled) {
        /* not yet (spurious wake-up) */
        if (lbw_poll(r, &run->xop, run->child.pidfd, POLLIN, exit_cb) == 0)
            return;
    }
    run->exited = 1;
    run->running_time = (double)(lbw_now_ns() - run->t_start) / 1e9;
    close(run->child.pidfd);
    run->child.pidfd = -1;
    LBW_DEBUG("run", "invocation %lld: pid %d exited (code %d)", (long long)run->inv_id,
              (int)run->child.pid, lbw_run_exit_code(&run->ex));
    if (run->term_sent && !run->kill_sent)
        tree_step(run); /* a kill is under way: check now rather than at the next tick */
    else if (!run->eof[0] || !run->eof[1])
        arm_kop(run, LINGER_NS); /* output still open: a leftover holds it */
    maybe_end(run);
}

/* ---- start, one step at a time ---------------------------------------------- */

/* What only the start needs. Every step fills its part or fails with
 * fail()/refuse(); start_free() releases whatever was filled, on success
 * and failure alike, and run_abort() undoes what the run itself holds. */
struct start {
    const struct lbw_run_opts *o;
    const char **argv;          /* the job's, borrowed strings */
    size_t argc;
    struct lbw_extra_file *ef;
    size_t nef;
    char **sargv;               /* argv with ":/key" extra-file references resolved */
    struct lbw_env env;
    char **envp;
    char exe[PATH_MAX], cwd[PATH_MAX];
    int pipes[2][2];
    const char *err_class;      /* upstream's error_class */
    char why[1024];             /* for the log (and the scheduler unless msg is set) */
    char msg[1024];             /* what the scheduler is told, when not "error happened: why" */
};

/* A failure the scheduler sees as "error happened: WHY". */
__attribute__((format(printf, 2, 3))) static int fail(struct start *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof(st->why), fmt, ap);
    va_end(ap);
    return -1;
}

/* A failure with upstream's class and message (the details go to the log). */
static int refuse(struct start *st, const char *err_class, const char *msg)
{
    st->err_class = err_class;
    snprintf(st->msg, sizeof(st->msg), "%s", msg);
    return -1;
}

static void start_free(struct start *st)
{
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++)
            if (st->pipes[s][k] >= 0)
                close(st->pipes[s][k]);
    lbw_env_free_envp(st->envp);
    lbw_env_free(&st->env);
    if (st->sargv)
        for (size_t i = 0; i < st->argc; i++)
            free(st->sargv[i]);
    free(st->sargv);
    free(st->argv);
    free(st->ef);
}

static int step_job(struct lbw_run *run, struct start *st)
{
    if (lbw_inv_invocation_id(run->job, &run->inv_id) != 1)
        return fail(st, "the job has no invocation id");
    if (lbw_inv_args(run->job, &st->argv, &st->argc) < 0 || st->argc == 0)
        return fail(st, "the job has no command line");
    return 0;
}

/* 7.2 extra files */
static int step_extra_files(struct lbw_run *run, struct start *st)
{
    int rc = lbw_inv_extra_files(run->job, &st->ef, &st->nef);
    if (rc == -EFBIG)
        return fail(st, "the job's extra files share contents that would be written more "
                        "than %llu MiB over again; refused", LBW_INV_EF_SHARED_MAX >> 20);
    if (rc < 0)
        return fail(st, "the job's extra files are malformed");
    if (st->nef && write_extra_files(run, st->ef, st->nef, st->why, sizeof(st->why)) < 0)
        return -1;
    return 0;
}

/* argv, with ":/key" naming an extra file replaced by its path */
static int step_argv(struct lbw_run *run, struct start *st)
{
    st->sargv = calloc(st->argc + 1, sizeof(char *));
    if (!st->sargv)
        return fail(st, "out of memory");
    for (size_t i = 0; i < st->argc; i++) {
        const char *a = st->argv[i];
        for (size_t k = 0; st->nef && a[0] == ':' && a[1] == '/' && k < st->nef; k++) {
            if (!strcmp(a + 2, st->ef[k].path)) {
                if (asprintf(&st->sargv[i], "%s/%s", run->ef_dir, st->ef[k].path) < 0)
                    st->sargv[i] = NULL;
                break;
            }
        }
        if (!st->sargv[i])
            st->sargv[i] = strdup(a);
        if (!st->sargv[i])
            return fail(st, "out of memory");
    }
    return 0;
}

/* 7.3 environment */
static int step_environment(struct lbw_run *run, struct start *st)
{
    const struct lbw_run_opts *o = st->o;
    struct lbw_env_inputs in = {
        .worker_environ = o->worker_environ,
        .job = run->job,
        .runtime_dir = o->runtime_dir,
        .runtime_addr = o->runtime_addr,
        .extra_files_root = st->nef ? run->ef_dir : NULL,
        .resolver_name = o->resolver_name,
        .resolver_args_cfg = o->resolver_args_cfg,
        .stdres_cfg = o->stdres_cfg,
        .user_name = o->user ? o->user->name : NULL,
        .user_home = o->user && o->user->home[0] ? o->user->home : NULL,
    };
    int erc = lbw_env_for_job(&in, &st->env, st->why, sizeof(st->why));
    if (erc == LBW_ENV_RESOLVER)
        return refuse(st, "environment_resolver", "failed to resolve requested environment");
    if (erc == LBW_ENV_TOO_BIG) { /* execve would refuse it: a spawn failure */
        st->err_class = "spawn";
        snprintf(st->msg, sizeof(st->msg), "failed to start the process: %.900s", st->why);
        return -1;
    }
    return erc == LBW_ENV_OK ? 0 : -1;
}

/* 7.4 the executable (with the python fallback), its directory as the
 * working directory, and the final environment block */
static int step_executable(struct lbw_run *run, struct start *st)
{
    const char *path = lbw_env_get(&st->env, "PATH");
    const char *name = st->sargv[0];
    /* as the payload's user will find it: a root worker's PATH may lead
     * through directories that user cannot enter (/root/...) */
    const struct lbw_payload_user *u = st->o->user;
    int frc = lbw_find_executable_as(name, path, u, st->exe, sizeof(st->exe));
    if (frc < 0 && st->o->python_dir && !strchr(name, '/') &&
        (!strcmp(name, "python") || !strcmp(name, "python.exe"))) {
        if (lbw_env_append(&st->env, "PATH", st->o->python_dir) < 0)
            return fail(st, "out of memory");
        path = lbw_env_get(&st->env, "PATH");
        frc = lbw_find_executable_as(name, path, u, st->exe, sizeof(st->exe));
    }
    if (frc < 0) {
        snprintf(st->why, sizeof(st->why), "executable '%s' not found (PATH=%s)", name,
                 path ? path : "");
        return refuse(st, "spawn", "failed to start the process");
    }
    snprintf(st->cwd, sizeof(st->cwd), "%s", st->exe);
    char *slash = strrchr(st->cwd, '/');
    if (slash == st->cwd)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    for (int d = 0; d < 2; d++) { /* the host ledger's claim */
        const char *const *v = d ? st->o->claim_env_default : st->o->claim_env;
        for (size_t i = 0; v && v[i]; i++) {
            char nm[64];
            size_t nl = strcspn(v[i], "=");
            if (nl >= sizeof(nm) || !v[i][nl])
                continue;
            memcpy(nm, v[i], nl);
            nm[nl] = 0;
            if (d && lbw_env_get(&st->env, nm))
                continue; /* the job's own value stays */
            if (lbw_env_set_raw(&st->env, nm, v[i] + nl + 1) < 0)
                return fail(st, "out of memory");
        }
    }
    st->envp = lbw_env_envp(&st->env);
    return st->envp ? 0 : fail(st, "out of memory");
}

/* The regex the previous job of this worker compiled, when it is the same
 * pattern (jobs of one kind share theirs): kept in the prep, lent to the
 * run. */
static struct lbw_progress_re *cached_regex(struct lbw_run_prep *p, int s,
                                            const struct lbw_regex *rx)
{
    struct lbw_prep_regex *c = &p->re[s];
    if (c->re && c->len == rx->len && c->is_bytes == rx->is_bytes && c->flags == rx->flags &&
        !memcmp(c->pattern, rx->pattern, rx->len))
        return c->re;
    return NULL;
}

static void cache_regex(struct lbw_run_prep *p, int s, const struct lbw_regex *rx,
                        struct lbw_progress_re *re)
{
    struct lbw_prep_regex *c = &p->re[s];
    char *pat = malloc(rx->len + 1);
    if (!pat)
        return; /* not cached: the run keeps it */
    memcpy(pat, rx->pattern, rx->len);
    lbw_progress_free(c->re);
    free(c->pattern);
    *c = (struct lbw_prep_regex){.pattern = pat, .len = rx->len, .is_bytes = rx->is_bytes,
                                 .flags = rx->flags, .re = re};
}

/* progress regexes: a broken one disables progress for this job */
static void compile_progress(struct lbw_run *run)
{
    struct lbw_run_prep *prep = run->o.prep;
    for (int s = 0; s < 2; s++) {
        struct lbw_regex rx;
        if (lbw_inv_progress_regex(run->job, s, &rx) < 0 || !rx.present)
            continue;
        if (prep && (run->re[s] = cached_regex(prep, s, &rx))) {
            run->re_lent[s] = 1;
            continue;
        }
        char e[256];
        run->re[s] = lbw_progress_compile(rx.pattern, rx.len, rx.is_bytes, rx.flags, e,
                                          sizeof(e));
        if (run->re[s] && prep) {
            cache_regex(prep, s, &rx, run->re[s]);
            run->re_lent[s] = prep->re[s].re == run->re[s];
        }
        if (!run->re[s])
            LBW_WARN("run", "invocation %lld: %s progress regex does not compile (%s): "
                            "no progress from %s", (long long)run->inv_id,
                     s ? "stderr" : "stdout", e, s ? "stderr" : "stdout");
    }
}

/* 7.5 the log directory, with the progress parsers */
static int step_log_dir(struct lbw_run *run, struct start *st)
{
    compile_progress(run);
    struct lbw_invlog_spare *spare = st->o->prep ? &st->o->prep->log : NULL;
    if (lbw_invlog_open_spare(&run->log, spare, st->o->log_root, st->o->db_uid, run->inv_id,
                              time(NULL), st->why, sizeof(st->why)) < 0)
        return -1;
    run->log_open = 1;
    lbw_invlog_set_progress(&run->log, run->re[0], run->re[1]);
    return 0;
}

/* One output pipe: the read end non-blocking, 1 MiB where the kernel allows
 * (capped by /proc/sys/fs/pipe-max-size for non-root). 0 or -errno. */
static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    lbw_set_nonblock(p[0]);
    fcntl(p[0], F_SETPIPE_SZ, PIPE_SIZE);
    return 0;
}

/* the output pipes and read buffers: made ahead (o.prep) or now */
static int step_pipes(struct lbw_run *run, struct start *st)
{
    struct lbw_run_prep *prep = st->o->prep;
    int ready = prep && prep->have_pipes;
    for (int s = 0; s < 2; s++) {
        int rc = 0;
        if (ready) {
            st->pipes[s][0] = prep->pipes[s][0];
            st->pipes[s][1] = prep->pipes[s][1];
        } else {
            rc = make_pipe(st->pipes[s]);
        }
        if (rc < 0)
            return fail(st, "pipe: %s", strerror(-rc));
        if (prep && prep->buf[s]) {
            run->buf[s] = prep->buf[s];
            prep->buf[s] = NULL;
        } else {
            run->buf[s] = malloc(RBUF);
        }
        if (!run->buf[s])
            return fail(st, "out of memory");
    }
    if (ready)
        prep->have_pipes = 0;
    return 0;
}

/* The invocation's own cgroups with the claim's limits (contain.h), when
 * the worker has containment; when they cannot be made the run goes on
 * without (the worker's descendants are its tree then). */
static int step_cgroup(struct lbw_run *run, struct start *st)
{
    if (!st->o->contain || st->o->contain->mode == LBW_CONTAIN_OFF)
        return 0;
    char err[PATH_MAX + 128];
    if (lbw_cinv_create(st->o->contain, run->inv_id, &st->o->limits, &run->cg, err,
                        sizeof(err)) < 0) {
        LBW_WARN("run", "invocation %lld: no cgroup of its own (%s): it runs uncontained",
                 (long long)run->inv_id, err);
        return 0;
    }
    if (run->cg.v2[0]) {
        int fd = lbw_cg_events_open(run->cg.v2);
        run->cg_events = fd < 0 ? -1 : fd;
    }
    return 0;
}

/* The payload user's own: its extra files. Not its log directory: the
 * payload never writes there (the worker does, from the pipes), and an
 * owner could swap the files the worker later reads and sends (a symlink
 * to a file only root reads, a FIFO that blocks the open). */
static void give_files(struct lbw_run *run, const struct lbw_payload_user *u)
{
    int rc = run->ef_dir[0] ? lbw_chown_tree(run->ef_dir, u->uid, u->gid) : 0;
    if (rc < 0)
        LBW_WARN("run", "invocation %lld: cannot give %s to user %s: %s", (long long)run->inv_id,
                 run->ef_dir, u->name, strerror(-rc));
}

static int step_spawn(struct lbw_run *run, struct start *st)
{
    struct lbw_spawn_opts so = {
        .path = st->exe,
        .argv = st->sargv,
        .envp = st->envp,
        .cwd = st->cwd,
        .stdin_fd = -1,
        .stdout_fd = st->pipes[0][1],
        .stderr_fd = st->pipes[1][1],
        .nice = st->o->nice,
        .cgroup_fd = run->cg.cgfd,
        .join_fds = run->cg.join_fds,
        .njoin = run->cg.njoin,
        .affinity = st->o->affinity,
        .affinity_size = st->o->affinity_size,
        .mem_nodes = st->o->mem_nodes,
        .mem_maxnode = st->o->mem_maxnode,
        /* should the worker die, the payload goes with it: all that is
         * left without a cgroup to find its descendants by */
        .pdeathsig = SIGKILL,
    };
    const struct lbw_payload_user *u = st->o->user;
    if (u) {
        so.set_creds = 1;
        so.uid = u->uid;
        so.gid = u->gid;
        so.groups = u->groups;
        so.ngroups = u->ngroups;
        give_files(run, u);
    }
    run->t_start = lbw_now_ns();
    char serr[512];
    int rc = lbw_spawn(&so, &run->child, serr, sizeof(serr));
    if (rc < 0 && lbw_cinv_active(&run->cg) && rc != -ENOENT && rc != -E2BIG) {
        /* the cgroup may refuse us (controllers, permissions): once more
         * without; when that starts, the placement was what failed */
        char dir[PATH_MAX], first[512];
        snprintf(dir, sizeof(dir), "%s", lbw_cinv_dir(&run->cg));
        snprintf(first, sizeof(first), "%s", serr);
        lbw_cinv_close_fds(&run->cg);
        lbw_cinv_remove(&run->cg);
        memset(&run->cg, 0, sizeof(run->cg));
        run->cg.cgfd = -1;
        if (run->cg_events >= 0)
            close(run->cg_events);
        run->cg_events = -1;
        so.cgroup_fd = -1;
        so.njoin = 0;
        rc = lbw_spawn(&so, &run->child, serr, sizeof(serr));
        if (rc == 0)
            LBW_WARN("run", "invocation %lld: spawning into %s failed (%s); it runs uncontained",
                     (long long)run->inv_id, dir, first);
    }
    lbw_cinv_close_fds(&run->cg); /* the child has joined */
    /* the child has its ends of the pipes */
    close(st->pipes[0][1]);
    close(st->pipes[1][1]);
    st->pipes[0][1] = st->pipes[1][1] = -1;
    if (rc == -ENOENT) {
        snprintf(st->why, sizeof(st->why), "%s", serr);
        return refuse(st, "spawn", "failed to start the process");
    }
    if (rc == -E2BIG) { /* arguments and environment together too big */
        size_t env_bytes = 0, env_n = 0, arg_bytes = 0;
        for (char **p = st->envp; p && *p; p++, env_n++)
            env_bytes += strlen(*p) + 1;
        for (size_t i = 0; i < st->argc; i++)
            arg_bytes += strlen(st->sargv[i]) + 1;
        snprintf(st->why, sizeof(st->why), "%s (E2BIG): the environment is %zu bytes in %zu "
                 "variables, the arguments %zu bytes", serr, env_bytes, env_n, arg_bytes);
        st->err_class = "spawn";
        snprintf(st->msg, sizeof(st->msg), "failed to start the process: %.900s", st->why);
        return -1;
    }
    if (rc < 0)
        return fail(st, "%s", serr);
    return 0;
}

/* output reads and the exit watch on the reactor */
static int step_register(struct lbw_run *run, struct start *st)
{
    for (int s = 0; s < 2; s++) {
        run->rfd[s] = TAKE_FD(st->pipes[s][0]);
        arm_read(run, s);
    }
    if (lbw_poll(st->o->r, &run->xop, run->child.pidfd, POLLIN, exit_cb) < 0)
        LBW_ERROR("run", "cannot watch pid %d", (int)run->child.pid);
    LBW_INFO("run", "invocation %lld: started %s (pid %d)%s%s", (long long)run->inv_id, st->exe,
             (int)run->child.pid, lbw_cinv_active(&run->cg) ? " in cgroup " : "",
             lbw_cinv_active(&run->cg) ? lbw_cinv_dir(&run->cg) : "");
    return 0;
}

static void run_destroy(struct lbw_run *run)
{
    for (int s = 0; s < 2; s++) {
        if (run->rfd[s] >= 0)
            close(run->rfd[s]);
        free(run->buf[s]);
        if (!run->re_lent[s])
            lbw_progress_free(run->re[s]);
    }
    if (run->child.pidfd >= 0)
        close(run->child.pidfd);
    if (run->cg_events >= 0)
        close(run->cg_events);
    if (run->log_open)
        lbw_invlog_close(&run->log);
    free(run);
}

/* Undoes a start that failed before the payload ran. */
static void run_abort(struct lbw_run *run)
{
    lbw_cinv_close_fds(&run->cg);
    if (lbw_cinv_active(&run->cg))
        lbw_cinv_remove(&run->cg);
    if (run->log_open) {
        lbw_invlog_close(&run->log);
        lbw_invlog_remove(&run->log);
        run->log_open = 0;
    }
    if (run->ef_dir[0])
        lbw_rm_tree(run->ef_dir);
    run_destroy(run);
}

static struct lbw_run *run_new(const struct lbw_run_opts *o, struct lbw_inv *job)
{
    struct lbw_run *run = calloc(1, sizeof(*run));
    if (!run)
        return NULL;
    run->o = *o;
    if (!run->o.kill_grace_ns)
        run->o.kill_grace_ns = 10000 * MS;
    run->job = job;
    run->rfd[0] = run->rfd[1] = -1;
    run->child.pidfd = -1;
    run->cg.cgfd = -1;
    run->cg_events = -1;
    run->rop[0].user = run->rop[1].user = run->xop.user = run->kop.user = run->gop.user = run;
    return run;
}

void lbw_run_prepare(struct lbw_run_prep *p, const char *log_root, uint64_t db_uid)
{
    int rc = lbw_invlog_spare_make(&p->log, log_root, db_uid);
    if (rc < 0)
        LBW_DEBUG("run", "no log directory made ahead under %s: %s", log_root, strerror(-rc));
    if (!p->have_pipes && make_pipe(p->pipes[0]) == 0) {
        if (make_pipe(p->pipes[1]) == 0) {
            p->have_pipes = 1;
        } else {
            close(p->pipes[0][0]);
            close(p->pipes[0][1]);
        }
    }
    for (int s = 0; s < 2; s++)
        if (!p->buf[s])
            p->buf[s] = malloc(RBUF);
}

void lbw_run_prep_free(struct lbw_run_prep *p)
{
    lbw_invlog_spare_drop(&p->log);
    for (int s = 0; s < 2; s++) {
        if (p->have_pipes) {
            close(p->pipes[s][0]);
            close(p->pipes[s][1]);
        }
        free(p->buf[s]);
        p->buf[s] = NULL;
    }
    p->have_pipes = 0;
    for (int s = 0; s < 2; s++) {
        lbw_progress_free(p->re[s].re);
        free(p->re[s].pattern);
        p->re[s] = (struct lbw_prep_regex){0};
    }
}

typedef int (*start_step)(struct lbw_run *run, struct start *st);

int lbw_run_start(const struct lbw_run_opts *o, struct lbw_inv *job, struct lbw_run **out,
                  const char **err_class, char *msg, size_t msglen)
{
    static const start_step steps[] = {
        step_job,   step_extra_files, step_argv,   step_environment, step_executable,
        step_log_dir, step_pipes,     step_cgroup, step_spawn,       step_register,
    };
    *err_class = "exception";
    struct lbw_run *run = run_new(o, job);
    if (!run) {
        snprintf(msg, msglen, "error happened: out of memory");
        return -1;
    }
    struct start st = {.o = o, .pipes = {{-1, -1}, {-1, -1}},
                       .err_class = "exception"};
    lbw_env_init(&st.env);
    int rc = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && rc == 0; i++)
        rc = steps[i](run, &st);
    start_free(&st);
    if (rc == 0) {
        /* the next one's log directory, while this payload's execve goes on
         * (the worker was only suspended until the new program replaced
         * the child's memory) */
        if (o->prep)
            lbw_run_prepare(o->prep, o->log_root, o->db_uid);
        *out = run;
        return 0;
    }
    LBW_WARN("run", "invocation %lld: %s", (long long)run->inv_id, st.why);
    *err_class = st.err_class;
    if (st.msg[0])
        snprintf(msg, msglen, "%s", st.msg);
    else
        snprintf(msg, msglen, "error happened: %s", st.why);
    run_abort(run);
    return -1;
}

void lbw_run_kill(struct lbw_run *run)
{
    if (run->ended || run->killed)
        return;
    run->killed = 1;
    if (!run->exited)
        run->running_time = (double)(lbw_now_ns() - run->t_start) / 1e9;
    LBW_INFO("run", "invocation %lld: killing the process tree", (long long)run->inv_id);
    if (lbw_op_pending(&run->kop) && !run->term_sent)
        lbw_cancel(run->o.r, &run->kop); /* the linger timer; the tree step takes over */
    if (!run->term_sent)
        tree_step(run);
}

void lbw_run_result(const struct lbw_run *run, struct lbw_run_result *out)
{
    out->killed = run->killed;
    out->has_exit = !run->killed;
    out->exit_code = lbw_run_exit_code(&run->ex);
    out->running_time = run->running_time;
    out->invocation_id = run->inv_id;
}

int lbw_run_open_logs(const struct lbw_run *run, int *out_fd, int *err_fd)
{
    return lbw_invlog_open_read(run->log.dir, out_fd, err_fd);
}

pid_t lbw_run_pid(const struct lbw_run *run) { return run->child.pid; }
int64_t lbw_run_invocation_id(const struct lbw_run *run) { return run->inv_id; }

void lbw_run_free(struct lbw_run *run, int remove_files)
{
    if (!run)
        return;
    if (run->log_open) {
        lbw_invlog_close(&run->log);
        if (remove_files)
            lbw_invlog_remove(&run->log);
        run->log_open = 0;
    }
    if (remove_files && run->ef_dir[0])
        lbw_rm_tree(run->ef_dir);
    run_destroy(run);
}

int lbw_run_exit_code(const struct lbw_exit *e)
{
    return e->signaled ? -e->sig : e->code;
}
