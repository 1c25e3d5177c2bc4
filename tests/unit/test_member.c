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
    /* Found by fuzz_member: controls, escapes and non-UTF-8 bytes made it into endpoints. */
    assert_null(parse("h\nx:80", 6, why));
    assert_null(parse("\x1f"
                      "27.0.0.1:9101",
                      14, why));
    const char *esc = "{\"endpoint\":\"http://h\\u001b[31m:1\"}";
    assert_null(parse(esc, strlen(esc), why));
    assert_string_equal(why,
                        "endpoint is too long or has white space, control or non-ASCII characters");
    assert_null(parse("h\x8b\x8b:9", 5, why));
    assert_null(parse("{\"endpoint\":\"http://\"}", 22, why)); /* fuzz_member: no host */
    assert_string_equal(why, "endpoint has no host");
}

static void test_member_health(void **state)
{
    (void)state;
    char check[64];
    const char *ok = "{\"endpoint\":\"http://h:1\",\"healthy\":true,\"check\":\"HTTP 200\"}";
    assert_true(bg_parse_member_health(ok, strlen(ok), check, sizeof(check)));
    const char *old = "{\"endpoint\":\"http://h:1\"}"; /* an agent without a check */
    assert_true(bg_parse_member_health(old, strlen(old), check, sizeof(check)));
    assert_string_equal(check, "");
    assert_true(bg_parse_member_health("h:1", 3, check, sizeof(check)));
    const char *bad = "{\"endpoint\":\"http://h:1\",\"healthy\":false,\"check\":\"HTTP 503\"}";
    assert_false(bg_parse_member_health(bad, strlen(bad), check, sizeof(check)));
    assert_string_equal(check, "HTTP 503");
    /* Anything but a boolean is unhealthy: never mark UP on a guess. */
    const char *odd = "{\"endpoint\":\"http://h:1\",\"healthy\":\"yes\"}";
    assert_false(bg_parse_member_health(odd, strlen(odd), check, sizeof(check)));
    assert_string_equal(check, "node's \"healthy\" is not true or false");
    /* A hostile message is bounded and printable (it ends up in /status and logs). */
    char msg[1000] = "{\"endpoint\":\"http://h:1\",\"healthy\":false,\"check\":\"";
    for (int i = 0; i < 100; i++)
        strcat(msg, "\xc3\xa9\\n\\\"");
    strcat(msg, "\"}");
    assert_false(bg_parse_member_health(msg, strlen(msg), check, sizeof(check)));
    assert_true(strlen(check) < sizeof(check));
    for (const char *c = check; *c; c++)
        assert_true(*c >= 0x20 && *c < 0x7f && *c != '"');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_json),
        cmocka_unit_test(test_member_bare_hostport),
        cmocka_unit_test(test_member_garbage),
        cmocka_unit_test(test_member_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
