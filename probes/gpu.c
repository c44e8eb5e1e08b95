/* gpu.c — GPUs: NVIDIA through NVML loaded at run time (dlopen, never a
 * build dependency), else /proc/driver/nvidia without any library; AMD
 * from DRM sysfs (mem_info_vram_total); Intel discrete GPUs from the PCI
 * vendor id and DRM sysfs. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "probe.h"

/* The few NVML types and entry points used (ABI as NVML documents it). */
typedef void *nvml_dev;
typedef struct {
    unsigned long long total, free, used;
} nvml_memory;
typedef struct {
    char busIdLegacy[16];
    unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvml_pci;

struct nvml {
    void *lib;
    int (*init)(void);
    int (*shutdown)(void);
    int (*count)(unsigned *);
    int (*handle)(unsigned, nvml_dev *);
    int (*memory)(nvml_dev, nvml_memory *);
    int (*uuid)(nvml_dev, char *, unsigned);
    int (*name)(nvml_dev, char *, unsigned);
    int (*pci)(nvml_dev, nvml_pci *);
};

static int nvml_load(struct nvml *n, const char *lib)
{
    memset(n, 0, sizeof(*n));
    n->lib = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib)
        return -1;
    *(void **)&n->init = dlsym(n->lib, "nvmlInit_v2");
    *(void **)&n->shutdown = dlsym(n->lib, "nvmlShutdown");
    *(void **)&n->count = dlsym(n->lib, "nvmlDeviceGetCount_v2");
    *(void **)&n->handle = dlsym(n->lib, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&n->memory = dlsym(n->lib, "nvmlDeviceGetMemoryInfo");
    *(void **)&n->uuid = dlsym(n->lib, "nvmlDeviceGetUUID");
    *(void **)&n->name = dlsym(n->lib, "nvmlDeviceGetName");
    *(void **)&n->pci = dlsym(n->lib, "nvmlDeviceGetPciInfo_v3");
    if (!n->init || !n->shutdown || !n->count || !n->handle || !n->memory) {
        dlclose(n->lib);
        n->lib = NULL;
        return -1;
    }
    return 0;
}

/* "00000000:01:00.0" (NVML) -> "0000:01:00.0" (sysfs), lower case. */
static void sysfs_bdf(const char *in, char *out, size_t cap)
{
    const char *p = in;
    size_t l = strlen(in);
    if (l > 12 && in[8] == ':')
        p = in + 4;
    snprintf(out, cap, "%s", p);
    for (char *c = out; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
}

static int pci_numa(const char *root, const char *bdf)
{
    char f[256], buf[32];
    snprintf(f, sizeof(f), "/sys/bus/pci/devices/%s/numa_node", bdf);
    if (lbw_root_read(root, f, buf, sizeof(buf)) > 0)
        return atoi(buf);
    return -1;
}

static int probe_nvml(const struct lbw_probe_opts *o, struct lbw_host *h)
{
    const char *root = o->root ? o->root : "/";
    const char *lib = o->nvml_library ? o->nvml_library : "libnvidia-ml.so.1";
    if (!*lib)
        return -1;
    struct nvml n;
    if (nvml_load(&n, lib) < 0)
        return -1;
    int rc = -1;
    unsigned cnt = 0;
    if (n.init() == 0) {
        if (n.count(&cnt) == 0) {
            rc = 0;
            for (unsigned i = 0; i < cnt && h->ngpus < LBW_MAX_GPUS; i++) {
                nvml_dev dev;
                if (n.handle(i, &dev) != 0)
                    continue;
                struct lbw_gpu *g = &h->gpus[h->ngpus++];
                memset(g, 0, sizeof(*g));
                g->vendor = LBW_GPU_NVIDIA;
                g->numa_node = -1;
                snprintf(g->source, sizeof(g->source), "nvml");
                nvml_memory m;
                if (n.memory(dev, &m) == 0)
                    g->mem_bytes = m.total;
                if (n.uuid)
                    n.uuid(dev, g->uuid, sizeof(g->uuid));
                if (n.name)
                    n.name(dev, g->name, sizeof(g->name));
                nvml_pci pi;
                if (n.pci && n.pci(dev, &pi) == 0) {
                    pi.busId[sizeof(pi.busId) - 1] = 0;
                    sysfs_bdf(pi.busId, g->pci_bus_id, sizeof(g->pci_bus_id));
                    g->numa_node = pci_numa(root, g->pci_bus_id);
                }
            }
        }
        n.shutdown();
    }
    dlclose(n.lib);
    return rc;
}

static void field(const char *text, const char *key, char *out, size_t cap)
{
    out[0] = 0;
    const char *p = strstr(text, key);
    if (!p)
        return;
    p += strlen(key);
    while (*p == ' ' || *p == '\t' || *p == ':')
        p++;
    size_t l = strcspn(p, "\n");
    while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
        l--;
    snprintf(out, cap, "%.*s", (int)l, p);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists root+dir's entries (sorted). Returns the count; free each + array. */
static size_t list_dir(const char *root, const char *dir, char ***out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s", strcmp(root, "/") ? root : "", dir);
    *out = NULL;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (lbw_grow(&v, &cap, n + 1, sizeof(*v)) < 0)
            break;
        v[n] = strdup(e->d_name);
        if (v[n])
            n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), cmp_names);
    *out = v;
    return n;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* /proc/driver/nvidia/gpus/<bdf>/information: model, UUID, bus; no memory. */
static void probe_nvidia_proc(const char *root, struct lbw_host *h)
{
    char **names;
    size_t n = list_dir(root, "/proc/driver/nvidia/gpus", &names);
    for (size_t i = 0; i < n && h->ngpus < LBW_MAX_GPUS; i++) {
        char f[512], buf[4096];
        snprintf(f, sizeof(f), "/proc/driver/nvidia/gpus/%s/information", names[i]);
        if (lbw_root_read(root, f, buf, sizeof(buf)) <= 0)
            continue;
        struct lbw_gpu *g = &h->gpus[h->ngpus++];
        memset(g, 0, sizeof(*g));
        g->vendor = LBW_GPU_NVIDIA;
        field(buf, "Model", g->name, sizeof(g->name));
        field(buf, "GPU UUID", g->uuid, sizeof(g->uuid));
        char bus[64];
        field(buf, "Bus Location", bus, sizeof(bus));
        sysfs_bdf(bus[0] ? bus : names[i], g->pci_bus_id, sizeof(g->pci_bus_id));
        g->numa_node = pci_numa(root, g->pci_bus_id);
        snprintf(g->source, sizeof(g->source), "procfs");
    }
    if (n)
        snprintf(h->gpu_note, sizeof(h->gpu_note),
                 "NVIDIA GPUs found without NVML (libnvidia-ml.so.1): their memory is unknown, "
                 "set resources.gpu_mem");
    free_list(names, n);
}

static void probe_drm(const char *root, struct lbw_host *h, int have_nvidia)
{
    char **names;
    size_t n = list_dir(root, "/sys/class/drm", &names);
    for (size_t i = 0; i < n && h->ngpus < LBW_MAX_GPUS; i++) {
        /* cards only, not their connectors (card0-HDMI-A-1) */
        if (strncmp(names[i], "card", 4) || strchr(names[i], '-'))
            continue;
        char f[512], ue[2048], buf[64];
        snprintf(f, sizeof(f), "/sys/class/drm/%s/device/uevent", names[i]);
        if (lbw_root_read(root, f, ue, sizeof(ue)) <= 0)
            continue;
        char slot[32], id[16], driver[24];
        field(ue, "PCI_SLOT_NAME=", slot, sizeof(slot));
        field(ue, "PCI_ID=", id, sizeof(id));
        field(ue, "DRIVER=", driver, sizeof(driver));
        unsigned vendor = (unsigned)strtoul(id, NULL, 16);
        enum lbw_gpu_vendor v;
        uint64_t mem = 0;
        const char *label;
        if (vendor == 0x1002) {
            v = LBW_GPU_AMD;
            label = "AMD GPU";
            snprintf(f, sizeof(f), "/sys/class/drm/%s/device/mem_info_vram_total", names[i]);
            if (lbw_root_read(root, f, buf, sizeof(buf)) > 0)
                mem = strtoull(buf, NULL, 10);
        } else if (vendor == 0x8086) {
            /* discrete only: local memory present (i915 lmem / xe vram) */
            int discrete = 0;
            snprintf(f, sizeof(f), "/sys/class/drm/%s/lmem_total_bytes", names[i]);
            if (lbw_root_read(root, f, buf, sizeof(buf)) > 0) {
                mem = strtoull(buf, NULL, 10);
                discrete = mem > 0;
            }
            snprintf(f, sizeof(f), "/sys/class/drm/%s/device/tile0/vram0/io_size", names[i]);
            if (!discrete && lbw_root_read(root, f, buf, sizeof(buf)) > 0) {
                mem = strtoull(buf, NULL, 0);
                discrete = mem > 0;
            }
            if (!discrete)
                continue;
            v = LBW_GPU_INTEL;
            label = "Intel discrete GPU";
        } else if (vendor == 0x10de && !have_nvidia) {
            v = LBW_GPU_NVIDIA;
            label = "NVIDIA GPU";
        } else {
            continue;
        }
        struct lbw_gpu *g = &h->gpus[h->ngpus++];
        memset(g, 0, sizeof(*g));
        g->vendor = v;
        snprintf(g->name, sizeof(g->name), "%s (%s%s%s)", label, id, driver[0] ? ", " : "",
                 driver);
        snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "%s", slot);
        g->mem_bytes = mem;
        g->numa_node = pci_numa(root, slot);
        snprintf(g->source, sizeof(g->source), "sysfs");
    }
    free_list(names, n);
}

void lbw_probe_gpu(const struct lbw_probe_opts *o, struct lbw_host *h)
{
    const char *root = o->root ? o->root : "/";
    h->ngpus = 0;
    h->gpu_note[0] = 0;
    int nv = probe_nvml(o, h) == 0;
    if (!nv)
        probe_nvidia_proc(root, h);
    int have_nvidia = 0;
    for (int i = 0; i < h->ngpus; i++)
        have_nvidia |= h->gpus[i].vendor == LBW_GPU_NVIDIA;
    probe_drm(root, h, have_nvidia);
    h->gpu_mem_bytes = 0;
    for (int i = 0; i < h->ngpus; i++)
        h->gpu_mem_bytes += h->gpus[i].mem_bytes;
}
