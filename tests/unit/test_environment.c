/* test_environment.c — payload environment per docs/PROTOCOL.md 7.3, on the
 * full job vector: action queue with expansion, runtime variables,
 * LBATTR_*, resolvers; and the expansion rules themselves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const struct lbw_test tests[] = {
    {"expansion, prepend, append", test_expansion},
    {"Python str() of values", test_pystr},
    {"full job: actions, runtime vars, LBATTR_, resolvers", test_full_job},
    {NULL, NULL},
};

static int register_environment_suites(void) { return lbw_add_suite("environment", NULL, NULL, tests); }

LBW_TEST_SUITES(register_environment_suites)
