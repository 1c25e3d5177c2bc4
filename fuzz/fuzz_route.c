/* fuzz_route.c -- libFuzzer target: a member node and /status as bg-router reads them
 * (router/route.c), then the desired set and nginx's file rendered from it. Whatever the node
 * holds, a malformed address never reaches the file: every server line is one valid address. */
#include "fuzz.h"
#include "route.h"
#include "valid.h"

#include <stdlib.h>
#include <string.h>

/* Every "server" line of the upstream block is "    server <address>; # <color> <id>" with an
 * address bg_valid_address accepts: nothing else could be read by nginx as syntax. */
static void check_rendered(const char *text, const struct bg_route_set *set)
{
    size_t servers = 0;
    for (const char *p = text; (p = strstr(p, "\n    server ")) != NULL; p++) {
        const char *a = p + strlen("\n    server ");
        size_t n = strcspn(a, ";\n");
        bg_fuzz_require(a[n] == ';', "a server line without its ';'");
        char *addr = bg_xstrndup(a, n);
        bg_fuzz_require(bg_valid_address(addr), "a malformed address was rendered");
        bg_fuzz_require(servers < set->n && strcmp(addr, set->s[servers].address) == 0,
                        "a server line that is not the set's");
        free(addr);
        servers++;
    }
    bg_fuzz_require(servers == set->n, "not one server line per instance");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bg_route_member m;
    int rc = bg_route_member_parse((const char *)data, size, BG_GREEN, "g-1", &m);
    bg_fuzz_require((rc == BG_OK) == (m.address != NULL), "result and address disagree");
    bg_fuzz_require(m.address == NULL || bg_valid_address(m.address), "a malformed address kept");
    bg_fuzz_require(m.address != NULL || m.why[0] != '\0', "an unusable member without a reason");
    bg_fuzz_require_json_safe(m.why, "member reason");

    struct bg_route_up *up = NULL;
    size_t n_up = 0;
    bool truncated;
    char why[160] = "";
    if (bg_route_status_parse((const char *)data, size, &up, &n_up, &truncated, why, sizeof(why)) !=
        BG_OK)
        bg_fuzz_require(up == NULL && n_up == 0 && why[0] != '\0', "a refused /status");
    /* The member counts as UP too, so that its address is rendered when usable. */
    struct bg_route_up self = {BG_GREEN, (char *)"g-1", 0};
    for (size_t i = 0; i < n_up; i++)
        bg_fuzz_require(up[i].weight >= 0 && up[i].weight <= 100, "a weight outside 0-100");
    struct bg_route_set set = {0};
    size_t dropped = 0;
    bg_route_desired(&m, 1, &self, 1, &set, &dropped);
    bg_fuzz_require(set.n + dropped == 1, "the member neither served nor dropped");
    char rwhy[256];
    char *text = bg_route_render_nginx("lb-1", "shop", NULL, 0, &set, 1, "127.0.0.1:8399", rwhy,
                                       sizeof(rwhy));
    bg_fuzz_require((text != NULL) == (set.n == 1), "rendered an empty set or refused a good one");
    if (text != NULL)
        check_rendered(text, &set);
    free(text);
    bg_route_set_free(&set);
    bg_route_up_free(up, n_up);
    bg_route_member_free(&m);
    return 0;
}
