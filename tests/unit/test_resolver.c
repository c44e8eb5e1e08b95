/* test_resolver.c — the StandardEnvironmentResolver of
 * daemon/run/environment.c driven through lbw_env_for_job: packages,
 * version specs, priorities, the user, and what it refuses. */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "environment.h"
#include "fixture.h"
#include "invocation.h"
#include "suites.h"
#include "toml.h"

static struct lbw_toml *toml(const char *t)
{
    char err[200];
    struct lbw_toml *v = lbw_toml_parse(t, strlen(t), err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    return v;
}

static void test_standard_resolver(void)
{
    struct lbw_toml *cfg = toml(
        "[packages.\"houdini.py3_10\".\"19.5.605\"]\n"
        "env.PATH.prepend = \"/opt/hfs19.5.605/bin\"\n"
        "[packages.\"houdini.py3_10\".\"20.0.506\"]\n"
        "priority = 10\n"
        "env.PATH.prepend = [\"/opt/hfs20.0.506/bin\", \"/opt/hfs20.0.506/houdini/sbin\"]\n"
        "env.HFS = \"/opt/hfs20.0.506\"\n"
        "[packages.\"houdini.py3_10\".\"21.0.0-beta\"]\n"
        "env.HFS = \"/opt/beta\"\n"
        "[packages.redshift.\"3.5.16\"]\n"
        "env.PATH.append = \"/opt/redshift/bin\"\n"
        "env.RS_ROOT = { set = [\"/opt/redshift\", \"x\"] }\n");
    const struct lbw_toml *args = NULL;
    /* drive it through lbw_env_for_job with the config default arguments */
    struct lbw_toml *a = toml("\"package.houdini.py3_10\" = \"~=20.0\"\n"
                              "\"package.redshift\" = \"*\"\nuser = \"artist\"\n"
                              "ignored = 1\n");
    args = a;
    uint8_t *pk;
    size_t pkl;
    pk = fx_read("pickles/invocationjob_minimal.pickle", &pkl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    struct lbw_inv inv;
    char err[300];
    CU_ASSERT_FATAL(lbw_inv_load(&inv, pk, pkl, err, sizeof(err)) == 0);
    char *environ_[] = {"PATH=/usr/bin:/bin", "HOME=/home/x", NULL};
    struct lbw_env_inputs in = {.worker_environ = environ_, .job = &inv,
                                .resolver_name = "StandardEnvironmentResolver",
                                .resolver_args_cfg = args, .stdres_cfg = cfg};
    struct lbw_env e;
    int rc = lbw_env_for_job(&in, &e, err, sizeof(err));
    if (rc != LBW_ENV_OK)
        fprintf(stderr, "resolver: %s\n", err);
    CU_ASSERT_FATAL(rc == LBW_ENV_OK);
    /* houdini (priority 10) first, then redshift (50) */
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "PATH"), "/opt/hfs20.0.506/bin:"
                           "/opt/hfs20.0.506/houdini/sbin:/usr/bin:/bin:/opt/redshift/bin");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "HFS"), "/opt/hfs20.0.506");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "RS_ROOT"), "/opt/redshift:x");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "USER"), "artist");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "LOGNAME"), "artist");
    CU_ASSERT_STRING_EQUAL(lbw_env_get(&e, "USERNAME"), "artist");
    lbw_env_free(&e);
    lbw_toml_free(a);
    /* nothing matches / unknown package / no packages at all */
    const char *bad[] = {"\"package.houdini.py3_10\" = \">=22\"\n",
                         "\"package.nuke\" = \"*\"\n"};
    for (int i = 0; i < 2; i++) {
        a = toml(bad[i]);
        in.resolver_args_cfg = a;
        CU_ASSERT(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_RESOLVER);
        lbw_toml_free(a);
    }
    struct lbw_toml *empty = toml("");
    in.stdres_cfg = empty;
    in.resolver_args_cfg = NULL;
    CU_ASSERT(lbw_env_for_job(&in, &e, err, sizeof(err)) == LBW_ENV_RESOLVER);
    lbw_toml_free(empty);
    lbw_toml_free(cfg);
    lbw_inv_free(&inv);
    free(pk);
}

static const struct lbw_test tests[] = {
    {"StandardEnvironmentResolver packages, priorities, user", test_standard_resolver},
    {NULL, NULL},
};

static int register_resolver_suites(void)
{
    return lbw_add_suite("environment: standard resolver", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_resolver_suites)
