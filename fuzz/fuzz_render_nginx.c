/* fuzz_render_nginx.c -- libFuzzer target: nginx's upstream file (router/route.c) rendered from
 * servers whose address, id, upstream name and one option line are the input (split on '\n'),
 * bypassing the parsers: the renderer itself must refuse anything nginx could read as more than
 * one token (a server) or one directive (an option). */
#include "fuzz.h"
#include "route.h"
#include "valid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = bg_fuzz_cstr(data, size);
    char *save = NULL;
    char *addr = strtok_r(in, "\n", &save);
    char *id = strtok_r(NULL, "\n", &save);
    char *upstream = strtok_r(NULL, "\n", &save);
    char *option = strtok_r(NULL, "\n", &save); /* one nginx.options line */
    /* The weight from the input's first byte: any int the set may hold, in or out of range. */
    int weight = size > 0 ? (int)(int8_t)data[0] : 0;
    struct bg_route_server s = {BG_BLUE, id ? id : (char *)"b-1", addr ? addr : (char *)"", weight};
    struct bg_route_set set = {&s, 1};
    char why[256] = "";
    char *const options[] = {option};
    char *text = bg_route_render_nginx("lb-1", upstream ? upstream : "shop", options,
                                       option != NULL, &set, 7, NULL, why, sizeof(why));
    bool valid = bg_valid_address(s.address) && bg_valid_id(s.id) &&
                 bg_valid_id(upstream ? upstream : "shop") &&
                 (option == NULL || bg_valid_nginx_option(option));
    bg_fuzz_require((text != NULL) == valid, "rendered a malformed server or refused a good one");
    if (text != NULL) {
        char wtext[16] = "";
        if (weight >= 1 && weight < 100)
            snprintf(wtext, sizeof(wtext), " weight=%d", weight);
        char *want = bg_xasprintf("    server %s%s; # blue %s\n", s.address, wtext, s.id);
        bg_fuzz_require(strstr(text, want) != NULL, "the server line is not the expected one");
        if (option != NULL) {
            char *line = bg_xasprintf("\n    %s;\n", option);
            bg_fuzz_require(strstr(text, line) != NULL, "the option line is not the expected one");
            bg_fuzz_require(strpbrk(option, ";{}#\"'\\") == NULL, "nginx syntax inside an option");
            free(line);
        }
        bg_fuzz_require(strchr(s.address, ';') == NULL && strchr(s.address, '{') == NULL &&
                            strchr(s.address, '}') == NULL && strchr(s.address, '#') == NULL,
                        "nginx syntax inside an address");
        free(want);
    } else {
        bg_fuzz_require(why[0] != '\0', "refused without a reason");
    }
    free(text);
    free(in);
    return 0;
}
