/* inspect.c — see inspect.h. */
#include "inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "buf.h"
#include "frame.h"
#include "json.h"
#include "pickle.h"

/* ---- a pickle as readable JSON ------------------------------------------------ */

/* Every value is shown once: a container, an object, or a blob longer than
 * 64 bytes met again is {"$ref": N}, and one met again inside itself is
 * {"$cycle": N}, N counting such values in the order they are first
 * shown. A str longer than 64 bytes shown as a dict's key counts too, and
 * a dict whose keys include one shown before (or twice) takes the
 * {"$dict": [[k, v], ...]} form, where the key can be a reference. So the
 * output is linear in the pickle's size, whatever its sharing; nesting is
 * bounded by the document's max_depth. */

struct tj {
    struct lbw_pk_doc *doc;
    struct lbw_jw *w;
    struct lbw_pk **seen; /* nodes whose mark we set, to reset afterwards */
    size_t nseen, cseen;
    size_t depth;
    char *err;
    size_t errlen;
};

/* Integers beyond LBW_PK_INT_MAX_DIGITS digits, as Python's hex() shows
 * them (linear, unlike decimal): {"$int_hex": "-0x1f..."}. */
static void big_hex(struct lbw_jw *w, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    int neg = n && (p[n - 1] & 0x80);
    uint8_t *mag = malloc(n + 1);
    char *o = malloc(2 * n + 4);
    if (!mag || !o) {
        free(mag);
        free(o);
        w->err = 1;
        return;
    }
    unsigned carry = 1;
    for (size_t i = 0; i < n; i++) { /* magnitude = neg ? ~x + 1 : x */
        unsigned b = neg ? (uint8_t)~p[i] + carry : p[i];
        carry = neg ? b >> 8 : 0;
        mag[i] = (uint8_t)b;
    }
    size_t k = 0, m = n;
    while (m > 1 && mag[m - 1] == 0)
        m--;
    if (neg)
        o[k++] = '-';
    o[k++] = '0';
    o[k++] = 'x';
    for (size_t i = m; i-- > 0;) {
        if (i + 1 < m || mag[i] >> 4)
            o[k++] = hx[mag[i] >> 4];
        o[k++] = hx[mag[i] & 15];
    }
    lbw_jw_obj(w);
    lbw_jw_key(w, "$int_hex");
    lbw_jw_str(w, o, k);
    lbw_jw_obj_end(w);
    free(mag);
    free(o);
}

/* 1 if v was shown already (written as a reference), else gives it an id. */
static int tj_seen(struct tj *t, struct lbw_pk *v)
{
    int shareable = (v->kind >= LBW_PK_TUPLE && v->kind != LBW_PK_GLOBAL) ||
                    ((v->kind == LBW_PK_STR || v->kind == LBW_PK_BYTES ||
                      v->kind == LBW_PK_BYTEARRAY || v->kind == LBW_PK_BIGINT) &&
                     v->u.s.n > 64);
    if (!shareable)
        return 0;
    if (v->mark) {
        lbw_jw_obj(t->w);
        lbw_jw_key(t->w, v->mark & 1 ? "$cycle" : "$ref");
        lbw_jw_u64(t->w, v->mark >> 1);
        lbw_jw_obj_end(t->w);
        return 1;
    }
    if (lbw_grow(&t->seen, &t->cseen, t->nseen + 1, sizeof(*t->seen)) < 0) {
        t->w->err = 1;
        return 1;
    }
    t->seen[t->nseen++] = v;
    v->mark = (uint32_t)t->nseen << 1 | 1; /* id, and "being shown" */
    return 0;
}

/* A long str about to be shown as a dict key: it gets its id (shown, not
 * being shown). */
static void tj_key_seen(struct tj *t, struct lbw_pk *k)
{
    if (k->u.s.n <= 64)
        return;
    if (lbw_grow(&t->seen, &t->cseen, t->nseen + 1, sizeof(*t->seen)) < 0) {
        t->w->err = 1;
        return;
    }
    t->seen[t->nseen++] = k;
    k->mark = (uint32_t)t->nseen << 1;
}

#define KEY_PROBE UINT32_MAX /* a dict's long key, while its keys are looked at */

/* 1 when every key is a str and none longer than 64 bytes was shown
 * before or comes twice: then the dict is a JSON object. */
static int plain_keys(struct lbw_pk *v)
{
    int ok = 1;
    size_t i;
    for (i = 0; i < v->u.seq.n && ok; i += 2) {
        struct lbw_pk *k = v->u.seq.v[i];
        if (k->kind != LBW_PK_STR)
            ok = 0;
        else if (k->u.s.n > 64 && k->mark)
            ok = 0;
        else if (k->u.s.n > 64)
            k->mark = KEY_PROBE;
    }
    for (size_t j = 0; j < i; j += 2)
        if (v->u.seq.v[j]->mark == KEY_PROBE)
            v->u.seq.v[j]->mark = 0;
    return ok;
}

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

static int tj(struct tj *t, struct lbw_pk *v)
{
    struct lbw_jw *w = t->w;
    if (t->depth >= t->doc->lim.max_depth) {
        snprintf(t->err, t->errlen, "pickle: nesting deeper than %zu", t->doc->lim.max_depth);
        return -1;
    }
    if (tj_seen(t, v))
        return 0;
    t->depth++;
    int rc = 0;
    switch (v->kind) {
    case LBW_PK_NONE: lbw_jw_null(w); break;
    case LBW_PK_BOOL: lbw_jw_bool(w, v->u.b); break;
    case LBW_PK_INT: lbw_jw_i64(w, v->u.i); break;
    case LBW_PK_BIGINT: {
        char txt[LBW_PK_INT_TEXT_CAP];
        int tl = lbw_pk_bigint_text(v->u.s.p, v->u.s.n, txt, sizeof(txt));
        if (tl >= 0)
            lbw_jw_raw(w, txt, (size_t)tl);
        else
            big_hex(w, v->u.s.p, v->u.s.n);
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
        if (plain_keys(v)) {
            lbw_jw_obj(w);
            for (size_t i = 0; i + 1 < v->u.seq.n && !rc; i += 2) {
                struct lbw_pk *k = v->u.seq.v[i];
                char *ks = strndup((const char *)k->u.s.p, k->u.s.n);
                lbw_jw_key(w, ks ? ks : "");
                free(ks);
                tj_key_seen(t, k);
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
    v->mark &= ~1u;
    return rc;
}

int lbw_pk_to_json(struct lbw_pk_doc *doc, struct lbw_pk *v, struct lbw_jw *w, char *err,
                   size_t errlen)
{
    struct tj t = {.doc = doc, .w = w, .err = err, .errlen = errlen};
    int rc = tj(&t, v);
    for (size_t i = 0; i < t.nseen; i++)
        t.seen[i]->mark = 0;
    free(t.seen);
    if (rc == 0 && w->err) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    return rc;
}

static int pickle_json(const uint8_t *p, size_t n, struct lbw_jw *w, char *err, size_t errlen)
{
    struct lbw_pk_doc d;
    int rc = lbw_pk_decode(&d, p, n, NULL, err, errlen);
    if (rc == 0)
        rc = lbw_pk_to_json(&d, d.root, w, err, errlen);
    lbw_pk_doc_free(&d);
    return rc;
}

/* A JSON command or reply body: the body itself, plus every string
 * argument that holds a pickle (task, worker_res) decoded. */
static int body_json(const char *body, size_t n, struct lbw_jw *w, char *err, size_t errlen)
{
    struct lbw_json j;
    if (lbw_json_parse(&j, body, n, err, errlen) < 0)
        return -1;
    lbw_jw_key(w, "body");
    lbw_jw_raw(w, body, n);
    int args = lbw_json_get(&j, lbw_json_get(&j, 0, "command"), "arguments");
    int holder = args >= 0 ? args : 0;
    static const char *const keys[] = {"task", "worker_res"};
    int rc = 0;
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        int t = lbw_json_get(&j, holder, keys[i]);
        uint8_t *pk;
        size_t pl;
        if (t < 0 || lbw_json_latin1(&j, t, &pk, &pl) < 0)
            continue;
        if (pl == 0 || pk[0] != 0x80) {
            free(pk);
            continue;
        }
        char key[32];
        snprintf(key, sizeof(key), "%s_pickle", keys[i]);
        lbw_jw_key(w, key);
        rc = pickle_json(pk, pl, w, err, errlen);
        free(pk);
    }
    lbw_json_free(&j);
    return rc;
}

static void uuid_text(const uint8_t *u, char *o)
{
    static const char hx[] = "0123456789abcdef";
    int k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            o[k++] = '-';
        o[k++] = hx[u[i] >> 4];
        o[k++] = hx[u[i] & 15];
    }
    o[k] = 0;
}

static int frames_json(const uint8_t *buf, size_t n, int preamble, struct lbw_jw *w, char *err,
                       size_t errlen)
{
    struct lbw_frame_dec d;
    lbw_frame_dec_init(&d, NULL, preamble);
    size_t off = 0;
    int rc = 0, count = 0;
    lbw_jw_key(w, "frames");
    lbw_jw_arr(w);
    size_t first_incomplete = 0; /* bytes before the frame that does not end */
    while (off < n && rc == 0) {
        first_incomplete = off;
        struct lbw_frame f;
        int done;
        ssize_t u = lbw_frame_dec_feed(&d, buf + off, n - off, &f, &done);
        if (u < 0) {
            snprintf(err, errlen, "frame at offset %zu: %s", off, lbw_frame_strerror((int)u));
            rc = -1;
            break;
        }
        off += (size_t)u;
        if (!done)
            break;
        lbw_jw_obj(w);
        lbw_jw_key(w, "type");
        lbw_jw_cstr(w, f.type == LBW_MSG_DEFAULT ? "DEFAULT"
                       : f.type == LBW_MSG_SYSTEM_PING ? "SYSTEM_PING" : "DELIVERY_ERROR");
        lbw_jw_key(w, "src");
        lbw_jw_str(w, f.src, f.src_len);
        lbw_jw_key(w, "dst");
        lbw_jw_str(w, f.dst, f.dst_len);
        lbw_jw_key(w, "session");
        if (f.has_session) {
            char us[40];
            uuid_text(f.session, us);
            lbw_jw_cstr(w, us);
        } else {
            lbw_jw_null(w);
        }
        if (f.body_len)
            rc = body_json((const char *)f.body, f.body_len, w, err, errlen);
        lbw_jw_obj_end(w);
        lbw_frame_free(&f);
        count++;
    }
    lbw_jw_arr_end(w);
    if (rc == 0 && lbw_frame_dec_preamble(&d)) {
        lbw_jw_key(w, "preamble");
        lbw_jw_cstr(w, lbw_frame_dec_preamble(&d));
    }
    if (rc == 0 && (count == 0 || off != n)) {
        snprintf(err, errlen, "the input ends inside frame %d: only %zu of its %zu bytes make "
                 "whole frames (a truncated capture?)", count + 1, first_incomplete, n);
        rc = -1;
    }
    lbw_frame_dec_reset(&d);
    return rc;
}

int lbw_inspect(const uint8_t *buf, size_t n, char **out, size_t *outlen, char *err,
                size_t errlen)
{
    struct lbw_jw w;
    lbw_jw_init(&w);
    lbw_jw_obj(&w);
    int rc;
    if (n > 1 && buf[0] == 0x80) {
        lbw_jw_key(&w, "pickle");
        rc = pickle_json(buf, n, &w, err, errlen);
    } else if (n > 0 && (buf[0] == '{' || buf[0] == '[' || buf[0] == ' ' || buf[0] == '\n')) {
        rc = body_json((const char *)buf, n, &w, err, errlen);
    } else if (n >= 8) {
        /* A connection starts with Q len + the sender's host:port; a frame
         * with Q size, then Q src_len (zero bytes: never an address). */
        uint64_t first = 0;
        for (int i = 0; i < 8; i++)
            first = first << 8 | buf[i];
        int preamble = first > 0 && first <= 256 && 8 + first <= n &&
                       lbw_addr_is_direct((const char *)buf + 8, (size_t)first);
        if (!preamble && first > n - 8) {
            /* not a frame either: say what the input looked like */
            char shown[40];
            size_t k = 0;
            for (size_t i = 0; i < n && i < 12; i++)
                k += (size_t)snprintf(shown + k, sizeof(shown) - k, "%02x%s", buf[i],
                                      i + 1 < n && i < 11 ? " " : "");
            snprintf(err, errlen, "input is neither a pickle (first byte 0x80), a JSON body "
                     "('{' or '[') nor Lifeblood frames: read as a frame, its first 8 bytes "
                     "announce %llu bytes but only %zu follow (input starts with %s%s)",
                     (unsigned long long)first, n - 8, shown, n > 12 ? " ..." : "");
            rc = -1;
        } else {
            rc = frames_json(buf, n, preamble, &w, err, errlen);
        }
    } else {
        snprintf(err, errlen, "input is neither a pickle, a JSON body nor a frame");
        rc = -1;
    }
    lbw_jw_obj_end(&w);
    if (rc < 0) {
        lbw_jw_free(&w);
        return -1;
    }
    if (!w.err && lbw_buf_putc(&w.out, '\n') < 0)
        w.err = 1;
    char *s = lbw_jw_take(&w, outlen);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = s;
    return 0;
}
