/* test_config.c — TOML error positions, config discovery and merge order,
 * skipped broken files, overrides, the default worker config, memory
 * strings. */
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

static const struct lbw_test tests[] = {
    {"memory strings as upstream", test_mem_strings},
    {"TOML errors name line and column", test_error_positions},
    {"get, set, overrides", test_get_set},
    {"discovery, default file, config.d merge", test_discovery_and_merge},
    {NULL, NULL},
};

static int register_config_suites(void) { return lbw_add_suite("config", NULL, NULL, tests); }

LBW_TEST_SUITES(register_config_suites)
