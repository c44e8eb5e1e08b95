/* config.h — the worker's configuration.
 *
 * Every key the worker reads is declared once, in the table in config.c
 * (section, name, type, default, one line of documentation), and read
 * through the typed accessors below; the default config.toml, the key
 * reference (`lifeblood-worker config keys --markdown`, pasted into
 * docs/CONFIGURATION.md) and the validation all come from that table.
 *
 * Files are found and merged as upstream does (docs/PROTOCOL.md 9): the
 * per-component directory ($LIFEBLOOD_CONFIG_LOCATION/C or ~/lifeblood/C),
 * config.toml then the config.d/ files (*.toml) in name order, merged key by key (later
 * wins), dotted command-line overrides on top. Unlike upstream the checked
 * loader fails closed: a file that does not parse, a value of the wrong
 * type or out of range is an error naming the file, line, key and expected
 * type; an unknown key is a warning naming the nearest known key. */
#ifndef LBW_CONFIG_H
#define LBW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "toml.h"

/* ---- the declared keys --------------------------------------------------- */

enum lbw_cfg_type {
    LBW_CFG_BOOL,
    LBW_CFG_INT,
    LBW_CFG_FLOAT,       /* a number: TOML integer or float */
    LBW_CFG_STRING,
    LBW_CFG_MEMORY,      /* bytes (integer) or upstream's memory string "16G" */
    LBW_CFG_STRING_LIST, /* an array of strings */
    LBW_CFG_TABLE,       /* a table whose contents are not checked here */
};

/* The worker's keys (component "worker"). */
enum lbw_cfg_key {
    LBW_CFG_MIN_PROGRESS_INTERVAL, /* minimum_progress_reporting_interval */
    LBW_CFG_LOCAL_SHARED_DIR,      /* local_shared_dir_path (accepted, unused) */
    LBW_CFG_DEVICES,               /* devices (newer upstream; accepted, unused) */
    LBW_CFG_LISTEN_TO_BROADCAST,   /* worker.* */
    LBW_CFG_SCHEDULER_ADDRESS,
    LBW_CFG_SCHEDULER_ALLOW,
    LBW_CFG_LOGPATH,
    LBW_CFG_PING_INTERVAL,
    LBW_CFG_KILL_GRACE,
    LBW_CFG_RUNTIME_REQUEST_TIMEOUT,
    LBW_CFG_PYTHON,
    LBW_CFG_PAYLOAD_USER,
    LBW_CFG_ENV_WRAPPER_NAME,      /* default_env_wrapper.* */
    LBW_CFG_ENV_WRAPPER_ARGUMENTS,
    LBW_CFG_CPU_COUNT,             /* resources.* */
    LBW_CFG_CPU_MEM,
    LBW_CFG_GPU_COUNT,
    LBW_CFG_GPU_MEM,
    LBW_CFG_MESH_ENABLED,          /* mesh.*: the host ledger */
    LBW_CFG_MESH_ALLOW_GROUP,
    LBW_CFG_MESH_NAMESPACE,
    LBW_CFG_MESH_READVERTISE,
    LBW_CFG_CONTAINMENT_MODE,      /* containment.*: invocation cgroups */
    LBW_CFG_CONTAINMENT_PARENT,
    LBW_CFG_CONTAINMENT_PIDS_MAX,
    LBW_CFG_CONTAINMENT_MEMORY_MODE,
    LBW_CFG_CONTAINMENT_SWAP,
    LBW_CFG_NKEYS
};

#define LBW_CFG_EXTENSION 1u /* upstream's worker does not read it */
#define LBW_CFG_ACTIVE 2u    /* written uncommented into the default file */
#define LBW_CFG_UNUSED 4u    /* accepted because upstream configs have it; unused */

struct lbw_cfg_keydef {
    const char *section; /* "worker", ...; "" for a top-level key */
    const char *name;
    enum lbw_cfg_type type;
    /* the default, by type (unused fields zero) */
    int def_bool;
    double def_num;      /* INT and FLOAT */
    const char *def_str; /* STRING; NULL: none */
    const char *def_doc; /* the default as the reference shows it, when not the value */
    double min, max;     /* INT and FLOAT */
    const char *unit;    /* "seconds", ... or NULL */
    const char *doc;     /* one line */
    const char *example; /* a TOML value for the default file, or NULL */
    unsigned flags;
    /* an extra check of a well-typed value: 0, or -1 with why */
    int (*check)(const struct lbw_toml *v, char *why, size_t cap);
};

/* A component's declared keys. */
struct lbw_cfg_schema {
    const char *component; /* "worker", "standard_environment_resolver" */
    const struct lbw_cfg_keydef *keys;
    size_t n;
};
const struct lbw_cfg_schema *lbw_cfg_worker_schema(void);
const struct lbw_cfg_schema *lbw_cfg_stdres_schema(void);
const struct lbw_cfg_keydef *lbw_cfg_keydef(enum lbw_cfg_key k);
/* "boolean", "integer", "number", "string", "memory size", ... */
const char *lbw_cfg_type_name(enum lbw_cfg_type t);

/* ---- typed accessors ----------------------------------------------------------
 * cfg is the merged root table (may be NULL). A key that is not set, or set
 * to a value of the wrong type (possible only in a table that was not
 * checked), reads as its default. */
int lbw_cfg_bool(const struct lbw_toml *cfg, enum lbw_cfg_key k);
int64_t lbw_cfg_int(const struct lbw_toml *cfg, enum lbw_cfg_key k);
double lbw_cfg_number(const struct lbw_toml *cfg, enum lbw_cfg_key k);
/* The string, or the default (NULL when there is none). An empty string
 * counts as not set. */
const char *lbw_cfg_string(const struct lbw_toml *cfg, enum lbw_cfg_key k);
/* worker.scheduler_address, with the scheduler's default message port
 * (1386) added to a bare host (upstream's default has no port and cannot
 * work: MAY-FIX), in buf. NULL when it is not set. */
const char *lbw_cfg_scheduler_address(const struct lbw_toml *cfg, char *buf, size_t cap);
/* worker.scheduler_allow into allow (networks; empty = every scheduler).
 * 0, or -1 after a CRITICAL line (as `who`) naming the bad entry. */
struct lbw_cidr_set;
int lbw_cfg_scheduler_allow(const struct lbw_toml *cfg, struct lbw_cidr_set *allow,
                            const char *who);
/* 1 with the bytes when set to a valid memory value, else 0. */
int lbw_cfg_memory(const struct lbw_toml *cfg, enum lbw_cfg_key k, uint64_t *out);
/* The value when set with the declared type, else NULL (tables, lists, and
 * numbers whose int/float form matters). */
const struct lbw_toml *lbw_cfg_value(const struct lbw_toml *cfg, enum lbw_cfg_key k);
/* 1 when the key has any value (well-typed or not). */
int lbw_cfg_is_set(const struct lbw_toml *cfg, enum lbw_cfg_key k);
size_t lbw_cfg_list_len(const struct lbw_toml *cfg, enum lbw_cfg_key k);
const char *lbw_cfg_list_at(const struct lbw_toml *cfg, enum lbw_cfg_key k, size_t i);

/* ---- diagnostics ------------------------------------------------------------- */

struct lbw_cfg_msg {
    int error; /* 1 error, 0 warning */
    char *text;
};
struct lbw_cfg_diag {
    struct lbw_cfg_msg *m;
    size_t n, cap;
    int errors, warnings;
    int files; /* files read */
};
void lbw_cfg_diag_free(struct lbw_cfg_diag *d);
/* Logs every message (errors as ERROR, warnings as WARNING). */
void lbw_cfg_diag_log(const struct lbw_cfg_diag *d);

/* Checks one parsed tree (a file, or an override's value) against the
 * schema; `source` names it in the messages. Returns the number of errors. */
int lbw_cfg_validate(const struct lbw_toml *t, const char *source,
                     const struct lbw_cfg_schema *s, struct lbw_cfg_diag *d);

/* ---- files ---------------------------------------------------------------------- */

/* The directory of component `comp` ("worker", ...). Returns 0 or -1 (no
 * HOME and no LIFEBLOOD_CONFIG_LOCATION, or the path is too long). */
int lbw_config_dir(const char *comp, char *out, size_t cap);
/* 0 when the config location may be created; -1 with why when it lies
 * under a HOME that does not exist (a system user's /nonexistent), where
 * nothing must be created. */
int lbw_config_home_ok(char *why, size_t cap);

/* The checked loader: reads and merges dir's files, validating each
 * against the schema into d. Returns the merged table (empty if there are
 * no files), or NULL when out of memory. d->errors > 0: do not start. */
struct lbw_toml *lbw_config_load_checked(const char *dir, const struct lbw_cfg_schema *s,
                                         struct lbw_cfg_diag *d);
/* One file, validated (for `config check FILE`). NULL on a parse error. */
struct lbw_toml *lbw_config_load_file(const char *path, const struct lbw_cfg_schema *s,
                                      struct lbw_cfg_diag *d);

/* Upstream's lenient reading: a file that does not parse is skipped with a
 * warning; nothing is validated. Always returns a table, or NULL when out
 * of memory. */
struct lbw_toml *lbw_config_load(const char *comp);
struct lbw_toml *lbw_config_load_dir(const char *dir);

/* Applies "dotted.key=value" (value in TOML syntax; a bare word is taken
 * as a string). Returns 0 or -1 with a message in err. */
int lbw_config_override(struct lbw_toml *cfg, const char *assignment, char *err, size_t errlen);
/* The same, validated against the schema (source "--config ASSIGNMENT");
 * an error goes to d. Returns 0 or -1. */
int lbw_config_override_checked(struct lbw_toml *cfg, const char *assignment,
                                const struct lbw_cfg_schema *s, struct lbw_cfg_diag *d);

/* Writes the default worker config.toml into dir (creating dir) unless a
 * config.toml is already there. *created tells which. Returns 0 or -1
 * with a message. */
int lbw_config_write_default(const char *dir, int *created, char *err, size_t errlen);
/* The default worker config text, generated from the table. Caller frees;
 * NULL when out of memory. */
char *lbw_config_default_worker_text(void);
/* The key reference: markdown != 0 a Markdown table (the one in
 * docs/CONFIGURATION.md), else one key per line. Caller frees. */
char *lbw_config_keys_text(int markdown);

/* Upstream's memory string ("16G", " 1.5 K ", "200B"): decimal units,
 * upper-case only. Returns 0 with the byte count, or -1 for "no value"
 * (no unit, lower-case unit, anything else). */
int lbw_mem_string(const char *s, uint64_t *out);

#endif
