/* pickle.c — see pickle.h. Opcode names follow CPython's pickletools. */
#include "pickle.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
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

/* ---- decoder ---------------------------------------------------------------- */

struct vm {
    struct lbw_pk_doc *doc;
    int proto;
    const uint8_t *p;
    size_t n, pos, op_at;
    struct lbw_pk **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    struct lbw_pk **memo;
    size_t memo_cap, memo_len; /* memo_len: next MEMOIZE index */
    char *err;
    size_t errlen;
};

static int fail(struct vm *m, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(m->err, m->errlen, "pickle: %s (opcode 0x%02x at offset %zu)", msg,
             m->op_at < m->n ? m->p[m->op_at] : 0, m->op_at);
    return -1;
}

static int need(struct vm *m, size_t k)
{
    if (m->n - m->pos < k)
        return fail(m, "truncated: %zu more bytes needed", k - (m->n - m->pos));
    return 0;
}

static uint64_t le(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int push(struct vm *m, struct lbw_pk *v)
{
    if (!v)
        return fail(m, m->doc->nodes >= m->doc->lim.max_nodes ? "more than %zu values"
                                                                 : "out of memory",
                    m->doc->lim.max_nodes);
    if (m->sp + m->nmarks >= m->doc->lim.max_stack)
        return fail(m, "stack deeper than %zu", m->doc->lim.max_stack);
    if (m->sp == m->scap) {
        size_t cap = m->scap ? m->scap * 2 : 64;
        struct lbw_pk **s = realloc(m->stack, cap * sizeof(*s));
        if (!s)
            return fail(m, "out of memory");
        m->stack = s;
        m->scap = cap;
    }
    m->stack[m->sp++] = v;
    return 0;
}

static struct lbw_pk *pop(struct vm *m)
{
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static struct lbw_pk *top(struct vm *m)
{
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) {
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
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        struct lbw_pk **a = realloc(m->memo, cap * sizeof(*a));
        if (!a)
            return fail(m, "out of memory");
        memset(a + m->memo_cap, 0, (cap - m->memo_cap) * sizeof(*a));
        m->memo = a;
        m->memo_cap = cap;
    }
    m->memo[idx] = v;
    return 0;
}

static int memo_get(struct vm *m, size_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, "memo key %zu not defined", idx);
    return push(m, m->memo[idx]);
}

static int op_str(struct vm *m, size_t len, enum lbw_pk_kind k)
{
    if (need(m, len))
        return -1;
    const uint8_t *s = m->p + m->pos;
    if (k == LBW_PK_STR && !lbw_utf8_valid_ex(s, len, 1))
        return fail(m, "str is not valid UTF-8");
    m->pos += len;
    return push(m, new_blob(m->doc, k, s, len));
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

/* Minimal little-endian two's complement bytes -> INT or BIGINT node. */
static struct lbw_pk *make_long(struct lbw_pk_doc *doc, const uint8_t *b, size_t n)
{
    while (n > 1 && ((b[n - 1] == 0 && !(b[n - 2] & 0x80)) ||
                     (b[n - 1] == 0xff && (b[n - 2] & 0x80))))
        n--;
    if (n == 0)
        return lbw_pk_new_int(doc, 0);
    if (n <= 8) {
        uint64_t u = le(b, (int)n);
        if (n < 8 && (b[n - 1] & 0x80))
            u |= ~0ull << (8 * n);
        return lbw_pk_new_int(doc, (int64_t)u);
    }
    return new_blob(doc, LBW_PK_BIGINT, b, n);
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

static int extend(struct vm *m, struct lbw_pk *target, size_t first, int pairs)
{
    size_t cnt = m->sp - first;
    if (pairs && (cnt & 1))
        return fail(m, "odd number of items for SETITEMS");
    for (size_t i = 0; i < cnt; i++)
        if (lbw_pk_seq_push(m->doc, target, m->stack[first + i]))
            return fail(m, "out of memory");
    m->sp = first;
    return 0;
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
        /* str of code points <= U+00FF back to bytes */
        uint8_t *tmp = malloc(v[0]->u.s.n + 1);
        size_t k = 0;
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
            return new_blob(m->doc, LBW_PK_BYTEARRAY, v[0]->u.s.p, v[0]->u.s.n);
    }
    int is_set = lbw_pk_is_global(f, "builtins", "set");
    if ((is_set || lbw_pk_is_global(f, "builtins", "frozenset")) &&
        (n == 0 || (n == 1 && v[0]->kind == LBW_PK_LIST))) {
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

static int run(struct vm *m)
{
    for (;;) {
        if (m->pos >= m->n)
            return fail(m, "no STOP opcode before the end of the data");
        m->op_at = m->pos;
        uint8_t op = m->p[m->pos++];
        size_t first = 0;
        struct lbw_pk *a, *b, *c;
        const char *s;
        size_t sl;
        int64_t iv;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(m, 1))
                return -1;
            if (m->p[m->pos] > 5)
                return fail(m, "unsupported pickle protocol %d", m->p[m->pos]);
            m->proto = m->p[m->pos];
            m->pos++;
            break;
        case 0x95: /* FRAME: a hint; its contents follow inline */
            if (need(m, 8))
                return -1;
            if (le(m->p + m->pos, 8) > m->n - m->pos - 8)
                return fail(m, "frame longer than the data");
            m->pos += 8;
            break;
        case '.': /* STOP */
            if (m->sp != 1 || m->nmarks)
                return fail(m, "STOP with %zu values and %zu marks on the stack", m->sp,
                            m->nmarks);
            m->doc->root = m->stack[0];
            return 0;
        case '(': /* MARK */
            if (m->sp + m->nmarks >= m->doc->lim.max_stack)
                return fail(m, "stack deeper than %zu", m->doc->lim.max_stack);
            if (m->nmarks == m->mcap) {
                size_t cap = m->mcap ? m->mcap * 2 : 32;
                size_t *mk = realloc(m->marks, cap * sizeof(*mk));
                if (!mk)
                    return fail(m, "out of memory");
                m->marks = mk;
                m->mcap = cap;
            }
            m->marks[m->nmarks++] = m->sp;
            break;
        case '0': /* POP */
            if (m->nmarks && m->marks[m->nmarks - 1] == m->sp) {
                m->nmarks--; /* popping a mark, as CPython does */
                break;
            }
            if (!pop(m))
                return -1;
            break;
        case '1': /* POP_MARK */
            if (pop_mark(m, &first))
                return -1;
            m->sp = first;
            break;
        case '2': /* DUP */
            if (!(a = top(m)) || push(m, a))
                return -1;
            break;
        case 'N':
            if (push(m, lbw_pk_new(m->doc, LBW_PK_NONE)))
                return -1;
            break;
        case 0x88:
        case 0x89:
            a = lbw_pk_new(m->doc, LBW_PK_BOOL);
            if (a)
                a->u.b = op == 0x88;
            if (push(m, a))
                return -1;
            break;
        case 'K':
            if (need(m, 1) || push(m, lbw_pk_new_int(m->doc, m->p[m->pos])))
                return -1;
            m->pos += 1;
            break;
        case 'M':
            if (need(m, 2) || push(m, lbw_pk_new_int(m->doc, (int64_t)le(m->p + m->pos, 2))))
                return -1;
            m->pos += 2;
            break;
        case 'J':
            if (need(m, 4) ||
                push(m, lbw_pk_new_int(m->doc, (int32_t)(uint32_t)le(m->p + m->pos, 4))))
                return -1;
            m->pos += 4;
            break;
        case 0x8a: /* LONG1 */
        case 0x8b: { /* LONG4 */
            int w = op == 0x8a ? 1 : 4;
            if (need(m, (size_t)w))
                return -1;
            uint64_t len = le(m->p + m->pos, w);
            if (op == 0x8b && (int32_t)len < 0)
                return fail(m, "negative LONG4 length");
            m->pos += (size_t)w;
            if (need(m, (size_t)len))
                return -1;
            if (push(m, make_long(m->doc, m->p + m->pos, (size_t)len)))
                return -1;
            m->pos += (size_t)len;
            break;
        }
        case 'I': /* INT (text) */
            if (line(m, &s, &sl))
                return -1;
            if (sl == 2 && (!memcmp(s, "00", 2) || !memcmp(s, "01", 2))) {
                a = lbw_pk_new(m->doc, LBW_PK_BOOL);
                if (a)
                    a->u.b = s[1] == '1';
                if (push(m, a))
                    return -1;
                break;
            }
            m->pos -= sl + 1; /* an ordinary integer: parse it as LONG does */
            /* fall through */
        case 'L': /* LONG (text) */
            if (line(m, &s, &sl) || parse_text_int(m, s, sl, &iv) ||
                push(m, lbw_pk_new_int(m->doc, iv)))
                return -1;
            break;
        case 'F': { /* FLOAT (text) */
            char buf[64];
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
            if (push(m, lbw_pk_new_float(m->doc, f)))
                return -1;
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            if (need(m, 8))
                return -1;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = (u << 8) | m->p[m->pos + (size_t)i];
            double f;
            memcpy(&f, &u, 8);
            m->pos += 8;
            if (push(m, lbw_pk_new_float(m->doc, f)))
                return -1;
            break;
        }
        case 0x8c: /* SHORT_BINUNICODE */
            if (need(m, 1))
                return -1;
            m->pos++;
            if (op_str(m, m->p[m->pos - 1], LBW_PK_STR))
                return -1;
            break;
        case 'X': /* BINUNICODE */
        case 'B': /* BINBYTES */
            if (need(m, 4))
                return -1;
            m->pos += 4;
            if (op_str(m, (size_t)le(m->p + m->pos - 4, 4), op == 'X' ? LBW_PK_STR : LBW_PK_BYTES))
                return -1;
            break;
        case 0x8d: /* BINUNICODE8 */
        case 0x8e: /* BINBYTES8 */
        case 0x96: { /* BYTEARRAY8 */
            if (need(m, 8))
                return -1;
            uint64_t len = le(m->p + m->pos, 8);
            m->pos += 8;
            if (len > m->n)
                return fail(m, "length %llu beyond the data", (unsigned long long)len);
            if (op_str(m, (size_t)len, op == 0x8d ? LBW_PK_STR : op == 0x8e ? LBW_PK_BYTES
                                                                            : LBW_PK_BYTEARRAY))
                return -1;
            break;
        }
        case 'C': /* SHORT_BINBYTES */
            if (need(m, 1))
                return -1;
            m->pos++;
            if (op_str(m, m->p[m->pos - 1], LBW_PK_BYTES))
                return -1;
            break;
        case ')':
            if (push(m, lbw_pk_new(m->doc, LBW_PK_TUPLE)))
                return -1;
            break;
        case 0x85:
        case 0x86:
        case 0x87: {
            size_t k = (size_t)(op - 0x84);
            size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
            if (m->sp < floor + k)
                return fail(m, "stack underflow");
            if (push(m, make_seq(m, LBW_PK_TUPLE, m->sp - k)))
                return -1;
            break;
        }
        case 't':
        case 'l':
        case 0x91: /* FROZENSET */
            if (pop_mark(m, &first) ||
                push(m, make_seq(m, op == 't' ? LBW_PK_TUPLE : op == 'l' ? LBW_PK_LIST
                                                                         : LBW_PK_FROZENSET,
                                 first)))
                return -1;
            break;
        case 'd':
            if (pop_mark(m, &first))
                return -1;
            if ((m->sp - first) & 1)
                return fail(m, "odd number of items for DICT");
            if (push(m, make_seq(m, LBW_PK_DICT, first)))
                return -1;
            break;
        case ']':
            if (push(m, lbw_pk_new(m->doc, LBW_PK_LIST)))
                return -1;
            break;
        case '}':
            if (push(m, lbw_pk_new(m->doc, LBW_PK_DICT)))
                return -1;
            break;
        case 0x8f:
            if (push(m, lbw_pk_new(m->doc, LBW_PK_SET)))
                return -1;
            break;
        case 'a': /* APPEND */
            if (!(b = pop(m)) || !(a = top(m)))
                return -1;
            if (a->kind != LBW_PK_LIST)
                return fail(m, "APPEND to a non-list");
            if (lbw_pk_seq_push(m->doc, a, b))
                return fail(m, "out of memory");
            break;
        case 'e': /* APPENDS */
        case 0x90: /* ADDITEMS */
        case 'u': /* SETITEMS */
            if (pop_mark(m, &first))
                return -1;
            if (first == 0 || (m->nmarks && m->marks[m->nmarks - 1] >= first))
                return fail(m, "no target below the MARK");
            a = m->stack[first - 1];
            if (a->kind != (op == 'e' ? LBW_PK_LIST : op == 'u' ? LBW_PK_DICT : LBW_PK_SET))
                return fail(m, "%s to the wrong kind of value",
                            op == 'e' ? "APPENDS" : op == 'u' ? "SETITEMS" : "ADDITEMS");
            if (extend(m, a, first, op == 'u'))
                return -1;
            break;
        case 's': /* SETITEM */
            if (!(c = pop(m)) || !(b = pop(m)) || !(a = top(m)))
                return -1;
            if (a->kind != LBW_PK_DICT)
                return fail(m, "SETITEM to a non-dict");
            if (lbw_pk_seq_push(m->doc, a, b) || lbw_pk_seq_push(m->doc, a, c))
                return fail(m, "out of memory");
            break;
        case 0x94: /* MEMOIZE */
            if (!(a = top(m)) || memo_put(m, m->memo_len, a))
                return -1;
            m->memo_len++;
            break;
        case 'q':
        case 'r': { /* BINPUT, LONG_BINPUT */
            int w = op == 'q' ? 1 : 4;
            if (need(m, (size_t)w) || !(a = top(m)))
                return -1;
            size_t idx = (size_t)le(m->p + m->pos, w);
            m->pos += (size_t)w;
            if (memo_put(m, idx, a))
                return -1;
            break;
        }
        case 'p': /* PUT (text) */
            if (line(m, &s, &sl) || parse_text_int(m, s, sl, &iv) || iv < 0 || !(a = top(m)) ||
                memo_put(m, (size_t)iv, a))
                return -1;
            break;
        case 'h':
        case 'j': { /* BINGET, LONG_BINGET */
            int w = op == 'h' ? 1 : 4;
            if (need(m, (size_t)w))
                return -1;
            size_t idx = (size_t)le(m->p + m->pos, w);
            m->pos += (size_t)w;
            if (memo_get(m, idx))
                return -1;
            break;
        }
        case 'g': /* GET (text) */
            if (line(m, &s, &sl) || parse_text_int(m, s, sl, &iv) || iv < 0 ||
                memo_get(m, (size_t)iv))
                return -1;
            break;
        case 'c': /* GLOBAL (text) */
        case 0x93: { /* STACK_GLOBAL */
            const char *mod, *name;
            size_t ml, nl;
            if (op == 'c') {
                if (line(m, &mod, &ml) || line(m, &name, &nl))
                    return -1;
            } else {
                if (!(b = pop(m)) || !(a = pop(m)))
                    return -1;
                if (a->kind != LBW_PK_STR || b->kind != LBW_PK_STR)
                    return fail(m, "STACK_GLOBAL needs two str");
                mod = (const char *)a->u.s.p;
                ml = a->u.s.n;
                name = (const char *)b->u.s.p;
                nl = b->u.s.n;
            }
            if (ml > 1024 || nl > 1024 || memchr(mod, 0, ml) || memchr(name, 0, nl) ||
                !lbw_utf8_valid((const uint8_t *)mod, ml) || !lbw_utf8_valid((const uint8_t *)name, nl))
                return fail(m, "bad global name");
            if (m->proto < 3)
                py2_names(&mod, &ml, &name, &nl);
            c = lbw_pk_new(m->doc, LBW_PK_GLOBAL);
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
            if (push(m, c))
                return -1;
            break;
        }
        case 'R': /* REDUCE */
        case 0x81: /* NEWOBJ */
            if (!(b = pop(m)) || !(a = pop(m)))
                return -1;
            if (b->kind != LBW_PK_TUPLE)
                return fail(m, "%s arguments are not a tuple", op == 'R' ? "REDUCE" : "NEWOBJ");
            if (op == 'R' && (c = fold_reduce(m, a, b)) != NULL) {
                if (push(m, c))
                    return -1;
                break;
            }
            c = lbw_pk_new(m->doc, LBW_PK_OBJECT);
            if (c) {
                c->u.obj.how = op == 'R' ? LBW_PK_REDUCE : LBW_PK_NEWOBJ;
                c->u.obj.func = a;
                c->u.obj.args = b;
            }
            if (push(m, c))
                return -1;
            break;
        case 0x92: { /* NEWOBJ_EX */
            struct lbw_pk *kw;
            if (!(kw = pop(m)) || !(b = pop(m)) || !(a = pop(m)))
                return -1;
            if (b->kind != LBW_PK_TUPLE || kw->kind != LBW_PK_DICT)
                return fail(m, "NEWOBJ_EX needs a tuple and a dict");
            c = lbw_pk_new(m->doc, LBW_PK_OBJECT);
            if (c) {
                c->u.obj.how = LBW_PK_NEWOBJ_EX;
                c->u.obj.func = a;
                c->u.obj.args = b;
                c->u.obj.kwargs = kw;
            }
            if (push(m, c))
                return -1;
            break;
        }
        case 'b': /* BUILD */
            if (!(b = pop(m)) || !(a = top(m)))
                return -1;
            if (a->kind != LBW_PK_OBJECT)
                return fail(m, "BUILD on a value that is not an object");
            if (a->u.obj.state)
                return fail(m, "repeated BUILD on one object is not supported");
            a->u.obj.state = b;
            break;
        default:
            return fail(m, "unsupported opcode 0x%02x", op);
        }
    }
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
    uint8_t *b;
    size_t len, cap;
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
    if (e->oom)
        return;
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 1024;
        while (cap < e->len + n)
            cap *= 2;
        uint8_t *nb = realloc(e->b, cap);
        if (!nb) {
            e->oom = 1;
            return;
        }
        e->b = nb;
        e->cap = cap;
    }
    memcpy(e->b + e->len, p, n);
    e->len += n;
}

static void emit1(struct enc *e, uint8_t c) { emit(e, &c, 1); }

static void emit_le(struct enc *e, uint64_t v, int w)
{
    uint8_t t[8];
    for (int i = 0; i < w; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    emit(e, t, (size_t)w);
}

static void memoize(struct enc *e, struct lbw_pk *v)
{
    if (e->nmarked == e->cmarked) {
        size_t cap = e->cmarked ? e->cmarked * 2 : 64;
        struct lbw_pk **a = realloc(e->marked, cap * sizeof(*a));
        if (!a) {
            e->oom = 1;
            return;
        }
        e->marked = a;
        e->cmarked = cap;
    }
    e->marked[e->nmarked++] = v;
    v->mark = ++e->next_memo; /* memo index + 1 */
    emit1(e, 0x94);
}

static void emit_get(struct enc *e, uint32_t idx)
{
    if (idx < 256) {
        emit1(e, 'h');
        emit1(e, (uint8_t)idx);
    } else {
        emit1(e, 'j');
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
            emit1(e, '(');
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
        emit1(e, ')');
        return 0;
    }
    if (!small)
        emit1(e, '(');
    for (size_t i = 0; i < n; i++)
        if (enc(e, v->u.seq.v[i]))
            return -1;
    if (v->mark) {
        if (small)
            for (size_t i = 0; i < n; i++)
                emit1(e, '0');
        else
            emit1(e, '1');
        emit_get(e, v->mark - 1);
        return 0;
    }
    emit1(e, v->kind == LBW_PK_FROZENSET ? 0x91 : small ? (uint8_t)(0x84 + n) : 't');
    memoize(e, v);
    return 0;
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
    int rc = 0;
    switch (v->kind) {
    case LBW_PK_NONE:
        emit1(e, 'N');
        break;
    case LBW_PK_BOOL:
        emit1(e, v->u.b ? 0x88 : 0x89);
        break;
    case LBW_PK_INT:
        if (v->u.i >= 0 && v->u.i < 256) {
            emit1(e, 'K');
            emit1(e, (uint8_t)v->u.i);
        } else if (v->u.i >= 0 && v->u.i < 65536) {
            emit1(e, 'M');
            emit_le(e, (uint64_t)v->u.i, 2);
        } else if (v->u.i >= INT32_MIN && v->u.i <= INT32_MAX) {
            emit1(e, 'J');
            emit_le(e, (uint64_t)v->u.i, 4);
        } else {
            uint8_t t[8];
            size_t n = 8;
            for (int i = 0; i < 8; i++)
                t[i] = (uint8_t)((uint64_t)v->u.i >> (8 * i));
            while (n > 1 && ((t[n - 1] == 0 && !(t[n - 2] & 0x80)) ||
                             (t[n - 1] == 0xff && (t[n - 2] & 0x80))))
                n--;
            emit1(e, 0x8a);
            emit1(e, (uint8_t)n);
            emit(e, t, n);
        }
        break;
    case LBW_PK_BIGINT:
        if (v->u.s.n < 256) {
            emit1(e, 0x8a);
            emit1(e, (uint8_t)v->u.s.n);
        } else {
            emit1(e, 0x8b);
            emit_le(e, v->u.s.n, 4);
        }
        emit(e, v->u.s.p, v->u.s.n);
        break;
    case LBW_PK_FLOAT: {
        uint64_t u;
        memcpy(&u, &v->u.f, 8);
        uint8_t t[8];
        for (int i = 0; i < 8; i++)
            t[i] = (uint8_t)(u >> (56 - 8 * i));
        emit1(e, 'G');
        emit(e, t, 8);
        break;
    }
    case LBW_PK_STR:
        emit_blob(e, 0x8c, 'X', 0x8d, v->u.s.p, v->u.s.n);
        memoize(e, v);
        break;
    case LBW_PK_BYTES:
        emit_blob(e, 'C', 'B', 0x8e, v->u.s.p, v->u.s.n);
        memoize(e, v);
        break;
    case LBW_PK_BYTEARRAY: {
        /* Protocol 4 has no BYTEARRAY8: builtins.bytearray(bytes). */
        static uint8_t g[] = {0x8c, 8, 'b', 'u', 'i', 'l', 't', 'i', 'n', 's',
                              0x8c, 9, 'b', 'y', 't', 'e', 'a', 'r', 'r', 'a', 'y', 0x93};
        emit(e, g, sizeof(g));
        emit_blob(e, 'C', 'B', 0x8e, v->u.s.p, v->u.s.n);
        emit1(e, 0x85);
        emit1(e, 'R');
        memoize(e, v);
        break;
    }
    case LBW_PK_TUPLE:
    case LBW_PK_FROZENSET:
        rc = enc_immutable_seq(e, v);
        break;
    case LBW_PK_LIST:
        emit1(e, ']');
        memoize(e, v);
        rc = enc_items(e, v, 1, 'e', 'a');
        break;
    case LBW_PK_DICT:
        emit1(e, '}');
        memoize(e, v);
        rc = enc_items(e, v, 2, 'u', 's');
        break;
    case LBW_PK_SET:
        emit1(e, 0x8f);
        memoize(e, v);
        rc = enc_items(e, v, 1, 0x90, 0);
        break;
    case LBW_PK_GLOBAL: {
        size_t ml = strlen(v->u.g.module), nl = strlen(v->u.g.name);
        emit_blob(e, 0x8c, 'X', 0x8d, (uint8_t *)v->u.g.module, ml);
        emit1(e, 0x94);
        e->next_memo++;
        emit_blob(e, 0x8c, 'X', 0x8d, (uint8_t *)v->u.g.name, nl);
        emit1(e, 0x94);
        e->next_memo++;
        emit1(e, 0x93);
        memoize(e, v);
        break;
    }
    case LBW_PK_OBJECT:
        if (enc(e, v->u.obj.func) || enc(e, v->u.obj.args) ||
            (v->u.obj.how == LBW_PK_NEWOBJ_EX && enc(e, v->u.obj.kwargs))) {
            rc = -1;
            break;
        }
        if (v->mark) { /* a cycle through its own arguments */
            snprintf(e->err, e->errlen, "pickle: object refers to itself through its arguments");
            rc = -1;
            break;
        }
        emit1(e, v->u.obj.how == LBW_PK_REDUCE ? 'R' : v->u.obj.how == LBW_PK_NEWOBJ ? 0x81 : 0x92);
        memoize(e, v);
        if (v->u.obj.state) {
            if (enc(e, v->u.obj.state)) {
                rc = -1;
                break;
            }
            emit1(e, 'b');
        }
        break;
    default:
        snprintf(e->err, e->errlen, "pickle: corrupt value kind %d", v->kind);
        rc = -1;
    }
    e->depth--;
    return rc;
}

int lbw_pk_encode(struct lbw_pk_doc *doc, struct lbw_pk *v, uint8_t **out, size_t *len,
                  char *err, size_t errlen)
{
    struct enc e = {.doc = doc, .err = err, .errlen = errlen};
    emit1(&e, 0x80);
    emit1(&e, 4);
    int rc = v ? enc(&e, v) : -1;
    if (!v)
        snprintf(err, errlen, "pickle: nothing to encode");
    emit1(&e, '.');
    for (size_t i = 0; i < e.nmarked; i++)
        e.marked[i]->mark = 0;
    free(e.marked);
    if (rc == 0 && e.oom) {
        snprintf(err, errlen, "pickle: out of memory");
        rc = -1;
    }
    if (rc) {
        free(e.b);
        return -1;
    }
    *out = e.b;
    *len = e.len;
    return 0;
}

/* ---- JSON view --------------------------------------------------------------- */

struct tj {
    struct lbw_pk_doc *doc;
    struct lbw_jw *w;
    struct lbw_pk **path;
    size_t depth;
    char *err;
    size_t errlen;
};

static void b64(struct lbw_jw *w, const uint8_t *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(4 * ((n + 2) / 3) + 1);
    size_t k = 0;
    if (!o) {
        w->err = 1;
        return;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        o[k++] = t[x >> 18];
        o[k++] = t[(x >> 12) & 63];
        o[k++] = i + 1 < n ? t[(x >> 6) & 63] : '=';
        o[k++] = i + 2 < n ? t[x & 63] : '=';
    }
    lbw_jw_str(w, o, k);
    free(o);
}

/* Decimal text of a little-endian two's complement integer. */
void lbw_pk_bigint_text(const uint8_t *p, size_t n, char *out, size_t cap)
{
    int neg = n && (p[n - 1] & 0x80);
    uint8_t *mag = malloc(n ? n : 1);
    if (!mag) {
        snprintf(out, cap, "0");
        return;
    }
    int carry = 1;
    for (size_t i = 0; i < n; i++) { /* magnitude = neg ? ~x + 1 : x */
        unsigned b = neg ? (uint8_t)~p[i] + (unsigned)carry : p[i];
        if (neg)
            carry = b > 0xff;
        mag[i] = (uint8_t)b;
    }
    char *d = malloc(n * 3 + 2);
    size_t nd = 0, len = n;
    while (len > 0) {
        unsigned rem = 0;
        for (size_t i = len; i-- > 0;) {
            unsigned cur = rem << 8 | mag[i];
            mag[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
        }
        d[nd++] = (char)('0' + rem);
        while (len > 0 && mag[len - 1] == 0)
            len--;
    }
    size_t k = 0;
    if (neg && k + 1 < cap)
        out[k++] = '-';
    if (nd == 0 && k + 1 < cap)
        out[k++] = '0';
    while (nd > 0 && k + 1 < cap)
        out[k++] = d[--nd];
    out[k] = 0;
    free(d);
    free(mag);
}

static int tj(struct tj *t, struct lbw_pk *v)
{
    struct lbw_jw *w = t->w;
    for (size_t i = 0; i < t->depth; i++) {
        if (t->path[i] == v) {
            lbw_jw_obj(w);
            lbw_jw_key(w, "$cycle");
            lbw_jw_u64(w, i);
            lbw_jw_obj_end(w);
            return 0;
        }
    }
    if (t->depth >= t->doc->lim.max_depth) {
        snprintf(t->err, t->errlen, "pickle: nesting deeper than %zu", t->doc->lim.max_depth);
        return -1;
    }
    t->path[t->depth++] = v;
    int rc = 0;
    switch (v->kind) {
    case LBW_PK_NONE: lbw_jw_null(w); break;
    case LBW_PK_BOOL: lbw_jw_bool(w, v->u.b); break;
    case LBW_PK_INT: lbw_jw_i64(w, v->u.i); break;
    case LBW_PK_BIGINT: {
        char *txt = malloc(v->u.s.n * 3 + 4);
        if (!txt)
            return -1;
        lbw_pk_bigint_text(v->u.s.p, v->u.s.n, txt, v->u.s.n * 3 + 4);
        lbw_jw_raw(w, txt, strlen(txt));
        free(txt);
        break;
    }
    case LBW_PK_FLOAT: lbw_jw_double(w, v->u.f); break;
    case LBW_PK_STR: lbw_jw_str(w, (const char *)v->u.s.p, v->u.s.n); break;
    case LBW_PK_BYTES:
    case LBW_PK_BYTEARRAY:
        lbw_jw_obj(w);
        lbw_jw_key(w, v->kind == LBW_PK_BYTES ? "$bytes" : "$bytearray");
        b64(w, v->u.s.p, v->u.s.n);
        lbw_jw_obj_end(w);
        break;
    case LBW_PK_TUPLE:
    case LBW_PK_LIST:
    case LBW_PK_SET:
    case LBW_PK_FROZENSET:
        if (v->kind != LBW_PK_LIST) {
            lbw_jw_obj(w);
            lbw_jw_key(w, v->kind == LBW_PK_TUPLE ? "$tuple" : v->kind == LBW_PK_SET ? "$set"
                                                                                   : "$frozenset");
        }
        lbw_jw_arr(w);
        for (size_t i = 0; i < v->u.seq.n && !rc; i++)
            rc = tj(t, v->u.seq.v[i]);
        lbw_jw_arr_end(w);
        if (v->kind != LBW_PK_LIST)
            lbw_jw_obj_end(w);
        break;
    case LBW_PK_DICT: {
        int strkeys = 1;
        for (size_t i = 0; i < v->u.seq.n; i += 2)
            strkeys &= v->u.seq.v[i]->kind == LBW_PK_STR;
        if (strkeys) {
            lbw_jw_obj(w);
            for (size_t i = 0; i + 1 < v->u.seq.n && !rc; i += 2) {
                struct lbw_pk *k = v->u.seq.v[i];
                char *ks = strndup((const char *)k->u.s.p, k->u.s.n);
                lbw_jw_key(w, ks ? ks : "");
                free(ks);
                rc = tj(t, v->u.seq.v[i + 1]);
            }
            lbw_jw_obj_end(w);
        } else { /* {"$dict": [[k, v], ...]} */
            lbw_jw_obj(w);
            lbw_jw_key(w, "$dict");
            lbw_jw_arr(w);
            for (size_t i = 0; i + 1 < v->u.seq.n && !rc; i += 2) {
                lbw_jw_arr(w);
                rc = tj(t, v->u.seq.v[i]);
                if (!rc)
                    rc = tj(t, v->u.seq.v[i + 1]);
                lbw_jw_arr_end(w);
            }
            lbw_jw_arr_end(w);
            lbw_jw_obj_end(w);
        }
        break;
    }
    case LBW_PK_GLOBAL: {
        char buf[2100];
        snprintf(buf, sizeof(buf), "%s.%s", v->u.g.module, v->u.g.name);
        lbw_jw_obj(w);
        lbw_jw_key(w, "$global");
        lbw_jw_cstr(w, buf);
        lbw_jw_obj_end(w);
        break;
    }
    case LBW_PK_OBJECT: {
        lbw_jw_obj(w);
        struct lbw_pk *f = v->u.obj.func;
        if (f->kind == LBW_PK_GLOBAL) {
            char buf[2100];
            snprintf(buf, sizeof(buf), "%s.%s", f->u.g.module, f->u.g.name);
            lbw_jw_key(w, v->u.obj.how == LBW_PK_REDUCE ? "$call" : "$object");
            lbw_jw_cstr(w, buf);
        } else {
            lbw_jw_key(w, v->u.obj.how == LBW_PK_REDUCE ? "$call" : "$object");
            rc = tj(t, f);
        }
        if (!rc && v->u.obj.args && (v->u.obj.args->u.seq.n || v->u.obj.how == LBW_PK_REDUCE)) {
            lbw_jw_key(w, "args");
            lbw_jw_arr(w);
            for (size_t i = 0; i < v->u.obj.args->u.seq.n && !rc; i++)
                rc = tj(t, v->u.obj.args->u.seq.v[i]);
            lbw_jw_arr_end(w);
        }
        if (!rc && v->u.obj.kwargs) {
            lbw_jw_key(w, "kwargs");
            rc = tj(t, v->u.obj.kwargs);
        }
        if (!rc && v->u.obj.state) {
            lbw_jw_key(w, "state");
            rc = tj(t, v->u.obj.state);
        }
        lbw_jw_obj_end(w);
        break;
    }
    }
    t->depth--;
    return rc;
}

int lbw_pk_to_json(struct lbw_pk_doc *doc, struct lbw_pk *v, struct lbw_jw *w, char *err,
                   size_t errlen)
{
    struct tj t = {.doc = doc, .w = w, .err = err, .errlen = errlen};
    t.path = malloc(doc->lim.max_depth * sizeof(*t.path));
    if (!t.path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = tj(&t, v);
    free(t.path);
    return rc;
}
