/* fuzz_router_view.c -- libFuzzer target: a /routers/<id> node's data through
 * bg_router_view_parse (controller/router_view.c, not NUL-terminated), as the leader reads it
 * before waiting for that router, and the /status entry made of it (bg_status_routers). */
#include "fuzz.h"
#include "plan.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bg_router_view v;
    int rc = bg_router_view_parse((const char *)data, size, "lb-1", &v);
    bg_fuzz_require(rc == BG_OK || rc == BG_EINVAL, "an unknown result");
    bg_fuzz_require(memchr(v.id, '\0', sizeof(v.id)) != NULL, "id not terminated");
    bg_fuzz_require(strcmp(v.id, "lb-1") == 0, "id not the node's name");
    bg_fuzz_require(memchr(v.error, '\0', sizeof(v.error)) != NULL, "error not terminated");
    bg_fuzz_require_json_safe(v.error, "router error");
    bg_fuzz_require(v.serving[0] >= 0 && v.serving[1] >= 0, "a negative count");
    /* A refused node blocks like a failed router: it must say why. */
    bg_fuzz_require(rc == BG_OK || v.error[0] != '\0', "refused without a reason");
    bg_fuzz_require(memchr(v.kind, '\0', sizeof(v.kind)) != NULL, "kind not terminated");
    bg_fuzz_require(memchr(v.last_error, '\0', sizeof(v.last_error)) != NULL,
                    "last_error not terminated");
    bg_fuzz_require_json_safe(v.kind, "router kind");
    bg_fuzz_require_json_safe(v.last_error, "router last_error");
    bg_fuzz_require(v.generation >= 0, "a negative generation");
    /* Its /status entry: always made, small, and says why it fails. */
    json_t *st = json_object();
    bg_status_routers(st, &v, 1, 1);
    json_t *e = json_array_get(json_object_get(st, "routers"), 0);
    bg_fuzz_require(e != NULL, "no /status entry");
    bg_fuzz_require(json_dumpb(st, NULL, 0, JSON_COMPACT) < 1024, "a /status entry over 1 KB");
    bg_fuzz_require(!json_is_true(json_object_get(e, "failed")) ||
                        json_is_string(json_object_get(e, "last_error")),
                    "failed without an error");
    json_decref(st);
    return 0;
}
