/* json.c — see json.h. */
#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "utf8.h"

struct lbw_json_tok {
    jsmntok_t t;
};

#define TOK(j, i) (&(j)->tok[i].t)

/* ---- reading ------------------------------------------------------------ */

static int is_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i == n;
}

static enum lbw_json_type prim_type(const char *s, size_t n)
{
    if (n == 4 && !memcmp(s, "true", 4))
        return LBW_JSON_TRUE;
    if (n == 5 && !memcmp(s, "false", 5))
        return LBW_JSON_FALSE;
    if (n == 4 && !memcmp(s, "null", 4))
        return LBW_JSON_NULL;
    if ((n == 3 && !memcmp(s, "NaN", 3)) || (n == 8 && !memcmp(s, "Infinity", 8)) ||
        (n == 9 && !memcmp(s, "-Infinity", 9)))
        return LBW_JSON_NAN;
    if (is_number(s, n))
        return LBW_JSON_NUMBER;
    return LBW_JSON_INVALID;
}

static int hex4(const char *s, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return 0;
}

/* Walks a string token's code points: calls emit(cp) for each. Raw bytes
 * must be valid UTF-8; escapes are decoded with surrogate pairs combined.
 * Returns 0 or -1. */
typedef int (*cp_fn)(void *ctx, uint32_t cp);

static int walk_string(const char *s, size_t n, cp_fn emit, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x20)
            return -1; /* raw control characters are not JSON */
        if (c != '\\') {
            uint32_t cp;
            size_t l = c < 0x80 ? (cp = c, 1) : lbw_utf8_decode((const uint8_t *)s + i, n - i, &cp, 0);
            if (!l || emit(ctx, cp) < 0)
                return -1;
            i += l;
            continue;
        }
        if (i + 1 >= n)
            return -1;
        char e = s[i + 1];
        uint32_t cp;
        i += 2;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (i + 4 > n || hex4(s + i, &cp) < 0)
                return -1;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
                uint32_t lo;
                if (hex4(s + i + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            break;
        default:
            return -1;
        }
        if (emit(ctx, cp) < 0)
            return -1;
    }
    return 0;
}

int lbw_json_parse(struct lbw_json *j, const char *s, size_t n, char *err, size_t errlen)
{
    memset(j, 0, sizeof(*j));
    if (n > LBW_JSON_MAX_LEN) {
        snprintf(err, errlen, "JSON text of %zu bytes is larger than the %zu-byte limit", n,
                 LBW_JSON_MAX_LEN);
        return -1;
    }
    jsmn_parser p;
    jsmn_init(&p);
    int count = jsmn_parse(&p, s, n, NULL, 0);
    if (count <= 0) {
        snprintf(err, errlen, "%s", count == 0 ? "empty JSON text"
                                   : count == JSMN_ERROR_PART ? "truncated JSON text"
                                                              : "malformed JSON text");
        return -1;
    }
    j->tok = malloc((size_t)count * sizeof(*j->tok));
    if (!j->tok) {
        snprintf(err, errlen, "out of memory for %d JSON tokens", count);
        return -1;
    }
    jsmn_init(&p);
    int got = jsmn_parse(&p, s, n, (jsmntok_t *)j->tok, (unsigned)count);
    if (got != count) {
        snprintf(err, errlen, "malformed JSON text");
        lbw_json_free(j);
        return -1;
    }
    j->src = s;
    j->len = n;
    j->ntok = count;
    /* One top-level value, then only whitespace. */
    jsmntok_t *t0 = TOK(j, 0);
    for (size_t i = (size_t)t0->end + (t0->type == JSMN_STRING); i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            snprintf(err, errlen, "extra data after the JSON value at offset %zu", i);
            lbw_json_free(j);
            return -1;
        }
    }
    if (lbw_json_skip(j, 0) != count) {
        snprintf(err, errlen, "more than one top-level JSON value");
        lbw_json_free(j);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        jsmntok_t *t = TOK(j, i);
        if (t->type == JSMN_PRIMITIVE &&
            prim_type(s + t->start, (size_t)(t->end - t->start)) == LBW_JSON_INVALID) {
            snprintf(err, errlen, "invalid JSON literal at offset %d", t->start);
            lbw_json_free(j);
            return -1;
        }
        if (t->type == JSMN_OBJECT) {
            /* Members alternate key, value: every key must be a string. */
            int k = i + 1;
            for (int m = 0; m < t->size; m++) {
                if (k >= count || TOK(j, k)->type != JSMN_STRING || TOK(j, k)->size != 1) {
                    snprintf(err, errlen, "object key is not a string at offset %d",
                             k < count ? TOK(j, k)->start : t->start);
                    lbw_json_free(j);
                    return -1;
                }
                k = lbw_json_skip(j, k + 1);
            }
        }
        if (t->type == JSMN_STRING && t->size > 1) {
            snprintf(err, errlen, "malformed object at offset %d", t->start);
            lbw_json_free(j);
            return -1;
        }
    }
    return 0;
}

void lbw_json_free(struct lbw_json *j)
{
    free(j->tok);
    j->tok = NULL;
    j->ntok = 0;
}

enum lbw_json_type lbw_json_type(const struct lbw_json *j, int t)
{
    if (t < 0 || t >= j->ntok)
        return LBW_JSON_INVALID;
    jsmntok_t *k = TOK(j, t);
    switch (k->type) {
    case JSMN_OBJECT: return LBW_JSON_OBJECT;
    case JSMN_ARRAY: return LBW_JSON_ARRAY;
    case JSMN_STRING: return LBW_JSON_STRING;
    case JSMN_PRIMITIVE: return prim_type(j->src + k->start, (size_t)(k->end - k->start));
    default: return LBW_JSON_INVALID;
    }
}

int lbw_json_size(const struct lbw_json *j, int t)
{
    if (t < 0 || t >= j->ntok)
        return 0;
    return TOK(j, t)->size;
}

int lbw_json_skip(const struct lbw_json *j, int t)
{
    /* Tokens of a subtree are contiguous and start within [start, end). */
    if (t < 0 || t >= j->ntok)
        return j->ntok;
    int end = TOK(j, t)->end;
    int i = t + 1;
    while (i < j->ntok && TOK(j, i)->start < end)
        i++;
    return i;
}

int lbw_json_get(const struct lbw_json *j, int t, const char *key)
{
    if (lbw_json_type(j, t) != LBW_JSON_OBJECT)
        return -1;
    int n = TOK(j, t)->size, k = t + 1;
    for (int m = 0; m < n && k < j->ntok; m++) {
        if (lbw_json_str_eq(j, k, key))
            return k + 1;
        k = lbw_json_skip(j, k + 1);
    }
    return -1;
}

int lbw_json_at(const struct lbw_json *j, int t, int i)
{
    if (lbw_json_type(j, t) != LBW_JSON_ARRAY || i < 0 || i >= TOK(j, t)->size)
        return -1;
    int k = t + 1;
    while (i-- > 0)
        k = lbw_json_skip(j, k);
    return k;
}

const char *lbw_json_raw(const struct lbw_json *j, int t, size_t *len)
{
    if (t < 0 || t >= j->ntok) {
        *len = 0;
        return NULL;
    }
    jsmntok_t *k = TOK(j, t);
    *len = (size_t)(k->end - k->start);
    return j->src + k->start;
}

const char *lbw_json_text(const struct lbw_json *j, int t, size_t *len)
{
    const char *p = lbw_json_raw(j, t, len);
    if (p && TOK(j, t)->type == JSMN_STRING) {
        p--;
        *len += 2;
    }
    return p;
}

struct sbuf {
    uint8_t *p;
    size_t len, cap;
    int latin1;
};

static int sb_put(void *ctx, uint32_t cp)
{
    struct sbuf *b = ctx;
    if (b->latin1 && cp > 0xFF)
        return -1;
    if (b->len + 5 > b->cap)
        return -1; /* capacity was sized from the raw length: cannot happen */
    if (b->latin1)
        b->p[b->len++] = (uint8_t)cp;
    else
        b->len += lbw_utf8_encode(cp, b->p + b->len);
    return 0;
}

static int decode_str(const struct lbw_json *j, int t, int latin1, uint8_t **out, size_t *len)
{
    if (lbw_json_type(j, t) != LBW_JSON_STRING)
        return -1;
    size_t n;
    const char *s = lbw_json_raw(j, t, &n);
    /* Unescaped text is never longer than its escaped form (+ room). */
    struct sbuf b = {.p = malloc(n + 5), .cap = n + 5, .latin1 = latin1};
    if (!b.p)
        return -1;
    if (walk_string(s, n, sb_put, &b) < 0) {
        free(b.p);
        return -1;
    }
    b.p[b.len] = 0;
    *out = b.p;
    *len = b.len;
    return 0;
}

int lbw_json_str(const struct lbw_json *j, int t, char **out, size_t *len)
{
    return decode_str(j, t, 0, (uint8_t **)out, len);
}

int lbw_json_latin1(const struct lbw_json *j, int t, uint8_t **out, size_t *len)
{
    return decode_str(j, t, 1, out, len);
}

struct eqctx {
    const uint8_t *s;
    size_t pos, len;
};

static int eq_put(void *ctx, uint32_t cp)
{
    struct eqctx *e = ctx;
    uint8_t enc[4];
    size_t l = lbw_utf8_encode(cp, enc);
    if (e->pos + l > e->len || memcmp(e->s + e->pos, enc, l) != 0)
        return -1;
    e->pos += l;
    return 0;
}

int lbw_json_str_eq(const struct lbw_json *j, int t, const char *s)
{
    if (lbw_json_type(j, t) != LBW_JSON_STRING)
        return 0;
    size_t n;
    const char *raw = lbw_json_raw(j, t, &n);
    size_t sl = strlen(s);
    if (!memchr(raw, '\\', n))
        return n == sl && memcmp(raw, s, n) == 0;
    struct eqctx e = {(const uint8_t *)s, 0, sl};
    return walk_string(raw, n, eq_put, &e) == 0 && e.pos == sl;
}

static int num_text(const struct lbw_json *j, int t, char *buf, size_t cap)
{
    enum lbw_json_type ty = lbw_json_type(j, t);
    if (ty != LBW_JSON_NUMBER && ty != LBW_JSON_NAN)
        return -1;
    size_t n;
    const char *p = lbw_json_raw(j, t, &n);
    if (n + 1 > cap)
        return -1;
    memcpy(buf, p, n);
    buf[n] = 0;
    return 0;
}

int lbw_json_i64(const struct lbw_json *j, int t, int64_t *out)
{
    char b[32];
    if (lbw_json_type(j, t) != LBW_JSON_NUMBER || num_text(j, t, b, sizeof(b)) < 0 ||
        strpbrk(b, ".eE"))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(b, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int lbw_json_u64(const struct lbw_json *j, int t, uint64_t *out)
{
    char b[32];
    if (lbw_json_type(j, t) != LBW_JSON_NUMBER || num_text(j, t, b, sizeof(b)) < 0 ||
        strpbrk(b, ".eE-"))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(b, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int lbw_json_double(const struct lbw_json *j, int t, double *out)
{
    char b[400];
    if (num_text(j, t, b, sizeof(b)) < 0)
        return -1;
    if (!strcmp(b, "NaN"))
        *out = NAN;
    else if (!strcmp(b, "Infinity"))
        *out = INFINITY;
    else if (!strcmp(b, "-Infinity"))
        *out = -INFINITY;
    else
        *out = strtod(b, NULL);
    return 0;
}

int lbw_json_bool(const struct lbw_json *j, int t, int *out)
{
    enum lbw_json_type ty = lbw_json_type(j, t);
    if (ty != LBW_JSON_TRUE && ty != LBW_JSON_FALSE)
        return -1;
    *out = ty == LBW_JSON_TRUE;
    return 0;
}

/* ---- writer ------------------------------------------------------------- */

void lbw_jw_init(struct lbw_jw *w)
{
    memset(w, 0, sizeof(*w));
}

void lbw_jw_free(struct lbw_jw *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

char *lbw_jw_take(struct lbw_jw *w, size_t *len)
{
    if (w->err) {
        lbw_jw_free(w);
        return NULL;
    }
    char *b = w->buf;
    if (!b)
        b = calloc(1, 1);
    *len = w->len;
    memset(w, 0, sizeof(*w));
    return b;
}

static char *reserve(struct lbw_jw *w, size_t n)
{
    if (w->err)
        return NULL;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                w->err = 1;
                return NULL;
            }
            cap *= 2;
        }
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->err = 1;
            return NULL;
        }
        w->buf = b;
        w->cap = cap;
    }
    return w->buf + w->len;
}

static void put(struct lbw_jw *w, const char *s, size_t n)
{
    char *p = reserve(w, n);
    if (!p)
        return;
    memcpy(p, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

/* Separator before a value: ", " between elements, nothing after a key. */
static void before_value(struct lbw_jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth == 0)
        return;
    uint64_t bit = 1ull << (w->depth & 63);
    if (w->first & bit)
        w->first &= ~bit;
    else
        put(w, ", ", 2);
}

static void open_(struct lbw_jw *w, char c)
{
    before_value(w);
    put(w, &c, 1);
    w->depth++;
    w->first |= 1ull << (w->depth & 63);
}

static void close_(struct lbw_jw *w, char c)
{
    w->depth--;
    put(w, &c, 1);
}

void lbw_jw_obj(struct lbw_jw *w) { open_(w, '{'); }
void lbw_jw_obj_end(struct lbw_jw *w) { close_(w, '}'); }
void lbw_jw_arr(struct lbw_jw *w) { open_(w, '['); }
void lbw_jw_arr_end(struct lbw_jw *w) { close_(w, ']'); }

void lbw_jw_key(struct lbw_jw *w, const char *k)
{
    lbw_jw_cstr(w, k);
    put(w, ": ", 2);
    w->after_key = 1;
}

/* Escapes one code point the way json.dumps(ensure_ascii=True) does. */
static size_t esc_cp(uint32_t cp, char *o)
{
    static const char hx[] = "0123456789abcdef";
    switch (cp) {
    case '"': memcpy(o, "\\\"", 2); return 2;
    case '\\': memcpy(o, "\\\\", 2); return 2;
    case '\n': memcpy(o, "\\n", 2); return 2;
    case '\r': memcpy(o, "\\r", 2); return 2;
    case '\t': memcpy(o, "\\t", 2); return 2;
    case '\b': memcpy(o, "\\b", 2); return 2;
    case '\f': memcpy(o, "\\f", 2); return 2;
    }
    if (cp >= 0x20 && cp < 0x7F) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        size_t a = esc_cp(0xD800 | (v >> 10), o);
        return a + esc_cp(0xDC00 | (v & 0x3FF), o + a);
    }
    o[0] = '\\';
    o[1] = 'u';
    o[2] = hx[(cp >> 12) & 15];
    o[3] = hx[(cp >> 8) & 15];
    o[4] = hx[(cp >> 4) & 15];
    o[5] = hx[cp & 15];
    return 6;
}

/* Length of the maximal invalid prefix at p (Python's "replace" consumes
 * exactly this much per U+FFFD), or 0 if a valid sequence starts here. */
static size_t invalid_prefix(const uint8_t *p, size_t n, int final, int *incomplete)
{
    uint8_t c = p[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    *incomplete = 0;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 1;
    }
    size_t i = 1;
    for (; i < need; i++) {
        if (i >= n) {
            if (!final)
                *incomplete = 1;
            return i;
        }
        uint8_t b = p[i];
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h)
            return i;
    }
    return 0;
}

/* Escapes n bytes; returns bytes consumed (less than n only when a
 * sequence is cut at the end and !final). out may be NULL (count). */
static size_t esc_bytes(const uint8_t *p, size_t n, int final, char *out, size_t *olen)
{
    size_t i = 0, o = 0;
    char tmp[12];
    while (i < n) {
        /* Fast path: a run of printable ASCII that needs no escaping. */
        size_t j = i;
        while (j < n && p[j] >= 0x20 && p[j] < 0x7f && p[j] != '"' && p[j] != '\\')
            j++;
        if (j > i) {
            if (out)
                memcpy(out + o, p + i, j - i);
            o += j - i;
            i = j;
            continue;
        }
        uint8_t c = p[i];
        uint32_t cp;
        size_t l;
        if (c < 0x80) {
            cp = c;
            l = 1;
        } else {
            int incomplete;
            size_t bad = invalid_prefix(p + i, n - i, final, &incomplete);
            if (incomplete)
                break;
            if (bad) {
                cp = 0xFFFD;
                l = bad;
            } else {
                l = lbw_utf8_decode(p + i, n - i, &cp, 0);
            }
        }
        size_t e = esc_cp(cp, out ? out + o : tmp);
        o += e;
        i += l;
    }
    *olen = o;
    return i;
}

void lbw_jw_str(struct lbw_jw *w, const char *s, size_t n)
{
    before_value(w);
    char *p = reserve(w, LBW_JESC_OUT_MAX(n) + 2);
    if (!p)
        return;
    p[0] = '"';
    size_t o;
    esc_bytes((const uint8_t *)s, n, 1, p + 1, &o);
    p[1 + o] = '"';
    w->len += o + 2;
    w->buf[w->len] = 0;
}

void lbw_jw_cstr(struct lbw_jw *w, const char *s) { lbw_jw_str(w, s, strlen(s)); }

void lbw_jw_latin1(struct lbw_jw *w, const uint8_t *s, size_t n)
{
    before_value(w);
    char *p = reserve(w, 6 * n + 2);
    if (!p)
        return;
    size_t o = 0;
    p[o++] = '"';
    for (size_t i = 0; i < n; i++)
        o += esc_cp(s[i], p + o);
    p[o++] = '"';
    w->len += o;
    w->buf[w->len] = 0;
}

void lbw_jw_i64(struct lbw_jw *w, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);
    before_value(w);
    put(w, b, (size_t)n);
}

void lbw_jw_u64(struct lbw_jw *w, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    before_value(w);
    put(w, b, (size_t)n);
}

int lbw_json_fmt_double(double v, char *out, size_t cap)
{
    if (isnan(v))
        return snprintf(out, cap, "NaN");
    if (isinf(v))
        return snprintf(out, cap, v > 0 ? "Infinity" : "-Infinity");
    if (v == 0)
        return snprintf(out, cap, signbit(v) ? "-0.0" : "0.0");
    /* Shortest digits that round-trip, then Python's repr layout:
     * positional for 1e-4 <= |v| < 1e16, else d.ddde+XX. */
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    int neg = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9')
            digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char o[64];
    size_t k = 0;
    if (neg)
        o[k++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            o[k++] = '0';
            o[k++] = '.';
            for (int z = -1; z > exp; z--)
                o[k++] = '0';
            for (size_t d = 0; d < nd; d++)
                o[k++] = digits[d];
        } else {
            for (int d = 0; d <= exp; d++)
                o[k++] = (size_t)d < nd ? digits[d] : '0';
            o[k++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t d = (size_t)exp + 1; d < nd; d++)
                    o[k++] = digits[d];
            else
                o[k++] = '0';
        }
    } else {
        o[k++] = digits[0];
        if (nd > 1) {
            o[k++] = '.';
            for (size_t d = 1; d < nd; d++)
                o[k++] = digits[d];
        }
        k += (size_t)snprintf(o + k, sizeof(o) - k, "e%c%02d", exp < 0 ? '-' : '+',
                              exp < 0 ? -exp : exp);
    }
    o[k] = 0;
    return snprintf(out, cap, "%s", o);
}

void lbw_jw_double(struct lbw_jw *w, double v)
{
    char b[64];
    int n = lbw_json_fmt_double(v, b, sizeof(b));
    before_value(w);
    put(w, b, (size_t)n);
}

void lbw_jw_bool(struct lbw_jw *w, int v)
{
    before_value(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void lbw_jw_null(struct lbw_jw *w)
{
    before_value(w);
    put(w, "null", 4);
}

void lbw_jw_raw(struct lbw_jw *w, const char *s, size_t n)
{
    before_value(w);
    put(w, s, n);
}

/* ---- streaming escaper -------------------------------------------------- */

size_t lbw_jesc_feed(struct lbw_jesc *e, const uint8_t *in, size_t n, int final, char *out)
{
    size_t total = 0, o;
    if (e->npend) {
        /* Finish the sequence cut at the end of the last chunk: the held
         * bytes plus up to 4 new ones are enough to decide it. */
        uint8_t tmp[8];
        size_t k = n < 4 ? n : 4;
        memcpy(tmp, e->pend, e->npend);
        if (k)
            memcpy(tmp + e->npend, in, k);
        size_t tl = e->npend + k;
        size_t u = esc_bytes(tmp, tl, final && k == n, out, &o);
        total += o;
        if (u < e->npend) { /* still unfinished: all of `in` is held */
            memcpy(e->pend, tmp, tl);
            e->npend = tl;
            return total;
        }
        if (u > e->npend) { /* new bytes consumed with the held ones */
            in += u - e->npend;
            n -= u - e->npend;
        }
        e->npend = 0;
    }
    size_t used = n ? esc_bytes(in, n, final, out ? out + total : NULL, &o) : 0;
    if (!n)
        o = 0;
    total += o;
    e->npend = n - used;
    if (e->npend)
        memcpy(e->pend, in + used, e->npend);
    return total;
}

int lbw_jesc_fd_len(int fd, uint64_t *out)
{
    uint8_t buf[1 << 16];
    struct lbw_jesc e = {0};
    uint64_t total = 0, off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        total += lbw_jesc_feed(&e, buf, (size_t)n, n == 0, NULL);
        if (n == 0)
            break;
        off += (uint64_t)n;
    }
    *out = total;
    return 0;
}
