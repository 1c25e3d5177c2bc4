/* fuzz_haproxy_state.c -- libFuzzer target: bg-router kind haproxy's pure half (router/hap.c).
 * The input is an answer to `show servers state app`, then a line "==", then the wanted servers,
 * one "<id> <address> <weight>" per line. The answer is parsed; the plan for the wanted set is
 * run on a model of HAProxy's backend (add server, set server state/weight/addr, del server, as
 * the management guide describes them), and then the backend must be confirmed: every wanted
 * server ready at its address and weight, no other one taking new requests; after the sweep of
 * drained servers, no other server at all. Every command must be one line of safe words (the
 * Runtime API splits commands at ';'), and a refusal must say why. */
#include "fuzz.h"
#include "hap.h"
#include "valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WANT 16

/* ----------------------------------------------------------------------------------------
 * A model of the backend: what HAProxy 2.6 does with each command the plan may send.
 * ------------------------------------------------------------------------------------- */

static struct bg_hap_server *model_find(struct bg_hap_state *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->s[i].name, name) == 0)
            return &m->s[i];
    return NULL;
}

static void model_add(struct bg_hap_state *m, const char *name, const char *addr, int w)
{
    char ip[64];
    int port = 0;
    bg_fuzz_require(model_find(m, name) == NULL, "add server of a name the backend has");
    bg_fuzz_require(bg_hap_split_address(addr, ip, sizeof(ip), &port) == BG_OK,
                    "add server with an address that is not an IP literal");
    m->s = bg_xrealloc(m->s, (m->n + 1) * sizeof(*m->s));
    m->s[m->n++] = (struct bg_hap_server){.name = bg_xstrdup(name),
                                          .addr = bg_xstrdup(ip),
                                          .port = port,
                                          .admin = BG_HAP_FMAINT, /* added in maintenance */
                                          .weight = w};
}

static void model_del(struct bg_hap_state *m, const char *name)
{
    struct bg_hap_server *s = model_find(m, name);
    bg_fuzz_require(s != NULL && (s->admin & BG_HAP_FMAINT), "del server not in maintenance");
    free(s->name);
    free(s->addr);
    *s = m->s[--m->n];
}

static void model_set(struct bg_hap_state *m, const char *name, char **f, int nf)
{
    struct bg_hap_server *s = model_find(m, name);
    bg_fuzz_require(s != NULL, "set server of a name the backend does not have");
    if (nf == 2 && strcmp(f[0], "state") == 0) {
        int admin = s->admin & ~(BG_HAP_FMAINT | BG_HAP_FDRAIN);
        if (strcmp(f[1], "maint") == 0)
            admin |= BG_HAP_FMAINT;
        else if (strcmp(f[1], "drain") == 0)
            admin |= BG_HAP_FDRAIN;
        else
            bg_fuzz_require(strcmp(f[1], "ready") == 0, "unknown state");
        s->admin = admin;
    } else if (nf == 2 && strcmp(f[0], "weight") == 0) {
        s->weight = atoi(f[1]);
        bg_fuzz_require(s->weight >= 0 && s->weight <= 256, "weight out of HAProxy's range");
    } else if (nf == 4 && strcmp(f[0], "addr") == 0 && strcmp(f[2], "port") == 0) {
        free(s->addr);
        s->addr = bg_xstrdup(f[1]);
        s->port = atoi(f[3]);
    } else {
        bg_fuzz_require(false, "a set server command HAProxy does not know");
    }
}

/* One command: checked for shape, then done to m. */
static void model_run(struct bg_hap_state *m, const char *cmd)
{
    for (const char *p = cmd; *p; p++)
        bg_fuzz_require((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                            (*p >= '0' && *p <= '9') || strchr(" ._:/[]-", *p) != NULL,
                        "a command with a character outside safe words");
    char *copy = bg_xstrdup(cmd), *save = NULL, *f[12] = {NULL};
    int nf = 0;
    for (char *t = strtok_r(copy, " ", &save); t != NULL && nf < 12; t = strtok_r(NULL, " ", &save))
        f[nf++] = t;
    bg_fuzz_require(nf >= 3 && strcmp(f[1], "server") == 0 && strncmp(f[2], "app/", 4) == 0,
                    "not a server command on backend app");
    const char *name = f[2] + 4;
    if (strcmp(f[0], "add") == 0 && nf == 10 && strcmp(f[4], "weight") == 0 &&
        strcmp(f[6], "pool-max-conn") == 0) /* then -1 pool-purge-delay 5s (BG_HAP_POOL) */
        model_add(m, name, f[3], atoi(f[5]));
    else if (strcmp(f[0], "del") == 0 && nf == 3)
        model_del(m, name);
    else if (strcmp(f[0], "set") == 0)
        model_set(m, name, f + 3, nf - 3);
    else
        bg_fuzz_require(false, "a command the plan must not send");
    free(copy);
}

static void model_run_all(struct bg_hap_state *m, const struct bg_hap_cmds *c)
{
    for (size_t i = 0; i < c->n; i++)
        model_run(m, c->c[i]);
}

/* ----------------------------------------------------------------------------------------
 * The wanted set from the input.
 * ------------------------------------------------------------------------------------- */

static size_t parse_want(char *text, struct bg_route_server *w)
{
    size_t n = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l != NULL && n < MAX_WANT;
         l = strtok_r(NULL, "\n", &save)) {
        char *s2 = NULL;
        char *id = strtok_r(l, " ", &s2), *addr = strtok_r(NULL, " ", &s2);
        char *weight = strtok_r(NULL, " ", &s2);
        if (id == NULL || addr == NULL)
            continue;
        w[n] = (struct bg_route_server){.color = n % 2 ? BG_GREEN : BG_BLUE,
                                        .id = id,
                                        .address = addr,
                                        .weight = weight ? atoi(weight) : 0};
        n++;
    }
    return n;
}

/* What bg_hap_plan must accept: ids HAProxy takes, once each, IP addresses. */
static bool want_ok(const struct bg_route_server *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ip[64];
        int port;
        if (!bg_valid_name(w[i].id) || strlen(w[i].id) >= 128 ||
            bg_hap_split_address(w[i].address, ip, sizeof(ip), &port) != BG_OK)
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(w[j].id, w[i].id) == 0)
                return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = bg_fuzz_cstr(data, size);
    char *sep = strstr(in, "\n==\n");
    char *want_text = sep != NULL ? sep + 4 : in + strlen(in);
    size_t state_len = sep != NULL ? (size_t)(sep - in) + 1 : strlen(in);
    struct bg_hap_state have;
    char why[400] = "";
    int rc = bg_hap_state_parse(in, state_len, "app", &have, why, sizeof(why));
    bg_fuzz_require(rc == BG_OK || (why[0] != '\0' && have.n == 0), "refused without a reason");
    bg_hap_info_pid(in, state_len);
    bg_hap_answer_ok(in);
    struct bg_route_server w[MAX_WANT];
    struct bg_route_set want = {w, parse_want(want_text, w)};
    struct bg_hap_cmds c;
    why[0] = '\0';
    int prc = bg_hap_plan("app", &want, &have, &c, why, sizeof(why));
    bg_fuzz_require((prc == BG_OK) == want_ok(w, want.n),
                    "plan refused a good set or took a bad one");
    bg_fuzz_require(prc == BG_OK || (why[0] != '\0' && c.n == 0), "refused without a reason");
    bool inherited = false; /* a wanted server HAProxy keeps out whatever we say */
    for (size_t i = 0; i < want.n; i++) {
        const struct bg_hap_server *h = model_find(&have, w[i].id);
        inherited = inherited || (h != NULL && (h->admin & BG_HAP_INHERITED));
    }
    if (prc == BG_OK && !inherited) {
        model_run_all(&have, &c);
        bg_fuzz_require(bg_hap_confirm(&want, &have, why, sizeof(why)),
                        "the plan done by HAProxy is not confirmed");
        bg_hap_cmds_free(&c);
        bg_hap_sweep("app", &want, &have, &c);
        model_run_all(&have, &c);
        bg_fuzz_require(have.n == want.n, "the sweep left a server that is not wanted");
        bg_fuzz_require(bg_hap_confirm(&want, &have, why, sizeof(why)),
                        "the sweep broke what was confirmed");
    }
    bg_hap_cmds_free(&c);
    bg_hap_state_free(&have);
    free(in);
    return 0;
}
