/* httpd.h -- libmicrohttpd glue: a server driven from our own main loop (no MHD threads). */
#ifndef BG_HTTPD_H
#define BG_HTTPD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_HTTPD_MAX_BODY 65536

/* A request as seen by a handler: method, url, body (complete), peer address text. */
struct bg_httpd_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const char *body;
    size_t body_len;
    bool body_too_large;
    char peer[64]; /* client IP address, no port */
    void *user;    /* per-request state a handler may keep across suspend/resume */
    void (*user_free)(void *user);
};

/* Return an MHD result; called once the whole body is in. A handler may suspend the
 * connection (MHD_suspend_connection) and answer later when it is resumed: it is then called
 * again with the same req (req->user kept). */
typedef enum MHD_Result (*bg_httpd_handler)(void *ctx, struct bg_httpd_req *req);

struct bg_httpd {
    struct MHD_Daemon *d;
    int fd; /* epoll fd to poll for POLLIN */
    bg_httpd_handler handler;
    void *ctx;
};

/* How to serve. Zero limits take the defaults (64 per IP, 1024 in all, 30 s idle). */
struct bg_httpd_opts {
    const char *listen;   /* "host:port" (IPv4 or IPv6 literal, or "localhost") */
    const char *cert_pem; /* PEM certificate (chain) and key: HTTPS; both NULL: plain HTTP */
    const char *key_pem;
    unsigned max_conns_per_ip; /* beyond, a peer's new connections are closed at once */
    unsigned max_conns;        /* beyond, new connections wait in the listen backlog */
    unsigned idle_timeout_s;   /* a connection idle this long is closed */
};

/* Whether this libmicrohttpd can serve HTTPS (Debian's is built with GnuTLS). */
bool bg_httpd_tls_supported(void);

/* Listen as o says. Returns 0 or negative with a message in err. */
int bg_httpd_start(struct bg_httpd *h, const struct bg_httpd_opts *o, bg_httpd_handler handler,
                   void *ctx, char *err, size_t errlen);
void bg_httpd_stop(struct bg_httpd *h);
/* Run pending work; never blocks. */
void bg_httpd_run(struct bg_httpd *h);
/* Milliseconds until MHD wants to run again, or -1 for no deadline. */
int64_t bg_httpd_timeout(struct bg_httpd *h);
/* Queue a response with the given body and content type (copied). */
enum MHD_Result bg_httpd_reply(struct MHD_Connection *c, unsigned code, const char *ctype,
                               const char *body);
/* The value of header name, or NULL. */
/* bg_httpd_reply(c, code, ctype, body), then free(body): body is taken (malloc'd, not NULL). */
enum MHD_Result bg_httpd_reply_take(struct MHD_Connection *c, unsigned code, const char *ctype,
                                    char *body);
const char *bg_httpd_header(struct MHD_Connection *c, const char *name);

#endif
