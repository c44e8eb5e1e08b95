/* invocation.c — see invocation.h. */
#include "invocation.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define JK(k) "_InvocationJob__" k
#define RK(k) "_InvocationRequirements__" k

/* ---- what upstream's pickles may contain (PROTOCOL.md 3.1-3.3) -------------
 *
 * Every global reference is allowed only in the exact shape upstream's
 * classes produce; anything else is refused before the job is used or
 * returned, so the scheduler's pickle.loads never meets a call we did
 * not recognise:
 *   - a class below, instantiated: NEWOBJ(cls, ()) then BUILD(dict of str
 *     keys), or copyreg._reconstructor(cls, builtins.object, None) then
 *     BUILD (protocol 0/1);
 *   - re._compile(pattern str|bytes, flags int), no state;
 *   - an enum member: builtins.getattr(<enum class>, 'MEMBER') with an
 *     upper-case member name, or <enum class>(value int|str), no state;
 *   - builtins.set/frozenset(list), builtins.bytearray(bytes),
 *     _codecs.encode(str, 'latin1'): folded into plain values while
 *     decoding, so a reference to them that is still there is refused.
 * A global anywhere else (a bare reference as a value, a call of a
 * computed value, a getattr chain) is refused with its name and offset. */

static const char *const classes[][2] = {
    {"lifeblood.invocationjob", "InvocationJob"},
    {"lifeblood.invocationjob", "InvocationEnvironment"},
    {"lifeblood.invocationjob", "InvocationRequirements"},
    {"lifeblood.environment_resolver", "EnvironmentResolverArguments"},
    {"lifeblood.net_classes", "WorkerResources"},
    {"lifeblood.taskspawn", "TaskSpawn"},
    {"lifeblood.taskspawn", "NewTask"},
    {"lifeblood_connection", "TaskSpawn"},
    {"lifeblood_connection", "EnvironmentResolverArguments"},
};

/* lifeblood.enums classes (PROTOCOL.md 2.2). */
static const char *const enums[] = {
    "WorkerState", "WorkerPingReply", "TaskScheduleStatus", "WorkerType", "SpawnStatus",
    "ProcessPriorityAdjustment", "InvocationState", "InvocationMessageResult",
    "WorkerPingState", "TaskState",
};

/* The members of the enums whose members are known (docs/PROTOCOL.md 2.2):
 * a pickle naming another member or value would make the scheduler's
 * unpickling fail. The other enums are checked for shape only. */
static const struct {
    const char *cls;
    const char *names[8];
    int values[8];
} enum_members[] = {
    {"WorkerState", {"OFF", "IDLE", "BUSY", "ERROR", "INVOKING", "UNKNOWN"}, {0, 1, 2, 3, 4, 5}},
    {"WorkerPingReply", {"IDLE", "BUSY"}, {0, 1}},
    {"TaskScheduleStatus", {"SUCCESS", "FAILED", "BUSY", "EMPTY"}, {0, 1, 2, 3}},
    {"WorkerType", {"STANDARD", "SCHEDULER_HELPER"}, {0, 1}},
    {"SpawnStatus", {"SUCCEEDED", "FAILED"}, {0, 1}},
    {"ProcessPriorityAdjustment", {"NO_CHANGE", "LOWER"}, {0, 1}},
};

/* 1 when enum class g has the member named (name) or valued (value: an
 * int) v, or when its members are not known here; 0 when it has none such. */
static int enum_has(const struct lbw_pk *g, const struct lbw_pk *v, int by_name)
{
    for (size_t i = 0; i < sizeof(enum_members) / sizeof(enum_members[0]); i++) {
        if (strcmp(g->u.g.name, enum_members[i].cls))
            continue;
        for (size_t k = 0; k < 8 && enum_members[i].names[k]; k++) {
            if (by_name ? lbw_pk_str_eq(v, enum_members[i].names[k])
                        : (v->kind == LBW_PK_INT && v->u.i == enum_members[i].values[k]))
                return 1;
        }
        return 0;
    }
    return 1;
}

static const char *const helpers[][2] = {
    {"re", "_compile"},          {"builtins", "getattr"},   {"builtins", "set"},
    {"builtins", "frozenset"},   {"builtins", "bytearray"}, {"builtins", "object"},
    {"copyreg", "_reconstructor"}, {"_codecs", "encode"},
};

static int in_pairs(const char *const (*t)[2], size_t n, const char *module, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(module, t[i][0]) && !strcmp(name, t[i][1]))
            return 1;
    return 0;
}

static int is_class(const struct lbw_pk *g)
{
    return g && g->kind == LBW_PK_GLOBAL &&
           in_pairs(classes, sizeof(classes) / sizeof(classes[0]), g->u.g.module, g->u.g.name);
}

static int is_enum(const struct lbw_pk *g)
{
    if (!g || g->kind != LBW_PK_GLOBAL || strcmp(g->u.g.module, "lifeblood.enums"))
        return 0;
    for (size_t i = 0; i < sizeof(enums) / sizeof(enums[0]); i++)
        if (!strcmp(g->u.g.name, enums[i]))
            return 1;
    return 0;
}

int lbw_pk_global_allowed(const char *module, const char *name)
{
    struct lbw_pk g = {.kind = LBW_PK_GLOBAL, .u.g = {(char *)module, (char *)name}};
    return is_class(&g) || is_enum(&g) ||
           in_pairs(helpers, sizeof(helpers) / sizeof(helpers[0]), module, name);
}

double lbw_num_value(const struct lbw_num *n) { return n->is_float ? n->f : (double)n->i; }

/* An enum member name as upstream's enums spell them: upper case. */
static int member_name(const struct lbw_pk *v)
{
    if (!v || v->kind != LBW_PK_STR || v->u.s.n == 0 || v->u.s.n > 64 ||
        !(v->u.s.p[0] >= 'A' && v->u.s.p[0] <= 'Z'))
        return 0;
    for (size_t i = 0; i < v->u.s.n; i++) {
        uint8_t c = v->u.s.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Depth-first walk; visited containers and objects are marked (sharing
 * and cycles are walked once), the marks cleared afterwards. */
struct shapes {
    struct lbw_pk **seen;
    size_t n, cap;
    size_t depth, max_depth;
    char *err;
    size_t errlen;
};

static int refuse(struct shapes *c, const struct lbw_pk *g, const char *why)
{
    if (g && g->kind == LBW_PK_GLOBAL)
        snprintf(c->err, c->errlen, "invocation: refusing global %s.%s at offset %u: %s",
                 g->u.g.module, g->u.g.name, g->at, why);
    else
        snprintf(c->err, c->errlen, "invocation: refusing the pickle at offset %u: %s",
                 g ? g->at : 0, why);
    return -1;
}

static int value(struct shapes *c, struct lbw_pk *v);

static int state_dict(struct shapes *c, const struct lbw_pk *obj, struct lbw_pk *st)
{
    if (!st)
        return 0;
    if (st->kind != LBW_PK_DICT)
        return refuse(c, obj->u.obj.func, "its instance state is not a dict");
    for (size_t i = 0; i < st->u.seq.n; i += 2)
        if (st->u.seq.v[i]->kind != LBW_PK_STR)
            return refuse(c, obj->u.obj.func, "its instance state has a key that is not a str");
    return value(c, st);
}

static int object(struct shapes *c, struct lbw_pk *v)
{
    struct lbw_pk *f = v->u.obj.func, *a = v->u.obj.args;
    if (f->kind != LBW_PK_GLOBAL) {
        /* name the global inside what is called, if it is misused there */
        if (value(c, f) < 0)
            return -1;
        return refuse(c, v, "a call of a computed value (upstream calls only named classes)");
    }
    size_t n = a ? a->u.seq.n : 0;
    struct lbw_pk **av = a ? a->u.seq.v : NULL;
    int reduce = v->u.obj.how == LBW_PK_REDUCE;
    if (is_class(f)) {
        if (v->u.obj.how != LBW_PK_NEWOBJ || n != 0)
            return refuse(c, f, "upstream's classes are only created empty (NEWOBJ with no "
                                "arguments) and filled by BUILD");
        return state_dict(c, v, v->u.obj.state);
    }
    if (lbw_pk_is_global(f, "copyreg", "_reconstructor")) {
        if (!reduce || n != 3 || !is_class(av[0]) ||
            !lbw_pk_is_global(av[1], "builtins", "object") || av[2]->kind != LBW_PK_NONE)
            return refuse(c, f, "allowed only as _reconstructor(<upstream class>, "
                                "builtins.object, None)");
        return state_dict(c, v, v->u.obj.state);
    }
    if (v->u.obj.state)
        return refuse(c, f, "BUILD on a value that upstream never gives a state");
    if (lbw_pk_is_global(f, "re", "_compile")) {
        if (!reduce || n != 2 || (av[0]->kind != LBW_PK_STR && av[0]->kind != LBW_PK_BYTES) ||
            av[1]->kind != LBW_PK_INT)
            return refuse(c, f, "allowed only as re._compile(pattern, flags)");
        return 0;
    }
    if (lbw_pk_is_global(f, "builtins", "getattr")) {
        if (!reduce || n != 2 || !is_enum(av[0]) || !member_name(av[1]))
            return refuse(c, f, "allowed only as getattr(<lifeblood.enums class>, 'MEMBER')");
        if (!enum_has(av[0], av[1], 1))
            return refuse(c, f, "names a member its enum does not have");
        return 0;
    }
    if (is_enum(f)) {
        if (!reduce || n != 1 || (av[0]->kind != LBW_PK_INT && av[0]->kind != LBW_PK_STR))
            return refuse(c, f, "an enum class is only called with one value");
        if (!enum_has(f, av[0], 0))
            return refuse(c, f, "called with a value its enum does not have");
        return 0;
    }
    if (lbw_pk_global_allowed(f->u.g.module, f->u.g.name))
        return refuse(c, f, "not in the shape upstream pickles it");
    return refuse(c, f, "not one of upstream's classes");
}

static int value(struct shapes *c, struct lbw_pk *v)
{
    if (!v || v->mark)
        return 0;
    switch (v->kind) {
    case LBW_PK_GLOBAL:
        return refuse(c, v, lbw_pk_global_allowed(v->u.g.module, v->u.g.name)
                                ? "a bare reference where upstream pickles a value"
                                : "not one of upstream's classes");
    case LBW_PK_TUPLE:
    case LBW_PK_LIST:
    case LBW_PK_DICT:
    case LBW_PK_SET:
    case LBW_PK_FROZENSET:
    case LBW_PK_OBJECT:
        break;
    default:
        return 0; /* plain data */
    }
    if (c->depth >= c->max_depth) {
        snprintf(c->err, c->errlen, "invocation: nesting deeper than %zu at offset %u",
                 c->max_depth, v->at);
        return -1;
    }
    if (lbw_grow(&c->seen, &c->cap, c->n + 1, sizeof(*c->seen)) < 0) {
        snprintf(c->err, c->errlen, "invocation: out of memory");
        return -1;
    }
    c->seen[c->n++] = v;
    v->mark = 1;
    c->depth++;
    int rc = 0;
    if (v->kind == LBW_PK_OBJECT) {
        rc = object(c, v);
    } else {
        for (size_t i = 0; i < v->u.seq.n && rc == 0; i++)
            rc = value(c, v->u.seq.v[i]);
    }
    c->depth--;
    return rc;
}

int lbw_pk_check_upstream(struct lbw_pk_doc *doc, struct lbw_pk *root, char *err, size_t errlen)
{
    struct shapes c = {.max_depth = doc->lim.max_depth, .err = err, .errlen = errlen};
    int rc = value(&c, root);
    for (size_t i = 0; i < c.n; i++)
        c.seen[i]->mark = 0;
    free(c.seen);
    return rc;
}

/* NEWOBJ of module.cls with a dict state. */
static struct lbw_pk *instance_state(struct lbw_pk *v, const char *module, const char *cls)
{
    if (!v || v->kind != LBW_PK_OBJECT || v->u.obj.how != LBW_PK_NEWOBJ ||
        !lbw_pk_is_global(v->u.obj.func, module, cls))
        return NULL;
    struct lbw_pk *s = v->u.obj.state;
    return s && s->kind == LBW_PK_DICT ? s : NULL;
}

int lbw_inv_load(struct lbw_inv *inv, const uint8_t *p, size_t n, char *err, size_t errlen)
{
    memset(inv, 0, sizeof(*inv));
    if (lbw_pk_decode(&inv->doc, p, n, NULL, err, errlen) < 0)
        return -1;
    if (lbw_pk_check_upstream(&inv->doc, inv->doc.root, err, errlen) < 0)
        return -1;
    inv->job = inv->doc.root;
    inv->state = instance_state(inv->job, "lifeblood.invocationjob", "InvocationJob");
    if (!inv->state) {
        snprintf(err, errlen, "invocation: the pickle is not a lifeblood.invocationjob."
                              "InvocationJob instance");
        return -1;
    }
    return 0;
}

void lbw_inv_free(struct lbw_inv *inv)
{
    lbw_pk_doc_free(&inv->doc);
    inv->job = inv->state = NULL;
}

static int str_list(struct lbw_pk *l, const char ***out, size_t *n, int allow_set)
{
    if (!l || !(l->kind == LBW_PK_LIST || l->kind == LBW_PK_TUPLE ||
                (allow_set && (l->kind == LBW_PK_SET || l->kind == LBW_PK_FROZENSET))))
        return -1;
    const char **a = calloc(l->u.seq.n + 1, sizeof(*a));
    if (!a)
        return -1;
    for (size_t i = 0; i < l->u.seq.n; i++) {
        struct lbw_pk *s = l->u.seq.v[i];
        if (s->kind != LBW_PK_STR || memchr(s->u.s.p, 0, s->u.s.n)) {
            free(a);
            return -1;
        }
        a[i] = (const char *)s->u.s.p;
    }
    *out = a;
    *n = l->u.seq.n;
    return 0;
}

int lbw_inv_args(const struct lbw_inv *inv, const char ***argv, size_t *argc)
{
    return str_list(lbw_pk_dict_get(inv->state, JK("args")), argv, argc, 0);
}

int lbw_inv_env_actions(const struct lbw_inv *inv, struct lbw_env_action **out, size_t *n)
{
    struct lbw_pk *env = instance_state(lbw_pk_dict_get(inv->state, JK("env")),
                                        "lifeblood.invocationjob", "InvocationEnvironment");
    struct lbw_pk *q = lbw_pk_dict_get(env, "_InvocationEnvironment__action_queue");
    if (!q || q->kind != LBW_PK_LIST)
        return -1;
    struct lbw_env_action *a = calloc(q->u.seq.n + 1, sizeof(*a));
    if (!a)
        return -1;
    for (size_t i = 0; i < q->u.seq.n; i++) {
        struct lbw_pk *t = q->u.seq.v[i];
        if ((t->kind != LBW_PK_TUPLE && t->kind != LBW_PK_LIST) || t->u.seq.n != 3 ||
            t->u.seq.v[0]->kind != LBW_PK_STR || t->u.seq.v[1]->kind != LBW_PK_STR ||
            t->u.seq.v[2]->kind != LBW_PK_STR) {
            free(a);
            return -1;
        }
        a[i].method = (const char *)t->u.seq.v[0]->u.s.p;
        a[i].name = (const char *)t->u.seq.v[1]->u.s.p;
        a[i].value = (const char *)t->u.seq.v[2]->u.s.p;
        if (strcmp(a[i].method, "__setitem__") && strcmp(a[i].method, "prepend") &&
            strcmp(a[i].method, "append")) {
            free(a);
            return -1;
        }
    }
    *out = a;
    *n = q->u.seq.n;
    return 0;
}

static int opt_int(struct lbw_pk *v, int64_t *out)
{
    if (!v)
        return -1;
    if (v->kind == LBW_PK_NONE)
        return 0;
    if (v->kind != LBW_PK_INT)
        return -1;
    *out = v->u.i;
    return 1;
}

int lbw_inv_invocation_id(const struct lbw_inv *inv, int64_t *v)
{
    return opt_int(lbw_pk_dict_get(inv->state, JK("invocation_id")), v);
}

int lbw_inv_task_id(const struct lbw_inv *inv, int64_t *v)
{
    return opt_int(lbw_pk_dict_get(inv->state, JK("task_id")), v);
}

int lbw_inv_progress_regex(const struct lbw_inv *inv, int which, struct lbw_regex *out)
{
    memset(out, 0, sizeof(*out));
    struct lbw_pk *r = lbw_pk_dict_get(inv->state, which ? JK("err_progress_regex")
                                                         : JK("out_progress_regex"));
    if (!r)
        return -1;
    if (r->kind == LBW_PK_NONE)
        return 0;
    /* re._compile(pattern, flags) */
    if (r->kind != LBW_PK_OBJECT || r->u.obj.how != LBW_PK_REDUCE ||
        !lbw_pk_is_global(r->u.obj.func, "re", "_compile") || r->u.obj.args->u.seq.n != 2)
        return -1;
    struct lbw_pk *pat = r->u.obj.args->u.seq.v[0], *fl = r->u.obj.args->u.seq.v[1];
    if ((pat->kind != LBW_PK_STR && pat->kind != LBW_PK_BYTES) || fl->kind != LBW_PK_INT)
        return -1;
    out->present = 1;
    out->is_bytes = pat->kind == LBW_PK_BYTES;
    out->pattern = (const char *)pat->u.s.p;
    out->len = pat->u.s.n;
    out->flags = fl->u.i;
    return 0;
}

static int num(struct lbw_pk *v, struct lbw_num *out)
{
    memset(out, 0, sizeof(*out));
    if (!v)
        return -1;
    if (v->kind == LBW_PK_INT) {
        out->i = v->u.i;
        return 0;
    }
    if (v->kind == LBW_PK_BOOL) {
        out->i = v->u.b;
        return 0;
    }
    if (v->kind == LBW_PK_FLOAT) {
        out->is_float = 1;
        out->f = v->u.f;
        return 0;
    }
    return -1;
}

static int opt_num(struct lbw_pk *v, struct lbw_num *out, int *has)
{
    *has = 0;
    if (!v)
        return -1;
    if (v->kind == LBW_PK_NONE)
        return 0;
    *has = 1;
    return num(v, out);
}

/* WorkerType by name (getattr(WorkerType, 'STANDARD')) or by value
 * (WorkerType(0)). */
static int worker_type(struct lbw_pk *v, int64_t *out)
{
    if (!v || v->kind != LBW_PK_OBJECT || v->u.obj.how != LBW_PK_REDUCE)
        return -1;
    struct lbw_pk *a = v->u.obj.args;
    if (lbw_pk_is_global(v->u.obj.func, "builtins", "getattr") && a->u.seq.n == 2 &&
        lbw_pk_is_global(a->u.seq.v[0], "lifeblood.enums", "WorkerType")) {
        if (lbw_pk_str_eq(a->u.seq.v[1], "STANDARD"))
            *out = 0;
        else if (lbw_pk_str_eq(a->u.seq.v[1], "SCHEDULER_HELPER"))
            *out = 1;
        else
            return -1;
        return 0;
    }
    if (lbw_pk_is_global(v->u.obj.func, "lifeblood.enums", "WorkerType") && a->u.seq.n == 1 &&
        a->u.seq.v[0]->kind == LBW_PK_INT) {
        *out = a->u.seq.v[0]->u.i;
        return 0;
    }
    return -1;
}

int lbw_inv_requirements(const struct lbw_inv *inv, struct lbw_requirements *o)
{
    memset(o, 0, sizeof(*o));
    struct lbw_pk *r = instance_state(lbw_pk_dict_get(inv->state, JK("requirements")),
                                      "lifeblood.invocationjob", "InvocationRequirements");
    if (!r)
        return -1;
    if (str_list(lbw_pk_dict_get(r, RK("groups")), &o->groups, &o->ngroups, 1) < 0)
        return -1;
    if (worker_type(lbw_pk_dict_get(r, RK("worker_type")), &o->worker_type) < 0 ||
        num(lbw_pk_dict_get(r, RK("min_cpu_count")), &o->min_cpu) < 0 ||
        num(lbw_pk_dict_get(r, RK("min_memory_bytes")), &o->min_mem) < 0 ||
        num(lbw_pk_dict_get(r, RK("min_gpu_count")), &o->min_gpu) < 0 ||
        num(lbw_pk_dict_get(r, RK("min_gpu_memory_bytes")), &o->min_gpu_mem) < 0 ||
        opt_num(lbw_pk_dict_get(r, RK("pref_cpu_count")), &o->pref_cpu, &o->has_pref_cpu) < 0 ||
        opt_num(lbw_pk_dict_get(r, RK("pref_memory_bytes")), &o->pref_mem, &o->has_pref_mem) < 0 ||
        opt_num(lbw_pk_dict_get(r, RK("pref_gpu_count")), &o->pref_gpu, &o->has_pref_gpu) < 0 ||
        opt_num(lbw_pk_dict_get(r, RK("pref_gpu_memory_bytes")), &o->pref_gpu_mem,
                &o->has_pref_gpu_mem) < 0) {
        free(o->groups);
        o->groups = NULL;
        return -1;
    }
    return 0;
}

int lbw_inv_exitcodes(const struct lbw_inv *inv, int retry, int64_t **codes, size_t *n)
{
    struct lbw_pk *s = lbw_pk_dict_get(inv->state, retry ? JK("retry_exitcodes")
                                                         : JK("good_exitcodes"));
    if (!s || (s->kind != LBW_PK_SET && s->kind != LBW_PK_FROZENSET && s->kind != LBW_PK_LIST &&
               s->kind != LBW_PK_TUPLE))
        return -1;
    int64_t *a = calloc(s->u.seq.n + 1, sizeof(*a));
    if (!a)
        return -1;
    for (size_t i = 0; i < s->u.seq.n; i++) {
        if (s->u.seq.v[i]->kind != LBW_PK_INT) {
            free(a);
            return -1;
        }
        a[i] = s->u.seq.v[i]->u.i;
    }
    *codes = a;
    *n = s->u.seq.n;
    return 0;
}

int lbw_inv_priority(const struct lbw_inv *inv, double *out)
{
    struct lbw_num nm;
    if (num(lbw_pk_dict_get(inv->state, JK("priority")), &nm) < 0)
        return -1;
    *out = lbw_num_value(&nm);
    return 0;
}

int lbw_inv_running_time(const struct lbw_inv *inv, double *out)
{
    struct lbw_num nm;
    struct lbw_pk *v = lbw_pk_dict_get(inv->state, JK("running_time"));
    if (v && v->kind == LBW_PK_NONE)
        return 0;
    if (num(v, &nm) < 0)
        return -1;
    *out = lbw_num_value(&nm);
    return 1;
}

int lbw_inv_envres(const struct lbw_inv *inv, const char **name, struct lbw_pk **args)
{
    *name = NULL;
    *args = NULL;
    struct lbw_pk *e = lbw_pk_dict_get(inv->state, JK("envres_args"));
    if (!e)
        return -1;
    if (e->kind == LBW_PK_NONE)
        return 0;
    struct lbw_pk *s = instance_state(e, "lifeblood.environment_resolver",
                                      "EnvironmentResolverArguments");
    if (!s)
        return -1;
    struct lbw_pk *nm = lbw_pk_dict_get(s, "_EnvironmentResolverArguments__resolver_name");
    struct lbw_pk *a = lbw_pk_dict_get(s, "_EnvironmentResolverArguments__args");
    if (nm && nm->kind == LBW_PK_STR)
        *name = (const char *)nm->u.s.p;
    else if (nm && nm->kind != LBW_PK_NONE)
        return -1;
    if (a && a->kind == LBW_PK_DICT)
        *args = a;
    return 0;
}

struct lbw_pk *lbw_inv_attrs(const struct lbw_inv *inv)
{
    struct lbw_pk *a = lbw_pk_dict_get(inv->state, JK("attrs"));
    return a && a->kind == LBW_PK_DICT ? a : NULL;
}

int lbw_inv_extra_files(const struct lbw_inv *inv, struct lbw_extra_file **out, size_t *n)
{
    struct lbw_pk *d = lbw_pk_dict_get(inv->state, JK("extra_files"));
    if (!d || d->kind != LBW_PK_DICT)
        return -1;
    size_t cnt = d->u.seq.n / 2;
    struct lbw_extra_file *a = calloc(cnt + 1, sizeof(*a));
    if (!a)
        return -1;
    int rc = 0;
    uint64_t again = 0; /* bytes of contents met before, written again */
    size_t i;
    for (i = 0; i < cnt && rc == 0; i++) {
        struct lbw_pk *k = d->u.seq.v[2 * i], *v = d->u.seq.v[2 * i + 1];
        if (k->kind != LBW_PK_STR || memchr(k->u.s.p, 0, k->u.s.n) ||
            (v->kind != LBW_PK_STR && v->kind != LBW_PK_BYTES)) {
            rc = -1;
            break;
        }
        if (v->mark)
            again += v->u.s.n;
        v->mark = 1;
        if (again > LBW_INV_EF_SHARED_MAX)
            rc = -EFBIG;
        a[i].path = (const char *)k->u.s.p;
        a[i].data = v->u.s.p;
        a[i].len = v->u.s.n;
        a[i].is_bytes = v->kind == LBW_PK_BYTES;
    }
    for (size_t j = 0; j < i; j++)
        d->u.seq.v[2 * j + 1]->mark = 0;
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = a;
    *n = cnt;
    return 0;
}

int lbw_inv_set_result(struct lbw_inv *inv, int has_exit, int64_t exitcode, double running_time)
{
    struct lbw_pk *ec = has_exit ? lbw_pk_new_int(&inv->doc, exitcode)
                                 : lbw_pk_new(&inv->doc, LBW_PK_NONE);
    struct lbw_pk *rt = lbw_pk_new_float(&inv->doc, running_time);
    if (!ec || !rt)
        return -1;
    if (lbw_pk_dict_set(&inv->doc, inv->state, JK("exitcode"), ec) < 0 ||
        lbw_pk_dict_set(&inv->doc, inv->state, JK("running_time"), rt) < 0)
        return -1;
    return 0;
}

int lbw_inv_encode(struct lbw_inv *inv, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    return lbw_pk_encode(&inv->doc, inv->job, out, len, err, errlen);
}

/* ---- WorkerResources ---------------------------------------------------- */

static struct lbw_pk *num_node(struct lbw_pk_doc *d, const struct lbw_num *n)
{
    return n->is_float ? lbw_pk_new_float(d, n->f) : lbw_pk_new_int(d, n->i);
}

static const char *const res_keys[] = {"hwid", "cpu_count", "cpu_mem", "gpu_count", "gpu_mem",
                                       "total_cpu_count", "total_cpu_mem", "total_gpu_count",
                                       "total_gpu_mem"};

int lbw_resources_encode(const struct lbw_resources *r, uint8_t **out, size_t *len)
{
    struct lbw_pk_doc d;
    lbw_pk_doc_init(&d, NULL);
    int rc = -1;
    struct lbw_pk *obj = lbw_pk_new(&d, LBW_PK_OBJECT);
    struct lbw_pk *g = lbw_pk_new(&d, LBW_PK_GLOBAL);
    struct lbw_pk *args = lbw_pk_new(&d, LBW_PK_TUPLE);
    struct lbw_pk *st = lbw_pk_new(&d, LBW_PK_DICT);
    if (!obj || !g || !args || !st)
        goto out;
    g->u.g.module = "lifeblood.net_classes";
    g->u.g.name = "WorkerResources";
    obj->u.obj.how = LBW_PK_NEWOBJ;
    obj->u.obj.func = g;
    obj->u.obj.args = args;
    obj->u.obj.state = st;
    const struct lbw_num *vals[] = {&r->cpu_count, &r->cpu_mem, &r->gpu_count, &r->gpu_mem,
                                    &r->total_cpu_count, &r->total_cpu_mem,
                                    &r->total_gpu_count, &r->total_gpu_mem};
    if (lbw_pk_dict_set(&d, st, "hwid", lbw_pk_new_int(&d, (int64_t)(r->hwid & INT64_MAX))) < 0)
        goto out;
    for (size_t i = 0; i < 8; i++)
        if (lbw_pk_dict_set(&d, st, res_keys[i + 1], num_node(&d, vals[i])) < 0)
            goto out;
    char err[128];
    rc = lbw_pk_encode(&d, obj, out, len, err, sizeof(err));
out:
    lbw_pk_doc_free(&d);
    return rc;
}

int lbw_resources_decode(const uint8_t *p, size_t n, struct lbw_resources *r, char *err,
                         size_t errlen)
{
    struct lbw_pk_doc d;
    memset(r, 0, sizeof(*r));
    int rc = -1;
    if (lbw_pk_decode(&d, p, n, NULL, err, errlen) < 0)
        goto out;
    struct lbw_pk *st = instance_state(d.root, "lifeblood.net_classes", "WorkerResources");
    if (!st) {
        snprintf(err, errlen, "not a lifeblood.net_classes.WorkerResources pickle");
        goto out;
    }
    struct lbw_pk *h = lbw_pk_dict_get(st, "hwid");
    if (!h || h->kind != LBW_PK_INT || h->u.i < 0) {
        snprintf(err, errlen, "WorkerResources.hwid is not a 63-bit integer");
        goto out;
    }
    r->hwid = (uint64_t)h->u.i;
    struct lbw_num *vals[] = {&r->cpu_count, &r->cpu_mem, &r->gpu_count, &r->gpu_mem,
                              &r->total_cpu_count, &r->total_cpu_mem, &r->total_gpu_count,
                              &r->total_gpu_mem};
    for (size_t i = 0; i < 8; i++) {
        if (num(lbw_pk_dict_get(st, res_keys[i + 1]), vals[i]) < 0) {
            snprintf(err, errlen, "WorkerResources.%s missing or not a number", res_keys[i + 1]);
            goto out;
        }
    }
    rc = 0;
out:
    lbw_pk_doc_free(&d);
    return rc;
}
