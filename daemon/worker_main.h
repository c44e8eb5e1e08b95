/* worker_main.h — the `worker` sub-command: upstream's command line
 * (docs/PROTOCOL.md 12), the configuration, and the process-level loop around
 * worker instances (6.1): broadcast discovery or the configured address,
 * --no-loop, the retry after a refused connection, SIGINT/SIGTERM (a
 * second one forces the exit). */
#ifndef LBW_WORKER_MAIN_H
#define LBW_WORKER_MAIN_H

#include "reactor.h"

/* argv[0] is "worker". Returns the process exit status. */
struct lbw_toml;
struct lbw_contain_cfg;
/* [containment] and LBW_CGROUPS=off as containment's settings (also for
 * `probe`). */
void lbw_contain_cfg_read(const struct lbw_toml *cfg, struct lbw_contain_cfg *cc);

int lbw_cmd_worker(int argc, char **argv, const struct lbw_reactor_opts *ropts);

#endif
