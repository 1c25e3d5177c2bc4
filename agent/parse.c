/* parse.c -- the agent's pure parsers of untrusted input: the PUT /v1/status body, Eureka's
 * GET /eureka/apps/{APP}/{ID} answer and HAProxy's X-Haproxy-Server-State header. No I/O, no
 * agent state: unit-tested and fuzzed alone. */
#include "agent.h"
#include "confirm.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int bg_agent_parse_put(const char *body, size_t len, enum bg_status *st, int64_t *epoch,
                       int64_t *timeout_ms, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *j =
        json_loadb(body != NULL ? body : "", body != NULL ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    int rc = BG_EINVAL;
    if (j == NULL) {
        char text[JSON_ERROR_TEXT_LENGTH];
        bg_sanitize(jerr.text, strlen(jerr.text), text, sizeof(text));
        snprintf(why, whylen, "body is not JSON: %s (line %d column %d)", text, jerr.line,
                 jerr.column);
        return rc;
    }
    json_t *s = json_object_get(j, "status");
    json_t *e = json_object_get(j, "epoch");
    json_t *t = json_object_get(j, "timeout_ms");
    if (!json_is_object(j)) {
        snprintf(why, whylen, "body must be a JSON object");
    } else if (!json_is_string(s)) {
        snprintf(why, whylen, "\"status\" must be \"UP\" or \"OUT_OF_SERVICE\"");
    } else if (!json_is_integer(e) || json_integer_value(e) < 0) {
        snprintf(why, whylen, "\"epoch\" must be a non-negative integer");
    } else if (t != NULL && (!json_is_integer(t) || json_integer_value(t) <= 0)) {
        snprintf(why, whylen, "\"timeout_ms\" must be a positive integer when given");
    } else if (strcmp(json_string_value(s), "UP") == 0) {
        rc = 0;
        *st = BG_STATUS_UP;
    } else if (strcmp(json_string_value(s), "OUT_OF_SERVICE") == 0) {
        rc = 0;
        *st = BG_STATUS_OUT;
    } else {
        /* Echo the value printable and bounded: a cut in the middle of a UTF-8 character
         * would make the whole reason invalid JSON text. */
        char got[44];
        bg_sanitize(json_string_value(s), json_string_length(s), got, sizeof(got));
        snprintf(why, whylen, "\"status\" must be \"UP\" or \"OUT_OF_SERVICE\", got \"%s\"", got);
    }
    if (rc == 0) {
        *epoch = json_integer_value(e);
        *timeout_ms = t != NULL ? json_integer_value(t) : 0;
    }
    json_decref(j);
    return rc;
}

int bg_agent_parse_put_weight(const char *body, size_t len, int *weight, char *why, size_t whylen)
{
    json_t *j =
        json_loadb(body != NULL ? body : "", body != NULL ? len : 0, JSON_REJECT_DUPLICATES, NULL);
    json_t *w = json_object_get(j, "weight");
    int rc = 0;
    if (w == NULL) {
        *weight = -1;
    } else if (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > 100) {
        snprintf(why, whylen, "\"weight\" must be an integer from 0 to 100 when given");
        rc = BG_EINVAL;
    } else {
        *weight = (int)json_integer_value(w);
    }
    json_decref(j);
    return rc;
}

int bg_eureka_parse_instance(const char *body, size_t len, char *status, size_t statuslen,
                             char *why, size_t whylen)
{
    if (statuslen > 0)
        status[0] = '\0';
    if (body == NULL || len == 0) {
        snprintf(why, whylen, "empty answer");
        return BG_EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (root == NULL) {
        char text[JSON_ERROR_TEXT_LENGTH];
        bg_sanitize(jerr.text, strlen(jerr.text), text, sizeof(text));
        snprintf(why, whylen, "answer is not JSON: %s", text);
        return BG_EINVAL;
    }
    json_t *st = json_object_get(json_object_get(root, "instance"), "status");
    int rc = BG_EINVAL;
    if (!json_is_string(st)) {
        snprintf(why, whylen, "no instance.status in the answer");
    } else {
        /* The registry's text goes into reasons and logs: printable and bounded. */
        bg_sanitize(json_string_value(st), json_string_length(st), status, statuslen);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

enum bg_epoch_verdict bg_agent_epoch_verdict(int64_t given, int64_t fence, const int64_t *live,
                                             size_t n_live, bool live_known)
{
    if (given < fence)
        return BG_EPOCH_STALE;
    if (given == fence)
        return BG_EPOCH_ACCEPT;
    for (size_t i = 0; i < n_live; i++)
        if (live[i] == given)
            return BG_EPOCH_ACCEPT;
    /* Nobody leads to be fenced out (agents driven by hand, tests): obey without remembering,
     * so that a made-up epoch cannot outrank the next real leader. */
    if (live_known && n_live == 0)
        return BG_EPOCH_ACCEPT_NOFENCE;
    return BG_EPOCH_UNKNOWN;
}

int64_t bg_agent_answer_deadline(int64_t now_ms, int64_t timeout_ms)
{
    if (timeout_ms <= 0)
        return 0;
    if (timeout_ms > BG_AGENT_MAX_TIMEOUT_MS)
        timeout_ms = BG_AGENT_MAX_TIMEOUT_MS;
    return now_ms + timeout_ms * 8 / 10;
}

/* ----------------------------------------------------------------------------------------
 * X-Haproxy-Server-State (http-check send-state).
 * ------------------------------------------------------------------------------------- */

/* A bounded non-negative decimal at *p (advanced past it); -1 when there is none. */
static int ss_number(const char **p, const char *end)
{
    const char *s = *p;
    long v = 0;
    if (s >= end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v < 1000000)
            v = v * 10 + (*s - '0');
        s++;
    }
    *p = s;
    return v < 1000000 ? (int)v : 1000000;
}

/* "a/b" in [s, end): both numbers, or -1 each. */
static void ss_pair(const char *s, const char *end, int *a, int *b)
{
    *a = *b = -1;
    int x = ss_number(&s, end);
    if (x < 0 || s >= end || *s != '/')
        return;
    s++;
    int y = ss_number(&s, end);
    if (y < 0 || s != end)
        return;
    *a = x;
    *b = y;
}

/* A field's value, printable (anything else becomes '?') and bounded. */
static void ss_text(const char *s, const char *end, char *out, size_t outlen)
{
    size_t n = 0;
    for (; s < end && n + 1 < outlen; s++)
        out[n++] = (*s > 0x20 && *s < 0x7f && *s != '"' && *s != '\\') ? *s : '?';
    out[n] = '\0';
}

static bool ss_word(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* Trim spaces on both sides of [*b, *e). */
static void ss_trim(const char **b, const char **e)
{
    while (*b < *e && **b == ' ')
        (*b)++;
    while (*e > *b && (*e)[-1] == ' ')
        (*e)--;
}

/* The state word at the start of [p, end); returns where it ends, or NULL when unknown. */
static const char *ss_state(const char *p, const char *end, enum bg_ss_state *state)
{
    while (p < end && *p == ' ')
        p++;
    const char *w = p;
    while (p < end && *p != ' ' && *p != ';')
        p++;
    size_t wn = (size_t)(p - w);
    if (ss_word(w, wn, "UP"))
        *state = BG_SS_UP;
    else if (ss_word(w, wn, "DOWN"))
        *state = BG_SS_DOWN;
    else if (ss_word(w, wn, "NOLB"))
        *state = BG_SS_NOLB;
    else if (ss_word(w, wn, "DRAIN"))
        *state = BG_SS_DRAIN;
    else if (wn >= 5 && memcmp(w, "MAINT", 5) == 0) /* MAINT, MAINT(via), MAINT(resolution) */
        *state = BG_SS_MAINT;
    else
        return NULL;
    return p;
}

/* One "key=value" field in [f, fe); unknown keys are ignored. */
static void ss_field(const char *f, const char *fe, struct bg_server_state *ss)
{
    ss_trim(&f, &fe);
    const char *eq = memchr(f, '=', (size_t)(fe - f));
    if (eq == NULL)
        return;
    size_t kn = (size_t)(eq - f);
    const char *v = eq + 1;
    if (ss_word(f, kn, "name"))
        ss_text(v, fe, ss->name, sizeof(ss->name));
    else if (ss_word(f, kn, "node"))
        ss_text(v, fe, ss->node, sizeof(ss->node));
    else if (ss_word(f, kn, "weight"))
        ss_pair(v, fe, &ss->weight, &ss->farm_weight);
}

int bg_server_state_parse(const char *value, size_t len, struct bg_server_state *ss)
{
    memset(ss, 0, sizeof(*ss));
    ss->weight = ss->farm_weight = -1;
    if (value == NULL)
        return -1;
    const char *end = value + len;
    const char *p = ss_state(value, end, &ss->state);
    if (p == NULL)
        return -1;
    /* Optional " x/y" up to the first ';'. */
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *fend = semi != NULL ? semi : end;
    const char *q = p, *qe = fend;
    ss_trim(&q, &qe);
    if (qe > q) {
        int x, y;
        ss_pair(q, qe, &x, &y);
        if (x >= 0 && y > 0) {
            ss->x = x;
            ss->y = y;
        }
    }
    /* "; key=value" fields, in any order. */
    for (p = fend; p < end;) {
        const char *f = p + 1; /* past the ';' */
        const char *fe = memchr(f, ';', (size_t)(end - f));
        p = fe != NULL ? fe : end;
        ss_field(f, p, ss);
    }
    return 0;
}
