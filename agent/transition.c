/* transition.c -- status transitions: apply a status to every backend in order, answer the
 * PUT /v1/status requests waiting for it (200, 502 on a backend's failure, 503 when a newer
 * status supersedes it). Called from the agent's loop and its HTTP handler, one thread. */

/*
 * A PUT for the status already on its way joins the transition; a PUT for the other status
 * cancels it (its waiters hear 503) and starts a new one. A waiter answered inside its own
 * request handler (sync) is replied to at once; the others were suspended and are resumed
 * (a->resumed tells the loop to run MHD again at once).
 */
#include "agent.h"
#include "confirm.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bg_waiter {
    struct bg_waiter *next;
    struct bg_agent *agent;
    struct MHD_Connection *conn;
    enum bg_status target;
    bool done;
    bool sync; /* being answered inside the request handler itself */
    unsigned code;
    char *body;
};

static void waiter_unlink(void *p)
{
    struct bg_waiter *w = p;
    struct bg_agent *a = w->agent;
    for (struct bg_waiter **pp = &a->waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    free(w->body);
    free(w);
}

/* Answer every waiting PUT, except those that asked for `spare` (-1: spare none). */
static void finish_waiters(struct bg_agent *a, unsigned code, const char *body, int spare)
{
    for (struct bg_waiter *w = a->waiters; w != NULL; w = w->next) {
        if (w->done || (int)w->target == spare)
            continue;
        w->done = true;
        w->code = code;
        w->body = bg_xstrdup(body);
        if (!w->sync) {
            MHD_resume_connection(w->conn);
            a->resumed = true;
        }
    }
}

/* One line per balancer that has not confirmed the change. */
static void log_unconfirmed(struct bg_agent *a)
{
    int64_t now = bg_now_ms();
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_backend *b = &a->backends[i];
        struct bg_confirm *c =
            b->ops->confirm != NULL && b->priv != NULL ? b->ops->confirm(b) : NULL;
        for (int k = 0; c != NULL && c->changed && k < c->n_peers; k++) {
            const struct bg_confirm_peer *p = &c->peer[k];
            if (bg_confirm_peer_ok(p, now) || !bg_confirm_counts(c, p, now))
                continue;
            char d[320];
            bg_confirm_describe(c, p, d, sizeof(d));
            bg_warn("unconfirmed", "backend=%s status=%s balancer=\"%s\"", bg_backend_name(b),
                    bg_status_name(a->status), d);
        }
    }
}

static void transition_done(struct bg_agent *a, int rc, struct bg_backend *failed)
{
    int64_t ms = bg_now_ms() - a->trans_started;
    a->busy = false;
    if (rc == 0) {
        a->applied = true;
        a->n_put_ok++;
        char *body = bg_agent_status_json(a);
        json_t *jb = json_loads(body, 0, NULL);
        bool confirmed = json_is_true(json_object_get(jb, "confirmed"));
        json_decref(jb);
        if (confirmed) {
            bg_info("status_applied", "status=%s epoch=%lld ms=%lld confirmed=true",
                    bg_status_name(a->status), (long long)a->epoch, (long long)ms);
        } else {
            bg_warn("status_applied", "status=%s epoch=%lld ms=%lld confirmed=false",
                    bg_status_name(a->status), (long long)a->epoch, (long long)ms);
            log_unconfirmed(a);
        }
        finish_waiters(a, 200, body, -1);
        free(body);
        return;
    }
    a->n_put_failed++;
    const char *type = bg_backend_name(failed);
    bg_warn("status_failed", "status=%s backend=%s reason=\"%s\" ms=%lld",
            bg_status_name(a->status), type, failed->msg, (long long)ms);
    json_t *j =
        json_pack("{s:s, s:s, s:o, s:s}", "error", "backend failed", "backend", type, "reason",
                  bg_json_text(failed->msg, 0), "status", bg_status_name(a->status));
    char *body = bg_json_dumps_take(j, JSON_COMPACT, "backend_failed");
    finish_waiters(a, 502, body, -1);
    free(body);
}

/* Drive the transition as far as it goes without waiting. */
void bg_agent_transition_run(struct bg_agent *a)
{
    int64_t now = bg_now_ms();
    while (a->busy && a->step < a->n_backends) {
        struct bg_backend *b = &a->backends[a->step];
        int rc;
        if (b->rc == BG_PENDING) {
            rc = b->ops->progress(b, now);
        } else {
            b->started_ms = now;
            b->deadline_ms = a->deadline_ms;
            b->last_status = a->target;
            rc = b->ops->apply(b, a->target);
        }
        b->rc = rc;
        if (rc == BG_PENDING)
            return;
        b->last_wall_ms = bg_wall_ms();
        bg_prom_hist_observe(&b->apply_seconds, (bg_now_ms() - b->started_ms) / 1e3);
        bg_debug("backend_applied", "type=%s status=%s rc=%d msg=\"%s\"", bg_backend_name(b),
                 bg_status_name(a->target), rc, b->msg);
        if (rc < 0) {
            transition_done(a, rc, b);
            return;
        }
        a->step++;
    }
    if (a->busy)
        transition_done(a, 0, NULL);
}

/* Stop the transition in progress; its waiters hear 503 unless they asked for `spare`. */
void bg_agent_transition_cancel(struct bg_agent *a, const char *why, int spare)
{
    if (!a->busy)
        return;
    for (size_t i = 0; i < a->n_backends; i++) {
        struct bg_backend *b = &a->backends[i];
        if (b->rc == BG_PENDING) {
            if (b->ops->cancel != NULL)
                b->ops->cancel(b);
            b->rc = BG_ELOST;
            snprintf(b->msg, sizeof(b->msg), "cancelled: %s", why);
        }
    }
    a->busy = false;
    json_t *j = json_pack("{s:s, s:o}", "error", "superseded", "reason", bg_json_text(why, 0));
    char *body = bg_json_dumps_take(j, JSON_COMPACT, "superseded");
    finish_waiters(a, 503, body, spare);
    free(body);
}

static void transition_start(struct bg_agent *a, enum bg_status st, int weight)
{
    if (a->busy && a->target == st && a->target_weight == weight)
        return; /* already on its way: the new request waits for the same outcome */
    if (a->busy)
        bg_agent_transition_cancel(a, "superseded by a newer status", (int)st);
    if (a->status != st || a->weight != weight)
        bg_info("status_change", "from=%s to=%s weight=%d epoch=%lld", bg_status_name(a->status),
                bg_status_name(st), weight, (long long)a->epoch);
    a->busy = true;
    a->target = st;
    a->target_weight = weight;
    a->status = st;
    a->weight = weight;
    a->applied = false;
    a->step = 0;
    a->trans_started = bg_now_ms();
    bg_agent_transition_run(a);
}

void bg_agent_request_status(struct bg_agent *a, struct bg_httpd_req *req, enum bg_status st,
                             int weight, int64_t timeout_ms)
{
    a->deadline_ms = bg_agent_answer_deadline(bg_now_ms(), timeout_ms);
    struct bg_waiter *w = bg_xcalloc(1, sizeof(*w));
    w->agent = a;
    w->conn = req->conn;
    w->target = st;
    w->next = a->waiters;
    a->waiters = w;
    req->user = w;
    req->user_free = waiter_unlink;
    w->sync = true; /* finish_waiters must not resume what was never suspended */
    transition_start(a, st, weight);
    w->sync = false;
    if (w->done) {
        bg_httpd_reply(req->conn, w->code, "application/json", w->body);
        return;
    }
    /* Answered when the transition ends (finish_waiters resumes the connection). */
    MHD_suspend_connection(req->conn);
}

enum MHD_Result bg_agent_answer_waiter(struct bg_httpd_req *req)
{
    struct bg_waiter *w = req->user;
    if (!w->done)
        return MHD_YES; /* still waiting (spurious call) */
    return bg_httpd_reply(req->conn, w->code, "application/json", w->body);
}

void bg_agent_waiters_free(struct bg_agent *a)
{
    while (a->waiters != NULL)
        waiter_unlink(a->waiters);
}
