/* netwatch.c — test helper for kernel-iface/netlink.c.
 *   netwatch route DST   print the source address toward DST
 *   netwatch watch       print "ready", wait up to 5 s for an address
 *                        change, print "changes N" */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "netlink.h"

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "route")) {
        char src[64];
        int rc = lbw_route_source(argv[2], src, sizeof(src));
        if (rc < 0) {
            printf("error %d\n", rc);
            return 1;
        }
        printf("%s\n", src);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "watch")) {
        int fd;
        struct lbw_addrwatch *w = lbw_addrwatch_open(&fd);
        if (!w)
            return 1;
        printf("ready\n");
        fflush(stdout);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = 0;
        if (poll(&p, 1, 5000) == 1)
            n = lbw_addrwatch_drain(w);
        printf("changes %d\n", n);
        lbw_addrwatch_close(w);
        return n > 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: netwatch route DST | netwatch watch\n");
    return 2;
}
