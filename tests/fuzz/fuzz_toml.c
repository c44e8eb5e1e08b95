/* fuzz_toml.c — the TOML reader on arbitrary text; whatever parses is
 * walked, merged into a copy of itself parsed again, and looked up. */
#include <stdlib.h>
#include <string.h>

#include "toml.h"

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
    if (lbw_toml_merge(a, b) != 0)
        abort();
    lbw_toml_free(a);
    return 0;
}
