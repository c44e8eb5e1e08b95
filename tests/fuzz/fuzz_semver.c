/* fuzz_semver.c — the version and SimpleSpec parsers (the Standard
 * resolver's configuration and job arguments) on arbitrary text: the input
 * is "VERSION\nSPEC". A version that parses equals itself, is matched by
 * itself as a spec and by "==" itself, not by "!=" itself; any spec is
 * matched against it and against fixed versions with a result in -1..1,
 * the same twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "semver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int match3(const char *spec, const struct lbw_semver *v)
{
    int r = lbw_semver_match(spec, v);
    if (r < -1 || r > 1 || r != lbw_semver_match(spec, v))
        abort();
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char buf[1025];
    memcpy(buf, data, size);
    buf[size] = 0;
    char *spec = strchr(buf, '\n');
    if (spec)
        *spec++ = 0;
    else
        spec = buf;
    static const char *fixed[] = {"0.0.0", "1.0.0", "1.0.0-rc.1", "1.2.3", "2.0.0-alpha",
                                  "20.5.1"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        struct lbw_semver f;
        if (lbw_semver_parse(fixed[i], &f) < 0)
            abort();
        match3(spec, &f);
    }
    struct lbw_semver v, w;
    if (lbw_semver_parse(buf, &v) < 0)
        return 0;
    if (v.major < 0 || v.minor < 0 || v.patch < 0 || strlen(v.pre) >= sizeof(v.pre))
        abort();
    if (lbw_semver_parse(buf, &w) < 0 || lbw_semver_cmp(&v, &w) != 0)
        abort();
    match3(spec, &v);
    if (strlen(buf) < 100) {
        char s[128];
        if (match3(buf, &v) != 1)
            abort();
        strcpy(s, "==");
        strcat(s, buf);
        if (match3(s, &v) != 1)
            abort();
        strcpy(s, "!=");
        strcat(s, buf);
        if (match3(s, &v) != 0)
            abort();
        strcpy(s, ">=");
        strcat(s, buf);
        if (match3(s, &v) != 1)
            abort();
    }
    return 0;
}
