/* test_payload_user.c — daemon/worker_main: a root worker refuses a
 * payload user that is root under another name (uid 0, primary group 0,
 * group 0 among its supplementary groups) unless it is named "root". */
#include <string.h>

#include "run.h"
#include "suites.h"
#include "worker_main.h"

static struct lbw_payload_user user(const char *name, uid_t uid, gid_t gid, gid_t extra)
{
    struct lbw_payload_user u;
    memset(&u, 0, sizeof(u));
    snprintf(u.name, sizeof(u.name), "%s", name);
    u.uid = uid;
    u.gid = gid;
    u.groups[u.ngroups++] = gid;
    if (extra != (gid_t)-1)
        u.groups[u.ngroups++] = extra;
    return u;
}

static void test_root_equivalent_refused(void)
{
    char why[256] = "";
    struct lbw_payload_user u = user("nobody", 65534, 65534, (gid_t)-1);
    CU_ASSERT_EQUAL(lbw_payload_user_check(&u, why, sizeof(why)), 0);
    u = user("render", 1000, 1000, 44); /* video: fine */
    CU_ASSERT_EQUAL(lbw_payload_user_check(&u, why, sizeof(why)), 0);
    u = user("toor", 0, 0, (gid_t)-1); /* root by another name */
    CU_ASSERT_EQUAL(lbw_payload_user_check(&u, why, sizeof(why)), -1);
    CU_ASSERT(strstr(why, "user toor has uid 0") != NULL);
    CU_ASSERT(strstr(why, "\"root\"") != NULL);
    u = user("lifeblood", 990, 0, (gid_t)-1);
    CU_ASSERT_EQUAL(lbw_payload_user_check(&u, why, sizeof(why)), -1);
    CU_ASSERT(strstr(why, "has group 0") != NULL);
    u = user("lifeblood", 990, 990, 0); /* supplementary root group */
    CU_ASSERT_EQUAL(lbw_payload_user_check(&u, why, sizeof(why)), -1);
    CU_ASSERT(strstr(why, "is in group 0") != NULL);
    u = user("root", 0, 0, (gid_t)-1); /* said explicitly */
    CU_ASSERT_EQUAL(lbw_payload_user_check(&u, why, sizeof(why)), 0);
}

static const struct lbw_test tests[] = {
    {"root-equivalent payload users are refused unless named root",
     test_root_equivalent_refused},
    {NULL, NULL},
};

static int register_payload_user_suites(void)
{
    return lbw_add_suite("payload_user", NULL, NULL, tests);
}

LBW_TEST_SUITES(register_payload_user_suites)
