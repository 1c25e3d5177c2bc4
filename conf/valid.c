/* valid.c -- pure checks of configuration values more than one section uses (names, ids,
 * host:port, URLs); no YAML and no state. */
#include "valid.h"

#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

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

/* Host and port of an http:// or https:// URL (port 80/443 when not written), parsed by
 * libcurl's URL API (the parser the agent's requests go through). Refused besides what libcurl
 * refuses: other schemes, user info, white space, a port 0, a host that does not fit. */
int bg_valid_split_url(const char *url, char *host, size_t hostlen, int *port)
{
    const char *sep = strstr(url, "://"); /* libcurl would take "http:/h" too */
    if (bg_valid_has_space(url) || strncasecmp(url, "http", 4) != 0 || sep == NULL || sep - url > 5)
        return BG_EINVAL;
    CURLU *u = curl_url();
    if (u == NULL)
        return BG_EINVAL;
    char *scheme = NULL, *user = NULL, *h = NULL, *portstr = NULL;
    int rc = BG_EINVAL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &portstr, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    size_t hl = strlen(h);
    const char *hp = h;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* IPv6: without its brackets */
        hp++;
        hl -= 2;
    }
    long p = strtol(portstr, NULL, 10);
    if (hl == 0 || hl >= hostlen || p < 1 || p > 65535)
        goto out;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    *port = (int)p;
    rc = BG_OK;
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(h);
    curl_free(portstr);
    curl_url_cleanup(u);
    return rc;
}

bool bg_valid_url(const char *s)
{
    char host[256];
    int port;
    return bg_valid_split_url(s, host, sizeof(host), &port) == BG_OK;
}

bool bg_valid_address(const char *s)
{
    char host[256];
    int port;
    if (bg_valid_split_hostport(s, host, sizeof(host), &port) != BG_OK)
        return false;
    if (s[0] == '[') {
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1;
    }
    static const char name_chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";
    return host[0] != '-' && strspn(host, name_chars) == strlen(host);
}

bool bg_valid_is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or "localhost": only this host can connect. */

bool bg_valid_nginx_option(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200 || !isalpha((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr(" _.:$/=-", *p) == NULL)
            return false;
    return true;
}
