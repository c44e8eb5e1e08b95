/* config_cmd.c — see config_cmd.h. */
#include "config_cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "config.h"

static void usage(FILE *f)
{
    fprintf(f,
"Usage: lifeblood-worker config check [--strict] [FILE...]\n"
"       lifeblood-worker config keys [--markdown]\n"
"       lifeblood-worker config default\n"
"\n"
"  check     validate configuration files: each FILE as a worker config.toml, or\n"
"            without FILE the merged configuration the worker would use\n"
"            ($LIFEBLOOD_CONFIG_LOCATION/worker or ~/lifeblood/worker: config.toml\n"
"            and config.d/*.toml, and the standard_environment_resolver files).\n"
"            Problems are printed one per line with file, line, key and the\n"
"            expected type. Exit status 0 when the worker would start, 2 on any\n"
"            error (or, with --strict, on any warning such as an unknown key).\n"
"  keys      every key the worker reads: type, default, meaning (--markdown: the\n"
"            table in docs/CONFIGURATION.md)\n"
"  default   print the default config.toml (what 'worker --generate-config-only'\n"
"            writes)\n");
}

static int unknown_option(const char *sub, const char *opt)
{
    fprintf(stderr, "lifeblood-worker config%s%s: unknown option %s; see 'lifeblood-worker "
                    "config --help'\n", sub ? " " : "", sub ? sub : "", opt);
    return 2;
}

static void print_diag(const struct lbw_cfg_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s: %s\n", d->m[i].error ? "error" : "warning", d->m[i].text);
    size_t lost = (size_t)(d->errors + d->warnings) - d->n;
    if (lost)
        fprintf(stderr, "(%zu more problems not shown)\n", lost);
}

static int check_dir(const char *comp, const struct lbw_cfg_schema *s, struct lbw_cfg_diag *d)
{
    char dir[PATH_MAX], why[512];
    if (lbw_config_dir(comp, dir, sizeof(dir)) < 0 || lbw_config_home_ok(why, sizeof(why)) < 0) {
        printf("%s: no configuration directory (%s); the worker would run on defaults\n", comp,
               lbw_config_dir(comp, dir, sizeof(dir)) < 0
                   ? "neither HOME nor LIFEBLOOD_CONFIG_LOCATION is set" : why);
        return 0;
    }
    int before = d->files;
    struct lbw_toml *t = lbw_config_load_checked(dir, s, d);
    lbw_toml_free(t);
    if (!t) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    printf("%s: %d file%s read from %s\n", comp, d->files - before,
           d->files - before == 1 ? "" : "s", dir);
    return 0;
}

static int cmd_check(int argc, char **argv)
{
    int strict = 0, nfiles = 0, i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--strict"))
            strict = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else if (argv[i][0] == '-' && argv[i][1])
            return unknown_option("check", argv[i]);
        else
            nfiles++;
    }
    nfiles += argc - i;
    struct lbw_cfg_diag d = {0};
    if (nfiles) {
        int opts = 1;
        for (int k = 1; k < argc; k++) {
            if (opts && !strcmp(argv[k], "--")) {
                opts = 0;
                continue;
            }
            if (opts && argv[k][0] == '-' && argv[k][1])
                continue;
            lbw_toml_free(lbw_config_load_file(argv[k], lbw_cfg_worker_schema(), &d));
        }
    } else if (check_dir("worker", lbw_cfg_worker_schema(), &d) < 0 ||
               check_dir("standard_environment_resolver", lbw_cfg_stdres_schema(), &d) < 0) {
        lbw_cfg_diag_free(&d);
        return 2;
    }
    print_diag(&d);
    int bad = d.errors || (strict && d.warnings);
    printf("%s: %d error%s, %d warning%s%s\n", bad ? "FAILED" : "OK", d.errors,
           d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s",
           bad ? (d.errors ? " (the worker would not start)" : " (--strict)") : "");
    lbw_cfg_diag_free(&d);
    return bad ? 2 : 0;
}

int lbw_cmd_config(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (!sub) {
        fprintf(stderr, "lifeblood-worker config: say what to do (check, keys or default); "
                        "see 'lifeblood-worker config --help'\n");
        return 2;
    }
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "check"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(sub, "keys") || !strcmp(sub, "default")) {
        int markdown = 0;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                usage(stdout);
                return 0;
            }
            if (!strcmp(sub, "keys") && !strcmp(argv[i], "--markdown"))
                markdown = 1;
            else if (argv[i][0] == '-')
                return unknown_option(sub, argv[i]);
            else {
                fprintf(stderr, "lifeblood-worker config %s: unexpected argument '%s'; see "
                                "'lifeblood-worker config --help'\n", sub, argv[i]);
                return 2;
            }
        }
        _cleanup_free_ char *t = !strcmp(sub, "keys") ? lbw_config_keys_text(markdown)
                                                        : lbw_config_default_worker_text();
        if (!t)
            return 1;
        fputs(t, stdout);
        return 0;
    }
    if (sub[0] == '-')
        return unknown_option(NULL, sub);
    fprintf(stderr, "lifeblood-worker config: unknown command '%s' (check, keys or default); "
                    "see 'lifeblood-worker config --help'\n", sub);
    return 2;
}
