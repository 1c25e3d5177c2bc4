/* test_calls.c -- unit tests for controller/calls.c: which answers and errors of a status call
 * are retried, what they leave in the request, and the backoff between attempts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "calls.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static bool classify(struct bg_call_req *r, int cc, long code, const char *resp)
{
    return bg_call_classify(r, cc, code, "", resp, resp != NULL ? strlen(resp) : 0);
}

/* ------------------------------------------------------------------------------------------
 * HTTP answers
 * ------------------------------------------------------------------------------------------ */

static void test_calls_retried_answers(void **state)
{
    (void)state;
    static const long retried[] = {500, 502, 503, 504, 599, 408, 429};
    for (size_t i = 0; i < BG_ARRAY_LEN(retried); i++) {
        struct bg_call_req r = {.endpoint = "http://a"};
        assert_true(classify(&r, CURLE_OK, retried[i], "{\"error\":\"busy\"}"));
        assert_int_equal(r.result, BG_CALL_FAILED);
        assert_int_equal(r.http_code, retried[i]);
        char want[64];
        snprintf(want, sizeof(want), "HTTP %ld: busy", retried[i]);
        assert_string_equal(r.error, want);
    }
}

static void test_calls_final_answers(void **state)
{
    (void)state;
    static const long final[] = {400, 401, 403, 404, 405, 413, 499, 302};
    for (size_t i = 0; i < BG_ARRAY_LEN(final); i++) {
        struct bg_call_req r = {.endpoint = "http://a"};
        assert_false(classify(&r, CURLE_OK, final[i], "{\"error\":\"unauthorized\"}"));
        assert_int_equal(r.result, BG_CALL_FAILED);
        assert_int_equal(r.http_code, final[i]);
    }
}

static void test_calls_stale_epoch_not_retried(void **state)
{
    (void)state;
    struct bg_call_req r = {.endpoint = "http://a"};
    assert_false(classify(&r, CURLE_OK, 409, "{\"error\":\"stale epoch\",\"reason\":\"3 < 4\"}"));
    assert_int_equal(r.result, BG_CALL_STALE);
    assert_int_equal(r.http_code, 409);
    assert_non_null(strstr(r.error, "409 stale epoch: "));
    assert_non_null(strstr(r.error, "3 < 4"));
}

static void test_calls_ok_confirmed(void **state)
{
    (void)state;
    struct bg_call_req r = {.endpoint = "http://a"};
    snprintf(r.error, sizeof(r.error), "left from an earlier attempt");
    assert_false(classify(&r, CURLE_OK, 200, "{\"status\":\"UP\"}"));
    assert_int_equal(r.result, BG_CALL_OK);
    assert_string_equal(r.error, "");
    assert_false(r.unconfirmed);
    assert_int_equal(r.n_waiting, 0);
    /* An answer that is not JSON (an old agent) counts as confirmed too. */
    assert_false(classify(&r, CURLE_OK, 200, "OK"));
    assert_int_equal(r.result, BG_CALL_OK);
    assert_false(r.unconfirmed);
}

static void test_calls_ok_unconfirmed_waiting(void **state)
{
    (void)state;
    struct bg_call_req r = {.endpoint = "http://a"};
    const char *resp = "{\"confirmed\":false,\"waiting_for\":[\"lb1\",\"lb2\",\"l\\nb3\",7,"
                       "\"lb4\",\"lb5\",\"lb6\"]}";
    assert_false(classify(&r, CURLE_OK, 200, resp));
    assert_int_equal(r.result, BG_CALL_OK);
    assert_true(r.unconfirmed);
    assert_int_equal(r.n_waiting, 6); /* the number (not a name) is skipped; all names counted */
    assert_string_equal(r.waiting[0], "lb1");
    assert_string_equal(r.waiting[1], "lb2");
    assert_null(strchr(r.waiting[2], '\n')); /* sanitised */
    assert_string_equal(r.waiting[3], "lb4");
}

/* A probe (GET /v1/status) answered 200 with resp: OK, and the status the agent has applied. */
static void assert_probe_seen(const char *resp, int seen)
{
    struct bg_call_req r = {.endpoint = "http://a", .probe = true, .seen = 9};
    assert_false(classify(&r, CURLE_OK, 200, resp));
    assert_int_equal(r.result, BG_CALL_OK);
    assert_int_equal(r.seen, seen);
}

static void test_calls_probe_seen(void **state)
{
    (void)state;
    assert_probe_seen("{\"status\":\"UP\"}", 1);
    assert_probe_seen("{\"status\":\"OUT_OF_SERVICE\",\"applied\":true,\"confirmed\":true}", 2);
    /* Not trusted while still being applied, failed, or not seen by a balancer. */
    assert_probe_seen("{\"status\":\"UP\",\"applied\":false}", 0);
    assert_probe_seen("{\"status\":\"UP\",\"confirmed\":false}", 0);
    assert_probe_seen("{\"status\":\"STARTING\"}", 0);
    assert_probe_seen("{}", 0);
    assert_probe_seen("not json", 0);
}

/* ------------------------------------------------------------------------------------------
 * Transport errors
 * ------------------------------------------------------------------------------------------ */

static void test_calls_transport_errors_retried(void **state)
{
    (void)state;
    static const int retried[] = {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR,
                                  CURLE_GOT_NOTHING, CURLE_SSL_CONNECT_ERROR};
    for (size_t i = 0; i < BG_ARRAY_LEN(retried); i++) {
        struct bg_call_req r = {.endpoint = "http://a"};
        assert_true(bg_call_classify(&r, retried[i], 0, "Connection refused", NULL, 0));
        assert_int_equal(r.result, BG_CALL_FAILED);
        assert_int_equal(r.http_code, 0);
        char want[256];
        snprintf(want, sizeof(want), "%s: Connection refused",
                 curl_easy_strerror((CURLcode)retried[i]));
        assert_string_equal(r.error, want);
    }
}

static void test_calls_certificate_not_retried(void **state)
{
    (void)state;
    struct bg_call_req r = {.endpoint = "https://a"};
    assert_false(bg_call_classify(&r, CURLE_PEER_FAILED_VERIFICATION, 0,
                                  "unable to get local issuer certificate", NULL, 0));
    assert_int_equal(r.result, BG_CALL_FAILED);
    assert_non_null(strstr(r.error, "unable to get local issuer certificate"));
    assert_false(bg_call_classify(&r, CURLE_SSL_CACERT_BADFILE, 0, NULL, NULL, 0));
    assert_string_equal(r.error, curl_easy_strerror(CURLE_SSL_CACERT_BADFILE));
}

static void test_calls_error_detail_sanitised(void **state)
{
    (void)state;
    struct bg_call_req r = {.endpoint = "http://a"};
    assert_true(bg_call_classify(&r, CURLE_RECV_ERROR, 0, "bad\nline key=forged\"", NULL, 0));
    assert_null(strchr(r.error, '\n'));
    assert_null(strchr(r.error, '"'));
}

/* ------------------------------------------------------------------------------------------
 * Backoff
 * ------------------------------------------------------------------------------------------ */

static void test_calls_backoff_doubles_then_caps(void **state)
{
    (void)state;
    assert_int_equal(bg_call_retry_delay_ms(true, 1, 20, 100), 100);
    assert_int_equal(bg_call_retry_delay_ms(true, 2, 20, 100), 200);
    assert_int_equal(bg_call_retry_delay_ms(true, 3, 20, 100), 400);
    assert_int_equal(bg_call_retry_delay_ms(true, 11, 20, 100), 102400);
    assert_int_equal(bg_call_retry_delay_ms(true, 12, 20, 100), 102400);
    assert_int_equal(bg_call_retry_delay_ms(true, 20, 20, 100), 102400);
    assert_int_equal(bg_call_retry_delay_ms(true, 1, 1, 0), 0);
}

static void test_calls_retries_spent(void **state)
{
    (void)state;
    /* retries: 2 -> attempts 1 and 2 may be followed by another, attempt 3 is the last. */
    assert_true(bg_call_retry_delay_ms(true, 2, 2, 50) >= 0);
    assert_int_equal(bg_call_retry_delay_ms(true, 3, 2, 50), -1);
    assert_int_equal(bg_call_retry_delay_ms(true, 1, 0, 50), -1);
    assert_int_equal(bg_call_retry_delay_ms(false, 1, 5, 50), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_retried_answers),
        cmocka_unit_test(test_calls_final_answers),
        cmocka_unit_test(test_calls_stale_epoch_not_retried),
        cmocka_unit_test(test_calls_ok_confirmed),
        cmocka_unit_test(test_calls_ok_unconfirmed_waiting),
        cmocka_unit_test(test_calls_probe_seen),
        cmocka_unit_test(test_calls_transport_errors_retried),
        cmocka_unit_test(test_calls_certificate_not_retried),
        cmocka_unit_test(test_calls_error_detail_sanitised),
        cmocka_unit_test(test_calls_backoff_doubles_then_caps),
        cmocka_unit_test(test_calls_retries_spent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
