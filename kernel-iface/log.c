/* log.c — see log.h. The only process-wide state here is the logger's
 * configuration, which main() sets once before the reactor starts. */
#include "log.h"
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static struct {
    enum lbw_log_level level;
    int fd;
    int journal;
} g_log = {LBW_LOG_INFO, 2, 0};

static const struct {
    enum lbw_log_level l;
    const char *name;
    int syslog_prio;
} levels[] = {
    {LBW_LOG_DEBUG, "DEBUG", 7},    {LBW_LOG_INFO, "INFO", 6},
    {LBW_LOG_WARNING, "WARNING", 4}, {LBW_LOG_ERROR, "ERROR", 3},
    {LBW_LOG_CRITICAL, "CRITICAL", 2},
};

int lbw_log_level_parse(const char *s, enum lbw_log_level *out)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (!strcasecmp(s, levels[i].name)) {
            *out = levels[i].l;
            return 0;
        }
    }
    if (!strcasecmp(s, "WARN")) {
        *out = LBW_LOG_WARNING;
        return 0;
    }
    return -1;
}

static int level_index(enum lbw_log_level l)
{
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (levels[i].l == l)
            return (int)i;
    return 1;
}

const char *lbw_log_level_name(enum lbw_log_level l) { return levels[level_index(l)].name; }
void lbw_log_set_level(enum lbw_log_level l) { g_log.level = l; }
enum lbw_log_level lbw_log_get_level(void) { return g_log.level; }
int lbw_log_enabled(enum lbw_log_level l) { return l >= g_log.level; }
void lbw_log_set_fd(int fd) { g_log.fd = fd < 0 ? 2 : fd; }

void lbw_log_init(int fd)
{
    g_log.fd = fd;
    g_log.journal = 0;
    const char *js = getenv("JOURNAL_STREAM");
    if (!js)
        return;
    unsigned long long dev, ino;
    struct stat st;
    if (sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(fd, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        g_log.journal = 1;
}

int lbw_log_format(char *buf, int buflen, int journal, long long epoch_ms, int pid,
                   enum lbw_log_level l, const char *component, const char *fmt, va_list ap)
{
    int n;
    const char *name = levels[level_index(l)].name;
    if (buflen < 2)
        return 0;
    if (journal) {
        n = snprintf(buf, (size_t)buflen, "<%d>[%s:%d][%s] ", levels[level_index(l)].syslog_prio,
                     component, pid, name);
    } else {
        time_t secs = (time_t)(epoch_ms / 1000);
        struct tm tm;
        localtime_r(&secs, &tm);
        n = snprintf(buf, (size_t)buflen,
                     "[%04d-%02d-%02d %02d:%02d:%02d,%03d][%s:%d][%s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(epoch_ms % 1000), component, pid, name);
    }
    if (n < 0)
        n = 0;
    if (n > buflen - 2)
        n = buflen - 2;
    int m = vsnprintf(buf + n, (size_t)(buflen - n), fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > buflen - 2)
        n = buflen - 2;
    /* One record is one line: a newline inside a message would let a
     * payload-controlled string forge log lines; other control characters
     * (ESC and its terminal sequences, NUL, backspace) would let it hide or
     * rewrite what an operator sees. Tabs stay. */
    for (int i = 0; i < n; i++)
        buf[i] = lbw_text_char((unsigned char)buf[i], LBW_TEXT_KEEP_TAB | LBW_TEXT_NL_SPACE);
    buf[n++] = '\n';
    buf[n] = 0;
    return n;
}

void lbw_vlog(enum lbw_log_level l, const char *component, const char *fmt, va_list ap)
{
    if (l < g_log.level)
        return;
    int saved = errno;
    char buf[4096];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int n = lbw_log_format(buf, sizeof(buf), g_log.journal, ms, (int)getpid(), l, component, fmt,
                           ap);
    /* A single write per line keeps lines whole when processes share stderr. */
    ssize_t w;
    do
        w = write(g_log.fd, buf, (size_t)n);
    while (w < 0 && errno == EINTR);
    errno = saved;
}

void lbw_log(enum lbw_log_level l, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lbw_vlog(l, component, fmt, ap);
    va_end(ap);
}
