/* backend_stubs.c -- registry backends not built yet: refuse at start-up, clearly. */
#include "agent.h"

#include <stdio.h>

static int unsupported_init(struct bg_backend *b, char *err, size_t errlen)
{
    snprintf(err, errlen, "backend type \"%s\" is not available in this build",
             bg_backend_type_name(b->conf->type));
    return BG_EINVAL;
}

const struct bg_backend_ops bg_backend_haproxy_ops = {.type = "haproxy-agent",
                                                      .init = unsupported_init};
const struct bg_backend_ops bg_backend_eureka_ops = {.type = "eureka", .init = unsupported_init};
const struct bg_backend_ops bg_backend_exec_ops = {.type = "exec", .init = unsupported_init};
