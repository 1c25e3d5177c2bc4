/* test_confirm.c -- which pollers count as balancers and when a change is confirmed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "confirm.h"

#include <stdio.h>
#include <string.h>

/* A header-less poll from addr (no User-Agent, as HAProxy's httpchk), answered with the
 * current state. */
static void poll_plain(struct bg_confirm *c, const char *addr, int64_t t)
{
    struct bg_poll p = {.addr = addr, .answered_current = true};
    bg_confirm_polled(c, &p, t);
}

static void poll_ua(struct bg_confirm *c, const char *addr, const char *ua, int64_t t)
{
    struct bg_poll p = {.addr = addr, .user_agent = ua, .answered_current = true};
    bg_confirm_polled(c, &p, t);
}

/* A poll carrying X-Haproxy-Server-State: hdr, answered with the current state (up: 200). */
static void poll_ss_as(struct bg_confirm *c, const char *addr, const char *hdr, bool up, int64_t t)
{
    struct bg_server_state ss;
    assert_int_equal(bg_server_state_parse(hdr, strlen(hdr), &ss), 0);
    struct bg_poll p = {.addr = addr, .ss = &ss, .answered_current = true, .answered_up = up};
    bg_confirm_polled(c, &p, t);
}

/* The same, answered as the current change says (200 for an UP change). */
static void poll_ss(struct bg_confirm *c, const char *addr, const char *hdr, int64_t t)
{
    poll_ss_as(c, addr, hdr, c->changed ? c->target_up : true, t);
}

#define SS(word, node)                                                                             \
    word "; address=127.0.0.1; port=18081; name=b/s1; node=" node "; weight=1/1; scur=0/0; qcur=0"

static void test_confirm_nobody_polls_applies_at_once(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 3);
    c.read_ms = 0;
    assert_false(bg_confirm_start(&c, true, 1000));
    assert_int_equal(bg_confirm_check(&c, 1000, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "applied (no balancer polling)");
    assert_true(bg_confirm_is_confirmed(&c, 1000));
}

static void test_confirm_two_stray_polls_are_no_balancer(void **state)
{
    (void)state;
    struct bg_confirm c;
    bg_confirm_init(&c, 5000, 0, 3);
    c.read_ms = 0;
    poll_plain(&c, "10.0.0.9", 800);
    poll_plain(&c, "10.0.0.9", 900);
    assert_false(bg_confirm_start(&c, true, 1000));
    poll_plain(&c, "10.0.0.9", 1000);
    assert_true(bg_confirm_start(&c, false, 1050)); /* the third poll in a row makes it one */
}

/* A person's loop: curl every second, regular as a balancer, but with curl's User-Agent. */
static void test_confirm_curl_loop_neither_confirms_nor_blocks(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 3);
    c.read_ms = 0;
    for (int i = 0; i < 10; i++)
        poll_ua(&c, "10.0.0.7", "curl/7.88.1", i * 1000);
    assert_false(bg_confirm_start(&c, true, 10000)); /* not blocked by it */
    assert_int_equal(bg_confirm_active_peers(&c, 10000), 0);

    /* With a real balancer present the curl loop does not confirm for it either, even from
     * the balancer's own host. */
    for (int i = 0; i < 3; i++) {
        poll_plain(&c, "10.0.0.1", 10000 + i * 200);
        poll_ua(&c, "10.0.0.1", "curl/7.88.1", 10001 + i * 200);
    }
    assert_true(bg_confirm_start(&c, false, 10500));
    for (int i = 0; i < 5; i++) {
        poll_ua(&c, "10.0.0.7", "curl/7.88.1", 10600 + i);
        poll_ua(&c, "10.0.0.1", "curl/7.88.1", 10600 + i);
    }
    assert_int_equal(bg_confirm_check(&c, 10700, msg, sizeof(msg)), 1);
    poll_plain(&c, "10.0.0.1", 10600);
    poll_plain(&c, "10.0.0.1", 10800);
    poll_plain(&c, "10.0.0.1", 11000);
    assert_int_equal(bg_confirm_check(&c, 11000, msg, sizeof(msg)), 0);
}

static void test_confirm_user_agent_rule(void **state)
{
    (void)state;
    assert_true(bg_confirm_balancer_agent(NULL));
    assert_true(bg_confirm_balancer_agent(""));
    assert_true(bg_confirm_balancer_agent("ELB-HealthChecker/2.0"));
    assert_true(bg_confirm_balancer_agent("GoogleHC/1.0"));
    assert_true(bg_confirm_balancer_agent("Envoy/HC"));
    assert_false(bg_confirm_balancer_agent("curl/7.88.1"));
    assert_false(bg_confirm_balancer_agent("Wget/1.21.3"));
    assert_false(bg_confirm_balancer_agent("python-requests/2.28.1"));
    assert_false(bg_confirm_balancer_agent("Python-urllib/3.11"));
    assert_false(bg_confirm_balancer_agent("Blackbox Exporter/0.24.0"));
    assert_false(bg_confirm_balancer_agent("Mozilla/5.0 (X11; Linux x86_64)"));
}

static void test_confirm_counts_polls_per_balancer(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 2);
    c.read_ms = 0;
    for (int t = 0; t < 3; t++) {
        poll_plain(&c, "10.0.0.1", 700 + t * 100);
        poll_plain(&c, "10.0.0.2", 705 + t * 100);
    }
    assert_true(bg_confirm_start(&c, true, 1000));
    poll_plain(&c, "10.0.0.1", 1100);
    poll_plain(&c, "10.0.0.2", 1105);
    assert_int_equal(bg_confirm_check(&c, 1106, msg, sizeof(msg)), 1);
    poll_plain(&c, "10.0.0.1", 1200);
    assert_int_equal(bg_confirm_check(&c, 1201, msg, sizeof(msg)), 1); /* .2 polled once */
    assert_false(bg_confirm_is_confirmed(&c, 1201));
    char d[200];
    bg_confirm_describe(&c, &c.peer[1], d, sizeof(d));
    assert_string_equal(d, "10.0.0.2 (1 of 2 polls answered with the new state)");
    poll_plain(&c, "10.0.0.2", 1205);
    assert_int_equal(bg_confirm_check(&c, 1206, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "confirmed by 2 balancer(s) in 206 ms");
}

/* The wait is derived from the observed interval: (polls + 1) x interval x 1.5 + 1 s. */
static void test_confirm_timeout_from_observed_interval(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 10000, 0, 3);
    c.read_ms = 0;
    for (int t = 0; t < 4; t++)
        poll_plain(&c, "10.0.0.1", t * 1000);
    assert_true(bg_confirm_start(&c, true, 3500));
    assert_int_equal(bg_confirm_deadline(&c, 3500), 3500 + 4 * 1500 + 1000);
    assert_int_equal(bg_confirm_check(&c, 10499, msg, sizeof(msg)), 1);
    assert_int_equal(bg_confirm_check(&c, 10500, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "unconfirmed: 0 of 1 balancer(s) confirmed within 7000 ms");
    assert_false(bg_confirm_is_confirmed(&c, 8000));

    /* A configured confirm_timeout is an upper bound. */
    bg_confirm_init(&c, 10000, 1500, 3);
    c.read_ms = 0;
    for (int t = 0; t < 4; t++)
        poll_plain(&c, "10.0.0.1", t * 1000);
    assert_true(bg_confirm_start(&c, true, 3500));
    assert_int_equal(bg_confirm_deadline(&c, 3500), 5000);
}

static void test_confirm_caller_deadline_cuts_the_wait(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 1);
    c.read_ms = 0;
    for (int t = 0; t < 3; t++)
        poll_plain(&c, "10.0.0.1", 700 + t * 100);
    assert_true(bg_confirm_start(&c, true, 1000));
    c.limit_ms = 1100;
    assert_int_equal(bg_confirm_check(&c, 1099, msg, sizeof(msg)), 1);
    assert_int_equal(bg_confirm_check(&c, 1100, msg, sizeof(msg)), -1);
}

/* A repeated PUT of the same status waits again; progress made so far is kept. */
static void test_confirm_rearm_keeps_progress(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 3);
    c.read_ms = 0;
    for (int t = 0; t < 3; t++)
        poll_plain(&c, "10.0.0.1", t * 100);
    assert_true(bg_confirm_start(&c, true, 250));
    poll_plain(&c, "10.0.0.1", 300);
    c.limit_ms = 350;
    assert_int_equal(bg_confirm_check(&c, 350, msg, sizeof(msg)), -1);
    assert_false(c.waiting);
    c.limit_ms = 0;
    assert_true(bg_confirm_rearm(&c, 360));
    poll_plain(&c, "10.0.0.1", 400);
    assert_int_equal(bg_confirm_check(&c, 401, msg, sizeof(msg)), 1);
    poll_plain(&c, "10.0.0.1", 500);
    assert_int_equal(bg_confirm_check(&c, 501, msg, sizeof(msg)), 0);
    assert_false(bg_confirm_rearm(&c, 600)); /* confirmed: nothing to wait for */
}

static void test_confirm_silent_balancer_stops_counting(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 2000, 0, 3);
    c.read_ms = 0;
    for (int t = 0; t < 3; t++)
        poll_plain(&c, "10.0.0.1", t * 600);
    assert_true(bg_confirm_start(&c, true, 1300));
    assert_false(bg_confirm_is_confirmed(&c, 3200));
    /* Silent for poll_window (at 3201) before its derived wait (1300 + 4 x 900 + 1000) ends. */
    assert_int_equal(bg_confirm_deadline(&c, 3200), 3201);
    assert_true(bg_confirm_is_confirmed(&c, 3201));
    assert_int_equal(bg_confirm_check(&c, 3201, msg, sizeof(msg)), 0);
}

/* The real sequence HAProxy 2.6 sent with "inter 200 rise 3 fall 2" (see agent/confirm.c):
 * the header is HAProxy's view before the check it comes with is answered, so the poll whose
 * answer is the last pass of rise (DOWN 2/3 answered 200) confirms. */
static void test_confirm_send_state_up_exact(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 1);
    c.read_ms = 0; /* confirm_polls 1 does not matter with the header */
    poll_ss(&c, "127.0.0.1", SS("DOWN", "lb1"), 0);
    assert_int_equal(bg_confirm_active_peers(&c, 0), 1); /* a balancer at once */
    assert_true(bg_confirm_start(&c, true, 100));
    poll_ss(&c, "127.0.0.1", SS("DOWN", "lb1"), 200); /* answered 200 */
    poll_ss(&c, "127.0.0.1", SS("DOWN 1/3", "lb1"), 400);
    assert_int_equal(bg_confirm_check(&c, 401, msg, sizeof(msg)), 1);
    char d[200];
    bg_confirm_describe(&c, &c.peer[0], d, sizeof(d));
    assert_string_equal(d, "127.0.0.1 (node lb1, name b/s1, last state DOWN 1/3)");
    poll_ss(&c, "127.0.0.1", SS("DOWN 2/3", "lb1"), 600); /* its 200 makes HAProxy mark it UP */
    assert_int_equal(bg_confirm_check(&c, 601, msg, sizeof(msg)), 0);

    /* Answered 503 (the application failed meanwhile): not the deciding pass. */
    bg_confirm_init(&c, 5000, 0, 1);
    c.read_ms = 0;
    poll_ss(&c, "127.0.0.1", SS("DOWN", "lb1"), 0);
    assert_true(bg_confirm_start(&c, true, 100));
    poll_ss_as(&c, "127.0.0.1", SS("DOWN 2/3", "lb1"), false, 200);
    assert_int_equal(bg_confirm_check(&c, 201, msg, sizeof(msg)), 1);
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 400); /* the header itself always confirms */
    assert_int_equal(bg_confirm_check(&c, 401, msg, sizeof(msg)), 0);
}

/* rise 1 / fall 1 show no x/y: learned from a full DOWN -> UP (UP -> DOWN) seen once. */
static void test_confirm_send_state_learns_rise1_fall1(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 3);
    c.read_ms = 0;
    poll_ss_as(&c, "127.0.0.1", SS("UP", "lb1"), true, 0);
    assert_true(bg_confirm_start(&c, false, 50));
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 100); /* 503: fall unknown yet */
    assert_int_equal(bg_confirm_check(&c, 101, msg, sizeof(msg)), 1);
    poll_ss(&c, "127.0.0.1", SS("DOWN", "lb1"), 200); /* fall 1 learned */
    assert_int_equal(bg_confirm_check(&c, 201, msg, sizeof(msg)), 0);
    assert_true(bg_confirm_start(&c, true, 250));
    poll_ss(&c, "127.0.0.1", SS("DOWN", "lb1"), 300); /* 200: rise unknown yet */
    assert_int_equal(bg_confirm_check(&c, 301, msg, sizeof(msg)), 1);
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 400); /* rise 1 learned */
    assert_true(c.peer[0].rise1 && c.peer[0].fall1);
    /* From now on the deciding answer confirms, one interval earlier. */
    assert_true(bg_confirm_start(&c, false, 450));
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 500);
    assert_int_equal(bg_confirm_check(&c, 501, msg, sizeof(msg)), 0);
    assert_true(bg_confirm_start(&c, true, 550));
    poll_ss(&c, "127.0.0.1", SS("DOWN", "lb1"), 600);
    assert_int_equal(bg_confirm_check(&c, 601, msg, sizeof(msg)), 0);
}

static void test_confirm_send_state_out_exact(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 1);
    c.read_ms = 0;
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 0);
    assert_true(bg_confirm_start(&c, false, 100));
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 200); /* answered 503; fall unknown */
    assert_int_equal(bg_confirm_check(&c, 201, msg, sizeof(msg)), 1); /* still takes traffic */
    poll_ss(&c, "127.0.0.1", SS("UP 1/2", "lb1"), 400); /* its 503 is the last failure */
    assert_int_equal(bg_confirm_check(&c, 401, msg, sizeof(msg)), 0);

    /* UP x/y is not "fully UP": an UP change is confirmed only when the pass tops it up. */
    assert_true(bg_confirm_start(&c, true, 700));
    poll_ss(&c, "127.0.0.1", SS("UP 1/3", "lb1"), 800);
    assert_int_equal(bg_confirm_check(&c, 801, msg, sizeof(msg)), 1);
    poll_ss(&c, "127.0.0.1", SS("UP 2/3", "lb1"), 850);
    assert_int_equal(bg_confirm_check(&c, 851, msg, sizeof(msg)), 0);
    /* Weight 0 (drained) counts as out for an OUT change. */
    assert_true(bg_confirm_start(&c, false, 900));
    poll_ss(&c, "127.0.0.1", "UP; name=b/s1; node=lb1; weight=0/3", 1000);
    assert_int_equal(bg_confirm_check(&c, 1001, msg, sizeof(msg)), 0);
}

/* Two HAProxy on one host, and one HAProxy with the server in two backends: three balancers.
 * Once one sends the header, header-less pollers no longer count. */
static void test_confirm_send_state_keys_and_precedence(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 3);
    c.read_ms = 0;
    for (int t = 0; t < 3; t++)
        poll_plain(&c, "10.0.0.9", t * 100); /* a header-less poller */
    assert_int_equal(bg_confirm_active_peers(&c, 300), 1);
    poll_ss(&c, "10.0.0.1", "UP; name=b/s1; node=lb1", 300);
    poll_ss(&c, "10.0.0.1", "UP; name=b/s1; node=lb2", 300);
    poll_ss(&c, "10.0.0.1", "UP; name=c/s1; node=lb1", 300);
    assert_int_equal(bg_confirm_active_peers(&c, 300), 3);
    assert_true(bg_confirm_start(&c, false, 400));
    poll_ss(&c, "10.0.0.1", "DOWN; name=b/s1; node=lb1", 500);
    poll_ss(&c, "10.0.0.1", "MAINT; name=b/s1; node=lb2", 500);
    assert_int_equal(bg_confirm_check(&c, 501, msg, sizeof(msg)), 1);
    poll_ss(&c, "10.0.0.1", "NOLB; name=c/s1; node=lb1", 600);
    assert_int_equal(bg_confirm_check(&c, 601, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "confirmed by 3 balancer(s) in 201 ms");
}

/* The deciding answer counts once HAProxy has had time to read it (read_ms after the poll). */
static void test_confirm_deciding_answer_counts_after_read(void **state)
{
    (void)state;
    struct bg_confirm c;
    char msg[128];
    bg_confirm_init(&c, 5000, 0, 1);
    assert_int_equal(c.read_ms, 30);
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 0);
    assert_true(bg_confirm_start(&c, false, 100));
    poll_ss(&c, "127.0.0.1", SS("UP 1/2", "lb1"), 200);
    assert_int_equal(bg_confirm_check(&c, 229, msg, sizeof(msg)), 1);
    assert_int_equal(bg_confirm_deadline(&c, 201), 230);
    assert_int_equal(bg_confirm_check(&c, 230, msg, sizeof(msg)), 0);
    /* The header itself showing the state confirms at once. */
    assert_true(bg_confirm_start(&c, true, 300));
    poll_ss(&c, "127.0.0.1", SS("UP", "lb1"), 400);
    assert_int_equal(bg_confirm_check(&c, 400, msg, sizeof(msg)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confirm_nobody_polls_applies_at_once),
        cmocka_unit_test(test_confirm_two_stray_polls_are_no_balancer),
        cmocka_unit_test(test_confirm_curl_loop_neither_confirms_nor_blocks),
        cmocka_unit_test(test_confirm_user_agent_rule),
        cmocka_unit_test(test_confirm_counts_polls_per_balancer),
        cmocka_unit_test(test_confirm_timeout_from_observed_interval),
        cmocka_unit_test(test_confirm_caller_deadline_cuts_the_wait),
        cmocka_unit_test(test_confirm_rearm_keeps_progress),
        cmocka_unit_test(test_confirm_silent_balancer_stops_counting),
        cmocka_unit_test(test_confirm_send_state_up_exact),
        cmocka_unit_test(test_confirm_send_state_out_exact),
        cmocka_unit_test(test_confirm_send_state_learns_rise1_fall1),
        cmocka_unit_test(test_confirm_deciding_answer_counts_after_read),
        cmocka_unit_test(test_confirm_send_state_keys_and_precedence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
