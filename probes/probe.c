/* probe.c — runs every probe into one lbw_host. */
#include <stdio.h>
#include <string.h>

#include "cgroup.h"
#include "probe.h"

void lbw_probe_host(const struct lbw_probe_opts *o, struct lbw_host *h)
{
    memset(h, 0, sizeof(*h));
    const char *root = o->root ? o->root : "/";
    snprintf(h->cgroup_mode, sizeof(h->cgroup_mode), "%s", lbw_cg_mode(root));
    lbw_probe_cpu(o, h);
    lbw_probe_mem(o, h);
    lbw_probe_numa(o, h);
    lbw_probe_gpu(o, h);
    if (lbw_probe_hwid(o, &h->hwid, h->hwid_source, sizeof(h->hwid_source)) < 0)
        snprintf(h->hwid_source, sizeof(h->hwid_source), "unavailable");
}
