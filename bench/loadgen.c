/* loadgen.c — a load-generating scheduler peer in C, and the bare limits.
 *
 * It speaks the real protocol (the project's message transport and JSON
 * command layer: frames, acks, sessions), answers what a scheduler answers
 * (worker.hello/ping/done/dropped/progress_report), starts worker processes
 * from a command template (--worker-cmd, default our binary; `{sched}` is
 * replaced by this peer's address, `{backend}` by the reactor backend), hands
 * them tasks and times them:
 *
 *   dispatch     `task` sent -> payload main entered   (the stamp payload)
 *   completion   payload main -> worker.done received
 *   throughput   /bin/true tasks back to back, 1 worker and 2 workers
 *   ping         `ping` commands answered per second, 32 in flight
 *   log capture  a payload writing --log-mib MiB of 100-byte lines: MB/s of
 *                its running time, and the worker's peak RSS (VmHWM)
 *   idle         RSS and context switches over 3 s between pings
 *   start        process start -> worker.hello received
 *   drop         `drop` sent -> worker.dropped received (payload: sleep)
 *
 * and, in the same run, what only the kernel must do: clone3 + execve of
 * the same stamp payload + waiting on its pidfd, and a loopback TCP round
 * trip. Latency figures are also given as a ratio to that limit. Every
 * figure is measured for each backend in turn, interleaved in rounds.
 *
 * Job pickles come from template files (made by bench/run.sh with the
 * reference peer's make_job) whose invocation id is the sentinel
 * 2000000001; each task gets its own id patched in.
 *
 * Usage: loadgen --bin PATH --stamp PATH --jobs DIR [--worker-cmd CMD]
 *                [--tasks N] [--log-mib N] [--json FILE] */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "invocation.h"
#include "json.h"
#include "msgnet.h"
#include "reactor.h"
#include "rpc.h"
#include "proc.h"
#include "sock.h"
#include "spawn.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define SENTINEL 2000000001
#define MAXW 4

static lbw_reactor *R;
static struct lbw_msgnet *NET;
static char SCHED[64];
static const char *BIN, *STAMP, *JOBS, *CMD = "{bin} worker --scheduler-address {sched} --no-loop";
static char TMP[256];

/* ---- numbers ---------------------------------------------------------------------- */

struct series {
    double *v;
    size_t n, cap;
};

static void add(struct series *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = realloc(s->v, s->cap * sizeof(double));
    }
    s->v[s->n++] = x;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(struct series *s, double p)
{
    if (!s->n)
        return -1;
    qsort(s->v, s->n, sizeof(double), cmpd);
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

/* ---- the scheduler side ---------------------------------------------------------------- */

struct worker {
    pid_t pid;
    char addr[64];
    uint64_t started_ns, hello_ns;
    const char *backend;
    char cfg[300];
};

static struct worker W[MAXW];
static int NW;

struct report {
    int64_t iid;
    uint64_t at;
    int dropped;
    int64_t stamp;   /* from the payload's first output line, or -1 */
    double running;
};
static struct report LAST;
static int GOT_REPORT;
static int WANT_STAMP;
static uint64_t HELLO_AT;
static char HELLO_ADDR[64];

static int64_t stamp_of(const char *out)
{
    /* "[OUT][hh:mm:ss] 123456789\n" */
    const char *p = strstr(out, "[OUT][");
    if (!p || !(p = strstr(p, "] ")))
        return -1;
    return strtoll(p + 2, NULL, 10);
}

static int on_request(void *ctx, struct lbw_frame *f)
{
    uint64_t now = lbw_now_ns();
    struct lbw_request q;
    char err[200];
    if (lbw_request_parse(&q, f, err, sizeof(err)) < 0) {
        lbw_request_free(&q);
        return 1;
    }
    const char *reply = "{\"ok\": true}";
    if (!strcmp(q.name, "worker.hello")) {
        int t = lbw_json_get(&q.json, q.args, "worker_addr");
        char *a = NULL;
        size_t al;
        if (t >= 0 && lbw_json_str(&q.json, t, &a, &al) == 0) {
            snprintf(HELLO_ADDR, sizeof(HELLO_ADDR), "%s", a);
            HELLO_AT = now;
        }
        free(a);
        reply = "{\"db_uid\": 9223372036854775809}";
    } else if (!strcmp(q.name, "worker.ping")) {
        reply = "{\"state\": 1}";
    } else if (!strcmp(q.name, "worker.done") || !strcmp(q.name, "worker.dropped")) {
        struct report rp = {.at = now, .dropped = q.name[7] == 'd' && q.name[8] == 'r',
                            .stamp = -1};
        int t = lbw_json_get(&q.json, q.args, "task");
        uint8_t *pk = NULL;
        size_t pkl;
        struct lbw_inv inv;
        if (t >= 0 && lbw_json_latin1(&q.json, t, &pk, &pkl) == 0 &&
            lbw_inv_load(&inv, pk, pkl, err, sizeof(err)) == 0) {
            lbw_inv_invocation_id(&inv, &rp.iid);
            lbw_inv_running_time(&inv, &rp.running);
        }
        lbw_inv_free(&inv);
        free(pk);
        if (WANT_STAMP) {
            int o = lbw_json_get(&q.json, q.args, "stdout");
            char *s = NULL;
            size_t sl;
            if (o >= 0 && lbw_json_str(&q.json, o, &s, &sl) == 0)
                rp.stamp = stamp_of(s);
            free(s);
        }
        LAST = rp;
        GOT_REPORT++;
    }
    lbw_reply(NET, q.src, q.session, reply, strlen(reply));
    lbw_request_free(&q);
    return 1;
}

/* Runs the loop until *flag changes from `from` or the deadline. */
static int wait_change(int *flag, int from, double seconds)
{
    uint64_t end = lbw_now_ns() + (uint64_t)(seconds * 1e9);
    while (*flag == from) {
        if (lbw_now_ns() > end)
            return -1;
        lbw_reactor_run_once(R, 20 * MS);
    }
    return 0;
}

static void pump(double seconds)
{
    uint64_t end = lbw_now_ns() + (uint64_t)(seconds * 1e9);
    while (lbw_now_ns() < end)
        lbw_reactor_run_once(R, 20 * MS);
}

/* ---- workers -------------------------------------------------------------------------- */

static char *subst(const char *tmpl, const char *backend)
{
    static char out[2048];
    size_t o = 0;
    for (const char *p = tmpl; *p && o < sizeof(out) - 300;) {
        if (!strncmp(p, "{bin}", 5)) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", BIN);
            p += 5;
        } else if (!strncmp(p, "{sched}", 7)) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", SCHED);
            p += 7;
        } else if (!strncmp(p, "{backend}", 9)) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", backend);
            p += 9;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return out;
}

static const char *WORKER_CGROUPS; /* LBW_CGROUPS for the next workers, or NULL */

static struct worker *start_worker(const char *backend)
{
    struct worker *w = &W[NW];
    memset(w, 0, sizeof(*w));
    w->backend = backend;
    snprintf(w->cfg, sizeof(w->cfg), "%s/w%d", TMP, NW);
    char p[400];
    snprintf(p, sizeof(p), "%s/worker", w->cfg);
    mkdir(w->cfg, 0700);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/worker/config.toml", w->cfg);
    FILE *f = fopen(p, "w");
    /* the workers of one run share a host ledger of their own */
    fprintf(f, "[worker]\nlisten_to_broadcast = false\nlogpath = \"%s/logs\"\n", w->cfg);
    /* as root: payloads as root, as before containment's payload user, so
     * that the figures stay comparable (and the stamps land in our files) */
    if (geteuid() == 0)
        fprintf(f, "payload_user = \"root\"\n");
    fprintf(f, "\n[mesh]\nnamespace = \"lbw-bench/%s\"\n", strrchr(TMP, '/') + 1);
    fclose(f);
    char *cmd = subst(CMD, backend);
    HELLO_AT = 0;
    w->started_ns = lbw_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        setenv("LIFEBLOOD_CONFIG_LOCATION", w->cfg, 1);
        setenv("LBW_REACTOR", backend, 1);
        if (WORKER_CGROUPS)
            setenv("LBW_CGROUPS", WORKER_CGROUPS, 1);
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 0);
        snprintf(p, sizeof(p), "%s/worker.log", w->cfg);
        int lf = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(lf, 1);
        dup2(lf, 2);
        if (strpbrk(cmd, "$|&;<>()'\"\\`*?~")) { /* a shell command line */
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        /* plain words: run it directly (a shell would add an exec to the
         * start -> hello figure) */
        char *av[64];
        int ac = 0;
        for (char *t = strtok(cmd, " \t"); t && ac < 63; t = strtok(NULL, " \t"))
            av[ac++] = t;
        av[ac] = NULL;
        execvp(av[0], av);
        _exit(127);
    }
    w->pid = pid;
    uint64_t prev = HELLO_AT;
    uint64_t end = lbw_now_ns() + 30 * SEC;
    while (HELLO_AT == prev && lbw_now_ns() < end)
        lbw_reactor_run_once(R, 20 * MS);
    if (HELLO_AT == prev) {
        fprintf(stderr, "loadgen: the worker (%s) did not say hello in 30 s; see %s/worker.log\n",
                cmd, w->cfg);
        exit(1);
    }
    w->hello_ns = HELLO_AT;
    snprintf(w->addr, sizeof(w->addr), "%s", HELLO_ADDR);
    NW++;
    return w;
}

static void stop_workers(void)
{
    for (int i = 0; i < NW; i++)
        if (W[i].pid > 0)
            kill(W[i].pid, SIGTERM);
    uint64_t end = lbw_now_ns() + 15 * SEC;
    for (int i = 0; i < NW; i++) {
        while (W[i].pid > 0) {
            int st;
            if (waitpid(W[i].pid, &st, WNOHANG) == W[i].pid)
                break;
            if (lbw_now_ns() > end) {
                kill(W[i].pid, SIGKILL);
                waitpid(W[i].pid, &st, 0);
                break;
            }
            lbw_reactor_run_once(R, 10 * MS); /* serve its bye */
        }
        W[i].pid = 0;
    }
    NW = 0;
}

static long proc_kib(pid_t pid, const char *key)
{
    char p[64], line[256];
    snprintf(p, sizeof(p), "/proc/%d/status", pid);
    FILE *f = fopen(p, "r");
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl))
            v = strtol(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* context switches of every thread of pid */
static long ctxt(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/task", pid);
    long sum = 0;
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sp[600], line[256];
        snprintf(sp, sizeof(sp), "%s/%s/status", p, e->d_name);
        FILE *f = fopen(sp, "r");
        while (f && fgets(line, sizeof(line), f))
            if (strstr(line, "ctxt_switches:"))
                sum += strtol(strchr(line, ':') + 1, NULL, 10);
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return sum;
}

/* ---- tasks ------------------------------------------------------------------------------- */

struct job {
    uint8_t *pk;
    size_t len;
    size_t id_at; /* offset of the 4 id bytes */
};

static void load_job(struct job *j, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", JOBS, name);
    FILE *f = fopen(p, "rb");
    if (!f) {
        fprintf(stderr, "loadgen: cannot read %s\n", p);
        exit(1);
    }
    j->pk = malloc(1 << 20);
    j->len = fread(j->pk, 1, 1 << 20, f);
    fclose(f);
    uint8_t pat[5] = {'J', SENTINEL & 0xff, (SENTINEL >> 8) & 0xff, (SENTINEL >> 16) & 0xff,
                      (SENTINEL >> 24) & 0xff};
    uint8_t *at = memmem(j->pk, j->len, pat, 5);
    if (!at) {
        fprintf(stderr, "loadgen: %s has no invocation id sentinel\n", p);
        exit(1);
    }
    j->id_at = (size_t)(at - j->pk) + 1;
}

static int64_t NEXT_ID = 100;

struct call_res {
    int done, status;
    char text[128];
};

static void call_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct call_res *c = ctx;
    c->status = status;
    if (status == 0) {
        size_t l;
        const char *t = lbw_json_text(reply, 0, &l);
        snprintf(c->text, sizeof(c->text), "%.*s", (int)(l < 127 ? l : 127), t);
    }
    c->done = 1;
}

/* Sends a task; returns the invocation id, and the send time in *sent. */
static int64_t send_task(struct worker *w, struct job *j, uint64_t *sent, struct call_res *cr)
{
    int64_t id = NEXT_ID++;
    for (int i = 0; i < 4; i++)
        j->pk[j->id_at + i] = (uint8_t)(id >> (8 * i));
    struct lbw_jw jw;
    lbw_jw_init(&jw);
    lbw_jw_obj(&jw);
    lbw_jw_key(&jw, "task");
    lbw_jw_latin1(&jw, j->pk, j->len);
    lbw_jw_key(&jw, "reply_to");
    lbw_jw_cstr(&jw, SCHED);
    lbw_jw_obj_end(&jw);
    size_t al;
    char *args = lbw_jw_take(&jw, &al);
    memset(cr, 0, sizeof(*cr));
    *sent = lbw_now_ns();
    if (!lbw_call_start(NET, R, w->addr, "task", args, 0, call_cb, cr)) {
        fprintf(stderr, "loadgen: cannot send a task\n");
        exit(1);
    }
    free(args);
    return id;
}

static struct report run_task(struct worker *w, struct job *j, uint64_t *sent)
{
    struct call_res cr;
    int before = GOT_REPORT;
    int64_t id = send_task(w, j, sent, &cr);
    if (wait_change(&GOT_REPORT, before, 120) < 0 || LAST.iid != id) {
        fprintf(stderr, "loadgen: no report for invocation %lld (task reply: %s)\n",
                (long long)id, cr.text);
        exit(1);
    }
    while (!cr.done)
        lbw_reactor_run_once(R, 10 * MS);
    return LAST;
}

/* ---- the bare limits ------------------------------------------------------------------------ */

struct clone_args_min {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static void limit_spawn(int n, struct series *to_main, struct series *main_to_reaped)
{
    for (int i = 0; i < n; i++) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
            exit(1);
        int pidfd = -1;
        struct clone_args_min ca = {.flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd,
                                    .exit_signal = SIGCHLD};
        uint64_t t0 = lbw_now_ns();
        long pid = syscall(SYS_clone3, &ca, sizeof(ca));
        if (pid == 0) {
            dup2(pfd[1], 1);
            char *argv[] = {(char *)STAMP, NULL};
            char *envp[] = {NULL};
            execve(STAMP, argv, envp);
            _exit(127);
        }
        close(pfd[1]);
        char buf[64] = {0};
        ssize_t got = 0, r;
        while ((r = read(pfd[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
            got += r;
        close(pfd[0]);
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        poll(&p, 1, -1);
        uint64_t t1 = lbw_now_ns();
        siginfo_t si;
        waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
        close(pidfd);
        int64_t m = strtoll(buf, NULL, 10);
        add(to_main, (double)((uint64_t)m - t0) / 1e3);
        add(main_to_reaped, (double)(t1 - (uint64_t)m) / 1e3);
    }
}

static double limit_tcp_rtt_us(int n)
{
    int lfd = lbw_tcp_listen("127.0.0.1", 0, 4);
    int port = lbw_sock_port(lfd);
    pid_t pid = fork();
    if (pid == 0) {
        fcntl(lfd, F_SETFL, 0); /* the listener is non-blocking: wait for the connect */
        int c = accept(lfd, NULL, NULL);
        int one = 1;
        fcntl(c, F_SETFL, 0);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char b[64];
        for (;;) {
            size_t got = 0;
            while (got < 64) {
                ssize_t r = read(c, b + got, 64 - got);
                if (r <= 0)
                    _exit(0);
                got += (size_t)r;
            }
            if (write(c, b, 64) != 64)
                _exit(0);
        }
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(0x7f000001)};
    connect(c, (struct sockaddr *)&sa, sizeof(sa));
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct series s = {0};
    char b[64] = {0};
    for (int i = 0; i < n; i++) {
        uint64_t t0 = lbw_now_ns();
        if (write(c, b, 64) != 64)
            break;
        size_t got = 0;
        while (got < 64) {
            ssize_t r = read(c, b + got, 64 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        add(&s, (double)(lbw_now_ns() - t0) / 1e3);
    }
    close(c);
    close(lfd);
    waitpid(pid, NULL, 0);
    double m = pct(&s, 0.5);
    free(s.v);
    return m;
}

/* ---- the figures --------------------------------------------------------------------------- */

static const char *BACKENDS[2] = {"uring", "epoll"};

struct fig {
    struct series dispatch, completion, start, drop;
    double tput1, tput2, pings, log_mbs, report_mbs, idle_rss, idle_cs, hwm_kib;
};

static void fig_dispatch(struct worker *w, struct job *stamp, int n, struct series *dispatch,
                         struct series *completion)
{
    WANT_STAMP = 1;
    for (int i = 0; i < n; i++) {
        uint64_t sent;
        struct report rp = run_task(w, stamp, &sent);
        if (rp.stamp > 0) {
            add(dispatch, (double)((uint64_t)rp.stamp - sent) / 1e3);
            add(completion, (double)(rp.at - (uint64_t)rp.stamp) / 1e3);
        }
    }
    WANT_STAMP = 0;
}

static double throughput(struct worker **ws, int nw, struct job *j, double seconds)
{
    /* each worker gets its next task as soon as its report arrives */
    int64_t ids[MAXW];
    struct call_res cr[MAXW];
    uint64_t sent;
    for (int i = 0; i < nw; i++)
        ids[i] = send_task(ws[i], j, &sent, &cr[i]);
    uint64_t t0 = lbw_now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    long done = 0;
    int seen = GOT_REPORT;
    while (lbw_now_ns() < end) {
        lbw_reactor_run_once(R, 20 * MS);
        if (GOT_REPORT == seen)
            continue;
        seen = GOT_REPORT;
        for (int i = 0; i < nw; i++)
            if (LAST.iid == ids[i]) {
                done++;
                ids[i] = send_task(ws[i], j, &sent, &cr[i]);
            }
    }
    double el = (double)(lbw_now_ns() - t0) / 1e9;
    /* let the last ones finish */
    pump(0.5);
    return (double)done / el;
}

struct pinger {
    struct worker *w;
    long answered;
    int stop;
    int inflight;
};

static void ping_cb(void *ctx, int status, struct lbw_json *reply);

static void ping_one(struct pinger *p)
{
    p->inflight++;
    if (!lbw_call_start(NET, R, p->w->addr, "ping", NULL, 0, ping_cb, p))
        p->inflight--;
}

static void ping_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct pinger *p = ctx;
    p->inflight--;
    if (status == 0)
        p->answered++;
    if (!p->stop)
        ping_one(p);
}

static double ping_rate(struct worker *w, double seconds)
{
    struct pinger p = {.w = w};
    for (int i = 0; i < 32; i++)
        ping_one(&p);
    pump(0.3); /* connections up */
    long a0 = p.answered;
    uint64_t t0 = lbw_now_ns();
    pump(seconds);
    double r = (double)(p.answered - a0) / ((double)(lbw_now_ns() - t0) / 1e9);
    p.stop = 1;
    while (p.inflight > 0)
        lbw_reactor_run_once(R, 10 * MS);
    return r;
}

static void fig_drop(struct worker *w, struct job *sleep_job, int n, struct fig *f)
{
    for (int i = 0; i < n; i++) {
        struct call_res cr, dr = {0};
        uint64_t sent;
        int before = GOT_REPORT;
        send_task(w, sleep_job, &sent, &cr);
        while (!cr.done)
            lbw_reactor_run_once(R, 10 * MS);
        pump(0.05);
        uint64_t t0 = lbw_now_ns();
        lbw_call_start(NET, R, w->addr, "drop", NULL, 0, call_cb, &dr);
        if (wait_change(&GOT_REPORT, before, 30) < 0 || !LAST.dropped) {
            fprintf(stderr, "loadgen: no dropped report\n");
            exit(1);
        }
        add(&f->drop, (double)(LAST.at - t0) / 1e3);
        while (!dr.done)
            lbw_reactor_run_once(R, 10 * MS);
    }
}

static void print_row(const char *name, const char *unit, double a, double b, double limit)
{
    printf("| %-44s | %12.1f | %12.1f | %s", name, a, b, unit);
    if (limit > 0)
        printf(" | %5.2fx | %5.2fx", a / limit, b / limit);
    printf("\n");
}

/* ---- the task path, tree kill, crash cleanup ------------------------------------------------ */

/* Whether the worker said at start that invocations get their own cgroups. */
static int worker_contained(const struct worker *w)
{
    char p[400], buf[8192];
    snprintf(p, sizeof(p), "%s/worker.log", w->cfg);
    FILE *f = fopen(p, "r");
    int yes = 0;
    while (f && !yes && fgets(buf, sizeof(buf), f))
        yes = strstr(buf, "invocations get their own cgroups under") != NULL;
    if (f)
        fclose(f);
    return yes;
}

/* `ping` calls, each after 2 ms of quiet (both sides asleep, as before a
 * task): each is a request and a reply through the transport (for a pooled
 * connection: SYSTEM_PING, its ack, the frame), so half of one is what
 * delivering the `task` request costs. */
static void fig_ping_calls(struct worker *w, int n, struct series *out)
{
    for (int i = 0; i < n; i++) {
        struct call_res cr = {0};
        pump(0.002);
        uint64_t t0 = lbw_now_ns();
        if (!lbw_call_start(NET, R, w->addr, "ping", NULL, 0, call_cb, &cr))
            return;
        while (!cr.done)
            lbw_reactor_run_once(R, 10 * MS);
        add(out, (double)(lbw_now_ns() - t0) / 1e3);
    }
}

/* The task path against the bare clone3+execve, both measured in the same
 * rounds: per round the limit, then each backend with per-invocation
 * cgroups on and off (LBW_CGROUPS=off). Also against the bare exec plus one
 * message through the worker's transport (half a `ping` call), which the
 * protocol puts on every dispatch. */
static void section_path(struct job *stamp, int n, int rounds, double rtt, FILE *json)
{
    struct series lim = {0}, reap = {0}, d[2][2], c[2][2], pings = {0};
    memset(d, 0, sizeof(d));
    memset(c, 0, sizeof(c));
    int contained[2][2] = {{0}};
    for (int round = 0; round < rounds; round++) {
        limit_spawn(n / rounds, &lim, &reap);
        for (int b = 0; b < 2; b++)
            for (int off = 0; off < 2; off++) {
                WORKER_CGROUPS = off ? "off" : NULL;
                struct worker *w = start_worker(BACKENDS[b]);
                contained[b][off] = worker_contained(w);
                fig_ping_calls(w, 20, &pings);
                fig_dispatch(w, stamp, n / rounds, &d[b][off], &c[b][off]);
                stop_workers();
            }
    }
    WORKER_CGROUPS = NULL;
    double l = pct(&lim, 0.5) + rtt / 2, msg = pct(&pings, 0.5) / 2;
    double lm = pct(&lim, 0.5) + msg;
    printf("task path: `task` sent -> payload main, p50, against the limits measured in the same "
           "%d rounds\n(clone3+execve -> main p50 %.1f us; + RTT/2 %.1f us = %.1f us; + one "
           "message, half a ping call after 2 ms of quiet, %.1f us = %.1f us)\n\n", rounds, pct(&lim, 0.5), rtt / 2,
           l, msg, lm);
    printf("| backend | containment | exec + RTT/2 (us) | path p50 (us) | path / (exec + RTT/2) "
           "| path / (exec + message) | p99 (us) |\n");
    printf("|---|---|---:|---:|---:|---:|---:|\n");
    for (int b = 0; b < 2; b++)
        for (int off = 0; off < 2; off++)
            printf("| %s | %s | %.1f | %.1f | **%.2fx** | %.2fx | %.1f |\n", BACKENDS[b],
                   contained[b][off] ? "on (own cgroup)" : off ? "off" : "off (no cgroup)", l,
                   pct(&d[b][off], 0.5), pct(&d[b][off], 0.5) / l, pct(&d[b][off], 0.5) / lm,
                   pct(&d[b][off], 0.99));
    printf("(%zu tasks per column)\n\n", d[0][0].n);
    if (json)
        for (int b = 0; b < 2; b++)
            for (int off = 0; off < 2; off++)
                fprintf(json, "\"path_%s_%s\": {\"limit_p50_us\": %.1f, \"p50_us\": %.1f, "
                              "\"p99_us\": %.1f, \"ratio\": %.3f, \"message_us\": %.1f, "
                              "\"ratio_with_message\": %.3f, \"contained\": %d}, ",
                        BACKENDS[b], off ? "off" : "on", l, pct(&d[b][off], 0.5),
                        pct(&d[b][off], 0.99), pct(&d[b][off], 0.5) / l, msg,
                        pct(&d[b][off], 0.5) / lm, contained[b][off]);
    for (int b = 0; b < 2; b++)
        for (int off = 0; off < 2; off++) {
            free(d[b][off].v);
            free(c[b][off].v);
        }
    free(lim.v);
    free(reap.v);
    free(pings.v);
}

/* The worker's descendants (the worker itself not counted). */
static size_t descendants(pid_t worker, pid_t *pids, size_t cap)
{
    size_t n = lbw_tree_list(worker, pids, cap), k = 0;
    for (size_t i = 0; i < n; i++)
        if (pids[i] != worker)
            pids[k++] = pids[i];
    return k;
}

/* Processes of pidfds (-1: none) that have not exited. */
static long still_running(const int *pidfds, long n)
{
    long left = 0;
    for (long k = 0; k < n; k++) {
        struct pollfd p = {.fd = pidfds[k], .events = POLLIN};
        left += pidfds[k] >= 0 && poll(&p, 1, 0) == 0;
    }
    return left;
}

#define TREE 1000
#define TREE_CAP 4096

/* Sends the tree job and waits (bounded) until its TREE processes are up;
 * returns how many descendants the worker has then, or -1. A payload that
 * ends before (its forks refused: the previous tree's zombies still count
 * against nobody's process limit until init reaps them) is sent again. */
static long tree_up(struct worker *w, struct job *tree, pid_t *pids)
{
    struct call_res cr;
    size_t n = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        uint64_t sent;
        int before = GOT_REPORT;
        send_task(w, tree, &sent, &cr);
        uint64_t end = lbw_now_ns() + 60 * SEC;
        while (lbw_now_ns() < end && GOT_REPORT == before &&
               (!cr.done || (n = descendants(w->pid, pids, TREE_CAP)) < TREE + 1))
            lbw_reactor_run_once(R, 20 * MS);
        if (GOT_REPORT == before && n >= TREE + 1)
            return (long)n;
        while (!cr.done)
            lbw_reactor_run_once(R, 10 * MS);
        if (GOT_REPORT == before)
            break; /* not ended, not up: give up */
        pump(2.0);
    }
    fprintf(stderr, "loadgen: the %d-process payload did not come up (%zu processes; task "
                    "reply: %s)\n", TREE, n, cr.text);
    return -1;
}

/* drop -> worker.dropped of a TREE-process payload, containment on and off */
static void section_treekill(struct job *tree, int n, FILE *json)
{
    struct series t[2] = {{0}};
    int contained[2] = {0};
    long left[2] = {0};
    static pid_t pids[TREE_CAP];
    for (int i = 0; i < n; i++)
        for (int off = 0; off < 2; off++) {
            WORKER_CGROUPS = off ? "off" : NULL;
            struct worker *w = start_worker(BACKENDS[0]);
            contained[off] = worker_contained(w);
            if (tree_up(w, tree, pids) < 0) {
                stop_workers();
                continue;
            }
            struct call_res dr = {0};
            int before = GOT_REPORT;
            uint64_t t0 = lbw_now_ns();
            lbw_call_start(NET, R, w->addr, "drop", NULL, 0, call_cb, &dr);
            if (wait_change(&GOT_REPORT, before, 60) < 0 || !LAST.dropped) {
                fprintf(stderr, "loadgen: no dropped report for the tree\n");
                exit(1);
            }
            add(&t[off], (double)(LAST.at - t0) / 1e3);
            left[off] += (long)descendants(w->pid, pids, TREE_CAP);
            while (!dr.done)
                lbw_reactor_run_once(R, 10 * MS);
            stop_workers();
        }
    WORKER_CGROUPS = NULL;
    printf("tree kill: `drop` -> worker.dropped, payload of %d processes (as nobody), %s "
           "backend, p50 of %zu\n\n", TREE + 1, BACKENDS[0], t[0].n);
    printf("| containment | p50 (ms) | max (ms) | processes left after dropped |\n|---|---:|---:|---:|\n");
    for (int off = 0; off < 2; off++)
        printf("| %s | %.1f | %.1f | %ld |\n", contained[off] ? "on (cgroup)" : "off",
               pct(&t[off], 0.5) / 1e3, pct(&t[off], 1.0) / 1e3, left[off]);
    printf("\n");
    if (json)
        for (int off = 0; off < 2; off++)
            fprintf(json, "\"treekill_%s\": {\"p50_us\": %.1f, \"max_us\": %.1f, \"left\": %ld, "
                          "\"contained\": %d}, ", off ? "off" : "on", pct(&t[off], 0.5),
                    pct(&t[off], 1.0), left[off], contained[off]);
    free(t[0].v);
    free(t[1].v);
}

/* A worker SIGKILLed with a TREE-process payload whose processes outlive
 * their parent; the next worker reclaims the dead one's cgroup at start,
 * before its hello. Figures: SIGKILL -> the next worker's hello, and the
 * start -> hello of the crashed worker (nothing to reclaim) side by side. */
static void section_crash(struct job *orphans, int n, FILE *json)
{
    struct series crash = {0}, plain = {0};
    long left = 0;
    static pid_t pids[TREE_CAP];
    for (int i = 0; i < n; i++) {
        struct worker *w = start_worker(BACKENDS[0]);
        if (!worker_contained(w)) {
            printf("crash cleanup: skipped (the worker has no cgroups here; see its log)\n\n");
            stop_workers();
            return;
        }
        add(&plain, (double)(w->hello_ns - w->started_ns) / 1e3);
        long np = tree_up(w, orphans, pids);
        if (np < 0) {
            stop_workers();
            continue;
        }
        static int pidfds[TREE_CAP]; /* the processes, not their reusable pids */
        for (long k = 0; k < np; k++)
            pidfds[k] = lbw_pidfd_open(pids[k]);
        uint64_t t0 = lbw_now_ns();
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        W[0].pid = 0;
        NW = 0;
        struct worker *w2 = start_worker(BACKENDS[0]);
        add(&crash, (double)(w2->hello_ns - t0) / 1e3);
        left += still_running(pidfds, np);
        for (long k = 0; k < np; k++)
            if (pidfds[k] >= 0)
                close(pidfds[k]);
        stop_workers();
    }
    printf("crash cleanup: worker SIGKILLed with %d payload processes that outlive it -> next "
           "worker's hello (its reclaim done), %s backend, p50 of %zu\n\n", TREE + 1,
           BACKENDS[0], crash.n);
    printf("| figure | p50 (ms) |\n|---|---:|\n| SIGKILL -> next worker's hello | %.1f |\n"
           "| start -> hello, nothing to reclaim | %.1f |\n| payload processes alive at "
           "that hello | %ld |\n\n", pct(&crash, 0.5) / 1e3, pct(&plain, 0.5) / 1e3, left);
    if (json)
        fprintf(json, "\"crash\": {\"sigkill_to_hello_p50_us\": %.1f, \"start_to_hello_p50_us\": "
                      "%.1f, \"left\": %ld}, ", pct(&crash, 0.5), pct(&plain, 0.5), left);
    free(crash.v);
    free(plain.v);
}

static void section_load(struct job *stamp_, struct job *tru_, struct job *lines_,
                         struct job *slp_, int ntasks, int rounds, int log_mib, double rtt, FILE *jf);

static const char *ONLY; /* sections to run, comma-separated; NULL: all */

static int want(const char *sec)
{
    size_t l = strlen(sec);
    for (const char *p = ONLY; p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == l && !strncmp(p, sec, l))
            return 1;
        p = e ? e + 1 : NULL;
    }
    return !ONLY;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"bin", 1, 0, 'b'}, {"stamp", 1, 0, 's'}, {"jobs", 1, 0, 'j'},
        {"worker-cmd", 1, 0, 'c'}, {"tasks", 1, 0, 'n'}, {"log-mib", 1, 0, 'l'},
        {"json", 1, 0, 'o'}, {"rounds", 1, 0, 'r'}, {"only", 1, 0, 'y'},
        {"tree-runs", 1, 0, 't'}, {0, 0, 0, 0}};
    int ntasks = 200, rounds = 4, log_mib = 1024, tree_runs = 3;
    const char *json = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'b': BIN = optarg; break;
        case 's': STAMP = optarg; break;
        case 'j': JOBS = optarg; break;
        case 'c': CMD = optarg; break;
        case 'n': ntasks = atoi(optarg); break;
        case 'l': log_mib = atoi(optarg); break;
        case 'o': json = optarg; break;
        case 'r': rounds = atoi(optarg); break;
        case 'y': ONLY = optarg; break;
        case 't': tree_runs = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: loadgen --bin PATH --stamp PATH --jobs DIR [--worker-cmd CMD] "
                            "[--tasks N] [--rounds N] [--log-mib N] [--json FILE]\n"
                            "               [--only load,path,treekill,crash] [--tree-runs N]\n");
            return 2;
        }
    }
    if (!BIN || !STAMP || !JOBS) {
        fprintf(stderr, "loadgen: --bin, --stamp and --jobs are required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile; /* a pidfd for each process of the crash benchmark's tree */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    snprintf(TMP, sizeof(TMP), "/tmp/lbw-loadgen-XXXXXX");
    if (!mkdtemp(TMP))
        return 1;
    struct lbw_reactor_opts ro = {.backend = LBW_BACKEND_AUTO};
    char err[256];
    if (lbw_reactor_new(&R, &ro, err, sizeof(err)) < 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 1;
    }
    int lfd = lbw_tcp_listen("127.0.0.1", 0, 4096);
    snprintf(SCHED, sizeof(SCHED), "127.0.0.1:%d", lbw_sock_port(lfd));
    struct lbw_msgnet_opts no = {.self = SCHED, .max_frame = 8ull << 30};
    NET = lbw_msgnet_new(R, &no, on_request, NULL);
    lbw_msgnet_listen(NET, lfd);

    struct job stamp, tru, lines, slp, tree, orph;
    load_job(&stamp, "job_stamp.pickle");
    load_job(&tru, "job_true.pickle");
    load_job(&lines, "job_lines.pickle");
    load_job(&slp, "job_sleep.pickle");
    load_job(&tree, "job_tree.pickle");
    load_job(&orph, "job_orphans.pickle");
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (jf)
        fprintf(jf, "{");
    printf("machine: %ld CPUs; worker command: %s\n\n", sysconf(_SC_NPROCESSORS_ONLN), CMD);

    double rtt = limit_tcp_rtt_us(5000);
    if (want("path"))
        section_path(&stamp, ntasks, rounds, rtt, jf);
    if (want("treekill"))
        section_treekill(&tree, tree_runs, jf);
    if (want("crash"))
        section_crash(&orph, tree_runs, jf);
    if (want("load"))
        section_load(&stamp, &tru, &lines, &slp, ntasks, rounds, log_mib, rtt, jf);
    if (jf) {
        fprintf(jf, "\"cpus\": %ld}\n", sysconf(_SC_NPROCESSORS_ONLN));
        fclose(jf);
    }
    lbw_msgnet_close(NET);
    pump(0.1);
    lbw_reactor_free(R);
    char rm[320];
    snprintf(rm, sizeof(rm), "rm -rf %s", TMP);
    if (system(rm) != 0)
        return 1;
    return 0;
}

/* The worker under load: dispatch and completion against the limit,
 * throughput, pings, log capture, RSS, idle wake-ups, start, drop. */
static void section_load(struct job *stamp_, struct job *tru_, struct job *lines_,
                         struct job *slp_, int ntasks, int rounds, int log_mib, double rtt, FILE *jf)
{
    struct job stamp = *stamp_, tru = *tru_, lines = *lines_, slp = *slp_;
    /* the limits */
    struct series lim_main = {0}, lim_reap = {0};
    limit_spawn(ntasks, &lim_main, &lim_reap);
    double l_main = pct(&lim_main, 0.5), l_reap = pct(&lim_reap, 0.5);
    double lim_dispatch = l_main + rtt / 2, lim_completion = l_reap + rtt / 2;

    struct fig F[2];
    memset(F, 0, sizeof(F));
    for (int round = 0; round < rounds; round++) {
        for (int b = 0; b < 2; b++) {
            struct worker *w = start_worker(BACKENDS[b]);
            add(&F[b].start, (double)(w->hello_ns - w->started_ns) / 1e3);
            if (round == 0) {
                pump(3.0); /* settle, then idle: RSS and wake-ups over 3 s */
                long cs0 = ctxt(w->pid);
                pump(3.0);
                F[b].idle_cs = (double)(ctxt(w->pid) - cs0);
                F[b].idle_rss = (double)proc_kib(w->pid, "VmRSS:");
            }
            fig_dispatch(w, &stamp, ntasks / rounds, &F[b].dispatch, &F[b].completion);
            fig_drop(w, &slp, 5, &F[b]);
            if (round == 0) {
                struct worker *ws[1] = {w};
                F[b].tput1 = throughput(ws, 1, &tru, 3.0);
                F[b].pings = ping_rate(w, 2.0);
                uint64_t sent;
                struct report rp = run_task(w, &lines, &sent);
                F[b].hwm_kib = (double)proc_kib(w->pid, "VmHWM:");
                /* capture: the payload's running time as the worker measured
                 * it (spawn -> exit handled, every byte in the log files);
                 * report: the rest, until worker.done with the logs arrived */
                F[b].log_mbs = (double)log_mib * 1048576.0 / 1e6 / rp.running;
                F[b].report_mbs = (double)log_mib * 1048576.0 / 1e6 /
                                  ((double)(rp.at - sent) / 1e9 - rp.running);
                struct worker *w2 = start_worker(BACKENDS[b]);
                struct worker *ws2[2] = {w, w2};
                F[b].tput2 = throughput(ws2, 2, &tru, 3.0);
            }
            stop_workers();
        }
    }

    printf("limit: clone3+execve -> main p50 %.1f us; main -> pidfd readable p50 %.1f us; "
           "loopback TCP round trip p50 %.1f us\n", l_main, l_reap, rtt);
    printf("limit for dispatch = spawn->main + RTT/2 = %.1f us; for completion = main->reaped + "
           "RTT/2 = %.1f us\n\n", lim_dispatch, lim_completion);
    printf("| %-44s | %12s | %12s | unit | uring/limit | epoll/limit\n", "figure", "io_uring",
           "epoll");
    printf("|---|---:|---:|---|---:|---:|\n");
    print_row("dispatch: task sent -> payload main, p50", "us", pct(&F[0].dispatch, 0.5),
              pct(&F[1].dispatch, 0.5), lim_dispatch);
    print_row("dispatch p99", "us", pct(&F[0].dispatch, 0.99), pct(&F[1].dispatch, 0.99),
              lim_dispatch);
    print_row("completion: payload main -> done received, p50", "us",
              pct(&F[0].completion, 0.5), pct(&F[1].completion, 0.5), lim_completion);
    print_row("completion p99", "us", pct(&F[0].completion, 0.99),
              pct(&F[1].completion, 0.99), lim_completion);
    print_row("throughput /bin/true, 1 worker", "tasks/s", F[0].tput1, F[1].tput1, 0);
    print_row("throughput /bin/true, 2 workers", "tasks/s", F[0].tput2, F[1].tput2, 0);
    print_row("ping answered by one worker (32 in flight)", "/s", F[0].pings, F[1].pings, 0);
    print_row("log capture, 100-byte lines, into the log files", "MB/s", F[0].log_mbs,
              F[1].log_mbs, 0);
    print_row("the same log streamed in worker.done", "MB/s", F[0].report_mbs,
              F[1].report_mbs, 0);
    print_row("worker peak RSS (VmHWM) after the big log", "KiB", F[0].hwm_kib, F[1].hwm_kib, 0);
    print_row("idle worker RSS", "KiB", F[0].idle_rss, F[1].idle_rss, 0);
    print_row("idle context switches in 3 s", "count", F[0].idle_cs, F[1].idle_cs, 0);
    print_row("process start -> worker.hello, p50", "us", pct(&F[0].start, 0.5),
              pct(&F[1].start, 0.5), 0);
    print_row("drop -> worker.dropped, p50", "us", pct(&F[0].drop, 0.5), pct(&F[1].drop, 0.5),
              0);
    printf("(dispatch/completion: %zu tasks per backend in %d interleaved rounds; start: %d; "
           "drop: %zu)\n", F[0].dispatch.n, rounds, rounds, F[0].drop.n);
    FILE *f = jf;
    if (f) {
        {
            fprintf(f, "\"limit\": {\"spawn_to_main_us\": %.1f, \"main_to_reaped_us\": %.1f, "
                       "\"tcp_rtt_us\": %.1f}, \"backends\": {",
                    l_main, l_reap, rtt);
            for (int b = 0; b < 2; b++)
                fprintf(f,
                        "%s\"%s\": {\"dispatch_p50_us\": %.1f, \"dispatch_p99_us\": %.1f, "
                        "\"completion_p50_us\": %.1f, \"completion_p99_us\": %.1f, "
                        "\"tput1\": %.1f, \"tput2\": %.1f, \"pings_per_s\": %.0f, "
                        "\"log_mb_s\": %.1f, \"report_mb_s\": %.1f, \"hwm_kib\": %.0f, \"idle_rss_kib\": %.0f, "
                        "\"idle_ctxt_3s\": %.0f, \"start_to_hello_p50_us\": %.1f, "
                        "\"drop_p50_us\": %.1f}",
                        b ? ", " : "", BACKENDS[b], pct(&F[b].dispatch, 0.5),
                        pct(&F[b].dispatch, 0.99), pct(&F[b].completion, 0.5),
                        pct(&F[b].completion, 0.99), F[b].tput1, F[b].tput2, F[b].pings,
                        F[b].log_mbs, F[b].report_mbs, F[b].hwm_kib, F[b].idle_rss, F[b].idle_cs,
                        pct(&F[b].start, 0.5), pct(&F[b].drop, 0.5));
            fprintf(f, "}, ");
        }
    }
}
