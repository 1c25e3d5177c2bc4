/* test_route.c -- unit tests for router/route.c: member nodes and /status as bg-router reads
 * them, the desired server set, and nginx's upstream file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * Member nodes
 * ------------------------------------------------------------------------------------------ */

static void member_says(const char *json, int rc, const char *address, const char *why)
{
    struct bg_route_member m;
    assert_int_equal(bg_route_member_parse(json, json ? strlen(json) : 0, BG_GREEN, "g-1", &m), rc);
    assert_int_equal(m.color, BG_GREEN);
    assert_string_equal(m.id, "g-1");
    if (address != NULL)
        assert_string_equal(m.address, address);
    else
        assert_null(m.address);
    assert_string_equal(m.why, why);
    bg_route_member_free(&m);
}

static void test_route_member(void **state)
{
    (void)state;
    /* A node made by hand with a name that is no instance id: left out, whatever it holds
     * (rendered, it would make every change fail). */
    struct bg_route_member bad;
    const char *good = "{\"address\":\"10.0.0.5:8080\"}";
    assert_int_equal(bg_route_member_parse(good, strlen(good), BG_BLUE, "a b", &bad), BG_EINVAL);
    assert_null(bad.address);
    assert_string_equal(bad.why, "the node's name is not an instance id");
    bg_route_member_free(&bad);
    member_says("{\"id\":\"g-1\",\"address\":\"10.0.0.5:8080\",\"healthy\":true}", BG_OK,
                "10.0.0.5:8080", "");
    member_says("{\"address\":\"[::1]:80\"}", BG_OK, "[::1]:80", "");
    member_says("{\"id\":\"g-1\"}", BG_EINVAL, NULL, "no address (agent instance.address)");
    member_says("{\"address\":8080}", BG_EINVAL, NULL, "address is not a string");
    member_says("{\"address\":\"a\\u0000b:80\"}", BG_EINVAL, NULL, "the node is not valid JSON");
    member_says("{\"address\":\"evil;}:80\"}", BG_EINVAL, NULL, "malformed address \"evil;}:80\"");
    member_says("{\"address\":\"h:80\\n}\"}", BG_EINVAL, NULL, "malformed address \"h:80?}\"");
    member_says("{\"address\":\"h:1\",\"address\":\"h:2\"}", BG_EINVAL, NULL,
                "the node is not valid JSON");
    member_says("[\"h:80\"]", BG_EINVAL, NULL, "the node is not a JSON object");
    member_says("not json", BG_EINVAL, NULL, "the node is not valid JSON");
    member_says(NULL, BG_EINVAL, NULL, "the node is not valid JSON");
}

/* ------------------------------------------------------------------------------------------
 * /status
 * ------------------------------------------------------------------------------------------ */

static void test_route_status(void **state)
{
    (void)state;
    const char *s = "{\"phase\":\"converged\",\"instances\":["
                    "{\"id\":\"b-1\",\"color\":\"blue\",\"status\":\"UP\"},"
                    "{\"id\":\"b-2\",\"color\":\"blue\",\"status\":\"OUT_OF_SERVICE\"},"
                    "{\"id\":\"g-1\",\"color\":\"green\",\"status\":\"UP\"},"
                    "{\"id\":\"..\",\"color\":\"green\",\"status\":\"UP\"},"
                    "{\"id\":\"g-2\",\"color\":\"red\",\"status\":\"UP\"},"
                    "{\"id\":7,\"color\":\"green\",\"status\":\"UP\"},"
                    "{\"color\":\"green\",\"status\":\"UP\"}, 5, null]}";
    struct bg_route_up *up;
    size_t n;
    bool trunc;
    char why[160] = "";
    assert_int_equal(bg_route_status_parse(s, strlen(s), &up, &n, &trunc, why, sizeof(why)), BG_OK);
    assert_int_equal(n, 2);
    assert_false(trunc);
    assert_int_equal(up[0].color, BG_BLUE);
    assert_string_equal(up[0].id, "b-1");
    assert_int_equal(up[1].color, BG_GREEN);
    assert_string_equal(up[1].id, "g-1");
    bg_route_up_free(up, n);

    const char *t = "{\"instances\":[],\"truncated\":true}";
    assert_int_equal(bg_route_status_parse(t, strlen(t), &up, &n, &trunc, why, sizeof(why)), BG_OK);
    assert_int_equal(n, 0);
    assert_true(trunc);
    bg_route_up_free(up, n);

    static const char *const bad[] = {"", "{}", "{\"instances\":{}}", "[1]", "nul"};
    for (size_t i = 0; i < BG_ARRAY_LEN(bad); i++) {
        assert_int_equal(
            bg_route_status_parse(bad[i], strlen(bad[i]), &up, &n, &trunc, why, sizeof(why)),
            BG_EINVAL);
        assert_null(up);
        assert_int_equal(n, 0);
        assert_string_equal(why, "/status is not a JSON object with an \"instances\" array");
    }
}

/* ------------------------------------------------------------------------------------------
 * The desired set
 * ------------------------------------------------------------------------------------------ */

static void add_member(struct bg_route_member *m, enum bg_color c, const char *id, const char *addr)
{
    char *json = bg_xasprintf("{\"address\":\"%s\"}", addr);
    bg_route_member_parse(json, strlen(json), c, id, m);
    free(json);
}

static void test_route_desired(void **state)
{
    (void)state;
    struct bg_route_member m[5];
    add_member(&m[0], BG_GREEN, "g-2", "10.0.0.2:80");
    add_member(&m[1], BG_BLUE, "b-1", "10.0.1.1:80");
    add_member(&m[2], BG_GREEN, "g-1", "10.0.0.1:80");
    add_member(&m[3], BG_GREEN, "g-3", "bad;:80");    /* UP but unusable */
    add_member(&m[4], BG_BLUE, "b-2", "10.0.1.2:80"); /* not UP */
    struct bg_route_up up[] = {{BG_GREEN, "g-1", 0},
                               {BG_GREEN, "g-3", 0},
                               {BG_BLUE, "b-1", 0},
                               {BG_GREEN, "g-2", 0},
                               {BG_BLUE, "gone", 0}};
    struct bg_route_set a = {0}, b = {0};
    size_t dropped = 9;
    bg_route_desired(m, 5, up, BG_ARRAY_LEN(up), &a, &dropped);
    assert_int_equal(dropped, 1);
    assert_int_equal(a.n, 3);
    /* Sorted by colour (blue first), then id, whatever the order read. */
    assert_string_equal(a.s[0].id, "b-1");
    assert_string_equal(a.s[1].id, "g-1");
    assert_string_equal(a.s[1].address, "10.0.0.1:80");
    assert_string_equal(a.s[2].id, "g-2");
    /* The same members in another order give the same set. */
    struct bg_route_member r[5] = {m[4], m[3], m[2], m[1], m[0]};
    bg_route_desired(r, 5, up, BG_ARRAY_LEN(up), &b, NULL);
    assert_true(bg_route_set_equal(&a, &b));
    bg_route_set_copy(&b, &a);
    assert_true(bg_route_set_equal(&a, &b));
    free(b.s[2].address);
    b.s[2].address = bg_xstrdup("10.0.0.2:81");
    assert_false(bg_route_set_equal(&a, &b));
    bg_route_set_free(&b);
    assert_false(bg_route_set_equal(&a, &b));
    bg_route_set_free(&a);
    for (size_t i = 0; i < 5; i++)
        bg_route_member_free(&m[i]);
}

/* ------------------------------------------------------------------------------------------
 * nginx's upstream file
 * ------------------------------------------------------------------------------------------ */

static void test_route_render_nginx(void **state)
{
    (void)state;
    struct bg_route_server s[] = {{BG_BLUE, "b-1", "10.0.1.1:80", 0},
                                  {BG_GREEN, "g-1", "[::1]:8080", 0}};
    struct bg_route_set set = {s, 2};
    char why[256] = "";
    char *text = bg_route_render_nginx("lb-1", "shop", NULL, 0, &set, 42, NULL, why, sizeof(why));
    assert_non_null(text);
    assert_string_equal(text, "# Written by bg-router lb-1, generation 42: do not edit.\n"
                              "upstream shop {\n"
                              "    server 10.0.1.1:80; # blue b-1\n"
                              "    server [::1]:8080; # green g-1\n"
                              "}\n");
    free(text);
    char *const options[] = {"keepalive 32", "hash $remote_addr consistent"};
    text = bg_route_render_nginx("lb-1", "shop", options, 2, &set, 42, NULL, why, sizeof(why));
    assert_non_null(strstr(text, "upstream shop {\n    keepalive 32;\n"
                                 "    hash $remote_addr consistent;\n    server 10.0.1.1:80;"));
    free(text);
    char *const evil[] = {"keepalive 32; } server { listen 80"};
    assert_null(bg_route_render_nginx("lb-1", "shop", evil, 1, &set, 42, NULL, why, sizeof(why)));
    assert_string_equal(why, "option 0 is not one nginx directive");
    text = bg_route_render_nginx("lb-1", "shop", NULL, 0, &set, 43, "127.0.0.1:8399", why,
                                 sizeof(why));
    assert_non_null(text);
    assert_non_null(strstr(text, "}\nserver {\n    listen 127.0.0.1:8399;\n"
                                 "    location = /bg-router/generation {\n"
                                 "        default_type text/plain;\n"
                                 "        return 200 \"lb-1 43\\n\";\n    }\n}\n"));
    free(text);
}

/* A canary (DESIGN §12): /status carries each UP instance's weight; a malformed one counts as
 * none; the set changes when a weight does; nginx gets weight= on every line, or on none. */
static void test_route_weights(void **state)
{
    (void)state;
    const char *s = "{\"instances\":["
                    "{\"id\":\"b-1\",\"color\":\"blue\",\"status\":\"UP\",\"weight\":100},"
                    "{\"id\":\"g-1\",\"color\":\"green\",\"status\":\"UP\",\"weight\":11},"
                    "{\"id\":\"g-2\",\"color\":\"green\",\"status\":\"UP\",\"weight\":0},"
                    "{\"id\":\"g-3\",\"color\":\"green\",\"status\":\"UP\",\"weight\":101},"
                    "{\"id\":\"g-4\",\"color\":\"green\",\"status\":\"UP\",\"weight\":\"9;\"},"
                    "{\"id\":\"g-5\",\"color\":\"green\",\"status\":\"UP\",\"weight\":2.5}]}";
    struct bg_route_up *up;
    size_t n;
    bool trunc;
    char why[160] = "";
    assert_int_equal(bg_route_status_parse(s, strlen(s), &up, &n, &trunc, why, sizeof(why)), BG_OK);
    assert_int_equal(n, 6);
    static const int want[] = {100, 11, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(up[i].weight, want[i]);

    struct bg_route_member m[2];
    add_member(&m[0], BG_BLUE, "b-1", "10.0.1.1:80");
    add_member(&m[1], BG_GREEN, "g-1", "10.0.0.1:80");
    struct bg_route_set a = {0}, b = {0};
    bg_route_desired(m, 2, up, n, &a, NULL);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.s[0].weight, 100);
    assert_int_equal(a.s[1].weight, 11);
    bg_route_set_copy(&b, &a);
    assert_true(bg_route_set_equal(&a, &b));
    b.s[1].weight = 25; /* the canary's share changed: nginx must be told */
    assert_false(bg_route_set_equal(&a, &b));

    char *text = bg_route_render_nginx("lb-1", "shop", NULL, 0, &a, 7, NULL, why, sizeof(why));
    assert_non_null(text);
    assert_string_equal(text, "# Written by bg-router lb-1, generation 7: do not edit.\n"
                              "upstream shop {\n"
                              "    server 10.0.1.1:80 weight=100; # blue b-1\n"
                              "    server 10.0.0.1:80 weight=11; # green g-1\n"
                              "}\n");
    free(text);
    /* No canary (every weight 100 or none): no weight= at all, as before weights existed. */
    a.s[1].weight = 0;
    text = bg_route_render_nginx("lb-1", "shop", NULL, 0, &a, 8, NULL, why, sizeof(why));
    assert_non_null(text);
    assert_null(strstr(text, "weight="));
    free(text);
    bg_route_set_free(&a);
    bg_route_set_free(&b);
    bg_route_up_free(up, n);
    for (size_t i = 0; i < 2; i++)
        bg_route_member_free(&m[i]);
}

static void test_route_render_refused(void **state)
{
    (void)state;
    char why[256] = "";
    struct bg_route_set empty = {0};
    assert_null(bg_route_render_nginx("lb-1", "shop", NULL, 0, &empty, 1, NULL, why, sizeof(why)));
    assert_string_equal(why, "no instance is UP with a usable address (nginx refuses an "
                             "upstream without servers)");
    struct bg_route_server s[] = {{BG_BLUE, "b-1", "10.0.1.1:80", 0},
                                  {BG_BLUE, "b-2", "x;y:80", 0}};
    struct bg_route_set set = {s, 2};
    assert_null(bg_route_render_nginx("lb-1", "shop", NULL, 0, &set, 1, NULL, why, sizeof(why)));
    assert_string_equal(why, "instance 1 of the set has a malformed address or id");
    set.n = 1;
    assert_null(bg_route_render_nginx("lb-1", "shop{", NULL, 0, &set, 1, NULL, why, sizeof(why)));
    assert_null(bg_route_render_nginx("lb 1", "shop", NULL, 0, &set, 1, NULL, why, sizeof(why)));
    assert_null(bg_route_render_nginx("lb-1", "shop", NULL, 0, &set, 1, "h;:1", why, sizeof(why)));
    assert_string_equal(why, "router id, upstream name or confirm address is malformed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_member),         cmocka_unit_test(test_route_status),
        cmocka_unit_test(test_route_desired),        cmocka_unit_test(test_route_render_nginx),
        cmocka_unit_test(test_route_render_refused), cmocka_unit_test(test_route_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
