/* route.c -- bg-router's pure half (see route.h): member nodes and /status parsed, the desired
 * server set, nginx's upstream file. */
#include "route.h"
#include "valid.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * Parsing what ZooKeeper holds (written by agents and the leader, or by anyone with access:
 * untrusted).
 * ------------------------------------------------------------------------------------- */

int bg_route_member_parse(const char *data, size_t len, enum bg_color color, const char *name,
                          struct bg_route_member *m)
{
    memset(m, 0, sizeof(*m));
    m->color = color;
    m->id = bg_xstrdup(name);
    json_error_t e;
    json_t *j = data != NULL ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &e) : NULL;
    json_t *a = json_object_get(j, "address"); /* NULL when j is not an object */
    int rc = BG_EINVAL;
    if (!bg_valid_id(name))
        snprintf(m->why, sizeof(m->why), "the node's name is not an instance id");
    else if (j == NULL)
        snprintf(m->why, sizeof(m->why), "the node is not valid JSON");
    else if (!json_is_object(j))
        snprintf(m->why, sizeof(m->why), "the node is not a JSON object");
    else if (a == NULL)
        snprintf(m->why, sizeof(m->why), "no address (agent instance.address)");
    else if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a))
        snprintf(m->why, sizeof(m->why), "address is not a string");
    else if (!bg_valid_address(json_string_value(a))) {
        char shown[64];
        bg_sanitize(json_string_value(a), json_string_length(a), shown, sizeof(shown));
        snprintf(m->why, sizeof(m->why), "malformed address \"%s\"", shown);
    } else {
        m->address = bg_xstrdup(json_string_value(a));
        rc = BG_OK;
    }
    json_decref(j);
    return rc;
}

void bg_route_member_free(struct bg_route_member *m)
{
    bg_free(&m->id);
    bg_free(&m->address);
}

/* One /status entry: UP, with a colour and an id of the right shape. */
static bool entry_up(const json_t *e, struct bg_route_up *out)
{
    const char *st = json_string_value(json_object_get(e, "status"));
    const char *id = json_string_value(json_object_get(e, "id"));
    const char *col = json_string_value(json_object_get(e, "color"));
    if (st == NULL || strcmp(st, "UP") != 0 || id == NULL || col == NULL || !bg_valid_id(id))
        return false;
    enum bg_color c = bg_parse_color(col, strlen(col));
    if (c == BG_COLOR_INVALID)
        return false;
    out->color = c;
    out->id = bg_xstrdup(id);
    json_t *w = json_object_get(e, "weight");
    json_int_t wv = json_is_integer(w) ? json_integer_value(w) : 0;
    out->weight = wv >= 1 && wv <= 100 ? (int)wv : 0; /* anything else: none (full weight) */
    return true;
}

int bg_route_status_parse(const char *data, size_t len, struct bg_route_up **up, size_t *n,
                          bool *truncated, char *why, size_t whylen)
{
    *up = NULL;
    *n = 0;
    *truncated = false;
    json_error_t e;
    json_t *j = data != NULL ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &e) : NULL;
    json_t *inst = json_object_get(j, "instances");
    if (!json_is_array(inst)) {
        snprintf(why, whylen, "/status is not a JSON object with an \"instances\" array");
        json_decref(j);
        return BG_EINVAL;
    }
    *truncated = json_is_true(json_object_get(j, "truncated"));
    size_t count = json_array_size(inst);
    *up = bg_xcalloc(count ? count : 1, sizeof(**up));
    for (size_t i = 0; i < count; i++)
        if (entry_up(json_array_get(inst, i), &(*up)[*n]))
            (*n)++;
    json_decref(j);
    return BG_OK;
}

void bg_route_up_free(struct bg_route_up *up, size_t n)
{
    for (size_t i = 0; up != NULL && i < n; i++)
        free(up[i].id);
    free(up);
}

/* ----------------------------------------------------------------------------------------
 * The desired set.
 * ------------------------------------------------------------------------------------- */

/* The /status entry saying the instance is UP, or NULL. */
static const struct bg_route_up *find_up(const struct bg_route_up *up, size_t n_up, enum bg_color c,
                                         const char *id)
{
    for (size_t i = 0; i < n_up; i++)
        if (up[i].color == c && strcmp(up[i].id, id) == 0)
            return &up[i];
    return NULL;
}

static int by_color_id(const void *x, const void *y)
{
    const struct bg_route_server *a = x, *b = y;
    if (a->color != b->color)
        return a->color < b->color ? -1 : 1;
    int c = strcmp(a->id, b->id);
    return c != 0 ? c : strcmp(a->address, b->address);
}

void bg_route_desired(const struct bg_route_member *m, size_t n, const struct bg_route_up *up,
                      size_t n_up, struct bg_route_set *out, size_t *dropped)
{
    out->s = bg_xcalloc(n ? n : 1, sizeof(*out->s));
    out->n = 0;
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        const struct bg_route_up *u = find_up(up, n_up, m[i].color, m[i].id);
        if (u == NULL)
            continue;
        if (m[i].address == NULL) {
            d++;
            continue;
        }
        out->s[out->n++] = (struct bg_route_server){.color = m[i].color,
                                                    .id = bg_xstrdup(m[i].id),
                                                    .address = bg_xstrdup(m[i].address),
                                                    .weight = u->weight};
    }
    qsort(out->s, out->n, sizeof(*out->s), by_color_id);
    if (dropped != NULL)
        *dropped = d;
}

void bg_route_set_free(struct bg_route_set *s)
{
    for (size_t i = 0; s->s != NULL && i < s->n; i++) {
        free(s->s[i].id);
        free(s->s[i].address);
    }
    free(s->s);
    s->s = NULL;
    s->n = 0;
}

bool bg_route_set_equal(const struct bg_route_set *a, const struct bg_route_set *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->s[i].color != b->s[i].color || strcmp(a->s[i].id, b->s[i].id) != 0 ||
            strcmp(a->s[i].address, b->s[i].address) != 0 || a->s[i].weight != b->s[i].weight)
            return false;
    return true;
}

void bg_route_set_copy(struct bg_route_set *a, const struct bg_route_set *b)
{
    bg_route_set_free(a);
    a->s = bg_xcalloc(b->n ? b->n : 1, sizeof(*a->s));
    a->n = b->n;
    for (size_t i = 0; i < b->n; i++)
        a->s[i] = (struct bg_route_server){.color = b->s[i].color,
                                           .id = bg_xstrdup(b->s[i].id),
                                           .address = bg_xstrdup(b->s[i].address),
                                           .weight = b->s[i].weight};
}

/* ----------------------------------------------------------------------------------------
 * nginx's upstream file.
 * ------------------------------------------------------------------------------------- */

char *bg_route_render_nginx(const char *router_id, const char *upstream, char *const *options,
                            size_t n_options, const struct bg_route_set *set, int64_t generation,
                            const char *confirm, char *why, size_t whylen)
{
    if (!bg_valid_id(router_id) || !bg_valid_id(upstream) ||
        (confirm != NULL && !bg_valid_address(confirm))) {
        snprintf(why, whylen, "router id, upstream name or confirm address is malformed");
        return NULL;
    }
    for (size_t i = 0; i < n_options; i++)
        if (!bg_valid_nginx_option(options[i])) {
            snprintf(why, whylen, "option %zu is not one nginx directive", i);
            return NULL;
        }
    if (set->n == 0) {
        snprintf(why, whylen,
                 "no instance is UP with a usable address (nginx refuses an "
                 "upstream without servers)");
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char *head = bg_xasprintf("# Written by bg-router %s, generation %lld: do not edit.\n"
                              "upstream %s {\n",
                              router_id, (long long)generation, upstream);
    bg_buf_append(&buf, &len, &cap, head, strlen(head));
    free(head);
    for (size_t i = 0; i < n_options; i++) {
        char *line = bg_xasprintf("    %s;\n", options[i]);
        bg_buf_append(&buf, &len, &cap, line, strlen(line));
        free(line);
    }
    bool weighted = false; /* a canary: every line says its weight (nginx's default is 1) */
    for (size_t i = 0; i < set->n; i++)
        if (set->s[i].weight >= 1 && set->s[i].weight < 100)
            weighted = true;
    for (size_t i = 0; i < set->n; i++) {
        int w = set->s[i].weight >= 1 && set->s[i].weight <= 100 ? set->s[i].weight : 100;
        char wtext[16] = "";
        if (weighted)
            snprintf(wtext, sizeof(wtext), " weight=%d", w);
        if (!bg_valid_address(set->s[i].address) || !bg_valid_id(set->s[i].id)) {
            snprintf(why, whylen, "instance %zu of the set has a malformed address or id", i);
            free(buf);
            return NULL;
        }
        char *line = bg_xasprintf("    server %s%s; # %s %s\n", set->s[i].address, wtext,
                                  bg_color_name(set->s[i].color), set->s[i].id);
        bg_buf_append(&buf, &len, &cap, line, strlen(line));
        free(line);
    }
    char *tail = confirm == NULL ? bg_xstrdup("}\n")
                                 : bg_xasprintf("}\nserver {\n    listen %s;\n"
                                                "    location = /bg-router/generation {\n"
                                                "        default_type text/plain;\n"
                                                "        return 200 \"%s %lld\\n\";\n    }\n}\n",
                                                confirm, router_id, (long long)generation);
    bg_buf_append(&buf, &len, &cap, tail, strlen(tail));
    free(tail);
    return buf;
}
