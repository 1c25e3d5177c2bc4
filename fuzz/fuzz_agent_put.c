/* fuzz_agent_put.c -- libFuzzer target: the body of PUT /v1/status through bg_agent_parse_put
 * (and, when accepted, its "weight" through bg_agent_parse_put_weight),
 * exactly as the agent's HTTP handler receives it (not NUL-terminated). The reason must be
 * usable in a JSON answer whatever the body was (issue 9: a cut inside a UTF-8 character). */
#include "agent.h"
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum bg_status st = BG_STATUS_OUT;
    int64_t epoch = -1, timeout_ms = -1;
    char why[256] = "";
    int rc =
        bg_agent_parse_put((const char *)data, size, &st, &epoch, &timeout_ms, why, sizeof(why));
    if (rc == 0) {
        bg_fuzz_require(st == BG_STATUS_UP || st == BG_STATUS_OUT, "status out of range");
        bg_fuzz_require(epoch >= 0, "negative epoch accepted");
        bg_fuzz_require(timeout_ms >= 0, "negative timeout_ms accepted");
        int weight = -7;
        char wwhy[256] = "";
        if (bg_agent_parse_put_weight((const char *)data, size, &weight, wwhy, sizeof(wwhy)) == 0)
            bg_fuzz_require(weight >= -1 && weight <= 100, "weight out of 0-100 accepted");
        else
            bg_fuzz_require(weight == -7 && wwhy[0] != '\0', "weight refused badly");
    } else {
        bg_fuzz_require(rc == BG_EINVAL, "bg_agent_parse_put: unexpected return");
        bg_fuzz_require(why[0] != '\0', "PUT body refused without a reason");
        bg_fuzz_require_json_safe(why, "PUT refusal reason");
    }
    return 0;
}
