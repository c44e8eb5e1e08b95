/* test_environment.c — payload environment per docs/PROTOCOL.md 7.3, on the
 * full job vector: action queue with expansion, runtime variables,
 * LBATTR_*, resolvers; and the expansion rules themselves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "environment.h"
#include "fixture.h"
#include "suites.h"

static void test_expansion(void)
{
    struct lbw_env e;
    lbw_env_init(&e);
    lbw_env_set_raw(&e, "A", "alpha");
    lbw_env_set_raw(&e, "B_2", "beta");
    lbw_env_set_raw(&e, "LIT", "$A");
    struct {
        const char *in, *out;
    } c[] = {
        {"$A", "alpha"}, {"${A}x", "alphax"}, {"$A_x", ""}, {"${B_2}/$B_2", "beta/beta"},
        {"$", "$"}, {"a$", "a$"}, {"$ x", "$ x"}, {"${A", "${A"}, {"${}", "${}"},
        {"$$A", "$alpha"}, {"$UNKNOWN-1", "-1"}, {"${UNKNOWN}", ""}, {"$LIT", "$A"},
        {"100%", "100%"}, {"$1", ""},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *o = lbw_env_expand(&e, c[i].in);
        if (strcmp(o, c[i].out))
            fprintf(stderr, "expand '%s': got '%s' want '%s'\n", c[i].in, o, c[i].out);
        CU_ASSERT_STRING_EQUAL(o, c[i].out);
        free(o);
    }
    /* prepend/append on unset and set names; the result is expanded again */
    CU_ASSERT(lbw_env_prepend(&e, "P", "/a") == 0);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "P"), "/a");
    CU_ASSERT(lbw_env_prepend(&e, "P", "/$A") == 0);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "P"), "/alpha:/a");
    CU_ASSERT(lbw_env_append(&e, "P", "/z") == 0);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "P"), "/alpha:/a:/z");
    lbw_env_set_raw(&e, "Q", "$A");  /* inherited raw, holds a '$' */
    CU_ASSERT(lbw_env_append(&e, "Q", "x") == 0);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "Q"), "alpha:x"); /* re-expanded, as upstream */
    char **envp = lbw_env_envp(&e);
    CU_ASSERT(envp && !strcmp(envp[0], "A=alpha"));
    lbw_env_free_envp(envp);
    lbw_env_free(&e);
}

static void test_pystr(void)
{
    struct lbw_pk_doc d;
    char err[200];
    /* ['a', "it's", 1.5, None, True, (1,), {'k': 2}] */
    static const char pk[] =
        "\x80\x04]\x94(\x8c\x01""a\x8c\x04it's""G?\xf8\x00\x00\x00\x00\x00\x00N\x88K\x01\x85}\x94\x8c\x01kK\x02se.";
    CU_ASSERT_FATAL(lbw_pk_decode(&d, (const uint8_t *)pk, sizeof(pk) - 1, NULL, err, sizeof(err)) == 0);
    char *s = lbw_pk_pystr(d.root);
    CU_ASSERT_STRING_EQUAL(s, "['a', \"it's\", 1.5, None, True, (1,), {'k': 2}]");
    free(s);
    s = lbw_pk_pystr(d.root->u.seq.v[0]);
    CU_ASSERT_STRING_EQUAL(s, "a"); /* str() of a str is itself */
    free(s);
    lbw_pk_doc_free(&d);
}

static void load(const char *name, struct lbw_inv *inv)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "pickles/%s.pickle", name);
    size_t n;
    uint8_t *b = fx_read(rel, &n);
    char err[200];
    CU_ASSERT_FATAL(b && lbw_inv_load(inv, b, n, err, sizeof(err)) == 0);
    free(b);
}

static void test_full_job(void)
{
    struct lbw_inv inv;
    load("invocationjob_full", &inv);
    char *environ_[] = {"PATH=/usr/bin:/bin", "HOME=/home/render", "KEEP=$HOME/x", NULL};
    struct lbw_env_inputs in = {.worker_environ = environ_, .job = &inv,
                                .runtime_dir = "/usr/share/lifeblood-worker/runtime",
                                .runtime_addr = "127.0.0.1:10777",
                                .extra_files_root = "/tmp/lifeblood_efs_abc"};
    struct lbw_env e;
    char err[300];
    /* the job asks for the Standard resolver; with no packages configured
     * the resolution is impossible */
    CU_ASSERT(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_RESOLVER);
    CU_ASSERT(strstr(err, "no [packages]") != NULL);
    /* without resolver arguments: the Trivial resolver */
    struct lbw_pk *none = lbw_pk_new(&inv.doc, LBW_PK_NONE);
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, inv.state, "_InvocationJob__envres_args", none) == 0);
    CU_ASSERT_FATAL(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_OK);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LB_TEST_SET"), "plain value");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LB_TEST_NUM"), "42");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "PATH"),
                           "/opt/lbtest/bin:/usr/bin:/bin:/home/render/.local/bin");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LB_TEST_NEW"), "plain value-x");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "KEEP"), "/home/render/x"); /* the copy step expands */
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "PYTHONPATH"), "/usr/share/lifeblood-worker/runtime");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LIFEBLOOD_RUNTIME_IID"), "777");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LIFEBLOOD_RUNTIME_TID"), "555");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LIFEBLOOD_RUNTIME_SCHEDULER_ADDR"), "127.0.0.1:10777");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LB_EF_ROOT"), "/tmp/lifeblood_efs_abc");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_frame"), "1001");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_fps"), "23.976");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_name"), "shot_010");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_big"), "1180591620717411303424");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_negbig"), "-18446744073709551616");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_neg"), "-5");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_flag"), "True");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_unicode"),
                           "Gr\xc3\xb6\xc3\x9f" "e \xe2\x80\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\xac");
    CU_ASSERT(lbw_env_get(&e, "LBATTR_none") == NULL);
    CU_ASSERT(lbw_env_get(&e, "LBATTR_nested") == NULL);
    CU_ASSERT(lbw_env_get(&e, "LBATTR__hidden") == NULL);
    CU_ASSERT(strlen(lbw_env_get(&e, "LBATTR_long_string")) == 300);
    lbw_env_free(&e);
    /* the config's default resolver and its arguments apply to such jobs */
    const char *t = "name = \"TrivialEnvironmentResolver\"\n[arguments]\nRENDER_THREADS = 8\nSITE = \"$HOME/site\"\n";
    struct lbw_toml *cfg = lbw_toml_parse(t, strlen(t), err, sizeof(err));
    in.resolver_name = "TrivialEnvironmentResolver";
    in.resolver_args_cfg = lbw_toml_member(cfg, "arguments");
    CU_ASSERT_FATAL(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_OK);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "RENDER_THREADS"), "8");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "SITE"), "/home/render/site");
    lbw_env_free(&e);
    /* a root worker's payload user: its HOME, USER and LOGNAME, not the
     * worker's; $HOME in the job's values means its home */
    char *root_env[] = {"PATH=/usr/bin:/bin", "HOME=/root", "USER=root", "LOGNAME=root",
                        "KEEP=$HOME/x", NULL};
    in.worker_environ = root_env;
    in.user_name = "render";
    in.user_home = "/home/render";
    CU_ASSERT_FATAL(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_OK);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "HOME"), "/home/render");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "USER"), "render");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LOGNAME"), "render");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "KEEP"), "/home/render/x");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "SITE"), "/home/render/site");
    lbw_env_free(&e);
    in.user_name = in.user_home = NULL;
    in.worker_environ = environ_;
    in.resolver_name = "NoSuchResolver";
    CU_ASSERT(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_EXCEPTION);
    CU_ASSERT(strstr(err, "NoSuchResolver") != NULL);
    lbw_toml_free(cfg);
    lbw_inv_free(&inv);
    /* a job with task id None */
    load("invocationjob_large", &inv);
    in.resolver_name = NULL;
    in.resolver_args_cfg = NULL;
    CU_ASSERT_FATAL(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_OK);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LIFEBLOOD_RUNTIME_TID"), "None");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LIFEBLOOD_RUNTIME_IID"), "99");
    lbw_env_free(&e);
    lbw_inv_free(&inv);
}

/* a = [b, b], b = [c, c], ... 40 levels over one str: 2^40 leaves when
 * written out. The text is refused within its budget instead. */
static struct lbw_pk *doubling(struct lbw_pk_doc *d, int levels)
{
    struct lbw_pk *v = lbw_pk_new_str(d, "xy", 2);
    for (int i = 0; i < levels && v; i++) {
        struct lbw_pk *l = lbw_pk_new(d, LBW_PK_LIST);
        if (!l || lbw_pk_seq_push(d, l, v) < 0 || lbw_pk_seq_push(d, l, v) < 0)
            return NULL;
        v = l;
    }
    return v;
}

static void test_pystr_shared(void)
{
    struct lbw_pk_doc d;
    lbw_pk_doc_init(&d, NULL);
    struct lbw_pk *v = doubling(&d, 40);
    CU_ASSERT_FATAL(v != NULL);
    char err[200] = "";
    CU_ASSERT(lbw_pk_pystr_max(v, LBW_ENV_STRING_MAX, err, sizeof(err)) == NULL);
    CU_ASSERT(strstr(err, "longer than") != NULL);
    /* a small one still prints whole */
    struct lbw_pk *w = doubling(&d, 2);
    char *s = lbw_pk_pystr_max(w, LBW_ENV_STRING_MAX, err, sizeof(err));
    CU_ASSERT(s && !strcmp(s, "[['xy', 'xy'], ['xy', 'xy']]"));
    free(s);
    /* nesting deeper than the limit is refused, not walked */
    struct lbw_pk *deep = lbw_pk_new_str(&d, "z", 1);
    for (int i = 0; i < 100000 && deep; i++) {
        struct lbw_pk *l = lbw_pk_new(&d, LBW_PK_LIST);
        if (!l || lbw_pk_seq_push(&d, l, deep) < 0)
            deep = NULL;
        else
            deep = l;
    }
    CU_ASSERT_FATAL(deep != NULL);
    CU_ASSERT(lbw_pk_pystr_max(deep, LBW_ENV_STRING_MAX, err, sizeof(err)) == NULL);
    CU_ASSERT(strstr(err, "deeper") != NULL);
    lbw_pk_doc_free(&d);
}

/* X1=$X0$X0, X2=$X1$X1, ...: each assignment doubles; stopped at the
 * per-variable limit with -E2BIG instead of growing to 2^40. */
static void test_expansion_doubling(void)
{
    struct lbw_env e;
    lbw_env_init(&e);
    CU_ASSERT(lbw_env_set(&e, "X0", "abcdefgh") == 0);
    int r = 0, i;
    for (i = 1; i <= 40 && r == 0; i++) {
        char name[16], val[40];
        snprintf(name, sizeof(name), "X%d", i);
        snprintf(val, sizeof(val), "$X%d$X%d", i - 1, i - 1);
        r = lbw_env_set(&e, name, val);
    }
    CU_ASSERT(r == -E2BIG);
    CU_ASSERT(i < 20);
    for (size_t k = 0; k < e.n; k++)
        CU_ASSERT(strlen(e.names[k]) + strlen(e.values[k]) + 2 <= LBW_ENV_STRING_MAX);
    CU_ASSERT(lbw_env_expand(&e, "$X11$X11$X11$X11$X11$X11$X11$X11$X11") == NULL);
    lbw_env_free(&e);
}

/* 200,000 names: each assignment finds its name through the index (a scan
 * per assignment took minutes); every name is still found, the latest
 * value wins. Liveness bound only. */
static void test_many_names(void)
{
    struct lbw_env e;
    lbw_env_init(&e);
    time_t t0 = time(NULL);
    int ok = 1;
    for (int i = 0; i < 200000 && ok; i++) {
        char n[32], v[32];
        snprintf(n, sizeof(n), "N%d", i);
        snprintf(v, sizeof(v), "%d", i);
        ok = lbw_env_set_raw(&e, n, v) == 0;
    }
    CU_ASSERT(ok);
    CU_ASSERT(lbw_env_set_raw(&e, "N77", "again") == 0);
    CU_ASSERT(e.n == 200000);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "N77"), "again");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "N199999"), "199999");
    CU_ASSERT(lbw_env_get(&e, "N200000") == NULL);
    CU_ASSERT(lbw_env_get(&e, "N7") && !strcmp(lbw_env_get(&e, "N7"), "7"));
    CU_ASSERT(time(NULL) - t0 < 20);
    lbw_env_free(&e);
}

static struct lbw_pk *envres_state(struct lbw_inv *inv)
{
    struct lbw_pk *e = lbw_pk_dict_get(inv->state, "_InvocationJob__envres_args");
    return e && e->kind == LBW_PK_OBJECT ? e->u.obj.state : NULL;
}

static void test_job_limits(void)
{
    struct lbw_inv inv;
    load("invocationjob_full", &inv);
    char *environ_[] = {"PATH=/usr/bin:/bin", NULL};
    struct lbw_env_inputs in = {.worker_environ = environ_, .job = &inv};
    struct lbw_env e;
    char err[300];
    /* 1. a resolver argument whose text doubles 40 times: the task fails */
    struct lbw_pk *st = envres_state(&inv);
    CU_ASSERT_FATAL(st != NULL);
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, st, "_EnvironmentResolverArguments__resolver_name",
                                    lbw_pk_new_str(&inv.doc, "TrivialEnvironmentResolver", 26)) == 0);
    const char *rn;
    struct lbw_pk *args;
    CU_ASSERT_FATAL(lbw_inv_envres(&inv, &rn, &args) == 0 && args);
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, args, "SHARED", doubling(&inv.doc, 40)) == 0);
    CU_ASSERT(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_TOO_BIG);
    CU_ASSERT(strstr(err, "'SHARED'") != NULL);
    /* 2. an attribute over MAX_ARG_STRLEN is skipped, the rest exported */
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, inv.state, "_InvocationJob__envres_args",
                                    lbw_pk_new(&inv.doc, LBW_PK_NONE)) == 0);
    struct lbw_pk *attrs = lbw_inv_attrs(&inv);
    CU_ASSERT_FATAL(attrs != NULL);
    size_t bn = 200 * 1024;
    char *big = malloc(bn);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'b', bn);
    struct lbw_pk *bigv = lbw_pk_new_str(&inv.doc, big, bn);
    free(big);
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, attrs, "huge", bigv) == 0);
    CU_ASSERT_FATAL(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_OK);
    CU_ASSERT(lbw_env_get(&e, "LBATTR_huge") == NULL);
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LBATTR_frame"), "1001");
    lbw_env_free(&e);
    /* 3. one 100 KiB str shared by 10,000 attributes: refused at the total
     * limit (E2BIG, with the size), not built to 1 GB */
    CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, attrs, "huge", lbw_pk_new(&inv.doc, LBW_PK_NONE)) == 0);
    char *mid = malloc(100 * 1024);
    CU_ASSERT_FATAL(mid != NULL);
    memset(mid, 'm', 100 * 1024);
    struct lbw_pk *midv = lbw_pk_new_str(&inv.doc, mid, 100 * 1024);
    free(mid);
    for (int i = 0; i < 10000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "m%d", i);
        CU_ASSERT_FATAL(lbw_pk_seq_push(&inv.doc, attrs, lbw_pk_new_str(&inv.doc, k, strlen(k))) == 0);
        CU_ASSERT_FATAL(lbw_pk_seq_push(&inv.doc, attrs, midv) == 0);
    }
    CU_ASSERT(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_TOO_BIG);
    CU_ASSERT(strstr(err, "E2BIG") != NULL);
    lbw_inv_free(&inv);
}

static const struct lbw_test tests[] = {
    {"expansion, prepend, append", test_expansion},
    {"Python str() of values", test_pystr},
    {"full job: actions, runtime vars, LBATTR_, resolvers", test_full_job},
    {"shared values: str() within a budget and a depth", test_pystr_shared},
    {"expansion that doubles stops at the variable limit", test_expansion_doubling},
    {"job limits: resolver arguments, LBATTR_ size, total size", test_job_limits},
    {"200,000 names through the index", test_many_names},
    {NULL, NULL},
};

static int register_environment_suites(void) { return lbw_add_suite("environment", NULL, NULL, tests); }

LBW_TEST_SUITES(register_environment_suites)
