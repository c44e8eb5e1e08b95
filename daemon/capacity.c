/* capacity.c — see capacity.h. */
#include "capacity.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "ledger.h"
#include "log.h"
#include "uevent.h"

#define MAX_WATCHES 128
#define DRAIN_MAX 64 /* reads per wake-up of one fd */
#define COALESCE_NS (250ull * 1000000ull) /* a burst of events: one probe per this long */

/* The files that bound capacity, per hierarchy (NULL: v2). */
static const struct {
    const char *controller;
    const char *files[4];
} bounding[] = {
    {NULL, {"cpuset.cpus", "memory.max", "cpu.max", NULL}},
    {"cpuset", {"cpuset.cpus", "cpus", NULL}},
    {"memory", {"memory.limit_in_bytes", NULL}},
    {"cpu", {"cpu.cfs_quota_us", "cpu.cfs_period_us", NULL}},
};

struct files_walk {
    const char *root;
    const char *const *files;
    size_t n, max;
    void (*fn)(void *ctx, const char *path);
    void *ctx;
};

static int files_level(void *ctx, const char *dir)
{
    struct files_walk *w = ctx;
    for (size_t i = 0; w->files[i] && w->n < w->max; i++) {
        char p[LBW_CG_PATH_MAX * 2 + 64];
        snprintf(p, sizeof(p), "%s%s/%s", strcmp(w->root, "/") ? w->root : "", dir, w->files[i]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            w->fn(w->ctx, p);
            w->n++;
        }
    }
    return w->n >= w->max;
}

size_t lbw_capacity_files(const char *root, size_t max, void (*fn)(void *ctx, const char *path),
                          void *ctx)
{
    struct files_walk w = {.root = root, .max = max, .fn = fn, .ctx = ctx};
    for (size_t i = 0; i < sizeof(bounding) / sizeof(bounding[0]); i++) {
        char dir[LBW_CG_PATH_MAX], mnt[LBW_CG_PATH_MAX];
        if (lbw_cg_self_dir(root, bounding[i].controller, dir, sizeof(dir), mnt, sizeof(mnt)) < 0)
            continue;
        if (!bounding[i].controller && !strcmp(lbw_cg_mode(root), "v1"))
            continue;
        w.files = bounding[i].files;
        lbw_cg_walk_up(dir, mnt, files_level, &w);
    }
    return w.n;
}

/* One fd the reactor polls for us (freed by its callback when retired
 * while the poll is out). */
struct watch {
    struct lbw_capacity *c;
    int fd;
    int dead;
    struct lbw_op op;
};

/* The coalescing timer (freed by its callback when retired while armed). */
struct later {
    struct lbw_capacity *c;
    struct lbw_op op;
};

struct lbw_capacity {
    struct lbw_capacity_opts o;
    struct lbw_probe_opts po;
    char root[LBW_CG_PATH_MAX];
    struct watch *ino, *uev;
    struct later *later;
    uint64_t last_probe;  /* lbw_now_ns() of the last probe */
    size_t probes, held;  /* probes made; events held back for the next one */
    char pending[LBW_CG_PATH_MAX + 32]; /* why the next probe is due, "" none */
    int wd[MAX_WATCHES];
    char *path[MAX_WATCHES];
    size_t nwd;
};

static void watch_retire(lbw_reactor *r, struct watch *w)
{
    if (!w)
        return;
    w->dead = 1;
    w->c = NULL;
    if (lbw_cancel(r, &w->op) < 0) {
        close(w->fd);
        free(w);
    }
}

/* The callback's start: the capacity object, or NULL when the watch was
 * retired (freed here). */
static struct lbw_capacity *watch_live(struct watch *w)
{
    if (w->dead || !w->c) {
        close(w->fd);
        free(w);
        return NULL;
    }
    return w->c;
}

static void add_watch(void *ctx, const char *path)
{
    struct lbw_capacity *c = ctx;
    if (c->nwd >= MAX_WATCHES)
        return;
    int wd = inotify_add_watch(c->ino->fd, path, IN_MODIFY);
    if (wd < 0)
        return;
    for (size_t i = 0; i < c->nwd; i++)
        if (c->wd[i] == wd)
            return; /* the same file twice (a hierarchy mounted twice) */
    char *p = strdup(path);
    if (!p)
        return;
    c->wd[c->nwd] = wd;
    c->path[c->nwd++] = p;
}

/* Watches the files not watched yet (a controller file may appear; a
 * file already watched keeps its watch descriptor). */
static void rewatch(struct lbw_capacity *c)
{
    lbw_capacity_files(c->root, MAX_WATCHES, add_watch, c);
}

/* A watch the kernel ended (its file went with its cgroup). */
static void unwatch(struct lbw_capacity *c, int wd)
{
    for (size_t i = 0; i < c->nwd; i++)
        if (c->wd[i] == wd) {
            free(c->path[i]);
            c->wd[i] = c->wd[--c->nwd];
            c->path[i] = c->path[c->nwd];
            return;
        }
}

/* ---- comparing what was probed ------------------------------------------------- */

static double numv(const struct lbw_num *n) { return n->is_float ? n->f : (double)n->i; }

static int topo_same(const struct lbw_topo *a, const struct lbw_topo *b)
{
    if (a->cpu_cap != b->cpu_cap || a->mem_cap != b->mem_cap || a->gpu_cap != b->gpu_cap ||
        a->gmem_cap != b->gmem_cap || a->ncpus != b->ncpus || a->ngpus != b->ngpus ||
        memcmp(a->node_mem, b->node_mem, sizeof(a->node_mem)))
        return 0;
    for (unsigned i = 0; i < a->ncpus; i++)
        if (a->cpus[i].id != b->cpus[i].id || a->cpus[i].node != b->cpus[i].node ||
            a->cpus[i].core != b->cpus[i].core || a->cpus[i].eff != b->cpus[i].eff)
            return 0;
    for (unsigned i = 0; i < a->ngpus; i++)
        if (a->gpus[i].node != b->gpus[i].node || strcmp(a->gpus[i].key, b->gpus[i].key) ||
            strcmp(a->gpus[i].id, b->gpus[i].id))
            return 0;
    return 1;
}

static void topo_cpus(const struct lbw_topo *t, char *out, size_t cap)
{
    struct lbw_cpuset s;
    lbw_cpuset_clear(&s);
    for (unsigned i = 0; i < t->ncpus; i++)
        lbw_cpuset_set(&s, t->cpus[i].id);
    lbw_cpuset_format(&s, out, cap);
}

/* "CPUs 2 -> 1, " for each advertised total that changed. */
static size_t res_diff(const struct lbw_resources *a, const struct lbw_resources *b, char *out,
                       size_t cap)
{
    static const struct {
        const char *name;
        size_t off;
    } f[] = {
        {"CPUs", offsetof(struct lbw_resources, total_cpu_count)},
        {"memory", offsetof(struct lbw_resources, total_cpu_mem)},
        {"GPUs", offsetof(struct lbw_resources, total_gpu_count)},
        {"GPU memory", offsetof(struct lbw_resources, total_gpu_mem)},
    };
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        double x = numv((const struct lbw_num *)((const char *)a + f[i].off));
        double y = numv((const struct lbw_num *)((const char *)b + f[i].off));
        if (x == y)
            continue;
        int n = snprintf(out + k, cap - k, "%s%s %.17g -> %.17g", k ? ", " : "", f[i].name, x, y);
        if (n < 0 || (size_t)n >= cap - k)
            break;
        k += (size_t)n;
    }
    return k;
}

int lbw_capacity_refresh(struct lbw_capacity *c, const char *why)
{
    struct lbw_host *h = malloc(sizeof(*h));
    struct lbw_advertised *adv = malloc(sizeof(*adv));
    struct lbw_topo *t = malloc(sizeof(*t));
    int changed = 0;
    c->probes++;
    c->last_probe = lbw_now_ns();
    if (!h || !adv || !t)
        goto out;
    lbw_probe_host(&c->po, h);
    h->hwid = c->o.host->hwid; /* the mesh and the scheduler know the host by it */
    lbw_advertise(h, c->o.cfg, adv);
    lbw_ledger_topo_from_host(h, c->root, &adv->res, t);
    char diff[400], was[256], now[256];
    size_t dl = res_diff(&c->o.adv->res, &adv->res, diff, sizeof(diff));
    const struct lbw_topo *old = c->o.ledger ? lbw_ledger_topo(c->o.ledger) : NULL;
    int topo_changed = old && !topo_same(old, t);
    if (topo_changed) {
        topo_cpus(old, was, sizeof(was));
        topo_cpus(t, now, sizeof(now));
        LBW_INFO("capacity", "%s: advertised %s; claims are pinned to CPUs %s -> %s, GPUs %u "
                             "-> %u",
                 why, dl ? diff : "unchanged ([resources] overrides)", was, now, old->ngpus,
                 t->ngpus);
    } else if (dl) {
        LBW_INFO("capacity", "%s: advertised %s", why, diff);
    } else {
        LBW_DEBUG("capacity", "%s: nothing the worker offers changed", why);
    }
    changed = dl || topo_changed;
    *c->o.host = *h;
    if (dl) {
        adv->res.hwid = c->o.adv->res.hwid;
        *c->o.adv = *adv;
    }
    if (topo_changed)
        lbw_ledger_set_topo(c->o.ledger, t); /* calls the ledger's on_change */
    if (changed && !c->o.ledger && c->o.on_change)
        c->o.on_change(c->o.ctx);
out:
    free(h);
    free(adv);
    free(t);
    return changed;
}

/* ---- the reactor's side -------------------------------------------------------- */

size_t lbw_capacity_probes(const struct lbw_capacity *c)
{
    return c ? c->probes : 0;
}

static void later_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct later *l = op->user;
    struct lbw_capacity *c = l->c;
    if (!c) {
        free(l);
        return;
    }
    if (!c->pending[0])
        return;
    char why[sizeof(c->pending) + 48];
    snprintf(why, sizeof(why), "%s%s", c->pending,
             c->held > 1 ? " (and later events, probed once)" : "");
    c->pending[0] = 0;
    c->held = 0;
    lbw_capacity_refresh(c, why);
    rewatch(c);
}

/* An event asks for a probe: at once when the last one is older than
 * COALESCE_NS, else once when that time is up, however many events come
 * meanwhile (a hot-plugged DIMM sends thousands; a flood of writes to a
 * watched file): the work per burst is bounded, and the last state is
 * always probed. */
static void want_probe(struct lbw_capacity *c, const char *why)
{
    uint64_t now = lbw_now_ns();
    int armed = c->later && lbw_op_pending(&c->later->op);
    if (!c->later || (!armed && (!c->probes || now - c->last_probe >= COALESCE_NS))) {
        lbw_capacity_refresh(c, why);
        rewatch(c);
        return;
    }
    if (!c->pending[0])
        snprintf(c->pending, sizeof(c->pending), "%s", why);
    c->held++;
    if (!armed) {
        uint64_t due = c->last_probe + COALESCE_NS;
        if (lbw_timer(c->o.r, &c->later->op, due > now ? due - now : 1, 0, later_cb) < 0) {
            c->pending[0] = 0;
            lbw_capacity_refresh(c, why);
        }
    }
}

static void ino_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct watch *w = op->user;
    struct lbw_capacity *c = watch_live(w);
    if (!c)
        return;
    char why[LBW_CG_PATH_MAX + 32] = "";
    int seen = 0;
    _Alignas(struct inotify_event) char buf[4096];
    for (unsigned i = 0; i < DRAIN_MAX; i++) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            off += (ssize_t)sizeof(*ev) + ev->len;
            if (ev->mask & IN_IGNORED) {
                unwatch(c, ev->wd);
                continue;
            }
            for (size_t k = 0; k < c->nwd && !why[0]; k++)
                if (c->wd[k] == ev->wd)
                    snprintf(why, sizeof(why), "%s changed", c->path[k]);
            seen = 1;
        }
    }
    if (seen) /* a change, or IN_Q_OVERFLOW: changes were lost */
        want_probe(c, why[0] ? why : "a cgroup file changed");
    lbw_poll(r, &w->op, w->fd, POLLIN, ino_cb);
}

static void uev_cb(lbw_reactor *r, struct lbw_op *op, int64_t res)
{
    struct watch *w = op->user;
    struct lbw_capacity *c = watch_live(w);
    if (!c)
        return;
    char why[320] = "";
    int lost = 0;
    char *buf = malloc(LBW_UEVENT_MAX);
    for (unsigned i = 0; buf && i < DRAIN_MAX; i++) {
        ssize_t n = lbw_uevent_recv(w->fd, buf, LBW_UEVENT_MAX);
        if (n == 0 || n == -EAGAIN)
            break;
        if (n < 0) { /* -ENOBUFS: events were lost; -EMSGSIZE: one was too long */
            lost = 1;
            if (n != -ENOBUFS && n != -EMSGSIZE)
                break;
            continue;
        }
        struct lbw_uevent ev;
        if (lbw_uevent_parse(buf, (size_t)n, &ev) == 0 && lbw_uevent_capacity(&ev) && !why[0])
            snprintf(why, sizeof(why), "device event: %s %.200s", ev.action, ev.devpath);
    }
    free(buf);
    if (why[0] || lost)
        want_probe(c, why[0] ? why : "device events were lost");
    lbw_poll(r, &w->op, w->fd, POLLIN, uev_cb);
}

static struct watch *watch_new(struct lbw_capacity *c, int fd)
{
    struct watch *w = calloc(1, sizeof(*w));
    if (!w) {
        close(fd);
        return NULL;
    }
    w->c = c;
    w->fd = fd;
    w->op.user = w;
    return w;
}

struct lbw_capacity *lbw_capacity_open(const struct lbw_capacity_opts *o)
{
    struct lbw_capacity *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->o = *o;
    if (o->probe)
        c->po = *o->probe;
    snprintf(c->root, sizeof(c->root), "%s", c->po.root ? c->po.root : "/");
    c->po.root = c->root;
    c->o.probe = &c->po;
    c->later = calloc(1, sizeof(*c->later));
    if (c->later) {
        c->later->c = c;
        c->later->op.user = c->later;
    }
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0 && (c->ino = watch_new(c, fd))) {
        rewatch(c);
        lbw_poll(o->r, &c->ino->op, c->ino->fd, POLLIN, ino_cb);
    }
    fd = o->no_uevents ? -EPERM : lbw_uevent_open();
    if (fd >= 0 && (c->uev = watch_new(c, fd)))
        lbw_poll(o->r, &c->uev->op, c->uev->fd, POLLIN, uev_cb);
    if (!c->ino && !c->uev) {
        LBW_WARN("capacity", "neither inotify nor device events: what this worker offers stays "
                             "what it was at start");
        free(c->later);
        free(c);
        return NULL;
    }
    LBW_INFO("capacity", "following the host: %zu cgroup file(s) watched%s", c->nwd,
             c->uev ? ", device events (CPU, memory, GPU hot-plug)"
                    : o->no_uevents ? "" : "; no device events (hot-plug is not followed)");
    return c;
}

void lbw_capacity_close(struct lbw_capacity *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nwd; i++)
        free(c->path[i]);
    watch_retire(c->o.r, c->ino);
    watch_retire(c->o.r, c->uev);
    if (c->later) {
        c->later->c = NULL;
        if (lbw_cancel(c->o.r, &c->later->op) < 0)
            free(c->later); /* not armed; else its callback frees it */
    }
    free(c);
}
