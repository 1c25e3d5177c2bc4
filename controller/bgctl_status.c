/* bgctl_status.c -- bgctl's views: status (/active_color, the leader, /status and every
 * instance) and history. */
#include "bgctl.h"
#include "json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_or(json_t *j, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s != NULL ? s : dflt;
}

/* /status's instances by "colour/id" (a new reference), so that a fleet of thousands is not
 * searched once per instance. */
static json_t *status_index(json_t *status)
{
    json_t *idx = json_object();
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(status, "instances"), k, v)
    {
        char key[300];
        snprintf(key, sizeof(key), "%s/%s", str_or(v, "color", ""), str_or(v, "id", ""));
        json_object_set(idx, key, v);
    }
    return idx;
}

/* The status of a colour's instances that a truncated /status left out (it lists the ones
 * with something to say, counts the others in "omitted"): the colour's one omitted status,
 * or NULL when there is none or they differ. */
static const char *omitted_status(json_t *status, const char *color)
{
    if (!json_is_true(json_object_get(status, "truncated")))
        return NULL;
    json_t *o = json_object_get(json_object_get(status, "omitted"), color);
    const char *only = NULL, *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (json_integer_value(v) <= 0)
            continue;
        if (only != NULL)
            return NULL;
        only = key;
    }
    return only;
}

/* The balancers an instance waits for, from /status: strings only, re-made (/status is
 * written by the leader, but read defensively). A new reference. */
static json_t *waiting_json(json_t *waiting)
{
    json_t *w = json_array();
    size_t b;
    json_t *e;
    json_array_foreach(waiting, b, e)
    {
        const char *text = json_string_value(e);
        if (text != NULL) {
            char clean[160];
            bg_sanitize(text, strlen(text), clean, sizeof(clean));
            json_array_append_new(w, json_string(clean));
        }
    }
    return w;
}

/* What /status says of one instance (v, NULL when it is not listed there). */
struct inst_status {
    const char *st, *err;
    json_t *waiting; /* the balancers that have not seen its status yet */
    json_t *weight;  /* the weight the agent confirmed (NULL: none said) */
    bool drained;
    const char *drain_reason;
    bool summarised; /* counted, not listed, in a truncated /status */
};

static struct inst_status inst_status(json_t *v, const char *omitted)
{
    struct inst_status is = {.st = "UNKNOWN", .err = "", .summarised = v == NULL && omitted};
    if (v != NULL) {
        is.st = str_or(v, "status", is.st);
        is.err = str_or(v, "last_error", "");
        if (is.err[0] == '\0')
            is.err = str_or(v, "problem", "");
        if (json_is_false(json_object_get(v, "confirmed")))
            is.waiting = json_object_get(v, "waiting_for");
        is.weight = json_object_get(v, "weight");
        is.drained = json_is_true(json_object_get(v, "drained"));
        is.drain_reason = str_or(v, "drain_reason", "");
    } else if (is.summarised) {
        is.st = omitted;
    }
    return is;
}

/* One instance's line of `status`: its node in ZooKeeper beside what /status says of it. */
static json_t *instance_json(struct ctl *c, const char *color, const char *id,
                             const struct inst_status *is)
{
    char rel[600];
    snprintf(rel, sizeof(rel), "/%s/%s", color, id);
    json_t *node = bgctl_get_json(c, rel, 0);
    const char *ep = json_string_value(json_object_get(node, "endpoint"));
    /* As the controller reads it: missing means healthy, a non-boolean unhealthy. */
    json_t *hv = json_object_get(node, "healthy");
    bool healthy = hv == NULL || json_is_true(hv);
    char check[160] = "";
    const char *msg = json_string_value(json_object_get(node, "check"));
    if (!healthy && msg != NULL)
        bg_sanitize(msg, strlen(msg), check, sizeof(check));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id", id, "color", color, "status", is->st,
                  "endpoint", ep ? ep : "", "last_error", is->err, "healthy", healthy);
    if (o == NULL) /* not UTF-8: a node made by hand */
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id", "?", "color", color, "status", is->st,
                      "endpoint", "", "last_error", "", "healthy", healthy);
    json_decref(node);
    if (!healthy)
        json_object_set_new(o, "check", json_string(check));
    if (is->summarised)
        json_object_set_new(o, "summarised", json_true());
    if (json_is_integer(is->weight))
        json_object_set(o, "weight", is->weight);
    if (is->drained) {
        json_object_set_new(o, "drained", json_true());
        json_object_set_new(o, "drain_reason", bg_json_text(is->drain_reason, 0));
    }
    if (is->waiting != NULL) {
        json_object_set_new(o, "confirmed", json_false());
        json_object_set_new(o, "waiting_for", waiting_json(is->waiting));
    }
    return o;
}

static void add_instances(struct ctl *c, json_t *out, const char *color, json_t *status,
                          json_t *index)
{
    struct String_vector kids;
    char rel[600];
    snprintf(rel, sizeof(rel), "/%s", color);
    if (bgctl_children(c, rel, &kids) != ZOK)
        return;
    const char *omitted = omitted_status(status, color);
    for (int i = 0; i < kids.count; i++) {
        char key[300];
        snprintf(key, sizeof(key), "%s/%s", color, kids.data[i]);
        struct inst_status is = inst_status(json_object_get(index, key), omitted);
        json_array_append_new(out, instance_json(c, color, kids.data[i], &is));
    }
    deallocate_String_vector(&kids);
}

/* A truncated /status (kept under its size budget) lists the instances with something to say
 * and counts the others: say so, and what was left out. */
static void print_omitted(json_t *status)
{
    printf("note:         /status is truncated (kept under its size budget): %zu instance(s) "
           "listed, left out:",
           json_array_size(json_object_get(status, "instances")));
    const char *color, *st;
    json_t *byst, *v;
    int n = 0;
    json_object_foreach(json_object_get(status, "omitted"), color, byst)
    {
        json_object_foreach(byst, st, v)
        {
            char clean[64];
            bg_sanitize(color, strlen(color), clean, sizeof(clean));
            printf("%s %s %lld", n++ ? "," : "", clean, (long long)json_integer_value(v));
            bg_sanitize(st, strlen(st), clean, sizeof(clean));
            printf(" %s", clean);
        }
    }
    printf("%s\n", n ? "" : " none");
}

/* One instance of `status` as text: its row, and the balancers it waits for. */
static void print_instance(json_t *v)
{
    bool healthy = json_is_true(json_object_get(v, "healthy"));
    const char *err = json_string_value(json_object_get(v, "last_error"));
    const char *chk = json_string_value(json_object_get(v, "check"));
    printf("%-24s %-6s %-15s %-9s %-28s %s%s%s\n", json_string_value(json_object_get(v, "id")),
           json_string_value(json_object_get(v, "color")),
           json_string_value(json_object_get(v, "status")), healthy ? "healthy" : "UNHEALTHY",
           json_string_value(json_object_get(v, "endpoint")), err ? err : "",
           err && err[0] && chk ? "; " : "", chk ? chk : "");
    json_t *wt = json_object_get(v, "weight");
    if (json_is_integer(wt) && json_integer_value(wt) != 100)
        printf("%-24s WEIGHT %lld %%\n", "", (long long)json_integer_value(wt));
    if (json_is_true(json_object_get(v, "drained")))
        printf("%-24s DRAINED: %s\n", "", json_string_value(json_object_get(v, "drain_reason")));
    json_t *w = json_object_get(v, "waiting_for");
    if (w == NULL)
        return;
    /* What the switch waits for: the balancers that have not seen this status. */
    printf("%-24s WAITING FOR ", "");
    size_t b;
    json_t *e;
    json_array_foreach(w, b, e)
    {
        printf("%s%s", b ? "; " : "", json_string_value(e));
    }
    printf("%s\n", json_array_size(w) == 0 ? "a balancer to confirm" : "");
}

/* The canary and the drains /status reports (DESIGN §12), one line each. */
static void print_shaping(json_t *status)
{
    json_t *cn = json_object_get(status, "canary");
    if (json_is_true(json_object_get(cn, "active"))) {
        bool count = strcmp(str_or(cn, "mode", ""), "instances") == 0;
        printf("canary:       %s %lld %% requested; ", str_or(cn, "color", "?"),
               (long long)json_integer_value(json_object_get(cn, "percent")));
        if (count)
            printf("instance-count canary (an instance cannot weight): %lld of %lld UP",
                   (long long)json_integer_value(json_object_get(cn, "canary_up")),
                   (long long)json_integer_value(json_object_get(cn, "canary_instances")));
        else
            printf("weights %lld (canary) / %lld (active)",
                   (long long)json_integer_value(json_object_get(cn, "weight_canary")),
                   (long long)json_integer_value(json_object_get(cn, "weight_active")));
        printf(", expected share %.1f %%\n", json_number_value(json_object_get(cn, "share")));
    }
    if (json_object_get(cn, "note"))
        printf("canary note:  %s\n", str_or(cn, "note", ""));
    const char *problems[] = {"canary_problem", "drain_problem"};
    for (size_t i = 0; i < 2; i++)
        if (json_object_get(status, problems[i]))
            printf("problem:      %s\n", str_or(status, problems[i], ""));
    size_t k;
    json_t *d;
    json_array_foreach(json_object_get(status, "drains"), k, d)
    {
        printf("drain:        %s %s %s (%s)%s%s\n", str_or(d, "color", ""), str_or(d, "id", ""),
               str_or(d, "drain", ""), str_or(d, "status", ""),
               str_or(d, "reason", "")[0] ? ": " : "", str_or(d, "reason", ""));
    }
}

/* The live bg-routers /status lists (DESIGN §13), a table; nothing without any. */
static void print_routers(json_t *status)
{
    json_t *list = json_object_get(status, "routers");
    if (json_array_size(list) == 0)
        return;
    printf("\n%-24s %-8s %5s %5s %10s  %s\n", "ROUTER", "KIND", "BLUE", "GREEN", "GENERATION",
           "STATE");
    size_t k;
    json_t *r;
    json_array_foreach(list, k, r)
    {
        json_t *serving = json_object_get(r, "serving");
        char err[240] = "";
        const char *e = str_or(r, "last_error", "");
        bg_sanitize(e, strlen(e), err, sizeof(err));
        const char *state = json_is_true(json_object_get(r, "failed"))    ? "failed: "
                            : json_is_true(json_object_get(r, "pending")) ? "pending"
                                                                          : "ok";
        printf("%-24s %-8s %5lld %5lld %10lld  %s%s%s\n", str_or(r, "id", "?"),
               str_or(r, "kind", "-"),
               (long long)json_integer_value(json_object_get(serving, "blue")),
               (long long)json_integer_value(json_object_get(serving, "green")),
               (long long)json_integer_value(json_object_get(r, "generation")), state,
               state[0] == 'f' ? err : "",
               json_is_true(json_object_get(r, "waited")) ? " (the switch waits for it)" : "");
    }
}

/* `status` as text: /active_color, the leader (lrc: how reading it went), /status and the
 * instances (status_json's "instances"). */
static void print_status(const char *active, const char *leader, int lrc, json_t *status,
                         json_t *inst)
{
    const char *applied = json_string_value(json_object_get(status, "applied"));
    const char *phase = json_string_value(json_object_get(status, "phase"));
    const char *reason = json_string_value(json_object_get(status, "reason"));
    printf("active_color: %s\n", active ? active : "(missing)");
    printf("applied:      %s\n", applied && applied[0] ? applied : "-");
    if (lrc != ZOK)
        printf("leader:       (unknown: cannot read /election: %s)\n", bgctl_why(lrc));
    else
        printf("leader:       %s\n", leader ? leader : "(no controller running)");
    printf("phase:        %s\n", phase ? phase : "(no /status yet)");
    if (reason && reason[0])
        printf("reason:       %s\n", reason);
    print_shaping(status);
    if (json_is_true(json_object_get(status, "truncated")))
        print_omitted(status);
    print_routers(status);
    printf("\n%-24s %-6s %-15s %-9s %-28s %s\n", "INSTANCE", "COLOR", "STATUS", "HEALTH",
           "ENDPOINT", "LAST ERROR / CHECK");
    size_t k;
    json_t *v;
    json_array_foreach(inst, k, v)
    {
        print_instance(v);
    }
    if (json_array_size(inst) == 0)
        printf("(no instances registered)\n");
}

/* `status` as JSON: /active_color, the leader, /status and every instance. A new reference. */
static json_t *status_json(struct ctl *c, json_t *status, const char *active, const char *leader,
                           int lrc)
{
    json_t *inst = json_array();
    json_t *index = status_index(status);
    add_instances(c, inst, "blue", status, index);
    add_instances(c, inst, "green", status, index);
    json_decref(index);
    json_t *j =
        json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:O?, s:o}", "active_color", active, "applied",
                  json_string_value(json_object_get(status, "applied")), "leader", leader, "phase",
                  json_string_value(json_object_get(status, "phase")), "reason",
                  json_string_value(json_object_get(status, "reason")), "epoch",
                  json_object_get(status, "epoch"), "instances", inst);
    if (lrc != ZOK)
        json_object_set_new(j, "leader_error",
                            json_sprintf("cannot read /election: %s", bgctl_why(lrc)));
    const char *shaping[] = {"canary", "drains", "canary_problem", "drain_problem", "routers"};
    for (size_t i = 0; i < BG_ARRAY_LEN(shaping); i++)
        if (json_object_get(status, shaping[i]))
            json_object_set(j, shaping[i], json_object_get(status, shaping[i]));
    if (json_is_true(json_object_get(status, "truncated"))) {
        json_object_set_new(j, "truncated", json_true());
        json_object_set(j, "omitted", json_object_get(status, "omitted"));
    }
    return j;
}

int bgctl_cmd_status(struct ctl *c)
{
    char *active = bgctl_get(c, "/active_color", 0, NULL, NULL);
    json_t *status = bgctl_get_json(c, "/status", 0);
    char *leader = NULL;
    int lrc = bgctl_leader_id(c, &leader);
    json_t *j = status_json(c, status, active ? bg_trim(active) : NULL, leader, lrc);
    if (c->json) {
        char *s = bg_json_dumps_safe(j, JSON_INDENT(2), "status");
        printf("%s\n", s);
        free(s);
    } else {
        print_status(active, leader, lrc, status, json_object_get(j, "instances"));
    }
    json_decref(j);
    json_decref(status);
    free(active);
    free(leader);
    return 0;
}

int bgctl_cmd_history(struct ctl *c)
{
    long limit = c->limit;
    struct String_vector kids;
    int rc = bgctl_children(c, "/history", &kids);
    if (rc == ZNONODE) {
        printf(c->json ? "[]\n" : "(no history)\n");
        return 0;
    }
    if (rc != ZOK) {
        fprintf(stderr, "bgctl: cannot list /history: %s\n", bgctl_why(rc));
        return EXIT_ERROR;
    }
    json_t *all = json_array();
    int first = limit > 0 && kids.count > limit ? kids.count - (int)limit : 0;
    for (int i = first; i < kids.count; i++) {
        char rel[600];
        snprintf(rel, sizeof(rel), "/history/%s", kids.data[i]);
        json_t *e = bgctl_get_json(c, rel, 0);
        if (e != NULL)
            json_array_append_new(all, e);
    }
    deallocate_String_vector(&kids);
    if (c->json) {
        char *s = bg_json_dumps_safe(all, JSON_INDENT(2), "history");
        printf("%s\n", s);
        free(s);
    } else {
        printf("%-25s %-6s %-6s %-11s %8s  %s\n", "FINISHED", "FROM", "TO", "RESULT", "MS",
               "REASON");
        size_t k;
        json_t *e;
        json_array_foreach(all, k, e)
        {
            printf("%-25s %-6s %-6s %-11s %8lld  %s\n",
                   json_string_value(json_object_get(e, "finished")),
                   json_string_value(json_object_get(e, "from")),
                   json_string_value(json_object_get(e, "to")),
                   json_string_value(json_object_get(e, "result")),
                   (long long)json_integer_value(json_object_get(e, "ms")),
                   json_string_value(json_object_get(e, "reason")));
        }
        if (json_array_size(all) == 0)
            printf("(no history)\n");
    }
    json_decref(all);
    return 0;
}
