/* fuzz_router_view.c -- libFuzzer target: a /routers/<id> node's data through
 * bg_router_view_parse (controller/router_view.c, not NUL-terminated), as the leader reads it
 * before waiting for that router. */
#include "fuzz.h"
#include "plan.h"

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
    return 0;
}
