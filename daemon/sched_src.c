/* sched_src.c — see sched_src.h. */
#include "sched_src.h"

#include "address.h"
#include "config.h"
#include "log.h"

#include <string.h>

static void heard(void *ctx, const char *address)
{
    struct lbw_sched_src *s = ctx;
    s->disc = NULL; /* the listener ends with this call */
    s->found(s->ctx, address);
}

int lbw_sched_src_next(struct lbw_sched_src *s)
{
    if (s->broadcast) {
        LBW_INFO(s->who, "listening for scheduler broadcasts...");
        lbw_sdnotify_status(s->notify, "waiting for the scheduler's broadcast");
        char err[256];
        s->disc = lbw_discover_start(s->r, 0, heard, s, err, sizeof(err));
        if (!s->disc) {
            LBW_ERROR(s->who, "%s", err);
            return -1;
        }
        lbw_discover_set_allow(s->disc, s->allow);
        return 0;
    }
    const char *addr = s->address;
    char buf[LBW_ADDR_MAX + 8];
    if (!addr) {
        addr = lbw_cfg_scheduler_address(s->cfg, buf, sizeof(buf));
        if (!addr) {
            LBW_CRIT(s->who, "no scheduler address: %s%s%sset worker.scheduler_address in the "
                             "config, or let the %s listen for the scheduler's broadcast "
                             "(worker.listen_to_broadcast)",
                     s->cli_option ? "give " : "", s->cli_option ? s->cli_option : "",
                     s->cli_option ? ", " : "", s->who);
            return -1;
        }
        if (!lbw_chain_is_valid(addr, strlen(addr))) {
            LBW_CRIT(s->who, "worker.scheduler_address '%s' is not an address chain", addr);
            return -1;
        }
    }
    s->found(s->ctx, addr);
    return 0;
}

void lbw_sched_src_cancel(struct lbw_sched_src *s)
{
    if (s->disc)
        lbw_discover_cancel(s->disc);
    s->disc = NULL;
}
