/* agent_conf.c -- agent.yaml: the instance and check sections, and the whole file's loader
 * (bg_conf_load_agent); the backends section is backend_conf.c's. */
#include "backend.h"
#include "sections.h"
#include "valid.h"

#include <stdlib.h>
#include <string.h>

enum { IN_ID, IN_COLOR, IN_ENDPOINT, IN_APP, IN_VERSION, IN_ADDRESS };

/* The endpoint defaults to http.listen (when valid), https:// with http.tls. */
static void load_instance(struct bg_yaml *l, yaml_node_t *n, const struct bg_http_conf *http,
                          struct bg_instance_conf *in)
{
    const char *listen = http->listen;
    bool tls = http->tls_cert != NULL;
    struct bg_yaml_slot s[] = {{.key = "id"},  {.key = "color"},   {.key = "endpoint"},
                               {.key = "app"}, {.key = "version"}, {.key = "address"}};
    in->color = BG_COLOR_INVALID;
    bool mapping = bg_yaml_scan_mapping(l, n, "instance", "", s, BG_ARRAY_LEN(s));
    if (mapping) {
        bg_yaml_need(l, n, "instance", "", &s[IN_ID]);
        bg_yaml_need(l, n, "instance", "", &s[IN_COLOR]);
        bg_yaml_get_str(l, s[IN_ID].val, "instance.id", BG_EXPECT_ID, bg_valid_id, &in->id);
        bg_yaml_get_color(l, s[IN_COLOR].val, "instance.color", &in->color);
        if (bg_yaml_get_str(l, s[IN_ENDPOINT].val, "instance.endpoint", BG_EXPECT_URL, bg_valid_url,
                            &in->endpoint) &&
            tls && strncmp(in->endpoint, "https://", 8) != 0)
            bg_yaml_fail(l, s[IN_ENDPOINT].val->start_mark, "instance.endpoint",
                         "expected an https:// URL because http.tls is set, got \"%s\"",
                         in->endpoint);
        bg_yaml_get_str(l, s[IN_APP].val, "instance.app", BG_EXPECT_NAME, bg_valid_name, &in->app);
        bg_yaml_get_str(l, s[IN_VERSION].val, "instance.version", "a string", NULL, &in->version);
        bg_yaml_get_str(l, s[IN_ADDRESS].val, "instance.address", BG_EXPECT_HOSTPORT,
                        bg_valid_hostport, &in->address);
    }
    if (s[IN_APP].val == NULL)
        in->app = bg_xstrdup("APP");
    if (s[IN_VERSION].val == NULL)
        in->version = bg_xstrdup("");
    if (!mapping || s[IN_ENDPOINT].val != NULL || listen == NULL)
        return;
    char host[256];
    int port;
    if (bg_valid_split_hostport(listen, host, sizeof(host), &port) == BG_OK &&
        bg_valid_is_wildcard(host)) {
        bg_yaml_fail(l, n->start_mark, "instance",
                     "missing key \"endpoint\", required because http.listen \"%s\" is a wildcard "
                     "address (give the URL the controller should call)",
                     listen);
        return;
    }
    in->endpoint = bg_xasprintf("%s://%s", tls ? "https" : "http", listen);
}

enum { CK_HTTP, CK_TCP, CK_EXEC, CK_INTERVAL, CK_TIMEOUT, CK_RISE, CK_FALL };

/* check: exactly one of http, tcp, exec, and the timing. Absent: BG_CHECK_NONE. */
static void load_check(struct bg_yaml *l, yaml_node_t *n, struct bg_check_conf *ck)
{
    struct bg_yaml_slot s[] = {{.key = "http"},     {.key = "tcp"},     {.key = "exec"},
                               {.key = "interval"}, {.key = "timeout"}, {.key = "rise"},
                               {.key = "fall"}};
    *ck = (struct bg_check_conf){
        .type = BG_CHECK_NONE, .interval_ms = 1000, .timeout_ms = 1000, .rise = 2, .fall = 3};
    if (n == NULL)
        return;
    ck->line = (int)n->start_mark.line + 1;
    if (!bg_yaml_scan_mapping(l, n, "check", "", s, BG_ARRAY_LEN(s)))
        return;
    int given = (s[CK_HTTP].val != NULL) + (s[CK_TCP].val != NULL) + (s[CK_EXEC].val != NULL);
    if (given == 0) {
        bg_yaml_fail(l, n->start_mark, "check",
                     "expected exactly one of \"http\", \"tcp\", \"exec\", got none");
    } else if (given > 1) {
        /* Point at the second one given: that is where the mapping went wrong. */
        const yaml_node_t *second = NULL, *first = NULL;
        for (int i = CK_HTTP; i <= CK_EXEC; i++) {
            const yaml_node_t *k = s[i].key_node;
            if (k == NULL)
                continue;
            if (first == NULL || k->start_mark.index < first->start_mark.index) {
                second = first;
                first = k;
            } else if (second == NULL || k->start_mark.index < second->start_mark.index) {
                second = k;
            }
        }
        char where[64];
        bg_yaml_join(where, sizeof(where), "check", bg_yaml_text(second));
        bg_yaml_fail(l, second->start_mark, where,
                     "expected exactly one of \"http\", \"tcp\", \"exec\" in the check mapping, "
                     "but \"%s\" is given too",
                     bg_yaml_text(first));
    }
    if (bg_yaml_get_str(l, s[CK_HTTP].val, "check.http",
                        "an http:// or https:// URL such as \"http://127.0.0.1:8080/health\"",
                        bg_valid_url, &ck->http))
        ck->type = BG_CHECK_HTTP;
    if (bg_yaml_get_str(l, s[CK_TCP].val, "check.tcp", BG_EXPECT_HOSTPORT, bg_valid_hostport,
                        &ck->tcp))
        ck->type = BG_CHECK_TCP;
    if (s[CK_EXEC].val != NULL) {
        bg_yaml_get_command(l, s[CK_EXEC].val, "check.exec", &ck->argv, &ck->argc);
        if (ck->argc > 0)
            ck->type = BG_CHECK_EXEC;
    }
    bg_yaml_get_duration(l, s[CK_INTERVAL].val, "check.interval", 1, &ck->interval_ms);
    bg_yaml_get_duration(l, s[CK_TIMEOUT].val, "check.timeout", 1, &ck->timeout_ms);
    bg_yaml_get_int(l, s[CK_RISE].val, "check.rise", 1, 1000, &ck->rise);
    bg_yaml_get_int(l, s[CK_FALL].val, "check.fall", 1, 1000, &ck->fall);
    if (given != 1)
        ck->type = BG_CHECK_NONE;
}

enum { A_ZK, A_INSTANCE, A_HTTP, A_BACKENDS, A_CHECK };

static void agent_sections(struct bg_yaml *l, yaml_node_t *root, void *conf)
{
    struct bg_agent_conf *out = conf;
    struct bg_yaml_slot s[] = {{.key = "zookeeper"},
                               {.key = "instance"},
                               {.key = "http"},
                               {.key = "backends"},
                               {.key = "check"}};
    bg_yaml_scan_mapping(l, root, "", "", s, BG_ARRAY_LEN(s));
    bg_yaml_need(l, root, "", "", &s[A_ZK]);
    bg_yaml_need(l, root, "", "", &s[A_INSTANCE]);
    bg_yaml_need(l, root, "", "", &s[A_HTTP]);
    bg_conf_load_zk(l, s[A_ZK].val, &out->zk);
    bg_conf_warn_zk_auth(l, s[A_ZK].val, &out->zk);
    bg_conf_load_http(l, s[A_HTTP].val, false, &out->http);
    load_instance(l, s[A_INSTANCE].val, &out->http, &out->instance);
    bg_conf_load_backends(l, s[A_BACKENDS].val, out);
    load_check(l, s[A_CHECK].val, &out->check);
}

static void free_agent(void *conf)
{
    bg_conf_free_agent(conf);
}

int bg_conf_load_agent(const char *path, struct bg_agent_conf *out, struct bg_conf_errors *errs)
{
    memset(out, 0, sizeof(*out));
    out->path = bg_xstrdup(path);
    out->instance.color = BG_COLOR_INVALID;
    return bg_yaml_load(path, agent_sections, free_agent, out, errs);
}

void bg_conf_free_agent(struct bg_agent_conf *c)
{
    if (c == NULL)
        return;
    bg_free(&c->path);
    bg_conf_free_zk(&c->zk);
    bg_free(&c->instance.id);
    bg_free(&c->instance.endpoint);
    bg_free(&c->instance.app);
    bg_free(&c->instance.version);
    bg_free(&c->instance.address);
    bg_free(&c->check.http);
    bg_free(&c->check.tcp);
    bg_yaml_free_strv(&c->check.argv, c->check.argc);
    bg_conf_free_http(&c->http);
    bg_conf_free_backends(c);
    memset(c, 0, sizeof(*c));
    c->instance.color = BG_COLOR_INVALID;
}
