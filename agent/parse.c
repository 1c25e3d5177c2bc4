/* parse.c -- the agent's pure parsers of untrusted input: the PUT /v1/status body and Eureka's
 * GET /eureka/apps/{APP}/{ID} answer. No I/O, no agent state: unit-tested and fuzzed alone. */
#include "agent.h"
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
