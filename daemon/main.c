/* main.c — process wiring: global options (--loglevel, --reactor), logging
 * set-up, the reactor choice (logged once), and dispatch to sub-commands. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "config_cmd.h"
#include "inspect.h"
#include "log.h"
#include "pool_cmd.h"
#include "probe_cmd.h"
#include "status_cmd.h"
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
            "  pool simple [options]\n"
            "                       run a local worker pool: a message proxy and the\n"
            "                       workers it starts and stops (upstream's flags, and\n"
            "                       --on-demand; 'pool simple --help'); 'pool --list'\n"
            "  probe [--json] [--root DIR] [--nvml-library PATH]\n"
            "                       detect CPUs, memory, NUMA and GPUs; show what\n"
            "                       worker.hello would advertise and where it came from\n"
            "  inspect [FILE|-]     print a pickle (raw, inside a framed task/worker.done\n"
            "                       message, or inside a JSON body) as readable JSON;\n"
            "                       reads standard input without FILE or with -\n"
            "  config check [FILE]  validate a configuration before rolling it out (exit\n"
            "                       status 0 or 2); 'config keys' lists every key\n"
            "  status [--json] [--watch]\n"
            "                       what the workers on this host hold (capacity, what\n"
            "                       is left, each worker and its claim), from their mesh\n"
            "\n"
            "'lifeblood-worker COMMAND --help' describes each command.\n"
            "\n"
            "Logging: lines go to stderr as [date time,ms][component:pid][LEVEL] message;\n"
            "under systemd (JOURNAL_STREAM) with <N> syslog priority prefixes instead.\n");
}

/* Reads all of a file (or stdin for "-"/NULL), at most `max` bytes.
 * Returns the bytes (NULL with errno on failure; EFBIG when too large). */
static uint8_t *slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = (!path || !strcmp(path, "-")) ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    struct lbw_buf b = {0};
    int err = 0;
    for (;;) {
        if (b.len >= max) {
            err = EFBIG;
            break;
        }
        if (lbw_buf_reserve(&b, 65536) < 0) {
            err = ENOMEM;
            break;
        }
        size_t r = fread(b.p + b.len, 1, b.cap - b.len, f);
        b.len += r;
        if (r == 0) {
            if (ferror(f))
                err = EIO;
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (err || !b.p) {
        lbw_buf_free(&b);
        errno = err ? err : ENOMEM;
        return NULL;
    }
    *len = b.len;
    return lbw_buf_steal(&b);
}

static void inspect_usage(FILE *f)
{
    fprintf(f,
"Usage: lifeblood-worker inspect [FILE|-]\n"
"\n"
"Prints what FILE (standard input without FILE, or with -) holds as readable\n"
"JSON: a raw pickle (starts with byte 0x80), a JSON command or reply body\n"
"(starts with '{' or '['), or Lifeblood frames as sent on a connection (each\n"
"an 8-byte big-endian size, then the frame; optionally after the connection's\n"
"preamble). Pickles inside are decoded without running anything.\n"
"Use './-name' or '-- -name' for a file whose name starts with '-'.\n");
}

static int unknown_option(const char *cmd, const char *opt)
{
    fprintf(stderr, "lifeblood-worker %s: unknown option %s; see 'lifeblood-worker %s --help'\n",
            cmd, opt, cmd);
    return 2;
}

static int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int opts = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            inspect_usage(stdout);
            return 0;
        }
        if (opts && !strcmp(a, "--")) {
            opts = 0;
            continue;
        }
        if (opts && a[0] == '-' && a[1])
            return unknown_option("inspect", a);
        if (path) {
            fprintf(stderr, "lifeblood-worker inspect: one FILE at a time (got '%s' and '%s'); "
                            "see 'lifeblood-worker inspect --help'\n", path, a);
            return 2;
        }
        path = a;
    }
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
    opterr = 0; /* our own one-line messages */
    /* "+": stop at the first non-option, the sub-command; ":": report a
     * missing value apart from an unknown option. */
    while ((c = getopt_long(argc, argv, "+:hV", lopts, NULL)) != -1) {
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
        case ':':
            fprintf(stderr, "lifeblood-worker: %s needs a value; see 'lifeblood-worker --help'\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "lifeblood-worker: unknown option %s; see 'lifeblood-worker "
                            "--help'\n", optopt ? (char[]){'-', (char)optopt, 0}
                                                 : argv[optind - 1]);
            return 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    if (!cmd) {
        fprintf(stderr, "lifeblood-worker: no command given (worker, pool, status, probe, inspect, "
                        "config, reactor-info); see 'lifeblood-worker --help'\n");
        return 2;
    }
    if (!strcmp(cmd, "reactor-info")) {
        for (int i = optind + 1; i < argc; i++) {
            if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                printf("Usage: lifeblood-worker [--reactor uring|epoll] reactor-info\n"
                       "Sets up the event loop, prints the backend chosen (io_uring or\n"
                       "epoll) and logs why it was chosen.\n");
                return 0;
            }
            if (argv[i][0] == '-')
                return unknown_option("reactor-info", argv[i]);
            fprintf(stderr, "lifeblood-worker reactor-info: unexpected argument '%s'; see "
                            "'lifeblood-worker reactor-info --help'\n", argv[i]);
            return 2;
        }
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
    if (!strcmp(cmd, "config"))
        return lbw_cmd_config(argc - optind, argv + optind);
    if (!strcmp(cmd, "probe"))
        return lbw_cmd_probe(argc - optind, argv + optind);
    if (!strcmp(cmd, "status"))
        return lbw_cmd_status(argc - optind, argv + optind);
    if (!strcmp(cmd, "worker"))
        return lbw_cmd_worker(argc - optind, argv + optind, &ropts);
    if (!strcmp(cmd, "pool"))
        return lbw_cmd_pool(argc - optind, argv + optind, &ropts);
    if (!strcmp(cmd, "scheduler") || !strcmp(cmd, "viewer") || !strcmp(cmd, "resolver")) {
        fprintf(stderr, "lifeblood-worker provides Lifeblood's worker and pool only; run '%s' "
                        "with the upstream 'lifeblood' command\n", cmd);
        return 2;
    }
    fprintf(stderr, "lifeblood-worker: unknown command '%s'; see 'lifeblood-worker --help'\n",
            cmd);
    return 2;
}
