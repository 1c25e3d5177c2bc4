/* agent.h -- bg-agent: registers one instance and applies UP/OUT_OF_SERVICE to its backends. */
#ifndef BG_AGENT_H
#define BG_AGENT_H

#include "backend.h"
#include "check.h"
#include "conf.h"
#include "httpd.h"
#include "prom.h"
#include "zk.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

enum bg_status { BG_STATUS_OUT = 0, BG_STATUS_UP = 1 };

#define BG_PENDING 1 /* a backend's apply is still in progress */

const char *bg_status_name(enum bg_status s);

struct bg_agent;
struct bg_backend;
struct bg_confirm;

/* ---------------------------------------------------------------------------------------
 * Backends. Each applies a status to one registry or balancer; its type (conf/backend.h) is one
 * file, agent/backend_<type>.c, listed in agent/backends.c. apply() may finish at once
 * (0), fail (<0, reason in b->msg) or go on in the background (BG_PENDING), in which case
 * the agent calls progress() on every loop turn until it returns 0 or <0.
 * ------------------------------------------------------------------------------------ */
struct bg_backend_ops {
    int (*init)(struct bg_backend *b, char *err, size_t errlen);
    int (*apply)(struct bg_backend *b, enum bg_status st);
    int (*progress)(struct bg_backend *b, int64_t now);
    /* Give up an apply in progress (superseded or shutting down). May be NULL. */
    void (*cancel)(struct bg_backend *b);
    /* Add file descriptors to poll; returns how many were written (at most max). */
    int (*fds)(struct bg_backend *b, struct pollfd *pfd, int max);
    /* Called with the entries fds() filled, after poll. */
    void (*on_fds)(struct bg_backend *b, struct pollfd *pfd, int n);
    /* Monotonic ms when the backend wants tick(), or 0 for none. */
    int64_t (*deadline)(struct bg_backend *b);
    void (*tick)(struct bg_backend *b, int64_t now);
    /* SIGTERM: leave the registry (e.g. deregister). May be NULL. */
    void (*shutdown)(struct bg_backend *b);
    void (*destroy)(struct bg_backend *b);
    /* The confirmation tracker of a backend that confirms through balancers' polls (health,
     * haproxy-agent); NULL (or a NULL member) for the others. */
    struct bg_confirm *(*confirm)(struct bg_backend *b);
};

struct bg_backend {
    const struct bg_backend_ops *ops;
    const struct bg_backend_conf *conf;
    struct bg_agent *agent;
    void *priv;
    /* Result of the last apply, shown by GET /v1/status. */
    int rc;        /* 0 ok, BG_PENDING, <0 failed */
    char msg[512]; /* reason or note ("confirmed by 2 polls", "unconfirmed", ...) */
    enum bg_status last_status;
    int64_t last_wall_ms;
    int64_t started_ms;
    /* Monotonic ms by which the caller wants an answer (0: none): confirmation waits stop
     * there and report "unconfirmed" rather than let the caller time out. */
    int64_t deadline_ms;
    struct bg_prom_hist apply_seconds; /* each apply, started to done (ok or failed) */
};

/* The settings (struct bg_backend_conf's settings) of the types whose settings are read outside
 * their own file, by tests/unit/test_conf.c (Eureka's: eureka_job.h). A type nobody else reads
 * keeps its settings struct in its file. */
struct bg_health_conf {
    struct bg_confirm_conf confirm; /* confirm_polls default 3 (HAProxy's max(rise 2, fall 3)) */
    int out_of_service_code;        /* what GET /health answers while OUT_OF_SERVICE with a healthy
                                     * application: 503 (default) or 404 (HAProxy's "http-check
                                     * disable-on-404": a running server answering 404 is put in NOLB
                                     * at once, without fall, and back UP at once). A failing
                                     * application is always answered 503. */
};
struct bg_haproxy_agent_conf {
    struct bg_confirm_conf confirm; /* confirm_polls default 1: HAProxy acts on the word at once */
    char *listen;                   /* required "host:port" */
};
struct bg_exec_conf {
    char **argv;        /* "command": a string split on white space, or a list; required */
    size_t argc;        /* argv[argc] is NULL, ready for execv */
    int64_t timeout_ms; /* default 10s */
};

/* The name of b's type, the value of "type" ("health", "exec", ...). */
static inline const char *bg_backend_name(const struct bg_backend *b)
{
    return b->conf->type->name;
}

/* The health backend's view, read by the HTTP handler for GET /health. */
bool bg_health_is_up(struct bg_backend *b);
/* What GET /health answers now, healthy being the application's verdict: 200, 503, or 404
 * while OUT_OF_SERVICE and healthy with out_of_service_code 404 (bg_health_answer_code). */
int bg_health_code(struct bg_backend *b, bool healthy);
/* Record that peer polled /health (user_agent and send_state: its User-Agent and
 * X-Haproxy-Server-State headers, NULL when absent) and was answered with st. */
void bg_health_polled(struct bg_backend *b, const char *peer, const char *user_agent,
                      const char *send_state, enum bg_status st);

/* ---------------------------------------------------------------------------------------
 * The agent.
 * ------------------------------------------------------------------------------------ */
struct bg_waiter; /* a suspended PUT /v1/status waiting for its transition */

struct bg_agent {
    struct bg_agent_conf *conf;
    struct bg_zk zk;
    struct bg_httpd http;
    struct bg_backend *backends;
    size_t n_backends;
    struct bg_backend *health; /* always present */
    /* The health entry run when agent.yaml writes none: its type's defaults (settings owned). */
    struct bg_backend_conf health_conf;

    enum bg_status status; /* last status asked for (and applied, when !busy) */
    int weight;            /* with it, the weight asked for (0-100; -1: none given) */
    bool applied;          /* every backend applied status */
    int64_t epoch;         /* highest trusted epoch seen (the fence) */
    int64_t epoch_session; /* session in which /election was last read (learn_epoch) */

    /* Live controllers: sequences of the ephemeral members of /election, kept by a watch so
     * that a PUT is judged without a ZooKeeper call (DESIGN §14: a higher epoch is trusted only
     * when it is one of these). */
    int64_t *live;
    size_t n_live;
    bool live_known;           /* live reflects a successful read of /election */
    bool live_reread;          /* an unknown epoch was offered: read /election again */
    unsigned live_seen_events; /* zk.election_events at the last read */
    int64_t live_read_ms;      /* monotonic ms of the last read */

    /* Transition in progress. */
    bool busy;
    enum bg_status target;
    int target_weight;     /* the weight of the transition in progress (-1: none) */
    size_t step;           /* index of the backend being applied */
    int64_t trans_started; /* monotonic ms */
    int64_t deadline_ms;   /* from the request's timeout_ms (0: none) */
    struct bg_waiter *waiters;
    bool resumed; /* a suspended PUT was resumed since the last MHD run */

    /* The application health check; node_stale: the node's "healthy" must be rewritten. */
    struct bg_check check;
    bool node_stale;

    /* Registration. */
    bool registered;
    char node[512];
    int64_t czxid;
    int64_t next_register_ms;

    volatile int stop;
    int64_t started_wall_ms;

    /* Counters for /metrics. */
    unsigned long long n_put, n_put_ok, n_put_stale, n_put_bad, n_put_auth, n_put_failed;
    unsigned long long n_health, n_registrations, n_zk_reopens, n_put_unhealthy, n_put_untrusted;
};

/* The agent's life: init (conf is borrowed and must outlive the agent; opens ZooKeeper in
 * the background, starts the HTTP server and the backends; BG_OK or an error already logged),
 * run (the one loop, on the calling thread, until SIGTERM/SIGINT/SIGHUP: then answers what
 * waits, deregisters within 0.5 s and returns 0), free (after run, or after a failed init:
 * releases everything init took, in reverse order). */
int bg_agent_init(struct bg_agent *a, struct bg_agent_conf *conf);
int bg_agent_run(struct bg_agent *a);
void bg_agent_free(struct bg_agent *a);

/* The application's health verdict (true when no check is configured). */
bool bg_agent_app_healthy(const struct bg_agent *a);

/* HTTP (agent/http.c). */
enum MHD_Result bg_agent_http(void *ctx, struct bg_httpd_req *req);

/* Transitions (agent/transition.c). */
/* Drive the transition in progress as far as it goes without waiting; when it ends, its
 * waiters are answered (200, or 502 naming the backend that failed). Cannot fail. */
void bg_agent_transition_run(struct bg_agent *a);
/* Stop the transition in progress (pending backends are cancelled); its waiters hear 503
 * unless they asked for `spare` (a status; -1: spare none). */
void bg_agent_transition_cancel(struct bg_agent *a, const char *why, int spare);
/* Free every waiter (the agent is going away; their connections are MHD's). */
void bg_agent_waiters_free(struct bg_agent *a);
/* Apply st for a PUT: answers at once when every backend applied it synchronously, else
 * suspends the connection until the transition ends. weight: the PUT's (-1: none); a new
 * weight is a change of its own even when the status stays. */
void bg_agent_request_status(struct bg_agent *a, struct bg_httpd_req *req, enum bg_status st,
                             int weight, int64_t timeout_ms);
/* Answer a resumed PUT with its transition's outcome. */
enum MHD_Result bg_agent_answer_waiter(struct bg_httpd_req *req);
/* True when every balancer that counts confirmed the current change of every confirming
 * backend; *balancers: how many balancers count now. */
bool bg_agent_confirmed(struct bg_agent *a, int *balancers);
/* JSON of the agent's status (caller frees). */
char *bg_agent_status_json(struct bg_agent *a);

/* Pure parsers of untrusted input (agent/parse.c; no I/O, safe on any bytes). */
/* Validate a PUT /v1/status body {"status":"UP"|"OUT_OF_SERVICE","epoch":N[,"timeout_ms":T]}.
 * Returns 0 and fills *st, *epoch, *timeout_ms (0 when absent), or BG_EINVAL with a printable
 * reason in why. body need not be NUL-terminated. */
int bg_agent_parse_put(const char *body, size_t len, enum bg_status *st, int64_t *epoch,
                       int64_t *timeout_ms, char *why, size_t whylen);
/* The optional "weight" of a PUT /v1/status body that bg_agent_parse_put accepted (DESIGN
 * §12): 0 with *weight 0-100 (percent of the instance's configured weight), or -1 when
 * absent (backends answer as before weights existed); BG_EINVAL with a printable reason for
 * anything else. Pure. */
int bg_agent_parse_put_weight(const char *body, size_t len, int *weight, char *why, size_t whylen);
/* How a PUT's epoch is judged against the fence and the live election members. */
enum bg_epoch_verdict {
    BG_EPOCH_ACCEPT,         /* equal to the fence, or a live member's higher one: remember it */
    BG_EPOCH_ACCEPT_NOFENCE, /* higher, and no controller is live: obey, do not raise the fence */
    BG_EPOCH_STALE,          /* lower than the fence: 409 */
    BG_EPOCH_UNKNOWN,        /* higher and not a live member's (a stranger, or a leader elected
                              * since /election was last read): refused, re-read, retry */
};
/* Pure. live: the live members' sequences (n_live of them); live_known: they were read. */
enum bg_epoch_verdict bg_agent_epoch_verdict(int64_t given, int64_t fence, const int64_t *live,
                                             size_t n_live, bool live_known);
/* A PUT's timeout_ms above this is taken as this (a day): no arithmetic on it can overflow. */
#define BG_AGENT_MAX_TIMEOUT_MS 86400000LL
/* Monotonic ms by which to answer a PUT that gives timeout_ms (0: none): a little before the
 * caller gives up, so it hears "unconfirmed" rather than a timeout. Pure; safe for any input. */
int64_t bg_agent_answer_deadline(int64_t now_ms, int64_t timeout_ms);
/* The instance status in a Eureka GET /eureka/apps/{APP}/{ID} answer. Returns 0 with a
 * printable, bounded copy in status, or BG_EINVAL with the reason in why. */
int bg_eureka_parse_instance(const char *body, size_t len, char *status, size_t statuslen,
                             char *why, size_t whylen);

#endif
