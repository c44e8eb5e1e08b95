/* toml.h — a TOML 1.0 reader for configuration files, covering what
 * Lifeblood configs use: tables and arrays of tables, dotted and quoted
 * keys, basic/literal and multi-line strings with every escape, integers
 * (sign, '_', 0x/0o/0b), floats (exponents, inf, nan), booleans, arrays,
 * inline tables, comments. Anything else (e.g. dates) is an error that
 * names the line and column. Also the merge upstream applies to config
 * files (tables merge key by key, other values replace). */
#ifndef LBW_TOML_H
#define LBW_TOML_H

#include <stddef.h>
#include <stdint.h>

enum lbw_toml_type {
    LBW_TOML_TABLE = 1,
    LBW_TOML_ARRAY,
    LBW_TOML_STRING,
    LBW_TOML_INT,
    LBW_TOML_FLOAT,
    LBW_TOML_BOOL,
};

struct lbw_toml {
    enum lbw_toml_type type;
    uint8_t flags; /* private: how a table was defined */
    uint32_t line; /* 1-based line where it was defined (0: not from a file) */
    union {
        struct {
            char **keys;
            struct lbw_toml **vals;
            size_t n, cap;
            uint32_t *hidx; /* private: hash index of keys (1 + index; 0 empty) */
            size_t hcap;    /* its slots, a power of two; 0: no index */
        } tab; /* TABLE, in definition order */
        struct {
            struct lbw_toml **v;
            size_t n, cap;
        } arr;
        struct {
            char *s; /* UTF-8, NUL-terminated (may contain NUL: use len) */
            size_t len;
        } str;
        int64_t i;
        double f;
        int b;
    } u;
};

/* "a boolean", "an integer", "a string", ... */
const char *lbw_toml_type_name(enum lbw_toml_type t);
/* A short description of a value for messages: `the string "false"`,
 * `the integer 5`, `a table`, `an array of 2 values`. */
void lbw_toml_describe(const struct lbw_toml *v, char *out, size_t cap);

/* Parses text[0..n). Returns the root table, or NULL with "line L, column
 * C: what" in err. Input larger than 16 MiB is refused. */
struct lbw_toml *lbw_toml_parse(const char *text, size_t n, char *err, size_t errlen);
void lbw_toml_free(struct lbw_toml *v);

/* Member `key` (one key, not dotted) of a table, or NULL. Tables of more
 * than a few keys keep a hash index, so lookups, duplicate checks and
 * merges stay linear in the input. */
struct lbw_toml *lbw_toml_member(const struct lbw_toml *t, const char *key);
/* Follows a dotted path of bare keys ("worker.logpath"), or NULL. */
struct lbw_toml *lbw_toml_get(const struct lbw_toml *root, const char *path);

/* Merges src into dst (both tables): tables merge recursively, anything
 * else replaces. src is consumed (freed). Returns 0 or -1 (no memory). */
int lbw_toml_merge(struct lbw_toml *dst, struct lbw_toml *src);
/* Sets a dotted path to a value (creating tables), replacing what was
 * there; v is consumed. Returns 0 or -1 (a non-table in the way, no memory). */
int lbw_toml_set(struct lbw_toml *root, const char *path, struct lbw_toml *v);
/* Parses a single TOML value (for command-line overrides). NULL on error. */
struct lbw_toml *lbw_toml_parse_value(const char *text, char *err, size_t errlen);

#endif
