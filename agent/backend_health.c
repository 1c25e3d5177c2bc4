/* backend_health.c -- the "health" backend type: GET /health answers 200/503 (or 404 while
 * OUT_OF_SERVICE, opt-in); a change is applied once balancers saw it. Its agent.yaml keys and
 * what runs it. */
#include "agent.h"
#include "backend.h"
#include "confirm.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * Configuration: type: health.
 * ------------------------------------------------------------------------------------- */

enum { K_TYPE, K_CONFIRM, K_POLL, K_CONFIRM_POLLS, K_OOS_CODE };

static const char *const keys[] = {"type",          "confirm_timeout",     "poll_window",
                                   "confirm_polls", "out_of_service_code", NULL};

static void *health_make(void)
{
    struct bg_health_conf *c = bg_xcalloc(1, sizeof(*c));
    /* confirm_polls 3: max(rise 2, fall 3) of HAProxy's defaults. */
    c->confirm = bg_confirm_conf_defaults(3);
    /* 404 is opt-in (HAProxy's disable-on-404). */
    c->out_of_service_code = 503;
    return c;
}

/* health.out_of_service_code: 503 (the default: the balancer's fall takes the server out) or
 * 404 (HAProxy's "http-check disable-on-404" puts it in NOLB at once). Nothing else: another
 * code would only look like a failure to every balancer. */
static void get_oos_code(struct bg_yaml *l, const yaml_node_t *n, const char *path, int *out)
{
    static const char expected[] =
        "503 (the default) or 404 (for HAProxy's http-check disable-on-404)";
    if (n == NULL)
        return;
    long long v = 0;
    bool number = n->type == YAML_SCALAR_NODE && bg_yaml_parse_int(bg_yaml_text(n), &v);
    if (number && bg_yaml_is_quoted(n)) {
        bg_yaml_fail(l, n->start_mark, path, "expected %s without quotes, got the string \"%s\"",
                     expected, bg_yaml_text(n));
        return;
    }
    if (!number || (v != 404 && v != 503)) {
        bg_yaml_bad(l, n, path, expected);
        return;
    }
    *out = (int)v;
}

static void health_load(const struct bg_backend_entry *e, void *settings)
{
    struct bg_health_conf *c = settings;
    bg_backend_get_confirm(e, K_CONFIRM, &c->confirm);
    get_oos_code(e->l, e->s[K_OOS_CODE].val, e->w[K_OOS_CODE], &c->out_of_service_code);
}

/* ----------------------------------------------------------------------------------------
 * Running it.
 * ------------------------------------------------------------------------------------- */

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
    const struct bg_health_conf *c = b->conf->settings;
    h->out_code = c->out_of_service_code == 404 ? 404 : 503;
    if (h->out_code == 404)
        bg_info("health_out_of_service_code",
                "code=404 reason=\"GET /health answers 404 while OUT_OF_SERVICE and healthy "
                "(HAProxy http-check disable-on-404: NOLB at once), 503 when the application "
                "fails\"");
    bg_confirm_init(&h->confirm, c->confirm.poll_window_ms, c->confirm.confirm_timeout_ms,
                    c->confirm.confirm_polls);
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

int bg_health_code(struct bg_backend *b, bool healthy)
{
    struct health *h = b->priv;
    return bg_health_answer_code(h->served == BG_STATUS_UP, healthy, h->out_code);
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

static const struct bg_backend_ops ops = {
    .init = health_init,
    .apply = health_apply,
    .progress = health_progress,
    .cancel = health_cancel,
    .deadline = health_deadline,
    .destroy = health_destroy,
    .confirm = health_confirm,
};

const struct bg_backend_type bg_backend_health = {
    .name = "health",
    .keys = keys,
    .flags = BG_BACKEND_SERVES_HEALTH,
    .make = health_make,
    .load = health_load,
    .free = free,
    .ops = &ops,
};
