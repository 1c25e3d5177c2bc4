/* bgctl_shape.c -- bgctl's traffic shaping (DESIGN §12): canary, drain, undrain, each with a
 * --wait until /status shows it carried out (or refused). */
#include "bgctl.h"
#include "json.h"
#include "traffic.h"

#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * Waiting on /status
 * ------------------------------------------------------------------------------------- */

/* What a wait looks for in /status: EXIT_CONVERGED or EXIT_BLOCKED (said) when it is over,
 * else -1 with where it stands in last. */
typedef int (*done_fn)(struct ctl *c, json_t *status, char *last, size_t lastlen);

static int wait_status(struct ctl *c, done_fn done, const char *what)
{
    int64_t started = bg_now_ms(), deadline = started + c->timeout_ms;
    char last[600] = "no /status yet";
    for (;;) {
        json_t *st = bgctl_get_json(c, "/status", 1);
        int rc = st ? done(c, st, last, sizeof(last)) : -1;
        json_decref(st);
        if (rc == EXIT_CONVERGED)
            printf("%s in %lld ms\n", what, (long long)(bg_now_ms() - started));
        if (rc >= 0)
            return rc;
        int64_t left = deadline - bg_now_ms();
        if (left <= 0) {
            fprintf(stderr, "bgctl: timed out after %lld ms waiting: %s\n",
                    (long long)c->timeout_ms, last);
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

static const char *text(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

/* Phase and reason into last; EXIT_BLOCKED (said) when blocked for a reason that is ours. */
static bool progress(json_t *st, char *last, size_t lastlen)
{
    snprintf(last, lastlen, "phase %s: %s", text(st, "phase"), text(st, "reason"));
    return strcmp(text(st, "phase"), "converged") == 0;
}

/* ----------------------------------------------------------------------------------------
 * canary
 * ------------------------------------------------------------------------------------- */

/* Does /canary say "colour pct" (watched)? */
static bool canary_is(struct ctl *c, int pct)
{
    char want[32];
    snprintf(want, sizeof(want), "%s %d", bg_color_name(c->target), pct);
    char *cur = bgctl_get(c, "/canary", 1, NULL, NULL);
    bool ours = cur != NULL && strcmp(bg_trim(cur), want) == 0;
    free(cur);
    return ours;
}

static int canary_done(struct ctl *c, json_t *st, char *last, size_t lastlen)
{
    bool converged = progress(st, last, lastlen);
    json_t *cn = json_object_get(st, "canary");
    if (json_object_get(st, "canary_problem")) {
        fprintf(stderr, "bgctl: blocked: %s\n", text(st, "canary_problem"));
        return EXIT_BLOCKED;
    }
    if (c->abort_canary)
        return converged && !json_is_true(json_object_get(cn, "active")) ? EXIT_CONVERGED : -1;
    if (c->steps != NULL && !canary_is(c, c->percent)) {
        fprintf(stderr, "bgctl: /canary was changed by someone else (aborted?): stopping\n");
        return EXIT_ERROR; /* nothing more is touched; canary_steps says blocked */
    }
    bool ours = json_is_true(json_object_get(cn, "active")) &&
                strcmp(text(cn, "color"), bg_color_name(c->target)) == 0 &&
                json_integer_value(json_object_get(cn, "percent")) == c->percent;
    if (ours && json_object_get(cn, "note")) {
        fprintf(stderr, "bgctl: blocked: %s\n", text(cn, "note"));
        return EXIT_BLOCKED;
    }
    if (ours && strcmp(text(st, "phase"), "blocked") == 0) {
        fprintf(stderr, "bgctl: blocked: %s\n", text(st, "reason"));
        return EXIT_BLOCKED;
    }
    return ours && converged ? EXIT_CONVERGED : -1;
}

/* ----------------------------------------------------------------------------------------
 * canary --steps: walked by bgctl itself (stopping it leaves the canary at its step)
 * ------------------------------------------------------------------------------------- */

/* Write /canary = "colour pct". Returns ZOK or the error (said). */
static int set_canary(struct ctl *c, int pct)
{
    char path[1024], data[32];
    bg_zk_path(&c->zk, "/canary", path, sizeof(path));
    snprintf(data, sizeof(data), "%s %d", bg_color_name(c->target), pct);
    int rc = bg_zk_set2(&c->zk, path, data, (int)strlen(data), -1, NULL);
    if (rc == ZNONODE)
        rc = bg_zk_create(&c->zk, path, data, (int)strlen(data), bg_zk_acl(&c->zk), 0, NULL, 0);
    if (rc != ZOK)
        fprintf(stderr, "bgctl: cannot set %s: %s\n", path, bgctl_why(rc));
    return rc;
}

/* Stop the walk: the canary colour goes out (delete /canary), exit 2 with why. */
static int steps_abort(struct ctl *c, const char *why)
{
    char path[1024];
    bg_zk_path(&c->zk, "/canary", path, sizeof(path));
    bg_zk_delete(&c->zk, path, -1);
    fprintf(stderr, "bgctl: canary stopped, all traffic back to the active colour: %s\n", why);
    return EXIT_BLOCKED;
}

/* Hold step pct for c->every_ms, watching: 0 when it held, else the exit status (said). The
 * health gate (DESIGN §11): any canary-colour instance unhealthy, or the phase blocked, stops
 * the walk. Someone else changing /canary (an --abort) ends it without touching anything. */
static int steps_hold(struct ctl *c, int pct)
{
    int64_t until = bg_now_ms() + c->every_ms;
    while (bg_now_ms() < until) {
        if (!canary_is(c, pct)) {
            fprintf(stderr, "bgctl: /canary was changed by someone else (aborted?): stopping\n");
            return EXIT_BLOCKED;
        }
        json_t *st = bgctl_get_json(c, "/status", 1);
        size_t k;
        json_t *v;
        char why[300] = "";
        json_array_foreach(json_object_get(st, "instances"), k, v)
        {
            if (strcmp(text(v, "color"), bg_color_name(c->target)) == 0 &&
                json_is_false(json_object_get(v, "healthy")))
                snprintf(why, sizeof(why), "%s is unhealthy: %s", text(v, "id"), text(v, "check"));
        }
        if (why[0] == '\0' && strcmp(text(st, "phase"), "blocked") == 0)
            snprintf(why, sizeof(why), "blocked: %s", text(st, "reason"));
        json_decref(st);
        if (why[0] != '\0')
            return steps_abort(c, why);
        struct pollfd p = {.fd = c->zk.wake_fd, .events = POLLIN};
        int64_t left = until - bg_now_ms();
        if (left > 0 && poll(&p, 1, (int)(left < 500 ? left : 500)) > 0)
            bg_zk_drain(&c->zk);
        if (bg_zk_check(&c->zk) == BG_ZK_LOST) {
            fprintf(stderr, "bgctl: lost the ZooKeeper session while holding a step\n");
            return EXIT_ERROR;
        }
    }
    return 0;
}

static int canary_steps(struct ctl *c)
{
    char *active = bgctl_get(c, "/active_color", 0, NULL, NULL);
    bool same = active && bg_parse_color(active, strlen(active)) == c->target;
    free(active);
    if (same) {
        fprintf(stderr, "bgctl: %s is the active colour: a canary goes to the other one\n",
                bg_color_name(c->target));
        return EXIT_USAGE;
    }
    for (const char *p = c->steps; *p;) {
        char *end;
        int pct = (int)strtol(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
        if (set_canary(c, pct) != ZOK)
            return EXIT_ERROR;
        printf("canary step: %s %d %%\n", bg_color_name(c->target), pct);
        fflush(stdout);
        c->percent = pct;
        int rc = wait_status(c, canary_done, "step serving");
        if (rc == EXIT_ERROR && !canary_is(c, pct))
            return EXIT_BLOCKED; /* aborted from elsewhere: said by canary_done */
        if (rc == EXIT_BLOCKED || rc == EXIT_TIMEOUT)
            return steps_abort(c, rc == EXIT_BLOCKED ? "the step was blocked" : "timed out");
        if (rc == 0)
            rc = steps_hold(c, pct);
        if (rc != 0)
            return rc;
    }
    printf("promoting %s\n", bg_color_name(c->target));
    fflush(stdout);
    c->wait = true;
    return bgctl_cmd_switch(c);
}

int bgctl_cmd_canary(struct ctl *c)
{
    if (c->steps != NULL)
        return canary_steps(c);
    char path[1024];
    bg_zk_path(&c->zk, "/canary", path, sizeof(path));
    int rc;
    if (c->abort_canary) {
        rc = bg_zk_delete(&c->zk, path, -1);
        if (rc != ZOK && rc != ZNONODE) {
            fprintf(stderr, "bgctl: cannot delete %s: %s\n", path, bgctl_why(rc));
            return EXIT_ERROR;
        }
        printf("canary aborted%s\n", rc == ZNONODE ? " (there was none)" : "");
    } else {
        char *active = bgctl_get(c, "/active_color", 0, NULL, NULL);
        bool same = active && bg_parse_color(active, strlen(active)) == c->target;
        free(active);
        if (same) {
            fprintf(stderr, "bgctl: %s is the active colour: a canary goes to the other one\n",
                    bg_color_name(c->target));
            return EXIT_USAGE;
        }
        char data[32];
        snprintf(data, sizeof(data), "%s %d", bg_color_name(c->target), c->percent);
        rc = bg_zk_set2(&c->zk, path, data, (int)strlen(data), -1, NULL);
        if (rc == ZNONODE)
            rc = bg_zk_create(&c->zk, path, data, (int)strlen(data), bg_zk_acl(&c->zk), 0, NULL, 0);
        if (rc != ZOK) {
            fprintf(stderr, "bgctl: cannot set %s: %s\n", path, bgctl_why(rc));
            return EXIT_ERROR;
        }
        printf("canary set: %s\n", data);
    }
    fflush(stdout);
    if (!c->wait)
        return 0;
    return wait_status(c, canary_done, c->abort_canary ? "canary gone" : "canary serving");
}

/* ----------------------------------------------------------------------------------------
 * drain, undrain
 * ------------------------------------------------------------------------------------- */

/* The /status entry of instance c->id (NULL when it lists none). */
static json_t *instance(struct ctl *c, json_t *st)
{
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(st, "instances"), k, v)
    {
        if (strcmp(text(v, "id"), c->id) == 0)
            return v;
    }
    return NULL;
}

static int drain_done(struct ctl *c, json_t *st, char *last, size_t lastlen)
{
    progress(st, last, lastlen);
    if (json_object_get(st, "drain_problem")) {
        fprintf(stderr, "bgctl: blocked: %s\n", text(st, "drain_problem"));
        return EXIT_BLOCKED;
    }
    size_t k;
    json_t *d;
    json_array_foreach(json_object_get(st, "drains"), k, d)
    {
        if (strcmp(text(d, "id"), c->id) == 0 && strcmp(text(d, "drain"), "refused") == 0) {
            fprintf(stderr, "bgctl: blocked: drain of %s refused: %s\n", c->id, text(st, "reason"));
            return EXIT_BLOCKED;
        }
    }
    json_t *v = instance(c, st);
    if (v == NULL) {
        snprintf(last, lastlen, "%s is not registered (the drain applies when it registers)",
                 c->id);
        return -1;
    }
    bool out = strcmp(text(v, "status"), "OUT_OF_SERVICE") == 0 &&
               !json_is_false(json_object_get(v, "confirmed"));
    return json_is_true(json_object_get(v, "drained")) && out ? EXIT_CONVERGED : -1;
}

static int undrain_done(struct ctl *c, json_t *st, char *last, size_t lastlen)
{
    bool converged = progress(st, last, lastlen);
    json_t *v = instance(c, st);
    if (v == NULL || json_is_true(json_object_get(v, "drained")))
        return -1;
    if (strcmp(text(st, "phase"), "blocked") == 0) {
        fprintf(stderr, "bgctl: blocked: %s\n", text(st, "reason"));
        return EXIT_BLOCKED;
    }
    return converged ? EXIT_CONVERGED : -1;
}

int bgctl_cmd_drain(struct ctl *c)
{
    char rel[300], path[1200];
    snprintf(rel, sizeof(rel), "/drain/%s", c->id);
    bg_zk_path(&c->zk, rel, path, sizeof(path));
    if (bg_zk_ensure(&c->zk, "/drain") != 0) {
        fprintf(stderr, "bgctl: cannot create /drain\n");
        return EXIT_ERROR;
    }
    const char *reason = c->reason ? c->reason : "";
    int rc = bg_zk_create(&c->zk, path, reason, (int)strlen(reason), bg_zk_acl(&c->zk), 0, NULL, 0);
    if (rc == ZNODEEXISTS)
        rc = bg_zk_set2(&c->zk, path, reason, (int)strlen(reason), -1, NULL);
    if (rc != ZOK) {
        fprintf(stderr, "bgctl: cannot set %s: %s\n", path, bgctl_why(rc));
        return EXIT_ERROR;
    }
    printf("drain set: %s\n", c->id);
    fflush(stdout);
    return c->wait ? wait_status(c, drain_done, "drained") : 0;
}

int bgctl_cmd_undrain(struct ctl *c)
{
    char rel[300], path[1200];
    snprintf(rel, sizeof(rel), "/drain/%s", c->id);
    bg_zk_path(&c->zk, rel, path, sizeof(path));
    int rc = bg_zk_delete(&c->zk, path, -1);
    if (rc != ZOK && rc != ZNONODE) {
        fprintf(stderr, "bgctl: cannot delete %s: %s\n", path, bgctl_why(rc));
        return EXIT_ERROR;
    }
    printf("drain lifted: %s%s\n", c->id, rc == ZNONODE ? " (it was not drained)" : "");
    fflush(stdout);
    return c->wait ? wait_status(c, undrain_done, "back in service") : 0;
}
