/* test_exec_lookup.c — executable lookup along PATH
 * (lbw_find_executable of daemon/run/run.c), as the payload's argv[0] is
 * found; and as a payload user finds it (lbw_find_executable_as): a
 * directory it cannot search (a root-only 0700 one on PATH, or the target
 * of a symlink) is passed over, group bits count through its groups. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"
#include "suites.h"

static void test_find_executable(void)
{
    char out[4096];
    CU_ASSERT(lbw_find_executable("sh", "/nonexistent:/bin", out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "/bin/sh");
    CU_ASSERT(lbw_find_executable("/bin/sh", "", out, sizeof(out)) == 0);
    CU_ASSERT(lbw_find_executable("no-such-tool-lbw", "/bin:/usr/bin", out, sizeof(out)) < 0);
    CU_ASSERT(lbw_find_executable("passwd", "/etc", out, sizeof(out)) < 0); /* not executable */
    CU_ASSERT(lbw_find_executable("", "/bin", out, sizeof(out)) < 0);
}

static void mkexe(const char *path, mode_t mode, gid_t gid)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0700);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, "#!/bin/sh\n", 10) == 10);
    close(fd);
    CU_ASSERT(chown(path, 0, gid) == 0 || geteuid() != 0);
    CU_ASSERT(chmod(path, mode) == 0);
}

static void test_find_executable_as_user(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: needs root (files of root, looked up as nobody)\n");
        return;
    }
    char base[] = "/tmp/lbw-exec-XXXXXX", priv[64], pub[64], grp[64], path[300], p[128],
         out[4096];
    CU_ASSERT_FATAL(mkdtemp(base) != NULL);
    CU_ASSERT(chmod(base, 0755) == 0);
    snprintf(priv, sizeof(priv), "%s/private", base);
    snprintf(pub, sizeof(pub), "%s/public", base);
    snprintf(grp, sizeof(grp), "%s/group", base);
    CU_ASSERT_FATAL(mkdir(priv, 0700) == 0 && mkdir(pub, 0755) == 0 && mkdir(grp, 0755) == 0);
    snprintf(p, sizeof(p), "%s/lbwtool", priv);
    mkexe(p, 0755, 0);
    snprintf(p, sizeof(p), "%s/lbwtool", pub);
    mkexe(p, 0755, 0);
    snprintf(p, sizeof(p), "%s/grouptool", grp);
    mkexe(p, 0750, 4242);
    snprintf(p, sizeof(p), "%s/linktool", pub);
    char target[128];
    snprintf(target, sizeof(target), "%s/lbwtool", priv);
    CU_ASSERT_FATAL(symlink(target, p) == 0);
    snprintf(path, sizeof(path), "%s:%s:%s", priv, pub, grp);

    struct lbw_payload_user *nobody = calloc(1, sizeof(*nobody));
    CU_ASSERT_FATAL(nobody != NULL);
    nobody->uid = 65534;
    nobody->gid = 65534;
    /* the worker (root) finds the first; nobody the one it can reach */
    CU_ASSERT(lbw_find_executable_as("lbwtool", path, NULL, out, sizeof(out)) == 0);
    CU_ASSERT(!strncmp(out, priv, strlen(priv)));
    CU_ASSERT(lbw_find_executable_as("lbwtool", path, nobody, out, sizeof(out)) == 0);
    CU_ASSERT(!strncmp(out, pub, strlen(pub)));
    /* a link into the private directory: not for nobody */
    CU_ASSERT(lbw_find_executable_as("linktool", path, NULL, out, sizeof(out)) == 0);
    CU_ASSERT(lbw_find_executable_as("linktool", path, nobody, out, sizeof(out)) < 0);
    /* an absolute name is checked the same way */
    CU_ASSERT(lbw_find_executable_as(target, "", nobody, out, sizeof(out)) < 0);
    /* group bits: only through the group */
    CU_ASSERT(lbw_find_executable_as("grouptool", path, nobody, out, sizeof(out)) < 0);
    nobody->groups[0] = 4242;
    nobody->ngroups = 1;
    CU_ASSERT(lbw_find_executable_as("grouptool", path, nobody, out, sizeof(out)) == 0);
    /* a relative PATH entry is not taken for a payload user */
    CU_ASSERT(lbw_find_executable_as("sh", ":/nonexistent", nobody, out, sizeof(out)) < 0);
    free(nobody);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    CU_ASSERT(system(cmd) == 0);
}

static const struct lbw_test tests[] = {
    {"executable lookup along PATH", test_find_executable},
    {"executable lookup as the payload user", test_find_executable_as_user},
    {NULL, NULL},
};

static int register_exec_lookup_suites(void)
{
    return lbw_add_suite("run: executable lookup", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_exec_lookup_suites)
