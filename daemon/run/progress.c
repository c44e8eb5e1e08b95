/* progress.c — see progress.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "progress.h"

#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

struct lbw_progress_re {
    pcre2_code *code;
    pcre2_match_data *md;
    int is_bytes;
    int active;
    uint32_t ngroups;
    int cur_idx, tot_idx;   /* named groups, -1 if absent */
    int named;              /* the pattern has named groups */
};

struct lbw_progress_re *lbw_progress_compile(const char *pattern, size_t len, int is_bytes,
                                             int64_t flags, char *err, size_t errlen)
{
    uint32_t opts = 0;
    if (flags & 2)
        opts |= PCRE2_CASELESS;
    if (flags & 8)
        opts |= PCRE2_MULTILINE;
    if (flags & 16)
        opts |= PCRE2_DOTALL;
    if (flags & 64)
        opts |= PCRE2_EXTENDED;
    if (!is_bytes) {
        opts |= PCRE2_UTF;
        if (!(flags & 256))
            opts |= PCRE2_UCP; /* \d \w \s are Unicode for str patterns */
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &ec, &eo, NULL);
    if (!code) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errlen, "progress regex does not compile at offset %zu: %s", (size_t)eo,
                 (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    struct lbw_progress_re *re = calloc(1, sizeof(*re));
    if (!re) {
        pcre2_code_free(code);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    re->code = code;
    re->md = pcre2_match_data_create_from_pattern(code, NULL);
    re->is_bytes = is_bytes;
    re->active = 1;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &re->ngroups);
    uint32_t nnames = 0;
    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &nnames);
    re->named = nnames > 0;
    re->cur_idx = pcre2_substring_number_from_name(code, (PCRE2_SPTR) "current");
    re->tot_idx = pcre2_substring_number_from_name(code, (PCRE2_SPTR) "total");
    if (re->cur_idx < 0)
        re->cur_idx = -1;
    if (re->tot_idx < 0)
        re->tot_idx = -1;
    return re;
}

void lbw_progress_free(struct lbw_progress_re *re)
{
    if (!re)
        return;
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    free(re);
}

int lbw_progress_active(const struct lbw_progress_re *re) { return re && re->active; }

/* The first code point of each run of ten Unicode decimal digits (category
 * Nd, Unicode 14: what Python's float() and str regexes' \d accept) beyond
 * ASCII. */
static const uint32_t unicode_zeros[] = {
    0x660,   0x6F0,   0x7C0,   0x966,   0x9E6,   0xA66,   0xAE6,   0xB66,   0xBE6,   0xC66,
    0xCE6,   0xD66,   0xDE6,   0xE50,   0xED0,   0xF20,   0x1040,  0x1090,  0x17E0,  0x1810,
    0x1946,  0x19D0,  0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,
    0xA900,  0xA9D0,  0xA9F0,  0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x10D30, 0x11066, 0x110F0,
    0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950,
    0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC,
    0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
};

/* The value 0..9 of a non-ASCII decimal digit, or -1. */
static int unicode_digit(uint32_t cp)
{
    for (size_t i = 0; i < sizeof(unicode_zeros) / sizeof(unicode_zeros[0]); i++)
        if (cp >= unicode_zeros[i] && cp < unicode_zeros[i] + 10)
            return (int)(cp - unicode_zeros[i]);
    return -1;
}

static int py_float_ascii(const char *s, size_t n, double *out);

/* Python's float() also reads non-ASCII decimal digits ("٣" is 3.0): they
 * are turned into ASCII first; any other non-ASCII character is an error. */
int lbw_py_float(const char *s, size_t n, double *out)
{
    size_t i = 0;
    while (i < n && !((uint8_t)s[i] & 0x80))
        i++;
    if (i == n)
        return py_float_ascii(s, n, out);
    if (n > 4 * 200)
        return -1;
    char b[256];
    size_t k = 0;
    for (i = 0; i < n && k < sizeof(b); ) {
        uint32_t cp;
        size_t l = lbw_utf8_decode((const uint8_t *)s + i, n - i, &cp, 0);
        if (l == 0)
            return -1;
        if (l == 1) {
            b[k++] = s[i];
        } else {
            int d = unicode_digit(cp);
            if (d < 0)
                return -1;
            b[k++] = (char)('0' + d);
        }
        i += l;
    }
    if (i < n)
        return -1;
    return py_float_ascii(b, k, out);
}

static int py_float_ascii(const char *s, size_t n, double *out)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' ||
                 s[n - 1] == '\f' || s[n - 1] == '\v'))
        n--;
    if (n == 0 || n > 200)
        return -1;
    char b[256];
    size_t k = 0;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        b[k++] = s[0];
        i = 1;
    }
    const char *rest = s + i;
    size_t rl = n - i;
    if ((rl == 3 && !strncasecmp(rest, "inf", 3)) || (rl == 8 && !strncasecmp(rest, "infinity", 8))) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (rl == 3 && !strncasecmp(rest, "nan", 3)) {
        *out = NAN;
        return 0;
    }
    int digits = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_') { /* only between digits */
            if (i == 0 || i + 1 >= n || !(s[i - 1] >= '0' && s[i - 1] <= '9') ||
                !(s[i + 1] >= '0' && s[i + 1] <= '9'))
                return -1;
            continue;
        }
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return -1;
        digits += c >= '0' && c <= '9';
        b[k++] = c;
    }
    b[k] = 0;
    if (!digits)
        return -1;
    char *end;
    double v = strtod(b, &end);
    if (*end || end == b)
        return -1;
    *out = v;
    return 0;
}

static int group(struct lbw_progress_re *re, const uint8_t *line, int idx, double *v)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
    if (ov[2 * idx] == PCRE2_UNSET)
        return -1;
    return lbw_py_float((const char *)line + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx], v);
}

int lbw_progress_line(struct lbw_progress_re *re, const uint8_t *line, size_t len, double *value)
{
    if (!re || !re->active)
        return 0;
    /* A str pattern matches decoded text: a line that is not UTF-8 cannot
     * be what it describes. */
    if (!re->is_bytes && !lbw_utf8_valid(line, len))
        return 0;
    int rc = pcre2_match(re->code, line, len, 0, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, re->md,
                         NULL);
    if (rc < 0)
        return 0;
    if (re->ngroups == 0) {
        re->active = 0;
        return -1;
    }
    double a, b;
    if (re->named) {
        if (re->cur_idx < 0 || re->tot_idx < 0)
            return 0;
        if (group(re, line, re->cur_idx, &a) < 0 || group(re, line, re->tot_idx, &b) < 0 || b == 0)
            return 0;
        *value = a / b * 100.0;
        return 1;
    }
    if (re->ngroups == 1) {
        if (group(re, line, 1, &a) < 0)
            return 0;
        *value = a;
        return 1;
    }
    if (group(re, line, 1, &a) < 0 || group(re, line, 2, &b) < 0 || b == 0)
        return 0;
    *value = a / b * 100.0;
    return 1;
}
