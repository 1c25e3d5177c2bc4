/* page.c -- the controller's status page (GET /): one self-contained HTML document rendered
 * from the /status document and the newest /history entries (pure, unit-tested, fuzzed). */
#include "page.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * An output buffer that grows up to BG_PAGE_MAX; what does not fit is dropped (the callers
 * check room() first and count what they leave out).
 * ------------------------------------------------------------------------------------- */

struct out {
    char *s;
    size_t len, cap;
};

static void put_n(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > BG_PAGE_MAX)
        n = BG_PAGE_MAX - 1 - o->len; /* the last few bytes of a page already full */
    bg_buf_append(&o->s, &o->len, &o->cap, s, n);
}

static void put(struct out *o, const char *s)
{
    put_n(o, s, strlen(s));
}

/* Only for our own text and numbers: never for a string from the documents. */
static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        put_n(o, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Is there room for about `need` more bytes, keeping `reserve` for the end of the page? */
static bool room(const struct out *o, size_t need)
{
    const size_t reserve = 16 * 1024;
    return o->len + need + reserve < BG_PAGE_MAX;
}

/* s, cut to BG_PAGE_TEXT_MAX bytes on a character boundary, HTML-escaped; control characters
 * become spaces. Strings from jansson are valid UTF-8; the cut keeps them so. */
static void put_text(struct out *o, const char *s)
{
    char cut[BG_PAGE_TEXT_MAX + 4];
    bool more = strlen(s) > BG_PAGE_TEXT_MAX;
    bg_strlcpy_utf8(cut, s, BG_PAGE_TEXT_MAX + 1);
    for (const char *p = cut; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        switch (ch) {
        case '&':
            put(o, "&amp;");
            break;
        case '<':
            put(o, "&lt;");
            break;
        case '>':
            put(o, "&gt;");
            break;
        case '"':
            put(o, "&quot;");
            break;
        case '\'':
            put(o, "&#39;");
            break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                put(o, " ");
            else
                put_n(o, p, 1);
        }
    }
    if (more)
        put(o, "\xe2\x80\xa6"); /* an ellipsis: cut */
}

/* ----------------------------------------------------------------------------------------
 * Reading the documents: anything missing or of the wrong type is "-".
 * ------------------------------------------------------------------------------------- */

static const json_t *get(const json_t *j, const char *key)
{
    return json_is_object(j) ? json_object_get(j, key) : NULL;
}

static const char *str(const json_t *j, const char *key)
{
    const json_t *v = get(j, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A string field as escaped text, or dflt when missing, empty or not a string. */
static void put_field(struct out *o, const json_t *j, const char *key, const char *dflt)
{
    const char *s = str(j, key);
    if (s != NULL && s[0] != '\0')
        put_text(o, s);
    else
        put(o, dflt);
}

/* "blue" or "green" (a CSS class), else "other": never echoes the value. */
static const char *color_class(const char *c)
{
    if (c != NULL && strcmp(c, "blue") == 0)
        return "blue";
    if (c != NULL && strcmp(c, "green") == 0)
        return "green";
    return "other";
}

static void put_int(struct out *o, const json_t *j, const char *key)
{
    const json_t *v = get(j, key);
    if (json_is_integer(v))
        putf(o, "%lld", (long long)json_integer_value(v));
    else
        put(o, "-");
}

/* ----------------------------------------------------------------------------------------
 * The page's parts.
 * ------------------------------------------------------------------------------------- */

static const char STYLE[] =
    "body{font-family:sans-serif;margin:1.5em;color:#222;background:#fafafa}"
    "h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.2em 0 .4em}"
    "table{border-collapse:collapse;font-size:.9em}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
    "th{background:#eee}.blue{color:#0b4fb3;font-weight:bold}"
    ".green{color:#177a2c;font-weight:bold}.other{color:#a33;font-weight:bold}"
    ".badge{display:inline-block;padding:.1em .6em;border-radius:.3em;color:#fff}"
    ".badge.blue{background:#1f66d1}.badge.green{background:#23913c}"
    ".badge.other{background:#a33}.err{color:#a33}.muted{color:#777;font-size:.85em}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0}"
    "dt{font-weight:bold}dd{margin:0}";

static void put_head(struct out *o, const json_t *st)
{
    put(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "style-src 'unsafe-inline'\">"
           "<meta http-equiv=\"refresh\" content=\"2\">"
           "<meta name=\"viewport\" content=\"width=device-width\">"
           "<title>bluegreen: ");
    put_field(o, st, "desired", "no colour");
    put(o, "</title><style>");
    put(o, STYLE);
    put(o, "</style></head><body>\n");
}

/* Per colour, the instance counts by status ("2 UP, 1 OUT_OF_SERVICE"). */
static void put_counts(struct out *o, const json_t *counts)
{
    static const char *const colors[] = {"blue", "green"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *c = get(counts, colors[i]);
        putf(o, "<dt class=\"%s\">%s</dt><dd>", colors[i], colors[i]);
        const char *k;
        const json_t *v;
        bool first = true;
        if (json_is_object(c)) {
            json_object_foreach((json_t *)c, k, v)
            {
                if (!json_is_integer(v))
                    continue;
                put(o, first ? "" : ", ");
                first = false;
                putf(o, "%lld ", (long long)json_integer_value(v));
                put_text(o, k);
            }
        }
        put(o, first ? "-" : "");
        put(o, "</dd>");
    }
}

/* Who rendered the page, from what, and when. */
static void put_served_by(struct out *o, const struct bg_page_ctx *ctx)
{
    put(o, "<p class=\"muted\">Served by ");
    put_text(o, ctx != NULL && ctx->self_id != NULL ? ctx->self_id : "-");
    put(o, ctx != NULL && ctx->leader ? " (leader)" : " (standby)");
    if (ctx != NULL && ctx->source != NULL) {
        put(o, "; ");
        put_text(o, ctx->source);
    }
    if (ctx != NULL && ctx->now != NULL) {
        put(o, "; rendered ");
        put_text(o, ctx->now);
    }
    put(o, ". Reloads every 2 s.</p>\n");
}

/* The canary (DESIGN §12): what /canary asks and how it is served; and the drains. */
static void put_shaping(struct out *o, const json_t *st)
{
    const json_t *c = get(st, "canary");
    if (json_is_true(get(c, "active"))) {
        bool count = str(c, "mode") && strcmp(str(c, "mode"), "instances") == 0;
        put(o, "<dt>Canary</dt><dd id=\"canary\"><span class=\"");
        put(o, color_class(str(c, "color")));
        put(o, "\">");
        put_field(o, c, "color", "-");
        put(o, "</span> ");
        put_int(o, c, "percent");
        put(o, " % requested; ");
        if (count) {
            put(o, "instance-count canary: ");
            put_int(o, c, "canary_up");
            put(o, " of ");
            put_int(o, c, "canary_instances");
            put(o, " UP");
        } else {
            put(o, "weights ");
            put_int(o, c, "weight_canary");
            put(o, " (canary) / ");
            put_int(o, c, "weight_active");
            put(o, " (active)");
        }
        const json_t *share = get(c, "share");
        if (json_is_number(share))
            putf(o, ", expected share %.1f %%", json_number_value(share));
        put(o, "</dd>");
    }
    const char *note = str(c, "note");
    if (note != NULL) {
        put(o, "<dt>Canary note</dt><dd>");
        put_text(o, note);
        put(o, "</dd>");
    }
    size_t n = json_array_size(get(st, "drains"));
    if (n > 0)
        putf(o, "<dt>Drains</dt><dd id=\"drains\">%zu (see the instances)</dd>", n);
}

static void put_summary(struct out *o, const json_t *st, const struct bg_page_ctx *ctx)
{
    const char *desired = str(st, "desired");
    const char *applied = str(st, "applied");
    put(o, "<h1>bluegreen: active <span id=\"active\" class=\"badge ");
    put(o, color_class(desired));
    put(o, "\">");
    put_field(o, st, "desired", "none");
    put(o, "</span></h1>\n<dl>");
    put(o, "<dt>Active (desired)</dt><dd id=\"desired\" class=\"");
    put(o, color_class(desired));
    put(o, "\">");
    put_field(o, st, "desired", "-");
    put(o, "</dd><dt>Applied (last converged)</dt><dd id=\"applied\" class=\"");
    put(o, color_class(applied));
    put(o, "\">");
    put_field(o, st, "applied", "-");
    put(o, "</dd><dt>Phase</dt><dd id=\"phase\">");
    put_field(o, st, "phase", "-");
    put(o, " <span class=\"muted\">since ");
    put_field(o, st, "since", "-");
    put(o, "</span></dd><dt>Reason</dt><dd id=\"reason\">");
    put_field(o, st, "reason", "-");
    put(o, "</dd><dt>Leader</dt><dd>");
    put_field(o, st, "leader", "-");
    put(o, " <span class=\"muted\">epoch ");
    put_int(o, st, "epoch");
    const char *updated = str(st, "updated"); /* the leader's own document has none */
    if (updated != NULL) {
        put(o, ", /status written ");
        put_text(o, updated);
    }
    put(o, "</span></dd>");
    put_counts(o, get(st, "counts"));
    put_shaping(o, st);
    put(o, "</dl>\n");
    put_served_by(o, ctx);
}

/* What the current switch waits for: instances whose status is not confirmed by every
 * balancer (and which balancers), or not yet known; else the reason, while not settled. */
static void put_waiting(struct out *o, const json_t *st)
{
    put(o, "<h2>Waiting for</h2>\n<ul id=\"waiting\">");
    const json_t *inst = get(st, "instances");
    size_t shown = 0, more = 0;
    size_t i;
    const json_t *m;
    json_array_foreach(json_is_array(inst) ? inst : NULL, i, m)
    {
        const json_t *conf = get(m, "confirmed");
        const json_t *w = get(m, "waiting_for");
        const char *status = str(m, "status");
        bool unknown = status != NULL && strcmp(status, "UNKNOWN") == 0;
        if (!json_is_false(conf) && !unknown)
            continue;
        if (!room(o, 8 * 6 * BG_PAGE_TEXT_MAX) || shown >= 50) {
            more++;
            continue;
        }
        shown++;
        put(o, "<li>");
        put_field(o, m, "id", "-");
        if (unknown) {
            put(o, ": its status is not known yet");
        } else {
            put(o, ": its status ");
            put_field(o, m, "status", "-");
            put(o, " is not confirmed by the balancers");
        }
        size_t b;
        const json_t *name;
        bool first = true;
        json_array_foreach(json_is_array(w) ? w : NULL, b, name)
        {
            if (!json_is_string(name))
                continue;
            put(o, first ? " (" : ", ");
            first = false;
            put_text(o, json_string_value(name));
        }
        const json_t *wm = get(m, "waiting_more");
        if (!first && json_is_integer(wm))
            putf(o, " and %lld more", (long long)json_integer_value(wm));
        put(o, first ? "" : ")");
        put(o, "</li>");
    }
    if (more > 0)
        putf(o, "<li>and %zu more instances</li>", more);
    const char *phase = str(st, "phase");
    bool settled = phase != NULL && (strcmp(phase, "converged") == 0 || strcmp(phase, "idle") == 0);
    if (shown == 0 && more == 0) {
        if (settled) {
            put(o, "<li>nothing: converged</li>");
        } else {
            put(o, "<li>");
            put_field(o, st, "reason", "-");
            put(o, "</li>");
        }
    }
    put(o, "</ul>\n");
}

/* Canaries will carry a weight; until then no member has one and the column is left out. */
static bool any_weight(const json_t *inst)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_is_array(inst) ? inst : NULL, i, m)
    {
        if (json_is_number(get(m, "weight")))
            return true;
    }
    return false;
}

static void put_instance(struct out *o, const json_t *m, bool weight)
{
    const char *color = str(m, "color");
    put(o, "<tr><td>");
    put_field(o, m, "id", "-");
    put(o, "</td><td class=\"");
    put(o, color_class(color));
    put(o, "\">");
    put_field(o, m, "color", "-");
    put(o, "</td><td>");
    put_field(o, m, "status", "-");
    const json_t *conf = get(m, "confirmed");
    if (json_is_false(conf))
        put(o, " <span class=\"muted\">(unconfirmed)</span>");
    if (json_is_true(get(m, "drained"))) {
        put(o, " <span class=\"muted\">(drained");
        const char *why = str(m, "drain_reason");
        if (why != NULL && why[0] != '\0') {
            put(o, ": ");
            put_text(o, why);
        }
        put(o, ")</span>");
    }
    put(o, "</td><td>");
    const json_t *h = get(m, "healthy");
    const char *problem = str(m, "problem");
    if (problem != NULL && problem[0] != '\0') {
        put(o, "<span class=\"err\">unusable: ");
        put_text(o, problem);
        put(o, "</span>");
    } else if (json_is_true(h)) {
        put(o, "healthy");
    } else if (json_is_false(h)) {
        put(o, "<span class=\"err\">unhealthy");
        const char *check = str(m, "check");
        if (check != NULL && check[0] != '\0') {
            put(o, ": ");
            put_text(o, check);
        }
        put(o, "</span>");
    } else {
        put(o, "-");
    }
    put(o, "</td>");
    if (weight) {
        const json_t *w = get(m, "weight");
        if (json_is_number(w))
            putf(o, "<td>%g</td>", json_number_value(w));
        else
            put(o, "<td>-</td>");
    }
    put(o, "<td class=\"err\">");
    put_field(o, m, "last_error", "");
    put(o, "</td><td class=\"muted\">");
    put_field(o, m, "endpoint", "-");
    put(o, "</td></tr>\n");
}

static void put_instances(struct out *o, const json_t *st)
{
    const json_t *inst = get(st, "instances");
    bool weight = any_weight(inst);
    size_t n = json_is_array(inst) ? json_array_size(inst) : 0;
    putf(o,
         "<h2>Instances (%zu)</h2>\n<table id=\"instances\"><tr><th>Instance</th>"
         "<th>Colour</th><th>Status</th><th>Health</th>%s<th>Last error</th>"
         "<th>Endpoint</th></tr>\n",
         n, weight ? "<th>Weight</th>" : "");
    size_t i, left_out = 0;
    const json_t *m;
    json_array_foreach(json_is_array(inst) ? inst : NULL, i, m)
    {
        /* A row is at most about 8 strings of BG_PAGE_TEXT_MAX, each escaped up to 6 times. */
        if (left_out > 0 || !room(o, 8 * 6 * BG_PAGE_TEXT_MAX)) {
            left_out++;
            continue;
        }
        put_instance(o, m, weight);
    }
    put(o, "</table>\n");
    if (left_out > 0)
        putf(o,
             "<p class=\"err\">%zu more instances are not shown: the page is full "
             "(<code>bgctl status --json</code> lists them).</p>\n",
             left_out);
    if (json_is_true(get(st, "truncated")))
        put(o, "<p class=\"err\">/status itself lists only some instances (its size budget); "
               "the counts above are of all of them.</p>\n");
}

/* A router's state: ok, pending, or failed: its error (and "waited for" when the switch
 * waits for it). */
static void put_router_state(struct out *o, const json_t *r)
{
    const char *err = str(r, "last_error");
    if (json_is_true(get(r, "failed"))) {
        put(o, "<span class=\"err\">failed: ");
        put_text(o, err != NULL && err[0] != '\0' ? err : "-");
        put(o, "</span>");
    } else if (json_is_true(get(r, "pending"))) {
        put(o, "pending");
    } else if (get(r, "failed") != NULL) {
        put(o, "ok");
    } else {
        put(o, "-");
    }
    if (json_is_true(get(r, "waited")))
        put(o, " <span class=\"muted\">(the switch waits for it)</span>");
}

/* The live bg-routers the leader waits for (DESIGN §13); nothing without any. */
static void put_routers(struct out *o, const json_t *st)
{
    const json_t *list = get(st, "routers");
    size_t n = json_is_array(list) ? json_array_size(list) : 0;
    if (n == 0)
        return;
    putf(o,
         "<h2>Routers (%zu)</h2>\n<table id=\"routers\"><tr><th>Router</th><th>Kind</th>"
         "<th class=\"blue\">Serving blue</th><th class=\"green\">Serving green</th>"
         "<th>Generation</th><th>State</th></tr>\n",
         n);
    size_t i, left_out = 0;
    const json_t *r;
    json_array_foreach(list, i, r)
    {
        if (left_out > 0 || !room(o, 4 * 6 * BG_PAGE_TEXT_MAX)) {
            left_out++;
            continue;
        }
        put(o, "<tr><td>");
        put_field(o, r, "id", "-");
        put(o, "</td><td>");
        put_field(o, r, "kind", "-");
        put(o, "</td><td>");
        put_int(o, get(r, "serving"), "blue");
        put(o, "</td><td>");
        put_int(o, get(r, "serving"), "green");
        put(o, "</td><td>");
        put_int(o, r, "generation");
        put(o, "</td><td>");
        put_router_state(o, r);
        put(o, "</td></tr>\n");
    }
    put(o, "</table>\n");
    if (left_out > 0)
        putf(o, "<p class=\"err\">%zu more routers are not shown: the page is full.</p>\n",
             left_out);
}

static void put_history(struct out *o, const json_t *history)
{
    put(o, "<h2>History</h2>\n<table id=\"history\"><tr><th>Finished</th><th>Switch</th>"
           "<th>Result</th><th>Took</th><th>Reason</th></tr>\n");
    size_t i, shown = 0, left_out = 0;
    const json_t *e;
    json_array_foreach(json_is_array(history) ? history : NULL, i, e)
    {
        if (shown >= BG_PAGE_HISTORY || !room(o, 6 * 6 * BG_PAGE_TEXT_MAX)) {
            left_out++;
            continue;
        }
        shown++;
        put(o, "<tr><td>");
        put_field(o, e, "finished", "-");
        put(o, "</td><td><span class=\"");
        put(o, color_class(str(e, "from")));
        put(o, "\">");
        put_field(o, e, "from", "-");
        put(o, "</span> &rarr; <span class=\"");
        put(o, color_class(str(e, "to")));
        put(o, "\">");
        put_field(o, e, "to", "-");
        put(o, "</span></td><td>");
        put_field(o, e, "result", "-");
        put(o, "</td><td>");
        const json_t *ms = get(e, "ms");
        if (json_is_integer(ms))
            putf(o, "%lld ms", (long long)json_integer_value(ms));
        else
            put(o, "-");
        put(o, "</td><td>");
        put_field(o, e, "reason", "");
        put(o, "</td></tr>\n");
    }
    if (shown == 0)
        put(o, "<tr><td colspan=\"5\">no switch recorded yet</td></tr>\n");
    put(o, "</table>\n");
    if (left_out > 0)
        putf(o, "<p class=\"muted\">%zu older entries: <code>bgctl history</code>.</p>\n",
             left_out);
}

char *bg_page_render(const json_t *status, const json_t *history, const struct bg_page_ctx *ctx)
{
    struct out o = {.s = bg_xmalloc(64 * 1024), .len = 0, .cap = 64 * 1024};
    o.s[0] = '\0';
    put_head(&o, status);
    if (!json_is_object(status))
        put(&o, "<p class=\"err\" id=\"nostatus\">No /status yet: no leader has written it, or "
                "this controller has not read it yet.</p>\n");
    put_summary(&o, status, ctx);
    put_waiting(&o, status);
    put_routers(&o, status);
    put_instances(&o, status);
    put_history(&o, history);
    put(&o, "</body></html>\n");
    return o.s;
}
