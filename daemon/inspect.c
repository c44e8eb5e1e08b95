/* inspect.c — see inspect.h. */
#include "inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "frame.h"
#include "json.h"
#include "pickle.h"

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
    char *s = lbw_jw_take(&w, outlen);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *s2 = realloc(s, *outlen + 2);
    if (!s2) {
        free(s);
        return -1;
    }
    s2[(*outlen)++] = '\n';
    s2[*outlen] = 0;
    *out = s2;
    return 0;
}
