/* backend_haproxy_agent.c -- agent.yaml's "type: haproxy-agent" entry: a port speaking
 * HAProxy's agent-check protocol. */
#include "backend.h"
#include "valid.h"

#include <stddef.h>

enum { K_TYPE, K_LISTEN, K_CONFIRM, K_POLL, K_CONFIRM_POLLS };

static const char *const keys[] = {"type",        "listen",        "confirm_timeout",
                                   "poll_window", "confirm_polls", NULL};

/* agent-check words act at once: one poll answered with the new word confirms. */
static void defaults(struct bg_backend_conf *b)
{
    b->confirm_polls = 1;
}

static void load(const struct bg_backend_entry *e, struct bg_backend_conf *b)
{
    bg_backend_get_confirm(e, K_CONFIRM, b);
    bg_yaml_need(e->l, e->n, e->path, e->kind, &e->s[K_LISTEN]);
    bg_yaml_get_str(e->l, e->s[K_LISTEN].val, e->w[K_LISTEN], BG_EXPECT_HOSTPORT, bg_valid_hostport,
                    &b->listen);
}

const struct bg_backend_desc bg_backend_haproxy_agent_desc = {
    .name = "haproxy-agent", .keys = keys, .defaults = defaults, .load = load};
