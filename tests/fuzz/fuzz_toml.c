/* fuzz_toml.c — the TOML reader on arbitrary text; whatever parses is
 * validated against the worker's and the resolver's key tables (every
 * message naming a line that exists), read through the accessors, merged
 * into a copy of itself parsed again, and looked up. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "toml.h"

/* Every value's line lies within the text. */
static void check_lines(const struct lbw_toml *v, uint32_t lines)
{
    if (v->line > lines)
        abort();
    if (v->type == LBW_TOML_TABLE)
        for (size_t i = 0; i < v->u.tab.n; i++)
            check_lines(v->u.tab.vals[i], lines);
    else if (v->type == LBW_TOML_ARRAY)
        for (size_t i = 0; i < v->u.arr.n; i++)
            check_lines(v->u.arr.v[i], lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[300];
    struct lbw_toml *a = lbw_toml_parse((const char *)data, size, err, sizeof(err));
    if (!a)
        return 0;
    struct lbw_toml *b = lbw_toml_parse((const char *)data, size, err, sizeof(err));
    if (!b)
        abort(); /* parsing is deterministic */
    lbw_toml_get(a, "worker.listen_to_broadcast");
    lbw_toml_get(a, "resources.cpu_mem");
    uint32_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    check_lines(a, lines);
    struct lbw_cfg_diag d = {0};
    lbw_cfg_validate(a, "fuzz", lbw_cfg_worker_schema(), &d);
    lbw_cfg_validate(a, "fuzz", lbw_cfg_stdres_schema(), &d);
    if (d.n > (size_t)(d.errors + d.warnings))
        abort();
    lbw_cfg_diag_free(&d);
    uint64_t mem;
    for (int k = 0; k < LBW_CFG_NKEYS; k++) {
        lbw_cfg_bool(a, (enum lbw_cfg_key)k);
        lbw_cfg_number(a, (enum lbw_cfg_key)k);
        lbw_cfg_string(a, (enum lbw_cfg_key)k);
        lbw_cfg_memory(a, (enum lbw_cfg_key)k, &mem);
        for (size_t i = 0; i < lbw_cfg_list_len(a, (enum lbw_cfg_key)k); i++)
            if (!lbw_cfg_list_at(a, (enum lbw_cfg_key)k, i))
                abort();
    }
    if (lbw_toml_merge(a, b) != 0)
        abort();
    lbw_toml_free(a);
    return 0;
}
