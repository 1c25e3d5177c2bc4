/* http.c -- bg-controller: its own HTTP endpoints (/health, /metrics). */
#include "ctl_internal.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static enum MHD_Result ctl_http(void *ctx, struct bg_httpd_req *req)
{
    struct bg_ctl *c = ctx;
    if (strcmp(req->url, "/health") == 0) {
        return bg_httpd_reply_take(
            req->conn, 200, "application/json",
            bg_xasprintf("{\"leader\":%s,\"epoch\":%lld,\"phase\":\"%s\",\"zk\":\"%s\"}",
                         c->leader ? "true" : "false", (long long)c->epoch, bg_phase_name(c->phase),
                         bg_zk_state_name(atomic_load(&c->zk.state))));
    }
    if (strcmp(req->url, "/metrics") == 0) {
        size_t unhealthy = 0, unconfirmed = 0;
        for (size_t i = 0; i < c->n; i++) {
            unhealthy += c->m[i].endpoint != NULL && !c->m[i].healthy;
            unconfirmed += c->m[i].endpoint != NULL && c->m[i].unconfirmed;
        }
        char *s = bg_xasprintf(
            "# TYPE bg_controller_leader gauge\nbg_controller_leader %d\n"
            "# TYPE bg_controller_epoch gauge\nbg_controller_epoch %lld\n"
            "# TYPE bg_controller_instances gauge\nbg_controller_instances %zu\n"
            "# TYPE bg_controller_calls_total counter\nbg_controller_calls_total %llu\n"
            "# TYPE bg_controller_call_failures_total counter\n"
            "bg_controller_call_failures_total %llu\n"
            "# TYPE bg_controller_switches_total counter\nbg_controller_switches_total %llu\n"
            "# TYPE bg_controller_passes_total counter\nbg_controller_passes_total %llu\n"
            "# TYPE bg_controller_phase gauge\nbg_controller_phase{phase=\"%s\"} 1\n"
            "# HELP bg_controller_unhealthy_instances Registered instances whose application "
            "health check fails.\n"
            "# TYPE bg_controller_unhealthy_instances gauge\n"
            "bg_controller_unhealthy_instances %zu\n"
            "# HELP bg_controller_fallback 1 while the desired colour cannot carry traffic and the "
            "other colour serves instead.\n"
            "# TYPE bg_controller_fallback gauge\nbg_controller_fallback %d\n"
            "# HELP bg_controller_unconfirmed_instances Instances whose last status a balancer has "
            "not seen yet (held, with switch.unconfirmed: hold).\n"
            "# TYPE bg_controller_unconfirmed_instances gauge\n"
            "bg_controller_unconfirmed_instances %zu\n",
            c->leader, (long long)c->epoch, c->n, c->n_calls, c->n_call_failures, c->n_switches,
            c->n_passes, bg_phase_name(c->phase), unhealthy, c->fallback, unconfirmed);
        enum MHD_Result r = bg_httpd_reply(req->conn, 200, "text/plain; version=0.0.4", s);
        free(s);
        return r;
    }
    return bg_httpd_reply(req->conn, 404, "application/json",
                          "{\"error\":\"not found\",\"reason\":\"try /health or /metrics\"}");
}

int bg_ctl_http_start(struct bg_ctl *c)
{
    const struct bg_controller_conf *conf = c->conf;
    if (conf->http.listen == NULL)
        return BG_OK;
    char err[256];
    if (bg_httpd_start(&c->http, &conf->http.server, ctl_http, c, err, sizeof(err)) != 0) {
        bg_error("http_listen_failed", "listen=%s reason=\"%s\"", conf->http.listen, err);
        return BG_EINVAL;
    }
    return BG_OK;
}

void bg_ctl_http_stop(struct bg_ctl *c)
{
    bg_httpd_stop(&c->http);
}
