/* test_member.c -- instance node data: JSON, bare host:port, and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"

#include <stdlib.h>
#include <string.h>

static char *parse(const char *s, size_t len, char *why)
{
    return bg_parse_member_data(s, len, why, 256);
}

static void test_member_json(void **state)
{
    (void)state;
    char why[256] = "";
    const char *s = "{\"id\":\"web-1\",\"endpoint\":\"http://127.0.0.1:9101/\",\"app\":\"SHOP\"}";
    char *ep = parse(s, strlen(s), why);
    assert_non_null(ep);
    assert_string_equal(ep, "http://127.0.0.1:9101");
    free(ep);
}

static void test_member_bare_hostport(void **state)
{
    (void)state;
    char why[256] = "";
    char *ep = parse(" 10.0.0.5:8080\n", 15, why);
    assert_non_null(ep);
    assert_string_equal(ep, "http://10.0.0.5:8080");
    free(ep);
}

static void test_member_garbage(void **state)
{
    (void)state;
    char why[256] = "";
    assert_null(parse("hello world", 11, why));
    assert_string_equal(why, "node data is neither JSON with an endpoint nor host:port (11 "
                             "bytes: hello world)");
    assert_null(parse("{\"endpoint\":42}", 15, why));
    assert_string_equal(why, "node data has no \"endpoint\" string");
    assert_null(parse("{\"endpoint\":\"ftp://x:1\"}", 24, why));
    assert_string_equal(why, "endpoint must start with http:// or https://");
    const char bin[] = {'\xff', '\xfe', 'a', ':', '1', '\0', 'x'};
    assert_null(parse(bin, sizeof(bin), why));
    assert_null(parse("", 0, why));
    assert_null(parse("host:0", 6, why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_json),
        cmocka_unit_test(test_member_bare_hostport),
        cmocka_unit_test(test_member_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
