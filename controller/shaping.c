/* shaping.c -- bg-controller: what the leader reads of traffic shaping, /canary and
 * /drain/<id> (DESIGN §12); the decision is the plan's (shape.c). */
#include "ctl_internal.h"
#include "log.h"
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One /drain/<id> node. */
struct bg_drain {
    char id[129];
    char reason[BG_DRAIN_REASON_MAX + 1];
};

/* The most drain entries read (a rolling deploy drains a few at a time). */
#define DRAINS_MAX 1024

/* ----------------------------------------------------------------------------------------
 * /canary
 * ------------------------------------------------------------------------------------- */

/* A /history entry for a canary set, changed or ended (not for what a new leader finds). */
static void canary_history(struct bg_ctl *c, struct bg_canary was)
{
    char text[160];
    const struct bg_canary *now = &c->canary;
    const char *color = bg_color_name(now->percent ? now->color : was.color);
    if (now->percent == 0)
        snprintf(text, sizeof(text), "canary %s %d %% ended", bg_color_name(was.color),
                 was.percent);
    else if (was.percent == 0)
        snprintf(text, sizeof(text), "canary %s %d %% set", color, now->percent);
    else
        snprintf(text, sizeof(text), "canary %s %d %% -> %s %d %%", bg_color_name(was.color),
                 was.percent, color, now->percent);
    bg_ctl_history_event(c, "canary", color,
                         now->percent == 0  ? "ended"
                         : was.percent == 0 ? "set"
                                            : "changed",
                         text);
}

static void read_canary(struct bg_ctl *c)
{
    char path[600], buf[257], why[160];
    bg_ctl_zpath(c, "/canary", path, sizeof(path));
    int len = (int)sizeof(buf) - 1;
    struct Stat st;
    int rc = bg_zk_get(&c->zk, path, 1, buf, &len, &st);
    struct bg_canary was = c->canary;
    if (rc == ZNONODE) {
        bg_zk_exists(&c->zk, path, 1, &st); /* watched: its creation wakes us */
        c->canary = (struct bg_canary){.color = BG_COLOR_INVALID};
        c->canary_problem[0] = '\0';
    } else if (rc != ZOK) {
        return; /* keep what we knew; the read is tried again at the next event */
    } else if (st.dataLength > (int)sizeof(buf) - 1) {
        snprintf(c->canary_problem, sizeof(c->canary_problem),
                 "/canary is invalid (%d bytes of data): expected '<blue|green> <percent 1-99>'",
                 st.dataLength);
    } else if (bg_parse_canary(buf, len > 0 ? (size_t)len : 0, &c->canary, why, sizeof(why)) != 0) {
        char clean[48];
        bg_sanitize(buf, len > 0 ? (size_t)len : 0, clean, sizeof(clean));
        snprintf(c->canary_problem, sizeof(c->canary_problem), "/canary is invalid ('%s'): %s",
                 clean, why);
    } else {
        c->canary_problem[0] = '\0';
    }
    bool changed = was.color != c->canary.color || was.percent != c->canary.percent;
    if (changed)
        bg_info("canary", "color=%s percent=%d",
                c->canary.percent ? bg_color_name(c->canary.color) : "none", c->canary.percent);
    if (changed && c->canary_read)
        canary_history(c, was);
    c->canary_read = true;
}

/* ----------------------------------------------------------------------------------------
 * /drain/<id>
 * ------------------------------------------------------------------------------------- */

static int by_drain_id(const void *a, const void *b)
{
    return strcmp(((const struct bg_drain *)a)->id, ((const struct bg_drain *)b)->id);
}

/* One /drain/<id> node into d. Returns 0, 1 when it is gone, or -1 with c->drain_problem set
 * (malformed) or left empty (not readable now). */
static int read_drain(struct bg_ctl *c, const char *name, struct bg_drain *d)
{
    char path[900], buf[BG_DRAIN_REASON_MAX * 2 + 1], why[160], rel[300];
    snprintf(rel, sizeof(rel), "/drain/%s", name);
    bg_ctl_zpath(c, rel, path, sizeof(path));
    int len = (int)sizeof(buf) - 1;
    struct Stat st;
    int rc = bg_zk_get(&c->zk, path, 1, buf, &len, &st);
    if (rc == ZNONODE)
        return 1;
    if (rc != ZOK)
        return -1;
    char clean[64];
    bg_sanitize(name, strlen(name), clean, sizeof(clean));
    if (!bg_drain_id_ok(name)) {
        snprintf(c->drain_problem, sizeof(c->drain_problem),
                 "/drain/%s is invalid: not an instance id ([A-Za-z0-9._:-], 1-128 bytes)", clean);
        return -1;
    }
    if (st.dataLength > (int)sizeof(buf) - 1 ||
        bg_parse_drain(buf, len > 0 ? (size_t)len : 0, d->reason, sizeof(d->reason), why,
                       sizeof(why)) != 0) {
        snprintf(c->drain_problem, sizeof(c->drain_problem), "/drain/%s is invalid: %s", clean,
                 st.dataLength > (int)sizeof(buf) - 1 ? "the reason is longer than 200 bytes"
                                                      : why);
        return -1;
    }
    bg_strlcpy_utf8(d->id, name, sizeof(d->id));
    return 0;
}

/* Read every /drain/<id>. Returns 0, or -1 when the list could not be read (kept as it was). */
static int read_drains(struct bg_ctl *c)
{
    char path[600];
    bg_ctl_zpath(c, "/drain", path, sizeof(path));
    struct String_vector kids = {0, NULL};
    int rc = bg_zk_children(&c->zk, path, 1, &kids);
    if (rc == ZNONODE) {
        struct Stat st;
        bg_zk_exists(&c->zk, path, 1, &st);
    } else if (rc != ZOK) {
        return -1;
    }
    size_t n = 0, want = kids.count > DRAINS_MAX ? DRAINS_MAX : (size_t)kids.count;
    struct bg_drain *d = bg_xcalloc(want ? want : 1, sizeof(*d));
    char problem[256];
    snprintf(problem, sizeof(problem), "%s", c->drain_problem);
    c->drain_problem[0] = '\0';
    for (size_t i = 0; i < want; i++) {
        int r = read_drain(c, kids.data[i], &d[n]);
        if (r == 0)
            n++;
        if (r < 0 && c->drain_problem[0] == '\0') { /* unreadable now: keep what we had */
            snprintf(c->drain_problem, sizeof(c->drain_problem), "%s", problem);
            free(d);
            deallocate_String_vector(&kids);
            return -1;
        }
    }
    deallocate_String_vector(&kids);
    qsort(d, n, sizeof(*d), by_drain_id);
    if (n != c->n_drains || (n > 0 && memcmp(d, c->drains, n * sizeof(*d)) != 0))
        bg_info("drains", "count=%zu first=%s", n, n > 0 ? d[0].id : "-");
    free(c->drains);
    c->drains = d;
    c->n_drains = n;
    return 0;
}

/* Mark the members the drains name. */
static void apply_drains(struct bg_ctl *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct bg_member *m = &c->m[i];
        struct bg_drain key;
        bg_strlcpy_utf8(key.id, m->id, sizeof(key.id));
        const struct bg_drain *d =
            c->n_drains ? bsearch(&key, c->drains, c->n_drains, sizeof(key), by_drain_id) : NULL;
        if (m->drained && d == NULL)
            m->undrained = true;
        if (d != NULL)
            m->undrained = false;
        m->drained = d != NULL;
        snprintf(m->drain_reason, sizeof(m->drain_reason), "%s", d ? d->reason : "");
    }
}

void bg_ctl_read_shaping(struct bg_ctl *c)
{
    read_canary(c);
    read_drains(c);
    apply_drains(c);
}

void bg_ctl_shaping_clear(struct bg_ctl *c)
{
    c->canary_read = false; /* a new leadership records only the changes it sees */
    free(c->drains);
    c->drains = NULL;
    c->n_drains = 0;
}
