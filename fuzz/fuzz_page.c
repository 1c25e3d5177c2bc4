/* fuzz_page.c -- libFuzzer target: the status page renderer (controller/page.c) on whatever a
 * /status or /history node may hold. The input is one JSON document: an array [status,
 * history] gives both, else it is the status and its "history" member (if any) the history.
 * The input's bytes also go in as a reason string (when they are valid UTF-8). */
#include "fuzz.h"
#include "page.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Every '<' of the page opens one of the page's own elements: text from the documents never
 * becomes markup. Every '&' starts one of the entities the renderer writes. */
static void require_markup_ours(const char *html)
{
    static const char *const tags[] = {
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body",  "h1", "h2", "span", "dl",
        "dt",       "dd",   "p",    "ul",   "li",    "table", "tbody", "tr", "th", "td",   "code"};
    static const char *const ents[] = {"amp;", "lt;", "gt;", "quot;", "#39;", "rarr;"};
    for (const char *p = html; (p = strchr(p, '<')) != NULL; p++) {
        const char *t = p[1] == '/' ? p + 2 : p + 1;
        size_t len = strcspn(t, " >");
        bool ok = false;
        for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]) && !ok; i++)
            ok = strlen(tags[i]) == len && strncmp(t, tags[i], len) == 0;
        bg_fuzz_require(ok, "page has markup that is not the page's own");
    }
    for (const char *p = html; (p = strchr(p, '&')) != NULL; p++) {
        bool ok = false;
        for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && !ok; i++)
            ok = strncmp(p + 1, ents[i], strlen(ents[i])) == 0;
        bg_fuzz_require(ok, "page has a bare '&'");
    }
}

static void render(const json_t *status, const json_t *history)
{
    const struct bg_page_ctx ctx = {.self_id = "c1", .leader = false, .source = "fuzz"};
    char *html = bg_page_render(status, history, &ctx);
    bg_fuzz_require(html != NULL, "no page");
    size_t n = strlen(html);
    bg_fuzz_require(n < BG_PAGE_MAX, "page longer than BG_PAGE_MAX");
    bg_fuzz_require(n >= 15 && strcmp(html + n - 15, "</body></html>\n") == 0, "page cut short");
    bg_fuzz_require(strstr(html, "<script") == NULL, "page has a script element");
    bg_fuzz_require_json_safe(html, "page");
    require_markup_ours(html);
    free(html);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (json_is_array(doc) && json_array_size(doc) == 2)
        render(json_array_get(doc, 0), json_array_get(doc, 1));
    else
        render(doc, json_object_get(doc, "history"));
    json_decref(doc);
    json_t *s = json_stringn((const char *)data, size);
    if (s != NULL) {
        json_t *st = json_pack("{s:o, s:[{s:O, s:O, s:O}]}", "reason", s, "instances", "id", s,
                               "last_error", s, "color", s);
        render(st, NULL);
        json_decref(st);
    }
    return 0;
}
