/* jstream.c — JSON bodies produced piece by piece (see jstream.h). */
#include "jstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

#define IN_CHUNK (64u * 1024u)

struct piece {
    char *text;   /* literal, or NULL for a file */
    size_t tlen;
    int fd;
    uint64_t size; /* file bytes taken (its size when the length was computed) */
    uint64_t len;  /* produced length */
};

struct lbw_jstream {
    struct piece *p;
    size_t n, cap;
    int have_len;
    uint64_t total;
    /* production state */
    uint64_t pos;     /* bytes produced so far */
    size_t cur;       /* current piece */
    uint64_t in_off;  /* within the current piece: text offset / file read offset */
    int file_done;    /* the file's final escape ran */
    struct lbw_jesc esc;
    uint8_t *in;
    char *out;        /* escaped bytes not yet handed out */
    size_t out_len, out_pos;
};

struct lbw_jstream *lbw_jstream_new(void) { return calloc(1, sizeof(struct lbw_jstream)); }

void lbw_jstream_free(struct lbw_jstream *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->p[i].text);
        if (s->p[i].fd >= 0)
            close(s->p[i].fd);
    }
    free(s->p);
    free(s->in);
    free(s->out);
    free(s);
}

static struct piece *add(struct lbw_jstream *s)
{
    if (lbw_grow(&s->p, &s->cap, s->n + 1, sizeof(*s->p)) < 0)
        return NULL;
    struct piece *p = &s->p[s->n++];
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    s->have_len = 0;
    return p;
}

int lbw_jstream_text(struct lbw_jstream *s, const char *text, size_t len)
{
    char *t = malloc(len + 1);
    if (!t)
        return -ENOMEM;
    memcpy(t, text, len);
    t[len] = 0;
    struct piece *p = add(s);
    if (!p) {
        free(t);
        return -ENOMEM;
    }
    p->text = t;
    p->tlen = p->len = len;
    return 0;
}

int lbw_jstream_file(struct lbw_jstream *s, int fd)
{
    struct piece *p = add(s);
    if (!p) {
        if (fd >= 0)
            close(fd);
        return -ENOMEM;
    }
    p->fd = fd;
    return 0;
}

/* Escaped length of the first `size` bytes of fd. */
static int count_file(struct lbw_jstream *s, struct piece *p)
{
    struct stat st;
    if (fstat(p->fd, &st) < 0)
        return -errno;
    p->size = (uint64_t)st.st_size;
    if (!s->in && !(s->in = malloc(IN_CHUNK)))
        return -ENOMEM;
    struct lbw_jesc e = {0};
    uint64_t off = 0, t = 0;
    while (off < p->size) {
        size_t want = p->size - off < IN_CHUNK ? (size_t)(p->size - off) : IN_CHUNK;
        ssize_t r = pread(p->fd, s->in, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0) {
            p->size = off; /* shrank meanwhile */
            break;
        }
        t += lbw_jesc_feed(&e, s->in, (size_t)r, 0, NULL);
        off += (uint64_t)r;
    }
    t += lbw_jesc_feed(&e, NULL, 0, 1, NULL);
    p->len = t;
    return 0;
}

int lbw_jstream_len(struct lbw_jstream *s, uint64_t *len)
{
    if (!s->have_len) {
        uint64_t t = 0;
        for (size_t i = 0; i < s->n; i++) {
            struct piece *p = &s->p[i];
            if (!p->text) {
                p->len = 0;
                if (p->fd >= 0) {
                    int rc = count_file(s, p);
                    if (rc < 0)
                        return rc;
                }
            }
            t += p->len;
        }
        s->total = t;
        s->have_len = 1;
    }
    *len = s->total;
    return 0;
}

static void rewind_all(struct lbw_jstream *s)
{
    s->pos = 0;
    s->cur = 0;
    s->in_off = 0;
    s->file_done = 0;
    memset(&s->esc, 0, sizeof(s->esc));
    s->out_len = s->out_pos = 0;
}

ssize_t lbw_jstream_fill(void *ctx, uint64_t off, uint8_t *buf, size_t cap)
{
    struct lbw_jstream *s = ctx;
    if (!s->have_len)
        return -EINVAL;
    if (off == 0)
        rewind_all(s);
    if (off != s->pos)
        return -EINVAL;
    size_t got = 0;
    while (got < cap && s->cur < s->n) {
        struct piece *p = &s->p[s->cur];
        if (p->text) {
            size_t k = p->tlen - s->in_off;
            if (k > cap - got)
                k = cap - got;
            memcpy(buf + got, p->text + s->in_off, k);
            got += k;
            s->in_off += k;
            if (s->in_off == p->tlen) {
                s->cur++;
                s->in_off = 0;
            }
            continue;
        }
        /* a file: hand out escaped bytes, refilling from the file */
        if (s->out_pos < s->out_len) {
            size_t k = s->out_len - s->out_pos;
            if (k > cap - got)
                k = cap - got;
            memcpy(buf + got, s->out + s->out_pos, k);
            got += k;
            s->out_pos += k;
            continue;
        }
        if (s->file_done || p->fd < 0) {
            s->cur++;
            s->in_off = 0;
            s->file_done = 0;
            memset(&s->esc, 0, sizeof(s->esc));
            continue;
        }
        if (!s->in && !(s->in = malloc(IN_CHUNK)))
            return -ENOMEM;
        if (!s->out && !(s->out = malloc(LBW_JESC_OUT_MAX(IN_CHUNK))))
            return -ENOMEM;
        size_t want = p->size - s->in_off < IN_CHUNK ? (size_t)(p->size - s->in_off)
                                                     : IN_CHUNK;
        ssize_t r = want ? pread(p->fd, s->in, want, (off_t)s->in_off) : 0;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        s->in_off += (uint64_t)r;
        s->out_len = lbw_jesc_feed(&s->esc, s->in, (size_t)r, r == 0, s->out);
        s->out_pos = 0;
        if (r == 0)
            s->file_done = 1;
    }
    s->pos += got;
    if (got == 0 && s->pos < s->total)
        return -EIO; /* a file shrank after its length was taken */
    return (ssize_t)got;
}
