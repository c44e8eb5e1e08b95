/* cgroup.c — see cgroup.h. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#define MOUNTINFO_MAX (1u << 20)
#define DEPTH_MAX 32              /* levels below a cgroup that listings look into */
#define REMOVE_STEPS_MAX (1ul << 22) /* lbw_cg_remove: descents and removals */
#define KILL_ROUNDS 2000          /* SIGKILL loop: rounds of 1 ms at most */
#define FREEZE_WAIT_ROUNDS 1000   /* freezing: 1 ms polls at most */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int join_path(char *out, size_t cap, const char *root, const char *dir, const char *file)
{
    const char *r = root && strcmp(root, "/") ? root : "";
    int n = file ? snprintf(out, cap, "%s%s/%s", r, dir, file) : snprintf(out, cap, "%s%s", r, dir);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static ssize_t read_all(const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return -EINVAL;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    return (ssize_t)got;
}

ssize_t lbw_cg_read(const char *root, const char *dir, const char *file, char *buf, size_t cap)
{
    char p[LBW_CG_PATH_MAX + 256];
    int rc = join_path(p, sizeof(p), root, dir, file);
    return rc < 0 ? rc : read_all(p, buf, cap);
}

/* ---- mountinfo and /proc/self/cgroup --------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static int has_opt(const char *opts, const char *want)
{
    size_t wl = strlen(want);
    for (const char *p = opts; p && *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == wl && !strncmp(p, want, wl))
            return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

/* One line: "id parent maj:min root mountpoint opts [tags] - fstype src superopts".
 * Fills m for a cgroup or cgroup2 mount; returns 1, or 0 for any other line. */
static int parse_mount(char *line, struct lbw_cg_mount *m)
{
    char *dash = strstr(line, " - ");
    if (!dash)
        return 0;
    char fstype[32], super[256];
    if (sscanf(dash + 3, "%31s %*s %255s", fstype, super) != 2)
        return 0;
    if (!strcmp(fstype, "cgroup2"))
        m->version = 2;
    else if (!strcmp(fstype, "cgroup"))
        m->version = 1;
    else
        return 0;
    *dash = 0;
    /* fields 4 and 5: cut them out in place (bounded by the line) */
    char *f = line;
    for (int i = 0; i < 3 && f; i++) {
        f = strchr(f, ' ');
        if (f)
            f++;
    }
    char *sp = f ? strchr(f, ' ') : NULL;
    char *pt = sp ? sp + 1 : NULL;
    char *ep = pt ? strchr(pt, ' ') : NULL;
    if (!ep)
        return 0;
    *sp = 0;
    *ep = 0;
    if (strlen(f) >= sizeof(m->root) || strlen(pt) >= sizeof(m->point))
        return 0;
    snprintf(m->root, sizeof(m->root), "%s", f);
    snprintf(m->point, sizeof(m->point), "%s", pt);
    unescape(m->root);
    unescape(m->point);
    snprintf(m->options, sizeof(m->options), "%s", m->version == 1 ? super : "");
    m->favordynmods = has_opt(super, "favordynmods");
    return 1;
}

/* Calls fn on every cgroup mount until it returns non-zero. */
static int each_mount(const char *root, int (*fn)(void *ctx, const struct lbw_cg_mount *m),
                      void *ctx)
{
    _cleanup_free_ char *mi = malloc(MOUNTINFO_MAX);
    if (!mi)
        return -ENOMEM;
    ssize_t n = lbw_cg_read(root, "/proc/self/mountinfo", NULL, mi, MOUNTINFO_MAX);
    if (n < 0)
        return (int)n;
    struct lbw_cg_mount m;
    for (char *line = mi; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (parse_mount(line, &m)) {
            int rc = fn(ctx, &m);
            if (rc)
                return rc;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

struct find_ctx {
    const char *controller;
    struct lbw_cg_mount *out;
};

static int find_fn(void *ctx, const struct lbw_cg_mount *m)
{
    struct find_ctx *c = ctx;
    int match = c->controller ? m->version == 1 && has_opt(m->options, c->controller)
                              : m->version == 2;
    if (match)
        *c->out = *m;
    return match;
}

int lbw_cg_find_mount(const char *root, const char *controller, struct lbw_cg_mount *out)
{
    struct find_ctx c = {controller, out};
    int rc = each_mount(root, find_fn, &c);
    return rc == 1 ? 0 : rc < 0 ? rc : -ENOENT;
}

static int mode_fn(void *ctx, const struct lbw_cg_mount *m)
{
    *(int *)ctx |= m->version;
    return 0;
}

const char *lbw_cg_mode(const char *root)
{
    int seen = 0;
    if (each_mount(root, mode_fn, &seen) < 0)
        return "none";
    return seen == 3 ? "hybrid" : seen == 2 ? "v2" : seen == 1 ? "v1" : "none";
}

static int favor_fn(void *ctx, const struct lbw_cg_mount *m)
{
    return m->favordynmods;
}

int lbw_cg_favordynmods(const char *root)
{
    return each_mount(root, favor_fn, NULL) == 1;
}

int lbw_cg_self_path(const char *root, const char *controller, char *out, size_t cap)
{
    char cg[8192];
    if (lbw_cg_read(root, "/proc/self/cgroup", NULL, cg, sizeof(cg)) <= 0)
        return -ENOENT;
    /* "N:controllers:/path"; v2 is "0::/path" */
    for (char *line = cg; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 && c2) {
            *c2 = 0;
            const char *ctl = c1 + 1;
            if ((!controller && *ctl == 0) || (controller && *ctl && has_opt(ctl, controller))) {
                int n = snprintf(out, cap, "%s", c2 + 1);
                return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

int lbw_cg_self_dir(const char *root, const char *controller, char *dir, size_t cap,
                    char *mnt, size_t mntcap)
{
    char path[LBW_CG_PATH_MAX];
    int rc = lbw_cg_self_path(root, controller, path, sizeof(path));
    if (rc < 0)
        return rc;
    struct lbw_cg_mount *m = malloc(sizeof(*m));
    if (!m)
        return -ENOMEM;
    rc = lbw_cg_find_mount(root, controller, m);
    if (rc == 0) {
        /* The path is relative to the hierarchy's root; the mount shows
         * the part of it below m->root. */
        const char *rel = path;
        size_t rl = strlen(m->root);
        if (strcmp(m->root, "/") && !strncmp(path, m->root, rl) &&
            (path[rl] == '/' || path[rl] == 0))
            rel = path + rl;
        int n = snprintf(dir, cap, "%s%s", m->point, strcmp(rel, "/") ? rel : "");
        rc = n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
        if (mnt)
            snprintf(mnt, mntcap, "%s", m->point);
    }
    free(m);
    return rc;
}

int lbw_cg_up(char *dir, const char *mnt)
{
    if (!strcmp(dir, mnt) || strlen(dir) <= strlen(mnt))
        return 0;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    return 1;
}

int lbw_cg_walk_up(const char *dir, const char *mnt,
                   int (*fn)(void *ctx, const char *level), void *ctx)
{
    char d[LBW_CG_PATH_MAX];
    if ((size_t)snprintf(d, sizeof(d), "%s", dir) >= sizeof(d))
        return -ENAMETOOLONG;
    for (;;) {
        int rc = fn(ctx, d);
        if (rc)
            return rc;
        if (!lbw_cg_up(d, mnt))
            return 0;
    }
}

/* ---- acting ------------------------------------------------------------------ */

int lbw_cg_create(const char *dir)
{
    return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

/* Calls fn on each child cgroup of dir (its subdirectories). */
static int each_child(const char *dir, int (*fn)(void *ctx, const char *child), void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[LBW_CG_PATH_MAX];
        if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= sizeof(p))
            continue;
        struct stat st;
        if (e->d_type == DT_DIR ||
            (e->d_type == DT_UNKNOWN && lstat(p, &st) == 0 && S_ISDIR(st.st_mode)))
            rc = fn(ctx, p);
    }
    closedir(d);
    return rc;
}

struct first {
    char *name;
    size_t cap;
};

static int first_fn(void *ctx, const char *child)
{
    struct first *f = ctx;
    return (size_t)snprintf(f->name, f->cap, "%s", strrchr(child, '/') + 1) < f->cap
               ? 1 : -ENAMETOOLONG;
}

/* The first child cgroup of dir into name; 1 found, 0 none, -errno. */
static int first_child(const char *dir, char *name, size_t cap)
{
    struct first f = {name, cap};
    return each_child(dir, first_fn, &f);
}

/* Depth-first without recursion (a payload that owns its cgroup may nest
 * cgroups as deep as a path allows): down the first child until a leaf,
 * remove it, back to its parent; every step descends or removes one. */
int lbw_cg_remove(const char *dir)
{
    char p[LBW_CG_PATH_MAX], name[256];
    size_t base = strlen(dir), len = base;
    if (base >= sizeof(p))
        return -ENAMETOOLONG;
    memcpy(p, dir, base + 1);
    for (unsigned long step = 0; step < REMOVE_STEPS_MAX; step++) {
        int rc = first_child(p, name, sizeof(name));
        if (rc == -ENOENT && len > base) { /* removed meanwhile (another remover) */
            rc = 0;
        } else if (rc == -ENOENT) {
            return 0;
        } else if (rc < 0) {
            return rc;
        } else if (rc == 1) {
            size_t nl = strlen(name);
            if (len + 1 + nl >= sizeof(p))
                return -ENAMETOOLONG;
            p[len] = '/';
            memcpy(p + len + 1, name, nl + 1);
            len += 1 + nl;
            continue;
        } else if (rmdir(p) < 0 && errno != ENOENT) {
            return -errno;
        }
        if (len == base)
            return 0;
        while (len > base && p[len] != '/')
            len--;
        p[len] = 0;
    }
    return -ELOOP;
}

int lbw_cg_open(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* An fd of dir/file, or -errno. */
static int open_in(const char *dir, const char *file, int flags)
{
    char p[LBW_CG_PATH_MAX + 256];
    int rc = join_path(p, sizeof(p), "/", dir, file);
    if (rc < 0)
        return rc;
    int fd = open(p, flags | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

ssize_t lbw_cg_read_file(const char *dir, const char *file, char *buf, size_t cap)
{
    return lbw_cg_read("/", dir, file, buf, cap);
}

int lbw_cg_write_file(const char *dir, const char *file, const char *value)
{
    _cleanup_close_ int fd = open_in(dir, file, O_WRONLY);
    if (fd < 0)
        return fd;
    size_t len = strlen(value);
    ssize_t w;
    do
        w = write(fd, value, len);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    return (size_t)w == len ? 0 : -EIO;
}

int lbw_cg_procs_open(const char *dir)
{
    return open_in(dir, "cgroup.procs", O_WRONLY);
}

int lbw_cg_join(const char *dir, pid_t pid)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    return lbw_cg_write_file(dir, "cgroup.procs", v);
}

struct procs_ctx {
    pid_t *pids;
    size_t cap, n;
    int depth;
};

static int procs_into(struct procs_ctx *c, const char *dir);

static int procs_fn(void *ctx, const char *child)
{
    struct procs_ctx *c = ctx;
    int rc = procs_into(c, child);
    return rc == -ENOENT ? 0 : rc; /* removed meanwhile */
}

static int procs_into(struct procs_ctx *c, const char *dir)
{
    char p[LBW_CG_PATH_MAX + 32];
    if ((size_t)snprintf(p, sizeof(p), "%s/cgroup.procs", dir) >= sizeof(p))
        return -ENAMETOOLONG;
    FILE *f = fopen(p, "re");
    if (!f)
        return -errno;
    long v;
    while (fscanf(f, "%ld", &v) == 1) {
        if (c->n < c->cap)
            c->pids[c->n] = (pid_t)v;
        c->n++;
    }
    fclose(f);
    if (c->depth < 0)
        return 0; /* not recursive */
    if (c->depth >= DEPTH_MAX)
        return 0; /* deeper: not listed (cgroup.kill and lbw_cg_remove reach it) */
    c->depth++;
    int rc = each_child(dir, procs_fn, c);
    c->depth--;
    return rc;
}

ssize_t lbw_cg_procs(const char *dir, int recursive, pid_t *pids, size_t cap)
{
    struct procs_ctx c = {.pids = pids, .cap = pids ? cap : 0, .depth = recursive ? 0 : -1};
    int rc = procs_into(&c, dir);
    return rc < 0 ? rc : (ssize_t)c.n;
}

static int exists(const char *dir, const char *file)
{
    char p[LBW_CG_PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

/* SIGKILL to every member until a listing is empty; returns the number
 * of rounds in which something was still there. */
static int kill_loop(const char *dir, int rounds)
{
    pid_t pids[1024];
    int busy = 0;
    for (int i = 0; i < rounds; i++) {
        ssize_t n = lbw_cg_procs(dir, 1, pids, 1024);
        if (n <= 0)
            break;
        busy++;
        for (ssize_t k = 0; k < n && k < 1024; k++)
            if (pids[k] != getpid())
                kill(pids[k], SIGKILL);
        sleep_ms(1);
    }
    return busy;
}

/* freeze, SIGKILL each member, thaw: nothing forks while we list. */
static void freeze_kill_thaw(const char *dir, const char *file, const char *freeze,
                             const char *thaw, const char *frozen)
{
    char st[64];
    if (lbw_cg_write_file(dir, file, freeze) == 0) {
        for (int i = 0; i < FREEZE_WAIT_ROUNDS; i++) {
            if (!strcmp(file, "cgroup.freeze")) {
                char ev[256];
                if (lbw_cg_read_file(dir, "cgroup.events", ev, sizeof(ev)) < 0 ||
                    strstr(ev, frozen))
                    break;
            } else if (lbw_cg_read_file(dir, file, st, sizeof(st)) < 0 || strstr(st, frozen)) {
                break;
            }
            sleep_ms(1);
        }
    }
    kill_loop(dir, 1);
    lbw_cg_write_file(dir, file, thaw);
}

ssize_t lbw_cg_kill(const char *dir)
{
    ssize_t n = lbw_cg_procs(dir, 1, NULL, 0);
    if (n < 0)
        return n;
    if (n == 0 && lbw_cg_populated(dir) <= 0)
        return 0;
    if (n == 0)
        n = 1; /* in a cgroup deeper than listings look: at least one */
    if (exists(dir, "cgroup.kill")) {
        int rc = lbw_cg_write_file(dir, "cgroup.kill", "1");
        if (rc == 0)
            return n;
    }
    if (exists(dir, "freezer.state"))
        freeze_kill_thaw(dir, "freezer.state", "FROZEN", "THAWED", "FROZEN");
    else if (exists(dir, "cgroup.freeze"))
        freeze_kill_thaw(dir, "cgroup.freeze", "1", "0", "frozen 1");
    kill_loop(dir, KILL_ROUNDS);
    return n;
}

int lbw_cg_events_open(const char *dir)
{
    return open_in(dir, "cgroup.events", O_RDONLY);
}

static void parse_events(const char *s, struct lbw_cg_events *ev)
{
    const char *p = strstr(s, "populated ");
    ev->populated = p ? atoi(p + 10) != 0 : 0;
    p = strstr(s, "frozen ");
    ev->frozen = p ? atoi(p + 7) != 0 : 0;
}

int lbw_cg_events_read(int fd, struct lbw_cg_events *ev)
{
    char buf[256];
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    parse_events(buf, ev);
    return 0;
}

int lbw_cg_populated(const char *dir)
{
    char buf[256];
    if (lbw_cg_read_file(dir, "cgroup.events", buf, sizeof(buf)) > 0) {
        struct lbw_cg_events ev;
        parse_events(buf, &ev);
        return ev.populated;
    }
    ssize_t n = lbw_cg_procs(dir, 1, NULL, 0);
    return n < 0 ? (int)n : n > 0;
}

/* ---- ownership ------------------------------------------------------------- */

/* Start time (field 22 of /proc/PID/stat); -ESRCH for a zombie. */
static int start_time(pid_t pid, unsigned long long *out)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    ssize_t n = read_all(p, buf, sizeof(buf));
    if (n < 0)
        return n == -ENOENT ? -ESRCH : (int)n;
    char *rp = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    if (!rp || rp[1] != ' ')
        return -EINVAL;
    char state = rp[2];
    if (state == 'Z' || state == 'X')
        return -ESRCH;
    /* fields 3..21 to skip, then 22 */
    char *f = rp + 2;
    for (int i = 3; i < 22; i++) {
        f = strchr(f, ' ');
        if (!f)
            return -EINVAL;
        f++;
    }
    char *end;
    *out = strtoull(f, &end, 10);
    return end == f ? -EINVAL : 0;
}

/* The inode of this process's pid namespace: pids mean something only
 * inside the namespace that names them. */
static unsigned long long pid_ns(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

int lbw_cg_owner_name(const char *prefix, pid_t pid, char *out, size_t cap)
{
    unsigned long long st;
    int rc = start_time(pid, &st);
    if (rc < 0)
        return rc;
    int n = snprintf(out, cap, "%s-%d-%llu-%llu", prefix, (int)pid, st, pid_ns());
    return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

/* Parses a decimal field ending at `stop`; returns the position after it. */
static const char *field(const char *s, char stop, unsigned long long *v)
{
    char *end;
    if (*s < '0' || *s > '9')
        return NULL;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return errno || *end != stop ? NULL : end + (stop != 0);
}

int lbw_cg_owner_alive(const char *prefix, const char *name, pid_t *pid_out)
{
    size_t pl = strlen(prefix);
    unsigned long long pid, want, ns;
    const char *s = strncmp(name, prefix, pl) || name[pl] != '-' ? NULL : name + pl + 1;
    if (s)
        s = field(s, '-', &pid);
    if (s)
        s = field(s, '-', &want);
    if (s)
        s = field(s, 0, &ns);
    if (!s || pid == 0 || pid > 0x3fffffff)
        return -EINVAL;
    if (pid_out)
        *pid_out = (pid_t)pid;
    if (ns != pid_ns())
        return 1; /* another pid namespace's: cannot tell, so never ours to end */
    unsigned long long st;
    int rc = start_time((pid_t)pid, &st);
    if (rc == -ESRCH)
        return 0;
    if (rc < 0)
        return 1; /* cannot tell: treat as alive, never kill a live owner's */
    return st == want;
}
