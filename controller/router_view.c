/* router_view.c -- a bg-router's /routers/<id> node read as the plan needs it (DESIGN §13):
 * how many instances of each colour its balancer serves, whether a change is under way and
 * its error; and the routers as /status lists them. Pure: unit-tested and fuzzed on its own. */
#include "plan.h"
#include "json.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int bg_router_view_parse(const char *data, size_t len, const char *name, struct bg_router_view *v)
{
    memset(v, 0, sizeof(*v));
    bg_strlcpy_utf8(v->id, name != NULL ? name : "", sizeof(v->id));
    json_t *j = data != NULL ? json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *serving = json_object_get(j, "serving");
    if (!json_is_object(j) || !json_is_array(serving)) {
        snprintf(v->error, sizeof(v->error),
                 "malformed /routers/%.60s: not a JSON object with a \"serving\" array", v->id);
        json_decref(j);
        return BG_EINVAL;
    }
    size_t i;
    json_t *s;
    json_array_foreach(serving, i, s)
    {
        const char *col = json_string_value(json_object_get(s, "color"));
        enum bg_color c = col != NULL ? bg_parse_color(col, strlen(col)) : BG_COLOR_INVALID;
        if (c != BG_COLOR_INVALID && v->serving[c] < 1000000)
            v->serving[c]++;
    }
    v->pending = json_is_true(json_object_get(j, "pending"));
    const char *err = json_string_value(json_object_get(j, "last_error"));
    if (err != NULL && err[0] != '\0')
        bg_sanitize(err, strlen(err), v->last_error, sizeof(v->last_error));
    if (v->pending)
        memcpy(v->error, v->last_error, sizeof(v->error));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    if (kind != NULL)
        bg_sanitize(kind, strlen(kind), v->kind, sizeof(v->kind));
    json_t *gen = json_object_get(j, "generation");
    if (json_is_integer(gen) && json_integer_value(gen) > 0)
        v->generation = (long long)json_integer_value(gen);
    json_decref(j);
    return BG_OK;
}

/* ----------------------------------------------------------------------------------------
 * /status's "routers".
 * ------------------------------------------------------------------------------------- */

/* One router as /status lists it. */
static json_t *status_router(const struct bg_router_view *r, bool waited)
{
    const char *err = r->last_error[0] != '\0' ? r->last_error : r->error;
    json_t *serving =
        json_pack("{s:i, s:i}", "blue", r->serving[BG_BLUE], "green", r->serving[BG_GREEN]);
    json_t *e = json_object();
    json_object_set_new(e, "id", bg_json_text(r->id, 0));
    json_object_set_new(e, "kind", bg_json_text(r->kind, 0));
    json_object_set_new(e, "serving", serving);
    json_object_set_new(e, "generation", json_integer((json_int_t)r->generation));
    json_object_set_new(e, "pending", json_boolean(r->pending));
    json_object_set_new(e, "failed", json_boolean(r->error[0] != '\0'));
    json_object_set_new(e, "last_error", err[0] != '\0' ? bg_json_text(err, 0) : json_null());
    json_object_set_new(e, "waited", json_boolean(waited));
    return e;
}

void bg_status_routers(json_t *status, const struct bg_router_view *r, size_t n,
                       uint64_t routers_waited)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n && i < BG_ROUTERS_MAX; i++)
        json_array_append_new(list, status_router(&r[i], (routers_waited >> i) & 1u));
    json_object_set_new(status, "routers", list);
}
