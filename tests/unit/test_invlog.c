/* test_invlog.c — invocation logs: exact layout, stderr in both files,
 * binary and 1 MiB lines, kill trailer, progress across read boundaries,
 * removal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "invlog.h"
#include "suites.h"

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void test_layout(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    char root[] = "/tmp/lbw-invlog-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(root) != NULL);
    struct lbw_invlog l;
    char err[300];
    time_t t0 = 1700780249; /* 2023-11-23 22:57:29 UTC */
    CU_ASSERT_FATAL(lbw_invlog_open(&l, root, 3120782536696014165ull, 1, t0, err, sizeof(err)) == 0);
    char want_dir[512];
    snprintf(want_dir, sizeof(want_dir), "%s/db_2b4f3f2eb9022555/invocations/1", root);
    CU_ASSERT_STRING_EQUAL(l.dir, want_dir);
    char e2[200];
    struct lbw_progress_re *re = lbw_progress_compile("ALF_PROGRESS\\s+(\\d+)%", 21, 1, 0, e2, sizeof(e2));
    lbw_invlog_set_progress(&l, re, NULL);
    double v;
    CU_ASSERT(lbw_invlog_progress(&l, &v) == 0);
    CU_ASSERT(lbw_invlog_feed(&l, 0, (const uint8_t *)"ALF_PROGRESS 1", 14, t0) == 0);
    CU_ASSERT(lbw_invlog_progress(&l, &v) == 0); /* line not complete yet */
    CU_ASSERT(lbw_invlog_feed(&l, 0, (const uint8_t *)"0%\nhello\n", 9, t0 + 2) == 0);
    CU_ASSERT(lbw_invlog_progress(&l, &v) == 1 && v == 10);
    CU_ASSERT(lbw_invlog_feed(&l, 1, (const uint8_t *)"a warning line\n", 15, t0 + 2) == 0);
    CU_ASSERT(lbw_invlog_feed(&l, 0, (const uint8_t *)"bin\0\xff\n" "tail", 10, t0 + 3) == 0);
    CU_ASSERT(lbw_invlog_finish(&l, 0, t0 + 15) == 0);
    size_t n;
    char *out = slurp(l.dir, "output", &n);
    static const char want[] = "[SYS][23.11.23 22:57:29] task initialized\n"
                               "[OUT][22:57:29] ALF_PROGRESS 10%\n"
                               "[OUT][22:57:31] hello\n"
                               "[ERR][22:57:31] a warning line\n"
                               "[OUT][22:57:32] bin\0\xff\n"
                               "[OUT][22:57:32] tail"
                               "[SYS][23.11.23 22:57:44] task finished\n";
    CU_ASSERT(n == sizeof(want) - 1 && !memcmp(out, want, n));
    free(out);
    char *er = slurp(l.dir, "error", &n);
    CU_ASSERT_STRING_EQUAL(er, "[ERR][22:57:31] a warning line\n");
    free(er);
    lbw_invlog_close(&l);
    CU_ASSERT(lbw_invlog_remove(&l) == 0);
    struct stat st;
    CU_ASSERT(stat(want_dir, &st) < 0);
    lbw_progress_free(re);
    /* a killed invocation */
    CU_ASSERT_FATAL(lbw_invlog_open(&l, root, 1, 2, t0, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_invlog_feed(&l, 0, (const uint8_t *)"sleeping long\n", 14, t0) == 0);
    CU_ASSERT(lbw_invlog_finish(&l, 1, t0 + 2) == 0);
    out = slurp(l.dir, "output", &n);
    CU_ASSERT_STRING_EQUAL(out, "[SYS][23.11.23 22:57:29] task initialized\n[OUT][22:57:29] sleeping long\n"
                                "\n[WORKER][23.11.23 22:57:31] killed by worker.\n");
    free(out);
    er = slurp(l.dir, "error", &n);
    CU_ASSERT_STRING_EQUAL(er, "\n[WORKER][23.11.23 22:57:31] killed by worker.\n");
    free(er);
    lbw_invlog_close(&l);
    lbw_invlog_remove(&l);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CU_ASSERT(system(cmd) == 0);
}

static void test_long_lines(void)
{
    char root[] = "/tmp/lbw-invlog-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(root) != NULL);
    struct lbw_invlog l;
    char err[300];
    CU_ASSERT_FATAL(lbw_invlog_open(&l, root, 7, 9, 0, err, sizeof(err)) == 0);
    /* a 3 MiB line of varied bytes in odd-sized reads: one prefix, bytes intact */
    size_t big = 3u << 20;
    uint8_t *b = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        b[i] = (uint8_t)((i * 7 + 1) % 255 + 1) == '\n' ? 'x' : (uint8_t)((i * 7 + 1) % 255 + 1);
    b[big] = '\n';
    for (size_t off = 0; off < big + 1;) {
        size_t k = big + 1 - off < 77777 ? big + 1 - off : 77777;
        CU_ASSERT_FATAL(lbw_invlog_feed(&l, 0, b + off, k, 0) == 0);
        off += k;
    }
    lbw_invlog_close(&l);
    size_t n;
    char *out = slurp(l.dir, "output", &n);
    const char *first = strchr(out, '\n') + 1; /* after "task initialized" */
    CU_ASSERT(!strncmp(first, "[OUT][", 6));
    size_t pre = (size_t)(first - out) + 16;
    CU_ASSERT(n == pre + big + 1 && !memcmp(out + pre, b, big + 1));
    free(out);
    free(b);
    lbw_invlog_remove(&l);
    rmdir(root);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CU_ASSERT(system(cmd) == 0);
}

/* The spare directory: renamed into place with its files, header written;
 * refused names fall back to the plain open; a spare of another database is
 * dropped; a dead worker's spare is removed. */
static void test_spare(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    char root[] = "/tmp/lbw-invlog-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(root) != NULL);
    char err[300], p[4200];
    time_t t0 = 1700780249;
    /* a dead worker's spare: the pid of a child already reaped */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(p, sizeof(p), "%s/db_0000000000000007/invocations/.next-%d-0", root, (int)dead);
    char mk[8500];
    snprintf(mk, sizeof(mk), "mkdir -p '%s' && touch '%s/output'", p, p);
    CU_ASSERT_FATAL(system(mk) == 0);
    struct lbw_invlog_spare sp;
    memset(&sp, 0, sizeof(sp));
    CU_ASSERT_FATAL(lbw_invlog_spare_make(&sp, root, 7) == 0);
    struct stat st;
    CU_ASSERT(stat(p, &st) < 0); /* the dead one's is gone */
    snprintf(p, sizeof(p), "%s/db_0000000000000007/invocations/.next-%d-", root, (int)getpid());
    CU_ASSERT(!strncmp(sp.dir, p, strlen(p)));
    snprintf(p, sizeof(p), "%s", sp.dir);
    CU_ASSERT(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
    CU_ASSERT(lbw_invlog_spare_make(&sp, root, 7) == 0); /* one is there: nothing done */
    struct lbw_invlog l;
    CU_ASSERT_FATAL(lbw_invlog_open_spare(&l, &sp, root, 7, 42, t0, err, sizeof(err)) == 0);
    CU_ASSERT(sp.dir[0] == 0);
    CU_ASSERT(stat(p, &st) < 0); /* renamed */
    char want[600];
    snprintf(want, sizeof(want), "%s/db_0000000000000007/invocations/42", root);
    CU_ASSERT_STRING_EQUAL(l.dir, want);
    CU_ASSERT(lbw_invlog_feed(&l, 1, (const uint8_t *)"e\n", 2, t0) == 0);
    size_t n;
    char *out = slurp(l.dir, "output", &n);
    CU_ASSERT_STRING_EQUAL(out, "[SYS][23.11.23 22:57:29] task initialized\n[ERR][22:57:29] e\n");
    free(out);
    char *er = slurp(l.dir, "error", &n);
    CU_ASSERT_STRING_EQUAL(er, "[ERR][22:57:29] e\n");
    free(er);
    lbw_invlog_close(&l);
    /* the name is taken by a directory with files: the plain open, the
     * spare stays for the next one */
    CU_ASSERT_FATAL(lbw_invlog_spare_make(&sp, root, 7) == 0);
    CU_ASSERT_FATAL(lbw_invlog_open_spare(&l, &sp, root, 7, 42, t0 + 1, err, sizeof(err)) == 0);
    CU_ASSERT(sp.dir[0] != 0);
    out = slurp(l.dir, "output", &n); /* truncated, as the plain open does */
    CU_ASSERT_STRING_EQUAL(out, "[SYS][23.11.23 22:57:30] task initialized\n");
    free(out);
    lbw_invlog_close(&l);
    /* another scheduler database: the spare is dropped, the open works */
    char old[4096];
    snprintf(old, sizeof(old), "%s", sp.dir);
    CU_ASSERT_FATAL(lbw_invlog_open_spare(&l, &sp, root, 8, 1, t0, err, sizeof(err)) == 0);
    CU_ASSERT(sp.dir[0] == 0 && stat(old, &st) < 0);
    snprintf(want, sizeof(want), "%s/db_0000000000000008/invocations/1", root);
    CU_ASSERT_STRING_EQUAL(l.dir, want);
    lbw_invlog_close(&l);
    /* no spare: the plain open */
    CU_ASSERT(lbw_invlog_open_spare(&l, NULL, root, 8, 2, t0, err, sizeof(err)) == 0);
    lbw_invlog_close(&l);
    /* dropping removes it */
    CU_ASSERT_FATAL(lbw_invlog_spare_make(&sp, root, 8) == 0);
    snprintf(old, sizeof(old), "%s", sp.dir);
    lbw_invlog_spare_drop(&sp);
    CU_ASSERT(sp.dir[0] == 0 && stat(old, &st) < 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CU_ASSERT(system(cmd) == 0);
}

static const struct lbw_test tests[] = {
    {"a spare directory made ahead, renamed into place", test_spare},
    {"upstream layout, stderr in both, progress across reads, kill", test_layout},
    {"a 3 MiB line in odd-sized reads", test_long_lines},
    {NULL, NULL},
};

static int register_invlog_suites(void) { return lbw_add_suite("invlog", NULL, NULL, tests); }

LBW_TEST_SUITES(register_invlog_suites)
