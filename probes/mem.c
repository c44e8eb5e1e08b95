/* mem.c — usable memory: MemTotal lowered to the tightest cgroup limit
 * found walking up the hierarchy (v2 memory.max, v1 memory.limit_in_bytes;
 * both on a hybrid host). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

/* v1 reports "no limit" as a huge page-aligned number. */
#define V1_UNLIMITED (1ull << 62)

static uint64_t walk_limit(const char *root, const char *dir, const char *mnt, const char *file,
                           char *src, size_t srclen)
{
    char d[4096], buf[64];
    uint64_t best = 0;
    snprintf(d, sizeof(d), "%s", dir);
    for (;;) {
        char f[4200];
        snprintf(f, sizeof(f), "%s/%s", d, file);
        if (lbw_root_read(root, f, buf, sizeof(buf)) > 0 && strncmp(buf, "max", 3) != 0) {
            char *end;
            unsigned long long v = strtoull(buf, &end, 10);
            if (end != buf && v > 0 && v < V1_UNLIMITED && (best == 0 || v < best)) {
                best = v;
                snprintf(src, srclen, "%.150s", f);
            }
        }
        if (!lbw_cgroup_up(d, mnt))
            break;
    }
    return best;
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
    char dir[4096], mnt[4096], src[160];
    if (lbw_cgroup_dir(root, NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
        uint64_t l = walk_limit(root, dir, mnt, "memory.max", src, sizeof(src));
        if (l) {
            h->mem_limit = l;
            snprintf(h->mem_limit_source, sizeof(h->mem_limit_source), "%s", src);
        }
    }
    if (lbw_cgroup_dir(root, "memory", dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
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
