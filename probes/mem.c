/* mem.c — usable memory: MemTotal lowered to the tightest cgroup limit
 * found walking up the hierarchy (v2 memory.max, v1 memory.limit_in_bytes;
 * both on a hybrid host). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "probe.h"

/* v1 reports "no limit" as a huge page-aligned number. */
#define V1_UNLIMITED (1ull << 62)

struct limit_walk {
    const char *root, *file;
    uint64_t best;  /* 0 = none */
    char *src;
    size_t srclen;
};

static int limit_level(void *ctx, const char *d)
{
    struct limit_walk *w = ctx;
    char buf[64];
    if (lbw_cg_read(w->root, d, w->file, buf, sizeof(buf)) > 0 && strncmp(buf, "max", 3) != 0) {
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        if (end != buf && v > 0 && v < V1_UNLIMITED && (w->best == 0 || v < w->best)) {
            w->best = v;
            char f[LBW_CG_PATH_MAX + 32];
            snprintf(f, sizeof(f), "%s/%s", d, w->file);
            snprintf(w->src, w->srclen, "%.150s", f);
        }
    }
    return 0; /* on to the top: the tightest level wins */
}

static uint64_t walk_limit(const char *root, const char *dir, const char *mnt, const char *file,
                           char *src, size_t srclen)
{
    struct limit_walk w = {.root = root, .file = file, .src = src, .srclen = srclen};
    lbw_cg_walk_up(dir, mnt, limit_level, &w);
    return w.best;
}

void lbw_probe_mem(const struct lbw_probe_opts *o, struct lbw_host *h)
{
    const char *root = o->root ? o->root : "/";
    char buf[8192];
    h->mem_total = 0;
    if (lbw_root_read(root, "/proc/meminfo", buf, sizeof(buf)) > 0) {
        char *p = strstr(buf, "MemTotal:");
        if (p)
            h->mem_total = strtoull(p + 9, NULL, 10) * 1024ull;
    }
    h->mem_limit = 0;
    snprintf(h->mem_limit_source, sizeof(h->mem_limit_source), "none");
    char dir[LBW_CG_PATH_MAX], mnt[LBW_CG_PATH_MAX], src[160];
    if (lbw_cg_self_dir(root, NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
        uint64_t l = walk_limit(root, dir, mnt, "memory.max", src, sizeof(src));
        if (l) {
            h->mem_limit = l;
            snprintf(h->mem_limit_source, sizeof(h->mem_limit_source), "%s", src);
        }
    }
    if (lbw_cg_self_dir(root, "memory", dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
        uint64_t l = walk_limit(root, dir, mnt, "memory.limit_in_bytes", src, sizeof(src));
        if (l && (h->mem_limit == 0 || l < h->mem_limit)) {
            h->mem_limit = l;
            snprintf(h->mem_limit_source, sizeof(h->mem_limit_source), "%s", src);
        }
    }
    h->mem_bytes = h->mem_total;
    if (h->mem_limit && (h->mem_bytes == 0 || h->mem_limit < h->mem_bytes))
        h->mem_bytes = h->mem_limit;
}
