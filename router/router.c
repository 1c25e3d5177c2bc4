/* router.c -- bg-router: the main loop. Observe (the members of /blue and /green and the
 * leader's /status, watched), decide (route.c's desired set), act (nginx.c, one change at a
 * time: changes seen meanwhile are batched into the next), publish (/routers/<id>). */
#include "json.h"
#include "log.h"
#include "router.h"
#include "sig.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER_MAX_BYTES (64 * 1024)
#define STATUS_MAX_BYTES (1024 * 1024)
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000

/* ----------------------------------------------------------------------------------------
 * Observe: read everything again whenever a watch fired (few nodes; reads are bounded).
 * ------------------------------------------------------------------------------------- */

static void clear_members(struct bg_router *r)
{
    for (size_t i = 0; i < r->n; i++)
        bg_route_member_free(&r->m[i]);
    free(r->m);
    r->m = NULL;
    r->n = 0;
}

static void clear_view(struct bg_router *r)
{
    clear_members(r);
    bg_route_up_free(r->up, r->n_up);
    r->up = NULL;
    r->n_up = 0;
}

/* The members of one colour, appended to r->m. Returns ZOK or the ZooKeeper error. */
static int read_color(struct bg_router *r, enum bg_color color, char *buf)
{
    char dir[600];
    bg_zk_path(&r->zk, color == BG_BLUE ? "/blue" : "/green", dir, sizeof(dir));
    struct String_vector kids = {0};
    int rc = bg_zk_children(&r->zk, dir, 1, &kids);
    if (rc == ZNONODE) /* no such colour yet: its creation wakes us */
        return bg_zk_exists(&r->zk, dir, 1, NULL) == ZNONODE ? ZOK : ZCONNECTIONLOSS;
    if (rc != ZOK)
        return rc;
    r->m = bg_xrealloc(r->m, (r->n + (size_t)kids.count + 1) * sizeof(*r->m));
    for (int i = 0; i < kids.count && rc == ZOK; i++) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", dir, kids.data[i]);
        int len = MEMBER_MAX_BYTES;
        struct Stat st;
        rc = bg_zk_get(&r->zk, path, 1, buf, &len, &st);
        if (rc == ZNONODE) { /* gone meanwhile: its parent's watch fired */
            rc = ZOK;
            continue;
        }
        if (rc == ZOK)
            bg_route_member_parse(buf,
                                  len > 0 && st.dataLength <= MEMBER_MAX_BYTES ? (size_t)len : 0,
                                  color, kids.data[i], &r->m[r->n++]);
    }
    deallocate_String_vector(&kids);
    return rc;
}

/* The leader's /status: which instances are UP. A missing or unreadable /status is no UP
 * instance (the router then changes nothing: see act). */
static int read_status(struct bg_router *r, char *buf)
{
    char path[600];
    bg_zk_path(&r->zk, "/status", path, sizeof(path));
    int len = STATUS_MAX_BYTES;
    struct Stat st;
    int rc = bg_zk_get(&r->zk, path, 1, buf, &len, &st);
    if (rc == ZNONODE)
        return bg_zk_exists(&r->zk, path, 1, NULL) == ZNONODE ? ZOK : ZCONNECTIONLOSS;
    if (rc != ZOK)
        return rc;
    char why[160] = "";
    if (bg_route_status_parse(buf, len > 0 ? (size_t)len : 0, &r->up, &r->n_up,
                              &r->status_truncated, why, sizeof(why)) != BG_OK)
        bg_warn("status_unreadable", "path=%s reason=\"%s\"", path, why);
    return ZOK;
}

/* Leave out of the desired set what this kind of balancer cannot serve (kind haproxy: an address
 * that is not an IP literal); their reasons are appended to note (used bytes of it). */
static size_t drop_unusable(struct bg_router *r, char *note, size_t notelen, size_t used)
{
    size_t keep = 0;
    for (size_t i = 0; i < r->desired.n; i++) {
        struct bg_route_server *s = &r->desired.s[i];
        char why[BG_ROUTE_WHY_MAX] = "";
        if (r->lb->ops->usable == NULL || r->lb->ops->usable(s, why, sizeof(why))) {
            r->desired.s[keep++] = *s;
            continue;
        }
        r->dropped++;
        if (used < notelen - 1)
            used += (size_t)snprintf(note + used, notelen - used, "%s%s/%s: %s", used ? "; " : "",
                                     bg_color_name(s->color), s->id, why);
        free(s->id);
        free(s->address);
    }
    r->desired.n = keep;
    return used;
}

/* Leave out what the balancer cannot serve, and log the instances UP but left out (once per
 * different list). */
static void note_dropped(struct bg_router *r)
{
    char note[512] = "";
    size_t used = drop_unusable(r, note, sizeof(note), 0);
    for (size_t i = 0; i < r->n; i++) {
        const struct bg_route_member *m = &r->m[i];
        bool up = false;
        for (size_t j = 0; j < r->n_up && !up; j++)
            up = r->up[j].color == m->color && strcmp(r->up[j].id, m->id) == 0;
        if (!up || m->address != NULL || used >= sizeof(note) - 1)
            continue;
        used += (size_t)snprintf(note + used, sizeof(note) - used, "%s%s/%s: %s", used ? "; " : "",
                                 bg_color_name(m->color), m->id, m->why);
    }
    if (strcmp(note, r->dropped_note) != 0 && note[0] != '\0')
        bg_warn("instances_dropped", "count=%zu reason=\"%s\"", r->dropped, note);
    snprintf(r->dropped_note, sizeof(r->dropped_note), "%s", note);
}

/* Read again what changed: a change of /status alone (the leader writes it at every step of a
 * switch: its data changes are counted apart, zk.quiet_path) re-reads /status only; any other
 * event (members come or go, an address changes, /status appears) everything. */
static void observe(struct bg_router *r)
{
    unsigned ev = atomic_load(&r->zk.node_events);
    unsigned quiet = atomic_load(&r->zk.quiet_events);
    if (ev == r->seen_events && quiet == r->seen_quiet && !r->need_read)
        return;
    bool members = ev != r->seen_events || r->need_read;
    r->seen_events = ev;
    r->seen_quiet = quiet;
    if (members)
        clear_members(r);
    bg_route_up_free(r->up, r->n_up);
    r->up = NULL;
    r->n_up = 0;
    char *buf = bg_xmalloc(STATUS_MAX_BYTES);
    int rc = members ? read_color(r, BG_BLUE, buf) : ZOK;
    if (rc == ZOK && members)
        rc = read_color(r, BG_GREEN, buf);
    if (rc == ZOK)
        rc = read_status(r, buf);
    free(buf);
    r->need_read = rc != ZOK;
    if (rc != ZOK) {
        bg_warn("zk_read_failed", "rc=%s", zerror(rc));
        return; /* the desired set stays as it was */
    }
    r->n_reads++;
    r->n_member_reads += members;
    bg_route_set_free(&r->desired);
    bg_route_desired(r->m, r->n, r->up, r->n_up, &r->desired, &r->dropped);
    note_dropped(r);
}

/* ----------------------------------------------------------------------------------------
 * Publish /routers/<id>: what the balancer serves now (ephemeral).
 * ------------------------------------------------------------------------------------- */

static char *router_json(const struct bg_router *r)
{
    json_t *serving = json_array();
    for (size_t i = 0; i < r->serving.n; i++)
        json_array_append_new(
            serving, json_pack("{s:s, s:s, s:s}", "color", bg_color_name(r->serving.s[i].color),
                               "id", r->serving.s[i].id, "address", r->serving.s[i].address));
    char now[40];
    bg_iso_time(bg_wall_ms(), now, sizeof(now));
    json_t *j =
        json_pack("{s:s, s:s, s:o, s:I, s:b, s:o, s:o, s:s}", "id", r->conf->id, "kind",
                  r->lb->ops->kind, "serving", serving, "generation", (json_int_t)r->generation,
                  "pending", r->retry || r->lb->ops->busy(r->lb), "last_error",
                  bg_json_text(r->last_error, 0), "note", bg_json_text(r->note, 0), "updated", now);
    return bg_json_dumps_take(j, JSON_COMPACT, "router");
}

/* Our node exists but another session holds it (a previous run of this router whose session
 * has not expired yet, or a second router with the same id): watch it, try again in 1 s. */
static void node_taken(struct bg_router *r)
{
    bg_zk_exists(&r->zk, r->node, 1, NULL); /* its deletion wakes us */
    r->publish_at_ms = bg_now_ms() + 1000;
    if (!r->node_taken)
        bg_warn("router_node_taken",
                "node=%s reason=\"held by another session (a previous run not yet expired, or "
                "another router with this id): retried every second\"",
                r->node);
    r->node_taken = true;
}

static void publish(struct bg_router *r)
{
    if (!r->publish_dirty || bg_zk_check(&r->zk) != BG_ZK_CONNECTED ||
        bg_now_ms() < r->publish_at_ms)
        return;
    char *data = router_json(r);
    int64_t sid = bg_zk_session(&r->zk);
    int rc;
    if (r->node_session == sid) {
        rc = bg_zk_set2(&r->zk, r->node, data, (int)strlen(data), -1, NULL);
    } else {
        rc = bg_zk_ensure(&r->zk, "/routers");
        if (rc == ZOK)
            rc = bg_zk_create(&r->zk, r->node, data, (int)strlen(data), bg_zk_acl(&r->zk),
                              ZOO_EPHEMERAL, NULL, 0);
        if (rc == ZOK) {
            r->node_session = sid;
            r->node_taken = false;
        }
    }
    free(data);
    if (rc == ZOK)
        r->publish_dirty = false;
    else if (rc == ZNODEEXISTS)
        node_taken(r);
    else
        bg_warn("publish_failed", "node=%s rc=%s", r->node, zerror(rc));
    if (rc == ZNONODE)
        r->node_session = 0; /* deleted by hand: create it again */
}

/* ----------------------------------------------------------------------------------------
 * Act: start a change when the desired set differs from what is served, drive it, record it.
 * ------------------------------------------------------------------------------------- */

static void change_over(struct bg_router *r, int64_t now)
{
    const struct bg_change *x = &r->lb->c;
    char event[40]; /* nginx_applied, haproxy_apply_failed... */
    r->n_applies++;
    bg_prom_hist_observe(&r->apply_seconds, x->ms / 1e3);
    r->publish_dirty = true;
    if (x->ok) {
        bg_route_set_copy(&r->serving, &x->pending);
        r->generation = x->gen;
        r->retry = false;
        r->failures = 0;
        r->last_error[0] = '\0';
        snprintf(event, sizeof(event), "%s_applied", r->lb->ops->kind);
        bg_info(event, "generation=%lld servers=%zu ms=%lld confirmed=%s", (long long)x->gen,
                r->serving.n, (long long)x->ms, x->confirmed ? "true" : "false (no nginx.confirm)");
        return;
    }
    r->n_apply_failures++;
    r->failures++;
    r->retry = true;
    int shift = r->failures < 6 ? r->failures - 1 : 5;
    int64_t delay = (int64_t)RETRY_FIRST_MS << shift;
    r->retry_at_ms = now + (delay < RETRY_MAX_MS ? delay : RETRY_MAX_MS);
    snprintf(r->last_error, sizeof(r->last_error), "%s", x->error);
    snprintf(event, sizeof(event), "%s_apply_failed", r->lb->ops->kind);
    bg_warn(event, "generation=%lld retry_in_ms=%lld reason=\"%s\"", (long long)x->gen,
            (long long)(r->retry_at_ms - now), x->error);
}

/* Drive the running change; when it is over, what changed meanwhile starts at once (not a loop
 * turn later). */
static void act(struct bg_router *r, int64_t now)
{
    struct bg_balancer *lb = r->lb;
    if (lb->ops->busy(lb)) {
        if (!lb->ops->step(lb, now))
            return;
        change_over(r, now);
    }
    if (r->n_reads == 0)
        return; /* nothing known yet */
    bool differs = !bg_route_set_equal(&r->desired, &r->serving);
    if (r->desired.n == 0) {
        /* Nothing UP (no /status yet, no leader, or addresses all unusable): nginx keeps what
         * it serves rather than refusing every request. */
        const char *note = "no instance is UP with a usable address: the file is left as it is";
        if (strcmp(r->note, note) != 0) {
            snprintf(r->note, sizeof(r->note), "%s", note);
            r->publish_dirty = true;
            bg_warn("nothing_to_serve", "reason=\"%s\"", note);
        }
        return;
    }
    if (r->note[0] != '\0') {
        r->note[0] = '\0';
        r->publish_dirty = true;
    }
    /* A failed change is tried again after its backoff; a different set at once (what
     * failed may have been one bad instance). */
    bool same_as_failed = r->retry && bg_route_set_equal(&r->desired, &lb->c.pending);
    if (!differs && !r->retry && lb->ops->tick != NULL && r->generation != 0)
        if (!r->reapply && lb->ops->tick(lb, &r->serving, now)) {
            r->reapply = true;
            r->n_reapplies++;
        }
    if (!(differs || r->retry || r->reapply) || (same_as_failed && now < r->retry_at_ms))
        return;
    r->reapply = false;
    int64_t gen = bg_wall_ms(); /* unique across restarts: a marker is never mistaken */
    if (gen <= r->last_gen)
        gen = r->last_gen + 1;
    r->last_gen = gen;
    if (lb->ops->start(lb, &r->desired, gen, now) != BG_OK)
        change_over(r, now);
    else
        r->publish_dirty = true; /* "pending": a change runs (a hanging reload shows) */
}

/* ----------------------------------------------------------------------------------------
 * Init, the main loop, free.
 * ------------------------------------------------------------------------------------- */

static bool zk_wait_hook(void *ctx)
{
    struct bg_router *r = ctx;
    bg_httpd_run(&r->http);
    return !r->stop;
}

int bg_router_init(struct bg_router *r, struct bg_router_conf *conf)
{
    memset(r, 0, sizeof(*r));
    r->conf = conf;
    r->http.fd = -1;
    r->zk.wake_fd = -1; /* bg_zk_close after a failed init must not close fd 0 */
    r->need_read = true;
    r->publish_dirty = true;
    bg_prom_hist_init(&r->apply_seconds, bg_prom_latency_le, bg_prom_latency_n);
    r->lb = conf->kind == BG_ROUTER_HAPROXY ? bg_haproxy_make(conf) : bg_nginx_make(conf);
    r->lb->wait_hook = zk_wait_hook; /* /health answered while HAProxy is slow to */
    r->lb->wait_ctx = r;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (bg_router_http_start(r) != BG_OK)
        return BG_EINVAL;
    if (bg_zk_open(&r->zk, conf->zk.connect, conf->zk.root, conf->zk.session_timeout_ms,
                   conf->zk.auth) != 0)
        return BG_EZK;
    bg_zk_set_wait_hook(&r->zk, zk_wait_hook, r);
    bg_zk_path(&r->zk, "/status", r->zk.quiet_path, sizeof(r->zk.quiet_path)); /* see observe */
    char rel[300];
    snprintf(rel, sizeof(rel), "/routers/%s", conf->id);
    bg_zk_path(&r->zk, rel, r->node, sizeof(r->node));
    if (conf->kind == BG_ROUTER_HAPROXY)
        bg_info("start", "id=%s kind=haproxy zk=%s root=%s socket=%s backend=%s", conf->id,
                conf->zk.connect, conf->zk.root, conf->haproxy.socket, conf->haproxy.backend);
    else
        bg_info("start", "id=%s kind=nginx zk=%s root=%s file=%s upstream=%s confirm=%s", conf->id,
                conf->zk.connect, conf->zk.root, conf->nginx.file, conf->nginx.upstream,
                conf->nginx.confirm ? conf->nginx.confirm : "none");
    return BG_OK;
}

static int loop_timeout(struct bg_router *r, int64_t now)
{
    int64_t t = 250;
    int64_t d = r->lb->ops->deadline(r->lb, now);
    if (!r->lb->ops->busy(r->lb) && r->retry)
        d = r->retry_at_ms;
    if (d != INT64_MAX)
        t = d <= now ? 0 : (d - now < t ? d - now : t);
    int64_t h = bg_httpd_timeout(&r->http);
    if (h >= 0 && h < t)
        t = h;
    return (int)t;
}

/* One turn: the session, observe, act, publish. */
static void turn(struct bg_router *r)
{
    bg_zk_tick(&r->zk);
    enum bg_zk_health h = bg_zk_check(&r->zk);
    if (h == BG_ZK_LOST) {
        bg_warn("zk_session_lost", "action=reopen");
        bg_zk_reopen(&r->zk);
        r->node_session = 0;
        r->need_read = true;
        r->publish_dirty = true;
    } else if (h == BG_ZK_CONNECTED) {
        observe(r);
    }
    /* While disconnected the last desired set stands: what nginx serves is not changed on a
     * view that may be stale, but a change already started is finished. */
    act(r, bg_now_ms());
    if (h == BG_ZK_CONNECTED)
        publish(r);
}

int bg_router_run(struct bg_router *r)
{
    bg_sig_init(&r->stop, &r->zk);
    while (!r->stop) {
        turn(r);
        bg_httpd_run(&r->http);
        struct pollfd pfd[8] = {{.fd = r->zk.wake_fd, .events = POLLIN},
                                {.fd = r->http.fd, .events = POLLIN}};
        int n = r->lb->ops->fds(r->lb, pfd, 2, 8);
        int rc = poll(pfd, (nfds_t)n, loop_timeout(r, bg_now_ms()));
        if (rc < 0 && errno != EINTR) {
            bg_error("poll_failed", "errno=%d", errno);
            break;
        }
        if (pfd[0].revents)
            bg_zk_drain(&r->zk);
        bg_httpd_run(&r->http);
    }
    bg_info("stopping", "reason=signal signal=%s", bg_sig_name(r->stop));
    return 0;
}

void bg_router_free(struct bg_router *r)
{
    bg_sig_finish(); /* before zk goes: a late signal must not wake a closed handle */
    bg_httpd_stop(&r->http);
    bg_zk_close(&r->zk);
    if (r->lb != NULL)
        r->lb->ops->free(r->lb);
    r->lb = NULL;
    clear_view(r);
    bg_route_set_free(&r->desired);
    bg_route_set_free(&r->serving);
    curl_global_cleanup();
}
