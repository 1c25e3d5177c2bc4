/* test_prom.c -- unit tests for common/prom.c: the Prometheus text writer and histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_prom_family_once(void **state)
{
    (void)state;
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_family(&p, "bg_x", "gauge", "An x.");
    bg_prom_sample(&p, "bg_x", 1, "color", "blue", (const char *)NULL);
    bg_prom_family(&p, "bg_x", "gauge", "An x.");
    bg_prom_sample(&p, "bg_x", 2, "color", "green", (const char *)NULL);
    bg_prom_counter(&p, "bg_y_total", "Ys.", 7);
    char *s = bg_prom_finish(&p);
    assert_string_equal(s, "# HELP bg_x An x.\n# TYPE bg_x gauge\n"
                           "bg_x{color=\"blue\"} 1\nbg_x{color=\"green\"} 2\n"
                           "# HELP bg_y_total Ys.\n# TYPE bg_y_total counter\nbg_y_total 7\n");
    free(s);
}

static void test_prom_label_escaping(void **state)
{
    (void)state;
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_family(&p, "bg_x", "gauge", "back\\slash and\nnewline \"kept\"");
    bg_prom_sample(&p, "bg_x", 0, "id", "a\"b\\c\nd", "e", "", (const char *)NULL);
    char *s = bg_prom_finish(&p);
    assert_string_equal(s, "# HELP bg_x back\\\\slash and\\nnewline \"kept\"\n# TYPE bg_x gauge\n"
                           "bg_x{id=\"a\\\"b\\\\c\\nd\",e=\"\"} 0\n");
    free(s);
}

static void test_prom_values(void **state)
{
    (void)state;
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_sample(&p, "a", 0.25, (const char *)NULL);
    bg_prom_sample(&p, "b", 1e15, (const char *)NULL);
    bg_prom_sample(&p, "c", -3, (const char *)NULL);
    bg_prom_sample(&p, "d", NAN, (const char *)NULL);
    bg_prom_sample(&p, "e", -INFINITY, (const char *)NULL);
    char *s = bg_prom_finish(&p);
    assert_string_equal(s, "a 0.25\nb 1000000000000000\nc -3\nd NaN\ne -Inf\n");
    free(s);
}

static void test_prom_histogram_cumulative(void **state)
{
    (void)state;
    static const double le[] = {0.1, 1, 2.5};
    struct bg_prom_hist h;
    bg_prom_hist_init(&h, le, 3);
    bg_prom_hist_observe(&h, 0.05);
    bg_prom_hist_observe(&h, 0.1); /* on the bound: counted in it (le is "less or equal") */
    bg_prom_hist_observe(&h, 2);
    bg_prom_hist_observe(&h, 100); /* past the last bound: +Inf only */
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_family(&p, "bg_d_seconds", "histogram", "D.");
    bg_prom_hist(&p, "bg_d_seconds", &h, "call", "status", (const char *)NULL);
    char *s = bg_prom_finish(&p);
    assert_string_equal(s, "# HELP bg_d_seconds D.\n# TYPE bg_d_seconds histogram\n"
                           "bg_d_seconds_bucket{call=\"status\",le=\"0.1\"} 2\n"
                           "bg_d_seconds_bucket{call=\"status\",le=\"1\"} 2\n"
                           "bg_d_seconds_bucket{call=\"status\",le=\"2.5\"} 3\n"
                           "bg_d_seconds_bucket{call=\"status\",le=\"+Inf\"} 4\n"
                           "bg_d_seconds_sum{call=\"status\"} 102.15000000000001\n"
                           "bg_d_seconds_count{call=\"status\"} 4\n");
    free(s);
}

static void test_prom_histogram_inf_is_count(void **state)
{
    (void)state;
    struct bg_prom_hist h;
    bg_prom_hist_init(&h, bg_prom_latency_le, bg_prom_latency_n);
    for (int i = 0; i < 1000; i++)
        bg_prom_hist_observe(&h, i * 0.073);
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_hist(&p, "h", &h, (const char *)NULL);
    char *s = bg_prom_finish(&p);
    /* Every bucket line is >= the one before, and +Inf equals _count. */
    unsigned long long prev = 0, inf = 0, count = 0;
    int buckets = 0;
    for (char *line = strtok(s, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        unsigned long long v = strtoull(strrchr(line, ' ') + 1, NULL, 10);
        if (strncmp(line, "h_bucket{", 9) == 0) {
            assert_true(v >= prev);
            prev = v;
            buckets++;
            if (strstr(line, "le=\"+Inf\"") != NULL)
                inf = v;
        } else if (strncmp(line, "h_count ", 8) == 0) {
            count = v;
        }
    }
    assert_int_equal(buckets, (int)bg_prom_latency_n + 1);
    assert_int_equal(inf, 1000);
    assert_int_equal(count, 1000);
    free(s);
}

static void test_prom_histogram_empty_unlabelled(void **state)
{
    (void)state;
    static const double le[] = {0.05};
    struct bg_prom_hist h;
    bg_prom_hist_init(&h, le, 1);
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_hist(&p, "h", &h, (const char *)NULL);
    char *s = bg_prom_finish(&p);
    assert_string_equal(s,
                        "h_bucket{le=\"0.05\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
    free(s);
    /* An empty writer still hands over a string. */
    bg_prom_init(&p);
    s = bg_prom_finish(&p);
    assert_string_equal(s, "");
    free(s);
    bg_prom_init(&p);
    bg_prom_gauge(&p, "g", "G.", 1);
    bg_prom_free(&p);
    assert_null(p.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_family_once),
        cmocka_unit_test(test_prom_label_escaping),
        cmocka_unit_test(test_prom_values),
        cmocka_unit_test(test_prom_histogram_cumulative),
        cmocka_unit_test(test_prom_histogram_inf_is_count),
        cmocka_unit_test(test_prom_histogram_empty_unlabelled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
