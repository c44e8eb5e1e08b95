/* config.c — see config.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "buf.h"
#include "cidr.h"
#include "cleanup.h"
#include "log.h"

#define CONFIG_MAX_FILE (16 << 20)
#define CONFIG_MAX_FILES 1024 /* config.d entries read */

/* ---- the table ------------------------------------------------------------------- */

static int check_address(const struct lbw_toml *v, char *why, size_t cap)
{
    const char *a = v->u.str.s;
    if (!v->u.str.len)
        return 0; /* empty: not set */
    char buf[1100];
    if (!strchr(a, ':') && !strchr(a, '|')) /* a bare host gets the default port */
        snprintf(buf, sizeof(buf), "%s:1386", a);
    else
        snprintf(buf, sizeof(buf), "%s", a);
    if (strlen(a) < 1024 && strlen(a) == v->u.str.len && lbw_chain_is_valid(buf, strlen(buf)))
        return 0;
    snprintf(why, cap, "not an address chain: expected ip:port[|ip:port...], e.g. "
                       "\"192.168.0.2:1386\"");
    return -1;
}

static int check_nonempty_path(const struct lbw_toml *v, char *why, size_t cap)
{
    if (strlen(v->u.str.s) != v->u.str.len) {
        snprintf(why, cap, "contains a NUL character");
        return -1;
    }
    return 0;
}

/* worker.scheduler_allow: every entry an address or a network, so that
 * `config check` refuses what the start would. */
static int check_cidr_list(const struct lbw_toml *v, char *why, size_t cap)
{
    struct lbw_cidr_set set = {0};
    int rc = 0;
    for (size_t i = 0; i < v->u.arr.n && rc == 0; i++) {
        const struct lbw_toml *e = v->u.arr.v[i];
        char err[200];
        if (strlen(e->u.str.s) != e->u.str.len) {
            snprintf(why, cap, "not a list of addresses or networks: entry %zu contains a NUL "
                               "character", i + 1);
            rc = -1;
        } else if (lbw_cidr_set_add(&set, e->u.str.s, err, sizeof(err)) < 0) {
            snprintf(why, cap, "not a list of addresses or networks: entry %zu: %s", i + 1, err);
            rc = -1;
        }
    }
    lbw_cidr_set_free(&set);
    return rc;
}

static int check_mesh_namespace(const struct lbw_toml *v, char *why, size_t cap)
{
    if (check_nonempty_path(v, why, cap) < 0)
        return -1;
    if (v->u.str.len == 0 || v->u.str.len > 64) {
        snprintf(why, cap, "must be 1 to 64 bytes long");
        return -1;
    }
    return 0;
}

/* A string that is one of the words in allowed ("auto|off"). */
static int check_one_of(const struct lbw_toml *v, const char *allowed, char *why, size_t cap)
{
    const char *a = v->u.str.s;
    size_t n = v->u.str.len;
    for (const char *p = allowed;;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strlen(a) == n && !strncmp(p, a, n))
            return 0;
        if (!e)
            break;
        p = e + 1;
    }
    snprintf(why, cap, "must be one of: %s", allowed);
    return -1;
}

static int check_containment_mode(const struct lbw_toml *v, char *why, size_t cap)
{
    return check_one_of(v, "auto|off", why, cap);
}

static int check_memory_mode(const struct lbw_toml *v, char *why, size_t cap)
{
    return check_one_of(v, "max|high", why, cap);
}

/* A cgroup name below each hierarchy's top: relative, no "." or ".."
 * component, no NUL. */
static int check_cgroup_parent(const struct lbw_toml *v, char *why, size_t cap)
{
    const char *s = v->u.str.s;
    if (strlen(s) != v->u.str.len || !*s || v->u.str.len > 200) {
        snprintf(why, cap, "must be 1 to 200 bytes without NUL");
        return -1;
    }
    for (const char *p = s; *p;) {
        while (*p == '/')
            p++;
        size_t l = strcspn(p, "/");
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(why, cap, "must not have a \".\" or \"..\" component");
            return -1;
        }
        p += l;
    }
    return 0;
}

static const struct lbw_cfg_keydef worker_keys[LBW_CFG_NKEYS] = {
    [LBW_CFG_MIN_PROGRESS_INTERVAL] = {
        .section = "", .name = "minimum_progress_reporting_interval", .type = LBW_CFG_FLOAT,
        .def_num = 1.0, .min = 0, .max = 86400, .unit = "seconds",
        .doc = "the least time between two progress reports of a running payload",
        .example = "1.0"},
    [LBW_CFG_LOCAL_SHARED_DIR] = {
        .section = "", .name = "local_shared_dir_path", .type = LBW_CFG_STRING,
        .def_doc = "`<tmp>/lifeblood_worker/shared`", .flags = LBW_CFG_UNUSED,
        .doc = "read by upstream's worker but never used: accepted and ignored"},
    [LBW_CFG_DEVICES] = {
        .section = "", .name = "devices", .type = LBW_CFG_TABLE, .def_doc = "none",
        .flags = LBW_CFG_UNUSED,
        .doc = "device definitions of newer Lifeblood versions ([devices.gpu.NAME.resources], "
               "[devices.gpu.NAME.tags]): accepted and ignored"},
    [LBW_CFG_LISTEN_TO_BROADCAST] = {
        .section = "worker", .name = "listen_to_broadcast", .type = LBW_CFG_BOOL, .def_bool = 1,
        .flags = LBW_CFG_ACTIVE,
        .doc = "find the scheduler by its UDP broadcast; when false, scheduler_address is used",
        .example = "true"},
    [LBW_CFG_SCHEDULER_ADDRESS] = {
        .section = "worker", .name = "scheduler_address", .type = LBW_CFG_STRING,
        .def_doc = "none", .check = check_address,
        .doc = "the scheduler's address chain (ip:port[|ip:port...]; a bare host gets port "
               "1386) when not listening to broadcasts; a host name is resolved once per "
               "start, at most 5 s",
        .example = "\"192.168.0.2:1386\""},
    [LBW_CFG_SCHEDULER_ALLOW] = {
        .section = "worker", .name = "scheduler_allow", .type = LBW_CFG_STRING_LIST,
        .def_doc = "`[]` (any)", .flags = LBW_CFG_EXTENSION, .check = check_cidr_list,
        .doc = "scheduler addresses or networks (CIDR) accepted in broadcasts and incoming "
               "exchanges; empty accepts any; other sources are closed at accept (one line "
               "per source per minute); an entry that is not an address or network is an "
               "error (`config check` says so; the start stops with exit 2); see SECURITY.md",
        .example = "[\"192.168.0.2\", \"10.1.0.0/16\"]"},
    [LBW_CFG_LOGPATH] = {
        .section = "worker", .name = "logpath", .type = LBW_CFG_STRING,
        .def_doc = "`<config dir>/logs` (services: see Directories)", .check = check_nonempty_path,
        .doc = "root of the invocation logs ($VAR and ${VAR} expanded)",
        .example = "\"/scratch/lifeblood/logs\""},
    [LBW_CFG_PING_INTERVAL] = {
        .section = "worker", .name = "ping_interval", .type = LBW_CFG_FLOAT, .def_num = 10,
        .min = 0.05, .max = 3600, .unit = "seconds", .flags = LBW_CFG_EXTENSION,
        .doc = "time between worker.pings (also the wait between reintroduce attempts)",
        .example = "10"},
    [LBW_CFG_KILL_GRACE] = {
        .section = "worker", .name = "kill_grace", .type = LBW_CFG_FLOAT, .def_num = 10,
        .min = 0.01, .max = 3600, .unit = "seconds", .flags = LBW_CFG_EXTENSION,
        .doc = "time from SIGTERM to SIGKILL when a payload's process tree is ended",
        .example = "10"},
    [LBW_CFG_RUNTIME_REQUEST_TIMEOUT] = {
        .section = "worker", .name = "runtime_request_timeout", .type = LBW_CFG_FLOAT,
        .def_num = 60, .min = 0.1, .max = 3600, .unit = "seconds", .flags = LBW_CFG_EXTENSION,
        .doc = "time a payload has to send a whole runtime API request (and to answer a "
               "receive poll)",
        .example = "60"},
    [LBW_CFG_PYTHON] = {
        .section = "worker", .name = "python", .type = LBW_CFG_STRING,
        .def_doc = "`python3` on `PATH`", .flags = LBW_CFG_EXTENSION, .check = check_nonempty_path,
        .doc = "the interpreter a job's `python` runs when no `python` is on its PATH",
        .example = "\"/usr/bin/python3\""},
    [LBW_CFG_PAYLOAD_USER] = {
        .section = "worker", .name = "payload_user", .type = LBW_CFG_STRING,
        .def_doc = "the worker's own user; a root worker: `lifeblood` if that user exists, "
                   "else `nobody`",
        .flags = LBW_CFG_EXTENSION, .check = check_nonempty_path,
        .doc = "the user (with its supplementary groups) a worker started as root runs "
               "payloads as; payloads run as root only when this says \"root\"; a worker "
               "started as another user runs them as itself and ignores this key; a user "
               "that does not exist, or one with uid 0 or in group 0 under another name "
               "than root, stops the start (exit 2)",
        .example = "\"render\""},
    [LBW_CFG_ENV_WRAPPER_NAME] = {
        .section = "default_env_wrapper", .name = "name", .type = LBW_CFG_STRING,
        .def_str = "TrivialEnvironmentResolver",
        .doc = "the environment resolver for jobs that name none",
        .example = "\"StandardEnvironmentResolver\""},
    [LBW_CFG_ENV_WRAPPER_ARGUMENTS] = {
        .section = "default_env_wrapper", .name = "arguments", .type = LBW_CFG_TABLE,
        .def_doc = "`{}`", .doc = "its arguments, e.g. { \"package.houdini\" = \"~=20.0\" }",
        .example = "{ }"},
    [LBW_CFG_CPU_COUNT] = {
        .section = "resources", .name = "cpu_count", .type = LBW_CFG_FLOAT, .min = 0,
        .max = 1e6, .def_doc = "detected",
        .doc = "CPUs to advertise (integer or fraction); detected from affinity and cgroup "
               "quota when not set",
        .example = "32"},
    [LBW_CFG_CPU_MEM] = {
        .section = "resources", .name = "cpu_mem", .type = LBW_CFG_MEMORY, .def_doc = "detected",
        .doc = "memory to advertise: bytes, or a memory string like \"128G\"",
        .example = "\"128G\""},
    [LBW_CFG_GPU_COUNT] = {
        .section = "resources", .name = "gpu_count", .type = LBW_CFG_FLOAT, .min = 0,
        .max = 1e6, .def_doc = "detected", .doc = "GPUs to advertise", .example = "1"},
    [LBW_CFG_GPU_MEM] = {
        .section = "resources", .name = "gpu_mem", .type = LBW_CFG_MEMORY, .def_doc = "detected",
        .doc = "GPU memory to advertise: bytes, or a memory string", .example = "\"8G\""},
    [LBW_CFG_MESH_ENABLED] = {
        .section = "mesh", .name = "enabled", .type = LBW_CFG_BOOL, .def_bool = 1,
        .flags = LBW_CFG_EXTENSION,
        .doc = "join the host ledger, which pins each payload to CPUs and GPUs no other "
               "payload on the host holds and lowers what worker.hello advertises by the other "
               "workers' claims (ARCHITECTURE.md, \"The host ledger\"); false: payloads run "
               "unpinned and every hello advertises the whole host",
        .example = "true"},
    [LBW_CFG_MESH_ALLOW_GROUP] = {
        .section = "mesh", .name = "allow_group", .type = LBW_CFG_STRING, .def_doc = "none",
        .flags = LBW_CFG_EXTENSION, .check = check_nonempty_path,
        .doc = "a group whose members' workers may join this host's ledger besides this "
               "worker's own uid and root; any other process that connects is refused with "
               "one WARNING naming its pid and uid",
        .example = "\"render\""},
    [LBW_CFG_MESH_NAMESPACE] = {
        .section = "mesh", .name = "namespace", .type = LBW_CFG_STRING,
        .def_str = "lifeblood-worker/ledger", .flags = LBW_CFG_EXTENSION,
        .check = check_mesh_namespace,
        .doc = "prefix of the ledger's abstract socket names; workers with different values "
               "form separate ledgers on one host",
        .example = "\"lifeblood-worker/ledger\""},
    [LBW_CFG_CONTAINMENT_MODE] = {
        .section = "containment", .name = "mode", .type = LBW_CFG_STRING, .def_str = "auto",
        .flags = LBW_CFG_EXTENSION, .check = check_containment_mode,
        .doc = "\"auto\": each payload is born in cgroups of its own (delegated by the "
               "service manager, else under each hierarchy's top when the worker may write "
               "there, else off; ARCHITECTURE.md, \"Containment\"); \"off\": process group "
               "and child subreaper only",
        .example = "\"auto\""},
    [LBW_CFG_CONTAINMENT_PARENT] = {
        .section = "containment", .name = "parent", .type = LBW_CFG_STRING,
        .def_str = "lifeblood-worker", .flags = LBW_CFG_EXTENSION, .check = check_cgroup_parent,
        .doc = "the cgroup, below each hierarchy's top (or below the delegated cgroup), that "
               "holds the workers' invocation cgroups",
        .example = "\"lifeblood-worker\""},
    [LBW_CFG_CONTAINMENT_PIDS_MAX] = {
        .section = "containment", .name = "pids_max", .type = LBW_CFG_INT, .def_num = 10000,
        .min = 0, .max = 4194304, .flags = LBW_CFG_EXTENSION,
        .doc = "processes and threads one invocation may have at once (pids.max); 0: no "
               "limit",
        .example = "10000"},
    [LBW_CFG_CONTAINMENT_MEMORY_MODE] = {
        .section = "containment", .name = "memory_mode", .type = LBW_CFG_STRING,
        .def_str = "max", .flags = LBW_CFG_EXTENSION, .check = check_memory_mode,
        .doc = "how a claimed memory amount limits the payload: \"max\" is a hard limit "
               "(memory.max; the OOM killer ends the payload past it), \"high\" throttles "
               "and reclaims above it (memory.high; v1 memory.soft_limit_in_bytes) and never "
               "kills",
        .example = "\"max\""},
    [LBW_CFG_CONTAINMENT_SWAP] = {
        .section = "containment", .name = "swap", .type = LBW_CFG_BOOL, .def_bool = 0,
        .flags = LBW_CFG_EXTENSION,
        .doc = "let a payload with a memory limit use swap (false: memory.swap.max 0, v1 "
               "memory.memsw.limit_in_bytes equal to the limit)",
        .example = "false"},
    [LBW_CFG_MESH_READVERTISE] = {
        .section = "mesh", .name = "readvertise", .type = LBW_CFG_BOOL, .def_bool = 1,
        .flags = LBW_CFG_EXTENSION,
        .doc = "an idle worker says worker.hello again when the other workers' claims change "
               "what is left on the host (coalesced: at most once a second), so the advertised "
               "values follow the host; false: they are only sent at (re)introduction (the "
               "workers of an on-demand pool re-advertise regardless)",
        .example = "true"},
};

static const struct lbw_cfg_keydef stdres_keys[] = {
    {.section = "", .name = "packages", .type = LBW_CFG_TABLE, .def_doc = "none",
     .doc = "[packages.\"NAME\".\"VERSION\"] tables: priority, label, env.VAR"},
};

static const struct lbw_cfg_schema worker_schema = {"worker", worker_keys, LBW_CFG_NKEYS};
static const struct lbw_cfg_schema stdres_schema = {
    "standard_environment_resolver", stdres_keys, sizeof(stdres_keys) / sizeof(stdres_keys[0])};

const struct lbw_cfg_schema *lbw_cfg_worker_schema(void) { return &worker_schema; }
const struct lbw_cfg_schema *lbw_cfg_stdres_schema(void) { return &stdres_schema; }

const struct lbw_cfg_keydef *lbw_cfg_keydef(enum lbw_cfg_key k)
{
    return (unsigned)k < LBW_CFG_NKEYS ? &worker_keys[k] : NULL;
}

const char *lbw_cfg_type_name(enum lbw_cfg_type t)
{
    switch (t) {
    case LBW_CFG_BOOL: return "boolean";
    case LBW_CFG_INT: return "integer";
    case LBW_CFG_FLOAT: return "number";
    case LBW_CFG_STRING: return "string";
    case LBW_CFG_MEMORY: return "memory size";
    case LBW_CFG_STRING_LIST: return "list of strings";
    case LBW_CFG_TABLE: return "table";
    }
    return "value";
}

/* ---- accessors ---------------------------------------------------------------------- */

static const struct lbw_toml *lookup(const struct lbw_toml *cfg, const struct lbw_cfg_keydef *d)
{
    if (!cfg)
        return NULL;
    const struct lbw_toml *t = cfg;
    if (d->section[0]) {
        t = lbw_toml_member(cfg, d->section);
        if (!t || t->type != LBW_TOML_TABLE)
            return NULL;
    }
    return lbw_toml_member(t, d->name);
}

/* The value when it has the declared type (and passes its checks). */
static int well_typed(const struct lbw_cfg_keydef *d, const struct lbw_toml *v)
{
    uint64_t b;
    switch (d->type) {
    case LBW_CFG_BOOL: return v->type == LBW_TOML_BOOL;
    case LBW_CFG_INT: return v->type == LBW_TOML_INT && v->u.i >= d->min && v->u.i <= d->max;
    case LBW_CFG_FLOAT: {
        double x = v->type == LBW_TOML_INT ? (double)v->u.i
                   : v->type == LBW_TOML_FLOAT ? v->u.f : NAN;
        return x >= d->min && x <= d->max; /* false for NaN */
    }
    case LBW_CFG_STRING: return v->type == LBW_TOML_STRING;
    case LBW_CFG_MEMORY:
        return (v->type == LBW_TOML_INT && v->u.i >= 0) ||
               (v->type == LBW_TOML_STRING && lbw_mem_string(v->u.str.s, &b) == 0);
    case LBW_CFG_STRING_LIST:
        if (v->type != LBW_TOML_ARRAY)
            return 0;
        for (size_t i = 0; i < v->u.arr.n; i++)
            if (v->u.arr.v[i]->type != LBW_TOML_STRING)
                return 0;
        return 1;
    case LBW_CFG_TABLE: return v->type == LBW_TOML_TABLE;
    }
    return 0;
}

const struct lbw_toml *lbw_cfg_value(const struct lbw_toml *cfg, enum lbw_cfg_key k)
{
    const struct lbw_cfg_keydef *d = lbw_cfg_keydef(k);
    if (!d)
        return NULL;
    const struct lbw_toml *v = lookup(cfg, d);
    return v && well_typed(d, v) ? v : NULL;
}

int lbw_cfg_bool(const struct lbw_toml *cfg, enum lbw_cfg_key k)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    return v && v->type == LBW_TOML_BOOL ? v->u.b : (lbw_cfg_keydef(k) ? worker_keys[k].def_bool : 0);
}

double lbw_cfg_number(const struct lbw_toml *cfg, enum lbw_cfg_key k)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    if (v && v->type == LBW_TOML_INT)
        return (double)v->u.i;
    if (v && v->type == LBW_TOML_FLOAT)
        return v->u.f;
    return lbw_cfg_keydef(k) ? worker_keys[k].def_num : 0;
}

int64_t lbw_cfg_int(const struct lbw_toml *cfg, enum lbw_cfg_key k)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    if (v && v->type == LBW_TOML_INT)
        return v->u.i;
    return lbw_cfg_keydef(k) ? (int64_t)worker_keys[k].def_num : 0;
}

const char *lbw_cfg_string(const struct lbw_toml *cfg, enum lbw_cfg_key k)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    if (v && v->type == LBW_TOML_STRING && v->u.str.len)
        return v->u.str.s;
    return lbw_cfg_keydef(k) ? worker_keys[k].def_str : NULL;
}

int lbw_cfg_scheduler_allow(const struct lbw_toml *cfg, struct lbw_cidr_set *allow,
                            const char *who)
{
    /* the checked loader already refused anything but a list of strings */
    char err[256];
    size_t n = lbw_cfg_list_len(cfg, LBW_CFG_SCHEDULER_ALLOW);
    for (size_t i = 0; i < n; i++) {
        if (lbw_cidr_set_add(allow, lbw_cfg_list_at(cfg, LBW_CFG_SCHEDULER_ALLOW, i), err,
                             sizeof(err)) < 0) {
            LBW_CRIT(who, "worker.scheduler_allow: %s", err);
            lbw_cidr_set_free(allow);
            return -1;
        }
    }
    if (allow->n)
        LBW_INFO(who, "only schedulers in worker.scheduler_allow (%zu networks) are "
                      "answered", allow->n);
    return 0;
}

const char *lbw_cfg_scheduler_address(const struct lbw_toml *cfg, char *buf, size_t cap)
{
    const char *sa = lbw_cfg_string(cfg, LBW_CFG_SCHEDULER_ADDRESS);
    if (!sa)
        return NULL;
    if (!strchr(sa, ':') && !strchr(sa, '|'))
        snprintf(buf, cap, "%s:1386", sa);
    else
        snprintf(buf, cap, "%s", sa);
    return buf;
}

int lbw_cfg_memory(const struct lbw_toml *cfg, enum lbw_cfg_key k, uint64_t *out)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    if (!v)
        return 0;
    if (v->type == LBW_TOML_INT) {
        *out = (uint64_t)v->u.i;
        return 1;
    }
    return v->type == LBW_TOML_STRING && lbw_mem_string(v->u.str.s, out) == 0;
}

int lbw_cfg_is_set(const struct lbw_toml *cfg, enum lbw_cfg_key k)
{
    const struct lbw_cfg_keydef *d = lbw_cfg_keydef(k);
    return d && lookup(cfg, d) != NULL;
}

size_t lbw_cfg_list_len(const struct lbw_toml *cfg, enum lbw_cfg_key k)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    return v && v->type == LBW_TOML_ARRAY ? v->u.arr.n : 0;
}

const char *lbw_cfg_list_at(const struct lbw_toml *cfg, enum lbw_cfg_key k, size_t i)
{
    const struct lbw_toml *v = lbw_cfg_value(cfg, k);
    if (!v || v->type != LBW_TOML_ARRAY || i >= v->u.arr.n)
        return NULL;
    return v->u.arr.v[i]->u.str.s;
}

/* ---- diagnostics --------------------------------------------------------------------- */

void lbw_cfg_diag_free(struct lbw_cfg_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->m[i].text);
    free(d->m);
    *d = (struct lbw_cfg_diag){0};
}

__attribute__((format(printf, 3, 4)))
static void diag(struct lbw_cfg_diag *d, int error, const char *fmt, ...)
{
    if (error)
        d->errors++;
    else
        d->warnings++;
    if (d->n >= 1000 || lbw_grow(&d->m, &d->cap, d->n + 1, sizeof(*d->m)) < 0)
        return; /* counted, not kept */
    char text[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char *t = strdup(text);
    if (t)
        d->m[d->n++] = (struct lbw_cfg_msg){error, t};
}

void lbw_cfg_diag_log(const struct lbw_cfg_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->m[i].error)
            LBW_ERROR("config", "%s", d->m[i].text);
        else
            LBW_WARN("config", "%s", d->m[i].text);
    }
}

/* ---- validation ---------------------------------------------------------------------- */

/* Edit distance (insert, delete, substitute), or a large number for long
 * strings: names are short, and this stays bounded. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 1000;
    size_t row[65], prev[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, row, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

static void full_name(const struct lbw_cfg_keydef *d, char *out, size_t cap)
{
    if (d->section[0])
        snprintf(out, cap, "%s.%s", d->section, d->name);
    else
        snprintf(out, cap, "%s", d->name);
}

/* The known key (or, with sections != 0, section) nearest to `sec`.`name`,
 * as " (did you mean X?)", or "" when nothing is near. */
static void suggest(const struct lbw_cfg_schema *s, const char *sec, const char *name,
                    int sections, char *out, size_t cap)
{
    char want[300], best[300] = "";
    size_t bestd = 1000;
    if (sec[0])
        snprintf(want, sizeof(want), "%s.%s", sec, name);
    else
        snprintf(want, sizeof(want), "%s", name);
    for (size_t i = 0; i < s->n; i++) {
        const struct lbw_cfg_keydef *d = &s->keys[i];
        char cand[300];
        size_t dd;
        if (sections) {
            if (!d->section[0])
                continue;
            dd = distance(name, d->section);
            snprintf(cand, sizeof(cand), "[%s]", d->section);
        } else {
            full_name(d, cand, sizeof(cand));
            dd = distance(want, cand);
            /* the right name in the wrong section (or none) */
            size_t nd = distance(name, d->name) + 1;
            if (nd < dd)
                dd = nd;
        }
        if (dd < bestd) {
            bestd = dd;
            snprintf(best, sizeof(best), "%s", cand);
        }
    }
    size_t len = strlen(name); /* how far a typo may go: a third of the name */
    size_t limit = len / 3 > 2 ? len / 3 : 2;
    if (best[0] && bestd <= limit)
        snprintf(out, cap, " (did you mean %s?)", best);
    else
        snprintf(out, cap, "%s", "");
}

static void where(const char *source, const struct lbw_toml *v, char *out, size_t cap)
{
    if (v && v->line)
        snprintf(out, cap, "%s: line %u", source, v->line);
    else
        snprintf(out, cap, "%s", source);
}

static void expected(const struct lbw_cfg_keydef *d, char *out, size_t cap)
{
    switch (d->type) {
    case LBW_CFG_BOOL:
        snprintf(out, cap, "a boolean (true or false, without quotes)");
        break;
    case LBW_CFG_INT:
    case LBW_CFG_FLOAT:
        snprintf(out, cap, "%s%s%s%s from %.10g to %.10g", d->type == LBW_CFG_INT ? "an integer" : "a number",
                 d->unit ? " (" : "", d->unit ? d->unit : "", d->unit ? ")" : "", d->min, d->max);
        break;
    case LBW_CFG_STRING: snprintf(out, cap, "a string"); break;
    case LBW_CFG_MEMORY:
        snprintf(out, cap, "a memory size: bytes as an integer, or a string like \"16G\" (a "
                           "number and one upper-case unit B, K, M, G, T or P)");
        break;
    case LBW_CFG_STRING_LIST:
        snprintf(out, cap, "a list of strings, e.g. [\"a\", \"b\"]");
        break;
    case LBW_CFG_TABLE: snprintf(out, cap, "a table"); break;
    }
}

static int check_value(const struct lbw_cfg_keydef *d, const struct lbw_toml *v,
                       const char *source, struct lbw_cfg_diag *dg)
{
    char at[600], name[300], exp[200], found[120];
    where(source, v, at, sizeof(at));
    full_name(d, name, sizeof(name));
    if (!well_typed(d, v)) {
        expected(d, exp, sizeof(exp));
        lbw_toml_describe(v, found, sizeof(found));
        diag(dg, 1, "%s: %s: expected %s, found %s", at, name, exp, found);
        return 1;
    }
    char why[300];
    if (d->check && d->check(v, why, sizeof(why)) < 0) {
        lbw_toml_describe(v, found, sizeof(found));
        diag(dg, 1, "%s: %s: %s is %s", at, name, found, why);
        return 1;
    }
    return 0;
}

static const struct lbw_cfg_keydef *find(const struct lbw_cfg_schema *s, const char *sec,
                                         const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i].section, sec) && !strcmp(s->keys[i].name, name))
            return &s->keys[i];
    return NULL;
}

static int is_section(const struct lbw_cfg_schema *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i].section, name))
            return 1;
    return 0;
}

static void unknown(const struct lbw_cfg_schema *s, const char *sec, const char *name,
                    const struct lbw_toml *v, const char *source, struct lbw_cfg_diag *dg)
{
    char at[600], hint[340];
    where(source, v, at, sizeof(at));
    if (!sec[0] && v->type == LBW_TOML_TABLE) {
        suggest(s, sec, name, 1, hint, sizeof(hint));
        diag(dg, 0, "%s: unknown section [%s]%s; its keys are ignored", at, name,
             hint[0] ? hint : " (see 'lifeblood-worker config keys')");
        return;
    }
    suggest(s, sec, name, 0, hint, sizeof(hint));
    diag(dg, 0, "%s: unknown key %s%s%s%s; it is ignored", at, sec, sec[0] ? "." : "", name,
         hint[0] ? hint : " (see 'lifeblood-worker config keys')");
}

int lbw_cfg_validate(const struct lbw_toml *t, const char *source,
                     const struct lbw_cfg_schema *s, struct lbw_cfg_diag *dg)
{
    int before = dg->errors;
    if (!t || t->type != LBW_TOML_TABLE)
        return 0;
    for (size_t i = 0; i < t->u.tab.n; i++) {
        const char *k = t->u.tab.keys[i];
        const struct lbw_toml *v = t->u.tab.vals[i];
        const struct lbw_cfg_keydef *d = find(s, "", k);
        if (d) {
            check_value(d, v, source, dg);
            continue;
        }
        if (!is_section(s, k)) {
            unknown(s, "", k, v, source, dg);
            continue;
        }
        if (v->type != LBW_TOML_TABLE) {
            char at[600], found[120];
            where(source, v, at, sizeof(at));
            lbw_toml_describe(v, found, sizeof(found));
            diag(dg, 1, "%s: %s: expected a table ([%s]), found %s", at, k, k, found);
            continue;
        }
        for (size_t j = 0; j < v->u.tab.n; j++) {
            const struct lbw_toml *sv = v->u.tab.vals[j];
            d = find(s, k, v->u.tab.keys[j]);
            if (d)
                check_value(d, sv, source, dg);
            else
                unknown(s, k, v->u.tab.keys[j], sv, source, dg);
        }
    }
    return dg->errors - before;
}

/* ---- files ------------------------------------------------------------------------- */

int lbw_config_dir(const char *comp, char *out, size_t cap)
{
    const char *loc = getenv("LIFEBLOOD_CONFIG_LOCATION");
    const char *home = getenv("HOME");
    int n;
    if (loc && *loc) {
        if (loc[0] == '~' && (loc[1] == '/' || loc[1] == 0)) {
            if (!home)
                return -1;
            n = snprintf(out, cap, "%s%s/%s", home, loc + 1, comp);
        } else {
            n = snprintf(out, cap, "%s/%s", loc, comp);
        }
    } else {
        if (!home || !*home)
            return -1;
        n = snprintf(out, cap, "%s/lifeblood/%s", home, comp);
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}


int lbw_config_home_ok(char *why, size_t cap)
{
    const char *loc = getenv("LIFEBLOOD_CONFIG_LOCATION");
    const char *home = getenv("HOME");
    if (loc && *loc && !(loc[0] == '~' && (loc[1] == '/' || loc[1] == 0)))
        return 0; /* not under HOME */
    struct stat st;
    if (!home || !*home) {
        snprintf(why, cap, "HOME is not set and LIFEBLOOD_CONFIG_LOCATION is not set");
        return -1;
    }
    if (stat(home, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "HOME=%s is not an existing directory (a system user's home?): "
                           "nothing is read or created there; set LIFEBLOOD_CONFIG_LOCATION "
                           "(e.g. /etc/lifeblood for a service)", home);
        return -1;
    }
    return 0;
}

/* Reads a whole regular file of at most CONFIG_MAX_FILE bytes. Returns the
 * text (NUL-terminated) or NULL with errno (ENOENT: missing, EFBIG: too
 * large or not a regular file). */
static char *read_text(const char *path, size_t *len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return NULL;
    if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_FILE) {
        errno = EFBIG;
        return NULL;
    }
    _cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return NULL;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return NULL;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    *len = got;
    return TAKE_PTR(buf);
}

/* One file. d == NULL: upstream's lenient mode (problems are warnings and
 * the file is skipped). Else problems go to d and the file is validated
 * against s. Returns the table, or NULL (missing: *missing = 1). */
static struct lbw_toml *load_one(const char *path, const struct lbw_cfg_schema *s,
                                 struct lbw_cfg_diag *d, int *missing)
{
    *missing = 0;
    size_t len;
    _cleanup_free_ char *text = read_text(path, &len);
    if (!text) {
        if (errno == ENOENT) {
            *missing = 1;
        } else if (errno == EFBIG) {
            if (d)
                diag(d, 1, "%s: not a regular file of at most 16 MiB", path);
            else
                LBW_WARN("config", "%s is not a regular file of at most 16 MiB; skipping it", path);
        } else if (d) {
            diag(d, 1, "cannot read %s: %s", path, strerror(errno));
        } else {
            LBW_WARN("config", "cannot read %s: %s; skipping it", path, strerror(errno));
        }
        return NULL;
    }
    char err[300];
    struct lbw_toml *t = lbw_toml_parse(text, len, err, sizeof(err));
    if (d)
        d->files++;
    if (!t) {
        if (d)
            diag(d, 1, "%s: %s", path, err);
        else
            LBW_WARN("config", "%s: %s; skipping this file", path, err);
        return NULL;
    }
    if (d && s)
        lbw_cfg_validate(t, path, s, d);
    return t;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}

/* The config.d/ *.toml names of dir, sorted. Returns the count (names in
 * *out, caller frees each and the array) or -1 with errno (ENOENT: none). */
static ssize_t config_d_names(const char *dir, char ***out)
{
    char path[PATH_MAX];
    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/config.d", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    __attribute__((cleanup(closedirp))) DIR *dd = opendir(path);
    if (!dd)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dd)) && n < CONFIG_MAX_FILES) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".toml") != 0 || e->d_name[0] == '.')
            continue;
        if (lbw_grow(&names, &cap, n + 1, sizeof(*names)) < 0)
            break;
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    *out = names;
    return (ssize_t)n;
}

static struct lbw_toml *load_dir(const char *dir, const struct lbw_cfg_schema *s,
                                 struct lbw_cfg_diag *d)
{
    char err[200];
    struct lbw_toml *cfg = lbw_toml_parse("", 0, err, sizeof(err));
    if (!cfg)
        return NULL;
    char path[PATH_MAX];
    int missing;
    snprintf(path, sizeof(path), "%s/config.toml", dir);
    struct lbw_toml *t = load_one(path, s, d, &missing);
    if (t)
        lbw_toml_merge(cfg, t);
    char **names;
    ssize_t n = config_d_names(dir, &names);
    if (n < 0 && errno != ENOENT && errno != ENOTDIR) {
        if (d)
            diag(d, 1, "cannot list %s/config.d: %s", dir, strerror(errno));
        else
            LBW_WARN("config", "cannot list %s/config.d: %s", dir, strerror(errno));
    }
    for (ssize_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/config.d/%s", dir, names[i]);
        t = load_one(path, s, d, &missing);
        if (t)
            lbw_toml_merge(cfg, t);
        free(names[i]);
    }
    free(names);
    return cfg;
}

struct lbw_toml *lbw_config_load_checked(const char *dir, const struct lbw_cfg_schema *s,
                                         struct lbw_cfg_diag *d)
{
    return load_dir(dir, s, d);
}

struct lbw_toml *lbw_config_load_file(const char *path, const struct lbw_cfg_schema *s,
                                      struct lbw_cfg_diag *d)
{
    int missing;
    struct lbw_toml *t = load_one(path, s, d, &missing);
    if (!t && missing)
        diag(d, 1, "cannot read %s: %s", path, strerror(ENOENT));
    return t;
}

struct lbw_toml *lbw_config_load_dir(const char *dir)
{
    return load_dir(dir, NULL, NULL);
}

struct lbw_toml *lbw_config_load(const char *comp)
{
    char dir[PATH_MAX];
    if (lbw_config_dir(comp, dir, sizeof(dir)) < 0) {
        LBW_WARN("config", "neither LIFEBLOOD_CONFIG_LOCATION nor HOME is set: using defaults");
        char err[64];
        return lbw_toml_parse("", 0, err, sizeof(err));
    }
    return lbw_config_load_dir(dir);
}

int lbw_config_override(struct lbw_toml *cfg, const char *a, char *err, size_t errlen)
{
    const char *eq = strchr(a, '=');
    if (!eq || eq == a) {
        snprintf(err, errlen, "override '%s' is not key=value", a);
        return -1;
    }
    char key[256];
    size_t kl = (size_t)(eq - a);
    if (kl >= sizeof(key)) {
        snprintf(err, errlen, "override key too long");
        return -1;
    }
    memcpy(key, a, kl);
    key[kl] = 0;
    struct lbw_toml *v = lbw_toml_parse_value(eq + 1, err, errlen);
    if (!v) { /* a bare word: a string */
        v = calloc(1, sizeof(*v));
        if (!v)
            return -1;
        v->type = LBW_TOML_STRING;
        v->u.str.s = strdup(eq + 1);
        v->u.str.len = strlen(eq + 1);
        if (!v->u.str.s) {
            free(v);
            return -1;
        }
    }
    if (lbw_toml_set(cfg, key, v) < 0) {
        snprintf(err, errlen, "override '%s': a non-table value is in the way", key);
        return -1;
    }
    return 0;
}

int lbw_config_override_checked(struct lbw_toml *cfg, const char *a,
                                const struct lbw_cfg_schema *s, struct lbw_cfg_diag *d)
{
    char err[300], src[400];
    snprintf(src, sizeof(src), "--config %s", a);
    /* the value alone in a scratch table, for the checks; then the real set */
    struct lbw_toml *scratch = lbw_toml_parse("", 0, err, sizeof(err));
    if (!scratch)
        return -1;
    int rc = lbw_config_override(scratch, a, err, sizeof(err));
    if (rc == 0)
        rc = lbw_cfg_validate(scratch, src, s, d) ? -1 : 0;
    else
        diag(d, 1, "%s: %s", src, err);
    lbw_toml_free(scratch);
    if (rc == 0 && lbw_config_override(cfg, a, err, sizeof(err)) < 0) {
        diag(d, 1, "%s: %s", src, err);
        rc = -1;
    }
    return rc;
}

static int mkdirs(const char *dir)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* ---- generated text ------------------------------------------------------------------ */

/* Appends printf output to b (errors show up as a short text at the end). */
__attribute__((format(printf, 2, 3)))
static void put(struct lbw_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        lbw_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* "# text" wrapped at 78 columns. */
static void comment(struct lbw_buf *b, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t take = strlen(p);
        if (take > 76) {
            take = 76;
            while (take > 20 && p[take] != ' ')
                take--;
        }
        put(b, "# %.*s\n", (int)take, p);
        p += take;
        while (*p == ' ')
            p++;
    }
}

static void default_text(const struct lbw_cfg_keydef *d, char *out, size_t cap)
{
    if (d->def_doc) {
        snprintf(out, cap, "%s", d->def_doc);
        return;
    }
    switch (d->type) {
    case LBW_CFG_BOOL: snprintf(out, cap, "`%s`", d->def_bool ? "true" : "false"); break;
    case LBW_CFG_INT:
    case LBW_CFG_FLOAT: snprintf(out, cap, "`%g`", d->def_num); break;
    case LBW_CFG_STRING: snprintf(out, cap, d->def_str ? "`%s`" : "none", d->def_str); break;
    default: snprintf(out, cap, "none"); break;
    }
}

char *lbw_config_default_worker_text(void)
{
    struct lbw_buf b = {0};
    put(&b, "# lifeblood-worker configuration (the same keys as Lifeblood's worker).\n"
            "# Files in config.d/*.toml next to this one are merged over it in name order.\n"
            "# Check a change before rolling it out: lifeblood-worker config check\n"
            "# Every key, its type and default: lifeblood-worker config keys\n");
    const char *sec = NULL;
    for (size_t i = 0; i < LBW_CFG_NKEYS; i++) {
        const struct lbw_cfg_keydef *d = &worker_keys[i];
        if (d->flags & LBW_CFG_UNUSED)
            continue;
        if (!sec || strcmp(sec, d->section)) {
            sec = d->section;
            put(&b, "\n");
            if (sec[0])
                put(&b, "[%s]\n", sec);
        }
        char doc[600];
        snprintf(doc, sizeof(doc), "%s%s%s%s.", d->flags & LBW_CFG_EXTENSION ? "(extension) " : "",
                 d->doc, d->unit ? ", in " : "", d->unit ? d->unit : "");
        comment(&b, doc);
        if (d->flags & LBW_CFG_ACTIVE)
            put(&b, "%s = %s\n", d->name, d->example);
        else if (d->example)
            put(&b, "# %s = %s\n", d->name, d->example);
    }
    if (lbw_buf_terminate(&b) < 0) {
        lbw_buf_free(&b);
        return NULL;
    }
    return (char *)lbw_buf_steal(&b);
}

char *lbw_config_keys_text(int markdown)
{
    struct lbw_buf b = {0};
    if (markdown)
        put(&b, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < LBW_CFG_NKEYS; i++) {
        const struct lbw_cfg_keydef *d = &worker_keys[i];
        char name[300], def[200], range[120] = "";
        full_name(d, name, sizeof(name));
        default_text(d, def, sizeof(def));
        if (d->type == LBW_CFG_INT || d->type == LBW_CFG_FLOAT)
            snprintf(range, sizeof(range), " (%s%s%.10g to %.10g)", d->unit ? d->unit : "",
                     d->unit ? ", " : "", d->min, d->max);
        const char *pre = d->flags & LBW_CFG_EXTENSION ? "extension: " : "";
        if (markdown) {
            /* a '|' inside a cell is written \| */
            char doc[600];
            size_t k = 0;
            for (const char *p = d->doc; *p && k + 2 < sizeof(doc); p++) {
                if (*p == '|')
                    doc[k++] = '\\';
                doc[k++] = *p;
            }
            doc[k] = 0;
            put(&b, "| `%s` | %s | %s | %s%s%s |\n", name, lbw_cfg_type_name(d->type), def, pre,
                doc, range);
        } else {
            /* the plain form drops the Markdown backquotes */
            char plain[200];
            size_t k = 0;
            for (const char *p = def; *p && k + 1 < sizeof(plain); p++)
                if (*p != '`')
                    plain[k++] = *p;
            plain[k] = 0;
            put(&b, "%s (%s, default %s)\n    %s%s%s\n", name, lbw_cfg_type_name(d->type), plain,
                pre, d->doc, range);
        }
    }
    if (lbw_buf_terminate(&b) < 0) {
        lbw_buf_free(&b);
        return NULL;
    }
    return (char *)lbw_buf_steal(&b);
}

int lbw_config_write_default(const char *dir, int *created, char *err, size_t errlen)
{
    *created = 0;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/config.toml", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "config directory path too long");
        return -1;
    }
    if (access(path, F_OK) == 0)
        return 0;
    if (lbw_config_home_ok(err, errlen) < 0)
        return -1;
    if (mkdirs(dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    _cleanup_free_ char *text = lbw_config_default_worker_text();
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    *created = 1;
    return 0;
}

int lbw_mem_string(const char *s, uint64_t *out)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    const char *num = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == num)
        return -1;
    if (*p == '.') {
        p++;
        const char *frac = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == frac)
            return -1;
    }
    char nb[64];
    size_t nl = (size_t)(p - num);
    if (nl >= sizeof(nb))
        return -1;
    memcpy(nb, num, nl);
    nb[nl] = 0;
    while (*p == ' ')
        p++;
    static const char units[] = "BKMGTP";
    const char *u = *p ? strchr(units, *p) : NULL;
    if (!u)
        return -1;
    p++;
    while (*p == ' ')
        p++;
    if (*p)
        return -1;
    double v = strtod(nb, NULL);
    int e = (int)(u - units) * 3; /* 10^e */
    double r;
    if (e >= 9) { /* int(number * 10^6) * (unit / 10^6), as upstream */
        double m = 1;
        for (int i = 0; i < e - 6; i++)
            m *= 10;
        if (!(v * 1e6 < 18446744073709551615.0))
            return -1; /* more bytes than 64 bits hold (and no undefined conversion) */
        r = (double)(uint64_t)(v * 1e6) * m;
    } else {
        double m = 1;
        for (int i = 0; i < e; i++)
            m *= 10;
        r = v * m;
    }
    if (r >= 18446744073709551615.0)
        return -1;
    *out = (uint64_t)r;
    return 0;
}
