/* ledger_cfg.c — see ledger_cfg.h. */
#include "ledger_cfg.h"

#include <grp.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"

/* [mesh] enabled (default true), namespace (default
 * "lifeblood-worker/ledger"), allow_group (a group whose members' workers
 * may join besides our uid and root). */
struct lbw_ledger *lbw_ledger_join(lbw_reactor *r, const struct lbw_toml *cfg,
                                   const struct lbw_host *host,
                                   const struct lbw_advertised *adv, const char *who,
                                   void (*on_change)(void *ctx), void *ctx, char *err,
                                   size_t errlen)
{
    if (!lbw_cfg_bool(cfg, LBW_CFG_MESH_ENABLED)) {
        snprintf(err, errlen, "mesh.enabled = false");
        return NULL;
    }
    const char *ns = lbw_cfg_string(cfg, LBW_CFG_MESH_NAMESPACE);
    const char *ag = lbw_cfg_string(cfg, LBW_CFG_MESH_ALLOW_GROUP);
    gid_t gid = (gid_t)-1;
    if (ag && *ag) {
        struct group *g = getgrnam(ag);
        if (g)
            gid = g->gr_gid;
        else
            LBW_WARN(who, "mesh.allow_group: no group named \"%s\"; only our uid and root "
                          "are admitted to the host ledger", ag);
    }
    struct lbw_topo *t = malloc(sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    lbw_ledger_topo_from_host(host, "/", &adv->res, t);
    struct lbw_ledger_opts o = {
        .r = r,
        .hwid = adv->res.hwid,
        .ns = ns,
        .topo = t,
        .allow_gid = gid,
        .on_change = on_change,
        .ctx = ctx,
    };
    struct lbw_ledger *l = lbw_ledger_open(&o, err, errlen);
    free(t);
    if (l)
        LBW_INFO(who, "host ledger joined%s", lbw_ledger_is_arbiter(l) ? " (arbiter)" : "");
    return l;
}

