/* probe_cmd.h — `lifeblood-worker probe`: runs the host probes, applies the
 * config overrides, prints a readable table (or --json) of what was
 * detected, from where, and what worker.hello would advertise. */
#ifndef LBW_PROBE_CMD_H
#define LBW_PROBE_CMD_H

int lbw_cmd_probe(int argc, char **argv);

#endif
