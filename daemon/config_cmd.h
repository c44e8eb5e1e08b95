/* config_cmd.h — `lifeblood-worker config`: check a configuration before
 * rolling it out, list the declared keys, print the default file. */
#ifndef LBW_CONFIG_CMD_H
#define LBW_CONFIG_CMD_H

/* argv[0] is "config". Returns the process exit status: 0, or 2 for a
 * configuration with errors or a usage error. */
int lbw_cmd_config(int argc, char **argv);

#endif
