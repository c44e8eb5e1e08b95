/* fuzz_pickle.c — the pickle VM on arbitrary bytes (small limits so the
 * limit paths are exercised); whatever decodes must re-encode, decode
 * again and re-encode to the same bytes; the upstream-shape check, the
 * job loader, integers as text and the inspect view must not crash
 * either. */
#include <stdlib.h>
#include <string.h>

#include "invocation.h"
#include "inspect.h"
#include "json.h"
#include "pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_pk_limits lim = {.max_stack = 5000, .max_memo = 5000, .max_nodes = 50000,
                                .max_depth = 200};
    struct lbw_pk_doc d;
    char err[300];
    if (lbw_pk_decode(&d, data, size, &lim, err, sizeof(err)) == 0) {
        uint8_t *e1;
        size_t l1;
        if (lbw_pk_encode(&d, d.root, &e1, &l1, err, sizeof(err)) == 0) {
            struct lbw_pk_doc d2;
            if (lbw_pk_decode(&d2, e1, l1, &lim, err, sizeof(err)) != 0)
                abort(); /* our own output must load */
            uint8_t *e2;
            size_t l2;
            if (lbw_pk_encode(&d2, d2.root, &e2, &l2, err, sizeof(err)) != 0 || l1 != l2 ||
                memcmp(e1, e2, l1) != 0)
                abort();
            free(e2);
            lbw_pk_doc_free(&d2);
            free(e1);
        }
        struct lbw_jw w;
        lbw_jw_init(&w);
        lbw_pk_to_json(&d, d.root, &w, err, sizeof(err));
        lbw_jw_free(&w);
        lbw_pk_check_upstream(&d, d.root, err, sizeof(err));
        if (d.root->kind == LBW_PK_BIGINT) {
            char txt[LBW_PK_INT_TEXT_CAP];
            lbw_pk_bigint_text(d.root->u.s.p, d.root->u.s.n, txt, sizeof(txt));
        }
    }
    lbw_pk_doc_free(&d);
    struct lbw_inv inv;
    if (lbw_inv_load(&inv, data, size, err, sizeof(err)) == 0) {
        const char **argv;
        size_t n;
        if (lbw_inv_args(&inv, &argv, &n) == 0)
            free(argv);
        struct lbw_env_action *a;
        if (lbw_inv_env_actions(&inv, &a, &n) == 0)
            free(a);
        struct lbw_requirements rq;
        if (lbw_inv_requirements(&inv, &rq) == 0)
            free(rq.groups);
        struct lbw_extra_file *ef;
        if (lbw_inv_extra_files(&inv, &ef, &n) == 0)
            free(ef);
        struct lbw_regex re;
        lbw_inv_progress_regex(&inv, 0, &re);
        lbw_inv_set_result(&inv, 1, -9, 1.5);
        uint8_t *out;
        if (lbw_inv_encode(&inv, &out, &n, err, sizeof(err)) == 0)
            free(out);
    }
    lbw_inv_free(&inv);
    return 0;
}
