/* pickle.h — pickles as data, never code (docs/PROTOCOL.md 3).
 *
 * The decoder is an inert virtual machine for pickle protocols 0–5: it
 * builds a value tree (None, bools, ints of any size, floats, str, bytes,
 * bytearray, tuples, lists, dicts, sets, frozensets, global references,
 * and object nodes for REDUCE / NEWOBJ / NEWOBJ_EX with their BUILD state).
 * It imports, calls and executes nothing. The memo keeps sharing and cycles
 * (a node referenced twice is the same node). Hard limits on input size,
 * stack and nesting, memo size and node count; a violation is an error with
 * its offset.
 *
 * Three pure constructors are folded into plain values while decoding, as
 * Python itself would produce them: _codecs.encode(str, 'latin1') (how
 * protocol 2 writes bytes), builtins.bytearray(...), builtins.set/frozenset
 * (list). Everything else stays an object node. What these folds copy is
 * bounded by twice the input's size (plus 64 Ki), so one memoized value
 * folded over and over is an error, not quadratic work.
 *
 * The encoder writes a tree back as a protocol-4 pickle (no framing) that
 * Python 3.8+ loads to an equal object graph, sharing and cycles included.
 * All nodes live in the document's arena and die with it. */
#ifndef LBW_PICKLE_H
#define LBW_PICKLE_H

#include <stddef.h>
#include <stdint.h>

enum lbw_pk_kind {
    LBW_PK_NONE = 1,
    LBW_PK_BOOL,
    LBW_PK_INT,       /* fits int64 */
    LBW_PK_BIGINT,    /* little-endian two's complement, minimal length */
    LBW_PK_FLOAT,
    LBW_PK_STR,       /* UTF-8 (lone surrogates kept in surrogatepass form) */
    LBW_PK_BYTES,
    LBW_PK_BYTEARRAY,
    LBW_PK_TUPLE,
    LBW_PK_LIST,
    LBW_PK_DICT,      /* items alternate key, value */
    LBW_PK_SET,
    LBW_PK_FROZENSET,
    LBW_PK_GLOBAL,    /* module, name */
    LBW_PK_OBJECT,    /* func(args) or cls.__new__(cls, *args), then state */
};

enum lbw_pk_how { LBW_PK_REDUCE = 1, LBW_PK_NEWOBJ, LBW_PK_NEWOBJ_EX };

struct lbw_pk {
    uint8_t kind;
    uint32_t mark;    /* scratch for walkers (encoder memo index, ...) */
    uint32_t at;      /* decoded: offset of the opcode that made it */
    union {
        int b;
        int64_t i;
        double f;
        struct {
            uint8_t *p;
            size_t n;
        } s;          /* STR, BYTES, BYTEARRAY, BIGINT */
        struct {
            struct lbw_pk **v;
            size_t n, cap;
        } seq;        /* TUPLE, LIST, SET, FROZENSET, DICT (2n entries) */
        struct {
            char *module, *name;
        } g;
        struct {
            uint8_t how;
            struct lbw_pk *func, *args, *kwargs, *state;
        } obj;
    } u;
};

struct lbw_pk_limits {
    size_t max_input;   /* bytes; default 512 MiB */
    size_t max_stack;   /* VM stack + marks; default 100000 */
    size_t max_memo;    /* memo index bound; default 1000000 */
    size_t max_nodes;   /* values created; default 10000000 */
    size_t max_depth;   /* nesting for walkers (encoder, printers); default 1000 */
};

struct lbw_pk_doc {
    struct lbw_pk *root;
    /* arena */
    struct lbw_pk_chunk *chunks;
    size_t nodes;
    size_t at;        /* offset stamped on nodes made now (decoder) */
    struct lbw_pk_limits lim;
};

/* Decodes buf[0..n). Returns 0, or -1 with a message (what and at which
 * offset) in err. On success doc->root is the value; free with
 * lbw_pk_doc_free (also after failure). lim may be NULL. */
int lbw_pk_decode(struct lbw_pk_doc *doc, const uint8_t *buf, size_t n,
                  const struct lbw_pk_limits *lim, char *err, size_t errlen);
void lbw_pk_doc_free(struct lbw_pk_doc *doc);
/* An empty document for building trees by hand (lbw_pk_new_* below). */
void lbw_pk_doc_init(struct lbw_pk_doc *doc, const struct lbw_pk_limits *lim);

/* Encodes v as a protocol-4 pickle into a malloc'd buffer. Returns 0, or -1
 * with a message (nesting too deep, out of memory). */
int lbw_pk_encode(struct lbw_pk_doc *doc, struct lbw_pk *v, uint8_t **out, size_t *len,
                  char *err, size_t errlen);

/* Building values (they belong to doc). NULL on allocation failure. */
struct lbw_pk *lbw_pk_new(struct lbw_pk_doc *doc, enum lbw_pk_kind kind);
struct lbw_pk *lbw_pk_new_int(struct lbw_pk_doc *doc, int64_t v);
struct lbw_pk *lbw_pk_new_float(struct lbw_pk_doc *doc, double v);
struct lbw_pk *lbw_pk_new_str(struct lbw_pk_doc *doc, const char *s, size_t n);
int lbw_pk_seq_push(struct lbw_pk_doc *doc, struct lbw_pk *seq, struct lbw_pk *item);

/* Lookups. For dicts with str keys: the value of the last item whose key
 * equals `key`, or NULL. */
struct lbw_pk *lbw_pk_dict_get(const struct lbw_pk *d, const char *key);
/* Replaces (or appends) the value for str key. Returns 0 or -1. */
int lbw_pk_dict_set(struct lbw_pk_doc *doc, struct lbw_pk *d, const char *key,
                    struct lbw_pk *val);
/* 1 if v is a GLOBAL module.name. */
int lbw_pk_is_global(const struct lbw_pk *v, const char *module, const char *name);
/* 1 if v is a str equal to s. */
int lbw_pk_str_eq(const struct lbw_pk *v, const char *s);

/* Python refuses int -> str above 4,300 digits (sys.int_info.
 * default_max_str_digits); so does every conversion here, which keeps it
 * bounded in time whatever the size of the integer. */
#define LBW_PK_INT_MAX_DIGITS 4300
#define LBW_PK_INT_TEXT_CAP (LBW_PK_INT_MAX_DIGITS + 2) /* sign, digits, NUL */

/* Decimal text of little-endian two's complement bytes (a BIGINT's) into
 * out (cap >= LBW_PK_INT_TEXT_CAP). Returns its length, or -1 when the
 * integer has more than LBW_PK_INT_MAX_DIGITS digits (out is ""). */
int lbw_pk_bigint_text(const uint8_t *p, size_t n, char *out, size_t cap);

#endif
