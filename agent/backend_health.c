/* backend_health.c -- GET /health answers 200/503 (or 404 while OUT_OF_SERVICE, opt-in); a
 * change is applied once balancers saw it. */
#include "agent.h"
#include "confirm.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct health {
    enum bg_status served;
    int out_code; /* answer while OUT_OF_SERVICE and healthy: 503, or 404 (soft stop) */
    struct bg_confirm confirm;
};

static int health_init(struct bg_backend *b, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct health *h = bg_xcalloc(1, sizeof(*h));
    h->served = BG_STATUS_OUT; /* a new instance takes no traffic until told */
    int64_t window = b->conf ? b->conf->poll_window_ms : 5000;
    int64_t timeout = b->conf ? b->conf->confirm_timeout_ms : 0;
    int polls = b->conf ? b->conf->confirm_polls : 3;
    /* 0: a conf made without the loader (the agent's implicit health entry): the default. */
    h->out_code = b->conf && b->conf->out_of_service_code == 404 ? 404 : 503;
    if (h->out_code == 404)
        bg_info("health_out_of_service_code",
                "code=404 reason=\"GET /health answers 404 while OUT_OF_SERVICE and healthy "
                "(HAProxy http-check disable-on-404: NOLB at once), 503 when the application "
                "fails\"");
    bg_confirm_init(&h->confirm, window, timeout, polls);
    /* Anyone can GET /health: see confirm.c for who counts as a balancer. */
    h->confirm.check_agent = true;
    b->priv = h;
    return 0;
}

static int health_apply(struct bg_backend *b, enum bg_status st)
{
    struct health *h = b->priv;
    int64_t now = bg_now_ms();
    h->confirm.limit_ms = b->deadline_ms;
    if (h->served == st) {
        /* Asked again (the controller long-polls an unconfirmed change): wait again. */
        if (!bg_confirm_rearm(&h->confirm, now)) {
            snprintf(b->msg, sizeof(b->msg), "unchanged");
            return 0;
        }
        snprintf(b->msg, sizeof(b->msg), "unchanged; waiting for balancers to confirm");
        return BG_PENDING;
    }
    h->served = st;
    if (!bg_confirm_start(&h->confirm, st == BG_STATUS_UP, now)) {
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
    /* Unconfirmed is reported (confirmed: false, waiting_for), not failed. */
    return rc == 1 ? BG_PENDING : 0;
}

static void health_cancel(struct bg_backend *b)
{
    struct health *h = b->priv;
    h->confirm.waiting = false;
}

static int64_t health_deadline(struct bg_backend *b)
{
    struct health *h = b->priv;
    return bg_confirm_deadline(&h->confirm, bg_now_ms());
}

static void health_destroy(struct bg_backend *b)
{
    free(b->priv);
    b->priv = NULL;
}

static struct bg_confirm *health_confirm(struct bg_backend *b)
{
    struct health *h = b->priv;
    return &h->confirm;
}

bool bg_health_is_up(struct bg_backend *b)
{
    struct health *h = b->priv;
    return h->served == BG_STATUS_UP;
}

void bg_health_polled(struct bg_backend *b, const char *peer, const char *user_agent,
                      const char *send_state, enum bg_status st)
{
    struct health *h = b->priv;
    struct bg_server_state ss;
    bool have_ss =
        send_state != NULL && bg_server_state_parse(send_state, strlen(send_state), &ss) == 0;
    /* The poll was answered 404 exactly when GET /health computed it so (same state, same
     * thread, no change in between): OUT_OF_SERVICE, healthy, out_of_service_code 404. */
    bool healthy = b->agent == NULL || bg_agent_app_healthy(b->agent);
    bool soft = st == BG_STATUS_OUT &&
                bg_health_answer_code(h->served == BG_STATUS_UP, healthy, h->out_code) == 404;
    struct bg_poll p = {.addr = peer,
                        .user_agent = user_agent,
                        .ss = have_ss ? &ss : NULL,
                        .answered_current = st == h->served,
                        .answered_up = st == BG_STATUS_UP,
                        .answered_soft = soft};
    bg_confirm_polled(&h->confirm, &p, bg_now_ms());
}

const struct bg_backend_ops bg_backend_health_ops = {
    .type = "health",
    .init = health_init,
    .apply = health_apply,
    .progress = health_progress,
    .cancel = health_cancel,
    .deadline = health_deadline,
    .destroy = health_destroy,
    .confirm = health_confirm,
};
