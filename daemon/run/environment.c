/* environment.c — see environment.h. */
#include "environment.h"

#include "semver.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup.h"
#include "json.h"
#include "log.h"

void lbw_env_init(struct lbw_env *e) { memset(e, 0, sizeof(*e)); }

size_t lbw_env_exec_limit(void)
{
    long a = sysconf(_SC_ARG_MAX); /* a quarter of the stack limit, at least 128 KiB */
    size_t cap = 6u << 20;         /* the kernel's ceiling: 3/4 of an 8 MiB stack */
    return a <= 0 ? LBW_ENV_STRING_MAX : (size_t)a < cap ? (size_t)a : cap;
}

/* What execve counts for one variable: "NAME=value\0" and its pointer. */
static size_t cost(size_t nl, size_t vl) { return nl + vl + 2 + sizeof(char *); }

void lbw_env_free(struct lbw_env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->names[i]);
        free(e->values[i]);
    }
    free(e->names);
    free(e->values);
    free(e->slot);
    lbw_env_init(e);
}

/* Names are found through a hash index (a job may set hundreds of
 * thousands of LBATTR_ names: a scan per assignment would be quadratic). */
static size_t name_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

static ssize_t find(const struct lbw_env *e, const char *name, size_t nlen)
{
    if (!e->nslot)
        return -1;
    for (size_t k = name_hash(name, nlen) & (e->nslot - 1);; k = (k + 1) & (e->nslot - 1)) {
        size_t i = e->slot[k];
        if (!i)
            return -1;
        if (!strncmp(e->names[i - 1], name, nlen) && e->names[i - 1][nlen] == 0)
            return (ssize_t)(i - 1);
    }
}

static void slot_put(size_t *slot, size_t nslot, const char *name, size_t entry)
{
    size_t k = name_hash(name, strlen(name)) & (nslot - 1);
    while (slot[k])
        k = (k + 1) & (nslot - 1);
    slot[k] = entry + 1;
}

/* Room in the index for one more name. 0 or -ENOMEM. */
static int slot_reserve(struct lbw_env *e)
{
    if (2 * (e->n + 1) <= e->nslot)
        return 0;
    size_t ns = e->nslot ? 2 * e->nslot : 128;
    size_t *s = calloc(ns, sizeof(*s));
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < e->n; i++)
        slot_put(s, ns, e->names[i], i);
    free(e->slot);
    e->slot = s;
    e->nslot = ns;
    return 0;
}

const char *lbw_env_get(const struct lbw_env *e, const char *name)
{
    ssize_t i = find(e, name, strlen(name));
    return i < 0 ? NULL : e->values[i];
}

/* Takes ownership of value (NULL: the expansion failed, errno says why). */
static int put(struct lbw_env *e, const char *name, char *value)
{
    if (!value)
        return errno == E2BIG ? -E2BIG : -ENOMEM;
    size_t nl = strlen(name), vl = strlen(value);
    if (nl + vl + 2 > LBW_ENV_STRING_MAX) {
        free(value);
        return -E2BIG;
    }
    ssize_t i = find(e, name, nl);
    size_t old = i >= 0 ? cost(nl, strlen(e->values[i])) : 0;
    if (e->limit && e->total - old + cost(nl, vl) > e->limit) {
        free(value);
        e->over_limit = 1;
        return -E2BIG;
    }
    e->total = e->total - old + cost(nl, vl);
    if (i >= 0) {
        free(e->values[i]);
        e->values[i] = value;
        return 0;
    }
    size_t cn = e->cap, cv = e->cap; /* names and values grow together */
    if (lbw_grow(&e->names, &cn, e->n + 1, sizeof(*e->names)) < 0 ||
        lbw_grow(&e->values, &cv, e->n + 1, sizeof(*e->values)) < 0 || slot_reserve(e) < 0) {
        e->total -= cost(nl, vl);
        free(value);
        return -ENOMEM;
    }
    e->cap = cn < cv ? cn : cv;
    e->names[e->n] = strdup(name);
    if (!e->names[e->n]) {
        e->total -= cost(nl, vl);
        free(value);
        return -ENOMEM;
    }
    slot_put(e->slot, e->nslot, e->names[e->n], e->n);
    e->values[e->n++] = value;
    return 0;
}

int lbw_env_set_raw(struct lbw_env *e, const char *name, const char *value)
{
    char *v = strdup(value);
    if (!v)
        errno = ENOMEM;
    return put(e, name, v);
}

/* A word character as Python's \w sees str: letters and digits of any
 * script and '_'. Non-ASCII bytes are taken as part of a name. */
static int wordc(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}

char *lbw_env_expand(const struct lbw_env *e, const char *v)
{
    size_t first = strlen(v) + 64;
    if (first > LBW_ENV_STRING_MAX)
        first = LBW_ENV_STRING_MAX;
    struct lbw_buf out = {0};
    int rc = lbw_buf_reserve(&out, first);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    for (const char *p = v; *p;) {
        const char *name = NULL, *next = p + 1;
        size_t nl = 0;
        if (*p == '$') {
            if (p[1] == '{') {
                const char *q = p + 2;
                while (wordc((unsigned char)*q))
                    q++;
                if (q > p + 2 && *q == '}') {
                    name = p + 2;
                    nl = (size_t)(q - name);
                    next = q + 1;
                }
            } else {
                const char *q = p + 1;
                while (wordc((unsigned char)*q))
                    q++;
                if (q > p + 1) {
                    name = p + 1;
                    nl = (size_t)(q - name);
                    next = q;
                }
            }
        }
        const char *add = p;
        size_t al = 1;
        if (name) {
            ssize_t i = find(e, name, nl);
            add = i >= 0 ? e->values[i] : "";
            al = strlen(add);
        }
        if (out.len + al + 1 > LBW_ENV_STRING_MAX) { /* execve would refuse it anyway */
            lbw_buf_free(&out);
            errno = E2BIG;
            return NULL;
        }
        if ((rc = lbw_buf_append(&out, add, al)) < 0) {
            lbw_buf_free(&out);
            errno = -rc;
            return NULL;
        }
        p = next;
    }
    if ((rc = lbw_buf_terminate(&out)) < 0) {
        lbw_buf_free(&out);
        errno = -rc;
        return NULL;
    }
    return (char *)lbw_buf_steal(&out);
}

int lbw_env_set(struct lbw_env *e, const char *name, const char *value)
{
    return put(e, name, lbw_env_expand(e, value));
}

static int join(struct lbw_env *e, const char *name, const char *value, int front)
{
    const char *cur = lbw_env_get(e, name);
    if (!cur)
        return lbw_env_set(e, name, value);
    char *ex = lbw_env_expand(e, value);
    if (!ex)
        return errno == E2BIG ? -E2BIG : -ENOMEM;
    size_t l = strlen(ex) + strlen(cur) + 2;
    if (l > LBW_ENV_STRING_MAX) {
        free(ex);
        return -E2BIG;
    }
    char *j = malloc(l);
    if (!j) {
        free(ex);
        return -ENOMEM;
    }
    const char *a = front ? ex : cur, *b = front ? cur : ex;
    size_t al = strlen(a);
    memcpy(j, a, al);
    j[al] = ':';
    memcpy(j + al + 1, b, strlen(b) + 1);
    free(ex);
    int rc = lbw_env_set(e, name, j); /* upstream expands the whole again */
    free(j);
    return rc;
}

int lbw_env_prepend(struct lbw_env *e, const char *name, const char *value)
{
    return join(e, name, value, 1);
}

int lbw_env_append(struct lbw_env *e, const char *name, const char *value)
{
    return join(e, name, value, 0);
}

char **lbw_env_envp(const struct lbw_env *e)
{
    char **v = calloc(e->n + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < e->n; i++) {
        size_t l = strlen(e->names[i]) + strlen(e->values[i]) + 2;
        v[i] = malloc(l);
        if (!v[i]) {
            lbw_env_free_envp(v);
            return NULL;
        }
        snprintf(v[i], l, "%s=%s", e->names[i], e->values[i]);
    }
    return v;
}

void lbw_env_free_envp(char **envp)
{
    if (!envp)
        return;
    for (char **p = envp; *p; p++)
        free(*p);
    free(envp);
}

/* ---- Python str()/repr() of decoded values ----------------------------------- */

struct sb {
    struct lbw_buf b;
    size_t max; /* the text's budget in bytes; 0: none */
    int bad;    /* -ENOMEM, or -E2BIG past max */
};

static void sput(struct sb *s, const char *t, size_t l)
{
    if (s->bad)
        return;
    if (s->max && s->b.len + l > s->max) {
        s->bad = -E2BIG;
        return;
    }
    if (lbw_buf_append(&s->b, t, l) < 0)
        s->bad = -ENOMEM;
}

/* The text as a malloc'd C string ("" when empty), or NULL. */
static char *sb_take(struct sb *s)
{
    if (s->bad || lbw_buf_terminate(&s->b) < 0) {
        lbw_buf_free(&s->b);
        return NULL;
    }
    return (char *)lbw_buf_steal(&s->b);
}

static void sputs(struct sb *s, const char *t) { sput(s, t, strlen(t)); }

static void py_float(struct sb *s, double f)
{
    char b[64];
    if (isnan(f))
        sputs(s, "nan");
    else if (isinf(f))
        sputs(s, f > 0 ? "inf" : "-inf");
    else {
        lbw_json_fmt_double(f, b, sizeof(b));
        sputs(s, b);
    }
}

/* repr() of a str: single quotes unless it holds ' and no ", as Python. */
static void py_str_repr(struct sb *s, const uint8_t *p, size_t n)
{
    int sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    sput(s, &q, 1);
    for (size_t i = 0; i < n; i++) {
        char c = (char)p[i];
        char esc[8];
        if (c == q || c == '\\') {
            esc[0] = '\\';
            esc[1] = c;
            sput(s, esc, 2);
        } else if (c == '\n') {
            sputs(s, "\\n");
        } else if (c == '\r') {
            sputs(s, "\\r");
        } else if (c == '\t') {
            sputs(s, "\\t");
        } else if ((unsigned char)c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)c);
            sputs(s, esc);
        } else {
            sput(s, &c, 1);
        }
    }
    sput(s, &q, 1);
}

/* Every node written adds at least one byte, and the walk stops as soon as
 * the text passes its budget: its work is bounded by the budget, however
 * often values are shared. */
static int py_repr(struct sb *s, const struct lbw_pk *v, int depth, int top_str)
{
    if (s->bad)
        return -1;
    if (depth > LBW_PK_STR_DEPTH) {
        s->bad = -ELOOP;
        return -1;
    }
    char b[64];
    switch (v->kind) {
    case LBW_PK_NONE: sputs(s, "None"); return 0;
    case LBW_PK_BOOL: sputs(s, v->u.b ? "True" : "False"); return 0;
    case LBW_PK_INT:
        snprintf(b, sizeof(b), "%lld", (long long)v->u.i);
        sputs(s, b);
        return 0;
    case LBW_PK_BIGINT: { /* above 4,300 digits str() raises, as in Python */
        char t[LBW_PK_INT_TEXT_CAP];
        if (lbw_pk_bigint_text(v->u.s.p, v->u.s.n, t, sizeof(t)) < 0)
            return -1;
        sputs(s, t);
        return 0;
    }
    case LBW_PK_FLOAT: py_float(s, v->u.f); return 0;
    case LBW_PK_STR:
        if (top_str)
            sput(s, (const char *)v->u.s.p, v->u.s.n);
        else
            py_str_repr(s, v->u.s.p, v->u.s.n);
        return 0;
    case LBW_PK_LIST:
    case LBW_PK_TUPLE:
        sputs(s, v->kind == LBW_PK_LIST ? "[" : "(");
        for (size_t i = 0; i < v->u.seq.n; i++) {
            if (i)
                sputs(s, ", ");
            if (py_repr(s, v->u.seq.v[i], depth + 1, 0) < 0 || s->bad)
                return -1;
        }
        if (v->kind == LBW_PK_TUPLE && v->u.seq.n == 1)
            sputs(s, ",");
        sputs(s, v->kind == LBW_PK_LIST ? "]" : ")");
        return 0;
    case LBW_PK_DICT:
        sputs(s, "{");
        for (size_t i = 0; i + 1 < v->u.seq.n; i += 2) {
            if (i)
                sputs(s, ", ");
            if (py_repr(s, v->u.seq.v[i], depth + 1, 0) < 0 || s->bad)
                return -1;
            sputs(s, ": ");
            if (py_repr(s, v->u.seq.v[i + 1], depth + 1, 0) < 0 || s->bad)
                return -1;
        }
        sputs(s, "}");
        return 0;
    default:
        return -1;
    }
}

char *lbw_pk_pystr_max(const struct lbw_pk *v, size_t max, char *err, size_t errlen)
{
    struct sb s = {.max = max};
    if (err && errlen)
        err[0] = 0;
    if (py_repr(&s, v, 0, 1) < 0 || s.bad) {
        lbw_buf_free(&s.b);
        if (err && s.bad == -E2BIG)
            snprintf(err, errlen, "its text is longer than %zu bytes", max);
        else if (err && s.bad == -ELOOP)
            snprintf(err, errlen, "it is nested deeper than %d levels", LBW_PK_STR_DEPTH);
        else if (err && s.bad == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        else if (err)
            snprintf(err, errlen, "it has no simple text (an object, bytes or a huge integer)");
        errno = s.bad == -ENOMEM ? ENOMEM : s.bad ? E2BIG : EINVAL;
        return NULL;
    }
    return sb_take(&s);
}

char *lbw_pk_pystr(const struct lbw_pk *v)
{
    return lbw_pk_pystr_max(v, LBW_ENV_STRING_MAX, NULL, 0);
}

static char *toml_pystr(const struct lbw_toml *v)
{
    struct sb s = {0};
    char b[64];
    switch (v->type) {
    case LBW_TOML_STRING: return strdup(v->u.str.s);
    case LBW_TOML_INT:
        snprintf(b, sizeof(b), "%lld", (long long)v->u.i);
        return strdup(b);
    case LBW_TOML_FLOAT:
        py_float(&s, v->u.f);
        return sb_take(&s);
    case LBW_TOML_BOOL: return strdup(v->u.b ? "True" : "False");
    default: return NULL;
    }
}

/* ---- StandardEnvironmentResolver (docs/PROTOCOL.md 7.3, 9.3) ----------------------- */

struct pick {
    const char *name;
    const struct lbw_toml *entry; /* the chosen version's table */
    double priority;
    size_t order;
};

static int apply_var(struct lbw_env *e, const char *var, const struct lbw_toml *v)
{
    if (v->type != LBW_TOML_TABLE) {
        char *s = toml_pystr(v);
        if (v->type == LBW_TOML_ARRAY) { /* set = list: joined with ':' */
            free(s);
            s = NULL;
        }
        if (v->type != LBW_TOML_ARRAY) {
            int r = s ? lbw_env_set(e, var, s) : 0;
            free(s);
            return r;
        }
    }
    const struct lbw_toml *pre = v->type == LBW_TOML_TABLE ? lbw_toml_member(v, "prepend") : NULL;
    const struct lbw_toml *app = v->type == LBW_TOML_TABLE ? lbw_toml_member(v, "append") : NULL;
    const struct lbw_toml *set = v->type == LBW_TOML_TABLE ? lbw_toml_member(v, "set") : v;
    if (pre) {
        if (pre->type == LBW_TOML_ARRAY) {
            for (size_t i = pre->u.arr.n; i-- > 0;) {
                char *s = toml_pystr(pre->u.arr.v[i]);
                int r = s ? lbw_env_prepend(e, var, s) : 0;
                free(s);
                if (r < 0)
                    return r;
            }
        } else {
            char *s = toml_pystr(pre);
            int r = s ? lbw_env_prepend(e, var, s) : 0;
            free(s);
            if (r < 0)
                return r;
        }
    }
    if (app) {
        size_t n = app->type == LBW_TOML_ARRAY ? app->u.arr.n : 1;
        for (size_t i = 0; i < n; i++) {
            char *s = toml_pystr(app->type == LBW_TOML_ARRAY ? app->u.arr.v[i] : app);
            int r = s ? lbw_env_append(e, var, s) : 0;
            free(s);
            if (r < 0)
                return r;
        }
    }
    if (set) {
        char *joined = NULL;
        if (set->type == LBW_TOML_ARRAY) {
            size_t len = 1;
            char **parts = calloc(set->u.arr.n + 1, sizeof(char *));
            if (!parts)
                return -1;
            for (size_t i = 0; i < set->u.arr.n; i++) {
                parts[i] = toml_pystr(set->u.arr.v[i]);
                len += (parts[i] ? strlen(parts[i]) : 0) + 1;
            }
            joined = malloc(len);
            if (joined) { /* appended at an offset: strcat would rescan */
                size_t at = 0;
                for (size_t i = 0; i < set->u.arr.n; i++) {
                    if (i)
                        joined[at++] = ':';
                    size_t pl = parts[i] ? strlen(parts[i]) : 0;
                    memcpy(joined + at, parts[i] ? parts[i] : "", pl);
                    at += pl;
                }
                joined[at] = 0;
            }
            for (size_t i = 0; i < set->u.arr.n; i++)
                free(parts[i]);
            free(parts);
        } else {
            joined = toml_pystr(set);
        }
        int r = joined ? lbw_env_set(e, var, joined) : -1;
        free(joined);
        if (r < 0)
            return r;
    }
    return 0;
}

static int pick_cmp(const void *a, const void *b)
{
    const struct pick *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Applies the packages the arguments ask for onto base. */
static int standard_resolve(const struct lbw_toml *cfg, const struct lbw_env *args,
                            struct lbw_env *base, char *err, size_t errlen)
{
    const struct lbw_toml *pk = cfg ? lbw_toml_member(cfg, "packages") : NULL;
    if (!pk || pk->type != LBW_TOML_TABLE) {
        snprintf(err, errlen, "the standard environment resolver config has no [packages]");
        return LBW_ENV_RESOLVER;
    }
    _cleanup_free_ struct pick *picks = calloc(args->n + 1, sizeof(*picks));
    size_t np = 0;
    if (!picks)
        return LBW_ENV_EXCEPTION;
    for (size_t i = 0; i < args->n; i++) {
        if (strncmp(args->names[i], "package.", 8))
            continue;
        const char *name = args->names[i] + 8, *spec = args->values[i];
        const struct lbw_toml *versions = lbw_toml_member(pk, name);
        if (!versions || versions->type != LBW_TOML_TABLE) {
            snprintf(err, errlen, "package '%s' is not configured", name);
            return LBW_ENV_RESOLVER;
        }
        const struct lbw_toml *best = NULL;
        struct lbw_semver bv = {0};
        for (size_t k = 0; k < versions->u.tab.n; k++) {
            struct lbw_semver v;
            if (lbw_semver_parse(versions->u.tab.keys[k], &v) < 0) {
                snprintf(err, errlen, "package '%s': '%s' is not a semantic version", name,
                         versions->u.tab.keys[k]);
                return LBW_ENV_RESOLVER;
            }
            int m = lbw_semver_match(spec, &v);
            if (m < 0) {
                snprintf(err, errlen, "package '%s': bad version spec '%s'", name, spec);
                return LBW_ENV_RESOLVER;
            }
            if (m && (!best || lbw_semver_cmp(&v, &bv) > 0)) {
                best = versions->u.tab.vals[k];
                bv = v;
            }
        }
        if (!best) {
            snprintf(err, errlen, "package '%s': no configured version matches '%s'", name,
                     spec);
            return LBW_ENV_RESOLVER;
        }
        const struct lbw_toml *pr = best->type == LBW_TOML_TABLE ?
                                        lbw_toml_member(best, "priority") : NULL;
        picks[np].name = name;
        picks[np].entry = best;
        picks[np].priority = !pr ? 50 : pr->type == LBW_TOML_FLOAT ? pr->u.f :
                             pr->type == LBW_TOML_INT ? (double)pr->u.i : 50;
        picks[np].order = np;
        np++;
    }
    qsort(picks, np, sizeof(*picks), pick_cmp);
    for (size_t i = 0; i < np; i++) {
        const struct lbw_toml *env = picks[i].entry->type == LBW_TOML_TABLE ?
                                         lbw_toml_member(picks[i].entry, "env") : NULL;
        if (!env || env->type != LBW_TOML_TABLE)
            continue;
        for (size_t k = 0; k < env->u.tab.n; k++) {
            int r = apply_var(base, env->u.tab.keys[k], env->u.tab.vals[k]);
            if (r == -E2BIG) {
                snprintf(err, errlen, "package '%s' makes %s longer than %u bytes (E2BIG)",
                         picks[i].name, env->u.tab.keys[k], LBW_ENV_STRING_MAX);
                return LBW_ENV_TOO_BIG;
            }
            if (r < 0) {
                snprintf(err, errlen, "out of memory");
                return LBW_ENV_EXCEPTION;
            }
        }
    }
    const char *user = lbw_env_get(args, "user");
    if (user && (lbw_env_set(base, "USER", user) < 0 || lbw_env_set(base, "LOGNAME", user) < 0 ||
                 lbw_env_set(base, "USERNAME", user) < 0)) {
        snprintf(err, errlen, "cannot set USER to the 'user' argument");
        return LBW_ENV_EXCEPTION;
    }
    return LBW_ENV_OK;
}

/* ---- the whole environment of a job ---------------------------------------- */

/* Where building stopped: the variable, and -ENOMEM or -E2BIG. */
struct why {
    int rc;
    const char *name;
};

static int note(struct why *w, int rc, const char *name)
{
    if (rc < 0 && !w->rc) {
        w->rc = rc;
        w->name = name;
    }
    return rc;
}

int lbw_env_for_job(const struct lbw_env_inputs *in, struct lbw_env *out, char *err,
                    size_t errlen)
{
    lbw_env_init(out);
    struct lbw_env base, args;
    lbw_env_init(&base);
    lbw_env_init(&args);
    int rc = LBW_ENV_EXCEPTION;
    struct why w = {0};
    /* 1. resolver and its arguments */
    const char *rname = NULL;
    struct lbw_pk *jargs = NULL;
    if (lbw_inv_envres(in->job, &rname, &jargs) < 0) {
        snprintf(err, errlen, "the job's environment resolver arguments are malformed");
        goto out;
    }
    int from_job = rname != NULL || jargs != NULL;
    if (!from_job)
        rname = in->resolver_name ? in->resolver_name : "TrivialEnvironmentResolver";
    if (!rname)
        rname = "TrivialEnvironmentResolver";
    /* 2. base environment */
    for (char *const *p = in->worker_environ; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq || eq == *p)
            continue;
        char name[4096];
        size_t nl = (size_t)(eq - *p);
        if (nl >= sizeof(name))
            continue;
        memcpy(name, *p, nl);
        name[nl] = 0;
        if (note(&w, lbw_env_set_raw(&base, name, eq + 1), *p) < 0)
            goto oom;
    }
    /* a root worker's payload user: its own home and name, not root's (a
     * HOME of /root would leave every tool that writes its preferences
     * there failing); before the job's own values, which still win */
    if (in->user_name &&
        (note(&w, lbw_env_set_raw(&base, "USER", in->user_name), "USER") < 0 ||
         note(&w, lbw_env_set_raw(&base, "LOGNAME", in->user_name), "LOGNAME") < 0 ||
         (in->user_home && note(&w, lbw_env_set_raw(&base, "HOME", in->user_home), "HOME") < 0)))
        goto oom;
    /* the resolver's arguments as text pairs, from the job or the config */
    if (from_job && jargs) {
        for (size_t i = 0; i + 1 < jargs->u.seq.n; i += 2) {
            const struct lbw_pk *k = jargs->u.seq.v[i];
            if (k->kind != LBW_PK_STR)
                continue;
            char why[128];
            char *val = lbw_pk_pystr_max(jargs->u.seq.v[i + 1], LBW_ENV_STRING_MAX, why,
                                         sizeof(why));
            if (!val && errno == E2BIG) {
                snprintf(err, errlen, "environment resolver argument '%.200s': %s (E2BIG)",
                         (const char *)k->u.s.p, why);
                rc = LBW_ENV_TOO_BIG;
                goto out;
            }
            int r = val ? lbw_env_set_raw(&args, (const char *)k->u.s.p, val) : 0;
            free(val);
            if (note(&w, r, (const char *)k->u.s.p) < 0)
                goto oom;
        }
    } else if (!from_job && in->resolver_args_cfg &&
               in->resolver_args_cfg->type == LBW_TOML_TABLE) {
        const struct lbw_toml *t = in->resolver_args_cfg;
        for (size_t i = 0; i < t->u.tab.n; i++) {
            char *val = toml_pystr(t->u.tab.vals[i]);
            int r = val ? lbw_env_set_raw(&args, t->u.tab.keys[i], val) : 0;
            free(val);
            if (note(&w, r, t->u.tab.keys[i]) < 0)
                goto oom;
        }
    }
    if (!strcmp(rname, "TrivialEnvironmentResolver")) {
        for (size_t i = 0; i < args.n; i++)
            if (note(&w, lbw_env_set(&base, args.names[i], args.values[i]), args.names[i]) < 0)
                goto oom;
    } else if (!strcmp(rname, "StandardEnvironmentResolver")) {
        rc = standard_resolve(in->stdres_cfg, &args, &base, err, errlen);
        if (rc != LBW_ENV_OK)
            goto out;
        rc = LBW_ENV_EXCEPTION;
    } else {
        snprintf(err, errlen, "unknown environment resolver '%s'", rname);
        goto out;
    }
    /* 3. the copy re-assigns every inherited value, in order; from here on
     * the environment is held to what execve accepts */
    out->limit = lbw_env_exec_limit();
    for (size_t i = 0; i < base.n; i++)
        if (note(&w, lbw_env_set(out, base.names[i], base.values[i]), base.names[i]) < 0)
            goto oom;
    struct lbw_env_action *acts;
    size_t na;
    if (lbw_inv_env_actions(in->job, &acts, &na) < 0) {
        snprintf(err, errlen, "the job's environment action queue is malformed");
        goto out;
    }
    for (size_t i = 0; i < na; i++) {
        int r = !strcmp(acts[i].method, "prepend")  ? lbw_env_prepend(out, acts[i].name, acts[i].value)
                : !strcmp(acts[i].method, "append") ? lbw_env_append(out, acts[i].name, acts[i].value)
                                                    : lbw_env_set(out, acts[i].name, acts[i].value);
        if (note(&w, r, acts[i].name) < 0) {
            w.name = NULL; /* acts[] goes away below */
            free(acts);
            goto oom;
        }
    }
    free(acts);
    /* 4. the runtime module */
    if (in->runtime_dir &&
        note(&w, lbw_env_prepend(out, "PYTHONPATH", in->runtime_dir), "PYTHONPATH") < 0)
        goto oom;
    /* 5. runtime variables */
    int64_t id;
    char b[32];
    int has = lbw_inv_invocation_id(in->job, &id);
    snprintf(b, sizeof(b), has == 1 ? "%lld" : "None", (long long)id);
    if (note(&w, lbw_env_set(out, "LIFEBLOOD_RUNTIME_IID", b), "LIFEBLOOD_RUNTIME_IID") < 0)
        goto oom;
    has = lbw_inv_task_id(in->job, &id);
    snprintf(b, sizeof(b), has == 1 ? "%lld" : "None", (long long)id);
    if (note(&w, lbw_env_set(out, "LIFEBLOOD_RUNTIME_TID", b), "LIFEBLOOD_RUNTIME_TID") < 0)
        goto oom;
    if (in->runtime_addr &&
        note(&w, lbw_env_set(out, "LIFEBLOOD_RUNTIME_SCHEDULER_ADDR", in->runtime_addr),
             "LIFEBLOOD_RUNTIME_SCHEDULER_ADDR") < 0)
        goto oom;
    /* 6. LBATTR_<name> for plain attributes */
    const struct lbw_pk *at = lbw_inv_attrs(in->job);
    for (size_t i = 0; at && i + 1 < at->u.seq.n; i += 2) {
        const struct lbw_pk *k = at->u.seq.v[i], *v = at->u.seq.v[i + 1];
        if (k->kind != LBW_PK_STR || k->u.s.n == 0 || k->u.s.p[0] == '_' ||
            memchr(k->u.s.p, 0, k->u.s.n) || memchr(k->u.s.p, '=', k->u.s.n))
            continue;
        if (v->kind != LBW_PK_STR && v->kind != LBW_PK_INT && v->kind != LBW_PK_BIGINT &&
            v->kind != LBW_PK_BOOL && v->kind != LBW_PK_FLOAT)
            continue;
        /* too long for execve on its own: not exported (the value as text
         * is at least as long as a str; other kinds are short) */
        if (v->kind == LBW_PK_STR && k->u.s.n + 7 + v->u.s.n + 2 > LBW_ENV_STRING_MAX) {
            LBW_WARN("environment", "task attribute '%.200s' is %zu bytes, more than execve "
                     "takes for one variable (%u bytes with its name): not exported as "
                     "LBATTR_%.200s", (const char *)k->u.s.p, v->u.s.n, LBW_ENV_STRING_MAX,
                     (const char *)k->u.s.p);
            continue;
        }
        char *val = lbw_pk_pystr(v), *ex = NULL;
        if (!val && v->kind == LBW_PK_BIGINT) {
            LBW_WARN("environment", "task attribute '%s' is an integer of more than %d digits: "
                     "not exported as LBATTR_%s", (const char *)k->u.s.p,
                     LBW_PK_INT_MAX_DIGITS, (const char *)k->u.s.p);
            continue;
        }
        size_t nl = k->u.s.n + 8;
        char *name = malloc(nl);
        if (!val || !name) {
            free(val);
            free(name);
            goto oom;
        }
        snprintf(name, nl, "LBATTR_%s", (const char *)k->u.s.p);
        ex = lbw_env_expand(out, val);
        free(val);
        int r = ex ? 0 : errno == E2BIG ? -E2BIG : -ENOMEM;
        if (r == 0 && strlen(name) + strlen(ex) + 2 > LBW_ENV_STRING_MAX)
            r = -E2BIG;
        if (r == -E2BIG) { /* longer than one variable may be, once expanded */
            LBW_WARN("environment", "task attribute '%.200s' expands to more than execve "
                     "takes for one variable (%u bytes with its name): not exported as "
                     "LBATTR_%.200s", (const char *)k->u.s.p, LBW_ENV_STRING_MAX,
                     (const char *)k->u.s.p);
            free(ex);
            free(name);
            continue;
        }
        r = r < 0 ? r : put(out, name, TAKE_PTR(ex));
        free(name);
        if (note(&w, r, (const char *)k->u.s.p) < 0)
            goto oom;
    }
    /* 7. extra files */
    if (in->extra_files_root &&
        note(&w, lbw_env_set(out, "LB_EF_ROOT", in->extra_files_root), "LB_EF_ROOT") < 0)
        goto oom;
    rc = LBW_ENV_OK;
    goto out;
oom:
    if (w.rc == -E2BIG) {
        char nm[160];
        snprintf(nm, sizeof(nm), "%.150s", w.name ? w.name : "a variable");
        char *eq = strchr(nm, '=');
        if (eq)
            *eq = 0;
        snprintf(err, errlen, "the environment is too big for execve (E2BIG): setting %s would "
                 "make it %s (each variable at most %u bytes, all together at most %zu; "
                 "%zu bytes in %zu variables so far)", nm,
                 out->over_limit ? "pass the total" : "longer than one variable may be",
                 LBW_ENV_STRING_MAX, lbw_env_exec_limit(), out->total, out->n);
        rc = LBW_ENV_TOO_BIG;
    } else {
        snprintf(err, errlen, "out of memory building the environment");
        rc = LBW_ENV_EXCEPTION;
    }
out:
    lbw_env_free(&base);
    lbw_env_free(&args);
    if (rc != LBW_ENV_OK)
        lbw_env_free(out);
    return rc;
}
