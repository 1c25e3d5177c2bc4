/* test_eureka_job.c -- the Eureka job machine (agent/eureka_job.c): fed answers, it names the
 * next request and the verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "eureka_job.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct bg_eu_answer http(long code)
{
    return (struct bg_eu_answer){.transport_ok = true, .code = code};
}

static struct bg_eu_answer seen(const char *status)
{
    return (struct bg_eu_answer){.transport_ok = true, .code = 200, .status = status};
}

static enum bg_eu_outcome feed(struct bg_eu_job *j, enum bg_eu_step sent, struct bg_eu_answer a,
                               int64_t now)
{
    return bg_eu_job_feed(j, sent, &a, now);
}

static void test_eureka_job_out_without_register(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_OUT, false, 1000);
    assert_true(j.active);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_STATUS);
    struct bg_eu_answer a = http(200);
    a.url = 2; /* the URL that took the status call is the one confirmed at first */
    assert_int_equal(bg_eu_job_feed(&j, BG_EU_STATUS, &a, 1010), BG_EU_NEXT);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_CONFIRM);
    assert_int_equal((int)j.url, 2);
    /* The registry still says UP: read again after the gap. */
    assert_int_equal(feed(&j, BG_EU_CONFIRM, seen("UP"), 1020), BG_EU_NEXT);
    assert_int_equal(j.not_before, 1020 + BG_EU_CONFIRM_GAP_MS);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_CONFIRM);
    enum bg_eu_outcome o = feed(&j, BG_EU_CONFIRM, seen("OUT_OF_SERVICE"), 1130);
    assert_int_equal(o, BG_EU_CONFIRMED);
    assert_int_equal(bg_eu_outcome_rc(o), 0);
    assert_int_equal(j.confirm_tries, 2);
}

static void test_eureka_job_registers_with_own_status(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, true, 0);
    assert_string_equal(bg_eu_job_own_status(&j), "UP");
    /* Registered as STARTING: UP is registered before the override is deleted. */
    assert_int_equal(bg_eu_job_next(&j, "STARTING"), BG_EU_REGISTER);
    assert_int_equal(feed(&j, BG_EU_REGISTER, http(204), 5), BG_EU_REGISTERED);
    assert_int_equal(bg_eu_job_next(&j, "UP"), BG_EU_STATUS);

    /* Going OUT registers STARTING, never OUT_OF_SERVICE. */
    bg_eu_job_start(&j, true, true, BG_STATUS_OUT, true, 0);
    assert_string_equal(bg_eu_job_own_status(&j), "STARTING");
    assert_int_equal(bg_eu_job_next(&j, "UP"), BG_EU_REGISTER);
    /* Already registered as wanted: straight to the status call. */
    bg_eu_job_start(&j, true, true, BG_STATUS_OUT, true, 0);
    assert_int_equal(bg_eu_job_next(&j, "STARTING"), BG_EU_STATUS);
}

static void test_eureka_job_register_only(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, false, false, BG_STATUS_OUT, true, 0);
    assert_string_equal(bg_eu_job_own_status(&j), "STARTING");
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_REGISTER);
    assert_int_equal(feed(&j, BG_EU_REGISTER, http(204), 1), BG_EU_REGISTERED);
    assert_int_equal(bg_eu_job_next(&j, "STARTING"), BG_EU_DONE);
}

static void test_eureka_job_register_failure_is_final(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, true, 0);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_REGISTER);
    enum bg_eu_outcome o = feed(&j, BG_EU_REGISTER, http(400), 1);
    assert_int_equal(o, BG_EU_REGISTER_FAILED);
    assert_int_equal(bg_eu_outcome_rc(o), BG_EHTTP);
    struct bg_eu_answer refused = {.transport_ok = false};
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, true, 0);
    assert_int_equal(bg_eu_job_feed(&j, BG_EU_REGISTER, &refused, 1), BG_EU_REGISTER_FAILED);
}

static void test_eureka_job_404_registers_again_once(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_OUT, true, 0);
    assert_int_equal(bg_eu_job_next(&j, "STARTING"), BG_EU_STATUS);
    assert_int_equal(feed(&j, BG_EU_STATUS, http(404), 1), BG_EU_LOST);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_REGISTER);
    assert_int_equal(feed(&j, BG_EU_REGISTER, http(204), 2), BG_EU_REGISTERED);
    assert_int_equal(bg_eu_job_next(&j, "STARTING"), BG_EU_STATUS);
    /* A second 404 in the same job is final. */
    enum bg_eu_outcome o = feed(&j, BG_EU_STATUS, http(404), 3);
    assert_int_equal(o, BG_EU_NOT_REGISTERED);
    assert_int_equal(bg_eu_outcome_rc(o), BG_ENOTFOUND);

    /* A 404 while confirming counts too. */
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, true, 0);
    j.step = BG_EU_CONFIRM;
    assert_int_equal(feed(&j, BG_EU_CONFIRM, http(404), 1), BG_EU_LOST);
    assert_int_equal(j.step, BG_EU_REGISTER);
}

static void test_eureka_job_404_without_register_is_final(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_STATUS);
    assert_int_equal(feed(&j, BG_EU_STATUS, http(404), 1), BG_EU_NOT_REGISTERED);
}

static void test_eureka_job_status_call_failure(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    enum bg_eu_outcome o = feed(&j, BG_EU_STATUS, http(503), 1);
    assert_int_equal(o, BG_EU_STATUS_FAILED);
    assert_int_equal(bg_eu_outcome_rc(o), BG_EHTTP);
    struct bg_eu_answer timeout = {.transport_ok = false};
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    assert_int_equal(bg_eu_job_feed(&j, BG_EU_STATUS, &timeout, 1), BG_EU_STATUS_FAILED);
}

static void test_eureka_job_confirm_gives_up_after_tries(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 0), BG_EU_NEXT);
    int64_t t = 0;
    for (int i = 1; i < BG_EU_CONFIRM_TRIES; i++) {
        t += BG_EU_CONFIRM_GAP_MS;
        assert_int_equal(feed(&j, BG_EU_CONFIRM, seen("OUT_OF_SERVICE"), t), BG_EU_NEXT);
    }
    assert_int_equal(feed(&j, BG_EU_CONFIRM, seen("OUT_OF_SERVICE"), t + 100), BG_EU_MISMATCH);
    assert_int_equal(j.confirm_tries, BG_EU_CONFIRM_TRIES);

    /* Answers without a readable status, or failed reads: unconfirmed, not a mismatch. */
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 0), BG_EU_NEXT);
    for (int i = 1; i < BG_EU_CONFIRM_TRIES; i++)
        assert_int_equal(feed(&j, BG_EU_CONFIRM, i % 2 ? http(200) : http(500), i), BG_EU_NEXT);
    assert_int_equal(feed(&j, BG_EU_CONFIRM, http(200), 99), BG_EU_UNCONFIRMED);
    /* A status in a failed answer does not count. */
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    struct bg_eu_answer bad = {.transport_ok = true, .code = 500, .status = "UP"};
    assert_int_equal(bg_eu_job_feed(&j, BG_EU_CONFIRM, &bad, 1), BG_EU_NEXT);
}

static void test_eureka_job_confirm_stops_before_the_callers_deadline(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_OUT, false, 0);
    j.limit_ms = 1000;
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 10), BG_EU_NEXT);
    assert_int_equal(feed(&j, BG_EU_CONFIRM, seen("UP"), 800), BG_EU_NEXT);
    /* Another read would start after the deadline: give up now, after two reads. */
    assert_int_equal(feed(&j, BG_EU_CONFIRM, seen("UP"), 900), BG_EU_MISMATCH);
    assert_int_equal(j.confirm_tries, 2);
}

/* The registration body, read back as Eureka's codec would. */
static json_t *register_body(const struct bg_backend_conf *c, const char *status)
{
    struct bg_instance_conf in = {
        .id = "web-1", .color = BG_GREEN, .endpoint = "http://10.0.0.5:7070", .version = "2.1"};
    char *s = bg_eu_register_body(c, &in, status, 1700000000123LL);
    json_error_t err;
    json_t *root = json_loads(s, 0, &err);
    free(s);
    assert_non_null(root);
    return root;
}

static void test_eureka_job_register_body(void **state)
{
    (void)state;
    struct bg_backend_conf c = {.app = "SHOP",
                                .instance_id = "web-1",
                                .ip_addr = "10.0.0.5",
                                .port = 8080,
                                .renew_interval_ms = 30000,
                                .duration_ms = 90000};
    json_t *root = register_body(&c, "STARTING");
    json_t *in = json_object_get(root, "instance");
    assert_string_equal(json_string_value(json_object_get(in, "instanceId")), "web-1");
    assert_string_equal(json_string_value(json_object_get(in, "app")), "SHOP");
    /* No host_name: the IP address stands in; no vip_address: the app. */
    assert_string_equal(json_string_value(json_object_get(in, "hostName")), "10.0.0.5");
    assert_string_equal(json_string_value(json_object_get(in, "ipAddr")), "10.0.0.5");
    assert_string_equal(json_string_value(json_object_get(in, "vipAddress")), "SHOP");
    assert_string_equal(json_string_value(json_object_get(in, "status")), "STARTING");
    assert_string_equal(json_string_value(json_object_get(in, "overriddenStatus")), "UNKNOWN");
    json_t *port = json_object_get(in, "port");
    assert_int_equal(json_integer_value(json_object_get(port, "$")), 8080);
    assert_string_equal(json_string_value(json_object_get(port, "@enabled")), "true");
    json_t *lease = json_object_get(in, "leaseInfo");
    assert_int_equal(json_integer_value(json_object_get(lease, "renewalIntervalInSecs")), 30);
    assert_int_equal(json_integer_value(json_object_get(lease, "durationInSecs")), 90);
    assert_string_equal(json_string_value(json_object_get(in, "homePageUrl")),
                        "http://10.0.0.5:8080/");
    /* Eureka's health check URL is the agent's /health, not the application's. */
    assert_string_equal(json_string_value(json_object_get(in, "healthCheckUrl")),
                        "http://10.0.0.5:7070/health");
    assert_string_equal(json_string_value(json_object_get(in, "lastDirtyTimestamp")),
                        "1700000000123");
    json_t *md = json_object_get(in, "metadata");
    assert_string_equal(json_string_value(json_object_get(md, "bluegreen.color")), "green");
    assert_string_equal(json_string_value(json_object_get(md, "bluegreen.version")), "2.1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(in, "dataCenterInfo"), "name")), "MyOwn");
    json_decref(root);
}

static void test_eureka_job_register_body_lease_rounding(void **state)
{
    (void)state;
    /* Sub-second renewals are one second; the lease outlasts the renewal interval. */
    struct bg_backend_conf c = {.app = "SHOP",
                                .instance_id = "web-1",
                                .host_name = "web-1.example",
                                .vip_address = "shop",
                                .port = 8080,
                                .renew_interval_ms = 500,
                                .duration_ms = 1000};
    json_t *root = register_body(&c, "UP");
    json_t *in = json_object_get(root, "instance");
    assert_string_equal(json_string_value(json_object_get(in, "hostName")), "web-1.example");
    assert_string_equal(json_string_value(json_object_get(in, "ipAddr")), "web-1.example");
    assert_string_equal(json_string_value(json_object_get(in, "vipAddress")), "shop");
    assert_string_equal(json_string_value(json_object_get(in, "status")), "UP");
    json_t *lease = json_object_get(in, "leaseInfo");
    assert_int_equal(json_integer_value(json_object_get(lease, "renewalIntervalInSecs")), 1);
    assert_int_equal(json_integer_value(json_object_get(lease, "durationInSecs")), 2);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eureka_job_out_without_register),
        cmocka_unit_test(test_eureka_job_registers_with_own_status),
        cmocka_unit_test(test_eureka_job_register_only),
        cmocka_unit_test(test_eureka_job_register_failure_is_final),
        cmocka_unit_test(test_eureka_job_404_registers_again_once),
        cmocka_unit_test(test_eureka_job_404_without_register_is_final),
        cmocka_unit_test(test_eureka_job_status_call_failure),
        cmocka_unit_test(test_eureka_job_confirm_gives_up_after_tries),
        cmocka_unit_test(test_eureka_job_confirm_stops_before_the_callers_deadline),
        cmocka_unit_test(test_eureka_job_register_body),
        cmocka_unit_test(test_eureka_job_register_body_lease_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
