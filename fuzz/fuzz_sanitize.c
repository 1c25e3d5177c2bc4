/* fuzz_sanitize.c -- libFuzzer target: bg_sanitize, the printable bounded copy every untrusted
 * name and reason goes through before it reaches a log line, a JSON answer or a znode. The
 * first byte of the input picks the output size (1-256) so that every cut point is tried. */
#include "fuzz.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t outlen = (size_t)data[0] + 1;
    /* An exact-size heap buffer: ASan catches a write past outlen. */
    char *out = malloc(outlen);
    if (out == NULL)
        abort();
    memset(out, 'x', outlen);
    bg_sanitize((const char *)data + 1, size - 1, out, outlen);
    size_t n = strnlen(out, outlen);
    bg_fuzz_require(n < outlen, "bg_sanitize output not NUL-terminated within outlen");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)out[i];
        bg_fuzz_require(ch != '\n' && ch != '\r' && ch >= 0x20 && ch != 0x7f,
                        "bg_sanitize left a control character (log injection)");
    }
    bg_fuzz_require_json_safe(out, "bg_sanitize output");
    free(out);
    return 0;
}
