/* json.c -- NULL-safe JSON serialisation and replies (see json.h). */
#include "json.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define BG_JSON_FALLBACK "{\"error\":\"internal\",\"reason\":\"cannot serialise the answer\"}"

char *bg_json_dumps_safe(const json_t *j, size_t flags, const char *where)
{
    char *s = j != NULL ? json_dumps(j, flags) : NULL;
    if (s != NULL)
        return s;
    bg_error("json_failed", "where=%s reason=\"%s\"", where != NULL ? where : "?",
             j == NULL ? "json_pack refused its input" : "json_dumps failed");
    return bg_xstrdup(BG_JSON_FALLBACK);
}

char *bg_json_dumps_take(json_t *j, size_t flags, const char *where)
{
    char *s = bg_json_dumps_safe(j, flags, where);
    json_decref(j);
    return s;
}

json_t *bg_json_text(const char *s, size_t max)
{
    if (s == NULL)
        s = "";
    size_t len = strlen(s);
    if (max > 0 && len > max)
        len = max;
    char *copy = bg_xstrndup(s, len);
    bg_utf8_trim_end(copy);
    json_t *j = json_string(copy);
    free(copy);
    return j != NULL ? j : json_string("?");
}

enum MHD_Result bg_json_reply(struct MHD_Connection *conn, unsigned code, json_t *j)
{
    if (j == NULL)
        code = 500;
    return bg_httpd_reply_take(conn, code, "application/json",
                               bg_json_dumps_take(j, JSON_COMPACT, "reply"));
}
