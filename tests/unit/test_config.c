/* test_config.c — TOML error positions, config discovery and merge order,
 * upstream's lenient loader (skipped broken files), overrides, the default
 * worker config, memory strings; the key table, typed accessors, the checked
 * loader's errors and warnings, and the generated default and reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "suites.h"
#include "toml.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void test_mem_strings(void)
{
    struct {
        const char *s;
        int ok;
        uint64_t v;
    } c[] = {
        {"16G", 1, 16000000000ull}, {"8G", 1, 8000000000ull}, {"128G", 1, 128000000000ull},
        {" 1.5 K ", 1, 1500}, {"200B", 1, 200}, {"2M", 1, 2000000}, {"1.25T", 1, 1250000000000ull},
        {"3P", 1, 3000000000000000ull}, {"0.1G", 1, 100000000}, {"16", 0, 0}, {"16g", 0, 0},
        {"16 GB", 0, 0}, {"", 0, 0}, {"G", 0, 0}, {"1.G", 0, 0}, {"-1G", 0, 0}, {"1e3K", 0, 0},
        /* more than 64 bits of bytes: no value (found by fuzz_toml) */
        {"99999999999999999999T", 0, 0}, {"18446744073709551616B", 0, 0}, {"20000000P", 0, 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        uint64_t v = 0;
        int rc = lbw_mem_string(c[i].s, &v);
        if ((rc == 0) != c[i].ok || (c[i].ok && v != c[i].v))
            fprintf(stderr, "mem '%s': rc %d v %llu\n", c[i].s, rc, (unsigned long long)v);
        CU_ASSERT((rc == 0) == c[i].ok);
        if (c[i].ok)
            CU_ASSERT_EQUAL(v, c[i].v);
    }
}

static void test_error_positions(void)
{
    char err[300];
    CU_ASSERT(lbw_toml_parse("a = 1\nb = \"x\nc = 2\n", 18, err, sizeof(err)) == NULL);
    CU_ASSERT(strstr(err, "line 2") && strstr(err, "unterminated string"));
    CU_ASSERT(lbw_toml_parse("[a]\nx=1\n[a]\n", 12, err, sizeof(err)) == NULL);
    CU_ASSERT(strstr(err, "line 3, column 1") && strstr(err, "already defined"));
    CU_ASSERT(lbw_toml_parse("when = 1979-05-27\n", 18, err, sizeof(err)) == NULL);
    CU_ASSERT(strstr(err, "dates") != NULL);
    /* nesting is bounded */
    char deep[400];
    size_t k = (size_t)snprintf(deep, sizeof(deep), "a = ");
    for (int i = 0; i < 100; i++)
        deep[k++] = '[';
    deep[k] = 0;
    CU_ASSERT(lbw_toml_parse(deep, k, err, sizeof(err)) == NULL && strstr(err, "deeper"));
}

static void test_get_set(void)
{
    char err[200];
    const char *t = "[worker]\nlisten_to_broadcast = false\n[resources]\ncpu_count = 7.5\n";
    struct lbw_toml *c = lbw_toml_parse(t, strlen(t), err, sizeof(err));
    CU_ASSERT_FATAL(c != NULL);
    struct lbw_toml *v = lbw_toml_get(c, "worker.listen_to_broadcast");
    CU_ASSERT(v && v->type == LBW_TOML_BOOL && v->u.b == 0);
    v = lbw_toml_get(c, "resources.cpu_count");
    CU_ASSERT(v && v->type == LBW_TOML_FLOAT && v->u.f == 7.5);
    CU_ASSERT(lbw_toml_get(c, "resources.nope") == NULL);
    CU_ASSERT(lbw_config_override(c, "worker.scheduler_address=10.0.0.1:1386", err, sizeof(err)) == 0);
    v = lbw_toml_get(c, "worker.scheduler_address");
    CU_ASSERT(v && v->type == LBW_TOML_STRING && !strcmp(v->u.str.s, "10.0.0.1:1386"));
    CU_ASSERT(lbw_config_override(c, "resources.gpu_count=2", err, sizeof(err)) == 0);
    v = lbw_toml_get(c, "resources.gpu_count");
    CU_ASSERT(v && v->type == LBW_TOML_INT && v->u.i == 2);
    CU_ASSERT(lbw_config_override(c, "new.table.key=\"s\"", err, sizeof(err)) == 0);
    CU_ASSERT(lbw_toml_get(c, "new.table.key") != NULL);
    CU_ASSERT(lbw_config_override(c, "worker.listen_to_broadcast.x=1", err, sizeof(err)) == -1);
    CU_ASSERT(lbw_config_override(c, "novalue", err, sizeof(err)) == -1);
    lbw_toml_free(c);
}

static void test_discovery_and_merge(void)
{
    char root[] = "/tmp/lbw-config-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(root) != NULL);
    char dir[512], p[600];
    setenv("LIFEBLOOD_CONFIG_LOCATION", root, 1);
    CU_ASSERT_FATAL(lbw_config_dir("worker", dir, sizeof(dir)) == 0);
    snprintf(p, sizeof(p), "%s/worker", root);
    CU_ASSERT_STRING_EQUAL(dir, p);
    /* first run writes the default, a second run leaves it alone */
    int created = 0;
    char err[300];
    CU_ASSERT(lbw_config_write_default(dir, &created, err, sizeof(err)) == 0 && created == 1);
    CU_ASSERT(lbw_config_write_default(dir, &created, err, sizeof(err)) == 0 && created == 0);
    struct lbw_toml *c = lbw_config_load("worker");
    CU_ASSERT_FATAL(c != NULL);
    struct lbw_toml *v = lbw_toml_get(c, "worker.listen_to_broadcast");
    CU_ASSERT(v && v->type == LBW_TOML_BOOL && v->u.b == 1);
    CU_ASSERT(lbw_toml_get(c, "resources") != NULL);
    lbw_toml_free(c);
    /* config.d in name order, tables merge key by key, arrays replace,
     * a broken file is skipped */
    snprintf(p, sizeof(p), "%s/config.d", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/config.d/20-b.toml", dir);
    put(p, "[resources]\ncpu_count = 4\nlist = [3]\n[worker]\nlogpath = \"/b\"\n");
    snprintf(p, sizeof(p), "%s/config.d/10-a.toml", dir);
    put(p, "[resources]\ncpu_count = 2\ncpu_mem = \"8G\"\nlist = [1, 2]\n[worker]\nlogpath = \"/a\"\n");
    snprintf(p, sizeof(p), "%s/config.d/15-broken.toml", dir);
    put(p, "[resources\ncpu_count = 99\n");
    snprintf(p, sizeof(p), "%s/config.d/30-ignored.txt", dir);
    put(p, "not = toml at all [\n");
    char logpath[] = "/tmp/lbw-config-log-XXXXXX";
    int lfd = mkstemp(logpath);
    unlink(logpath);
    lbw_log_set_fd(lfd);
    c = lbw_config_load("worker");
    lbw_log_set_fd(-1);
    CU_ASSERT_FATAL(c != NULL);
    v = lbw_toml_get(c, "resources.cpu_count");
    CU_ASSERT(v && v->type == LBW_TOML_INT && v->u.i == 4);
    v = lbw_toml_get(c, "resources.cpu_mem");
    CU_ASSERT(v && v->type == LBW_TOML_STRING && !strcmp(v->u.str.s, "8G"));
    v = lbw_toml_get(c, "resources.list");
    CU_ASSERT(v && v->type == LBW_TOML_ARRAY && v->u.arr.n == 1 && v->u.arr.v[0]->u.i == 3);
    v = lbw_toml_get(c, "worker.logpath");
    CU_ASSERT(v && !strcmp(v->u.str.s, "/b"));
    v = lbw_toml_get(c, "worker.listen_to_broadcast"); /* from config.toml, kept */
    CU_ASSERT(v && v->u.b == 1);
    lbw_toml_free(c);
    char logbuf[1024] = {0};
    CU_ASSERT(pread(lfd, logbuf, sizeof(logbuf) - 1, 0) > 0);
    CU_ASSERT(strstr(logbuf, "15-broken.toml") && strstr(logbuf, "skipping this file") &&
              strstr(logbuf, "[WARNING]"));
    close(lfd);
    /* ~ expansion and the HOME default */
    setenv("LIFEBLOOD_CONFIG_LOCATION", "~/cfg", 1);
    setenv("HOME", "/home/artist", 1);
    CU_ASSERT(lbw_config_dir("worker", dir, sizeof(dir)) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/home/artist/cfg/worker");
    unsetenv("LIFEBLOOD_CONFIG_LOCATION");
    CU_ASSERT(lbw_config_dir("standard_environment_resolver", dir, sizeof(dir)) == 0);
    CU_ASSERT_STRING_EQUAL(dir, "/home/artist/lifeblood/standard_environment_resolver");
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CU_ASSERT(system(cmd) == 0);
}


/* ---- the key table, validation, the checked loader ----------------------------------- */

static struct lbw_toml *parse(const char *t)
{
    char err[300];
    struct lbw_toml *v = lbw_toml_parse(t, strlen(t), err, sizeof(err));
    if (!v)
        fprintf(stderr, "parse: %s\n", err);
    return v;
}

/* Validates text as a worker config; returns the diagnostics. */
static struct lbw_cfg_diag check_text(const char *text)
{
    struct lbw_cfg_diag d = {0};
    struct lbw_toml *t = parse(text);
    CU_ASSERT(t != NULL);
    if (t)
        lbw_cfg_validate(t, "site.toml", lbw_cfg_worker_schema(), &d);
    lbw_toml_free(t);
    return d;
}

static int has_msg(const struct lbw_cfg_diag *d, int error, const char *a, const char *b,
                   const char *c)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->m[i].error == error && strstr(d->m[i].text, a) && (!b || strstr(d->m[i].text, b)) &&
            (!c || strstr(d->m[i].text, c)))
            return 1;
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "  diag: %s\n", d->m[i].text);
    return 0;
}

static void test_table(void)
{
    const struct lbw_cfg_schema *s = lbw_cfg_worker_schema();
    CU_ASSERT_EQUAL(s->n, LBW_CFG_NKEYS);
    for (size_t i = 0; i < s->n; i++) {
        const struct lbw_cfg_keydef *d = &s->keys[i];
        CU_ASSERT_FATAL(d->section && d->name && d->doc);
        CU_ASSERT(d->doc[0] != 0);
        CU_ASSERT(d == lbw_cfg_keydef((enum lbw_cfg_key)i));
        for (size_t j = 0; j < i; j++) /* declared once */
            CU_ASSERT(strcmp(d->section, s->keys[j].section) || strcmp(d->name, s->keys[j].name));
        if (d->type == LBW_CFG_INT || d->type == LBW_CFG_FLOAT)
            CU_ASSERT(d->min <= d->max && (d->def_doc || (d->def_num >= d->min && d->def_num <= d->max)));
        if (!(d->flags & LBW_CFG_UNUSED))
            CU_ASSERT(d->example != NULL);
    }
    /* the defaults, read from an empty configuration and from none */
    struct lbw_toml *t = parse("");
    CU_ASSERT(lbw_cfg_bool(t, LBW_CFG_LISTEN_TO_BROADCAST) == 1);
    CU_ASSERT(lbw_cfg_bool(NULL, LBW_CFG_LISTEN_TO_BROADCAST) == 1);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_PING_INTERVAL) == 10);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_KILL_GRACE) == 10);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_RUNTIME_REQUEST_TIMEOUT) == 60);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_MIN_PROGRESS_INTERVAL) == 1.0);
    CU_ASSERT_STRING_EQUAL(lbw_cfg_string(t, LBW_CFG_ENV_WRAPPER_NAME), "TrivialEnvironmentResolver");
    CU_ASSERT(lbw_cfg_string(t, LBW_CFG_SCHEDULER_ADDRESS) == NULL);
    CU_ASSERT(lbw_cfg_string(t, LBW_CFG_LOGPATH) == NULL);
    CU_ASSERT(lbw_cfg_list_len(t, LBW_CFG_SCHEDULER_ALLOW) == 0);
    uint64_t b = 0;
    CU_ASSERT(lbw_cfg_memory(t, LBW_CFG_CPU_MEM, &b) == 0);
    CU_ASSERT(!lbw_cfg_is_set(t, LBW_CFG_CPU_MEM));
    lbw_toml_free(t);
}

static void test_accessors(void)
{
    struct lbw_toml *t = parse("minimum_progress_reporting_interval = 0\n"
                               "[worker]\nlisten_to_broadcast = false\n"
                               "scheduler_address = \"10.0.0.1:1386\"\n"
                               "scheduler_allow = [\"10.0.0.1\", \"192.168.0.0/16\"]\n"
                               "ping_interval = 2\nkill_grace = 0.5\n"
                               "[default_env_wrapper]\nname = \"StandardEnvironmentResolver\"\n"
                               "arguments = { user = \"render\" }\n"
                               "[resources]\ncpu_count = 7.5\ncpu_mem = \"16G\"\ngpu_mem = 1000\n");
    CU_ASSERT_FATAL(t != NULL);
    struct lbw_cfg_diag d = {0};
    CU_ASSERT(lbw_cfg_validate(t, "t", lbw_cfg_worker_schema(), &d) == 0);
    CU_ASSERT(d.errors == 0 && d.warnings == 0);
    lbw_cfg_diag_free(&d);
    CU_ASSERT(lbw_cfg_bool(t, LBW_CFG_LISTEN_TO_BROADCAST) == 0);
    CU_ASSERT_STRING_EQUAL(lbw_cfg_string(t, LBW_CFG_SCHEDULER_ADDRESS), "10.0.0.1:1386");
    CU_ASSERT(lbw_cfg_list_len(t, LBW_CFG_SCHEDULER_ALLOW) == 2);
    CU_ASSERT_STRING_EQUAL(lbw_cfg_list_at(t, LBW_CFG_SCHEDULER_ALLOW, 1), "192.168.0.0/16");
    CU_ASSERT(lbw_cfg_list_at(t, LBW_CFG_SCHEDULER_ALLOW, 2) == NULL);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_PING_INTERVAL) == 2);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_KILL_GRACE) == 0.5);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_MIN_PROGRESS_INTERVAL) == 0);
    CU_ASSERT_STRING_EQUAL(lbw_cfg_string(t, LBW_CFG_ENV_WRAPPER_NAME), "StandardEnvironmentResolver");
    const struct lbw_toml *args = lbw_cfg_value(t, LBW_CFG_ENV_WRAPPER_ARGUMENTS);
    CU_ASSERT(args && args->type == LBW_TOML_TABLE && args->u.tab.n == 1);
    uint64_t b = 0;
    CU_ASSERT(lbw_cfg_memory(t, LBW_CFG_CPU_MEM, &b) == 1 && b == 16000000000ull);
    CU_ASSERT(lbw_cfg_memory(t, LBW_CFG_GPU_MEM, &b) == 1 && b == 1000);
    const struct lbw_toml *cc = lbw_cfg_value(t, LBW_CFG_CPU_COUNT);
    CU_ASSERT(cc && cc->type == LBW_TOML_FLOAT && cc->u.f == 7.5);
    lbw_toml_free(t);
    /* a wrong-typed value in a table nobody checked reads as the default */
    t = parse("[worker]\nlisten_to_broadcast = \"false\"\nping_interval = -3\n");
    CU_ASSERT(lbw_cfg_bool(t, LBW_CFG_LISTEN_TO_BROADCAST) == 1);
    CU_ASSERT(lbw_cfg_number(t, LBW_CFG_PING_INTERVAL) == 10);
    CU_ASSERT(lbw_cfg_is_set(t, LBW_CFG_PING_INTERVAL));
    lbw_toml_free(t);
}

static void test_wrong_types_are_errors(void)
{
    struct lbw_cfg_diag d = check_text("[worker]\nlisten_to_broadcast = \"false\"\n");
    CU_ASSERT_EQUAL(d.errors, 1);
    CU_ASSERT(has_msg(&d, 1, "site.toml: line 2: worker.listen_to_broadcast: expected a boolean",
                      "found the string \"false\"", NULL));
    lbw_cfg_diag_free(&d);
    d = check_text("minimum_progress_reporting_interval = \"1\"\n"
                   "[worker]\nping_interval = 0\nkill_grace = inf\nlogpath = 5\n"
                   "scheduler_address = \"10.0.0.1:99999\"\nscheduler_allow = \"10.0.0.1\"\n"
                   "[default_env_wrapper]\narguments = [1]\n"
                   "[resources]\ncpu_mem = \"16g\"\ncpu_count = -1\ngpu_mem = -5\n"
                   "gpu_count = true\n");
    CU_ASSERT_EQUAL(d.errors, 11);
    CU_ASSERT(has_msg(&d, 1, "line 1: minimum_progress_reporting_interval", "a number (seconds)",
                      "the string \"1\""));
    CU_ASSERT(has_msg(&d, 1, "line 3: worker.ping_interval", "from 0.05 to 3600", "integer 0"));
    CU_ASSERT(has_msg(&d, 1, "line 4: worker.kill_grace", "the float inf", NULL));
    CU_ASSERT(has_msg(&d, 1, "line 5: worker.logpath: expected a string", "the integer 5", NULL));
    CU_ASSERT(has_msg(&d, 1, "line 6: worker.scheduler_address", "not an address chain", NULL));
    CU_ASSERT(has_msg(&d, 1, "line 7: worker.scheduler_allow: expected a list of strings", NULL,
                      NULL));
    CU_ASSERT(has_msg(&d, 1, "line 9: default_env_wrapper.arguments: expected a table", NULL, NULL));
    CU_ASSERT(has_msg(&d, 1, "line 11: resources.cpu_mem: expected a memory size",
                      "the string \"16g\"", NULL));
    CU_ASSERT(has_msg(&d, 1, "line 12: resources.cpu_count", "from 0 to 1000000", NULL));
    CU_ASSERT(has_msg(&d, 1, "line 13: resources.gpu_mem", NULL, NULL));
    CU_ASSERT(has_msg(&d, 1, "line 14: resources.gpu_count", "the boolean true", NULL));
    lbw_cfg_diag_free(&d);
    /* every allowlist entry is checked, as the start checks it */
    d = check_text("[worker]\nscheduler_allow = [\"10.0.0.0/8\", \"::1\", \"10.0.0.0/33\"]\n");
    CU_ASSERT_EQUAL(d.errors, 1);
    CU_ASSERT(has_msg(&d, 1, "line 2: worker.scheduler_allow", "entry 3: '10.0.0.0/33' is not an IP "
                      "address or network", NULL));
    lbw_cfg_diag_free(&d);
    d = check_text("[worker]\nscheduler_allow = [\"10.0.0.0/8\", \"fd00::/8\"]\n");
    CU_ASSERT_EQUAL(d.errors, 0);
    lbw_cfg_diag_free(&d);
    /* a section that is not a table */
    d = check_text("worker = 1\n[[resources]]\n");
    CU_ASSERT_EQUAL(d.errors, 2);
    CU_ASSERT(has_msg(&d, 1, "line 1: worker: expected a table ([worker])", NULL, NULL));
    CU_ASSERT(has_msg(&d, 1, "line 2: resources: expected a table", "an array of 1 value", NULL));
    lbw_cfg_diag_free(&d);
}

static void test_unknown_keys_warn(void)
{
    struct lbw_cfg_diag d = check_text("scheduler_address = \"10.0.0.1:1386\"\n"
                                       "[workr]\nlisten_to_broadcast = false\n"
                                       "[worker]\nscheduler_addres = \"10.0.0.1:1386\"\n"
                                       "cpu_count = 4\n"
                                       "[resources]\ngpu_cont = 1\n"
                                       "[completely_else]\n"
                                       "[default_env_wrapper]\nzzzzzzzzzz = 1\n");
    CU_ASSERT_EQUAL(d.errors, 0);
    CU_ASSERT_EQUAL(d.warnings, 7);
    CU_ASSERT(has_msg(&d, 0, "line 1: unknown key scheduler_address",
                      "did you mean worker.scheduler_address?", NULL));
    CU_ASSERT(has_msg(&d, 0, "line 2: unknown section [workr]", "did you mean [worker]?", NULL));
    CU_ASSERT(has_msg(&d, 0, "line 5: unknown key worker.scheduler_addres",
                      "did you mean worker.scheduler_address?", "ignored"));
    CU_ASSERT(has_msg(&d, 0, "line 6: unknown key worker.cpu_count",
                      "did you mean resources.cpu_count?", NULL));
    CU_ASSERT(has_msg(&d, 0, "line 8: unknown key resources.gpu_cont",
                      "did you mean resources.gpu_count?", NULL));
    CU_ASSERT(has_msg(&d, 0, "unknown section [completely_else]", "config keys", NULL));
    CU_ASSERT(has_msg(&d, 0, "unknown key default_env_wrapper.zzzzzzzzzz", "config keys", NULL));
    lbw_cfg_diag_free(&d);
}

static void test_upstream_configs_pass(void)
{
    /* upstream's default file (PROTOCOL.md 9.1), a newer upstream's with
     * devices, the test harness's, and our own generated default: no
     * error, no warning */
    const char *texts[] = {
        "[worker]\nlisten_to_broadcast = true\n\n[default_env_wrapper]\n"
        "# name = TrivialEnvironmentResolver\n\n[resources]\n# cpu_count = 32\n",
        "[worker]\nlisten_to_broadcast = true\n[default_env_wrapper]\n"
        "[devices.gpu.gpu1.resources]\nmem = \"4G\"\nopencl_ver = 3.0\ncuda_cc = 5.0\n"
        "[devices.gpu.gpu1.tags]\nhoudini_ocl = \"GPU::0\"\nkarma_dev = \"0/1\"\n",
        "minimum_progress_reporting_interval = 0.0\nlocal_shared_dir_path = \"/tmp/x\"\n"
        "[worker]\nlisten_to_broadcast = false\nlogpath = \"/tmp/l\"\nkill_grace = 1.0\n"
        "scheduler_address = \"192.168.0.2\"\n"
        "[resources]\ncpu_count = 32\ncpu_mem = \"128G\"\ngpu_count = 1\ngpu_mem = \"8G\"\n"
        "[default_env_wrapper]\nname = \"StandardEnvironmentResolver\"\n"
        "arguments = { \"package.houdini.py3_10\" = \"~=20.0\", user = \"r\" }\n",
        NULL,
    };
    char *def = lbw_config_default_worker_text();
    CU_ASSERT_FATAL(def != NULL);
    texts[3] = def;
    for (int i = 0; i < 4; i++) {
        struct lbw_cfg_diag d = check_text(texts[i]);
        if (d.errors || d.warnings)
            fprintf(stderr, "config %d:\n%s\n", i, texts[i]);
        CU_ASSERT(d.errors == 0 && d.warnings == 0);
        lbw_cfg_diag_free(&d);
    }
    /* the generated default names every key it can set, and sets
     * listen_to_broadcast like upstream's */
    struct lbw_toml *t = parse(def);
    CU_ASSERT(lbw_toml_get(t, "worker.listen_to_broadcast") != NULL);
    CU_ASSERT(lbw_toml_get(t, "resources") != NULL);
    for (size_t i = 0; i < LBW_CFG_NKEYS; i++) {
        const struct lbw_cfg_keydef *k = lbw_cfg_keydef((enum lbw_cfg_key)i);
        if (!(k->flags & LBW_CFG_UNUSED))
            CU_ASSERT(strstr(def, k->name) != NULL);
    }
    lbw_toml_free(t);
    free(def);
    /* the standard resolver's files (docs/CONFIGURATION.md) */
    const char *sr = "[packages.\"houdini.py3_10\".\"20.0.506\"]\npriority = 10\n"
                     "env.PATH.prepend = \"/opt/hfs20.0.506/bin\"\nenv.HFS = \"/opt/hfs\"\n"
                     "[packages.redshift.\"3.5.16\"]\nenv.PATH.append = [\"/opt/rs/bin\"]\n";
    t = parse(sr);
    struct lbw_cfg_diag d = {0};
    CU_ASSERT(lbw_cfg_validate(t, "sr", lbw_cfg_stdres_schema(), &d) == 0 && d.warnings == 0);
    lbw_cfg_diag_free(&d);
    lbw_toml_free(t);
}

static void test_checked_loader(void)
{
    char root[] = "/tmp/lbw-config-checked-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(root) != NULL);
    char p[600];
    snprintf(p, sizeof(p), "%s/config.d", root);
    CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/config.toml", root);
    put(p, "[worker]\nlisten_to_broadcast = false\n");
    snprintf(p, sizeof(p), "%s/config.d/10-a.toml", root);
    put(p, "[resources]\ncpu_count = 2\n");
    snprintf(p, sizeof(p), "%s/config.d/15-broken.toml", root);
    put(p, "[resources]\ncpu_count = 3\n\n[resources\n");
    snprintf(p, sizeof(p), "%s/config.d/20-typo.toml", root);
    put(p, "[worker]\nscheduler_addres = \"10.0.0.1:1386\"\n");
    struct lbw_cfg_diag d = {0};
    struct lbw_toml *c = lbw_config_load_checked(root, lbw_cfg_worker_schema(), &d);
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL(d.files, 4);
    CU_ASSERT_EQUAL(d.errors, 1); /* the broken file is an error, not skipped silently */
    CU_ASSERT(has_msg(&d, 1, "15-broken.toml: line 4, column", "expected ']'", NULL));
    CU_ASSERT(has_msg(&d, 0, "20-typo.toml: line 2: unknown key worker.scheduler_addres",
                      "did you mean worker.scheduler_address?", NULL));
    CU_ASSERT(lbw_cfg_bool(c, LBW_CFG_LISTEN_TO_BROADCAST) == 0);
    /* overrides are checked too */
    CU_ASSERT(lbw_config_override_checked(c, "worker.listen_to_broadcast=maybe",
                                          lbw_cfg_worker_schema(), &d) == -1);
    CU_ASSERT(has_msg(&d, 1, "--config worker.listen_to_broadcast=maybe: "
                             "worker.listen_to_broadcast: expected a boolean", NULL, NULL));
    CU_ASSERT(lbw_cfg_bool(c, LBW_CFG_LISTEN_TO_BROADCAST) == 0); /* not applied */
    CU_ASSERT(lbw_config_override_checked(c, "worker.logpth=/x", lbw_cfg_worker_schema(), &d) == 0);
    CU_ASSERT(has_msg(&d, 0, "unknown key worker.logpth", "did you mean worker.logpath?", NULL));
    CU_ASSERT(lbw_config_override_checked(c, "worker.ping_interval=0.5", lbw_cfg_worker_schema(),
                                          &d) == 0);
    CU_ASSERT(lbw_cfg_number(c, LBW_CFG_PING_INTERVAL) == 0.5);
    CU_ASSERT(lbw_config_override_checked(c, "novalue", lbw_cfg_worker_schema(), &d) == -1);
    lbw_toml_free(c);
    lbw_cfg_diag_free(&d);
    /* an unreadable file is an error too (a directory named like a file) */
    snprintf(p, sizeof(p), "%s/config.d/30-dir.toml", root);
    CU_ASSERT(mkdir(p, 0755) == 0);
    c = lbw_config_load_checked(root, lbw_cfg_worker_schema(), &d);
    CU_ASSERT(has_msg(&d, 1, "30-dir.toml: not a regular file", NULL, NULL));
    lbw_toml_free(c);
    lbw_cfg_diag_free(&d);
    /* one file alone */
    snprintf(p, sizeof(p), "%s/config.d/10-a.toml", root);
    c = lbw_config_load_file(p, lbw_cfg_worker_schema(), &d);
    CU_ASSERT(c != NULL && d.errors == 0 && d.files == 1);
    lbw_toml_free(c);
    snprintf(p, sizeof(p), "%s/missing.toml", root);
    CU_ASSERT(lbw_config_load_file(p, lbw_cfg_worker_schema(), &d) == NULL);
    CU_ASSERT(has_msg(&d, 1, "missing.toml", "No such file", NULL));
    lbw_cfg_diag_free(&d);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CU_ASSERT(system(cmd) == 0);
}

static void test_missing_home_not_created(void)
{
    char root[] = "/tmp/lbw-config-home-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(root) != NULL);
    char home[600], dir[700], why[512];
    snprintf(home, sizeof(home), "%s/nonexistent", root);
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char *old_loc = getenv("LIFEBLOOD_CONFIG_LOCATION") ? strdup(getenv("LIFEBLOOD_CONFIG_LOCATION")) : NULL;
    setenv("HOME", home, 1);
    unsetenv("LIFEBLOOD_CONFIG_LOCATION");
    CU_ASSERT(lbw_config_home_ok(why, sizeof(why)) == -1);
    CU_ASSERT(strstr(why, home) && strstr(why, "LIFEBLOOD_CONFIG_LOCATION"));
    CU_ASSERT_FATAL(lbw_config_dir("worker", dir, sizeof(dir)) == 0);
    int created = 1;
    CU_ASSERT(lbw_config_write_default(dir, &created, why, sizeof(why)) == -1 && created == 0);
    struct stat st;
    CU_ASSERT(stat(home, &st) == -1); /* nothing was created under it */
    /* LIFEBLOOD_CONFIG_LOCATION elsewhere: HOME does not matter */
    setenv("LIFEBLOOD_CONFIG_LOCATION", root, 1);
    CU_ASSERT(lbw_config_home_ok(why, sizeof(why)) == 0);
    /* "~/x" is under HOME again */
    setenv("LIFEBLOOD_CONFIG_LOCATION", "~/cfg", 1);
    CU_ASSERT(lbw_config_home_ok(why, sizeof(why)) == -1);
    if (old_home)
        setenv("HOME", old_home, 1);
    if (old_loc)
        setenv("LIFEBLOOD_CONFIG_LOCATION", old_loc, 1);
    else
        unsetenv("LIFEBLOOD_CONFIG_LOCATION");
    free(old_home);
    free(old_loc);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CU_ASSERT(system(cmd) == 0);
}

static void test_key_reference(void)
{
    char *md = lbw_config_keys_text(1), *plain = lbw_config_keys_text(0);
    CU_ASSERT_FATAL(md && plain);
    CU_ASSERT(!strncmp(md, "| key | type | default | meaning |\n|---|---|---|---|\n", 50));
    /* one row per key */
    size_t rows = 0;
    for (const char *p = md; (p = strstr(p, "\n| `")); p++)
        rows++;
    CU_ASSERT_EQUAL(rows, LBW_CFG_NKEYS);
    CU_ASSERT(strstr(md, "| `worker.listen_to_broadcast` | boolean | `true` |") != NULL);
    CU_ASSERT(strstr(md, "| `worker.scheduler_allow` | list of strings |") != NULL);
    CU_ASSERT(strstr(md, "| `resources.cpu_mem` | memory size | detected |") != NULL);
    CU_ASSERT(strstr(md, "extension: time between worker.pings") != NULL);
    CU_ASSERT(strstr(plain, "worker.ping_interval (number, default 10)") != NULL);
    CU_ASSERT(strchr(plain, '|') == NULL || strstr(plain, "ip:port[|") != NULL);
    free(md);
    free(plain);
}

static const struct lbw_test tests[] = {
    {"memory strings as upstream", test_mem_strings},
    {"TOML errors name line and column", test_error_positions},
    {"get, set, overrides", test_get_set},
    {"discovery, default file, config.d merge", test_discovery_and_merge},
    {"every key declared once, with its default", test_table},
    {"typed accessors", test_accessors},
    {"wrong types are errors naming file, line, key, expected type", test_wrong_types_are_errors},
    {"unknown keys warn with the nearest known key", test_unknown_keys_warn},
    {"upstream's and the generated configs pass unchanged", test_upstream_configs_pass},
    {"checked loader: a broken file is an error; overrides checked", test_checked_loader},
    {"a HOME that does not exist is never created", test_missing_home_not_created},
    {"key reference from the table", test_key_reference},
    {NULL, NULL},
};

static int register_config_suites(void) { return lbw_add_suite("config", NULL, NULL, tests); }

LBW_TEST_SUITES(register_config_suites)
