/* sysfs.c — reading /proc and /sys through a root prefix, CPU lists, and
 * locating this process's cgroup directories (v1 controllers and v2). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe.h"

void lbw_cpuset_clear(struct lbw_cpuset *s) { memset(s, 0, sizeof(*s)); }

void lbw_cpuset_set(struct lbw_cpuset *s, unsigned cpu)
{
    if (cpu < LBW_MAX_CPUS)
        s->bits[cpu / 64] |= 1ull << (cpu % 64);
}

int lbw_cpuset_has(const struct lbw_cpuset *s, unsigned cpu)
{
    return cpu < LBW_MAX_CPUS && (s->bits[cpu / 64] >> (cpu % 64)) & 1;
}

unsigned lbw_cpuset_count(const struct lbw_cpuset *s)
{
    unsigned n = 0;
    for (size_t i = 0; i < LBW_MAX_CPUS / 64; i++)
        n += (unsigned)__builtin_popcountll(s->bits[i]);
    return n;
}

void lbw_cpuset_and(struct lbw_cpuset *a, const struct lbw_cpuset *b)
{
    for (size_t i = 0; i < LBW_MAX_CPUS / 64; i++)
        a->bits[i] &= b->bits[i];
}

int lbw_cpuset_parse(const char *s, struct lbw_cpuset *out)
{
    lbw_cpuset_clear(out);
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\n' || *p == 0)
        return 0; /* empty list */
    for (;;) {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b;
        if (end == p || a >= LBW_MAX_CPUS)
            return -1;
        p = end;
        b = a;
        if (*p == '-') {
            p++;
            b = strtoul(p, &end, 10);
            if (end == p || b >= LBW_MAX_CPUS || b < a)
                return -1;
            p = end;
        }
        for (unsigned long c = a; c <= b; c++)
            lbw_cpuset_set(out, (unsigned)c);
        if (*p == ',') {
            p++;
            continue;
        }
        while (*p == ' ' || *p == '\n' || *p == '\t')
            p++;
        return *p == 0 ? 0 : -1;
    }
}

void lbw_cpuset_format(const struct lbw_cpuset *s, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (unsigned c = 0; c < LBW_MAX_CPUS; c++) {
        if (!lbw_cpuset_has(s, c))
            continue;
        unsigned e = c;
        while (e + 1 < LBW_MAX_CPUS && lbw_cpuset_has(s, e + 1))
            e++;
        int n = e > c ? snprintf(out + k, cap - k, "%s%u-%u", k ? "," : "", c, e)
                      : snprintf(out + k, cap - k, "%s%u", k ? "," : "", c);
        if (n < 0 || (size_t)n >= cap - k)
            return;
        k += (size_t)n;
        c = e;
    }
    if (k == 0)
        snprintf(out, cap, "none");
}

ssize_t lbw_root_read(const char *root, const char *path, char *buf, size_t cap)
{
    char full[4096];
    int n = snprintf(full, sizeof(full), "%s%s", strcmp(root, "/") ? root : "", path);
    if (n < 0 || (size_t)n >= sizeof(full))
        return -ENAMETOOLONG;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

/* mountinfo: "id parent maj:min root mountpoint opts [tags] - fstype src superopts" */
struct mnt {
    char root[1024], point[1024], fstype[32], super[256];
};

static int next_mount(char **cursor, struct mnt *m)
{
    while (**cursor) {
        char *line = *cursor, *nl = strchr(line, '\n');
        *cursor = nl ? nl + 1 : line + strlen(line);
        if (nl)
            *nl = 0;
        char *dash = strstr(line, " - ");
        if (!dash)
            continue;
        char r[1024], pt[1024];
        if (sscanf(line, "%*s %*s %*s %1023s %1023s", r, pt) != 2)
            continue;
        if (sscanf(dash + 3, "%31s %*s %255s", m->fstype, m->super) != 2)
            continue;
        snprintf(m->root, sizeof(m->root), "%s", r);
        snprintf(m->point, sizeof(m->point), "%s", pt);
        return 1;
    }
    return 0;
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

const char *lbw_cgroup_mode(const char *root)
{
    char *mi = malloc(1 << 20);
    if (!mi)
        return "none";
    int v1 = 0, v2 = 0;
    if (lbw_root_read(root, "/proc/self/mountinfo", mi, 1 << 20) > 0) {
        char *cur = mi;
        struct mnt m;
        while (next_mount(&cur, &m)) {
            if (!strcmp(m.fstype, "cgroup2"))
                v2 = 1;
            else if (!strcmp(m.fstype, "cgroup"))
                v1 = 1;
        }
    }
    free(mi);
    return v1 && v2 ? "hybrid" : v2 ? "v2" : v1 ? "v1" : "none";
}

int lbw_cgroup_dir(const char *root, const char *controller, char *out, size_t cap,
                   char *mnt_out, size_t mnt_cap)
{
    char cg[8192];
    if (lbw_root_read(root, "/proc/self/cgroup", cg, sizeof(cg)) <= 0)
        return -1;
    /* "N:controllers:/path"; v2 is "0::/path" */
    char path[4096] = "";
    int found = 0;
    for (char *line = cg; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 && c2) {
            *c2 = 0;
            const char *ctl = c1 + 1;
            if ((!controller && *ctl == 0) || (controller && has_opt(ctl, controller))) {
                snprintf(path, sizeof(path), "%s", c2 + 1);
                found = 1;
                break;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!found)
        return -1;
    char *mi = malloc(1 << 20);
    if (!mi)
        return -1;
    int rc = -1;
    if (lbw_root_read(root, "/proc/self/mountinfo", mi, 1 << 20) > 0) {
        char *cur = mi;
        struct mnt m;
        while (next_mount(&cur, &m)) {
            int match = controller ? !strcmp(m.fstype, "cgroup") && has_opt(m.super, controller)
                                   : !strcmp(m.fstype, "cgroup2");
            if (!match)
                continue;
            /* The cgroup path is relative to the hierarchy root; the mount
             * shows the part of it mounted at m.point. */
            const char *rel = path;
            size_t rl = strlen(m.root);
            if (strcmp(m.root, "/") && !strncmp(path, m.root, rl) &&
                (path[rl] == '/' || path[rl] == 0))
                rel = path + rl;
            int n = snprintf(out, cap, "%s%s", m.point, strcmp(rel, "/") ? rel : "");
            rc = n > 0 && (size_t)n < cap ? 0 : -1;
            if (mnt_out)
                snprintf(mnt_out, mnt_cap, "%s", m.point);
            break;
        }
    }
    free(mi);
    return rc;
}

int lbw_cgroup_up(char *dir, const char *mnt)
{
    if (!strcmp(dir, mnt) || strlen(dir) <= strlen(mnt))
        return 0;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    return 1;
}
