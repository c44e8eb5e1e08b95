/* test_run_prep.c — what lbw_run_start takes from the worker's struct
 * lbw_run_prep: the log directory and the output pipes made ahead (and
 * made again for the next one), the progress regex reused by the next job
 * with the same one; nothing of it left after lbw_run_prep_free. Both
 * reactor backends. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "invocation.h"
#include "run.h"
#include "suites.h"

struct ended {
    int done;
    struct lbw_run *run;
};

static void on_end(void *ctx, struct lbw_run *run)
{
    struct ended *e = ctx;
    e->run = run;
    e->done = 1;
}

/* Entries of dir whose name starts with prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

/* Runs the job to its end; returns the output log's text (malloc'd). */
static char *run_once(const struct lbw_run_opts *o, struct ended *e, struct lbw_inv *job)
{
    struct lbw_run *run = NULL;
    const char *cls;
    char msg[512];
    e->done = 0;
    CU_ASSERT_FATAL(lbw_run_start(o, job, &run, &cls, msg, sizeof(msg)) == 0);
    lbw_test_run_until(o->r, &e->done, 20);
    CU_ASSERT_FATAL(e->done && e->run == run);
    int ofd, efd;
    char *text = calloc(1, 4096);
    if (lbw_run_open_logs(run, &ofd, &efd) == 0) {
        ssize_t n = read(ofd, text, 4095);
        text[n > 0 ? n : 0] = 0;
    }
    close(ofd);
    close(efd);
    lbw_run_free(run, 1);
    return text;
}

static void test_made_ahead(void)
{
    char root[] = "/tmp/lbw-runprep-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(root) != NULL);
    size_t n;
    uint8_t *b = fx_read("pickles/invocationjob_minimal_finished.pickle", &n);
    struct lbw_inv job;
    char err[200];
    CU_ASSERT_FATAL(b && lbw_inv_load(&job, b, n, err, sizeof(err)) == 0); /* echo hello */
    free(b);
    lbw_reactor *r = lbw_test_reactor();
    struct lbw_run_prep prep;
    memset(&prep, 0, sizeof(prep));
    char *environ_[] = {"PATH=/usr/bin:/bin", NULL};
    struct ended e = {0};
    struct lbw_run_opts o = {.r = r, .log_root = root, .db_uid = 7, .worker_environ = environ_,
                             .prep = &prep, .on_end = on_end, .ctx = &e};
    lbw_run_prepare(&prep, root, 7);
    char first[4096];
    snprintf(first, sizeof(first), "%s", prep.log.dir);
    CU_ASSERT(first[0] != 0 && prep.have_pipes && prep.buf[0] && prep.buf[1]);
    char *out = run_once(&o, &e, &job);
    CU_ASSERT(strstr(out, "task initialized\n") && strstr(out, "] hello\n"));
    free(out);
    /* the spare became invocation 12 and a new one was made after the spawn */
    struct stat st;
    CU_ASSERT(stat(first, &st) < 0);
    CU_ASSERT(prep.log.dir[0] != 0 && strcmp(prep.log.dir, first) != 0);
    CU_ASSERT(prep.have_pipes && prep.buf[0] && prep.buf[1]);
    /* the job's stdout regex is kept; the next job with it reuses it */
    struct lbw_progress_re *kept = prep.re[0].re;
    CU_ASSERT(kept != NULL);
    out = run_once(&o, &e, &job);
    CU_ASSERT(strstr(out, "] hello\n") != NULL);
    free(out);
    CU_ASSERT(prep.re[0].re == kept);
    char inv[4200];
    snprintf(inv, sizeof(inv), "%s/db_0000000000000007/invocations", root);
    CU_ASSERT_EQUAL(count_prefix(inv, ".next-"), 1);
    lbw_run_prep_free(&prep);
    CU_ASSERT_EQUAL(count_prefix(inv, ".next-"), 0);
    CU_ASSERT(!prep.have_pipes && !prep.buf[0] && !prep.re[0].re);
    lbw_inv_free(&job);
    lbw_reactor_free(r);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CU_ASSERT(system(cmd) == 0);
}

static const struct lbw_test tests[] = {
    {"log directory, pipes and regex made ahead and taken", test_made_ahead},
    {NULL, NULL},
};

static int register_run_prep_suites(void) { return lbw_add_backend_suites("run-prep", tests); }

LBW_TEST_SUITES(register_run_prep_suites)
