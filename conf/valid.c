/* valid.c -- pure checks of configuration values (names, ids, host:port, URLs, ZooKeeper
 * connect strings and paths); no YAML and no state, so the fuzz targets reach them directly. */
#include "valid.h"

#include "util.h"

#include <arpa/inet.h>
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

/* A ZooKeeper connect string: host:port[,host:port...][/chroot]. */
bool bg_valid_connect(const char *s)
{
    if (s[0] == '\0' || bg_valid_has_space(s))
        return false;
    size_t hosts_len = strcspn(s, "/");
    char *hosts = bg_xstrndup(s, hosts_len);
    bool ok = hosts_len > 0 && hosts[0] != ',' && hosts[hosts_len - 1] != ',' &&
              strstr(hosts, ",,") == NULL;
    char *save = NULL;
    for (char *h = strtok_r(hosts, ",", &save); ok && h != NULL; h = strtok_r(NULL, ",", &save))
        ok = bg_valid_hostport(h);
    free(hosts);
    return ok;
}

/* An absolute ZooKeeper path: "/" or "/a/b", no empty, "." or ".." component. */
bool bg_valid_zkpath(const char *s)
{
    if (s[0] != '/' || bg_valid_has_space(s))
        return false;
    if (s[1] == '\0')
        return true;
    const char *p = s;
    while (*p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
    }
    return true;
}

bool bg_valid_auth(const char *s)
{
    const char *colon = strchr(s, ':');
    return colon != NULL && colon != s && !bg_valid_has_space(s);
}

bool bg_valid_is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or "localhost": only this host can connect. */
bool bg_valid_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) != 1)
        return false; /* a host name: it may resolve anywhere */
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}
