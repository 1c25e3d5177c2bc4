/* test_router_conf.c -- unit tests for conf/router_conf.c (router.yaml): a full file, the
 * defaults, and every kind of bad value with its exact file:line:column message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------
 * Helpers: each case writes its router.yaml to a temp file.
 * ------------------------------------------------------------------------------------------ */

static char *write_tmp(const char *text)
{
    char *path = bg_xstrdup("/tmp/bg-test-router-conf.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void load_ok(const char *text, struct bg_router_conf *c)
{
    char *path = write_tmp(text);
    struct bg_conf_errors errs = {0};
    int rc = bg_conf_load_router(path, c, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("unexpected: %s\n", errs.msgs[i]);
    assert_int_equal(rc, 0);
    bg_conf_errors_free(&errs);
    unlink(path);
    free(path);
}

/* The file is refused with exactly these messages (each after "<path>:"). */
static void expect_errors(const char *text, const char *const *want, size_t n)
{
    char *path = write_tmp(text);
    struct bg_conf_errors errs = {0};
    struct bg_router_conf c;
    int rc = bg_conf_load_router(path, &c, &errs);
    bool same = rc == BG_EINVAL && errs.n == n;
    for (size_t i = 0; same && i < n; i++) {
        char *full = bg_xasprintf("%s:%s", path, want[i]);
        same = strcmp(full, errs.msgs[i]) == 0;
        free(full);
    }
    if (!same) {
        print_error("rc=%d; expected %zu message(s):\n", rc, n);
        for (size_t i = 0; i < n; i++)
            print_error("  %s\n", want[i]);
        print_error("got %zu:\n", errs.n);
        for (size_t i = 0; i < errs.n; i++)
            print_error("  %s\n", errs.msgs[i]);
    }
    assert_true(same);
    /* On failure nothing half-valid is left behind. */
    assert_null(c.path);
    assert_null(c.nginx.test);
    bg_conf_free_router(&c);
    bg_conf_errors_free(&errs);
    unlink(path);
    free(path);
}

#define EXPECT(text, ...)                                                                          \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        expect_errors(text, want_, BG_ARRAY_LEN(want_));                                           \
    } while (0)

#define ZK "zookeeper: {connect: \"127.0.0.1:2181\", auth: \"a:b\"}\n"
#define ROUTER "router: {id: lb-1, kind: nginx}\n"
#define NGINX "nginx: {upstream: shop, file: /tmp/up.conf}\n"
#define HAPROXY_ROUTER "router: {id: lb-2, kind: haproxy}\n"
#define HAPROXY "haproxy:\n  socket: /run/haproxy/admin.sock\n  backend: app\n"

/* ------------------------------------------------------------------------------------------
 * Good files
 * ------------------------------------------------------------------------------------------ */

static void test_router_conf_full(void **state)
{
    (void)state;
    struct bg_router_conf c;
    load_ok(ZK ROUTER "nginx:\n"
                      "  upstream: shop\n"
                      "  file: /etc/nginx/conf.d/shop.conf\n"
                      "  test: [\"/usr/sbin/nginx\", \"-t\", \"-q\"]\n"
                      "  reload: \"systemctl reload nginx\"\n"
                      "  confirm: \"[::1]:8399\"\n"
                      "  confirm_timeout: 2s\n"
                      "  timeout: 500ms\n"
                      "  options: [\"keepalive 32\", least_conn]\n"
                      "http: {listen: \"127.0.0.1:9102\"}\n",
            &c);
    assert_string_equal(c.id, "lb-1");
    assert_int_equal(c.kind, BG_ROUTER_NGINX);
    assert_string_equal(c.nginx.upstream, "shop");
    assert_string_equal(c.nginx.file, "/etc/nginx/conf.d/shop.conf");
    assert_int_equal(c.nginx.n_test, 3);
    assert_string_equal(c.nginx.test[0], "/usr/sbin/nginx");
    assert_string_equal(c.nginx.test[2], "-q");
    assert_null(c.nginx.test[3]);
    assert_int_equal(c.nginx.n_reload, 3);
    assert_string_equal(c.nginx.reload[0], "systemctl");
    assert_string_equal(c.nginx.reload[2], "nginx");
    assert_string_equal(c.nginx.confirm, "[::1]:8399");
    assert_int_equal(c.nginx.confirm_timeout_ms, 2000);
    assert_int_equal(c.nginx.timeout_ms, 500);
    assert_int_equal(c.nginx.n_options, 2);
    assert_string_equal(c.nginx.options[0], "keepalive 32");
    assert_string_equal(c.nginx.options[1], "least_conn");
    assert_string_equal(c.http.listen, "127.0.0.1:9102");
    bg_conf_free_router(&c);
}

static void test_router_conf_defaults(void **state)
{
    (void)state;
    struct bg_router_conf c;
    load_ok(ZK ROUTER NGINX, &c);
    assert_string_equal(c.zk.root, "/");
    assert_int_equal(c.nginx.n_test, 2);
    assert_string_equal(c.nginx.test[0], "nginx");
    assert_string_equal(c.nginx.test[1], "-t");
    assert_int_equal(c.nginx.n_reload, 3);
    assert_string_equal(c.nginx.reload[1], "-s");
    assert_string_equal(c.nginx.reload[2], "reload");
    assert_null(c.nginx.confirm);
    assert_int_equal(c.nginx.confirm_timeout_ms, 5000);
    assert_int_equal(c.nginx.timeout_ms, 10000);
    assert_int_equal(c.nginx.n_options, 0);
    assert_null(c.http.listen);
    bg_conf_free_router(&c);
}

static void test_router_conf_haproxy(void **state)
{
    (void)state;
    struct bg_router_conf c;
    load_ok(ZK HAPROXY_ROUTER HAPROXY, &c);
    assert_int_equal(c.kind, BG_ROUTER_HAPROXY);
    assert_string_equal(c.haproxy.socket, "/run/haproxy/admin.sock");
    assert_string_equal(c.haproxy.backend, "app");
    assert_int_equal(c.haproxy.timeout_ms, 1000);
    assert_int_equal(c.haproxy.verify_every_ms, 100);
    assert_null(c.nginx.file);
    bg_conf_free_router(&c);
    load_ok(ZK HAPROXY_ROUTER HAPROXY "  timeout: 250ms\n  verify_every: 2s\n", &c);
    assert_int_equal(c.haproxy.timeout_ms, 250);
    assert_int_equal(c.haproxy.verify_every_ms, 2000);
    assert_null(c.haproxy.file);
    bg_conf_free_router(&c);
    load_ok(ZK HAPROXY_ROUTER HAPROXY "  file: /etc/haproxy/bg-app.cfg\n", &c);
    assert_string_equal(c.haproxy.file, "/etc/haproxy/bg-app.cfg");
    assert_int_equal(c.haproxy.n_options, 1);
    assert_string_equal(c.haproxy.options[0], "balance roundrobin");
    bg_conf_free_router(&c);
    load_ok(ZK HAPROXY_ROUTER HAPROXY
            "  file: /etc/haproxy/bg-app.cfg\n"
            "  options: [\"balance leastconn\", \"option httpchk GET /\"]\n",
            &c);
    assert_int_equal(c.haproxy.n_options, 2);
    assert_string_equal(c.haproxy.options[1], "option httpchk GET /");
    assert_null(c.haproxy.options[2]);
    bg_conf_free_router(&c);
}

/* ------------------------------------------------------------------------------------------
 * Bad files: exact messages
 * ------------------------------------------------------------------------------------------ */

static void test_router_conf_missing(void **state)
{
    (void)state;
    /* Without router.kind, which of nginx or haproxy is required is not known: not said. */
    EXPECT("http: {}\n", "1:1: missing required key \"zookeeper\"",
           "1:1: missing required key \"router\"");
    EXPECT(ZK ROUTER, "1:1: missing required key \"nginx\"");
    EXPECT(ZK HAPROXY_ROUTER, "1:1: missing required key \"haproxy\"");
    EXPECT(ZK HAPROXY_ROUTER "haproxy: {}\n", "3:10: haproxy: missing required key \"socket\"",
           "3:10: haproxy: missing required key \"backend\"");
    EXPECT(ZK "router: {}\nnginx: {}\n", "2:9: router: missing required key \"id\"",
           "2:9: router: missing required key \"kind\"");
    EXPECT(ZK ROUTER "nginx: {}\n", "3:8: nginx: missing required key \"upstream\"",
           "3:8: nginx: missing required key \"file\"");
}

static void test_router_conf_bad_values(void **state)
{
    (void)state;
    EXPECT(ZK "router: {id: \"..\", kind: traefik}\n" NGINX,
           "2:14: router.id: expected " BG_EXPECT_ID ", got \"..\"",
           "2:26: router.kind: expected nginx or haproxy, got \"traefik\"");
    /* The other kind's section: a mistake worth naming (the router would ignore it). */
    EXPECT(ZK HAPROXY_ROUTER NGINX, "1:1: missing required key \"haproxy\"",
           "3:1: nginx: is for router.kind nginx; this router's kind is haproxy");
    EXPECT(ZK HAPROXY_ROUTER "haproxy:\n  socket: \"/run/a b.sock\"\n  backend: \"app;x\"\n"
                             "  timeout: 0s\n  verify_every: often\n",
           "4:11: haproxy.socket: expected a file name without white space, got \"/run/a b.sock\"",
           "5:12: haproxy.backend: expected " BG_EXPECT_ID ", got \"app;x\"",
           "6:12: haproxy.timeout: expected a duration above 0 (an integer followed by ms, s or "
           "m, e.g. 250ms, 2s, 1m), got \"0s\"",
           "7:17: haproxy.verify_every: expected a duration above 0 (an integer followed by ms, "
           "s or m, e.g. 250ms, 2s, 1m), got \"often\"");
    EXPECT(ZK ROUTER
           "nginx: {upstream: shop, file: /tmp/up.conf, options: [\"keepalive 32; }\"]}\n",
           "3:55: nginx.options[0]: expected " BG_EXPECT_NGINX_OPTION ", got \"keepalive 32; }\"");
    EXPECT(ZK HAPROXY_ROUTER HAPROXY "  options: [\"balance first\"]\n",
           "6:3: haproxy.options: only used with haproxy.file (the lines of the section the "
           "router writes)");
    EXPECT(ZK HAPROXY_ROUTER HAPROXY
           "  file: /x.cfg\n  options: [\"a\\nserver x 1.2.3.4:80\", \" \"]\n",
           "7:13: haproxy.options[0]: expected a line of printable ASCII, got "
           "\"a?server x 1.2.3.4:80\"",
           "7:39: haproxy.options[1]: expected a line of printable ASCII, got \" \"");
    EXPECT(ZK HAPROXY_ROUTER HAPROXY "  file: /x.cfg\n  options: balance\n",
           "7:12: haproxy.options: expected a sequence of lines, got \"balance\"");
    EXPECT(ZK ROUTER "nginx:\n  upstream: \"shop;}\"\n  file: \"a b\"\n  test: []\n"
                     "  reload: [\"\"]\n  confirm: \"localhost\"\n  confirm_timeout: 0s\n"
                     "  timeout: soon\n",
           "4:13: nginx.upstream: expected " BG_EXPECT_ID ", got \"shop;}\"",
           "5:9: nginx.file: expected a file name without white space, got \"a b\"",
           "6:9: nginx.test: expected a command line (a string or a sequence of strings), got "
           "an empty sequence",
           "7:12: nginx.reload[0]: expected a program name, got \"\"",
           "8:12: nginx.confirm: expected " BG_EXPECT_HOSTPORT ", got \"localhost\"",
           "9:20: nginx.confirm_timeout: expected a duration above 0 (an integer followed by ms, "
           "s or m, e.g. 250ms, 2s, 1m), got \"0s\"",
           "10:12: nginx.timeout: expected a duration above 0 (an integer followed by ms, s or m, "
           "e.g. 250ms, 2s, 1m), got \"soon\"");
}

static void test_router_conf_unknown_keys(void **state)
{
    (void)state;
    EXPECT(ZK ROUTER NGINX "haproxy: {socket: /run/x.sock}\n"
                           "extra: 1\n",
           "4:1: haproxy: is for router.kind haproxy; this router's kind is nginx",
           "5:1: extra: unknown key, expected one of: zookeeper, router, nginx, haproxy, http");
    EXPECT(ZK HAPROXY_ROUTER HAPROXY "  weight: 3\n",
           "6:3: haproxy.weight: unknown key, expected one of: socket, backend, timeout, "
           "verify_every, file, options");
    EXPECT(ZK "router: {id: lb-1, kind: nginx, weight: 2}\n" NGINX,
           "2:33: router.weight: unknown key, expected one of: id, kind");
}

/* ------------------------------------------------------------------------------------------
 * The address check the router applies to instance addresses (conf/valid.c)
 * ------------------------------------------------------------------------------------------ */

static void test_router_conf_valid_address(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1:8080", "app-1.example.com:443", "[::1]:80",
                                       "[2001:db8::5]:65535", "localhost:1"};
    static const char *const bad[] = {"evil.example;}:80",
                                      "a{b:80",
                                      "host:0",
                                      "host:65536",
                                      "host",
                                      ":80",
                                      "[::1:80",
                                      "::1:80",
                                      "[not-v6]:80",
                                      "-host:80",
                                      "ho st:80",
                                      "a\"b:80",
                                      "a#b:80",
                                      "",
                                      "host:80;",
                                      "[::1]:80 down",
                                      "h/x:80",
                                      "h$x:80"};
    for (size_t i = 0; i < BG_ARRAY_LEN(good); i++)
        if (!bg_valid_address(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < BG_ARRAY_LEN(bad); i++)
        if (bg_valid_address(bad[i]))
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_conf_full),
        cmocka_unit_test(test_router_conf_defaults),
        cmocka_unit_test(test_router_conf_haproxy),
        cmocka_unit_test(test_router_conf_missing),
        cmocka_unit_test(test_router_conf_bad_values),
        cmocka_unit_test(test_router_conf_unknown_keys),
        cmocka_unit_test(test_router_conf_valid_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
