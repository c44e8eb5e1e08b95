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

int lbw_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? -errno : 0;
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char sub[PATH_MAX];
            if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) < sizeof(sub))
                lbw_rm_tree(sub);
        }
        closedir(d);
    }
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
