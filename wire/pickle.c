/* pickle.c — see pickle.h. Opcode names are the pickle format's own
 * (CPython's pickletools). */
#include "pickle.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "bytes.h"
#include "utf8.h"

/* ---- arena ---------------------------------------------------------------- */

struct lbw_pk_chunk {
    struct lbw_pk_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
};

static void *arena_alloc(struct lbw_pk_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct lbw_pk_chunk *c = d->chunks;
    if (!c || c->used + n > c->cap) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

static const struct lbw_pk_limits default_limits = {
    .max_input = 512u << 20,
    .max_stack = 100000,
    .max_memo = 1000000,
    .max_nodes = 10000000,
    .max_depth = 1000,
};

void lbw_pk_doc_init(struct lbw_pk_doc *doc, const struct lbw_pk_limits *lim)
{
    memset(doc, 0, sizeof(*doc));
    doc->lim = lim ? *lim : default_limits;
    if (!doc->lim.max_input)
        doc->lim.max_input = default_limits.max_input;
    if (!doc->lim.max_stack)
        doc->lim.max_stack = default_limits.max_stack;
    if (!doc->lim.max_memo)
        doc->lim.max_memo = default_limits.max_memo;
    if (!doc->lim.max_nodes)
        doc->lim.max_nodes = default_limits.max_nodes;
    if (!doc->lim.max_depth)
        doc->lim.max_depth = default_limits.max_depth;
}

void lbw_pk_doc_free(struct lbw_pk_doc *doc)
{
    struct lbw_pk_chunk *c = doc->chunks;
    while (c) {
        struct lbw_pk_chunk *n = c->next;
        free(c);
        c = n;
    }
    doc->chunks = NULL;
    doc->root = NULL;
}

struct lbw_pk *lbw_pk_new(struct lbw_pk_doc *doc, enum lbw_pk_kind kind)
{
    if (doc->nodes >= doc->lim.max_nodes)
        return NULL;
    struct lbw_pk *v = arena_alloc(doc, sizeof(*v));
    if (!v)
        return NULL;
    memset(v, 0, sizeof(*v));
    v->kind = (uint8_t)kind;
    v->at = (uint32_t)(doc->at < UINT32_MAX ? doc->at : UINT32_MAX);
    doc->nodes++;
    return v;
}

struct lbw_pk *lbw_pk_new_int(struct lbw_pk_doc *doc, int64_t i)
{
    struct lbw_pk *v = lbw_pk_new(doc, LBW_PK_INT);
    if (v)
        v->u.i = i;
    return v;
}

struct lbw_pk *lbw_pk_new_float(struct lbw_pk_doc *doc, double f)
{
    struct lbw_pk *v = lbw_pk_new(doc, LBW_PK_FLOAT);
    if (v)
        v->u.f = f;
    return v;
}

static struct lbw_pk *new_blob(struct lbw_pk_doc *doc, enum lbw_pk_kind k, const void *p,
                               size_t n)
{
    struct lbw_pk *v = lbw_pk_new(doc, k);
    if (!v)
        return NULL;
    v->u.s.p = arena_alloc(doc, n + 1);
    if (!v->u.s.p)
        return NULL;
    if (n)
        memcpy(v->u.s.p, p, n);
    v->u.s.p[n] = 0;
    v->u.s.n = n;
    return v;
}

struct lbw_pk *lbw_pk_new_str(struct lbw_pk_doc *doc, const char *s, size_t n)
{
    return new_blob(doc, LBW_PK_STR, s, n);
}

int lbw_pk_seq_push(struct lbw_pk_doc *doc, struct lbw_pk *seq, struct lbw_pk *item)
{
    if (seq->u.seq.n == seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
        /* Arrays live in the arena too: the old one is simply abandoned. */
        struct lbw_pk **a = arena_alloc(doc, cap * sizeof(*a));
        if (!a)
            return -1;
        if (seq->u.seq.n)
            memcpy(a, seq->u.seq.v, seq->u.seq.n * sizeof(*a));
        seq->u.seq.v = a;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.v[seq->u.seq.n++] = item;
    return 0;
}

/* ---- lookups ---------------------------------------------------------------- */

int lbw_pk_str_eq(const struct lbw_pk *v, const char *s)
{
    return v && v->kind == LBW_PK_STR && v->u.s.n == strlen(s) && !memcmp(v->u.s.p, s, v->u.s.n);
}

int lbw_pk_is_global(const struct lbw_pk *v, const char *module, const char *name)
{
    return v && v->kind == LBW_PK_GLOBAL && !strcmp(v->u.g.module, module) &&
           !strcmp(v->u.g.name, name);
}

struct lbw_pk *lbw_pk_dict_get(const struct lbw_pk *d, const char *key)
{
    if (!d || d->kind != LBW_PK_DICT)
        return NULL;
    for (size_t i = d->u.seq.n; i >= 2; i -= 2)
        if (lbw_pk_str_eq(d->u.seq.v[i - 2], key))
            return d->u.seq.v[i - 1];
    return NULL;
}

int lbw_pk_dict_set(struct lbw_pk_doc *doc, struct lbw_pk *d, const char *key, struct lbw_pk *val)
{
    if (!d || d->kind != LBW_PK_DICT || !val)
        return -1;
    int found = 0;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        if (lbw_pk_str_eq(d->u.seq.v[i], key)) {
            d->u.seq.v[i + 1] = val;
            found = 1;
        }
    }
    if (found)
        return 0;
    struct lbw_pk *k = lbw_pk_new_str(doc, key, strlen(key));
    if (!k || lbw_pk_seq_push(doc, d, k) || lbw_pk_seq_push(doc, d, val))
        return -1;
    return 0;
}

/* ---- opcodes ------------------------------------------------------------------ */

/* The pickle format's own names (pickletools), shared by the decoder's
 * dispatch table and the encoder. */
enum pk_op {
    MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I',
    BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P',
    BINPERSID = 'Q', REDUCE = 'R', STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U',
    UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd',
    EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i', LONG_BINGET = 'j',
    LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q', LONG_BINPUT = 'r',
    SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
    /* protocol 2 */
    PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85,
    TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b,
    /* protocol 3 */
    BINBYTES = 'B', SHORT_BINBYTES = 'C',
    /* protocol 4 */
    SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f,
    ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94,
    FRAME = 0x95,
    /* protocol 5 */
    BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98,
};

/* ---- decoder ---------------------------------------------------------------- */

struct vm {
    struct lbw_pk_doc *doc;
    int proto;
    const uint8_t *p;
    size_t n, pos, op_at;
    uint8_t op;
    int stopped;
    struct lbw_pk **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    struct lbw_pk **memo;
    size_t memo_cap, memo_len; /* memo_len: next MEMOIZE index */
    uint64_t folded;           /* items and bytes copied by folded constructors */
    int fold_over;             /* ... past FOLD_BUDGET */
    char *err;
    size_t errlen;
};

static const char *op_name(uint8_t op);

static int fail(struct vm *m, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(m->err, m->errlen, "pickle: %s (%s, opcode 0x%02x at offset %zu)", msg,
             op_name(m->op), m->op, m->op_at);
    return -1;
}

static int need(struct vm *m, size_t k)
{
    if (m->n - m->pos < k)
        return fail(m, "truncated: %zu more bytes needed", k - (m->n - m->pos));
    return 0;
}

/* The next k bytes of argument (checked), little-endian. */
static int arg_le(struct vm *m, unsigned k, uint64_t *v)
{
    if (need(m, k))
        return -1;
    *v = lbw_le(m->p + m->pos, k);
    m->pos += k;
    return 0;
}

static size_t floor_(struct vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static int push(struct vm *m, struct lbw_pk *v)
{
    if (!v)
        return fail(m, m->doc->nodes >= m->doc->lim.max_nodes ? "more than %zu values"
                                                                 : "out of memory",
                    m->doc->lim.max_nodes);
    if (m->sp + m->nmarks >= m->doc->lim.max_stack)
        return fail(m, "stack deeper than %zu", m->doc->lim.max_stack);
    if (lbw_grow(&m->stack, &m->scap, m->sp + 1, sizeof(*m->stack)) < 0)
        return fail(m, "out of memory");
    m->stack[m->sp++] = v;
    return 0;
}

static struct lbw_pk *pop(struct vm *m)
{
    if (m->sp <= floor_(m)) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static struct lbw_pk *top(struct vm *m)
{
    if (m->sp <= floor_(m)) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pops to the last mark; returns the index of the first item above it. */
static int pop_mark(struct vm *m, size_t *first)
{
    if (!m->nmarks)
        return fail(m, "no MARK on the stack");
    *first = m->marks[--m->nmarks];
    return 0;
}

static int memo_put(struct vm *m, size_t idx, struct lbw_pk *v)
{
    if (!v)
        return -1;
    if (idx >= m->doc->lim.max_memo)
        return fail(m, "memo index %zu above the limit %zu", idx, m->doc->lim.max_memo);
    size_t old = m->memo_cap;
    if (lbw_grow(&m->memo, &m->memo_cap, idx + 1, sizeof(*m->memo)) < 0)
        return fail(m, "out of memory");
    if (m->memo_cap > old)
        memset(m->memo + old, 0, (m->memo_cap - old) * sizeof(*m->memo));
    m->memo[idx] = v;
    return 0;
}

static int memo_get(struct vm *m, size_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, "memo key %zu not defined", idx);
    return push(m, m->memo[idx]);
}

/* Reads a '\n'-terminated argument (text opcodes). */
static int line(struct vm *m, const char **s, size_t *len)
{
    const uint8_t *nl = memchr(m->p + m->pos, '\n', m->n - m->pos);
    if (!nl)
        return fail(m, "unterminated text argument");
    *s = (const char *)m->p + m->pos;
    *len = (size_t)(nl - (m->p + m->pos));
    m->pos += *len + 1;
    return 0;
}

static int parse_text_int(struct vm *m, const char *s, size_t n, int64_t *out)
{
    char buf[32];
    if (n && s[n - 1] == 'L')
        n--;
    if (n == 0 || n >= sizeof(buf))
        return fail(m, "text integer out of the supported 64-bit range");
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return fail(m, "bad text integer");
    *out = v;
    return 0;
}

/* A text integer argument (PUT, GET, LONG). */
static int text_int(struct vm *m, int64_t *v)
{
    const char *s;
    size_t sl;
    return line(m, &s, &sl) || parse_text_int(m, s, sl, v) ? -1 : 0;
}

/* Minimal little-endian two's complement bytes -> INT or BIGINT node. */
static struct lbw_pk *make_long(struct lbw_pk_doc *doc, const uint8_t *b, size_t n)
{
    while (n > 1 && ((b[n - 1] == 0 && !(b[n - 2] & 0x80)) ||
                     (b[n - 1] == 0xff && (b[n - 2] & 0x80))))
        n--;
    if (n == 0)
        return lbw_pk_new_int(doc, 0);
    if (n <= 8) {
        uint64_t u = lbw_le(b, (unsigned)n);
        if (n < 8 && (b[n - 1] & 0x80))
            u |= ~0ull << (8 * n);
        return lbw_pk_new_int(doc, (int64_t)u);
    }
    return new_blob(doc, LBW_PK_BIGINT, b, n);
}

static struct lbw_pk *make_seq(struct vm *m, enum lbw_pk_kind k, size_t first)
{
    struct lbw_pk *t = lbw_pk_new(m->doc, k);
    if (!t)
        return NULL;
    size_t cnt = m->sp - first;
    if (cnt) {
        t->u.seq.v = arena_alloc(m->doc, cnt * sizeof(*t->u.seq.v));
        if (!t->u.seq.v)
            return NULL;
        memcpy(t->u.seq.v, m->stack + first, cnt * sizeof(*t->u.seq.v));
        t->u.seq.n = t->u.seq.cap = cnt;
    }
    m->sp = first;
    return t;
}

/* Folding copies its argument's items or bytes. Without sharing each is
 * copied at most once, so the copies of a pickle from Python stay below
 * its size; a memoized list or str folded over and over again (a few
 * bytes each time) would copy quadratically. */
#define FOLD_BUDGET(m) (2 * (uint64_t)(m)->n + 65536)

static int fold_charge(struct vm *m, size_t units)
{
    m->folded += units;
    if (m->folded > FOLD_BUDGET(m))
        m->fold_over = 1;
    return m->fold_over ? -1 : 0;
}

/* Pure constructors folded into values (see pickle.h). */
static struct lbw_pk *fold_reduce(struct vm *m, struct lbw_pk *f, struct lbw_pk *a)
{
    if (a->kind != LBW_PK_TUPLE)
        return NULL;
    size_t n = a->u.seq.n;
    struct lbw_pk **v = a->u.seq.v;
    if (lbw_pk_is_global(f, "_codecs", "encode") && n == 2 && v[0]->kind == LBW_PK_STR &&
        lbw_pk_str_eq(v[1], "latin1")) {
        if (fold_charge(m, v[0]->u.s.n) < 0)
            return NULL;
        /* str of code points <= U+00FF back to bytes */
        uint8_t *tmp = malloc(v[0]->u.s.n + 1);
        size_t k = 0;
        if (!tmp)
            return NULL;
        for (size_t i = 0; i < v[0]->u.s.n;) {
            uint32_t cp;
            size_t l = lbw_utf8_decode(v[0]->u.s.p + i, v[0]->u.s.n - i, &cp, 1);
            if (!l || cp > 0xFF) {
                free(tmp);
                return NULL;
            }
            tmp[k++] = (uint8_t)cp;
            i += l;
        }
        struct lbw_pk *b = new_blob(m->doc, LBW_PK_BYTES, tmp, k);
        free(tmp);
        return b;
    }
    if (lbw_pk_is_global(f, "builtins", "bytearray")) {
        if (n == 0)
            return new_blob(m->doc, LBW_PK_BYTEARRAY, "", 0);
        if (n == 1 && v[0]->kind == LBW_PK_BYTES)
            return fold_charge(m, v[0]->u.s.n) < 0 ? NULL :
                   new_blob(m->doc, LBW_PK_BYTEARRAY, v[0]->u.s.p, v[0]->u.s.n);
    }
    int is_set = lbw_pk_is_global(f, "builtins", "set");
    if ((is_set || lbw_pk_is_global(f, "builtins", "frozenset")) &&
        (n == 0 || (n == 1 && v[0]->kind == LBW_PK_LIST))) {
        if (n == 1 && fold_charge(m, v[0]->u.seq.n) < 0)
            return NULL;
        struct lbw_pk *s = lbw_pk_new(m->doc, is_set ? LBW_PK_SET : LBW_PK_FROZENSET);
        if (s && n == 1)
            for (size_t i = 0; i < v[0]->u.seq.n; i++)
                if (lbw_pk_seq_push(m->doc, s, v[0]->u.seq.v[i]))
                    return NULL;
        return s;
    }
    return NULL;
}

/* Python 2 names in protocol 0-2 pickles, mapped as Python 3's unpickler
 * does with fix_imports (the subset of _compat_pickle that can occur). */
static void py2_names(const char **mod, size_t *ml, const char **name, size_t *nl)
{
    static const char *const names[][4] = {
        {"__builtin__", "xrange", "builtins", "range"},
        {"__builtin__", "reduce", "functools", "reduce"},
        {"__builtin__", "intern", "sys", "intern"},
        {"__builtin__", "unichr", "builtins", "chr"},
        {"__builtin__", "unicode", "builtins", "str"},
        {"__builtin__", "long", "builtins", "int"},
        {"__builtin__", "basestring", "builtins", "str"},
        {"__builtin__", "raw_input", "builtins", "input"},
        {"__builtin__", "izip", "builtins", "zip"},
    };
    static const char *const mods[][2] = {
        {"__builtin__", "builtins"}, {"copy_reg", "copyreg"}, {"exceptions", "builtins"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*ml == strlen(names[i][0]) && !memcmp(*mod, names[i][0], *ml) &&
            *nl == strlen(names[i][1]) && !memcmp(*name, names[i][1], *nl)) {
            *mod = names[i][2];
            *ml = strlen(*mod);
            *name = names[i][3];
            *nl = strlen(*name);
            return;
        }
    }
    for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
        if (*ml == strlen(mods[i][0]) && !memcmp(*mod, mods[i][0], *ml)) {
            *mod = mods[i][1];
            *ml = strlen(*mod);
            return;
        }
    }
}

/* ---- one helper per opcode (or family); each returns 0 or -1 ---------------- */

static int do_proto(struct vm *m)
{
    if (need(m, 1))
        return -1;
    if (m->p[m->pos] > 5)
        return fail(m, "unsupported pickle protocol %d", m->p[m->pos]);
    m->proto = m->p[m->pos++];
    return 0;
}

static int do_frame(struct vm *m) /* a hint; its contents follow inline */
{
    uint64_t len;
    if (arg_le(m, 8, &len))
        return -1;
    if (len > m->n - m->pos)
        return fail(m, "frame longer than the data");
    return 0;
}

static int do_stop(struct vm *m)
{
    if (m->sp != 1 || m->nmarks)
        return fail(m, "STOP with %zu values and %zu marks on the stack", m->sp, m->nmarks);
    m->doc->root = m->stack[0];
    m->stopped = 1;
    return 0;
}

static int do_mark(struct vm *m)
{
    if (m->sp + m->nmarks >= m->doc->lim.max_stack)
        return fail(m, "stack deeper than %zu", m->doc->lim.max_stack);
    if (lbw_grow(&m->marks, &m->mcap, m->nmarks + 1, sizeof(*m->marks)) < 0)
        return fail(m, "out of memory");
    m->marks[m->nmarks++] = m->sp;
    return 0;
}

static int do_pop(struct vm *m)
{
    if (m->nmarks && m->marks[m->nmarks - 1] == m->sp) {
        m->nmarks--; /* popping a mark, as CPython does */
        return 0;
    }
    return pop(m) ? 0 : -1;
}

static int do_pop_mark(struct vm *m)
{
    size_t first = 0;
    if (pop_mark(m, &first))
        return -1;
    m->sp = first;
    return 0;
}

static int do_dup(struct vm *m)
{
    struct lbw_pk *a = top(m);
    return a ? push(m, a) : -1;
}

static int do_none(struct vm *m) { return push(m, lbw_pk_new(m->doc, LBW_PK_NONE)); }

static int push_bool(struct vm *m, int b)
{
    struct lbw_pk *a = lbw_pk_new(m->doc, LBW_PK_BOOL);
    if (a)
        a->u.b = b;
    return push(m, a);
}

static int do_newtrue(struct vm *m) { return push_bool(m, 1); }
static int do_newfalse(struct vm *m) { return push_bool(m, 0); }

static int do_binint_n(struct vm *m, unsigned width, int is_signed)
{
    uint64_t u;
    if (arg_le(m, width, &u))
        return -1;
    int64_t v = is_signed ? (int32_t)(uint32_t)u : (int64_t)u;
    return push(m, lbw_pk_new_int(m->doc, v));
}

static int do_binint1(struct vm *m) { return do_binint_n(m, 1, 0); }
static int do_binint2(struct vm *m) { return do_binint_n(m, 2, 0); }
static int do_binint(struct vm *m) { return do_binint_n(m, 4, 1); }

static int do_long_n(struct vm *m, unsigned width)
{
    uint64_t len;
    if (arg_le(m, width, &len))
        return -1;
    if (width == 4 && (int32_t)len < 0)
        return fail(m, "negative LONG4 length");
    if (need(m, (size_t)len))
        return -1;
    if (push(m, make_long(m->doc, m->p + m->pos, (size_t)len)))
        return -1;
    m->pos += (size_t)len;
    return 0;
}

static int do_long1(struct vm *m) { return do_long_n(m, 1); }
static int do_long4(struct vm *m) { return do_long_n(m, 4); }

static int do_long(struct vm *m) /* text: LONG, and INT beyond its bool forms */
{
    int64_t iv = 0;
    return text_int(m, &iv) || push(m, lbw_pk_new_int(m->doc, iv)) ? -1 : 0;
}

static int do_int(struct vm *m)
{
    const char *s;
    size_t sl;
    if (line(m, &s, &sl))
        return -1;
    if (sl == 2 && (!memcmp(s, "00", 2) || !memcmp(s, "01", 2)))
        return push_bool(m, s[1] == '1');
    m->pos -= sl + 1; /* an ordinary integer: parse it as LONG does */
    return do_long(m);
}

static int do_float(struct vm *m) /* text */
{
    char buf[64];
    const char *s;
    size_t sl;
    if (line(m, &s, &sl))
        return -1;
    if (sl == 0 || sl >= sizeof(buf))
        return fail(m, "bad text float");
    memcpy(buf, s, sl);
    buf[sl] = 0;
    char *end;
    double f = strtod(buf, &end);
    if (*end)
        return fail(m, "bad text float");
    return push(m, lbw_pk_new_float(m->doc, f));
}

static int do_binfloat(struct vm *m) /* big-endian IEEE 754 double */
{
    if (need(m, 8))
        return -1;
    uint64_t u = lbw_be64(m->p + m->pos);
    double f;
    memcpy(&f, &u, 8);
    m->pos += 8;
    return push(m, lbw_pk_new_float(m->doc, f));
}

/* str/bytes/bytearray with a little-endian length of `width` bytes. */
static int do_blob(struct vm *m, unsigned width, enum lbw_pk_kind k)
{
    uint64_t len;
    if (arg_le(m, width, &len))
        return -1;
    if (len > m->n - m->pos)
        return fail(m, "truncated: %llu-byte argument, %zu bytes left", (unsigned long long)len,
                    m->n - m->pos);
    const uint8_t *s = m->p + m->pos;
    if (k == LBW_PK_STR && !lbw_utf8_valid_ex(s, (size_t)len, 1))
        return fail(m, "str is not valid UTF-8");
    m->pos += (size_t)len;
    return push(m, new_blob(m->doc, k, s, (size_t)len));
}

static int do_short_binunicode(struct vm *m) { return do_blob(m, 1, LBW_PK_STR); }
static int do_binunicode(struct vm *m) { return do_blob(m, 4, LBW_PK_STR); }
static int do_binunicode8(struct vm *m) { return do_blob(m, 8, LBW_PK_STR); }
static int do_short_binbytes(struct vm *m) { return do_blob(m, 1, LBW_PK_BYTES); }
static int do_binbytes(struct vm *m) { return do_blob(m, 4, LBW_PK_BYTES); }
static int do_binbytes8(struct vm *m) { return do_blob(m, 8, LBW_PK_BYTES); }
static int do_bytearray8(struct vm *m) { return do_blob(m, 8, LBW_PK_BYTEARRAY); }

static int do_empty(struct vm *m, enum lbw_pk_kind k) { return push(m, lbw_pk_new(m->doc, k)); }
static int do_empty_tuple(struct vm *m) { return do_empty(m, LBW_PK_TUPLE); }
static int do_empty_list(struct vm *m) { return do_empty(m, LBW_PK_LIST); }
static int do_empty_dict(struct vm *m) { return do_empty(m, LBW_PK_DICT); }
static int do_empty_set(struct vm *m) { return do_empty(m, LBW_PK_SET); }

static int do_tuple_n(struct vm *m) /* TUPLE1, TUPLE2, TUPLE3 */
{
    size_t k = (size_t)(m->op - TUPLE1 + 1);
    if (m->sp < floor_(m) + k)
        return fail(m, "stack underflow");
    return push(m, make_seq(m, LBW_PK_TUPLE, m->sp - k));
}

/* TUPLE, LIST, FROZENSET, DICT: everything above the mark. */
static int do_from_mark(struct vm *m, enum lbw_pk_kind k)
{
    size_t first = 0;
    if (pop_mark(m, &first))
        return -1;
    if (k == LBW_PK_DICT && ((m->sp - first) & 1))
        return fail(m, "odd number of items for DICT");
    return push(m, make_seq(m, k, first));
}

static int do_tuple(struct vm *m) { return do_from_mark(m, LBW_PK_TUPLE); }
static int do_list(struct vm *m) { return do_from_mark(m, LBW_PK_LIST); }
static int do_frozenset(struct vm *m) { return do_from_mark(m, LBW_PK_FROZENSET); }
static int do_dict(struct vm *m) { return do_from_mark(m, LBW_PK_DICT); }

static int do_append(struct vm *m)
{
    struct lbw_pk *a, *b;
    if (!(b = pop(m)) || !(a = top(m)))
        return -1;
    if (a->kind != LBW_PK_LIST)
        return fail(m, "APPEND to a non-list");
    return lbw_pk_seq_push(m->doc, a, b) ? fail(m, "out of memory") : 0;
}

static int do_setitem(struct vm *m)
{
    struct lbw_pk *a, *b, *c;
    if (!(c = pop(m)) || !(b = pop(m)) || !(a = top(m)))
        return -1;
    if (a->kind != LBW_PK_DICT)
        return fail(m, "SETITEM to a non-dict");
    if (lbw_pk_seq_push(m->doc, a, b) || lbw_pk_seq_push(m->doc, a, c))
        return fail(m, "out of memory");
    return 0;
}

/* APPENDS, SETITEMS, ADDITEMS: the items above the mark into the value
 * below it. */
static int do_extend(struct vm *m)
{
    enum lbw_pk_kind want = m->op == APPENDS ? LBW_PK_LIST
                            : m->op == SETITEMS ? LBW_PK_DICT : LBW_PK_SET;
    size_t first = 0;
    if (pop_mark(m, &first))
        return -1;
    if (first == 0 || (m->nmarks && m->marks[m->nmarks - 1] >= first))
        return fail(m, "no target below the MARK");
    struct lbw_pk *a = m->stack[first - 1];
    if (a->kind != want)
        return fail(m, "%s to the wrong kind of value", op_name(m->op));
    size_t cnt = m->sp - first;
    if (want == LBW_PK_DICT && (cnt & 1))
        return fail(m, "odd number of items for SETITEMS");
    for (size_t i = 0; i < cnt; i++)
        if (lbw_pk_seq_push(m->doc, a, m->stack[first + i]))
            return fail(m, "out of memory");
    m->sp = first;
    return 0;
}

static int do_memoize(struct vm *m)
{
    struct lbw_pk *a = top(m);
    if (!a || memo_put(m, m->memo_len, a))
        return -1;
    m->memo_len++;
    return 0;
}

static int do_binput_n(struct vm *m, unsigned width)
{
    uint64_t idx;
    struct lbw_pk *a;
    if (arg_le(m, width, &idx) || !(a = top(m)))
        return -1;
    return memo_put(m, (size_t)idx, a);
}

static int do_binput(struct vm *m) { return do_binput_n(m, 1); }
static int do_long_binput(struct vm *m) { return do_binput_n(m, 4); }

static int do_put(struct vm *m)
{
    int64_t iv = 0;
    struct lbw_pk *a;
    if (text_int(m, &iv) || iv < 0 || !(a = top(m)))
        return iv < 0 ? fail(m, "negative memo index") : -1;
    return memo_put(m, (size_t)iv, a);
}

static int do_binget_n(struct vm *m, unsigned width)
{
    uint64_t idx;
    return arg_le(m, width, &idx) || memo_get(m, (size_t)idx) ? -1 : 0;
}

static int do_binget(struct vm *m) { return do_binget_n(m, 1); }
static int do_long_binget(struct vm *m) { return do_binget_n(m, 4); }

static int do_get(struct vm *m)
{
    int64_t iv = 0;
    if (text_int(m, &iv))
        return -1;
    return iv < 0 ? fail(m, "negative memo index") : memo_get(m, (size_t)iv);
}

/* A global reference: names checked, Python 2 names mapped; what a
 * global may be used for is the consumer's business (invocation.c). */
static int push_global(struct vm *m, const char *mod, size_t ml, const char *name, size_t nl)
{
    if (ml > 1024 || nl > 1024 || memchr(mod, 0, ml) || memchr(name, 0, nl) ||
        !lbw_utf8_valid((const uint8_t *)mod, ml) || !lbw_utf8_valid((const uint8_t *)name, nl))
        return fail(m, "bad global name");
    if (m->proto < 3)
        py2_names(&mod, &ml, &name, &nl);
    struct lbw_pk *c = lbw_pk_new(m->doc, LBW_PK_GLOBAL);
    if (c) {
        c->u.g.module = arena_alloc(m->doc, ml + 1);
        c->u.g.name = arena_alloc(m->doc, nl + 1);
        if (!c->u.g.module || !c->u.g.name)
            c = NULL;
    }
    if (c) {
        memcpy(c->u.g.module, mod, ml);
        c->u.g.module[ml] = 0;
        memcpy(c->u.g.name, name, nl);
        c->u.g.name[nl] = 0;
    }
    return push(m, c);
}

static int do_global(struct vm *m) /* text: module\nname\n */
{
    const char *mod, *name;
    size_t ml, nl;
    if (line(m, &mod, &ml) || line(m, &name, &nl))
        return -1;
    return push_global(m, mod, ml, name, nl);
}

static int do_stack_global(struct vm *m)
{
    struct lbw_pk *a, *b;
    if (!(b = pop(m)) || !(a = pop(m)))
        return -1;
    if (a->kind != LBW_PK_STR || b->kind != LBW_PK_STR)
        return fail(m, "STACK_GLOBAL needs two str");
    return push_global(m, (const char *)a->u.s.p, a->u.s.n, (const char *)b->u.s.p, b->u.s.n);
}

static int push_object(struct vm *m, enum lbw_pk_how how, struct lbw_pk *f, struct lbw_pk *args,
                       struct lbw_pk *kw)
{
    struct lbw_pk *c = lbw_pk_new(m->doc, LBW_PK_OBJECT);
    if (c) {
        c->u.obj.how = (uint8_t)how;
        c->u.obj.func = f;
        c->u.obj.args = args;
        c->u.obj.kwargs = kw;
    }
    return push(m, c);
}

static int do_reduce(struct vm *m) /* REDUCE and NEWOBJ */
{
    struct lbw_pk *a, *b, *c;
    if (!(b = pop(m)) || !(a = pop(m)))
        return -1;
    if (b->kind != LBW_PK_TUPLE)
        return fail(m, "%s arguments are not a tuple", op_name(m->op));
    if (m->op == REDUCE && (c = fold_reduce(m, a, b)) != NULL)
        return push(m, c);
    if (m->fold_over)
        return fail(m, "constructors (set, frozenset, bytearray, _codecs.encode) copy more "
                       "than %llu items and bytes, twice the pickle's size: a shared value "
                       "folded over and over", (unsigned long long)FOLD_BUDGET(m));
    return push_object(m, m->op == REDUCE ? LBW_PK_REDUCE : LBW_PK_NEWOBJ, a, b, NULL);
}

static int do_newobj_ex(struct vm *m)
{
    struct lbw_pk *a, *b, *kw;
    if (!(kw = pop(m)) || !(b = pop(m)) || !(a = pop(m)))
        return -1;
    if (b->kind != LBW_PK_TUPLE || kw->kind != LBW_PK_DICT)
        return fail(m, "NEWOBJ_EX needs a tuple and a dict");
    return push_object(m, LBW_PK_NEWOBJ_EX, a, b, kw);
}

static int do_build(struct vm *m)
{
    struct lbw_pk *a, *b;
    if (!(b = pop(m)) || !(a = top(m)))
        return -1;
    if (a->kind != LBW_PK_OBJECT)
        return fail(m, "BUILD on a value that is not an object");
    if (a->u.obj.state)
        return fail(m, "repeated BUILD on one object is not supported");
    a->u.obj.state = b;
    return 0;
}

/* The opcode table: every opcode of protocols 0-5 by name; those without a
 * helper (persistent ids, extension registry, INST/OBJ, out-of-band
 * buffers, protocol-0 string forms) are refused. */
static const struct pk_opdef {
    const char *name;
    int (*run)(struct vm *m);
} optab[256] = {
    [MARK] = {"MARK", do_mark},
    [STOP] = {"STOP", do_stop},
    [POP] = {"POP", do_pop},
    [POP_MARK] = {"POP_MARK", do_pop_mark},
    [DUP] = {"DUP", do_dup},
    [FLOAT] = {"FLOAT", do_float},
    [INT] = {"INT", do_int},
    [BININT] = {"BININT", do_binint},
    [BININT1] = {"BININT1", do_binint1},
    [LONG] = {"LONG", do_long},
    [BININT2] = {"BININT2", do_binint2},
    [NONE] = {"NONE", do_none},
    [PERSID] = {"PERSID", NULL},
    [BINPERSID] = {"BINPERSID", NULL},
    [REDUCE] = {"REDUCE", do_reduce},
    [STRING] = {"STRING", NULL},
    [BINSTRING] = {"BINSTRING", NULL},
    [SHORT_BINSTRING] = {"SHORT_BINSTRING", NULL},
    [UNICODE] = {"UNICODE", NULL},
    [BINUNICODE] = {"BINUNICODE", do_binunicode},
    [APPEND] = {"APPEND", do_append},
    [BUILD] = {"BUILD", do_build},
    [GLOBAL] = {"GLOBAL", do_global},
    [DICT] = {"DICT", do_dict},
    [EMPTY_DICT] = {"EMPTY_DICT", do_empty_dict},
    [APPENDS] = {"APPENDS", do_extend},
    [GET] = {"GET", do_get},
    [BINGET] = {"BINGET", do_binget},
    [INST] = {"INST", NULL},
    [LONG_BINGET] = {"LONG_BINGET", do_long_binget},
    [LIST] = {"LIST", do_list},
    [EMPTY_LIST] = {"EMPTY_LIST", do_empty_list},
    [OBJ] = {"OBJ", NULL},
    [PUT] = {"PUT", do_put},
    [BINPUT] = {"BINPUT", do_binput},
    [LONG_BINPUT] = {"LONG_BINPUT", do_long_binput},
    [SETITEM] = {"SETITEM", do_setitem},
    [TUPLE] = {"TUPLE", do_tuple},
    [EMPTY_TUPLE] = {"EMPTY_TUPLE", do_empty_tuple},
    [SETITEMS] = {"SETITEMS", do_extend},
    [BINFLOAT] = {"BINFLOAT", do_binfloat},
    [PROTO] = {"PROTO", do_proto},
    [NEWOBJ] = {"NEWOBJ", do_reduce},
    [EXT1] = {"EXT1", NULL},
    [EXT2] = {"EXT2", NULL},
    [EXT4] = {"EXT4", NULL},
    [TUPLE1] = {"TUPLE1", do_tuple_n},
    [TUPLE2] = {"TUPLE2", do_tuple_n},
    [TUPLE3] = {"TUPLE3", do_tuple_n},
    [NEWTRUE] = {"NEWTRUE", do_newtrue},
    [NEWFALSE] = {"NEWFALSE", do_newfalse},
    [LONG1] = {"LONG1", do_long1},
    [LONG4] = {"LONG4", do_long4},
    [BINBYTES] = {"BINBYTES", do_binbytes},
    [SHORT_BINBYTES] = {"SHORT_BINBYTES", do_short_binbytes},
    [SHORT_BINUNICODE] = {"SHORT_BINUNICODE", do_short_binunicode},
    [BINUNICODE8] = {"BINUNICODE8", do_binunicode8},
    [BINBYTES8] = {"BINBYTES8", do_binbytes8},
    [EMPTY_SET] = {"EMPTY_SET", do_empty_set},
    [ADDITEMS] = {"ADDITEMS", do_extend},
    [FROZENSET] = {"FROZENSET", do_frozenset},
    [NEWOBJ_EX] = {"NEWOBJ_EX", do_newobj_ex},
    [STACK_GLOBAL] = {"STACK_GLOBAL", do_stack_global},
    [MEMOIZE] = {"MEMOIZE", do_memoize},
    [FRAME] = {"FRAME", do_frame},
    [BYTEARRAY8] = {"BYTEARRAY8", do_bytearray8},
    [NEXT_BUFFER] = {"NEXT_BUFFER", NULL},
    [READONLY_BUFFER] = {"READONLY_BUFFER", NULL},
};

static const char *op_name(uint8_t op) { return optab[op].name ? optab[op].name : "unknown"; }

static int run(struct vm *m)
{
    while (!m->stopped) {
        if (m->pos >= m->n)
            return fail(m, "no STOP opcode before the end of the data");
        m->op_at = m->pos;
        m->op = m->p[m->pos++];
        m->doc->at = m->op_at;
        if (!optab[m->op].run)
            return fail(m, "unsupported opcode 0x%02x", m->op);
        if (optab[m->op].run(m) < 0)
            return -1;
    }
    return 0;
}

int lbw_pk_decode(struct lbw_pk_doc *doc, const uint8_t *buf, size_t n,
                  const struct lbw_pk_limits *lim, char *err, size_t errlen)
{
    lbw_pk_doc_init(doc, lim);
    struct vm m = {.doc = doc, .p = buf, .n = n, .err = err, .errlen = errlen};
    if (n > doc->lim.max_input) {
        snprintf(err, errlen, "pickle: %zu bytes, more than the %zu-byte limit", n,
                 doc->lim.max_input);
        return -1;
    }
    int rc = run(&m);
    free(m.stack);
    free(m.marks);
    free(m.memo);
    doc->at = 0;
    if (rc == 0 && m.pos != n) {
        snprintf(err, errlen, "pickle: %zu bytes of garbage after STOP", n - m.pos);
        rc = -1;
    }
    if (rc)
        doc->root = NULL;
    return rc;
}

/* ---- encoder ---------------------------------------------------------------- */

struct enc {
    struct lbw_pk_doc *doc;
    struct lbw_buf out;
    uint32_t next_memo;
    struct lbw_pk **marked; /* nodes whose mark we set, to reset afterwards */
    size_t nmarked, cmarked;
    int oom;
    size_t depth;
    char *err;
    size_t errlen;
};

static void emit(struct enc *e, const void *p, size_t n)
{
    if (!e->oom && lbw_buf_append(&e->out, p, n) < 0)
        e->oom = 1;
}

static void emit1(struct enc *e, uint8_t c) { emit(e, &c, 1); }

static void emit_le(struct enc *e, uint64_t v, int w)
{
    uint8_t t[8];
    lbw_put_le(t, v, (unsigned)w);
    emit(e, t, (size_t)w);
}

static void memoize(struct enc *e, struct lbw_pk *v)
{
    if (lbw_grow(&e->marked, &e->cmarked, e->nmarked + 1, sizeof(*e->marked)) < 0) {
        e->oom = 1;
        return;
    }
    e->marked[e->nmarked++] = v;
    v->mark = ++e->next_memo; /* memo index + 1 */
    emit1(e, MEMOIZE);
}

static void emit_get(struct enc *e, uint32_t idx)
{
    if (idx < 256) {
        emit1(e, BINGET);
        emit1(e, (uint8_t)idx);
    } else {
        emit1(e, LONG_BINGET);
        emit_le(e, idx, 4);
    }
}

static void emit_blob(struct enc *e, uint8_t op1, uint8_t op4, uint8_t op8, const uint8_t *p,
                      size_t n)
{
    if (n < 256 && op1) {
        emit1(e, op1);
        emit1(e, (uint8_t)n);
    } else if (n <= 0xffffffffu) {
        emit1(e, op4);
        emit_le(e, n, 4);
    } else {
        emit1(e, op8);
        emit_le(e, n, 8);
    }
    emit(e, p, n);
}

static int enc(struct enc *e, struct lbw_pk *v);

static int enc_items(struct enc *e, struct lbw_pk *v, size_t step, uint8_t batch_op, uint8_t one_op)
{
    size_t n = v->u.seq.n;
    for (size_t i = 0; i < n;) {
        size_t k = n - i > 1000 * step ? 1000 * step : n - i;
        if (k == step && one_op) {
            for (size_t j = 0; j < k; j++)
                if (enc(e, v->u.seq.v[i + j]))
                    return -1;
            emit1(e, one_op);
        } else {
            emit1(e, MARK);
            for (size_t j = 0; j < k; j++)
                if (enc(e, v->u.seq.v[i + j]))
                    return -1;
            emit1(e, batch_op);
        }
        i += k;
    }
    return 0;
}

/* Tuples and frozensets are built from their items: if an item refers
 * back to the tuple (a cycle through a mutable), the tuple already exists
 * in the memo afterwards — drop what was pushed and fetch it, as CPython
 * does. */
static int enc_immutable_seq(struct enc *e, struct lbw_pk *v)
{
    size_t n = v->u.seq.n;
    int small = v->kind == LBW_PK_TUPLE && n <= 3;
    if (v->kind == LBW_PK_TUPLE && n == 0) {
        emit1(e, EMPTY_TUPLE);
        return 0;
    }
    if (!small)
        emit1(e, MARK);
    for (size_t i = 0; i < n; i++)
        if (enc(e, v->u.seq.v[i]))
            return -1;
    if (v->mark) {
        if (small)
            for (size_t i = 0; i < n; i++)
                emit1(e, POP);
        else
            emit1(e, POP_MARK);
        emit_get(e, v->mark - 1);
        return 0;
    }
    emit1(e, v->kind == LBW_PK_FROZENSET ? FROZENSET : small ? (uint8_t)(TUPLE1 + n - 1) : TUPLE);
    memoize(e, v);
    return 0;
}

/* The smallest of BININT1, BININT2, BININT, LONG1 that holds v, as
 * CPython chooses. */
static int enc_int(struct enc *e, int64_t i)
{
    if (i >= 0 && i < 256) {
        emit1(e, BININT1);
        emit1(e, (uint8_t)i);
    } else if (i >= 0 && i < 65536) {
        emit1(e, BININT2);
        emit_le(e, (uint64_t)i, 2);
    } else if (i >= INT32_MIN && i <= INT32_MAX) {
        emit1(e, BININT);
        emit_le(e, (uint64_t)i, 4);
    } else {
        uint8_t t[8];
        size_t n = 8;
        lbw_put_le(t, (uint64_t)i, 8);
        while (n > 1 && ((t[n - 1] == 0 && !(t[n - 2] & 0x80)) ||
                         (t[n - 1] == 0xff && (t[n - 2] & 0x80))))
            n--;
        emit1(e, LONG1);
        emit1(e, (uint8_t)n);
        emit(e, t, n);
    }
    return 0;
}

static int enc_bigint(struct enc *e, const struct lbw_pk *v)
{
    if (v->u.s.n < 256) {
        emit1(e, LONG1);
        emit1(e, (uint8_t)v->u.s.n);
    } else {
        emit1(e, LONG4);
        emit_le(e, v->u.s.n, 4);
    }
    emit(e, v->u.s.p, v->u.s.n);
    return 0;
}

static int enc_float(struct enc *e, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    uint8_t t[8];
    lbw_put_be64(t, u);
    emit1(e, BINFLOAT);
    emit(e, t, 8);
    return 0;
}

/* Protocol 4 has no BYTEARRAY8: builtins.bytearray(bytes). */
static int enc_bytearray(struct enc *e, struct lbw_pk *v)
{
    static const uint8_t g[] = {SHORT_BINUNICODE, 8, 'b', 'u', 'i', 'l', 't', 'i', 'n', 's',
                                SHORT_BINUNICODE, 9, 'b', 'y', 't', 'e', 'a', 'r', 'r', 'a', 'y',
                                STACK_GLOBAL};
    emit(e, g, sizeof(g));
    emit_blob(e, SHORT_BINBYTES, BINBYTES, BINBYTES8, v->u.s.p, v->u.s.n);
    emit1(e, TUPLE1);
    emit1(e, REDUCE);
    memoize(e, v);
    return 0;
}

/* An empty container, memoized (so its items may refer to it), then its
 * items in batches. */
static int enc_container(struct enc *e, struct lbw_pk *v, uint8_t empty_op, size_t step,
                         uint8_t batch_op, uint8_t one_op)
{
    emit1(e, empty_op);
    memoize(e, v);
    return enc_items(e, v, step, batch_op, one_op);
}

static int enc_global(struct enc *e, struct lbw_pk *v)
{
    size_t ml = strlen(v->u.g.module), nl = strlen(v->u.g.name);
    emit_blob(e, SHORT_BINUNICODE, BINUNICODE, BINUNICODE8, (uint8_t *)v->u.g.module, ml);
    emit1(e, MEMOIZE);
    e->next_memo++;
    emit_blob(e, SHORT_BINUNICODE, BINUNICODE, BINUNICODE8, (uint8_t *)v->u.g.name, nl);
    emit1(e, MEMOIZE);
    e->next_memo++;
    emit1(e, STACK_GLOBAL);
    memoize(e, v);
    return 0;
}

/* func, args [, kwargs], REDUCE/NEWOBJ/NEWOBJ_EX, then state and BUILD. */
static int enc_object(struct enc *e, struct lbw_pk *v)
{
    if (enc(e, v->u.obj.func) || enc(e, v->u.obj.args) ||
        (v->u.obj.how == LBW_PK_NEWOBJ_EX && enc(e, v->u.obj.kwargs)))
        return -1;
    if (v->mark) { /* a cycle through its own arguments */
        snprintf(e->err, e->errlen, "pickle: object refers to itself through its arguments");
        return -1;
    }
    emit1(e, v->u.obj.how == LBW_PK_REDUCE ? REDUCE
             : v->u.obj.how == LBW_PK_NEWOBJ ? NEWOBJ : NEWOBJ_EX);
    memoize(e, v);
    if (v->u.obj.state) {
        if (enc(e, v->u.obj.state))
            return -1;
        emit1(e, BUILD);
    }
    return 0;
}

static int enc_kind(struct enc *e, struct lbw_pk *v)
{
    switch (v->kind) {
    case LBW_PK_NONE: emit1(e, NONE); return 0;
    case LBW_PK_BOOL: emit1(e, v->u.b ? NEWTRUE : NEWFALSE); return 0;
    case LBW_PK_INT: return enc_int(e, v->u.i);
    case LBW_PK_BIGINT: return enc_bigint(e, v);
    case LBW_PK_FLOAT: return enc_float(e, v->u.f);
    case LBW_PK_STR:
        emit_blob(e, SHORT_BINUNICODE, BINUNICODE, BINUNICODE8, v->u.s.p, v->u.s.n);
        memoize(e, v);
        return 0;
    case LBW_PK_BYTES:
        emit_blob(e, SHORT_BINBYTES, BINBYTES, BINBYTES8, v->u.s.p, v->u.s.n);
        memoize(e, v);
        return 0;
    case LBW_PK_BYTEARRAY: return enc_bytearray(e, v);
    case LBW_PK_TUPLE:
    case LBW_PK_FROZENSET: return enc_immutable_seq(e, v);
    case LBW_PK_LIST: return enc_container(e, v, EMPTY_LIST, 1, APPENDS, APPEND);
    case LBW_PK_DICT: return enc_container(e, v, EMPTY_DICT, 2, SETITEMS, SETITEM);
    case LBW_PK_SET: return enc_container(e, v, EMPTY_SET, 1, ADDITEMS, 0);
    case LBW_PK_GLOBAL: return enc_global(e, v);
    case LBW_PK_OBJECT: return enc_object(e, v);
    default:
        snprintf(e->err, e->errlen, "pickle: corrupt value kind %d", v->kind);
        return -1;
    }
}

static int enc(struct enc *e, struct lbw_pk *v)
{
    if (e->oom)
        return -1;
    if (v->mark) {
        emit_get(e, v->mark - 1);
        return 0;
    }
    if (++e->depth > e->doc->lim.max_depth) {
        snprintf(e->err, e->errlen, "pickle: nesting deeper than %zu", e->doc->lim.max_depth);
        return -1;
    }
    int rc = enc_kind(e, v);
    e->depth--;
    return rc;
}

int lbw_pk_encode(struct lbw_pk_doc *doc, struct lbw_pk *v, uint8_t **out, size_t *len,
                  char *err, size_t errlen)
{
    struct enc e = {.doc = doc, .err = err, .errlen = errlen};
    emit1(&e, PROTO);
    emit1(&e, 4);
    int rc = v ? enc(&e, v) : -1;
    if (!v)
        snprintf(err, errlen, "pickle: nothing to encode");
    emit1(&e, STOP);
    for (size_t i = 0; i < e.nmarked; i++)
        e.marked[i]->mark = 0;
    free(e.marked);
    if (rc == 0 && e.oom) {
        snprintf(err, errlen, "pickle: out of memory");
        rc = -1;
    }
    if (rc) {
        lbw_buf_free(&e.out);
        return -1;
    }
    *len = e.out.len;
    *out = lbw_buf_steal(&e.out);
    return 0;
}

/* ---- integers as text ---------------------------------------------------------- */

/* Decimal text of a little-endian two's complement integer, refused
 * above LBW_PK_INT_MAX_DIGITS digits as Python refuses int -> str. Work is
 * bounded: a magnitude of more than 1788 significant bytes has more than
 * 4300 digits and is refused before any arithmetic; below that, division
 * by 10^9 on 32-bit limbs. */
int lbw_pk_bigint_text(const uint8_t *p, size_t n, char *out, size_t cap)
{
    if (cap)
        out[0] = 0;
    if (cap < LBW_PK_INT_TEXT_CAP)
        return -1;
    int neg = n && (p[n - 1] & 0x80);
    size_t m = n;
    while (m > 0 && p[m - 1] == (neg ? 0xff : 0))
        m--;
    if (m > 1788) /* magnitude >= 2^(8 * 1788): more than 4300 digits */
        return -1;
    /* magnitude as little-endian bytes: u, or 2^(8m) - u when negative */
    uint8_t mag[1792] = {0};
    size_t ml = m + 1;
    memcpy(mag, p, m);
    if (neg) {
        mag[m] = 0xff;
        unsigned carry = 1;
        for (size_t i = 0; i < ml; i++) {
            unsigned b = (uint8_t)~mag[i] + carry;
            mag[i] = (uint8_t)b;
            carry = b >> 8;
        }
    }
    uint32_t limb[448];
    size_t nl = (ml + 3) / 4;
    for (size_t i = 0; i < nl; i++)
        limb[i] = lbw_le32(mag + 4 * i);
    while (nl > 0 && limb[nl - 1] == 0)
        nl--;
    /* base-10^9 chunks, least significant first */
    uint32_t chunk[LBW_PK_INT_MAX_DIGITS / 9 + 2];
    size_t nc = 0;
    while (nl > 0) {
        if (nc == sizeof(chunk) / sizeof(chunk[0]))
            return -1;
        uint64_t rem = 0;
        for (size_t i = nl; i-- > 0;) {
            uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunk[nc++] = (uint32_t)rem;
        while (nl > 0 && limb[nl - 1] == 0)
            nl--;
    }
    char digits[LBW_PK_INT_TEXT_CAP + 16];
    int k = nc ? snprintf(digits, sizeof(digits), "%u", chunk[nc - 1]) : snprintf(digits, sizeof(digits), "0");
    for (size_t i = nc > 0 ? nc - 1 : 0; i-- > 0;)
        k += snprintf(digits + k, sizeof(digits) - (size_t)k, "%09u", chunk[i]);
    if (k > LBW_PK_INT_MAX_DIGITS)
        return -1;
    return snprintf(out, cap, "%s%s", neg ? "-" : "", digits);
}
