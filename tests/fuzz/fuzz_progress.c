/* fuzz_progress.c — progress regexes on payload output lines (the bytes a
 * payload prints) and on the pattern a job brings. The first byte picks
 * the mode: even, the rest is a line matched by a fixed set of str and
 * bytes regexes of every group shape (values checked against what the
 * regex can capture); odd, the rest is "PATTERN\nLINE" with the second
 * byte as the flags, compiled and matched both as str and bytes; plus
 * Python float() on the raw line, the same with surrounding blanks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *p;
    int is_bytes, flags;
    int kind; /* 0 any, 1 a non-negative integer, 2 finite, 3 switches itself off */
} fixed[] = {
    {"(\\d+)%", 0, 0, 1},
    {"(\\d+)%", 1, 0, 1},
    {"progress: (\\d+(?:\\.\\d+)?)/(\\d+(?:\\.\\d+)?)", 0, 2, 2},
    {".*?(?P<current>[0-9_]+) of (?P<total>[0-9_]+)", 1, 0, 0},
    {"\\s*ALF_PROGRESS\\s+(\\d+)%", 0, 256, 1},
    {"(?i)frame\\s+(\\S+)", 0, 0, 0},
    {"(?:(\\d+)|(\\w+))+:", 0, 0, 0},
    {"^\\w+:\\s*(.*)$", 1, 8 | 16, 0},
};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

static void check_float(const uint8_t *d, size_t n)
{
    double a, b;
    if (n > 190)
        return;
    int ra = lbw_py_float((const char *)d, n, &a);
    char buf[200];
    buf[0] = ' ';
    memcpy(buf + 1, d, n);
    buf[n + 1] = '\t';
    int rb = lbw_py_float(buf, n + 2, &b);
    if (ra != rb || (ra == 0 && !(a == b || (isnan(a) && isnan(b)))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[300];
    double v;
    if (size < 1)
        return 0;
    int mode = data[0] & 1;
    data++;
    size--;
    check_float(data, size);
    if (mode == 0) {
        static struct lbw_progress_re *re[NFIXED]; /* compiled once */
        for (size_t i = 0; i < NFIXED; i++) {
            if (!re[i])
                re[i] = lbw_progress_compile(fixed[i].p, strlen(fixed[i].p), fixed[i].is_bytes,
                                             fixed[i].flags, err, sizeof(err));
            if (!re[i])
                abort();
            int r = lbw_progress_line(re[i], data, size, &v);
            if (r < 0 || r > 1 || !lbw_progress_active(re[i]))
                abort(); /* every one has groups */
            if (r == 1 && fixed[i].kind == 1 && !(v >= 0 && v == floor(v)))
                abort();
            if (r == 1 && fixed[i].kind == 2 && isnan(v))
                abort(); /* digits only: a number, never NaN */
        }
        struct lbw_progress_re *off =
            lbw_progress_compile("\\d+%", 4, 0, 0, err, sizeof(err)); /* no group */
        if (!off)
            abort();
        int r = lbw_progress_line(off, data, size, &v);
        if (r == 1 || (r == -1) == lbw_progress_active(off))
            abort();
        if (r == -1 && lbw_progress_line(off, data, size, &v) != 0)
            abort(); /* switched off for good */
        lbw_progress_free(off);
        return 0;
    }
    if (size < 1 || size > 4096)
        return 0;
    int64_t flags = data[0] & (2 | 8 | 16 | 64);
    if (data[0] & 1)
        flags |= 256;
    data++;
    size--;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : size;
    const uint8_t *line = nl ? nl + 1 : data;
    size_t llen = nl ? size - plen - 1 : size;
    if (plen > 256)
        return 0; /* the job's pattern is short; PCRE2 bounds the match itself */
    for (int is_bytes = 0; is_bytes < 2; is_bytes++) {
        struct lbw_progress_re *re =
            lbw_progress_compile((const char *)data, plen, is_bytes, flags, err, sizeof(err));
        if (!re) {
            if (!err[0])
                abort();
            continue;
        }
        for (int k = 0; k < 2; k++) {
            int r = lbw_progress_line(re, line, llen, &v);
            if (r < -1 || r > 1)
                abort();
        }
        lbw_progress_free(re);
    }
    return 0;
}
