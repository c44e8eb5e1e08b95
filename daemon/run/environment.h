/* environment.h — the payload's environment, built as upstream builds it
 * (docs/PROTOCOL.md 7.3): an ordered name=value set in which every assignment
 * expands $NAME and ${NAME} against what is being built (unknown names
 * expand to nothing; a '$' not followed by a name stays), prepend/append
 * with ':' and upstream's re-expansion of the whole result, the Trivial
 * resolver, the copy step that re-expands inherited values in order, the
 * job's action queue, the LIFEBLOOD_RUNTIME_* variables, LBATTR_* from task
 * attributes, LB_EF_ROOT — and Python's str() of the values involved. */
#ifndef LBW_ENVIRONMENT_H
#define LBW_ENVIRONMENT_H

#include <stddef.h>

#include "invocation.h"
#include "pickle.h"
#include "toml.h"

struct lbw_env {
    char **names, **values;
    size_t n, cap;
    size_t total; /* bytes execve counts: each "NAME=value\0" and its pointer */
    size_t limit; /* refuse assignments that take total above this; 0: none */
    int over_limit; /* an assignment was refused for the limit */
    size_t *slot;   /* hash index over names: entry + 1, 0 empty */
    size_t nslot;   /* a power of two, at least twice n; 0: none yet */
};

/* Linux refuses execve (E2BIG) for one argument or environment string of
 * more than MAX_ARG_STRLEN (32 pages) bytes with its NUL, and for all of
 * them together (strings and pointers) above a quarter of the stack limit,
 * at most 6 MiB. Every variable here is held to the first; the payload's
 * environment to the second (lbw_env_exec_limit()). */
#define LBW_ENV_STRING_MAX (32u * 4096u)
size_t lbw_env_exec_limit(void);

void lbw_env_init(struct lbw_env *e);
void lbw_env_free(struct lbw_env *e);
const char *lbw_env_get(const struct lbw_env *e, const char *name);
/* Sets without expansion (the worker's own environment, as inherited). */
int lbw_env_set_raw(struct lbw_env *e, const char *name, const char *value);
/* The three assignments, each expanding. Return 0, -ENOMEM, or -E2BIG when
 * "NAME=value" would be longer than LBW_ENV_STRING_MAX or the total would
 * pass e->limit (nothing is changed then). Expansion stops as soon as its
 * result passes LBW_ENV_STRING_MAX, so its work is bounded whatever the
 * values refer to. */
int lbw_env_set(struct lbw_env *e, const char *name, const char *value);
int lbw_env_prepend(struct lbw_env *e, const char *name, const char *value);
int lbw_env_append(struct lbw_env *e, const char *name, const char *value);
/* expand() alone: malloc'd result; NULL with errno ENOMEM or E2BIG. */
char *lbw_env_expand(const struct lbw_env *e, const char *value);
/* "NAME=value" strings, NULL-terminated, malloc'd (free with
 * lbw_env_free_envp). */
char **lbw_env_envp(const struct lbw_env *e);
void lbw_env_free_envp(char **envp);

/* Python's str() of a decoded pickle value into a malloc'd string (str
 * values as themselves; numbers, bools, None, lists, tuples, dicts as their
 * repr). NULL for values str() would not give a simple text for (objects).
 * The text is bounded: at most `max` bytes and LBW_PK_STR_DEPTH levels of
 * nesting, so a value shared many times over (a = [b, b], b = [c, c], ...)
 * costs at most `max` bytes of work instead of doubling per level; past
 * either bound NULL, errno E2BIG, and why in err. lbw_pk_pystr() is
 * lbw_pk_pystr_max() with LBW_ENV_STRING_MAX. */
#define LBW_PK_STR_DEPTH 100
char *lbw_pk_pystr_max(const struct lbw_pk *v, size_t max, char *err, size_t errlen);
char *lbw_pk_pystr(const struct lbw_pk *v);

struct lbw_env_inputs {
    char *const *worker_environ;   /* the worker's own environment */
    const struct lbw_inv *job;
    const char *runtime_dir;       /* prepended to PYTHONPATH */
    const char *runtime_addr;      /* LIFEBLOOD_RUNTIME_SCHEDULER_ADDR */
    const char *extra_files_root;  /* LB_EF_ROOT, or NULL */
    const char *resolver_name;     /* config default_env_wrapper.name, or NULL */
    const struct lbw_toml *resolver_args_cfg; /* its arguments table, or NULL */
    const struct lbw_toml *stdres_cfg; /* the standard_environment_resolver config */
    const char *user_name;         /* a root worker's payload user: USER and LOGNAME, */
    const char *user_home;         /* and HOME, instead of the worker's; NULL: kept */
};

enum lbw_env_error {
    LBW_ENV_OK = 0,
    LBW_ENV_RESOLVER = -1,
    LBW_ENV_EXCEPTION = -2,
    LBW_ENV_TOO_BIG = -3,
};

/* Builds the whole environment for a job. Returns LBW_ENV_OK, or
 * LBW_ENV_RESOLVER (upstream's error_class "environment_resolver"),
 * LBW_ENV_TOO_BIG (execve would fail with E2BIG: a resolver argument or a
 * variable longer than LBW_ENV_STRING_MAX, or more than
 * lbw_env_exec_limit() in all; the message names it and the size; the run
 * reports it as a "spawn" failure) or LBW_ENV_EXCEPTION ("exception") with
 * a message. A task attribute whose LBATTR_ variable would pass
 * LBW_ENV_STRING_MAX is not exported, with a WARNING naming it. The Standard resolver
 * picks, for each "package.NAME" argument, the highest configured version
 * matching its spec (semver.h) and applies the packages' env entries in
 * ascending priority; "user" sets USER, LOGNAME and USERNAME. */
int lbw_env_for_job(const struct lbw_env_inputs *in, struct lbw_env *out, char *err,
                    size_t errlen);

#endif
