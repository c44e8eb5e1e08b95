/* run.c — one invocation: set-up, spawn, output, exit, tree kill (see run.h). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    char ef_dir[PATH_MAX];      /* extra files, or "" */
    char cg_dir[PATH_MAX];      /* per-invocation cgroup, or "" */
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

int lbw_find_executable(const char *name, const char *path, char *out, size_t cap)
{
    struct stat st;
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
        return stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0 ? 0
                                                                                    : -ENOENT;
    }
    const char *p = path ? path : "";
    for (;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        /* an empty PATH entry means the current directory, as in execvp */
        int w = n ? snprintf(out, cap, "%.*s/%s", (int)n, p, name)
                  : snprintf(out, cap, "./%s", name);
        if (w > 0 && (size_t)w < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0) {
            if (out[0] != '/') {
                char rel[PATH_MAX];
                snprintf(rel, sizeof(rel), "%s", out);
                return lbw_find_executable(rel, NULL, out, cap);
            }
            return 0;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return -ENOENT;
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
    snprintf(run->ef_dir, sizeof(run->ef_dir), "%s/lifeblood_efs_XXXXXXXX", tmp);
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
static size_t tree_pids(struct lbw_run *run, pid_t *pids, size_t cap)
{
    size_t n = lbw_tree_list(getpid(), pids, cap);
    if (run->cg_dir[0]) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/cgroup.procs", run->cg_dir);
        FILE *f = fopen(p, "re");
        if (f) {
            long v;
            while (n < cap && fscanf(f, "%ld", &v) == 1) {
                int dup = 0;
                for (size_t i = 0; i < n && !dup; i++)
                    dup = pids[i] == (pid_t)v;
                if (!dup && (pid_t)v != getpid())
                    pids[n++] = (pid_t)v;
            }
            fclose(f);
        }
    }
    return n;
}

static size_t tree_signal(struct lbw_run *run, int sig)
{
    if (sig == SIGKILL && run->cg_dir[0]) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/cgroup.kill", run->cg_dir);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (write(fd, "1", 1) < 0)
                LBW_DEBUG("run", "cgroup.kill: %s", strerror(errno));
            close(fd);
        }
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

static void kop_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_run *run = op->user;
    if (res < 0 || run->ended) {
        maybe_end(run);
        return;
    }
    tree_step(run);
}

static void arm_kop(struct lbw_run *run, uint64_t ns)
{
    if (lbw_op_pending(&run->kop))
        return;
    if (lbw_timer(run->o.r, &run->kop, ns, 0, kop_cb) < 0)
        LBW_ERROR("run", "cannot start a timer");
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
        arm_kop(run, run->poll_ns);
        if (run->poll_ns < 250 * MS)
            run->poll_ns *= 2;
    } else {
        /* after SIGKILL: wait for the processes to be gone and reaped */
        pid_t pids[16];
        lbw_reap_orphans(run->exited ? 0 : run->child.pid);
        if (tree_pids(run, pids, 16) > 0 || !run->exited)
            arm_kop(run, 10 * MS);
        else
            maybe_end(run);
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
        if (!run->term_sent) {
            pid_t pids[64];
            size_t n = tree_pids(run, pids, 64);
            LBW_WARN("run", "invocation %lld: the payload exited and left %zu process(es) "
                            "behind (pid %d, ...): ending them", (long long)run->inv_id, n,
                     (int)pids[0]);
            tree_step(run);
        }
        return;
    }
    if (lbw_op_pending(&run->kop)) {
        lbw_cancel(run->o.r, &run->kop);
        return;
    }
    run->ended = 1;
    time_t now = time(NULL);
    if (lbw_invlog_finish(&run->log, run->killed, now) < 0)
        LBW_ERROR("run", "invocation %lld: cannot write the log end", (long long)run->inv_id);
    double v;
    if (lbw_invlog_progress(&run->log, &v) && run->o.on_progress)
        run->o.on_progress(run->o.ctx, v);
    if (run->cg_dir[0] && rmdir(run->cg_dir) < 0)
        LBW_DEBUG("run", "rmdir %s: %s", run->cg_dir, strerror(errno));
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

/* ---- start ------------------------------------------------------------------- */

static int make_cgroup(struct lbw_run *run)
{
    if (!run->o.cgroup_parent)
        return -1;
    snprintf(run->cg_dir, sizeof(run->cg_dir), "%s/lbw-inv-%d-%lld", run->o.cgroup_parent,
             (int)getpid(), (long long)run->inv_id);
    if (mkdir(run->cg_dir, 0755) < 0 && errno != EEXIST) {
        LBW_DEBUG("run", "no per-invocation cgroup (%s: %s)", run->cg_dir, strerror(errno));
        run->cg_dir[0] = 0;
        return -1;
    }
    int fd = open(run->cg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rmdir(run->cg_dir);
        run->cg_dir[0] = 0;
    }
    return fd;
}

static void run_destroy(struct lbw_run *run)
{
    for (int s = 0; s < 2; s++) {
        if (run->rfd[s] >= 0)
            close(run->rfd[s]);
        free(run->buf[s]);
        lbw_progress_free(run->re[s]);
    }
    if (run->child.pidfd >= 0)
        close(run->child.pidfd);
    if (run->log_open)
        lbw_invlog_close(&run->log);
    free(run);
}

int lbw_run_start(const struct lbw_run_opts *o, struct lbw_inv *job, struct lbw_run **out,
                  const char **err_class, char *msg, size_t msglen)
{
    *err_class = "exception";
    struct lbw_run *run = calloc(1, sizeof(*run));
    if (!run) {
        snprintf(msg, msglen, "error happened: out of memory");
        return -1;
    }
    run->o = *o;
    if (!run->o.kill_grace_ns)
        run->o.kill_grace_ns = 10000 * MS;
    run->job = job;
    run->rfd[0] = run->rfd[1] = -1;
    run->child.pidfd = -1;
    run->rop[0].user = run->rop[1].user = run->xop.user = run->kop.user = run;
    char why[1024] = "";
    const char **argv = NULL;
    size_t argc = 0;
    char **sargv = NULL;
    struct lbw_env env;
    lbw_env_init(&env);
    char **envp = NULL;
    int pipes[2][2] = {{-1, -1}, {-1, -1}};
    int cgfd = -1;
    struct lbw_extra_file *ef = NULL;
    size_t nef = 0;

    if (lbw_inv_invocation_id(job, &run->inv_id) != 1) {
        snprintf(why, sizeof(why), "the job has no invocation id");
        goto fail;
    }
    if (lbw_inv_args(job, &argv, &argc) < 0 || argc == 0) {
        snprintf(why, sizeof(why), "the job has no command line");
        goto fail;
    }
    /* 7.2 extra files */
    if (lbw_inv_extra_files(job, &ef, &nef) < 0) {
        snprintf(why, sizeof(why), "the job's extra files are malformed");
        goto fail;
    }
    if (nef && write_extra_files(run, ef, nef, why, sizeof(why)) < 0)
        goto fail;
    sargv = calloc(argc + 1, sizeof(char *));
    if (!sargv)
        goto oom;
    for (size_t i = 0; i < argc; i++) {
        const char *a = argv[i];
        sargv[i] = NULL;
        if (nef && a[0] == ':' && a[1] == '/') {
            for (size_t k = 0; k < nef; k++) {
                if (!strcmp(a + 2, ef[k].path)) {
                    if (asprintf(&sargv[i], "%s/%s", run->ef_dir, ef[k].path) < 0)
                        sargv[i] = NULL;
                    break;
                }
            }
        }
        if (!sargv[i])
            sargv[i] = strdup(a);
        if (!sargv[i])
            goto oom;
    }
    /* 7.3 environment */
    struct lbw_env_inputs in = {
        .worker_environ = o->worker_environ,
        .job = job,
        .runtime_dir = o->runtime_dir,
        .runtime_addr = o->runtime_addr,
        .extra_files_root = nef ? run->ef_dir : NULL,
        .resolver_name = o->resolver_name,
        .resolver_args_cfg = o->resolver_args_cfg,
        .stdres_cfg = o->stdres_cfg,
    };
    int erc = lbw_env_for_job(&in, &env, why, sizeof(why));
    if (erc == LBW_ENV_RESOLVER) {
        *err_class = "environment_resolver";
        LBW_WARN("run", "invocation %lld: %s", (long long)run->inv_id, why);
        snprintf(msg, msglen, "failed to resolve requested environment");
        goto fail_msg;
    }
    if (erc != LBW_ENV_OK)
        goto fail;
    /* 7.4 the executable */
    char exe[PATH_MAX];
    const char *path = lbw_env_get(&env, "PATH");
    int frc = lbw_find_executable(sargv[0], path, exe, sizeof(exe));
    if (frc < 0 && o->python_dir && !strchr(sargv[0], '/') &&
        (!strcmp(sargv[0], "python") || !strcmp(sargv[0], "python.exe"))) {
        if (lbw_env_append(&env, "PATH", o->python_dir) < 0)
            goto oom;
        frc = lbw_find_executable(sargv[0], lbw_env_get(&env, "PATH"), exe, sizeof(exe));
    }
    if (frc < 0) {
        *err_class = "spawn";
        LBW_WARN("run", "invocation %lld: executable '%s' not found (PATH=%s)",
                 (long long)run->inv_id, sargv[0], path ? path : "");
        snprintf(msg, msglen, "failed to start the process");
        goto fail_msg;
    }
    char cwd[PATH_MAX];
    snprintf(cwd, sizeof(cwd), "%s", exe);
    char *slash = strrchr(cwd, '/');
    if (slash == cwd)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    envp = lbw_env_envp(&env);
    if (!envp)
        goto oom;
    /* progress regexes: a broken one disables progress for this job */
    for (int s = 0; s < 2; s++) {
        struct lbw_regex rx;
        if (lbw_inv_progress_regex(job, s, &rx) == 0 && rx.present) {
            char e[256];
            run->re[s] = lbw_progress_compile(rx.pattern, rx.len, rx.is_bytes, rx.flags, e,
                                              sizeof(e));
            if (!run->re[s])
                LBW_WARN("run", "invocation %lld: %s progress regex does not compile (%s): "
                                "no progress from %s", (long long)run->inv_id,
                         s ? "stderr" : "stdout", e, s ? "stderr" : "stdout");
        }
    }
    /* 7.5 logs */
    char lerr[512];
    if (lbw_invlog_open(&run->log, o->log_root, o->db_uid, run->inv_id, time(NULL), lerr,
                        sizeof(lerr)) < 0) {
        snprintf(why, sizeof(why), "%s", lerr);
        goto fail;
    }
    run->log_open = 1;
    lbw_invlog_set_progress(&run->log, run->re[0], run->re[1]);
    for (int s = 0; s < 2; s++) {
        if (pipe2(pipes[s], O_CLOEXEC) < 0) {
            snprintf(why, sizeof(why), "pipe: %s", strerror(errno));
            goto fail;
        }
        lbw_set_nonblock(pipes[s][0]);
        /* best effort: capped by /proc/sys/fs/pipe-max-size for non-root */
        fcntl(pipes[s][0], F_SETPIPE_SZ, PIPE_SIZE);
        run->buf[s] = malloc(RBUF);
        if (!run->buf[s])
            goto oom;
    }
    cgfd = make_cgroup(run);
    struct lbw_spawn_opts so = {
        .path = exe,
        .argv = sargv,
        .envp = envp,
        .cwd = cwd,
        .stdin_fd = -1,
        .stdout_fd = pipes[0][1],
        .stderr_fd = pipes[1][1],
        .nice = o->nice,
        .cgroup_fd = cgfd,
    };
    run->t_start = lbw_now_ns();
    char serr[512];
    int src = lbw_spawn(&so, &run->child, serr, sizeof(serr));
    if (src < 0 && cgfd >= 0) {
        /* the cgroup may refuse us (controllers, permissions): go on without */
        LBW_DEBUG("run", "spawning into %s failed (%s); without a cgroup", run->cg_dir, serr);
        rmdir(run->cg_dir);
        run->cg_dir[0] = 0;
        so.cgroup_fd = -1;
        src = lbw_spawn(&so, &run->child, serr, sizeof(serr));
    }
    if (cgfd >= 0)
        close(cgfd);
    cgfd = -1;
    close(pipes[0][1]);
    close(pipes[1][1]);
    pipes[0][1] = pipes[1][1] = -1;
    if (src < 0) {
        if (src == -ENOENT) {
            *err_class = "spawn";
            LBW_WARN("run", "invocation %lld: %s", (long long)run->inv_id, serr);
            snprintf(msg, msglen, "failed to start the process");
            goto fail_msg;
        }
        snprintf(why, sizeof(why), "%s", serr);
        goto fail;
    }
    run->rfd[0] = pipes[0][0];
    run->rfd[1] = pipes[1][0];
    pipes[0][0] = pipes[1][0] = -1;
    arm_read(run, 0);
    arm_read(run, 1);
    if (lbw_poll(o->r, &run->xop, run->child.pidfd, POLLIN, exit_cb) < 0)
        LBW_ERROR("run", "cannot watch pid %d", (int)run->child.pid);
    LBW_INFO("run", "invocation %lld: started %s (pid %d)%s", (long long)run->inv_id, exe,
             (int)run->child.pid, run->cg_dir[0] ? " in its own cgroup" : "");
    lbw_env_free_envp(envp);
    lbw_env_free(&env);
    for (size_t i = 0; i < argc; i++)
        free(sargv[i]);
    free(sargv);
    free(argv);
    free(ef);
    *out = run;
    return 0;

oom:
    snprintf(why, sizeof(why), "out of memory");
fail:
    snprintf(msg, msglen, "error happened: %s", why);
    LBW_WARN("run", "invocation %lld: %s", (long long)run->inv_id, why);
fail_msg:
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++)
            if (pipes[s][k] >= 0)
                close(pipes[s][k]);
    if (cgfd >= 0)
        close(cgfd);
    if (run->cg_dir[0])
        rmdir(run->cg_dir);
    if (run->log_open) {
        lbw_invlog_close(&run->log);
        lbw_invlog_remove(&run->log);
        run->log_open = 0;
    }
    if (run->ef_dir[0])
        lbw_rm_tree(run->ef_dir);
    lbw_env_free_envp(envp);
    lbw_env_free(&env);
    if (sargv)
        for (size_t i = 0; i < argc; i++)
            free(sargv[i]);
    free(sargv);
    free(argv);
    free(ef);
    run_destroy(run);
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
