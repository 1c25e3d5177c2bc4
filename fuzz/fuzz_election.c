/* fuzz_election.c -- libFuzzer target: names under /election through bg_election_seq; only
 * "member-<digits>" may count, everything else (made by hand) is -1. */
#include "fuzz.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = bg_fuzz_cstr(data, size);
    int64_t seq = bg_election_seq(s);
    bg_fuzz_require(seq >= -1, "bg_election_seq below -1");
    if (seq >= 0) {
        bg_fuzz_require(strncmp(s, "member-", 7) == 0 && isdigit((unsigned char)s[7]),
                        "bg_election_seq accepted a name that is not member-<digits>");
    }
    free(s);
    return 0;
}
