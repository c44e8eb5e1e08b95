/* test_text_sharing.c — pickle values shared many times over, written out
 * as text by the inspect view or as extra files: the output stays linear
 * in the pickle's size (a long str used as the key of many dicts, or twice
 * in one; one content named by many extra files). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "inspect.h"
#include "invocation.h"
#include "json.h"
#include "pickle.h"
#include "suites.h"

static char *view(struct lbw_pk_doc *d, struct lbw_pk *v, size_t *len)
{
    struct lbw_jw w;
    lbw_jw_init(&w);
    char err[200];
    int rc = lbw_pk_to_json(d, v, &w, err, sizeof(err));
    char *o = lbw_jw_take(&w, len);
    lbw_jw_free(&w);
    CU_ASSERT(rc == 0);
    return o;
}

/* [{K: 0}, {K: 1}, ...] with one 10,000-byte K: once in the pickle, so
 * once in the view (then a {"$ref": N} key in the $dict form). */
static void test_shared_dict_key(void)
{
    struct lbw_pk_doc d;
    lbw_pk_doc_init(&d, NULL);
    char *ks = malloc(10000);
    CU_ASSERT_FATAL(ks != NULL);
    memset(ks, 'k', 10000);
    struct lbw_pk *k = lbw_pk_new_str(&d, ks, 10000);
    free(ks);
    struct lbw_pk *l = lbw_pk_new(&d, LBW_PK_LIST);
    for (int i = 0; i < 1000; i++) {
        struct lbw_pk *dict = lbw_pk_new(&d, LBW_PK_DICT);
        CU_ASSERT_FATAL(dict && lbw_pk_seq_push(&d, dict, k) == 0 &&
                        lbw_pk_seq_push(&d, dict, lbw_pk_new_int(&d, i)) == 0 &&
                        lbw_pk_seq_push(&d, l, dict) == 0);
    }
    size_t n;
    char *o = view(&d, l, &n);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(n < 100000); /* 10 MB when the key is written out each time */
    CU_ASSERT(strstr(o, "{\"$dict\": [[{\"$ref\": 3}, 1]]}") != NULL); /* list 1, dict 2, key 3 */
    free(o);
    /* the same key 1,000 times in one dict */
    struct lbw_pk *dict = lbw_pk_new(&d, LBW_PK_DICT);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_FATAL(lbw_pk_seq_push(&d, dict, k) == 0 &&
                        lbw_pk_seq_push(&d, dict, lbw_pk_new_int(&d, i)) == 0);
    o = view(&d, dict, &n);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(n < 100000);
    free(o);
    /* short keys and a single long one stay a plain object */
    struct lbw_pk *one = lbw_pk_new(&d, LBW_PK_DICT);
    CU_ASSERT_FATAL(lbw_pk_seq_push(&d, one, k) == 0 &&
                    lbw_pk_seq_push(&d, one, lbw_pk_new_str(&d, "v", 1)) == 0 &&
                    lbw_pk_seq_push(&d, one, lbw_pk_new_str(&d, "a", 1)) == 0 &&
                    lbw_pk_seq_push(&d, one, lbw_pk_new_int(&d, 2)) == 0);
    o = view(&d, one, &n);
    CU_ASSERT(o && o[0] == '{' && o[1] == '"' && strstr(o, "\"a\": 2}") != NULL);
    free(o);
    lbw_pk_doc_free(&d);
}

/* a = [b, b], b = [c, c], ... 40 levels: each list once, then references */
static void test_doubling_lists(void)
{
    struct lbw_pk_doc d;
    lbw_pk_doc_init(&d, NULL);
    struct lbw_pk *v = lbw_pk_new_str(&d, "xy", 2);
    for (int i = 0; i < 40; i++) {
        struct lbw_pk *l = lbw_pk_new(&d, LBW_PK_LIST);
        CU_ASSERT_FATAL(l && lbw_pk_seq_push(&d, l, v) == 0 && lbw_pk_seq_push(&d, l, v) == 0);
        v = l;
    }
    size_t n;
    char *o = view(&d, v, &n);
    CU_ASSERT(o && n < 2000);
    free(o);
    lbw_pk_doc_free(&d);
}

/* one 1 MiB content named by many extra files: written again at most
 * LBW_INV_EF_SHARED_MAX bytes, so 100 names are refused, 10 are fine */
static void test_shared_extra_files(void)
{
    size_t n;
    uint8_t *b = fx_read("pickles/invocationjob_full.pickle", &n);
    CU_ASSERT_FATAL(b != NULL);
    struct lbw_inv inv;
    char err[200];
    CU_ASSERT_FATAL(lbw_inv_load(&inv, b, n, err, sizeof(err)) == 0);
    free(b);
    char *mib = calloc(1, 1 << 20);
    CU_ASSERT_FATAL(mib != NULL);
    struct lbw_pk *content = lbw_pk_new_str(&inv.doc, mib, 1 << 20);
    free(mib);
    for (int files = 10; files <= 100; files += 90) {
        struct lbw_pk *d = lbw_pk_new(&inv.doc, LBW_PK_DICT);
        for (int i = 0; i < files; i++) {
            char k[32];
            snprintf(k, sizeof(k), "f%d", i);
            CU_ASSERT_FATAL(lbw_pk_seq_push(&inv.doc, d, lbw_pk_new_str(&inv.doc, k, strlen(k))) == 0 &&
                            lbw_pk_seq_push(&inv.doc, d, content) == 0);
        }
        CU_ASSERT_FATAL(lbw_pk_dict_set(&inv.doc, inv.state, "_InvocationJob__extra_files", d) == 0);
        struct lbw_extra_file *ef = NULL;
        size_t nef = 0;
        int rc = lbw_inv_extra_files(&inv, &ef, &nef);
        CU_ASSERT(files == 10 ? rc == 0 && nef == 10 : rc == -EFBIG);
        CU_ASSERT(content->mark == 0); /* scratch marks are cleared */
        free(ef);
    }
    lbw_inv_free(&inv);
}

/* set(L) over and over on one memoized list of 10,000 items, 7 bytes of
 * pickle each time: refused once the copies pass twice the pickle's size
 * (quadratic memory and time otherwise); a few times is fine. */
static void test_fold_shared_list(void)
{
    for (int reps = 5; reps <= 500; reps += 495) {
        size_t cap = 20000 + 8 * (size_t)reps, n = 0;
        uint8_t *p = malloc(cap);
        CU_ASSERT_FATAL(p != NULL);
        static const char head[] = "\x80\x02" "cbuiltins\nset\n" "q\x00" "0" "]" "q\x01" "(";
        memcpy(p, head, sizeof(head) - 1);
        n = sizeof(head) - 1;
        memset(p + n, 'N', 10000);
        n += 10000;
        memcpy(p + n, "e0]", 3); /* APPENDS, POP, the result list */
        n += 3;
        for (int i = 0; i < reps; i++) {
            memcpy(p + n, "h\x00h\x01\x85Ra", 7); /* set(L), appended */
            n += 7;
        }
        p[n++] = '.';
        struct lbw_pk_doc d;
        char err[300];
        int rc = lbw_pk_decode(&d, p, n, NULL, err, sizeof(err));
        if (reps == 5) {
            CU_ASSERT(rc == 0 && d.root && d.root->u.seq.n == 5 &&
                      d.root->u.seq.v[4]->kind == LBW_PK_SET &&
                      d.root->u.seq.v[4]->u.seq.n == 10000);
        } else {
            CU_ASSERT(rc < 0);
            CU_ASSERT(strstr(err, "folded over and over") != NULL);
        }
        lbw_pk_doc_free(&d);
        free(p);
    }
}

static const struct lbw_test tests[] = {
    {"a long str shared as dict keys is shown once", test_shared_dict_key},
    {"lists that double per level are shown once each", test_doubling_lists},
    {"extra files sharing one content are bounded", test_shared_extra_files},
    {"set() folded over one shared list is bounded", test_fold_shared_list},
    {NULL, NULL},
};

static int register_text_sharing_suites(void)
{
    return lbw_add_suite("text sharing", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_text_sharing_suites)
