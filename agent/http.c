/* http.c -- the agent's HTTP API (DESIGN §4): /v1/status, /health, /metrics. */
#include "agent.h"
#include "confirm.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *error,
                                   const char *reason)
{
    return bg_json_reply(
        c, code, json_pack("{s:s, s:o}", "error", error, "reason", bg_json_text(reason, 0)));
}

static bool authorized(struct bg_agent *a, struct bg_httpd_req *req)
{
    const char *token = a->conf->http.token;
    if (token == NULL)
        return true;
    const char *h = bg_httpd_header(req->conn, "Authorization");
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return false;
    const char *given = h + 7;
    return bg_ct_equal(given, strlen(given), token, strlen(token));
}

/* A higher epoch that is no live controller's: refused (503: the caller may retry). The real
 * leader may have been elected since /election was last read: ask the main loop to read it
 * again (at most every 100 ms, so a flood of made-up epochs cannot hammer ZooKeeper), and its
 * retry succeeds. A stranger's made-up epoch never does, and never fences anyone out. */
static enum MHD_Result unknown_epoch(struct bg_agent *a, struct bg_httpd_req *req, int64_t epoch,
                                     enum bg_status st)
{
    a->n_put_untrusted++;
    if (!a->live_reread && bg_now_ms() - a->live_read_ms >= 100) {
        a->live_reread = true;
        bg_zk_wake(&a->zk);
    }
    char live[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < a->n_live && used + 24 < sizeof(live); i++)
        used += (size_t)snprintf(live + used, sizeof(live) - used, "%s%lld", i ? "," : "",
                                 (long long)a->live[i]);
    char reason[300];
    snprintf(reason, sizeof(reason),
             "epoch %lld is not the sequence of a live member of /election (live: %s; current "
             "%lld); re-reading /election: retry if this leader was just elected",
             (long long)epoch, a->live_known ? (used ? live : "none") : "not read yet",
             (long long)a->epoch);
    bg_warn("untrusted_epoch", "peer=%s epoch=%lld current=%lld status=%s live=%s", req->peer,
            (long long)epoch, (long long)a->epoch, bg_status_name(st), used ? live : "none");
    return bg_json_reply(req->conn, 503,
                         json_pack("{s:s, s:s, s:I, s:I}", "error", "unknown epoch", "reason",
                                   reason, "epoch", (json_int_t)a->epoch, "given",
                                   (json_int_t)epoch));
}

static enum MHD_Result put_status(struct bg_agent *a, struct bg_httpd_req *req)
{
    a->n_put++;
    enum bg_status st;
    int64_t epoch = 0, timeout_ms = 0;
    char why[256];
    if (req->body_too_large) {
        a->n_put_bad++;
        return reply_error(req->conn, 413, "bad request", "body too large");
    }
    int weight = -1;
    if (bg_agent_parse_put(req->body, req->body_len, &st, &epoch, &timeout_ms, why, sizeof(why)) !=
            0 ||
        bg_agent_parse_put_weight(req->body, req->body_len, &weight, why, sizeof(why)) != 0) {
        a->n_put_bad++;
        bg_warn("bad_request", "peer=%s reason=\"%s\"", req->peer, why);
        return reply_error(req->conn, 400, "bad request", why);
    }
    enum bg_epoch_verdict v =
        bg_agent_epoch_verdict(epoch, a->epoch, a->live, a->n_live, a->live_known);
    if (v == BG_EPOCH_STALE) {
        a->n_put_stale++;
        bg_warn("stale_epoch", "peer=%s epoch=%lld current=%lld status=%s", req->peer,
                (long long)epoch, (long long)a->epoch, bg_status_name(st));
        return bg_json_reply(req->conn, 409,
                             json_pack("{s:s, s:I, s:I}", "error", "stale epoch", "epoch",
                                       (json_int_t)a->epoch, "given", (json_int_t)epoch));
    }
    if (v == BG_EPOCH_UNKNOWN)
        return unknown_epoch(a, req, epoch, st);
    if (v == BG_EPOCH_ACCEPT && epoch > a->epoch) {
        bg_info("new_epoch", "epoch=%lld previous=%lld peer=%s", (long long)epoch,
                (long long)a->epoch, req->peer);
        a->epoch = epoch;
    } else if (v == BG_EPOCH_ACCEPT_NOFENCE) {
        bg_info("epoch_not_fenced",
                "epoch=%lld current=%lld peer=%s reason=\"no controller is "
                "live in /election: obeyed, not remembered\"",
                (long long)epoch, (long long)a->epoch, req->peer);
    }
    if (st == BG_STATUS_UP && !bg_agent_app_healthy(a)) {
        /* Never take traffic to a failing application; OUT_OF_SERVICE is always accepted. */
        a->n_put_unhealthy++;
        char reason[400];
        snprintf(reason, sizeof(reason), "application health check failing: %s",
                 a->check.msg[0] ? a->check.msg : "no check has passed yet");
        bg_warn("status_refused", "peer=%s status=UP epoch=%lld reason=\"%s\"", req->peer,
                (long long)epoch, reason);
        return reply_error(req->conn, 503, "unhealthy", reason);
    }
    bg_agent_request_status(a, req, st, weight, timeout_ms);
    return MHD_YES;
}

/* GET /metrics: what the agent counts, in Prometheus text (common/prom.c). */
/* The instance's state and its PUT /v1/status results. */
static void metrics_state(struct bg_prom *p, struct bg_agent *a)
{
    const char *id = a->conf->instance.id;
    const char *color = bg_color_name(a->conf->instance.color);
    bg_prom_family(p, "bg_agent_up", "gauge", "1 when the instance is UP, 0 when OUT_OF_SERVICE.");
    bg_prom_sample(p, "bg_agent_up", a->status == BG_STATUS_UP, "id", id, "color", color,
                   (const char *)NULL);
    bg_prom_gauge(p, "bg_agent_applied", "1 when every backend has applied the current status.",
                  a->applied);
    bg_prom_gauge(p, "bg_agent_epoch", "The highest controller epoch obeyed.", (double)a->epoch);
    bg_prom_gauge(p, "bg_agent_weight",
                  "The weight (0-100, % of the configured weight) given with the status; -1 "
                  "when none was.",
                  (double)a->weight);
    bg_prom_gauge(p, "bg_agent_registered", "1 while the instance's node is in ZooKeeper.",
                  a->registered);
    static const char *const results[] = {"ok",           "stale_epoch",    "bad_request",
                                          "unauthorized", "backend_failed", "unhealthy",
                                          "unknown_epoch"};
    const unsigned long long n_put[] = {a->n_put_ok,       a->n_put_stale,  a->n_put_bad,
                                        a->n_put_auth,     a->n_put_failed, a->n_put_unhealthy,
                                        a->n_put_untrusted};
    bg_prom_family(p, "bg_agent_status_requests_total", "counter",
                   "PUT /v1/status requests, by result.");
    for (size_t i = 0; i < BG_ARRAY_LEN(results); i++)
        bg_prom_sample(p, "bg_agent_status_requests_total", (double)n_put[i], "result", results[i],
                       (const char *)NULL);
}

/* The application's health, the balancers' checks and confirmations, ZooKeeper. */
static void metrics_checks(struct bg_prom *p, struct bg_agent *a)
{
    bg_prom_gauge(p, "bg_agent_healthy",
                  "1 when the application health check says healthy (or none).",
                  bg_agent_app_healthy(a));
    bg_prom_family(p, "bg_agent_app_checks_total", "counter",
                   "Application health checks run, by result.");
    bg_prom_sample(p, "bg_agent_app_checks_total", (double)a->check.n_pass, "result", "pass",
                   (const char *)NULL);
    bg_prom_sample(p, "bg_agent_app_checks_total", (double)a->check.n_fail, "result", "fail",
                   (const char *)NULL);
    bg_prom_counter(p, "bg_agent_health_checks_total",
                    "GET /health requests answered (balancers' checks).", (double)a->n_health);
    bg_prom_counter(p, "bg_agent_registrations_total", "Registrations of the instance's node.",
                    (double)a->n_registrations);
    bg_prom_counter(p, "bg_agent_zk_reconnects_total", "ZooKeeper sessions opened again.",
                    (double)a->n_zk_reopens);
    bg_prom_gauge(p, "bg_agent_start_time_seconds", "When the agent started (Unix time).",
                  (double)(a->started_wall_ms / 1000));
    int balancers = 0;
    bool confirmed = bg_agent_confirmed(a, &balancers);
    bg_prom_gauge(p, "bg_agent_confirmed",
                  "1 when every polling balancer has seen the current status.", confirmed);
    bg_prom_gauge(p, "bg_agent_balancers", "Balancers polling now that must confirm a change.",
                  balancers);
}

/* Latency histograms: application checks, each backend's apply, ZooKeeper calls. */
static void metrics_latency(struct bg_prom *p, struct bg_agent *a)
{
    bg_prom_family(p, "bg_agent_app_check_duration_seconds", "histogram",
                   "Application health checks, start to result.");
    bg_prom_hist(p, "bg_agent_app_check_duration_seconds", &a->check.seconds, (const char *)NULL);
    bg_prom_family(p, "bg_agent_backend_apply_duration_seconds", "histogram",
                   "Backends applying a status, start to done (ok or failed), by backend type "
                   "and position in the configuration's order.");
    for (size_t i = 0; i < a->n_backends; i++) {
        char index[24];
        snprintf(index, sizeof(index), "%zu", i);
        bg_prom_hist(p, "bg_agent_backend_apply_duration_seconds", &a->backends[i].apply_seconds,
                     "backend", bg_backend_name(&a->backends[i]), "index", index,
                     (const char *)NULL);
    }
    bg_prom_family(p, "bg_agent_zk_call_duration_seconds", "histogram",
                   "ZooKeeper calls, submitted to answered (or given up for this turn).");
    bg_prom_hist(p, "bg_agent_zk_call_duration_seconds", &a->zk.call_seconds, (const char *)NULL);
}

static char *metrics_text(struct bg_agent *a)
{
    struct bg_prom p;
    bg_prom_init(&p);
    metrics_state(&p, a);
    metrics_checks(&p, a);
    metrics_latency(&p, a);
    return bg_prom_finish(&p);
}

enum MHD_Result bg_agent_http(void *ctx, struct bg_httpd_req *req)
{
    struct bg_agent *a = ctx;
    if (req->user != NULL)
        return bg_agent_answer_waiter(req); /* a resumed PUT /v1/status */
    const char *m = req->method;
    const char *u = req->url;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    if (strcmp(u, "/health") == 0) {
        if (!get)
            return reply_error(req->conn, 405, "method not allowed", "use GET /health");
        a->n_health++;
        bool up = bg_health_is_up(a->health);
        bool healthy = bg_agent_app_healthy(a);
        /* What the balancer is told: 200 only when UP and healthy; 503 when the application
         * fails; while OUT_OF_SERVICE and healthy 503, or 404 with the health backend's
         * out_of_service_code: 404 (HAProxy's disable-on-404 soft stop). A poll answered 503 by a
         * failing application does not confirm an UP change (the balancer will not mark it UP). */
        int code = bg_health_code(a->health, healthy);
        bg_health_polled(a->health, req->peer, bg_httpd_header(req->conn, "User-Agent"),
                         bg_httpd_header(req->conn, "X-Haproxy-Server-State"),
                         code == 200 ? BG_STATUS_UP : BG_STATUS_OUT);
        if (code == 200)
            return bg_httpd_reply(req->conn, 200, "text/plain", "UP\n");
        if (!up) /* 503; 404 (soft stop) only while the application is healthy */
            return bg_httpd_reply(req->conn, (unsigned)code, "text/plain", "OUT_OF_SERVICE\n");
        return bg_httpd_reply_take(
            req->conn, 503, "text/plain",
            bg_xasprintf("UNHEALTHY: %s\n",
                         a->check.msg[0] ? a->check.msg : "no check has passed yet"));
    }
    if (strcmp(u, "/metrics") == 0) {
        if (!get)
            return reply_error(req->conn, 405, "method not allowed", "use GET /metrics");
        char *body = metrics_text(a);
        enum MHD_Result r = bg_httpd_reply(req->conn, 200, "text/plain; version=0.0.4", body);
        free(body);
        return r;
    }
    if (strncmp(u, "/v1/", 4) == 0 && !authorized(a, req)) {
        a->n_put_auth++;
        char cm[24], cu[200]; /* the client's text: no forged keys or lines */
        bg_log_token(m, cm, sizeof(cm));
        bg_sanitize(u, strlen(u), cu, sizeof(cu));
        bg_warn("unauthorized", "peer=%s method=%s url=\"%s\"", req->peer, cm, cu);
        return reply_error(req->conn, 401, "unauthorized",
                           "missing or wrong \"Authorization: Bearer\" token");
    }
    if (strcmp(u, "/v1/status") == 0) {
        if (strcmp(m, "PUT") == 0)
            return put_status(a, req);
        if (!get)
            return reply_error(req->conn, 405, "method not allowed", "use GET or PUT /v1/status");
        return bg_httpd_reply_take(req->conn, 200, "application/json", bg_agent_status_json(a));
    }
    return reply_error(req->conn, 404, "not found", "try /v1/status, /health or /metrics");
}
