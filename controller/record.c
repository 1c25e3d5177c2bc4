/* record.c -- bg-controller: /status (the leader's view, written compare-and-set) and
 * /history (one entry per finished, aborted or refused switch, fallback and recovery). */
#include "ctl_internal.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_KEEP 100

/* ----------------------------------------------------------------------------------------
 * /status and /history.
 * ------------------------------------------------------------------------------------- */

/* /status as a JSON document without "updated" (set by the writer: it is left out to compare
 * contents). Its size is bounded whatever the number of instances (bg_status_instances). */
/* "canary" and "drains" (DESIGN §12): what the plan makes of /canary and /drain now. */
static void status_shaping(struct bg_ctl *c, json_t *j)
{
    if (c->desired == BG_COLOR_INVALID)
        return;
    struct bg_plan_input in = {.desired = c->desired,
                               .m = c->m,
                               .n = c->n,
                               .min_ready = c->conf->sw.min_ready,
                               .canary = c->canary};
    struct bg_shape s;
    bg_shape_init(&s, &in);
    bg_shape_status(j, &s, &in);
    bg_shape_free(&s);
    if (c->canary_problem[0])
        json_object_set_new(j, "canary_problem", bg_json_text(c->canary_problem, 0));
    if (c->drain_problem[0])
        json_object_set_new(j, "drain_problem", bg_json_text(c->drain_problem, 0));
}

json_t *bg_ctl_status_doc(struct bg_ctl *c)
{
    char since[40];
    bg_iso_time(c->phase_since_wall, since, sizeof(since));
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:s, s:I}", "desired",
                  c->desired == BG_COLOR_INVALID ? "" : bg_color_name(c->desired), "applied",
                  c->applied == BG_COLOR_INVALID ? "" : bg_color_name(c->applied), "phase",
                  bg_phase_name(c->phase), "reason", bg_json_text(c->reason, 0), "epoch",
                  (json_int_t)c->epoch, "leader", c->conf->id, "since", since, "active_mzxid",
                  (json_int_t)c->active_mzxid);
    if (j == NULL) /* the configured id is not UTF-8 (conf checks it): still write a /status */
        j = json_object();
    bg_status_instances(j, c->m, c->n, BG_STATUS_BUDGET);
    bg_status_routers(j, c->routers, c->n_routers, c->routers_waited);
    status_shaping(c, j);
    return j;
}

/* Write data to /status compare-and-set on the version we last wrote (creating it when
 * missing). A conflict is overwritten only while we provably still lead; c->deposed is set
 * when we provably do not. Returns the last ZooKeeper code (ZOK: written). */
static int status_cas(struct bg_ctl *c, const char *path, const char *data)
{
    struct Stat st;
    int rc = ZBADVERSION;
    for (int attempt = 0; attempt < 3 && (rc == ZBADVERSION || rc == ZNONODE); attempt++) {
        if (c->status_version < 0) {
            rc = bg_zk_exists(&c->zk, path, 0, &st);
            if (rc == ZNONODE) {
                rc = bg_zk_create(&c->zk, path, data, (int)strlen(data), bg_zk_acl(&c->zk), 0, NULL,
                                  0);
                if (rc == ZOK)
                    c->status_version = 0;
                continue;
            }
            if (rc != ZOK)
                break;
            c->status_version = st.version;
        }
        rc = bg_zk_set2(&c->zk, path, data, (int)strlen(data), c->status_version, &st);
        if (rc == ZOK) {
            c->status_version = st.version;
        } else if (rc == ZBADVERSION || rc == ZNONODE) {
            /* Someone else wrote it (or our own write whose answer came too late): only
             * overwrite while we are provably still the leader. */
            int lowest = bg_ctl_still_lowest(c);
            if (lowest == 0) {
                bg_warn("status_conflict", "rc=%s action=step_down", zerror(rc));
                c->deposed = true;
                break;
            }
            if (lowest < 0) {
                bg_warn("status_conflict", "rc=%s action=retry_later", zerror(rc));
                break;
            }
            bg_warn("status_conflict", "rc=%s action=reread", zerror(rc));
            c->status_version = -1;
        }
    }
    return rc;
}

void bg_ctl_write_status(struct bg_ctl *c)
{
    char path[600];
    bg_ctl_zpath(c, "/status", path, sizeof(path));
    struct Stat st;
    json_t *doc = bg_ctl_status_doc(c);
    char *body = bg_json_dumps_safe(doc, JSON_COMPACT, "status");
    if (c->last_status != NULL && strcmp(body, c->last_status) == 0 && c->status_version >= 0 &&
        bg_zk_exists(&c->zk, path, 1, &st) == ZOK) {
        free(body); /* nothing new to say (and it still exists) */
        json_decref(doc);
        c->status_dirty = false;
        return;
    }
    char now[40];
    bg_iso_time(bg_wall_ms(), now, sizeof(now));
    json_object_set_new(doc, "updated", json_string(now));
    char *data = bg_json_dumps_safe(doc, JSON_COMPACT, "status");
    json_decref(doc);
    int rc = status_cas(c, path, data);
    free(data);
    if (rc == ZOK) {
        free(c->last_status);
        c->last_status = body;
        body = NULL;
        c->status_dirty = false;
        c->status_urgent = false;
        c->status_written_ms = bg_now_ms();
        bg_zk_exists(&c->zk, path, 1, &st); /* notice if someone deletes it */
    } else {
        bg_warn("status_write_failed", "rc=%s", zerror(rc));
    }
    free(body);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void history_prune(struct bg_ctl *c, const char *dir)
{
    struct String_vector kids = {0};
    if (bg_zk_children(&c->zk, dir, 0, &kids) != ZOK)
        return;
    if (kids.count > HISTORY_KEEP) {
        /* entry-<10 digits>: lexical order is sequence order. */
        qsort(kids.data, (size_t)kids.count, sizeof(char *), cmp_name);
        for (int i = 0; i < kids.count - HISTORY_KEEP; i++) {
            char p[1200];
            snprintf(p, sizeof(p), "%s/%s", dir, kids.data[i]);
            bg_zk_delete(&c->zk, p, -1);
        }
    }
    deallocate_String_vector(&kids);
}

/* A switch's per-instance outcomes as /history keeps them: all of them while they fit in
 * BG_STATUS_BUDGET (an entry, like /status, must stay inside ZooKeeper's node limit), else the
 * first that fit; *omitted says how many were left out. Returns a new reference. */
static json_t *history_outcome(json_t *all, size_t *omitted)
{
    *omitted = 0;
    if (all == NULL)
        return json_object();
    if (json_dumpb(all, NULL, 0, JSON_COMPACT) <= BG_STATUS_BUDGET)
        return json_incref(all);
    json_t *some = json_object();
    size_t used = 0;
    const char *key;
    json_t *v;
    json_object_foreach(all, key, v)
    {
        size_t size = strlen(key) + json_dumpb(v, NULL, 0, JSON_COMPACT) + 4;
        if (*omitted == 0 && used + size <= BG_STATUS_BUDGET) {
            json_object_set(some, key, v);
            used += size;
        } else {
            (*omitted)++;
        }
    }
    return some;
}

static void history_append(struct bg_ctl *c, const char *result)
{
    char dir[600], path[700], started[40], finished[40];
    bg_zk_ensure(&c->zk, "/history");
    bg_ctl_zpath(c, "/history", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/entry-", dir);
    bg_iso_time(c->sw_started_wall, started, sizeof(started));
    bg_iso_time(bg_wall_ms(), finished, sizeof(finished));
    const char *from = c->sw_from == BG_COLOR_INVALID ? "none" : bg_color_name(c->sw_from);
    size_t omitted = 0;
    json_t *inst = history_outcome(c->sw_outcome, &omitted);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:o}", "from", from, "to",
                          bg_color_name(c->sw_to), "started", started, "finished", finished,
                          "result", result, "ms", (json_int_t)(bg_wall_ms() - c->sw_started_wall),
                          "epoch", (json_int_t)c->epoch, "leader", c->conf->id, "reason",
                          bg_json_text(c->reason, 0), "instances", inst);
    if (omitted > 0) {
        json_object_set_new(j, "truncated", json_true());
        json_object_set_new(j, "instances_omitted", json_integer((json_int_t)omitted));
    }
    char *data = bg_json_dumps_safe(j, JSON_COMPACT, "history");
    json_decref(j);
    int rc = bg_zk_create(&c->zk, path, data, (int)strlen(data), bg_zk_acl(&c->zk), ZOO_SEQUENCE,
                          NULL, 0);
    free(data);
    if (rc != ZOK)
        bg_warn("history_write_failed", "rc=%s", zerror(rc));
    history_prune(c, dir);
    bg_info("switch_end", "from=%s to=%s result=%s ms=%lld", from, bg_color_name(c->sw_to), result,
            (long long)(bg_wall_ms() - c->sw_started_wall));
    c->in_switch = false;
    json_decref(c->sw_outcome);
    c->sw_outcome = NULL;
}

void bg_ctl_history_event(struct bg_ctl *c, const char *kind, const char *color, const char *result,
                          const char *reason)
{
    char dir[600], path[700], now[40];
    bg_zk_ensure(&c->zk, "/history");
    bg_ctl_zpath(c, "/history", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/entry-", dir);
    bg_iso_time(bg_wall_ms(), now, sizeof(now));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "kind", kind,
                          "from", color, "to", color, "started", now, "finished", now, "result",
                          result, "ms", (json_int_t)0, "epoch", (json_int_t)c->epoch, "leader",
                          c->conf->id, "reason", bg_json_text(reason, 0));
    if (j == NULL)
        return;
    char *data = bg_json_dumps_safe(j, JSON_COMPACT, "history");
    json_decref(j);
    int rc = bg_zk_create(&c->zk, path, data, (int)strlen(data), bg_zk_acl(&c->zk), ZOO_SEQUENCE,
                          NULL, 0);
    free(data);
    if (rc != ZOK)
        bg_warn("history_write_failed", "rc=%s", zerror(rc));
    history_prune(c, dir);
}

void bg_ctl_outcome(struct bg_ctl *c, const struct bg_member *m, const char *what)
{
    if (!c->in_switch)
        return;
    if (c->sw_outcome == NULL)
        c->sw_outcome = json_object();
    char key[200];
    snprintf(key, sizeof(key), "%s/%s", bg_color_name(m->color), m->id);
    bg_utf8_trim_end(key);
    json_object_set_new(c->sw_outcome, key, bg_json_text(what, 0));
}

/* How long the desired colour must stay healthy before a fallback ends: 2 s after the first
 * fallback, doubled by each further one within FALLBACK_MEMORY_MS of the last, at most 5 min. */
#define FALLBACK_HOLD_MS 2000
#define FALLBACK_HOLD_MAX_MS 300000
#define FALLBACK_MEMORY_MS 60000

int64_t bg_ctl_fallback_hold(const struct bg_ctl *c)
{
    int64_t hold = FALLBACK_HOLD_MS;
    for (int i = 1; i < c->fallbacks && hold < FALLBACK_HOLD_MAX_MS; i++)
        hold *= 2;
    return hold < FALLBACK_HOLD_MAX_MS ? hold : FALLBACK_HOLD_MAX_MS;
}

static void count_fallback(struct bg_ctl *c, bool start)
{
    int64_t now = bg_now_ms();
    if (!start) {
        c->fallback_end_ms = now;
        return;
    }
    if (c->fallback_end_ms > 0 && now - c->fallback_end_ms > FALLBACK_MEMORY_MS)
        c->fallbacks = 0;
    c->fallbacks++;
}

/* Has any instance of `color` been taken out (the break step of a switch began)? */
static bool taken_out(const struct bg_ctl *c, enum bg_color color)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].color == color && c->m[i].known == BG_KNOWN_OUT)
            return true;
    return false;
}

/* History entries: a switch is "converged", "superseded", "aborted", "blocked", or "refused"
 * (the desired colour was not healthy enough; from -> to is the switch that was asked for). A
 * "fallback" goes from the colour that failed to the one that serves instead, and "recovered"
 * back. */

/* Open, close or supersede the switch record as the desired colour and phase move. */
static void track_switch(struct bg_ctl *c, const struct bg_plan *p)
{
    if (c->in_switch && c->desired != c->sw_to) {
        history_append(c, c->desired == BG_COLOR_INVALID ? "aborted" : "superseded");
    }
    if (!c->in_switch && c->desired != BG_COLOR_INVALID && c->desired != c->applied &&
        p->phase != BG_PHASE_BLOCKED) {
        c->in_switch = true;
        c->sw_from = c->applied; /* BG_COLOR_INVALID: first convergence, shown as "none" */
        c->sw_to = c->desired;
        c->sw_started_wall = bg_wall_ms();
        c->n_switches++;
        bg_info("switch_start", "from=%s to=%s instances=%zu epoch=%lld",
                c->sw_from == BG_COLOR_INVALID ? "none" : bg_color_name(c->sw_from),
                bg_color_name(c->sw_to), c->n, (long long)c->epoch);
    }
    if (p->phase == BG_PHASE_CONVERGED) {
        c->applied = c->desired;
        if (c->in_switch) {
            if (c->fallback)
                count_fallback(c, false);
            c->fallback = false; /* this entry says how it ended */
            bg_prom_hist_observe(&c->switch_seconds, (bg_wall_ms() - c->sw_started_wall) / 1e3);
            history_append(c, "converged");
        }
    } else if (p->phase == BG_PHASE_BLOCKED && c->in_switch) {
        if (p->fallback && !c->fallback)
            count_fallback(c, true);
        c->fallback = p->fallback;
        if (p->fallback && taken_out(c, c->sw_from)) {
            /* The break step had begun: the traffic falls back from the new colour. */
            c->sw_from = c->desired;
            c->sw_to = bg_other_color(c->desired);
            history_append(c, "fallback");
        } else {
            history_append(c, p->fallback ? "refused" : "blocked");
        }
    }
}

/* Outside a switch (its own entries say it), record each fallback to the other colour and the
 * recovery from it: the desired colour's application died after it had taken traffic, or a
 * blocked switch was refused for health from the start. */
static void track_fallback(struct bg_ctl *c, const struct bg_plan *p)
{
    bool recovered = c->fallback && p->phase == BG_PHASE_CONVERGED;
    if (p->fallback == c->fallback && !recovered)
        return;
    if (!p->fallback && !recovered)
        return; /* e.g. now waiting for min_healthy_time: the fallback goes on */
    c->fallback = p->fallback;
    count_fallback(c, p->fallback);
    char clean[512];
    bg_sanitize(c->reason, strlen(c->reason), clean, sizeof(clean));
    bg_warn("fallback", "state=%s desired=%s reason=\"%s\"", p->fallback ? "start" : "end",
            bg_color_name(c->desired), clean);
    if (c->in_switch)
        return;
    c->sw_started_wall = bg_wall_ms();
    if (p->fallback && c->applied != c->desired) {
        /* Never converged on the desired colour: a switch refused from the start. */
        c->sw_from = c->applied;
        c->sw_to = c->desired;
        history_append(c, "refused");
        return;
    }
    c->sw_from = p->fallback ? c->desired : bg_other_color(c->desired);
    c->sw_to = p->fallback ? bg_other_color(c->desired) : c->desired;
    history_append(c, p->fallback ? "fallback" : "recovered");
}

static void set_phase(struct bg_ctl *c, const struct bg_plan *p)
{
    if (p->phase != c->phase) {
        char clean[512];
        bg_sanitize(p->reason, strlen(p->reason), clean, sizeof(clean));
        bg_info("phase", "phase=%s desired=%s reason=\"%s\"", bg_phase_name(p->phase),
                bg_color_name(c->desired), clean);
        c->phase = p->phase;
        c->phase_since_wall = bg_wall_ms();
        c->status_dirty = true;
        c->status_urgent = true; /* bgctl wait and CI watch the phase */
    }
    if (strcmp(c->reason, p->reason) != 0) {
        bg_strlcpy_utf8(c->reason, p->reason, sizeof(c->reason));
        c->status_dirty = true;
    }
}

/* /status changed: if it is not our last write, someone overwrote it; repair it (only while
 * we are provably still the leader). */
void bg_ctl_check_status_version(struct bg_ctl *c)
{
    char path[600];
    bg_ctl_zpath(c, "/status", path, sizeof(path));
    struct Stat st;
    if (bg_zk_exists(&c->zk, path, 1, &st) != ZOK || c->status_version < 0 ||
        st.version == c->status_version)
        return;
    int lowest = bg_ctl_still_lowest(c);
    if (lowest <= 0) {
        c->deposed = lowest == 0; /* unknown: the next write finds the conflict again */
        return;
    }
    bg_warn("status_overwritten", "version=%d ours=%d action=rewrite", st.version,
            c->status_version);
    c->status_version = st.version;
    bg_free(&c->last_status);
    c->status_dirty = true;
    c->status_urgent = true;
}

void bg_ctl_record_plan(struct bg_ctl *c, const struct bg_plan *p)
{
    set_phase(c, p); /* first: a history entry carries the outcome's reason */
    if (c->routers_waited != p->routers_waited) {
        c->routers_waited = p->routers_waited;
        c->status_dirty = true;
    }
    track_switch(c, p);
    track_fallback(c, p);
}
