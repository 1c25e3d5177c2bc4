/* fuzz_utf8.c -- libFuzzer target: the helpers every cut of untrusted text goes through before
 * it reaches JSON or a log line (issue 9: a cut inside a UTF-8 character made json_pack return
 * NULL and crashed both daemons): bg_strlcpy_utf8, bg_utf8_trim_end, bg_no_controls,
 * bg_json_text and bg_json_dumps_safe. Input: [dstlen-1][max][text...]. */
#include "fuzz.h"
#include "json.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void check_strlcpy(size_t dstlen, const char *src)
{
    /* An exact-size heap buffer: ASan catches a write past dstlen. */
    char *dst = malloc(dstlen);
    if (dst == NULL)
        abort();
    bg_strlcpy_utf8(dst, src, dstlen);
    bg_fuzz_require(strnlen(dst, dstlen) < dstlen, "bg_strlcpy_utf8 left dst unterminated");
    bg_fuzz_require_json_safe(dst, "bg_strlcpy_utf8 output");
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t dstlen = (size_t)data[0] + 1, max = data[1];
    char *s = bg_fuzz_cstr(data + 2, size - 2);

    check_strlcpy(dstlen, s);

    char *t = bg_fuzz_cstr(data + 2, size - 2);
    size_t n = bg_utf8_trim_end(t);
    bg_fuzz_require(n == strlen(t), "bg_utf8_trim_end returned a wrong length");
    bg_fuzz_require_json_safe(t, "bg_utf8_trim_end output");
    bg_no_controls(t);
    for (const char *p = t; *p != '\0'; p++)
        bg_fuzz_require((unsigned char)*p >= 0x20 && *p != 0x7f, "bg_no_controls left one");
    free(t);

    json_t *j = bg_json_text(s, max);
    bg_fuzz_require(json_is_string(j), "bg_json_text did not give a JSON string");
    bg_fuzz_require(max == 0 || json_string_length(j) <= max, "bg_json_text longer than max");
    json_t *o = json_object();
    json_object_set_new(o, "text", j);
    char *dump = bg_json_dumps_safe(o, JSON_COMPACT, "fuzz_utf8");
    bg_fuzz_require(dump != NULL, "bg_json_dumps_safe returned NULL");
    json_t *back = json_loads(dump, 0, NULL);
    bg_fuzz_require(back != NULL, "bg_json_dumps_safe output does not parse back");
    json_decref(back);
    free(dump);
    json_decref(o);
    free(s);
    return 0;
}
