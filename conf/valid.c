/* valid.c -- pure checks of configuration values more than one section uses (names, ids,
 * host:port, URLs); no YAML and no state. */
#include "valid.h"

#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME_LEN 128

bool bg_valid_has_space(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

bool bg_valid_nonempty(const char *s)
{
    return s[0] != '\0';
}

bool bg_valid_word(const char *s)
{
    return s[0] != '\0' && !bg_valid_has_space(s);
}

static bool chars_ok(const char *s, const char *extra)
{
    size_t len = strlen(s);
    if (len == 0 || len > MAX_NAME_LEN)
        return false;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && strchr(extra, *p) == NULL)
            return false;
    }
    return true;
}

/* Instance and controller ids: also a znode name, hence no "." or "..". */
bool bg_valid_id(const char *s)
{
    return chars_ok(s, "._-") && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Application names and Eureka instance ids: they end up in Eureka URL paths. */
bool bg_valid_name(const char *s)
{
    return chars_ok(s, "._:-");
}

bool bg_valid_all_digits(const char *s)
{
    return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* Stricter than bg_split_hostport: no white space, digits-only port 1..65535, IPv6 only in
 * brackets. host receives the address without brackets. */
int bg_valid_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || bg_valid_has_space(s) || !bg_valid_all_digits(colon + 1))
        return BG_EINVAL;
    if (bg_split_hostport(s, host, hostlen, port) != BG_OK)
        return BG_EINVAL;
    if (*port < 1 || host[0] == '\0')
        return BG_EINVAL;
    if (s[0] != '[' && strchr(host, ':') != NULL)
        return BG_EINVAL;
    if (s[0] == '[' && colon[-1] != ']')
        return BG_EINVAL;
    return BG_OK;
}

bool bg_valid_hostport(const char *s)
{
    char host[256];
    int port;
    return bg_valid_split_hostport(s, host, sizeof(host), &port) == BG_OK;
}

/* Host and port of an http:// or https:// URL (port 80/443 when not written). */
int bg_valid_split_url(const char *url, char *host, size_t hostlen, int *port)
{
    const char *p;
    int defport;
    if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        defport = 80;
    } else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        defport = 443;
    } else {
        return BG_EINVAL;
    }
    if (bg_valid_has_space(url))
        return BG_EINVAL;
    char auth[300];
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= sizeof(auth))
        return BG_EINVAL;
    memcpy(auth, p, n);
    auth[n] = '\0';
    if (strchr(auth, '@') != NULL)
        return BG_EINVAL;
    bool bracketed = auth[0] == '[';
    if ((bracketed && auth[n - 1] == ']') || (!bracketed && strchr(auth, ':') == NULL)) {
        size_t hl = bracketed ? n - 2 : n;
        if (hl == 0 || hl >= hostlen)
            return BG_EINVAL;
        memcpy(host, bracketed ? auth + 1 : auth, hl);
        host[hl] = '\0';
        *port = defport;
        return BG_OK;
    }
    return bg_valid_split_hostport(auth, host, hostlen, port);
}

bool bg_valid_url(const char *s)
{
    char host[256];
    int port;
    return bg_valid_split_url(s, host, sizeof(host), &port) == BG_OK;
}

bool bg_valid_is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or "localhost": only this host can connect. */
