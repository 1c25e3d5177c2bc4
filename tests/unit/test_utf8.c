/* test_utf8.c -- unit tests for the UTF-8-safe cut (common/util.c), the NULL-safe JSON helpers
 * (common/json.c) and the plan's reason (controller/plan.c), issue 9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "json.h"
#include "plan.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E_ACUTE "\xc3\xa9"

static void assert_valid_json_string(const char *s)
{
    json_t *j = json_string(s);
    assert_non_null(j);
    json_decref(j);
}

static void test_utf8_trim_end_cut_character(void **state)
{
    (void)state;
    char buf[8];
    const char *src = "a" E_ACUTE E_ACUTE E_ACUTE E_ACUTE;
    /* "a" + 4 x "é" cut at 6 bytes: the third "é" is half there. */
    memcpy(buf, src, 6);
    buf[6] = '\0';
    assert_null(json_string(buf)); /* the defect: jansson refuses the cut text */
    assert_int_equal(bg_utf8_trim_end(buf), 5);
    assert_string_equal(buf, "a" E_ACUTE E_ACUTE);
    assert_valid_json_string(buf);
    /* 4-byte and 3-byte characters cut after 1, 2 and 3 bytes. */
    char four[] = "x\xf0\x9f\x98";
    assert_int_equal(bg_utf8_trim_end(four), 1);
    char three[] = "x\xe2\x82";
    assert_int_equal(bg_utf8_trim_end(three), 1);
    char whole[] = "x\xe2\x82\xac";
    assert_int_equal(bg_utf8_trim_end(whole), 4);
}

static void test_utf8_trim_end_invalid_bytes(void **state)
{
    (void)state;
    char bad[] = "a\xff"
                 "b\xc0\xaf"
                 "c\xed\xa0\x80"
                 "d\x80";
    bg_utf8_trim_end(bad);
    assert_valid_json_string(bad);
    assert_int_equal(bad[0], 'a');
    assert_int_equal(bad[1], '?');
    char ascii[] = "plain text";
    assert_int_equal(bg_utf8_trim_end(ascii), strlen("plain text"));
}

static void test_utf8_strlcpy(void **state)
{
    (void)state;
    char src[300] = "g";
    for (int i = 0; i < 100; i++)
        strcat(src, E_ACUTE);
    char id[129];
    bg_strlcpy_utf8(id, src, sizeof(id));
    assert_int_equal(strlen(id), 127); /* "g" + 63 x "é": the 64th would need 129 bytes */
    assert_valid_json_string(id);
    char tiny[1] = "x";
    bg_strlcpy_utf8(tiny, src, sizeof(tiny));
    assert_string_equal(tiny, "");
    bg_strlcpy_utf8(id, NULL, sizeof(id));
    assert_string_equal(id, "");
}

static void test_utf8_no_controls(void **state)
{
    (void)state;
    char s[] = "name\n ts=x level=error\r\x1b[2J";
    bg_no_controls(s);
    assert_null(strchr(s, '\n'));
    assert_null(strchr(s, '\r'));
    assert_null(strchr(s, '\x1b'));
    assert_string_equal(s, "name? ts=x level=error??[2J");
}

static void test_utf8_log_token(void **state)
{
    (void)state;
    char out[32];
    bg_log_token("evil level=error\n\"x\\", out, sizeof(out));
    assert_string_equal(out, "evil?level?error??x?");
    bg_log_token("g" E_ACUTE E_ACUTE, out, sizeof(out));
    assert_string_equal(out, "g" E_ACUTE E_ACUTE);
    char small[5];
    bg_log_token("g" E_ACUTE E_ACUTE, small, sizeof(small)); /* 4 bytes fit: "g", "é", half */
    assert_string_equal(small, "g" E_ACUTE);
    bg_log_token(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

static void test_utf8_json_dumps_safe_null(void **state)
{
    (void)state;
    char *s = bg_json_dumps_safe(NULL, JSON_COMPACT, "test");
    assert_non_null(s);
    assert_non_null(strstr(s, "\"error\""));
    free(s);
    json_t *t = bg_json_text("a" E_ACUTE "\xc3", 0);
    assert_string_equal(json_string_value(t), "a" E_ACUTE);
    json_decref(t);
    t = bg_json_text("\xff", 0);
    assert_string_equal(json_string_value(t), "?");
    json_decref(t);
    t = bg_json_text("abc" E_ACUTE, 4); /* cut at max, inside the character */
    assert_string_equal(json_string_value(t), "abc");
    json_decref(t);
    t = bg_json_text(NULL, 0);
    assert_string_equal(json_string_value(t), "");
    json_decref(t);
}

/* The plan's reason lists instance ids and is cut at 512 bytes: never inside a character. */
static void test_utf8_plan_reason(void **state)
{
    (void)state;
    struct bg_member m[8];
    memset(m, 0, sizeof(m));
    for (size_t i = 0; i < BG_ARRAY_LEN(m); i++) {
        char id[129] = "";
        for (int k = 0; k < 63; k++)
            strcat(id, E_ACUTE);
        id[0] = (char)('a' + i); /* a distinct, one-byte-shorter first character */
        memmove(id + 1, id + 2, strlen(id + 2) + 1);
        snprintf(m[i].id, sizeof(m[i].id), "%s", id);
        m[i].color = BG_GREEN;
        m[i].czxid = (int64_t)i + 1;
        m[i].endpoint = "http://127.0.0.1:1";
        m[i].healthy = true;
        m[i].failures = 3;
        snprintf(m[i].last_error, sizeof(m[i].last_error), "Couldn't connect " E_ACUTE);
    }
    struct bg_plan_input in = {.desired = BG_GREEN,
                               .m = m,
                               .n = BG_ARRAY_LEN(m),
                               .min_ready = 1,
                               .batch_size = 1,
                               .now_ms = 100000};
    struct bg_plan out;
    bg_plan(&in, &out);
    assert_valid_json_string(out.reason);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_trim_end_cut_character),
        cmocka_unit_test(test_utf8_trim_end_invalid_bytes),
        cmocka_unit_test(test_utf8_strlcpy),
        cmocka_unit_test(test_utf8_no_controls),
        cmocka_unit_test(test_utf8_log_token),
        cmocka_unit_test(test_utf8_json_dumps_safe_null),
        cmocka_unit_test(test_utf8_plan_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
