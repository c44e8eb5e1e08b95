/* pool.c — see pool.h.
 *
 * Lifetime: every reactor operation the pool starts (the pulse timer and
 * call, the wake timer, one pidfd poll per worker, the end notice) is
 * counted in p->ops; on_end comes from the end notice once the pool is
 * stopped, every worker is reaped and nothing else is pending, so the
 * owner may free the pool from it. */
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "buf.h"
#include "json.h"
#include "log.h"
#include "msgnet.h"
#include "netlink.h"
#include "proc.h"
#include "rpc.h"
#include "sock.h"
#include "spawn.h"

#define SEC 1000000000ull
#define MAX_PAUSE (60 * SEC)

struct pw {
    struct lbw_pool *p;
    unsigned id;
    pid_t pid;
    int pidfd;
    int state;            /* LBW_PW_* as last reported */
    int reported;         /* it reached the scheduler at least once */
    int terminating, killed;
    int retiring;         /* singleshot: IDLE after its task, about to exit by itself */
    uint64_t since, born, term_at;
    struct lbw_op exit_op;
};

struct lbw_pool {
    struct lbw_pool_opts o;
    lbw_reactor *r;
    char sched[LBW_ADDR_MAX + 1];
    char sched_hop[LBW_ADDR_MAX + 1];
    char ip[64];
    char self[96];
    char via[LBW_ADDR_MAX + 100]; /* self|sched: the workers' scheduler chain */
    struct lbw_msgnet *net;
    struct pw **w;
    size_t nw, cw;
    unsigned next_id;
    unsigned ops;
    struct lbw_op pulse_op, wake_op, end_op;
    struct lbw_call *pulse_call;
    unsigned missed;
    uint64_t wake_at, wake_armed;
    uint64_t paused_until;
    unsigned young_streak;
    int stopping, ending, pulse_lost, said_max, said_room;
    struct lbw_pool_stats st;
};

static void tick(struct lbw_pool *p);

/* ---- the end ------------------------------------------------------------------ */

static void end_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_pool *p = op->user;
    p->ops--;
    p->o.on_end(p->o.ctx, p->pulse_lost ? LBW_POOL_PULSE_LOST : LBW_POOL_STOPPED);
}

/* Once stopped and every worker is gone: close the proxy, let the timers
 * finish, then tell the owner. */
static void maybe_end(struct lbw_pool *p)
{
    if (!p->stopping || p->nw > 0)
        return;
    if (!p->ending) {
        p->ending = 1;
        if (p->net)
            lbw_msgnet_close(p->net);
        p->net = NULL;
        if (lbw_op_pending(&p->pulse_op))
            lbw_cancel(p->r, &p->pulse_op);
        if (lbw_op_pending(&p->wake_op))
            lbw_cancel(p->r, &p->wake_op);
        p->wake_at = 0;
    }
    if (p->ops == 0 && lbw_timer(p->r, &p->end_op, 1, 0, end_cb) == 0)
        p->ops++;
}

/* ---- workers -------------------------------------------------------------------- */

static void describe_exit(const struct lbw_exit *e, char *out, size_t cap)
{
    if (e->signaled)
        snprintf(out, cap, "was killed by signal %d (%s)%s", e->sig, strsignal(e->sig),
                 e->core ? ", core dumped" : "");
    else
        snprintf(out, cap, "exited with status %d", e->code);
}

static void worker_gone(struct pw *w, const struct lbw_exit *e, int known)
{
    struct lbw_pool *p = w->p;
    uint64_t now = lbw_now_ns();
    double life = (double)(now - w->born) / 1e9;
    char how[96] = "is gone (status unknown)";
    if (known)
        describe_exit(e, how, sizeof(how));
    int clean = known && e->exited && e->code == 0;
    int ours = w->terminating && known &&
               (clean || (e->signaled && (e->sig == SIGTERM || e->sig == SIGKILL)));
    p->st.exited++;
    if (ours || (clean && w->reported)) {
        LBW_INFO("pool", "worker %u (pid %d) %s after %.1f s", w->id, (int)w->pid, how, life);
    } else {
        p->st.crashed++;
        LBW_WARN("pool", "worker %u (pid %d) %s after %.1f s%s", w->id, (int)w->pid, how, life,
                 w->reported ? "" : " without reaching the scheduler");
    }
    /* a worker that died young and not of its own accord makes the pool
     * wait before starting more: a crash loop is throttled, not a storm */
    if (!w->terminating && now - w->born < p->o.short_life_ns && !(clean && w->reported)) {
        unsigned s = p->young_streak < 4 ? p->young_streak : 4;
        uint64_t pause = p->o.pause_ns << s;
        if (pause > MAX_PAUSE)
            pause = MAX_PAUSE;
        p->young_streak++;
        if (now + pause > p->paused_until)
            p->paused_until = now + pause;
        LBW_WARN("pool", "worker %u lived %.1f s (under %.0f s): no new workers for %.0f s",
                 w->id, life, (double)p->o.short_life_ns / 1e9, (double)pause / 1e9);
    } else if (!w->terminating) {
        p->young_streak = 0;
    }
    for (size_t i = 0; i < p->nw; i++) {
        if (p->w[i] == w) {
            memmove(&p->w[i], &p->w[i + 1], (p->nw - i - 1) * sizeof(*p->w));
            p->nw--;
            break;
        }
    }
    close(w->pidfd);
    free(w);
}

static void exit_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct pw *w = op->user;
    struct lbw_pool *p = w->p;
    p->ops--;
    struct lbw_exit e = {0};
    int rc = lbw_pidfd_wait(w->pidfd, &e, 1);
    if (rc == -EAGAIN && res != -ECANCELED) { /* not yet: wait on */
        if (lbw_poll(r, &w->exit_op, w->pidfd, POLLIN, exit_cb) == 0) {
            p->ops++;
            return;
        }
    }
    if (rc == -EAGAIN) { /* the reactor is going away: do not leave it behind */
        lbw_pidfd_kill(w->pidfd, SIGKILL);
        rc = lbw_pidfd_wait(w->pidfd, &e, 0);
    }
    worker_gone(w, &e, rc == 0);
    if (p->stopping)
        maybe_end(p);
    else
        tick(p);
}

static int spawn_one(struct lbw_pool *p, char *err, size_t errlen)
{
    size_t nh = 0, nx = 0;
    while (p->o.argv_head[nh])
        nh++;
    while (p->o.argv_tail && p->o.argv_tail[nx])
        nx++;
    char id[24];
    snprintf(id, sizeof(id), "%u", p->next_id);
    const char *tail[] = {
        "worker", "--type", p->o.worker_type ? "SCHEDULER_HELPER" : "STANDARD",
        "--priority", p->o.lower ? "LOWER" : "NO_CHANGE", "--no-loop", "--id", id,
        "--pool-address", p->self, "--scheduler-address", p->via,
    };
    size_t nt = sizeof(tail) / sizeof(tail[0]);
    char **argv = calloc(nh + nt + nx + 2, sizeof(*argv));
    struct pw *w = calloc(1, sizeof(*w));
    if (!argv || !w || lbw_grow(&p->w, &p->cw, p->nw + 1, sizeof(*p->w)) < 0) {
        free(argv);
        free(w);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(argv, p->o.argv_head, nh * sizeof(*argv));
    for (size_t i = 0; i < nt; i++)
        argv[nh + i] = (char *)tail[i];
    if (nx)
        memcpy(argv + nh + nt, p->o.argv_tail, nx * sizeof(*argv));
    if (p->o.singleshot)
        argv[nh + nt + nx] = "--singleshot";
    struct lbw_spawn_opts so = {
        .path = p->o.exe,
        .argv = argv,
        .envp = p->o.envp,
        .stdin_fd = -1,
        .stdout_fd = STDOUT_FILENO,
        .stderr_fd = STDERR_FILENO,
        .cgroup_fd = -1,
        .pdeathsig = SIGTERM, /* the pool killed outright: its workers stop too */
    };
    struct lbw_child ch;
    int rc = lbw_spawn(&so, &ch, err, errlen);
    free(argv);
    if (rc < 0) {
        free(w);
        return rc;
    }
    uint64_t now = lbw_now_ns();
    *w = (struct pw){.p = p, .id = p->next_id++, .pid = ch.pid, .pidfd = ch.pidfd,
                     .state = LBW_PW_OFF, .born = now};
    w->exit_op.user = w;
    p->w[p->nw++] = w;
    p->st.started++;
    if (lbw_poll(p->r, &w->exit_op, w->pidfd, POLLIN, exit_cb) == 0)
        p->ops++;
    else
        LBW_ERROR("pool", "cannot watch worker %u (pid %d)", w->id, (int)w->pid);
    LBW_DEBUG("pool", "started worker %u (pid %d), %zu in the pool", w->id, (int)w->pid,
              p->nw);
    return 0;
}

static void terminate(struct lbw_pool *p, struct pw *w, uint64_t now)
{
    if (w->terminating)
        return;
    w->terminating = 1;
    w->term_at = now;
    if (lbw_pidfd_kill(w->pidfd, SIGTERM) < 0)
        LBW_DEBUG("pool", "worker %u (pid %d) was already gone", w->id, (int)w->pid);
}

/* ---- the decision and the one timer --------------------------------------------- */

static void wake_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_pool *p = op->user;
    p->ops--;
    p->wake_armed = 0;
    if (p->ending)
        maybe_end(p);
    else
        tick(p);
}

static void arm_wake(struct lbw_pool *p, uint64_t at)
{
    p->wake_at = at;
    if (lbw_op_pending(&p->wake_op)) {
        if (at != p->wake_armed)
            lbw_cancel(p->r, &p->wake_op); /* wake_cb decides again */
        return;
    }
    if (!at)
        return;
    uint64_t now = lbw_now_ns();
    if (lbw_timer(p->r, &p->wake_op, at > now ? at - now : 1, 0, wake_cb) == 0) {
        p->ops++;
        p->wake_armed = at;
    }
}

static uint64_t earliest(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

static void tick(struct lbw_pool *p)
{
    uint64_t now = lbw_now_ns(), next = 0;
    /* terminated workers past the grace get SIGKILL */
    for (size_t i = 0; i < p->nw; i++) {
        struct pw *w = p->w[i];
        if (!w->terminating || w->killed)
            continue;
        if (now >= w->term_at + p->o.kill_grace_ns) {
            LBW_WARN("pool", "worker %u (pid %d) did not stop within %.0f s of SIGTERM: "
                             "SIGKILL", w->id, (int)w->pid, (double)p->o.kill_grace_ns / 1e9);
            lbw_pidfd_kill(w->pidfd, SIGKILL);
            w->killed = 1;
        } else {
            next = earliest(next, w->term_at + p->o.kill_grace_ns);
        }
    }
    if (p->stopping) {
        arm_wake(p, next);
        return;
    }
    struct lbw_hk_worker *hw = calloc(p->nw + 1, sizeof(*hw));
    size_t *term = calloc(p->nw + 1, sizeof(*term));
    if (!hw || !term) {
        free(hw);
        free(term);
        arm_wake(p, now + SEC); /* try again */
        return;
    }
    for (size_t i = 0; i < p->nw; i++)
        hw[i] = (struct lbw_hk_worker){.state = p->w[i]->state, .since_ns = p->w[i]->since,
                                       .terminating = p->w[i]->terminating ||
                                                      p->w[i]->retiring};
    int paused = now < p->paused_until;
    struct lbw_hk_in in = {.w = hw, .n = p->nw, .now_ns = now, .paused = paused, .room = 1};
    if (p->o.room) {
        in.room = p->o.room(p->o.ctx);
        if (!in.room && !p->said_room && !paused)
            LBW_INFO("pool", "nothing is left on this host: no new worker until a payload "
                             "ends");
        p->said_room = !in.room;
    }
    struct lbw_hk_out out = {.term = term};
    lbw_housekeep(&p->o.hk, &in, &out);
    for (size_t i = 0; i < out.nterm; i++) {
        struct pw *w = p->w[term[i]];
        LBW_DEBUG("pool", "worker %u idle for %.0f s with enough others: stopping it",
                      w->id, (double)(now - w->since) / 1e9);
        terminate(p, w, now);
        next = earliest(next, now + p->o.kill_grace_ns);
    }
    free(hw);
    free(term);
    if (out.blocked_max && !p->said_max)
        LBW_WARN("pool", "maximum worker limit reached (%u)", p->o.hk.max);
    p->said_max = out.blocked_max > 0;
    for (unsigned i = 0; i < out.spawn; i++) {
        char err[512];
        if (spawn_one(p, err, sizeof(err)) < 0) {
            LBW_ERROR("pool", "cannot start a worker: %s; trying again in %.0f s", err,
                      (double)p->o.pause_ns / 1e9);
            p->paused_until = now + p->o.pause_ns;
            break;
        }
    }
    if (now < p->paused_until)
        next = earliest(next, p->paused_until);
    next = earliest(next, out.next_ns);
    arm_wake(p, next);
}

void lbw_pool_poke(struct lbw_pool *p)
{
    if (p && !p->stopping)
        tick(p);
}

/* ---- the proxy ------------------------------------------------------------------ */

static int forward_ok(void *ctx, const char *hop, size_t len)
{
    struct lbw_pool *p = ctx;
    char host[LBW_ADDR_MAX + 1];
    uint16_t port;
    if (len == strlen(p->sched_hop) && !memcmp(hop, p->sched_hop, len))
        return 1; /* towards the scheduler */
    /* towards a worker of this host: they listen on our address */
    return lbw_addr_split(hop, len, host, sizeof(host), &port) == 0 && !strcmp(host, p->ip);
}

static struct pw *by_id(struct lbw_pool *p, int64_t id)
{
    for (size_t i = 0; i < p->nw; i++)
        if ((int64_t)p->w[i]->id == id)
            return p->w[i];
    return NULL;
}

static int on_request(void *ctx, struct lbw_frame *f)
{
    struct lbw_pool *p = ctx;
    struct lbw_request q;
    char err[256];
    if (lbw_request_parse(&q, f, err, sizeof(err)) < 0) {
        LBW_WARN("pool", "request from %s: %s; ignored", f->src, err);
        lbw_request_free(&q);
        return 1;
    }
    if (strcmp(q.name, "worker.state_report") != 0) {
        LBW_WARN("pool", "%s from %s: the pool has no such command; ignored", q.name, q.src);
        lbw_request_free(&q);
        return 1;
    }
    int64_t id = -1, state = -1;
    int ti = q.args >= 0 ? lbw_json_get(&q.json, q.args, "worker_id") : -1;
    int ts = q.args >= 0 ? lbw_json_get(&q.json, q.args, "state") : -1;
    if (ti < 0 || ts < 0 || lbw_json_i64(&q.json, ti, &id) < 0 ||
        lbw_json_i64(&q.json, ts, &state) < 0 || state < 0 || state > 5) {
        LBW_WARN("pool", "worker.state_report from %s without a worker_id and a valid state; "
                         "ignored", q.src);
        lbw_request_free(&q);
        return 1;
    }
    struct pw *w = by_id(p, id);
    if (!w) {
        LBW_WARN("pool", "reported state %lld for worker %lld that does not belong to us",
                 (long long)state, (long long)id);
    } else {
        if (state == LBW_PW_IDLE || state == LBW_PW_BUSY)
            w->reported = 1;
        if (p->o.singleshot && w->state == LBW_PW_BUSY && state == LBW_PW_IDLE)
            w->retiring = 1; /* its one task is done: not a free worker */
        if (w->state != state) {
            LBW_DEBUG("pool", "worker %u: %s", w->id,
                      state == LBW_PW_IDLE ? "IDLE" : state == LBW_PW_BUSY ? "BUSY" : "other");
            w->state = (int)state;
            w->since = lbw_now_ns();
            if (state == LBW_PW_IDLE)
                p->young_streak = 0;
        }
    }
    static const char ok[] = "{\"ok\": true}";
    lbw_reply(p->net, q.src, q.session, ok, sizeof(ok) - 1);
    lbw_request_free(&q);
    if (w && !p->stopping)
        tick(p);
    return 1;
}

/* ---- the pulse ------------------------------------------------------------------ */

static void stop_internal(struct lbw_pool *p);

static void pulse_done(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_pool *p = ctx;
    p->pulse_call = NULL;
    p->ops--;
    if (p->stopping) {
        maybe_end(p);
        return;
    }
    if (status == 0) {
        if (p->missed)
            LBW_INFO("pool", "the scheduler answers the pulse again");
        p->missed = 0;
        return;
    }
    p->missed++;
    LBW_WARN("pool", "pulse to the scheduler %s failed (%s): %u of %u", p->sched,
             strerror(-status), p->missed, p->o.pulse_misses);
    if (p->missed >= p->o.pulse_misses) {
        LBW_ERROR("pool", "the scheduler %s missed %u pulses: stopping the pool", p->sched,
                  p->missed);
        p->pulse_lost = 1;
        stop_internal(p);
    }
}

static void pulse_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_pool *p = op->user;
    if (res < 0) {
        p->ops--;
        if (p->ending)
            maybe_end(p);
        return;
    }
    if (p->pulse_call || p->stopping)
        return;
    p->pulse_call = lbw_call_start(p->net, p->r, p->sched, "pulse", NULL,
                                   p->o.pulse_interval_ns, pulse_done, p);
    if (p->pulse_call)
        p->ops++;
}

/* ---- start and stop ------------------------------------------------------------- */

static int bind_proxy(struct lbw_pool *p, char *err, size_t errlen)
{
    uint16_t port = p->o.first_port ? p->o.first_port : 22182;
    for (int i = 0; i < 1024; i++, port++) {
        int fd = lbw_tcp_listen(p->ip, port, LBW_LISTEN_BACKLOG);
        if (fd == -EADDRINUSE)
            continue;
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %s:%u: %s", p->ip, port, strerror(-fd));
            return fd;
        }
        snprintf(p->self, sizeof(p->self), "%s:%u", p->ip, port);
        /* with an allowlist: the schedulers in it and this host's workers */
        struct lbw_cidr_set allow = {0};
        int rc = 0;
        if (p->o.allow && p->o.allow->n &&
            ((rc = lbw_cidr_set_copy(&allow, p->o.allow)) < 0 ||
             (rc = lbw_cidr_set_add(&allow, p->ip, err, errlen)) < 0)) {
            lbw_cidr_set_free(&allow);
            close(fd);
            return rc;
        }
        struct lbw_msgnet_opts no = {
            .self = p->self,
            .max_per_source = 4096, /* every worker of this host comes from one address */
            .allow = &allow,
            .forward_ok = forward_ok,
        };
        p->net = lbw_msgnet_new(p->r, &no, on_request, p);
        lbw_cidr_set_free(&allow); /* copied */
        if (!p->net) {
            close(fd);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        lbw_msgnet_prefer(p->net, p->sched);
        return lbw_msgnet_listen(p->net, fd);
    }
    snprintf(err, errlen, "no free port in [%u, %u] on %s", p->o.first_port ? p->o.first_port
             : 22182, port - 1, p->ip);
    return -EADDRINUSE;
}

struct lbw_pool *lbw_pool_start(const struct lbw_pool_opts *o, char *err, size_t errlen)
{
    size_t sl = o->scheduler ? strlen(o->scheduler) : 0;
    if (!sl || sl > LBW_ADDR_MAX || !lbw_chain_is_valid(o->scheduler, sl) || !o->exe ||
        !o->argv_head || !o->on_end) {
        snprintf(err, errlen, "the scheduler address '%s' is not an address chain",
                 o->scheduler ? o->scheduler : "");
        return NULL;
    }
    struct lbw_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->o = *o;
    p->r = o->r;
    if (!p->o.hk.idle_timeout_ns)
        p->o.hk.idle_timeout_ns = 10 * SEC;
    if (!p->o.pulse_interval_ns)
        p->o.pulse_interval_ns = 10 * SEC;
    if (!p->o.pulse_misses)
        p->o.pulse_misses = 10;
    if (!p->o.short_life_ns)
        p->o.short_life_ns = 4 * SEC;
    if (!p->o.pause_ns)
        p->o.pause_ns = 5 * SEC;
    if (!p->o.kill_grace_ns)
        p->o.kill_grace_ns = 10 * SEC;
    memcpy(p->sched, o->scheduler, sl + 1);
    size_t hl = lbw_chain_first_len(p->sched, sl);
    memcpy(p->sched_hop, p->sched, hl);
    p->sched_hop[hl] = 0;
    char host[LBW_ADDR_MAX + 1];
    uint16_t port;
    if (o->listen_ip) {
        snprintf(p->ip, sizeof(p->ip), "%s", o->listen_ip);
    } else if (lbw_addr_split(p->sched_hop, hl, host, sizeof(host), &port) < 0 ||
               lbw_route_source(host, p->ip, sizeof(p->ip)) < 0) {
        snprintf(p->ip, sizeof(p->ip), "127.0.0.1");
    }
    p->pulse_op.user = p->wake_op.user = p->end_op.user = p;
    if (bind_proxy(p, err, errlen) < 0) {
        if (p->net)
            lbw_msgnet_close(p->net);
        free(p);
        return NULL;
    }
    snprintf(p->via, sizeof(p->via), "%s|%s", p->self, p->sched);
    if (lbw_timer(p->r, &p->pulse_op, p->o.pulse_interval_ns, p->o.pulse_interval_ns,
                  pulse_cb) == 0)
        p->ops++;
    LBW_INFO("pool", "message proxy on %s; scheduler %s; workers: min idle %u, min total %u, "
                     "max %u%s", p->self, p->sched, p->o.hk.min_idle, p->o.hk.min_total,
             p->o.hk.max, p->o.singleshot ? "; on demand (each worker runs one task)" : "");
    tick(p);
    return p;
}

static void stop_internal(struct lbw_pool *p)
{
    if (p->stopping)
        return;
    p->stopping = 1;
    if (p->pulse_call)
        lbw_call_cancel(p->pulse_call);
    if (lbw_op_pending(&p->pulse_op))
        lbw_cancel(p->r, &p->pulse_op);
    uint64_t now = lbw_now_ns();
    for (size_t i = 0; i < p->nw; i++)
        terminate(p, p->w[i], now);
    if (p->nw)
        LBW_INFO("pool", "stopping %zu worker%s (SIGTERM, SIGKILL after %.0f s)", p->nw,
                 p->nw == 1 ? "" : "s", (double)p->o.kill_grace_ns / 1e9);
    tick(p);
    maybe_end(p);
}

void lbw_pool_stop(struct lbw_pool *p) { stop_internal(p); }

void lbw_pool_kill_now(struct lbw_pool *p)
{
    for (size_t i = 0; i < p->nw; i++) {
        lbw_pidfd_kill(p->w[i]->pidfd, SIGKILL);
        p->w[i]->killed = p->w[i]->terminating = 1;
    }
}

void lbw_pool_free(struct lbw_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nw; i++) { /* only after a fatal reactor error */
        lbw_pidfd_kill(p->w[i]->pidfd, SIGKILL);
        close(p->w[i]->pidfd);
        free(p->w[i]);
    }
    free(p->w);
    free(p);
}

const char *lbw_pool_address(const struct lbw_pool *p) { return p->self; }

void lbw_pool_stats(const struct lbw_pool *p, struct lbw_pool_stats *s)
{
    *s = p->st;
    for (size_t i = 0; i < p->nw; i++) {
        const struct pw *w = p->w[i];
        s->workers++;
        if (w->terminating)
            s->terminating++;
        else if (w->state == LBW_PW_OFF)
            s->booting++;
        else if (w->state == LBW_PW_IDLE)
            s->idle++;
        else
            s->busy++;
    }
    if (p->net) {
        struct lbw_msgnet_stats ns;
        lbw_msgnet_stats(p->net, &ns);
        s->forwarded = ns.forwarded;
    }
}
