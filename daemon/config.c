/* config.c — see config.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static const char default_worker[] =
    "# lifeblood-worker configuration (the same keys as Lifeblood's worker).\n"
    "# Files in config.d/*.toml next to this one are merged over it in name order.\n"
    "\n"
    "[worker]\n"
    "# Find the scheduler by its UDP broadcast. When false, scheduler_address is used.\n"
    "listen_to_broadcast = true\n"
    "# scheduler_address = \"192.168.0.2:1386\"\n"
    "# Where invocation logs go (default: the logs directory next to this file).\n"
    "# logpath = \"/var/log/lifeblood-worker\"\n"
    "\n"
    "[default_env_wrapper]\n"
    "# The environment resolver for jobs that do not name one, and its arguments.\n"
    "# name = \"StandardEnvironmentResolver\"\n"
    "# arguments = { }\n"
    "\n"
    "[resources]\n"
    "# What this host offers. Detected when not set; set a value to override.\n"
    "# cpu_count = 32\n"
    "# cpu_mem = \"128G\"\n"
    "# gpu_count = 1\n"
    "# gpu_mem = \"8G\"\n";

const char *lbw_config_default_worker_text(void) { return default_worker; }

int lbw_config_dir(const char *comp, char *out, size_t cap)
{
    const char *loc = getenv("LIFEBLOOD_CONFIG_LOCATION");
    const char *home = getenv("HOME");
    int n;
    if (loc && *loc) {
        if (loc[0] == '~' && (loc[1] == '/' || loc[1] == 0)) {
            if (!home)
                return -1;
            n = snprintf(out, cap, "%s%s/%s", home, loc + 1, comp);
        } else {
            n = snprintf(out, cap, "%s/%s", loc, comp);
        }
    } else {
        if (!home || !*home)
            return -1;
        n = snprintf(out, cap, "%s/lifeblood/%s", home, comp);
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static struct lbw_toml *load_file(const char *path, int *missing)
{
    *missing = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            *missing = 1;
        else
            LBW_WARN("config", "cannot read %s: %s; skipping it", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
        LBW_WARN("config", "%s is not a regular file of at most 16 MiB; skipping it", path);
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf)
        return NULL;
    char err[300];
    struct lbw_toml *t = lbw_toml_parse(buf, got, err, sizeof(err));
    free(buf);
    if (!t)
        LBW_WARN("config", "%s: %s; skipping this file", path, err);
    return t;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct lbw_toml *lbw_config_load_dir(const char *dir)
{
    char err[200];
    struct lbw_toml *cfg = lbw_toml_parse("", 0, err, sizeof(err));
    if (!cfg)
        return NULL;
    char path[PATH_MAX];
    int missing;
    snprintf(path, sizeof(path), "%s/config.toml", dir);
    struct lbw_toml *t = load_file(path, &missing);
    if (t)
        lbw_toml_merge(cfg, t);
    snprintf(path, sizeof(path), "%s/config.d", dir);
    DIR *d = opendir(path);
    if (!d)
        return cfg;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".toml") != 0 || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn)
                break;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char fp[PATH_MAX];
        snprintf(fp, sizeof(fp), "%s/config.d/%s", dir, names[i]);
        t = load_file(fp, &missing);
        if (t)
            lbw_toml_merge(cfg, t);
        free(names[i]);
    }
    free(names);
    return cfg;
}

struct lbw_toml *lbw_config_load(const char *comp)
{
    char dir[PATH_MAX];
    if (lbw_config_dir(comp, dir, sizeof(dir)) < 0) {
        LBW_WARN("config", "neither LIFEBLOOD_CONFIG_LOCATION nor HOME is set: using defaults");
        char err[64];
        return lbw_toml_parse("", 0, err, sizeof(err));
    }
    return lbw_config_load_dir(dir);
}

int lbw_config_override(struct lbw_toml *cfg, const char *a, char *err, size_t errlen)
{
    const char *eq = strchr(a, '=');
    if (!eq || eq == a) {
        snprintf(err, errlen, "override '%s' is not key=value", a);
        return -1;
    }
    char key[256];
    size_t kl = (size_t)(eq - a);
    if (kl >= sizeof(key)) {
        snprintf(err, errlen, "override key too long");
        return -1;
    }
    memcpy(key, a, kl);
    key[kl] = 0;
    struct lbw_toml *v = lbw_toml_parse_value(eq + 1, err, errlen);
    if (!v) { /* a bare word: a string */
        v = calloc(1, sizeof(*v));
        if (!v)
            return -1;
        v->type = LBW_TOML_STRING;
        v->u.str.s = strdup(eq + 1);
        v->u.str.len = strlen(eq + 1);
        if (!v->u.str.s) {
            free(v);
            return -1;
        }
    }
    if (lbw_toml_set(cfg, key, v) < 0) {
        snprintf(err, errlen, "override '%s': a non-table value is in the way", key);
        return -1;
    }
    return 0;
}

static int mkdirs(const char *dir)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int lbw_config_write_default(const char *dir, int *created, char *err, size_t errlen)
{
    *created = 0;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/config.toml", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "config directory path too long");
        return -1;
    }
    if (mkdirs(dir) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(default_worker);
    if (write(fd, default_worker, n) != (ssize_t)n) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    *created = 1;
    return 0;
}

int lbw_mem_string(const char *s, uint64_t *out)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    const char *num = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == num)
        return -1;
    if (*p == '.') {
        p++;
        const char *frac = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == frac)
            return -1;
    }
    char nb[64];
    size_t nl = (size_t)(p - num);
    if (nl >= sizeof(nb))
        return -1;
    memcpy(nb, num, nl);
    nb[nl] = 0;
    while (*p == ' ')
        p++;
    static const char units[] = "BKMGTP";
    const char *u = *p ? strchr(units, *p) : NULL;
    if (!u)
        return -1;
    p++;
    while (*p == ' ')
        p++;
    if (*p)
        return -1;
    double v = strtod(nb, NULL);
    int e = (int)(u - units) * 3; /* 10^e */
    double r;
    if (e >= 9) { /* int(number * 10^6) * (unit / 10^6), as upstream */
        double m = 1;
        for (int i = 0; i < e - 6; i++)
            m *= 10;
        r = (double)(uint64_t)(v * 1e6) * m;
    } else {
        double m = 1;
        for (int i = 0; i < e; i++)
            m *= 10;
        r = v * m;
    }
    if (r >= 18446744073709551615.0)
        return -1;
    *out = (uint64_t)r;
    return 0;
}
