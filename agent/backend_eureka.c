/* backend_eureka.c -- the "eureka" backend type: Eureka status overrides and optional
 * self-registration, over libcurl multi (curlm.c). Its agent.yaml keys and what runs it. */

/*
 * UP              DELETE {url}/apps/{APP}/{ID}/status?value=UP    (clear our override)
 * OUT_OF_SERVICE  PUT    {url}/apps/{APP}/{ID}/status?value=OUT_OF_SERVICE
 * then            GET    {url}/apps/{APP}/{ID} until instance.status says so (the registry
 *                 itself, not the 30 s response cache), retried briefly.
 * Every apply sends the status call again, so a server that forgot its overrides is repaired
 * by the controller's resync. We never PUT value=UP (it would pin UP over the application's
 * own health), never send value=UNKNOWN, never register with an override, never send the
 * replication header. Each request tries the URLs in turn on connection errors and 5xx,
 * starting with the last one that worked.
 *
 * register: true (for an application that is no Eureka client) makes the agent the client:
 * it registers, heartbeats every renew_interval, registers again when a heartbeat is answered
 * 404 (and re-applies the status), and deregisters on SIGTERM. The status it registers with
 * is its own view of the instance, by Eureka's override rules (AbstractInstanceRegistry,
 * FirstMatchWinsCompositeRule):
 *   - STARTING while the agent is OUT_OF_SERVICE: DownOrStartingRule makes a STARTING
 *     registration win over any lease, so the instance is never UP before the controller
 *     says so, not even after a server restart that forgot the overrides. Registering
 *     OUT_OF_SERVICE instead would be a trap: with no override to delete, DELETE ?value=UP
 *     does nothing, and LeaseExistsRule keeps the lease OUT_OF_SERVICE on every later
 *     registration, so the instance could never come UP without PUT ?value=UP.
 *   - UP once the agent is UP: registered before the DELETE of the override, so that the
 *     instance is UP whether or not an override existed.
 * Going OUT registers STARTING first and then PUTs the override, which leaves the registry
 * at OUT_OF_SERVICE (a STARTING registration after the PUT would show STARTING instead).
 *
 * One request at a time serves the current job (an apply, or a background re-registration);
 * heartbeats have a slot of their own. Sockets and timers come from libcurl's multi socket
 * API; nothing here blocks except the deregistration at exit (bounded by timeout per URL).
 */
#include "agent.h"
#include "backend.h"
#include "curlm.h"
#include "eureka_job.h"
#include "log.h"
#include "util.h"
#include "valid.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * Configuration: type: eureka (the server URLs, and the instance as Eureka knows it, defaulted
 * from the instance section).
 * ------------------------------------------------------------------------------------- */

enum {
    K_TYPE,
    K_URLS,
    K_APP,
    K_INSTANCE_ID,
    K_REGISTER,
    K_RENEW,
    K_DURATION,
    K_HOST_NAME,
    K_IP_ADDR,
    K_VIP,
    K_PORT,
    K_TIMEOUT
};

static const char *const keys[] = {"type",     "urls",           "app",      "instance_id",
                                   "register", "renew_interval", "duration", "host_name",
                                   "ip_addr",  "vip_address",    "port",     "timeout",
                                   NULL};

static void upcase(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

static char *lowered(const char *s)
{
    char *r = bg_xstrdup(s);
    for (char *p = r; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return r;
}

static void load_urls(struct bg_yaml *l, const yaml_node_t *n, const char *path,
                      struct bg_eureka_conf *b)
{
    if (n->type == YAML_SCALAR_NODE) {
        b->urls = bg_xcalloc(1, sizeof(char *));
        if (bg_yaml_get_str(l, n, path, BG_EXPECT_URL, bg_valid_url, &b->urls[0]))
            b->n_urls = 1;
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        bg_yaml_bad(l, n, path, "a sequence of URLs");
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        bg_yaml_fail(l, n->start_mark, path, "expected at least one URL, got an empty sequence");
        return;
    }
    b->urls = bg_xcalloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]);
        char where[80];
        bg_yaml_pathf(where, sizeof(where), "%s[%zu]", path, i);
        char *u = NULL;
        if (!bg_yaml_get_str(l, item, where, BG_EXPECT_URL, bg_valid_url, &u))
            continue;
        /* Paths are appended to the base URL: drop trailing slashes so they join cleanly. */
        for (size_t len = strlen(u); len > 0 && u[len - 1] == '/'; len--)
            u[len - 1] = '\0';
        b->urls[b->n_urls++] = u;
    }
}

/* Eureka values that default from the instance section (only where that one is valid). */
static void eureka_defaults(const struct bg_yaml_slot *s, const struct bg_instance_conf *in,
                            struct bg_eureka_conf *b)
{
    if (s[K_APP].val == NULL && in->app != NULL)
        b->app = bg_xstrdup(in->app);
    if (b->app != NULL)
        upcase(b->app);
    if (s[K_INSTANCE_ID].val == NULL && in->id != NULL)
        b->instance_id = bg_xstrdup(in->id);
    if (s[K_VIP].val == NULL && b->app != NULL)
        b->vip_address = lowered(b->app);
    char host[256];
    int port;
    if (in->endpoint == NULL ||
        bg_valid_split_url(in->endpoint, host, sizeof(host), &port) != BG_OK)
        return;
    if (s[K_HOST_NAME].val == NULL)
        b->host_name = bg_xstrdup(host);
    if (s[K_IP_ADDR].val == NULL)
        b->ip_addr = bg_xstrdup(host);
    if (s[K_PORT].val == NULL)
        b->port = port;
}

static void *eureka_make(void)
{
    struct bg_eureka_conf *b = bg_xcalloc(1, sizeof(*b));
    b->renew_interval_ms = 30000;
    b->duration_ms = 90000;
    b->timeout_ms = 2000;
    return b;
}

/* Everything but urls is optional; a lease must outlive the renewals that keep it. */
static void eureka_load(const struct bg_backend_entry *e, void *settings)
{
    struct bg_eureka_conf *b = settings;
    struct bg_yaml *l = e->l;
    const struct bg_yaml_slot *s = e->s;
    const char *const *w = e->w;
    bg_yaml_get_duration(l, s[K_TIMEOUT].val, w[K_TIMEOUT], 1, &b->timeout_ms);
    bg_yaml_need(l, e->n, e->path, e->kind, &s[K_URLS]);
    if (s[K_URLS].val != NULL)
        load_urls(l, s[K_URLS].val, w[K_URLS], b);
    bg_yaml_get_str(l, s[K_APP].val, w[K_APP], BG_EXPECT_NAME, bg_valid_name, &b->app);
    bg_yaml_get_str(l, s[K_INSTANCE_ID].val, w[K_INSTANCE_ID], BG_EXPECT_NAME, bg_valid_name,
                    &b->instance_id);
    bg_yaml_get_bool(l, s[K_REGISTER].val, w[K_REGISTER], &b->reg);
    bg_yaml_get_duration(l, s[K_RENEW].val, w[K_RENEW], 1, &b->renew_interval_ms);
    bg_yaml_get_duration(l, s[K_DURATION].val, w[K_DURATION], 1, &b->duration_ms);
    bg_yaml_get_str(l, s[K_HOST_NAME].val, w[K_HOST_NAME], "a host name without white space",
                    bg_valid_word, &b->host_name);
    bg_yaml_get_str(l, s[K_IP_ADDR].val, w[K_IP_ADDR], "an address without white space",
                    bg_valid_word, &b->ip_addr);
    bg_yaml_get_str(l, s[K_VIP].val, w[K_VIP], "a VIP address without white space", bg_valid_word,
                    &b->vip_address);
    bg_yaml_get_int(l, s[K_PORT].val, w[K_PORT], 1, 65535, &b->port);
    eureka_defaults(s, e->in, b);
    if (b->duration_ms <= b->renew_interval_ms)
        bg_yaml_fail(l, (s[K_DURATION].val ? s[K_DURATION].val : e->n)->start_mark, w[K_DURATION],
                     "expected a lease duration longer than renew_interval (%lld ms), got %lld ms",
                     (long long)b->renew_interval_ms, (long long)b->duration_ms);
}

static void eureka_free(void *settings)
{
    struct bg_eureka_conf *b = settings;
    if (b == NULL)
        return;
    char **owned[] = {&b->app, &b->instance_id, &b->host_name, &b->ip_addr, &b->vip_address};
    for (size_t k = 0; k < BG_ARRAY_LEN(owned); k++)
        bg_free(owned[k]);
    bg_yaml_free_strv(&b->urls, b->n_urls);
    free(b);
}

/* ----------------------------------------------------------------------------------------
 * Running it.
 * ------------------------------------------------------------------------------------- */

#define EU_MAX_BODY (256 * 1024)
#define EU_REG_BACKOFF_MIN_MS 1000
#define EU_REG_BACKOFF_MAX_MS 30000

enum rq_kind { RQ_REGISTER, RQ_STATUS, RQ_CONFIRM, RQ_HEARTBEAT };

static const char *const kind_name[] = {"register", "status", "confirm", "heartbeat"};

/* One HTTP request, tried on each URL in turn. */
struct req {
    CURL *easy;
    enum rq_kind kind;
    const char *method;
    char *path; /* appended to the base URL, query included */
    char *body; /* JSON body (POST) or NULL */
    struct curl_slist *headers;
    size_t first, tries, url;  /* failover: started at urls[first], now at urls[url] */
    struct bg_curlm_body resp; /* at most EU_MAX_BODY kept */
    char errbuf[CURL_ERROR_SIZE];
    char skipped[300]; /* URLs that failed before this one, and why */
    long code;         /* HTTP status of the final attempt, 0 for none */
    CURLcode cc;
};

struct eureka {
    const struct bg_eureka_conf *c;
    struct bg_curlm curl; /* sockets and timer of both transfers */
    size_t good_url;      /* the last URL that answered */
    char *base;           /* "/apps/APP/ID" (escaped) */
    char *app_path;       /* "/apps/APP" */

    /* Registration (register: true). */
    bool registered;
    const char *registered_as; /* "UP" or "STARTING" */
    int64_t dirty_ts;          /* lastDirtyTimestamp of our registration */
    int64_t next_heartbeat;
    int64_t reg_retry_at;
    int64_t reg_backoff;
    bool need_reassert;
    struct req *hb;

    struct bg_eu_job job; /* eureka_job.c */
    struct req *jreq;
    bool fg_done; /* the last apply finished; fg_rc is its result */
    int fg_rc;

    bool ever_applied;
    enum bg_status last_target;
};

/* ----------------------------------------------------------------------------------------
 * Requests.
 * ------------------------------------------------------------------------------------- */

static void req_free(struct eureka *e, struct req **pr)
{
    struct req *r = *pr;
    if (r == NULL)
        return;
    bg_curlm_remove(&e->curl, &r->easy);
    curl_slist_free_all(r->headers);
    free(r->path);
    free(r->body);
    bg_curlm_body_finalize(&r->resp);
    free(r);
    *pr = NULL;
}

/* Set up the easy handle for urls[r->url]. */
static CURL *req_easy(struct eureka *e, struct req *r)
{
    CURL *h = bg_curlm_easy_new();
    char *url = bg_xasprintf("%s%s", e->c->urls[r->url], r->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "bluegreen-agent");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bg_curlm_body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->resp);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(h, CURLOPT_PRIVATE, r);
    if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    } else if (strcmp(r->method, "PUT") == 0) {
        /* An empty body, sent with Content-Length: 0 as Eureka's own client does. */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (strcmp(r->method, "DELETE") == 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    return h;
}

static struct req *req_new(struct eureka *e, enum rq_kind kind, const char *method, char *path,
                           char *body, size_t first)
{
    struct req *r = bg_xcalloc(1, sizeof(*r));
    bg_curlm_body_init(&r->resp, EU_MAX_BODY);
    r->kind = kind;
    r->method = method;
    r->path = path;
    r->body = body;
    r->first = first % e->c->n_urls;
    r->url = r->first;
    r->headers = curl_slist_append(NULL, "Accept: application/json");
    if (body != NULL)
        r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
    else
        r->headers = curl_slist_append(r->headers, "Content-Type:"); /* none for PUT "" */
    r->headers = curl_slist_append(r->headers, "Expect:");
    return r;
}

static void req_send(struct eureka *e, struct req *r)
{
    r->errbuf[0] = '\0';
    r->code = 0;
    bg_curlm_body_reset(&r->resp);
    r->easy = req_easy(e, r);
    bg_curlm_add(&e->curl, r->easy);
}

/* Why an attempt failed, for messages: "connection refused" or "HTTP 503: body". */
static void attempt_error(const struct req *r, char *buf, size_t len)
{
    if (r->cc != CURLE_OK) {
        snprintf(buf, len, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc));
        return;
    }
    char body[160];
    bg_sanitize(r->resp.data ? r->resp.data : "", r->resp.len, body, sizeof(body));
    snprintf(buf, len, "HTTP %ld%s%s", r->code, body[0] ? ": " : "", body);
}

/* An attempt ended. Returns true when the request is finished (r->cc/r->code final), false
 * when it went on to the next URL. */
static bool req_attempt_done(struct eureka *e, struct req *r)
{
    bool retry = r->cc != CURLE_OK || r->code >= 500;
    if (!retry || r->tries + 1 >= e->c->n_urls) {
        if (!retry)
            e->good_url = r->url;
        return true;
    }
    char why[200];
    attempt_error(r, why, sizeof(why));
    size_t used = strlen(r->skipped);
    snprintf(r->skipped + used, sizeof(r->skipped) - used, "%s%s: %s", used ? "; " : "",
             e->c->urls[r->url], why);
    bg_warn("eureka_failover", "op=%s url=%s reason=\"%s\" next=%s", kind_name[r->kind],
            e->c->urls[r->url], why, e->c->urls[(r->url + 1) % e->c->n_urls]);
    bg_curlm_remove(&e->curl, &r->easy);
    r->tries++;
    r->url = (r->first + r->tries) % e->c->n_urls;
    req_send(e, r);
    return false;
}

/* ----------------------------------------------------------------------------------------
 * Request bodies and paths.
 * ------------------------------------------------------------------------------------- */

/* Percent-encode everything but RFC 3986 unreserved characters (curl_easy_escape). Out of
 * memory aborts. */
static char *escape(const char *s)
{
    char *c = curl_easy_escape(NULL, s, 0);
    if (c == NULL) {
        fprintf(stderr, "level=fatal event=out_of_memory what=curl_easy_escape\n");
        abort();
    }
    char *out = bg_xstrdup(c);
    curl_free(c);
    return out;
}

/* ----------------------------------------------------------------------------------------
 * Jobs: [register] -> status call -> confirm.
 * ------------------------------------------------------------------------------------- */

static void job_start(struct eureka *e, bool fg, bool has_target, enum bg_status target)
{
    req_free(e, &e->jreq);
    bg_eu_job_start(&e->job, fg, has_target, target, e->c->reg, bg_now_ms());
    if (fg)
        e->fg_done = false;
}

static void job_finish(struct bg_backend *b, int rc, const char *msg)
{
    struct eureka *e = b->priv;
    struct bg_eu_job *j = &e->job;
    j->active = false;
    req_free(e, &e->jreq);
    long long ms = (long long)(bg_now_ms() - j->started);
    if (j->fg) {
        e->fg_done = true;
        e->fg_rc = rc;
        if (j->skipped[0] != '\0')
            snprintf(b->msg, sizeof(b->msg), "%s (failed over: %s)", msg, j->skipped);
        else
            snprintf(b->msg, sizeof(b->msg), "%s", msg);
    }
    if (rc == 0)
        bg_info("eureka_applied", "job=%s status=%s ms=%lld note=\"%s\"",
                j->fg ? "apply" : "reassert", j->has_target ? bg_status_name(j->target) : "-", ms,
                msg);
    else
        bg_warn("eureka_apply_failed", "job=%s status=%s ms=%lld reason=\"%s\"",
                j->fg ? "apply" : "reassert", j->has_target ? bg_status_name(j->target) : "-", ms,
                msg);
    if (rc != 0 && !j->fg && e->c->reg && !e->registered) {
        /* A background registration failed: try again later, backing off. */
        e->reg_retry_at = bg_now_ms() + e->reg_backoff;
        e->reg_backoff =
            e->reg_backoff * 2 > EU_REG_BACKOFF_MAX_MS ? EU_REG_BACKOFF_MAX_MS : e->reg_backoff * 2;
        e->need_reassert = j->has_target;
    }
}

/* Send the job's next request, or finish a register-only job that has nothing left. */
static void job_request(struct bg_backend *b, int64_t now)
{
    struct eureka *e = b->priv;
    struct bg_eu_job *j = &e->job;
    bool up = j->target == BG_STATUS_UP;
    switch (bg_eu_job_next(j, e->registered ? e->registered_as : NULL)) {
    case BG_EU_REGISTER: {
        /* A newer lastDirtyTimestamp, or the registry would keep its older copy. */
        int64_t ts = bg_wall_ms();
        e->dirty_ts = ts > e->dirty_ts ? ts : e->dirty_ts + 1;
        e->jreq = req_new(e, RQ_REGISTER, "POST", bg_xstrdup(e->app_path),
                          bg_eu_register_body(e->c, &b->agent->conf->instance,
                                              bg_eu_job_own_status(j), e->dirty_ts),
                          e->good_url);
        break;
    }
    case BG_EU_STATUS:
        e->jreq = req_new(e, RQ_STATUS, up ? "DELETE" : "PUT",
                          bg_xasprintf("%s/status?value=%s", e->base, up ? "UP" : "OUT_OF_SERVICE"),
                          NULL, e->good_url);
        break;
    case BG_EU_CONFIRM:
        e->jreq = req_new(e, RQ_CONFIRM, "GET", bg_xstrdup(e->base), NULL, j->url);
        break;
    case BG_EU_METADATA: /* DESIGN §12: the canary weight, answered as a status call */
        e->jreq = req_new(e, RQ_STATUS, "PUT",
                          bg_xasprintf("%s/metadata?weight=%d", e->base, j->weight), NULL, j->url);
        break;
    case BG_EU_DONE: {
        char msg[200];
        snprintf(msg, sizeof(msg), "registered as %s at %s in %lld ms", e->registered_as,
                 e->c->urls[e->good_url], (long long)(now - j->started));
        job_finish(b, 0, msg);
        return;
    }
    }
    req_send(e, e->jreq);
}

/* The instance's status in a GET /apps/APP/ID answer, or NULL. */
static char *instance_status(const struct req *r)
{
    char status[64], why[160];
    if (bg_eureka_parse_instance(r->resp.data, r->resp.len, status, sizeof(status), why,
                                 sizeof(why)) != 0)
        return NULL;
    return bg_xstrdup(status);
}

/* The message of a job's final outcome. */
static void outcome_message(const struct eureka *e, const struct req *r, enum bg_eu_outcome o,
                            const char *seen, int64_t now, char *msg, size_t len)
{
    const struct bg_eu_job *j = &e->job;
    const char *url = e->c->urls[r->url];
    const char *want = bg_status_name(j->target);
    char why[300];
    attempt_error(r, why, sizeof(why));
    switch (o) {
    case BG_EU_REGISTER_FAILED:
        snprintf(msg, len, "register at %s failed: %s", url, why);
        break;
    case BG_EU_NOT_REGISTERED:
        snprintf(msg, len, "instance %s/%s is not registered at %s (HTTP 404)", e->c->app,
                 e->c->instance_id, url);
        break;
    case BG_EU_STATUS_FAILED:
        snprintf(msg, len, "%s %s/status?value=%s at %s failed: %s", r->method, e->base, want, url,
                 why);
        break;
    case BG_EU_CONFIRMED:
        snprintf(msg, len, "%s confirmed at %s in %lld ms", want, url,
                 (long long)(now - j->started));
        break;
    case BG_EU_MISMATCH:
        snprintf(msg, len, "%s reports status %s, expected %s (after %d reads)", url, seen, want,
                 j->confirm_tries);
        break;
    case BG_EU_UNCONFIRMED:
        snprintf(msg, len, "cannot confirm %s at %s: %s", want, url,
                 r->cc == CURLE_OK && r->code >= 200 && r->code < 300
                     ? "no instance.status in the answer"
                     : why);
        break;
    case BG_EU_NEXT:
    case BG_EU_REGISTERED:
    case BG_EU_LOST:
        msg[0] = '\0';
        break;
    }
}

/* The job's request finished (after failover): feed it to the job machine, act on what it
 * means. r is freed by the caller. */
static void job_response(struct bg_backend *b, struct req *r, int64_t now)
{
    static const enum bg_eu_step step_of[] = {BG_EU_REGISTER, BG_EU_STATUS, BG_EU_CONFIRM};
    struct eureka *e = b->priv;
    struct bg_eu_job *j = &e->job;
    e->jreq = NULL;
    if (r->kind == RQ_HEARTBEAT)
        return;
    if (r->skipped[0] != '\0') {
        size_t used = strlen(j->skipped);
        snprintf(j->skipped + used, sizeof(j->skipped) - used, "%s%s", used ? "; " : "",
                 r->skipped);
    }
    char *seen = r->kind == RQ_CONFIRM ? instance_status(r) : NULL;
    struct bg_eu_answer a = {
        .transport_ok = r->cc == CURLE_OK, .code = r->code, .status = seen, .url = r->url};
    enum bg_eu_outcome o = bg_eu_job_feed(j, step_of[r->kind], &a, now);
    if (o == BG_EU_REGISTERED) {
        const char *as = bg_eu_job_own_status(j);
        if (!e->registered || strcmp(e->registered_as, as) != 0)
            bg_info("eureka_registered", "url=%s app=%s id=%s status=%s", e->c->urls[r->url],
                    e->c->app, e->c->instance_id, as);
        e->registered = true;
        e->registered_as = as;
        e->reg_backoff = EU_REG_BACKOFF_MIN_MS;
        e->next_heartbeat = now + e->c->renew_interval_ms;
    } else if (o == BG_EU_LOST) {
        bg_warn("eureka_not_registered", "op=%s url=%s action=register", kind_name[r->kind],
                e->c->urls[r->url]);
        e->registered = false;
    } else if (o != BG_EU_NEXT) {
        char msg[480];
        outcome_message(e, r, o, seen, now, msg, sizeof(msg));
        job_finish(b, bg_eu_outcome_rc(o), msg);
    }
    free(seen);
}

/* ----------------------------------------------------------------------------------------
 * Heartbeats.
 * ------------------------------------------------------------------------------------- */

static void heartbeat_start(struct eureka *e)
{
    char *path = bg_xasprintf("%s?status=%s&lastDirtyTimestamp=%lld", e->base, e->registered_as,
                              (long long)e->dirty_ts);
    e->hb = req_new(e, RQ_HEARTBEAT, "PUT", path, NULL, e->good_url);
    req_send(e, e->hb);
}

static void heartbeat_response(struct eureka *e, struct req *r, int64_t now)
{
    e->hb = NULL;
    e->next_heartbeat = now + e->c->renew_interval_ms;
    if (r->cc == CURLE_OK && r->code == 200)
        return;
    char why[300];
    attempt_error(r, why, sizeof(why));
    if (r->cc == CURLE_OK && r->code == 404) {
        bg_warn("eureka_heartbeat_404", "url=%s reason=\"%s\" action=register", e->c->urls[r->url],
                why);
        e->registered = false;
        e->need_reassert = true;
        e->reg_retry_at = 0;
        return;
    }
    bg_warn("eureka_heartbeat_failed", "url=%s reason=\"%s\" skipped=\"%s\"", e->c->urls[r->url],
            why, r->skipped);
}

/* ----------------------------------------------------------------------------------------
 * The engine: start what is due, handle what finished.
 * ------------------------------------------------------------------------------------- */

static void pump(struct bg_backend *b, int64_t now)
{
    struct eureka *e = b->priv;
    for (int guard = 0; guard < 8; guard++) {
        if (!e->job.active && e->c->reg && (e->need_reassert || !e->registered) &&
            now >= e->reg_retry_at) {
            /* Registration lost or not yet done: register, then re-apply what was applied. */
            e->need_reassert = false;
            job_start(e, false, e->ever_applied, e->last_target);
        }
        if (!e->job.active || e->jreq != NULL || now < e->job.not_before)
            break;
        job_request(b, now);
    }
    if (e->c->reg && e->registered && e->hb == NULL && now >= e->next_heartbeat)
        heartbeat_start(e);
}

static void check_done(struct bg_backend *b)
{
    struct eureka *e = b->priv;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(e->curl.multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct req *r = (struct req *)(void *)priv;
        r->cc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->code);
        if (!req_attempt_done(e, r))
            continue;
        int64_t now = bg_now_ms();
        bg_debug("eureka_response", "op=%s method=%s url=%s%s code=%ld curl=%d", kind_name[r->kind],
                 r->method, e->c->urls[r->url], r->path, r->code, (int)r->cc);
        if (r == e->hb) {
            heartbeat_response(e, r, now);
        } else if (r == e->jreq) {
            job_response(b, r, now);
        }
        req_free(e, &r);
    }
}

/* ----------------------------------------------------------------------------------------
 * Backend operations.
 * ------------------------------------------------------------------------------------- */

static int eureka_init(struct bg_backend *b, char *err, size_t errlen)
{
    const struct bg_eureka_conf *c = b->conf->settings;
    if (c->n_urls == 0 || c->app == NULL || c->instance_id == NULL) {
        snprintf(err, errlen, "eureka: urls, app and instance_id are required");
        return BG_EINVAL;
    }
    if (c->reg && c->port <= 0) {
        snprintf(err, errlen, "eureka: register needs a port");
        return BG_EINVAL;
    }
    struct eureka *e = bg_xcalloc(1, sizeof(*e));
    e->c = c;
    char why[200];
    if (bg_curlm_init(&e->curl, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "eureka: %s", why);
        free(e);
        return BG_EINVAL;
    }
    char *app = escape(c->app), *id = escape(c->instance_id);
    e->app_path = bg_xasprintf("/apps/%s", app);
    e->base = bg_xasprintf("/apps/%s/%s", app, id);
    free(app);
    free(id);
    e->registered_as = "STARTING";
    e->reg_backoff = EU_REG_BACKOFF_MIN_MS;
    b->priv = e;
    bg_info("eureka_init", "urls=%zu first=%s app=%s id=%s register=%d", c->n_urls, c->urls[0],
            c->app, c->instance_id, c->reg);
    return BG_OK;
}

static int eureka_apply(struct bg_backend *b, enum bg_status st)
{
    struct eureka *e = b->priv;
    e->ever_applied = true;
    e->last_target = st;
    e->need_reassert = false; /* this apply registers if it must */
    job_start(e, true, true, st);
    e->job.weight = b->agent->target_weight; /* -1: none given, no metadata call */
    e->job.limit_ms = b->deadline_ms;
    snprintf(b->msg, sizeof(b->msg), "applying %s", bg_status_name(st));
    pump(b, bg_now_ms());
    return BG_PENDING;
}

static int eureka_progress(struct bg_backend *b, int64_t now)
{
    struct eureka *e = b->priv;
    pump(b, now);
    if (e->job.active && e->job.fg)
        return BG_PENDING;
    return e->fg_done ? e->fg_rc : 0;
}

static void eureka_cancel(struct bg_backend *b)
{
    struct eureka *e = b->priv;
    if (e->job.active && e->job.fg) {
        req_free(e, &e->jreq);
        e->job.active = false;
        bg_info("eureka_cancelled", "status=%s", bg_status_name(e->job.target));
    }
}

static int eureka_fds(struct bg_backend *b, struct pollfd *pfd, int max)
{
    struct eureka *e = b->priv;
    return bg_curlm_fds(&e->curl, pfd, max);
}

static void eureka_on_fds(struct bg_backend *b, struct pollfd *pfd, int n)
{
    struct eureka *e = b->priv;
    if (!bg_curlm_on_fds(&e->curl, pfd, n))
        return;
    check_done(b);
    pump(b, bg_now_ms());
}

static int64_t eureka_deadline(struct bg_backend *b)
{
    struct eureka *e = b->priv;
    int64_t now = bg_now_ms();
    int64_t d = e->curl.timer_at;
#define EU_SOONER(t) (d = (d == 0 || (t) < d) ? (t) : d)
    if (e->job.active && e->jreq == NULL)
        EU_SOONER(e->job.not_before > now ? e->job.not_before : now);
    if (e->c->reg && e->registered && e->hb == NULL)
        EU_SOONER(e->next_heartbeat);
    if (e->c->reg && !e->job.active && (e->need_reassert || !e->registered))
        EU_SOONER(e->reg_retry_at > now ? e->reg_retry_at : now);
#undef EU_SOONER
    return d;
}

static void eureka_tick(struct bg_backend *b, int64_t now)
{
    struct eureka *e = b->priv;
    if (bg_curlm_tick(&e->curl, now))
        check_done(b);
    pump(b, now);
}

/* SIGTERM: leave the registry. Blocks for at most timeout per URL: we are exiting. */
static void eureka_shutdown(struct bg_backend *b)
{
    struct eureka *e = b->priv;
    req_free(e, &e->jreq);
    req_free(e, &e->hb);
    e->job.active = false;
    if (!e->c->reg || !e->registered)
        return;
    for (size_t t = 0; t < e->c->n_urls; t++) {
        size_t u = (e->good_url + t) % e->c->n_urls;
        struct req *r = req_new(e, RQ_HEARTBEAT, "DELETE", bg_xstrdup(e->base), NULL, u);
        r->easy = req_easy(e, r);
        r->cc = curl_easy_perform(r->easy);
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->code);
        char why[300];
        attempt_error(r, why, sizeof(why));
        bool done = r->cc == CURLE_OK && r->code < 500;
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        if (done) {
            bg_info("eureka_deregistered", "url=%s code=%ld", e->c->urls[u], r->code);
            req_free(e, &r);
            e->registered = false;
            return;
        }
        bg_warn("eureka_deregister_failed", "url=%s reason=\"%s\"", e->c->urls[u], why);
        req_free(e, &r);
    }
}

static void eureka_destroy(struct bg_backend *b)
{
    struct eureka *e = b->priv;
    if (e == NULL)
        return;
    req_free(e, &e->jreq);
    req_free(e, &e->hb);
    bg_curlm_finalize(&e->curl);
    free(e->base);
    free(e->app_path);
    free(e);
    b->priv = NULL;
}

static const struct bg_backend_ops ops = {
    .init = eureka_init,
    .apply = eureka_apply,
    .progress = eureka_progress,
    .cancel = eureka_cancel,
    .fds = eureka_fds,
    .on_fds = eureka_on_fds,
    .deadline = eureka_deadline,
    .tick = eureka_tick,
    .shutdown = eureka_shutdown,
    .destroy = eureka_destroy,
};

const struct bg_backend_type bg_backend_eureka = {
    .name = "eureka",
    .flags = BG_BACKEND_WEIGHTS,
    .keys = keys,
    .make = eureka_make,
    .load = eureka_load,
    .free = eureka_free,
    .ops = &ops,
};
