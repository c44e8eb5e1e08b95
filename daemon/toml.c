/* toml.c — see toml.h. A recursive-descent reader over the whole text. */
#include "toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "buf.h"
#include "cleanup.h"

#include "hex.h"
#include "text.h"
#include "utf8.h"

#define TOML_MAX_INPUT (16u << 20)
#define TOML_MAX_DEPTH 64

enum {
    TF_EXPLICIT = 1,   /* defined by a [header] */
    TF_DOTTED = 2,     /* created by dotted keys in a key/value */
    TF_INLINE = 4,     /* an inline table or a static array: closed */
    TF_AOT = 8,        /* an array of tables ([[header]]) */
};

struct p {
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
    int failed;
    int depth;
    uint32_t cur_line; /* line of the key or header being read */
    size_t lpos;   /* line_at()'s cache: the line of byte lpos */
    uint32_t lline;
};

/* The 1-based line of byte `pos`. Callers ask in increasing positions (a
 * value's line is taken before its contents are read), so the count
 * continues from the previous answer: linear in the input. Only an error
 * goes back, once. */
static uint32_t line_at(struct p *p, size_t pos)
{
    if (pos < p->lpos || p->lline == 0) {
        p->lpos = 0;
        p->lline = 1;
    }
    for (; p->lpos < pos && p->lpos < p->n; p->lpos++)
        if (p->s[p->lpos] == '\n' && p->lline < UINT32_MAX)
            p->lline++;
    return p->lline;
}

static int perr(struct p *p, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    size_t line = 1, col = 1;
    for (size_t k = 0; k < p->i && k < p->n; k++) {
        if (p->s[k] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "line %zu, column %zu: %s", line, col, msg);
    p->failed = 1;
    return -1;
}

static int peek(struct p *p) { return p->i < p->n ? (unsigned char)p->s[p->i] : -1; }
static int at(struct p *p, size_t k) { return p->i + k < p->n ? (unsigned char)p->s[p->i + k] : -1; }

/* ---- values ----------------------------------------------------------------- */

static struct lbw_toml *mk(enum lbw_toml_type t)
{
    struct lbw_toml *v = calloc(1, sizeof(*v));
    if (v)
        v->type = t;
    return v;
}

void lbw_toml_free(struct lbw_toml *v)
{
    if (!v)
        return;
    if (v->type == LBW_TOML_TABLE) {
        for (size_t i = 0; i < v->u.tab.n; i++) {
            free(v->u.tab.keys[i]);
            lbw_toml_free(v->u.tab.vals[i]);
        }
        free(v->u.tab.keys);
        free(v->u.tab.vals);
        free(v->u.tab.hidx);
    } else if (v->type == LBW_TOML_ARRAY) {
        for (size_t i = 0; i < v->u.arr.n; i++)
            lbw_toml_free(v->u.arr.v[i]);
        free(v->u.arr.v);
    } else if (v->type == LBW_TOML_STRING) {
        free(v->u.str.s);
    }
    free(v);
}

#define TAB_HASH_MIN 16 /* keys from which a table keeps a hash index */

static size_t key_hash(const char *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 16777619u;
    }
    return h;
}

/* The index of `key` in table t, or -1. */
static ssize_t tab_find(const struct lbw_toml *t, const char *key)
{
    if (t->u.tab.hidx) {
        size_t mask = t->u.tab.hcap - 1;
        for (size_t s = key_hash(key) & mask;; s = (s + 1) & mask) {
            uint32_t e = t->u.tab.hidx[s];
            if (!e)
                return -1;
            if (!strcmp(t->u.tab.keys[e - 1], key))
                return (ssize_t)(e - 1);
        }
    }
    for (size_t i = 0; i < t->u.tab.n; i++)
        if (!strcmp(t->u.tab.keys[i], key))
            return (ssize_t)i;
    return -1;
}

static void hidx_put(struct lbw_toml *t, size_t i)
{
    size_t mask = t->u.tab.hcap - 1, s = key_hash(t->u.tab.keys[i]) & mask;
    while (t->u.tab.hidx[s])
        s = (s + 1) & mask;
    t->u.tab.hidx[s] = (uint32_t)(i + 1);
}

/* After the key at n - 1 was added: index it, growing the index to stay at
 * most half full. Without memory the index is dropped (lookups then scan:
 * slower, still right). */
static void hidx_added(struct lbw_toml *t)
{
    size_t n = t->u.tab.n;
    if (n < TAB_HASH_MIN || n >= UINT32_MAX / 4)
        return;
    if (t->u.tab.hidx && n * 2 <= t->u.tab.hcap) {
        hidx_put(t, n - 1);
        return;
    }
    size_t cap = 64;
    while (cap < n * 4)
        cap *= 2;
    free(t->u.tab.hidx);
    t->u.tab.hidx = calloc(cap, sizeof(uint32_t));
    t->u.tab.hcap = t->u.tab.hidx ? cap : 0;
    for (size_t i = 0; t->u.tab.hidx && i < n; i++)
        hidx_put(t, i);
}

struct lbw_toml *lbw_toml_member(const struct lbw_toml *t, const char *key)
{
    if (!t || t->type != LBW_TOML_TABLE)
        return NULL;
    ssize_t i = tab_find(t, key);
    return i < 0 ? NULL : t->u.tab.vals[i];
}

static int tab_add(struct lbw_toml *t, const char *key, size_t klen, struct lbw_toml *v)
{
    /* keys and vals share one capacity: grow both, record the smaller */
    size_t kcap = t->u.tab.cap, vcap = t->u.tab.cap;
    if (lbw_grow(&t->u.tab.keys, &kcap, t->u.tab.n + 1, sizeof(char *)) < 0 ||
        lbw_grow(&t->u.tab.vals, &vcap, t->u.tab.n + 1, sizeof(struct lbw_toml *)) < 0)
        return -1;
    t->u.tab.cap = kcap < vcap ? kcap : vcap;
    char *kc = malloc(klen + 1);
    if (!kc)
        return -1;
    memcpy(kc, key, klen);
    kc[klen] = 0;
    t->u.tab.keys[t->u.tab.n] = kc;
    t->u.tab.vals[t->u.tab.n++] = v;
    hidx_added(t);
    return 0;
}

static int arr_add(struct lbw_toml *a, struct lbw_toml *v)
{
    if (lbw_grow(&a->u.arr.v, &a->u.arr.cap, a->u.arr.n + 1, sizeof(struct lbw_toml *)) < 0)
        return -1;
    a->u.arr.v[a->u.arr.n++] = v;
    return 0;
}

/* ---- lexing helpers --------------------------------------------------------- */

static void skip_ws(struct p *p)
{
    while (peek(p) == ' ' || peek(p) == '\t')
        p->i++;
}

static int skip_comment(struct p *p)
{
    if (peek(p) != '#')
        return 0;
    while (p->i < p->n && p->s[p->i] != '\n' &&
           !(p->s[p->i] == '\r' && p->i + 1 < p->n && p->s[p->i + 1] == '\n')) {
        unsigned char c = (unsigned char)p->s[p->i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return perr(p, "control character in a comment");
        p->i++;
    }
    return 0;
}

/* Skips whitespace, comments and newlines (inside arrays). */
static int skip_ws_nl(struct p *p)
{
    for (;;) {
        skip_ws(p);
        if (skip_comment(p))
            return -1;
        if (peek(p) == '\n') {
            p->i++;
        } else if (peek(p) == '\r' && at(p, 1) == '\n') {
            p->i += 2;
        } else {
            return 0;
        }
    }
}

/* After a key/value or header: only a comment, then a newline or the end. */
static int end_of_line(struct p *p)
{
    skip_ws(p);
    if (skip_comment(p))
        return -1;
    if (p->i >= p->n)
        return 0;
    if (peek(p) == '\n') {
        p->i++;
        return 0;
    }
    if (peek(p) == '\r' && at(p, 1) == '\n') {
        p->i += 2;
        return 0;
    }
    return perr(p, "expected the end of the line");
}

/* Appends to a string value's buffer, keeping it NUL-terminated. */
static int bput(struct lbw_buf *b, const char *s, size_t n)
{
    return lbw_buf_append(b, s, n) < 0 || lbw_buf_terminate(b) < 0 ? -1 : 0;
}

/* Copies one UTF-8 character (validated) from the input. */
static int copy_char(struct p *p, struct lbw_buf *b)
{
    unsigned char c = (unsigned char)p->s[p->i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
        return perr(p, "control character 0x%02x in a string (escape it)", c);
    uint32_t cp;
    size_t l = c < 0x80 ? 1 : lbw_utf8_decode((const uint8_t *)p->s + p->i, p->n - p->i, &cp, 0);
    if (!l)
        return perr(p, "invalid UTF-8");
    if (bput(b, p->s + p->i, l))
        return perr(p, "out of memory");
    p->i += l;
    return 0;
}

static int escape(struct p *p, struct lbw_buf *b)
{
    p->i++; /* backslash */
    int c = peek(p);
    const char *r = NULL;
    switch (c) {
    case 'b': r = "\b"; break;
    case 't': r = "\t"; break;
    case 'n': r = "\n"; break;
    case 'f': r = "\f"; break;
    case 'r': r = "\r"; break;
    case '"': r = "\""; break;
    case '\\': r = "\\"; break;
    case 'u':
    case 'U': {
        int k = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (int j = 1; j <= k; j++) {
            int h = lbw_hexval(at(p, (size_t)j));
            if (h < 0)
                return perr(p, "\\%c needs %d hex digits", c, k);
            cp = cp << 4 | (uint32_t)h;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return perr(p, "\\%c%0*X is not a Unicode scalar value", c, k, cp);
        uint8_t enc[4];
        size_t l = lbw_utf8_encode(cp, enc);
        if (bput(b, (const char *)enc, l))
            return perr(p, "out of memory");
        p->i += (size_t)k + 1;
        return 0;
    }
    default:
        return perr(p, "unknown escape sequence");
    }
    p->i++;
    return bput(b, r, 1) ? perr(p, "out of memory") : 0;
}

/* Any of the four string forms; the opening quote is at p->i. */
static int string(struct p *p, struct lbw_buf *b, int allow_multi)
{
    char q = p->s[p->i];
    int multi = allow_multi && at(p, 1) == q && at(p, 2) == q;
    b->len = 0;
    if (bput(b, "", 0))
        return perr(p, "out of memory");
    if (!multi) {
        p->i++;
        for (;;) {
            int c = peek(p);
            if (c < 0 || c == '\n' || c == '\r')
                return perr(p, "unterminated string");
            if (c == q) {
                p->i++;
                return 0;
            }
            if (c == '\\' && q == '"') {
                if (escape(p, b))
                    return -1;
                continue;
            }
            if (copy_char(p, b))
                return -1;
        }
    }
    p->i += 3;
    /* A newline right after the opening delimiter is trimmed. */
    if (peek(p) == '\n')
        p->i++;
    else if (peek(p) == '\r' && at(p, 1) == '\n')
        p->i += 2;
    for (;;) {
        int c = peek(p);
        if (c < 0)
            return perr(p, "unterminated multi-line string");
        if (c == q && at(p, 1) == q && at(p, 2) == q) {
            /* up to two more quotes belong to the content */
            size_t extra = 0;
            while (extra < 2 && at(p, 3 + extra) == q)
                extra++;
            if (extra && bput(b, p->s + p->i, extra))
                return perr(p, "out of memory");
            p->i += 3 + extra;
            return 0;
        }
        if (c == '\\' && q == '"') {
            /* line-ending backslash: trim whitespace and newlines */
            size_t j = p->i + 1;
            while (j < p->n && (p->s[j] == ' ' || p->s[j] == '\t'))
                j++;
            if (j < p->n && (p->s[j] == '\n' || (p->s[j] == '\r' && j + 1 < p->n && p->s[j + 1] == '\n'))) {
                p->i = j;
                while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
                                       p->s[p->i] == '\n' || p->s[p->i] == '\r'))
                    p->i++;
                continue;
            }
            if (escape(p, b))
                return -1;
            continue;
        }
        if (c == '\n') {
            if (bput(b, "\n", 1))
                return perr(p, "out of memory");
            p->i++;
            continue;
        }
        if (c == '\r' && at(p, 1) == '\n') {
            if (bput(b, "\n", 1))
                return perr(p, "out of memory");
            p->i += 2;
            continue;
        }
        if (copy_char(p, b))
            return -1;
    }
}

static int is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* One key part (bare or quoted) into b. */
static int key_part(struct p *p, struct lbw_buf *b)
{
    int c = peek(p);
    if (c == '"' || c == '\'') {
        if (at(p, 1) == c && at(p, 2) == c)
            return perr(p, "multi-line strings cannot be keys");
        return string(p, b, 0);
    }
    size_t st = p->i;
    while (is_bare(peek(p)))
        p->i++;
    if (p->i == st)
        return perr(p, "expected a key");
    b->len = 0;
    return bput(b, p->s + st, p->i - st) ? perr(p, "out of memory") : 0;
}

/* A dotted key: parts[0..*np) as malloc'd strings. */
#define MAX_PARTS 32
/* The parts of a dotted key, freed when the holder goes out of scope. */
struct keyparts {
    char *p[MAX_PARTS];
    size_t len[MAX_PARTS];
    size_t n;
};

static void keyparts_free(struct keyparts *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->p[i]);
    k->n = 0;
}

static void toml_freep(struct lbw_toml **v)
{
    lbw_toml_free(*v);
}

static int key(struct p *p, struct keyparts *kp)
{
    struct lbw_buf b = {0};
    int rc = 0;
    for (;;) {
        skip_ws(p);
        if (kp->n == MAX_PARTS) {
            rc = perr(p, "key has more than %d parts", MAX_PARTS);
            break;
        }
        rc = key_part(p, &b);
        if (rc)
            break;
        char *part = malloc(b.len + 1);
        if (!part) {
            rc = perr(p, "out of memory");
            break;
        }
        memcpy(part, b.p, b.len + 1);
        kp->len[kp->n] = b.len;
        kp->p[kp->n++] = part;
        skip_ws(p);
        if (peek(p) != '.')
            break;
        p->i++;
    }
    lbw_buf_free(&b);
    return rc ? -1 : 0;
}

/* ---- numbers ---------------------------------------------------------------- */

static int digits_ok(const char *s, size_t n, int (*isdig)(int))
{
    /* underscores only between digits */
    if (n == 0 || s[0] == '_' || s[n - 1] == '_')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            if (s[i + 1] == '_')
                return 0;
        } else if (!isdig((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int isdec(int c) { return c >= '0' && c <= '9'; }
static int ishex(int c) { return lbw_hexval(c) >= 0; }
static int isoct(int c) { return c >= '0' && c <= '7'; }
static int isbin(int c) { return c == '0' || c == '1'; }

static struct lbw_toml *number(struct p *p)
{
    size_t st = p->i;
    while (p->i < p->n && (is_bare(peek(p)) || peek(p) == '+' || peek(p) == '.'))
        p->i++;
    size_t n = p->i - st;
    const char *s = p->s + st;
    char tok[128];
    if (n == 0 || n >= sizeof(tok)) {
        p->i = st;
        perr(p, "expected a value");
        return NULL;
    }
    memcpy(tok, s, n);
    tok[n] = 0;
    const char *t = tok;
    int neg = 0, sign = 0;
    if (*t == '+' || *t == '-') {
        neg = *t == '-';
        sign = 1;
        t++;
    }
    if (!strcmp(t, "inf") || !strcmp(t, "nan")) {
        struct lbw_toml *v = mk(LBW_TOML_FLOAT);
        if (v)
            v->u.f = t[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        return v;
    }
    if (t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
        int (*f)(int) = t[1] == 'x' ? ishex : t[1] == 'o' ? isoct : isbin;
        int base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
        if (sign || !digits_ok(t + 2, strlen(t + 2), f)) {
            p->i = st;
            perr(p, "malformed integer '%s'", tok);
            return NULL;
        }
        uint64_t u = 0;
        for (const char *c = t + 2; *c; c++) {
            if (*c == '_')
                continue;
            uint64_t d = (uint64_t)lbw_hexval(*c);
            if (u > (UINT64_MAX - d) / (uint64_t)base || u * (uint64_t)base + d > INT64_MAX) {
                p->i = st;
                perr(p, "integer '%s' does not fit in 64 bits", tok);
                return NULL;
            }
            u = u * (uint64_t)base + d;
        }
        struct lbw_toml *v = mk(LBW_TOML_INT);
        if (v)
            v->u.i = (int64_t)u;
        return v;
    }
    /* split into integer part, fraction, exponent and validate each */
    const char *dot = strchr(t, '.');
    const char *ex = strpbrk(t, "eE");
    size_t ilen = dot ? (size_t)(dot - t) : ex ? (size_t)(ex - t) : strlen(t);
    int ok = digits_ok(t, ilen, isdec) && !(ilen > 1 && t[0] == '0');
    if (dot) {
        if (ex && ex < dot)
            ok = 0;
        size_t flen = ex ? (size_t)(ex - dot - 1) : strlen(dot + 1);
        ok = ok && digits_ok(dot + 1, flen, isdec);
    }
    if (ex) {
        const char *e = ex + 1;
        if (*e == '+' || *e == '-')
            e++;
        ok = ok && digits_ok(e, strlen(e), isdec);
    }
    if (!ok) {
        p->i = st;
        if (strchr(tok, '-') && !ex && (strchr(tok, ':') || strchr(t, '-')))
            perr(p, "dates and times are not supported here");
        else
            perr(p, "malformed number '%s'", tok);
        return NULL;
    }
    char clean[128];
    size_t k = 0;
    for (const char *c = tok; *c; c++)
        if (*c != '_')
            clean[k++] = *c;
    clean[k] = 0;
    if (!dot && !ex) {
        char *end;
        errno = 0;
        long long iv = strtoll(clean, &end, 10);
        if (errno) {
            p->i = st;
            perr(p, "integer '%s' does not fit in 64 bits", tok);
            return NULL;
        }
        struct lbw_toml *v = mk(LBW_TOML_INT);
        if (v)
            v->u.i = iv;
        return v;
    }
    struct lbw_toml *v = mk(LBW_TOML_FLOAT);
    if (v)
        v->u.f = strtod(clean, NULL);
    return v;
}

/* ---- values, arrays, inline tables ------------------------------------------ */

static struct lbw_toml *value(struct p *p);
static int keyval(struct p *p, struct lbw_toml *table);

static struct lbw_toml *array(struct p *p)
{
    p->i++; /* [ */
    _cleanup_(toml_freep) struct lbw_toml *a = mk(LBW_TOML_ARRAY);
    if (!a) {
        perr(p, "out of memory");
        return NULL;
    }
    a->flags = TF_INLINE;
    for (;;) {
        if (skip_ws_nl(p))
            return NULL;
        if (peek(p) == ']') {
            p->i++;
            return TAKE_PTR(a);
        }
        struct lbw_toml *v = value(p);
        if (!v)
            return NULL;
        if (arr_add(a, v)) {
            lbw_toml_free(v);
            perr(p, "out of memory");
            return NULL;
        }
        if (skip_ws_nl(p))
            return NULL;
        if (peek(p) == ',') {
            p->i++;
            continue;
        }
        if (peek(p) == ']') {
            p->i++;
            return TAKE_PTR(a);
        }
        perr(p, "expected ',' or ']' in an array");
        return NULL;
    }
}

static struct lbw_toml *inline_table(struct p *p)
{
    p->i++; /* { */
    _cleanup_(toml_freep) struct lbw_toml *t = mk(LBW_TOML_TABLE);
    if (!t) {
        perr(p, "out of memory");
        return NULL;
    }
    skip_ws(p);
    if (peek(p) == '}') {
        p->i++;
        t->flags = TF_INLINE;
        return TAKE_PTR(t);
    }
    for (;;) {
        skip_ws(p);
        if (keyval(p, t))
            return NULL;
        skip_ws(p);
        if (peek(p) == ',') {
            p->i++;
            skip_ws(p);
            if (peek(p) == '}') {
                perr(p, "trailing comma in an inline table");
                return NULL;
            }
            continue;
        }
        if (peek(p) == '}') {
            p->i++;
            t->flags = TF_INLINE;
            return TAKE_PTR(t);
        }
        perr(p, "expected ',' or '}' in an inline table (which must be on one line)");
        return NULL;
    }
}

static void close_all(struct lbw_toml *v)
{
    /* Everything inside an inline value is closed for later definitions. */
    v->flags |= TF_INLINE;
    if (v->type == LBW_TOML_TABLE)
        for (size_t i = 0; i < v->u.tab.n; i++)
            close_all(v->u.tab.vals[i]);
}

static struct lbw_toml *value(struct p *p)
{
    if (++p->depth > TOML_MAX_DEPTH) {
        perr(p, "values nested deeper than %d", TOML_MAX_DEPTH);
        return NULL;
    }
    struct lbw_toml *v = NULL;
    int c = peek(p);
    /* the line before reading the value: nested values come later in the
     * text, and line_at() only counts forward cheaply */
    uint32_t line = line_at(p, p->i);
    if (c == '"' || c == '\'') {
        struct lbw_buf b = {0};
        if (string(p, &b, 1) == 0) {
            v = mk(LBW_TOML_STRING);
            if (v) {
                v->u.str.len = b.len;
                v->u.str.s = (char *)lbw_buf_steal(&b);
            }
        }
        lbw_buf_free(&b);
    } else if (c == '[') {
        v = array(p);
    } else if (c == '{') {
        v = inline_table(p);
        if (v)
            close_all(v);
    } else if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "true", 4) && !is_bare(at(p, 4))) {
        v = mk(LBW_TOML_BOOL);
        if (v)
            v->u.b = 1;
        p->i += 4;
    } else if (p->n - p->i >= 5 && !memcmp(p->s + p->i, "false", 5) && !is_bare(at(p, 5))) {
        v = mk(LBW_TOML_BOOL);
        p->i += 5;
    } else if (c == '+' || c == '-' || c == 'i' || c == 'n' || (c >= '0' && c <= '9')) {
        v = number(p);
    } else {
        perr(p, c < 0 ? "expected a value, found the end of the input" : "expected a value");
    }
    if (!v && !p->failed)
        perr(p, "out of memory");
    if (v)
        v->line = line;
    p->depth--;
    return v;
}

/* Member `key` of t, created as an empty table when missing (NULL and an
 * error when memory runs out). *created tells which. */
static struct lbw_toml *sub_table(struct p *p, struct lbw_toml *t, const char *key, size_t klen,
                                  int *created)
{
    struct lbw_toml *sub = lbw_toml_member(t, key);
    *created = 0;
    if (sub)
        return sub;
    sub = mk(LBW_TOML_TABLE);
    if (!sub || tab_add(t, key, klen, sub)) {
        lbw_toml_free(sub);
        perr(p, "out of memory");
        return NULL;
    }
    sub->line = p->cur_line;
    *created = 1;
    return sub;
}

/* key = value, into table (dotted keys create sub-tables). */
static int keyval(struct p *p, struct lbw_toml *table)
{
    _cleanup_(keyparts_free) struct keyparts kp = {.n = 0};
    size_t kstart = p->i;
    p->cur_line = line_at(p, kstart);
    if (key(p, &kp))
        return -1;
    struct lbw_toml *t = table;
    for (size_t k = 0; k + 1 < kp.n; k++) {
        int created;
        struct lbw_toml *sub = sub_table(p, t, kp.p[k], kp.len[k], &created);
        if (!sub)
            return -1;
        if (created) {
            sub->flags = TF_DOTTED;
        } else if (sub->type != LBW_TOML_TABLE || (sub->flags & (TF_INLINE | TF_EXPLICIT))) {
            p->i = kstart;
            return perr(p, "key '%s' is already defined and cannot be extended here", kp.p[k]);
        }
        t = sub;
    }
    const char *last = kp.p[kp.n - 1];
    if (lbw_toml_member(t, last)) {
        p->i = kstart;
        return perr(p, "duplicate key '%s'", last);
    }
    skip_ws(p);
    if (peek(p) != '=')
        return perr(p, "expected '=' after a key");
    p->i++;
    skip_ws(p);
    struct lbw_toml *v = value(p);
    if (!v)
        return -1;
    if (tab_add(t, last, kp.len[kp.n - 1], v)) {
        lbw_toml_free(v);
        return perr(p, "out of memory");
    }
    return 0;
}

/* [a.b.c] or [[a.b.c]]: returns the table to fill next. */
static struct lbw_toml *header(struct p *p, struct lbw_toml *root)
{
    size_t hstart = p->i;
    p->cur_line = line_at(p, hstart);
    int aot = at(p, 1) == '[';
    p->i += aot ? 2 : 1;
    _cleanup_(keyparts_free) struct keyparts kp = {.n = 0};
    if (key(p, &kp))
        return NULL;
    if (peek(p) != ']' || (aot && at(p, 1) != ']')) {
        perr(p, aot ? "expected ']]'" : "expected ']'");
        return NULL;
    }
    p->i += aot ? 2 : 1;
    struct lbw_toml *t = root;
    for (size_t k = 0; k < kp.n; k++) {
        int last = k + 1 == kp.n;
        struct lbw_toml *sub = lbw_toml_member(t, kp.p[k]);
        if (sub && sub->type == LBW_TOML_ARRAY && (sub->flags & TF_AOT) && !(last && !aot)) {
            if (last) { /* [[x]] again: a new element */
                struct lbw_toml *el = mk(LBW_TOML_TABLE);
                if (!el || arr_add(sub, el)) {
                    lbw_toml_free(el);
                    perr(p, "out of memory");
                    return NULL;
                }
                el->flags = TF_EXPLICIT;
                el->line = p->cur_line;
                return el;
            }
            t = sub->u.arr.v[sub->u.arr.n - 1];
            continue;
        }
        if (last && aot) {
            if (sub) {
                p->i = hstart;
                perr(p, "'%s' is already defined and is not an array of tables", kp.p[k]);
                return NULL;
            }
            _cleanup_(toml_freep) struct lbw_toml *a = mk(LBW_TOML_ARRAY);
            struct lbw_toml *el = mk(LBW_TOML_TABLE);
            if (!a || !el || arr_add(a, el)) {
                lbw_toml_free(el); /* not (yet) inside a */
                perr(p, "out of memory");
                return NULL;
            }
            if (tab_add(t, kp.p[k], kp.len[k], a)) { /* el is freed with a */
                perr(p, "out of memory");
                return NULL;
            }
            a->flags = TF_AOT;
            el->flags = TF_EXPLICIT;
            a->line = el->line = p->cur_line;
            a = NULL; /* now owned by t */
            return el;
        }
        int created = 0;
        if (!sub && !(sub = sub_table(p, t, kp.p[k], kp.len[k], &created)))
            return NULL;
        if (!created && (sub->type != LBW_TOML_TABLE || (sub->flags & TF_INLINE) ||
                   (last && (sub->flags & (TF_EXPLICIT | TF_DOTTED))))) {
            p->i = hstart;
            perr(p, "table '%s' is already defined", kp.p[k]);
            return NULL;
        }
        t = sub;
    }
    t->flags |= TF_EXPLICIT;
    t->line = p->cur_line; /* where [t] is defined, not where it was first implied */
    return t;
}

struct lbw_toml *lbw_toml_parse(const char *text, size_t n, char *err, size_t errlen)
{
    struct p p = {.s = text, .n = n, .err = err, .errlen = errlen};
    if (n > TOML_MAX_INPUT) {
        snprintf(err, errlen, "configuration file larger than %u bytes", TOML_MAX_INPUT);
        return NULL;
    }
    if (n >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        p.i = 3; /* UTF-8 byte order mark */
    struct lbw_toml *root = mk(LBW_TOML_TABLE);
    if (!root) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct lbw_toml *cur = root;
    for (;;) {
        if (skip_ws_nl(&p))
            break;
        if (p.i >= p.n) {
            return root;
        }
        if (peek(&p) == '[') {
            cur = header(&p, root);
            if (!cur || end_of_line(&p))
                break;
            continue;
        }
        if (keyval(&p, cur) || end_of_line(&p))
            break;
    }
    lbw_toml_free(root);
    return NULL;
}

struct lbw_toml *lbw_toml_parse_value(const char *text, char *err, size_t errlen)
{
    struct p p = {.s = text, .n = strlen(text), .err = err, .errlen = errlen};
    skip_ws(&p);
    struct lbw_toml *v = value(&p);
    if (v) {
        skip_ws(&p);
        if (p.i != p.n) {
            perr(&p, "extra text after the value");
            lbw_toml_free(v);
            return NULL;
        }
    }
    return v;
}

struct lbw_toml *lbw_toml_get(const struct lbw_toml *root, const char *path)
{
    char part[256];
    const struct lbw_toml *t = root;
    while (t && *path) {
        const char *dot = strchr(path, '.');
        size_t l = dot ? (size_t)(dot - path) : strlen(path);
        if (l >= sizeof(part))
            return NULL;
        memcpy(part, path, l);
        part[l] = 0;
        t = lbw_toml_member(t, part);
        path += l + (dot ? 1 : 0);
    }
    return (struct lbw_toml *)t;
}

int lbw_toml_merge(struct lbw_toml *dst, struct lbw_toml *src)
{
    int rc = 0;
    for (size_t i = 0; i < src->u.tab.n; i++) {
        const char *k = src->u.tab.keys[i];
        struct lbw_toml *sv = src->u.tab.vals[i];
        src->u.tab.vals[i] = NULL;
        ssize_t j = tab_find(dst, k);
        if (j >= 0) {
            struct lbw_toml *dv = dst->u.tab.vals[j];
            if (dv->type == LBW_TOML_TABLE && sv->type == LBW_TOML_TABLE) {
                rc |= lbw_toml_merge(dv, sv);
            } else {
                lbw_toml_free(dv);
                dst->u.tab.vals[j] = sv;
            }
        } else if (tab_add(dst, k, strlen(k), sv)) {
            lbw_toml_free(sv);
            rc = -1;
        }
    }
    lbw_toml_free(src);
    return rc;
}

int lbw_toml_set(struct lbw_toml *root, const char *path, struct lbw_toml *v)
{
    char part[256];
    struct lbw_toml *t = root;
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t l = dot ? (size_t)(dot - path) : strlen(path);
        if (l == 0 || l >= sizeof(part) || t->type != LBW_TOML_TABLE) {
            lbw_toml_free(v);
            return -1;
        }
        memcpy(part, path, l);
        part[l] = 0;
        size_t j;
        for (j = 0; j < t->u.tab.n && strcmp(t->u.tab.keys[j], part); j++)
            ;
        if (!dot) {
            if (j < t->u.tab.n) {
                lbw_toml_free(t->u.tab.vals[j]);
                t->u.tab.vals[j] = v;
                return 0;
            }
            if (tab_add(t, part, l, v)) {
                lbw_toml_free(v);
                return -1;
            }
            return 0;
        }
        if (j == t->u.tab.n) {
            struct lbw_toml *sub = mk(LBW_TOML_TABLE);
            if (!sub || tab_add(t, part, l, sub)) {
                lbw_toml_free(sub);
                lbw_toml_free(v);
                return -1;
            }
            t = sub;
        } else {
            t = t->u.tab.vals[j];
        }
        path = dot + 1;
    }
}

const char *lbw_toml_type_name(enum lbw_toml_type t)
{
    switch (t) {
    case LBW_TOML_TABLE: return "a table";
    case LBW_TOML_ARRAY: return "an array";
    case LBW_TOML_STRING: return "a string";
    case LBW_TOML_INT: return "an integer";
    case LBW_TOML_FLOAT: return "a float";
    case LBW_TOML_BOOL: return "a boolean";
    }
    return "a value";
}

void lbw_toml_describe(const struct lbw_toml *v, char *out, size_t cap)
{
    switch (v->type) {
    case LBW_TOML_STRING: {
        /* at most 40 bytes of it, control characters as '?' */
        char s[41];
        size_t k = 0;
        for (size_t i = 0; i < v->u.str.len && k < 40; i++) /* a NUL shows too */
            s[k++] = lbw_text_char((unsigned char)v->u.str.s[i], 0);
        s[k] = 0;
        snprintf(out, cap, "the string \"%s\"%s", s, v->u.str.len > 40 ? "..." : "");
        break;
    }
    case LBW_TOML_INT: snprintf(out, cap, "the integer %lld", (long long)v->u.i); break;
    case LBW_TOML_FLOAT: snprintf(out, cap, "the float %g", v->u.f); break;
    case LBW_TOML_BOOL: snprintf(out, cap, "the boolean %s", v->u.b ? "true" : "false"); break;
    case LBW_TOML_ARRAY:
        snprintf(out, cap, "an array of %zu value%s", v->u.arr.n, v->u.arr.n == 1 ? "" : "s");
        break;
    case LBW_TOML_TABLE: snprintf(out, cap, "a table"); break;
    default: snprintf(out, cap, "a value"); break;
    }
}
