/* backend_health.c -- GET /health answers 200/503; a change is applied once pollers saw it. */
#include "agent.h"
#include "confirm.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

struct health {
    enum bg_status served;
    struct bg_confirm confirm;
};

static int health_init(struct bg_backend *b, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct health *h = bg_xcalloc(1, sizeof(*h));
    h->served = BG_STATUS_OUT; /* a new instance takes no traffic until told */
    int64_t window = b->conf ? b->conf->poll_window_ms : 5000;
    int64_t timeout = b->conf ? b->conf->confirm_timeout_ms : 3000;
    int polls = b->conf ? b->conf->confirm_polls : 1;
    bg_confirm_init(&h->confirm, window, timeout, polls);
    /* Anyone can GET /health: one stray curl must not make every change wait for it. */
    h->confirm.min_peer_polls = 2;
    b->priv = h;
    return 0;
}

static int health_apply(struct bg_backend *b, enum bg_status st)
{
    struct health *h = b->priv;
    int64_t now = bg_now_ms();
    if (h->served == st && !h->confirm.waiting) {
        snprintf(b->msg, sizeof(b->msg), "unchanged");
        return 0;
    }
    h->served = st;
    h->confirm.limit_ms = b->deadline_ms;
    if (!bg_confirm_start(&h->confirm, now)) {
        snprintf(b->msg, sizeof(b->msg), "applied (no balancer polling)");
        return 0;
    }
    snprintf(b->msg, sizeof(b->msg), "waiting for balancers to poll");
    return BG_PENDING;
}

static int health_progress(struct bg_backend *b, int64_t now)
{
    struct health *h = b->priv;
    int rc = bg_confirm_check(&h->confirm, now, b->msg, sizeof(b->msg));
    /* Unconfirmed is reported, not failed: the balancer may simply have gone away. */
    return rc == 1 ? BG_PENDING : 0;
}

static int64_t health_deadline(struct bg_backend *b)
{
    struct health *h = b->priv;
    if (!h->confirm.waiting)
        return 0;
    int64_t d = h->confirm.changed_ms + h->confirm.timeout_ms;
    return h->confirm.limit_ms > 0 && h->confirm.limit_ms < d ? h->confirm.limit_ms : d;
}

static void health_destroy(struct bg_backend *b)
{
    free(b->priv);
    b->priv = NULL;
}

bool bg_health_is_up(struct bg_backend *b)
{
    struct health *h = b->priv;
    return h->served == BG_STATUS_UP;
}

void bg_health_polled(struct bg_backend *b, const char *peer, enum bg_status st)
{
    struct health *h = b->priv;
    (void)st;
    bg_confirm_polled(&h->confirm, peer, bg_now_ms());
}

const struct bg_backend_ops bg_backend_health_ops = {
    .type = "health",
    .init = health_init,
    .apply = health_apply,
    .progress = health_progress,
    .deadline = health_deadline,
    .destroy = health_destroy,
};
