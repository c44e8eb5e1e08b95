/* invocation.h — the worker's view of the pickled classes (docs/PROTOCOL.md 3.2):
 * typed, checked accessors for an InvocationJob the scheduler sent, the
 * setters for the done/dropped report (exit code, running time; everything
 * else re-encoded unchanged), and the WorkerResources builder for hello.
 *
 * Loading rejects any global reference outside the set upstream's classes
 * use (3.3), and each allowed one outside the exact shape upstream pickles
 * it in (a class created empty and filled by BUILD, re._compile(pattern,
 * flags), getattr(<enum class>, 'MEMBER'), ...), naming the global and
 * its offset: a job can never carry a call the scheduler's pickle.loads
 * would run, even one built from allowed names. Strings returned point into the job and live as
 * long as it does. */
#ifndef LBW_INVOCATION_H
#define LBW_INVOCATION_H

#include <stddef.h>
#include <stdint.h>

#include "pickle.h"

struct lbw_inv {
    struct lbw_pk_doc doc;
    struct lbw_pk *job;   /* the InvocationJob object */
    struct lbw_pk *state; /* its __dict__ */
};

/* A number as Python had it: int or float. */
struct lbw_num {
    int is_float;
    int64_t i;
    double f;
};
double lbw_num_value(const struct lbw_num *n);

/* Decodes and checks an InvocationJob pickle. Returns 0 or -1 with a
 * message in err. Free with lbw_inv_free (also after failure). */
int lbw_inv_load(struct lbw_inv *inv, const uint8_t *p, size_t n, char *err, size_t errlen);
void lbw_inv_free(struct lbw_inv *inv);

/* argv, NULL-terminated; *argc its length. The array is malloc'd (free it),
 * the strings belong to the job. Returns 0 or -1 (missing / not str). */
int lbw_inv_args(const struct lbw_inv *inv, const char ***argv, size_t *argc);

struct lbw_env_action {
    const char *method; /* "__setitem__", "prepend" or "append" */
    const char *name;
    const char *value;
};
/* The environment action queue, in order (malloc'd array). */
int lbw_inv_env_actions(const struct lbw_inv *inv, struct lbw_env_action **out, size_t *n);

/* Optional integers: returns 1 and sets *v if set, 0 if None, -1 if the
 * key is missing or of another type. */
int lbw_inv_invocation_id(const struct lbw_inv *inv, int64_t *v);
int lbw_inv_task_id(const struct lbw_inv *inv, int64_t *v);

struct lbw_regex {
    int present;          /* 0: None */
    int is_bytes;         /* bytes pattern (else str) */
    const char *pattern;  /* NUL-terminated (bytes may contain NULs: use len) */
    size_t len;
    int64_t flags;        /* Python re flags (I=2, L=4, M=8, S=16, U=32, X=64, A=256) */
};
/* which: 0 = stdout regex, 1 = stderr regex. Returns 0 or -1. */
int lbw_inv_progress_regex(const struct lbw_inv *inv, int which, struct lbw_regex *out);

struct lbw_requirements {
    const char **groups; /* malloc'd array (free it) */
    size_t ngroups;
    int64_t worker_type; /* WorkerType value: STANDARD 0, SCHEDULER_HELPER 1 */
    struct lbw_num min_cpu, min_mem, min_gpu, min_gpu_mem;
    int has_pref_cpu, has_pref_mem, has_pref_gpu, has_pref_gpu_mem;
    struct lbw_num pref_cpu, pref_mem, pref_gpu, pref_gpu_mem;
};
int lbw_inv_requirements(const struct lbw_inv *inv, struct lbw_requirements *out);

/* Exit code sets (malloc'd arrays). */
int lbw_inv_exitcodes(const struct lbw_inv *inv, int retry, int64_t **codes, size_t *n);
int lbw_inv_priority(const struct lbw_inv *inv, double *out);
/* Running time in seconds of a finished job: 1 and *out, 0 if None, -1. */
int lbw_inv_running_time(const struct lbw_inv *inv, double *out);

/* Environment resolver: *name NULL when the job has no arguments (use the
 * worker default) or no name; *args the dict node (str -> value) or NULL. */
int lbw_inv_envres(const struct lbw_inv *inv, const char **name, struct lbw_pk **args);
/* The task attributes dict node. */
struct lbw_pk *lbw_inv_attrs(const struct lbw_inv *inv);

struct lbw_extra_file {
    const char *path;     /* relative, '/'-separated, as the job gives it */
    const uint8_t *data;
    size_t len;
    int is_bytes;
};
/* The job's extra files. Returns 0, -1 when malformed, or -EFBIG when
 * contents shared between files (one pickled value, many names) would
 * have more than LBW_INV_EF_SHARED_MAX bytes written beyond the distinct
 * contents: what is written stays linear in the pickle's size. */
#define LBW_INV_EF_SHARED_MAX (64ull << 20)
int lbw_inv_extra_files(const struct lbw_inv *inv, struct lbw_extra_file **out, size_t *n);

/* Sets the result: exit code (has_exit 0 = None, for dropped jobs; negative
 * for signals) and running time in seconds. Returns 0 or -1. */
int lbw_inv_set_result(struct lbw_inv *inv, int has_exit, int64_t exitcode, double running_time);
/* Encodes the job (protocol 4). Returns 0 or -1 with a message. */
int lbw_inv_encode(struct lbw_inv *inv, uint8_t **out, size_t *len, char *err, size_t errlen);

/* WorkerResources for worker.hello. */
struct lbw_resources {
    uint64_t hwid; /* 63-bit */
    struct lbw_num cpu_count, cpu_mem, gpu_count, gpu_mem;
    struct lbw_num total_cpu_count, total_cpu_mem, total_gpu_count, total_gpu_mem;
};
int lbw_resources_encode(const struct lbw_resources *r, uint8_t **out, size_t *len);
/* Decodes one (for tests and inspect). Returns 0 or -1. */
int lbw_resources_decode(const uint8_t *p, size_t n, struct lbw_resources *r, char *err,
                         size_t errlen);

/* 1 if (module, name) is a global upstream's pickles may contain. */
int lbw_pk_global_allowed(const char *module, const char *name);
/* Checks that every global in the tree at root is used in a shape upstream
 * produces (see invocation.c). Returns 0, or -1 with a message naming the
 * global and its offset in the pickle. */
int lbw_pk_check_upstream(struct lbw_pk_doc *doc, struct lbw_pk *root, char *err,
                          size_t errlen);

#endif
