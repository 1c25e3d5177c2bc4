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

/* No HTTP answer at all (refused, timed out) on every URL. */
static struct bg_eu_answer none(void)
{
    return (struct bg_eu_answer){.transport_ok = false};
}

/* A final outcome, and the rc the apply reports for it. */
static void expect_final(enum bg_eu_outcome got, enum bg_eu_outcome want, int rc)
{
    assert_int_equal(got, want);
    assert_int_equal(bg_eu_outcome_rc(got), rc);
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
    expect_final(feed(&j, BG_EU_CONFIRM, seen("OUT_OF_SERVICE"), 1130), BG_EU_CONFIRMED, 0);
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
    expect_final(feed(&j, BG_EU_STATUS, http(404), 3), BG_EU_NOT_REGISTERED, BG_ENOTFOUND);

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

/* A failed registration or status call ends the job: no retry beyond the URLs' failover. */
static void test_eureka_job_call_failures_are_final(void **state)
{
    (void)state;
    const struct {
        bool reg;
        enum bg_eu_step sent;
        struct bg_eu_answer answer;
        enum bg_eu_outcome want;
    } cases[] = {
        {true, BG_EU_REGISTER, http(400), BG_EU_REGISTER_FAILED},
        {true, BG_EU_REGISTER, none(), BG_EU_REGISTER_FAILED},
        {true, BG_EU_REGISTER, http(404), BG_EU_REGISTER_FAILED}, /* never "lost" */
        {false, BG_EU_STATUS, http(503), BG_EU_STATUS_FAILED},
        {false, BG_EU_STATUS, none(), BG_EU_STATUS_FAILED},
        {true, BG_EU_STATUS, http(409), BG_EU_STATUS_FAILED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bg_eu_job j;
        bg_eu_job_start(&j, true, true, BG_STATUS_UP, cases[i].reg, 0);
        assert_int_equal(bg_eu_job_next(&j, NULL), cases[i].reg ? BG_EU_REGISTER : BG_EU_STATUS);
        expect_final(bg_eu_job_feed(&j, cases[i].sent, &cases[i].answer, 1), cases[i].want,
                     BG_EHTTP);
    }
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
    expect_final(feed(&j, BG_EU_CONFIRM, seen("OUT_OF_SERVICE"), t + 100), BG_EU_MISMATCH,
                 BG_EHTTP);
    assert_int_equal(j.confirm_tries, BG_EU_CONFIRM_TRIES);

    /* Answers without a readable status, or failed reads: unconfirmed, not a mismatch. */
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 0), BG_EU_NEXT);
    for (int i = 1; i < BG_EU_CONFIRM_TRIES; i++)
        assert_int_equal(feed(&j, BG_EU_CONFIRM, i % 2 ? http(200) : http(500), i), BG_EU_NEXT);
    expect_final(feed(&j, BG_EU_CONFIRM, http(200), 99), BG_EU_UNCONFIRMED, BG_EHTTP);
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
static json_t *register_body(const struct bg_eureka_conf *c, const char *status)
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

/* Each {key, value} pair is a string field of the JSON object o. */
static void expect_strings(json_t *o, const char *const (*kv)[2], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = json_string_value(json_object_get(o, kv[i][0]));
        if (got == NULL || strcmp(got, kv[i][1]) != 0)
            fail_msg("%s: \"%s\", expected \"%s\"", kv[i][0], got ? got : "(none)", kv[i][1]);
    }
}

static json_int_t lease(json_t *in, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(in, "leaseInfo"), key));
}

/* App SHOP, instance web-1 on port 8080, with these lease times. */
static struct bg_eureka_conf shop_conf(int64_t renew_ms, int64_t duration_ms)
{
    return (struct bg_eureka_conf){.app = "SHOP",
                                   .instance_id = "web-1",
                                   .port = 8080,
                                   .renew_interval_ms = renew_ms,
                                   .duration_ms = duration_ms};
}

static void test_eureka_job_register_body(void **state)
{
    (void)state;
    struct bg_eureka_conf c = shop_conf(30000, 90000);
    c.ip_addr = "10.0.0.5";
    json_t *root = register_body(&c, "STARTING");
    json_t *in = json_object_get(root, "instance");
    /* No host_name: the IP address stands in; no vip_address: the app. Eureka's health
     * check URL is the agent's /health, not the application's. */
    static const char *const fields[][2] = {
        {"instanceId", "web-1"},
        {"app", "SHOP"},
        {"hostName", "10.0.0.5"},
        {"ipAddr", "10.0.0.5"},
        {"vipAddress", "SHOP"},
        {"status", "STARTING"},
        {"overriddenStatus", "UNKNOWN"},
        {"homePageUrl", "http://10.0.0.5:8080/"},
        {"healthCheckUrl", "http://10.0.0.5:7070/health"},
        {"lastDirtyTimestamp", "1700000000123"},
    };
    expect_strings(in, fields, sizeof(fields) / sizeof(fields[0]));
    static const char *const metadata[][2] = {{"bluegreen.color", "green"},
                                              {"bluegreen.version", "2.1"}};
    expect_strings(json_object_get(in, "metadata"), metadata, 2);
    static const char *const dc[][2] = {{"name", "MyOwn"}};
    expect_strings(json_object_get(in, "dataCenterInfo"), dc, 1);
    json_t *port = json_object_get(in, "port");
    assert_int_equal(json_integer_value(json_object_get(port, "$")), 8080);
    static const char *const enabled[][2] = {{"@enabled", "true"}};
    expect_strings(port, enabled, 1);
    assert_int_equal(lease(in, "renewalIntervalInSecs"), 30);
    assert_int_equal(lease(in, "durationInSecs"), 90);
    json_decref(root);
}

static void test_eureka_job_register_body_lease_rounding(void **state)
{
    (void)state;
    /* Sub-second renewals are one second; the lease outlasts the renewal interval. */
    struct bg_eureka_conf c = shop_conf(500, 1000);
    c.host_name = "web-1.example";
    c.vip_address = "shop";
    json_t *root = register_body(&c, "UP");
    json_t *in = json_object_get(root, "instance");
    static const char *const fields[][2] = {{"hostName", "web-1.example"},
                                            {"ipAddr", "web-1.example"},
                                            {"vipAddress", "shop"},
                                            {"status", "UP"}};
    expect_strings(in, fields, 4);
    assert_int_equal(lease(in, "renewalIntervalInSecs"), 1);
    assert_int_equal(lease(in, "durationInSecs"), 2);
    json_decref(root);
}

/* DESIGN §12: with a weight, UP is followed by PUT .../metadata?weight=W (carried and answered
 * as a status-kind request), then the confirmation; OUT_OF_SERVICE and no weight skip it; a
 * failed metadata call fails the apply. */
static void test_eureka_job_weight_metadata(void **state)
{
    (void)state;
    struct bg_eu_job j;
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    assert_int_equal(j.weight, -1);
    j.weight = 33;
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_STATUS);
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 1), BG_EU_NEXT);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_METADATA);
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 2), BG_EU_NEXT);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_CONFIRM);
    expect_final(feed(&j, BG_EU_CONFIRM, seen("UP"), 3), BG_EU_CONFIRMED, 0);

    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0);
    j.weight = 50;
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 1), BG_EU_NEXT);
    expect_final(feed(&j, BG_EU_STATUS, http(500), 2), BG_EU_STATUS_FAILED, BG_EHTTP);

    bg_eu_job_start(&j, true, true, BG_STATUS_OUT, false, 0);
    j.weight = 0;
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 1), BG_EU_NEXT);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_CONFIRM);
    bg_eu_job_start(&j, true, true, BG_STATUS_UP, false, 0); /* no weight given */
    assert_int_equal(feed(&j, BG_EU_STATUS, http(200), 1), BG_EU_NEXT);
    assert_int_equal(bg_eu_job_next(&j, NULL), BG_EU_CONFIRM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eureka_job_out_without_register),
        cmocka_unit_test(test_eureka_job_registers_with_own_status),
        cmocka_unit_test(test_eureka_job_register_only),
        cmocka_unit_test(test_eureka_job_404_registers_again_once),
        cmocka_unit_test(test_eureka_job_404_without_register_is_final),
        cmocka_unit_test(test_eureka_job_call_failures_are_final),
        cmocka_unit_test(test_eureka_job_confirm_gives_up_after_tries),
        cmocka_unit_test(test_eureka_job_confirm_stops_before_the_callers_deadline),
        cmocka_unit_test(test_eureka_job_register_body),
        cmocka_unit_test(test_eureka_job_register_body_lease_rounding),
        cmocka_unit_test(test_eureka_job_weight_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
