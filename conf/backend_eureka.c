/* backend_eureka.c -- agent.yaml's "type: eureka" entry: the Eureka server URLs and the
 * instance as Eureka knows it, defaulted from the instance section. */
#include "backend.h"
#include "valid.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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
                      struct bg_backend_conf *b)
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
                            struct bg_backend_conf *b)
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

/* Everything but urls is optional; a lease must outlive the renewals that keep it. */
static void load(const struct bg_backend_entry *e, struct bg_backend_conf *b)
{
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

const struct bg_backend_desc bg_backend_eureka_desc = {
    .name = "eureka", .keys = keys, .defaults = NULL, .load = load};
