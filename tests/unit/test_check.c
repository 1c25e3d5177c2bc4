/* test_check.c -- unit tests for the rise/fall verdict of agent/check.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"

#include "check.h"

static void test_check_starts_unhealthy_and_rises(void **state)
{
    (void)state;
    struct bg_check_verdict v;
    bg_check_verdict_init(&v, 2, 3, false);
    assert_false(v.healthy);
    assert_false(v.have_result);
    assert_false(bg_check_verdict_feed(&v, true, 10));
    assert_false(v.healthy);
    assert_int_equal(v.consecutive, 1);
    assert_true(bg_check_verdict_feed(&v, true, 20)); /* rise = 2 passes in a row */
    assert_true(v.healthy);
    assert_int_equal(v.changed_ms, 20);
    assert_false(bg_check_verdict_feed(&v, true, 30)); /* no change: no event */
    assert_int_equal(v.consecutive, 3);
    assert_int_equal(v.last_ms, 30);
}

static void test_check_falls_after_fall_failures(void **state)
{
    (void)state;
    struct bg_check_verdict v;
    bg_check_verdict_init(&v, 2, 3, true);
    assert_false(bg_check_verdict_feed(&v, false, 1));
    assert_false(bg_check_verdict_feed(&v, false, 2));
    assert_true(v.healthy);
    assert_true(bg_check_verdict_feed(&v, false, 3));
    assert_false(v.healthy);
    assert_false(v.last_pass);
    assert_int_equal(v.consecutive, 3);
    assert_false(bg_check_verdict_feed(&v, false, 4));
}

static void test_check_interrupted_runs_start_over(void **state)
{
    (void)state;
    struct bg_check_verdict v;
    bg_check_verdict_init(&v, 3, 2, false);
    /* pass, pass, fail, pass, pass: never 3 in a row. */
    assert_false(bg_check_verdict_feed(&v, true, 1));
    assert_false(bg_check_verdict_feed(&v, true, 2));
    assert_false(bg_check_verdict_feed(&v, false, 3));
    assert_int_equal(v.consecutive, 1);
    assert_false(bg_check_verdict_feed(&v, true, 4));
    assert_false(bg_check_verdict_feed(&v, true, 5));
    assert_false(v.healthy);
    assert_true(bg_check_verdict_feed(&v, true, 6));
    assert_true(v.healthy);
    /* Flapping one failure at a time never reaches fall = 2. */
    for (int i = 0; i < 10; i++) {
        assert_false(bg_check_verdict_feed(&v, false, 10 + 2 * i));
        assert_false(bg_check_verdict_feed(&v, true, 11 + 2 * i));
    }
    assert_true(v.healthy);
}

static void test_check_rise_fall_of_one(void **state)
{
    (void)state;
    struct bg_check_verdict v;
    bg_check_verdict_init(&v, 1, 1, false);
    assert_true(bg_check_verdict_feed(&v, true, 1));
    assert_true(bg_check_verdict_feed(&v, false, 2));
    assert_true(bg_check_verdict_feed(&v, true, 3));
    /* Values below 1 are treated as 1 (the configuration never gives them). */
    bg_check_verdict_init(&v, 0, -5, true);
    assert_true(bg_check_verdict_feed(&v, false, 1));
    assert_false(v.healthy);
}

static void test_check_without_check_is_healthy(void **state)
{
    (void)state;
    struct bg_check c;
    char err[64] = "";
    assert_int_equal(bg_check_init(&c, NULL, err, sizeof(err)), 0);
    assert_true(bg_check_healthy(&c));
    assert_string_equal(bg_check_result_name(&c), "none");
    assert_int_equal(bg_check_deadline(&c), 0);
    assert_int_equal(bg_check_fds(&c, NULL, 0), 0);
    bg_check_free(&c);
    struct bg_check_conf none = {.type = BG_CHECK_NONE, .rise = 2, .fall = 3};
    assert_int_equal(bg_check_init(&c, &none, err, sizeof(err)), 0);
    assert_true(bg_check_healthy(&c));
    assert_string_equal(c.msg, "");
    bg_check_free(&c);
}

/* A port on loopback nobody listens on (bound, never listened: connect is refused). */
static int closed_port(int *holder)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    *holder = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*holder >= 0);
    assert_int_equal(bind(*holder, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(*holder, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

/* An application down from the start: the verdict stays unhealthy, yet the first result must
 * still mark the check changed so the agent writes its message into the node (it was left ""
 * when the node was registered before the first result: test_health_gate failed on it). */
static void test_check_first_result_is_a_change(void **state)
{
    (void)state;
    int holder;
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", closed_port(&holder));
    struct bg_check_conf conf = {.type = BG_CHECK_TCP,
                                 .tcp = target,
                                 .interval_ms = 50,
                                 .timeout_ms = 1000,
                                 .rise = 2,
                                 .fall = 3};
    struct bg_check c;
    char err[256] = "";
    assert_int_equal(bg_check_init(&c, &conf, err, sizeof(err)), 0);
    assert_false(c.changed);
    int64_t end = bg_now_ms() + 5000;
    while (!c.v.have_result && bg_now_ms() < end) {
        struct pollfd pfd[4];
        int n = bg_check_fds(&c, pfd, 4);
        (void)poll(pfd, (nfds_t)n, 20);
        bg_check_run(&c, pfd, n, bg_now_ms());
    }
    assert_true(c.v.have_result);
    assert_false(bg_check_healthy(&c));
    assert_true(c.changed);
    assert_non_null(strstr(c.msg, "refused"));
    c.changed = false;
    /* Later failures that keep the verdict are not news. */
    while (c.n_fail < 2 && bg_now_ms() < end) {
        struct pollfd pfd[4];
        int n = bg_check_fds(&c, pfd, 4);
        (void)poll(pfd, (nfds_t)n, 20);
        bg_check_run(&c, pfd, n, bg_now_ms());
    }
    assert_true(c.n_fail >= 2);
    assert_false(c.changed);
    bg_check_free(&c);
    close(holder);
}

/* getaddrinfo as the check sees it (linked with --wrap=getaddrinfo): for "localhost" a DNS
 * server that failed at start and then answers only after 1.5 s. Other names are untouched. */
int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
static atomic_int slow_dns_calls;
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    if (node == NULL || strcmp(node, "localhost") != 0 ||
        (hints != NULL && (hints->ai_flags & AI_NUMERICHOST)))
        return __real_getaddrinfo(node, service, hints, res);
    if (atomic_fetch_add(&slow_dns_calls, 1) == 0)
        return EAI_AGAIN;
    usleep(1500 * 1000);
    return __real_getaddrinfo(node, service, hints, res);
}

/* A tcp check on a name that did not resolve at start resolves it without ever blocking the
 * loop (it called getaddrinfo in the loop, each check, which blocks as long as DNS does): the
 * check in progress times out "still resolving", the next one takes up the same request. */
static void test_check_tcp_name_never_blocks_the_loop(void **state)
{
    (void)state;
    int holder;
    char target[64];
    snprintf(target, sizeof(target), "localhost:%d", closed_port(&holder));
    struct bg_check_conf conf = {.type = BG_CHECK_TCP,
                                 .tcp = target,
                                 .interval_ms = 50,
                                 .timeout_ms = 1000,
                                 .rise = 1,
                                 .fall = 1};
    struct bg_check c;
    char err[256] = "";
    atomic_store(&slow_dns_calls, 0);
    assert_int_equal(bg_check_init(&c, &conf, err, sizeof(err)), 0); /* failed: DNS down */
    assert_false(c.resolved);
    int64_t end = bg_now_ms() + 8000, longest = 0;
    bool timed_out = false;
    while (!(c.resolved && c.v.have_result && strncmp(c.msg, "connect", 7) == 0) &&
           bg_now_ms() < end) {
        struct pollfd pfd[4];
        int n = bg_check_fds(&c, pfd, 4);
        (void)poll(pfd, (nfds_t)n, 10);
        int64_t t0 = bg_now_ms();
        bg_check_run(&c, pfd, n, t0);
        if (bg_now_ms() - t0 > longest)
            longest = bg_now_ms() - t0;
        if (strstr(c.msg, "still resolving") != NULL)
            timed_out = true;
    }
    assert_true(longest < 500); /* a blocked loop took 1500 ms a turn */
    assert_true(c.resolved);
    assert_true(timed_out);                            /* the check outlived by DNS failed... */
    assert_int_equal(atomic_load(&slow_dns_calls), 2); /* ...and its request was taken up */
    /* Resolved: the port refuses (IPv4 or IPv6 localhost alike). */
    assert_non_null(strstr(c.msg, "connect: "));
    bg_check_free(&c);
    close(holder);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_starts_unhealthy_and_rises),
        cmocka_unit_test(test_check_falls_after_fall_failures),
        cmocka_unit_test(test_check_interrupted_runs_start_over),
        cmocka_unit_test(test_check_rise_fall_of_one),
        cmocka_unit_test(test_check_without_check_is_healthy),
        cmocka_unit_test(test_check_first_result_is_a_change),
        cmocka_unit_test(test_check_tcp_name_never_blocks_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
