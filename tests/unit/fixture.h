/* fixture.h — reading test fixtures (tests/fixtures, or $LBW_FIXTURES). */
#ifndef LBW_TEST_FIXTURE_H
#define LBW_TEST_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* Reads a fixture file; malloc'd, NUL-terminated; NULL if missing. */
uint8_t *fx_read(const char *rel, size_t *len);
/* Parses a JSON fixture into j (text kept in *text, free both). */
int fx_json(const char *rel, struct lbw_json *j, char **text);
/* Writes root+path (path starts with '/') with printf-style content,
 * creating the directories; a fixture tree for the probes. 0 or -1. */
int fx_vwrite(const char *root, const char *path, const char *fmt, va_list ap);

/* UUID text "8c3b5779-af8f-..." to 16 bytes. */
int fx_uuid(const char *s, uint8_t out[16]);

#endif
