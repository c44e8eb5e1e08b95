/* progress.h — a job's progress regex (Python re syntax, compiled with
 * PCRE2) applied the way upstream applies it (docs/PROTOCOL.md 7.6): re.match
 * semantics (anchored at the line start, not at its end; the line keeps its
 * '\n'); bytes patterns are ASCII-only for \d \s \w, str patterns Unicode;
 * no groups: the regex switches itself off for the invocation; one group:
 * that number; two or more unnamed: g1/g2*100; named current and total:
 * current/total*100. Numbers are read as Python's float() reads them.
 * Unlike upstream, a value that is not a number or a division by zero
 * leaves the progress unchanged instead of killing the output reader. */
#ifndef LBW_PROGRESS_H
#define LBW_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

struct lbw_progress_re;

/* flags: Python re flags (I=2, L=4, M=8, S=16, U=32, X=64, A=256).
 * Returns NULL with a message when PCRE2 cannot compile the pattern. */
struct lbw_progress_re *lbw_progress_compile(const char *pattern, size_t len, int is_bytes,
                                             int64_t flags, char *err, size_t errlen);
void lbw_progress_free(struct lbw_progress_re *re);

/* Matches one line. Returns 1 and sets *value when the line gives a new
 * progress value, 0 when it does not, -1 when the regex has just switched
 * itself off (a match without groups). */
int lbw_progress_line(struct lbw_progress_re *re, const uint8_t *line, size_t len, double *value);
/* 1 while the regex is on. */
int lbw_progress_active(const struct lbw_progress_re *re);

/* Python float() of text: surrounding whitespace, sign, digits with '_'
 * between them, decimals, exponent, inf/infinity/nan. Returns 0 or -1. */
int lbw_py_float(const char *s, size_t n, double *out);

#endif
