/* test_pickle.c — the pickle codec and invocation model against every
 * vector, asserting the values the vectors' README lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "invocation.h"
#include "pickle.h"
#include "suites.h"

static const char *const all_pickles[] = {
    "invocationjob_minimal", "invocationjob_minimal_enum_by_value",
    "invocationjob_minimal_finished", "invocationjob_cancelled", "invocationjob_killed_by_signal",
    "invocationjob_full", "invocationjob_full_finished", "invocationjob_large", "workerresources",
    "workerresources_float", "environmentresolverarguments", "taskspawn_runtime",
    "taskspawn_runtime_envargs", "taskspawn_forwarded", "taskspawn_forwarded_envargs", "newtask",
    "capture_workerresources", "capture_task_from_scheduler", "capture_done_from_worker",
    "capture_dropped_from_worker", "capture_spawn_forwarded",
};

static uint8_t *load(const char *name, size_t *n)
{
    char rel[200];
    snprintf(rel, sizeof(rel), "pickles/%s.pickle", name);
    return fx_read(rel, n);
}

/* Structural equality of two acyclic trees. */
static int eq(const struct lbw_pk *a, const struct lbw_pk *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case LBW_PK_NONE: return 1;
    case LBW_PK_BOOL: return a->u.b == b->u.b;
    case LBW_PK_INT: return a->u.i == b->u.i;
    case LBW_PK_FLOAT: return memcmp(&a->u.f, &b->u.f, 8) == 0;
    case LBW_PK_BIGINT:
    case LBW_PK_STR:
    case LBW_PK_BYTES:
    case LBW_PK_BYTEARRAY:
        return a->u.s.n == b->u.s.n && !memcmp(a->u.s.p, b->u.s.p, a->u.s.n);
    case LBW_PK_GLOBAL:
        return !strcmp(a->u.g.module, b->u.g.module) && !strcmp(a->u.g.name, b->u.g.name);
    case LBW_PK_OBJECT:
        return a->u.obj.how == b->u.obj.how && eq(a->u.obj.func, b->u.obj.func) &&
               eq(a->u.obj.args, b->u.obj.args) && eq(a->u.obj.kwargs, b->u.obj.kwargs) &&
               eq(a->u.obj.state, b->u.obj.state);
    default:
        if (a->u.seq.n != b->u.seq.n)
            return 0;
        for (size_t i = 0; i < a->u.seq.n; i++)
            if (!eq(a->u.seq.v[i], b->u.seq.v[i]))
                return 0;
        return 1;
    }
}

static void test_every_vector_roundtrips(void)
{
    for (size_t i = 0; i < sizeof(all_pickles) / sizeof(all_pickles[0]); i++) {
        size_t n;
        uint8_t *b = load(all_pickles[i], &n);
        CU_ASSERT_FATAL(b != NULL);
        struct lbw_pk_doc d1, d2, d3;
        char err[300];
        int rc = lbw_pk_decode(&d1, b, n, NULL, err, sizeof(err));
        if (rc)
            fprintf(stderr, "%s: %s\n", all_pickles[i], err);
        CU_ASSERT_FATAL(rc == 0);
        uint8_t *e1, *e2;
        size_t l1, l2;
        CU_ASSERT_FATAL(lbw_pk_encode(&d1, d1.root, &e1, &l1, err, sizeof(err)) == 0);
        CU_ASSERT_FATAL(lbw_pk_decode(&d2, e1, l1, NULL, err, sizeof(err)) == 0);
        CU_ASSERT(eq(d1.root, d2.root));
        /* encoding is deterministic: the second generation is identical */
        CU_ASSERT_FATAL(lbw_pk_encode(&d2, d2.root, &e2, &l2, err, sizeof(err)) == 0);
        CU_ASSERT(l1 == l2 && !memcmp(e1, e2, l1));
        CU_ASSERT(lbw_pk_decode(&d3, e2, l2, NULL, err, sizeof(err)) == 0);
        /* every proper prefix fails cleanly */
        if (n < 4000) {
            for (size_t cut = 0; cut < n; cut++) {
                struct lbw_pk_doc dp;
                CU_ASSERT(lbw_pk_decode(&dp, b, cut, NULL, err, sizeof(err)) == -1);
                lbw_pk_doc_free(&dp);
            }
        }
        lbw_pk_doc_free(&d1);
        lbw_pk_doc_free(&d2);
        lbw_pk_doc_free(&d3);
        free(e1);
        free(e2);
        free(b);
    }
}

static void load_inv(const char *name, struct lbw_inv *inv)
{
    size_t n;
    uint8_t *b = load(name, &n);
    CU_ASSERT_FATAL(b != NULL);
    char err[300];
    int rc = lbw_inv_load(inv, b, n, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err);
    CU_ASSERT_FATAL(rc == 0);
    free(b);
}

static void check_args(struct lbw_inv *inv, const char *const *want, size_t nwant)
{
    const char **argv;
    size_t argc;
    CU_ASSERT_FATAL(lbw_inv_args(inv, &argv, &argc) == 0);
    CU_ASSERT_EQUAL(argc, nwant);
    for (size_t i = 0; i < argc && i < nwant; i++)
        CU_ASSERT_STRING_EQUAL(argv[i], want[i]);
    CU_ASSERT(argv[argc] == NULL);
    free(argv);
}

static void check_codes(struct lbw_inv *inv, int retry, const int64_t *want, size_t nwant)
{
    int64_t *c;
    size_t n;
    CU_ASSERT_FATAL(lbw_inv_exitcodes(inv, retry, &c, &n) == 0);
    CU_ASSERT_EQUAL(n, nwant);
    for (size_t i = 0; i < nwant; i++) {
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found |= c[k] == want[i];
        CU_ASSERT(found);
    }
    free(c);
}

static void check_minimal(const char *name)
{
    struct lbw_inv inv;
    load_inv(name, &inv);
    static const char *const args[] = {"echo", "hello"};
    check_args(&inv, args, 2);
    struct lbw_env_action *acts;
    size_t na;
    CU_ASSERT(lbw_inv_env_actions(&inv, &acts, &na) == 0 && na == 0);
    free(acts);
    int64_t v;
    CU_ASSERT(lbw_inv_invocation_id(&inv, &v) == 0);
    CU_ASSERT(lbw_inv_task_id(&inv, &v) == 0);
    struct lbw_regex re;
    CU_ASSERT(lbw_inv_progress_regex(&inv, 0, &re) == 0 && re.present && re.is_bytes &&
              re.flags == 0 && re.len == 21 && !memcmp(re.pattern, "ALF_PROGRESS\\s+(\\d+)%", 21));
    CU_ASSERT(lbw_inv_progress_regex(&inv, 1, &re) == 0 && !re.present);
    struct lbw_requirements rq;
    CU_ASSERT_FATAL(lbw_inv_requirements(&inv, &rq) == 0);
    CU_ASSERT(rq.ngroups == 0 && rq.worker_type == 0);
    CU_ASSERT(lbw_num_value(&rq.min_cpu) == 0 && lbw_num_value(&rq.min_mem) == 0 &&
              lbw_num_value(&rq.min_gpu) == 0 && lbw_num_value(&rq.min_gpu_mem) == 0);
    CU_ASSERT(!rq.has_pref_cpu && !rq.has_pref_mem && !rq.has_pref_gpu && !rq.has_pref_gpu_mem);
    free(rq.groups);
    double pr;
    CU_ASSERT(lbw_inv_priority(&inv, &pr) == 0 && pr == 0.0);
    const char *rn;
    struct lbw_pk *ra;
    CU_ASSERT(lbw_inv_envres(&inv, &rn, &ra) == 0 && rn == NULL && ra == NULL);
    static const int64_t good[] = {0};
    check_codes(&inv, 0, good, 1);
    check_codes(&inv, 1, NULL, 0);
    struct lbw_pk *at = lbw_inv_attrs(&inv);
    CU_ASSERT(at && at->u.seq.n == 0);
    struct lbw_extra_file *ef;
    size_t ne;
    CU_ASSERT(lbw_inv_extra_files(&inv, &ef, &ne) == 0 && ne == 0);
    free(ef);
    CU_ASSERT(lbw_pk_dict_get(inv.state, "_InvocationJob__exitcode")->kind == LBW_PK_NONE);
    CU_ASSERT(lbw_pk_dict_get(inv.state, "_InvocationJob__running_time")->kind == LBW_PK_NONE);
    lbw_inv_free(&inv);
}

static void test_minimal(void)
{
    check_minimal("invocationjob_minimal");
    check_minimal("invocationjob_minimal_enum_by_value");
}

static void check_result(const char *name, int64_t iid, int has_exit, int64_t code, double rt)
{
    struct lbw_inv inv;
    load_inv(name, &inv);
    int64_t v = -1;
    CU_ASSERT(lbw_inv_invocation_id(&inv, &v) == 1 && v == iid);
    struct lbw_pk *ec = lbw_pk_dict_get(inv.state, "_InvocationJob__exitcode");
    struct lbw_pk *t = lbw_pk_dict_get(inv.state, "_InvocationJob__running_time");
    if (has_exit) {
        CU_ASSERT(ec && ec->kind == LBW_PK_INT && ec->u.i == code);
    } else {
        CU_ASSERT(ec && ec->kind == LBW_PK_NONE);
    }
    CU_ASSERT(t && t->kind == LBW_PK_FLOAT && t->u.f == rt);
    lbw_inv_free(&inv);
}

static void test_results(void)
{
    check_result("invocationjob_minimal_finished", 12, 1, 0, 0.25);
    check_result("invocationjob_cancelled", 13, 0, 0, 2.5);
    check_result("invocationjob_killed_by_signal", 14, 1, -9, 0.125);
    check_result("invocationjob_full_finished", 777, 1, 3, 12.345);
    check_result("capture_done_from_worker", 1, 1, 0, 15.09822940826416);
    check_result("capture_dropped_from_worker", 2, 0, 0, 2.706648826599121);
}

static void test_full(void)
{
    struct lbw_inv inv;
    load_inv("invocationjob_full", &inv);
    static const char *const args[] = {"python", ":/main_invocation.py", "--frame", "1001"};
    check_args(&inv, args, 4);
    struct lbw_env_action *a;
    size_t na;
    CU_ASSERT_FATAL(lbw_inv_env_actions(&inv, &a, &na) == 0 && na == 5);
    static const char *const want[5][3] = {
        {"__setitem__", "LB_TEST_SET", "plain value"}, {"__setitem__", "LB_TEST_NUM", "42"},
        {"prepend", "PATH", "/opt/lbtest/bin"}, {"append", "PATH", "$HOME/.local/bin"},
        {"append", "LB_TEST_NEW", "${LB_TEST_SET}-x"}};
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_STRING_EQUAL(a[i].method, want[i][0]);
        CU_ASSERT_STRING_EQUAL(a[i].name, want[i][1]);
        CU_ASSERT_STRING_EQUAL(a[i].value, want[i][2]);
    }
    free(a);
    int64_t v;
    CU_ASSERT(lbw_inv_invocation_id(&inv, &v) == 1 && v == 777);
    CU_ASSERT(lbw_inv_task_id(&inv, &v) == 1 && v == 555);
    struct lbw_regex re;
    CU_ASSERT(lbw_inv_progress_regex(&inv, 0, &re) == 0 && re.is_bytes &&
              !strcmp(re.pattern, "^\\s*(?P<current>\\d+)\\s*/\\s*(?P<total>\\d+)"));
    CU_ASSERT(lbw_inv_progress_regex(&inv, 1, &re) == 0 && re.present &&
              !strcmp(re.pattern, "PROGRESS: (\\d+) of (\\d+)"));
    struct lbw_requirements rq;
    CU_ASSERT_FATAL(lbw_inv_requirements(&inv, &rq) == 0);
    CU_ASSERT_EQUAL(rq.ngroups, 2);
    int render = 0, gpu = 0;
    for (size_t i = 0; i < rq.ngroups; i++) {
        render |= !strcmp(rq.groups[i], "render");
        gpu |= !strcmp(rq.groups[i], "gpu*");
    }
    CU_ASSERT(render && gpu && rq.worker_type == 0);
    CU_ASSERT(!rq.min_cpu.is_float && rq.min_cpu.i == 2);
    CU_ASSERT(rq.min_mem.i == 4000000000LL);
    CU_ASSERT(rq.min_gpu.is_float && rq.min_gpu.f == 1.5);
    CU_ASSERT(rq.min_gpu_mem.i == 2000000000LL);
    CU_ASSERT(rq.has_pref_cpu && rq.pref_cpu.i == 8 && rq.has_pref_mem &&
              rq.pref_mem.i == 16000000000LL && !rq.has_pref_gpu && !rq.has_pref_gpu_mem);
    free(rq.groups);
    double pr;
    CU_ASSERT(lbw_inv_priority(&inv, &pr) == 0 && pr == 12.5);
    const char *rn;
    struct lbw_pk *ra;
    CU_ASSERT(lbw_inv_envres(&inv, &rn, &ra) == 0 && rn &&
              !strcmp(rn, "StandardEnvironmentResolver"));
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(ra, "package.houdini.py3_10"), "~=20.0.506"));
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(ra, "user"), "artist"));
    static const int64_t good[] = {0, 3}, retry[] = {75};
    check_codes(&inv, 0, good, 2);
    check_codes(&inv, 1, retry, 1);
    struct lbw_pk *at = lbw_inv_attrs(&inv);
    CU_ASSERT_FATAL(at != NULL);
    struct lbw_pk *x = lbw_pk_dict_get(at, "frame");
    CU_ASSERT(x && x->kind == LBW_PK_INT && x->u.i == 1001);
    x = lbw_pk_dict_get(at, "fps");
    CU_ASSERT(x && x->kind == LBW_PK_FLOAT && x->u.f == 23.976);
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(at, "name"), "shot_010"));
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(at, "unicode"),
                            "Gr\xc3\xb6\xc3\x9f" "e \xe2\x80\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                            "\xf0\x9f\x8e\xac"));
    /* 2^70: 9 bytes little-endian, 0x40 in the top one */
    x = lbw_pk_dict_get(at, "big");
    static const uint8_t two70[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0x40};
    CU_ASSERT(x && x->kind == LBW_PK_BIGINT && x->u.s.n == 9 && !memcmp(x->u.s.p, two70, 9));
    x = lbw_pk_dict_get(at, "neg");
    CU_ASSERT(x && x->kind == LBW_PK_INT && x->u.i == -5);
    x = lbw_pk_dict_get(at, "negbig"); /* -2^64 */
    static const uint8_t m264[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff};
    CU_ASSERT(x && x->kind == LBW_PK_BIGINT && x->u.s.n == 9 && !memcmp(x->u.s.p, m264, 9));
    x = lbw_pk_dict_get(at, "flag");
    CU_ASSERT(x && x->kind == LBW_PK_BOOL && x->u.b == 1);
    CU_ASSERT(lbw_pk_dict_get(at, "none")->kind == LBW_PK_NONE);
    struct lbw_pk *nest = lbw_pk_dict_get(at, "nested");
    struct lbw_pk *l = lbw_pk_dict_get(nest, "list");
    CU_ASSERT_FATAL(l && l->kind == LBW_PK_LIST && l->u.seq.n == 4);
    CU_ASSERT(l->u.seq.v[1]->kind == LBW_PK_FLOAT && l->u.seq.v[1]->u.f == 2.5);
    CU_ASSERT(lbw_pk_str_eq(l->u.seq.v[2], "three"));
    CU_ASSERT(lbw_pk_dict_get(l->u.seq.v[3]->u.seq.v[1], "five")->u.i == 5);
    CU_ASSERT(lbw_pk_dict_get(nest, "empty_list")->u.seq.n == 0);
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(at, "_hidden"), "not exported"));
    x = lbw_pk_dict_get(at, "long_string");
    CU_ASSERT(x && x->kind == LBW_PK_STR && x->u.s.n == 300);
    struct lbw_extra_file *ef;
    size_t ne;
    CU_ASSERT_FATAL(lbw_inv_extra_files(&inv, &ef, &ne) == 0 && ne == 3);
    for (size_t i = 0; i < ne; i++) {
        if (!strcmp(ef[i].path, "main_invocation.py")) {
            CU_ASSERT(!ef[i].is_bytes && ef[i].len == strlen("print(\"h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac\")\n") &&
                      !memcmp(ef[i].data, "print(\"h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac\")\n", ef[i].len));
        } else if (!strcmp(ef[i].path, "data/blob.bin")) {
            CU_ASSERT(ef[i].is_bytes && ef[i].len == 512);
            int ok = 1;
            for (size_t k = 0; k < 512; k++)
                ok &= ef[i].data[k] == (uint8_t)(k & 0xff);
            CU_ASSERT(ok);
        } else {
            CU_ASSERT(!strcmp(ef[i].path, "empty.txt") && ef[i].len == 0 && !ef[i].is_bytes);
        }
    }
    free(ef);
    lbw_inv_free(&inv);
}

static void test_large(void)
{
    struct lbw_inv inv;
    load_inv("invocationjob_large", &inv);
    static const char *const args[] = {"cat", ":/big.txt"};
    check_args(&inv, args, 2);
    int64_t v;
    CU_ASSERT(lbw_inv_invocation_id(&inv, &v) == 1 && v == 99);
    CU_ASSERT(lbw_inv_task_id(&inv, &v) == 0);
    struct lbw_extra_file *ef;
    size_t ne;
    CU_ASSERT_FATAL(lbw_inv_extra_files(&inv, &ef, &ne) == 0 && ne == 2);
    for (size_t i = 0; i < ne; i++) {
        CU_ASSERT(ef[i].len == 70000);
        int ok = 1;
        for (size_t k = 0; k < ef[i].len; k++)
            ok &= ef[i].is_bytes ? ef[i].data[k] == k % 251 : ef[i].data[k] == 'y';
        CU_ASSERT(ok);
    }
    free(ef);
    lbw_inv_free(&inv);
}

static void test_capture_task_and_done(void)
{
    /* The scheduler's job with the result set equals what upstream's worker
     * returned. */
    struct lbw_inv task, done;
    load_inv("capture_task_from_scheduler", &task);
    load_inv("capture_done_from_worker", &done);
    struct lbw_requirements rq;
    CU_ASSERT_FATAL(lbw_inv_requirements(&task, &rq) == 0);
    CU_ASSERT(rq.min_cpu.is_float && rq.min_cpu.f == 1.0 && rq.min_mem.i == 500000000 &&
              rq.has_pref_cpu && rq.pref_cpu.f == 2.0);
    free(rq.groups);
    CU_ASSERT(!eq(task.job, done.job));
    CU_ASSERT(lbw_inv_set_result(&task, 1, 0, 15.09822940826416) == 0);
    CU_ASSERT(eq(task.job, done.job));
    uint8_t *enc;
    size_t el;
    char err[200];
    CU_ASSERT_FATAL(lbw_inv_encode(&task, &enc, &el, err, sizeof(err)) == 0);
    struct lbw_inv back;
    CU_ASSERT_FATAL(lbw_inv_load(&back, enc, el, err, sizeof(err)) == 0);
    CU_ASSERT(eq(back.job, done.job));
    /* and None for a dropped job */
    CU_ASSERT(lbw_inv_set_result(&back, 0, 0, 1.5) == 0);
    CU_ASSERT(lbw_pk_dict_get(back.state, "_InvocationJob__exitcode")->kind == LBW_PK_NONE);
    free(enc);
    lbw_inv_free(&back);
    lbw_inv_free(&task);
    lbw_inv_free(&done);
}

static void check_res(const char *name, uint64_t hwid, double cpu, int cpu_float, int64_t mem,
                      int64_t gpu, int64_t gmem)
{
    size_t n;
    uint8_t *b = load(name, &n);
    struct lbw_resources r;
    char err[200];
    CU_ASSERT_FATAL(lbw_resources_decode(b, n, &r, err, sizeof(err)) == 0);
    CU_ASSERT(r.hwid == hwid);
    CU_ASSERT(r.cpu_count.is_float == cpu_float && lbw_num_value(&r.cpu_count) == cpu);
    CU_ASSERT(r.cpu_mem.i == mem && r.gpu_count.i == gpu && r.gpu_mem.i == gmem);
    CU_ASSERT(lbw_num_value(&r.total_cpu_count) == cpu && r.total_cpu_mem.i == mem &&
              r.total_gpu_count.i == gpu && r.total_gpu_mem.i == gmem);
    /* Our builder makes the same value tree. */
    uint8_t *enc;
    size_t el;
    CU_ASSERT_FATAL(lbw_resources_encode(&r, &enc, &el) == 0);
    struct lbw_pk_doc d1, d2;
    CU_ASSERT(lbw_pk_decode(&d1, b, n, NULL, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_pk_decode(&d2, enc, el, NULL, err, sizeof(err)) == 0);
    CU_ASSERT(eq(d1.root, d2.root));
    lbw_pk_doc_free(&d1);
    lbw_pk_doc_free(&d2);
    free(enc);
    free(b);
}

static void test_worker_resources(void)
{
    check_res("workerresources", 3035264702246419876ull, 8, 0, 16000000000LL, 1, 8000000000LL);
    check_res("workerresources_float", 3035264702246419876ull, 7.5, 1, 17179869184LL, 0, 0);
    check_res("capture_workerresources", 3035264702246419876ull, 4, 0, 8000000000LL, 0, 0);
}

static void test_taskspawn_and_envargs(void)
{
    size_t n;
    char err[200];
    struct lbw_pk_doc d;
    uint8_t *b = load("taskspawn_runtime_envargs", &n);
    CU_ASSERT_FATAL(lbw_pk_decode(&d, b, n, NULL, err, sizeof(err)) == 0);
    CU_ASSERT(lbw_pk_is_global(d.root->u.obj.func, "lifeblood_connection", "TaskSpawn"));
    struct lbw_pk *st = d.root->u.obj.state;
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(st, "_TaskSpawn__name"), "child_task_env"));
    CU_ASSERT(lbw_pk_dict_get(st, "_TaskSpawn__from_invocation_id")->u.i == 777);
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(st, "_TaskSpawn__output"), "spawned"));
    CU_ASSERT(lbw_pk_dict_get(st, "_create_as_spawned")->u.b == 1);
    struct lbw_pk *ea = lbw_pk_dict_get(st, "_TaskSpawn__env_args");
    CU_ASSERT(lbw_pk_is_global(ea->u.obj.func, "lifeblood_connection",
                               "EnvironmentResolverArguments"));
    struct lbw_pk *eargs = lbw_pk_dict_get(ea->u.obj.state, "_EnvironmentResolverArguments__args");
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(eargs, "package.blender"), "~=4.1"));
    lbw_pk_doc_free(&d);
    free(b);
    b = load("environmentresolverarguments", &n);
    CU_ASSERT_FATAL(lbw_pk_decode(&d, b, n, NULL, err, sizeof(err)) == 0);
    st = d.root->u.obj.state;
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(st, "_EnvironmentResolverArguments__resolver_name"),
                            "TrivialEnvironmentResolver"));
    eargs = lbw_pk_dict_get(st, "_EnvironmentResolverArguments__args");
    CU_ASSERT(lbw_pk_str_eq(lbw_pk_dict_get(eargs, "A_VAR"), "a"));
    CU_ASSERT(lbw_pk_dict_get(eargs, "N")->u.i == 5);
    lbw_pk_doc_free(&d);
    free(b);
    b = load("newtask", &n);
    CU_ASSERT_FATAL(lbw_pk_decode(&d, b, n, NULL, err, sizeof(err)) == 0);
    st = d.root->u.obj.state;
    CU_ASSERT(lbw_pk_dict_get(st, "_TaskSpawn__default_priority")->u.f == 75.0);
    struct lbw_pk *pair = lbw_pk_dict_get(st, "_TaskSpawn__forced_node_task_id_pair");
    CU_ASSERT(pair->kind == LBW_PK_TUPLE && pair->u.seq.v[0]->u.i == 5 &&
              pair->u.seq.v[1]->kind == LBW_PK_NONE);
    lbw_pk_doc_free(&d);
    free(b);
}

static int dec(const char *bytes, size_t n, char *err, size_t errlen)
{
    struct lbw_pk_doc d;
    struct lbw_pk_limits lim = {.max_stack = 50, .max_memo = 100, .max_nodes = 1000};
    int rc = lbw_pk_decode(&d, (const uint8_t *)bytes, n, &lim, err, errlen);
    lbw_pk_doc_free(&d);
    return rc;
}

static void test_errors_and_limits(void)
{
    char err[300];
    CU_ASSERT(dec("\x80\x04P0\n.", 6, err, sizeof(err)) == -1); /* PERSID */
    CU_ASSERT(strstr(err, "unsupported opcode 0x50") && strstr(err, "offset 2"));
    CU_ASSERT(dec("\x80\x06N.", 4, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, "protocol 6") != NULL);
    CU_ASSERT(dec("N", 1, err, sizeof(err)) == -1 && strstr(err, "STOP"));
    CU_ASSERT(dec("NN.", 3, err, sizeof(err)) == -1);
    CU_ASSERT(dec("N.x", 3, err, sizeof(err)) == -1 && strstr(err, "garbage"));
    CU_ASSERT(dec("h\x05.", 3, err, sizeof(err)) == -1 && strstr(err, "memo key 5"));
    CU_ASSERT(dec("Nr\xff\xff\x00\x00.", 7, err, sizeof(err)) == -1 && strstr(err, "memo index"));
    CU_ASSERT(dec("a.", 2, err, sizeof(err)) == -1 && strstr(err, "underflow"));
    CU_ASSERT(dec("K\x01]\x94" "a.", 6, err, sizeof(err)) == -1); /* APPEND to an int */
    CU_ASSERT(dec("\x8c\x02\xff\xfe.", 5, err, sizeof(err)) == -1 && strstr(err, "UTF-8"));
    CU_ASSERT(dec("X\xff\xff\xff\x7f.", 6, err, sizeof(err)) == -1 && strstr(err, "truncated"));
    CU_ASSERT(dec("\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", 10, err, sizeof(err)) == -1);
    CU_ASSERT(dec("\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", 11, err, sizeof(err)) == -1);
    char deep[200];
    memset(deep, '(', sizeof(deep));
    CU_ASSERT(dec(deep, sizeof(deep), err, sizeof(err)) == -1 && strstr(err, "stack deeper"));
    char many[3000];
    for (size_t i = 0; i + 1 < sizeof(many); i += 2) {
        many[i] = ']';
        many[i + 1] = '0';
    }
    CU_ASSERT(dec(many, sizeof(many), err, sizeof(err)) == -1 && strstr(err, "values"));
    /* A lone surrogate in a str is data (surrogatepass), not an error. */
    CU_ASSERT(dec("\x8c\x03\xed\xa0\x80.", 6, err, sizeof(err)) == 0);
    /* Jobs naming other code are refused. */
    static const char evil[] = "\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.";
    struct lbw_inv inv;
    CU_ASSERT(lbw_inv_load(&inv, (const uint8_t *)evil, sizeof(evil) - 1, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, "refusing global os.system") != NULL);
    lbw_inv_free(&inv);
    /* A well-formed pickle of something else is not a job. */
    CU_ASSERT(lbw_inv_load(&inv, (const uint8_t *)"\x80\x04N.", 4, err, sizeof(err)) == -1);
    lbw_inv_free(&inv);
}

static void test_cycles_encode(void)
{
    /* l = []; l.append(l); t = (l,) ; l.append(t) -> sharing and a cycle
     * through a tuple. */
    struct lbw_pk_doc d;
    lbw_pk_doc_init(&d, NULL);
    struct lbw_pk *l = lbw_pk_new(&d, LBW_PK_LIST), *t = lbw_pk_new(&d, LBW_PK_TUPLE);
    lbw_pk_seq_push(&d, l, l);
    lbw_pk_seq_push(&d, t, l);
    lbw_pk_seq_push(&d, l, t);
    uint8_t *enc;
    size_t el;
    char err[200];
    CU_ASSERT_FATAL(lbw_pk_encode(&d, t, &enc, &el, err, sizeof(err)) == 0);
    struct lbw_pk_doc d2;
    CU_ASSERT_FATAL(lbw_pk_decode(&d2, enc, el, NULL, err, sizeof(err)) == 0);
    struct lbw_pk *t2 = d2.root;
    CU_ASSERT_FATAL(t2->kind == LBW_PK_TUPLE && t2->u.seq.n == 1);
    struct lbw_pk *l2 = t2->u.seq.v[0];
    CU_ASSERT(l2->kind == LBW_PK_LIST && l2->u.seq.n == 2 && l2->u.seq.v[0] == l2 &&
              l2->u.seq.v[1] == t2);
    free(enc);
    lbw_pk_doc_free(&d2);
    /* nesting beyond the walker limit is an error, not a crash */
    struct lbw_pk_limits lim = {.max_depth = 50};
    struct lbw_pk_doc d3;
    lbw_pk_doc_init(&d3, &lim);
    struct lbw_pk *outer = lbw_pk_new(&d3, LBW_PK_LIST), *cur = outer;
    for (int i = 0; i < 100; i++) {
        struct lbw_pk *n = lbw_pk_new(&d3, LBW_PK_LIST);
        lbw_pk_seq_push(&d3, cur, n);
        cur = n;
    }
    CU_ASSERT(lbw_pk_encode(&d3, outer, &enc, &el, err, sizeof(err)) == -1);
    CU_ASSERT(strstr(err, "deeper") != NULL);
    lbw_pk_doc_free(&d3);
    lbw_pk_doc_free(&d);
}

static const struct lbw_test tests[] = {
    {"every vector decodes and re-encodes", test_every_vector_roundtrips},
    {"minimal jobs (enum by name and by value)", test_minimal},
    {"finished, cancelled, signalled results", test_results},
    {"full job: every field", test_full},
    {"large job: data outside frames", test_large},
    {"scheduler job + result == upstream's done", test_capture_task_and_done},
    {"WorkerResources decode and build", test_worker_resources},
    {"TaskSpawn, EnvironmentResolverArguments, NewTask", test_taskspawn_and_envargs},
    {"errors carry offsets; limits hold", test_errors_and_limits},
    {"cycles through tuples; depth limit", test_cycles_encode},
    {NULL, NULL},
};

static int register_pickle_suites(void) { return lbw_add_suite("pickle", NULL, NULL, tests); }

LBW_TEST_SUITES(register_pickle_suites)
