/* fixture.c — see fixture.h. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int fx_vwrite(const char *root, const char *path, const char *fmt, va_list ap)
{
    char full[1024];
    size_t rl = strlen(root);
    if (snprintf(full, sizeof(full), "%s%s", root, path) >= (int)sizeof(full))
        return -1;
    for (char *p = full + rl + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(full, 0755);
            *p = '/';
        }
    FILE *f = fopen(full, "w");
    if (!f)
        return -1;
    vfprintf(f, fmt, ap);
    return fclose(f) == 0 ? 0 : -1;
}

uint8_t *fx_read(const char *rel, size_t *len)
{
    const char *dir = getenv("LBW_FIXTURES");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/fixtures", rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fixture missing: %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

int fx_json(const char *rel, struct lbw_json *j, char **text)
{
    size_t n;
    *text = (char *)fx_read(rel, &n);
    if (!*text)
        return -1;
    char err[256];
    if (lbw_json_parse(j, *text, n, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", rel, err);
        free(*text);
        return -1;
    }
    return 0;
}

int fx_uuid(const char *s, uint8_t out[16])
{
    int k = 0;
    for (const char *p = s; *p && k < 32; p++) {
        if (*p == '-')
            continue;
        unsigned v;
        if (sscanf(p, "%1x", &v) != 1)
            return -1;
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
    }
    return k == 32 ? 0 : -1;
}
