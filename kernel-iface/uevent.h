/* uevent.h — the kernel's device events (NETLINK_KOBJECT_UEVENT): a
 * socket on the kernel's multicast group whose fd the reactor polls, one
 * message read (from the kernel only), one message parsed, and whether an
 * event can change what the host offers payloads (CPUs, memory, NUMA
 * nodes, GPUs).
 *
 * A message is "ACTION@DEVPATH\0KEY=VALUE\0...", at most a few KiB. It is
 * untrusted input all the same: every field is bounded, a message that
 * does not fit the form is refused, nothing is read past its length. */
#ifndef LBW_UEVENT_H
#define LBW_UEVENT_H

#include <stddef.h>
#include <sys/types.h>

#define LBW_UEVENT_MAX 8192 /* the largest message read (the kernel's are <= 2 KiB) */

struct lbw_uevent {
    char action[16];     /* "add", "remove", "online", "offline", "bind", "unbind", ... */
    char devpath[256];   /* "/devices/system/cpu/cpu3" */
    char subsystem[32];  /* "cpu", "memory", "node", "pci", "drm", ... */
    char driver[32];     /* "nvidia", "amdgpu", ... ("" none) */
    long pci_class;      /* PCI_CLASS (hex, e.g. 0x030200); -1 none */
};

/* Opens a non-blocking, close-on-exec socket on the kernel's uevent group.
 * Returns the fd or -errno. */
int lbw_uevent_open(void);
/* Reads one message sent by the kernel (anything else is dropped and
 * skipped). Returns its length, 0 when nothing is pending, or -errno
 * (-EMSGSIZE: a message longer than cap was dropped). */
ssize_t lbw_uevent_recv(int fd, void *buf, size_t cap);
/* Parses one message. Returns 0, or -1 when it is not a kernel uevent
 * (no "ACTION@/DEVPATH" header, a field too long, a key without '=',
 * PCI_CLASS not hex, the ACTION or DEVPATH keys contradicting the
 * header). */
int lbw_uevent_parse(const void *msg, size_t len, struct lbw_uevent *ev);
/* 1 when the event can change the host's capacity: a CPU, memory block or
 * NUMA node added, removed, on- or offlined; a display or 3D controller
 * (PCI class 0x03) or processing accelerator (0x12) added, removed, bound
 * or unbound; a DRM card or accel device added or removed. Else 0. */
int lbw_uevent_capacity(const struct lbw_uevent *ev);

#endif
