/* forktree — a payload for the tree-kill benchmarks: forks N children that
 * wait for a signal, then waits itself. Run it only as an unprivileged user
 * with a process limit (bench/make_jobs.py wraps it in `ulimit -u` and
 * `setpriv` to nobody): RLIMIT_NPROC does not bind root.
 *
 * Every child dies after TTL seconds at most (alarm), and with its parent
 * (PR_SET_PDEATHSIG) unless `orphans` is given: then the children outlive
 * it, as a payload's leftovers outlive a worker that crashed. Prints how
 * many children it made; exits 1 when a fork failed.
 *
 * Usage: forktree N [TTL_SECONDS [orphans]] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    unsigned ttl = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 120;
    int orphans = argc > 3 && !strcmp(argv[3], "orphans");
    if (n < 0 || n > 100000) {
        fprintf(stderr, "forktree: N out of range\n");
        return 2;
    }
    alarm(ttl);
    pid_t me = getpid();
    long made = 0;
    for (; made < n; made++) {
        pid_t p = fork();
        if (p < 0) {
            fprintf(stderr, "forktree: fork %ld of %ld: %s\n", made + 1, n, strerror(errno));
            printf("%ld\n", made);
            fflush(stdout);
            return 1;
        }
        if (p == 0) {
            if (!orphans) {
                prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                if (getppid() != me)
                    _exit(0);
            }
            alarm(ttl);
            for (;;)
                pause();
        }
    }
    printf("%ld\n", made);
    fflush(stdout);
    for (;;)
        pause();
}
