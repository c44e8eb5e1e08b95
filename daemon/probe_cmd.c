/* probe_cmd.c — see probe_cmd.h. */
#include "probe_cmd.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "contain.h"
#include "worker_main.h"
#include "json.h"
#include "probe.h"
#include "resources.h"

static void num_json(struct lbw_jw *w, const struct lbw_num *n)
{
    if (n->is_float)
        lbw_jw_double(w, n->f);
    else
        lbw_jw_i64(w, n->i);
}

static void num_text(const struct lbw_num *n, char *out, size_t cap)
{
    if (n->is_float)
        lbw_json_fmt_double(n->f, out, cap);
    else
        snprintf(out, cap, "%lld", (long long)n->i);
}

static void print_json(const struct lbw_host *h, const struct lbw_advertised *a,
                       const struct lbw_contain *ct)
{
    struct lbw_jw w;
    char b[8192];
    lbw_jw_init(&w);
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "hwid");
    lbw_jw_u64(&w, a->res.hwid);
    lbw_jw_key(&w, "hwid_source");
    lbw_jw_cstr(&w, h->hwid_source);
    lbw_jw_key(&w, "advertised");
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "cpu_count");
    num_json(&w, &a->res.cpu_count);
    lbw_jw_key(&w, "cpu_mem");
    num_json(&w, &a->res.cpu_mem);
    lbw_jw_key(&w, "gpu_count");
    num_json(&w, &a->res.gpu_count);
    lbw_jw_key(&w, "gpu_mem");
    num_json(&w, &a->res.gpu_mem);
    lbw_jw_obj_end(&w);
    lbw_jw_key(&w, "sources");
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "cpu_count");
    lbw_jw_cstr(&w, a->cpu_src);
    lbw_jw_key(&w, "cpu_mem");
    lbw_jw_cstr(&w, a->mem_src);
    lbw_jw_key(&w, "gpu_count");
    lbw_jw_cstr(&w, a->gpu_src);
    lbw_jw_key(&w, "gpu_mem");
    lbw_jw_cstr(&w, a->gmem_src);
    lbw_jw_obj_end(&w);
    lbw_jw_key(&w, "cpu");
    lbw_jw_obj(&w);
    lbw_cpuset_format(&h->online, b, sizeof(b));
    lbw_jw_key(&w, "online");
    lbw_jw_cstr(&w, b);
    lbw_cpuset_format(&h->affinity, b, sizeof(b));
    lbw_jw_key(&w, "affinity");
    lbw_jw_cstr(&w, b);
    lbw_jw_key(&w, "cgroup_cpuset");
    if (h->has_cgroup_cpuset) {
        lbw_cpuset_format(&h->cgroup_cpuset, b, sizeof(b));
        lbw_jw_cstr(&w, b);
    } else {
        lbw_jw_null(&w);
    }
    lbw_cpuset_format(&h->usable, b, sizeof(b));
    lbw_jw_key(&w, "usable");
    lbw_jw_cstr(&w, b);
    lbw_jw_key(&w, "usable_count");
    lbw_jw_u64(&w, h->usable_count);
    lbw_jw_key(&w, "quota");
    if (h->cpu_quota > 0)
        lbw_jw_double(&w, h->cpu_quota);
    else
        lbw_jw_null(&w);
    lbw_jw_key(&w, "quota_source");
    lbw_jw_cstr(&w, h->cpu_quota_source);
    lbw_jw_key(&w, "physical_cores");
    lbw_jw_u64(&w, h->physical_cores);
    lbw_jw_key(&w, "performance_cores");
    lbw_jw_u64(&w, h->perf_cores);
    lbw_jw_key(&w, "efficiency_cores");
    lbw_jw_u64(&w, h->eff_cores);
    lbw_jw_obj_end(&w);
    lbw_jw_key(&w, "memory");
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "mem_total");
    lbw_jw_u64(&w, h->mem_total);
    lbw_jw_key(&w, "cgroup_limit");
    if (h->mem_limit)
        lbw_jw_u64(&w, h->mem_limit);
    else
        lbw_jw_null(&w);
    lbw_jw_key(&w, "cgroup_limit_source");
    lbw_jw_cstr(&w, h->mem_limit_source);
    lbw_jw_key(&w, "usable");
    lbw_jw_u64(&w, h->mem_bytes);
    lbw_jw_obj_end(&w);
    lbw_jw_key(&w, "cgroup_mode");
    lbw_jw_cstr(&w, h->cgroup_mode);
    /* what the worker would choose (contain.h), as planned without writing */
    lbw_jw_key(&w, "containment");
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "mode");
    lbw_jw_cstr(&w, lbw_contain_mode_name(ct->mode));
    lbw_jw_key(&w, "why");
    if (ct->mode == LBW_CONTAIN_OFF)
        lbw_jw_cstr(&w, ct->why);
    else
        lbw_jw_null(&w);
    lbw_jw_key(&w, "v2");
    if (ct->v2[0])
        lbw_jw_cstr(&w, ct->v2);
    else
        lbw_jw_null(&w);
    static const char *const v1n[LBW_V1_N] = {"memory", "cpuset", "pids", "freezer"};
    lbw_jw_key(&w, "v1");
    lbw_jw_obj(&w);
    for (int i = 0; i < LBW_V1_N; i++) {
        if (!ct->v1[i][0])
            continue;
        lbw_jw_key(&w, v1n[i]);
        lbw_jw_cstr(&w, ct->v1[i]);
    }
    lbw_jw_obj_end(&w);
    lbw_jw_key(&w, "slow_joins"); /* v1 joins without favordynmods */
    lbw_jw_bool(&w, ct->mode != LBW_CONTAIN_OFF && ct->slow_joins);
    lbw_jw_obj_end(&w);
    lbw_jw_key(&w, "numa");
    lbw_jw_arr(&w);
    for (int i = 0; i < h->nnodes; i++) {
        const struct lbw_numa_node *n = &h->nodes[i];
        lbw_jw_obj(&w);
        lbw_jw_key(&w, "node");
        lbw_jw_i64(&w, n->id);
        lbw_cpuset_format(&n->cpus, b, sizeof(b));
        lbw_jw_key(&w, "cpus");
        lbw_jw_cstr(&w, b);
        lbw_jw_key(&w, "mem_bytes");
        lbw_jw_u64(&w, n->mem_bytes);
        lbw_jw_key(&w, "distances");
        lbw_jw_arr(&w);
        for (int k = 0; k < n->ndist; k++)
            lbw_jw_i64(&w, n->distance[k]);
        lbw_jw_arr_end(&w);
        lbw_jw_obj_end(&w);
    }
    lbw_jw_arr_end(&w);
    lbw_jw_key(&w, "gpus");
    lbw_jw_arr(&w);
    for (int i = 0; i < h->ngpus; i++) {
        const struct lbw_gpu *g = &h->gpus[i];
        lbw_jw_obj(&w);
        lbw_jw_key(&w, "vendor");
        lbw_jw_cstr(&w, g->vendor == LBW_GPU_NVIDIA ? "nvidia" : g->vendor == LBW_GPU_AMD ? "amd"
                                                                                    : "intel");
        lbw_jw_key(&w, "name");
        lbw_jw_cstr(&w, g->name);
        lbw_jw_key(&w, "uuid");
        lbw_jw_cstr(&w, g->uuid);
        lbw_jw_key(&w, "pci_bus_id");
        lbw_jw_cstr(&w, g->pci_bus_id);
        lbw_jw_key(&w, "mem_bytes");
        lbw_jw_u64(&w, g->mem_bytes);
        lbw_jw_key(&w, "numa_node");
        lbw_jw_i64(&w, g->numa_node);
        lbw_jw_key(&w, "source");
        lbw_jw_cstr(&w, g->source);
        lbw_jw_obj_end(&w);
    }
    lbw_jw_arr_end(&w);
    lbw_jw_key(&w, "gpu_note");
    lbw_jw_cstr(&w, h->gpu_note);
    lbw_jw_obj_end(&w);
    size_t l;
    char *s = lbw_jw_take(&w, &l);
    if (s) {
        fwrite(s, 1, l, stdout);
        putchar('\n');
        free(s);
    }
}

static void print_table(const struct lbw_host *h, const struct lbw_advertised *a,
                        const struct lbw_contain *ct)
{
    char on[4096], af[4096], cs[4096], us[4096], v[64];
    lbw_cpuset_format(&h->online, on, sizeof(on));
    lbw_cpuset_format(&h->affinity, af, sizeof(af));
    lbw_cpuset_format(&h->cgroup_cpuset, cs, sizeof(cs));
    lbw_cpuset_format(&h->usable, us, sizeof(us));
    printf("hwid:     %llu (%s)\n", (unsigned long long)h->hwid, h->hwid_source);
    printf("cgroups:  %s\n", h->cgroup_mode);
    char cd[3 * PATH_MAX];
    lbw_contain_describe(ct, cd, sizeof(cd));
    printf("contain:  %s\n", cd);
    if (ct->mode != LBW_CONTAIN_OFF && ct->slow_joins)
        printf("          payloads join v1 cgroups; no hierarchy is mounted with favordynmods, "
               "so each join may wait for an RCU grace period (DEPLOYING.md)\n");
    printf("cpus:     %u usable (online %s, affinity %s, cgroup cpuset %s", h->usable_count, on,
           af, h->has_cgroup_cpuset ? cs : "none");
    if (h->cpu_quota > 0)
        printf(", cgroup quota %g from %s", h->cpu_quota, h->cpu_quota_source);
    else
        printf(", cgroup quota none");
    printf(")\n          %u physical cores", h->physical_cores);
    if (h->perf_cores || h->eff_cores)
        printf(", %u performance + %u efficiency", h->perf_cores, h->eff_cores);
    printf("\n");
    printf("memory:   %llu bytes usable (MemTotal %llu", (unsigned long long)h->mem_bytes,
           (unsigned long long)h->mem_total);
    if (h->mem_limit)
        printf(", cgroup limit %llu from %s", (unsigned long long)h->mem_limit,
               h->mem_limit_source);
    else
        printf(", cgroup limit none");
    printf(")\n");
    if (h->nnodes == 0)
        printf("numa:     no NUMA information\n");
    for (int i = 0; i < h->nnodes; i++) {
        lbw_cpuset_format(&h->nodes[i].cpus, on, sizeof(on));
        printf("numa:     node %d: cpus %s, %llu bytes\n", h->nodes[i].id, on,
               (unsigned long long)h->nodes[i].mem_bytes);
    }
    if (h->ngpus == 0)
        printf("gpus:     none\n");
    for (int i = 0; i < h->ngpus; i++) {
        const struct lbw_gpu *g = &h->gpus[i];
        printf("gpu %d:    %s, %llu bytes, %s%s%s, numa node %d (%s)\n", i, g->name,
               (unsigned long long)g->mem_bytes, g->pci_bus_id, g->uuid[0] ? ", " : "", g->uuid,
               g->numa_node, g->source);
    }
    if (h->gpu_note[0])
        printf("          note: %s\n", h->gpu_note);
    printf("\nadvertised in worker.hello (totals equal):\n");
    num_text(&a->res.cpu_count, v, sizeof(v));
    printf("  cpu_count %-16s from %s\n", v, a->cpu_src);
    num_text(&a->res.cpu_mem, v, sizeof(v));
    printf("  cpu_mem   %-16s from %s\n", v, a->mem_src);
    num_text(&a->res.gpu_count, v, sizeof(v));
    printf("  gpu_count %-16s from %s\n", v, a->gpu_src);
    num_text(&a->res.gpu_mem, v, sizeof(v));
    printf("  gpu_mem   %-16s from %s\n", v, a->gmem_src);
}

int lbw_cmd_probe(int argc, char **argv)
{
    int json = 0;
    struct lbw_probe_opts o = {.root = "/"};
    static const struct option lo[] = {{"json", 0, NULL, 'j'},
                                       {"root", 1, NULL, 'r'},
                                       {"nvml-library", 1, NULL, 'n'},
                                       {"help", 0, NULL, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0; /* our own one-line messages */
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'r': o.root = optarg; break;
        case 'n': o.nvml_library = optarg; break;
        case 'h':
            printf("Usage: lifeblood-worker probe [--json] [--root DIR] [--nvml-library PATH]\n"
                   "  Detect this host's CPUs, memory, NUMA nodes and GPUs, and print them with\n"
                   "  their sources and what worker.hello would advertise (after the config's\n"
                   "  [resources] overrides), and where a worker started now would put its\n"
                   "  invocation cgroups (containment: delegated, root, or off and why).\n"
                   "  --json               one JSON object instead of the table\n"
                   "  --root DIR           read /proc, /sys and /etc under DIR (fixture trees)\n"
                   "  --nvml-library PATH  NVML library to load (default libnvidia-ml.so.1;\n"
                   "                       \"\" disables NVML)\n");
            return 0;
        case ':':
            fprintf(stderr, "lifeblood-worker probe: %s needs a value; see 'lifeblood-worker "
                            "probe --help'\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "lifeblood-worker probe: unknown option %s; see 'lifeblood-worker "
                            "probe --help'\n", optopt ? (char[]){'-', (char)optopt, 0}
                                                     : argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lifeblood-worker probe: unexpected argument '%s'; see "
                        "'lifeblood-worker probe --help'\n", argv[optind]);
        return 2;
    }
    /* the configuration the worker would use, checked as it would be */
    struct lbw_toml *cfg = NULL;
    char dir[PATH_MAX], why[512];
    if (lbw_config_dir("worker", dir, sizeof(dir)) == 0 && lbw_config_home_ok(why, sizeof(why)) == 0) {
        struct lbw_cfg_diag d = {0};
        cfg = lbw_config_load_checked(dir, lbw_cfg_worker_schema(), &d);
        lbw_cfg_diag_log(&d);
        int errors = d.errors;
        lbw_cfg_diag_free(&d);
        if (errors) {
            fprintf(stderr, "lifeblood-worker probe: the configuration in %s has errors (above); "
                            "see 'lifeblood-worker config check'\n", dir);
            lbw_toml_free(cfg);
            return 2;
        }
    }
    struct lbw_host *h = malloc(sizeof(*h));
    if (!h) {
        lbw_toml_free(cfg);
        return 1;
    }
    lbw_probe_host(&o, h);
    struct lbw_advertised a;
    lbw_advertise(h, cfg, &a);
    struct lbw_contain *ct = malloc(sizeof(*ct));
    if (ct) {
        struct lbw_contain_cfg cc;
        lbw_contain_cfg_read(cfg, &cc);
        lbw_contain_plan(o.root, &cc, ct);
    }
    lbw_toml_free(cfg);
    if (!ct) {
        free(h);
        return 1;
    }
    if (json)
        print_json(h, &a, ct);
    else
        print_table(h, &a, ct);
    free(ct);
    free(h);
    return 0;
}
