/* ledger_cfg.h — joining the host ledger as the configuration says
 * ([mesh] enabled, namespace, allow_group), for every process of the host
 * that takes part: the worker (which claims) and the pool (a member that
 * holds no claims and watches what is left). */
#ifndef LBW_LEDGER_CFG_H
#define LBW_LEDGER_CFG_H

#include "ledger.h"
#include "resources.h"
#include "toml.h"

/* The ledger, or NULL with err ("mesh.enabled = false", or why joining
 * failed) for the caller to log with what it means there. Joining is
 * logged as `who`. on_change (may be NULL): the host's claims changed. */
struct lbw_ledger *lbw_ledger_join(lbw_reactor *r, const struct lbw_toml *cfg,
                                   const struct lbw_host *host,
                                   const struct lbw_advertised *adv, const char *who,
                                   void (*on_change)(void *ctx), void *ctx, char *err,
                                   size_t errlen);

#endif
