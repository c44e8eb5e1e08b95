/* invcg.c — see invcg.h. */
#include "invcg.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"

#define EMPTY_WAIT_MS 3000 /* for killed processes to be gone, per directory */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Kills everything in dir, waits (bounded) until it is empty, removes it.
 * Returns how many processes were in it. */
static size_t end_and_remove(const char *dir)
{
    ssize_t n = lbw_cg_kill(dir);
    for (int i = 0; i < EMPTY_WAIT_MS / 5 && lbw_cg_populated(dir) > 0; i++) {
        if (i % 20 == 19)
            lbw_cg_kill(dir); /* a process that joined meanwhile */
        sleep_ms(5);
    }
    int rc = lbw_cg_remove(dir);
    if (rc < 0)
        LBW_WARN("worker", "cannot remove cgroup %s: %s (remove it by hand once empty)", dir,
                 strerror(-rc));
    return n > 0 ? (size_t)n : 0;
}

size_t lbw_invcg_reclaim(const char *top, size_t *owners)
{
    size_t ended = 0, dead = 0;
    char pids[256] = "";
    size_t pl = 0;
    DIR *d = opendir(top);
    if (!d) {
        *owners = 0;
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t pid;
        if (e->d_type != DT_DIR || lbw_cg_owner_alive(LBW_INVCG_OWNER, e->d_name, &pid) != 0)
            continue; /* not an owner's directory, or its owner lives */
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof(p), "%s/%s", top, e->d_name) >= sizeof(p))
            continue;
        size_t n = end_and_remove(p);
        LBW_INFO("worker", "cleaned up cgroup %s of worker pid %d, which is gone: ended %zu "
                           "process(es), removed it", p, (int)pid, n);
        ended += n;
        dead++;
        if (n && pl < sizeof(pids) - 16) {
            int w = snprintf(pids + pl, sizeof(pids) - pl, "%s%d", pl ? ", " : "", (int)pid);
            if (w > 0)
                pl += (size_t)w;
        }
    }
    closedir(d);
    if (ended)
        LBW_WARN("worker", "ended %zu payload process(es) left running by worker(s) that died "
                           "(pid %s), found in their cgroups under %s", ended, pids, top);
    *owners = dead;
    return ended;
}

int lbw_invcg_setup(const char *top, char *out, size_t cap, char *why, size_t whylen)
{
    char name[128];
    int rc = lbw_cg_create(top);
    if (rc < 0) {
        snprintf(why, whylen, "cannot create cgroup %s: %s", top, strerror(-rc));
        return rc;
    }
    size_t owners;
    lbw_invcg_reclaim(top, &owners);
    rc = lbw_cg_owner_name(LBW_INVCG_OWNER, getpid(), name, sizeof(name));
    if (rc == 0 && (size_t)snprintf(out, cap, "%s/%s", top, name) >= cap)
        rc = -ENAMETOOLONG;
    if (rc == 0)
        rc = lbw_cg_create(out);
    if (rc < 0) {
        snprintf(why, whylen, "cannot create cgroup %s/%s: %s", top, name, strerror(-rc));
        return rc;
    }
    return 0;
}

void lbw_invcg_teardown(const char *dir)
{
    size_t n = end_and_remove(dir);
    if (n)
        LBW_WARN("worker", "ended %zu payload process(es) still in %s at exit", n, dir);
}
