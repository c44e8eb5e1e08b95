/* semver.h — semantic versions (MAJOR.MINOR.PATCH[-pre][+build]) and the
 * version specs upstream's StandardEnvironmentResolver accepts (python
 * semantic_version SimpleSpec): ==, !=, <, <=, >, >=, ~=, ~, ^, bare
 * versions, partial versions and '*' wildcards, comma = AND. A pre-release
 * version only matches when a clause names a pre-release of the same
 * MAJOR.MINOR.PATCH (so ">=1.0.0" does not take "1.0.0-rc1"). */
#ifndef LBW_SEMVER_H
#define LBW_SEMVER_H

#include <stddef.h>

struct lbw_semver {
    long major, minor, patch;
    char pre[64]; /* "" for a release */
};

/* Full versions only. Returns 0 or -1. */
int lbw_semver_parse(const char *s, struct lbw_semver *v);
/* <0, 0, >0; build metadata is ignored. */
int lbw_semver_cmp(const struct lbw_semver *a, const struct lbw_semver *b);
/* 1 if v satisfies spec, 0 if not, -1 if the spec is invalid. */
int lbw_semver_match(const char *spec, const struct lbw_semver *v);

#endif
