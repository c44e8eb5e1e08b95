/* fs.h — small filesystem helpers shared by the log, payload and start-up
 * code: creating a directory with its parents, removing a tree, giving a
 * tree to a user. */
#ifndef LBW_FS_H
#define LBW_FS_H

#include <sys/types.h>

/* mkdir -p (mode 0755). Returns 0 or -errno. path is not modified. */
int lbw_mkdirs(const char *path);
/* rm -r without following symlinks and without paths below `path` (every
 * step from an O_NOFOLLOW directory fd: the tree may be a payload user's,
 * who could swap a directory for a symlink meanwhile), at any depth with
 * bounded stack and fds. Returns 0 or -errno of the last step. */
int lbw_rm_tree(const char *path);
/* chown -R without following symlinks: entries before their directory,
 * each reached from its parent's O_NOFOLLOW fd (the new owner can never
 * redirect it), at most 64 levels deep. Returns 0 or -errno of the first
 * failure. */
int lbw_chown_tree(const char *path, uid_t uid, gid_t gid);

#endif
