/* json.c — see json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "hex.h"
#include "utf8.h"

/* One token: a value, or an object key (a string whose size is 1). The
 * tokens of a value's subtree follow it contiguously and end at `next`, so
 * skipping a subtree is one step. */
struct lbw_json_tok {
    uint8_t type;      /* enum lbw_json_type of the token's text */
    int start, end;    /* strings: inside the quotes */
    int size;          /* elements, members; 1 for a key */
    int next;          /* first token after this one's subtree */
};

#define TOK(j, i) (&(j)->tok[i])

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
        int h = lbw_hexval((unsigned char)s[i]);
        if (h < 0)
            return -1;
        x = x << 4 | (uint32_t)h;
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

/* The tokenizer: one pass over the text, an explicit stack of the open
 * containers (bounded by LBW_JSON_MAX_DEPTH), every byte looked at a
 * bounded number of times. */
struct parser {
    const char *s;
    size_t n, pos;
    struct lbw_json *j;
    size_t cap;
    int stack[LBW_JSON_MAX_DEPTH];
    int depth;
    char *err;
    size_t errlen;
};

static int perr(struct parser *p, const char *what)
{
    if (p->pos >= p->n)
        snprintf(p->err, p->errlen, "truncated JSON text (%s expected at the end)", what);
    else
        snprintf(p->err, p->errlen, "malformed JSON text: %s expected at offset %zu", what,
                 p->pos);
    return -1;
}

static void ws(struct parser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
        p->j->work++;
    }
}

static int new_tok(struct parser *p, enum lbw_json_type type, size_t start, size_t end)
{
    struct lbw_json *j = p->j;
    if (lbw_grow(&j->tok, &p->cap, (size_t)j->ntok + 1, sizeof(*j->tok)) < 0) {
        snprintf(p->err, p->errlen, "out of memory for %d JSON tokens", j->ntok + 1);
        return -1;
    }
    int t = j->ntok++;
    j->tok[t] = (struct lbw_json_tok){.type = (uint8_t)type, .start = (int)start,
                                      .end = (int)end, .next = t + 1};
    j->work++;
    return t;
}

/* A string at p->pos (the opening quote): escapes are checked here, the
 * UTF-8 and the code points when the string is read. */
static int lex_string(struct parser *p, int key)
{
    size_t start = ++p->pos;
    while (p->pos < p->n) {
        unsigned char c = (unsigned char)p->s[p->pos];
        p->j->work++;
        if (c == '"') {
            int t = new_tok(p, LBW_JSON_STRING, start, p->pos);
            if (t < 0)
                return -1;
            p->j->tok[t].size = key;
            p->pos++;
            return 0;
        }
        if (c < 0x20) {
            snprintf(p->err, p->errlen,
                     "malformed JSON text: control character 0x%02x in a string at offset %zu",
                     c, p->pos);
            return -1;
        }
        if (c == '\\') {
            uint32_t cp;
            if (p->pos + 1 >= p->n)
                break;
            char e = p->s[p->pos + 1];
            if (e == 'u') {
                if (p->pos + 6 > p->n)
                    break;
                if (hex4(p->s + p->pos + 2, &cp) < 0) {
                    snprintf(p->err, p->errlen, "malformed JSON text: bad \\u escape at offset %zu",
                             p->pos);
                    return -1;
                }
                p->pos += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) {
                snprintf(p->err, p->errlen, "malformed JSON text: bad escape at offset %zu",
                         p->pos);
                return -1;
            }
            p->pos += 2;
            continue;
        }
        p->pos++;
    }
    snprintf(p->err, p->errlen, "truncated JSON text (a string from offset %zu is not closed)",
             start - 1);
    return -1;
}

static int lex_literal(struct parser *p)
{
    size_t start = p->pos;
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '+' || c == '-' || c == '.'))
            break;
        p->pos++;
        p->j->work++;
    }
    if (p->pos == start)
        return perr(p, "a value");
    if (prim_type(p->s + start, p->pos - start) == LBW_JSON_INVALID) {
        snprintf(p->err, p->errlen, "invalid JSON literal at offset %zu", start);
        return -1;
    }
    return new_tok(p, prim_type(p->s + start, p->pos - start), start, p->pos) < 0 ? -1 : 0;
}

/* An object member's key and colon, at p->pos. */
static int lex_key(struct parser *p)
{
    ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '"') {
        if (p->pos < p->n) {
            snprintf(p->err, p->errlen, "object key is not a string at offset %zu", p->pos);
            return -1;
        }
        return perr(p, "an object key");
    }
    if (lex_string(p, 1) < 0)
        return -1;
    ws(p);
    if (p->pos >= p->n || p->s[p->pos] != ':')
        return perr(p, "':'");
    p->pos++;
    return 0;
}

static int tokenize(struct parser *p)
{
    struct lbw_json *j = p->j;
    ws(p);
    if (p->pos >= p->n) {
        snprintf(p->err, p->errlen, "empty JSON text");
        return -1;
    }
    for (;;) {
        /* A value at p->pos. */
        ws(p);
        if (p->pos >= p->n)
            return perr(p, "a value");
        char c = p->s[p->pos];
        int closed_empty = 0;
        if (c == '{' || c == '[') {
            if (p->depth >= LBW_JSON_MAX_DEPTH) {
                snprintf(p->err, p->errlen, "JSON nested deeper than %d at offset %zu",
                         LBW_JSON_MAX_DEPTH, p->pos);
                return -1;
            }
            int t = new_tok(p, c == '{' ? LBW_JSON_OBJECT : LBW_JSON_ARRAY, p->pos, p->pos);
            if (t < 0)
                return -1;
            p->stack[p->depth++] = t;
            p->pos++;
            ws(p);
            char close = c == '{' ? '}' : ']';
            if (p->pos < p->n && p->s[p->pos] == close) {
                closed_empty = 1; /* handled below as a finished container */
            } else {
                if (c == '{' && lex_key(p) < 0)
                    return -1;
                continue;
            }
        } else if (c == '"') {
            if (lex_string(p, 0) < 0)
                return -1;
        } else if (lex_literal(p) < 0) {
            return -1;
        }
        /* A value just ended (or an empty container is about to close):
         * close containers, or move to the next element. */
        for (;;) {
            if (!closed_empty) {
                ws(p);
                if (p->depth == 0)
                    return 0;
            }
            int top = p->stack[p->depth - 1];
            int is_obj = j->tok[top].type == LBW_JSON_OBJECT;
            if (!closed_empty)
                j->tok[top].size++;
            if (p->pos >= p->n)
                return perr(p, is_obj ? "',' or '}'" : "',' or ']'");
            char d = p->s[p->pos];
            j->work++;
            if (d == (is_obj ? '}' : ']')) {
                j->tok[top].end = (int)p->pos + 1;
                j->tok[top].next = j->ntok;
                p->depth--;
                p->pos++;
                closed_empty = 0;
                continue;
            }
            if (closed_empty || d != ',')
                return perr(p, is_obj ? "',' or '}'" : "',' or ']'");
            p->pos++;
            if (is_obj && lex_key(p) < 0)
                return -1;
            break;
        }
    }
}

int lbw_json_parse(struct lbw_json *j, const char *s, size_t n, char *err, size_t errlen)
{
    memset(j, 0, sizeof(*j));
    if (n > LBW_JSON_MAX_LEN) {
        snprintf(err, errlen, "JSON text of %zu bytes is larger than the %zu-byte limit", n,
                 LBW_JSON_MAX_LEN);
        return -1;
    }
    struct parser *p = malloc(sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory parsing JSON");
        return -1;
    }
    *p = (struct parser){.s = s, .n = n, .j = j, .err = err, .errlen = errlen};
    int rc = tokenize(p);
    if (rc == 0 && p->pos < n) {
        snprintf(err, errlen, "extra data after the JSON value at offset %zu", p->pos);
        rc = -1;
    }
    free(p);
    if (rc < 0) {
        lbw_json_free(j);
        return -1;
    }
    j->src = s;
    j->len = n;
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
    return (enum lbw_json_type)TOK(j, t)->type;
}

int lbw_json_size(const struct lbw_json *j, int t)
{
    if (t < 0 || t >= j->ntok)
        return 0;
    return TOK(j, t)->size;
}

int lbw_json_skip(const struct lbw_json *j, int t)
{
    if (t < 0 || t >= j->ntok)
        return j->ntok;
    return TOK(j, t)->next;
}

int lbw_json_get(const struct lbw_json *j, int t, const char *key)
{
    if (lbw_json_type(j, t) != LBW_JSON_OBJECT)
        return -1;
    int n = TOK(j, t)->size, k = t + 1;
    for (int m = 0; m < n && k + 1 < j->ntok; m++) {
        if (lbw_json_str_eq(j, k, key))
            return k + 1;
        k = TOK(j, k + 1)->next;
    }
    return -1;
}

int lbw_json_at(const struct lbw_json *j, int t, int i)
{
    if (lbw_json_type(j, t) != LBW_JSON_ARRAY || i < 0 || i >= TOK(j, t)->size)
        return -1;
    int k = t + 1;
    while (i-- > 0)
        k = TOK(j, k)->next;
    return k;
}

const char *lbw_json_raw(const struct lbw_json *j, int t, size_t *len)
{
    if (t < 0 || t >= j->ntok) {
        *len = 0;
        return NULL;
    }
    struct lbw_json_tok *k = TOK(j, t);
    *len = (size_t)(k->end - k->start);
    return j->src + k->start;
}

const char *lbw_json_text(const struct lbw_json *j, int t, size_t *len)
{
    const char *p = lbw_json_raw(j, t, len);
    if (p && TOK(j, t)->type == LBW_JSON_STRING) {
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
    lbw_buf_free(&w->out);
    lbw_buf_free(&w->first);
    memset(w, 0, sizeof(*w));
}

char *lbw_jw_take(struct lbw_jw *w, size_t *len)
{
    if (w->err || lbw_buf_terminate(&w->out) < 0) {
        lbw_jw_free(w);
        return NULL;
    }
    *len = w->out.len;
    char *b = (char *)lbw_buf_steal(&w->out);
    lbw_jw_free(w);
    return b;
}

/* Room for n more bytes and the NUL; NULL (and w->err) on failure. */
static char *reserve(struct lbw_jw *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > SIZE_MAX - 1 || lbw_buf_reserve(&w->out, n + 1) < 0) {
        w->err = 1;
        return NULL;
    }
    return (char *)w->out.p + w->out.len;
}

/* Counts n bytes written at reserve()'s pointer. */
static void commit(struct lbw_jw *w, size_t n)
{
    w->out.len += n;
    w->out.p[w->out.len] = 0;
}

static void put(struct lbw_jw *w, const char *s, size_t n)
{
    char *p = reserve(w, n);
    if (!p)
        return;
    memcpy(p, s, n);
    commit(w, n);
}

/* Separator before a value: ", " between elements, nothing after a key. */
static void before_value(struct lbw_jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->first.len == 0)
        return;
    uint8_t *first = &w->first.p[w->first.len - 1];
    if (*first)
        *first = 0;
    else
        put(w, ", ", 2);
}

static void open_(struct lbw_jw *w, char c)
{
    before_value(w);
    put(w, &c, 1);
    if (!w->err && lbw_buf_putc(&w->first, 1) < 0)
        w->err = 1;
}

static void close_(struct lbw_jw *w, char c)
{
    if (w->first.len)
        w->first.len--;
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
    commit(w, o + 2);
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
    commit(w, o);
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
