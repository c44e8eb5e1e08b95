/* semver.c — semantic versions and SimpleSpec matching (see semver.h). */
#include "semver.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number without leading zeros (except "0"). */
static const char *num(const char *s, long *out)
{
    if (!isdigit((unsigned char)*s))
        return NULL;
    if (s[0] == '0' && isdigit((unsigned char)s[1]))
        return NULL;
    long v = 0;
    while (isdigit((unsigned char)*s)) {
        if (v > 100000000)
            return NULL;
        v = v * 10 + (*s++ - '0');
    }
    *out = v;
    return s;
}

/* Parses a possibly partial version: parts missing or '*' give -1. */
static int parse_partial(const char *s, struct lbw_semver *v, int *nparts)
{
    memset(v, 0, sizeof(*v));
    long *f[3] = {&v->major, &v->minor, &v->patch};
    *f[0] = *f[1] = *f[2] = -1;
    int n = 0;
    for (; n < 3; n++) {
        if (*s == '*' || *s == 'x' || *s == 'X') {
            s++;
        } else {
            s = num(s, f[n]);
            if (!s)
                return -1;
        }
        if (*s != '.')
            break;
        s++;
    }
    *nparts = n + 1 > 3 ? 3 : n + 1;
    if (*s == '-') {
        const char *e = s + 1;
        while (*e && *e != '+')
            e++;
        size_t l = (size_t)(e - s - 1);
        if (l == 0 || l >= sizeof(v->pre))
            return -1;
        memcpy(v->pre, s + 1, l);
        v->pre[l] = 0;
        for (const char *p = v->pre; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
                return -1;
        s = e;
    }
    if (*s == '+') {
        s++;
        if (!*s)
            return -1;
        while (*s && (isalnum((unsigned char)*s) || *s == '-' || *s == '.'))
            s++;
    }
    return *s ? -1 : 0;
}

int lbw_semver_parse(const char *s, struct lbw_semver *v)
{
    int n;
    if (parse_partial(s, v, &n) < 0 || n != 3 || v->major < 0 || v->minor < 0 || v->patch < 0)
        return -1;
    return 0;
}

static int cmp_pre(const char *a, const char *b)
{
    if (!*a || !*b)
        return !*a && !*b ? 0 : (!*a ? 1 : -1); /* a release sorts after its pre-releases */
    while (*a && *b) {
        const char *ae = strchr(a, '.'), *be = strchr(b, '.');
        size_t al = ae ? (size_t)(ae - a) : strlen(a), bl = be ? (size_t)(be - b) : strlen(b);
        int an = 1, bn = 1;
        for (size_t i = 0; i < al; i++)
            an &= isdigit((unsigned char)a[i]) != 0;
        for (size_t i = 0; i < bl; i++)
            bn &= isdigit((unsigned char)b[i]) != 0;
        int c;
        if (an && bn)
            c = al != bl ? (al < bl ? -1 : 1) : strncmp(a, b, al);
        else if (an != bn)
            c = an ? -1 : 1; /* numeric identifiers sort first */
        else {
            c = strncmp(a, b, al < bl ? al : bl);
            if (!c && al != bl)
                c = al < bl ? -1 : 1;
        }
        if (c)
            return c < 0 ? -1 : 1;
        a += al + (ae != NULL);
        b += bl + (be != NULL);
        if (!ae || !be)
            return !ae && !be ? 0 : (!ae ? -1 : 1);
    }
    return 0;
}

int lbw_semver_cmp(const struct lbw_semver *a, const struct lbw_semver *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return cmp_pre(a->pre, b->pre);
}

/* One clause as a range [lo, hi) plus != handling. */
static int clause(const char *c, const struct lbw_semver *v, int *names_pre)
{
    while (*c == ' ')
        c++;
    char op[3] = "";
    const char *ops[] = {"==", "!=", "<=", ">=", "~=", "<", ">", "~", "^", "=", NULL};
    for (int i = 0; ops[i]; i++) {
        size_t l = strlen(ops[i]);
        if (!strncmp(c, ops[i], l)) {
            memcpy(op, ops[i], l + 1);
            c += l;
            break;
        }
    }
    while (*c == ' ')
        c++;
    char buf[128];
    size_t l = strlen(c);
    while (l && c[l - 1] == ' ')
        l--;
    if (l == 0 || l >= sizeof(buf))
        return -1;
    memcpy(buf, c, l);
    buf[l] = 0;
    if (!strcmp(buf, "*") && (!op[0] || !strcmp(op, "==")))
        return 1;
    struct lbw_semver s;
    int n;
    if (parse_partial(buf, &s, &n) < 0 || s.major < 0)
        return -1;
    if (s.pre[0] && s.major == v->major && s.minor == v->minor && s.patch == v->patch)
        *names_pre = 1;
    /* the partial version's range */
    int full = s.minor >= 0 && s.patch >= 0;
    struct lbw_semver lo = s, hi = s;
    if (lo.minor < 0)
        lo.minor = 0;
    if (lo.patch < 0)
        lo.patch = 0;
    hi.pre[0] = 0;
    if (s.minor < 0) {
        hi.major = s.major + 1;
        hi.minor = hi.patch = 0;
    } else if (s.patch < 0) {
        hi.minor = s.minor + 1;
        hi.patch = 0;
    }
    int c_lo = lbw_semver_cmp(v, &lo);
    if (!op[0] || !strcmp(op, "==") || !strcmp(op, "=")) {
        if (full)
            return lbw_semver_cmp(v, &s) == 0;
        return c_lo >= 0 && lbw_semver_cmp(v, &hi) < 0 && !v->pre[0];
    }
    if (!strcmp(op, "!=")) {
        if (full)
            return lbw_semver_cmp(v, &s) != 0;
        return !(c_lo >= 0 && lbw_semver_cmp(v, &hi) < 0);
    }
    if (!strcmp(op, "<"))
        return c_lo < 0;
    if (!strcmp(op, ">="))
        return c_lo >= 0;
    if (!strcmp(op, "<="))
        return full ? lbw_semver_cmp(v, &s) <= 0 : lbw_semver_cmp(v, &hi) < 0;
    if (!strcmp(op, ">"))
        return full ? lbw_semver_cmp(v, &s) > 0 : lbw_semver_cmp(v, &hi) >= 0;
    struct lbw_semver top = lo;
    top.pre[0] = 0;
    if (!strcmp(op, "~=")) {
        /* ~=1.2.3 -> <1.3.0; ~=1.2 -> <2.0.0; ~=1 -> <2.0.0 */
        if (s.patch >= 0) {
            top.minor++;
            top.patch = 0;
        } else {
            top.major++;
            top.minor = top.patch = 0;
        }
    } else if (!strcmp(op, "~")) {
        /* ~1.2.3, ~1.2 -> <1.3.0; ~1 -> <2.0.0 */
        if (s.minor >= 0) {
            top.minor++;
            top.patch = 0;
        } else {
            top.major++;
            top.minor = top.patch = 0;
        }
    } else { /* ^: up to the next change of the first non-zero part */
        if (lo.major > 0 || s.minor < 0) {
            top.major++;
            top.minor = top.patch = 0;
        } else if (lo.minor > 0 || s.patch < 0) {
            top.minor++;
            top.patch = 0;
        } else {
            top.patch++;
        }
    }
    return c_lo >= 0 && lbw_semver_cmp(v, &top) < 0;
}

int lbw_semver_match(const char *spec, const struct lbw_semver *v)
{
    char buf[512];
    if (strlen(spec) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", spec);
    int ok = 1, names_pre = 0;
    char *save = NULL;
    int any = 0;
    for (char *c = strtok_r(buf, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        int r = clause(c, v, &names_pre);
        if (r < 0)
            return -1;
        ok &= r;
        any = 1;
    }
    if (!any)
        return -1;
    if (v->pre[0] && !names_pre)
        return 0;
    return ok;
}
