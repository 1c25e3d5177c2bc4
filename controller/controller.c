/* controller.c -- bg-controller: the main loop and reconcile (observe, plan, act): the calls
 * that drive each instance to the status the plan asks for. */
#include "controller.h"
#include "calls.h"
#include "ctl_internal.h"
#include "log.h"
#include "metrics.h"
#include "sig.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_MIN_INTERVAL_MS 200
/* Changes other than the phase (an instance's health, the reason's details) are written at
 * most this often: a flapping application must not turn into a stream of /status writes. */
#define STATUS_COALESCE_MS 500

/* ----------------------------------------------------------------------------------------
 * Acting.
 * ------------------------------------------------------------------------------------- */

static bool on_wake(void *ctx)
{
    struct bg_ctl *c = ctx;
    bg_zk_drain(&c->zk);
    bg_httpd_run(&c->http); /* /health and /metrics stay responsive during slow calls */
    bg_zk_tick(&c->zk);
    if (c->stop)
        return false;
    /* Stop calling agents the moment the connection is lost. */
    return bg_zk_check(&c->zk) == BG_ZK_CONNECTED;
}

/* An agent that answers "unconfirmed" at once is asked again no sooner than this (one that
 * waits for its balancers answers at about 80 % of call_timeout: a long poll). */
#define UNCONFIRMED_ASK_MS 250

/* Record what a successful call's answer said of the balancers: confirmed, or which of them
 * have not seen the status yet (then the member is asked again until they have). */
static void confirmation(struct bg_member *m, const struct bg_call_req *r, enum bg_known was,
                         int64_t t0, int64_t now)
{
    if (!r->unconfirmed) {
        if (m->unconfirmed)
            bg_info("instance_confirmed", "color=%s id=%s status=%s waited_ms=%lld",
                    bg_color_name(m->color), m->lid, bg_known_name(m->known),
                    (long long)(now - m->unconfirmed_since_ms));
        m->unconfirmed = false;
        m->n_waiting = 0;
        return;
    }
    if (!m->unconfirmed || was != m->known)
        m->unconfirmed_since_ms = t0;
    m->unconfirmed = true;
    m->n_waiting = r->n_waiting;
    for (int b = 0; b < r->n_waiting && b < BG_WAITING_MAX && b < BG_CALL_WAITING_MAX; b++)
        bg_strlcpy_utf8(m->waiting[b], r->waiting[b], sizeof(m->waiting[b]));
    if (now - t0 < UNCONFIRMED_ASK_MS)
        m->retry_at_ms = t0 + UNCONFIRMED_ASK_MS;
    bg_debug("instance_unconfirmed", "color=%s id=%s status=%s waiting=%d first=\"%s\" ms=%lld",
             bg_color_name(m->color), m->lid, bg_known_name(m->known), m->n_waiting,
             m->n_waiting > 0 ? m->waiting[0] : "", (long long)(now - m->unconfirmed_since_ms));
}

/* Ask a batch of members their status (GET /v1/status): what an agent says it has applied,
 * every balancer having seen it, is known as if we had told it (and re-asserted at the next
 * resync); any other answer, or none, leaves it unknown, to be told. Returns 0 or BG_ELOST. */
static int probe(struct bg_ctl *c, const struct bg_plan *p, struct bg_call_req *req,
                 struct bg_call_opts *o)
{
    for (size_t i = 0; i < p->n_idx; i++)
        req[i].probe = true;
    o->retries = 0; /* a failed question is answered by telling */
    int64_t t0 = bg_now_ms();
    int rc = bg_calls_run(c->multi, req, p->n_idx, o);
    int64_t now = bg_now_ms();
    size_t right = 0;
    for (size_t i = 0; i < p->n_idx; i++) {
        struct bg_member *m = &c->m[p->idx[i]];
        bg_prom_hist_observe(&c->call_seconds[1], req[i].ms / 1e3);
        m->probed = true;
        if (req[i].result != BG_CALL_OK || req[i].seen == 0)
            continue;
        m->known = req[i].seen == 1 ? BG_KNOWN_UP : BG_KNOWN_OUT;
        m->weight = req[i].seen_weight;
        m->confirmed_ms = now;
        m->unconfirmed = false;
        m->n_waiting = 0;
        right++;
    }
    bg_info("instances_probed", "asked=%zu known=%zu ms=%lld", p->n_idx, right,
            (long long)(now - t0));
    c->status_dirty = true;
    return rc == BG_ELOST ? BG_ELOST : BG_OK;
}

/* A drained instance taken out, or an undrained one back UP: a /history entry each. */
static void drain_history(struct bg_ctl *c, struct bg_member *m, enum bg_known was)
{
    char text[BG_DRAIN_REASON_MAX + 200];
    if (m->drained && m->known == BG_KNOWN_OUT && was != BG_KNOWN_OUT) {
        snprintf(text, sizeof(text), "%s %s drained: %s", bg_color_name(m->color), m->id,
                 m->drain_reason[0] ? m->drain_reason : "(no reason given)");
        bg_ctl_history_event(c, "drain", bg_color_name(m->color), "drained", text);
        bg_info("drained", "color=%s id=%s", bg_color_name(m->color), m->lid);
    } else if (m->undrained && m->known == BG_KNOWN_UP && was != BG_KNOWN_UP) {
        snprintf(text, sizeof(text), "%s %s undrained: UP again", bg_color_name(m->color), m->id);
        bg_ctl_history_event(c, "drain", bg_color_name(m->color), "undrained", text);
        bg_info("undrained", "color=%s id=%s", bg_color_name(m->color), m->lid);
        m->undrained = false;
    }
}

/* A call answered: the member is known to have the status (confirmed or not). */
static void call_ok(struct bg_ctl *c, struct bg_member *m, const struct bg_call_req *r, bool up,
                    int64_t t0, int64_t now)
{
    enum bg_known was = m->known;
    bool was_unconfirmed = m->unconfirmed;
    if (up && m->known != BG_KNOWN_UP)
        c->last_up_ms = now;
    m->known = up ? BG_KNOWN_UP : BG_KNOWN_OUT;
    m->weight = up ? r->weight : 0;
    m->confirmed_ms = now;
    m->failures = 0;
    m->retry_at_ms = 0;
    m->last_error[0] = '\0';
    confirmation(m, r, was, t0, now);
    drain_history(c, m, was);
    if (was != m->known || was_unconfirmed != m->unconfirmed)
        bg_ctl_outcome(c, m,
                       m->unconfirmed ? (up ? "UP, unconfirmed" : "OUT_OF_SERVICE, unconfirmed")
                                      : bg_known_name(m->known));
    bg_info("instance_status",
            "color=%s id=%s status=%s weight=%d ms=%lld attempts=%d confirmed=%s",
            bg_color_name(m->color), m->lid, bg_known_name(m->known), up ? r->weight : 0,
            (long long)(now - t0), r->attempts, m->unconfirmed ? "false" : "true");
}

/* A call failed: the member is retried after a backoff that doubles with each failure. */
static void call_failed(struct bg_ctl *c, struct bg_member *m, const struct bg_call_req *r, bool up,
                        int64_t now)
{
    const struct bg_switch_conf *sw = &c->conf->sw;
    c->n_call_failures++;
    m->failures++;
    m->failed_ms = now;
    int shift = m->failures < 6 ? m->failures : 6;
    m->retry_at_ms = now + (sw->backoff_ms > 0 ? sw->backoff_ms : 100) * (1LL << shift);
    /* A failed call leaves the instance's status unknown: it may or may not have applied. */
    m->known = BG_KNOWN_NONE;
    m->unconfirmed = false;
    m->n_waiting = 0;
    bg_strlcpy_utf8(m->last_error, r->error, sizeof(m->last_error));
    char o2[BG_STATUS_ERROR_MAX + 9]; /* the log line has the whole error */
    memcpy(o2, "failed: ", 9);        /* cut on a character boundary, not by snprintf */
    bg_strlcpy_utf8(o2 + 8, r->error, sizeof(o2) - 8);
    bg_ctl_outcome(c, m, o2);
    bg_warn("instance_call_failed", "color=%s id=%s status=%s attempts=%d error=\"%s\"",
            bg_color_name(m->color), m->lid, up ? "UP" : "OUT_OF_SERVICE", r->attempts, r->error);
}

/* Call a batch of members; update what we know. Returns 0, BG_ELOST or BG_ESTALE. */
static int act(struct bg_ctl *c, const struct bg_plan *p)
{
    struct bg_call_req *req = bg_xcalloc(p->n_idx, sizeof(*req));
    bool up = p->action == BG_ACT_UP;
    for (size_t i = 0; i < p->n_idx; i++) {
        req[i].endpoint = c->m[p->idx[i]].endpoint;
        req[i].up = up;
        req[i].weight = up ? p->weight[i] : 0;
    }
    const struct bg_switch_conf *sw = &c->conf->sw;
    struct bg_call_opts o = {.epoch = c->epoch,
                             .token = c->conf->http.token,
                             .ca_file = c->conf->http.ca_file,
                             .timeout_ms = sw->call_timeout_ms,
                             .retries = sw->retries,
                             .backoff_ms = sw->backoff_ms,
                             .wake_fd = c->zk.wake_fd,
                             .http_fd = c->http.fd,
                             .on_wake = on_wake,
                             .ctx = c};
    if (p->action == BG_ACT_PROBE) {
        int prc = probe(c, p, req, &o);
        free(req);
        return prc;
    }
    int64_t t0 = bg_now_ms();
    int rc = bg_calls_run(c->multi, req, p->n_idx, &o);
    int64_t now = bg_now_ms();
    int ret = rc;
    for (size_t i = 0; i < p->n_idx; i++) {
        struct bg_member *m = &c->m[p->idx[i]];
        c->n_calls++;
        bg_prom_hist_observe(&c->call_seconds[0], req[i].ms / 1e3);
        if (req[i].result == BG_CALL_OK) {
            call_ok(c, m, &req[i], up, t0, now);
            continue;
        }
        call_failed(c, m, &req[i], up, now);
        if (req[i].result == BG_CALL_STALE)
            ret = BG_ESTALE;
    }
    c->status_dirty = true;
    free(req);
    return ret;
}

/* ----------------------------------------------------------------------------------------
 * Reconcile: one pass of the leader (observe, plan, act, then /status).
 * ------------------------------------------------------------------------------------- */

/* Stop leading for good reason and start a new session (a new election node). */
static void step_down(struct bg_ctl *c, const char *why)
{
    bg_ctl_lose_leadership(c, why, true);
    bg_zk_reopen(&c->zk);
}

/* /status changed since we last looked: step down when it proves a newer leader. Returns
 * whether we stepped down. */
static bool status_watch(struct bg_ctl *c)
{
    unsigned q = atomic_load(&c->zk.quiet_events);
    if (q == c->seen_quiet)
        return false;
    c->seen_quiet = q;
    bg_ctl_check_status_version(c);
    if (!c->deposed)
        return false;
    c->deposed = false;
    step_down(c, "/status was written by a newer leader");
    return true;
}

static void plan_input(const struct bg_ctl *c, struct bg_plan_input *in)
{
    const struct bg_switch_conf *sw = &c->conf->sw;
    *in = (struct bg_plan_input){.desired = c->desired,
                                 .desired_problem = c->desired_problem,
                                 .m = c->m,
                                 .n = c->n,
                                 .min_ready = sw->min_ready,
                                 .batch_size = sw->batch_size,
                                 .now_ms = bg_now_ms(),
                                 .desired_since_ms = c->desired_since_ms,
                                 .settle_ms = sw->settle_ms,
                                 .resync_ms = sw->resync_ms,
                                 .last_up_ms = c->last_up_ms,
                                 .min_healthy_ms = sw->min_healthy_time_ms,
                                 .in_fallback = c->fallback,
                                 .never_served = c->applied == BG_COLOR_INVALID,
                                 .fallback_hold_ms = bg_ctl_fallback_hold(c),
                                 .probe_unknown = true,
                                 .proceed_unconfirmed = sw->unconfirmed_proceed,
                                 .unconfirmed_timeout_ms = sw->unconfirmed_timeout_ms,
                                 .canary = c->canary,
                                 .canary_problem = c->canary_problem[0] ? c->canary_problem : NULL,
                                 .drain_problem = c->drain_problem[0] ? c->drain_problem : NULL,
                                 .routers = c->routers,
                                 .n_routers = c->n_routers};
}

/* An agent refused our epoch as stale. Step down only when a lower live member really
 * exists: an agent's claim alone (it may have been fed a made-up epoch) must not fence out
 * the real leader. Returns whether we stepped down. */
static bool stale_epoch(struct bg_ctl *c)
{
    int lowest = bg_ctl_still_lowest(c);
    if (lowest == 0) {
        step_down(c, "an agent has seen a newer leader's epoch");
        return true;
    }
    if (lowest < 0)
        return false; /* cannot tell now: the member is retried after its backoff */
    bg_warn("stale_epoch_ignored",
            "epoch=%lld reason=\"an agent refused our epoch as "
            "stale, but no lower live /election member exists: still leading\"",
            (long long)c->epoch);
    return false;
}

/* The end of a pass: write /status now when due (or at once after a phase change), else have
 * the loop wake up for it; step down if the write proved a newer leader. */
static void status_flush(struct bg_ctl *c)
{
    c->status_due_ms = 0;
    if (c->status_dirty && !c->deposed) {
        int64_t due = c->status_written_ms + STATUS_COALESCE_MS;
        if (c->status_urgent || bg_now_ms() >= due)
            bg_ctl_write_status(c);
        else
            c->status_due_ms = due; /* the loop wakes up for it */
    }
    if (c->deposed) {
        c->deposed = false;
        step_down(c, "/status was written by a newer leader");
    }
}

/* Read the state again if anything changed (or a read is owed). Returns BG_OK or BG_EZK (a
 * read is owed next turn). */
static int observe(struct bg_ctl *c)
{
    unsigned ev = atomic_load(&c->zk.node_events);
    unsigned nc = bg_ctl_node_changes();
    if (ev == c->seen_events && nc == c->seen_node_changes && !c->need_read)
        return BG_OK;
    c->seen_events = ev;
    c->seen_node_changes = nc;
    if (bg_ctl_read_state(c) != 0) {
        c->need_read = true;
        return BG_EZK;
    }
    c->status_dirty = true;
    return BG_OK;
}

/* One pass of the leader: observe, plan, act, until the plan has nothing to call; then
 * /status. Stops at once when the connection is lost or we stop leading. */
static void reconcile(struct bg_ctl *c)
{
    if (status_watch(c))
        return;
    for (;;) {
        if (observe(c) != BG_OK)
            return;
        struct bg_plan_input in;
        plan_input(c, &in);
        struct bg_plan p;
        bg_plan(&in, &p);
        c->n_passes++;
        bg_ctl_record_plan(c, &p);
        c->wake_at_ms = p.wake_at_ms;
        if (p.n_idx == 0)
            break;
        /* A new phase is written before its calls, which may wait for the balancers for
         * seconds: /status must not say the previous switch's "converged" meanwhile. Not before
         * asking the agents their status: a new leader's "switching" may be over once they
         * have answered. */
        if (c->status_urgent && p.action != BG_ACT_PROBE) {
            bg_ctl_write_status(c);
            if (c->deposed)
                break;
        }
        int rc = act(c, &p);
        if (rc == BG_ESTALE) {
            if (stale_epoch(c))
                return;
            break;
        }
        if (rc == BG_ELOST || c->stop)
            return; /* the main loop sees why */
        /* Routers learn what is UP from /status (DESIGN §13) and the next step waits for
         * them: with routers live, what the calls changed is written at once (it waited up to
         * STATUS_COALESCE_MS, twice a switch: cutover p50 1.03 s through a 6 ms router). */
        if (c->status_dirty &&
            (c->n_routers > 0 || bg_now_ms() - c->status_written_ms >= STATUS_MIN_INTERVAL_MS))
            bg_ctl_write_status(c);
        if (c->deposed)
            break;
    }
    status_flush(c);
}

/* ----------------------------------------------------------------------------------------
 * Signals, init, the main loop, free.
 * ------------------------------------------------------------------------------------- */

/* While a ZooKeeper call waits (a slow or frozen server): answer /health and /metrics;
 * give the call up when stopping. */
static bool zk_wait_hook(void *ctx)
{
    struct bg_ctl *c = ctx;
    bg_httpd_run(&c->http);
    return !c->stop;
}

int bg_ctl_init(struct bg_ctl *c, struct bg_controller_conf *conf)
{
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->desired = BG_COLOR_INVALID;
    c->applied = BG_COLOR_INVALID;
    c->status_version = -1;
    c->http.fd = -1;
    bg_ctl_metrics_init(c);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->multi = curl_multi_init();
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 1024L);
    if (bg_ctl_http_start(c) != BG_OK)
        return BG_EINVAL;
    if (bg_zk_open(&c->zk, conf->zk.connect, conf->zk.root, conf->zk.session_timeout_ms,
                   conf->zk.auth) != 0)
        return BG_EZK;
    bg_zk_path(&c->zk, "/status", c->zk.quiet_path, sizeof(c->zk.quiet_path));
    bg_zk_set_wait_hook(&c->zk, zk_wait_hook, c);
    bg_ctl_observe_init(c);
    bg_info("start",
            "id=%s zk=%s root=%s batch_size=%d min_ready=%d settle_ms=%lld unconfirmed=%s "
            "unconfirmed_timeout_ms=%lld",
            conf->id, conf->zk.connect, conf->zk.root, conf->sw.batch_size, conf->sw.min_ready,
            (long long)conf->sw.settle_ms, conf->sw.unconfirmed_proceed ? "proceed" : "hold",
            (long long)conf->sw.unconfirmed_timeout_ms);
    return BG_OK;
}

static int64_t loop_timeout(struct bg_ctl *c)
{
    int64_t t = 250, now = bg_now_ms();
    if (c->leader && c->wake_at_ms > 0)
        t = c->wake_at_ms <= now ? 0 : (c->wake_at_ms - now < t ? c->wake_at_ms - now : t);
    if (c->leader && c->status_due_ms > 0)
        t = c->status_due_ms <= now ? 0 : (c->status_due_ms - now < t ? c->status_due_ms - now : t);
    int64_t h = bg_httpd_timeout(&c->http);
    if (h >= 0 && h < t)
        t = h;
    return t;
}

int bg_ctl_run(struct bg_ctl *c)
{
    bg_sig_init(&c->stop, &c->zk);
    bool paused = false;
    while (!c->stop) {
        bg_zk_tick(&c->zk); /* HTTP and signals were served: ZooKeeper may wait again */
        enum bg_zk_health h = bg_zk_check(&c->zk);
        if (h == BG_ZK_LOST) {
            bg_ctl_lose_leadership(c, "ZooKeeper session lost", true);
            bg_zk_reopen(&c->zk);
            paused = false; /* whoever leads next, it is not a resumption */
        } else if (h == BG_ZK_CONNECTING) {
            if (c->leader && !paused)
                bg_warn("leader_paused", "reason=\"connection to ZooKeeper lost\"");
            paused = c->leader;
        } else {
            if (paused && c->leader)
                bg_info("leader_resumed", "epoch=%lld", (long long)c->epoch);
            paused = false;
            bg_ctl_election_step(c);
            if (c->leader) {
                if (c->wake_at_ms > 0 && bg_now_ms() >= c->wake_at_ms)
                    c->wake_at_ms = 0;
                reconcile(c);
            }
            bg_page_feed_refresh(&c->page, &c->zk, c->leader); /* only while someone looks */
        }
        /* Connections accepted by the last run may have their requests waiting: answer them
         * now, not after the next turn's ZooKeeper calls. */
        bg_httpd_run(&c->http);
        struct pollfd pfd[2] = {{.fd = c->zk.wake_fd, .events = POLLIN},
                                {.fd = c->http.fd, .events = POLLIN}};
        int rc = poll(pfd, c->http.fd >= 0 ? 2 : 1, (int)loop_timeout(c));
        if (rc < 0 && errno != EINTR) {
            bg_error("poll_failed", "errno=%d", errno);
            break;
        }
        if (pfd[0].revents)
            bg_zk_drain(&c->zk);
        bg_httpd_run(&c->http);
    }
    bg_info("stopping", "reason=signal leader=%d signal=%s%s", c->leader, bg_sig_name(c->stop),
            c->stop == SIGHUP ? " note=\"SIGHUP stops cleanly, as SIGTERM does (no reload)\"" : "");
    return 0;
}

void bg_ctl_free(struct bg_ctl *c)
{
    bg_sig_finish(); /* before zk goes: a late signal must not wake a closed handle */
    bg_ctl_http_stop(c);
    bg_ctl_observe_stop();
    bg_zk_close(&c->zk);
    bg_ctl_observe_clear(c);
    bg_free(&c->last_status);
    bg_page_feed_free(&c->page);
    json_decref(c->sw_outcome);
    c->sw_outcome = NULL;
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    c->multi = NULL;
    curl_global_cleanup();
}
