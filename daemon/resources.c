/* resources.c — see resources.h. */
#include "resources.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"

static struct lbw_num from_double(double v)
{
    struct lbw_num n = {0};
    if (v == floor(v) && fabs(v) < 9e15)
        n.i = (int64_t)v;
    else {
        n.is_float = 1;
        n.f = v;
    }
    return n;
}

static struct lbw_num from_u64(uint64_t v)
{
    struct lbw_num n = {.i = (int64_t)(v > INT64_MAX ? INT64_MAX : v)};
    return n;
}

/* A count override (resources.cpu_count, gpu_count): int or float as
 * given. A value of the wrong type can only reach here in a table that was
 * not checked: the detected value is used, with a warning. */
static int count_override(const struct lbw_toml *cfg, enum lbw_cfg_key k, struct lbw_num *out)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    if (v && v->type == LBW_TOML_INT) {
        *out = (struct lbw_num){.i = v->u.i};
        return 1;
    }
    if (v && v->type == LBW_TOML_FLOAT) {
        *out = (struct lbw_num){.is_float = 1, .f = v->u.f};
        return 1;
    }
    if (lbw_cfg_is_set(cfg, k))
        LBW_WARN("config", "resources.%s must be a non-negative number; using the detected "
                           "value", lbw_cfg_keydef(k)->name);
    return 0;
}

/* A memory override: bytes (int) or a memory string. */
static int mem_override(const struct lbw_toml *cfg, enum lbw_cfg_key k, struct lbw_num *out)
{
    uint64_t b;
    if (lbw_cfg_memory(cfg, k, &b)) {
        *out = from_u64(b);
        return 1;
    }
    /* Upstream would send None here, which its scheduler cannot store. */
    if (lbw_cfg_is_set(cfg, k))
        LBW_WARN("config", "resources.%s is not bytes or a memory string like \"16G\" "
                           "(decimal units B K M G T P, upper case); using the detected value",
                 lbw_cfg_keydef(k)->name);
    return 0;
}

void lbw_advertise(const struct lbw_host *h, const struct lbw_toml *cfg,
                   struct lbw_advertised *a)
{
    memset(a, 0, sizeof(*a));
    struct lbw_resources *r = &a->res;
    r->hwid = h->hwid;
    if (count_override(cfg, LBW_CFG_CPU_COUNT, &r->cpu_count)) {
        snprintf(a->cpu_src, sizeof(a->cpu_src), "config resources.cpu_count");
    } else {
        r->cpu_count = from_double(h->cpu_count);
        snprintf(a->cpu_src, sizeof(a->cpu_src), "%s",
                 h->cpu_quota > 0 && h->cpu_quota < h->usable_count ? "cgroup CPU quota"
                                                                     : "usable CPUs");
    }
    if (mem_override(cfg, LBW_CFG_CPU_MEM, &r->cpu_mem)) {
        snprintf(a->mem_src, sizeof(a->mem_src), "config resources.cpu_mem");
    } else {
        r->cpu_mem = from_u64(h->mem_bytes);
        snprintf(a->mem_src, sizeof(a->mem_src), "%s",
                 h->mem_limit && h->mem_limit < h->mem_total ? "cgroup memory limit"
                                                             : "MemTotal");
    }
    if (count_override(cfg, LBW_CFG_GPU_COUNT, &r->gpu_count)) {
        snprintf(a->gpu_src, sizeof(a->gpu_src), "config resources.gpu_count");
    } else {
        r->gpu_count = (struct lbw_num){.i = h->ngpus};
        snprintf(a->gpu_src, sizeof(a->gpu_src), "detected GPUs");
    }
    if (mem_override(cfg, LBW_CFG_GPU_MEM, &r->gpu_mem)) {
        snprintf(a->gmem_src, sizeof(a->gmem_src), "config resources.gpu_mem");
    } else {
        r->gpu_mem = from_u64(h->gpu_mem_bytes);
        snprintf(a->gmem_src, sizeof(a->gmem_src), "detected GPU memory (sum)");
    }
    r->total_cpu_count = r->cpu_count;
    r->total_cpu_mem = r->cpu_mem;
    r->total_gpu_count = r->gpu_count;
    r->total_gpu_mem = r->gpu_mem;
}
