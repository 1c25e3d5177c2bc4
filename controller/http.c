/* http.c -- bg-controller: its own HTTP endpoints (/, /health, /metrics). */
#include "ctl_internal.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static enum MHD_Result ctl_http(void *ctx, struct bg_httpd_req *req)
{
    struct bg_ctl *c = ctx;
    if (strcmp(req->url, "/health") == 0) {
        return bg_json_reply(req->conn, 200,
                             json_pack("{s:b, s:I, s:s, s:s}", "leader", c->leader, "epoch",
                                       (json_int_t)c->epoch, "phase", bg_phase_name(c->phase), "zk",
                                       bg_zk_state_name(atomic_load(&c->zk.state))));
    }
    if (strcmp(req->url, "/metrics") == 0) {
        char *s = bg_ctl_metrics(c);
        enum MHD_Result r = bg_httpd_reply(req->conn, 200, "text/plain; version=0.0.4", s);
        free(s);
        return r;
    }
    if (strcmp(req->url, "/") == 0) { /* the status page (page.h): never calls ZooKeeper */
        json_t *live = c->leader ? bg_ctl_status_doc(c) : NULL;
        enum MHD_Result r = bg_page_serve(&c->page, req->conn, live, c->conf->id, c->leader);
        json_decref(live);
        return r;
    }
    return bg_httpd_reply(req->conn, 404, "application/json",
                          "{\"error\":\"not found\",\"reason\":\"try /, /health or /metrics\"}");
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
