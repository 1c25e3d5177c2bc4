/* fuzz_drain.c -- libFuzzer target: /drain/<id> data through bg_parse_drain (not
 * NUL-terminated), and the input as an id through bg_drain_id_ok. */
#include "fuzz.h"
#include "traffic.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reason[BG_DRAIN_REASON_MAX + 1];
    char why[160] = "";
    memset(reason, 'x', sizeof(reason));
    if (bg_parse_drain((const char *)data, size, reason, sizeof(reason), why, sizeof(why)) == 0) {
        bg_fuzz_require(memchr(reason, '\0', sizeof(reason)) != NULL, "reason not terminated");
        bg_fuzz_require(strlen(reason) <= BG_DRAIN_REASON_MAX, "reason too long");
        bg_fuzz_require_json_safe(reason, "drain reason");
        for (const char *p = reason; *p; p++)
            bg_fuzz_require((unsigned char)*p >= 0x20 || *p == '\t', "control character kept");
    } else {
        bg_fuzz_require(why[0] != '\0', "a refused drain without a reason");
        bg_fuzz_require_json_safe(why, "drain why");
    }
    char *id = bg_fuzz_cstr(data, size);
    if (bg_drain_id_ok(id)) {
        bg_fuzz_require(strlen(id) >= 1 && strlen(id) <= 128, "id length");
        bg_fuzz_require(strchr(id, '/') == NULL, "id with a slash");
    }
    free(id);
    return 0;
}
