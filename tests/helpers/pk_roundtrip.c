/* pk_roundtrip.c — test helper: reads pickles from stdin as [u32 LE length]
 * [bytes] records, decodes each with the C codec and re-encodes it; writes
 * [u32 length][pickle], or [0xFFFFFFFF][u32 length][error text] when a
 * record fails. Ends at EOF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"

static int rd(void *p, size_t n) { return fread(p, 1, n, stdin) == n ? 0 : -1; }

static void wr_u32(uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, stdout);
}

int main(void)
{
    uint8_t lb[4];
    while (rd(lb, 4) == 0) {
        uint32_t n = (uint32_t)lb[0] | (uint32_t)lb[1] << 8 | (uint32_t)lb[2] << 16 |
                     (uint32_t)lb[3] << 24;
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf || rd(buf, n) < 0)
            return 2;
        struct lbw_pk_doc d;
        char err[300];
        uint8_t *out = NULL;
        size_t ol = 0;
        int rc = lbw_pk_decode(&d, buf, n, NULL, err, sizeof(err));
        if (rc == 0)
            rc = lbw_pk_encode(&d, d.root, &out, &ol, err, sizeof(err));
        if (rc == 0) {
            wr_u32((uint32_t)ol);
            fwrite(out, 1, ol, stdout);
        } else {
            wr_u32(0xFFFFFFFFu);
            wr_u32((uint32_t)strlen(err));
            fwrite(err, 1, strlen(err), stdout);
        }
        fflush(stdout);
        free(out);
        lbw_pk_doc_free(&d);
        free(buf);
    }
    return 0;
}
