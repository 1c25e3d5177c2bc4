/* test_traffic.c -- unit tests for common/traffic.c: /canary and /drain/<id> data, weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "traffic.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * bg_parse_canary
 * ------------------------------------------------------------------------------------------ */

static int canary(const char *s, struct bg_canary *c, char *why)
{
    *c = (struct bg_canary){.color = BG_BLUE, .percent = -1};
    return bg_parse_canary(s, strlen(s), c, why, 160);
}

/* zkCli-friendly forms are accepted: white space anywhere around, a '%' sign. */
static void test_traffic_canary_accepts(void **state)
{
    (void)state;
    struct bg_canary c;
    char why[160];
    assert_int_equal(canary("green 10", &c, why), 0);
    assert_int_equal(c.color, BG_GREEN);
    assert_int_equal(c.percent, 10);
    assert_int_equal(canary("  blue\t\t5%\n", &c, why), 0);
    assert_int_equal(c.color, BG_BLUE);
    assert_int_equal(c.percent, 5);
    assert_int_equal(canary("green 99", &c, why), 0);
    assert_int_equal(c.percent, 99);
    assert_int_equal(canary("blue 1", &c, why), 0);
    assert_int_equal(c.percent, 1);
}

/* Missing, empty, blank or "0": no canary. */
static void test_traffic_canary_none(void **state)
{
    (void)state;
    struct bg_canary c;
    char why[160];
    const char *none[] = {"", "  \n", "0", " 0 "};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_int_equal(canary(none[i], &c, why), 0);
        assert_int_equal(c.color, BG_COLOR_INVALID);
        assert_int_equal(c.percent, 0);
    }
    assert_int_equal(bg_parse_canary(NULL, 0, &c, why, sizeof(why)), 0);
    assert_int_equal(c.color, BG_COLOR_INVALID);
}

/* Anything else is refused with a reason and *out untouched. */
static void test_traffic_canary_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"green",   "green 0",    "green 100", "green -1",  "green 10 x",
                         "red 10",  "GREEN 10",   "10 green",  "green 1.5", "green 010",
                         "green %", "green 10%%", "green ten", "0 0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bg_canary c;
        char why[160] = "";
        assert_int_equal(canary(bad[i], &c, why), -1);
        assert_int_equal(c.color, BG_BLUE);
        assert_int_equal(c.percent, -1);
        assert_true(why[0] != '\0');
    }
    struct bg_canary c = {.color = BG_BLUE, .percent = -1};
    char why[160] = "";
    assert_int_equal(bg_parse_canary("green 1\0", 8, &c, why, sizeof(why)), -1);
    assert_int_equal(bg_parse_canary("green\0 10", 9, &c, why, sizeof(why)), -1);
}

/* ------------------------------------------------------------------------------------------
 * bg_parse_drain, bg_drain_id_ok
 * ------------------------------------------------------------------------------------------ */

static void test_traffic_drain_reason(void **state)
{
    (void)state;
    char r[BG_DRAIN_REASON_MAX + 1], why[160];
    const char *s = "  kernel upgrade, ticket #42 \n";
    assert_int_equal(bg_parse_drain(s, strlen(s), r, sizeof(r), why, sizeof(why)), 0);
    assert_string_equal(r, "kernel upgrade, ticket #42");
    assert_int_equal(bg_parse_drain("", 0, r, sizeof(r), why, sizeof(why)), 0);
    assert_string_equal(r, "");
    s = "caf\xc3\xa9\tok";
    assert_int_equal(bg_parse_drain(s, strlen(s), r, sizeof(r), why, sizeof(why)), 0);
    assert_string_equal(r, s);
}

static void test_traffic_drain_malformed(void **state)
{
    (void)state;
    char r[BG_DRAIN_REASON_MAX + 1], why[160], long_[300];
    memset(long_, 'x', sizeof(long_));
    strcpy(r, "kept");
    assert_int_equal(bg_parse_drain(long_, sizeof(long_), r, sizeof(r), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "longer"));
    assert_int_equal(bg_parse_drain("a\x01z", 3, r, sizeof(r), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "control"));
    assert_int_equal(bg_parse_drain("a\0z", 3, r, sizeof(r), why, sizeof(why)), -1);
    assert_int_equal(bg_parse_drain("\xc3\x28", 2, r, sizeof(r), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "UTF-8"));
    assert_int_equal(bg_parse_drain("\xed\xa0\x80", 3, r, sizeof(r), why, sizeof(why)), -1);
    assert_string_equal(r, "kept");
    /* Exactly the limit is fine. */
    assert_int_equal(bg_parse_drain(long_, BG_DRAIN_REASON_MAX, r, sizeof(r), why, sizeof(why)), 0);
}

static void test_traffic_drain_id(void **state)
{
    (void)state;
    assert_true(bg_drain_id_ok("web-1"));
    assert_true(bg_drain_id_ok("host.example:8080_a"));
    assert_false(bg_drain_id_ok(""));
    assert_false(bg_drain_id_ok(".."));
    assert_false(bg_drain_id_ok("a/b"));
    assert_false(bg_drain_id_ok("a b"));
    char big[130];
    memset(big, 'a', 129);
    big[129] = '\0';
    assert_false(bg_drain_id_ok(big));
    big[128] = '\0';
    assert_true(bg_drain_id_ok(big));
}

/* ------------------------------------------------------------------------------------------
 * bg_canary_weights, bg_canary_count
 * ------------------------------------------------------------------------------------------ */

/* 2+2, 1+3, 3+1 (and 1+1, 2+8) at 5/10/25/50/90 %: the share is within a point of the
 * request (whole weights of at most 100 allow no better: 1+3 at 90 % is 100 vs 4, 89.3 %). */
static void test_traffic_weights_share(void **state)
{
    (void)state;
    const int counts[][2] = {{2, 2}, {1, 3}, {3, 1}, {1, 1}, {2, 8}};
    const int pcts[] = {5, 10, 25, 50, 90};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        for (size_t j = 0; j < sizeof(pcts) / sizeof(pcts[0]); j++) {
            int wc, wa;
            bg_canary_weights(counts[i][0], counts[i][1], pcts[j], &wc, &wa);
            assert_true(wc >= 1 && wc <= 100 && wa >= 1 && wa <= 100);
            assert_true(wc == 100 || wa == 100);
            double s = bg_canary_share(counts[i][0], wc, counts[i][1], wa);
            if (fabs(s - pcts[j]) > 1.0)
                fail_msg("%d+%d at %d%%: w_c=%d w_a=%d share=%.2f", counts[i][0], counts[i][1],
                         pcts[j], wc, wa, s);
        }
    }
    /* The worked example: 1 canary + 3 active at 10 %: w_c/w_a = 1/3. */
    int wc, wa;
    bg_canary_weights(1, 3, 10, &wc, &wa);
    assert_int_equal(wa, 100);
    assert_int_equal(wc, 33);
    bg_canary_weights(2, 2, 50, &wc, &wa);
    assert_int_equal(wc, 100);
    assert_int_equal(wa, 100);
    bg_canary_weights(3, 1, 10, &wc, &wa);
    assert_int_equal(wa, 100);
    assert_int_equal(wc, 4); /* 12/112 = 10.7 %; 3 gives 8.3 % */
}

/* One side empty: both 100 (nothing to share). */
static void test_traffic_weights_degenerate(void **state)
{
    (void)state;
    int wc, wa;
    bg_canary_weights(0, 3, 10, &wc, &wa);
    assert_int_equal(wc, 100);
    assert_int_equal(wa, 100);
    bg_canary_weights(2, 0, 10, &wc, &wa);
    assert_int_equal(wc, 100);
    assert_int_equal(wa, 100);
}

/* Instance-count canary: the number of canary instances whose share is nearest. */
static void test_traffic_count(void **state)
{
    (void)state;
    assert_int_equal(bg_canary_count(0, 3, 10), 0);
    assert_int_equal(bg_canary_count(2, 2, 10), 1); /* 33 %: the least there is */
    assert_int_equal(bg_canary_count(2, 2, 50), 2); /* 2/4 */
    assert_int_equal(bg_canary_count(4, 4, 25), 1); /* 1/5 = 20 % beats 2/6 = 33 % */
    assert_int_equal(bg_canary_count(10, 9, 10), 1);
    assert_int_equal(bg_canary_count(10, 8, 50), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traffic_canary_accepts),
        cmocka_unit_test(test_traffic_canary_none),
        cmocka_unit_test(test_traffic_canary_malformed),
        cmocka_unit_test(test_traffic_drain_reason),
        cmocka_unit_test(test_traffic_drain_malformed),
        cmocka_unit_test(test_traffic_drain_id),
        cmocka_unit_test(test_traffic_weights_share),
        cmocka_unit_test(test_traffic_weights_degenerate),
        cmocka_unit_test(test_traffic_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
