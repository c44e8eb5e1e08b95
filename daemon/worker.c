/* worker.c — a worker instance's scheduler session (see worker.h).
 *
 * The session is a state machine (enum session_state): HELLO → (pool:
 * POOL_IDLE →) SERVING; from SERVING the pinger may start a reintroduce
 * (REINTRO_BYE → REINTRO_DROP → REINTRO_HELLO, with REINTRO_WAIT between
 * failed attempts); any state may begin the stop sequence (STOP_QUIESCE →
 * STOP_DROP → STOP_RUNTIME → STOP_BYE → ENDED). Every change goes through
 * session_enter(), which logs it at DEBUG; each state has one function that
 * enters it. The invocation beside it (none / running / being reported) is
 * described by run, have_job and finishing. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "invlog.h"
#include "invocation.h"
#include "json.h"
#include "ledger.h"
#include "jstream.h"
#include "log.h"
#include "msgnet.h"
#include "netlink.h"
#include "rpc.h"
#include "run.h"
#include "runtime_server.h"
#include "sdnotify.h"
#include "sock.h"
#include "spawn.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define REPORT_TIMEOUT (120 * SEC) /* the scheduler may hold done up to 60 s (INVOKING) */
#define CALL_TIMEOUT (90 * SEC)    /* rpc's default reply wait */
#define REINTRO_ATTEMPTS 5
#define CALL_PROGRESS_MAX (5 * SEC) /* at most this long without a word while waiting */

const char *lbw_worker_state_name(int state)
{
    static const char *const names[] = {
        [LBW_WS_OFF] = "OFF",       [LBW_WS_IDLE] = "IDLE",         [LBW_WS_BUSY] = "BUSY",
        [LBW_WS_ERROR] = "ERROR",   [LBW_WS_INVOKING] = "INVOKING", [LBW_WS_UNKNOWN] = "UNKNOWN",
    };
    return state >= 0 && state <= LBW_WS_UNKNOWN ? names[state] : "not a WorkerState";
}

enum session_state {
    SESSION_HELLO,         /* worker.hello in flight (6.2 step 5) */
    SESSION_POOL_IDLE,     /* pool mode: IDLE being reported after hello (6.2 step 6) */
    SESSION_SERVING,       /* registered: the pinger runs (6.3) */
    SESSION_REINTRO_BYE,   /* reintroduce (6.3): worker.bye in flight */
    SESSION_REINTRO_DROP,  /* reintroduce: the running invocation cancelled, reported dropped */
    SESSION_REINTRO_HELLO, /* reintroduce: worker.hello in flight */
    SESSION_REINTRO_WAIT,  /* reintroduce: an attempt failed; waiting for the next */
    SESSION_STOP_QUIESCE,  /* stop (6.6): timers cancelled, calls in flight awaited */
    SESSION_STOP_DROP,     /* stop: the running invocation cancelled, reported dropped */
    SESSION_STOP_RUNTIME,  /* stop: the runtime API server closing */
    SESSION_STOP_BYE,      /* stop: worker.bye in flight */
    SESSION_ENDED,         /* the listener is closed; on_end follows */
};

static const char *const session_names[] = {
    [SESSION_HELLO] = "hello",
    [SESSION_POOL_IDLE] = "pool-idle",
    [SESSION_SERVING] = "serving",
    [SESSION_REINTRO_BYE] = "reintroduce/bye",
    [SESSION_REINTRO_DROP] = "reintroduce/drop",
    [SESSION_REINTRO_HELLO] = "reintroduce/hello",
    [SESSION_REINTRO_WAIT] = "reintroduce/wait",
    [SESSION_STOP_QUIESCE] = "stop/quiesce",
    [SESSION_STOP_DROP] = "stop/drop",
    [SESSION_STOP_RUNTIME] = "stop/runtime",
    [SESSION_STOP_BYE] = "stop/bye",
    [SESSION_ENDED] = "ended",
};

struct pending_reply {
    char *src;
    uint8_t session[16];
    struct pending_reply *next;
};

struct lbw_worker {
    struct lbw_worker_opts o;
    lbw_reactor *r;
    struct lbw_msgnet *net;
    char self[80];          /* ip:port */
    char *own;              /* address sent in hello (POOL|ip:port in pool mode) */
    char *pool;             /* pool proxy address or NULL */
    int rt_fd;              /* runtime API listener, until the server owns it */
    struct lbw_rt *rt;      /* the payload runtime API server */
    char rt_addr[64];
    uint64_t db_uid;
    int hello_ok;           /* a hello succeeded once: bye on stop */

    enum session_state state;
    /* the session's own call (hello, or a reintroduce's bye/hello) and the
     * timer that says how long it has been waiting */
    struct lbw_call *session_call;
    const char *session_call_name;
    uint64_t session_call_at;
    struct lbw_op call_t;

    /* pinger */
    struct lbw_op ping_t;
    struct lbw_call *ping_call;
    int ping_running;
    unsigned missed;

    /* reintroduce */
    unsigned reintro_tries;
    struct lbw_op retry_t;

    /* the invocation */
    struct lbw_inv job;
    int have_job;
    struct lbw_run *run;
    struct lbw_task_claim claim; /* the host ledger's claim for it */
    struct lbw_run_prep prep;    /* made ahead for the next one, while idle */
    int finishing;          /* the run ended; its report is under way */
    int idle_pending;       /* pool: IDLE to report once the BUSY report is done */
    int busy_pending;       /* pool: BUSY to report once the IDLE after hello is done
                               (two reports in flight could overtake each other on
                               two connections, and the pool would see IDLE last) */
    char *report_to;
    double progress;
    int progress_seen;      /* the payload reported a value */
    int final_progress_sent;
    double reported;        /* NAN: nothing reported yet */
    struct lbw_call *progress_call;
    uint64_t progress_done_at;
    struct lbw_op progress_t;
    struct lbw_call *report_call;
    struct lbw_call *pool_call;
    struct lbw_jstream *report_body;
    struct pending_reply *drop_replies;
    /* a task that arrived while the previous invocation was being reported:
     * answered once that is done (upstream waits on its task lock); held.src
     * is set while one waits */
    struct lbw_request held;
    /* the task request being accepted (pool: waiting for the BUSY report) */
    char *task_src;
    uint8_t task_session[16];

    /* address changes (netlink): the route's source address is checked again */
    struct lbw_addrwatch *aw;
    int aw_fd;
    struct lbw_op aw_op;
    char listen_ip[64];     /* where the listener is (the route's source address) */
    int readdress_pending;  /* an address change seen while not serving */
    char *bye_as;           /* the address the scheduler knew before a change */

    /* re-advertising while idle: the values the last hello carried, the
     * call and the coalescing timer (armed only when the ledger changes) */
    struct lbw_resources advertised;
    struct lbw_call *readv_call;
    struct lbw_op readv_t;
    uint64_t readv_at;      /* when the last re-hello started */
    uint64_t started_rt;    /* CLOCK_REALTIME ns when the invocation started (status) */
    int readv_dirty;        /* a change came while one was in flight */

    /* stopping */
    struct lbw_call *bye_call;
    enum lbw_worker_end why;
    struct lbw_op end_t;
};

static void stop_continue(struct lbw_worker *w);
static void reintro_continue(struct lbw_worker *w);
static void cmd_task(struct lbw_worker *w, struct lbw_request *q);
static void task_reply(struct lbw_worker *w, const char *src, const uint8_t *session, int status,
                       const char *msg, const char *err_class);
static void finish_report(struct lbw_worker *w);
static void progress_check(struct lbw_worker *w);
static void kill_invocation(struct lbw_worker *w);
static void readv_became_idle(struct lbw_worker *w);

const char *lbw_worker_address(const struct lbw_worker *w) { return w->own; }

/* ---- the session's states ------------------------------------------------------ */

/* Tells the host's mesh what this instance is doing (`status`). */
static void publish(struct lbw_worker *w)
{
    if (!w->o.ledger)
        return;
    struct lbw_ledger_desc d = {.role = LBW_ROLE_WORKER, .invocation_id = -1, .task_id = -1,
                                .progress = -1};
    switch (w->state) {
    case SESSION_HELLO:
        d.state = LBW_MS_STARTING;
        break;
    case SESSION_POOL_IDLE:
    case SESSION_SERVING:
        d.state = w->have_job ? LBW_MS_BUSY : LBW_MS_IDLE;
        break;
    case SESSION_ENDED:
        d.state = LBW_MS_NONE;
        break;
    default:
        d.state = w->state >= SESSION_STOP_QUIESCE ? LBW_MS_STOPPING : LBW_MS_REINTRODUCING;
        break;
    }
    if (w->have_job) {
        lbw_inv_invocation_id(&w->job, &d.invocation_id);
        lbw_inv_task_id(&w->job, &d.task_id);
        d.progress = w->progress_seen ? floor(w->progress) : -1; /* whole percents */
        d.started_ns = w->started_rt;
    }
    if (d.state != LBW_MS_NONE) {
        /* (cut to the descriptor's sizes) */
        memcpy(d.listen, w->self, strnlen(w->self, sizeof(d.listen) - 1));
        memcpy(d.scheduler, w->o.scheduler, strnlen(w->o.scheduler, sizeof(d.scheduler) - 1));
    }
    lbw_ledger_publish(w->o.ledger, &d);
}

static void session_enter(struct lbw_worker *w, enum session_state to, const char *why)
{
    LBW_DEBUG("worker", "session %s -> %s (%s)", session_names[w->state], session_names[to],
              why);
    w->state = to;
    publish(w);
}

static int is_stopping(const struct lbw_worker *w) { return w->state >= SESSION_STOP_QUIESCE; }

static int is_reintroducing(const struct lbw_worker *w)
{
    return w->state >= SESSION_REINTRO_BYE && w->state <= SESSION_REINTRO_WAIT;
}

static char *jw_done(struct lbw_jw *w)
{
    size_t n;
    return lbw_jw_take(w, &n);
}

static void reply_json(struct lbw_worker *w, const char *src, const uint8_t session[16],
                       const char *json)
{
    lbw_reply(w->net, src, session, json, strlen(json));
}

/* ---- pool state reports ------------------------------------------------------ */

static void pool_report(struct lbw_worker *w, enum lbw_worker_state state, lbw_call_cb cb)
{
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    lbw_jw_key(&j, "worker_id");
    lbw_jw_i64(&j, w->o.pool_id);
    lbw_jw_key(&j, "state");
    lbw_jw_i64(&j, state);
    lbw_jw_obj_end(&j);
    char *args = jw_done(&j);
    LBW_DEBUG("worker", "reporting %s to the pool %s", lbw_worker_state_name(state), w->pool);
    w->pool_call = args ? lbw_call_start(w->net, w->r, w->pool, "worker.state_report", args, 0,
                                         cb, w)
                        : NULL;
    free(args);
    if (!w->pool_call)
        cb(w, -ENOMEM, NULL);
}

/* ---- hello / bye arguments -------------------------------------------------------- */

static char *hello_args(struct lbw_worker *w)
{
    uint8_t *pk;
    size_t pkl;
    struct lbw_resources left; /* totals = the host; the rest = what claims leave */
    lbw_ledger_left(w->o.ledger, w->o.res, &left);
    if (lbw_resources_encode(&left, &pk, &pkl) < 0)
        return NULL;
    w->advertised = left;
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    lbw_jw_key(&j, "worker_addr");
    lbw_jw_cstr(&j, w->own);
    lbw_jw_key(&j, "worker_type");
    lbw_jw_i64(&j, w->o.worker_type);
    lbw_jw_key(&j, "worker_res");
    lbw_jw_latin1(&j, pk, pkl);
    lbw_jw_key(&j, "meta_hostname");
    lbw_jw_cstr(&j, w->o.hostname ? w->o.hostname : w->own);
    lbw_jw_obj_end(&j);
    free(pk);
    return jw_done(&j);
}

/* {"worker_addr": ...} with the address the scheduler knows us by: the
 * one before an address change until the bye for it was answered. */
static char *addr_args(struct lbw_worker *w)
{
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    lbw_jw_key(&j, "worker_addr");
    lbw_jw_cstr(&j, w->bye_as ? w->bye_as : w->own);
    lbw_jw_obj_end(&j);
    return jw_done(&j);
}

static struct lbw_call *call_simple(struct lbw_worker *w, const char *name, char *args,
                                    uint64_t timeout, lbw_call_cb cb)
{
    struct lbw_call *c = args ? lbw_call_start(w->net, w->r, w->o.scheduler, name, args,
                                               timeout, cb, w)
                              : NULL;
    free(args);
    return c;
}

static int read_db_uid(struct lbw_json *reply, uint64_t *out)
{
    int t = lbw_json_get(reply, 0, "db_uid");
    return t >= 0 && lbw_json_u64(reply, t, out) == 0 ? 0 : -1;
}

/* ---- the session's own calls, and word of them while they wait ----------------------- */

static void call_progress_arm(struct lbw_worker *w);

static void call_progress_tick(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res < 0) {
        if (is_stopping(w))
            stop_continue(w);
        else if (w->session_call)
            call_progress_arm(w); /* the next call began before this cancel came */
        return;
    }
    if (!w->session_call)
        return;
    double waited = (double)(lbw_now_ns() - w->session_call_at) / 1e9;
    LBW_INFO("worker", "%s to %s: no answer yet after %.1f s (the connection or the reply is "
                       "pending; the call gives up after %llu s)",
             w->session_call_name, w->o.scheduler, waited,
             (unsigned long long)(CALL_TIMEOUT / SEC));
}

static void call_progress_arm(struct lbw_worker *w)
{
    uint64_t every = w->o.ping_interval_ns < CALL_PROGRESS_MAX ? w->o.ping_interval_ns
                                                               : CALL_PROGRESS_MAX;
    if (!lbw_op_pending(&w->call_t))
        lbw_timer(w->r, &w->call_t, every, every, call_progress_tick);
}

/* Starts the session's hello or bye; while it waits, a line every
 * ping_interval (at most 5 s) says so. NULL if it could not start. */
static struct lbw_call *session_call_start(struct lbw_worker *w, const char *name, char *args,
                                           lbw_call_cb cb)
{
    w->session_call = call_simple(w, name, args, 0, cb);
    if (!w->session_call)
        return NULL;
    w->session_call_name = name;
    w->session_call_at = lbw_now_ns();
    call_progress_arm(w);
    return w->session_call;
}

/* The session call's callback has come. */
static void session_call_done(struct lbw_worker *w)
{
    w->session_call = NULL;
    if (lbw_op_pending(&w->call_t))
        lbw_cancel(w->r, &w->call_t);
}

/* ---- hello → serving ------------------------------------------------------------- */

static void ping_tick(lbw_reactor *r, struct lbw_op *op, int64_t res);
static void check_route(struct lbw_worker *w);
static void hello_cb(void *ctx, int status, struct lbw_json *reply);

/* HELLO: the first worker.hello (6.2 step 5). */
static int to_hello(struct lbw_worker *w)
{
    session_enter(w, SESSION_HELLO, "start");
    return session_call_start(w, "worker.hello", hello_args(w), hello_cb) ? 0 : -1;
}

/* SERVING: registered; the pinger runs. */
static void to_serving(struct lbw_worker *w, const char *why)
{
    session_enter(w, SESSION_SERVING, why);
    w->missed = 0;
    if (!lbw_op_pending(&w->ping_t))
        lbw_timer(w->r, &w->ping_t, w->o.ping_interval_ns, w->o.ping_interval_ns, ping_tick);
    if (w->readdress_pending)
        check_route(w); /* an address changed meanwhile */
    readv_became_idle(w);
}

static void task_busy_cb(void *ctx, int status, struct lbw_json *reply);

static void hello_pool_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->pool_call = NULL;
    if (status < 0)
        LBW_WARN("worker", "reporting IDLE to the pool %s failed: %s", w->pool,
                 strerror(-status));
    if (w->busy_pending) { /* a task came meanwhile: BUSY now, after IDLE */
        w->busy_pending = 0;
        pool_report(w, LBW_WS_BUSY, task_busy_cb);
    }
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    to_serving(w, "pool told IDLE");
}

/* POOL_IDLE: pool mode reports IDLE after hello (6.2 step 6). */
static void to_pool_idle(struct lbw_worker *w)
{
    session_enter(w, SESSION_POOL_IDLE, "registered");
    pool_report(w, LBW_WS_IDLE, hello_pool_cb);
}

static void hello_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    session_call_done(w);
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    uint64_t uid;
    if (status < 0 || read_db_uid(reply, &uid) < 0) {
        LBW_ERROR("worker", "worker.hello to %s failed: %s", w->o.scheduler,
                  status < 0 ? strerror(-status) : "reply has no db_uid");
        w->why = status == -ECONNREFUSED || status == -EHOSTUNREACH || status == -ETIMEDOUT ||
                         status == -ENETUNREACH ? LBW_WORKER_UNREACHABLE : LBW_WORKER_FAILED;
        lbw_worker_stop(w);
        return;
    }
    w->db_uid = uid;
    w->hello_ok = 1;
    lbw_run_prepare(&w->prep, w->o.log_root, w->db_uid);
    LBW_INFO("worker", "registered with the scheduler at %s as %s (db_uid %016llx)",
             w->o.scheduler, w->own, (unsigned long long)uid);
    lbw_sdnotify_ready(w->o.notify, "idle; registered with the scheduler at %s as %s",
                       w->o.scheduler, w->own);
    if (w->pool)
        to_pool_idle(w);
    else
        to_serving(w, "registered");
}

/* ---- re-advertising while idle (ARCHITECTURE.md, "The host ledger") ------------- */

#define READV_EVERY SEC /* at most one re-hello a second */
/* and not before this long after the first change: the tasks of one
 * dispatch burst (the change being one of them) reach their workers
 * first, so an idle worker's re-hello rarely meets a task on its way */
#define READV_SETTLE (300 * MS)

static int readv_idle(const struct lbw_worker *w)
{
    return w->state == SESSION_SERVING && !w->have_job && !w->run && !w->finishing &&
           !w->task_src && !w->held.src && !w->report_call && !w->session_call &&
           !w->pool_call && !w->readdress_pending;
}

static int num_same(const struct lbw_num *a, const struct lbw_num *b)
{
    return a->is_float == b->is_float && (a->is_float ? a->f == b->f : a->i == b->i);
}

static void readv_arm(struct lbw_worker *w);

static void readv_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->readv_call = NULL;
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    uint64_t uid;
    if (status == 0 && read_db_uid(reply, &uid) == 0) {
        w->db_uid = uid;
        LBW_DEBUG("worker", "re-advertised to %s", w->o.scheduler);
    } else if (status != -ECANCELED) { /* (a reintroduce's hello carries the values) */
        LBW_WARN("worker", "re-advertising to %s failed (%s); the pinger finds out whether "
                           "the scheduler is still there",
                 w->o.scheduler, status < 0 ? strerror(-status) : "reply without db_uid");
    }
    if (w->readv_dirty)
        readv_arm(w);
}

/* Says hello again if idle and what is left differs from the last hello. */
static void readv_now(struct lbw_worker *w)
{
    w->readv_dirty = 0;
    if (!readv_idle(w) || w->readv_call)
        return;
    struct lbw_resources left;
    lbw_ledger_left(w->o.ledger, w->o.res, &left);
    if (num_same(&left.cpu_count, &w->advertised.cpu_count) &&
        num_same(&left.cpu_mem, &w->advertised.cpu_mem) &&
        num_same(&left.gpu_count, &w->advertised.gpu_count) &&
        num_same(&left.gpu_mem, &w->advertised.gpu_mem))
        return;
    w->readv_at = lbw_now_ns();
    w->readv_call = call_simple(w, "worker.hello", hello_args(w), 0, readv_cb);
    if (!w->readv_call)
        LBW_WARN("worker", "cannot re-advertise to %s: out of memory", w->o.scheduler);
}

static void readv_tick(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    (void)r;
    struct lbw_worker *w = op->user;
    if (res < 0) {
        if (is_stopping(w))
            stop_continue(w);
        return;
    }
    readv_now(w);
}

static void readv_arm(struct lbw_worker *w)
{
    w->readv_dirty = 1;
    if (lbw_op_pending(&w->readv_t) || w->readv_call)
        return; /* coalesced into the one on its way */
    uint64_t now = lbw_now_ns(), next = w->readv_at ? w->readv_at + READV_EVERY : 0;
    if (next < now + READV_SETTLE)
        next = now + READV_SETTLE;
    lbw_timer(w->r, &w->readv_t, next - now, 0, readv_tick);
}

/* Idle again (registered, or an invocation done): a change that came while
 * busy or saying hello was not acted on; the values are compared after
 * the settle time and sent if they differ from the last hello's. */
static void readv_became_idle(struct lbw_worker *w)
{
    if (w->o.readvertise && w->o.ledger && readv_idle(w))
        readv_arm(w);
}

void lbw_worker_host_changed(struct lbw_worker *w)
{
    if (!w || !w->o.readvertise || !w->o.ledger || is_stopping(w) || !readv_idle(w))
        return;
    readv_arm(w);
}

/* ---- reintroduce (6.3): bye → drop → hello, up to 5 attempts ---------------------- */

static void reintro_bye_cb(void *ctx, int status, struct lbw_json *reply);
static void reintro_hello_cb(void *ctx, int status, struct lbw_json *reply);
static void to_reintro_bye(struct lbw_worker *w, const char *why);

static void retry_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res < 0 || is_stopping(w)) {
        if (is_stopping(w))
            stop_continue(w);
        return;
    }
    to_reintro_bye(w, "next attempt");
}

/* REINTRO_WAIT after a failed attempt, or the end after the last one. */
static void to_reintro_wait(struct lbw_worker *w, const char *what, int status)
{
    w->reintro_tries++;
    if (w->reintro_tries >= REINTRO_ATTEMPTS) {
        LBW_WARN("worker", "reintroduce attempt %u of %u: %s failed: %s", w->reintro_tries,
                 REINTRO_ATTEMPTS, what, strerror(-status));
        LBW_ERROR("worker", "could not reintroduce after %u attempts: stopping",
                  REINTRO_ATTEMPTS);
        w->why = LBW_WORKER_LOST;
        lbw_worker_stop(w);
        return;
    }
    LBW_WARN("worker", "reintroduce attempt %u of %u: %s failed: %s; next attempt in %.1f s",
             w->reintro_tries, REINTRO_ATTEMPTS, what, strerror(-status),
             (double)w->o.retry_wait_ns / 1e9);
    session_enter(w, SESSION_REINTRO_WAIT, what);
    lbw_timer(w->r, &w->retry_t, w->o.retry_wait_ns, 0, retry_cb);
}

/* REINTRO_BYE: the first step of an attempt. */
static void to_reintro_bye(struct lbw_worker *w, const char *why)
{
    session_enter(w, SESSION_REINTRO_BYE, why);
    if (!session_call_start(w, "worker.bye", addr_args(w), reintro_bye_cb))
        to_reintro_wait(w, "worker.bye", -ENOMEM);
}

/* REINTRO_HELLO: the last step of an attempt. */
static void to_reintro_hello(struct lbw_worker *w)
{
    session_enter(w, SESSION_REINTRO_HELLO, "no invocation left");
    if (!session_call_start(w, "worker.hello", hello_args(w), reintro_hello_cb))
        to_reintro_wait(w, "worker.hello", -ENOMEM);
}

/* REINTRO_DROP: the running invocation is cancelled and reported dropped;
 * after_invocation() comes back through reintro_continue(). */
static void to_reintro_drop(struct lbw_worker *w)
{
    session_enter(w, SESSION_REINTRO_DROP, "bye answered");
    reintro_continue(w);
}

static void reintro_continue(struct lbw_worker *w)
{
    if (w->state != SESSION_REINTRO_DROP)
        return; /* a call or the retry timer is under way: its callback continues */
    if (w->run && !w->finishing) {
        kill_invocation(w);
        return;
    }
    if (w->have_job)
        return; /* its report is still going */
    to_reintro_hello(w);
}

/* From SERVING, when the scheduler's view of us is wrong. */
static void reintro_start(struct lbw_worker *w, const char *why)
{
    if (w->state != SESSION_SERVING)
        return;
    LBW_INFO("worker", "%s: reintroducing (bye, cancel the running invocation, hello; up to "
                       "%u attempts %.1f s apart)",
             why, REINTRO_ATTEMPTS, (double)w->o.retry_wait_ns / 1e9);
    w->reintro_tries = 0;
    if (w->readv_call) /* the reintroduce's own hello carries the values */
        lbw_call_cancel(w->readv_call);
    to_reintro_bye(w, why);
}

static void reintro_bye_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    session_call_done(w);
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    if (status < 0) {
        to_reintro_wait(w, "worker.bye", status);
        return;
    }
    free(w->bye_as); /* the old address is gone from the scheduler */
    w->bye_as = NULL;
    to_reintro_drop(w);
}

static void reintro_hello_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    session_call_done(w);
    uint64_t uid;
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    if (status < 0 || read_db_uid(reply, &uid) < 0) {
        to_reintro_wait(w, "worker.hello", status < 0 ? status : -EBADMSG);
        return;
    }
    w->db_uid = uid;
    lbw_run_prepare(&w->prep, w->o.log_root, w->db_uid);
    LBW_INFO("worker", "reintroduced (db_uid %016llx)", (unsigned long long)uid);
    lbw_sdnotify_status(w->o.notify, "idle; registered again with the scheduler at %s as %s",
                        w->o.scheduler, w->own);
    to_serving(w, "reintroduced");
}

/* ---- the pinger (6.3) ------------------------------------------------------------------ */

/* What the scheduler's recorded state says about us: NULL when it agrees. */
static const char *ping_disagrees(enum lbw_worker_state st, int running)
{
    switch (st) {
    case LBW_WS_OFF:
    case LBW_WS_UNKNOWN:
        return "the scheduler does not know us";
    case LBW_WS_BUSY:
        return running ? NULL : "the scheduler has us BUSY while idle";
    case LBW_WS_IDLE:
        return running ? "the scheduler has us IDLE while busy" : NULL;
    case LBW_WS_ERROR:    /* the scheduler suspects network trouble: nothing */
    case LBW_WS_INVOKING: /* a task is on its way */
        return NULL;
    }
    return NULL; /* not a WorkerState: ignored */
}

static void ping_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->ping_call = NULL;
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    int64_t st = -1;
    int t = status == 0 ? lbw_json_get(reply, 0, "state") : -1;
    if (t < 0 || lbw_json_i64(reply, t, &st) < 0) {
        w->missed++;
        LBW_WARN("worker", "scheduler ping %s (%u of %u missed)",
                 status < 0 ? strerror(-status) : "reply unreadable", w->missed,
                 w->o.ping_misses);
        if (w->missed >= w->o.ping_misses) {
            LBW_ERROR("worker", "the scheduler is gone: stopping");
            w->why = LBW_WORKER_LOST;
            lbw_worker_stop(w);
        }
        return;
    }
    w->missed = 0; /* any answer means the scheduler is there (upstream: MAY-FIX 28) */
    LBW_DEBUG("worker", "the scheduler has us as %s", lbw_worker_state_name((int)st));
    const char *why = st >= 0 && st <= LBW_WS_UNKNOWN
                          ? ping_disagrees((enum lbw_worker_state)st, w->ping_running)
                          : NULL;
    if (why)
        reintro_start(w, why);
}

static void ping_tick(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res < 0) {
        if (is_stopping(w))
            stop_continue(w);
        return;
    }
    if (w->ping_call || w->state != SESSION_SERVING)
        return;
    w->ping_running = w->run != NULL;
    w->ping_call = call_simple(w, "worker.ping", addr_args(w), 0, ping_cb);
}

/* ---- progress -------------------------------------------------------------------- */

static void progress_sent(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    double v = w->progress;
    w->progress_call = NULL;
    w->progress_done_at = lbw_now_ns();
    if (status == 0)
        w->reported = v;
    else
        LBW_DEBUG("worker", "progress report failed: %s", strerror(-status));
    if (w->finishing) {
        finish_report(w);
        return;
    }
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    progress_check(w);
}

static void progress_tick(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res > 0)
        progress_check(w);
}

/* worker.progress_report with the current value to the report address. */
static void progress_send(struct lbw_worker *w)
{
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    lbw_jw_key(&j, "invocation_id");
    lbw_jw_i64(&j, lbw_run_invocation_id(w->run));
    lbw_jw_key(&j, "progress");
    if (w->progress == floor(w->progress) && fabs(w->progress) < 1e15)
        lbw_jw_i64(&j, (int64_t)w->progress);
    else
        lbw_jw_double(&j, w->progress);
    lbw_jw_obj_end(&j);
    char *args = jw_done(&j);
    w->progress_call = args ? lbw_call_start(w->net, w->r, w->report_to,
                                             "worker.progress_report", args, 0, progress_sent,
                                             w)
                            : NULL;
    free(args);
}

/* Reports the current value if it changed, nothing is in flight and the
 * interval since the last report passed; otherwise looks again later. */
static void progress_check(struct lbw_worker *w)
{
    if (!w->run || w->finishing || w->progress_call || is_stopping(w))
        return;
    if (w->progress == w->reported)
        return;
    uint64_t now = lbw_now_ns();
    uint64_t iv = (uint64_t)(w->o.progress_interval * 1e9);
    if (w->progress_done_at && now - w->progress_done_at <= iv) {
        if (!lbw_op_pending(&w->progress_t))
            lbw_timer(w->r, &w->progress_t, iv - (now - w->progress_done_at) + MS, 0,
                      progress_tick);
        return;
    }
    progress_send(w);
}

/* After the payload exited by itself: the last value it printed, if the
 * rate limit held it back, goes out before worker.done (as upstream's
 * worker does), whatever the interval. Returns 1 if a report went out. */
static int progress_final(struct lbw_worker *w)
{
    if (w->final_progress_sent || !w->progress_seen || w->progress == w->reported)
        return 0;
    struct lbw_run_result res;
    lbw_run_result(w->run, &res);
    if (res.killed)
        return 0;
    w->final_progress_sent = 1;
    progress_send(w);
    return w->progress_call != NULL;
}

static void on_progress(void *ctx, double v)
{
    struct lbw_worker *w = ctx;
    if (isnan(v))
        return;
    w->progress = v;
    w->progress_seen = 1;
    publish(w); /* (sent when the whole percent changes) */
    progress_check(w);
}

/* ---- the end of an invocation ------------------------------------------------------ */

static void clear_invocation(struct lbw_worker *w)
{
    lbw_run_free(w->run, 1);
    w->run = NULL;
    lbw_ledger_release_task(w->o.ledger, &w->claim);
    if (w->have_job)
        lbw_inv_free(&w->job);
    w->have_job = 0;
    w->finishing = 0;
    w->idle_pending = 0;
    publish(w);
    w->busy_pending = 0;
    free(w->report_to);
    w->report_to = NULL;
    lbw_jstream_free(w->report_body);
    w->report_body = NULL;
    if (lbw_op_pending(&w->progress_t))
        lbw_cancel(w->r, &w->progress_t);
    while (w->drop_replies) {
        struct pending_reply *p = w->drop_replies;
        w->drop_replies = p->next;
        reply_json(w, p->src, p->session, "{}");
        free(p->src);
        free(p);
    }
}

static void after_invocation(struct lbw_worker *w)
{
    int killed = 0;
    if (w->run) {
        struct lbw_run_result res;
        lbw_run_result(w->run, &res);
        killed = res.killed;
    }
    clear_invocation(w);
    if (w->held.src) {
        struct lbw_request q = w->held;
        memset(&w->held, 0, sizeof(w->held));
        if (w->o.singleshot && !is_stopping(w))
            task_reply(w, q.src, q.session, 1, "worker is stopping", "stopping");
        else
            cmd_task(w, &q); /* stopping / reintroducing: answered as such */
        lbw_request_free(&q);
        if (w->run)
            return;
    }
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    lbw_sdnotify_status(w->o.notify, "idle; registered with the scheduler at %s as %s",
                        w->o.scheduler, w->own);
    if (is_reintroducing(w)) {
        reintro_continue(w);
        return;
    }
    if (w->o.singleshot) {
        LBW_INFO("worker", "single-shot worker: the invocation %s, stopping",
                 killed ? "was cancelled" : "finished");
        lbw_worker_stop(w);
        return;
    }
    readv_became_idle(w);
}

static void report_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->report_call = NULL;
    if (status < 0)
        LBW_ERROR("worker", "reporting the invocation to %s failed: %s", w->report_to,
                  strerror(-status));
    after_invocation(w);
}

/* {HEAD"stdout": "<escaped output file>", "stderr": "<escaped error file>"TAIL
 * as a streamed body (head ends just before the key); the descriptors
 * (-1: empty) are taken in every case. NULL with *err on failure. */
static struct lbw_jstream *logs_body(const char *head, size_t hl, int ofd, int efd,
                                     const char *tail, uint64_t *total, int *err)
{
    struct lbw_jstream *s = lbw_jstream_new();
    int rc = s ? 0 : -ENOMEM;
    if (rc == 0)
        rc = lbw_jstream_text(s, head, hl);
    if (rc == 0)
        rc = lbw_jstream_text(s, "\"stdout\": \"", 11);
    if (rc == 0) {
        rc = lbw_jstream_file(s, ofd);
        ofd = -1;
    }
    if (rc == 0)
        rc = lbw_jstream_text(s, "\", \"stderr\": \"", 14);
    if (rc == 0) {
        rc = lbw_jstream_file(s, efd);
        efd = -1;
    }
    if (rc == 0)
        rc = lbw_jstream_text(s, "\"", 1);
    if (rc == 0)
        rc = lbw_jstream_text(s, tail, strlen(tail));
    if (rc == 0)
        rc = lbw_jstream_len(s, total);
    if (ofd >= 0)
        close(ofd);
    if (efd >= 0)
        close(efd);
    if (rc < 0) {
        lbw_jstream_free(s);
        *err = rc;
        return NULL;
    }
    return s;
}

/* Sends worker.done / worker.dropped with the job and both logs streamed. */
static void send_report(struct lbw_worker *w)
{
    struct lbw_run_result res;
    lbw_run_result(w->run, &res);
    const char *name = res.killed ? "worker.dropped" : "worker.done";
    char err[256];
    uint8_t *pk = NULL;
    size_t pkl = 0;
    int ofd = -1, efd = -1;
    if (lbw_inv_set_result(&w->job, res.has_exit, res.exit_code, res.running_time) < 0 ||
        lbw_inv_encode(&w->job, &pk, &pkl, err, sizeof(err)) < 0) {
        LBW_ERROR("worker", "cannot encode the finished job: %s", err);
        after_invocation(w);
        return;
    }
    lbw_run_open_logs(w->run, &ofd, &efd);
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_raw(&j, "{\"command\": {\"name\": ", 21);
    lbw_jw_cstr(&j, name);
    lbw_jw_raw(&j, ", \"arguments\": {\"task\": ", 24);
    lbw_jw_latin1(&j, pk, pkl);
    free(pk);
    lbw_jw_raw(&j, ", ", 2);
    size_t hl;
    char *head = lbw_jw_take(&j, &hl);
    uint64_t total = 0;
    int rc = -ENOMEM;
    struct lbw_jstream *s = head ? logs_body(head, hl, ofd, efd, "}}}", &total, &rc) : NULL;
    if (!head) {
        if (ofd >= 0)
            close(ofd);
        if (efd >= 0)
            close(efd);
    }
    free(head);
    if (!s) {
        LBW_ERROR("worker", "cannot prepare the %s report: %s", name, strerror(-rc));
        after_invocation(w);
        return;
    }
    w->report_body = s;
    char code[32] = "None";
    if (res.has_exit)
        snprintf(code, sizeof(code), "%lld", (long long)res.exit_code);
    LBW_INFO("worker", "invocation %lld %s (exit code %s, %.3f s); reporting to %s",
             (long long)res.invocation_id, res.killed ? "cancelled" : "finished", code,
             res.running_time, w->report_to);
    w->report_call = lbw_call_start_stream(w->net, w->r, w->report_to, total,
                                           lbw_jstream_fill, s, REPORT_TIMEOUT, report_cb, w);
    if (!w->report_call) {
        LBW_ERROR("worker", "cannot send the %s report: %s", name, strerror(errno));
        after_invocation(w);
    }
}

static void finish_pool_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->pool_call = NULL;
    if (status < 0) {
        LBW_ERROR("worker", "reporting IDLE to the pool failed (%s): stopping",
                  strerror(-status));
        if (!is_stopping(w)) {
            w->why = LBW_WORKER_LOST;
            lbw_worker_stop(w); /* it waits for the report below */
        }
    }
    finish_report(w);
}

/* Steps after the run ended: pool IDLE, wait for a progress report in
 * flight, the final progress value, then the report. */
static void finish_report(struct lbw_worker *w)
{
    if (w->pool_call || w->progress_call || w->report_call)
        return;
    if (progress_final(w))
        return; /* progress_sent comes back here */
    send_report(w);
}

static void on_end(void *ctx, struct lbw_run *run)
{
    struct lbw_worker *w = ctx;
    w->finishing = 1;
    if (w->rt) /* waiting receivers and senders: the invocation is over */
        lbw_rt_invocation_end(w->rt);
    if (lbw_op_pending(&w->progress_t))
        lbw_cancel(w->r, &w->progress_t);
    if (w->pool && w->pool_call)
        w->idle_pending = 1; /* the BUSY report is still going: IDLE follows it */
    else if (w->pool)
        pool_report(w, LBW_WS_IDLE, finish_pool_cb);
    else
        finish_report(w);
}

/* Cancels the running invocation: payloads waiting for a message are
 * released first (7.10), then the tree is killed; on_end follows. */
static void kill_invocation(struct lbw_worker *w)
{
    if (w->rt)
        lbw_rt_invocation_end(w->rt);
    lbw_run_kill(w->run);
}

/* ---- task (7.1): admission, decoding, start ------------------------------------------ */

static void task_reply(struct lbw_worker *w, const char *src, const uint8_t *session, int status,
                       const char *msg, const char *err_class)
{
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    lbw_jw_key(&j, "status");
    lbw_jw_i64(&j, status);
    if (msg) {
        lbw_jw_key(&j, "message");
        lbw_jw_cstr(&j, msg);
    }
    if (err_class) {
        lbw_jw_key(&j, "error_class");
        lbw_jw_cstr(&j, err_class);
    }
    lbw_jw_obj_end(&j);
    char *t = jw_done(&j);
    if (t)
        reply_json(w, src, session, t);
    free(t);
}

static void task_busy_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->pool_call = NULL;
    if (status < 0)
        LBW_WARN("worker", "reporting BUSY to the pool failed (%s); the payload runs on",
                 strerror(-status));
    if (w->task_src) {
        task_reply(w, w->task_src, w->task_session, 0, NULL, NULL);
        free(w->task_src);
        w->task_src = NULL;
    }
    if (w->finishing && w->idle_pending) {
        w->idle_pending = 0;
        pool_report(w, LBW_WS_IDLE, finish_pool_cb);
        return;
    }
    if (is_stopping(w))
        stop_continue(w);
}

/* Admission: a stopping worker refuses, a task arriving while the previous
 * invocation is being reported waits for that (a scheduler sends the next
 * task as soon as it has the report, possibly before its reply reached us),
 * a busy or reintroducing worker answers BUSY. Returns 1 to go on; 0 when
 * the request was answered or taken to wait. */
static int task_admit(struct lbw_worker *w, struct lbw_request *q)
{
    if (is_stopping(w)) {
        task_reply(w, q->src, q->session, 1, "worker is stopping", "stopping");
        return 0;
    }
    if (w->finishing && !w->held.src && !is_reintroducing(w)) {
        w->held = *q;
        memset(q, 0, sizeof(*q));
        return 0;
    }
    if (w->run || w->have_job || is_reintroducing(w)) {
        task_reply(w, q->src, q->session, 2, "worker already working on a task", NULL);
        return 0;
    }
    if (w->readv_call) {
        /* the scheduler may not have handled our re-hello yet; handled
         * after the task was accepted, it would reset the invocation
         * (PROTOCOL.md 10.2): BUSY rolls the submission back, and the task
         * comes again at once */
        task_reply(w, q->src, q->session, 2, "worker is re-advertising its resources; "
                                             "try again", NULL);
        return 0;
    }
    return 1;
}

/* Decoding: the job pickle and the report address (reply_to, else the
 * request's source; behind the pool in pool mode). 0, or -1 answered. */
static int task_decode(struct lbw_worker *w, struct lbw_request *q)
{
    int t = q->args >= 0 ? lbw_json_get(&q->json, q->args, "task") : -1;
    uint8_t *pk = NULL;
    size_t pkl = 0;
    char err[512], msg[1200];
    if (t < 0 || lbw_json_latin1(&q->json, t, &pk, &pkl) < 0) {
        task_reply(w, q->src, q->session, 1, "error happened: no task pickle in the request",
                   "exception");
        return -1;
    }
    int rc = lbw_inv_load(&w->job, pk, pkl, err, sizeof(err));
    free(pk);
    if (rc < 0) {
        lbw_inv_free(&w->job);
        LBW_WARN("worker", "task from %s refused: %s", q->src, err);
        snprintf(msg, sizeof(msg), "error happened: %s", err);
        task_reply(w, q->src, q->session, 1, msg, "exception");
        return -1;
    }
    w->have_job = 1;
    char *reply_to = NULL;
    size_t rl = 0;
    int rt = q->args >= 0 ? lbw_json_get(&q->json, q->args, "reply_to") : -1;
    if (rt >= 0 && lbw_json_type(&q->json, rt) == LBW_JSON_STRING)
        lbw_json_str(&q->json, rt, &reply_to, &rl);
    const char *base = reply_to && rl ? reply_to : q->src;
    if (w->pool) {
        size_t l;
        w->report_to = lbw_chain_join(w->pool, strlen(w->pool), base, strlen(base), &l);
    } else {
        w->report_to = strdup(base);
    }
    free(reply_to);
    if (!w->report_to) {
        clear_invocation(w);
        task_reply(w, q->src, q->session, 1, "error happened: out of memory", "exception");
        return -1;
    }
    return 0;
}

/* Start: environment, extra files and the process (run.c); then the task
 * is answered — in pool mode after BUSY was reported. */
static void task_start(struct lbw_worker *w, struct lbw_request *q)
{
    const char *rname = lbw_cfg_string(w->o.cfg, LBW_CFG_ENV_WRAPPER_NAME);
    const struct lbw_toml *rargs = lbw_cfg_value(w->o.cfg, LBW_CFG_ENV_WRAPPER_ARGUMENTS);
    if (w->o.ledger) /* claimed before the spawn; a short grant runs with what it got */
        lbw_ledger_claim_task(w->o.ledger, &w->job, &w->claim);
    struct lbw_run_opts ro = {
        .r = w->r,
        .log_root = w->o.log_root,
        .db_uid = w->db_uid,
        .worker_environ = w->o.environ,
        .runtime_dir = w->o.runtime_dir,
        .runtime_addr = w->rt_addr,
        .resolver_name = rname,
        .resolver_args_cfg = rargs,
        .stdres_cfg = w->o.stdres_cfg,
        .python_dir = w->o.python_dir,
        .nice = w->o.payload_nice,
        .contain = w->o.contain,
        .user = w->o.payload_user,
        .kill_grace_ns = w->o.kill_grace_ns,
        .prep = &w->prep,
        .affinity = w->claim.mask,
        .affinity_size = w->claim.mask_size,
        .mem_nodes = w->claim.held && w->claim.mem_node >= 0 ? w->claim.mem_nodes : NULL,
        .mem_maxnode = sizeof(w->claim.mem_nodes) * 8 + 1, /* the kernel reads maxnode - 1 */
        .claim_env = w->claim.env,
        .claim_env_default = w->claim.env_default,
        .on_progress = on_progress,
        .on_end = on_end,
        .ctx = w,
    };
    /* the claim as cgroup limits: its CPUs and their memory node, its memory */
    char cpus[1024] = "";
    ro.limits.node = -1;
    if (w->claim.held) {
        ro.limits.mem = w->claim.c.mem;
        if (w->claim.mask) {
            lbw_cpuset_format(&w->claim.c.cpus, cpus, sizeof(cpus));
            ro.limits.cpus = cpus;
            ro.limits.node = w->claim.c.node;
        }
    }
    const char *cls;
    char msg[1200];
    if (lbw_run_start(&ro, &w->job, &w->run, &cls, msg, sizeof(msg)) < 0) {
        clear_invocation(w);
        task_reply(w, q->src, q->session, 1, msg, cls);
        return;
    }
    if (w->rt)
        lbw_rt_invocation_begin(w->rt, lbw_run_invocation_id(w->run));
    lbw_sdnotify_status(w->o.notify, "running invocation %lld for the scheduler at %s",
                        (long long)lbw_run_invocation_id(w->run), w->o.scheduler);
    w->progress = 0;
    w->progress_seen = 0;
    w->final_progress_sent = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    w->started_rt = (uint64_t)now.tv_sec * SEC + (uint64_t)now.tv_nsec;
    publish(w);
    w->reported = NAN;
    w->progress_done_at = 0;
    lbw_timer(w->r, &w->progress_t, SEC, 0, progress_tick); /* first check after 1 s */
    if (w->pool) {
        w->task_src = strdup(q->src);
        memcpy(w->task_session, q->session, 16);
        if (w->pool_call) /* the IDLE after hello is on its way */
            w->busy_pending = 1;
        else
            pool_report(w, LBW_WS_BUSY, task_busy_cb);
        return;
    }
    task_reply(w, q->src, q->session, 0, NULL, NULL);
}

static void cmd_task(struct lbw_worker *w, struct lbw_request *q)
{
    if (task_admit(w, q) && task_decode(w, q) == 0)
        task_start(w, q);
}

/* ---- the other commands from the scheduler (2.4) ----------------------------------- */

static void cmd_ping(struct lbw_worker *w, struct lbw_request *q)
{
    char buf[64];
    if (w->run) {
        double p = w->progress;
        long long pv = isfinite(p) ? (long long)p : 0; /* int(): toward zero */
        snprintf(buf, sizeof(buf), "{\"ps\": 1, \"pv\": %lld}", pv);
    } else {
        snprintf(buf, sizeof(buf), "{\"ps\": 0, \"pv\": 0}");
    }
    reply_json(w, q->src, q->session, buf);
}

static void cmd_drop(struct lbw_worker *w, struct lbw_request *q)
{
    if (!w->run) {
        reply_json(w, q->src, q->session, "{}");
        return;
    }
    struct pending_reply *p = calloc(1, sizeof(*p));
    if (p && (p->src = strdup(q->src))) {
        memcpy(p->session, q->session, 16);
        p->next = w->drop_replies;
        w->drop_replies = p;
    } else {
        free(p);
    }
    LBW_INFO("worker", "drop requested by %s", q->src);
    kill_invocation(w);
}

static void cmd_quit(struct lbw_worker *w, struct lbw_request *q)
{
    reply_json(w, q->src, q->session, "{}");
    LBW_INFO("worker", "quit requested by %s", q->src);
    lbw_worker_stop(w);
}

static void log_sent(void *ctx, int status)
{
    lbw_jstream_free(ctx);
    if (status < 0)
        LBW_WARN("worker", "sending a log reply failed: %s", strerror(-status));
}

/* log (7.9). A request without an integer invoc_id is answered in the
 * reply's usual shape, both logs empty, with an "error" key saying why —
 * never left to the requester's 90 s timeout. */
static void cmd_log(struct lbw_worker *w, struct lbw_request *q)
{
    int t = q->args >= 0 ? lbw_json_get(&q->json, q->args, "invoc_id") : -1;
    int64_t id;
    if (t < 0 || lbw_json_i64(&q->json, t, &id) < 0) {
        LBW_WARN("worker", "log request from %s without an integer invoc_id: answered with an "
                           "error", q->src);
        reply_json(w, q->src, q->session,
                   "{\"stdout\": \"\", \"stderr\": \"\", \"error\": "
                   "\"log: invoc_id must be an integer\"}");
        return;
    }
    char dir[4096];
    int fds[2] = {-1, -1};
    /* the running invocation's own directory: it may have started before
     * the hello reply set db_uid (the scheduler sends tasks as soon as it
     * has registered us) */
    if (w->run && lbw_run_invocation_id(w->run) == id)
        lbw_run_open_logs(w->run, &fds[0], &fds[1]);
    else if (lbw_invlog_dir(w->o.log_root, w->db_uid, id, dir, sizeof(dir)) == 0)
        lbw_invlog_open_read(dir, &fds[0], &fds[1]);
    uint64_t total;
    int rc = 0;
    struct lbw_jstream *s = logs_body("{", 1, fds[0], fds[1], "}", &total, &rc);
    if (rc == 0)
        rc = lbw_msgnet_send_stream(w->net, q->src, LBW_MSG_DEFAULT, q->session, total,
                                    lbw_jstream_fill, s, log_sent, s);
    if (rc < 0) {
        lbw_jstream_free(s);
        LBW_WARN("worker", "cannot answer a log request: %s", strerror(-rc));
    }
}

static void cmd_status(struct lbw_worker *w, struct lbw_request *q)
{
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    lbw_jw_key(&j, "state");
    lbw_jw_i64(&j, w->run ? LBW_WS_BUSY : LBW_WS_IDLE);
    lbw_jw_key(&j, "invocation_id");
    if (w->run)
        lbw_jw_i64(&j, lbw_run_invocation_id(w->run));
    else
        lbw_jw_null(&j);
    lbw_jw_key(&j, "progress");
    lbw_jw_double(&j, w->run ? w->progress : 0.0);
    lbw_jw_key(&j, "worker_addr");
    lbw_jw_cstr(&j, w->own);
    lbw_jw_obj_end(&j);
    char *t = jw_done(&j);
    if (t)
        reply_json(w, q->src, q->session, t);
    free(t);
}

struct msg_reply { /* an invocation_message being delivered */
    struct lbw_worker *w;
    char *src;
    uint8_t session[16];
};

static void invocation_message_cb(void *ctx, const char *result)
{
    struct msg_reply *p = ctx;
    struct lbw_worker *w = p->w;
    char buf[96];
    snprintf(buf, sizeof(buf), "{\"result\": \"%s\"}", result);
    reply_json(w, p->src, p->session, buf);
    free(p->src);
    free(p);
}

/* invocation_message (7.10): the runtime server hands the message to a
 * payload waiting on the addressee mailbox of the running invocation.
 * Arguments that are missing or of the wrong type answer error-unknown, as
 * upstream's handler does when reading them raises. */
static void cmd_invocation_message(struct lbw_worker *w, struct lbw_request *q)
{
    struct lbw_json *j = &q->json;
    int a = q->args;
    int td = a >= 0 ? lbw_json_get(j, a, "dst_invoc_id") : -1;
    int ts = a >= 0 ? lbw_json_get(j, a, "src_invoc_id") : -1;
    int ta = a >= 0 ? lbw_json_get(j, a, "addressee") : -1;
    int tt = a >= 0 ? lbw_json_get(j, a, "addressee_timeout") : -1;
    int tm = a >= 0 ? lbw_json_get(j, a, "message_data_raw") : -1;
    int64_t dst, src = 0;
    double timeout;
    char *addressee = NULL;
    size_t alen = 0, dlen = 0;
    uint8_t *data = NULL;
    struct msg_reply *p = NULL;
    if (td < 0 || ts < 0 || ta < 0 || tt < 0 || tm < 0 || lbw_json_i64(j, td, &dst) < 0 ||
        lbw_json_double(j, tt, &timeout) < 0 || lbw_json_str(j, ta, &addressee, &alen) < 0 ||
        lbw_json_latin1(j, tm, &data, &dlen) < 0 ||
        (lbw_json_type(j, ts) != LBW_JSON_NULL && lbw_json_i64(j, ts, &src) < 0)) {
        LBW_WARN("worker", "invocation_message from %s with bad arguments", q->src);
        reply_json(w, q->src, q->session, "{\"result\": \"error-unknown\"}");
        goto out;
    }
    if (!(p = calloc(1, sizeof(*p))) || !(p->src = strdup(q->src))) {
        free(p);
        reply_json(w, q->src, q->session, "{\"result\": \"error-unknown\"}");
        goto out;
    }
    memcpy(p->session, q->session, 16);
    p->w = w;
    if (w->rt && !w->finishing)
        lbw_rt_deliver(w->rt, dst, addressee, alen, src > 0 ? (uint64_t)src : 0, data, dlen,
                       timeout, invocation_message_cb, p);
    else
        invocation_message_cb(p, "error-invoc-not-running");
out:
    free(addressee);
    free(data);
}

static const struct {
    const char *name;
    void (*run)(struct lbw_worker *w, struct lbw_request *q);
} commands[] = {
    {"ping", cmd_ping},
    {"task", cmd_task},
    {"drop", cmd_drop},
    {"quit", cmd_quit},
    {"log", cmd_log},
    {"status", cmd_status},
    {"invocation_message", cmd_invocation_message},
};

/* Every known command is answered, whatever its arguments: missing or
 * ill-typed ones get the command's own error reply (task: FAILED/exception,
 * log: an "error" key, invocation_message: error-unknown); "arguments" that
 * is not an object counts as none. Unknown commands are not answered, as
 * upstream does. */
static int on_request(void *ctx, struct lbw_frame *f)
{
    struct lbw_worker *w = ctx;
    struct lbw_request q;
    char err[256];
    if (lbw_request_parse(&q, f, err, sizeof(err)) < 0) {
        if (!q.name[0] || !q.src) { /* not a command at all */
            LBW_WARN("worker", "request from %s ignored: %s", f->src, err);
            lbw_request_free(&q);
            return 1;
        }
        LBW_WARN("worker", "%s; taken as a request without arguments", err);
        q.args = -1;
    }
    if (!q.has_session)
        lbw_session_new(q.session);
    LBW_DEBUG("worker", "command %s from %s", q.name, q.src);
    size_t i = 0;
    while (i < sizeof(commands) / sizeof(commands[0]) && strcmp(q.name, commands[i].name))
        i++;
    if (i < sizeof(commands) / sizeof(commands[0]))
        commands[i].run(w, &q);
    else
        LBW_WARN("worker", "unknown command '%s' from %s ignored", q.name, q.src);
    lbw_request_free(&q);
    return 1;
}

/* ---- stop (6.6): quiesce → drop → runtime → bye → ended -------------------------------- */

static void end_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    w->o.on_end(w->o.ctx, w->why);
}

/* ENDED: the listener closes; on_end comes from the loop. */
static void to_ended(struct lbw_worker *w)
{
    session_enter(w, SESSION_ENDED, "stop sequence done");
    lbw_addrwatch_close(w->aw);
    w->aw = NULL;
    lbw_msgnet_close(w->net);
    w->net = NULL;
    LBW_INFO("worker", "worker %s stopped", w->own);
    lbw_timer(w->r, &w->end_t, 1, 0, end_cb);
}

static void bye_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->bye_call = NULL;
    if (status < 0)
        LBW_DEBUG("worker", "worker.bye: %s", strerror(-status));
    stop_continue(w);
}

/* STOP_BYE: worker.bye if we ever registered (errors ignored). */
static void to_stop_bye(struct lbw_worker *w)
{
    session_enter(w, SESSION_STOP_BYE, "runtime API closed");
    if (w->hello_ok)
        w->bye_call = call_simple(w, "worker.bye", addr_args(w), 10 * SEC, bye_cb);
    if (!w->bye_call)
        to_ended(w);
}

/* Something started earlier is still to finish: its callback comes back
 * to stop_continue(). Timers are cancelled on the way. */
static int stop_waiting(struct lbw_worker *w)
{
    struct lbw_op *timers[] = {&w->ping_t, &w->retry_t, &w->call_t, &w->aw_op, &w->readv_t};
    int waiting = 0; /* (and the address watch's poll) */
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++)
        if (lbw_op_pending(timers[i])) {
            lbw_cancel(w->r, timers[i]);
            waiting = 1;
        }
    return waiting || w->ping_call || w->session_call || w->progress_call || w->pool_call ||
           w->report_call || w->bye_call || w->readv_call;
}

/* Moves the stop sequence on as far as it can go now. */
static void stop_continue(struct lbw_worker *w)
{
    if (w->state == SESSION_ENDED || stop_waiting(w))
        return;
    if (w->state == SESSION_STOP_QUIESCE)
        session_enter(w, SESSION_STOP_DROP, "nothing in flight");
    if (w->state == SESSION_STOP_DROP) {
        if (w->run && !w->finishing) {
            kill_invocation(w); /* after_invocation comes back here */
            return;
        }
        if (w->have_job)
            return; /* its report is still going */
        session_enter(w, SESSION_STOP_RUNTIME, "no invocation left");
    }
    if (w->state == SESSION_STOP_RUNTIME) {
        if (w->rt) {
            lbw_rt_close(w->rt); /* again: a no-op; rt_closed comes back here */
            return;
        }
        to_stop_bye(w);
        return;
    }
    if (w->state == SESSION_STOP_BYE)
        to_ended(w); /* bye answered (or failed) */
}

/* STOP_QUIESCE: from any state. New exchanges are refused from now on. */
void lbw_worker_stop(struct lbw_worker *w)
{
    if (is_stopping(w)) {
        stop_continue(w);
        return;
    }
    LBW_INFO("worker", "stopping worker %s", w->own);
    session_enter(w, SESSION_STOP_QUIESCE, "stop requested");
    if (w->net)
        lbw_msgnet_drain(w->net);
    if (w->ping_call)
        lbw_call_cancel(w->ping_call);
    if (w->session_call)
        lbw_call_cancel(w->session_call);
    if (w->readv_call)
        lbw_call_cancel(w->readv_call);
    if (w->task_src) {
        /* a task waiting for the pool's BUSY ack: it runs; answer it now */
        task_reply(w, w->task_src, w->task_session, 0, NULL, NULL);
        free(w->task_src);
        w->task_src = NULL;
    }
    stop_continue(w);
}

void lbw_worker_kill_now(struct lbw_worker *w)
{
    if (w->run) {
        lbw_tree_signal(getpid(), SIGKILL);
        killpg(lbw_run_pid(w->run), SIGKILL);
    }
}

/* ---- start ----------------------------------------------------------------------------- */

static void rt_closed(void *ctx)
{
    struct lbw_worker *w = ctx;
    w->rt = NULL;
    stop_continue(w);
}

static int bind_runtime(struct lbw_worker *w)
{
    uint32_t seed;
    if (getentropy(&seed, sizeof(seed)) < 0)
        seed = (uint32_t)getpid() ^ (uint32_t)lbw_now_ns();
    for (int i = 0; i < 1010; i++) {
        seed = seed * 1103515245u + 12345u;
        uint16_t port = (uint16_t)(10101 + (seed >> 8) % 1011);
        int fd = lbw_tcp_listen("127.0.0.1", port, 1024);
        if (fd >= 0) {
            w->rt_fd = fd;
            snprintf(w->rt_addr, sizeof(w->rt_addr), "127.0.0.1:%u", port);
            return 0;
        }
        if (fd != -EADDRINUSE)
            return fd;
    }
    return -EADDRINUSE;
}

/* The local address the kernel would use toward the scheduler's first hop. */
static void route_ip(const char *chain, char *ip, size_t cap)
{
    snprintf(ip, cap, "127.0.0.1");
    const char *s = chain;
    size_t n = strlen(chain);
    lbw_chain_trim(&s, &n);
    size_t fl = lbw_chain_first_len(s, n);
    char host[256];
    uint16_t port;
    if (lbw_addr_split(s, fl, host, sizeof(host), &port) < 0)
        return;
    struct addrinfo hints = {.ai_family = AF_INET}, *ai = NULL;
    char num[64];
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
        return;
    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, num, sizeof(num));
    freeaddrinfo(ai);
    if (lbw_route_source(num, ip, cap) < 0)
        snprintf(ip, cap, "127.0.0.1");
}

/* A listening socket on ip, port o->listen_port (6969) and up: the fd, or
 * -errno with a message. */
static int listen_from(struct lbw_worker *w, const char *ip, uint16_t *port_out, char *err,
                       size_t errlen)
{
    int lfd = -1;
    uint16_t port = w->o.listen_port ? w->o.listen_port : 6969;
    for (int i = 0; i < 1024; i++, port++) {
        lfd = lbw_tcp_listen(ip, port, LBW_LISTEN_BACKLOG);
        if (lfd != -EADDRINUSE)
            break;
    }
    if (lfd < 0)
        snprintf(err, errlen, "cannot listen on %s:%u and the next 1023 ports: %s", ip,
                 (unsigned)port, strerror(-lfd));
    *port_out = port;
    return lfd;
}

/* The address the scheduler knows us by: self, behind the pool in pool
 * mode. NULL when out of memory. */
static char *own_address(struct lbw_worker *w, const char *self)
{
    size_t l;
    return w->pool ? lbw_chain_join(w->pool, strlen(w->pool), self, strlen(self), &l)
                   : strdup(self);
}

/* The message listener on ip and the net on it; sets self and own. 0, or
 * -1 with a message. */
static int start_listener(struct lbw_worker *w, const char *ip, char *err, size_t errlen)
{
    uint16_t port;
    int lfd = listen_from(w, ip, &port, err, errlen);
    if (lfd < 0)
        return -1;
    snprintf(w->self, sizeof(w->self), "%s:%u", ip, (unsigned)port);
    w->own = own_address(w, w->self);
    struct lbw_msgnet_opts no = {.self = w->self, .allow = w->o.scheduler_allow};
    w->net = w->own ? lbw_msgnet_new(w->r, &no, on_request, w) : NULL;
    if (!w->net) {
        close(lfd);
        snprintf(err, errlen, "cannot set up the message listener");
        return -1;
    }
    if (lbw_msgnet_listen(w->net, lfd) < 0) {
        snprintf(err, errlen, "cannot accept on %s", w->self);
        return -1;
    }
    lbw_msgnet_prefer(w->net, w->o.scheduler); /* its room is kept under a flood */
    return 0;
}

/* The payload runtime API server on the port bind_runtime took. */
static int start_runtime_server(struct lbw_worker *w, char *err, size_t errlen)
{
    struct lbw_rt_opts rto = {
        .r = w->r,
        .listen_fd = w->rt_fd,
        .net = w->net,
        .scheduler = w->o.scheduler,
        .request_timeout_ns = w->o.runtime_request_timeout_ns,
        .on_closed = rt_closed,
        .ctx = w,
    };
    w->rt = lbw_rt_start(&rto);
    if (!w->rt) {
        snprintf(err, errlen, "cannot start the runtime API server");
        return -1;
    }
    w->rt_fd = -1; /* the server's now */
    return 0;
}

/* The listener moves to ip (a new socket, port 6969 and up) and the
 * worker reintroduces itself: bye as the old address, the running
 * invocation cancelled and reported dropped, hello as the new one. */
static void readdress(struct lbw_worker *w, const char *ip)
{
    char err[256], self[sizeof(w->self)];
    uint16_t port;
    int lfd = listen_from(w, ip, &port, err, sizeof(err));
    if (lfd < 0) {
        LBW_WARN("worker", "the route to the scheduler now leaves from %s, but %s: staying on %s",
                 ip, err, w->self);
        return;
    }
    snprintf(self, sizeof(self), "%s:%u", ip, (unsigned)port);
    char *own = own_address(w, self);
    int rc = own ? lbw_msgnet_relisten(w->net, self, lfd) : -ENOMEM;
    if (rc < 0) {
        LBW_WARN("worker", "cannot move the listener to %s: %s: staying on %s", self,
                 strerror(-rc), w->self);
        free(own);
        close(lfd);
        return;
    }
    LBW_INFO("worker", "the route to the scheduler now leaves from %s (was %s): listening on "
                       "%s, re-introducing from the new address",
             ip, w->listen_ip, self);
    if (!w->bye_as)
        w->bye_as = w->own; /* the scheduler knows us by this until the next hello */
    else
        free(w->own);
    w->own = own;
    snprintf(w->self, sizeof(w->self), "%s", self);
    snprintf(w->listen_ip, sizeof(w->listen_ip), "%s", ip);
    reintro_start(w, "our address changed");
}

/* After an address change: does the route to the scheduler leave from
 * another address now? (Not while a hello or a reintroduce is under way:
 * SERVING looks again.) The 127.0.0.1 fallback (no route at the moment)
 * is no move. */
static void check_route(struct lbw_worker *w)
{
    if (w->o.listen_ip || is_stopping(w))
        return;
    if (w->state != SESSION_SERVING) {
        w->readdress_pending = 1;
        return;
    }
    w->readdress_pending = 0;
    char ip[64];
    route_ip(w->o.scheduler, ip, sizeof(ip));
    LBW_DEBUG("worker", "the route to the scheduler leaves from %s", ip);
    if (strcmp(ip, w->listen_ip) && strcmp(ip, "127.0.0.1"))
        readdress(w, ip);
}

/* An address came or went: the route to the scheduler is checked again
 * (check_route). */
static void addr_changed(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res < 0 || is_stopping(w)) {
        if (is_stopping(w))
            stop_continue(w);
        return;
    }
    int n = lbw_addrwatch_drain(w->aw);
    if (n > 0) {
        LBW_DEBUG("worker", "%d address change(s)", n);
        check_route(w);
    }
    if (lbw_poll(w->r, &w->aw_op, w->aw_fd, POLLIN, addr_changed) < 0)
        LBW_WARN("worker", "cannot watch for address changes any more");
}

/* Watches address changes, unless the listen address is fixed. */
static void watch_addresses(struct lbw_worker *w)
{
    if (w->o.listen_ip)
        return;
    w->aw = lbw_addrwatch_open(&w->aw_fd);
    if (!w->aw || lbw_poll(w->r, &w->aw_op, w->aw_fd, POLLIN, addr_changed) < 0)
        LBW_WARN("worker", "cannot watch for address changes (%s): a new address will not "
                           "be noticed until the worker restarts",
                 strerror(errno));
}

struct lbw_worker *lbw_worker_start(const struct lbw_worker_opts *o, char *err, size_t errlen)
{
    struct lbw_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->o = *o;
    w->r = o->r;
    if (!w->o.ping_interval_ns)
        w->o.ping_interval_ns = 10 * SEC;
    if (!w->o.ping_misses)
        w->o.ping_misses = 6;
    if (!w->o.retry_wait_ns)
        w->o.retry_wait_ns = 10 * SEC;
    if (!(w->o.progress_interval >= 0))
        w->o.progress_interval = 1.0;
    w->rt_fd = -1;
    w->ping_t.user = w->retry_t.user = w->progress_t.user = w->end_t.user = w->call_t.user = w;
    w->readv_t.user = w;
    w->aw_op.user = w;
    w->reported = NAN;
    w->pool = o->pool_address ? strdup(o->pool_address) : NULL;
    int rc = bind_runtime(w);
    if (rc < 0) {
        snprintf(err, errlen, "cannot bind the runtime API server on 127.0.0.1:10101-11111: %s",
                 strerror(-rc));
        goto fail;
    }
    char ip[64];
    if (o->listen_ip)
        snprintf(ip, sizeof(ip), "%s", o->listen_ip);
    else
        route_ip(o->scheduler, ip, sizeof(ip));
    snprintf(w->listen_ip, sizeof(w->listen_ip), "%s", ip);
    if (start_listener(w, ip, err, errlen) < 0 || start_runtime_server(w, err, errlen) < 0)
        goto fail;
    LBW_INFO("worker", "listening on %s, runtime API on %s; saying hello to %s (no answer: a "
                       "word every %.1f s, the call gives up after %llu s)",
             w->self, w->rt_addr, o->scheduler,
             (double)(w->o.ping_interval_ns < CALL_PROGRESS_MAX ? w->o.ping_interval_ns
                                                                : CALL_PROGRESS_MAX) / 1e9,
             (unsigned long long)(CALL_TIMEOUT / SEC));
    if (to_hello(w) < 0) {
        snprintf(err, errlen, "cannot send worker.hello to %s", o->scheduler);
        goto fail;
    }
    watch_addresses(w);
    return w;
fail:
    if (w->rt)
        lbw_rt_abandon(w->rt); /* before the net its relays use */
    if (w->net)
        lbw_msgnet_close(w->net); /* frees itself once its operations are done */
    if (w->rt_fd >= 0)
        close(w->rt_fd);
    free(w->pool);
    free(w->own);
    free(w);
    return NULL;
}

void lbw_worker_free(struct lbw_worker *w)
{
    if (!w)
        return;
    while (w->drop_replies) {
        struct pending_reply *p = w->drop_replies;
        w->drop_replies = p->next;
        free(p->src);
        free(p);
    }
    lbw_request_free(&w->held);
    lbw_ledger_release_task(w->o.ledger, &w->claim);
    lbw_run_prep_free(&w->prep);
    free(w->task_src);
    free(w->bye_as);
    free(w->pool);
    free(w->own);
    free(w);
}
