/* inspect.h — `lifeblood-worker inspect`: shows a pickle (raw, or inside a
 * framed message or a JSON command body) as readable JSON, for operators
 * debugging a job and for tests. Input is untrusted; nothing is executed. */
#ifndef LBW_INSPECT_H
#define LBW_INSPECT_H

#include <stddef.h>
#include <stdint.h>

/* Writes the JSON description of buf to *out (malloc'd, newline-ended).
 * Returns 0, or -1 with a message in err. */
int lbw_inspect(const uint8_t *buf, size_t n, char **out, size_t *outlen, char *err,
                size_t errlen);

#endif
