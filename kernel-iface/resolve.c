/* resolve.c — see resolve.h.
 *
 * The request is shared by the caller and the helper thread and freed by
 * whichever of them lets go last, so a caller that gave up never waits
 * for the thread and the thread never writes into freed memory. */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct req {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, done, gai;
    char ip[64];
    char host[];
};

static void req_put(struct req *q)
{
    pthread_mutex_lock(&q->mu);
    int last = --q->refs == 0;
    pthread_mutex_unlock(&q->mu);
    if (last) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
    }
}

static void *worker(void *arg)
{
    struct req *q = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ip[64] = "";
    int rc = getaddrinfo(q->host, NULL, &hints, &ai);
    if (rc == 0) {
        const struct addrinfo *pick = NULL;
        for (const struct addrinfo *p = ai; p; p = p->ai_next)
            if (p->ai_family == AF_INET && !pick)
                pick = p;
        for (const struct addrinfo *p = ai; p && !pick; p = p->ai_next)
            if (p->ai_family == AF_INET6)
                pick = p;
        if (!pick)
            rc = EAI_NONAME;
        else if (pick->ai_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)pick->ai_addr)->sin_addr, ip, sizeof(ip));
        else
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr, ip,
                      sizeof(ip));
        freeaddrinfo(ai);
    }
    pthread_mutex_lock(&q->mu);
    q->gai = rc;
    snprintf(q->ip, sizeof(q->ip), "%s", ip);
    q->done = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    req_put(q);
    return NULL;
}

int lbw_resolve_host(const char *host, char *ip, size_t cap, uint64_t timeout_ns, char *err,
                     size_t errlen)
{
    unsigned char tmp[16];
    if (inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1) {
        if (strlen(host) >= cap)
            return -ENAMETOOLONG;
        snprintf(ip, cap, "%s", host);
        return 0;
    }
    size_t hl = strlen(host);
    struct req *q = calloc(1, sizeof(*q) + hl + 1);
    if (!q) {
        snprintf(err, errlen, "cannot resolve %s: out of memory", host);
        return -ENOMEM;
    }
    memcpy(q->host, host, hl + 1);
    q->refs = 2;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &ta, worker, q);
    pthread_attr_destroy(&ta);
    if (rc) {
        q->refs = 1;
        req_put(q);
        snprintf(err, errlen, "cannot resolve %s: cannot start a resolver thread: %s", host,
                 strerror(rc));
        return -rc;
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)(timeout_ns / 1000000000ull);
    dl.tv_nsec += (long)(timeout_ns % 1000000000ull);
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    while (!q->done && pthread_cond_timedwait(&q->cv, &q->mu, &dl) != ETIMEDOUT)
        ;
    int done = q->done, gai = q->gai;
    char got[64];
    snprintf(got, sizeof(got), "%s", q->ip);
    pthread_mutex_unlock(&q->mu);
    req_put(q);
    if (!done) {
        snprintf(err, errlen, "cannot resolve %s: no answer within %llu s", host,
                 (unsigned long long)(timeout_ns / 1000000000ull));
        return -ETIMEDOUT;
    }
    if (gai) {
        snprintf(err, errlen, "cannot resolve %s: %s", host,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return -ENOENT;
    }
    if (strlen(got) >= cap)
        return -ENAMETOOLONG;
    snprintf(ip, cap, "%s", got);
    return 0;
}
