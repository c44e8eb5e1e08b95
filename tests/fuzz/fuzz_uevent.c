/* fuzz_uevent.c — the kernel uevent parser (kernel-iface/uevent.c) on
 * arbitrary bytes, as a NETLINK_KOBJECT_UEVENT datagram: a message it
 * accepts has a non-empty action, a devpath starting with '/', every field
 * NUL-terminated inside its buffer; parsing twice gives the same event;
 * the classification answers 0 or 1; nothing is read past the length
 * (ASan) or past LBW_UEVENT_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: ASan sees any read past the end */
    char *m = malloc(size ? size : 1);
    if (!m)
        return 0;
    memcpy(m, data, size);
    struct lbw_uevent a, b;
    int rc = lbw_uevent_parse(m, size, &a);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == 0) {
        if (!a.action[0] || a.devpath[0] != '/')
            abort();
        if (!memchr(a.action, 0, sizeof(a.action)) || !memchr(a.devpath, 0, sizeof(a.devpath)) ||
            !memchr(a.subsystem, 0, sizeof(a.subsystem)) || !memchr(a.driver, 0, sizeof(a.driver)))
            abort();
        if (a.pci_class < -1 || a.pci_class > 0xffffffffL)
            abort();
        if (lbw_uevent_parse(m, size, &b) != 0 || memcmp(&a, &b, sizeof(a)))
            abort();
        int c = lbw_uevent_capacity(&a);
        if (c != 0 && c != 1)
            abort();
    }
    free(m);
    return 0;
}
