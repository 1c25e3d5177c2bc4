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

/* Returns true when router.kind was given and known. */
static bool load_router(struct bg_yaml *l, yaml_node_t *n, struct bg_router_conf *c)
{
    struct bg_yaml_slot s[] = {{.key = "id"}, {.key = "kind"}};
    if (!bg_yaml_scan_mapping(l, n, "router", "", s, BG_ARRAY_LEN(s)))
        return false;
    bg_yaml_need(l, n, "router", "", &s[R_ID]);
    bg_yaml_need(l, n, "router", "", &s[R_KIND]);
    bg_yaml_get_str(l, s[R_ID].val, "router.id", BG_EXPECT_ID, bg_valid_id, &c->id);
    const yaml_node_t *k = s[R_KIND].val;
    if (k == NULL)
        return false;
    if (bg_yaml_is_string(k) && strcmp(bg_yaml_text(k), "nginx") == 0)
        c->kind = BG_ROUTER_NGINX;
    else if (bg_yaml_is_string(k) && strcmp(bg_yaml_text(k), "haproxy") == 0)
        c->kind = BG_ROUTER_HAPROXY;
    else {
        bg_yaml_bad(l, k, "router.kind", "nginx or haproxy");
        return false;
    }
    return true;
}

/* ----------------------------------------------------------------------------------------
 * Lines of a balancer's configuration the router writes as they are (nginx.options,
 * haproxy.options).
 * ------------------------------------------------------------------------------------- */

/* A line of HAProxy's configuration the router writes as it is: printable, on one line. */
static bool valid_option(const char *s)
{
    if (s[strspn(s, " \t")] == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

/* nginx.options, haproxy.options: a sequence of lines, each checked with ok (expected says
 * what it must be); absent: the one line def (none when NULL). */
static void load_options(struct bg_yaml *l, const yaml_node_t *n, const char *path,
                         const char *expected, bool (*ok)(const char *), const char *def, char ***v,
                         size_t *count)
{
    if (n == NULL) {
        *v = bg_xcalloc(2, sizeof(char *));
        (*v)[0] = def != NULL ? bg_xstrdup(def) : NULL;
        *count = def != NULL;
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        bg_yaml_bad(l, n, path, "a sequence of lines");
        return;
    }
    size_t items = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *v = bg_xcalloc(items + 1, sizeof(char *));
    for (size_t i = 0; i < items; i++) {
        const yaml_node_t *item = yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]);
        char where[80];
        bg_yaml_pathf(where, sizeof(where), "%s[%zu]", path, i);
        if (bg_yaml_get_str(l, item, where, expected, ok, &(*v)[*count]))
            (*count)++;
    }
}

/* ----------------------------------------------------------------------------------------
 * The nginx section.
 * ------------------------------------------------------------------------------------- */

enum { N_UPSTREAM, N_FILE, N_TEST, N_RELOAD, N_CONFIRM, N_CONFIRM_TIMEOUT, N_TIMEOUT, N_OPTIONS };

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
                               {.key = "timeout"},  {.key = "options"}};
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
        load_options(l, s[N_OPTIONS].val, "nginx.options", BG_EXPECT_NGINX_OPTION,
                     bg_valid_nginx_option, NULL, &x->options, &x->n_options);
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
    bg_yaml_free_strv(&x->options, x->n_options);
}

/* ----------------------------------------------------------------------------------------
 * The haproxy section.
 * ------------------------------------------------------------------------------------- */

enum { H_SOCKET, H_BACKEND, H_TIMEOUT, H_VERIFY_EVERY, H_FILE, H_OPTIONS };

static void load_haproxy(struct bg_yaml *l, yaml_node_t *n, struct bg_haproxy_conf *x)
{
    struct bg_yaml_slot s[] = {{.key = "socket"},       {.key = "backend"}, {.key = "timeout"},
                               {.key = "verify_every"}, {.key = "file"},    {.key = "options"}};
    x->timeout_ms = 1000;
    x->verify_every_ms = 100;
    if (!bg_yaml_scan_mapping(l, n, "haproxy", "", s, BG_ARRAY_LEN(s)))
        return;
    bg_yaml_need(l, n, "haproxy", "", &s[H_SOCKET]);
    bg_yaml_need(l, n, "haproxy", "", &s[H_BACKEND]);
    bg_yaml_get_str(l, s[H_SOCKET].val, "haproxy.socket", "a file name without white space",
                    bg_valid_word, &x->socket);
    /* Goes into Runtime API commands as one word. */
    bg_yaml_get_str(l, s[H_BACKEND].val, "haproxy.backend", BG_EXPECT_ID, bg_valid_id, &x->backend);
    bg_yaml_get_duration(l, s[H_TIMEOUT].val, "haproxy.timeout", 1, &x->timeout_ms);
    bg_yaml_get_duration(l, s[H_VERIFY_EVERY].val, "haproxy.verify_every", 1, &x->verify_every_ms);
    bg_yaml_get_str(l, s[H_FILE].val, "haproxy.file", "a file name without white space",
                    bg_valid_word, &x->file);
    if (s[H_OPTIONS].val != NULL && s[H_FILE].val == NULL)
        bg_yaml_fail(l, s[H_OPTIONS].key_node->start_mark, "haproxy.options",
                     "only used with haproxy.file (the lines of the section the router writes)");
    load_options(l, s[H_OPTIONS].val, "haproxy.options", "a line of printable ASCII", valid_option,
                 "balance roundrobin", &x->options, &x->n_options);
}

static void free_haproxy(struct bg_haproxy_conf *x)
{
    bg_free(&x->socket);
    bg_free(&x->backend);
    bg_free(&x->file);
    bg_yaml_free_strv(&x->options, x->n_options);
}

/* ----------------------------------------------------------------------------------------
 * The whole file.
 * ------------------------------------------------------------------------------------- */

enum { T_ZK, T_ROUTER, T_NGINX, T_HAPROXY, T_HTTP };

void bg_conf_free_router(struct bg_router_conf *c)
{
    if (c == NULL)
        return;
    bg_free(&c->path);
    bg_conf_free_zk(&c->zk);
    bg_conf_free_http(&c->http);
    bg_free(&c->id);
    free_nginx(&c->nginx);
    free_haproxy(&c->haproxy);
    memset(c, 0, sizeof(*c));
}

static void router_sections(struct bg_yaml *l, yaml_node_t *root, void *conf)
{
    struct bg_router_conf *out = conf;
    struct bg_yaml_slot s[] = {{.key = "zookeeper"},
                               {.key = "router"},
                               {.key = "nginx"},
                               {.key = "haproxy"},
                               {.key = "http"}};
    bg_yaml_scan_mapping(l, root, "", "", s, BG_ARRAY_LEN(s));
    bg_yaml_need(l, root, "", "", &s[T_ZK]);
    bg_yaml_need(l, root, "", "", &s[T_ROUTER]);
    bg_conf_load_zk(l, s[T_ZK].val, &out->zk);
    bg_conf_warn_zk_auth(l, s[T_ZK].val, &out->zk);
    bool kind_known = load_router(l, s[T_ROUTER].val, out);
    /* The section of the router's kind is required; the other kind's is a mistake. */
    int mine = out->kind == BG_ROUTER_HAPROXY ? T_HAPROXY : T_NGINX;
    int other = mine == T_NGINX ? T_HAPROXY : T_NGINX;
    if (kind_known)
        bg_yaml_need(l, root, "", "", &s[mine]);
    if (kind_known && s[other].val != NULL)
        bg_yaml_fail(l, s[other].key_node->start_mark, s[other].key,
                     "is for router.kind %s; this router's kind is %s",
                     other == T_NGINX ? "nginx" : "haproxy", mine == T_NGINX ? "nginx" : "haproxy");
    if (mine == T_NGINX && kind_known)
        load_nginx(l, s[T_NGINX].val, &out->nginx);
    else if (kind_known)
        load_haproxy(l, s[T_HAPROXY].val, &out->haproxy);
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
