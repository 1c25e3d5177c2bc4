/* test_plan.c -- the reconcile decision: make before break, gates, settle, retries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
