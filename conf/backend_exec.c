/* backend_exec.c -- agent.yaml's "type: exec" entry: a command run on every change. */
#include "backend.h"

#include <stddef.h>

enum { K_TYPE, K_COMMAND, K_TIMEOUT };

static const char *const keys[] = {"type", "command", "timeout", NULL};

static void defaults(struct bg_backend_conf *b)
{
    b->timeout_ms = 10000;
}

static void load(const struct bg_backend_entry *e, struct bg_backend_conf *b)
{
    bg_yaml_get_duration(e->l, e->s[K_TIMEOUT].val, e->w[K_TIMEOUT], 1, &b->timeout_ms);
    bg_yaml_need(e->l, e->n, e->path, e->kind, &e->s[K_COMMAND]);
    if (e->s[K_COMMAND].val != NULL)
        bg_yaml_get_command(e->l, e->s[K_COMMAND].val, e->w[K_COMMAND], &b->argv, &b->argc);
}

const struct bg_backend_desc bg_backend_exec_desc = {
    .name = "exec", .keys = keys, .defaults = defaults, .load = load};
