/* shape.c -- traffic shaping's decision (DESIGN §12): drains and the canary, per member. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * Drains
 * ------------------------------------------------------------------------------------- */

static bool usable(const struct bg_member *m)
{
    return m->endpoint != NULL;
}

/* Drains of the desired colour's healthy members are taken in member order while at least
 * min_ready of them stay in service; the later ones are refused. Other drains always apply. */
static void shape_drains(struct bg_shape *s, const struct bg_plan_input *in)
{
    int healthy = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        healthy += usable(m) && m->color == in->desired && m->healthy;
    }
    int allowed = healthy - in->min_ready;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (!m->drained)
            continue;
        if (usable(m) && m->color == in->desired && m->healthy) {
            if (allowed <= 0) {
                s->role[i] = BG_ROLE_DRAIN_REFUSED;
                s->refused++;
                continue;
            }
            allowed--;
        }
        s->role[i] = BG_ROLE_DRAINED;
        s->drained++;
    }
}

/* ----------------------------------------------------------------------------------------
 * Canary
 * ------------------------------------------------------------------------------------- */

static bool in_service(const struct bg_shape *s, const struct bg_member *m, size_t i)
{
    return usable(m) && m->healthy && s->role[i] != BG_ROLE_DRAINED;
}

/* Instance-count canary: the first canary_up healthy canary members, those UP first. */
static void pick_count(struct bg_shape *s, const struct bg_plan_input *in)
{
    int left = s->canary_up;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < in->n; i++) {
            const struct bg_member *m = &in->m[i];
            if (m->color != s->canary_color || !in_service(s, m, i) ||
                s->role[i] != BG_ROLE_NORMAL || (pass == 0 && m->known != BG_KNOWN_UP))
                continue;
            s->role[i] = left > 0 ? BG_ROLE_CANARY : BG_ROLE_NORMAL;
            left -= left > 0;
        }
    }
    for (size_t i = 0; i < in->n; i++)
        if (in->m[i].color == s->canary_color && s->role[i] == BG_ROLE_NORMAL)
            s->role[i] = BG_ROLE_CANARY_SPARE;
}

static void shape_canary(struct bg_shape *s, const struct bg_plan_input *in)
{
    enum bg_color c = in->canary.color;
    if ((c != BG_BLUE && c != BG_GREEN) || in->canary.percent < 1 || in->canary.percent > 99)
        return; /* no canary (a zeroed input has none) */
    if (c == in->desired) {
        snprintf(s->note, sizeof(s->note),
                 "/canary names the active colour (%s %d): ignored; delete it or set another",
                 bg_color_name(c), in->canary.percent);
        return;
    }
    bool weighted = true;
    for (size_t i = 0; i < in->n; i++) {
        const struct bg_member *m = &in->m[i];
        if (!in_service(s, m, i))
            continue;
        s->n_canary += m->color == c;
        s->n_active += m->color == in->desired;
        weighted &= m->can_weight;
    }
    s->canary = true;
    s->canary_color = c;
    s->percent = in->canary.percent;
    s->by_count = !weighted;
    if (s->n_canary == 0)
        snprintf(s->note, sizeof(s->note), "canary %s %d %%: %s has no healthy instance",
                 bg_color_name(c), s->percent, bg_color_name(c));
    if (weighted) {
        bg_canary_weights(s->n_canary, s->n_active, s->percent, &s->w_canary, &s->w_active);
        s->canary_up = s->n_canary;
        for (size_t i = 0; i < in->n; i++)
            if (in->m[i].color == c && s->role[i] == BG_ROLE_NORMAL)
                s->role[i] = BG_ROLE_CANARY;
    } else {
        s->canary_up = bg_canary_count(s->n_canary, s->n_active, s->percent);
        pick_count(s, in);
    }
    s->share = bg_canary_share(s->canary_up, s->w_canary, s->n_active, s->w_active);
}

void bg_shape_init(struct bg_shape *s, const struct bg_plan_input *in)
{
    memset(s, 0, sizeof(*s));
    s->w_canary = s->w_active = 100;
    s->canary_color = BG_COLOR_INVALID;
    s->role = in->n > 0 ? bg_xcalloc(in->n, 1) : NULL;
    if (in->desired != BG_BLUE && in->desired != BG_GREEN)
        return;
    shape_drains(s, in);
    shape_canary(s, in);
}

void bg_shape_free(struct bg_shape *s)
{
    free(s->role);
    s->role = NULL;
}

int bg_shape_weight(const struct bg_shape *s, const struct bg_plan_input *in, size_t i,
                    bool fallback)
{
    if (fallback || !s || !s->canary || !s->role)
        return 100;
    if (s->role[i] == BG_ROLE_CANARY)
        return s->w_canary;
    return in->m[i].color == in->desired ? s->w_active : 100;
}

/* ----------------------------------------------------------------------------------------
 * /status
 * ------------------------------------------------------------------------------------- */

static const char *role_drain(enum bg_role r)
{
    return r == BG_ROLE_DRAINED ? "applied" : r == BG_ROLE_DRAIN_REFUSED ? "refused" : NULL;
}

void bg_shape_status(json_t *status, const struct bg_shape *s, const struct bg_plan_input *in)
{
    if (s->canary || s->note[0]) {
        json_t *c = json_object();
        if (in->canary.color == BG_BLUE || in->canary.color == BG_GREEN) {
            json_object_set_new(c, "color", json_string(bg_color_name(in->canary.color)));
            json_object_set_new(c, "percent", json_integer(in->canary.percent));
        }
        json_object_set_new(c, "active", json_boolean(s->canary));
        if (s->canary) {
            json_object_set_new(c, "mode", json_string(s->by_count ? "instances" : "weights"));
            json_object_set_new(c, "weight_canary", json_integer(s->w_canary));
            json_object_set_new(c, "weight_active", json_integer(s->w_active));
            json_object_set_new(c, "canary_instances", json_integer(s->n_canary));
            json_object_set_new(c, "canary_up", json_integer(s->canary_up));
            json_object_set_new(c, "active_instances", json_integer(s->n_active));
            json_object_set_new(c, "share", json_real((double)(int)(s->share * 10 + 0.5) / 10));
        }
        if (s->note[0])
            json_object_set_new(c, "note", json_string(s->note));
        json_object_set_new(status, "canary", c);
    }
    json_t *d = json_array();
    for (size_t i = 0; i < in->n && s->role; i++) {
        const char *state = role_drain((enum bg_role)s->role[i]);
        if (!state)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(in->m[i].id));
        json_object_set_new(o, "color", json_string(bg_color_name(in->m[i].color)));
        json_object_set_new(o, "reason", json_string(in->m[i].drain_reason));
        json_object_set_new(o, "drain", json_string(state));
        json_object_set_new(o, "status", json_string(bg_known_name(in->m[i].known)));
        json_array_append_new(d, o);
    }
    if (json_array_size(d) > 0)
        json_object_set_new(status, "drains", d);
    else
        json_decref(d);
}
