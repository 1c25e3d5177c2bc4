/* fuzz_eureka.c -- libFuzzer target: a Eureka GET /eureka/apps/{APP}/{ID} answer through
 * bg_eureka_parse_instance (the registry is not trusted: its text reaches reasons and logs). */
#include "agent.h"
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char status[32];
    char why[256] = "";
    memset(status, 'x', sizeof(status));
    int rc = bg_eureka_parse_instance((const char *)data, size, status, sizeof(status), why,
                                      sizeof(why));
    if (rc == 0) {
        bg_fuzz_require(memchr(status, '\0', sizeof(status)) != NULL, "status not terminated");
        bg_fuzz_require_json_safe(status, "Eureka status");
    } else {
        bg_fuzz_require(rc == BG_EINVAL, "bg_eureka_parse_instance: unexpected return");
        bg_fuzz_require(why[0] != '\0', "Eureka answer refused without a reason");
        bg_fuzz_require_json_safe(why, "Eureka refusal reason");
    }
    return 0;
}
