/* log.h — the process's log: levels DEBUG..CRITICAL (upstream's --loglevel
 * names), lines to stderr in upstream's layout
 *   [YYYY-MM-DD HH:MM:SS,mmm][component:pid][LEVEL] message
 * and, when running under systemd (JOURNAL_STREAM names our stderr), the
 * same line with a "<N>" syslog priority prefix instead of the timestamp.
 * Configured once by main(); everything else only calls lbw_log(). */
#ifndef LBW_LOG_H
#define LBW_LOG_H

#include <stdarg.h>

enum lbw_log_level {
    LBW_LOG_DEBUG = 10,
    LBW_LOG_INFO = 20,
    LBW_LOG_WARNING = 30,
    LBW_LOG_ERROR = 40,
    LBW_LOG_CRITICAL = 50,
};

/* "DEBUG", "INFO", "WARNING" (or "WARN"), "ERROR", "CRITICAL", any case.
 * Returns 0 or -1. */
int lbw_log_level_parse(const char *s, enum lbw_log_level *out);
const char *lbw_log_level_name(enum lbw_log_level l);

/* Sets the threshold (default INFO). */
void lbw_log_set_level(enum lbw_log_level l);
enum lbw_log_level lbw_log_get_level(void);
/* Decides between timestamped and journald (<N>) lines: journald when
 * JOURNAL_STREAM's "dev:ino" matches the fd. Called by main(); tests may
 * pass any fd. */
void lbw_log_init(int fd);
/* Redirects log output to fd (tests); -1 restores stderr. */
void lbw_log_set_fd(int fd);
/* True if lines at this level would be written. */
int lbw_log_enabled(enum lbw_log_level l);

void lbw_log(enum lbw_log_level l, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lbw_vlog(enum lbw_log_level l, const char *component, const char *fmt, va_list ap);

/* Formats one line into buf (no trailing newline guaranteed to fit: the
 * line is cut at buflen-2 and always ends in '\n'). Returns its length.
 * journal: 1 for the "<N>" form. Exposed for tests. */
int lbw_log_format(char *buf, int buflen, int journal, long long epoch_ms, int pid,
                   enum lbw_log_level l, const char *component, const char *fmt, va_list ap);

#define LBW_DEBUG(comp, ...) \
    do { if (lbw_log_enabled(LBW_LOG_DEBUG)) lbw_log(LBW_LOG_DEBUG, comp, __VA_ARGS__); } while (0)
#define LBW_INFO(comp, ...) lbw_log(LBW_LOG_INFO, comp, __VA_ARGS__)
#define LBW_WARN(comp, ...) lbw_log(LBW_LOG_WARNING, comp, __VA_ARGS__)
#define LBW_ERROR(comp, ...) lbw_log(LBW_LOG_ERROR, comp, __VA_ARGS__)
#define LBW_CRIT(comp, ...) lbw_log(LBW_LOG_CRITICAL, comp, __VA_ARGS__)

#endif
