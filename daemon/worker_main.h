/* worker_main.h — the `worker` sub-command: upstream's command line
 * (docs/PROTOCOL.md 12), the configuration, and the process-level loop around
 * worker instances (6.1): broadcast discovery or the configured address,
 * --no-loop, the retry after a refused connection, SIGINT/SIGTERM (a
 * second one forces the exit). */
#ifndef LBW_WORKER_MAIN_H
#define LBW_WORKER_MAIN_H

#include "reactor.h"

struct lbw_toml;
struct lbw_contain_cfg;
/* [containment] and LBW_CGROUPS=off as containment's settings (also for
 * `probe`). */
void lbw_contain_cfg_read(const struct lbw_toml *cfg, struct lbw_contain_cfg *cc);

struct lbw_payload_user;
/* -1 with why when a payload user other than one named "root" is
 * root-equivalent: uid 0, primary group 0 or group 0 among its
 * supplementary groups (the check the start makes). */
int lbw_payload_user_check(const struct lbw_payload_user *u, char *why, size_t cap);

/* argv[0] is "worker". Returns the process exit status. */
int lbw_cmd_worker(int argc, char **argv, const struct lbw_reactor_opts *ropts);

#endif
