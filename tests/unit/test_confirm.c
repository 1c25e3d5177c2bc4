/* test_confirm.c -- which pollers count as balancers and when a change is confirmed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "confirm.h"

#include <string.h>

static void test_confirm_nobody_polls_applies_at_once(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 1500, 1);
    assert_false(bg_confirm_start(&c, 1000));
    assert_int_equal(bg_confirm_check(&c, 1000, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "applied (no balancer polling)");
}

static void test_confirm_single_stray_poll_is_no_balancer(void **state)
{
    (void)state;
    struct bg_confirm c;
    bg_confirm_init(&c, 5000, 1500, 1);
    c.min_peer_polls = 2; /* as the health backend sets it */
    bg_confirm_polled(&c, "10.0.0.9", 900);
    assert_false(bg_confirm_start(&c, 1000));
    bg_confirm_polled(&c, "10.0.0.9", 1100);
    assert_true(bg_confirm_start(&c, 1200)); /* the second poll makes it a balancer */
}

static void test_confirm_waits_for_every_balancer(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 1500, 2);
    for (int t = 0; t < 3; t++) {
        bg_confirm_polled(&c, "10.0.0.1", 700 + t * 100);
        bg_confirm_polled(&c, "10.0.0.2", 705 + t * 100);
    }
    assert_true(bg_confirm_start(&c, 1000));
    bg_confirm_polled(&c, "10.0.0.1", 1100);
    bg_confirm_polled(&c, "10.0.0.2", 1105);
    assert_int_equal(bg_confirm_check(&c, 1106, msg, sizeof(msg)), 1);
    bg_confirm_polled(&c, "10.0.0.1", 1200);
    assert_int_equal(bg_confirm_check(&c, 1201, msg, sizeof(msg)), 1); /* .2 polled once */
    bg_confirm_polled(&c, "10.0.0.2", 1205);
    assert_int_equal(bg_confirm_check(&c, 1206, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "confirmed by 2 balancer(s) in 206 ms");
}

static void test_confirm_silent_balancer_times_out_unconfirmed(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 1500, 1);
    bg_confirm_polled(&c, "10.0.0.1", 800);
    bg_confirm_polled(&c, "10.0.0.1", 900);
    assert_true(bg_confirm_start(&c, 1000));
    assert_int_equal(bg_confirm_check(&c, 2499, msg, sizeof(msg)), 1);
    assert_int_equal(bg_confirm_check(&c, 2500, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "unconfirmed: 0 of 1 balancer(s) polled within 1500 ms");
}

static void test_confirm_caller_deadline_cuts_the_wait(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 1500, 1);
    bg_confirm_polled(&c, "10.0.0.1", 800);
    bg_confirm_polled(&c, "10.0.0.1", 900);
    assert_true(bg_confirm_start(&c, 1000));
    c.limit_ms = 1400;
    assert_int_equal(bg_confirm_check(&c, 1399, msg, sizeof(msg)), 1);
    assert_int_equal(bg_confirm_check(&c, 1400, msg, sizeof(msg)), -1);
}

static void test_confirm_old_poller_outside_window_not_required(void **state)
{
    (void)state;
    struct bg_confirm c;
    bg_confirm_init(&c, 5000, 1500, 1);
    bg_confirm_polled(&c, "10.0.0.1", 100);
    bg_confirm_polled(&c, "10.0.0.1", 200);
    assert_false(bg_confirm_start(&c, 6000));
    assert_int_equal(bg_confirm_active_peers(&c, 6000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confirm_nobody_polls_applies_at_once),
        cmocka_unit_test(test_confirm_single_stray_poll_is_no_balancer),
        cmocka_unit_test(test_confirm_waits_for_every_balancer),
        cmocka_unit_test(test_confirm_silent_balancer_times_out_unconfirmed),
        cmocka_unit_test(test_confirm_caller_deadline_cuts_the_wait),
        cmocka_unit_test(test_confirm_old_poller_outside_window_not_required),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
