/* check.c -- the application health check: http (libcurl multi, curlm.c), tcp (non-blocking
 * connect), exec (child.c), each on the agent's poll loop; and the rise/fall verdict. */

/*
 * One check at a time: the next starts `interval` after the previous one started, or when it
 * ended if it took longer. A check that outlives `timeout` is a failure at that moment: an
 * http transfer is aborted, a tcp connect closed, an exec check gets SIGTERM (SIGKILL 1 s
 * later) and is reaped in the background; no new exec check starts until it is gone, so a
 * hanging check never has more than one successor beside it.
 *
 * tcp: a numeric address never blocks. A host name is resolved with getaddrinfo (which
 * blocks) once, when the agent starts; only while that has not worked is it tried again,
 * at each check. Its address is then kept for the agent's life.
 */
#include "check.h"
#include "child.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK_KILL_GRACE_MS 1000

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

static void tcp_close(struct bg_check *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void tcp_start(struct bg_check *c, int64_t now)
{
    char err[300];
    if (!c->resolved && tcp_resolve(c, false, err, sizeof(err)) != BG_OK) {
        record(c, false, err, now);
        return;
    }
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

static void tcp_run(struct bg_check *c, struct pollfd *pfd, int n, int64_t now)
{
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
    bg_child_free(c->child);
    bg_child_free(c->dying);
    c->child = c->dying = NULL;
}
