/* cleanup.h — scope-bound release of memory and file descriptors with the
 * compiler's cleanup attribute, so an error path is a plain `return`.
 *
 *   _cleanup_free_ char *s = strdup(x);
 *   _cleanup_close_ int fd = open(...);
 *   ...
 *   return TAKE_FD(fd);      // hand the fd out: the cleanup sees -1
 *   return TAKE_PTR(s);      // hand the pointer out: the cleanup sees NULL
 */
#ifndef LBW_CLEANUP_H
#define LBW_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void lbw_freep(void *p)
{
    free(*(void **)p);
}

static inline void lbw_closep(int *fd)
{
    if (*fd >= 0) {
        int e = errno;
        close(*fd);
        errno = e;
    }
}

static inline void lbw_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(lbw_freep)
#define _cleanup_close_ _cleanup_(lbw_closep)
#define _cleanup_fclose_ _cleanup_(lbw_fclosep)

/* Returns the value of a variable and leaves `null` in it. */
#define LBW_TAKE_GENERIC(var, null)                                            \
    __extension__({                                                           \
        __typeof__(var) _t_ = (var);                                          \
        (var) = (null);                                                       \
        _t_;                                                                  \
    })
#define TAKE_PTR(p) LBW_TAKE_GENERIC(p, NULL)
#define TAKE_FD(fd) LBW_TAKE_GENERIC(fd, -1)

#endif
