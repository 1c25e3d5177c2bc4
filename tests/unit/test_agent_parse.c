/* test_agent_parse.c -- unit tests for agent/parse.c: the PUT body and Eureka answer parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent.h"
#include "confirm.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A reason must be usable as a JSON string: valid UTF-8 (json_pack refuses anything else). */
static void assert_json_safe(const char *s)
{
    json_t *j = json_pack("{s:s}", "reason", s);
    assert_non_null(j);
    json_decref(j);
}

static void test_agent_parse_put_good(void **state)
{
    (void)state;
    enum bg_status st = BG_STATUS_OUT;
    int64_t epoch = -1, timeout = -1;
    char why[256] = "";
    const char *b = "{\"status\":\"UP\",\"epoch\":7,\"timeout_ms\":1500}";
    assert_int_equal(bg_agent_parse_put(b, strlen(b), &st, &epoch, &timeout, why, sizeof(why)), 0);
    assert_int_equal(st, BG_STATUS_UP);
    assert_int_equal(epoch, 7);
    assert_int_equal(timeout, 1500);
    b = "{\"status\":\"OUT_OF_SERVICE\",\"epoch\":0}";
    assert_int_equal(bg_agent_parse_put(b, strlen(b), &st, &epoch, &timeout, why, sizeof(why)), 0);
    assert_int_equal(st, BG_STATUS_OUT);
    assert_int_equal(timeout, 0);
}

/* Issue 9: "a" + 20 x "é" was echoed cut at 40 bytes, in the middle of a character. */
static void test_agent_parse_put_utf8_status_echo(void **state)
{
    (void)state;
    char body[256] = "{\"status\":\"a";
    for (int i = 0; i < 20; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\",\"epoch\":0}");
    enum bg_status st;
    int64_t epoch, timeout;
    char why[256];
    assert_int_equal(
        bg_agent_parse_put(body, strlen(body), &st, &epoch, &timeout, why, sizeof(why)), BG_EINVAL);
    assert_non_null(strstr(why, "must be"));
    assert_json_safe(why);
}

static void test_agent_parse_put_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"status\":\"UP\"}",
        "{\"status\":\"UP\",\"epoch\":-1}",
        "{\"status\":\"UP\",\"epoch\":1,\"timeout_ms\":0}",
        "{\"status\":1,\"epoch\":1}",
        "{\"status\":\"UP\",\"status\":\"UP\",\"epoch\":1}",
        "{\"status\":\"\xff\xfe\",\"epoch\":1}",
    };
    for (size_t i = 0; i < BG_ARRAY_LEN(bad); i++) {
        enum bg_status st;
        int64_t epoch, timeout;
        char why[256] = "";
        assert_int_equal(
            bg_agent_parse_put(bad[i], strlen(bad[i]), &st, &epoch, &timeout, why, sizeof(why)),
            BG_EINVAL);
        assert_true(why[0] != '\0');
        assert_json_safe(why);
    }
}

static void test_agent_parse_eureka_instance(void **state)
{
    (void)state;
    char st[64], why[160];
    const char *b = "{\"instance\":{\"instanceId\":\"web-1\",\"status\":\"OUT_OF_SERVICE\"}}";
    assert_int_equal(bg_eureka_parse_instance(b, strlen(b), st, sizeof(st), why, sizeof(why)), 0);
    assert_string_equal(st, "OUT_OF_SERVICE");
    b = "{\"instance\":{}}";
    assert_int_equal(bg_eureka_parse_instance(b, strlen(b), st, sizeof(st), why, sizeof(why)),
                     BG_EINVAL);
    assert_int_equal(bg_eureka_parse_instance(NULL, 0, st, sizeof(st), why, sizeof(why)),
                     BG_EINVAL);
    b = "not json";
    assert_int_equal(bg_eureka_parse_instance(b, strlen(b), st, sizeof(st), why, sizeof(why)),
                     BG_EINVAL);
    assert_json_safe(why);
    /* A long, non-ASCII status is bounded and printable. */
    char big[600] = "{\"instance\":{\"status\":\"";
    for (int i = 0; i < 100; i++)
        strcat(big, "\xc3\xa9");
    strcat(big, "\"}}");
    assert_int_equal(bg_eureka_parse_instance(big, strlen(big), st, sizeof(st), why, sizeof(why)),
                     0);
    assert_true(strlen(st) < sizeof(st));
    assert_json_safe(st);
}

/* DESIGN §14: a higher epoch is trusted only when it is a live election member's. */
static void test_agent_parse_epoch_verdict(void **state)
{
    (void)state;
    const int64_t live[] = {5, 9};
    assert_int_equal(bg_agent_epoch_verdict(4, 5, live, 2, true), BG_EPOCH_STALE);
    assert_int_equal(bg_agent_epoch_verdict(5, 5, live, 2, true), BG_EPOCH_ACCEPT);
    assert_int_equal(bg_agent_epoch_verdict(9, 5, live, 2, true), BG_EPOCH_ACCEPT);
    /* Issue 9: a made-up epoch must not be remembered, or it fences out every real leader. */
    assert_int_equal(bg_agent_epoch_verdict(INT64_MAX, 5, live, 2, true), BG_EPOCH_UNKNOWN);
    assert_int_equal(bg_agent_epoch_verdict(7, 5, live, 2, true), BG_EPOCH_UNKNOWN);
    assert_int_equal(bg_agent_epoch_verdict(6, 5, NULL, 0, false), BG_EPOCH_UNKNOWN);
    /* No live controller: obeyed, never remembered. */
    assert_int_equal(bg_agent_epoch_verdict(INT64_MAX, 0, NULL, 0, true), BG_EPOCH_ACCEPT_NOFENCE);
    assert_int_equal(bg_agent_epoch_verdict(0, 0, NULL, 0, true), BG_EPOCH_ACCEPT);
}

/* Issue 9: timeout_ms * 8 / 10 overflowed (signed) for a huge timeout_ms; UBSan aborts here. */
static void test_agent_parse_answer_deadline(void **state)
{
    (void)state;
    assert_int_equal(bg_agent_answer_deadline(1000, 0), 0);
    assert_int_equal(bg_agent_answer_deadline(1000, -5), 0);
    assert_int_equal(bg_agent_answer_deadline(1000, 2000), 2600);
    int64_t d = bg_agent_answer_deadline(INT64_MAX / 2, INT64_MAX);
    assert_true(d > INT64_MAX / 2);
    assert_int_equal(d, INT64_MAX / 2 + BG_AGENT_MAX_TIMEOUT_MS * 8 / 10);
    enum bg_status st;
    int64_t epoch, timeout;
    char why[256];
    const char *b = "{\"status\":\"UP\",\"epoch\":1,\"timeout_ms\":9223372036854775807}";
    assert_int_equal(bg_agent_parse_put(b, strlen(b), &st, &epoch, &timeout, why, sizeof(why)), 0);
    assert_true(bg_agent_answer_deadline(123456789, timeout) > 123456789);
}

/* Headers as HAProxy 2.6.12 sent them ("inter 200 rise 3 fall 2", http-check send-state). */
static void test_agent_parse_send_state_real(void **state)
{
    (void)state;
    struct bg_server_state ss;
    const char *h = "UP 1/2; address=127.0.0.1; port=18081; name=b/s1; node=vm; weight=1/1; "
                    "scur=0/0; qcur=0";
    assert_int_equal(bg_server_state_parse(h, strlen(h), &ss), 0);
    assert_int_equal(ss.state, BG_SS_UP);
    assert_int_equal(ss.x, 1);
    assert_int_equal(ss.y, 2);
    assert_string_equal(ss.name, "b/s1");
    assert_string_equal(ss.node, "vm");
    assert_int_equal(ss.weight, 1);
    assert_int_equal(ss.farm_weight, 1);
    assert_false(bg_server_state_up(&ss));  /* failing: not fully UP */
    assert_false(bg_server_state_out(&ss)); /* but still takes traffic */

    h = "DOWN; address=127.0.0.1; port=18081; name=b/s1; node=vm; weight=1/0; scur=0/0; qcur=0";
    assert_int_equal(bg_server_state_parse(h, strlen(h), &ss), 0);
    assert_int_equal(ss.state, BG_SS_DOWN);
    assert_int_equal(ss.y, 0);
    assert_int_equal(ss.weight, 1); /* the server's own weight, even while DOWN */
    assert_int_equal(ss.farm_weight, 0);
    assert_true(bg_server_state_out(&ss));

    h = "DOWN 2/3; name=b/s1; node=vm";
    assert_int_equal(bg_server_state_parse(h, strlen(h), &ss), 0);
    assert_int_equal(ss.x, 2);
    assert_int_equal(ss.y, 3);
    assert_true(bg_server_state_out(&ss));
    assert_false(bg_server_state_up(&ss));

    h = "UP; name=b/s1; node=vm; weight=1/1";
    assert_int_equal(bg_server_state_parse(h, strlen(h), &ss), 0);
    assert_true(bg_server_state_up(&ss));
    assert_false(bg_server_state_out(&ss));

    /* From the documentation's example, fields in another order. */
    h = "UP 2/3; name=bck/srv2; node=lb1; weight=1/2; scur=13/22; qcur=0";
    assert_int_equal(bg_server_state_parse(h, strlen(h), &ss), 0);
    assert_string_equal(ss.node, "lb1");
    assert_string_equal(ss.name, "bck/srv2");
    char w[48];
    bg_server_state_word(&ss, w, sizeof(w));
    assert_string_equal(w, "UP 2/3");
}

static void test_agent_parse_send_state_words(void **state)
{
    (void)state;
    struct bg_server_state ss;
    const char *out[] = {"NOLB",  "NOLB 1/2",      "MAINT", "MAINT(via)", "MAINT(resolution)",
                         "DRAIN", "UP; weight=0/4"};
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        assert_int_equal(bg_server_state_parse(out[i], strlen(out[i]), &ss), 0);
        assert_true(bg_server_state_out(&ss));
        assert_false(bg_server_state_up(&ss));
    }
}

static void test_agent_parse_send_state_garbage(void **state)
{
    (void)state;
    struct bg_server_state ss;
    const char *bad[] = {"", " ", ";", "up", "UPX", "no check", "\xff\xfe", "1/2; node=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(bg_server_state_parse(bad[i], strlen(bad[i]), &ss), -1);
    assert_int_equal(bg_server_state_parse(NULL, 10, &ss), -1);

    /* Odd but harmless: kept as far as it makes sense, never beyond len. */
    const char *h = "UP 99999999999/7x; node=a\"b\\c\x01; name=; weight=a/b; ;;=;node";
    assert_int_equal(bg_server_state_parse(h, strlen(h), &ss), 0);
    assert_int_equal(ss.x, 0); /* "99999999999/7x" is no x/y */
    assert_int_equal(ss.y, 0);
    assert_string_equal(ss.node, "a?b?c?");
    assert_string_equal(ss.name, "");
    assert_int_equal(ss.weight, -1);

    char big[600];
    memset(big, 'n', sizeof(big));
    memcpy(big, "DOWN 1/2; node=", 15);
    assert_int_equal(bg_server_state_parse(big, sizeof(big), &ss), 0); /* not NUL-terminated */
    assert_int_equal(strlen(ss.node), sizeof(ss.node) - 1);
    assert_int_equal(bg_server_state_parse("UP 1/2", 2, &ss), 0); /* only "UP" is read */
    assert_int_equal(ss.y, 0);
}

/* DESIGN §12: "weight" is optional (-1 when absent), 0-100 when given, else refused. */
static void test_agent_parse_put_weight(void **state)
{
    (void)state;
    int w = -7;
    char why[256] = "";
    const char *b = "{\"status\":\"UP\",\"epoch\":7}";
    assert_int_equal(bg_agent_parse_put_weight(b, strlen(b), &w, why, sizeof(why)), 0);
    assert_int_equal(w, -1);
    b = "{\"status\":\"UP\",\"epoch\":7,\"weight\":33}";
    assert_int_equal(bg_agent_parse_put_weight(b, strlen(b), &w, why, sizeof(why)), 0);
    assert_int_equal(w, 33);
    b = "{\"status\":\"UP\",\"epoch\":7,\"weight\":0}";
    assert_int_equal(bg_agent_parse_put_weight(b, strlen(b), &w, why, sizeof(why)), 0);
    assert_int_equal(w, 0);
    const char *bad[] = {"{\"weight\":101}",  "{\"weight\":-1}",   "{\"weight\":\"50\"}",
                         "{\"weight\":12.5}", "{\"weight\":null}", "{\"weight\":true}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        w = -7;
        why[0] = '\0';
        assert_int_equal(bg_agent_parse_put_weight(bad[i], strlen(bad[i]), &w, why, sizeof(why)),
                         BG_EINVAL);
        assert_int_equal(w, -7);
        assert_non_null(strstr(why, "weight"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_parse_put_good),
        cmocka_unit_test(test_agent_parse_put_utf8_status_echo),
        cmocka_unit_test(test_agent_parse_put_bad),
        cmocka_unit_test(test_agent_parse_eureka_instance),
        cmocka_unit_test(test_agent_parse_epoch_verdict),
        cmocka_unit_test(test_agent_parse_answer_deadline),
        cmocka_unit_test(test_agent_parse_send_state_real),
        cmocka_unit_test(test_agent_parse_send_state_words),
        cmocka_unit_test(test_agent_parse_send_state_garbage),
        cmocka_unit_test(test_agent_parse_put_weight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
