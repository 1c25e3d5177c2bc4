/* plan.c -- the reconcile decision as a pure function (unit-tested without ZooKeeper). */
#include "plan.h"

#include <stdio.h>
#include <string.h>

const char *bg_phase_name(enum bg_phase p)
{
    static const char *names[] = {"idle", "switching", "settling", "converged", "blocked"};
    return (size_t)p < BG_ARRAY_LEN(names) ? names[p] : "unknown";
}

static bool usable(const struct bg_member *m)
{
    return m->endpoint != NULL;
}

/* Must this member be told `want` now? (Unknown, different, or due for resync.) */
static bool needs(const struct bg_plan_input *in, const struct bg_member *m, enum bg_known want)
{
    if (m->known != want)
        return true;
    return in->resync_ms > 0 && in->now_ms - m->confirmed_ms >= in->resync_ms;
}

static void earliest(int64_t *wake, int64_t t)
{
    if (t > 0 && (*wake == 0 || t < *wake))
        *wake = t;
}

/* Append the names of members that are waiting for a retry to the reason. */
static void note_retries(const struct bg_plan_input *in, struct bg_plan *out)
{
    size_t len = strlen(out->reason);
    int listed = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (!usable(m) || m->failures == 0 || len + 8 >= sizeof(out->reason))
            continue;
        int w = snprintf(out->reason + len, sizeof(out->reason) - len, "%s%s %s (%s)",
                         listed ? "; " : (len ? "; unreachable: " : "unreachable: "),
                         bg_color_name(m->color), m->id, m->last_error);
        if (w < 0 || (size_t)w >= sizeof(out->reason) - len) {
            out->reason[sizeof(out->reason) - 1] = '\0';
            break;
        }
        len += (size_t)w;
        listed++;
    }
}

/* Collect up to batch_size members of `color` (or not of it) that need `want`. */
static size_t pick(const struct bg_plan_input *in, struct bg_plan *out, bool of_desired,
                   enum bg_known want, bool *waiting)
{
    size_t batch = in->batch_size > 0 ? (size_t)in->batch_size : 1;
    if (batch > BG_PLAN_MAX_BATCH)
        batch = BG_PLAN_MAX_BATCH;
    size_t n = 0;
    *waiting = false;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (!usable(m) || (m->color == in->desired) != of_desired || !needs(in, m, want))
            continue;
        if (m->retry_at_ms > in->now_ms) {
            *waiting = true;
            earliest(&out->wake_at_ms, m->retry_at_ms);
            continue;
        }
        if (n < batch)
            out->idx[n++] = i;
    }
    out->n_idx = n;
    return n;
}

void bg_plan(const struct bg_plan_input *in, struct bg_plan *out)
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
    const char *want = bg_color_name(in->desired);
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (!usable(m) || m->color != in->desired)
            continue;
        out->targets++;
        out->ready += m->known == BG_KNOWN_UP;
        if (in->resync_ms > 0 && m->confirmed_ms > 0)
            earliest(&out->wake_at_ms, m->confirmed_ms + in->resync_ms);
    }
    for (size_t i = 0; i < in->n; i++)
        if (usable(&in->m[i]) && in->m[i].color != in->desired && in->resync_ms > 0 &&
            in->m[i].confirmed_ms > 0)
            earliest(&out->wake_at_ms, in->m[i].confirmed_ms + in->resync_ms);

    /* Gate: never break the old colour for a target that cannot carry traffic. */
    if (out->targets < in->min_ready) {
        out->phase = BG_PHASE_BLOCKED;
        snprintf(out->reason, sizeof(out->reason),
                 "%s has %d registered instance(s), min_ready is %d; no instance was changed", want,
                 out->targets, in->min_ready);
        return;
    }

    /* Make: every desired-colour instance UP. */
    bool waiting_up = false;
    if (pick(in, out, true, BG_KNOWN_UP, &waiting_up) > 0) {
        out->phase = BG_PHASE_SWITCHING;
        out->action = BG_ACT_UP;
        snprintf(out->reason, sizeof(out->reason), "marking %s UP (%d of %d ready)", want,
                 out->ready, out->targets);
        return;
    }
    if (out->ready < in->min_ready || out->ready == 0) {
        out->phase = BG_PHASE_BLOCKED;
        snprintf(out->reason, sizeof(out->reason),
                 "only %d of %d %s instance(s) are UP, min_ready is %d; the other colour is "
                 "left as it was",
                 out->ready, out->targets, want, in->min_ready);
        note_retries(in, out);
        return;
    }

    /* Break: the other colour OUT_OF_SERVICE, after settle. */
    bool waiting_out = false;
    if (pick(in, out, false, BG_KNOWN_OUT, &waiting_out) > 0) {
        int64_t settled = in->last_up_ms + in->settle_ms;
        if (in->last_up_ms > 0 && in->now_ms < settled) {
            out->phase = BG_PHASE_SETTLING;
            out->n_idx = 0;
            earliest(&out->wake_at_ms, settled);
            snprintf(out->reason, sizeof(out->reason),
                     "%s is UP; waiting %lld ms of settle before taking the other colour out", want,
                     (long long)(settled - in->now_ms));
            return;
        }
        out->phase = BG_PHASE_SWITCHING;
        out->action = BG_ACT_OUT;
        snprintf(out->reason, sizeof(out->reason), "%s is UP (%d of %d); taking %s out", want,
                 out->ready, out->targets, bg_color_name(bg_other_color(in->desired)));
        return;
    }
    if (waiting_up || waiting_out) {
        out->phase = BG_PHASE_SWITCHING;
        snprintf(out->reason, sizeof(out->reason), "%s is UP (%d of %d); retrying", want,
                 out->ready, out->targets);
        note_retries(in, out);
        return;
    }
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
    out->phase = BG_PHASE_CONVERGED;
    snprintf(out->reason, sizeof(out->reason), "%s is UP (%d instance(s)), %s is out", want,
             out->ready, bg_color_name(bg_other_color(in->desired)));
}
