/* probe.c (bench) — time of one full host probe (CPUs, memory, NUMA, GPUs,
 * hwid), in process: median and p99 of N runs. NVML is not loaded unless
 * --nvml-library is given (a missing library would only add dlopen's
 * failed search).
 * Usage: probe [--runs N] [--nvml-library PATH] [--json FILE] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "probe.h"
#include "reactor.h"

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = 1000;
    const char *json = NULL;
    struct lbw_probe_opts o = {.root = "/", .nvml_library = ""};
    static const struct option lo[] = {{"runs", 1, NULL, 'n'}, {"nvml-library", 1, NULL, 'l'},
                                       {"json", 1, NULL, 'j'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'n')
            runs = atoi(optarg);
        else if (c == 'l')
            o.nvml_library = optarg;
        else if (c == 'j')
            json = optarg;
        else
            return 2;
    }
    if (runs < 1)
        return 2;
    uint64_t *t = malloc(sizeof(*t) * (size_t)runs);
    struct lbw_host *h = malloc(sizeof(*h));
    for (int i = 0; i < runs; i++) {
        uint64_t t0 = lbw_now_ns();
        lbw_probe_host(&o, h);
        t[i] = lbw_now_ns() - t0;
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp);
    double med = (double)t[runs / 2] / 1000.0, p99 = (double)t[(size_t)runs * 99 / 100] / 1000.0;
    printf("full host probe (%u CPUs, %d NUMA nodes, %d GPUs): median %.1f us, p99 %.1f us "
           "over %d runs\n", h->usable_count, h->nnodes, h->ngpus, med, p99, runs);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"benchmark\":\"probe\",\"runs\":%d,\"median_us\":%.1f,\"p99_us\":%.1f}\n",
                    runs, med, p99);
            fclose(f);
        }
    }
    free(t);
    free(h);
    return 0;
}
