/* json.h -- NULL-safe JSON serialisation and replies: untrusted text never crashes a writer. */
#ifndef BG_JSON_H
#define BG_JSON_H

#include "httpd.h"

#include <jansson.h>

/* json_dumps(j, flags) that never returns NULL: when j is NULL (a json_pack refused its input,
 * e.g. invalid UTF-8) or cannot be serialised, the text of {"error":"internal","reason":...} is
 * returned instead and the failure is logged with where. Caller frees. Does not take j. */
char *bg_json_dumps_safe(const json_t *j, size_t flags, const char *where);
/* bg_json_dumps_safe(j, flags, where), then json_decref(j): j is taken (may be NULL). */
char *bg_json_dumps_take(json_t *j, size_t flags, const char *where);
/* A JSON string of untrusted text: cut to at most max bytes (0: no limit) at a character
 * boundary, invalid UTF-8 repaired. Never NULL. */
json_t *bg_json_text(const char *s, size_t max);
/* Answer with j as application/json (j taken, may be NULL: then a 500 with a reason). */
enum MHD_Result bg_json_reply(struct MHD_Connection *conn, unsigned code, json_t *j);

#endif
