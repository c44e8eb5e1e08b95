/* sysfs.c — reading /proc and /sys through a root prefix, and CPU lists.
 * Locating cgroups is kernel-iface/cgroup.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
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
    return lbw_cg_read(root, path, NULL, buf, cap);
}
