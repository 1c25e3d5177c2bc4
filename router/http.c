/* http.c -- bg-router: GET /health and GET /metrics (when http.listen is set). */
#include "json.h"
#include "log.h"
#include "prom.h"
#include "router.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static char *health_json(const struct bg_router *r)
{
    /* last_error may quote a file name that is not UTF-8: bg_json_text makes it JSON-safe. */
    json_t *j = json_pack("{s:s, s:s, s:I, s:i, s:b, s:o}", "id", r->conf->id, "zk",
                          bg_zk_state_name(atomic_load(&r->zk.state)), "generation",
                          (json_int_t)r->generation, "serving", (int)r->serving.n, "pending",
                          r->retry || r->lb->ops->busy(r->lb), "last_error",
                          bg_json_text(r->last_error, 0));
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s != NULL ? s : bg_xstrdup("{}");
}

static char *metrics_text(const struct bg_router *r)
{
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_gauge(&p, "bg_router_serving_instances", "Instances the balancer serves now",
                  (double)r->serving.n);
    bg_prom_gauge(&p, "bg_router_desired_instances",
                  "Instances UP in /status with a usable address", (double)r->desired.n);
    bg_prom_gauge(&p, "bg_router_dropped_instances",
                  "Instances UP in /status left out for a missing or malformed address",
                  (double)r->dropped);
    bg_prom_gauge(&p, "bg_router_generation", "Generation of the configuration served",
                  (double)r->generation);
    bg_prom_gauge(&p, "bg_router_pending", "1 while a change is running or failed",
                  r->retry || r->lb->ops->busy(r->lb) ? 1 : 0);
    bg_prom_counter(&p, "bg_router_applies_total", "Changes of the balancer attempted",
                    (double)r->n_applies);
    bg_prom_counter(&p, "bg_router_apply_failures_total",
                    "Changes that failed (render, test, reload or confirmation)",
                    (double)r->n_apply_failures);
    bg_prom_counter(&p, "bg_router_reapplies_total",
                    "Times the balancer had lost what it served (HAProxy reloaded or changed by "
                    "hand) and everything was applied again",
                    (double)r->n_reapplies);
    bg_prom_counter(&p, "bg_router_reads_total", "Reads of ZooKeeper's view", (double)r->n_reads);
    bg_prom_counter(&p, "bg_router_member_reads_total",
                    "Reads of ZooKeeper's view that read every member (not /status alone)",
                    (double)r->n_member_reads);
    bg_prom_family(&p, "bg_router_apply_seconds", "histogram",
                   "One change: render to confirmed (or failed)");
    bg_prom_hist(&p, "bg_router_apply_seconds", &r->apply_seconds, NULL);
    bg_prom_family(&p, "bg_zk_call_seconds", "histogram", "ZooKeeper calls");
    bg_prom_hist(&p, "bg_zk_call_seconds", &r->zk.call_seconds, NULL);
    return bg_prom_finish(&p);
}

static enum MHD_Result router_http(void *ctx, struct bg_httpd_req *req)
{
    struct bg_router *r = ctx;
    if (strcmp(req->url, "/health") == 0)
        return bg_httpd_reply_take(req->conn, 200, "application/json", health_json(r));
    if (strcmp(req->url, "/metrics") == 0)
        return bg_httpd_reply_take(req->conn, 200, "text/plain; version=0.0.4", metrics_text(r));
    return bg_httpd_reply(req->conn, 404, "application/json",
                          "{\"error\":\"not found\",\"reason\":\"try /health or /metrics\"}");
}

int bg_router_http_start(struct bg_router *r)
{
    if (r->conf->http.listen == NULL)
        return BG_OK;
    char err[256];
    if (bg_httpd_start(&r->http, &r->conf->http.server, router_http, r, err, sizeof(err)) != 0) {
        bg_error("http_listen_failed", "listen=%s reason=\"%s\"", r->conf->http.listen, err);
        return BG_EINVAL;
    }
    return BG_OK;
}
