/* config.h — configuration files as upstream finds and merges them
 * (docs/PROTOCOL.md 9): the per-component directory ($LIFEBLOOD_CONFIG_LOCATION/C
 * or ~/lifeblood/C), config.toml then the config.d/ files (*.toml) in name order merged
 * key by key (later wins, a file that does not parse is skipped with a
 * warning), dotted command-line overrides on top; memory strings like
 * "128G"; and the default worker config written on first run. */
#ifndef LBW_CONFIG_H
#define LBW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "toml.h"

/* The directory of component `comp` ("worker", ...). Returns 0 or -1 (no
 * HOME and no LIFEBLOOD_CONFIG_LOCATION, or the path is too long). */
int lbw_config_dir(const char *comp, char *out, size_t cap);

/* Loads and merges the component's files. Always returns a table (empty if
 * there are no files) or NULL when out of memory; problems with single
 * files are logged as warnings and the file is skipped. */
struct lbw_toml *lbw_config_load(const char *comp);
/* Loads from an explicit directory (tests, tools). */
struct lbw_toml *lbw_config_load_dir(const char *dir);

/* Applies "dotted.key=value" (value in TOML syntax; a bare word is taken
 * as a string). Returns 0 or -1 with a message in err. */
int lbw_config_override(struct lbw_toml *cfg, const char *assignment, char *err, size_t errlen);

/* Writes the default worker config.toml into dir (creating dir) unless a
 * config.toml is already there. *created tells which. Returns 0 or -1
 * with a message. */
int lbw_config_write_default(const char *dir, int *created, char *err, size_t errlen);
/* The default worker config text. */
const char *lbw_config_default_worker_text(void);

/* Upstream's memory string ("16G", " 1.5 K ", "200B"): decimal units,
 * upper-case only. Returns 0 with the byte count, or -1 for "no value"
 * (no unit, lower-case unit, anything else). */
int lbw_mem_string(const char *s, uint64_t *out);

#endif
