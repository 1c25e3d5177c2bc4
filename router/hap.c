/* hap.c -- bg-router kind haproxy, the pure half (see hap.h): Runtime API answers parsed, the
 * commands planned, the result checked. */
#include "hap.h"
#include "valid.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FIELDS 19 /* format 1 has 25 columns; srv_port (the 19th) is the last one read */
#define F_BACKEND 1
#define F_NAME 3
#define F_ADDR 4
#define F_ADMIN 6
#define F_UWEIGHT 7
#define F_PORT 18

/* ----------------------------------------------------------------------------------------
 * Parsing HAProxy's answers (HAProxy's own text: trusted more than ZooKeeper's, still checked).
 * ------------------------------------------------------------------------------------- */

void bg_hap_state_free(struct bg_hap_state *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->s[i].name);
        free(st->s[i].addr);
    }
    free(st->s);
    st->s = NULL;
    st->n = 0;
}

/* A decimal in [0, max]; -1 when s is not one. */
static int small_int(const char *s, int max)
{
    if (s[0] == '\0' || strlen(s) > 9 || !bg_valid_all_digits(s))
        return -1;
    long v = strtol(s, NULL, 10);
    return v <= max ? (int)v : -1;
}

/* A server or backend name HAProxy accepts and a command line can carry as one word. */
static bool name_ok(const char *s)
{
    return s[0] != '\0' && strlen(s) < 128 && bg_valid_name(s);
}

/* Split line (modified) at white space into at most max fields; returns how many. */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t != NULL && n < max;
         t = strtok_r(NULL, " \t\r", &save))
        f[n++] = t;
    return n;
}

/* One data row into st (when it is backend's). BG_EINVAL with why when it is malformed. */
static int state_row(char *line, const char *backend, struct bg_hap_state *st, char *why,
                     size_t whylen)
{
    char *f[STATE_FIELDS + 1];
    size_t n = split(line, f, STATE_FIELDS + 1);
    if (n == 0 || (n > F_BACKEND && strcmp(f[F_BACKEND], backend) != 0))
        return BG_OK;
    int admin = n >= STATE_FIELDS ? small_int(f[F_ADMIN], 0xffff) : -1;
    int weight = n >= STATE_FIELDS ? small_int(f[F_UWEIGHT], 256) : -1;
    int port = n >= STATE_FIELDS ? small_int(f[F_PORT], 65535) : -1;
    if (admin < 0 || weight < 0 || port < 0 || !name_ok(f[F_NAME])) {
        snprintf(why, whylen, "a malformed row in show servers state (%zu fields)", n);
        return BG_EINVAL;
    }
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->s[i].name, f[F_NAME]) == 0) {
            snprintf(why, whylen, "server %s listed twice in show servers state", f[F_NAME]);
            return BG_EINVAL;
        }
    st->s = bg_xrealloc(st->s, (st->n + 1) * sizeof(*st->s));
    st->s[st->n++] = (struct bg_hap_server){.name = bg_xstrdup(f[F_NAME]),
                                            .addr = bg_xstrdup(f[F_ADDR]),
                                            .port = port,
                                            .admin = admin,
                                            .weight = weight};
    return BG_OK;
}

int bg_hap_state_parse(const char *text, size_t len, const char *backend, struct bg_hap_state *out,
                       char *why, size_t whylen)
{
    out->s = NULL;
    out->n = 0;
    char *copy = bg_xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    char *save = NULL;
    char *first = strtok_r(copy, "\n", &save);
    int rc = BG_OK;
    if (first == NULL || strcmp(first, "1") != 0) {
        char shown[120];
        bg_sanitize(first != NULL ? first : "", first != NULL ? strlen(first) : 0, shown,
                    sizeof(shown));
        snprintf(why, whylen, "show servers state did not answer format 1: \"%s\"", shown);
        rc = BG_EINVAL;
    }
    for (char *l = first != NULL ? strtok_r(NULL, "\n", &save) : NULL; l != NULL && rc == BG_OK;
         l = strtok_r(NULL, "\n", &save))
        if (l[0] != '#')
            rc = state_row(l, backend, out, why, whylen);
    free(copy);
    if (rc != BG_OK)
        bg_hap_state_free(out);
    return rc;
}

long bg_hap_info_pid(const char *text, size_t len)
{
    static const char key[] = "Pid: ";
    for (size_t i = 0; i + sizeof(key) - 1 < len; i++) {
        if ((i > 0 && text[i - 1] != '\n') || memcmp(text + i, key, sizeof(key) - 1) != 0)
            continue;
        long pid = 0;
        size_t j = i + sizeof(key) - 1;
        for (; j < len && text[j] >= '0' && text[j] <= '9' && pid < 100000000; j++)
            pid = pid * 10 + (text[j] - '0');
        bool line_end = j < len && (text[j] == '\n' || text[j] == '\r');
        return line_end && j > i + sizeof(key) - 1 ? pid : 0;
    }
    return 0;
}

bool bg_hap_answer_ok(const char *answer)
{
    while (*answer == ' ' || *answer == '\n' || *answer == '\r' || *answer == '\t')
        answer++;
    size_t n = strlen(answer);
    while (n > 0 && (answer[n - 1] == '\n' || answer[n - 1] == ' ' || answer[n - 1] == '\r'))
        n--;
    static const char added[] = "New server registered.", deleted[] = "Server deleted.";
    return n == 0 || (n == sizeof(added) - 1 && memcmp(answer, added, n) == 0) ||
           (n == sizeof(deleted) - 1 && memcmp(answer, deleted, n) == 0);
}

/* ----------------------------------------------------------------------------------------
 * Addresses: IP literals only, compared as addresses ("::1" is "0::1").
 * ------------------------------------------------------------------------------------- */

int bg_hap_split_address(const char *address, char *ip, size_t iplen, int *port)
{
    char host[256];
    if (address == NULL || bg_valid_split_hostport(address, host, sizeof(host), port) != BG_OK)
        return BG_EINVAL;
    const char *h = host;
    size_t hl = strlen(h);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl + 1 > iplen)
        return BG_EINVAL;
    memcpy(ip, h, hl);
    ip[hl] = '\0';
    unsigned char bin[16];
    return inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1 ? BG_OK
                                                                                 : BG_EINVAL;
}

static bool same_ip(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    if (inet_pton(AF_INET, a, x) == 1)
        return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
    return inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1 &&
           memcmp(x, y, 16) == 0;
}

/* ----------------------------------------------------------------------------------------
 * Planning and checking.
 * ------------------------------------------------------------------------------------- */

void bg_hap_cmds_free(struct bg_hap_cmds *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->c[i]);
    free(c->c);
    c->c = NULL;
    c->n = 0;
}

static void add_cmd(struct bg_hap_cmds *c, char *cmd)
{
    c->c = bg_xrealloc(c->c, (c->n + 1) * sizeof(*c->c));
    c->c[c->n++] = cmd;
}

static const struct bg_hap_server *find_have(const struct bg_hap_state *have, const char *name)
{
    for (size_t i = 0; i < have->n; i++)
        if (strcmp(have->s[i].name, name) == 0)
            return &have->s[i];
    return NULL;
}

static bool in_want(const struct bg_route_set *want, const char *name)
{
    for (size_t i = 0; i < want->n; i++)
        if (strcmp(want->s[i].id, name) == 0)
            return true;
    return false;
}

static int weight_of(const struct bg_route_server *s)
{
    return s->weight >= 1 && s->weight <= 100 ? s->weight : BG_HAP_WEIGHT_FULL;
}

/* The commands for one server of want. */
static void plan_server(const char *be, const struct bg_route_server *s, const char *ip, int port,
                        const struct bg_hap_server *h, struct bg_hap_cmds *out)
{
    int w = weight_of(s);
    bool v6 = strchr(ip, ':') != NULL;
    if (h == NULL) {
        /* A server added at run time keeps no idle connection unless told (HAProxy 2.6:
         * pool-max-conn 0): 12.3k req/s instead of 41.7k behind wrk -c64. These are a
         * configuration server's defaults. */
        add_cmd(out, bg_xasprintf("add server %s/%s %s%s%s:%d weight %d " BG_HAP_POOL, be, s->id,
                                  v6 ? "[" : "", ip, v6 ? "]" : "", port, w));
        add_cmd(out, bg_xasprintf("set server %s/%s state ready", be, s->id));
        return;
    }
    if (!same_ip(ip, h->addr) || port != h->port)
        add_cmd(out, bg_xasprintf("set server %s/%s addr %s port %d", be, s->id, ip, port));
    if (h->weight != w)
        add_cmd(out, bg_xasprintf("set server %s/%s weight %d", be, s->id, w));
    if (h->admin & (BG_HAP_FMAINT | BG_HAP_FDRAIN))
        add_cmd(out, bg_xasprintf("set server %s/%s state ready", be, s->id));
}

/* want as it can be applied: every address an IP literal, every id once. */
static int check_want(const struct bg_route_set *want, char *why, size_t whylen)
{
    for (size_t i = 0; i < want->n; i++) {
        char ip[64];
        int port;
        const struct bg_route_server *s = &want->s[i];
        if (!name_ok(s->id)) {
            snprintf(why, whylen, "%s: not a server name HAProxy takes", s->id);
            return BG_EINVAL;
        }
        if (bg_hap_split_address(s->address, ip, sizeof(ip), &port) != BG_OK) {
            snprintf(why, whylen,
                     "%s/%s: address %s is not an IP address and port (HAProxy does not resolve "
                     "the names of servers added at run time)",
                     bg_color_name(s->color), s->id, s->address);
            return BG_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(want->s[j].id, s->id) == 0) {
                snprintf(why, whylen, "instance id %s is in both colours: server names must differ",
                         s->id);
                return BG_EINVAL;
            }
    }
    return BG_OK;
}

int bg_hap_plan(const char *backend, const struct bg_route_set *want,
                const struct bg_hap_state *have, struct bg_hap_cmds *out, char *why, size_t whylen)
{
    out->c = NULL;
    out->n = 0;
    if (!name_ok(backend)) {
        snprintf(why, whylen, "not a backend name");
        return BG_EINVAL;
    }
    if (check_want(want, why, whylen) != BG_OK)
        return BG_EINVAL;
    for (size_t i = 0; i < want->n; i++) {
        char ip[64];
        int port;
        bg_hap_split_address(want->s[i].address, ip, sizeof(ip), &port);
        plan_server(backend, &want->s[i], ip, port, find_have(have, want->s[i].id), out);
    }
    for (size_t i = 0; i < have->n; i++) /* break after make */
        if (!in_want(want, have->s[i].name) && !(have->s[i].admin & BG_HAP_NO_NEW))
            add_cmd(out, bg_xasprintf("set server %s/%s state drain", backend, have->s[i].name));
    return BG_OK;
}

void bg_hap_sweep(const char *backend, const struct bg_route_set *want,
                  const struct bg_hap_state *have, struct bg_hap_cmds *out)
{
    out->c = NULL;
    out->n = 0;
    if (!name_ok(backend))
        return;
    for (size_t i = 0; i < have->n; i++) {
        const struct bg_hap_server *h = &have->s[i];
        if (in_want(want, h->name) || !(h->admin & BG_HAP_NO_NEW))
            continue;
        if (!(h->admin & BG_HAP_FMAINT))
            add_cmd(out, bg_xasprintf("set server %s/%s state maint", backend, h->name));
        add_cmd(out, bg_xasprintf("del server %s/%s", backend, h->name));
    }
}

bool bg_hap_confirm(const struct bg_route_set *want, const struct bg_hap_state *have, char *why,
                    size_t whylen)
{
    for (size_t i = 0; i < want->n; i++) {
        const struct bg_route_server *s = &want->s[i];
        const struct bg_hap_server *h = find_have(have, s->id);
        char ip[64];
        int port = 0;
        if (h == NULL) {
            snprintf(why, whylen, "server %s is not in the backend", s->id);
            return false;
        }
        if (bg_hap_split_address(s->address, ip, sizeof(ip), &port) != BG_OK ||
            !same_ip(ip, h->addr) || port != h->port) {
            snprintf(why, whylen, "server %s is at %s port %d, not %s", s->id, h->addr, h->port,
                     s->address);
            return false;
        }
        if (h->weight != weight_of(s) || (h->admin & BG_HAP_NO_NEW)) {
            snprintf(why, whylen, "server %s has weight %d and admin state 0x%x, not %d and ready",
                     s->id, h->weight, (unsigned)h->admin, weight_of(s));
            return false;
        }
    }
    for (size_t i = 0; i < have->n; i++)
        if (!in_want(want, have->s[i].name) && !(have->s[i].admin & BG_HAP_NO_NEW)) {
            snprintf(why, whylen, "server %s still takes new requests", have->s[i].name);
            return false;
        }
    return true;
}

/* ----------------------------------------------------------------------------------------
 * The backend section as served (haproxy.file).
 * ------------------------------------------------------------------------------------- */

static bool printable_line(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

char *bg_hap_render_backend(const char *router_id, const char *backend, char *const *options,
                            size_t n_options, const struct bg_route_set *set, int64_t generation,
                            char *why, size_t whylen)
{
    if (!name_ok(backend) || !name_ok(router_id)) {
        snprintf(why, whylen, "not a backend or router name");
        return NULL;
    }
    if (check_want(set, why, whylen) != BG_OK)
        return NULL;
    for (size_t i = 0; i < n_options; i++)
        if (!printable_line(options[i])) {
            snprintf(why, whylen, "option %zu is not one line of printable ASCII", i);
            return NULL;
        }
    char *text = bg_xasprintf("# bg-router %s: backend %s as it serves it (generation %" PRId64
                              "). Written by\n# the router; HAProxy loads it after haproxy.cfg "
                              "(-f), so that a reload keeps the servers.\nbackend %s\n",
                              router_id, backend, generation, backend);
    for (size_t i = 0; i < n_options; i++) {
        char *more = bg_xasprintf("%s    %s\n", text, options[i]);
        free(text);
        text = more;
    }
    for (size_t i = 0; i < set->n; i++) {
        char ip[64];
        int port;
        bg_hap_split_address(set->s[i].address, ip, sizeof(ip), &port);
        bool v6 = strchr(ip, ':') != NULL;
        char *more = bg_xasprintf("%s    server %s %s%s%s:%d weight %d\n", text, set->s[i].id,
                                  v6 ? "[" : "", ip, v6 ? "]" : "", port, weight_of(&set->s[i]));
        free(text);
        text = more;
    }
    return text;
}
