/* plan.c -- the reconcile decision as a pure function (unit-tested without ZooKeeper). */
#include "plan.h"

#include <stdio.h>
#include <string.h>

const char *bg_phase_name(enum bg_phase p)
{
    static const char *names[] = {"idle", "switching", "settling", "converged", "blocked"};
    return (size_t)p < BG_ARRAY_LEN(names) ? names[p] : "unknown";
}

const char *bg_known_name(enum bg_known k)
{
    return k == BG_KNOWN_UP ? "UP" : k == BG_KNOWN_OUT ? "OUT_OF_SERVICE" : "UNKNOWN";
}

static bool usable(const struct bg_member *m)
{
    return m->endpoint != NULL;
}

/* May a desired-colour member carry traffic? Healthy, and either UP already or healthy for
 * min_healthy_time (which gates marking UP, not staying UP). */
static int64_t min_healthy(const struct bg_plan_input *in)
{
    if (in->in_fallback && in->fallback_hold_ms > in->min_healthy_ms)
        return in->fallback_hold_ms;
    return in->min_healthy_ms;
}

static bool may_serve(const struct bg_plan_input *in, const struct bg_member *m)
{
    if (!m->healthy)
        return false;
    if (m->known == BG_KNOWN_UP || min_healthy(in) <= 0)
        return true;
    return in->now_ms - m->healthy_since_ms >= min_healthy(in);
}

/* What this member should be told, in normal operation or in fallback (BG_KNOWN_NONE: leave
 * it as it is). Unhealthy members only ever go OUT. */
static enum bg_role role(const struct bg_plan_input *in, const struct bg_member *m)
{
    return in->shape && in->shape->role ? (enum bg_role)in->shape->role[m - in->m] : BG_ROLE_NORMAL;
}

static enum bg_known target(const struct bg_plan_input *in, const struct bg_member *m,
                            bool fallback)
{
    if (!usable(m))
        return BG_KNOWN_NONE;
    enum bg_role r = role(in, m);
    if (r == BG_ROLE_DRAINED || (r == BG_ROLE_CANARY_SPARE && !fallback))
        return BG_KNOWN_OUT;
    if (r == BG_ROLE_CANARY && !fallback) {
        if (!m->healthy)
            return BG_KNOWN_OUT;
        return may_serve(in, m) ? BG_KNOWN_UP : BG_KNOWN_NONE;
    }
    if (m->color == in->desired) {
        if (!m->healthy)
            return BG_KNOWN_OUT;
        if (fallback)
            return BG_KNOWN_NONE; /* a refused deploy is not half switched */
        return may_serve(in, m) ? BG_KNOWN_UP : BG_KNOWN_NONE;
    }
    if (fallback && !m->healthy)
        return BG_KNOWN_OUT;
    if (fallback) /* the standby of a new system never served: it does not start now */
        return in->never_served ? BG_KNOWN_NONE : BG_KNOWN_UP;
    return BG_KNOWN_OUT;
}

/* Is this member's last status still waiting for a balancer, and does that hold the switch? */
static bool held(const struct bg_plan_input *in, const struct bg_member *m)
{
    return m->unconfirmed && !in->proceed_unconfirmed;
}

/* Must this member be told `want` now? (Unknown, different, held for its balancers' confirmation
 * -- asked again, a long poll --, or due for resync.) */
static bool needs(const struct bg_plan_input *in, const struct bg_member *m, enum bg_known want,
                  bool fallback)
{
    if (m->known != want || held(in, m))
        return true;
    /* UP at another weight: told again (a canary started, changed or ended). */
    int had = m->weight > 0 ? m->weight : 100;
    if (want == BG_KNOWN_UP && had != bg_shape_weight(in->shape, in, (size_t)(m - in->m), fallback))
        return true;
    return in->resync_ms > 0 && in->now_ms - m->confirmed_ms >= in->resync_ms;
}

static void earliest(int64_t *wake, int64_t t)
{
    if (t > 0 && (*wake == 0 || t < *wake))
        *wake = t;
}

/* Append "<label>: colour id (text); ..." for the members `which` selects. */
static void note(const struct bg_plan_input *in, struct bg_plan *out, const char *label,
                 bool (*which)(const struct bg_member *m), bool use_check)
{
    size_t len = strlen(out->reason);
    int listed = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (!usable(m) || !which(m) || len + 8 >= sizeof(out->reason))
            continue;
        const char *text =
            use_check ? (m->check[0] ? m->check : "health check failing") : m->last_error;
        int w = snprintf(out->reason + len, sizeof(out->reason) - len, "%s%s%s %s (%s)",
                         listed ? "; " : (len ? "; " : ""), listed ? "" : label,
                         bg_color_name(m->color), m->id, text);
        if (w < 0 || (size_t)w >= sizeof(out->reason) - len) {
            out->reason[sizeof(out->reason) - 1] = '\0';
            break;
        }
        len += (size_t)w;
        listed++;
    }
}

static bool failing(const struct bg_member *m)
{
    return m->failures > 0;
}

static bool unhealthy(const struct bg_member *m)
{
    return !m->healthy;
}

/* Append the names of members that are waiting for a retry to the reason. */
static void note_retries(const struct bg_plan_input *in, struct bg_plan *out)
{
    note(in, out, "unreachable: ", failing, false);
}

/* Append the names of unhealthy members and their last check result to the reason. */
static void note_unhealthy(const struct bg_plan_input *in, struct bg_plan *out)
{
    note(in, out, "unhealthy: ", unhealthy, true);
}

/* Has this member's last call failed since the desired colour was set? */
static bool failed_lately(const struct bg_plan_input *in, const struct bg_member *m)
{
    return m->failures > 0 && m->failed_ms >= in->desired_since_ms;
}

/* Collect up to batch_size members (0: all of them) whose target is `want` and that need
 * telling: those not tried since the desired colour was set (or that succeeded last) first,
 * then those whose retry is due, each in order. Untried first, so that a sweep of the colour ends:
 * with due retries first, a colour with more failing members than a backoff period holds calls
 * always had one due, and the members after them were never tried. */
static size_t pick(const struct bg_plan_input *in, struct bg_plan *out, bool fallback,
                   enum bg_known want, bool *waiting)
{
    size_t batch = in->batch_size > 0 ? (size_t)in->batch_size : BG_PLAN_MAX_BATCH;
    if (batch > BG_PLAN_MAX_BATCH)
        batch = BG_PLAN_MAX_BATCH;
    size_t n = 0, moves = 0;
    *waiting = false;
    for (int retries = 0; retries <= 1; retries++) {
        for (size_t i = 0; i < in->n; i++) {
            const struct bg_member *m = &in->m[i];
            if (failed_lately(in, m) != retries || target(in, m, fallback) != want ||
                !needs(in, m, want, fallback))
                continue;
            /* A backoff from before the desired colour was set does not delay the switch's
             * first call; an answer "unconfirmed" is asked again no sooner than it says. */
            bool old_backoff = m->failures > 0 && !retries;
            if (m->retry_at_ms > in->now_ms && !old_backoff) {
                *waiting = true;
                earliest(&out->wake_at_ms, m->retry_at_ms);
                continue;
            }
            /* Asking again for a confirmation moves nothing: it does not take a place of the
             * batch, so a balancer slow to confirm one instance does not stall a gradual move.
             */
            bool again = m->known == want && held(in, m);
            if ((again || moves < batch) && n < BG_PLAN_MAX_BATCH) {
                out->weight[n] = bg_shape_weight(in->shape, in, i, fallback);
                out->idx[n++] = i;
                moves += !again;
            }
        }
    }
    out->n_idx = n;
    return n;
}

/* Has every desired-colour member that is still to be made UP been called since the desired
 * colour was set, and failed? Then a sweep of the colour is over and the switch can be judged:
 * "blocked" while short of min_ready, whoever is due for a retry. */
static bool swept(const struct bg_plan_input *in)
{
    size_t failed = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (target(in, m, false) != BG_KNOWN_UP || !needs(in, m, BG_KNOWN_UP, false))
            continue;
        if (!failed_lately(in, m))
            return false;
        failed++;
    }
    return failed > 0;
}

/* Fallback actions: the other colour's healthy members UP, then unhealthy members OUT.
 * Returns the action planned (BG_ACT_NONE when there is nothing to do). */
static int fall_back(const struct bg_plan_input *in, struct bg_plan *out)
{
    bool waiting;
    if (pick(in, out, true, BG_KNOWN_UP, &waiting) > 0)
        out->action = BG_ACT_UP;
    else if (pick(in, out, true, BG_KNOWN_OUT, &waiting) > 0)
        out->action = BG_ACT_OUT;
    return out->action;
}

/* Count the desired colour's members and note when a re-plan is due. Returns how many are
 * healthy but still inside min_healthy_time. */
static int count(const struct bg_plan_input *in, struct bg_plan *out)
{
    int pending = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (!usable(m))
            continue;
        if (in->resync_ms > 0 && m->confirmed_ms > 0)
            earliest(&out->wake_at_ms, m->confirmed_ms + in->resync_ms);
        if (m->color != in->desired || role(in, m) == BG_ROLE_DRAINED)
            continue;
        out->targets++;
        if (may_serve(in, m)) {
            out->healthy++;
            out->ready += m->known == BG_KNOWN_UP && !held(in, m);
        } else if (m->healthy) {
            pending++;
            earliest(&out->wake_at_ms, m->healthy_since_ms + min_healthy(in));
        }
    }
    return pending;
}

/* The desired colour cannot carry traffic (fewer than min_ready healthy members): keep the
 * other colour serving, say why. */
static void plan_unhealthy(const struct bg_plan_input *in, struct bg_plan *out, int pending)
{
    const char *want = bg_color_name(in->desired);
    const char *other = bg_color_name(bg_other_color(in->desired));
    /* Only instances that say they are unhealthy start a fallback: a colour with too few
     * registered instances may simply be re-registering (after a ZooKeeper outage its agents
     * keep serving), so the other colour is then left as it is. */
    bool sick = false;
    for (size_t i = 0; i < in->n; i++)
        sick |= usable(&in->m[i]) && in->m[i].color == in->desired && !in->m[i].healthy;
    int act = sick ? fall_back(in, out) : BG_ACT_NONE;
    if (!sick)
        out->n_idx = 0;
    bool other_healthy = false;
    for (size_t i = 0; i < in->n; i++)
        other_healthy |= usable(&in->m[i]) && in->m[i].color != in->desired && in->m[i].healthy &&
                         (!in->never_served || in->m[i].known == BG_KNOWN_UP);
    char tail[128];
    if (act == BG_ACT_UP)
        snprintf(tail, sizeof(tail), "; making %s UP again", other);
    else if (act == BG_ACT_OUT)
        snprintf(tail, sizeof(tail), "; taking unhealthy instances out");
    else
        snprintf(tail, sizeof(tail), "; %s %s", other,
                 other_healthy      ? "is kept UP"
                 : in->never_served ? "has never served and is left as it is"
                                    : "has no healthy instance either");
    bool soon = out->targets >= in->min_ready && out->healthy + pending >= in->min_ready;
    if (soon && !in->in_fallback) {
        out->phase = BG_PHASE_SWITCHING; /* healthy, not yet for min_healthy_time */
        snprintf(out->reason, sizeof(out->reason),
                 "%s: %d instance(s) healthy for less than min_healthy_time (%lld ms); waiting%s",
                 want, pending, (long long)in->min_healthy_ms, tail);
        return;
    }
    if (soon) {
        /* Healthy again after a fallback: stay fallen back until it proves it stays healthy,
         * so that a flapping application cannot swing the traffic to and fro. */
        out->phase = BG_PHASE_BLOCKED;
        out->fallback = true;
        snprintf(out->reason, sizeof(out->reason),
                 "%s is healthy again (%d instance(s)); switching back once it has stayed "
                 "healthy %lld ms%s",
                 want, pending, (long long)min_healthy(in), tail);
        return;
    }
    out->phase = BG_PHASE_BLOCKED;
    out->fallback = other_healthy && sick;
    if (out->targets < in->min_ready)
        snprintf(out->reason, sizeof(out->reason),
                 "%s has %d registered instance(s), min_ready is %d%s", want, out->targets,
                 in->min_ready, act == BG_ACT_NONE ? "; no instance was changed" : tail);
    else
        snprintf(out->reason, sizeof(out->reason),
                 "%s has %d healthy instance(s) of %d, min_ready is %d%s", want, out->healthy,
                 out->targets, in->min_ready, tail);
    note_unhealthy(in, out);
}

/* Members told `want` (their target in normal operation) whose balancers have not all seen it.
 * Sets *of to how many have that target, *late when one has been held past the bound, and
 * counts them into out->unconfirmed. */
static int unconfirmed(const struct bg_plan_input *in, struct bg_plan *out, enum bg_known want,
                       int *of, bool *late)
{
    int n = 0;
    *of = 0;
    *late = false;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (target(in, m, false) != want)
            continue;
        (*of)++;
        if (m->known != want || !held(in, m))
            continue;
        n++;
        if (in->unconfirmed_timeout_ms > 0) {
            int64_t due = m->unconfirmed_since_ms + in->unconfirmed_timeout_ms;
            if (in->now_ms >= due)
                *late = true;
            else
                earliest(&out->wake_at_ms, due);
        }
    }
    out->unconfirmed += n;
    return n;
}

/* Append "waiting for K of N to be confirmed (id: balancer, ...; id: ...)" to the reason. */
static void note_waiting(const struct bg_plan_input *in, struct bg_plan *out, enum bg_known want,
                         int k, int of, bool late, const char *sep)
{
    size_t len = strlen(out->reason);
    int w =
        snprintf(out->reason + len, sizeof(out->reason) - len,
                 "%swaiting for %d of %d to be confirmed%s (", sep, k, of,
                 late ? " for longer than unconfirmed_timeout; the other colour is kept UP" : "");
    if (w < 0 || (size_t)w >= sizeof(out->reason) - len)
        return;
    len += (size_t)w;
    int listed = 0;
    for (size_t i = 0; i < in->n && len + 4 < sizeof(out->reason); i++) {
        const struct bg_member *m = &in->m[i];
        if (target(in, m, false) != want || m->known != want || !held(in, m))
            continue;
        w = snprintf(out->reason + len, sizeof(out->reason) - len, "%s%s: ", listed ? "; " : "",
                     m->id);
        for (int b = 0; b < m->n_waiting && b < BG_WAITING_MAX && w >= 0; b++) {
            len += (size_t)w;
            if (len >= sizeof(out->reason))
                break;
            w = snprintf(out->reason + len, sizeof(out->reason) - len, "%s%s", b ? ", " : "",
                         m->waiting[b]);
        }
        if (w >= 0 && len < sizeof(out->reason))
            len += (size_t)w;
        if (m->n_waiting > BG_WAITING_MAX && len < sizeof(out->reason)) {
            w = snprintf(out->reason + len, sizeof(out->reason) - len, " and %d more",
                         m->n_waiting - BG_WAITING_MAX);
            len += w > 0 ? (size_t)w : 0;
        } else if (m->n_waiting == 0 && len < sizeof(out->reason)) {
            w = snprintf(out->reason + len, sizeof(out->reason) - len, "a balancer");
            len += w > 0 ? (size_t)w : 0;
        }
        listed++;
    }
    if (len + 1 < sizeof(out->reason)) {
        out->reason[len] = ')';
        out->reason[len + 1] = '\0';
    } else {
        out->reason[sizeof(out->reason) - 1] = '\0';
    }
}

/* How many of the picked members are told something new (not asked again for confirmation)? */
static size_t fresh(const struct bg_plan_input *in, const struct bg_plan *out, enum bg_known want)
{
    size_t n = 0;
    for (size_t i = 0; i < out->n_idx; i++)
        n += in->m[out->idx[i]].known != want;
    return n;
}

/* Every desired-colour instance still to be made UP has failed, short of min_ready: the
 * switch is blocked, and stays blocked while the retries are in flight (not "switching"
 * whenever one is due). */
static void plan_swept(const struct bg_plan_input *in, struct bg_plan *out)
{
    out->phase = BG_PHASE_BLOCKED;
    /* The other colour is left UP -- and made sure of first: a new leader knows
     * nothing of it, and with a retry always due it would never get to it. */
    bool waiting;
    bool keep = pick(in, out, true, BG_KNOWN_UP, &waiting) > 0;
    if (!keep)
        pick(in, out, false, BG_KNOWN_UP, &waiting);
    snprintf(out->reason, sizeof(out->reason),
             "only %d of %d %s instance(s) are UP, min_ready is %d; %s", out->ready, out->targets,
             bg_color_name(in->desired), in->min_ready,
             keep ? "keeping the other colour's healthy instances UP" : "retrying");
    note_retries(in, out);
}

/* Make: every healthy desired-colour instance UP, and seen UP by every balancer (hold).
 * Returns whether that is the plan (a member to make UP, or one not confirmed yet);
 * *waiting_up says a member is waiting for its retry. */
static bool plan_make(const struct bg_plan_input *in, struct bg_plan *out, bool *waiting_up)
{
    const char *want = bg_color_name(in->desired);
    bool late = false;
    int of = 0;
    int held_up = unconfirmed(in, out, BG_KNOWN_UP, &of, &late);
    if (pick(in, out, false, BG_KNOWN_UP, waiting_up) == 0 && held_up == 0)
        return false;
    out->phase = late ? BG_PHASE_BLOCKED : BG_PHASE_SWITCHING;
    out->action = out->n_idx > 0 ? BG_ACT_UP : BG_ACT_NONE;
    if (fresh(in, out, BG_KNOWN_UP) > 0 || held_up == 0)
        snprintf(out->reason, sizeof(out->reason), "marking %s UP (%d of %d ready)", want,
                 out->ready, out->targets);
    else
        snprintf(out->reason, sizeof(out->reason), "marking %s UP", want);
    if (held_up > 0)
        note_waiting(in, out, BG_KNOWN_UP, held_up, of, late,
                     fresh(in, out, BG_KNOWN_UP) > 0 ? "; " : ": ");
    if (held_up == 0 && swept(in) && (out->ready < in->min_ready || out->ready == 0))
        plan_swept(in, out);
    return true;
}

/* The first router that does not serve the desired colour yet (at least min_ready instances,
 * and one), or NULL; each such router's bit is set in out->routers_waited. */
static const struct bg_router_view *router_not_serving(const struct bg_plan_input *in,
                                                       struct bg_plan *out)
{
    int need = in->min_ready > 0 ? in->min_ready : 1;
    const struct bg_router_view *first = NULL;
    for (size_t i = 0; i < in->n_routers; i++) {
        if (in->routers[i].error[0] == '\0' && in->routers[i].serving[in->desired] >= need)
            continue;
        if (i < BG_ROUTERS_MAX)
            out->routers_waited |= UINT64_C(1) << i;
        if (first == NULL)
            first = &in->routers[i];
    }
    return first;
}

/* Make before break through routers: while one does not serve the desired colour, nothing
 * goes out (its error, if it has one, blocks). Returns whether that is the plan. */
static bool hold_for_router(const struct bg_plan_input *in, struct bg_plan *out)
{
    const struct bg_router_view *r = router_not_serving(in, out);
    if (r == NULL)
        return false;
    const char *want = bg_color_name(in->desired);
    out->n_idx = 0;
    out->action = BG_ACT_NONE;
    if (r->error[0] != '\0') {
        out->phase = BG_PHASE_BLOCKED;
        snprintf(out->reason, sizeof(out->reason),
                 "%s is UP (%d of %d); router %s failed: %s; the other colour stays", want,
                 out->ready, out->targets, r->id, r->error);
    } else {
        out->phase = BG_PHASE_SWITCHING;
        snprintf(out->reason, sizeof(out->reason),
                 "%s is UP (%d of %d); waiting for router %s to serve it (%d instance(s) of "
                 "it served)",
                 want, out->ready, out->targets, r->id, r->serving[in->desired]);
    }
    return true;
}

/* Break: the other colour OUT_OF_SERVICE, after settle; converged only once every balancer
 * has seen it out (hold). Returns whether that is the plan; *waiting_out says a member is
 * waiting for its retry. */
static bool plan_break(const struct bg_plan_input *in, struct bg_plan *out, bool *waiting_out)
{
    const char *want = bg_color_name(in->desired);
    bool late = false;
    int of = 0;
    int held_out = unconfirmed(in, out, BG_KNOWN_OUT, &of, &late);
    if (pick(in, out, false, BG_KNOWN_OUT, waiting_out) == 0 && held_out > 0) {
        out->phase = late ? BG_PHASE_BLOCKED : BG_PHASE_SWITCHING;
        snprintf(out->reason, sizeof(out->reason), "%s is UP (%d of %d); taking %s out", want,
                 out->ready, out->targets, bg_color_name(bg_other_color(in->desired)));
        note_waiting(in, out, BG_KNOWN_OUT, held_out, of, late, ": ");
        return true;
    }
    if (out->n_idx == 0)
        return false;
    if (hold_for_router(in, out))
        return true;
    int64_t settled = in->last_up_ms + in->settle_ms;
    if (in->last_up_ms > 0 && in->now_ms < settled) {
        out->phase = BG_PHASE_SETTLING;
        out->n_idx = 0;
        earliest(&out->wake_at_ms, settled);
        snprintf(out->reason, sizeof(out->reason),
                 "%s is UP; waiting %lld ms of settle before taking the other colour out", want,
                 (long long)(settled - in->now_ms));
        return true;
    }
    out->phase = late ? BG_PHASE_BLOCKED : BG_PHASE_SWITCHING;
    out->action = BG_ACT_OUT;
    const struct bg_member *first = &in->m[out->idx[0]];
    if (first->drained || role(in, first) == BG_ROLE_CANARY_SPARE)
        snprintf(out->reason, sizeof(out->reason), "%s is UP (%d of %d); %s %s %s out", want,
                 out->ready, out->targets, first->drained ? "draining: taking" : "canary: taking",
                 bg_color_name(first->color), first->id);
    else
        snprintf(out->reason, sizeof(out->reason), "%s is UP (%d of %d); taking %s out", want,
                 out->ready, out->targets, bg_color_name(bg_other_color(in->desired)));
    if (held_out > 0)
        note_waiting(in, out, BG_KNOWN_OUT, held_out, of, late, ": ");
    return true;
}

/* Nothing left to call: converged, unless an id is registered under both colours. */
static void plan_converged(const struct bg_plan_input *in, struct bg_plan *out)
{
    const char *want = bg_color_name(in->desired);
    /* An id registered under both colours is never driven (we cannot tell which node is the
     * real instance), so it may still be serving as the old colour: do not claim success. */
    for (size_t i = 0; i < in->n; i++) {
        if (in->m[i].duplicate) {
            out->phase = BG_PHASE_BLOCKED;
            snprintf(out->reason, sizeof(out->reason),
                     "%s is UP (%d of %d), but %s is registered under both blue and green and "
                     "was left as it is; delete the stray node",
                     want, out->ready, out->targets, in->m[i].id);
            return;
        }
    }
    enum bg_color old = bg_other_color(in->desired);
    /* A canary of the old colour keeps some of it UP: routers serve those, rightly. */
    const struct bg_shape *cs = in->shape;
    int allowed = cs && cs->canary && cs->canary_color == old
                      ? (cs->by_count ? cs->canary_up : cs->n_canary)
                      : 0;
    for (size_t i = 0; i < in->n_routers && i < BG_ROUTERS_MAX; i++)
        if (in->routers[i].serving[old] > allowed)
            out->routers_waited |= UINT64_C(1) << i;
    for (size_t i = 0; i < in->n_routers; i++) {
        const struct bg_router_view *r = &in->routers[i];
        if (r->serving[old] <= allowed) /* an error of a later change does not undo this one */
            continue;
        out->phase = r->error[0] != '\0' ? BG_PHASE_BLOCKED : BG_PHASE_SWITCHING;
        snprintf(out->reason, sizeof(out->reason),
                 "%s is UP (%d of %d), %s is out; waiting for router %s to drop it (%d "
                 "instance(s) of it served)%s%s",
                 want, out->ready, out->targets, bg_color_name(old), r->id, r->serving[old],
                 r->error[0] ? ": " : "", r->error);
        return;
    }
    out->phase = BG_PHASE_CONVERGED;
    const struct bg_shape *sh = in->shape;
    if (sh && sh->canary && sh->n_canary > 0 && !sh->by_count)
        snprintf(out->reason, sizeof(out->reason),
                 "%s is UP (%d instance(s)) at weight %d; canary %s %d %%: %d instance(s) at "
                 "weight %d (%.1f %%)",
                 want, out->ready, sh->w_active, bg_color_name(sh->canary_color), sh->percent,
                 sh->n_canary, sh->w_canary, sh->share);
    else if (sh && sh->canary && sh->n_canary > 0)
        snprintf(out->reason, sizeof(out->reason),
                 "%s is UP (%d instance(s)); canary %s %d %% by instance count: %d of %d "
                 "instance(s) UP (%.1f %%)",
                 want, out->ready, bg_color_name(sh->canary_color), sh->percent, sh->canary_up,
                 sh->n_canary, sh->share);
    else
        snprintf(out->reason, sizeof(out->reason), "%s is UP (%d instance(s)), %s is out", want,
                 out->ready, bg_color_name(bg_other_color(in->desired)));
    if (sh && sh->drained > 0) {
        size_t len = strlen(out->reason);
        snprintf(out->reason + len, sizeof(out->reason) - len, "; %d drained", sh->drained);
    }
    note_unhealthy(in, out);
}

static void decide(const struct bg_plan_input *in, struct bg_plan *out)
{
    memset(out, 0, sizeof(*out));
    if (in->desired != BG_BLUE && in->desired != BG_GREEN) {
        out->phase = BG_PHASE_BLOCKED;
        snprintf(out->reason, sizeof(out->reason),
                 "/active_color is invalid (%s): expected blue or green; "
                 "no instance was changed",
                 in->desired_problem ? in->desired_problem : "missing");
        return;
    }
    if (in->canary_problem || in->drain_problem) {
        out->phase = BG_PHASE_BLOCKED;
        snprintf(out->reason, sizeof(out->reason), "%s; no instance was changed",
                 in->canary_problem ? in->canary_problem : in->drain_problem);
        return;
    }
    const char *want = bg_color_name(in->desired);
    int pending = count(in, out);

    /* Gate: never break the old colour for a target that cannot carry traffic. */
    if (out->healthy < in->min_ready || out->targets < in->min_ready) {
        plan_unhealthy(in, out, pending);
        return;
    }
    bool waiting_up = false, waiting_out = false;
    if (plan_make(in, out, &waiting_up))
        return;
    if (out->ready < in->min_ready || out->ready == 0) {
        out->phase = BG_PHASE_BLOCKED;
        int act = fall_back(in, out);
        snprintf(out->reason, sizeof(out->reason),
                 "only %d of %d %s instance(s) are UP, min_ready is %d; %s", out->ready,
                 out->targets, want, in->min_ready,
                 act == BG_ACT_NONE ? "the other colour is left as it was"
                                    : "keeping the other colour's healthy instances UP");
        note_retries(in, out);
        return;
    }
    if (plan_break(in, out, &waiting_out))
        return;
    if (waiting_up || waiting_out) {
        out->phase = BG_PHASE_SWITCHING;
        snprintf(out->reason, sizeof(out->reason), "%s is UP (%d of %d); retrying", want,
                 out->ready, out->targets);
        note_retries(in, out);
        return;
    }
    plan_converged(in, out);
}

/* Questions asked at once: asking changes nothing, so batch_size does not apply; but each is
 * a transfer with its buffers, and the memory of a peak stays with the process. */
#define PROBE_BATCH 64

/* Before telling agents anything, ask the ones whose status is unknown (a new leader knows
 * nothing of any: re-sending every status made each takeover 2N confirmed changes). Those
 * that cannot be asked stay unknown and are told as before: an instance whose state is
 * unknown is still called. */
static void probe_first(const struct bg_plan_input *in, struct bg_plan *out)
{
    size_t n = 0;
    for (size_t i = 0; i < in->n && n < PROBE_BATCH; i++) {
        const struct bg_member *m = &in->m[i];
        if (usable(m) && m->known == BG_KNOWN_NONE && !m->probed && m->failures == 0)
            out->idx[n++] = i;
    }
    if (n == 0)
        return;
    out->n_idx = n;
    out->action = BG_ACT_PROBE;
    size_t len = strlen(out->reason);
    snprintf(out->reason + len, sizeof(out->reason) - len,
             "; asking %zu agent(s) their status first", n);
}

/* Append the refused drains ("drain of blue b1 refused: ...") and the canary's note. A refused
 * drain makes a converged plan blocked: the operator's request was not carried out. */
static void note_shape(const struct bg_plan_input *in, struct bg_plan *out)
{
    const struct bg_shape *sh = in->shape;
    size_t len = strlen(out->reason);
    if (sh->note[0] && len + 2 < sizeof(out->reason))
        snprintf(out->reason + len, sizeof(out->reason) - len, "; %s", sh->note);
    if (sh->refused == 0)
        return;
    if (out->phase == BG_PHASE_CONVERGED)
        out->phase = BG_PHASE_BLOCKED;
    for (size_t i = 0; i < in->n; i++) {
        if (sh->role[i] != BG_ROLE_DRAIN_REFUSED)
            continue;
        len = strlen(out->reason);
        if (len + 8 >= sizeof(out->reason))
            break;
        snprintf(out->reason + len, sizeof(out->reason) - len,
                 "; drain of %s %s refused: it would leave %s below min_ready (%d)",
                 bg_color_name(in->m[i].color), in->m[i].id, bg_color_name(in->desired),
                 in->min_ready);
    }
}

void bg_plan(const struct bg_plan_input *in, struct bg_plan *out)
{
    struct bg_shape shape;
    bg_shape_init(&shape, in);
    struct bg_plan_input with = *in;
    with.shape = &shape;
    in = &with;
    decide(in, out);
    if (out->phase != BG_PHASE_BLOCKED || !(in->canary_problem || in->drain_problem ||
                                            (in->desired != BG_BLUE && in->desired != BG_GREEN)))
        note_shape(in, out);
    bg_shape_free(&shape);
    with.shape = NULL;
    if (in->probe_unknown && out->action != BG_ACT_NONE)
        probe_first(in, out);
    /* The reason quotes ids and agents' errors and is cut at its size: never inside a
     * character (it is written into /status and /history as JSON). */
    bg_utf8_trim_end(out->reason);
}
