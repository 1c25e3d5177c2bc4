/* routers.c -- bg-controller: the live bg-routers the leader waits for (DESIGN §13), read from
 * /routers/<id> with watches; what they mean for a switch is the plan's (plan.c). */
#include "ctl_internal.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most bytes of one router node read (its serving list: ~100 bytes an instance). */
#define ROUTER_NODE_MAX (1024 * 1024)

/* One /routers/<name> node into v. Returns 0, 1 when it is gone, -1 when not readable now. */
static int read_router(struct bg_ctl *c, const char *dir, const char *name,
                       struct bg_router_view *v)
{
    char path[900];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct Stat st;
    int rc = bg_zk_exists(&c->zk, path, 1, &st);
    if (rc == ZNONODE)
        return 1;
    if (rc != ZOK)
        return -1;
    int cap = st.dataLength + 4096; /* room for growth in between */
    if (cap > ROUTER_NODE_MAX)
        cap = ROUTER_NODE_MAX;
    char *buf = bg_xmalloc((size_t)cap);
    int len = cap;
    rc = bg_zk_get(&c->zk, path, 1, buf, &len, &st);
    if (rc == ZOK && st.dataLength > cap) {
        memset(v, 0, sizeof(*v));
        bg_strlcpy_utf8(v->id, name, sizeof(v->id));
        snprintf(v->error, sizeof(v->error), "malformed /routers/%.60s: %d bytes of data", v->id,
                 st.dataLength);
    } else if (rc == ZOK) {
        (void)bg_router_view_parse(buf, len > 0 ? (size_t)len : 0, name, v);
    }
    free(buf);
    return rc == ZOK ? 0 : rc == ZNONODE ? 1 : -1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int bg_ctl_read_routers(struct bg_ctl *c)
{
    char dir[600];
    bg_ctl_zpath(c, "/routers", dir, sizeof(dir));
    struct String_vector kids = {0, NULL};
    int rc = bg_zk_children(&c->zk, dir, 1, &kids);
    if (rc == ZNONODE) {
        struct Stat st;
        bg_zk_exists(&c->zk, dir, 1, &st); /* its creation wakes us */
    } else if (rc != ZOK) {
        return -1; /* keep what we knew */
    }
    if (kids.count > 1) /* by name: /status lists them in a stable order */
        qsort(kids.data, (size_t)kids.count, sizeof(char *), cmp_name);
    size_t want = kids.count > BG_ROUTERS_MAX ? BG_ROUTERS_MAX : (size_t)kids.count, n = 0;
    struct bg_router_view *v = bg_xcalloc(want ? want : 1, sizeof(*v));
    for (size_t i = 0; i < want; i++) {
        int r = read_router(c, dir, kids.data[i], &v[n]);
        if (r < 0) {
            free(v);
            deallocate_String_vector(&kids);
            return -1;
        }
        if (r == 0)
            n++;
    }
    deallocate_String_vector(&kids);
    if (n != c->n_routers)
        bg_info("routers", "count=%zu", n);
    if (n != c->n_routers || (n > 0 && memcmp(v, c->routers, n * sizeof(*v)) != 0))
        c->status_dirty = true; /* /status lists them */
    free(c->routers);
    c->routers = v;
    c->n_routers = n;
    return 0;
}

void bg_ctl_routers_clear(struct bg_ctl *c)
{
    free(c->routers);
    c->routers = NULL;
    c->n_routers = 0;
    c->routers_waited = 0;
}
