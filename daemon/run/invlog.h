/* invlog.h — an invocation's log files in upstream's layout (docs/PROTOCOL.md
 * 7.5): <root>/db_<db_uid as 16 hex digits>/invocations/<id>/{output,error};
 * "[SYS][DD.MM.YY HH:MM:SS] task initialized" first; every stdout line as
 * "[OUT][HH:MM:SS] <raw bytes>" into output, every stderr line as
 * "[ERR][HH:MM:SS] ..." into both files; "task finished" at a normal end,
 * "\n[WORKER][...] killed by worker.\n" in both at a kill. Bytes are never
 * decoded, lines may be any length. Complete lines (their '\n' kept, across
 * read boundaries) go to the job's progress regexes. */
#ifndef LBW_INVLOG_H
#define LBW_INVLOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "progress.h"

#define LBW_INVLOG_LINE_MAX (1u << 20) /* progress looks at the first 1 MiB of a line */

struct lbw_invlog {
    int fd[2];                 /* output, error */
    char dir[4096];
    int at_start[2];           /* next byte of stream s starts a line */
    uint8_t *line[2];          /* the current line so far, for progress */
    size_t line_len[2];
    struct lbw_progress_re *re[2];
    double progress;
    int progress_new;
    uint8_t *buf;
    size_t cap;
};

/* Creates the directories and truncates both files. Returns 0 or -errno
 * with a message. */
int lbw_invlog_open(struct lbw_invlog *l, const char *root, uint64_t db_uid, int64_t inv_id,
                    time_t now, char *err, size_t errlen);
/* A log directory made ahead, while the worker is idle: ".next-PID-N" in
 * the invocations directory with both files created and open. Taking it
 * is one rename instead of the mkdir walk and two file creations on the
 * task path. Zero-initialised (dir "") means none. */
struct lbw_invlog_spare {
    char dir[4096];
    int fd[2];
};
/* Makes the spare (nothing when there is one); at the first call in a
 * process, also removes spares whose worker is gone. 0 or -errno. */
int lbw_invlog_spare_make(struct lbw_invlog_spare *s, const char *root, uint64_t db_uid);
/* Closes and removes the spare. */
void lbw_invlog_spare_drop(struct lbw_invlog_spare *s);
/* lbw_invlog_open through the spare (s may be NULL or empty): renamed to
 * the invocation's directory when it is in the same invocations directory
 * and the name is free (or an empty directory); else the plain open (a
 * spare of another root or database is dropped). */
int lbw_invlog_open_spare(struct lbw_invlog *l, struct lbw_invlog_spare *s, const char *root,
                          uint64_t db_uid, int64_t inv_id, time_t now, char *err, size_t errlen);
/* The regexes (owned by the caller; NULL for none) for stream 0 (stdout)
 * and 1 (stderr). */
void lbw_invlog_set_progress(struct lbw_invlog *l, struct lbw_progress_re *out_re,
                             struct lbw_progress_re *err_re);
/* Bytes read from stream 0 (stdout) or 1 (stderr) at time now. Returns 0
 * or -errno (a write failed). */
int lbw_invlog_feed(struct lbw_invlog *l, int stream, const uint8_t *p, size_t n, time_t now);
/* A line from the worker ("[WORKER][DD.MM.YY HH:MM:SS] text") in both
 * files, before the end: what the kernel did to the payload. 0 or -errno. */
int lbw_invlog_note(struct lbw_invlog *l, const char *text, time_t now);
/* The end: killed = 0 appends "task finished", 1 the kill trailer. */
int lbw_invlog_finish(struct lbw_invlog *l, int killed, time_t now);
/* 1 and the value if progress changed since the last call. */
int lbw_invlog_progress(struct lbw_invlog *l, double *value);
void lbw_invlog_close(struct lbw_invlog *l);
/* Deletes the invocation's directory (after the report). */
int lbw_invlog_remove(const struct lbw_invlog *l);
/* Opens the two files of an invocation directory for reading (-1 for a
 * missing one). Returns 0 when both opened. */
int lbw_invlog_open_read(const char *dir, int *out_fd, int *err_fd);
/* <root>/db_<hex>/invocations/<id> into out. */
int lbw_invlog_dir(const char *root, uint64_t db_uid, int64_t inv_id, char *out, size_t cap);

#endif
