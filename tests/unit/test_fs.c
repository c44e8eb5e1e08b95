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

/* rm -r of a tree a payload user could have made: thousands of levels
 * deep (more than a path can name) and symlinks to outside directories
 * at shallow and deep levels: all of it goes, nothing outside does. */
static void test_rm_tree_deep_links(void)
{
    char base[] = "/tmp/lbw-fs-rm-XXXXXX", outside[PATH_MAX], keep[PATH_MAX + 16];
    CU_ASSERT_FATAL(mkdtemp(base) != NULL);
    snprintf(outside, sizeof(outside), "%s-outside", base);
    CU_ASSERT_FATAL(mkdir(outside, 0755) == 0);
    snprintf(keep, sizeof(keep), "%s/keep", outside);
    FILE *f = fopen(keep, "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    int fd = open(base, O_RDONLY | O_DIRECTORY);
    CU_ASSERT_FATAL(fd >= 0);
    for (int i = 0; i < 3000 && fd >= 0; i++) { /* far past PATH_MAX */
        if (i == 5 || i == 40 || i == 2999)
            CU_ASSERT(symlinkat(outside, fd, "link") == 0);
        if (i % 100 == 0) {
            int ff = openat(fd, "file", O_WRONLY | O_CREAT, 0644);
            CU_ASSERT(ff >= 0);
            close(ff);
        }
        CU_ASSERT_FATAL(mkdirat(fd, "d", 0755) == 0);
        int next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        close(fd);
        fd = next;
    }
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT(lbw_rm_tree(base) == 0);
    CU_ASSERT(access(base, F_OK) < 0 && errno == ENOENT);
    CU_ASSERT(access(keep, F_OK) == 0); /* never followed */
    unlink(keep);
    rmdir(outside);
}

static const struct lbw_test tests[] = {
    {"chown of a tree: links inside and at the top never followed, depth bounded",
     test_chown_tree_no_follow},
    {"rm of a tree: thousands of levels, links never followed", test_rm_tree_deep_links},
    {NULL, NULL},
};

static int register_fs_suites(void)
{
    return lbw_add_suite("fs", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_fs_suites)
