/* fuzz_conf_router.c -- libFuzzer target: router.yaml through bg_conf_load_router (libyaml, then
 * validation of every key). The loader takes a path: the input is handed over as a memfd. */
#include "conf.h"
#include "fuzz.h"

#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd;
    if (bg_fuzz_memfile(data, size, path, sizeof(path), &fd) != 0)
        return 0;
    struct bg_router_conf c;
    struct bg_conf_errors errs = {0};
    int rc = bg_conf_load_router(path, &c, &errs);
    /* Either a configuration or at least one message naming what is wrong. */
    bg_fuzz_require(rc == 0 || errs.n > 0, "a refused router.yaml gave no error message");
    for (size_t i = 0; i < errs.n; i++)
        bg_fuzz_require(errs.msgs[i] != NULL && strlen(errs.msgs[i]) > 0, "empty error message");
    if (rc == 0)
        bg_conf_free_router(&c);
    bg_conf_errors_free(&errs);
    close(fd);
    return 0;
}
