/* fuzz_request.c — what the worker does with bytes from the network besides
 * framing: a scheduler broadcast datagram (parse, and every accepted one
 * rebuilt around its body must parse to the same address), and a request
 * body (the command envelope parse the worker runs on every frame). */
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "frame.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char addr[1024], addr2[1024], err[256];
    size_t bo, bl;
    if (lbw_discover_parse(data, size, addr, sizeof(addr), &bo, &bl, err, sizeof(err)) == 0) {
        if (bl <= 60000) {
            uint8_t out[65536];
            size_t n = lbw_discover_build(data + bo, bl, out, sizeof(out));
            size_t bo2, bl2;
            if (!n || lbw_discover_parse(out, n, addr2, sizeof(addr2), &bo2, &bl2, err,
                                         sizeof(err)) != 0 || strcmp(addr, addr2))
                abort();
        }
    }
    struct lbw_frame f = {0};
    f.src = "127.0.0.1:1386";
    f.src_len = strlen(f.src);
    f.body = (uint8_t *)data;
    f.body_len = size;
    f.has_session = 1;
    struct lbw_request q;
    lbw_request_parse(&q, &f, err, sizeof(err));
    lbw_request_free(&q);
    return 0;
}
