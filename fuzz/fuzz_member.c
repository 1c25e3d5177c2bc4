/* fuzz_member.c -- libFuzzer target: instance node data (/blue/<id>, /green/<id>) as the
 * controller reads it: bg_parse_member_data (the endpoint) and bg_parse_member_health. */
#include "fuzz.h"
#include "plan.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    char why[256] = "";
    char *ep = bg_parse_member_data(d, size, why, sizeof(why));
    if (ep != NULL) {
        bg_fuzz_require(strncmp(ep, "http://", 7) == 0 || strncmp(ep, "https://", 8) == 0,
                        "member endpoint is not http(s)://");
        size_t n = strlen(ep);
        bg_fuzz_require(n > 0 && ep[n - 1] != '/', "member endpoint ends with a slash");
        /* The endpoint goes into log lines (no control characters: log injection) and into
         * /status (valid UTF-8). */
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)ep[i];
            bg_fuzz_require(ch >= 0x20 && ch != 0x7f, "member endpoint has a control character");
        }
        bg_fuzz_require_json_safe(ep, "member endpoint");
        free(ep);
    } else {
        bg_fuzz_require(why[0] != '\0', "member data refused without a reason");
        bg_fuzz_require_json_safe(why, "member data reason");
    }
    char check[128];
    memset(check, 'x', sizeof(check));
    (void)bg_parse_member_health(d, size, check, sizeof(check));
    bg_fuzz_require(memchr(check, '\0', sizeof(check)) != NULL, "check message not terminated");
    bg_fuzz_require_json_safe(check, "member check message");
    return 0;
}
