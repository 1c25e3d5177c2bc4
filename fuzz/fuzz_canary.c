/* fuzz_canary.c -- libFuzzer target: /canary data through bg_parse_canary (not NUL-terminated),
 * and the weights and instance count it leads to. */
#include "fuzz.h"
#include "traffic.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bg_canary c = {.color = BG_BLUE, .percent = -7};
    char why[160] = "";
    int rc = bg_parse_canary((const char *)data, size, &c, why, sizeof(why));
    if (rc != 0) {
        bg_fuzz_require(c.color == BG_BLUE && c.percent == -7, "a refused /canary changed *out");
        bg_fuzz_require(why[0] != '\0', "a refused /canary without a reason");
        bg_fuzz_require_json_safe(why, "canary reason");
        return 0;
    }
    if (c.color == BG_COLOR_INVALID) {
        bg_fuzz_require(c.percent == 0, "no canary with a percent");
        return 0;
    }
    bg_fuzz_require(c.color == BG_BLUE || c.color == BG_GREEN, "canary colour out of range");
    bg_fuzz_require(c.percent >= 1 && c.percent <= 99, "canary percent out of 1-99");
    /* The instance counts from the input's length: weights stay 1-100, the share near. */
    int n_c = 1 + (int)(size % 7), n_a = 1 + (int)((size / 7) % 9);
    int wc, wa;
    bg_canary_weights(n_c, n_a, c.percent, &wc, &wa);
    bg_fuzz_require(wc >= 1 && wc <= 100 && wa >= 1 && wa <= 100, "weight out of 1-100");
    bg_fuzz_require(wc == 100 || wa == 100, "neither weight is 100");
    double s = bg_canary_share(n_c, wc, n_a, wa);
    bg_fuzz_require(fabs(s - c.percent) <= 5.0 || wc == 1 || wa == 1, "share far from percent");
    int k = bg_canary_count(n_c, n_a, c.percent);
    bg_fuzz_require(k >= 1 && k <= n_c, "instance count out of range");
    return 0;
}
