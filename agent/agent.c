/* agent.c -- bg-agent main loop: ZooKeeper registration, the poll loop; status transitions
 * are transition.c's. */
#include "agent.h"
#include "confirm.h"
#include "json.h"
#include "log.h"
#include "sig.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bg_status_name(enum bg_status s)
{
    return s == BG_STATUS_UP ? "UP" : "OUT_OF_SERVICE";
}

/* ----------------------------------------------------------------------------------------
 * Backends.
 * ------------------------------------------------------------------------------------- */

static struct bg_confirm *backend_confirm(struct bg_backend *b)
{
    return b->ops->confirm != NULL && b->priv != NULL ? b->ops->confirm(b) : NULL;
}

/* The type that answers GET /health (conf/backend.h): the agent always runs one. */
static const struct bg_backend_type *health_type(void)
{
    for (size_t t = 0; bg_backend_types[t] != NULL; t++)
        if (bg_backend_types[t]->flags & BG_BACKEND_SERVES_HEALTH)
            return bg_backend_types[t];
    return NULL;
}

/* The health backend is always on: the configuration's entry where it is placed, else one
 * with the type's defaults (a->health_conf, released by bg_agent_free) first. */
static int backends_init(struct bg_agent *a)
{
    const struct bg_agent_conf *c = a->conf;
    const struct bg_backend_type *ht = health_type();
    bool explicit_health = false;
    for (size_t i = 0; i < c->n_backends; i++)
        explicit_health |= c->backends[i].type == ht;
    a->n_backends = c->n_backends + (explicit_health ? 0 : 1);
    a->backends = bg_xcalloc(a->n_backends, sizeof(*a->backends));
    size_t k = 0;
    if (!explicit_health) {
        a->health_conf = (struct bg_backend_conf){.type = ht, .settings = ht->make()};
        a->backends[k++].conf = &a->health_conf;
    }
    for (size_t i = 0; i < c->n_backends; i++)
        a->backends[k++].conf = &c->backends[i];
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_backend *b = &a->backends[i];
        b->agent = a;
        b->ops = b->conf->type->ops;
        bg_prom_hist_init(&b->apply_seconds, bg_prom_latency_le, bg_prom_latency_n);
        char err[256] = "";
        if (b->ops->init(b, err, sizeof(err)) != 0) {
            bg_error("backend_init_failed", "type=%s reason=\"%s\"", bg_backend_name(b), err);
            return BG_EINVAL;
        }
        if (b->conf->type == ht)
            a->health = b;
        snprintf(b->msg, sizeof(b->msg), "not applied yet");
    }
    return BG_OK;
}

/* ----------------------------------------------------------------------------------------
 * Status JSON.
 * ------------------------------------------------------------------------------------- */

/* The pollers a confirming backend has seen: balancers (counts) and the others. */
static json_t *balancers_json(const struct bg_confirm *c, int64_t now, int64_t wall)
{
    json_t *arr = json_array();
    for (int i = 0; i < c->n_peers; i++) {
        const struct bg_confirm_peer *p = &c->peer[i];
        char state[48] = "";
        if (p->send_state)
            bg_server_state_word(&p->last, state, sizeof(state));
        char ts[40] = "";
        bg_iso_time(wall - (now - p->last_ms), ts, sizeof(ts));
        bool counts = bg_confirm_counts(c, p, now);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:b, s:b, s:b}", "addr", p->addr,
                           "node", p->node, "name", p->name, "interval_ms",
                           (json_int_t)p->interval_ms, "polls", (json_int_t)p->polls, "last_poll",
                           ts, "state", state, "send_state", p->send_state, "counts", counts,
                           "confirmed", !c->changed || bg_confirm_peer_ok(p, now)));
    }
    return arr;
}

/* Adds "confirmed" and "waiting_for" (the balancers that have not confirmed the current change
 * of any confirming backend, e.g. "health 127.0.0.1 (node lb1, ...)") to j. */
static void confirmation_json(struct bg_agent *a, json_t *j, int64_t now)
{
    json_t *waiting = json_array();
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_confirm *c = backend_confirm(&a->backends[i]);
        if (c == NULL || !c->changed)
            continue;
        for (int k = 0; k < c->n_peers; k++) {
            const struct bg_confirm_peer *p = &c->peer[k];
            if (bg_confirm_peer_ok(p, now) || !bg_confirm_counts(c, p, now))
                continue;
            char d[320], line[400];
            bg_confirm_describe(c, p, d, sizeof(d));
            snprintf(line, sizeof(line), "%s %s", bg_backend_name(&a->backends[i]), d);
            json_array_append_new(waiting, bg_json_text(line, 0));
        }
    }
    json_object_set_new(j, "confirmed", json_boolean(json_array_size(waiting) == 0));
    json_object_set_new(j, "waiting_for", waiting);
}

bool bg_agent_confirmed(struct bg_agent *a, int *balancers)
{
    int64_t now = bg_now_ms();
    bool ok = true;
    *balancers = 0;
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_confirm *c = backend_confirm(&a->backends[i]);
        if (c == NULL)
            continue;
        *balancers += bg_confirm_active_peers(c, now);
        ok = ok && bg_confirm_is_confirmed(c, now);
    }
    return ok;
}

char *bg_agent_status_json(struct bg_agent *a)
{
    const struct bg_instance_conf *in = &a->conf->instance;
    int64_t now = bg_now_ms(), wall = bg_wall_ms();
    json_t *backends = json_array();
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_backend *b = &a->backends[i];
        const char *result = b->rc == BG_PENDING ? "pending"
                             : b->rc < 0         ? "failed"
                             : b->last_wall_ms   ? "ok"
                                                 : "none";
        char ts[40] = "";
        if (b->last_wall_ms)
            bg_iso_time(b->last_wall_ms, ts, sizeof(ts));
        json_t *bj = json_pack("{s:s, s:s, s:s, s:o, s:s}", "type", bg_backend_name(b), "result",
                               result, "status", bg_status_name(b->last_status), "message",
                               bg_json_text(b->msg, 0), "time", ts);
        struct bg_confirm *cf = backend_confirm(b);
        if (cf != NULL) {
            json_object_set_new(bj, "confirmed", json_boolean(bg_confirm_is_confirmed(cf, now)));
            json_object_set_new(bj, "balancers", balancers_json(cf, now, wall));
        }
        json_array_append_new(backends, bj);
    }
    const struct bg_check *c = &a->check;
    char cts[40] = "";
    if (c->last_wall_ms)
        bg_iso_time(c->last_wall_ms, cts, sizeof(cts));
    json_t *check =
        json_pack("{s:s, s:s, s:o, s:s, s:i}", "type", bg_check_type_name(a->conf->check.type),
                  "result", bg_check_result_name(c), "message", bg_json_text(c->msg, 0), "time",
                  cts, "consecutive", c->v.have_result ? c->v.consecutive : 0);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:s, s:s, s:b, s:s, s:o, s:b, s:o}", "id", in->id,
                  "color", bg_color_name(in->color), "status", bg_status_name(a->status), "applied",
                  a->applied, "health_up", bg_health_is_up(a->health) && bg_agent_app_healthy(a),
                  "epoch", (json_int_t)a->epoch, "app", in->app, "version",
                  in->version ? in->version : "", "registered", a->registered, "node", a->node,
                  "backends", backends, "healthy", bg_agent_app_healthy(a), "check", check);
    if (in->address != NULL)
        json_object_set_new(j, "address", json_string(in->address));
    if (a->weight >= 0) /* DESIGN §12: the weight the backends were given with the status */
        json_object_set_new(j, "weight", json_integer(a->weight));
    confirmation_json(a, j, now);
    return bg_json_dumps_take(j, JSON_COMPACT, "status");
}

/* ----------------------------------------------------------------------------------------
 * ZooKeeper registration.
 * ------------------------------------------------------------------------------------- */

bool bg_agent_app_healthy(const struct bg_agent *a)
{
    return bg_check_healthy(&a->check);
}

/* Can a backend take a weight (DESIGN §12)? Every type but the plain /health endpoint: the
 * controller gives an instance-count canary when an instance cannot. */
static bool can_weight(const struct bg_agent *a)
{
    for (size_t i = 0; i < a->n_backends; i++)
        if (a->backends[i].conf->type->flags & BG_BACKEND_WEIGHTS)
            return true;
    return false;
}

/* {"id","endpoint","version","app","color",["address",]"healthy","check"[,"weighted"]}: check
 * is the message of the last check result ("" when none). */
static char *node_json(struct bg_agent *a)
{
    const struct bg_instance_conf *in = &a->conf->instance;
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", in->id, "endpoint", in->endpoint,
                          "version", in->version ? in->version : "", "app", in->app, "color",
                          bg_color_name(in->color));
    if (in->address != NULL)
        json_object_set_new(j, "address", json_string(in->address));
    json_object_set_new(j, "healthy", json_boolean(bg_agent_app_healthy(a)));
    if (can_weight(a))
        json_object_set_new(j, "weighted", json_true());
    json_object_set_new(j, "check", bg_json_text(a->check.msg, 0));
    return bg_json_dumps_take(j, JSON_COMPACT, "node");
}

/* Read the live election members (with a watch, so a change wakes us and is read again) and
 * fence from the start: the leader is the lowest live member, so any call with a lower epoch
 * comes from a deposed leader. Without this a restarted agent (epoch 0) would obey a zombie
 * until the current leader called it. Done as soon as a session is connected (before
 * registering, which may wait for a dead predecessor's node to expire), on every change of
 * /election, and when a PUT offers an epoch we do not know. Returns 0 when /election was read
 * or does not exist. */
static int learn_epoch(struct bg_agent *a)
{
    unsigned ev = atomic_load(&a->zk.election_events);
    struct bg_election_member *m = NULL;
    size_t n = 0;
    if (bg_zk_election_members(&a->zk, 1, &m, &n) != ZOK)
        return -1; /* a lost connection: try again on the next pass */
    a->live = bg_xrealloc(a->live, (n > 0 ? n : 1) * sizeof(*a->live));
    for (size_t i = 0; i < n; i++)
        a->live[i] = m[i].seq;
    a->n_live = n;
    a->live_known = true;
    a->live_reread = false;
    a->live_seen_events = ev;
    a->live_read_ms = bg_now_ms();
    free(m);
    if (n > 0 && a->live[0] > a->epoch) {
        bg_info("epoch_learned", "epoch=%lld previous=%lld source=election", (long long)a->live[0],
                (long long)a->epoch);
        a->epoch = a->live[0];
    }
    return 0;
}

static void do_register(struct bg_agent *a)
{
    struct bg_zk *z = &a->zk;
    int64_t now = bg_now_ms();
    a->next_register_ms = now + 500; /* unless it works */
    if (bg_zk_ensure(z, "/blue") != 0 || bg_zk_ensure(z, "/green") != 0)
        return;
    char rel[300];
    snprintf(rel, sizeof(rel), "/%s/%s", bg_color_name(a->conf->instance.color),
             a->conf->instance.id);
    bg_zk_path(z, rel, a->node, sizeof(a->node));
    char *data = node_json(a);
    int rc =
        bg_zk_create(z, a->node, data, (int)strlen(data), bg_zk_acl(z), ZOO_EPHEMERAL, NULL, 0);
    free(data);
    struct Stat st;
    if (rc == ZOK || rc == ZNODEEXISTS) {
        int rc2 = bg_zk_exists(z, a->node, 1, &st);
        if (rc2 != ZOK)
            return;
        int64_t sid = bg_zk_session(z);
        if (st.ephemeralOwner != sid) {
            /* A previous incarnation's node (its session not yet expired) or another agent
             * with the same id. Never steal it: wait for it to go (the watch wakes us). */
            static int64_t last_note;
            if (now - last_note > 2000) {
                last_note = now;
                bg_warn("register_wait",
                        "node=%s owner=0x%llx reason=\"node held by another "
                        "session; waiting for it to expire\"",
                        a->node, (unsigned long long)st.ephemeralOwner);
            }
            return;
        }
        a->registered = true;
        a->czxid = st.czxid;
        if (rc == ZOK)
            a->node_stale = false; /* created with the current verdict */
        else
            a->node_stale = true; /* an older incarnation's data, in our session: rewrite */
        a->n_registrations++;
        a->next_register_ms = 0;
        bg_info("registered", "node=%s czxid=%lld session=0x%llx", a->node, (long long)st.czxid,
                (unsigned long long)sid);
        (void)learn_epoch(a); /* a leader may have been elected while we waited */
        return;
    }
    bg_warn("register_failed", "node=%s rc=%s", a->node, zerror(rc));
}

/* A watch fired: is our node still there (someone may have deleted it by hand)? */
static void check_node(struct bg_agent *a)
{
    struct Stat st;
    int rc = bg_zk_exists(&a->zk, a->node, 1, &st);
    if (rc == ZNONODE) {
        bg_warn("node_vanished", "node=%s action=reregister", a->node);
        a->registered = false;
        a->next_register_ms = 0;
    }
}

/* The verdict changed: rewrite our own node in place (any version: only we write it). On a
 * failure (not connected) node_stale stays set and the next loop turn tries again. */
static void publish_health(struct bg_agent *a)
{
    char *data = node_json(a);
    int rc = bg_zk_set2(&a->zk, a->node, data, (int)strlen(data), -1, NULL);
    free(data);
    if (rc == ZOK) {
        a->node_stale = false;
        bg_info("node_updated", "node=%s healthy=%s", a->node,
                bg_agent_app_healthy(a) ? "true" : "false");
    } else if (rc == ZNONODE) {
        a->registered = false; /* re-registration writes the current verdict */
        a->next_register_ms = 0;
    } else {
        bg_warn("node_update_failed", "node=%s rc=%s action=retry", a->node, zerror(rc));
    }
}

static void zk_step(struct bg_agent *a, unsigned *seen_events)
{
    enum bg_zk_health h = bg_zk_check(&a->zk);
    if (h == BG_ZK_LOST) {
        bg_warn("zk_session_lost", "registered=%d action=reconnect", a->registered);
        a->registered = false;
        a->n_zk_reopens++;
        bg_zk_reopen(&a->zk);
        return;
    }
    if (h != BG_ZK_CONNECTED)
        return;
    bool election_changed = atomic_load(&a->zk.election_events) != a->live_seen_events;
    if (a->epoch_session != a->zk.session_id || election_changed || a->live_reread) {
        if (learn_epoch(a) == 0)
            a->epoch_session = a->zk.session_id;
    }
    unsigned ev = atomic_load(&a->zk.node_events);
    if (!a->registered) {
        if (bg_now_ms() >= a->next_register_ms || ev != *seen_events)
            do_register(a);
    } else if (ev != *seen_events) {
        check_node(a);
    }
    *seen_events = ev;
    if (a->registered && a->node_stale)
        publish_health(a);
}

/* ----------------------------------------------------------------------------------------
 * Main loop.
 * ------------------------------------------------------------------------------------- */

/* While a ZooKeeper call waits (a slow or frozen server): answer HTTP (/health, the API);
 * give the call up when stopping. */
static bool zk_wait_hook(void *ctx)
{
    struct bg_agent *a = ctx;
    bg_httpd_run(&a->http);
    return !a->stop;
}

int bg_agent_init(struct bg_agent *a, struct bg_agent_conf *conf)
{
    memset(a, 0, sizeof(*a));
    a->conf = conf;
    a->status = BG_STATUS_OUT;
    a->weight = -1;
    a->target_weight = -1;
    a->started_wall_ms = bg_wall_ms();
    char err[256];
    if (bg_check_init(&a->check, &conf->check, err, sizeof(err)) != 0) {
        bg_error("health_check_init_failed", "reason=\"%s\"", err);
        return BG_EINVAL;
    }
    if (backends_init(a) != 0)
        return BG_EINVAL;
    if (bg_httpd_start(&a->http, &conf->http.server, bg_agent_http, a, err, sizeof(err)) != 0) {
        bg_error("http_listen_failed", "listen=%s reason=\"%s\"", conf->http.listen, err);
        return BG_EINVAL;
    }
    if (bg_zk_open(&a->zk, conf->zk.connect, conf->zk.root, conf->zk.session_timeout_ms,
                   conf->zk.auth) != 0)
        return BG_EZK;
    bg_zk_set_wait_hook(&a->zk, zk_wait_hook, a);
    bg_info("start", "id=%s color=%s listen=%s zk=%s root=%s backends=%zu", conf->instance.id,
            bg_color_name(conf->instance.color), conf->http.listen, conf->zk.connect, conf->zk.root,
            a->n_backends);
    const struct bg_check_conf *ck = &conf->check;
    if (ck->type == BG_CHECK_NONE)
        bg_warn("no_health_check", "reason=\"no check: configured; the application counts as "
                                   "healthy whether it works or not\"");
    else
        bg_info("health_check",
                "type=%s target=\"%s\" interval_ms=%lld timeout_ms=%lld rise=%d "
                "fall=%d healthy=false",
                bg_check_type_name(ck->type),
                ck->type == BG_CHECK_HTTP  ? ck->http
                : ck->type == BG_CHECK_TCP ? ck->tcp
                                           : ck->argv[0],
                (long long)ck->interval_ms, (long long)ck->timeout_ms, ck->rise, ck->fall);
    return BG_OK;
}

static int64_t next_timeout(struct bg_agent *a)
{
    int64_t now = bg_now_ms();
    int64_t t = 250; /* session-health tick */
    int64_t h = bg_httpd_timeout(&a->http);
    if (h >= 0 && h < t)
        t = h;
    if (!a->registered && a->next_register_ms > now && a->next_register_ms - now < t)
        t = a->next_register_ms - now;
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_backend *b = &a->backends[i];
        int64_t d = b->ops->deadline ? b->ops->deadline(b) : 0;
        if (d > 0)
            t = d <= now ? 0 : (d - now < t ? d - now : t);
    }
    int64_t d = bg_check_deadline(&a->check);
    if (d > 0)
        t = d <= now ? 0 : (d - now < t ? d - now : t);
    return t;
}

/* ----------------------------------------------------------------------------------------
 * The poll set: ZooKeeper's wake-up, the HTTP server, each backend's descriptors, the health
 * check's; and, after poll, each owner served its own entries.
 * ------------------------------------------------------------------------------------- */

struct poll_set {
    struct pollfd *pfd;
    size_t cap;
    int n;
    int *owner_start; /* backend i owns pfd[owner_start[i] .. owner_start[i + 1]) */
    int check_start;  /* the health check owns pfd[check_start .. n) */
};

static void poll_set_init(struct poll_set *ps, size_t n_backends)
{
    /* Sized to the configuration, grown when the descriptors do not fit: any number of
     * backends, each with as many sockets as it needs, is served. */
    ps->cap = 64 + 8 * n_backends;
    ps->pfd = bg_xcalloc(ps->cap, sizeof(*ps->pfd));
    ps->owner_start = bg_xcalloc(n_backends + 1, sizeof(*ps->owner_start));
    ps->n = ps->check_start = 0;
}

static void poll_set_finalize(struct poll_set *ps)
{
    free(ps->pfd);
    free(ps->owner_start);
    ps->pfd = NULL;
    ps->owner_start = NULL;
}

static void poll_set_fill(struct poll_set *ps, struct bg_agent *a)
{
    for (;;) {
        int n = 0, cap = (int)ps->cap;
        ps->pfd[n++] = (struct pollfd){.fd = a->zk.wake_fd, .events = POLLIN};
        ps->pfd[n++] = (struct pollfd){.fd = a->http.fd, .events = POLLIN};
        for (size_t i = 0; i < a->n_backends; i++) {
            struct bg_backend *b = &a->backends[i];
            ps->owner_start[i] = n;
            if (b->ops->fds != NULL)
                n += b->ops->fds(b, ps->pfd + n, cap - n);
        }
        ps->owner_start[a->n_backends] = n;
        ps->check_start = n;
        n += bg_check_fds(&a->check, ps->pfd + n, cap - n);
        ps->n = n;
        if ((size_t)n < ps->cap)
            return; /* nobody was cut short */
        ps->cap *= 2;
        ps->pfd = bg_xrealloc(ps->pfd, ps->cap * sizeof(*ps->pfd));
    }
}

static void poll_set_serve(struct poll_set *ps, struct bg_agent *a, int64_t now)
{
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_backend *b = &a->backends[i];
        int start = ps->owner_start[i], end = ps->owner_start[i + 1];
        if (b->ops->on_fds != NULL && end > start)
            b->ops->on_fds(b, ps->pfd + start, end - start);
        int64_t d = b->ops->deadline ? b->ops->deadline(b) : 0;
        if (b->ops->tick != NULL && d > 0 && d <= now)
            b->ops->tick(b, now);
    }
    bg_check_run(&a->check, ps->pfd + ps->check_start, ps->n - ps->check_start, now);
    if (a->check.changed) {
        a->check.changed = false;
        a->node_stale = true; /* written by zk_step once registered and connected */
    }
}

/* After the loop: answer what waits, leave ZooKeeper, let the backends leave theirs. */
static void agent_stop(struct bg_agent *a)
{
    bg_info("stopping", "reason=signal signal=%s%s", bg_sig_name(a->stop),
            a->stop == SIGHUP ? " note=\"SIGHUP stops cleanly, as SIGTERM does (no reload)\"" : "");
    bg_agent_transition_cancel(a, "agent shutting down", -1);
    bg_httpd_run(&a->http);
    if (a->registered) {
        /* Bounded by the turn's budget (no hook now: it would give up at once, stopping). */
        bg_zk_set_wait_hook(&a->zk, NULL, NULL);
        bg_zk_tick(&a->zk);
        int rc = bg_zk_delete(&a->zk, a->node, -1);
        bg_info("deregistered", "node=%s rc=%s", a->node, zerror(rc));
    }
    for (size_t i = 0; i < a->n_backends; i++)
        if (a->backends[i].ops->shutdown != NULL)
            a->backends[i].ops->shutdown(&a->backends[i]);
}

int bg_agent_run(struct bg_agent *a)
{
    bg_sig_init(&a->stop, &a->zk);

    unsigned seen_events = 0;
    struct poll_set ps;
    poll_set_init(&ps, a->n_backends);
    while (!a->stop) {
        bg_zk_tick(&a->zk); /* HTTP and signals were served: ZooKeeper may wait again */
        zk_step(a, &seen_events);
        bg_agent_transition_run(a);
        bg_httpd_run(&a->http); /* requests that waited for the ZooKeeper calls above */

        poll_set_fill(&ps, a);
        /* A connection resumed after the last MHD run (e.g. a transition confirmed by a poll
         * that run itself handled) must be answered now, not at the next wake-up. */
        int rc = poll(ps.pfd, (nfds_t)ps.n, a->resumed ? 0 : (int)next_timeout(a));
        if (rc < 0 && errno != EINTR) {
            bg_error("poll_failed", "errno=%d", errno);
            break;
        }
        if (ps.pfd[0].revents)
            bg_zk_drain(&a->zk);
        a->resumed = false;
        bg_httpd_run(&a->http);
        poll_set_serve(&ps, a, bg_now_ms());
        bg_agent_transition_run(a);
        bg_httpd_run(&a->http); /* answer connections resumed by the transition */
    }
    poll_set_finalize(&ps);
    agent_stop(a);
    return 0;
}

void bg_agent_free(struct bg_agent *a)
{
    bg_sig_finish(); /* before zk goes: a late signal must not wake a closed handle */
    bg_httpd_stop(&a->http);
    bg_zk_close(&a->zk);
    for (size_t i = 0; i < a->n_backends; i++)
        if (a->backends[i].ops != NULL && a->backends[i].ops->destroy != NULL)
            a->backends[i].ops->destroy(&a->backends[i]);
    free(a->backends);
    a->backends = NULL;
    if (a->health_conf.settings != NULL)
        a->health_conf.type->free(a->health_conf.settings);
    a->health_conf.settings = NULL;
    free(a->live);
    a->live = NULL;
    bg_check_free(&a->check);
    bg_agent_waiters_free(a);
}
