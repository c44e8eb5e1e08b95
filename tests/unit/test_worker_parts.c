/* test_worker_parts.c — the pieces of the worker session that need no
 * peer: semantic version specs (the Standard resolver's), the Standard
 * resolver itself, the discovery datagram against the captured vector,
 * the streamed JSON body against a straight encoding, and executable
 * lookup. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discover.h"
#include "environment.h"
#include "fixture.h"
#include "jstream.h"
#include "run.h"
#include "semver.h"
#include "suites.h"
#include "toml.h"

static int m(const char *spec, const char *ver)
{
    struct lbw_semver v;
    if (lbw_semver_parse(ver, &v) < 0)
        return -2;
    return lbw_semver_match(spec, &v);
}

static void test_semver(void)
{
    struct lbw_semver a, b;
    CU_ASSERT(lbw_semver_parse("20.0.506", &a) == 0);
    CU_ASSERT(lbw_semver_parse("20.0", &a) < 0);
    CU_ASSERT(lbw_semver_parse("01.0.0", &a) < 0);
    CU_ASSERT(lbw_semver_parse("1.0.0-rc.1+build5", &a) == 0);
    CU_ASSERT_STRING_EQUAL(a.pre, "rc.1");
    /* ordering as SemVer 2.0 */
    const char *order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                           "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1",
                           "1.10.0", "2.0.0"};
    for (size_t i = 0; i + 1 < sizeof(order) / sizeof(*order); i++) {
        CU_ASSERT(lbw_semver_parse(order[i], &a) == 0);
        CU_ASSERT(lbw_semver_parse(order[i + 1], &b) == 0);
        CU_ASSERT(lbw_semver_cmp(&a, &b) < 0);
        CU_ASSERT(lbw_semver_cmp(&b, &a) > 0);
    }
    /* the spec forms PROTOCOL.md 7.3 lists */
    CU_ASSERT(m("==1.2.3", "1.2.3") == 1);
    CU_ASSERT(m("==1.2.3", "1.2.4") == 0);
    CU_ASSERT(m("1.2.3", "1.2.3") == 1);
    CU_ASSERT(m("~=20.0.506", "20.0.600") == 1);
    CU_ASSERT(m("~=20.0.506", "20.1.0") == 0);
    CU_ASSERT(m("~=20.0.506", "20.0.505") == 0);
    CU_ASSERT(m("~=20.0", "20.5.1") == 1);
    CU_ASSERT(m("~=20.0", "21.0.0") == 0);
    CU_ASSERT(m("~20.0", "20.0.9") == 1);
    CU_ASSERT(m("~20.0", "20.1.0") == 0);
    CU_ASSERT(m("^20.0.0", "20.9.9") == 1);
    CU_ASSERT(m("^20.0.0", "21.0.0") == 0);
    CU_ASSERT(m("^0.2.1", "0.2.5") == 1);
    CU_ASSERT(m("^0.2.1", "0.3.0") == 0);
    CU_ASSERT(m("20.0.*", "20.0.7") == 1);
    CU_ASSERT(m("20.0.*", "20.1.0") == 0);
    CU_ASSERT(m("<20", "19.9.9") == 1);
    CU_ASSERT(m("<20", "20.0.0") == 0);
    CU_ASSERT(m(">=19", "19.0.0") == 1);
    CU_ASSERT(m(">=19,<20", "19.5.0") == 1);
    CU_ASSERT(m(">=19,<20", "20.5.0") == 0);
    CU_ASSERT(m("*", "3.2.1") == 1);
    CU_ASSERT(m("!=1.0.0", "1.0.0") == 0);
    /* pre-releases only when a clause names one of the same version */
    CU_ASSERT(m(">=1.0.0", "1.0.1-rc1") == 0);
    CU_ASSERT(m(">=1.0.1-rc1", "1.0.1-rc2") == 1);
    CU_ASSERT(m("==1.0.1-rc1", "1.0.1-rc1") == 1);
    /* invalid specs */
    CU_ASSERT(m("=>1", "1.0.0") == -1);
    CU_ASSERT(m("", "1.0.0") == -1);
    CU_ASSERT(m("abc", "1.0.0") == -1);
}

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

static void test_discovery_datagram(void)
{
    size_t n;
    uint8_t *p = fx_read("broadcast_datagram.bin", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char addr[256], err[200];
    size_t bo, bl;
    CU_ASSERT_FATAL(lbw_discover_parse(p, n, addr, sizeof(addr), &bo, &bl, err,
                                       sizeof(err)) == 0);
    CU_ASSERT_STRING_EQUAL(addr, "192.168.1.10:1386");
    uint8_t out[512];
    size_t ol = lbw_discover_build(p + bo, bl, out, sizeof(out));
    CU_ASSERT(ol == n && memcmp(out, p, n) == 0); /* same layout as upstream's */
    for (size_t cut = 0; cut < n; cut++) /* every truncation is refused */
        CU_ASSERT(lbw_discover_parse(p, cut, addr, sizeof(addr), &bo, &bl, err,
                                     sizeof(err)) < 0);
    CU_ASSERT(lbw_discover_parse((const uint8_t *)"hello", 5, addr, sizeof(addr), &bo, &bl,
                                 err, sizeof(err)) == -1);
    free(p);
}

static void test_jstream(void)
{
    char path[] = "/tmp/lbw-jstream-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    /* 300 KiB of mixed bytes: crosses the internal chunk sizes */
    size_t n = 300 * 1024;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)((i * 7919u) >> 3);
    CU_ASSERT(write(fd, data, n) == (ssize_t)n);
    struct lbw_jstream *s = lbw_jstream_new();
    CU_ASSERT(lbw_jstream_text(s, "{\"a\": \"", 7) == 0);
    CU_ASSERT(lbw_jstream_file(s, open(path, O_RDONLY)) == 0);
    CU_ASSERT(lbw_jstream_text(s, "\", \"b\": \"", 9) == 0);
    CU_ASSERT(lbw_jstream_file(s, -1) == 0);
    CU_ASSERT(lbw_jstream_text(s, "\"}", 2) == 0);
    uint64_t len;
    CU_ASSERT_FATAL(lbw_jstream_len(s, &len) == 0);
    /* the reference: the whole file through the one-shot writer */
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_obj(&w);
    lbw_jw_key(&w, "a");
    lbw_jw_str(&w, (const char *)data, n);
    lbw_jw_key(&w, "b");
    lbw_jw_str(&w, "", 0);
    lbw_jw_obj_end(&w);
    size_t rl;
    char *ref = lbw_jw_take(&w, &rl);
    CU_ASSERT_FATAL(ref != NULL);
    CU_ASSERT(len == rl);
    /* produce it twice (a retry rewinds), in odd chunk sizes */
    for (int pass = 0; pass < 2; pass++) {
        char *got = malloc(len + 1);
        uint64_t off = 0;
        size_t step = pass ? 4093 : 65536;
        while (off < len) {
            ssize_t r = lbw_jstream_fill(s, off, (uint8_t *)got + off, step);
            if (r <= 0)
                break;
            off += (uint64_t)r;
        }
        CU_ASSERT(off == len && memcmp(got, ref, len) == 0);
        free(got);
    }
    /* the file grows after the length was taken: the body stays the same */
    CU_ASSERT(write(fd, "more", 4) == 4);
    char *got = malloc(len);
    uint64_t off = 0;
    while (off < len) {
        ssize_t r = lbw_jstream_fill(s, off, (uint8_t *)got + off, 100000);
        if (r <= 0)
            break;
        off += (uint64_t)r;
    }
    CU_ASSERT(off == len && memcmp(got, ref, len) == 0);
    free(got);
    free(ref);
    lbw_jstream_free(s);
    close(fd);
    unlink(path);
    free(data);
}

static void test_find_executable(void)
{
    char out[4096];
    CU_ASSERT(lbw_find_executable("sh", "/nonexistent:/bin", out, sizeof(out)) == 0);
    CU_ASSERT_STRING_EQUAL(out, "/bin/sh");
    CU_ASSERT(lbw_find_executable("/bin/sh", "", out, sizeof(out)) == 0);
    CU_ASSERT(lbw_find_executable("no-such-tool-lbw", "/bin:/usr/bin", out, sizeof(out)) < 0);
    CU_ASSERT(lbw_find_executable("passwd", "/etc", out, sizeof(out)) < 0); /* not executable */
    CU_ASSERT(lbw_find_executable("", "/bin", out, sizeof(out)) < 0);
}

static const struct lbw_test tests[] = {
    {"semantic versions and SimpleSpec specs", test_semver},
    {"StandardEnvironmentResolver packages, priorities, user", test_standard_resolver},
    {"discovery datagram (captured vector, truncations)", test_discovery_datagram},
    {"streamed JSON body equals the one-shot encoding", test_jstream},
    {"executable lookup along PATH", test_find_executable},
    {NULL, NULL},
};

static int register_worker_parts_suites(void) { return lbw_add_suite("worker parts", NULL, NULL, tests); }

LBW_TEST_SUITES(register_worker_parts_suites)
