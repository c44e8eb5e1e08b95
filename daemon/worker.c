/* worker.c — a worker instance's scheduler session (see worker.h). */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "invlog.h"
#include "invocation.h"
#include "json.h"
#include "jstream.h"
#include "log.h"
#include "msgnet.h"
#include "netlink.h"
#include "rpc.h"
#include "run.h"
#include "runtime_server.h"
#include "sock.h"
#include "spawn.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define REPORT_TIMEOUT (120 * SEC) /* the scheduler may hold done up to 60 s (INVOKING) */

enum { WS_IDLE = 1, WS_BUSY = 2 };

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
    int hello_ok;

    /* pinger */
    struct lbw_op ping_t;
    struct lbw_call *ping_call;
    int ping_running;
    unsigned missed;

    /* reintroduce */
    int reintro;            /* 0 none, else the step */
    unsigned reintro_tries;
    struct lbw_op retry_t;
    struct lbw_call *reintro_call;

    /* the invocation */
    struct lbw_inv job;
    int have_job;
    struct lbw_run *run;
    int finishing;          /* the run ended; its report is under way */
    int idle_pending;       /* pool: IDLE to report once the BUSY report is done */
    char *report_to;
    double progress;
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

    /* stopping */
    int stopping;
    int stop_step;
    struct lbw_call *bye_call;
    enum lbw_worker_end why;
    int ended;
    struct lbw_op end_t;
};

static void stop_continue(struct lbw_worker *w);
static void reintro_continue(struct lbw_worker *w);
static void cmd_task(struct lbw_worker *w, struct lbw_request *q);
static void task_reply(struct lbw_worker *w, const char *src, const uint8_t *session, int status,
                       const char *msg, const char *err_class);
static void finish_report(struct lbw_worker *w);
static void progress_check(struct lbw_worker *w);

const char *lbw_worker_address(const struct lbw_worker *w) { return w->own; }

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

static void pool_report(struct lbw_worker *w, int state, lbw_call_cb cb)
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
    w->pool_call = args ? lbw_call_start(w->net, w->r, w->pool, "worker.state_report", args, 0,
                                         cb, w)
                        : NULL;
    free(args);
    if (!w->pool_call)
        cb(w, -ENOMEM, NULL);
}

/* ---- hello / bye --------------------------------------------------------------- */

static char *hello_args(struct lbw_worker *w)
{
    uint8_t *pk;
    size_t pkl;
    if (lbw_resources_encode(w->o.res, &pk, &pkl) < 0)
        return NULL;
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

static char *addr_args(struct lbw_worker *w)
{
    struct lbw_jw j;
    lbw_jw_init(&j);
    lbw_jw_obj(&j);
    lbw_jw_key(&j, "worker_addr");
    lbw_jw_cstr(&j, w->own);
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

static void ping_tick(lbw_reactor *r, struct lbw_op *op, int64_t res);

static void start_pinger(struct lbw_worker *w)
{
    if (!lbw_op_pending(&w->ping_t) && !w->stopping)
        lbw_timer(w->r, &w->ping_t, w->o.ping_interval_ns, w->o.ping_interval_ns, ping_tick);
}

static void hello_pool_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->pool_call = NULL;
    if (status < 0)
        LBW_WARN("worker", "reporting IDLE to the pool %s failed: %s", w->pool,
                 strerror(-status));
    if (w->stopping) {
        stop_continue(w);
        return;
    }
    start_pinger(w);
}

static void hello_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->reintro_call = NULL;
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
    LBW_INFO("worker", "registered with the scheduler at %s as %s (db_uid %016llx)",
             w->o.scheduler, w->own, (unsigned long long)uid);
    if (w->stopping) {
        stop_continue(w);
        return;
    }
    if (w->pool)
        pool_report(w, WS_IDLE, hello_pool_cb);
    else
        start_pinger(w);
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
    progress_check(w);
}

static void progress_tick(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res > 0)
        progress_check(w);
}

/* Reports the current value if it changed, nothing is in flight and the
 * interval since the last report passed; otherwise looks again later. */
static void progress_check(struct lbw_worker *w)
{
    if (!w->run || w->finishing || w->progress_call || w->stopping)
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

static void on_progress(void *ctx, double v)
{
    struct lbw_worker *w = ctx;
    if (isnan(v))
        return;
    w->progress = v;
    progress_check(w);
}

/* ---- the end of an invocation ------------------------------------------------------ */

static void clear_invocation(struct lbw_worker *w)
{
    lbw_run_free(w->run, 1);
    w->run = NULL;
    if (w->have_job)
        lbw_inv_free(&w->job);
    w->have_job = 0;
    w->finishing = 0;
    w->idle_pending = 0;
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
        if (w->o.singleshot && !w->stopping)
            task_reply(w, q.src, q.session, 1, "worker is stopping", "stopping");
        else
            cmd_task(w, &q); /* stopping / reintroducing: answered as such */
        lbw_request_free(&q);
        if (w->run)
            return;
    }
    if (w->stopping) {
        stop_continue(w);
        return;
    }
    if (w->reintro) {
        reintro_continue(w);
        return;
    }
    if (w->o.singleshot) {
        LBW_INFO("worker", "single-shot worker: the invocation %s, stopping",
                 killed ? "was cancelled" : "finished");
        lbw_worker_stop(w);
    }
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
        if (!w->stopping) {
            w->why = LBW_WORKER_LOST;
            w->stopping = 1; /* begin after the report below */
            lbw_msgnet_drain(w->net);
        }
    }
    finish_report(w);
}

/* Steps after the run ended: pool IDLE, wait for a progress report in
 * flight, then the report. */
static void finish_report(struct lbw_worker *w)
{
    if (w->pool_call || w->progress_call || w->report_call)
        return;
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
        pool_report(w, WS_IDLE, finish_pool_cb);
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

/* ---- commands from the scheduler ---------------------------------------------------- */

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
        pool_report(w, WS_IDLE, finish_pool_cb);
    }
}

static void cmd_task(struct lbw_worker *w, struct lbw_request *q)
{
    if (w->stopping) {
        task_reply(w, q->src, q->session, 1, "worker is stopping", "stopping");
        return;
    }
    if (w->finishing && !w->held.src && !w->reintro) {
        /* the previous invocation is being reported: this task waits for
         * that (a scheduler sends the next task as soon as it has the
         * report, possibly before its reply reached us) */
        w->held = *q;
        memset(q, 0, sizeof(*q));
        return;
    }
    if (w->run || w->have_job || w->reintro) {
        task_reply(w, q->src, q->session, 2, "worker already working on a task", NULL);
        return;
    }
    int t = q->args >= 0 ? lbw_json_get(&q->json, q->args, "task") : -1;
    uint8_t *pk = NULL;
    size_t pkl = 0;
    char err[512], msg[1200];
    if (t < 0 || lbw_json_latin1(&q->json, t, &pk, &pkl) < 0) {
        task_reply(w, q->src, q->session, 1, "error happened: no task pickle in the request",
                   "exception");
        return;
    }
    int rc = lbw_inv_load(&w->job, pk, pkl, err, sizeof(err));
    free(pk);
    if (rc < 0) {
        lbw_inv_free(&w->job);
        LBW_WARN("worker", "task from %s refused: %s", q->src, err);
        snprintf(msg, sizeof(msg), "error happened: %s", err);
        task_reply(w, q->src, q->session, 1, msg, "exception");
        return;
    }
    w->have_job = 1;
    /* where done/dropped/progress go */
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
    const char *rname = NULL;
    const struct lbw_toml *rargs = NULL;
    const struct lbw_toml *dn = lbw_toml_get(w->o.cfg, "default_env_wrapper.name");
    if (dn && dn->type == LBW_TOML_STRING)
        rname = dn->u.str.s;
    rargs = lbw_toml_get(w->o.cfg, "default_env_wrapper.arguments");
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
        .cgroup_parent = w->o.cgroup_parent,
        .kill_grace_ns = w->o.kill_grace_ns,
        .on_progress = on_progress,
        .on_end = on_end,
        .ctx = w,
    };
    const char *cls;
    if (!w->report_to || lbw_run_start(&ro, &w->job, &w->run, &cls, msg, sizeof(msg)) < 0) {
        if (!w->report_to) {
            cls = "exception";
            snprintf(msg, sizeof(msg), "error happened: out of memory");
        }
        clear_invocation(w);
        task_reply(w, q->src, q->session, 1, msg, cls);
        return;
    }
    if (w->rt)
        lbw_rt_invocation_begin(w->rt, lbw_run_invocation_id(w->run));
    w->progress = 0;
    w->reported = NAN;
    w->progress_done_at = 0;
    lbw_timer(w->r, &w->progress_t, SEC, 0, progress_tick); /* first check after 1 s */
    if (w->pool) {
        w->task_src = strdup(q->src);
        memcpy(w->task_session, q->session, 16);
        pool_report(w, WS_BUSY, task_busy_cb);
        return;
    }
    task_reply(w, q->src, q->session, 0, NULL, NULL);
}

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

static void log_sent(void *ctx, int status)
{
    lbw_jstream_free(ctx);
    if (status < 0)
        LBW_WARN("worker", "sending a log reply failed: %s", strerror(-status));
}

static void cmd_log(struct lbw_worker *w, struct lbw_request *q)
{
    int t = q->args >= 0 ? lbw_json_get(&q->json, q->args, "invoc_id") : -1;
    int64_t id;
    if (t < 0 || lbw_json_i64(&q->json, t, &id) < 0) {
        LBW_WARN("worker", "log request from %s without an integer invoc_id", q->src);
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
    lbw_jw_i64(&j, w->run ? WS_BUSY : WS_IDLE);
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

static int on_request(void *ctx, struct lbw_frame *f)
{
    struct lbw_worker *w = ctx;
    struct lbw_request q;
    char err[256];
    if (lbw_request_parse(&q, f, err, sizeof(err)) < 0) {
        LBW_WARN("worker", "request from %s ignored: %s", f->src, err);
        lbw_request_free(&q);
        return 1;
    }
    if (!q.has_session)
        lbw_session_new(q.session);
    LBW_DEBUG("worker", "command %s from %s", q.name, q.src);
    if (!strcmp(q.name, "ping"))
        cmd_ping(w, &q);
    else if (!strcmp(q.name, "task"))
        cmd_task(w, &q);
    else if (!strcmp(q.name, "drop"))
        cmd_drop(w, &q);
    else if (!strcmp(q.name, "quit")) {
        reply_json(w, q.src, q.session, "{}");
        LBW_INFO("worker", "quit requested by %s", q.src);
        lbw_worker_stop(w);
    } else if (!strcmp(q.name, "log"))
        cmd_log(w, &q);
    else if (!strcmp(q.name, "status"))
        cmd_status(w, &q);
    else if (!strcmp(q.name, "invocation_message"))
        cmd_invocation_message(w, &q);
    else
        LBW_WARN("worker", "unknown command '%s' from %s ignored", q.name, q.src);
    lbw_request_free(&q);
    return 1;
}

/* ---- pinger and reintroduce ------------------------------------------------------- */

static void reintro_start(struct lbw_worker *w)
{
    if (w->reintro || w->stopping)
        return;
    LBW_INFO("worker", "the scheduler does not know our state: reintroducing");
    w->reintro = 1;
    w->reintro_tries = 0;
    reintro_continue(w);
}

static void retry_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res < 0 || w->stopping) {
        if (w->stopping)
            stop_continue(w);
        return;
    }
    w->reintro = 1;
    reintro_continue(w);
}

static void reintro_failed(struct lbw_worker *w, const char *what, int status)
{
    w->reintro_tries++;
    LBW_WARN("worker", "reintroduce attempt %u: %s failed: %s", w->reintro_tries, what,
             strerror(-status));
    if (w->reintro_tries >= 5) {
        LBW_ERROR("worker", "could not reintroduce after 5 attempts: stopping");
        w->reintro = 0;
        w->why = LBW_WORKER_LOST;
        lbw_worker_stop(w);
        return;
    }
    w->reintro = 1;
    lbw_timer(w->r, &w->retry_t, w->o.retry_wait_ns, 0, retry_cb);
}

static void reintro_bye_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->reintro_call = NULL;
    if (w->stopping) {
        stop_continue(w);
        return;
    }
    if (status < 0) {
        reintro_failed(w, "worker.bye", status);
        return;
    }
    w->reintro = 2;
    reintro_continue(w);
}

static void reintro_hello_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->reintro_call = NULL;
    uint64_t uid;
    if (w->stopping) {
        stop_continue(w);
        return;
    }
    if (status < 0 || read_db_uid(reply, &uid) < 0) {
        reintro_failed(w, "worker.hello", status < 0 ? status : -EBADMSG);
        return;
    }
    w->db_uid = uid;
    w->reintro = 0;
    w->missed = 0;
    LBW_INFO("worker", "reintroduced (db_uid %016llx)", (unsigned long long)uid);
}

/* bye -> cancel the running invocation (its dropped report) -> hello */
static void reintro_continue(struct lbw_worker *w)
{
    if (w->stopping || w->reintro_call || lbw_op_pending(&w->retry_t))
        return;
    if (w->reintro == 1) {
        w->reintro_call = call_simple(w, "worker.bye", addr_args(w), 0, reintro_bye_cb);
        if (!w->reintro_call)
            reintro_failed(w, "worker.bye", -ENOMEM);
    } else if (w->reintro == 2) {
        if (w->run) {
            kill_invocation(w); /* after_invocation comes back here */
            return;
        }
        if (w->have_job)
            return; /* its report is still going */
        w->reintro = 3;
        w->reintro_call = call_simple(w, "worker.hello", hello_args(w), 0, reintro_hello_cb);
        if (!w->reintro_call)
            reintro_failed(w, "worker.hello", -ENOMEM);
    }
}

static void ping_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->ping_call = NULL;
    if (w->stopping) {
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
    int running = w->ping_running;
    if (st == 0 || st == 5 || (st == 2 && !running) || (st == 1 && running))
        reintro_start(w);
}

static void ping_tick(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    if (res < 0) {
        if (w->stopping)
            stop_continue(w);
        return;
    }
    if (w->ping_call || w->reintro || w->stopping || !w->hello_ok)
        return;
    w->ping_running = w->run != NULL;
    w->ping_call = call_simple(w, "worker.ping", addr_args(w), 0, ping_cb);
}

/* ---- stop ----------------------------------------------------------------------------- */

static void end_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct lbw_worker *w = op->user;
    w->o.on_end(w->o.ctx, w->why);
}

static void bye_cb(void *ctx, int status, struct lbw_json *reply)
{
    struct lbw_worker *w = ctx;
    w->bye_call = NULL;
    if (status < 0)
        LBW_DEBUG("worker", "worker.bye: %s", strerror(-status));
    stop_continue(w);
}

/* pinger -> invocation (dropped) -> runtime server -> bye -> listener */
static void stop_continue(struct lbw_worker *w)
{
    if (w->ended)
        return;
    if (lbw_op_pending(&w->ping_t)) {
        lbw_cancel(w->r, &w->ping_t);
        return;
    }
    if (lbw_op_pending(&w->retry_t)) {
        lbw_cancel(w->r, &w->retry_t);
        return;
    }
    if (w->ping_call || w->reintro_call || w->progress_call || w->pool_call ||
        w->report_call || w->bye_call)
        return; /* their callbacks come back here */
    if (w->run && !w->finishing) {
        kill_invocation(w);
        return;
    }
    if (w->have_job)
        return;
    if (w->rt) {
        lbw_rt_close(w->rt); /* again: a no-op; rt_closed comes back here */
        return;
    }
    if (w->stop_step == 0) {
        w->stop_step = 1;
        if (w->hello_ok) {
            w->bye_call = call_simple(w, "worker.bye", addr_args(w), 10 * SEC, bye_cb);
            if (w->bye_call)
                return;
        }
    }
    w->ended = 1;
    lbw_msgnet_close(w->net);
    w->net = NULL;
    LBW_INFO("worker", "worker %s stopped", w->own);
    lbw_timer(w->r, &w->end_t, 1, 0, end_cb);
}

void lbw_worker_stop(struct lbw_worker *w)
{
    if (w->stopping) {
        stop_continue(w);
        return;
    }
    w->stopping = 1;
    LBW_INFO("worker", "stopping worker %s", w->own);
    if (w->net)
        lbw_msgnet_drain(w->net);
    if (w->ping_call)
        lbw_call_cancel(w->ping_call);
    if (w->reintro_call)
        lbw_call_cancel(w->reintro_call);
    if (w->task_src) {
        /* a task waiting for the pool's BUSY ack: it runs; answer it now */
        task_reply(w, w->task_src, w->task_session, 0, NULL, NULL);
        free(w->task_src);
        w->task_src = NULL;
    }
    w->reintro = 0;
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
    w->ping_t.user = w->retry_t.user = w->progress_t.user = w->end_t.user = w;
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
    int lfd = -1;
    uint16_t port = o->listen_port ? o->listen_port : 6969;
    for (int i = 0; i < 1024; i++, port++) {
        lfd = lbw_tcp_listen(ip, port, LBW_LISTEN_BACKLOG);
        if (lfd != -EADDRINUSE)
            break;
    }
    if (lfd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%u and the next 1023 ports: %s", ip,
                 (unsigned)port, strerror(-lfd));
        goto fail;
    }
    snprintf(w->self, sizeof(w->self), "%s:%u", ip, (unsigned)port);
    if (w->pool) {
        size_t l;
        w->own = lbw_chain_join(w->pool, strlen(w->pool), w->self, strlen(w->self), &l);
    } else {
        w->own = strdup(w->self);
    }
    struct lbw_msgnet_opts no = {.self = w->self, .allow = o->scheduler_allow};
    w->net = w->own ? lbw_msgnet_new(w->r, &no, on_request, w) : NULL;
    if (!w->net) {
        close(lfd);
        snprintf(err, errlen, "cannot set up the message listener");
        goto fail;
    }
    if (lbw_msgnet_listen(w->net, lfd) < 0) {
        snprintf(err, errlen, "cannot accept on %s", w->self);
        goto fail;
    }
    lbw_msgnet_prefer(w->net, o->scheduler); /* its room is kept under a flood */
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
        goto fail;
    }
    w->rt_fd = -1; /* the server's now */
    LBW_INFO("worker", "listening on %s, runtime API on %s; saying hello to %s", w->self,
             w->rt_addr, o->scheduler);
    w->reintro_call = call_simple(w, "worker.hello", hello_args(w), 0, hello_cb);
    if (!w->reintro_call) {
        snprintf(err, errlen, "cannot send worker.hello to %s", o->scheduler);
        goto fail;
    }
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
    free(w->task_src);
    free(w->pool);
    free(w->own);
    free(w);
}
