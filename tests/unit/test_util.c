/* test_util.c -- unit tests for common/util.c: parsing, comparison and string helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * bg_parse_duration
 * ------------------------------------------------------------------------------------------ */

/* The growing buffer: NUL-terminated after every append, grows past its first size, and an
 * empty append on an empty buffer still gives a string. */
static void test_util_buf_append(void **state)
{
    (void)state;
    char *b = NULL;
    size_t len = 0, cap = 0;
    bg_buf_append(&b, &len, &cap, "", 0);
    assert_non_null(b);
    assert_string_equal(b, "");
    char chunk[700];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 10; i++) {
        bg_buf_append(&b, &len, &cap, chunk, sizeof(chunk));
        assert_int_equal(len, (size_t)(i + 1) * sizeof(chunk));
        assert_true(cap > len);
        assert_int_equal(b[len], '\0');
        assert_int_equal(strlen(b), len);
    }
    bg_buf_append(&b, &len, &cap, "end", 3);
    assert_string_equal(b + len - 3, "end");
    free(b);
}

static void test_util_duration_good(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"0", 0},      {"0ms", 0},     {"0s", 0},           {"250ms", 250},   {"2s", 2000},
        {"1m", 60000}, {"90s", 90000}, {"1440m", 86400000}, {"1500ms", 1500},
    };
    for (size_t i = 0; i < BG_ARRAY_LEN(cases); i++) {
        int64_t ms = -1;
        assert_int_equal(bg_parse_duration(cases[i].in, &ms), BG_OK);
        assert_int_equal(ms, cases[i].ms);
    }
}

static void test_util_duration_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        "10",
        "1h",
        "-1s",
        "+1s",
        "1.5s",
        " 1s",
        "1s ",
        "1 s",
        "1S",
        "1ms2",
        "1sec",
        "0x10s",
        "1d",
        "m1",
        "9223372036854775807ms",
        "99999999999999999999s",
        "9999999999999999m",
    };
    for (size_t i = 0; i < BG_ARRAY_LEN(bad); i++) {
        int64_t ms = 0;
        if (bg_parse_duration(bad[i], &ms) != BG_EINVAL)
            fail_msg("bg_parse_duration(\"%s\") accepted it as %lld ms", bad[i], (long long)ms);
    }
    int64_t ms = 0;
    assert_int_equal(bg_parse_duration(NULL, &ms), BG_EINVAL);
}

/* ------------------------------------------------------------------------------------------
 * Colours
 * ------------------------------------------------------------------------------------------ */

static enum bg_color color(const char *s)
{
    return bg_parse_color(s, strlen(s));
}

static void test_util_color_good(void **state)
{
    (void)state;
    assert_int_equal(color("blue"), BG_BLUE);
    assert_int_equal(color("green"), BG_GREEN);
    assert_int_equal(color("  green\n"), BG_GREEN);
    assert_int_equal(color("\tblue\r\n"), BG_BLUE);
}

static void test_util_color_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {"Blue",  "GREEN", "",       "  ",         "purple",
                                      "bluee", "blu",   "gr een", "blue green", "\"blue\""};
    for (size_t i = 0; i < BG_ARRAY_LEN(bad); i++) {
        if (color(bad[i]) != BG_COLOR_INVALID)
            fail_msg("bg_parse_color(\"%s\") accepted it", bad[i]);
    }
    assert_int_equal(bg_parse_color(NULL, 0), BG_COLOR_INVALID);
}

static void test_util_color_length_not_nul_terminated(void **state)
{
    (void)state;
    /* Data read from ZooKeeper is a byte buffer: only len bytes count. */
    const char green[5] = {'g', 'r', 'e', 'e', 'n'};
    assert_int_equal(bg_parse_color(green, sizeof(green)), BG_GREEN);
    assert_int_equal(bg_parse_color("bluex", 4), BG_BLUE);
    assert_int_equal(bg_parse_color("blue", 3), BG_COLOR_INVALID);
    assert_int_equal(bg_parse_color("green\n\n", 7), BG_GREEN);
    assert_int_equal(bg_parse_color("blue", 0), BG_COLOR_INVALID);
}

static void test_util_color_names(void **state)
{
    (void)state;
    assert_string_equal(bg_color_name(BG_BLUE), "blue");
    assert_string_equal(bg_color_name(BG_GREEN), "green");
    assert_string_equal(bg_color_name(BG_COLOR_INVALID), "invalid");
    assert_int_equal(bg_other_color(BG_BLUE), BG_GREEN);
    assert_int_equal(bg_other_color(BG_GREEN), BG_BLUE);
    assert_int_equal(bg_other_color(BG_COLOR_INVALID), BG_COLOR_INVALID);
}

/* ------------------------------------------------------------------------------------------
 * bg_ct_equal
 * ------------------------------------------------------------------------------------------ */

static void test_util_ct_equal(void **state)
{
    (void)state;
    assert_true(bg_ct_equal("abc", 3, "abc", 3));
    assert_false(bg_ct_equal("abc", 3, "abd", 3));
    assert_false(bg_ct_equal("xbc", 3, "abc", 3));
    assert_false(bg_ct_equal("abc", 3, "abcd", 4));
    assert_false(bg_ct_equal("abcd", 4, "abc", 3));
    /* A prefix must not match, in either direction. */
    assert_false(bg_ct_equal("ab", 2, "abc", 3));
    assert_false(bg_ct_equal("abcabc", 6, "abc", 3));
    assert_true(bg_ct_equal("", 0, "", 0));
    assert_false(bg_ct_equal("a", 1, "", 0));
    assert_false(bg_ct_equal("", 0, "a", 1));
    /* Only the given lengths count, and NUL bytes are compared like any other. */
    assert_true(bg_ct_equal("abcdef", 3, "abcxyz", 3));
    assert_true(bg_ct_equal("a\0b", 3, "a\0b", 3));
    assert_false(bg_ct_equal("a\0b", 3, "a\0c", 3));
}

/* ------------------------------------------------------------------------------------------
 * bg_split_hostport
 * ------------------------------------------------------------------------------------------ */

static void test_util_split_hostport_good(void **state)
{
    (void)state;
    char host[64];
    int port = -1;
    assert_int_equal(bg_split_hostport("127.0.0.1:9101", host, sizeof(host), &port), BG_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9101);
    assert_int_equal(bg_split_hostport("[::1]:80", host, sizeof(host), &port), BG_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(bg_split_hostport("web-1.example:65535", host, sizeof(host), &port), BG_OK);
    assert_string_equal(host, "web-1.example");
    assert_int_equal(port, 65535);
    assert_int_equal(bg_split_hostport("localhost:0", host, sizeof(host), &port), BG_OK);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 0);
}

static void test_util_split_hostport_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {"localhost", ":80",     "host:",      "host:abc",
                                      "host:80x",  "host:-1", "host:65536", ""};
    for (size_t i = 0; i < BG_ARRAY_LEN(bad); i++) {
        char host[64];
        int port = 0;
        if (bg_split_hostport(bad[i], host, sizeof(host), &port) != BG_EINVAL)
            fail_msg("bg_split_hostport(\"%s\") accepted it", bad[i]);
    }
    /* The host must fit in the caller's buffer, NUL included. */
    char small[5];
    int port = 0;
    assert_int_equal(bg_split_hostport("abcde:80", small, sizeof(small), &port), BG_EINVAL);
    assert_int_equal(bg_split_hostport("abcd:80", small, sizeof(small), &port), BG_OK);
    assert_string_equal(small, "abcd");
}

/* ------------------------------------------------------------------------------------------
 * bg_trim and bg_sanitize
 * ------------------------------------------------------------------------------------------ */

static void test_util_election_seq(void **state)
{
    (void)state;
    assert_int_equal(bg_election_seq("member-0000000000"), 0);
    assert_int_equal(bg_election_seq("member-0000000042"), 42);
    assert_int_equal(bg_election_seq("member-2147483648"), 2147483648LL);
    /* Anything else is not an election member: never a predecessor, never an epoch. */
    assert_int_equal(bg_election_seq("member-abc"), -1);
    assert_int_equal(bg_election_seq("member-12x"), -1);
    assert_int_equal(bg_election_seq("member-"), -1);
    assert_int_equal(bg_election_seq("member--1"), -1);
    assert_int_equal(bg_election_seq("zzz"), -1);
    assert_int_equal(bg_election_seq("x-member-0000000001"), -1);
    assert_int_equal(bg_election_seq("member-0000000000000000000001"), -1); /* overflow guard */
    assert_int_equal(bg_election_seq(NULL), -1);
}

static void test_util_trim(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"  a b \n", "a b"},    {"abc", "abc"}, {"", ""},    {" \t\r\n ", ""},
        {"\ttoken\n", "token"}, {"x ", "x"},    {" x", "x"},
    };
    for (size_t i = 0; i < BG_ARRAY_LEN(cases); i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        assert_ptr_equal(bg_trim(buf), buf);
        assert_string_equal(buf, cases[i].out);
    }
}

static void test_util_sanitize(void **state)
{
    (void)state;
    char out[32];
    bg_sanitize("hello", 5, out, sizeof(out));
    assert_string_equal(out, "hello");
    /* Quotes, backslashes and non-printables cannot break a key="value" log line. */
    bg_sanitize("a\"b\\c\n\x01\x7f\xff", 9, out, sizeof(out));
    assert_string_equal(out, "a?b?c????");
    bg_sanitize("a\0b", 3, out, sizeof(out));
    assert_string_equal(out, "a?b");
    bg_sanitize("", 0, out, sizeof(out));
    assert_string_equal(out, "");
    /* Only inlen bytes are read. */
    bg_sanitize("abcdef", 3, out, sizeof(out));
    assert_string_equal(out, "abc");
}

static void test_util_sanitize_cuts_long_input(void **state)
{
    (void)state;
    char in[100];
    memset(in, 'x', sizeof(in));
    char out[16];
    bg_sanitize(in, sizeof(in), out, sizeof(out));
    assert_string_equal(out, "xxxxxxxxxxxx...");
    assert_true(strlen(out) < sizeof(out));

    /* Too small for the ellipsis: still NUL-terminated, never overrun. */
    char tiny[4] = {'#', '#', '#', '#'};
    bg_sanitize(in, sizeof(in), tiny, 3);
    assert_string_equal(tiny, "");
    assert_int_equal(tiny[3], '#');

    char untouched = '#';
    bg_sanitize(in, sizeof(in), &untouched, 0);
    assert_int_equal(untouched, '#');
}

/* ------------------------------------------------------------------------------------------
 * Odds and ends
 * ------------------------------------------------------------------------------------------ */

static void test_util_iso_time(void **state)
{
    (void)state;
    char buf[40];
    bg_iso_time(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    bg_iso_time(1234567890123, buf, sizeof(buf));
    assert_string_equal(buf, "2009-02-13T23:31:30.123Z");
}

static void test_util_xasprintf_and_free(void **state)
{
    (void)state;
    char *s = bg_xasprintf("%s-%d", "web", 7);
    assert_string_equal(s, "web-7");
    bg_free(&s);
    assert_null(s);
    bg_free(&s); /* a second free is harmless */
    char *d = bg_xstrndup("abcdef", 3);
    assert_string_equal(d, "abc");
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_util_buf_append),
        cmocka_unit_test(test_util_duration_good),
        cmocka_unit_test(test_util_duration_bad),
        cmocka_unit_test(test_util_color_good),
        cmocka_unit_test(test_util_color_bad),
        cmocka_unit_test(test_util_color_length_not_nul_terminated),
        cmocka_unit_test(test_util_color_names),
        cmocka_unit_test(test_util_ct_equal),
        cmocka_unit_test(test_util_split_hostport_good),
        cmocka_unit_test(test_util_split_hostport_bad),
        cmocka_unit_test(test_util_election_seq),
        cmocka_unit_test(test_util_trim),
        cmocka_unit_test(test_util_sanitize),
        cmocka_unit_test(test_util_sanitize_cuts_long_input),
        cmocka_unit_test(test_util_iso_time),
        cmocka_unit_test(test_util_xasprintf_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
