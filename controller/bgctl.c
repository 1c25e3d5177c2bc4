/* bgctl.c -- the operator's and CI's command line: init, status, switch, rollback, wait. */
#include "json.h"
#include "log.h"
#include "util.h"
#include "zk.h"

#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit codes CI can rely on. */
#define EXIT_CONVERGED 0
#define EXIT_ERROR 1
#define EXIT_BLOCKED 2
#define EXIT_TIMEOUT 3
#define EXIT_USAGE 64

/* The command line, parsed, and the ZooKeeper session the command runs in. */
struct ctl {
    struct bg_zk zk;
    const char *connect, *root, *auth; /* -z, -r, -a (or $BG_ZK, $BG_ROOT, $BG_ZK_AUTH) */
    bool json;
    bool wait;
    int64_t timeout_ms;
    const char *color;    /* init --color */
    long limit;           /* history -n */
    enum bg_color target; /* switch's argument */
};

struct command {
    const char *name;
    const char *help; /* its lines of the usage text */
    /* Check the command's arguments before connecting: 0, or EXIT_USAGE (said on stderr). */
    int (*check)(struct ctl *c, const char *name, int nargs, char **args);
    int (*run)(struct ctl *c); /* connected: the exit status */
};

/* ----------------------------------------------------------------------------------------
 * ZooKeeper helpers.
 * ------------------------------------------------------------------------------------- */

/* zerror() plus what to do about the one error users can fix themselves. */
static const char *why(int rc)
{
    if (rc == ZNOAUTH)
        return "not authorised (the nodes are protected by zookeeper.auth: pass -a USER:PASS "
               "or set BG_ZK_AUTH)";
    return zerror(rc);
}

/* Read a node into a malloc'd NUL-terminated buffer (NULL if missing or on error). */
static char *get(struct ctl *c, const char *rel, int watch, struct Stat *st, int *rc_out)
{
    char path[1024];
    bg_zk_path(&c->zk, rel, path, sizeof(path));
    int cap = 1 << 20;
    char *buf = bg_xmalloc((size_t)cap + 1);
    int len = cap;
    struct Stat tmp;
    int rc = bg_zk_get(&c->zk, path, watch, buf, &len, st ? st : &tmp);
    if (rc_out)
        *rc_out = rc;
    if (rc != ZOK) {
        free(buf);
        if (st != NULL)
            memset(st, 0, sizeof(*st)); /* never leave the caller's Stat undefined */
        if (rc == ZNONODE && watch)
            bg_zk_exists(&c->zk, path, 1, st ? st : &tmp);
        return NULL;
    }
    buf[len < 0 ? 0 : len] = '\0';
    return buf;
}

static json_t *get_json(struct ctl *c, const char *rel, int watch)
{
    char *s = get(c, rel, watch, NULL, NULL);
    if (s == NULL)
        return NULL;
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    return j;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int children(struct ctl *c, const char *rel, struct String_vector *kids)
{
    char path[1024];
    bg_zk_path(&c->zk, rel, path, sizeof(path));
    memset(kids, 0, sizeof(*kids));
    int rc = bg_zk_children(&c->zk, path, 0, kids);
    if (rc == ZOK && kids->count > 1)
        qsort(kids->data, (size_t)kids->count, sizeof(char *), cmp_str);
    return rc;
}

static int connect_zk(struct ctl *c, const char *connect, const char *root, const char *auth)
{
    if (bg_zk_open(&c->zk, connect, root, 10000, auth) != 0) {
        fprintf(stderr, "bgctl: cannot start a ZooKeeper client for %s\n", connect);
        return EXIT_ERROR;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    if (bg_zk_wait_connected(&c->zk, 5000) != 0) {
        fprintf(stderr, "bgctl: cannot connect to ZooKeeper at %s within 5 s\n", connect);
        return EXIT_ERROR;
    }
    return 0;
}

/* The current leader's id, from the lowest live /election member, into *out (caller frees;
 * NULL when no controller is running). A persistent member-... made by hand is no controller
 * and never named as the leader. Returns ZOK, or the ZooKeeper error that kept us from knowing
 * (then *out is NULL too: "no controller" must not be said of what could not be read). */
static int leader_id(struct ctl *c, char **out)
{
    struct bg_election_member *m = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = bg_zk_election_members(&c->zk, 0, &m, &n);
    if (rc != ZOK || n == 0) {
        free(m);
        return rc;
    }
    char rel[600];
    snprintf(rel, sizeof(rel), "/election/%s", m[0].name);
    free(m);
    json_t *j = get_json(c, rel, 0);
    const char *id = json_string_value(json_object_get(j, "id"));
    *out = bg_xstrdup(id ? id : "?");
    json_decref(j);
    return ZOK;
}

/* ----------------------------------------------------------------------------------------
 * Commands.
 * ------------------------------------------------------------------------------------- */

static int cmd_init(struct ctl *c)
{
    const char *color = c->color;
    static const char *dirs[] = {"/blue", "/green", "/election", "/history"};
    for (size_t i = 0; i < BG_ARRAY_LEN(dirs); i++) {
        if (bg_zk_ensure(&c->zk, dirs[i]) != 0) {
            fprintf(stderr, "bgctl: cannot create %s\n", dirs[i]);
            return EXIT_ERROR;
        }
    }
    char path[1024];
    bg_zk_path(&c->zk, "/active_color", path, sizeof(path));
    int rc = bg_zk_create(&c->zk, path, color, (int)strlen(color), bg_zk_acl(&c->zk), 0, NULL, 0);
    if (rc == ZNOAUTH && bg_zk_exists(&c->zk, path, 0, NULL) == ZOK)
        rc = ZNODEEXISTS; /* protected, and initialised already: nothing to do */
    if (rc == ZNODEEXISTS) {
        char *cur = get(c, "/active_color", 0, NULL, NULL);
        printf("initialised %s (active_color already set: %s)\n", c->zk.root[0] ? c->zk.root : "/",
               cur ? bg_trim(cur) : "?");
        free(cur);
        return 0;
    }
    if (rc != ZOK) {
        fprintf(stderr, "bgctl: cannot create %s: %s\n", path, why(rc));
        return EXIT_ERROR;
    }
    printf("initialised %s (active_color=%s)\n", c->zk.root[0] ? c->zk.root : "/", color);
    return 0;
}

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
    json_t *node = get_json(c, rel, 0);
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
    if (children(c, rel, &kids) != ZOK)
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
        printf("leader:       (unknown: cannot read /election: %s)\n", why(lrc));
    else
        printf("leader:       %s\n", leader ? leader : "(no controller running)");
    printf("phase:        %s\n", phase ? phase : "(no /status yet)");
    if (reason && reason[0])
        printf("reason:       %s\n", reason);
    if (json_is_true(json_object_get(status, "truncated")))
        print_omitted(status);
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
        json_object_set_new(j, "leader_error", json_sprintf("cannot read /election: %s", why(lrc)));
    if (json_is_true(json_object_get(status, "truncated"))) {
        json_object_set_new(j, "truncated", json_true());
        json_object_set(j, "omitted", json_object_get(status, "omitted"));
    }
    return j;
}

static int cmd_status(struct ctl *c)
{
    char *active = get(c, "/active_color", 0, NULL, NULL);
    json_t *status = get_json(c, "/status", 0);
    char *leader = NULL;
    int lrc = leader_id(c, &leader);
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

/* Has someone else set /active_color to another colour since mzxid? (Watched: a change wakes
 * the wait.) Says so on stderr. */
static bool changed_meanwhile(struct ctl *c, enum bg_color target, int64_t mzxid)
{
    struct Stat ast = {0};
    char *active = get(c, "/active_color", 1, &ast, NULL);
    enum bg_color now_color = active ? bg_parse_color(active, strlen(active)) : target;
    bool changed = active != NULL && ast.mzxid > mzxid && now_color != target;
    free(active);
    if (changed)
        fprintf(stderr, "bgctl: /active_color was changed to %s by someone else meanwhile\n",
                bg_color_name(now_color));
    return changed;
}

/* Read /status (watched): EXIT_CONVERGED or EXIT_BLOCKED (said) when it is over for `target`
 * at an /active_color at least as new as mzxid, else -1 with where it stands in last. */
static int read_progress(struct ctl *c, enum bg_color target, int64_t mzxid, int64_t started,
                         char *last, size_t lastlen)
{
    json_t *st = get_json(c, "/status", 1);
    const char *phase = json_string_value(json_object_get(st, "phase"));
    const char *applied = json_string_value(json_object_get(st, "applied"));
    const char *desired = json_string_value(json_object_get(st, "desired"));
    const char *reason = json_string_value(json_object_get(st, "reason"));
    int64_t seen = json_integer_value(json_object_get(st, "active_mzxid"));
    int rc = -1;
    if (phase != NULL) {
        snprintf(last, lastlen, "phase %s: %s", phase, reason ? reason : "");
        bool fresh =
            seen >= mzxid && desired != NULL && bg_parse_color(desired, strlen(desired)) == target;
        if (fresh && strcmp(phase, "converged") == 0 && applied &&
            bg_parse_color(applied, strlen(applied)) == target) {
            printf("converged on %s in %lld ms\n", bg_color_name(target),
                   (long long)(bg_now_ms() - started));
            rc = EXIT_CONVERGED;
        } else if (fresh && strcmp(phase, "blocked") == 0) {
            fprintf(stderr, "bgctl: blocked: %s\n", reason ? reason : "(no reason given)");
            rc = EXIT_BLOCKED;
        }
    }
    json_decref(st);
    return rc;
}

/* Warn (once per cause) when no controller runs, or /election cannot be read. */
static void warn_no_controller(struct ctl *c, bool *warned_no_leader, int *last_election_rc)
{
    char *l = NULL;
    int lrc = leader_id(c, &l);
    if (lrc != ZOK && lrc != *last_election_rc) {
        /* Say what failed: a ZooKeeper that stalls is not a missing controller. */
        fprintf(stderr,
                "bgctl: warning: cannot tell whether a controller is running (reading "
                "/election failed: %s); still waiting\n",
                why(lrc));
        *last_election_rc = lrc;
    } else if (lrc == ZOK && l == NULL) {
        fprintf(stderr, "bgctl: warning: no controller is running (no /election "
                        "members); still waiting\n");
        *warned_no_leader = true;
    }
    free(l);
}

/* Wait until /status has converged on `target` for an /active_color at least as new as mzxid.
 */
static int wait_converged(struct ctl *c, enum bg_color target, int64_t mzxid)
{
    int64_t deadline = bg_now_ms() + c->timeout_ms;
    bool warned_no_leader = false;
    int last_election_rc = ZOK; /* the last /election read error reported */
    char last[600] = "no /status yet";
    int64_t started = bg_now_ms();
    for (;;) {
        if (changed_meanwhile(c, target, mzxid))
            return EXIT_ERROR;
        int rc = read_progress(c, target, mzxid, started, last, sizeof(last));
        if (rc >= 0)
            return rc;
        if (!warned_no_leader && bg_now_ms() - started > 2000)
            warn_no_controller(c, &warned_no_leader, &last_election_rc);
        int64_t left = deadline - bg_now_ms();
        if (left <= 0) {
            fprintf(stderr, "bgctl: timed out after %lld ms waiting for %s (%s)\n",
                    (long long)c->timeout_ms, bg_color_name(target), last);
            return EXIT_TIMEOUT;
        }
        struct pollfd p = {.fd = c->zk.wake_fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left < 500 ? left : 500)) > 0)
            bg_zk_drain(&c->zk);
        if (bg_zk_check(&c->zk) == BG_ZK_LOST) {
            fprintf(stderr, "bgctl: lost the ZooKeeper session while waiting\n");
            return EXIT_ERROR;
        }
    }
}

static int switch_to(struct ctl *c, enum bg_color target)
{
    char path[1024];
    bg_zk_path(&c->zk, "/active_color", path, sizeof(path));
    const char *name = bg_color_name(target);
    struct Stat st;
    int rc = bg_zk_set2(&c->zk, path, name, (int)strlen(name), -1, &st);
    if (rc == ZNONODE) {
        bg_zk_ensure(&c->zk, "/blue");
        bg_zk_ensure(&c->zk, "/green");
        rc = bg_zk_create(&c->zk, path, name, (int)strlen(name), bg_zk_acl(&c->zk), 0, NULL, 0);
        if (rc == ZOK)
            rc = bg_zk_exists(&c->zk, path, 0, &st);
    }
    if (rc != ZOK) {
        fprintf(stderr, "bgctl: cannot set %s: %s\n", path, why(rc));
        return EXIT_ERROR;
    }
    printf("active_color set to %s\n", name);
    fflush(stdout);
    if (!c->wait)
        return 0;
    return wait_converged(c, target, st.mzxid);
}

static int current_color(struct ctl *c, enum bg_color *out, int64_t *mzxid)
{
    struct Stat st;
    int rc = 0;
    char *cur = get(c, "/active_color", 0, &st, &rc);
    if (cur == NULL) {
        fprintf(stderr, "bgctl: cannot read /active_color: %s\n", why(rc));
        return EXIT_ERROR;
    }
    *out = bg_parse_color(cur, strlen(cur));
    *mzxid = st.mzxid;
    if (*out == BG_COLOR_INVALID) {
        char clean[64];
        bg_sanitize(cur, strlen(cur), clean, sizeof(clean));
        fprintf(stderr, "bgctl: /active_color holds \"%s\", not blue or green\n", clean);
        free(cur);
        return EXIT_ERROR;
    }
    free(cur);
    return 0;
}

static int cmd_rollback(struct ctl *c)
{
    enum bg_color cur;
    int64_t mzxid;
    int rc = current_color(c, &cur, &mzxid);
    if (rc != 0)
        return rc;
    printf("rolling back from %s to %s\n", bg_color_name(cur), bg_color_name(bg_other_color(cur)));
    return switch_to(c, bg_other_color(cur));
}

static int cmd_wait(struct ctl *c)
{
    enum bg_color cur;
    int64_t mzxid;
    int rc = current_color(c, &cur, &mzxid);
    return rc != 0 ? rc : wait_converged(c, cur, mzxid);
}

static int cmd_switch(struct ctl *c)
{
    return switch_to(c, c->target);
}

static int cmd_history(struct ctl *c)
{
    long limit = c->limit;
    struct String_vector kids;
    int rc = children(c, "/history", &kids);
    if (rc == ZNONODE) {
        printf(c->json ? "[]\n" : "(no history)\n");
        return 0;
    }
    if (rc != ZOK) {
        fprintf(stderr, "bgctl: cannot list /history: %s\n", why(rc));
        return EXIT_ERROR;
    }
    json_t *all = json_array();
    int first = limit > 0 && kids.count > limit ? kids.count - (int)limit : 0;
    for (int i = first; i < kids.count; i++) {
        char rel[600];
        snprintf(rel, sizeof(rel), "/history/%s", kids.data[i]);
        json_t *e = get_json(c, rel, 0);
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

/* ----------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------- */

/* ----------------------------------------------------------------------------------------
 * Arguments and the command table.
 * ------------------------------------------------------------------------------------- */

static int no_args(struct ctl *c, const char *name, int nargs, char **args)
{
    (void)c;
    if (nargs == 0)
        return 0;
    fprintf(stderr, "bgctl: %s: unexpected argument \"%s\"\n", name, args[0]);
    return EXIT_USAGE;
}

static int check_init(struct ctl *c, const char *name, int nargs, char **args)
{
    if (no_args(c, name, nargs, args) != 0)
        return EXIT_USAGE;
    if (bg_parse_color(c->color, strlen(c->color)) == BG_COLOR_INVALID) {
        fprintf(stderr, "bgctl: --color must be blue or green\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int check_switch(struct ctl *c, const char *name, int nargs, char **args)
{
    (void)name;
    if (nargs == 1)
        c->target = bg_parse_color(args[0], strlen(args[0]));
    if (nargs != 1 || c->target == BG_COLOR_INVALID) {
        fprintf(stderr, "bgctl: switch needs one colour: blue or green\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* In the order of the usage text. */
static const struct command commands[] = {
    {"init",
     "  init [--color blue|green]   create /blue, /green, /election, /history and\n"
     "                              /active_color (default blue) if missing\n",
     check_init, cmd_init},
    {"status", "  status [--json]             active colour, leader, phase, every instance\n",
     no_args, cmd_status},
    {"switch",
     "  switch blue|green [--wait] [--timeout DUR]\n"
     "                              set /active_color; with --wait, wait until the\n"
     "                              controller has converged on it\n",
     check_switch, cmd_switch},
    {"rollback",
     "  rollback [--wait] [--timeout DUR]\n"
     "                              switch back to the other colour\n",
     no_args, cmd_rollback},
    {"wait", "  wait [--timeout DUR]        wait until /status has converged on /active_color\n",
     no_args, cmd_wait},
    {"history", "  history [--json] [-n N]     finished and aborted switches, newest last\n",
     no_args, cmd_history},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: bgctl [-z CONNECT] [-r ROOT] COMMAND [ARGS]\n"
               "\n"
               "Commands:\n");
    for (const struct command *k = commands; k->name != NULL; k++)
        fputs(k->help, f);
    fprintf(f, "\n"
               "Options:\n"
               "  -z, --zookeeper CONNECT  ZooKeeper connect string (default $BG_ZK or "
               "127.0.0.1:2181)\n"
               "  -r, --root ROOT          root of this service's nodes (default $BG_ROOT or /)\n"
               "  -a, --auth USER:PASS     ZooKeeper digest credentials, as the daemons'\n"
               "                           zookeeper.auth (default $BG_ZK_AUTH; prefer the\n"
               "                           variable: arguments are visible in ps)\n"
               "  -h, --help               this text\n"
               "\n"
               "DUR is like 500ms, 30s or 2m (default 60s).\n"
               "Exit status: 0 converged/ok, 1 error (e.g. ZooKeeper unreachable), 2 blocked\n"
               "(reason on stderr), 3 timed out, 64 usage error.\n");
}

static const struct command *find_command(const char *name)
{
    for (const struct command *k = commands; k->name != NULL; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* Where an option that takes a text (-z, -r, -a, --color) keeps it, or NULL. */
static const char **text_option(struct ctl *c, int o)
{
    return o == 'z'   ? &c->connect
           : o == 'r' ? &c->root
           : o == 'a' ? &c->auth
           : o == 'C' ? &c->color
                      : NULL;
}

/* One option of getopt_long: 0 to go on, else the exit status (-h, -V, a usage error). */
static int option(struct ctl *c, int o)
{
    const char **text = text_option(c, o);
    if (text != NULL) {
        *text = optarg;
        return 0;
    }
    switch (o) {
    case 'j':
        c->json = true;
        return 0;
    case 'w':
        c->wait = true;
        return 0;
    case 'n':
        c->limit = atol(optarg);
        return 0;
    case 't':
        if (bg_parse_duration(optarg, &c->timeout_ms) == 0)
            return 0;
        fprintf(stderr, "bgctl: --timeout: expected a duration like 30s, got \"%s\"\n", optarg);
        return EXIT_USAGE;
    case 'h':
        usage(stdout);
        return EXIT_CONVERGED; /* 0, but stop here */
    case 'V':
        printf("bgctl %s\n", BG_VERSION);
        return EXIT_CONVERGED;
    default:
        usage(stderr);
        return EXIT_USAGE;
    }
}

/* The options, with the environment's defaults: -1 to go on, else the exit status. */
static int parse_options(struct ctl *c, int argc, char **argv)
{
    const char *env_auth = getenv("BG_ZK_AUTH");
    c->connect = getenv("BG_ZK") ? getenv("BG_ZK") : "127.0.0.1:2181";
    c->root = getenv("BG_ROOT") ? getenv("BG_ROOT") : "/";
    c->auth = env_auth && env_auth[0] ? env_auth : NULL;
    c->color = "blue";
    c->timeout_ms = 60000;
    c->target = BG_COLOR_INVALID;
    static const struct option opts[] = {{"zookeeper", required_argument, NULL, 'z'},
                                         {"root", required_argument, NULL, 'r'},
                                         {"auth", required_argument, NULL, 'a'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"wait", no_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"color", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "z:r:a:n:hV", opts, NULL)) != -1) {
        int rc = option(c, o);
        if (rc != 0 || o == 'h' || o == 'V')
            return rc;
    }
    return -1;
}

/* ----------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bg_log_init("bgctl");
    if (getenv("BG_LOG_LEVEL") == NULL)
        bg_log_set_level(BG_LOG_ERROR);
    struct ctl c = {0};
    int rc = parse_options(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    const struct command *cmd = find_command(name);
    /* Arguments first (an unknown command's too), then whether the command exists. */
    rc = (cmd != NULL ? cmd->check : no_args)(&c, name, argc - optind - 1, argv + optind + 1);
    if (rc != 0)
        return rc;
    if (cmd == NULL) {
        fprintf(stderr, "bgctl: unknown command \"%s\"\n", name);
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *auth = c.auth;
    if (auth != NULL && (strchr(auth, ':') == NULL || auth[0] == ':' || strpbrk(auth, " \t\n"))) {
        fprintf(stderr, "bgctl: --auth / BG_ZK_AUTH: expected USER:PASS without white space\n");
        return EXIT_USAGE;
    }
    rc = connect_zk(&c, c.connect, c.root, auth);
    if (rc == 0)
        rc = cmd->run(&c);
    bg_zk_close(&c.zk);
    return rc;
}
