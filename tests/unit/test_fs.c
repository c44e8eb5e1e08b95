/* test_fs.c — kernel-iface/fs: lbw_chown_tree gives a tree to a user
 * without ever following a symlink inside it (a file outside the tree,
 * reached through a link, keeps its owner; the link itself changes), and
 * stops at its depth bound. Needs root for chown (skipped otherwise,
 * saying so). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "suites.h"

static uid_t owner_of(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 ? st.st_uid : (uid_t)-1;
}

static void test_chown_tree_no_follow(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: chown needs root\n");
        return;
    }
    char base[] = "/tmp/lbw-fs-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(base) != NULL);
    char tree[64], outside[64], p[PATH_MAX];
    snprintf(tree, sizeof(tree), "%s/tree", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    snprintf(p, sizeof(p), "%s/a/b", tree);
    CU_ASSERT_FATAL(lbw_mkdirs(p) == 0);
    snprintf(p, sizeof(p), "%s/a/b/file", tree);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_FATAL(mkdir(outside, 0700) == 0);
    snprintf(p, sizeof(p), "%s/a/link-to-outside", tree);
    CU_ASSERT_FATAL(symlink(outside, p) == 0);

    CU_ASSERT(lbw_chown_tree(tree, 65534, 65534) == 0);
    CU_ASSERT(owner_of(tree) == 65534);
    snprintf(p, sizeof(p), "%s/a/b/file", tree);
    CU_ASSERT(owner_of(p) == 65534);
    snprintf(p, sizeof(p), "%s/a/link-to-outside", tree);
    CU_ASSERT(owner_of(p) == 65534); /* the link itself */
    CU_ASSERT(owner_of(outside) == 0); /* never what it points to */

    /* a tree given as a symlink is not followed either */
    char top_link[64];
    snprintf(top_link, sizeof(top_link), "%s/top-link", base);
    CU_ASSERT_FATAL(symlink(outside, top_link) == 0);
    lbw_chown_tree(top_link, 65534, 65534);
    CU_ASSERT(owner_of(outside) == 0);

    /* deeper than the bound: the levels past it are refused, not walked */
    char deep[PATH_MAX];
    int n = snprintf(deep, sizeof(deep), "%s/deep", base);
    for (int i = 0; i < 70 && n < (int)sizeof(deep) - 4; i++)
        n += snprintf(deep + n, sizeof(deep) - (size_t)n, "/d");
    CU_ASSERT_FATAL(lbw_mkdirs(deep) == 0);
    snprintf(p, sizeof(p), "%s/deep", base);
    CU_ASSERT(lbw_chown_tree(p, 65534, 65534) == -ELOOP);
    CU_ASSERT(owner_of(p) == 65534);

    CU_ASSERT(lbw_rm_tree(base) == 0);
    CU_ASSERT(access(base, F_OK) < 0);
}

static const struct lbw_test tests[] = {
    {"chown of a tree: links inside and at the top never followed, depth bounded",
     test_chown_tree_no_follow},
    {NULL, NULL},
};

static int register_fs_suites(void)
{
    return lbw_add_suite("fs", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_fs_suites)
