/* httpd.c -- libmicrohttpd in external-select epoll mode, run from the daemon's main loop. */
#include "httpd.h"
#include "log.h"
#include "net.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct conn_state {
    struct bg_httpd_req req;
    char *buf;
    size_t len;
    bool complete;
};

static void peer_text(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    bg_net_addr_text(ci != NULL ? ci->client_addr : NULL, buf, len);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct bg_httpd *h = cls;
    struct conn_state *s = *con_cls;
    if (s == NULL) {
        s = bg_xcalloc(1, sizeof(*s));
        s->req.conn = c;
        s->req.method = method;
        s->req.url = url;
        peer_text(c, s->req.peer, sizeof(s->req.peer));
        *con_cls = s;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (s->len + *upload_data_size > BG_HTTPD_MAX_BODY) {
            s->req.body_too_large = true;
        } else {
            s->buf = bg_xrealloc(s->buf, s->len + *upload_data_size + 1);
            memcpy(s->buf + s->len, upload_data, *upload_data_size);
            s->len += *upload_data_size;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!s->complete) {
        s->complete = true;
        if (s->buf == NULL)
            s->buf = bg_xcalloc(1, 1);
        s->buf[s->len] = '\0';
        s->req.body = s->buf;
        s->req.body_len = s->len;
    }
    return h->handler(h->ctx, &s->req);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn_state *s = *con_cls;
    if (s == NULL)
        return;
    if (s->req.user_free != NULL && s->req.user != NULL)
        s->req.user_free(s->req.user);
    free(s->buf);
    free(s);
    *con_cls = NULL;
}

bool bg_httpd_tls_supported(void)
{
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* Can this build serve the HTTPS that o asks for? BG_OK, or BG_EINVAL with err filled. */
static int tls_check(const struct bg_httpd_opts *o, char *err, size_t errlen)
{
    if (o->cert_pem == NULL || o->key_pem == NULL) {
        snprintf(err, errlen, "TLS needs both a certificate and a key");
        return BG_EINVAL;
    }
    if (!bg_httpd_tls_supported()) {
        snprintf(err, errlen,
                 "this libmicrohttpd was built without TLS (GnuTLS): cannot serve "
                 "HTTPS");
        return BG_EINVAL;
    }
    return BG_OK;
}

int bg_httpd_start(struct bg_httpd *h, const struct bg_httpd_opts *o, bg_httpd_handler handler,
                   void *ctx, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    h->handler = handler;
    h->ctx = ctx;
    struct sockaddr_storage ss;
    if (bg_net_resolve(o->listen, false, &ss, NULL, err, errlen) != 0)
        return BG_EINVAL;
    bool tls = o->cert_pem != NULL || o->key_pem != NULL;
    if (tls && tls_check(o, err, errlen) != BG_OK)
        return BG_EINVAL;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    uint16_t port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    /* The limits keep one peer from holding every connection (and descriptor): beyond
     * max_conns_per_ip its new connections are closed at once, whoever else is served. */
    unsigned per_ip = o->max_conns_per_ip ? o->max_conns_per_ip : 64;
    unsigned total = o->max_conns ? o->max_conns : 1024;
    unsigned idle = o->idle_timeout_s ? o->idle_timeout_s : 30;
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
    if (tls) {
        /* MHD copies neither: the PEM texts must outlive the daemon (they live in the conf). */
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->cert_pem};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->key_pem};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    h->d = MHD_start_daemon(flags, port, NULL, NULL, access_cb, h, MHD_OPTION_SOCK_ADDR, &ss,
                            MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, idle, MHD_OPTION_CONNECTION_LIMIT, total,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_ARRAY, tls_opts,
                            MHD_OPTION_END);
    if (h->d == NULL) {
        if (tls)
            snprintf(err, errlen,
                     "cannot serve HTTPS on %s (address in use or not local, or a bad "
                     "certificate or key: see the line above)",
                     o->listen);
        else
            snprintf(err, errlen, "cannot listen on %s (address in use or not local?)", o->listen);
        return BG_EINVAL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    h->fd = di ? di->epoll_fd : -1;
    bg_info("http_listen",
            "listen=%s tls=%s max_connections_per_ip=%u max_connections=%u "
            "idle_timeout_s=%u",
            o->listen, tls ? "true" : "false", per_ip, total, idle);
    return BG_OK;
}

void bg_httpd_stop(struct bg_httpd *h)
{
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    h->d = NULL;
    h->fd = -1;
}

void bg_httpd_run(struct bg_httpd *h)
{
    if (h->d != NULL)
        MHD_run(h->d);
}

int64_t bg_httpd_timeout(struct bg_httpd *h)
{
    MHD_UNSIGNED_LONG_LONG t = 0;
    if (h->d == NULL || MHD_get_timeout(h->d, &t) != MHD_YES)
        return -1;
    return (int64_t)t;
}

enum MHD_Result bg_httpd_reply(struct MHD_Connection *c, unsigned code, const char *ctype,
                               const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result bg_httpd_reply_take(struct MHD_Connection *c, unsigned code, const char *ctype,
                                    char *body)
{
    enum MHD_Result r = bg_httpd_reply(c, code, ctype, body);
    free(body);
    return r;
}

const char *bg_httpd_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}
