/* test_log.c — log levels, line layout, journald form, one record per line. */
#include <fcntl.h>
#include <sys/stat.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "suites.h"

static void test_level_names(void)
{
    enum lbw_log_level l;
    CU_ASSERT(lbw_log_level_parse("DEBUG", &l) == 0 && l == LBW_LOG_DEBUG);
    CU_ASSERT(lbw_log_level_parse("info", &l) == 0 && l == LBW_LOG_INFO);
    CU_ASSERT(lbw_log_level_parse("WARNING", &l) == 0 && l == LBW_LOG_WARNING);
    CU_ASSERT(lbw_log_level_parse("warn", &l) == 0 && l == LBW_LOG_WARNING);
    CU_ASSERT(lbw_log_level_parse("ERROR", &l) == 0 && l == LBW_LOG_ERROR);
    CU_ASSERT(lbw_log_level_parse("CRITICAL", &l) == 0 && l == LBW_LOG_CRITICAL);
    CU_ASSERT(lbw_log_level_parse("LOUD", &l) == -1);
    CU_ASSERT(lbw_log_level_parse(NULL, &l) == -1);
    CU_ASSERT_STRING_EQUAL(lbw_log_level_name(LBW_LOG_WARNING), "WARNING");
}

static int fmt(char *buf, int len, int journal, enum lbw_log_level l, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    /* 2024-03-24 12:34:56.789 UTC */
    int n = lbw_log_format(buf, len, journal, 1711283696789LL, 4242, l, "worker", f, ap);
    va_end(ap);
    return n;
}

static void test_line_layout(void)
{
    char buf[512];
    setenv("TZ", "UTC", 1);
    tzset();
    int n = fmt(buf, sizeof(buf), 0, LBW_LOG_INFO, "hello %d", 5);
    CU_ASSERT_STRING_EQUAL(buf, "[2024-03-24 12:34:56,789][worker:4242][INFO] hello 5\n");
    CU_ASSERT_EQUAL(n, (int)strlen(buf));
    fmt(buf, sizeof(buf), 1, LBW_LOG_ERROR, "bad %s", "thing");
    CU_ASSERT_STRING_EQUAL(buf, "<3>[worker:4242][ERROR] bad thing\n");
    fmt(buf, sizeof(buf), 1, LBW_LOG_DEBUG, "x");
    CU_ASSERT_STRING_EQUAL(buf, "<7>[worker:4242][DEBUG] x\n");
    fmt(buf, sizeof(buf), 1, LBW_LOG_WARNING, "x");
    CU_ASSERT_STRING_EQUAL(buf, "<4>[worker:4242][WARNING] x\n");
    fmt(buf, sizeof(buf), 1, LBW_LOG_CRITICAL, "x");
    CU_ASSERT_STRING_EQUAL(buf, "<2>[worker:4242][CRITICAL] x\n");
    /* A message cannot forge a second record. */
    fmt(buf, sizeof(buf), 1, LBW_LOG_INFO, "a\nb\rc");
    CU_ASSERT_STRING_EQUAL(buf, "<6>[worker:4242][INFO] a b c\n");
    /* nor hide or rewrite what a terminal shows: other controls are '?' */
    fmt(buf, sizeof(buf), 1, LBW_LOG_INFO, "%s", "x\033[2K\by\x7f\tz");
    CU_ASSERT_STRING_EQUAL(buf, "<6>[worker:4242][INFO] x?[2K?y?\tz\n");
    /* Long messages are cut and still end in a newline. */
    char small[40];
    n = fmt(small, sizeof(small), 0, LBW_LOG_INFO, "%s",
            "0123456789012345678901234567890123456789");
    CU_ASSERT_EQUAL(n, 39);
    CU_ASSERT_EQUAL(small[38], '\n');
    CU_ASSERT_EQUAL(small[39], 0);
}

static void test_threshold_and_output(void)
{
    char path[] = "/tmp/lbw-log-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    enum lbw_log_level saved = lbw_log_get_level();
    lbw_log_init(fd);
    lbw_log_set_level(LBW_LOG_WARNING);
    CU_ASSERT(!lbw_log_enabled(LBW_LOG_INFO));
    LBW_INFO("test", "not shown");
    LBW_DEBUG("test", "not shown %d", 1);
    LBW_WARN("test", "shown %s", "w");
    LBW_ERROR("test", "shown e");
    char buf[1024] = {0};
    CU_ASSERT(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
    regex_t re;
    CU_ASSERT_FATAL(regcomp(&re,
                            "^\\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}\\]"
                            "\\[test:[0-9]+\\]\\[WARNING\\] shown w\n"
                            "\\[[^]]*\\]\\[test:[0-9]+\\]\\[ERROR\\] shown e\n$",
                            REG_EXTENDED) == 0);
    CU_ASSERT(regexec(&re, buf, 0, NULL, 0) == 0);
    regfree(&re);
    lbw_log_set_level(saved);
    lbw_log_set_fd(-1);
    close(fd);
}

static void test_journal_detection(void)
{
    char path[] = "/tmp/lbw-log-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    struct stat st;
    CU_ASSERT_FATAL(fstat(fd, &st) == 0);
    char js[64];
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    lbw_log_init(fd);
    LBW_ERROR("test", "to the journal");
    /* JOURNAL_STREAM naming some other file: plain lines. */
    setenv("JOURNAL_STREAM", "1:2", 1);
    lbw_log_init(fd);
    LBW_ERROR("test", "plain");
    unsetenv("JOURNAL_STREAM");
    char buf[512] = {0};
    CU_ASSERT(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
    CU_ASSERT(strncmp(buf, "<3>[test:", 9) == 0);
    char *second = strchr(buf, '\n');
    CU_ASSERT_FATAL(second != NULL);
    CU_ASSERT(second[1] == '[' && strstr(second, "[ERROR] plain\n") != NULL);
    lbw_log_init(2);
    close(fd);
}

static const struct lbw_test tests[] = {
    {"level names", test_level_names},
    {"line layout and journald form", test_line_layout},
    {"threshold and output fd", test_threshold_and_output},
    {"JOURNAL_STREAM detection", test_journal_detection},
    {NULL, NULL},
};

static int register_log_suites(void) { return lbw_add_suite("log", NULL, NULL, tests); }

LBW_TEST_SUITES(register_log_suites)
