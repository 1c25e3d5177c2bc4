/* fuzz_color.c -- libFuzzer target: /active_color data through bg_parse_color (not
 * NUL-terminated; "blue"/"green" with surrounding white space only). */
#include "fuzz.h"
#include "util.h"

#include <ctype.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum bg_color c = bg_parse_color((const char *)data, size);
    bg_fuzz_require(c == BG_BLUE || c == BG_GREEN || c == BG_COLOR_INVALID, "colour out of range");
    if (c == BG_COLOR_INVALID)
        return 0;
    /* Accepted: the input is the colour's name with ASCII white space around it. */
    size_t b = 0, e = size;
    while (b < e && isspace(data[b]))
        b++;
    while (e > b && isspace(data[e - 1]))
        e--;
    const char *name = bg_color_name(c);
    bg_fuzz_require(e - b == strlen(name) && memcmp(data + b, name, e - b) == 0,
                    "bg_parse_color accepted something other than blue/green");
    return 0;
}
