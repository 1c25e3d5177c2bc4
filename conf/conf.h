/* conf.h -- agent.yaml, controller.yaml and router.yaml: loading (libyaml) and validation. */
#ifndef BG_CONF_H
#define BG_CONF_H

#include "httpd.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Every message is "file:line:column: what was wrong, what was expected" (1-based), e.g.
 * "controller.yaml:3:15: switch.batch_size: expected an integer >= 1, got "abc"", sorted by
 * position. A file that cannot be read at all gives "file: cannot open: <strerror>" (or "cannot
 * read" for a directory or a file over 1 MiB). Start from a zeroed struct; loading appends to it
 * (errs may be NULL: the messages are then dropped). */
struct bg_conf_errors {
    char **msgs;
    size_t n;
    /* Warnings about a valid configuration that runs but is unsafe, e.g. no zookeeper.auth.
     * Also "file:line:column: key: text"; event is the log event name for the same warning
     * (e.g. "zookeeper_auth_unset"). Filled on success too; freed with the messages. */
    struct bg_conf_warning {
        char *event;
        char *msg;
    } * warns;
    size_t n_warns;
};
void bg_conf_errors_free(struct bg_conf_errors *e);
/* Print every message, one per line, to f. */
void bg_conf_errors_print(const struct bg_conf_errors *e, FILE *f);
/* Print every warning as "file:line:column: warning: key: text", one per line, to f. */
void bg_conf_warnings_print(const struct bg_conf_errors *e, FILE *f);
/* Log every warning: one "level=warn event=<event> reason=..." line each. */
void bg_conf_warnings_log(const struct bg_conf_errors *e);

struct bg_zk_conf {
    char *connect;          /* required */
    char *root;             /* default "/" */
    int session_timeout_ms; /* default 4000 */
    char *auth;             /* optional "user:pass" digest credentials */
};

/* Defaults of the HTTP server's limits (http.max_connections_per_ip, ...). */
#define BG_HTTP_MAX_CONNS_PER_IP 64
#define BG_HTTP_MAX_CONNS 1024
#define BG_HTTP_IDLE_TIMEOUT_MS 30000

struct bg_http_conf {
    char *listen;     /* "host:port" */
    char *token_file; /* optional; required when listen is not a loopback address */
    char *token;      /* contents of token_file, trimmed; NULL when no token_file */
    bool insecure;    /* default false: true allows a non-loopback listen without a token */
    char *tls_cert;   /* tls.cert: PEM certificate (chain) file; NULL: plain HTTP */
    char *tls_key;    /* tls.key: PEM private key file; set exactly when tls_cert is */
    char *tls_cert_pem, *tls_key_pem; /* their contents, read at load */
    char *ca_file; /* controller only: PEM CA bundle to verify https:// agents with; NULL:
                    * the system store */
    int max_connections_per_ip; /* default BG_HTTP_MAX_CONNS_PER_IP */
    int max_connections;        /* default BG_HTTP_MAX_CONNS */
    int64_t idle_timeout_ms;    /* default BG_HTTP_IDLE_TIMEOUT_MS, whole seconds (rounded up) */
    /* What bg_httpd_start needs, pointing into this struct (valid while it is). */
    struct bg_httpd_opts server;
};

/* A backends[] entry of agent.yaml. What a type is (its keys, its loading, what runs it) is
 * its descriptor, struct bg_backend_type (conf/backend.h), defined in that type's one file
 * agent/backend_<type>.c and listed in agent/backends.c; its settings are a struct of that file,
 * made by the descriptor's make, filled by its load, released by its free (bg_conf_free_agent).
 * type is NULL (and settings NULL) for an entry whose type was wrong: the load failed. */
struct bg_backend_type;
struct bg_backend_conf {
    const struct bg_backend_type *type;
    int line;       /* 1-based line of the entry, for messages */
    void *settings; /* the type's own settings (e.g. struct bg_exec_conf) */
};

struct bg_instance_conf {
    char *id;            /* required; [A-Za-z0-9._-]{1,128} */
    enum bg_color color; /* required */
    char *endpoint;      /* default "http://" + http.listen */
    char *app;           /* default "APP" */
    char *version;       /* default "" */
    char *address;       /* optional "host:port" where the application takes traffic */
};

/* The application health check (DESIGN §11). */
enum bg_check_type { BG_CHECK_NONE = 0, BG_CHECK_HTTP, BG_CHECK_TCP, BG_CHECK_EXEC };

struct bg_check_conf {
    enum bg_check_type type; /* BG_CHECK_NONE without "check:": the application counts healthy */
    char *http;              /* http: URL; healthy = 2xx within timeout */
    char *tcp;               /* tcp: "host:port"; healthy = connect succeeds within timeout */
    char **argv;             /* exec: healthy = exit 0 within timeout; argv[argc] is NULL */
    size_t argc;
    int64_t interval_ms; /* default 1000: from the start of one check to the next */
    int64_t timeout_ms;  /* default 1000, > 0 (may exceed interval: checks never overlap) */
    int rise;            /* default 2: consecutive passes before healthy */
    int fall;            /* default 3: consecutive failures before unhealthy */
    int line;            /* 1-based line of the check mapping, for messages */
};

struct bg_agent_conf {
    char *path;
    struct bg_zk_conf zk;
    struct bg_instance_conf instance;
    struct bg_http_conf http;         /* http.listen required */
    struct bg_backend_conf *backends; /* in the order written; a health entry is optional */
    size_t n_backends;
    struct bg_check_conf check;
};

struct bg_switch_conf {
    int batch_size;                 /* default 0: every call of a phase at once (started in order,
                                     * confirmations overlap); N >= 1: N at a time (gradual moves) */
    int min_ready;                  /* default 1, >= 0 */
    int64_t settle_ms;              /* default 0 */
    int64_t call_timeout_ms;        /* default 2000 */
    int retries;                    /* default 3, >= 0 */
    int64_t resync_ms;              /* default 30000; 0 disables */
    int64_t backoff_ms;             /* default 100: first retry delay, doubled each time */
    int64_t min_healthy_time_ms;    /* default 0: a desired-colour instance must have been healthy
                                     * this long before it is marked UP */
    bool unconfirmed_proceed;       /* default false ("hold"): a change an agent reports unconfirmed
                                     * by a balancer holds the switch; true ("proceed"): ignored */
    int64_t unconfirmed_timeout_ms; /* default 60000: held this long, the switch says blocked
                                     * (it goes on holding and asking) */
};

struct bg_controller_conf {
    char *path;
    struct bg_zk_conf zk;
    struct bg_switch_conf sw;
    struct bg_http_conf http; /* optional: listen may be NULL */
    char *id;                 /* default hostname-pid */
};

/* router.yaml (DESIGN §13). */
enum bg_router_kind { BG_ROUTER_NGINX = 0, BG_ROUTER_HAPROXY };

struct bg_haproxy_conf {
    char *socket;       /* required: the Runtime API's unix socket (stats socket, level admin) */
    char *backend;      /* required: the backend whose servers the router owns */
    int64_t timeout_ms; /* default 1000: one command's answer */
    int64_t verify_every_ms; /* default 100: HAProxy's process id checked when idle */
    char *file;              /* optional: the backend section kept as served (HAProxy loads it:
                              * a reload keeps the servers) */
    char **options;          /* the section's lines before the servers (with file; default
                              * "balance roundrobin") */
    size_t n_options;
};

struct bg_nginx_conf {
    char *upstream; /* required: name of the rendered upstream block ([A-Za-z0-9._-]) */
    char *file;     /* required: the file the router writes (included by nginx.conf) */
    char **test;    /* default nginx -t: checks the whole configuration, new file in place */
    size_t n_test;
    char **reload; /* default nginx -s reload */
    size_t n_reload;
    char *confirm;              /* optional "host:port": the file also holds a server answering
                                 * the generation there, asked after each reload */
    int64_t confirm_timeout_ms; /* default 5000 */
    int64_t timeout_ms;         /* default 10000: test or reload killed past it */
    char **options;             /* lines of the upstream block before the servers (none) */
    size_t n_options;
};

struct bg_router_conf {
    char *path;
    struct bg_zk_conf zk;
    struct bg_http_conf http;       /* optional: listen may be NULL */
    char *id;                       /* router.id, required: the node /routers/<id> */
    enum bg_router_kind kind;       /* router.kind, required */
    struct bg_nginx_conf nginx;     /* kind nginx */
    struct bg_haproxy_conf haproxy; /* kind haproxy */
};

/* Load and validate. Returns 0, or BG_EINVAL with every problem in errs (caller frees both
 * with the matching free function, also on failure). out need not be initialised; on failure
 * it is left zeroed. Relative token_file paths are opened relative to the working directory. */
int bg_conf_load_agent(const char *path, struct bg_agent_conf *out, struct bg_conf_errors *errs);
int bg_conf_load_controller(const char *path, struct bg_controller_conf *out,
                            struct bg_conf_errors *errs);
void bg_conf_free_agent(struct bg_agent_conf *c);
void bg_conf_free_controller(struct bg_controller_conf *c);
int bg_conf_load_router(const char *path, struct bg_router_conf *out, struct bg_conf_errors *errs);
void bg_conf_free_router(struct bg_router_conf *c);

/* The type's name, the value of "type" ("health", "eureka", ...); "unknown" for NULL. Never
 * NULL. */
const char *bg_backend_type_name(const struct bg_backend_type *t);

#endif
