/* sections.c -- the sections agent.yaml and controller.yaml share: zookeeper (with its auth
 * warning) and http (token file, TLS files, connection limits, the loopback rule). */
#include "sections.h"

#include "valid.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKEN_BYTES 4096

/* Pure checks only these sections use. */

/* A ZooKeeper connect string: host:port[,host:port...][/chroot]. */
static bool connect_ok(const char *s)
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
static bool zkpath_ok(const char *s)
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

/* "user:password" digest credentials without white space. */
static bool auth_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    return colon != NULL && colon != s && !bg_valid_has_space(s);
}

/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or "localhost": only this host can connect. */
static bool is_loopback(const char *host)
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

enum { ZK_CONNECT, ZK_ROOT, ZK_SESSION, ZK_AUTH };

void bg_conf_load_zk(struct bg_yaml *l, yaml_node_t *n, struct bg_zk_conf *zk)
{
    struct bg_yaml_slot s[] = {
        {.key = "connect"}, {.key = "root"}, {.key = "session_timeout_ms"}, {.key = "auth"}};
    zk->session_timeout_ms = 4000;
    if (bg_yaml_scan_mapping(l, n, "zookeeper", "", s, BG_ARRAY_LEN(s))) {
        bg_yaml_need(l, n, "zookeeper", "", &s[ZK_CONNECT]);
        bg_yaml_get_str(l, s[ZK_CONNECT].val, "zookeeper.connect",
                        "\"host:port[,host:port...][/chroot]\"", connect_ok, &zk->connect);
        bg_yaml_get_str(l, s[ZK_ROOT].val, "zookeeper.root",
                        "an absolute ZooKeeper path such as \"/\" or \"/services/shop\"", zkpath_ok,
                        &zk->root);
        bg_yaml_get_int(l, s[ZK_SESSION].val, "zookeeper.session_timeout_ms", 1, INT_MAX,
                        &zk->session_timeout_ms);
        bg_yaml_get_str(l, s[ZK_AUTH].val, "zookeeper.auth",
                        "\"user:password\" without white space", auth_ok, &zk->auth);
    }
    if (s[ZK_ROOT].val == NULL)
        zk->root = bg_xstrdup("/");
}

/* Read, trim and check the token file; the value node is only there for the messages. */
static void load_token(struct bg_yaml *l, const yaml_node_t *n, struct bg_http_conf *h)
{
    size_t len = 0;
    int err = 0;
    bool opened = false;
    char *buf = bg_yaml_read_file(h->token_file, MAX_TOKEN_BYTES, &len, &err, &opened);
    if (buf == NULL) {
        bg_yaml_fail(l, n->start_mark, "http.token_file", "cannot read \"%s\": %s", h->token_file,
                     strerror(err));
        return;
    }
    bool nul = memchr(buf, '\0', len) != NULL;
    bg_trim(buf);
    if (buf[0] == '\0')
        bg_yaml_fail(l, n->start_mark, "http.token_file", "\"%s\" is empty, expected a token",
                     h->token_file);
    else if (nul || bg_valid_has_space(buf))
        bg_yaml_fail(l, n->start_mark, "http.token_file",
                     "\"%s\" must hold one token of printable characters without white space",
                     h->token_file);
    else
        h->token = bg_xstrdup(buf);
    explicit_bzero(buf, len);
    free(buf);
}

/* Read a PEM file (certificate, key or CA bundle) named by the value node n into *pem (may be
 * NULL: only checked). what is "certificate", "private key" or "CA certificate". */
static void load_pem(struct bg_yaml *l, const yaml_node_t *n, const char *path, const char *file,
                     const char *what, char **pem)
{
    size_t len = 0;
    int err = 0;
    bool opened = false;
    char *buf = bg_yaml_read_file(file, BG_YAML_MAX_BYTES, &len, &err, &opened);
    if (buf == NULL) {
        bg_yaml_fail(l, n->start_mark, path, "cannot read \"%s\": %s", file, strerror(err));
        return;
    }
    if (memchr(buf, '\0', len) != NULL || strstr(buf, "-----BEGIN ") == NULL)
        bg_yaml_fail(l, n->start_mark, path,
                     "\"%s\" is not a PEM file, expected a %s (-----BEGIN ...)", file, what);
    else if (pem != NULL)
        *pem = bg_xstrdup(buf);
    explicit_bzero(buf, len);
    free(buf);
}

enum { TLS_CERT, TLS_KEY };

static void load_tls(struct bg_yaml *l, yaml_node_t *n, struct bg_http_conf *h)
{
    struct bg_yaml_slot s[] = {{.key = "cert"}, {.key = "key"}};
    if (!bg_yaml_scan_mapping(l, n, "http.tls", "", s, BG_ARRAY_LEN(s)) || bg_yaml_is_null(n))
        return;
    bg_yaml_need(l, n, "http.tls", "", &s[TLS_CERT]);
    bg_yaml_need(l, n, "http.tls", "", &s[TLS_KEY]);
    if (!bg_httpd_tls_supported()) {
        bg_yaml_fail(l, n->start_mark, "http.tls",
                     "this libmicrohttpd was built without TLS (GnuTLS): cannot serve HTTPS");
        return;
    }
    if (bg_yaml_get_str(l, s[TLS_CERT].val, "http.tls.cert", "a file name", bg_valid_nonempty,
                        &h->tls_cert))
        load_pem(l, s[TLS_CERT].val, "http.tls.cert", h->tls_cert, "certificate", &h->tls_cert_pem);
    if (bg_yaml_get_str(l, s[TLS_KEY].val, "http.tls.key", "a file name", bg_valid_nonempty,
                        &h->tls_key))
        load_pem(l, s[TLS_KEY].val, "http.tls.key", h->tls_key, "private key", &h->tls_key_pem);
    if (h->tls_cert_pem == NULL || h->tls_key_pem == NULL) {
        bg_free(&h->tls_cert_pem);
        bg_free(&h->tls_key_pem);
    }
}

enum {
    HTTP_LISTEN,
    HTTP_TOKEN_FILE,
    HTTP_INSECURE,
    HTTP_TLS,
    HTTP_PER_IP,
    HTTP_MAX_CONNS,
    HTTP_IDLE,
    HTTP_CA_FILE
};

/* Secure by default (DESIGN §14): whoever reaches a non-loopback API without a token can take
 * the instance out of service, or, on the controller, read it all. */
static void check_loopback(struct bg_yaml *l, const struct bg_yaml_slot *s, bool controller,
                           const struct bg_http_conf *h)
{
    char host[256];
    int port;
    if (h->listen != NULL &&
        bg_valid_split_hostport(h->listen, host, sizeof(host), &port) == BG_OK &&
        !is_loopback(host) && s[HTTP_TOKEN_FILE].val == NULL) {
        if (!h->insecure)
            bg_yaml_fail(
                l, s[HTTP_LISTEN].val->start_mark, "http.listen",
                "\"%s\" is not a loopback address and http.token_file is not set: anyone who "
                "reaches it could %s; set http.token_file (or http.insecure: true to accept that)",
                h->listen,
                controller ? "read its status and metrics" : "change this instance's status");
        else
            bg_yaml_warn(
                l, s[HTTP_INSECURE].val->start_mark, "http.insecure", "http_insecure",
                "true: the API on \"%s\" takes requests from anyone who reaches it, without a "
                "token",
                h->listen);
    }
}

/* controller: the controller's section, which may omit listen and takes ca_file. */
void bg_conf_load_http(struct bg_yaml *l, yaml_node_t *n, bool controller, struct bg_http_conf *h)
{
    struct bg_yaml_slot s[] = {{.key = "listen"},
                               {.key = "token_file"},
                               {.key = "insecure"},
                               {.key = "tls"},
                               {.key = "max_connections_per_ip"},
                               {.key = "max_connections"},
                               {.key = "idle_timeout"},
                               {.key = "ca_file", .off = !controller}};
    h->max_connections_per_ip = BG_HTTP_MAX_CONNS_PER_IP;
    h->max_connections = BG_HTTP_MAX_CONNS;
    h->idle_timeout_ms = BG_HTTP_IDLE_TIMEOUT_MS;
    if (!bg_yaml_scan_mapping(l, n, "http", "", s, BG_ARRAY_LEN(s)))
        return;
    if (!controller)
        bg_yaml_need(l, n, "http", "", &s[HTTP_LISTEN]);
    bg_yaml_get_str(l, s[HTTP_LISTEN].val, "http.listen", BG_EXPECT_HOSTPORT, bg_valid_hostport,
                    &h->listen);
    if (bg_yaml_get_str(l, s[HTTP_TOKEN_FILE].val, "http.token_file", "a file name",
                        bg_valid_nonempty, &h->token_file))
        load_token(l, s[HTTP_TOKEN_FILE].val, h);
    bg_yaml_get_bool(l, s[HTTP_INSECURE].val, "http.insecure", &h->insecure);
    if (s[HTTP_TLS].val != NULL)
        load_tls(l, s[HTTP_TLS].val, h);
    bg_yaml_get_int(l, s[HTTP_PER_IP].val, "http.max_connections_per_ip", 1, 65536,
                    &h->max_connections_per_ip);
    bg_yaml_get_int(l, s[HTTP_MAX_CONNS].val, "http.max_connections", 1, 65536,
                    &h->max_connections);
    bg_yaml_get_duration(l, s[HTTP_IDLE].val, "http.idle_timeout", 1, &h->idle_timeout_ms);
    if (bg_yaml_get_str(l, s[HTTP_CA_FILE].val, "http.ca_file", "a file name", bg_valid_nonempty,
                        &h->ca_file))
        load_pem(l, s[HTTP_CA_FILE].val, "http.ca_file", h->ca_file, "CA certificate", NULL);

    check_loopback(l, s, controller, h);
    h->server =
        (struct bg_httpd_opts){.listen = h->listen,
                               .cert_pem = h->tls_cert_pem,
                               .key_pem = h->tls_key_pem,
                               .max_conns_per_ip = (unsigned)h->max_connections_per_ip,
                               .max_conns = (unsigned)h->max_connections,
                               .idle_timeout_s = (unsigned)((h->idle_timeout_ms + 999) / 1000)};
}

/* Digest credentials are the only thing that keeps strangers from writing under the root. */
void bg_conf_warn_zk_auth(struct bg_yaml *l, const yaml_node_t *n, const struct bg_zk_conf *zk)
{
    if (n == NULL || zk->auth != NULL)
        return;
    bg_yaml_warn(
        l, n->start_mark, "zookeeper.auth", "zookeeper_auth_unset",
        "not set: the nodes are open to everyone, so anyone who can write to ZooKeeper can "
        "register an endpoint and receive the token with the controller's calls; set "
        "\"user:password\" digest credentials");
}

/* Wipe a password, token or private key before freeing it. */
static void free_secret(char **p)
{
    if (*p != NULL)
        explicit_bzero(*p, strlen(*p));
    bg_free(p);
}

void bg_conf_free_zk(struct bg_zk_conf *zk)
{
    bg_free(&zk->connect);
    bg_free(&zk->root);
    free_secret(&zk->auth);
}
void bg_conf_free_http(struct bg_http_conf *h)
{
    bg_free(&h->listen);
    bg_free(&h->token_file);
    free_secret(&h->token);
    bg_free(&h->tls_cert);
    bg_free(&h->tls_key);
    bg_free(&h->tls_cert_pem);
    free_secret(&h->tls_key_pem);
    bg_free(&h->ca_file);
    memset(&h->server, 0, sizeof(h->server));
}
