/* codec.c — codec throughput: decode and encode of a pickle (default
 * tests/fixtures/pickles/invocationjob_full.pickle) in ops/s, and the
 * streaming JSON string writer over a large log file (two passes: escaped
 * length, then escaping into a sink) in MB/s with the process's peak RSS.
 * Usage: codec [--pickle FILE] [--seconds S] [--log-mib N] [--json FILE] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "json.h"
#include "pickle.h"
#include "reactor.h"

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)l);
    if (b && fread(b, 1, (size_t)l, f) != (size_t)l) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)l;
    return b;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    const char *pk = "tests/fixtures/pickles/invocationjob_full.pickle", *json = NULL;
    double seconds = 1.0;
    long log_mib = 1024;
    static const struct option lo[] = {{"pickle", 1, NULL, 'p'}, {"seconds", 1, NULL, 's'},
                                       {"log-mib", 1, NULL, 'l'}, {"json", 1, NULL, 'j'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'p')
            pk = optarg;
        else if (c == 's')
            seconds = atof(optarg);
        else if (c == 'l')
            log_mib = atol(optarg);
        else if (c == 'j')
            json = optarg;
        else
            return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t n;
    uint8_t *buf = slurp(pk, &n);
    if (!buf) {
        fprintf(stderr, "codec: cannot read %s: %s\n", pk, strerror(errno));
        return 1;
    }
    char err[300];
    /* decode */
    uint64_t ops = 0, t0 = lbw_now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t1;
    do {
        for (int i = 0; i < 100; i++) {
            struct lbw_pk_doc d;
            if (lbw_pk_decode(&d, buf, n, NULL, err, sizeof(err)) < 0) {
                fprintf(stderr, "codec: %s\n", err);
                return 1;
            }
            lbw_pk_doc_free(&d);
        }
        ops += 100;
    } while ((t1 = lbw_now_ns()) < end);
    double dec = (double)ops / ((double)(t1 - t0) / 1e9);
    /* encode */
    struct lbw_pk_doc d;
    lbw_pk_decode(&d, buf, n, NULL, err, sizeof(err));
    ops = 0;
    t0 = lbw_now_ns();
    end = t0 + (uint64_t)(seconds * 1e9);
    size_t el = 0;
    do {
        for (int i = 0; i < 100; i++) {
            uint8_t *out;
            if (lbw_pk_encode(&d, d.root, &out, &el, err, sizeof(err)) < 0)
                return 1;
            free(out);
        }
        ops += 100;
    } while ((t1 = lbw_now_ns()) < end);
    double enc = (double)ops / ((double)(t1 - t0) / 1e9);
    lbw_pk_doc_free(&d);
    printf("pickle %s (%zu bytes): decode %.0f ops/s (%.1f MB/s), encode %.0f ops/s\n", pk, n,
           dec, dec * (double)n / 1e6, enc);

    /* streaming JSON writer over a log of 100-byte lines */
    char path[] = "/tmp/lbw-bench-log-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    unlink(path);
    char line[101];
    size_t chunk = 1 << 20;
    char *blk = malloc(chunk);
    for (size_t i = 0; i < chunk / 100; i++) {
        snprintf(line, sizeof(line), "[OUT][12:00:%02zu] frame %06zu rendered \xe2\x9c\x93 \"ok\" "
                 "tile=%04zu/%04zu samples=64 time=0.%03zus                ", i % 60, i, i % 9999,
                 (size_t)9999, i % 1000);
        memcpy(line + 99, "\n", 1);
        memcpy(blk + i * 100, line, 100);
    }
    memset(blk + (chunk / 100) * 100, '.', chunk % 100);
    for (long i = 0; i < log_mib; i++)
        if (write(fd, blk, chunk) != (ssize_t)chunk)
            return 1;
    uint64_t total = (uint64_t)log_mib * chunk;
    long rss_before = peak_rss_kib();
    t0 = lbw_now_ns();
    uint64_t esc_len;
    if (lbw_jesc_fd_len(fd, &esc_len) < 0)
        return 1;
    int sink = open("/dev/null", O_WRONLY);
    char *out = malloc(LBW_JESC_OUT_MAX(65536));
    uint8_t *in = malloc(65536);
    struct lbw_jesc e = {0};
    uint64_t off = 0, written = 0;
    for (;;) {
        ssize_t r = pread(fd, in, 65536, (off_t)off);
        if (r < 0)
            return 1;
        size_t o = lbw_jesc_feed(&e, in, (size_t)r, r == 0, out);
        if (o && write(sink, out, o) < 0)
            return 1;
        written += o;
        if (r == 0)
            break;
        off += (uint64_t)r;
    }
    t1 = lbw_now_ns();
    double mbs = (double)total / 1e6 / ((double)(t1 - t0) / 1e9);
    long rss = peak_rss_kib();
    printf("streaming JSON writer: %ld MiB log -> %llu escaped bytes (length pass + escape pass) "
           "%.0f MB/s; peak RSS %.1f MiB (%.1f MiB before)\n",
           log_mib, (unsigned long long)written, mbs, rss / 1024.0, rss_before / 1024.0);
    if (written != esc_len) {
        fprintf(stderr, "codec: length pass %llu != escape pass %llu\n",
                (unsigned long long)esc_len, (unsigned long long)written);
        return 1;
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"benchmark\":\"codec\",\"pickle_bytes\":%zu,\"decode_ops_per_s\":%.0f,"
                       "\"encode_ops_per_s\":%.0f,\"log_mib\":%ld,\"stream_json_mb_per_s\":%.0f,"
                       "\"peak_rss_mib\":%.1f}\n",
                    n, dec, enc, log_mib, mbs, rss / 1024.0);
            fclose(f);
        }
    }
    close(fd);
    close(sink);
    free(blk);
    free(out);
    free(in);
    free(buf);
    return 0;
}
