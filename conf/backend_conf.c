/* backend_conf.c -- agent.yaml's backends: the table of backend types, and what every entry
 * shares (the "type" key, key matching, shared defaults, clashing listen addresses). A type's
 * own keys are read by its descriptor (conf/backend_<type>.c). */
#include "backend.h"
#include "valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Indexed by enum bg_backend_type. A new type: its descriptor file, an enum value in conf.h,
 * and one line here. */
static const struct bg_backend_desc *const types[BG_BACKEND_COUNT] = {
    [BG_BACKEND_HEALTH] = &bg_backend_health_desc,
    [BG_BACKEND_EUREKA] = &bg_backend_eureka_desc,
    [BG_BACKEND_HAPROXY_AGENT] = &bg_backend_haproxy_agent_desc,
    [BG_BACKEND_EXEC] = &bg_backend_exec_desc,
};

/* Room for the longest key list of any type, "type" included (eureka: 12). */
#define MAX_KEYS 16

const char *bg_backend_type_name(enum bg_backend_type t)
{
    if ((unsigned)t < BG_BACKEND_COUNT)
        return types[t]->name;
    return "unknown";
}

/* "one of health, eureka, ..." */
static void one_of(char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "one of ");
    for (int t = 0; t < BG_BACKEND_COUNT && used < len; t++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", t ? ", " : "", types[t]->name);
}

/* The type of a backend entry, or -1 with the problem recorded. */
static int backend_type(struct bg_yaml *l, yaml_node_t *n, const char *path)
{
    const yaml_node_t *v = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        if (v == NULL && k->type == YAML_SCALAR_NODE && strcmp(bg_yaml_text(k), "type") == 0)
            v = yaml_document_get_node(&l->doc, p->value);
    }
    char where[64], expected[128];
    bg_yaml_join(where, sizeof(where), path, "type");
    one_of(expected, sizeof(expected));
    if (v == NULL) {
        bg_yaml_fail(l, n->start_mark, path, "missing required key \"type\" (%s)", expected);
        return -1;
    }
    for (int t = 0; t < BG_BACKEND_COUNT; t++) {
        if (bg_yaml_is_string(v) && strcmp(bg_yaml_text(v), types[t]->name) == 0)
            return t;
    }
    bg_yaml_bad(l, v, where, expected);
    return -1;
}

/* What every type starts from; a descriptor's defaults change its own. */
static void backend_defaults(struct bg_backend_conf *b)
{
    /* 0: each wait is derived from the balancer's observed poll interval (agent/confirm.c). */
    b->confirm_timeout_ms = 0;
    b->poll_window_ms = 5000;
    /* /health: max(rise 2, fall 3) of HAProxy's defaults. */
    b->confirm_polls = 3;
    /* health: GET /health while OUT_OF_SERVICE; 404 is opt-in (HAProxy's disable-on-404). */
    b->out_of_service_code = 503;
    b->renew_interval_ms = 30000;
    b->duration_ms = 90000;
    b->timeout_ms = 2000;
}

void bg_backend_get_confirm(const struct bg_backend_entry *e, int k_confirm,
                            struct bg_backend_conf *b)
{
    int k = k_confirm;
    bg_yaml_get_duration(e->l, e->s[k].val, e->w[k], 0, &b->confirm_timeout_ms);
    bg_yaml_get_duration(e->l, e->s[k + 1].val, e->w[k + 1], 0, &b->poll_window_ms);
    bg_yaml_get_int(e->l, e->s[k + 2].val, e->w[k + 2], 1, 100, &b->confirm_polls);
}

/* Returns false when the entry has no valid type (nothing else of it was checked). */
static bool load_backend(struct bg_yaml *l, yaml_node_t *n, const char *path,
                         const struct bg_instance_conf *in, struct bg_backend_conf *b)
{
    b->line = (int)n->start_mark.line + 1;
    if (n->type != YAML_MAPPING_NODE)
        return bg_yaml_bad(l, n, path, "a mapping with a \"type\" key");
    int t = backend_type(l, n, path);
    if (t < 0)
        return false;
    const struct bg_backend_desc *d = types[t];
    b->type = (enum bg_backend_type)t;
    backend_defaults(b);
    if (d->defaults != NULL)
        d->defaults(b);

    struct bg_yaml_slot s[MAX_KEYS];
    char w[MAX_KEYS][80];
    const char *wp[MAX_KEYS];
    size_t n_keys = 0;
    for (; n_keys < MAX_KEYS && d->keys[n_keys] != NULL; n_keys++) {
        s[n_keys] = (struct bg_yaml_slot){.key = d->keys[n_keys]};
        bg_yaml_join(w[n_keys], sizeof(w[n_keys]), path, d->keys[n_keys]);
        wp[n_keys] = w[n_keys];
    }
    char kind[64];
    snprintf(kind, sizeof(kind), "for type %s", d->name);
    bg_yaml_scan_mapping(l, n, path, kind, s, n_keys);
    struct bg_backend_entry e = {
        .l = l, .n = n, .path = path, .kind = kind, .s = s, .w = wp, .in = in};
    d->load(&e, b);
    return true;
}

/* Two listeners on one port clash when their hosts are equal or either is a wildcard. */
static bool same_listener(const char *a, const char *b)
{
    char ha[256], hb[256];
    int pa, pb;
    if (bg_valid_split_hostport(a, ha, sizeof(ha), &pa) != BG_OK ||
        bg_valid_split_hostport(b, hb, sizeof(hb), &pb) != BG_OK)
        return false;
    return pa == pb &&
           (strcmp(ha, hb) == 0 || bg_valid_is_wildcard(ha) || bg_valid_is_wildcard(hb));
}

/* Clashing listen addresses and a second health entry: both could only fail at run time. */
static void check_backends(struct bg_yaml *l, yaml_node_t *seq, const bool *typed,
                           struct bg_agent_conf *c)
{
    int first_health = -1;
    for (size_t i = 0; i < c->n_backends; i++) {
        struct bg_backend_conf *b = &c->backends[i];
        yaml_node_t *n = yaml_document_get_node(&l->doc, seq->data.sequence.items.start[i]);
        char path[64];
        bg_yaml_pathf(path, sizeof(path), "backends[%zu]", i);
        if (typed[i] && b->type == BG_BACKEND_HEALTH) {
            if (first_health >= 0)
                bg_yaml_fail(l, n->start_mark, path,
                             "a second health backend (the first is backends[%d])", first_health);
            else
                first_health = (int)i;
        }
        if (b->listen == NULL)
            continue;
        const char *clash = NULL;
        char other[64];
        if (c->http.listen != NULL && same_listener(b->listen, c->http.listen))
            clash = "http.listen";
        for (size_t j = 0; j < i && clash == NULL; j++) {
            if (c->backends[j].listen != NULL && same_listener(b->listen, c->backends[j].listen)) {
                bg_yaml_pathf(other, sizeof(other), "backends[%zu].listen", j);
                clash = other;
            }
        }
        if (clash != NULL)
            bg_yaml_fail(l, n->start_mark, path, "listen \"%s\" clashes with %s", b->listen, clash);
    }
}

void bg_conf_load_backends(struct bg_yaml *l, yaml_node_t *n, struct bg_agent_conf *c)
{
    if (n == NULL || bg_yaml_is_null(n))
        return;
    if (n->type != YAML_SEQUENCE_NODE) {
        bg_yaml_bad(l, n, "backends", "a sequence of backend mappings");
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    c->backends = bg_xcalloc(count, sizeof(*c->backends));
    c->n_backends = count;
    bool *typed = bg_xcalloc(count, sizeof(bool));
    for (size_t i = 0; i < count; i++) {
        char path[64];
        bg_yaml_pathf(path, sizeof(path), "backends[%zu]", i);
        typed[i] = load_backend(l, yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]),
                                path, &c->instance, &c->backends[i]);
    }
    check_backends(l, n, typed, c);
    free(typed);
}

void bg_conf_free_backends(struct bg_agent_conf *c)
{
    for (size_t i = 0; c->backends != NULL && i < c->n_backends; i++) {
        struct bg_backend_conf *b = &c->backends[i];
        char **owned[] = {&b->app,     &b->instance_id, &b->host_name,
                          &b->ip_addr, &b->vip_address, &b->listen};
        for (size_t k = 0; k < BG_ARRAY_LEN(owned); k++)
            bg_free(owned[k]);
        bg_yaml_free_strv(&b->urls, b->n_urls);
        bg_yaml_free_strv(&b->argv, b->argc);
    }
    free(c->backends);
    c->backends = NULL;
    c->n_backends = 0;
}
