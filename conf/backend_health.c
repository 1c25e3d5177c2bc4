/* backend_health.c -- agent.yaml's "type: health" entry: GET /health for polling balancers. */
#include "backend.h"

#include <stddef.h>

enum { K_TYPE, K_CONFIRM, K_POLL, K_CONFIRM_POLLS, K_OOS_CODE };

static const char *const keys[] = {"type",          "confirm_timeout",     "poll_window",
                                   "confirm_polls", "out_of_service_code", NULL};

/* health.out_of_service_code: 503 (the default: the balancer's fall takes the server out) or
 * 404 (HAProxy's "http-check disable-on-404" puts it in NOLB at once). Nothing else: another
 * code would only look like a failure to every balancer. */
static void get_oos_code(struct bg_yaml *l, const yaml_node_t *n, const char *path, int *out)
{
    static const char expected[] =
        "503 (the default) or 404 (for HAProxy's http-check disable-on-404)";
    if (n == NULL)
        return;
    long long v = 0;
    bool number = n->type == YAML_SCALAR_NODE && bg_yaml_parse_int(bg_yaml_text(n), &v);
    if (number && bg_yaml_is_quoted(n)) {
        bg_yaml_fail(l, n->start_mark, path, "expected %s without quotes, got the string \"%s\"",
                     expected, bg_yaml_text(n));
        return;
    }
    if (!number || (v != 404 && v != 503)) {
        bg_yaml_bad(l, n, path, expected);
        return;
    }
    *out = (int)v;
}

static void load(const struct bg_backend_entry *e, struct bg_backend_conf *b)
{
    bg_backend_get_confirm(e, K_CONFIRM, b);
    get_oos_code(e->l, e->s[K_OOS_CODE].val, e->w[K_OOS_CODE], &b->out_of_service_code);
}

const struct bg_backend_desc bg_backend_health_desc = {
    .name = "health", .keys = keys, .defaults = NULL, .load = load};
