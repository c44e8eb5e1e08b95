/* resources.h — what worker.hello advertises: the probed host with the
 * config's [resources] overrides applied (numbers as given; memory as
 * bytes or upstream's memory strings), each value with where it came from.
 * total_* equal the values here; the peer mesh lowers the non-totals. */
#ifndef LBW_RESOURCES_H
#define LBW_RESOURCES_H

#include "invocation.h"
#include "probe.h"
#include "toml.h"

struct lbw_advertised {
    struct lbw_resources res;
    char cpu_src[64], mem_src[64], gpu_src[64], gmem_src[64];
};

/* cfg may be NULL. Problems with override values are logged and the
 * detected value is used. */
void lbw_advertise(const struct lbw_host *h, const struct lbw_toml *cfg,
                   struct lbw_advertised *out);

#endif
