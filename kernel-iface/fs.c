/* fs.c — filesystem helpers (see fs.h). */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lbw_mkdirs(const char *path)
{
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof(p), "%s", path) >= sizeof(p))
        return -ENAMETOOLONG;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        int rc = mkdir(p, 0755);
        *s = '/';
        if (rc < 0 && errno != EEXIST)
            return -errno;
    }
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

#define RM_DEPTH 32          /* directory fds open at once while removing */
#define RM_HOIST_MAX 100000u /* subtrees moved up to the top, in all */
#define RM_PASSES 10000u     /* passes over the top directory */

/* Removes name under the directory fd at, never following a symlink and
 * never through a path (the tree may be another user's, who could swap a
 * directory for a symlink at any moment). Below RM_DEPTH levels a
 * directory is moved up into top (the tree's own top directory) to be
 * removed by a later pass, so that neither the stack nor the open fds
 * grow with a tree's depth. */
static int rm_at(int top, int at, const char *name, int depth, unsigned *hoisted)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(at, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (depth >= RM_DEPTH) {
        for (unsigned tries = 0; tries < 8 && *hoisted < RM_HOIST_MAX; tries++) {
            char nm[48];
            snprintf(nm, sizeof(nm), ".lbw-rm-%u-%u", (unsigned)getpid(), (*hoisted)++);
            if (renameat2(at, name, top, nm, RENAME_NOREPLACE) == 0)
                return 0;
            if (errno != EEXIST)
                break;
        }
        return -ELOOP;
    }
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return e == ENOENT ? 0 : -e;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rm_at(top, dirfd(d), de->d_name, depth + 1, hoisted);
    closedir(d);
    return unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int lbw_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? -errno : 0;
    int top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (top < 0)
        return errno == ELOOP ? (unlink(path) < 0 ? -errno : 0) : -errno; /* now a symlink */
    unsigned hoisted = 0;
    for (unsigned pass = 0; pass < RM_PASSES; pass++) {
        int fd = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
            if (fd >= 0)
                close(fd);
            break;
        }
        int any = 0;
        struct dirent *de;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                any = 1;
                rm_at(top, top, de->d_name, 1, &hoisted);
            }
        closedir(d);
        if (!any)
            break;
    }
    close(top);
    return rmdir(path) < 0 ? -errno : 0;
}

/* Children first, the directory itself last, every step relative to a
 * directory fd opened with O_NOFOLLOW: once a directory is the new
 * owner's, that owner could swap its entries for symlinks, so nothing is
 * ever reached through a path it controls. depth bounds the recursion. */
static int chown_at(int at, const char *name, uid_t uid, gid_t gid, int depth)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    int first = 0;
    if (S_ISDIR(st.st_mode)) {
        int fd = depth > 0 ? openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                           : -1;
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
            first = depth > 0 ? -errno : -ELOOP;
            if (fd >= 0)
                close(fd);
        } else {
            struct dirent *de;
            while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                int rc = chown_at(dirfd(d), de->d_name, uid, gid, depth - 1);
                if (rc < 0 && !first)
                    first = rc;
            }
            closedir(d);
        }
    }
    if (fchownat(at, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && !first)
        first = -errno;
    return first;
}

int lbw_chown_tree(const char *path, uid_t uid, gid_t gid)
{
    return chown_at(AT_FDCWD, path, uid, gid, 64);
}
