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

/* Writes pickle value v as readable JSON: objects as {"$object":
 * "module.name", "args": [...], "state": ...} (REDUCE as "$call"), bytes as
 * {"$bytes": "<base64>"}, tuples and sets as {"$tuple": [...]}, {"$set":
 * [...]}, ints beyond 4,300 digits as {"$int_hex": "0x..."}, a value met
 * again as {"$ref": N} or, inside itself, {"$cycle": N}. Returns 0, or -1
 * with a message (nesting deeper than the document's max_depth). */
struct lbw_jw;
struct lbw_pk_doc;
struct lbw_pk;
int lbw_pk_to_json(struct lbw_pk_doc *doc, struct lbw_pk *v, struct lbw_jw *w, char *err,
                   size_t errlen);

#endif
