/* run.h — one invocation from start to end (docs/PROTOCOL.md 7.2–7.8): extra
 * files, the environment, finding the executable (with the python
 * fallback), spawning it with clone3 into its own session (and its own
 * cgroup, inv-ID under cgroup_parent, when the worker has one: see
 * invcg.h; the direct child dies with the worker either way through
 * PR_SET_PDEATHSIG), reading stdout
 * and stderr through the reactor into the upstream-format log files with
 * progress parsing, noticing the exit through the pidfd, and killing the
 * whole process tree on request (SIGTERM, up to 10 s, SIGKILL). Processes
 * a payload leaves behind after a normal exit are ended too.
 *
 * The run never talks to the scheduler: the worker session does that from
 * the on_progress and on_end callbacks. */
#ifndef LBW_RUN_H
#define LBW_RUN_H

#include <sched.h>
#include <stdint.h>
#include <sys/types.h>

#include "contain.h"
#include "invlog.h"
#include "invocation.h"
#include "proc.h"
#include "progress.h"
#include "reactor.h"
#include "toml.h"

struct lbw_run;

/* Who a root worker's payloads run as (worker.payload_user). */
struct lbw_payload_user {
    char name[64];
    char home[256];        /* its passwd home (the payload's HOME), "" none */
    uid_t uid;
    gid_t gid;
    gid_t groups[1024];    /* supplementary groups (more are dropped, with a warning) */
    size_t ngroups;
};
/* What is made ahead for the next invocation, so that the task path does
 * not do it: the log directory (invlog.h) and the output pipes with their
 * read buffers, made while the previous payload's execve goes on, and the
 * progress regexes of the previous job, reused when the next job has the
 * same ones. Owned by the worker (one invocation at a time), freed after
 * its last run; zero-initialised; lbw_run_start takes what fits. */
struct lbw_prep_regex {
    char *pattern;
    size_t len;
    int is_bytes;
    int64_t flags;
    struct lbw_progress_re *re;
};
struct lbw_run_prep {
    struct lbw_invlog_spare log;
    struct lbw_prep_regex re[2]; /* stdout, stderr */
    int pipes[2][2];             /* stdout, stderr: read end, write end */
    int have_pipes;
    uint8_t *buf[2];             /* read buffers, or NULL */
};
/* Makes what is missing (a failure only means the slow path next time). */
void lbw_run_prepare(struct lbw_run_prep *p, const char *log_root, uint64_t db_uid);
/* Removes what was made and not used. */
void lbw_run_prep_free(struct lbw_run_prep *p);

struct lbw_run_opts {
    lbw_reactor *r;
    const char *log_root;          /* invocation logs root (7.5) */
    uint64_t db_uid;
    char *const *worker_environ;
    const char *runtime_dir;       /* prepended to PYTHONPATH */
    const char *runtime_addr;      /* LIFEBLOOD_RUNTIME_SCHEDULER_ADDR */
    const char *resolver_name;     /* config default_env_wrapper.name or NULL */
    const struct lbw_toml *resolver_args_cfg;
    const struct lbw_toml *stdres_cfg;   /* standard_environment_resolver config */
    const char *python_dir;        /* appended to PATH to find `python`, or NULL */
    int nice;                      /* added to the payload's niceness */
    const struct lbw_contain *contain; /* where invocation cgroups go (contain.h), or
                                      NULL: none */
    struct lbw_cinv_limits limits; /* the claim's CPUs, memory node and memory */
    const struct lbw_payload_user *user; /* run the payload as this user (a root
                                      worker), NULL: as the worker */
    uint64_t kill_grace_ns;        /* SIGTERM -> SIGKILL; 0 = 10 s */
    struct lbw_run_prep *prep;     /* made ahead (lbw_run_prepare), or NULL */
    /* the host ledger's claim (ledger.h): CPU affinity set before execve
     * (NULL: inherited), variables always set, and variables set unless
     * the job's environment already has them ("NAME=value", NULL-ended) */
    const cpu_set_t *affinity;
    size_t affinity_size;
    const unsigned long *mem_nodes; /* NULL, or the node mask its memory prefers */
    unsigned long mem_maxnode;
    const char *const *claim_env;
    const char *const *claim_env_default;
    void (*on_progress)(void *ctx, double value);
    /* The invocation ended (exited or killed; output read to the end, log
     * closed). The worker reports it, then calls lbw_run_free. */
    void (*on_end)(void *ctx, struct lbw_run *run);
    void *ctx;
};

/* Starts the job (which stays owned by the caller and must outlive the
 * run). On failure returns -1, *err_class set to upstream's error_class
 * ("environment_resolver", "spawn" or "exception") and a message. */
int lbw_run_start(const struct lbw_run_opts *o, struct lbw_inv *job, struct lbw_run **out,
                  const char **err_class, char *msg, size_t msglen);

/* Starts ending the tree; on_end follows (killed). Safe to call again. */
void lbw_run_kill(struct lbw_run *run);

struct lbw_run_result {
    int killed;
    int has_exit;      /* 0 for a killed run */
    int64_t exit_code; /* negative signal number when signalled */
    double running_time;
    int64_t invocation_id;
};
void lbw_run_result(const struct lbw_run *run, struct lbw_run_result *out);
/* Upstream's exit code convention: the exit status, or -signal. */
int lbw_run_exit_code(const struct lbw_exit *e);
/* Read-only descriptors of the two log files (the caller closes them). */
int lbw_run_open_logs(const struct lbw_run *run, int *out_fd, int *err_fd);
pid_t lbw_run_pid(const struct lbw_run *run);
int64_t lbw_run_invocation_id(const struct lbw_run *run);

/* Frees the run; with remove_files, deletes its log directory and extra
 * files (after the report, as upstream). Only after on_end. */
void lbw_run_free(struct lbw_run *run, int remove_files);

/* Finds `name` the way the payload's spawn will: absolute as is; with a
 * '/' relative to cwd; else along path (colon-separated). Regular
 * executable files only. Returns 0 with the path or -ENOENT. */
int lbw_find_executable(const char *name, const char *path, char *out, size_t cap);
/* The same, as user u would find it (NULL: the worker): every directory on
 * the way searchable and the file executable by u's uid, gid and groups
 * (mode bits), so that a root worker's PATH entries the payload user
 * cannot enter are passed over. A relative PATH entry is taken only
 * without u. */
struct lbw_payload_user;
int lbw_find_executable_as(const char *name, const char *path, const struct lbw_payload_user *u,
                           char *out, size_t cap);

#endif
