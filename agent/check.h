/* check.h -- the application health check (DESIGN §11): http, tcp or exec, run on the agent's
 * poll loop without blocking it, and the rise/fall verdict. */
#ifndef BG_CHECK_H
#define BG_CHECK_H

#include "conf.h"
#include "curlm.h"
#include "prom.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------------------------------
 * The verdict: pure, unit-tested without sockets. `rise` passes in a row turn an unhealthy
 * verdict healthy, `fall` failures in a row turn a healthy one unhealthy.
 * ------------------------------------------------------------------------------------ */
struct bg_check_verdict {
    int rise, fall;
    bool healthy;
    bool have_result; /* false until the first check finished */
    bool last_pass;
    int consecutive;    /* results equal to last_pass in a row */
    int64_t last_ms;    /* when the last result came (the caller's clock) */
    int64_t changed_ms; /* when the verdict last changed (0: never) */
};

void bg_check_verdict_init(struct bg_check_verdict *v, int rise, int fall, bool healthy);
/* Record one result at time now. Returns true when the verdict changed. Cannot fail. */
bool bg_check_verdict_feed(struct bg_check_verdict *v, bool pass, int64_t now);

/* ---------------------------------------------------------------------------------------
 * The checker.
 * ------------------------------------------------------------------------------------ */
struct bg_child;
struct bg_check_resolve; /* check.c: a name being resolved by a thread of its own */

struct bg_check {
    const struct bg_check_conf *conf; /* NULL or type NONE: no check, always healthy */
    struct bg_check_verdict v;
    char msg[300];        /* message of the last result, printable ASCII; "" before any */
    int64_t last_wall_ms; /* wall time of the last result */
    unsigned long long n_pass, n_fail;
    struct bg_prom_hist seconds; /* each check, start to result */
    bool changed; /* the verdict changed, or the first result came, since the owner cleared this */

    bool running;
    int64_t started_ms; /* monotonic, of the check in progress */
    int64_t next_ms;    /* monotonic ms of the next start */

    /* http: libcurl multi driven by our poll loop (curlm.c). */
    struct bg_curlm curl; /* curl.multi is NULL unless the check is http */
    CURL *easy;           /* the check in progress */
    char errbuf[CURL_ERROR_SIZE];

    /* tcp */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool resolved;
    int fd;
    struct bg_check_resolve *resolving; /* a host name being resolved in the background */

    /* exec */
    struct bg_child *child;
    struct bg_child *dying; /* a timed-out check being killed; no new one starts beside it */
};

/* Set up. Without a check (conf NULL or BG_CHECK_NONE) the verdict is healthy for good;
 * with one it starts unhealthy until `rise` passes. The first check starts at once. Returns
 * 0, or BG_EINVAL with the reason in err (libcurl unusable). */
/* "http", "tcp", "exec" or "none" (also for a value outside enum bg_check_type). */
const char *bg_check_type_name(enum bg_check_type t);
int bg_check_init(struct bg_check *c, const struct bg_check_conf *conf, char *err, size_t errlen);
bool bg_check_healthy(const struct bg_check *c);
/* "pass", "fail" or "none" (no result yet, or no check). */
const char *bg_check_result_name(const struct bg_check *c);
/* Descriptors to poll; returns how many were written (at most max). */
int bg_check_fds(struct bg_check *c, struct pollfd *pfd, int max);
/* After poll, with the entries bg_check_fds filled (n may be 0), on every loop turn: reads
 * results, enforces the timeout, starts the next check when due. */
void bg_check_run(struct bg_check *c, struct pollfd *pfd, int n, int64_t now);
/* Monotonic ms by which bg_check_run wants to run, or 0 for none. */
int64_t bg_check_deadline(const struct bg_check *c);
void bg_check_free(struct bg_check *c);

#endif
