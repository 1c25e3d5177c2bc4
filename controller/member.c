/* member.c -- parsing an instance node's data (pure, unit-tested). */
#include "plan.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Visible ASCII only: an endpoint ends up in URLs, logs and /status (no controls, no white
 * space, no quote or backslash, nothing that is not ASCII: internationalised host names are
 * written in punycode). */
static bool plain_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

char *bg_parse_member_data(const char *data, size_t len, char *why, size_t whylen)
{
    char host[256];
    int port;
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (j != NULL) {
        json_t *e = json_is_object(j) ? json_object_get(j, "endpoint") : NULL;
        char *out = NULL;
        const char *s = json_string_value(e);
        if (s == NULL)
            snprintf(why, whylen, "node data has no \"endpoint\" string");
        else if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
            snprintf(why, whylen, "endpoint must start with http:// or https://");
        else if (s[strncmp(s, "http://", 7) == 0 ? 7 : 8] == '\0' ||
                 s[strncmp(s, "http://", 7) == 0 ? 7 : 8] == '/')
            snprintf(why, whylen, "endpoint has no host");
        else if (strlen(s) > 400 || !plain_ascii(s, strlen(s)))
            snprintf(why, whylen,
                     "endpoint is too long or has white space, control or non-ASCII characters");
        else
            out = bg_xstrdup(s);
        if (out != NULL) {
            size_t l = strlen(out);
            while (l > 0 && out[l - 1] == '/')
                out[--l] = '\0';
        }
        json_decref(j);
        return out;
    }
    /* A bare host:port, as hand-made layouts use. */
    if (len > 0 && len < 200 && memchr(data, '\0', len) == NULL) {
        char tmp[200];
        memcpy(tmp, data, len);
        tmp[len] = '\0';
        bg_trim(tmp);
        if (strpbrk(tmp, "/{") == NULL && plain_ascii(tmp, strlen(tmp)) &&
            bg_split_hostport(tmp, host, sizeof(host), &port) == 0 && port > 0)
            return bg_xasprintf("http://%s", tmp);
    }
    char clean[64];
    bg_sanitize(data, len > 40 ? 40 : len, clean, sizeof(clean));
    snprintf(why, whylen,
             "node data is neither JSON with an endpoint nor host:port (%zu bytes: "
             "%s)",
             len, clean);
    return NULL;
}

bool bg_parse_member_health(const char *data, size_t len, char *check, size_t checklen)
{
    check[0] = '\0';
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return true; /* a bare host:port (or garbage, which is unusable anyway) */
    }
    bool healthy = true;
    json_t *h = json_object_get(j, "healthy");
    if (h != NULL && !json_is_boolean(h)) {
        healthy = false;
        snprintf(check, checklen, "node's \"healthy\" is not true or false");
    } else if (h != NULL) {
        healthy = json_is_true(h);
    }
    const char *msg = json_string_value(json_object_get(j, "check"));
    if (msg != NULL && check[0] == '\0')
        bg_sanitize(msg, strlen(msg), check, checklen);
    json_decref(j);
    return healthy;
}
