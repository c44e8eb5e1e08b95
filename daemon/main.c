/* main.c — process wiring: global options (--loglevel, --reactor), logging
 * set-up, the reactor choice (logged once), and dispatch to sub-commands. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "inspect.h"
#include "log.h"
#include "probe_cmd.h"
#include "reactor.h"
#include "worker_main.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: lifeblood-worker [--loglevel LEVEL] [--reactor uring|epoll] COMMAND [ARGS]\n"
            "\n"
            "A Linux-native drop-in replacement for the Lifeblood render-farm worker.\n"
            "\n"
            "Global options:\n"
            "  --loglevel LEVEL     DEBUG, INFO (default), WARNING, ERROR or CRITICAL\n"
            "  --reactor BACKEND    event loop backend: uring (default, falls back to epoll\n"
            "                       when io_uring is unavailable) or epoll. Extension; the\n"
            "                       LBW_REACTOR environment variable does the same.\n"
            "  -h, --help           this text\n"
            "  -V, --version        print the version\n"
            "\n"
            "Commands:\n"
            "  reactor-info         set up the event loop and report which backend was\n"
            "                       chosen and why\n"
            "  worker [options]     run a worker (upstream's flags; 'worker --help');\n"
            "                       also as 'lifeblood worker' through a link named\n"
            "                       lifeblood\n"
            "  probe [--json] [--root DIR] [--nvml-library PATH]\n"
            "                       detect CPUs, memory, NUMA and GPUs; show what\n"
            "                       worker.hello would advertise and where it came from\n"
            "  inspect [FILE|-]     print a pickle (raw, inside a framed task/worker.done\n"
            "                       message, or inside a JSON body) as readable JSON;\n"
            "                       reads standard input without FILE or with -\n"
            "\n"
            "Logging: lines go to stderr as [date time,ms][component:pid][LEVEL] message;\n"
            "under systemd (JOURNAL_STREAM) with <N> syslog priority prefixes instead.\n");
}

/* Reads all of a file (or stdin for "-"/NULL), at most `max` bytes. */
static uint8_t *slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = (!path || !strcmp(path, "-")) ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        if (n == cap) {
            if (cap >= max) {
                free(b);
                b = NULL;
                errno = EFBIG;
                break;
            }
            cap *= 2;
            uint8_t *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return b;
}

static int cmd_inspect(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : NULL;
    size_t n;
    uint8_t *buf = slurp(path, 1u << 30, &n);
    if (!buf) {
        fprintf(stderr, "lifeblood-worker inspect: cannot read %s: %s\n", path ? path : "stdin",
                strerror(errno));
        return 1;
    }
    char *out, err[512];
    size_t ol;
    int rc = lbw_inspect(buf, n, &out, &ol, err, sizeof(err));
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "lifeblood-worker inspect: %s\n", err);
        return 1;
    }
    fwrite(out, 1, ol, stdout);
    free(out);
    return 0;
}

int main(int argc, char **argv)
{
    lbw_log_init(2);
    struct lbw_reactor_opts ropts = {0};
    const char *bad = NULL;
    if (lbw_reactor_opts_from_env(&ropts, &bad) < 0) {
        fprintf(stderr, "lifeblood-worker: LBW_REACTOR=%s is not a reactor backend "
                        "(use uring, epoll or auto)\n", bad);
        return 2;
    }
    static const struct option lopts[] = {
        {"loglevel", required_argument, NULL, 'l'},
        {"reactor", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0, 0, 0, 0},
    };
    int c;
    /* "+": stop at the first non-option, the sub-command. */
    while ((c = getopt_long(argc, argv, "+hV", lopts, NULL)) != -1) {
        switch (c) {
        case 'l': {
            enum lbw_log_level lv;
            if (lbw_log_level_parse(optarg, &lv) < 0) {
                fprintf(stderr, "lifeblood-worker: --loglevel %s: use DEBUG, INFO, WARNING, "
                                "ERROR or CRITICAL\n", optarg);
                return 2;
            }
            lbw_log_set_level(lv);
            break;
        }
        case 'r':
            if (lbw_backend_parse(optarg, &ropts.backend) < 0) {
                fprintf(stderr, "lifeblood-worker: --reactor %s: use uring or epoll\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("lifeblood-worker %s\n", LBW_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    if (!cmd) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(cmd, "reactor-info")) {
        lbw_reactor *r;
        char err[512];
        int rc = lbw_reactor_new(&r, &ropts, err, sizeof(err));
        if (rc < 0) {
            LBW_CRIT("worker", "%s", err);
            return 1;
        }
        LBW_INFO("worker", "event loop: %s (%s)", lbw_reactor_backend_name(r),
                 lbw_reactor_backend_reason(r));
        printf("%s\n", lbw_reactor_backend_name(r));
        lbw_reactor_free(r);
        return 0;
    }
    if (!strcmp(cmd, "inspect"))
        return cmd_inspect(argc - optind, argv + optind);
    if (!strcmp(cmd, "probe"))
        return lbw_cmd_probe(argc - optind, argv + optind);
    if (!strcmp(cmd, "worker"))
        return lbw_cmd_worker(argc - optind, argv + optind, &ropts);
    if (!strcmp(cmd, "pool")) {
        fprintf(stderr, "lifeblood-worker: this version provides the worker only; the pool "
                        "command is not built yet (use upstream's 'lifeblood pool')\n");
        return 2;
    }
    if (!strcmp(cmd, "scheduler") || !strcmp(cmd, "viewer") || !strcmp(cmd, "resolver")) {
        fprintf(stderr, "lifeblood-worker provides Lifeblood's worker only; run '%s' "
                        "with the upstream 'lifeblood' command\n", cmd);
        return 2;
    }
    fprintf(stderr, "lifeblood-worker: unknown command '%s' (see --help)\n", cmd);
    return 2;
}
