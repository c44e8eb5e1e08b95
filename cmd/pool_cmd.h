/* pool_cmd.h — `lifeblood-worker pool simple` (and `pool --list`): the
 * command line, the worker configuration (the scheduler address or the
 * broadcast, [mesh]), the host ledger for the on-demand mode, signals and
 * the service manager, around the pool engine of pool/. */
#ifndef LBW_POOL_CMD_H
#define LBW_POOL_CMD_H

#include "reactor.h"

/* argv[0] is "pool". Returns the exit status. */
int lbw_cmd_pool(int argc, char **argv, const struct lbw_reactor_opts *ropts);

#endif
