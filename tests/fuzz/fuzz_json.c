/* fuzz_json.c — the JSON reader on arbitrary text: parse in work linear in
 * the size (accepted or not), walk every token through every accessor;
 * then the writer and streaming escaper on the same bytes, whose outputs
 * must agree. */
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbw_json j;
    char err[200];
    int rc = lbw_json_parse(&j, (const char *)data, size, err, sizeof(err));
    if (j.work > 4 * (uint64_t)size + 8)
        abort(); /* superlinear work */
    if (rc == 0) {
        for (int t = 0; t < j.ntok; t++) {
            char *s;
            uint8_t *b;
            size_t l;
            int64_t i;
            uint64_t u;
            double dd;
            int bv;
            if (lbw_json_str(&j, t, &s, &l) == 0)
                free(s);
            if (lbw_json_latin1(&j, t, &b, &l) == 0)
                free(b);
            lbw_json_i64(&j, t, &i);
            lbw_json_u64(&j, t, &u);
            lbw_json_double(&j, t, &dd);
            lbw_json_bool(&j, t, &bv);
            lbw_json_get(&j, t, "command");
            lbw_json_at(&j, t, 1);
            lbw_json_skip(&j, t);
        }
        lbw_json_free(&j);
    }
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_str(&w, (const char *)data, size);
    size_t wl;
    char *one = lbw_jw_take(&w, &wl);
    char *buf = malloc(LBW_JESC_OUT_MAX(size) + 8);
    struct lbw_jesc e = {0};
    size_t o = 0, step = size ? (size_t)data[0] % 7 + 1 : 1;
    for (size_t k = 0; k < size; k += step) {
        size_t n = size - k < step ? size - k : step;
        o += lbw_jesc_feed(&e, data + k, n, 0, buf + o);
    }
    o += lbw_jesc_feed(&e, NULL, 0, 1, buf + o);
    if (!one || o != wl - 2 || memcmp(buf, one + 1, o) != 0)
        abort();
    /* and what the writer made parses back */
    if (lbw_json_parse(&j, one, wl, err, sizeof(err)) != 0)
        abort();
    lbw_json_free(&j);
    free(buf);
    free(one);
    return 0;
}
