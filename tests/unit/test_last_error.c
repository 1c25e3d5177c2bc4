/* test_last_error.c -- an agent's failure answer as last_error shows it (bench/README.md,
 * defects found at scale, item 5: the JSON body was kept with its quotes turned into '?', and
 * the useful part cut off). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"

#include <stdio.h>
#include <string.h>

static const char *said(const char *body, char *out, size_t outlen)
{
    bg_agent_error_text(body, body ? strlen(body) : 0, out, outlen);
    return out;
}

static void test_last_error_agent_backend_failure(void **state)
{
    (void)state;
    char out[224];
    /* bg-agent's 502 (agent/agent.c). */
    said("{\"error\":\"backend failed\",\"backend\":\"eureka\",\"reason\":\"eureka "
         "http://e1:8761/eureka: PUT /eureka/apps/SHOP/web-1/status?value=UP: timed out\","
         "\"status\":\"OUT_OF_SERVICE\"}",
         out, sizeof(out));
    assert_string_equal(out, "backend failed (eureka): eureka http://e1:8761/eureka: PUT "
                             "/eureka/apps/SHOP/web-1/status?value=UP: timed out");
}

static void test_last_error_backends_list(void **state)
{
    (void)state;
    char out[224];
    /* An answer that lists its backends: the first that failed, and how many more did. */
    said("{\"error\":\"backend failed\",\"id\":\"green-181\",\"status\":\"OUT_OF_SERVICE\","
         "\"backends\":[{\"type\":\"health\",\"ok\":true},{\"type\":\"eureka\",\"ok\":false,"
         "\"reason\":\"connect timeout\"},{\"type\":\"exec\",\"ok\":false,\"reason\":\"exit "
         "3\"}]}",
         out, sizeof(out));
    assert_string_equal(out, "backend failed (eureka, 1 more failed): connect timeout");
}

static void test_last_error_reason_only(void **state)
{
    (void)state;
    char out[224];
    said("{\"error\":\"unhealthy\",\"reason\":\"application health check failing: HTTP "
         "\\\"500\\\"\"}",
         out, sizeof(out));
    assert_string_equal(out, "unhealthy: application health check failing: HTTP '500'");
    said("{\"error\":\"stale epoch\",\"epoch\":7,\"given\":3}", out, sizeof(out));
    assert_string_equal(out, "stale epoch");
}

static void test_last_error_not_json(void **state)
{
    (void)state;
    char out[64];
    said("<html>\"Bad\\gateway\"\r\n</html>", out, sizeof(out));
    assert_string_equal(out, "<html>'Bad/gateway'?"
                             "?</html>");
    said("", out, sizeof(out));
    assert_string_equal(out, "");
    said(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    said("{\"other\":1}", out, sizeof(out));
    assert_string_equal(out, "{'other':1}");
}

static void test_last_error_cut_at_a_character(void **state)
{
    (void)state;
    char out[16];
    /* A 2-byte character across the cut is dropped whole. */
    said("{\"error\":\"abcdefghijklmn\xc3\xa9\"}", out, sizeof(out));
    assert_string_equal(out, "abcdefghijklmn");
    said("{\"error\":\"abcdefghijklm\xc3\xa9\"}", out, sizeof(out));
    assert_string_equal(out, "abcdefghijklm\xc3\xa9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_error_agent_backend_failure),
        cmocka_unit_test(test_last_error_backends_list),
        cmocka_unit_test(test_last_error_reason_only),
        cmocka_unit_test(test_last_error_not_json),
        cmocka_unit_test(test_last_error_cut_at_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
