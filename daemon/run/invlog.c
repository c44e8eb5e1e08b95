/* invlog.c — see invlog.h. */
#include "invlog.h"

#include "buf.h"
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lbw_invlog_dir(const char *root, uint64_t db_uid, int64_t inv_id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/db_%016llx/invocations/%lld", root, (unsigned long long)db_uid,
                     (long long)inv_id);
    return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t stamp(char *out, size_t cap, const char *fmt, time_t now)
{
    struct tm tm;
    localtime_r(&now, &tm);
    return strftime(out, cap, fmt, &tm);
}

static const char *const NAMES[2] = {"output", "error"};

/* Creates (truncates) both files of dir into fd; -errno with a message. */
static int create_files(const char *dir, int fd[2], char *err, size_t errlen)
{
    for (int s = 0; s < 2; s++) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s", dir, NAMES[s]);
        fd[s] = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd[s] < 0) {
            int rc = -errno;
            snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            return rc;
        }
    }
    return 0;
}

/* The first line, once the files are open. */
static int start_log(struct lbw_invlog *l, time_t now, char *err, size_t errlen)
{
    char line[80];
    size_t n = stamp(line, sizeof(line), "[SYS][%d.%m.%y %H:%M:%S] task initialized\n", now);
    int rc = write_all(l->fd[0], line, n);
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s/output: %s", l->dir, strerror(-rc));
        lbw_invlog_close(l);
    }
    return rc;
}

static void invlog_init(struct lbw_invlog *l)
{
    memset(l, 0, sizeof(*l));
    l->fd[0] = l->fd[1] = -1;
    l->at_start[0] = l->at_start[1] = 1;
}

int lbw_invlog_open(struct lbw_invlog *l, const char *root, uint64_t db_uid, int64_t inv_id,
                    time_t now, char *err, size_t errlen)
{
    invlog_init(l);
    int rc = lbw_invlog_dir(root, db_uid, inv_id, l->dir, sizeof(l->dir));
    if (rc == 0)
        rc = lbw_mkdirs(l->dir);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the log directory %s: %s", l->dir, strerror(-rc));
        return rc;
    }
    rc = create_files(l->dir, l->fd, err, errlen);
    if (rc < 0) {
        lbw_invlog_close(l);
        return rc;
    }
    return start_log(l, now, err, errlen);
}

/* ---- the spare directory ------------------------------------------------------------ */

#define SPARE_PREFIX ".next-"

/* Removes the spares of workers that are gone (a crash leaves one), once
 * per process: one look at the invocations directory. */
static void remove_dead_spares(const char *parent)
{
    static int done;
    if (done)
        return;
    done = 1;
    DIR *d = opendir(parent);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, SPARE_PREFIX, strlen(SPARE_PREFIX)))
            continue;
        long pid = strtol(e->d_name + strlen(SPARE_PREFIX), NULL, 10);
        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            char p[4200];
            if ((size_t)snprintf(p, sizeof(p), "%s/%s", parent, e->d_name) < sizeof(p))
                lbw_rm_tree(p);
        }
    }
    if (d)
        closedir(d);
}

void lbw_invlog_spare_drop(struct lbw_invlog_spare *s)
{
    if (!s->dir[0])
        return;
    for (int i = 0; i < 2; i++)
        if (s->fd[i] >= 0)
            close(s->fd[i]);
    lbw_rm_tree(s->dir);
    s->dir[0] = 0;
}

int lbw_invlog_spare_make(struct lbw_invlog_spare *s, const char *root, uint64_t db_uid)
{
    char parent[4096];
    if (s->dir[0])
        return 0;
    s->fd[0] = s->fd[1] = -1;
    int rc = lbw_invlog_dir(root, db_uid, 0, parent, sizeof(parent));
    if (rc < 0)
        return rc;
    *strrchr(parent, '/') = 0;
    static unsigned serial; /* one name per spare of this process */
    if ((size_t)snprintf(s->dir, sizeof(s->dir), "%s/" SPARE_PREFIX "%ld-%u", parent,
                         (long)getpid(), serial++) >= sizeof(s->dir)) {
        s->dir[0] = 0;
        return -ENAMETOOLONG;
    }
    rc = lbw_mkdirs(parent);
    if (rc == 0) {
        remove_dead_spares(parent);
        lbw_rm_tree(s->dir); /* left by an earlier process with this pid */
        rc = mkdir(s->dir, 0755) < 0 ? -errno : 0;
    }
    char err[64];
    if (rc < 0 || (rc = create_files(s->dir, s->fd, err, sizeof(err))) < 0)
        lbw_invlog_spare_drop(s);
    return rc;
}

int lbw_invlog_open_spare(struct lbw_invlog *l, struct lbw_invlog_spare *s, const char *root,
                          uint64_t db_uid, int64_t inv_id, time_t now, char *err, size_t errlen)
{
    if (!s || !s->dir[0])
        return lbw_invlog_open(l, root, db_uid, inv_id, now, err, errlen);
    invlog_init(l);
    int rc = lbw_invlog_dir(root, db_uid, inv_id, l->dir, sizeof(l->dir));
    const char *slash = rc == 0 ? strrchr(l->dir, '/') : NULL;
    size_t pl = slash ? (size_t)(slash - l->dir) : 0;
    /* the same invocations directory, and no directory of that name yet
     * (rename would replace an empty one, and never a full one) */
    if (!slash || strncmp(s->dir, l->dir, pl + 1) || strchr(s->dir + pl + 1, '/') ||
        rename(s->dir, l->dir) < 0) {
        if (slash && strncmp(s->dir, l->dir, pl + 1))
            lbw_invlog_spare_drop(s); /* another root or scheduler database */
        return lbw_invlog_open(l, root, db_uid, inv_id, now, err, errlen);
    }
    l->fd[0] = s->fd[0];
    l->fd[1] = s->fd[1];
    s->dir[0] = 0;
    return start_log(l, now, err, errlen);
}

void lbw_invlog_set_progress(struct lbw_invlog *l, struct lbw_progress_re *out_re,
                             struct lbw_progress_re *err_re)
{
    l->re[0] = out_re;
    l->re[1] = err_re;
}

static int reserve(struct lbw_invlog *l, size_t need)
{
    if (need <= l->cap)
        return 0;
    /* 64 KiB at first, then doubling */
    return lbw_grow(&l->buf, &l->cap, need > 65536 ? need : 65536, 1);
}

/* A complete (or final) line for the progress regex of stream s. */
static void line_done(struct lbw_invlog *l, int s)
{
    double v;
    if (l->re[s] && l->line_len[s] && lbw_progress_line(l->re[s], l->line[s], l->line_len[s], &v) == 1) {
        l->progress = v;
        l->progress_new = 1;
    }
    l->line_len[s] = 0;
}

static void line_add(struct lbw_invlog *l, int s, const uint8_t *p, size_t n)
{
    if (!l->re[s] || !lbw_progress_active(l->re[s]))
        return;
    if (!l->line[s]) {
        l->line[s] = malloc(LBW_INVLOG_LINE_MAX);
        if (!l->line[s])
            return;
    }
    size_t room = LBW_INVLOG_LINE_MAX - l->line_len[s];
    size_t k = n < room ? n : room;
    memcpy(l->line[s] + l->line_len[s], p, k);
    l->line_len[s] += k;
}

static int flush(struct lbw_invlog *l, int s, size_t n)
{
    int rc = write_all(l->fd[0], l->buf, n);
    if (rc == 0 && s == 1)
        rc = write_all(l->fd[1], l->buf, n);
    return rc;
}

int lbw_invlog_feed(struct lbw_invlog *l, int s, const uint8_t *p, size_t n, time_t now)
{
    char prefix[32];
    size_t pl = stamp(prefix, sizeof(prefix), s ? "[ERR][%H:%M:%S] " : "[OUT][%H:%M:%S] ", now);
    const size_t batch = 256 * 1024;
    if (reserve(l, batch + pl + 1) < 0)
        return -ENOMEM;
    size_t o = 0;
    while (n) {
        const uint8_t *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) + 1 : n;
        if (l->at_start[s]) {
            memcpy(l->buf + o, prefix, pl);
            o += pl;
        }
        line_add(l, s, p, seg);
        /* copy the segment through the batch buffer */
        size_t done = 0;
        while (done < seg) {
            size_t k = seg - done;
            if (k > batch - o)
                k = batch - o;
            memcpy(l->buf + o, p + done, k);
            o += k;
            done += k;
            if (o >= batch) {
                int rc = flush(l, s, o);
                if (rc < 0)
                    return rc;
                o = 0;
            }
        }
        l->at_start[s] = nl != NULL;
        if (nl)
            line_done(l, s);
        p += seg;
        n -= seg;
    }
    return o ? flush(l, s, o) : 0;
}

int lbw_invlog_note(struct lbw_invlog *l, const char *text, time_t now)
{
    char line[96];
    size_t n = stamp(line, sizeof(line), "\n[WORKER][%d.%m.%y %H:%M:%S] ", now);
    int rc = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        rc = write_all(l->fd[s], line, n);
        if (rc == 0)
            rc = write_all(l->fd[s], text, strlen(text));
        if (rc == 0)
            rc = write_all(l->fd[s], "\n", 1);
    }
    return rc;
}

int lbw_invlog_finish(struct lbw_invlog *l, int killed, time_t now)
{
    /* a final unterminated piece is still a line for progress */
    line_done(l, 0);
    line_done(l, 1);
    char line[96];
    int rc;
    if (killed) {
        size_t n = stamp(line, sizeof(line), "\n[WORKER][%d.%m.%y %H:%M:%S] killed by worker.\n", now);
        rc = write_all(l->fd[0], line, n);
        if (rc == 0)
            rc = write_all(l->fd[1], line, n);
    } else {
        size_t n = stamp(line, sizeof(line), "[SYS][%d.%m.%y %H:%M:%S] task finished\n", now);
        rc = write_all(l->fd[0], line, n);
    }
    return rc;
}

int lbw_invlog_progress(struct lbw_invlog *l, double *value)
{
    if (!l->progress_new)
        return 0;
    l->progress_new = 0;
    *value = l->progress;
    return 1;
}

void lbw_invlog_close(struct lbw_invlog *l)
{
    for (int s = 0; s < 2; s++) {
        if (l->fd[s] >= 0)
            close(l->fd[s]);
        l->fd[s] = -1;
        free(l->line[s]);
        l->line[s] = NULL;
    }
    free(l->buf);
    l->buf = NULL;
    l->cap = 0;
}

int lbw_invlog_remove(const struct lbw_invlog *l)
{
    for (int s = 0; s < 2; s++) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s", l->dir, NAMES[s]);
        if (unlink(p) < 0 && errno != ENOENT)
            return -errno;
    }
    return rmdir(l->dir) < 0 && errno != ENOENT ? -errno : 0;
}

int lbw_invlog_open_read(const char *dir, int *out_fd, int *err_fd)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/output", dir);
    *out_fd = open(p, O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof(p), "%s/error", dir);
    *err_fd = open(p, O_RDONLY | O_CLOEXEC);
    return *out_fd >= 0 && *err_fd >= 0 ? 0 : -1;
}
