/* test_housekeep.c — pool/housekeep.h: upstream's pool decision (PROTOCOL.md
 * 11) as a pure function: what is started, what is stopped and when the
 * pool must look again, for the minimums, the maximum counting workers
 * still stopping, the pause after a young death and the on-demand gate. */
#include "housekeep.h"
#include "suites.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC)

static const struct lbw_hk_params P = {.min_idle = 1, .min_total = 0, .max = 256,
                                       .idle_timeout_ns = 10 * SEC};

/* Runs the decision; term must hold n entries. */
static struct lbw_hk_out decide(const struct lbw_hk_params *p, const struct lbw_hk_worker *w,
                                size_t n, uint64_t now, int paused, int room, size_t *term)
{
    struct lbw_hk_in in = {.w = w, .n = n, .now_ns = now, .paused = paused, .room = room};
    struct lbw_hk_out out = {.term = term};
    lbw_housekeep(p, &in, &out);
    return out;
}

static void test_empty_pool(void)
{
    size_t term[1];
    struct lbw_hk_out o = decide(&P, NULL, 0, T0, 0, 1, term);
    CU_ASSERT_EQUAL(o.spawn, 1);
    CU_ASSERT_EQUAL(o.nterm, 0);
    struct lbw_hk_params q = {.min_idle = 2, .min_total = 5, .max = 256,
                              .idle_timeout_ns = 10 * SEC};
    o = decide(&q, NULL, 0, T0, 0, 1, term);
    CU_ASSERT_EQUAL(o.spawn, 5); /* min_total first; idle + new already >= 2 */
    q.min_total = 0;
    q.min_idle = 3;
    CU_ASSERT_EQUAL(decide(&q, NULL, 0, T0, 0, 1, term).spawn, 3);
}

static void test_booting_counts_as_idle(void)
{
    struct lbw_hk_worker w[] = {{.state = LBW_PW_OFF, .since_ns = 0}};
    size_t term[1];
    struct lbw_hk_out o = decide(&P, w, 1, T0, 0, 1, term);
    CU_ASSERT_EQUAL(o.spawn, 0);
    w[0].state = LBW_PW_BUSY;
    o = decide(&P, w, 1, T0, 0, 1, term);
    CU_ASSERT_EQUAL(o.spawn, 1); /* busy: another idle one is wanted */
}

static void test_surplus_idle_after_timeout(void)
{
    struct lbw_hk_params q = {.min_idle = 1, .max = 256, .idle_timeout_ns = 10 * SEC};
    struct lbw_hk_worker w[] = {
        {.state = LBW_PW_IDLE, .since_ns = T0 - 11 * SEC},
        {.state = LBW_PW_IDLE, .since_ns = T0 - 3 * SEC},
        {.state = LBW_PW_IDLE, .since_ns = T0 - 12 * SEC},
        {.state = LBW_PW_OFF, .since_ns = 0}, /* booting: never stopped */
    };
    size_t term[4];
    struct lbw_hk_out o = decide(&q, w, 4, T0, 0, 1, term);
    /* idle 4 > 1: up to 3 may go, but only two have idled 10 s */
    CU_ASSERT_EQUAL(o.nterm, 2);
    CU_ASSERT_EQUAL(term[0], 0);
    CU_ASSERT_EQUAL(term[1], 2);
    CU_ASSERT_EQUAL(o.next_ns, T0 + 7 * SEC); /* the third becomes a candidate */
    CU_ASSERT_EQUAL(o.spawn, 0);
    /* min_total bounds how many go */
    q.min_total = 3;
    o = decide(&q, w, 4, T0, 0, 1, term);
    CU_ASSERT_EQUAL(o.nterm, 1);
    CU_ASSERT_EQUAL(term[0], 0);
}

static void test_back_to_minimum(void)
{
    /* upstream's back-to-idle: 2n idle, minimum n: n go, never fewer */
    for (unsigned n = 1; n <= 3; n++) {
        struct lbw_hk_params q = {.min_idle = n, .max = 256, .idle_timeout_ns = 1 * SEC};
        struct lbw_hk_worker w[6];
        size_t term[6];
        for (unsigned i = 0; i < 2 * n; i++)
            w[i] = (struct lbw_hk_worker){.state = LBW_PW_IDLE, .since_ns = T0 - 2 * SEC};
        struct lbw_hk_out o = decide(&q, w, 2 * n, T0, 0, 1, term);
        CU_ASSERT_EQUAL(o.nterm, n);
        CU_ASSERT_EQUAL(o.spawn, 0);
        for (size_t i = 0; i < o.nterm; i++)
            w[term[i]].terminating = 1;
        o = decide(&q, w, 2 * n, T0 + SEC, 0, 1, term);
        CU_ASSERT_EQUAL(o.nterm, 0); /* the rest are the minimum */
        CU_ASSERT_EQUAL(o.spawn, 0); /* nor are new ones started for the stopping */
    }
}

static void test_max_counts_stopping(void)
{
    struct lbw_hk_params q = {.min_idle = 3, .max = 3, .idle_timeout_ns = 10 * SEC};
    struct lbw_hk_worker w[] = {
        {.state = LBW_PW_IDLE, .since_ns = T0, .terminating = 1},
        {.state = LBW_PW_BUSY, .since_ns = T0},
    };
    size_t term[2];
    struct lbw_hk_out o = decide(&q, w, 2, T0, 0, 1, term);
    CU_ASSERT_EQUAL(o.spawn, 1);       /* 3 wanted, but the stopping one still counts */
    CU_ASSERT_EQUAL(o.blocked_max, 2);
    q.max = 2;
    o = decide(&q, w, 2, T0, 0, 1, term);
    CU_ASSERT_EQUAL(o.spawn, 0);
    CU_ASSERT_EQUAL(o.blocked_max, 3);
    q.max = 0;
    CU_ASSERT_EQUAL(decide(&q, NULL, 0, T0, 0, 1, term).spawn, 0);
}

static void test_paused_and_no_room(void)
{
    struct lbw_hk_worker w[] = {{.state = LBW_PW_BUSY, .since_ns = T0}};
    size_t term[1];
    CU_ASSERT_EQUAL(decide(&P, w, 1, T0, 1, 1, term).spawn, 0); /* a young death */
    CU_ASSERT_EQUAL(decide(&P, w, 1, T0, 0, 0, term).spawn, 0); /* the host is full */
    CU_ASSERT_EQUAL(decide(&P, w, 1, T0, 0, 1, term).spawn, 1);
    /* stopping surplus workers goes on while paused */
    struct lbw_hk_worker v[] = {{.state = LBW_PW_IDLE, .since_ns = T0 - 20 * SEC},
                                {.state = LBW_PW_IDLE, .since_ns = T0 - 20 * SEC}};
    size_t t2[2];
    CU_ASSERT_EQUAL(decide(&P, v, 2, T0, 1, 0, t2).nterm, 1);
}

static const struct lbw_test tests[] = {
    {"an empty pool starts min_total, then enough for min_idle", test_empty_pool},
    {"a booting worker counts as idle, a busy one asks for another",
     test_booting_counts_as_idle},
    {"surplus idle workers stop after the idle timeout, bounded by both minimums",
     test_surplus_idle_after_timeout},
    {"back to the minimum from twice it (n = 1, 2, 3), never below", test_back_to_minimum},
    {"--max counts workers still stopping", test_max_counts_stopping},
    {"no start while paused or without room; stopping goes on", test_paused_and_no_room},
    {NULL, NULL},
};

static int register_housekeep_suites(void)
{
    return lbw_add_suite("pool: housekeeping", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_housekeep_suites)
