/* fake_nvml.c — a stand-in libnvidia-ml.so.1 for tests: the few NVML entry
 * points the GPU probe uses, describing two GPUs. Built as a shared
 * library and selected by path (lifeblood-worker probe --nvml-library). */
#include <stdio.h>
#include <string.h>

typedef struct {
    unsigned long long total, free, used;
} nvml_memory;
typedef struct {
    char busIdLegacy[16];
    unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvml_pci;

static const struct {
    const char *name, *uuid, *bus;
    unsigned long long mem;
} gpus[2] = {
    {"NVIDIA H100 80GB HBM3", "GPU-11111111-2222-3333-4444-555555555555", "00000000:41:00.0",
     85899345920ull},
    {"NVIDIA RTX A5000", "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "00000000:C1:00.0",
     25769803776ull},
};

int nvmlInit_v2(void);
int nvmlShutdown(void);
int nvmlDeviceGetCount_v2(unsigned *n);
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **dev);
int nvmlDeviceGetMemoryInfo(void *dev, nvml_memory *m);
int nvmlDeviceGetUUID(void *dev, char *out, unsigned len);
int nvmlDeviceGetName(void *dev, char *out, unsigned len);
int nvmlDeviceGetPciInfo_v3(void *dev, nvml_pci *p);

int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }

int nvmlDeviceGetCount_v2(unsigned *n)
{
    *n = 2;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **dev)
{
    if (i >= 2)
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *dev = (void *)&gpus[i];
    return 0;
}

#define G(dev) ((const __typeof__(gpus[0]) *)(dev))

int nvmlDeviceGetMemoryInfo(void *dev, nvml_memory *m)
{
    m->total = G(dev)->mem;
    m->free = m->total;
    m->used = 0;
    return 0;
}

int nvmlDeviceGetUUID(void *dev, char *out, unsigned len)
{
    snprintf(out, len, "%s", G(dev)->uuid);
    return 0;
}

int nvmlDeviceGetName(void *dev, char *out, unsigned len)
{
    snprintf(out, len, "%s", G(dev)->name);
    return 0;
}

int nvmlDeviceGetPciInfo_v3(void *dev, nvml_pci *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->busId, sizeof(p->busId), "%s", G(dev)->bus);
    return 0;
}
