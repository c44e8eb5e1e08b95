/* status_cmd.h — `lifeblood-worker status [--json] [--watch]`: the host's
 * mesh as its arbiter knows it (capacity, what is left, each member and
 * its claims), with no scheduler involved. */
#ifndef LBW_STATUS_CMD_H
#define LBW_STATUS_CMD_H

/* argv[0] is "status". Returns the exit status (status_cmd.c's usage). */
int lbw_cmd_status(int argc, char **argv);

#endif
