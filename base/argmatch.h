/* argmatch.h — argparse's long option matching, shared by the commands
 * that take upstream's options: an exact name, else a unique prefix. */
#ifndef LBW_ARGMATCH_H
#define LBW_ARGMATCH_H

#include <stddef.h>
#include <string.h>

/* Index into the NULL-terminated `longs` of the option named by the first
 * n bytes of name; -1 none, -2 ambiguous. */
static inline int lbw_match_long(const char *const *longs, const char *name, size_t n)
{
    int found = -1;
    for (int i = 0; longs[i]; i++) {
        if (strlen(longs[i]) == n && !strncmp(longs[i], name, n))
            return i;
        if (!strncmp(longs[i], name, n)) {
            if (found >= 0)
                return -2;
            found = i;
        }
    }
    return found;
}

#endif
