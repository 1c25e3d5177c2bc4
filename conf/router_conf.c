/* router_conf.c -- router.yaml (DESIGN §13): the router and nginx sections and the whole file's
 * loader (bg_conf_load_router). */
#include "sections.h"
#include "valid.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * The router section: id and kind.
 * ------------------------------------------------------------------------------------- */

enum { R_ID, R_KIND };

static void load_router(struct bg_yaml *l, yaml_node_t *n, struct bg_router_conf *c)
{
    struct bg_yaml_slot s[] = {{.key = "id"}, {.key = "kind"}};
    if (!bg_yaml_scan_mapping(l, n, "router", "", s, BG_ARRAY_LEN(s)))
        return;
    bg_yaml_need(l, n, "router", "", &s[R_ID]);
    bg_yaml_need(l, n, "router", "", &s[R_KIND]);
    bg_yaml_get_str(l, s[R_ID].val, "router.id", BG_EXPECT_ID, bg_valid_id, &c->id);
    const yaml_node_t *k = s[R_KIND].val;
    if (k == NULL)
        return;
    if (bg_yaml_is_string(k) && strcmp(bg_yaml_text(k), "nginx") == 0)
        c->kind = BG_ROUTER_NGINX;
    else if (bg_yaml_is_string(k) && strcmp(bg_yaml_text(k), "haproxy") == 0)
        bg_yaml_fail(l, k->start_mark, "router.kind",
                     "haproxy is not implemented yet in this version, expected nginx");
    else
        bg_yaml_bad(l, k, "router.kind", "nginx");
}

/* ----------------------------------------------------------------------------------------
 * The nginx section.
 * ------------------------------------------------------------------------------------- */

enum { N_UPSTREAM, N_FILE, N_TEST, N_RELOAD, N_CONFIRM, N_CONFIRM_TIMEOUT, N_TIMEOUT };

/* A command line given as the default when the key is absent. */
static void default_command(char ***argv, size_t *argc, const char *const *words)
{
    size_t n = 0;
    while (words[n] != NULL)
        n++;
    *argv = bg_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        (*argv)[i] = bg_xstrdup(words[i]);
    *argc = n;
}

static void load_nginx(struct bg_yaml *l, yaml_node_t *n, struct bg_nginx_conf *x)
{
    static const char *const test[] = {"nginx", "-t", NULL};
    static const char *const reload[] = {"nginx", "-s", "reload", NULL};
    struct bg_yaml_slot s[] = {{.key = "upstream"}, {.key = "file"},    {.key = "test"},
                               {.key = "reload"},   {.key = "confirm"}, {.key = "confirm_timeout"},
                               {.key = "timeout"}};
    x->confirm_timeout_ms = 5000;
    x->timeout_ms = 10000;
    if (bg_yaml_scan_mapping(l, n, "nginx", "", s, BG_ARRAY_LEN(s))) {
        bg_yaml_need(l, n, "nginx", "", &s[N_UPSTREAM]);
        bg_yaml_need(l, n, "nginx", "", &s[N_FILE]);
        /* The name goes into nginx's configuration as it is: no quoting needed, none allowed. */
        bg_yaml_get_str(l, s[N_UPSTREAM].val, "nginx.upstream", BG_EXPECT_ID, bg_valid_id,
                        &x->upstream);
        bg_yaml_get_str(l, s[N_FILE].val, "nginx.file", "a file name without white space",
                        bg_valid_word, &x->file);
        if (s[N_TEST].val != NULL)
            bg_yaml_get_command(l, s[N_TEST].val, "nginx.test", &x->test, &x->n_test);
        if (s[N_RELOAD].val != NULL)
            bg_yaml_get_command(l, s[N_RELOAD].val, "nginx.reload", &x->reload, &x->n_reload);
        bg_yaml_get_str(l, s[N_CONFIRM].val, "nginx.confirm", BG_EXPECT_HOSTPORT, bg_valid_hostport,
                        &x->confirm);
        bg_yaml_get_duration(l, s[N_CONFIRM_TIMEOUT].val, "nginx.confirm_timeout", 1,
                             &x->confirm_timeout_ms);
        bg_yaml_get_duration(l, s[N_TIMEOUT].val, "nginx.timeout", 1, &x->timeout_ms);
    }
    if (x->test == NULL)
        default_command(&x->test, &x->n_test, test);
    if (x->reload == NULL)
        default_command(&x->reload, &x->n_reload, reload);
}

static void free_nginx(struct bg_nginx_conf *x)
{
    bg_free(&x->upstream);
    bg_free(&x->file);
    bg_yaml_free_strv(&x->test, x->n_test);
    bg_yaml_free_strv(&x->reload, x->n_reload);
    bg_free(&x->confirm);
}

/* ----------------------------------------------------------------------------------------
 * The whole file.
 * ------------------------------------------------------------------------------------- */

enum { T_ZK, T_ROUTER, T_NGINX, T_HTTP };

void bg_conf_free_router(struct bg_router_conf *c)
{
    if (c == NULL)
        return;
    bg_free(&c->path);
    bg_conf_free_zk(&c->zk);
    bg_conf_free_http(&c->http);
    bg_free(&c->id);
    free_nginx(&c->nginx);
    memset(c, 0, sizeof(*c));
}

static void router_sections(struct bg_yaml *l, yaml_node_t *root, void *conf)
{
    struct bg_router_conf *out = conf;
    struct bg_yaml_slot s[] = {
        {.key = "zookeeper"}, {.key = "router"}, {.key = "nginx"}, {.key = "http"}};
    bg_yaml_scan_mapping(l, root, "", "", s, BG_ARRAY_LEN(s));
    bg_yaml_need(l, root, "", "", &s[T_ZK]);
    bg_yaml_need(l, root, "", "", &s[T_ROUTER]);
    bg_conf_load_zk(l, s[T_ZK].val, &out->zk);
    bg_conf_warn_zk_auth(l, s[T_ZK].val, &out->zk);
    load_router(l, s[T_ROUTER].val, out);
    /* kind nginx is the only kind: its section is required. */
    bg_yaml_need(l, root, "", "", &s[T_NGINX]);
    load_nginx(l, s[T_NGINX].val, &out->nginx);
    bg_conf_load_http(l, s[T_HTTP].val, true, &out->http);
}

static void free_router(void *conf)
{
    bg_conf_free_router(conf);
}

int bg_conf_load_router(const char *path, struct bg_router_conf *out, struct bg_conf_errors *errs)
{
    memset(out, 0, sizeof(*out));
    out->path = bg_xstrdup(path);
    return bg_yaml_load(path, router_sections, free_router, out, errs);
}
