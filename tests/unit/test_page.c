/* test_page.c -- the status page renderer (controller/page.c) on real and hostile documents:
 * escaping, missing fields and wrong types, huge strings, the size cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "page.h"
#include "plan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct bg_page_ctx ctx = {.self_id = "c1", .leader = true, .source = "test"};

/* Valid UTF-8 throughout (a cut must not split a character). */
static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : 3;
        if (*p >= 0x80 && (*p < 0xc2 || *p > 0xf4))
            return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* Every page, whatever went in: whole, bounded, valid UTF-8, no markup of its own missing. */
static void check_page(const char *html)
{
    assert_non_null(html);
    size_t n = strlen(html);
    assert_true(n < BG_PAGE_MAX);
    assert_true(n > 14 && strcmp(html + n - 15, "</body></html>\n") == 0);
    assert_true(utf8_ok(html));
    assert_non_null(strstr(html, "http-equiv=\"refresh\" content=\"2\""));
    assert_null(strstr(html, "<script"));
}

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (j == NULL)
        fail_msg("bad test JSON: %s", err.text);
    return j;
}

static void test_page_shows_a_real_status(void **state)
{
    (void)state;
    static char ep[] = "http://127.0.0.1:1";
    struct bg_member m[2];
    memset(m, 0, sizeof(m));
    snprintf(m[0].id, sizeof(m[0].id), "blue-1");
    m[0].color = BG_BLUE;
    m[0].known = BG_KNOWN_UP;
    m[0].endpoint = ep;
    m[0].healthy = true;
    snprintf(m[1].id, sizeof(m[1].id), "green-1");
    m[1].color = BG_GREEN;
    m[1].known = BG_KNOWN_OUT;
    m[1].endpoint = ep;
    m[1].healthy = false;
    m[1].unconfirmed = true;
    m[1].n_waiting = 1;
    snprintf(m[1].waiting[0], sizeof(m[1].waiting[0]), "haproxy-a");
    snprintf(m[1].check, sizeof(m[1].check), "HTTP 503");
    snprintf(m[1].last_error, sizeof(m[1].last_error), "connection refused");
    json_t *st = load("{\"desired\":\"blue\",\"applied\":\"blue\",\"phase\":\"settling\","
                      "\"reason\":\"waiting for the balancers\",\"epoch\":7,\"leader\":\"c1\"}");
    bg_status_instances(st, m, 2, BG_STATUS_BUDGET);
    json_t *hist = load("[{\"from\":\"green\",\"to\":\"blue\",\"result\":\"converged\",\"ms\":42,"
                        "\"finished\":\"2026-01-01T00:00:00Z\",\"reason\":\"r\"}]");
    char *html = bg_page_render(st, hist, &ctx);
    check_page(html);
    assert_non_null(strstr(html, "id=\"active\" class=\"badge blue\">blue</span>"));
    assert_non_null(strstr(html, "<td>blue-1</td><td class=\"blue\">blue</td><td>UP</td>"));
    assert_non_null(strstr(html, "<td>green-1</td><td class=\"green\">green</td><td>"
                                 "OUT_OF_SERVICE <span class=\"muted\">(unconfirmed)</span>"));
    assert_non_null(strstr(html, "unhealthy: HTTP 503"));
    assert_non_null(strstr(html, "connection refused"));
    assert_non_null(strstr(html, "<li>green-1: its status OUT_OF_SERVICE is not confirmed by the "
                                 "balancers (haproxy-a)</li>"));
    assert_non_null(strstr(html, "<td>converged</td><td>42 ms</td>"));
    assert_non_null(strstr(html, "settling"));
    assert_non_null(strstr(html, "(leader)"));
    /* No member carries a weight yet: no column. */
    assert_null(strstr(html, "Weight"));
    free(html);
    json_decref(st);
    json_decref(hist);
}

static void test_page_escapes_hostile_text(void **state)
{
    (void)state;
    json_t *st =
        load("{\"desired\":\"<b>blue\",\"reason\":\"<script>alert(1)</script>\","
             "\"leader\":\"\\\"><img src=x onerror=alert(2)>\",\"phase\":\"x' onmouseover='y\","
             "\"instances\":[{\"id\":\"<script>alert(3)</script>\",\"color\":\"green\\\" x=\\\"\","
             "\"status\":\"UP\",\"last_error\":\"'\\\"&<>\",\"endpoint\":\"javascript:alert(4)\","
             "\"healthy\":false,\"check\":\"</td></tr></table><script>\",\"confirmed\":false,"
             "\"waiting_for\":[\"<i>lb</i>\"]}],\"counts\":{\"blue\":{\"<u>k\":1}}}");
    json_t *hist = load("[{\"from\":\"<a href=x>\",\"to\":\"green\",\"result\":\"</table>\","
                        "\"reason\":\"&amp;\"}]");
    struct bg_page_ctx hostile = {.self_id = "<id>", .source = "<src>", .now = "\"now"};
    char *html = bg_page_render(st, hist, &hostile);
    check_page(html);
    assert_null(strstr(html, "<b>"));
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "<i>"));
    assert_null(strstr(html, "<u>"));
    assert_null(strstr(html, "<a "));
    assert_null(strstr(html, "onmouseover='"));
    assert_null(strstr(html, "x=\""));
    assert_non_null(strstr(html, "&lt;script&gt;alert(3)&lt;/script&gt;"));
    assert_non_null(strstr(html, "&#39;&quot;&amp;&lt;&gt;"));
    assert_non_null(strstr(html, "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;"));
    assert_non_null(strstr(html, "&amp;amp;"));
    assert_non_null(strstr(html, "&lt;id&gt;"));
    /* A colour that is not one is never echoed into a class attribute. */
    assert_non_null(strstr(html, "<td class=\"other\">green&quot; x=&quot;</td>"));
    /* The only table closers are the page's own two (instances, history). */
    int tables = 0;
    for (const char *p = html; (p = strstr(p, "</table>")) != NULL; p++)
        tables++;
    assert_int_equal(tables, 2);
    free(html);
    json_decref(st);
    json_decref(hist);
}

static void test_page_missing_fields_and_wrong_types(void **state)
{
    (void)state;
    const char *docs[] = {
        "null",
        "[]",
        "\"status\"",
        "42",
        "{}",
        "{\"desired\":1,\"applied\":[],\"phase\":{},\"reason\":null,\"epoch\":\"x\","
        "\"instances\":{\"id\":\"a\"},\"counts\":[1]}",
        "{\"instances\":[1,\"a\",null,[],{\"id\":2,\"color\":[],\"status\":{},\"healthy\":\"yes\","
        "\"confirmed\":0,\"waiting_for\":\"lb\",\"weight\":\"10\",\"last_error\":false}]}",
        "{\"counts\":{\"blue\":[],\"green\":{\"x\":\"y\",\"z\":1.5}}}",
    };
    const char *hists[] = {"null", "{}", "[1,null,\"x\",[],{\"ms\":\"1\",\"from\":3}]"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        for (size_t k = 0; k < sizeof(hists) / sizeof(hists[0]); k++) {
            json_t *st = load(docs[i]);
            json_t *h = load(hists[k]);
            char *html = bg_page_render(st, h, &ctx);
            check_page(html);
            free(html);
            json_decref(st);
            json_decref(h);
        }
    }
    char *html = bg_page_render(NULL, NULL, NULL);
    check_page(html);
    assert_non_null(strstr(html, "No /status yet"));
    assert_non_null(strstr(html, "no switch recorded yet"));
    free(html);
}

static void test_page_weight_column_only_when_carried(void **state)
{
    (void)state;
    json_t *st = load("{\"instances\":[{\"id\":\"a\",\"weight\":25},{\"id\":\"b\"}]}");
    char *html = bg_page_render(st, NULL, &ctx);
    check_page(html);
    assert_non_null(strstr(html, "<th>Weight</th>"));
    assert_non_null(strstr(html, "<td>25</td>"));
    assert_non_null(strstr(html, "<td>-</td>"));
    free(html);
    json_decref(st);
}

static void test_page_huge_strings_are_cut_on_a_character(void **state)
{
    (void)state;
    size_t n = 4 * 1024 * 1024;
    char *big = malloc(n + 1);
    /* "é" (2 bytes) repeated, after one ASCII byte: every even cut would split one. */
    big[0] = 'x';
    for (size_t i = 1; i + 1 < n; i += 2) {
        big[i] = (char)0xc3;
        big[i + 1] = (char)0xa9;
    }
    big[n - 1] = '<';
    big[n] = '\0';
    json_t *st = json_object();
    json_object_set_new(st, "reason", json_string(big));
    json_t *inst = json_array();
    for (int i = 0; i < 10; i++)
        json_array_append_new(inst, json_pack("{s:s, s:s}", "id", big, "last_error", big));
    json_object_set_new(st, "instances", inst);
    json_t *hist = json_array();
    for (int i = 0; i < 20; i++)
        json_array_append_new(hist, json_pack("{s:s, s:s}", "reason", big, "result", big));
    char *html = bg_page_render(st, hist, &ctx);
    check_page(html);
    assert_true(strlen(html) < 200 * 1024);
    assert_non_null(strstr(html, "\xc3\xa9\xe2\x80\xa6")); /* cut, then an ellipsis */
    assert_non_null(strstr(html, "10 older entries"));
    free(html);
    free(big);
    json_decref(st);
    json_decref(hist);
}

static void test_page_control_characters_become_spaces(void **state)
{
    (void)state;
    json_t *st = json_object();
    json_object_set_new(st, "reason",
                        json_stringn("a\nb\x01"
                                     "c\x7f"
                                     "d\0e",
                                     9));
    char *html = bg_page_render(st, NULL, &ctx);
    check_page(html);
    assert_non_null(strstr(html, "id=\"reason\">a b c d</dd>")); /* cut at the NUL */
    free(html);
    json_decref(st);
}

static void test_page_bounded_whatever_the_fleet(void **state)
{
    (void)state;
    json_t *st = json_object();
    json_t *inst = json_array();
    char id[64], err[120];
    memset(err, '"', sizeof(err) - 1); /* escaping makes each 6 bytes */
    err[sizeof(err) - 1] = '\0';
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "instance-with-a-long-name-%05d", i);
        json_array_append_new(inst, json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "color",
                                              "blue", "status", "UNKNOWN", "last_error", err,
                                              "endpoint", "http://127.0.0.1:65535"));
    }
    json_object_set_new(st, "instances", inst);
    char *html = bg_page_render(st, NULL, &ctx);
    check_page(html);
    assert_true(strlen(html) > BG_PAGE_MAX / 2);
    assert_non_null(strstr(html, "more instances are not shown"));
    assert_non_null(strstr(html, "Instances (20000)"));
    free(html);
    json_decref(st);
}

/* DESIGN §12: the canary (weights or instance count), the weight column, drained instances and
 * their reason (escaped), from /status as the controller writes it. */
static void test_page_canary_and_drains(void **state)
{
    (void)state;
    static char ep[] = "http://127.0.0.1:1";
    struct bg_member m[3];
    memset(m, 0, sizeof(m));
    const char *ids[] = {"blue-1", "blue-2", "green-1"};
    for (int i = 0; i < 3; i++) {
        snprintf(m[i].id, sizeof(m[i].id), "%s", ids[i]);
        m[i].color = i < 2 ? BG_BLUE : BG_GREEN;
        m[i].known = BG_KNOWN_UP;
        m[i].endpoint = ep;
        m[i].healthy = true;
        m[i].can_weight = true;
        m[i].weight = i < 2 ? 100 : 22;
    }
    m[1].known = BG_KNOWN_OUT;
    m[1].weight = 0;
    m[1].drained = true;
    snprintf(m[1].drain_reason, sizeof(m[1].drain_reason), "kernel <6.1> & reboot");
    struct bg_plan_input in = {.desired = BG_BLUE,
                               .m = m,
                               .n = 3,
                               .min_ready = 1,
                               .canary = {.color = BG_GREEN, .percent = 10}};
    json_t *st = load("{\"desired\":\"blue\",\"applied\":\"blue\",\"phase\":\"converged\","
                      "\"reason\":\"r\",\"epoch\":7,\"leader\":\"c1\"}");
    bg_status_instances(st, m, 3, BG_STATUS_BUDGET);
    struct bg_shape sh;
    bg_shape_init(&sh, &in);
    bg_shape_status(st, &sh, &in);
    bg_shape_free(&sh);
    char *html = bg_page_render(st, NULL, &ctx);
    check_page(html);
    assert_non_null(strstr(html, "<dt>Canary</dt><dd id=\"canary\"><span class=\"green\">green"
                                 "</span> 10 % requested; weights 11 (canary) / 100 (active), "
                                 "expected share 9.9 %</dd>"));
    assert_non_null(strstr(html, "<dt>Drains</dt><dd id=\"drains\">1 (see the instances)</dd>"));
    assert_non_null(strstr(html, "OUT_OF_SERVICE <span class=\"muted\">(drained: kernel "
                                 "&lt;6.1&gt; &amp; reboot)</span>"));
    assert_non_null(strstr(html, "<th>Weight</th>"));
    assert_non_null(strstr(html, "<td>22</td>"));
    free(html);
    json_decref(st);
}

/* The Routers table (DESIGN §13): one row each, ok / pending / failed: reason, whether the
 * switch waits for it; hostile ids, kinds and errors escaped; no table without routers. */
static void test_page_routers(void **state)
{
    (void)state;
    json_t *st = load(
        "{\"phase\":\"blocked\",\"routers\":[{\"id\":\"lb-1\",\"kind\":\"nginx\",\"serving\":"
        "{\"blue\":0,\"green\":2},\"generation\":7,\"pending\":false,\"failed\":false,"
        "\"last_error\":null,\"waited\":false},{\"id\":\"lb-2\",\"kind\":\"nginx\",\"serving\":"
        "{\"blue\":1,\"green\":0},\"generation\":3,\"pending\":true,\"failed\":false,"
        "\"last_error\":null,\"waited\":true},{\"id\":\"<script>x\",\"kind\":\"<b>k\","
        "\"serving\":{\"blue\":\"1\"},\"generation\":-1,\"pending\":true,\"failed\":true,"
        "\"last_error\":\"nginx -t: <i>bad</i> & \\\"worse\\\"\",\"waited\":true}]}");
    char *html = bg_page_render(st, NULL, &ctx);
    check_page(html);
    assert_non_null(strstr(html, "<h2>Routers (3)</h2>"));
    assert_non_null(
        strstr(html, "<tr><td>lb-1</td><td>nginx</td><td>0</td><td>2</td><td>7</td><td>ok</td>"));
    assert_non_null(strstr(html, "<tr><td>lb-2</td><td>nginx</td><td>1</td><td>0</td><td>3</td>"
                                 "<td>pending <span class=\"muted\">(the switch waits for "
                                 "it)</span></td>"));
    assert_non_null(strstr(html, "<tr><td>&lt;script&gt;x</td><td>&lt;b&gt;k</td><td>-</td>"
                                 "<td>-</td><td>-1</td><td><span class=\"err\">failed: nginx "
                                 "-t: &lt;i&gt;bad&lt;/i&gt; &amp; &quot;worse&quot;</span>"));
    assert_null(strstr(html, "<script>x"));
    assert_null(strstr(html, "<i>bad"));
    free(html);
    json_decref(st);
    st = load("{\"phase\":\"converged\",\"routers\":[]}");
    html = bg_page_render(st, NULL, &ctx);
    check_page(html);
    assert_null(strstr(html, "Routers"));
    free(html);
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_shows_a_real_status),
        cmocka_unit_test(test_page_escapes_hostile_text),
        cmocka_unit_test(test_page_missing_fields_and_wrong_types),
        cmocka_unit_test(test_page_weight_column_only_when_carried),
        cmocka_unit_test(test_page_huge_strings_are_cut_on_a_character),
        cmocka_unit_test(test_page_control_characters_become_spaces),
        cmocka_unit_test(test_page_bounded_whatever_the_fleet),
        cmocka_unit_test(test_page_canary_and_drains),
        cmocka_unit_test(test_page_routers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
