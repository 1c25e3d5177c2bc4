/* test_hap.c -- unit tests for router/hap.c: HAProxy's Runtime API answers as bg-router kind
 * haproxy reads them, the commands it plans, the sweep of drained servers, the confirmation.
 * The answers below are HAProxy 2.6's own, copied from a real stats socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hap.h"

#include <stdlib.h>
#include <string.h>

#define HEADER                                                                                     \
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "        \
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "   \
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "  \
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

/* A row: name, address, admin state, weight, port. */
#define ROW(be, name, addr, admin, w, port)                                                        \
    "3 " be " 1 " name " " addr " 2 " admin " " w " " w " 5 1 0 2 0 0 0 0 - " port " - 0 0 - - "   \
    "0\n"

static struct bg_route_server srv(enum bg_color c, const char *id, const char *addr, int w)
{
    return (struct bg_route_server){
        .color = c, .id = (char *)id, .address = (char *)addr, .weight = w};
}

static void parse_ok(const char *text, struct bg_hap_state *st)
{
    char why[200] = "";
    assert_int_equal(bg_hap_state_parse(text, strlen(text), "app", st, why, sizeof(why)), BG_OK);
    assert_string_equal(why, "");
}

static void assert_cmds(const struct bg_hap_cmds *c, const char *const *want, size_t n)
{
    for (size_t i = 0; i < c->n && i < n; i++)
        assert_string_equal(c->c[i], want[i]);
    assert_int_equal(c->n, n);
}

/* ------------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------------ */

static void test_hap_state_parse(void **state)
{
    (void)state;
    struct bg_hap_state st;
    parse_ok(HEADER ROW("app", "blue-1", "127.0.0.1", "0", "100", "8001")
                 ROW("other", "x", "10.0.0.1", "0", "1", "80")
                     ROW("app", "green-1", "::1", "8", "25", "8002") "\n",
             &st);
    assert_int_equal(st.n, 2);
    assert_string_equal(st.s[0].name, "blue-1");
    assert_string_equal(st.s[0].addr, "127.0.0.1");
    assert_int_equal(st.s[0].port, 8001);
    assert_int_equal(st.s[0].weight, 100);
    assert_int_equal(st.s[0].admin, 0);
    assert_string_equal(st.s[1].name, "green-1");
    assert_int_equal(st.s[1].admin, BG_HAP_FDRAIN);
    assert_int_equal(st.s[1].weight, 25);
    bg_hap_state_free(&st);
    parse_ok(HEADER "\n", &st); /* an empty backend */
    assert_int_equal(st.n, 0);

    char why[200];
    const char *no = "Can't find backend.\n\n";
    assert_int_equal(bg_hap_state_parse(no, strlen(no), "app", &st, why, sizeof(why)), BG_EINVAL);
    assert_string_equal(why, "show servers state did not answer format 1: \"Can't find backend.\"");
    assert_int_equal(st.n, 0);
    const char *short_row = HEADER "3 app 1 blue-1 127.0.0.1 2 0\n";
    assert_int_equal(bg_hap_state_parse(short_row, strlen(short_row), "app", &st, why, sizeof(why)),
                     BG_EINVAL);
    assert_string_equal(why, "a malformed row in show servers state (7 fields)");
    const char *bad_w = HEADER ROW("app", "b", "127.0.0.1", "0", "999", "80");
    assert_int_equal(bg_hap_state_parse(bad_w, strlen(bad_w), "app", &st, why, sizeof(why)),
                     BG_EINVAL);
    assert_int_equal(bg_hap_state_parse("", 0, "app", &st, why, sizeof(why)), BG_EINVAL);
}

static void test_hap_info_pid(void **state)
{
    (void)state;
    const char *info = "Name: HAProxy\nVersion: 2.6.12\nPid: 11323\nUptime_sec: 4\n";
    assert_int_equal(bg_hap_info_pid(info, strlen(info)), 11323);
    const char *none = "Name: HAProxy\nPpid: 5\n";
    assert_int_equal(bg_hap_info_pid(none, strlen(none)), 0);
    const char *junk = "Pid: 12x\n";
    assert_int_equal(bg_hap_info_pid(junk, strlen(junk)), 0);
    assert_int_equal(bg_hap_info_pid("Pid: 7", 6), 0); /* cut: not a whole line */
}

static void test_hap_answers(void **state)
{
    (void)state;
    assert_true(bg_hap_answer_ok("\n"));
    assert_true(bg_hap_answer_ok(""));
    assert_true(bg_hap_answer_ok("New server registered.\n\n"));
    assert_true(bg_hap_answer_ok("Server deleted.\n"));
    assert_false(bg_hap_answer_ok("No such server.\n\n"));
    assert_false(bg_hap_answer_ok("Only servers in maintenance mode can be deleted.\n"));
    assert_false(bg_hap_answer_ok("New server registered. But not quite\n"));
}

static void test_hap_split_address(void **state)
{
    (void)state;
    char ip[64];
    int port;
    assert_int_equal(bg_hap_split_address("127.0.0.1:8080", ip, sizeof(ip), &port), BG_OK);
    assert_string_equal(ip, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(bg_hap_split_address("[::1]:80", ip, sizeof(ip), &port), BG_OK);
    assert_string_equal(ip, "::1");
    assert_int_equal(bg_hap_split_address("app.example:80", ip, sizeof(ip), &port), BG_EINVAL);
    assert_int_equal(bg_hap_split_address("127.0.0.1", ip, sizeof(ip), &port), BG_EINVAL);
    assert_int_equal(bg_hap_split_address("evil;}:80", ip, sizeof(ip), &port), BG_EINVAL);
    assert_int_equal(bg_hap_split_address(NULL, ip, sizeof(ip), &port), BG_EINVAL);
}

/* ------------------------------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------------------------------ */

static void test_hap_plan_switch(void **state)
{
    (void)state;
    /* blue serves; green is wanted (green-1 already there in maintenance, green-2 missing): make
     * green ready first, then drain blue. */
    struct bg_hap_state have;
    parse_ok(HEADER ROW("app", "blue-1", "127.0.0.1", "0", "100", "8001")
                 ROW("app", "green-1", "127.0.0.1", "1", "100", "8003"),
             &have);
    struct bg_route_server s[] = {srv(BG_GREEN, "green-1", "127.0.0.1:8003", 0),
                                  srv(BG_GREEN, "green-2", "[::1]:8004", 25)};
    struct bg_route_set want = {s, 2};
    struct bg_hap_cmds c;
    char why[200] = "";
    assert_int_equal(bg_hap_plan("app", &want, &have, &c, why, sizeof(why)), BG_OK);
    const char *const cmds[] = {"set server app/green-1 state ready",
                                "add server app/green-2 [::1]:8004 weight 25 " BG_HAP_POOL,
                                "set server app/green-2 state ready",
                                "set server app/blue-1 state drain"};
    assert_cmds(&c, cmds, 4);
    bg_hap_cmds_free(&c);
    assert_false(bg_hap_confirm(&want, &have, why, sizeof(why)));
    assert_string_equal(why,
                        "server green-1 has weight 100 and admin state 0x1, not 100 and ready");
    bg_hap_state_free(&have);

    /* The result, as HAProxy then shows it: confirmed; nothing more to do. */
    parse_ok(HEADER ROW("app", "blue-1", "127.0.0.1", "8", "100", "8001")
                 ROW("app", "green-1", "127.0.0.1", "0", "100", "8003")
                     ROW("app", "green-2", "::1", "0", "25", "8004"),
             &have);
    assert_true(bg_hap_confirm(&want, &have, why, sizeof(why)));
    assert_int_equal(bg_hap_plan("app", &want, &have, &c, why, sizeof(why)), BG_OK);
    assert_int_equal(c.n, 0);
    /* The drained blue-1 goes: maintenance, then deleted. */
    bg_hap_sweep("app", &want, &have, &c);
    const char *const sweep[] = {"set server app/blue-1 state maint", "del server app/blue-1"};
    assert_cmds(&c, sweep, 2);
    bg_hap_cmds_free(&c);
    bg_hap_state_free(&have);
}

static void test_hap_plan_changes(void **state)
{
    (void)state;
    /* Moved, reweighted, and a stranger taking requests (a server of the configuration). */
    struct bg_hap_state have;
    parse_ok(HEADER ROW("app", "blue-1", "127.0.0.1", "0", "100", "9999")
                 ROW("app", "blue-2", "127.0.0.1", "0", "100", "8002")
                     ROW("app", "static1", "127.0.0.1", "0", "1", "9")
                         ROW("app", "old", "127.0.0.1", "1", "1", "9"),
             &have);
    struct bg_route_server s[] = {srv(BG_BLUE, "blue-1", "127.0.0.1:8001", 0),
                                  srv(BG_BLUE, "blue-2", "127.0.0.1:8002", 50)};
    struct bg_route_set want = {s, 2};
    struct bg_hap_cmds c;
    char why[200] = "";
    assert_false(bg_hap_confirm(&want, &have, why, sizeof(why)));
    assert_string_equal(why, "server blue-1 is at 127.0.0.1 port 9999, not 127.0.0.1:8001");
    assert_int_equal(bg_hap_plan("app", &want, &have, &c, why, sizeof(why)), BG_OK);
    const char *const cmds[] = {"set server app/blue-1 addr 127.0.0.1 port 8001",
                                "set server app/blue-2 weight 50",
                                "set server app/static1 state drain"};
    assert_cmds(&c, cmds, 3);
    bg_hap_cmds_free(&c);
    bg_hap_sweep("app", &want, &have, &c); /* old: in maintenance already */
    const char *const sweep[] = {"del server app/old"};
    assert_cmds(&c, sweep, 1);
    bg_hap_cmds_free(&c);
    bg_hap_state_free(&have);
}

static void test_hap_plan_refusals(void **state)
{
    (void)state;
    struct bg_hap_state have = {0};
    struct bg_hap_cmds c;
    char why[300] = "";
    struct bg_route_server named[] = {srv(BG_BLUE, "blue-1", "app.example:8001", 0)};
    struct bg_route_set want = {named, 1};
    assert_int_equal(bg_hap_plan("app", &want, &have, &c, why, sizeof(why)), BG_EINVAL);
    assert_string_equal(why, "blue/blue-1: address app.example:8001 is not an IP address and port "
                             "(HAProxy does not resolve the names of servers added at run time)");
    assert_int_equal(c.n, 0);
    struct bg_route_server twice[] = {srv(BG_BLUE, "x", "127.0.0.1:1", 0),
                                      srv(BG_GREEN, "x", "127.0.0.1:2", 0)};
    want = (struct bg_route_set){twice, 2};
    assert_int_equal(bg_hap_plan("app", &want, &have, &c, why, sizeof(why)), BG_EINVAL);
    assert_string_equal(why, "instance id x is in both colours: server names must differ");
    struct bg_route_server ok[] = {srv(BG_BLUE, "x", "127.0.0.1:1", 0)};
    want = (struct bg_route_set){ok, 1};
    assert_int_equal(bg_hap_plan("a b", &want, &have, &c, why, sizeof(why)), BG_EINVAL);
    assert_int_equal(bg_hap_plan("app", &want, &have, &c, why, sizeof(why)), BG_OK);
    const char *const cmds[] = {"add server app/x 127.0.0.1:1 weight 100 " BG_HAP_POOL,
                                "set server app/x state ready"};
    assert_cmds(&c, cmds, 2);
    bg_hap_cmds_free(&c);
}

/* ------------------------------------------------------------------------------------------
 * The backend section as served (haproxy.file)
 * ------------------------------------------------------------------------------------------ */

static void test_hap_render_backend(void **state)
{
    (void)state;
    struct bg_route_server s[] = {srv(BG_GREEN, "green-1", "127.0.0.1:8003", 0),
                                  srv(BG_GREEN, "green-2", "[::1]:8004", 25)};
    struct bg_route_set set = {s, 2};
    char *const options[] = {"balance roundrobin", "option httpchk GET /health"};
    char why[300] = "";
    char *text = bg_hap_render_backend("lb-1", "app", options, 2, &set, 42, why, sizeof(why));
    assert_non_null(text);
    assert_string_equal(text, "# bg-router lb-1: backend app as it serves it (generation 42). "
                              "Written by\n# the router; HAProxy loads it after haproxy.cfg "
                              "(-f), so that a reload keeps the servers.\n"
                              "backend app\n"
                              "    balance roundrobin\n"
                              "    option httpchk GET /health\n"
                              "    server green-1 127.0.0.1:8003 weight 100\n"
                              "    server green-2 [::1]:8004 weight 25\n");
    free(text);
    struct bg_route_set none = {NULL, 0};
    text = bg_hap_render_backend("lb-1", "app", options, 1, &none, 1, why, sizeof(why));
    assert_non_null(text); /* an empty backend: HAProxy accepts it */
    assert_non_null(strstr(text, "backend app\n    balance roundrobin\n"));
    assert_null(strstr(text, "    server "));
    free(text);
    struct bg_route_server named[] = {srv(BG_BLUE, "b", "app.example:80", 0)};
    set = (struct bg_route_set){named, 1};
    assert_null(bg_hap_render_backend("lb-1", "app", options, 1, &set, 1, why, sizeof(why)));
    assert_non_null(strstr(why, "is not an IP address"));
    char *const evil[] = {"balance roundrobin\nserver x 10.0.0.1:80"};
    assert_null(bg_hap_render_backend("lb-1", "app", evil, 1, &none, 1, why, sizeof(why)));
    assert_string_equal(why, "option 0 is not one line of printable ASCII");
    assert_null(bg_hap_render_backend("lb-1", "app x", options, 1, &none, 1, why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hap_state_parse),   cmocka_unit_test(test_hap_info_pid),
        cmocka_unit_test(test_hap_answers),       cmocka_unit_test(test_hap_split_address),
        cmocka_unit_test(test_hap_plan_switch),   cmocka_unit_test(test_hap_plan_changes),
        cmocka_unit_test(test_hap_plan_refusals), cmocka_unit_test(test_hap_render_backend)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
