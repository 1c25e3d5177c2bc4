/* test_plan.c -- the reconcile decision: make before break, gates, settle, retries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char ep[] = "http://127.0.0.1:1";

static struct bg_member mk(const char *id, enum bg_color color, enum bg_known known)
{
    struct bg_member m;
    memset(&m, 0, sizeof(m));
    strcpy(m.id, id);
    m.color = color;
    m.czxid = 1;
    m.endpoint = ep;
    m.known = known;
    m.confirmed_ms = known == BG_KNOWN_NONE ? 0 : 1000;
    m.healthy = true;
    return m;
}

static struct bg_plan_input input(enum bg_color desired, const struct bg_member *m, size_t n)
{
    struct bg_plan_input in = {.desired = desired,
                               .m = m,
                               .n = n,
                               .min_ready = 1,
                               .batch_size = 1,
                               .now_ms = 2000,
                               .settle_ms = 0,
                               .resync_ms = 0,
                               .last_up_ms = 0};
    return in;
}

static void test_plan_invalid_colour_blocks_and_touches_nothing(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_OUT)};
    struct bg_plan_input in = input(BG_COLOR_INVALID, m, 2);
    in.desired_problem = "'purple'";
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_string_equal(p.reason, "/active_color is invalid ('purple'): expected blue or green; "
                                  "no instance was changed");
}

static void test_plan_empty_target_blocks(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("b2", BG_BLUE, BG_KNOWN_UP)};
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_string_equal(p.reason,
                        "green has 0 registered instance(s), min_ready is 1; no instance was "
                        "changed");
}

static void test_plan_min_ready_gate(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_OUT)};
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    in.min_ready = 2;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
}

static void test_plan_make_before_break(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("b2", BG_BLUE, BG_KNOWN_UP),
                            mk("g1", BG_GREEN, BG_KNOWN_OUT), mk("g2", BG_GREEN, BG_KNOWN_OUT)};
    struct bg_plan_input in = input(BG_GREEN, m, 4);
    struct bg_plan p;
    /* First g1 UP, then g2 UP, then b1 OUT, then b2 OUT: one at a time. */
    const char *order[] = {"g1", "g2", "b1", "b2"};
    int acts[] = {BG_ACT_UP, BG_ACT_UP, BG_ACT_OUT, BG_ACT_OUT};
    for (int step = 0; step < 4; step++) {
        bg_plan(&in, &p);
        assert_int_equal(p.phase, BG_PHASE_SWITCHING);
        assert_int_equal(p.n_idx, 1);
        assert_int_equal(p.action, acts[step]);
        assert_string_equal(m[p.idx[0]].id, order[step]);
        /* Never OUT while no green instance is UP. */
        if (p.action == BG_ACT_OUT)
            assert_true(m[2].known == BG_KNOWN_UP || m[3].known == BG_KNOWN_UP);
        m[p.idx[0]].known = p.action == BG_ACT_UP ? BG_KNOWN_UP : BG_KNOWN_OUT;
        m[p.idx[0]].confirmed_ms = in.now_ms;
    }
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(p.n_idx, 0);
    assert_string_equal(p.reason, "green is UP (2 instance(s)), blue is out");
}

static void test_plan_batch_size(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("g1", BG_GREEN, BG_KNOWN_NONE), mk("g2", BG_GREEN, BG_KNOWN_NONE),
                            mk("g3", BG_GREEN, BG_KNOWN_NONE)};
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    in.batch_size = 2;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.n_idx, 2);
    assert_int_equal(p.idx[0], 0);
    assert_int_equal(p.idx[1], 1);
}

static void test_plan_settle_waits_before_break(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP)};
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    in.settle_ms = 5000;
    in.last_up_ms = 1500;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SETTLING);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.wake_at_ms, 6500);
    in.now_ms = 6500;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "b1");
}

static void test_plan_unreachable_target_does_not_block_when_min_ready_met(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP),
                            mk("g2", BG_GREEN, BG_KNOWN_NONE)};
    m[2].failures = 1;
    m[2].retry_at_ms = 3000;
    strcpy(m[2].last_error, "Timeout was reached");
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "b1");
    m[0].known = BG_KNOWN_OUT;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.wake_at_ms, 3000);
    assert_non_null(strstr(p.reason, "unreachable: green g2 (Timeout was reached)"));
    /* When the retry is due, g2 is called again. */
    in.now_ms = 3000;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "g2");
}

static void test_plan_all_targets_failed_keeps_old_colour(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_NONE)};
    m[1].failures = 3;
    m[1].retry_at_ms = 9000;
    strcpy(m[1].last_error, "Connection refused");
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_non_null(strstr(p.reason, "only 0 of 1 green instance(s) are UP"));
    assert_int_equal(p.wake_at_ms, 9000);
}

static void test_plan_unknown_state_reasserted_after_takeover(void **state)
{
    (void)state;
    /* A new leader knows nothing: it re-asserts the desired colour UP before any OUT. */
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_NONE), mk("g1", BG_GREEN, BG_KNOWN_NONE)};
    struct bg_plan_input in = input(BG_BLUE, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "b1");
}

static void test_plan_resync_reasserts(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_OUT)};
    struct bg_plan_input in = input(BG_BLUE, m, 2);
    in.resync_ms = 30000;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(p.wake_at_ms, 31000);
    in.now_ms = 31000;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "b1");
    m[0].confirmed_ms = 31000;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "g1");
}

static void test_plan_unusable_members_ignored(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_NONE)};
    m[1].endpoint = NULL; /* node data was garbage */
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.targets, 0);
    assert_int_equal(p.n_idx, 0);
}

static void test_plan_new_standby_member_marked_out(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g9", BG_GREEN, BG_KNOWN_NONE)};
    struct bg_plan_input in = input(BG_BLUE, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "g9");
}

static void test_plan_duplicate_id_is_not_converged(void **state)
{
    (void)state;
    /* Regression: a duplicate id (never driven) let /status claim "converged". */
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_NONE), mk("b1", BG_GREEN, BG_KNOWN_NONE),
                            mk("g1", BG_GREEN, BG_KNOWN_UP), mk("b2", BG_BLUE, BG_KNOWN_OUT)};
    m[0].duplicate = m[1].duplicate = true;
    m[0].endpoint = m[1].endpoint = NULL;
    struct bg_plan_input in = input(BG_GREEN, m, 4);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_string_equal(p.reason, "green is UP (1 of 1), but b1 is registered under both blue "
                                  "and green and was left as it is; delete the stray node");
}

static struct bg_member sick(const char *id, enum bg_color color, enum bg_known known,
                             const char *check)
{
    struct bg_member m = mk(id, color, known);
    m.healthy = false;
    strcpy(m.check, check);
    return m;
}

static void test_plan_unhealthy_target_is_refused_and_old_colour_kept(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP),
                            sick("g1", BG_GREEN, BG_KNOWN_OUT, "HTTP 503")};
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_true(p.fallback);
    assert_int_equal(p.healthy, 0);
    assert_string_equal(p.reason, "green has 0 healthy instance(s) of 1, min_ready is 1; blue is "
                                  "kept UP; unhealthy: green g1 (HTTP 503)");
}

/* Drive the plan to its end as a perfect world would; returns the last plan. */
static void settle_plan(struct bg_plan_input *in, struct bg_member *m, struct bg_plan *p,
                        const char **calls, int max)
{
    int n = 0;
    for (;;) {
        bg_plan(in, p);
        if (p->n_idx == 0)
            break;
        assert_true(n < max);
        struct bg_member *x = &m[p->idx[0]];
        if (p->action == BG_ACT_UP) {
            assert_true(x->healthy); /* never UP while unhealthy */
            x->known = BG_KNOWN_UP;
        } else {
            x->known = BG_KNOWN_OUT;
        }
        x->confirmed_ms = in->now_ms;
        calls[n++] = x->id;
    }
    calls[n] = NULL;
}

static void test_plan_falls_back_when_the_new_colour_dies_and_recovers(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_OUT), mk("b2", BG_BLUE, BG_KNOWN_OUT),
                            mk("g1", BG_GREEN, BG_KNOWN_UP)};
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    struct bg_plan p;
    const char *calls[8];
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);

    /* g1's application dies: blue UP again first (make), then g1 out (break). */
    m[2].healthy = false;
    strcpy(m[2].check, "connect: Connection refused");
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "b1");
    assert_true(p.fallback);
    assert_non_null(strstr(p.reason, "making blue UP again"));
    settle_plan(&in, m, &p, calls, 6);
    assert_string_equal(calls[0], "b1");
    assert_string_equal(calls[1], "b2");
    assert_string_equal(calls[2], "g1");
    assert_null(calls[3]);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_non_null(strstr(p.reason, "blue is kept UP; unhealthy: green g1 (connect: Connection "
                                     "refused)"));

    /* It recovers: the switch completes by itself, make before break. */
    m[2].healthy = true;
    m[2].check[0] = '\0';
    settle_plan(&in, m, &p, calls, 6);
    assert_string_equal(calls[0], "g1");
    assert_string_equal(calls[1], "b1");
    assert_string_equal(calls[2], "b2");
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_false(p.fallback);
}

static void test_plan_unhealthy_member_never_marked_up_and_named(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_NONE),
                            sick("g2", BG_GREEN, BG_KNOWN_NONE, "HTTP 500")};
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    struct bg_plan p;
    const char *calls[8];
    settle_plan(&in, m, &p, calls, 6);
    assert_string_equal(calls[0], "g1");
    /* g2's agent may hold UP from before (its status is unknown): out with the old colour. */
    assert_string_equal(calls[1], "b1");
    assert_string_equal(calls[2], "g2");
    assert_null(calls[3]);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_string_equal(p.reason,
                        "green is UP (1 instance(s)), blue is out; unhealthy: green g2 (HTTP 500)");
}

static void test_plan_min_healthy_time_delays_up(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_OUT)};
    m[1].healthy_since_ms = 1500;
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    in.min_healthy_ms = 5000;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.n_idx, 0);
    assert_false(p.fallback);
    assert_int_equal(p.wake_at_ms, 6500);
    assert_non_null(strstr(p.reason, "healthy for less than min_healthy_time (5000 ms)"));
    in.now_ms = 6500;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "g1");
    /* Once UP it keeps serving: min_healthy_time gates marking UP, not staying UP. */
    m[1].known = BG_KNOWN_UP;
    in.now_ms = 1600;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "b1");
}

static void test_plan_nothing_healthy_anywhere(void **state)
{
    (void)state;
    struct bg_member m[] = {sick("b1", BG_BLUE, BG_KNOWN_UP, "HTTP 500"),
                            sick("g1", BG_GREEN, BG_KNOWN_OUT, "HTTP 500")};
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p);
    /* Unhealthy instances are taken out (their /health says 503 already); no fallback. */
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "b1");
    assert_false(p.fallback);
    m[0].known = BG_KNOWN_OUT;
    bg_plan(&in, &p);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_non_null(strstr(p.reason, "blue has no healthy instance either"));
}

static void test_plan_registered_gate_falls_back_to_healthy_old_colour(void **state)
{
    (void)state;
    /* Regression (test_fault_quorum_lost): after a ZooKeeper outage, while blue's agents were
     * re-registering, "blue has 0 registered instances" made the standby green UP. Missing
     * instances are not unhealthy ones: no fallback, nothing changes. */
    struct bg_member m[] = {mk("g1", BG_GREEN, BG_KNOWN_NONE)};
    struct bg_plan_input in = input(BG_BLUE, m, 1);
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_false(p.fallback);
    assert_string_equal(
        p.reason, "blue has 0 registered instance(s), min_ready is 1; no instance was changed");
}

static void test_plan_fallback_holds_until_healthy_long_enough(void **state)
{
    (void)state;
    /* Regression: a flapping green swung the phase between blocked and switching (and wrote a
     * history entry) at every flap. In fallback, healthy again is not enough: it must stay. */
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_OUT)};
    m[1].healthy_since_ms = 1900;
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    in.in_fallback = true;
    in.fallback_hold_ms = 4000;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_true(p.fallback);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.wake_at_ms, 5900);
    assert_string_equal(p.reason, "green is healthy again (1 instance(s)); switching back once it "
                                  "has stayed healthy 4000 ms; blue is kept UP");
    in.now_ms = 5900;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "g1");
    assert_false(p.fallback);
}

static void test_plan_new_system_puts_no_standby_into_service(void **state)
{
    (void)state;
    /* Regression: at start-up, while blue's agents were still rising, the fallback marked the
     * (flapping) green standby UP and OUT at every flap. Nothing has served yet: no fallback. */
    struct bg_member m[] = {sick("b1", BG_BLUE, BG_KNOWN_NONE, "starting"),
                            mk("g1", BG_GREEN, BG_KNOWN_NONE)};
    struct bg_plan_input in = input(BG_BLUE, m, 2);
    in.never_served = true;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_false(p.fallback);
    /* b1's state is unknown: it is told OUT (it is unhealthy); g1 is not touched. */
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "b1");
    m[0].known = BG_KNOWN_OUT;
    bg_plan(&in, &p);
    assert_int_equal(p.n_idx, 0);
    assert_non_null(strstr(p.reason, "green has never served and is left as it is"));
}

/* The default (batch_size 0): every call of a phase in one plan, in order, so that the
 * confirmations overlap; make before break still holds phase by phase. */
static void test_plan_default_batch_is_whole_phase(void **state)
{
    (void)state;
    struct bg_member m[16];
    char ids[16][8];
    for (int i = 0; i < 16; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%c%d", i < 8 ? 'b' : 'g', i % 8);
        m[i] = mk(ids[i], i < 8 ? BG_BLUE : BG_GREEN, i < 8 ? BG_KNOWN_UP : BG_KNOWN_OUT);
    }
    struct bg_plan_input in = input(BG_GREEN, m, 16);
    in.batch_size = 0;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.n_idx, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(p.idx[i], 8 + i); /* in order */
    /* All UP (and confirmed): the whole other colour goes out in one plan. */
    for (size_t i = 0; i < 8; i++) {
        m[p.idx[i]].known = BG_KNOWN_UP;
        m[p.idx[i]].confirmed_ms = in.now_ms;
    }
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_int_equal(p.n_idx, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(p.idx[i], i);
    for (size_t i = 0; i < 8; i++)
        m[i].known = BG_KNOWN_OUT;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(p.n_idx, 0);
}

/* More members than one plan may call: the rest follow in the next pass. */
static void test_plan_default_batch_caps_at_max(void **state)
{
    (void)state;
    size_t n = BG_PLAN_MAX_BATCH + 3;
    struct bg_member *m = calloc(n, sizeof(*m));
    assert_non_null(m);
    for (size_t i = 0; i < n; i++) {
        m[i] = mk("g", BG_GREEN, BG_KNOWN_NONE);
        snprintf(m[i].id, sizeof(m[i].id), "g%zu", i);
    }
    struct bg_plan_input in = input(BG_GREEN, m, n);
    in.batch_size = 0;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.n_idx, BG_PLAN_MAX_BATCH);
    for (size_t i = 0; i < p.n_idx; i++)
        m[p.idx[i]].known = BG_KNOWN_UP;
    bg_plan(&in, &p);
    assert_int_equal(p.n_idx, 3);
    assert_int_equal(p.idx[0], BG_PLAN_MAX_BATCH);
    free(m);
}

static void unconfirm(struct bg_member *m, int64_t since, const char *balancer)
{
    m->unconfirmed = true;
    m->unconfirmed_since_ms = since;
    m->n_waiting = balancer != NULL;
    if (balancer != NULL)
        snprintf(m->waiting[0], sizeof(m->waiting[0]), "%s", balancer);
}

/* hold: an UP a balancer has not seen is asked again and keeps the old colour UP. */
static void test_plan_unconfirmed_up_holds_the_break(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("b2", BG_BLUE, BG_KNOWN_UP),
                            mk("g1", BG_GREEN, BG_KNOWN_UP), mk("g2", BG_GREEN, BG_KNOWN_UP)};
    unconfirm(&m[3], 1500, "health 127.0.0.1 (node lb1, last state DOWN 1/2)");
    struct bg_plan_input in = input(BG_GREEN, m, 4);
    in.batch_size = 0;
    in.unconfirmed_timeout_ms = 60000;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.action, BG_ACT_UP); /* asked again: a long poll */
    assert_int_equal(p.n_idx, 1);
    assert_int_equal(p.idx[0], 3);
    assert_int_equal(p.unconfirmed, 1);
    assert_int_equal(p.wake_at_ms, 61500);
    assert_string_equal(p.reason, "marking green UP: waiting for 1 of 2 to be confirmed (g2: "
                                  "health 127.0.0.1 (node lb1, last state DOWN 1/2))");
    /* Between two asks (the agent answered at once): nothing to call, still no OUT. */
    m[3].retry_at_ms = 2200;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.wake_at_ms, 2200);
    assert_non_null(strstr(p.reason, "waiting for 1 of 2 to be confirmed"));
    /* Confirmed: the break goes on. */
    m[3].unconfirmed = false;
    m[3].retry_at_ms = 0;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_int_equal(p.n_idx, 2);
}

/* Only a confirmed UP counts toward min_ready; new UPs and asks again go in one plan. */
static void test_plan_unconfirmed_up_is_not_ready(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP),
                            mk("g2", BG_GREEN, BG_KNOWN_OUT)};
    unconfirm(&m[1], 1900, NULL);
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    in.batch_size = 0;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.ready, 0);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.n_idx, 2);
    assert_string_equal(p.reason, "marking green UP (0 of 2 ready); waiting for 1 of 2 to be "
                                  "confirmed (g1: a balancer)");
}

/* An OUT a balancer has not seen: asked again; not converged (no new request may still reach
 * the old colour when bgctl switch --wait returns). */
static void test_plan_unconfirmed_out_is_not_converged(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_OUT), mk("b2", BG_BLUE, BG_KNOWN_OUT),
                            mk("g1", BG_GREEN, BG_KNOWN_UP)};
    unconfirm(&m[0], 1800, "health 127.0.0.1 (node lb1, last state UP 3/3)");
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    in.batch_size = 0;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_int_equal(p.n_idx, 1);
    assert_int_equal(p.idx[0], 0);
    assert_string_equal(p.reason, "green is UP (1 of 1); taking blue out: waiting for 1 of 2 to "
                                  "be confirmed (b1: health 127.0.0.1 (node lb1, last state UP "
                                  "3/3))");
    m[0].retry_at_ms = 3000;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.n_idx, 0);
    m[0].unconfirmed = false;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
}

/* Held past unconfirmed_timeout: blocked (bgctl switch --wait says why), still holding and
 * still asking. */
static void test_plan_unconfirmed_past_the_bound_blocks_and_holds(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP)};
    unconfirm(&m[1], 500, "health 10.0.0.7");
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    in.unconfirmed_timeout_ms = 1000;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_false(p.fallback);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.idx[0], 1);
    assert_string_equal(p.reason, "marking green UP: waiting for 1 of 1 to be confirmed for "
                                  "longer than unconfirmed_timeout; the other colour is kept UP "
                                  "(g1: health 10.0.0.7)");
}

/* proceed: confirmation is not waited for (today's behaviour). */
static void test_plan_unconfirmed_proceed_goes_on(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP)};
    unconfirm(&m[1], 1500, "health 127.0.0.1");
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    in.proceed_unconfirmed = true;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_int_equal(p.unconfirmed, 0);
    m[0].known = BG_KNOWN_OUT;
    unconfirm(&m[0], 1500, "health 127.0.0.1");
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
}

/* With an explicit batch_size, asking again for a confirmation takes no place of the batch. */
static void test_plan_unconfirmed_does_not_stall_a_gradual_move(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP),
                            mk("g2", BG_GREEN, BG_KNOWN_OUT), mk("g3", BG_GREEN, BG_KNOWN_OUT)};
    unconfirm(&m[1], 1900, "health 127.0.0.1");
    struct bg_plan_input in = input(BG_GREEN, m, 4);
    in.batch_size = 1;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.n_idx, 2);
    assert_int_equal(p.idx[0], 1); /* asked again */
    assert_int_equal(p.idx[1], 2); /* the one move of this batch */
}

static void test_plan_retry_below_min_ready_stays_blocked(void **state)
{
    (void)state;
    /* Regression: with /status written before the calls, a due retry of an unreachable
     * instance showed "switching" between two "blocked" (test_fault_unreachable_agent). */
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP),
                            mk("g2", BG_GREEN, BG_KNOWN_NONE)};
    m[2].failures = 2;
    m[2].retry_at_ms = 1500;
    strcpy(m[2].last_error, "Timeout was reached");
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    in.min_ready = 2;
    in.batch_size = 1;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "g2");
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_non_null(strstr(p.reason, "only 1 of 2 green instance(s) are UP, min_ready is 2; "
                                     "retrying; unreachable: green g2 (Timeout was reached)"));
}

/* Run the plan as the controller does against a fleet whose desired colour (green) fails every
 * call while blue's calls succeed: each call takes call_ms, a failure backs off as act() does
 * (backoff 100 ms << failures, at most 6). Records the phase of each pass. */
struct sim {
    int passes, calls, first_blocked_call, switching_after_blocked, history;
    int blue_calls, blue_up_call; /* calls to blue; calls made when every blue was UP (-1) */
    bool tried[64];
};

static void simulate(struct bg_member *m, size_t n, int batch, int64_t call_ms, int passes,
                     struct sim *r)
{
    struct bg_plan_input in = input(BG_GREEN, m, n);
    in.batch_size = batch;
    memset(r, 0, sizeof(*r));
    r->first_blocked_call = -1;
    r->blue_up_call = -1;
    enum bg_phase last = BG_PHASE_IDLE;
    struct bg_plan p;
    for (r->passes = 0; r->passes < passes; r->passes++) {
        bg_plan(&in, &p);
        if (p.phase == BG_PHASE_BLOCKED && r->first_blocked_call < 0)
            r->first_blocked_call = r->calls;
        if (p.phase != BG_PHASE_BLOCKED && r->first_blocked_call >= 0)
            r->switching_after_blocked++;
        if (p.phase == BG_PHASE_BLOCKED && last != BG_PHASE_BLOCKED)
            r->history++; /* each entry into blocked ends a switch in /history */
        last = p.phase;
        if (p.n_idx == 0) {
            in.now_ms = p.wake_at_ms > in.now_ms ? p.wake_at_ms : in.now_ms + 250;
            continue;
        }
        in.now_ms += call_ms;
        for (size_t k = 0; k < p.n_idx; k++) {
            struct bg_member *x = &m[p.idx[k]];
            r->calls++;
            if (x->color == BG_BLUE) {
                r->blue_calls++;
                x->known = p.action == BG_ACT_UP ? BG_KNOWN_UP : BG_KNOWN_OUT;
                x->confirmed_ms = in.now_ms;
                continue;
            }
            r->tried[p.idx[k]] = true;
            x->failures++;
            x->retry_at_ms = in.now_ms + (100LL << (x->failures < 6 ? x->failures : 6));
            x->known = BG_KNOWN_NONE;
            strcpy(x->last_error, "HTTP 502: backend failed");
        }
        bool all_up = true;
        for (size_t i = 0; i < n; i++)
            all_up &= m[i].color != BG_BLUE || m[i].known == BG_KNOWN_UP;
        if (all_up && r->blue_up_call < 0)
            r->blue_up_call = r->calls;
    }
}

static void test_plan_failing_colour_is_blocked_after_one_sweep(void **state)
{
    (void)state;
    /* Regression (bench/README, defects at scale, item 1): with more failing instances than a
     * backoff period holds calls (20 at batch 1, a call 0.7 s, backoff capped at 6.4 s), a
     * retry was always due: due retries were picked before untried instances, and "blocked"
     * alternated with "switching" (a /history entry each time) or was never reached. Now the
     * switch is blocked once every instance of the colour has failed, and stays blocked. */
    struct bg_member m[40];
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "b%d", i);
        m[i] = mk(id, BG_BLUE, BG_KNOWN_UP);
        snprintf(id, sizeof(id), "g%d", i);
        m[20 + i] = mk(id, BG_GREEN, BG_KNOWN_OUT);
    }
    struct sim r;
    simulate(m, 40, 1, 700, 400, &r);
    for (int i = 20; i < 40; i++)
        assert_true(r.tried[i]);
    assert_int_equal(r.first_blocked_call, 20); /* one sweep: each green instance once */
    assert_int_equal(r.switching_after_blocked, 0);
    assert_int_equal(r.history, 1);
    assert_true(r.calls > 100); /* and the retries go on, while blocked */
    assert_int_equal(r.blue_calls, 0);
}

static void test_plan_failing_colour_batch_is_blocked_after_one_sweep(void **state)
{
    (void)state;
    /* The same with batch_size 4: 5 batches make a sweep. */
    struct bg_member m[40];
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "b%d", i);
        m[i] = mk(id, BG_BLUE, BG_KNOWN_UP);
        snprintf(id, sizeof(id), "g%d", i);
        m[20 + i] = mk(id, BG_GREEN, BG_KNOWN_OUT);
    }
    struct sim r;
    simulate(m, 40, 4, 700, 400, &r);
    assert_int_equal(r.first_blocked_call, 20);
    assert_int_equal(r.switching_after_blocked, 0);
    assert_int_equal(r.history, 1);
}

static void test_plan_failures_before_the_switch_are_tried_again(void **state)
{
    (void)state;
    /* Green failed its OUT_OF_SERVICE calls before the switch (its agents' backends were
     * down): the switch to green tries each one UP at once, whatever the backoff, and is not
     * blocked before they have failed again. */
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_NONE),
                            mk("g2", BG_GREEN, BG_KNOWN_NONE)};
    for (int i = 1; i <= 2; i++) {
        m[i].failures = 5;
        m[i].failed_ms = 1500;
        m[i].retry_at_ms = 9000;
        strcpy(m[i].last_error, "HTTP 502: backend failed");
    }
    struct bg_plan_input in = input(BG_GREEN, m, 3);
    in.desired_since_ms = 1900;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.n_idx, 1);
    assert_string_equal(m[p.idx[0]].id, "g1");
    m[1].failures++;
    m[1].failed_ms = 2000;
    m[1].retry_at_ms = 8400;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_string_equal(m[p.idx[0]].id, "g2");
    m[2].failures++;
    m[2].failed_ms = 2000;
    m[2].retry_at_ms = 8400;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.wake_at_ms, 8400);
}

static void test_plan_takeover_mid_switch_reasserts_the_old_colour(void **state)
{
    (void)state;
    /* Regression (bench/README, defects at scale, item 2): a new leader taking over a switch
     * to a failing colour knows nothing of blue either; it retried green for ever (a retry
     * always due) and never re-asserted blue, which /status showed UNKNOWN throughout. Now,
     * blocked after one sweep, it keeps blue UP (re-asserts it) before retrying green. */
    struct bg_member m[40];
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "b%d", i);
        m[i] = mk(id, BG_BLUE, BG_KNOWN_NONE);
        snprintf(id, sizeof(id), "g%d", i);
        m[20 + i] = mk(id, BG_GREEN, BG_KNOWN_NONE);
    }
    struct sim r;
    simulate(m, 40, 1, 700, 400, &r);
    assert_int_equal(r.first_blocked_call, 20);
    /* The sweep, then blue: one call each, before any green retry. */
    assert_int_equal(r.blue_up_call, 40);
    assert_int_equal(r.blue_calls, 20);
    assert_int_equal(r.switching_after_blocked, 0);
}

static void test_plan_takeover_asks_before_telling(void **state)
{
    (void)state;
    /* bench/README, defects at scale, item 3: a new leader re-sent the status to every
     * instance (2N confirmed changes). Now it first asks the agents it knows nothing of (a GET:
     * no backend work), many at once whatever batch_size, and tells only the ones whose
     * answer is not the target; an agent that cannot be asked is told as before. */
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_NONE), mk("b2", BG_BLUE, BG_KNOWN_NONE),
                            mk("g1", BG_GREEN, BG_KNOWN_NONE), mk("g2", BG_GREEN, BG_KNOWN_NONE)};
    struct bg_plan_input in = input(BG_BLUE, m, 4);
    in.probe_unknown = true;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_PROBE);
    assert_int_equal(p.n_idx, 4);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_non_null(strstr(p.reason, "asking 4 agent(s) their status first"));
    /* The answers: b1 UP, g1 and g2 OUT_OF_SERVICE; b2 could not be asked. */
    for (int i = 0; i < 4; i++)
        m[i].probed = true;
    m[0].known = BG_KNOWN_UP;
    m[2].known = m[3].known = BG_KNOWN_OUT;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.n_idx, 1);
    assert_string_equal(m[p.idx[0]].id, "b2");
    m[1].known = BG_KNOWN_UP;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(p.n_idx, 0);
    /* Without probe_unknown (tests, and members that came after the takeover): told at once. */
    struct bg_member n[] = {mk("b1", BG_BLUE, BG_KNOWN_NONE)};
    in = input(BG_BLUE, n, 1);
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
}

/* ------------------------------------------------------------------------------------------
 * Traffic shaping: canary weights and drains (DESIGN §12)
 * ------------------------------------------------------------------------------------------ */

/* Carry out plans (each call succeeds and is confirmed) until one has nothing to call. */
static struct bg_plan drive(struct bg_plan_input *in, struct bg_member *m)
{
    struct bg_plan p;
    for (int step = 0; step < 64; step++) {
        bg_plan(in, &p);
        if (p.n_idx == 0)
            return p;
        for (size_t k = 0; k < p.n_idx; k++) {
            struct bg_member *x = &m[p.idx[k]];
            x->known = p.action == BG_ACT_UP ? BG_KNOWN_UP : BG_KNOWN_OUT;
            x->weight = p.action == BG_ACT_UP ? p.weight[k] : 0;
            x->confirmed_ms = in->now_ms;
        }
        in->now_ms += 10;
    }
    fail_msg("no end to the plans");
    return p;
}

/* nb blue (active, UP) and ng green (OUT) members that can weight. */
static size_t fleet(struct bg_member *m, int nb, int ng)
{
    static char ids[16][16];
    size_t n = 0;
    for (int i = 0; i < nb + ng; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%c%d", i < nb ? 'b' : 'g', i % 10);
        m[n] = mk(ids[i], i < nb ? BG_BLUE : BG_GREEN, i < nb ? BG_KNOWN_UP : BG_KNOWN_OUT);
        m[n].weight = i < nb ? 100 : 0;
        m[n++].can_weight = true;
    }
    return n;
}

/* The share the members' confirmed weights give the canary colour. */
static double served_share(const struct bg_member *m, size_t n, enum bg_color canary)
{
    double c = 0, all = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].known != BG_KNOWN_UP)
            continue;
        int w = m[i].weight > 0 ? m[i].weight : 100;
        all += w;
        c += m[i].color == canary ? w : 0;
    }
    return all > 0 ? 100.0 * c / all : 0;
}

/* 2+2, 1+3 and 3+1 at 5/10/25/50 %: converged with every member UP at weights whose share is
 * within a point of the request; the first calls make UP (or re-weight), none takes out. */
static void test_plan_canary_weights_share(void **state)
{
    (void)state;
    const int shapes[][2] = {{2, 2}, {3, 1}, {1, 3}}; /* blue (active), green (canary) */
    const int pcts[] = {5, 10, 25, 50};
    for (size_t s = 0; s < 3; s++) {
        for (size_t j = 0; j < 4; j++) {
            struct bg_member m[8];
            size_t n = fleet(m, shapes[s][0], shapes[s][1]);
            struct bg_plan_input in = input(BG_BLUE, m, n);
            in.canary = (struct bg_canary){.color = BG_GREEN, .percent = pcts[j]};
            struct bg_plan p;
            bg_plan(&in, &p);
            assert_int_equal(p.action, BG_ACT_UP); /* nothing leaves */
            p = drive(&in, m);
            assert_int_equal(p.phase, BG_PHASE_CONVERGED);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(m[i].known, BG_KNOWN_UP);
            double got = served_share(m, n, BG_GREEN);
            if (got < pcts[j] - 1.0 || got > pcts[j] + 1.0)
                fail_msg("%d+%d at %d%%: %.2f%%", shapes[s][0], shapes[s][1], pcts[j], got);
            assert_non_null(strstr(p.reason, "canary green"));
        }
    }
}

/* 3 blue + 1 green at 10 %: the worked example, 1*w_c / (1*w_c + 3*w_a) = 0.10. */
static void test_plan_canary_one_of_four(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 3, 1);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_GREEN, .percent = 10};
    struct bg_plan p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(m[3].weight, 33);
    assert_int_equal(m[0].weight, 100);
    assert_string_equal(p.reason, "blue is UP (3 instance(s)) at weight 100; canary green 10 %: 1 "
                                  "instance(s) at weight 33 (9.9 %)");
}

/* Abort (no /canary any more): the active colour back to full weight first, then the canary
 * colour OUT -- make before break. Promotion is an ordinary switch. */
static void test_plan_canary_abort_and_promote(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 1, 3);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_GREEN, .percent = 50};
    drive(&in, m);
    assert_int_equal(m[0].weight, 100);
    assert_int_equal(m[1].weight, 33);
    in.canary = (struct bg_canary){0};
    struct bg_plan p;
    bg_plan(&in, &p); /* blue is already at 100: the canary goes out */
    assert_int_equal(p.action, BG_ACT_OUT);
    p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(served_share(m, n, BG_GREEN), 0);

    n = fleet(m, 2, 2);
    in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_GREEN, .percent = 10};
    drive(&in, m);
    assert_int_equal(m[0].weight, 100);
    assert_int_equal(m[2].weight, 11);
    /* 3 blue at 100 beside ... abort with blue re-weighted: blue was not at 100 here. */
    in.canary = (struct bg_canary){0};
    in.desired = BG_GREEN; /* promote: bgctl switch green clears /canary */
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_int_equal(p.weight[0], 100);
    assert_int_equal(m[p.idx[0]].color, BG_GREEN);
    p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_true(served_share(m, n, BG_GREEN) == 100);
    assert_int_equal(m[2].weight, 100);
}

/* An abort where the active colour was re-weighted: it goes back to 100 before any canary
 * instance leaves. */
static void test_plan_canary_abort_reweights_active_first(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 1, 3);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_GREEN, .percent = 90};
    drive(&in, m);
    assert_true(m[0].weight < 100);
    assert_int_equal(m[1].weight, 100);
    in.canary = (struct bg_canary){0};
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_UP);
    assert_string_equal(m[p.idx[0]].id, "b0");
    assert_int_equal(p.weight[0], 100);
}

/* A member that cannot weight (plain /health): an instance-count canary, stated as such. */
static void test_plan_canary_instance_count(void **state)
{
    (void)state;
    struct bg_member m[6];
    size_t n = fleet(m, 2, 4);
    for (size_t i = 0; i < n; i++)
        m[i].can_weight = i != 0;
    struct bg_plan_input in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_GREEN, .percent = 50};
    struct bg_plan p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    int up = 0;
    for (size_t i = 2; i < n; i++) {
        up += m[i].known == BG_KNOWN_UP;
        assert_true(m[i].weight == 0 || m[i].weight == 100);
    }
    assert_int_equal(up, 2); /* 2 of 4 green beside 2 blue: 50 % */
    assert_non_null(strstr(p.reason, "by instance count: 2 of 4"));
    in.canary.percent = 10; /* the least there is: one */
    p = drive(&in, m);
    up = 0;
    for (size_t i = 2; i < n; i++)
        up += m[i].known == BG_KNOWN_UP;
    assert_int_equal(up, 1);
}

/* /canary naming the active colour changes nothing and says so. */
static void test_plan_canary_active_colour_ignored(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 2, 2);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_BLUE, .percent = 10};
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.n_idx, 0);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_non_null(strstr(p.reason, "/canary names the active colour"));
}

/* Malformed /canary or /drain: blocked with the reason, nothing called. */
static void test_plan_malformed_shaping_blocks(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 2, 2);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_GREEN, .percent = 10};
    in.canary_problem = "/canary is invalid ('green 200'): the percent is not 1-99";
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_string_equal(p.reason, "/canary is invalid ('green 200'): the percent is not 1-99; no "
                                  "instance was changed");
    in.canary_problem = NULL;
    in.drain_problem = "/drain/b0 is invalid: the reason contains control characters";
    m[0].drained = true;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(p.n_idx, 0);
    assert_non_null(strstr(p.reason, "/drain/b0 is invalid"));
}

/* A drain takes the instance out (after nothing else is pending) and converges. */
static void test_plan_drain_takes_out(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 2, 2);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    m[0].drained = true;
    struct bg_plan p;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_string_equal(m[p.idx[0]].id, "b0");
    assert_non_null(strstr(p.reason, "draining"));
    p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(m[0].known, BG_KNOWN_OUT);
    assert_int_equal(m[1].known, BG_KNOWN_UP);
    assert_non_null(strstr(p.reason, "1 drained"));
    m[0].drained = false; /* undrain: UP again */
    p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(m[0].known, BG_KNOWN_UP);
    /* A drain of a standby instance is always fine. */
    m[2].drained = true;
    p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
}

/* A drain that would leave the active colour below min_ready is refused: blocked, the
 * instance stays UP; the first drains in member order are taken while they fit. */
static void test_plan_drain_refused_below_min_ready(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 2, 2);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    m[0].drained = m[1].drained = true;
    struct bg_plan p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(m[0].known, BG_KNOWN_OUT);
    assert_int_equal(m[1].known, BG_KNOWN_UP);
    assert_non_null(strstr(p.reason, "drain of blue b1 refused: it would leave blue below "
                                     "min_ready (1)"));
    in.min_ready = 2;
    m[1].drained = false;
    p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_int_equal(m[0].known, BG_KNOWN_UP); /* refused now: back in service */
    assert_non_null(strstr(p.reason, "drain of blue b0 refused"));
}

/* A drained canary instance leaves the canary; the weights follow the remaining count. */
static void test_plan_drain_during_canary(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 2, 2);
    struct bg_plan_input in = input(BG_BLUE, m, n);
    in.canary = (struct bg_canary){.color = BG_GREEN, .percent = 25};
    m[2].drained = true;
    struct bg_plan p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(m[2].known, BG_KNOWN_OUT);
    double got = served_share(m, n, BG_GREEN);
    assert_true(got > 24.0 && got < 26.0);
}

/* Make before break through routers (DESIGN §13): blue goes out only once every live router
 * serves green; converged only once none serves blue; a router's error blocks, the old colour
 * stays; without routers nothing changes. */
static void test_plan_routers_make_before_break(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_UP)};
    struct bg_router_view r[2] = {{.id = "lb-1", .serving = {1, 0}},
                                  {.id = "lb-2", .serving = {1, 1}}};
    struct bg_plan_input in = input(BG_GREEN, m, 2);
    struct bg_plan p;
    bg_plan(&in, &p); /* no routers: blue goes out at once, as before */
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_int_equal(p.routers_waited, 0);
    in.routers = r;
    in.n_routers = 2;
    bg_plan(&in, &p); /* lb-1 serves no green yet */
    assert_int_equal(p.action, BG_ACT_NONE);
    assert_int_equal(p.routers_waited, 1); /* lb-1 only: lb-2 serves green already */
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_string_equal(p.reason, "green is UP (1 of 1); waiting for router lb-1 to serve it "
                                  "(0 instance(s) of it served)");
    strcpy(r[0].error, "test nginx failed: exit 1");
    r[0].pending = true;
    bg_plan(&in, &p);
    assert_int_equal(p.action, BG_ACT_NONE);
    assert_int_equal(p.phase, BG_PHASE_BLOCKED);
    assert_string_equal(p.reason, "green is UP (1 of 1); router lb-1 failed: test nginx "
                                  "failed: exit 1; the other colour stays");
    assert_int_equal(p.routers_waited, 1);
    r[0].error[0] = '\0';
    r[0].pending = false;
    r[0].serving[BG_GREEN] = 1;
    bg_plan(&in, &p); /* both serve green: blue goes out */
    assert_int_equal(p.action, BG_ACT_OUT);
    assert_int_equal(p.routers_waited, 0);
    assert_int_equal(p.n_idx, 1);
    assert_int_equal(p.idx[0], 0);
    m[0].known = BG_KNOWN_OUT;
    bg_plan(&in, &p); /* blue is out, but the routers still serve it */
    assert_int_equal(p.action, BG_ACT_NONE);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_string_equal(p.reason, "green is UP (1 of 1), blue is out; waiting for router lb-1 "
                                  "to drop it (1 instance(s) of it served)");
    assert_int_equal(p.routers_waited, 3); /* both still serve blue */
    r[0].serving[BG_BLUE] = 0;
    bg_plan(&in, &p);
    assert_int_equal(p.routers_waited, 2); /* lb-2 only */
    assert_string_equal(p.reason, "green is UP (1 of 1), blue is out; waiting for router lb-2 "
                                  "to drop it (1 instance(s) of it served)");
    r[1].serving[BG_BLUE] = 0;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(p.routers_waited, 0);
    in.n_routers = 1; /* a router that died is no longer waited for */
    r[0].serving[BG_BLUE] = 0;
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
}

/* A canary of the old colour through a router: the router serving those instances is what the
 * canary asks for, not something to wait out (the switch never converged: bgctl canary --wait
 * timed out in test_router_haproxy once /status was written at once). */
static void test_plan_routers_canary_of_the_old_colour(void **state)
{
    (void)state;
    struct bg_member m[4];
    size_t n = fleet(m, 2, 2); /* blue 0-1, green 2-3 */
    struct bg_plan_input in = input(BG_GREEN, m, n);
    in.canary = (struct bg_canary){.color = BG_BLUE, .percent = 25};
    struct bg_router_view r[1] = {{.id = "lb-1", .serving = {0, 2}}};
    in.routers = r;
    in.n_routers = 1;
    struct bg_plan p = drive(&in, m);
    r[0].serving[BG_BLUE] = 2; /* the router serves the canary's two blue instances */
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_CONVERGED);
    assert_int_equal(p.routers_waited, 0);
    assert_non_null(strstr(p.reason, "canary blue 25 %"));
    r[0].serving[BG_BLUE] = 3; /* more blue than the canary has: waited for */
    bg_plan(&in, &p);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_int_equal(p.routers_waited, 1);
    in.canary = (struct bg_canary){0}; /* the canary ends: blue must go from the router */
    r[0].serving[BG_BLUE] = 2;
    p = drive(&in, m);
    assert_int_equal(p.phase, BG_PHASE_SWITCHING);
    assert_string_equal(p.reason, "green is UP (2 of 2), blue is out; waiting for router lb-1 "
                                  "to drop it (2 instance(s) of it served)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_routers_make_before_break),
        cmocka_unit_test(test_plan_routers_canary_of_the_old_colour),
        cmocka_unit_test(test_plan_invalid_colour_blocks_and_touches_nothing),
        cmocka_unit_test(test_plan_empty_target_blocks),
        cmocka_unit_test(test_plan_min_ready_gate),
        cmocka_unit_test(test_plan_make_before_break),
        cmocka_unit_test(test_plan_batch_size),
        cmocka_unit_test(test_plan_settle_waits_before_break),
        cmocka_unit_test(test_plan_unreachable_target_does_not_block_when_min_ready_met),
        cmocka_unit_test(test_plan_all_targets_failed_keeps_old_colour),
        cmocka_unit_test(test_plan_unknown_state_reasserted_after_takeover),
        cmocka_unit_test(test_plan_resync_reasserts),
        cmocka_unit_test(test_plan_unusable_members_ignored),
        cmocka_unit_test(test_plan_new_standby_member_marked_out),
        cmocka_unit_test(test_plan_duplicate_id_is_not_converged),
        cmocka_unit_test(test_plan_unhealthy_target_is_refused_and_old_colour_kept),
        cmocka_unit_test(test_plan_falls_back_when_the_new_colour_dies_and_recovers),
        cmocka_unit_test(test_plan_unhealthy_member_never_marked_up_and_named),
        cmocka_unit_test(test_plan_min_healthy_time_delays_up),
        cmocka_unit_test(test_plan_nothing_healthy_anywhere),
        cmocka_unit_test(test_plan_registered_gate_falls_back_to_healthy_old_colour),
        cmocka_unit_test(test_plan_fallback_holds_until_healthy_long_enough),
        cmocka_unit_test(test_plan_new_system_puts_no_standby_into_service),
        cmocka_unit_test(test_plan_retry_below_min_ready_stays_blocked),
        cmocka_unit_test(test_plan_failing_colour_is_blocked_after_one_sweep),
        cmocka_unit_test(test_plan_failing_colour_batch_is_blocked_after_one_sweep),
        cmocka_unit_test(test_plan_failures_before_the_switch_are_tried_again),
        cmocka_unit_test(test_plan_takeover_mid_switch_reasserts_the_old_colour),
        cmocka_unit_test(test_plan_takeover_asks_before_telling),
        cmocka_unit_test(test_plan_default_batch_is_whole_phase),
        cmocka_unit_test(test_plan_default_batch_caps_at_max),
        cmocka_unit_test(test_plan_unconfirmed_up_holds_the_break),
        cmocka_unit_test(test_plan_unconfirmed_up_is_not_ready),
        cmocka_unit_test(test_plan_unconfirmed_out_is_not_converged),
        cmocka_unit_test(test_plan_unconfirmed_past_the_bound_blocks_and_holds),
        cmocka_unit_test(test_plan_unconfirmed_proceed_goes_on),
        cmocka_unit_test(test_plan_unconfirmed_does_not_stall_a_gradual_move),
        cmocka_unit_test(test_plan_canary_weights_share),
        cmocka_unit_test(test_plan_canary_one_of_four),
        cmocka_unit_test(test_plan_canary_abort_and_promote),
        cmocka_unit_test(test_plan_canary_abort_reweights_active_first),
        cmocka_unit_test(test_plan_canary_instance_count),
        cmocka_unit_test(test_plan_canary_active_colour_ignored),
        cmocka_unit_test(test_plan_malformed_shaping_blocks),
        cmocka_unit_test(test_plan_drain_takes_out),
        cmocka_unit_test(test_plan_drain_refused_below_min_ready),
        cmocka_unit_test(test_plan_drain_during_canary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
