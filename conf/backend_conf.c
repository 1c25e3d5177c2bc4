/* backend_conf.c -- agent.yaml's backends: what every entry shares (the "type" key looked up in
 * bg_backend_types, key matching, clashing listen addresses, the confirmation keys). A type's
 * own keys are read by its descriptor (agent/backend_<type>.c). */
#include "backend.h"
#include "valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for the longest key list of any type, "type" included (eureka: 12). */
#define MAX_KEYS 16

const char *bg_backend_type_name(const struct bg_backend_type *t)
{
    return t != NULL ? t->name : "unknown";
}

/* "one of health, eureka, ..." */
static void one_of(char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "one of ");
    for (size_t t = 0; bg_backend_types[t] != NULL && used < len; t++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", t ? ", " : "",
                                 bg_backend_types[t]->name);
}

/* The type of a backend entry, or NULL with the problem recorded. */
static const struct bg_backend_type *backend_type(struct bg_yaml *l, yaml_node_t *n,
                                                  const char *path)
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
        return NULL;
    }
    for (size_t t = 0; bg_backend_types[t] != NULL; t++) {
        if (bg_yaml_is_string(v) && strcmp(bg_yaml_text(v), bg_backend_types[t]->name) == 0)
            return bg_backend_types[t];
    }
    bg_yaml_bad(l, v, where, expected);
    return NULL;
}

struct bg_confirm_conf bg_confirm_conf_defaults(int confirm_polls)
{
    /* confirm_timeout 0: each wait is derived from the balancer's observed poll interval
     * (agent/confirm.c). */
    return (struct bg_confirm_conf){
        .confirm_timeout_ms = 0, .poll_window_ms = 5000, .confirm_polls = confirm_polls};
}

void bg_backend_get_confirm(const struct bg_backend_entry *e, int k_confirm,
                            struct bg_confirm_conf *c)
{
    int k = k_confirm;
    bg_yaml_get_duration(e->l, e->s[k].val, e->w[k], 0, &c->confirm_timeout_ms);
    bg_yaml_get_duration(e->l, e->s[k + 1].val, e->w[k + 1], 0, &c->poll_window_ms);
    bg_yaml_get_int(e->l, e->s[k + 2].val, e->w[k + 2], 1, 100, &c->confirm_polls);
}

/* An entry without a valid type is left with type NULL (nothing else of it was checked). */
static void load_backend(struct bg_yaml *l, yaml_node_t *n, const char *path,
                         const struct bg_instance_conf *in, struct bg_backend_conf *b)
{
    b->line = (int)n->start_mark.line + 1;
    if (n->type != YAML_MAPPING_NODE) {
        bg_yaml_bad(l, n, path, "a mapping with a \"type\" key");
        return;
    }
    const struct bg_backend_type *d = backend_type(l, n, path);
    if (d == NULL)
        return;
    b->type = d;
    b->settings = d->make();

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
    d->load(&e, b->settings);
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

/* The address entry b listens on, or NULL (none, or an entry without a valid type). */
static const char *entry_listen(const struct bg_backend_conf *b)
{
    if (b->type == NULL || b->type->listen == NULL || b->settings == NULL)
        return NULL;
    return b->type->listen(b->settings);
}

/* Clashing listen addresses and a second entry of a type that serves GET /health: both could
 * only fail at run time. */
static void check_backends(struct bg_yaml *l, yaml_node_t *seq, struct bg_agent_conf *c)
{
    int first_health = -1;
    for (size_t i = 0; i < c->n_backends; i++) {
        struct bg_backend_conf *b = &c->backends[i];
        yaml_node_t *n = yaml_document_get_node(&l->doc, seq->data.sequence.items.start[i]);
        char path[64];
        bg_yaml_pathf(path, sizeof(path), "backends[%zu]", i);
        if (b->type != NULL && (b->type->flags & BG_BACKEND_SERVES_HEALTH)) {
            if (first_health >= 0)
                bg_yaml_fail(l, n->start_mark, path,
                             "a second %s backend (the first is backends[%d])", b->type->name,
                             first_health);
            else
                first_health = (int)i;
        }
        const char *listen = entry_listen(b);
        if (listen == NULL)
            continue;
        const char *clash = NULL;
        char other[64];
        if (c->http.listen != NULL && same_listener(listen, c->http.listen))
            clash = "http.listen";
        for (size_t j = 0; j < i && clash == NULL; j++) {
            const char *lj = entry_listen(&c->backends[j]);
            if (lj != NULL && same_listener(listen, lj)) {
                bg_yaml_pathf(other, sizeof(other), "backends[%zu].listen", j);
                clash = other;
            }
        }
        if (clash != NULL)
            bg_yaml_fail(l, n->start_mark, path, "listen \"%s\" clashes with %s", listen, clash);
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
    for (size_t i = 0; i < count; i++) {
        char path[64];
        bg_yaml_pathf(path, sizeof(path), "backends[%zu]", i);
        load_backend(l, yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]), path,
                     &c->instance, &c->backends[i]);
    }
    check_backends(l, n, c);
}

void bg_conf_free_backends(struct bg_agent_conf *c)
{
    for (size_t i = 0; c->backends != NULL && i < c->n_backends; i++) {
        struct bg_backend_conf *b = &c->backends[i];
        if (b->type != NULL && b->settings != NULL)
            b->type->free(b->settings);
        b->settings = NULL;
    }
    free(c->backends);
    c->backends = NULL;
    c->n_backends = 0;
}
