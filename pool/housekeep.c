/* housekeep.c — see housekeep.h. */
#include "housekeep.h"

void lbw_housekeep(const struct lbw_hk_params *p, const struct lbw_hk_in *in,
                   struct lbw_hk_out *out)
{
    size_t idle = 0, total = 0;
    out->nterm = 0;
    out->spawn = 0;
    out->blocked_max = 0;
    out->next_ns = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct lbw_hk_worker *w = &in->w[i];
        if (w->terminating)
            continue;
        total++;
        if (w->state == LBW_PW_IDLE || w->state == LBW_PW_OFF)
            idle++;
    }
    if (idle > p->min_idle && total > p->min_total) {
        size_t kill = idle - p->min_idle;
        if (total - p->min_total < kill)
            kill = total - p->min_total;
        for (size_t i = 0; i < in->n; i++) {
            const struct lbw_hk_worker *w = &in->w[i];
            if (w->terminating || w->state != LBW_PW_IDLE)
                continue;
            uint64_t due = w->since_ns + p->idle_timeout_ns;
            if (in->now_ns < due) { /* a candidate later */
                if (!out->next_ns || due < out->next_ns)
                    out->next_ns = due;
                continue;
            }
            if (out->nterm < kill)
                out->term[out->nterm++] = i;
        }
    }
    if (in->paused || !in->room)
        return;
    size_t want = 0;
    if (total < p->min_total)
        want = p->min_total - total;
    if (idle + want < p->min_idle)
        want = p->min_idle - idle;
    size_t room = in->n < p->max ? p->max - in->n : 0; /* the terminating still count */
    if (want > room) {
        out->blocked_max = (unsigned)(want - room);
        want = room;
    }
    out->spawn = (unsigned)want;
}
