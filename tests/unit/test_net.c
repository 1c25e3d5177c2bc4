/* test_net.c -- unit tests for common/net.c: resolving listen addresses, listeners, peer text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "net.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_net_resolve_numeric(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char err[256] = "";
    assert_int_equal(bg_net_resolve("127.0.0.1:8080", false, &ss, &len, err, sizeof(err)), BG_OK);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    assert_int_equal(bg_net_resolve("[::1]:9", false, &ss, NULL, err, sizeof(err)), BG_OK);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 9);
}

static void test_net_resolve_every_address(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char err[256] = "";
    /* Passive: "*" and "" are the wildcard address. */
    assert_int_equal(bg_net_resolve("*:7000", true, &ss, NULL, err, sizeof(err)), BG_OK);
    assert_int_equal(ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                   : ((struct sockaddr_in6 *)&ss)->sin6_port),
                     7000);
    assert_int_equal(bg_net_resolve("[]:7001", true, &ss, NULL, err, sizeof(err)), BG_OK);
}

static void test_net_resolve_bad(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char err[256] = "";
    assert_int_equal(bg_net_resolve("no-port", true, &ss, NULL, err, sizeof(err)), BG_EINVAL);
    assert_string_equal(err, "listen address \"no-port\" is not host:port");
    assert_int_equal(bg_net_listen("127.0.0.1:99999", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not host:port"));
}

static void test_net_listen_and_peer_text(void **state)
{
    (void)state;
    char err[256] = "";
    int fd = bg_net_listen("127.0.0.1:0", err, sizeof(err));
    assert_true(fd >= 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    char text[INET6_ADDRSTRLEN];
    bg_net_addr_text((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1");
    /* The port is taken: a second listener on it fails with a reason. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    int fd2 = bg_net_listen(addr, err, sizeof(err));
    assert_int_equal(fd2, -1);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
    close(fd);
}

static void test_net_addr_text_families(void **state)
{
    (void)state;
    char text[INET6_ADDRSTRLEN] = "x";
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    bg_net_addr_text((struct sockaddr *)&s6, text, sizeof(text));
    assert_string_equal(text, "2001:db8::7");
    struct sockaddr su = {.sa_family = AF_UNIX};
    bg_net_addr_text(&su, text, sizeof(text));
    assert_string_equal(text, "");
    strcpy(text, "x");
    bg_net_addr_text(NULL, text, sizeof(text));
    assert_string_equal(text, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_resolve_numeric),
        cmocka_unit_test(test_net_resolve_every_address),
        cmocka_unit_test(test_net_resolve_bad),
        cmocka_unit_test(test_net_listen_and_peer_text),
        cmocka_unit_test(test_net_addr_text_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
