/* fuzz_duration.c -- libFuzzer target: durations ("250ms", "2s", "1m") through
 * bg_parse_duration, as every duration key of the YAML files is read. */
#include "fuzz.h"
#include "util.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = bg_fuzz_cstr(data, size);
    int64_t ms = -12345;
    int rc = bg_parse_duration(s, &ms);
    bg_fuzz_require(rc == 0 || rc == BG_EINVAL, "bg_parse_duration: unexpected return");
    if (rc == 0)
        bg_fuzz_require(ms >= 0, "bg_parse_duration accepted a negative duration");
    free(s);
    return 0;
}
