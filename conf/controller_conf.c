/* controller_conf.c -- controller.yaml: the switch section, the controller id, and the whole
 * file's loader (bg_conf_load_controller). */
#include "sections.h"
#include "valid.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    SW_BATCH,
    SW_MIN_READY,
    SW_SETTLE,
    SW_CALL_TIMEOUT,
    SW_RETRIES,
    SW_RESYNC,
    SW_BACKOFF,
    SW_MIN_HEALTHY_TIME,
    SW_UNCONFIRMED,
    SW_UNCONFIRMED_TIMEOUT
};

/* switch.unconfirmed: hold (default) or proceed. */
static void get_unconfirmed(struct bg_yaml *l, const yaml_node_t *n, bool *proceed)
{
    if (n == NULL)
        return;
    if (bg_yaml_is_string(n) && strcmp(bg_yaml_text(n), "hold") == 0)
        *proceed = false;
    else if (bg_yaml_is_string(n) && strcmp(bg_yaml_text(n), "proceed") == 0)
        *proceed = true;
    else
        bg_yaml_bad(l, n, "switch.unconfirmed", "hold or proceed");
}

static void load_switch(struct bg_yaml *l, yaml_node_t *n, struct bg_switch_conf *sw)
{
    struct bg_yaml_slot s[] = {{.key = "batch_size"},  {.key = "min_ready"},
                               {.key = "settle"},      {.key = "call_timeout"},
                               {.key = "retries"},     {.key = "resync"},
                               {.key = "backoff"},     {.key = "min_healthy_time"},
                               {.key = "unconfirmed"}, {.key = "unconfirmed_timeout"}};
    /* Not named: 0 (every call at once, no settle, no min_healthy_time, hold). */
    *sw = (struct bg_switch_conf){.min_ready = 1,
                                  .call_timeout_ms = 2000,
                                  .retries = 3,
                                  .resync_ms = 30000,
                                  .backoff_ms = 100,
                                  .unconfirmed_timeout_ms = 60000};
    if (!bg_yaml_scan_mapping(l, n, "switch", "", s, BG_ARRAY_LEN(s)))
        return;
    bg_yaml_get_int(l, s[SW_BATCH].val, "switch.batch_size", 1, INT_MAX, &sw->batch_size);
    bg_yaml_get_int(l, s[SW_MIN_READY].val, "switch.min_ready", 0, INT_MAX, &sw->min_ready);
    bg_yaml_get_duration(l, s[SW_SETTLE].val, "switch.settle", 0, &sw->settle_ms);
    bg_yaml_get_duration(l, s[SW_CALL_TIMEOUT].val, "switch.call_timeout", 1, &sw->call_timeout_ms);
    bg_yaml_get_int(l, s[SW_RETRIES].val, "switch.retries", 0, INT_MAX, &sw->retries);
    bg_yaml_get_duration(l, s[SW_RESYNC].val, "switch.resync", 0, &sw->resync_ms);
    bg_yaml_get_duration(l, s[SW_BACKOFF].val, "switch.backoff", 0, &sw->backoff_ms);
    bg_yaml_get_duration(l, s[SW_MIN_HEALTHY_TIME].val, "switch.min_healthy_time", 0,
                         &sw->min_healthy_time_ms);
    get_unconfirmed(l, s[SW_UNCONFIRMED].val, &sw->unconfirmed_proceed);
    bg_yaml_get_duration(l, s[SW_UNCONFIRMED_TIMEOUT].val, "switch.unconfirmed_timeout", 1,
                         &sw->unconfirmed_timeout_ms);
}

static char *default_controller_id(void)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    return bg_xasprintf("%s-%ld", host, (long)getpid());
}

enum { C_ZK, C_SWITCH, C_HTTP, C_ID };

void bg_conf_free_controller(struct bg_controller_conf *c)
{
    if (c == NULL)
        return;
    bg_free(&c->path);
    bg_conf_free_zk(&c->zk);
    bg_conf_free_http(&c->http);
    bg_free(&c->id);
    memset(c, 0, sizeof(*c));
}

static void controller_sections(struct bg_yaml *l, yaml_node_t *root, void *conf)
{
    struct bg_controller_conf *out = conf;
    struct bg_yaml_slot s[] = {
        {.key = "zookeeper"}, {.key = "switch"}, {.key = "http"}, {.key = "id"}};
    bg_yaml_scan_mapping(l, root, "", "", s, BG_ARRAY_LEN(s));
    bg_yaml_need(l, root, "", "", &s[C_ZK]);
    bg_conf_load_zk(l, s[C_ZK].val, &out->zk);
    bg_conf_warn_zk_auth(l, s[C_ZK].val, &out->zk);
    load_switch(l, s[C_SWITCH].val, &out->sw);
    bg_conf_load_http(l, s[C_HTTP].val, true, &out->http);
    bg_yaml_get_str(l, s[C_ID].val, "id", BG_EXPECT_ID, bg_valid_id, &out->id);
    if (s[C_ID].val == NULL)
        out->id = default_controller_id();
}

static void free_controller(void *conf)
{
    bg_conf_free_controller(conf);
}

int bg_conf_load_controller(const char *path, struct bg_controller_conf *out,
                            struct bg_conf_errors *errs)
{
    memset(out, 0, sizeof(*out));
    out->path = bg_xstrdup(path);
    return bg_yaml_load(path, controller_sections, free_controller, out, errs);
}
