/* test_status.c -- /status's per-instance part under its byte budget (bench/README.md, defects
 * found at scale, item 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char ep[] = "http://127.0.0.1:1";

static struct bg_member mk(const char *id, enum bg_color color, enum bg_known known)
{
    struct bg_member m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "%s", id);
    m.color = color;
    m.czxid = 1;
    m.endpoint = ep;
    m.known = known;
    m.healthy = true;
    return m;
}

static json_int_t count(json_t *st, const char *color, const char *key)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(st, "counts"), color), key));
}

static size_t dumped(json_t *j)
{
    return json_dumpb(j, NULL, 0, JSON_COMPACT);
}

static void test_status_everything_listed_under_the_budget(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("b1", BG_BLUE, BG_KNOWN_UP), mk("g1", BG_GREEN, BG_KNOWN_OUT),
                            mk("g2", BG_GREEN, BG_KNOWN_NONE)};
    m[2].healthy = false;
    strcpy(m[2].check, "HTTP 500");
    json_t *st = json_object();
    assert_int_equal(bg_status_instances(st, m, 3, BG_STATUS_BUDGET), 0);
    json_t *inst = json_object_get(st, "instances");
    assert_int_equal(json_array_size(inst), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(inst, 0), "id")), "b1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(inst, 2), "check")),
                        "HTTP 500");
    assert_null(json_object_get(st, "truncated"));
    assert_null(json_object_get(st, "omitted"));
    assert_int_equal(count(st, "blue", "instances"), 1);
    assert_int_equal(count(st, "blue", "UP"), 1);
    assert_int_equal(count(st, "green", "instances"), 2);
    assert_int_equal(count(st, "green", "OUT_OF_SERVICE"), 1);
    assert_int_equal(count(st, "green", "UNKNOWN"), 1);
    assert_int_equal(count(st, "green", "unhealthy"), 1);
    json_decref(st);
}

static void test_status_no_instances_counts_both_colours(void **state)
{
    (void)state;
    json_t *st = json_object();
    assert_int_equal(bg_status_instances(st, NULL, 0, BG_STATUS_BUDGET), 0);
    assert_int_equal(json_array_size(json_object_get(st, "instances")), 0);
    assert_non_null(json_object_get(json_object_get(st, "counts"), "blue"));
    assert_int_equal(count(st, "green", "instances"), 0);
    json_decref(st);
}

static void test_status_last_error_cut_at_a_character(void **state)
{
    (void)state;
    struct bg_member m = mk("g1", BG_GREEN, BG_KNOWN_NONE);
    /* 'x' then 2-byte characters: byte 120 falls inside one. */
    size_t o = 0;
    m.last_error[o++] = 'x';
    while (o + 2 < sizeof(m.last_error)) {
        m.last_error[o++] = (char)0xc3;
        m.last_error[o++] = (char)0xa9;
    }
    m.last_error[o] = '\0';
    m.failures = 1;
    json_t *st = json_object();
    bg_status_instances(st, &m, 1, BG_STATUS_BUDGET);
    const char *e = json_string_value(
        json_object_get(json_array_get(json_object_get(st, "instances"), 0), "last_error"));
    assert_non_null(e);
    assert_true(strlen(e) <= BG_STATUS_ERROR_MAX);
    assert_true(strlen(e) >= BG_STATUS_ERROR_MAX - 1);
    assert_int_equal(count(st, "green", "failing"), 1);
    json_decref(st);
}

/* Over the budget: the instances with something wrong come first, then the unknown or
 * unconfirmed, then the settled; everything is counted, the rest in "omitted". */
static void test_status_over_budget_keeps_what_matters(void **state)
{
    (void)state;
    struct bg_member m[] = {
        mk("b-settled", BG_BLUE, BG_KNOWN_UP), mk("g-unknown", BG_GREEN, BG_KNOWN_NONE),
        mk("g-failing", BG_GREEN, BG_KNOWN_NONE), mk("g-settled", BG_GREEN, BG_KNOWN_OUT)};
    m[2].failures = 2;
    strcpy(m[2].last_error, "HTTP 502: backend failed");
    /* Room for about two entries. */
    json_t *one = json_object();
    bg_status_instances(one, &m[2], 1, BG_STATUS_BUDGET);
    size_t entry = dumped(json_object_get(one, "instances"));
    json_decref(one);
    json_t *st = json_object();
    assert_int_equal(bg_status_instances(st, m, 4, 2 * entry), 2);
    json_t *inst = json_object_get(st, "instances");
    assert_int_equal(json_array_size(inst), 2);
    /* Listed in member order: the unknown one, then the failing one. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(inst, 0), "id")),
                        "g-unknown");
    assert_string_equal(json_string_value(json_object_get(json_array_get(inst, 1), "id")),
                        "g-failing");
    assert_true(json_is_true(json_object_get(st, "truncated")));
    json_t *om = json_object_get(st, "omitted");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(om, "blue"), "UP")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(om, "green"), "OUT_OF_SERVICE")), 1);
    assert_int_equal(count(st, "blue", "UP"), 1);
    assert_int_equal(count(st, "green", "instances"), 3);
    json_decref(st);
}

/* Whatever the number of instances (and however long their ids, endpoints, checks and errors),
 * the list stays under the budget and every instance is counted. */
static void test_status_bounded_whatever_the_fleet(void **state)
{
    (void)state;
    size_t n = 20000;
    struct bg_member *m = calloc(n, sizeof(*m));
    assert_non_null(m);
    char longep[401];
    memset(longep, 'p', 400);
    memcpy(longep, "http://h/", 9);
    longep[400] = '\0';
    for (size_t i = 0; i < n; i++) {
        char id[129];
        snprintf(id, sizeof(id), "%s-%06zu-%0110d", i % 2 ? "blue" : "green", i, 0);
        m[i] = mk(id, i % 2 ? BG_BLUE : BG_GREEN, BG_KNOWN_NONE);
        m[i].endpoint = longep;
        m[i].healthy = false;
        memset(m[i].check, 'c', sizeof(m[i].check) - 1);
        memset(m[i].last_error, 'e', sizeof(m[i].last_error) - 1);
        m[i].failures = 1;
    }
    json_t *st = json_object();
    size_t left = bg_status_instances(st, m, n, BG_STATUS_BUDGET);
    assert_true(left > 0 && left < n);
    assert_true(dumped(json_object_get(st, "instances")) <= BG_STATUS_BUDGET);
    assert_true(dumped(st) <= BG_STATUS_BUDGET + 1024);
    assert_int_equal(count(st, "blue", "instances") + count(st, "green", "instances"), n);
    assert_int_equal(json_array_size(json_object_get(st, "instances")) + left, n);
    json_decref(st);
    free(m);
}

/* A /routers/<id> node as bg-router writes it, read and listed in /status (DESIGN §13):
 * exact counts per colour, kind, generation, pending, the error (pending: failed), and
 * whether the plan waits for it. */
static void test_status_routers_listed(void **state)
{
    (void)state;
    const char ok[] = "{\"id\":\"lb-1\",\"kind\":\"nginx\",\"serving\":[{\"color\":\"green\","
                      "\"id\":\"g1\",\"address\":\"127.0.0.1:1\"},{\"color\":\"green\",\"id\":"
                      "\"g2\",\"address\":\"127.0.0.1:2\"},{\"color\":\"blue\",\"id\":\"b1\","
                      "\"address\":\"127.0.0.1:3\"}],\"generation\":7,\"pending\":false,"
                      "\"last_error\":\"\",\"note\":\"\",\"updated\":\"x\"}";
    const char bad[] = "{\"id\":\"lb-2\",\"kind\":\"nginx\",\"serving\":[{\"color\":\"blue\","
                       "\"id\":\"b1\",\"address\":\"127.0.0.1:3\"}],\"generation\":3,"
                       "\"pending\":true,\"last_error\":\"test nginx failed:\\n exit 1\"}";
    struct bg_router_view r[3];
    assert_int_equal(bg_router_view_parse(ok, strlen(ok), "lb-1", &r[0]), 0);
    assert_int_equal(bg_router_view_parse(bad, strlen(bad), "lb-2", &r[1]), 0);
    assert_int_not_equal(bg_router_view_parse("[]", 2, "lb-3", &r[2]), 0);
    assert_string_equal(r[1].error, "test nginx failed:? exit 1");
    json_t *st = json_object();
    bg_status_routers(st, r, 3, UINT64_C(2));
    json_t *list = json_object_get(st, "routers");
    assert_int_equal(json_array_size(list), 3);
    char *got = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        got, "[{\"failed\":false,\"generation\":7,\"id\":\"lb-1\",\"kind\":\"nginx\","
             "\"last_error\":null,\"pending\":false,\"serving\":{\"blue\":1,\"green\":2},"
             "\"waited\":false},"
             "{\"failed\":true,\"generation\":3,\"id\":\"lb-2\",\"kind\":\"nginx\","
             "\"last_error\":\"test nginx failed:? exit 1\",\"pending\":true,"
             "\"serving\":{\"blue\":1,\"green\":0},\"waited\":true},"
             "{\"failed\":true,\"generation\":0,\"id\":\"lb-3\",\"kind\":\"\","
             "\"last_error\":\"malformed /routers/lb-3: not a JSON object with a \\\"serving\\\" "
             "array\",\"pending\":false,\"serving\":{\"blue\":0,\"green\":0},\"waited\":false}]");
    free(got);
    json_decref(st);
}

/* An error left over from an earlier change (not pending) is shown but does not fail the
 * router; no routers: an empty list; never more than BG_ROUTERS_MAX entries. */
static void test_status_routers_bounded(void **state)
{
    (void)state;
    const char old[] = "{\"serving\":[],\"pending\":false,\"last_error\":\"reload timed out\","
                       "\"generation\":\"7\"}";
    struct bg_router_view v;
    assert_int_equal(bg_router_view_parse(old, strlen(old), "lb-1", &v), 0);
    assert_string_equal(v.error, "");
    assert_string_equal(v.last_error, "reload timed out");
    assert_int_equal(v.generation, 0); /* not an integer */
    json_t *st = json_object();
    bg_status_routers(st, NULL, 0, 0);
    assert_int_equal(json_array_size(json_object_get(st, "routers")), 0);
    size_t n = BG_ROUTERS_MAX + 5;
    struct bg_router_view *many = calloc(n, sizeof(*many));
    for (size_t i = 0; i < n; i++) {
        memset(many[i].id, 'r', sizeof(many[i].id) - 1);
        memset(many[i].last_error, 'e', sizeof(many[i].last_error) - 1);
        memset(many[i].kind, 'k', sizeof(many[i].kind) - 1);
    }
    bg_status_routers(st, many, n, UINT64_MAX);
    assert_int_equal(json_array_size(json_object_get(st, "routers")), BG_ROUTERS_MAX);
    assert_true(dumped(st) < 50 * 1024);
    free(many);
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_everything_listed_under_the_budget),
        cmocka_unit_test(test_status_no_instances_counts_both_colours),
        cmocka_unit_test(test_status_last_error_cut_at_a_character),
        cmocka_unit_test(test_status_over_budget_keeps_what_matters),
        cmocka_unit_test(test_status_bounded_whatever_the_fleet),
        cmocka_unit_test(test_status_routers_listed),
        cmocka_unit_test(test_status_routers_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
