/* numa.c — NUMA nodes from sysfs: CPU lists, memory, distances. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

static int cmp_node(const void *a, const void *b)
{
    return ((const struct lbw_numa_node *)a)->id - ((const struct lbw_numa_node *)b)->id;
}

void lbw_probe_numa(const struct lbw_probe_opts *o, struct lbw_host *h)
{
    const char *root = o->root ? o->root : "/";
    char path[4096];
    snprintf(path, sizeof(path), "%s/sys/devices/system/node", strcmp(root, "/") ? root : "");
    h->nnodes = 0;
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && h->nnodes < LBW_MAX_NODES) {
        char *end;
        if (strncmp(e->d_name, "node", 4) != 0)
            continue;
        long id = strtol(e->d_name + 4, &end, 10);
        if (end == e->d_name + 4 || *end || id < 0)
            continue;
        struct lbw_numa_node *n = &h->nodes[h->nnodes];
        memset(n, 0, sizeof(*n));
        n->id = (int)id;
        char f[256], buf[8192];
        snprintf(f, sizeof(f), "/sys/devices/system/node/node%ld/cpulist", id);
        if (lbw_root_read(root, f, buf, sizeof(buf)) > 0)
            lbw_cpuset_parse(buf, &n->cpus);
        snprintf(f, sizeof(f), "/sys/devices/system/node/node%ld/meminfo", id);
        if (lbw_root_read(root, f, buf, sizeof(buf)) > 0) {
            char *p = strstr(buf, "MemTotal:");
            if (p)
                n->mem_bytes = strtoull(p + 9, NULL, 10) * 1024ull;
        }
        snprintf(f, sizeof(f), "/sys/devices/system/node/node%ld/distance", id);
        if (lbw_root_read(root, f, buf, sizeof(buf)) > 0) {
            char *p = buf;
            while (n->ndist < LBW_MAX_NODES) {
                long v = strtol(p, &end, 10);
                if (end == p)
                    break;
                n->distance[n->ndist++] = (int)v;
                p = end;
            }
        }
        h->nnodes++;
    }
    closedir(d);
    qsort(h->nodes, (size_t)h->nnodes, sizeof(h->nodes[0]), cmp_node);
}
