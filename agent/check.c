/* check.c -- the application health check: http (libcurl multi, curlm.c), tcp (non-blocking
 * connect), exec (child.c), each on the agent's poll loop; and the rise/fall verdict. */

/*
 * One check at a time: the next starts `interval` after the previous one started, or when it
 * ended if it took longer. A check that outlives `timeout` is a failure at that moment: an
 * http transfer is aborted, a tcp connect closed, an exec check gets SIGTERM (SIGKILL 1 s
 * later) and is reaped in the background; no new exec check starts until it is gone, so a
 * hanging check never has more than one successor beside it.
 *
 * tcp: a numeric address never blocks. A host name is resolved with getaddrinfo once, when
 * the agent starts (before the loop: blocking is fine there); only while that has not worked
 * is it tried again, at each check, in the background (a thread running getaddrinfo), so
 * that a DNS server that does not answer never stalls the loop: the check fails at its timeout
 * ("still resolving"), and the next one takes up the same request. The address is then kept
 * for the agent's life.
 */
#include "check.h"
#include "child.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK_KILL_GRACE_MS 1000
#define CHECK_RESOLVE_POLL_MS 20 /* how often a name resolution in progress is looked at */

/* ----------------------------------------------------------------------------------------
 * Verdict.
 * ------------------------------------------------------------------------------------- */

void bg_check_verdict_init(struct bg_check_verdict *v, int rise, int fall, bool healthy)
{
    *v = (struct bg_check_verdict){
        .rise = rise < 1 ? 1 : rise, .fall = fall < 1 ? 1 : fall, .healthy = healthy};
}

bool bg_check_verdict_feed(struct bg_check_verdict *v, bool pass, int64_t now)
{
    if (v->have_result && v->last_pass == pass)
        v->consecutive++;
    else
        v->consecutive = 1;
    v->have_result = true;
    v->last_pass = pass;
    v->last_ms = now;
    bool flip =
        v->healthy ? (!pass && v->consecutive >= v->fall) : (pass && v->consecutive >= v->rise);
    if (flip) {
        v->healthy = !v->healthy;
        v->changed_ms = now;
    }
    return flip;
}

/* ----------------------------------------------------------------------------------------
 * Results.
 * ------------------------------------------------------------------------------------- */

static void record(struct bg_check *c, bool pass, const char *msg, int64_t now)
{
    c->running = false;
    bg_prom_hist_observe(&c->seconds, (now - c->started_ms) / 1e3);
    bg_sanitize(msg, strlen(msg), c->msg, sizeof(c->msg));
    c->last_wall_ms = bg_wall_ms();
    if (pass)
        c->n_pass++;
    else
        c->n_fail++;
    bool was = c->v.healthy;
    /* The first result is news even when the verdict stays (an application down from the
     * start): the node gets its message, which is "" until then. */
    if (!c->v.have_result)
        c->changed = true;
    if (bg_check_verdict_feed(&c->v, pass, now)) {
        c->changed = true;
        bg_log(c->v.healthy ? BG_LOG_INFO : BG_LOG_WARN, "health_changed",
               "healthy=%s was=%s type=%s consecutive=%d reason=\"%s\"",
               c->v.healthy ? "true" : "false", was ? "true" : "false",
               bg_check_type_name(c->conf->type), c->v.consecutive, c->msg);
    } else if (!pass) {
        bg_debug("health_check_failed", "type=%s consecutive=%d reason=\"%s\"",
                 bg_check_type_name(c->conf->type), c->v.consecutive, c->msg);
    }
}

static void record_timeout(struct bg_check *c, int64_t now, const char *tail)
{
    char msg[400];
    snprintf(msg, sizeof(msg), "timed out after %lld ms%s%s", (long long)c->conf->timeout_ms,
             tail != NULL ? ": " : "", tail != NULL ? tail : "");
    record(c, false, msg, now);
}

/* ----------------------------------------------------------------------------------------
 * http
 * ------------------------------------------------------------------------------------- */

static size_t discard_body(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    (void)user;
    return size * n;
}

static void http_end(struct bg_check *c)
{
    bg_curlm_remove(&c->curl, &c->easy);
}

static void http_start(struct bg_check *c)
{
    CURL *h = bg_curlm_easy_new();
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, c->conf->http);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->conf->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->conf->timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "bluegreen-agent-check");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L); /* each check proves a fresh connection */
    c->easy = h;
    bg_curlm_add(&c->curl, h);
    bg_curlm_kick(&c->curl);
}

static void http_done(struct bg_check *c, int64_t now)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->curl.multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != c->easy)
            continue;
        CURLcode cc = m->data.result;
        long code = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
        char msg[300];
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            http_end(c);
            record_timeout(c, now, NULL);
            return;
        }
        if (cc != CURLE_OK)
            snprintf(msg, sizeof(msg), "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
        else
            snprintf(msg, sizeof(msg), "HTTP %ld", code);
        http_end(c);
        record(c, cc == CURLE_OK && code >= 200 && code < 300, msg, now);
        return;
    }
}

static void http_run(struct bg_check *c, struct pollfd *pfd, int n, int64_t now)
{
    bg_curlm_on_fds(&c->curl, pfd, n);
    bg_curlm_tick(&c->curl, now);
    if (c->running)
        http_done(c, now);
    /* libcurl enforces the timeout; this is a backstop should its timer be missed. */
    if (c->running && now >= c->started_ms + c->conf->timeout_ms + 1000) {
        http_end(c);
        record_timeout(c, now, NULL);
    }
}

/* ----------------------------------------------------------------------------------------
 * tcp
 * ------------------------------------------------------------------------------------- */

static int tcp_resolve(struct bg_check *c, bool numeric_only, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (bg_split_hostport(c->conf->tcp, host, sizeof(host), &port) != BG_OK) {
        snprintf(err, errlen, "bad address \"%s\"", c->conf->tcp);
        return BG_EINVAL;
    }
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = numeric_only ? AI_NUMERICHOST : 0};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, ports, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return BG_EINVAL;
    }
    memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
    c->addrlen = ai->ai_addrlen;
    c->resolved = true;
    freeaddrinfo(ai);
    return BG_OK;
}

/* A name resolution in the background: a thread of its own runs getaddrinfo (which blocks as
 * long as DNS does) while the loop looks at `done` every CHECK_RESOLVE_POLL_MS. (Not glibc's
 * getaddrinfo_a: its threads are invisible to ThreadSanitizer, whose runtime then crashes.) */
struct bg_check_resolve {
    pthread_t thread;
    atomic_bool done; /* set by the thread once rc and result are written */
    char host[256], port[16];
    int rc;
    struct addrinfo *result;
};

/* Requests whose thread still ran when their check was freed (a DNS server that never
 * answered, at exit): the thread writes into them, so they are kept, reachable, not freed. */
static struct bg_check_resolve *abandoned[8];

static void *resolve_thread(void *arg)
{
    struct bg_check_resolve *r = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    r->rc = getaddrinfo(r->host, r->port, &hints, &r->result);
    atomic_store_explicit(&r->done, true, memory_order_release);
    return NULL;
}

static void resolve_start(struct bg_check *c, int64_t now)
{
    struct bg_check_resolve *r = bg_xcalloc(1, sizeof(*r));
    int port;
    char err[400];
    if (bg_split_hostport(c->conf->tcp, r->host, sizeof(r->host), &port) != BG_OK) {
        snprintf(err, sizeof(err), "bad address \"%s\"", c->conf->tcp);
        free(r);
        record(c, false, err, now);
        return;
    }
    snprintf(r->port, sizeof(r->port), "%d", port);
    atomic_init(&r->done, false);
    int rc = pthread_create(&r->thread, NULL, resolve_thread, r);
    if (rc != 0) {
        snprintf(err, sizeof(err), "cannot resolve \"%s\": no thread: %s", r->host, strerror(rc));
        free(r);
        record(c, false, err, now);
        return;
    }
    c->resolving = r;
}

/* Look at the resolution in progress: 1 resolved (c->addr set), 0 still running, -1 failed
 * (recorded as the check's result). */
static int resolve_poll(struct bg_check *c, int64_t now)
{
    struct bg_check_resolve *r = c->resolving;
    if (!atomic_load_explicit(&r->done, memory_order_acquire))
        return 0;
    pthread_join(r->thread, NULL);
    c->resolving = NULL;
    struct addrinfo *ai = r->rc == 0 ? r->result : NULL;
    if (ai != NULL) {
        memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
        c->addrlen = ai->ai_addrlen;
        c->resolved = true;
    }
    char err[400];
    snprintf(err, sizeof(err), "cannot resolve \"%s\": %s", r->host,
             gai_strerror(r->rc != 0 ? r->rc : EAI_NONAME));
    if (r->result != NULL)
        freeaddrinfo(r->result);
    free(r);
    if (ai != NULL)
        return 1;
    record(c, false, err, now);
    return -1;
}

/* At free: a finished request is released; a running one is left to its thread. */
static void resolve_drop(struct bg_check *c)
{
    struct bg_check_resolve *r = c->resolving;
    if (r == NULL)
        return;
    c->resolving = NULL;
    if (atomic_load_explicit(&r->done, memory_order_acquire)) {
        pthread_join(r->thread, NULL);
        if (r->result != NULL)
            freeaddrinfo(r->result);
        free(r);
        return;
    }
    pthread_detach(r->thread);
    for (size_t i = 0; i < BG_ARRAY_LEN(abandoned); i++)
        if (abandoned[i] == NULL) {
            abandoned[i] = r;
            return;
        }
}

static void tcp_close(struct bg_check *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void tcp_connect(struct bg_check *c, int64_t now)
{
    char err[300];
    c->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, sizeof(err), "socket: %s", strerror(errno));
        record(c, false, err, now);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&c->addr, c->addrlen) == 0) {
        tcp_close(c);
        record(c, true, "connected", now);
    } else if (errno != EINPROGRESS && errno != EINTR) {
        snprintf(err, sizeof(err), "connect: %s", strerror(errno));
        tcp_close(c);
        record(c, false, err, now);
    }
}

static void tcp_start(struct bg_check *c, int64_t now)
{
    if (c->resolved) {
        tcp_connect(c, now);
        return;
    }
    if (c->resolving == NULL) /* else the last check's request, still running: look at it */
        resolve_start(c, now);
    if (c->resolving != NULL && resolve_poll(c, now) == 1)
        tcp_connect(c, now);
}

static void tcp_run(struct bg_check *c, struct pollfd *pfd, int n, int64_t now)
{
    if (c->resolving != NULL) {
        int r = resolve_poll(c, now);
        if (r == 1)
            tcp_connect(c, now); /* the same check: its timeout counts from its start */
        else if (r == 0 && now >= c->started_ms + c->conf->timeout_ms)
            record_timeout(c, now, "still resolving the host name"); /* the request goes on */
        return;
    }
    if (n > 0 && pfd[0].revents != 0) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        tcp_close(c);
        if (soerr == 0) {
            record(c, true, "connected", now);
        } else {
            char msg[200];
            snprintf(msg, sizeof(msg), "connect: %s", strerror(soerr));
            record(c, false, msg, now);
        }
        return;
    }
    if (now >= c->started_ms + c->conf->timeout_ms) {
        tcp_close(c);
        record_timeout(c, now, NULL);
    }
}

/* ----------------------------------------------------------------------------------------
 * exec
 * ------------------------------------------------------------------------------------- */

static void exec_start(struct bg_check *c, int64_t now)
{
    char err[300];
    c->child = bg_child_spawn(c->conf->argv, NULL, c->conf->timeout_ms, CHECK_KILL_GRACE_MS, err,
                              sizeof(err));
    if (c->child == NULL)
        record(c, false, err, now);
}

static void exec_run(struct bg_check *c, int64_t now)
{
    if (c->dying != NULL && bg_child_step(c->dying, now)) {
        bg_child_free(c->dying);
        c->dying = NULL;
    }
    if (c->child == NULL)
        return;
    if (bg_child_step(c->child, now)) {
        char msg[600];
        int rc = bg_child_result(c->child, now, msg, sizeof(msg));
        bg_child_free(c->child);
        c->child = NULL;
        if (c->running)
            record(c, rc == 0, msg, now);
        return;
    }
    if (c->child->timed_out && c->running) {
        /* SIGTERM was sent: a failure now, reaped in the background. */
        char tail[300];
        bg_child_tail_text(c->child, tail, sizeof(tail));
        record_timeout(c, now, tail);
        if (c->dying != NULL)
            bg_child_free(c->dying); /* cannot happen: no check starts beside a dying one */
        c->dying = c->child;
        c->child = NULL;
    }
}

/* ----------------------------------------------------------------------------------------
 * The checker.
 * ------------------------------------------------------------------------------------- */

const char *bg_check_type_name(enum bg_check_type t)
{
    static const char *const names[] = {[BG_CHECK_NONE] = "none",
                                        [BG_CHECK_HTTP] = "http",
                                        [BG_CHECK_TCP] = "tcp",
                                        [BG_CHECK_EXEC] = "exec"};
    return (unsigned)t < BG_ARRAY_LEN(names) ? names[t] : "none";
}

int bg_check_init(struct bg_check *c, const struct bg_check_conf *conf, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    bg_prom_hist_init(&c->seconds, bg_prom_latency_le, bg_prom_latency_n);
    bool none = conf == NULL || conf->type == BG_CHECK_NONE;
    c->conf = none ? NULL : conf;
    bg_check_verdict_init(&c->v, none ? 1 : conf->rise, none ? 1 : conf->fall, none);
    if (none)
        return BG_OK;
    c->next_ms = bg_now_ms();
    if (conf->type == BG_CHECK_HTTP) {
        char why[200];
        if (bg_curlm_init(&c->curl, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "check: %s", why);
            return BG_EINVAL;
        }
    } else if (conf->type == BG_CHECK_TCP) {
        char why[300];
        /* Numeric: never blocks. A name: resolved now, at start-up, where blocking is fine. */
        if (tcp_resolve(c, true, why, sizeof(why)) != BG_OK &&
            tcp_resolve(c, false, why, sizeof(why)) != BG_OK)
            bg_warn("health_check_resolve_failed", "tcp=%s reason=\"%s\" action=retry", conf->tcp,
                    why);
    }
    return BG_OK;
}

bool bg_check_healthy(const struct bg_check *c)
{
    return c->v.healthy;
}

const char *bg_check_result_name(const struct bg_check *c)
{
    if (c->conf == NULL || !c->v.have_result)
        return "none";
    return c->v.last_pass ? "pass" : "fail";
}

int bg_check_fds(struct bg_check *c, struct pollfd *pfd, int max)
{
    int n = 0;
    if (c->conf == NULL)
        return 0;
    switch (c->conf->type) {
    case BG_CHECK_HTTP:
        n = bg_curlm_fds(&c->curl, pfd, max);
        break;
    case BG_CHECK_TCP:
        if (c->fd >= 0 && n < max)
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = POLLOUT};
        break;
    case BG_CHECK_EXEC:
        if (c->child != NULL)
            n = bg_child_fds(c->child, pfd, n, max);
        if (c->dying != NULL)
            n = bg_child_fds(c->dying, pfd, n, max);
        break;
    case BG_CHECK_NONE:
        break;
    }
    return n;
}

static void start(struct bg_check *c, int64_t now)
{
    c->running = true;
    c->started_ms = now;
    c->next_ms = now + c->conf->interval_ms;
    switch (c->conf->type) {
    case BG_CHECK_HTTP:
        http_start(c);
        break;
    case BG_CHECK_TCP:
        tcp_start(c, now);
        break;
    case BG_CHECK_EXEC:
        exec_start(c, now);
        break;
    case BG_CHECK_NONE:
        c->running = false;
        break;
    }
}

void bg_check_run(struct bg_check *c, struct pollfd *pfd, int n, int64_t now)
{
    if (c->conf == NULL)
        return;
    switch (c->conf->type) {
    case BG_CHECK_HTTP:
        http_run(c, pfd, n, now);
        break;
    case BG_CHECK_TCP:
        if (c->running)
            tcp_run(c, pfd, n, now);
        break;
    case BG_CHECK_EXEC:
        exec_run(c, now);
        break;
    case BG_CHECK_NONE:
        break;
    }
    if (!c->running && now >= c->next_ms && c->dying == NULL) {
        start(c, now);
        if (c->conf->type == BG_CHECK_HTTP && c->running)
            http_done(c, now); /* an immediate failure (e.g. a bad host) is already known */
    }
}

int64_t bg_check_deadline(const struct bg_check *c)
{
    if (c->conf == NULL)
        return 0;
    int64_t now = bg_now_ms();
    int64_t d = c->running ? c->started_ms + c->conf->timeout_ms : c->next_ms;
    if (!c->running && c->dying != NULL)
        d = bg_child_deadline(c->dying, now); /* the next check waits for it to be reaped */
#define CK_SOONER(t) (d = ((t) != 0 && (t) < d) ? (t) : d)
    if (c->conf->type == BG_CHECK_HTTP && c->running)
        d = c->started_ms + c->conf->timeout_ms + 1000; /* the backstop; curl's timer first */
    CK_SOONER(c->curl.timer_at);
    if (c->running && c->resolving != NULL)
        CK_SOONER(now + CHECK_RESOLVE_POLL_MS);
    if (c->child != NULL)
        CK_SOONER(bg_child_deadline(c->child, now));
    if (c->dying != NULL)
        CK_SOONER(bg_child_deadline(c->dying, now));
#undef CK_SOONER
    return d;
}

void bg_check_free(struct bg_check *c)
{
    if (c->curl.multi != NULL) {
        http_end(c);
        bg_curlm_finalize(&c->curl);
    }
    tcp_close(c);
    resolve_drop(c);
    bg_child_free(c->child);
    bg_child_free(c->dying);
    c->child = c->dying = NULL;
}
