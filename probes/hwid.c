/* hwid.c — the host id exactly as upstream computes it (docs/PROTOCOL.md 10.1):
 * /etc/machine-id, else /var/lib/dbus/machine-id, parsed whole as hex;
 * else the first non-zero MAC of the interfaces sorted by name; low 63
 * bits. All workers on a host, ours and upstream's, share it. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hex.h"
#include "probe.h"

#define MASK63 0x7FFFFFFFFFFFFFFFull

/* int(text.strip(), 16) & MASK63; -1 if not hexadecimal. */
static int parse_hex(const char *s, uint64_t *out)
{
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    if (n == 0)
        return -1;
    uint64_t v = 0; /* high bits fall off: only the low 64 are kept */
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_' && digits && i + 1 < n && s[i + 1] != '_')
            continue;
        int h = lbw_hexval((unsigned char)s[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | (uint64_t)h;
        digits++;
    }
    *out = v & MASK63;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int lbw_probe_hwid(const struct lbw_probe_opts *o, uint64_t *hwid, char *src, size_t srclen)
{
    const char *root = o->root ? o->root : "/";
    static const char *const files[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};
    char buf[256];
    for (size_t i = 0; i < 2; i++) {
        if (lbw_root_read(root, files[i], buf, sizeof(buf)) > 0 && parse_hex(buf, hwid) == 0) {
            snprintf(src, srclen, "%s", files[i]);
            return 0;
        }
    }
    /* first non-zero MAC, interfaces sorted by name */
    char path[4096];
    snprintf(path, sizeof(path), "%s/sys/class/net", strcmp(root, "/") ? root : "");
    DIR *d = opendir(path);
    char *names[256];
    size_t nn = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && nn < 256)
            if (e->d_name[0] != '.')
                names[nn++] = strdup(e->d_name);
        closedir(d);
    }
    qsort(names, nn, sizeof(names[0]), cmp_str);
    int found = 0;
    for (size_t i = 0; i < nn; i++) {
        char f[512];
        snprintf(f, sizeof(f), "/sys/class/net/%s/address", names[i]);
        uint64_t mac = 0;
        int digits = 0;
        if (!found && lbw_root_read(root, f, buf, sizeof(buf)) > 0) {
            for (char *p = buf; *p && *p != '\n'; p++) {
                int h = lbw_hexval((unsigned char)*p);
                if (h >= 0) {
                    mac = mac << 4 | (uint64_t)h;
                    digits++;
                }
            }
            if (digits == 12 && mac != 0) {
                *hwid = mac & MASK63;
                snprintf(src, srclen, "MAC address of %s (no machine-id)", names[i]);
                found = 1;
            }
        }
        free(names[i]);
    }
    if (found)
        return 0;
    /* as uuid.getnode() does last: a random 48-bit number, multicast bit set */
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        return -1;
    *hwid = ((r & 0xFFFFFFFFFFFFull) | 0x010000000000ull) & MASK63;
    snprintf(src, srclen, "random (no machine-id and no MAC address; not stable)");
    return 0;
}
