/* test_transition.c -- the agent's status transitions (agent/transition.c) with fake
 * backends: the order of applies, PUT waiters answered at once or resumed, joining the same
 * status, supersession by the other one, a backend's failure, cancellation. MHD's suspend and
 * resume and bg_httpd_reply are stood in for (-Wl,--wrap), so every answer is recorded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- stand-ins ------------------------------------------------------------------------ */

#define MAX_REPLIES 8
static struct {
    struct MHD_Connection *conn;
    unsigned code;
    char body[512];
} replies[MAX_REPLIES];
static int n_replies, n_suspended, n_resumed;

void __wrap_MHD_suspend_connection(struct MHD_Connection *c);
void __wrap_MHD_resume_connection(struct MHD_Connection *c);
enum MHD_Result __wrap_bg_httpd_reply(struct MHD_Connection *c, unsigned code, const char *ctype,
                                      const char *body);

void __wrap_MHD_suspend_connection(struct MHD_Connection *c)
{
    (void)c;
    n_suspended++;
}

void __wrap_MHD_resume_connection(struct MHD_Connection *c)
{
    (void)c;
    n_resumed++;
}

enum MHD_Result __wrap_bg_httpd_reply(struct MHD_Connection *c, unsigned code, const char *ctype,
                                      const char *body)
{
    (void)ctype;
    assert_true(n_replies < MAX_REPLIES);
    replies[n_replies].conn = c;
    replies[n_replies].code = code;
    snprintf(replies[n_replies].body, sizeof(replies[n_replies].body), "%s", body);
    n_replies++;
    return MHD_YES;
}

/* agent.c's, which the test does not link. */
char *bg_agent_status_json(struct bg_agent *a)
{
    (void)a;
    return bg_xstrdup("{\"confirmed\":true}");
}

const char *bg_status_name(enum bg_status s)
{
    return s == BG_STATUS_UP ? "UP" : "OUT_OF_SERVICE";
}

/* ---- fake backends ---------------------------------------------------------------------- */

struct fake {
    int apply_rc, progress_rc; /* what apply and progress return */
    int applied, progressed, cancelled;
    enum bg_status last;
    int order; /* when it was applied, counted over all fakes */
};
static int applies;

static int fake_apply(struct bg_backend *b, enum bg_status st)
{
    struct fake *f = b->priv;
    f->applied++;
    f->last = st;
    f->order = ++applies;
    snprintf(b->msg, sizeof(b->msg), "%s", f->apply_rc < 0 ? "refused" : "applying");
    return f->apply_rc;
}

static int fake_progress(struct bg_backend *b, int64_t now)
{
    (void)now;
    struct fake *f = b->priv;
    f->progressed++;
    return f->progress_rc;
}

static void fake_cancel(struct bg_backend *b)
{
    struct fake *f = b->priv;
    f->cancelled++;
}

static const struct bg_backend_ops fake_ops = {
    .apply = fake_apply, .progress = fake_progress, .cancel = fake_cancel};
static const struct bg_backend_type fake_type = {.name = "exec", .ops = &fake_ops};
static const struct bg_backend_conf fake_conf = {.type = &fake_type};

#define N_FAKES 2
struct world {
    struct bg_agent a;
    struct bg_backend b[N_FAKES];
    struct fake f[N_FAKES];
    struct bg_httpd_req req[3];
};

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    for (int i = 0; i < N_FAKES; i++)
        w->b[i] = (struct bg_backend){
            .ops = &fake_ops, .conf = &fake_conf, .agent = &w->a, .priv = &w->f[i]};
    w->a.backends = w->b;
    w->a.n_backends = N_FAKES;
    for (int i = 0; i < 3; i++)
        w->req[i].conn = (struct MHD_Connection *)(uintptr_t)(0x1000 + i);
    n_replies = n_suspended = n_resumed = applies = 0;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    for (int i = 0; i < 3; i++)
        if (w->req[i].user != NULL)
            w->req[i].user_free(w->req[i].user);
    bg_agent_waiters_free(&w->a);
    free(w);
    return 0;
}

/* The fake's apply stays pending until progress_rc says otherwise. */
static void hold(struct fake *f)
{
    f->apply_rc = BG_PENDING;
    f->progress_rc = BG_PENDING;
}

/* PUT /v1/status st on connection i, without a timeout. */
static void put(struct world *w, int i, enum bg_status st)
{
    bg_agent_request_status(&w->a, &w->req[i], st, -1, 0);
}

/* The one transition is over; applied: whether it succeeded (and was counted so). */
static void expect_idle(const struct world *w, bool applied)
{
    assert_false(w->a.busy);
    assert_int_equal(w->a.applied, applied);
    assert_int_equal(applied ? w->a.n_put_ok : w->a.n_put_failed, 1);
}

/* A resumed PUT is answered by the handler's next call: with code. */
static void answer(struct world *w, int i, unsigned code)
{
    assert_int_equal(bg_agent_answer_waiter(&w->req[i]), MHD_YES);
    assert_ptr_equal(replies[n_replies - 1].conn, w->req[i].conn);
    assert_int_equal(replies[n_replies - 1].code, code);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_transition_sync_apply_answers_at_once(void **state)
{
    struct world *w = *state;
    put(w, 0, BG_STATUS_UP);
    assert_int_equal(n_suspended, 0);
    assert_int_equal(n_replies, 1);
    assert_int_equal(replies[0].code, 200);
    assert_ptr_equal(replies[0].conn, w->req[0].conn);
    assert_string_equal(replies[0].body, "{\"confirmed\":true}");
    assert_int_equal(w->f[0].order, 1);
    assert_int_equal(w->f[1].order, 2);
    assert_int_equal(w->f[1].last, BG_STATUS_UP);
    expect_idle(w, true);
}

static void test_transition_pending_backend_holds_the_next(void **state)
{
    struct world *w = *state;
    hold(&w->f[0]);
    put(w, 0, BG_STATUS_OUT);
    assert_int_equal(n_suspended, 1);
    assert_int_equal(n_replies, 0);
    assert_true(w->a.busy);
    bg_agent_transition_run(&w->a);
    assert_int_equal(w->f[0].progressed, 1);
    assert_int_equal(w->f[1].applied, 0); /* in order: not before the first is done */
    w->f[0].progress_rc = 0;
    bg_agent_transition_run(&w->a);
    assert_int_equal(w->f[1].applied, 1);
    assert_false(w->a.busy);
    assert_int_equal(n_resumed, 1);
    assert_true(w->a.resumed);
    assert_int_equal(n_replies, 0); /* answered by the handler once MHD runs it again */
    answer(w, 0, 200);
    assert_int_equal(n_replies, 1);
}

static void test_transition_same_status_joins(void **state)
{
    struct world *w = *state;
    hold(&w->f[1]);
    put(w, 0, BG_STATUS_UP);
    put(w, 1, BG_STATUS_UP);
    assert_int_equal(w->f[0].applied, 1); /* not applied again */
    assert_int_equal(w->f[1].applied, 1);
    assert_int_equal(n_suspended, 2);
    w->f[1].progress_rc = 0;
    bg_agent_transition_run(&w->a);
    assert_int_equal(n_resumed, 2);
    answer(w, 0, 200);
    answer(w, 1, 200);
}

static void test_transition_other_status_supersedes(void **state)
{
    struct world *w = *state;
    hold(&w->f[0]);
    put(w, 0, BG_STATUS_UP);
    put(w, 1, BG_STATUS_OUT);
    /* The UP in progress was cancelled; its PUT hears 503, the OUT waits for its own. */
    assert_int_equal(w->f[0].cancelled, 1);
    assert_int_equal(w->f[0].applied, 2);
    assert_int_equal(w->f[0].last, BG_STATUS_OUT);
    assert_int_equal(w->a.target, BG_STATUS_OUT);
    assert_int_equal(n_resumed, 1);
    answer(w, 0, 503);
    assert_int_equal(n_replies, 1);
    assert_non_null(strstr(replies[0].body, "superseded by a newer status"));
    w->f[0].progress_rc = 0;
    bg_agent_transition_run(&w->a);
    answer(w, 1, 200);
    assert_int_equal(w->f[1].last, BG_STATUS_OUT);
}

static void test_transition_failure_is_502_and_stops(void **state)
{
    struct world *w = *state;
    w->f[0].apply_rc = -5;
    put(w, 0, BG_STATUS_UP);
    assert_int_equal(n_replies, 1);
    assert_int_equal(replies[0].code, 502);
    assert_non_null(strstr(replies[0].body, "\"backend\":\"exec\""));
    assert_non_null(strstr(replies[0].body, "\"reason\":\"refused\""));
    assert_int_equal(w->f[1].applied, 0);
    expect_idle(w, false);
}

static void test_transition_cancel_answers_every_waiter(void **state)
{
    struct world *w = *state;
    hold(&w->f[0]);
    put(w, 0, BG_STATUS_UP);
    put(w, 1, BG_STATUS_UP);
    bg_agent_transition_cancel(&w->a, "agent shutting down", -1);
    assert_false(w->a.busy);
    assert_int_equal(w->b[0].rc, BG_ELOST);
    assert_non_null(strstr(w->b[0].msg, "agent shutting down"));
    answer(w, 0, 503);
    answer(w, 1, 503);
    /* Nothing in progress: a second cancel answers nobody again. */
    bg_agent_transition_cancel(&w->a, "again", -1);
    assert_int_equal(n_resumed, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transition_sync_apply_answers_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transition_pending_backend_holds_the_next, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transition_same_status_joins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_other_status_supersedes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_failure_is_502_and_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_cancel_answers_every_waiter, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
