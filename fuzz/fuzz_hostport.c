/* fuzz_hostport.c -- libFuzzer target: "host:port" (http.listen, instance.address, bare member
 * data) through bg_split_hostport. */
#include "fuzz.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = bg_fuzz_cstr(data, size);
    char host[64];
    memset(host, 'x', sizeof(host));
    int port = -1;
    int rc = bg_split_hostport(s, host, sizeof(host), &port);
    bg_fuzz_require(rc == 0 || rc == BG_EINVAL, "bg_split_hostport: unexpected return");
    if (rc == 0) {
        bg_fuzz_require(memchr(host, '\0', sizeof(host)) != NULL, "host not terminated");
        bg_fuzz_require(port >= 0 && port <= 65535, "port out of range");
    }
    free(s);
    return 0;
}
