/* router_view.c -- a bg-router's /routers/<id> node read as the plan needs it (DESIGN §13):
 * how many instances of each colour its balancer serves, whether a change is under way and
 * its error. Pure: unit-tested and fuzzed on its own. */
#include "plan.h"
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
    if (v->pending && err != NULL && err[0] != '\0')
        bg_sanitize(err, strlen(err), v->error, sizeof(v->error));
    json_decref(j);
    return BG_OK;
}
