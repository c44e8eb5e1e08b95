/* cgroup.h — Linux control groups, v2 and v1 (and both at once, "hybrid").
 *
 * Owns: finding hierarchies in /proc/self/mountinfo (never assuming
 * /sys/fs/cgroup) and this process's place in each from /proc/self/cgroup,
 * both read through a root prefix so that fixture trees stand in for a
 * host; walking from a cgroup up to its hierarchy's top (limits set by an
 * ancestor); creating and removing cgroups; joining one (cgroup.procs, or
 * an O_DIRECTORY fd for clone3's CLONE_INTO_CGROUP); listing, killing and
 * watching the processes inside (cgroup.kill on v2, freeze + SIGKILL +
 * thaw or a SIGKILL loop on v1; cgroup.events for populated/empty, whose fd
 * the reactor polls for POLLPRI); reading and writing controller files;
 * naming a cgroup after the process that owns it so that a successor can
 * tell a dead owner's cgroups from a live one's.
 *
 * Knows nothing of what runs inside. Functions that take `root` read
 * through it ("/" on a live host); the ones that act (create, join, kill,
 * events) take real absolute directories. Errors: 0/count or -errno. */
#ifndef LBW_CGROUP_H
#define LBW_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LBW_CG_PATH_MAX 4096

/* One mounted hierarchy. */
struct lbw_cg_mount {
    int version;                     /* 1 or 2 */
    char point[LBW_CG_PATH_MAX];     /* where it is mounted ("/sys/fs/cgroup/unified") */
    char root[LBW_CG_PATH_MAX];      /* which cgroup is mounted there ("/" unless a
                                        cgroup namespace or a bind mount shows less) */
    char options[256];               /* v1: the controllers ("cpu,cpuacct", "name=systemd") */
    int favordynmods;                /* mounted with favordynmods (see lbw_cg_favordynmods) */
};

/* ---- locating (through a root prefix) ------------------------------------ */

/* Reads root+dir[/file] (file may be NULL) into buf (at most cap-1 bytes,
 * NUL-terminated). Returns the length or -errno. */
ssize_t lbw_cg_read(const char *root, const char *dir, const char *file, char *buf,
                    size_t cap);
/* The hierarchy for a v1 controller ("memory", "cpuset", "freezer",
 * "name=systemd"), or the v2 one when controller is NULL. Returns 0 or
 * -ENOENT. */
int lbw_cg_find_mount(const char *root, const char *controller, struct lbw_cg_mount *out);
/* "v2", "v1", "hybrid" or "none". */
const char *lbw_cg_mode(const char *root);
/* 1 when a cgroup hierarchy is mounted with favordynmods. The lock that
 * moving a process between cgroups takes is shared by every hierarchy;
 * without that option each such move (a v1 cgroup.procs write, not v2's
 * CLONE_INTO_CGROUP) first waits for an RCU grace period, milliseconds on
 * a loaded host. 0 otherwise (or mountinfo unreadable). */
int lbw_cg_favordynmods(const char *root);
/* This process's cgroup path inside that hierarchy, from /proc/self/cgroup
 * ("/" or "/system.slice/x.service"). Returns 0 or -ENOENT. */
int lbw_cg_self_path(const char *root, const char *controller, char *out, size_t cap);
/* This process's cgroup directory for the controller (NULL: v2), relative
 * to root, and the hierarchy's mount point (mnt may be NULL). Returns 0 or
 * -errno. */
int lbw_cg_self_dir(const char *root, const char *controller, char *dir, size_t cap,
                    char *mnt, size_t mntcap);
/* Moves dir one level up inside the hierarchy mounted at mnt. Returns 1,
 * or 0 when dir is already the top. */
int lbw_cg_up(char *dir, const char *mnt);
/* Calls fn on dir and each ancestor up to the mount point, nearest first,
 * until fn returns non-zero (which is returned). Returns 0 when none did. */
int lbw_cg_walk_up(const char *dir, const char *mnt,
                   int (*fn)(void *ctx, const char *level), void *ctx);

/* ---- acting on a live hierarchy (absolute directories) ------------------- */

/* mkdir (0755). An existing cgroup is fine. Returns 0 or -errno. */
int lbw_cg_create(const char *dir);
/* Removes dir and every cgroup below it, deepest first (each must be
 * empty of processes), at any depth and without recursion. Returns 0
 * (also when dir did not exist, or when another process removes parts of
 * it meanwhile) or -errno of the first failure. */
int lbw_cg_remove(const char *dir);
/* An O_RDONLY|O_DIRECTORY|O_CLOEXEC fd of a v2 cgroup for clone3's
 * CLONE_INTO_CGROUP. Returns the fd or -errno. */
int lbw_cg_open(const char *dir);
/* Moves process pid (0: the caller) into dir by writing cgroup.procs. On
 * v1 call it once per hierarchy. Returns 0 or -errno. */
int lbw_cg_join(const char *dir, pid_t pid);
/* An O_WRONLY|O_CLOEXEC fd of dir's cgroup.procs, opened ahead so that a
 * child joins before execve (lbw_spawn_opts.join_fds: the v1 way to be
 * born inside, with no window in which a fork escapes). Returns the fd or
 * -errno. */
int lbw_cg_procs_open(const char *dir);
/* The processes in dir (with recursive, in every cgroup below it too, down
 * to 32 levels: deeper ones are not listed), at most cap of them. Returns
 * the count (which may be more than cap: the total seen) or -errno. */
ssize_t lbw_cg_procs(const char *dir, int recursive, pid_t *pids, size_t cap);
/* Kills every process in dir and below with SIGKILL: cgroup.kill where the
 * kernel has it (v2, 5.14+; at any depth); else freeze (v1 freezer.state or v2
 * cgroup.freeze), SIGKILL each member, thaw; else a SIGKILL loop over
 * cgroup.procs until nothing new appears (bounded). Returns how many
 * processes were in it when the kill began, or -errno. */
ssize_t lbw_cg_kill(const char *dir);
/* 1 when dir or a cgroup below it has a process, 0 when not, -errno. v2
 * reads cgroup.events, v1 lists cgroup.procs. */
int lbw_cg_populated(const char *dir);

/* cgroup.events, v2 only. Open it, then poll the fd for POLLPRI (the
 * reactor's lbw_poll): it fires when a value changed; read it again with
 * lbw_cg_events_read, which also re-arms the notification. */
struct lbw_cg_events {
    int populated;  /* a process in this cgroup or below */
    int frozen;
};
int lbw_cg_events_open(const char *dir);
int lbw_cg_events_read(int fd, struct lbw_cg_events *ev);

/* Controller and interface files ("memory.max", "pids.max",
 * "cgroup.subtree_control"). read: NUL-terminated, returns the length or
 * -errno; write: the whole value in one write(2), returns 0 or -errno. */
ssize_t lbw_cg_read_file(const char *dir, const char *file, char *buf, size_t cap);
int lbw_cg_write_file(const char *dir, const char *file, const char *value);

/* ---- ownership by a process ---------------------------------------------- */

/* A name for a cgroup owned by process pid (in the caller's pid
 * namespace): "PREFIX-PID-STARTTIME-PIDNS", the start time in clock ticks
 * since boot (/proc/PID/stat field 22) so that a reused pid is not taken
 * for the owner, and the pid namespace's inode so that a pid is only read
 * where it means that process. Returns 0 or -errno. */
int lbw_cg_owner_name(const char *prefix, pid_t pid, char *out, size_t cap);
/* Parses a name made by lbw_cg_owner_name with this prefix. Returns 0
 * when its owner is dead (gone, a zombie, or the pid reused), 1 when it is
 * alive or cannot be told (another pid namespace's name), -EINVAL when the
 * name is not one of those. */
int lbw_cg_owner_alive(const char *prefix, const char *name, pid_t *pid_out);

#endif
