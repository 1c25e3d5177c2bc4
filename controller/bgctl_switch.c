/* bgctl_switch.c -- bgctl's writes and its wait: init, switch, rollback, wait (until /status has
 * converged on /active_color, or is blocked). */
#include "bgctl.h"
#include "json.h"

#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bgctl_cmd_init(struct ctl *c)
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
        char *cur = bgctl_get(c, "/active_color", 0, NULL, NULL);
        printf("initialised %s (active_color already set: %s)\n", c->zk.root[0] ? c->zk.root : "/",
               cur ? bg_trim(cur) : "?");
        free(cur);
        return 0;
    }
    if (rc != ZOK) {
        fprintf(stderr, "bgctl: cannot create %s: %s\n", path, bgctl_why(rc));
        return EXIT_ERROR;
    }
    printf("initialised %s (active_color=%s)\n", c->zk.root[0] ? c->zk.root : "/", color);
    return 0;
}

/* Has someone else set /active_color to another colour since mzxid? (Watched: a change wakes
 * the wait.) Says so on stderr. */
static bool changed_meanwhile(struct ctl *c, enum bg_color target, int64_t mzxid)
{
    struct Stat ast = {0};
    char *active = bgctl_get(c, "/active_color", 1, &ast, NULL);
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
    json_t *st = bgctl_get_json(c, "/status", 1);
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
    int lrc = bgctl_leader_id(c, &l);
    if (lrc != ZOK && lrc != *last_election_rc) {
        /* Say what failed: a ZooKeeper that stalls is not a missing controller. */
        fprintf(stderr,
                "bgctl: warning: cannot tell whether a controller is running (reading "
                "/election failed: %s); still waiting\n",
                bgctl_why(lrc));
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

/* A switch ends any canary (promotion: the colour is now active anyway). /active_color is set
 * first, so the controller never sees the canary gone while the old colour is still active
 * (that would take the canary colour out just before making it UP). */
static void clear_canary(struct ctl *c)
{
    char path[1024];
    bg_zk_path(&c->zk, "/canary", path, sizeof(path));
    int rc = bg_zk_delete(&c->zk, path, -1);
    if (rc == ZOK)
        printf("canary cleared (/canary deleted)\n");
    else if (rc != ZNONODE)
        fprintf(stderr, "bgctl: warning: cannot delete %s: %s\n", path, bgctl_why(rc));
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
        fprintf(stderr, "bgctl: cannot set %s: %s\n", path, bgctl_why(rc));
        return EXIT_ERROR;
    }
    printf("active_color set to %s\n", name);
    clear_canary(c);
    fflush(stdout);
    if (!c->wait)
        return 0;
    return wait_converged(c, target, st.mzxid);
}

static int current_color(struct ctl *c, enum bg_color *out, int64_t *mzxid)
{
    struct Stat st;
    int rc = 0;
    char *cur = bgctl_get(c, "/active_color", 0, &st, &rc);
    if (cur == NULL) {
        fprintf(stderr, "bgctl: cannot read /active_color: %s\n", bgctl_why(rc));
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

int bgctl_cmd_rollback(struct ctl *c)
{
    enum bg_color cur;
    int64_t mzxid;
    int rc = current_color(c, &cur, &mzxid);
    if (rc != 0)
        return rc;
    printf("rolling back from %s to %s\n", bg_color_name(cur), bg_color_name(bg_other_color(cur)));
    return switch_to(c, bg_other_color(cur));
}

int bgctl_cmd_wait(struct ctl *c)
{
    enum bg_color cur;
    int64_t mzxid;
    int rc = current_color(c, &cur, &mzxid);
    return rc != 0 ? rc : wait_converged(c, cur, mzxid);
}

int bgctl_cmd_switch(struct ctl *c)
{
    return switch_to(c, c->target);
}
