/* router.h -- bg-router (DESIGN §13): the daemon (router.c), what crosses its files, and the
 * nginx applier (nginx.c). The pure half is route.h. */
#ifndef BG_ROUTER_H
#define BG_ROUTER_H

#include "child.h"
#include "filewriter.h"
#include "conf.h"
#include "httpd.h"
#include "prom.h"
#include "route.h"
#include "zk.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

/* ----------------------------------------------------------------------------------------
 * A balancer of any kind, as the loop drives it: one change at a time (start, then step until it
 * returns true; its outcome in c), never blocking the loop for long; tick while idle.
 * ------------------------------------------------------------------------------------- */

#define BG_CHANGE_ERROR_MAX 512

/* The change in progress, then its outcome (set when step returns true). */
struct bg_change {
    int64_t gen, started_ms;
    struct bg_route_set pending; /* the set being applied (after: the last one tried) */
    bool ok;
    char error[BG_CHANGE_ERROR_MAX]; /* why it failed ("" when ok) */
    bool confirmed;                  /* ok and seen live in the balancer */
    int64_t ms;                      /* how long it took */
};

struct bg_balancer;
struct bg_balancer_ops {
    const char *kind; /* router.kind */
    /* Start applying set as generation gen: BG_OK (a change runs: drive it with step), or
     * BG_EINVAL when it failed at once (c.error says why; the balancer as it was). */
    int (*start)(struct bg_balancer *b, const struct bg_route_set *set, int64_t gen, int64_t now);
    bool (*step)(struct bg_balancer *b, int64_t now); /* true once the change is over */
    bool (*busy)(const struct bg_balancer *b);
    /* Add the fds a running change waits on to pfd[n..max); returns the new n. */
    int (*fds)(const struct bg_balancer *b, struct pollfd *pfd, int n, int max);
    /* Monotonic ms when step (or tick) should run next (INT64_MAX: nothing due). */
    int64_t (*deadline)(const struct bg_balancer *b, int64_t now);
    /* Idle housekeeping; true when the balancer no longer serves serving (restarted, changed
     * by hand): the loop applies it again. May be NULL. */
    bool (*tick)(struct bg_balancer *b, const struct bg_route_set *serving, int64_t now);
    void (*free)(struct bg_balancer *b); /* also stops a running change, the old state kept */
    /* Whether this kind can serve s (else why says so: it is left out and logged). May be NULL:
     * every server of the desired set is. */
    bool (*usable)(const struct bg_route_server *s, char *why, size_t whylen);
};
struct bg_balancer {
    const struct bg_balancer_ops *ops;
    struct bg_change c;
    /* Called every BG_BALANCER_HOOK_MS while a kind waits for its balancer (the router answers
     * HTTP there); false: the router is stopping, give up. NULL: none. */
    bool (*wait_hook)(void *ctx);
    void *wait_ctx;
};

#define BG_BALANCER_HOOK_MS 50

/* ----------------------------------------------------------------------------------------
 * nginx.c: one change at a time, as a state machine the main loop drives (never blocking it
 * for longer than one confirmation request, BG_NGINX_ASK_MS):
 *   render -> write <file>.bg-new, fsync -> link <file> to <file>.bg-prev -> rename the new
 *   file over <file>, fsync the directory -> run test (the whole configuration, the new file
 *   in place) -> on failure rename <file>.bg-prev back (the old file is kept) -> run reload ->
 *   with nginx.confirm, ask nginx for the generation (a new connection each time) until it
 *   answers the new one BG_NGINX_CONFIRM_STREAK times in a row.
 * ------------------------------------------------------------------------------------- */

#define BG_NGINX_ASK_MS 200       /* one confirmation request's timeout */
#define BG_NGINX_ASK_EVERY 50     /* between confirmation requests */
#define BG_NGINX_CONFIRM_STREAK 3 /* answers of the new generation in a row that confirm */

enum bg_nginx_state {
    BG_NGINX_IDLE = 0,
    BG_NGINX_TESTING,
    BG_NGINX_RELOADING,
    BG_NGINX_CONFIRMING
};

struct bg_nginx {
    struct bg_balancer b;             /* first: a struct bg_balancer * is a struct bg_nginx * */
    const struct bg_nginx_conf *conf; /* borrowed */
    const char *router_id;            /* borrowed */
    enum bg_nginx_state state;
    struct bg_child *child; /* the test or reload running */
    char *new_path, *prev_path;
    bool had_old; /* <file> existed before the swap: <file>.bg-prev holds it */
    int64_t confirm_until_ms, ask_at_ms;
    int streak; /* answers of the new generation in a row */
};

/* kind nginx (conf->nginx; conf borrowed, must outlive the balancer). Never NULL. */
struct bg_balancer *bg_nginx_make(const struct bg_router_conf *conf);

/* ----------------------------------------------------------------------------------------
 * haproxy.c: kind haproxy, through HAProxy's Runtime API (the stats socket, level admin). A
 * change runs whole inside start (each command bounded by haproxy.timeout; the first failure
 * ends it): `show info` (the process id), `show servers state <backend>`, the commands of
 * hap.c's plan, `show servers state` again to confirm. Idle, tick asks `show info` every
 * haproxy.verify_every: a new process id (HAProxy reloaded: it forgets servers added at run
 * time) makes the router apply again at once; and every BG_HAP_STATE_EVERY_MS a backend that
 * no longer matches (changed by hand) too, and the servers drained by earlier changes are
 * removed once HAProxy lets it (`del server`).
 * ------------------------------------------------------------------------------------- */

#define BG_HAP_ANSWER_MAX (4 * 1024 * 1024)
#define BG_HAP_STATE_EVERY_MS 1000 /* idle: the backend compared (and swept) at most this often */

struct bg_haproxy {
    struct bg_balancer b;
    const struct bg_haproxy_conf *conf; /* borrowed */
    const char *router_id;              /* borrowed */
    long pid;                           /* HAProxy's process when last applied (0: unknown) */
    int64_t verify_at_ms;               /* next show info (every haproxy.verify_every) */
    int64_t state_at_ms;       /* next show servers state while the process stays the same */
    bool warned_sweep;         /* a failed del server was logged (once per change) */
    bool done_pending;         /* a change is over, not yet reported by step */
    struct bg_filewriter file; /* haproxy.file's writer (when set) */
    char file_error[BG_FILEWRITER_ERROR_MAX]; /* its last error, as logged */
};

struct bg_balancer *bg_haproxy_make(const struct bg_router_conf *conf);
/* One Runtime API command on a new connection to socket: *answer (malloc'd, NUL-terminated)
 * receives what HAProxy wrote before closing. BG_OK, or BG_EINVAL with why (cannot connect,
 * timed out after timeout_ms, answer too long, the router stopping). b's wait_hook runs while
 * it waits. */
int bg_haproxy_ask(const struct bg_balancer *b, const char *socket, const char *cmd,
                   int64_t timeout_ms, char **answer, char *why, size_t whylen);

/* ----------------------------------------------------------------------------------------
 * router.c: the daemon.
 * ------------------------------------------------------------------------------------- */

struct bg_router {
    struct bg_router_conf *conf; /* borrowed */
    struct bg_zk zk;
    struct bg_httpd http;
    volatile int stop;

    /* What ZooKeeper says (last read). */
    unsigned seen_events, seen_quiet; /* zk.node_events, zk.quiet_events (/status) read */
    bool need_read;
    struct bg_route_member *m;
    size_t n;
    struct bg_route_up *up;
    size_t n_up;
    bool status_truncated;
    char dropped_note[512]; /* the instances UP but unusable, as last logged */
    struct bg_route_set desired;
    size_t dropped;

    /* What the balancer serves. */
    struct bg_balancer *lb;
    struct bg_route_set serving;
    int64_t generation; /* of serving (0: nothing applied yet) */
    int64_t last_gen;   /* the last generation started */
    bool retry;         /* the last change failed: apply again at retry_at_ms */
    bool reapply;       /* the balancer lost what it served (tick said so): apply again */
    int64_t retry_at_ms;
    int failures; /* consecutive failed changes (backoff) */
    char last_error[BG_CHANGE_ERROR_MAX];
    char note[256]; /* why nothing is applied now ("" when nothing to say) */

    /* /routers/<id> */
    char node[600];
    bool publish_dirty;
    int64_t node_session;  /* the session our node was created in (0: none) */
    int64_t publish_at_ms; /* not before (another session holds the node: retried each 1 s) */
    bool node_taken;       /* that was logged */

    /* /metrics */
    unsigned long long n_reads, n_member_reads, n_applies, n_apply_failures;
    unsigned long long n_reapplies; /* the balancer lost what it served (tick said so) */
    struct bg_prom_hist apply_seconds;
};

/* The router's life, as the other daemons': init (conf borrowed; starts HTTP when http.listen is
 * set and opens ZooKeeper in the background; BG_OK or an error already logged), run (the loop,
 * until SIGTERM/SIGINT/SIGHUP; returns 0), free (after run, or after a failed init). */
int bg_router_init(struct bg_router *r, struct bg_router_conf *conf);
int bg_router_run(struct bg_router *r);
void bg_router_free(struct bg_router *r);

/* http.c: GET /health and /metrics. */
int bg_router_http_start(struct bg_router *r);

#endif
