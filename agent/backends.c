/* backends.c -- the backend types of agent.yaml, one line each. A type is one file,
 * agent/backend_<type>.c, defining `const struct bg_backend_type bg_backend_<type>` (its keys,
 * its loading, what runs it: conf/backend.h); adding one is that file and a line here. The
 * order is the order "one of ..." messages list them in. */
#include "backend.h"

#include <stddef.h>

#define BG_BACKEND_TYPES(X)                                                                        \
    X(health)                                                                                      \
    X(eureka)                                                                                      \
    X(haproxy_agent)                                                                               \
    X(exec)

#define DECLARE(t) extern const struct bg_backend_type bg_backend_##t;
BG_BACKEND_TYPES(DECLARE)

#define ENTRY(t) &bg_backend_##t,
const struct bg_backend_type *const bg_backend_types[] = {BG_BACKEND_TYPES(ENTRY) NULL};
