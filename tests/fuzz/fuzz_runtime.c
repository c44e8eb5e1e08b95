/* fuzz_runtime.c — bytes a payload sends the runtime API server: the
 * version negotiation, then a request parsed with a small body limit. A
 * complete request must stay inside the input, and what would be relayed
 * to the scheduler must be valid JSON (for tupdateattribs once the
 * attributes passed the same check the server makes). */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "runtime_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t used = 0;
    int v10;
    long need = lbw_rt_parse_hello(data, size, &used, &v10);
    if (need < 0 || need > 0)
        return 0;
    if (used > size)
        abort();
    struct lbw_rt_req q;
    char err[200];
    need = lbw_rt_parse_request(data + used, size - used, 4096, &q, err, sizeof(err));
    if (need > 0 && (size_t)need <= size - used)
        abort(); /* asked for bytes it already had */
    if (need != 0)
        return 0;
    if (q.consumed > size - used)
        abort();
    struct lbw_json j;
    if (q.cmd == LBW_RT_TUPDATEATTRIBS) {
        if (lbw_json_parse(&j, (const char *)q.data, q.data_len, err, sizeof(err)) < 0)
            return 0;
        int obj = lbw_json_type(&j, 0) == LBW_JSON_OBJECT;
        lbw_json_free(&j);
        if (!obj)
            return 0;
    }
    if (q.cmd == LBW_RT_RECVINVMESSAGE)
        return 0;
    size_t al;
    char *args = lbw_rt_relay_args(&q, &al);
    if (!args)
        return 0;
    if (lbw_json_parse(&j, args, al, err, sizeof(err)) < 0 ||
        lbw_json_type(&j, 0) != LBW_JSON_OBJECT)
        abort();
    lbw_json_free(&j);
    free(args);
    return 0;
}
