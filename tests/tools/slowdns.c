/* slowdns.c -- fault injection for tests, loaded with LD_PRELOAD: a DNS server that does not
 * answer for a while. getaddrinfo() of the host named by BG_SLOWDNS_HOST resolves
 * BG_SLOWDNS_TO (default 127.0.0.1) instead; the first BG_SLOWDNS_COUNT (default 1) such
 * lookups of the process sleep BG_SLOWDNS_MS (default 3000) first. Every other name goes
 * straight to the C library. Each stalled lookup is appended to BG_SLOWDNS_LOG if set. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    getaddrinfo_fn real;
    void *sym = dlsym(RTLD_NEXT, "getaddrinfo");
    memcpy(&real, &sym, sizeof(real)); /* POSIX's way from dlsym to a function pointer */
    const char *host = getenv("BG_SLOWDNS_HOST");
    static atomic_long stalled;
    const char *count_text = getenv("BG_SLOWDNS_COUNT");
    long count = count_text != NULL ? strtol(count_text, NULL, 10) : 1;
    if (node != NULL && host != NULL && strcmp(node, host) == 0 &&
        atomic_fetch_add(&stalled, 1) < count) {
        const char *ms_text = getenv("BG_SLOWDNS_MS");
        long ms = ms_text != NULL ? strtol(ms_text, NULL, 10) : 3000;
        const char *log = getenv("BG_SLOWDNS_LOG");
        if (log != NULL) {
            FILE *f = fopen(log, "a");
            if (f != NULL) {
                fprintf(f, "stall host=%s ms=%ld\n", node, ms);
                fclose(f);
            }
        }
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    if (node != NULL && host != NULL && strcmp(node, host) == 0)
        node = getenv("BG_SLOWDNS_TO") != NULL ? getenv("BG_SLOWDNS_TO") : "127.0.0.1";
    return real(node, service, hints, res);
}
