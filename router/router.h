/* router.h -- bg-router (DESIGN §13): the daemon (router.c), what crosses its files, and the
 * nginx applier (nginx.c). The pure half is route.h. */
#ifndef BG_ROUTER_H
#define BG_ROUTER_H

#include "child.h"
#include "conf.h"
#include "httpd.h"
#include "prom.h"
#include "route.h"
#include "zk.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

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
#define BG_NGINX_ERROR_MAX 512

enum bg_nginx_state {
    BG_NGINX_IDLE = 0,
    BG_NGINX_TESTING,
    BG_NGINX_RELOADING,
    BG_NGINX_CONFIRMING
};

struct bg_nginx {
    const struct bg_nginx_conf *conf; /* borrowed */
    const char *router_id;            /* borrowed */
    enum bg_nginx_state state;
    struct bg_child *child; /* the test or reload running */
    char *new_path, *prev_path;
    bool had_old; /* <file> existed before the swap: <file>.bg-prev holds it */
    int64_t gen;  /* generation of the change in progress */
    int64_t started_ms, confirm_until_ms, ask_at_ms;
    int streak;                  /* answers of the new generation in a row */
    struct bg_route_set pending; /* the set being applied (after: the last one tried) */
    /* Outcome of the last change (set when bg_nginx_step returns true). */
    bool ok;
    char error[BG_NGINX_ERROR_MAX]; /* why it failed ("" when ok) */
    bool confirmed;                 /* ok and the generation answered through nginx */
    int64_t ms;                     /* how long it took */
};

/* conf and router_id are borrowed and must outlive x. */
void bg_nginx_init(struct bg_nginx *x, const struct bg_nginx_conf *conf, const char *router_id);
/* Start applying set as generation gen. Returns BG_OK (a change is running: drive it with
 * bg_nginx_step), or BG_EINVAL when it failed at once (nothing rendered, the file untouched or
 * restored); x->error says why. */
int bg_nginx_start(struct bg_nginx *x, const struct bg_route_set *set, int64_t gen, int64_t now);
/* Advance the running change; returns true once it is over (x->ok, x->error, x->confirmed). */
bool bg_nginx_step(struct bg_nginx *x, int64_t now);
bool bg_nginx_busy(const struct bg_nginx *x);
/* Add the running child's fds to pfd[n..max); returns the new n. */
int bg_nginx_fds(const struct bg_nginx *x, struct pollfd *pfd, int n, int max);
/* Monotonic ms when bg_nginx_step should run next (INT64_MAX: nothing due). */
int64_t bg_nginx_deadline(const struct bg_nginx *x, int64_t now);
/* Stop a running child and restore the old file when the test had not passed. */
void bg_nginx_free(struct bg_nginx *x);

/* ----------------------------------------------------------------------------------------
 * router.c: the daemon.
 * ------------------------------------------------------------------------------------- */

struct bg_router {
    struct bg_router_conf *conf; /* borrowed */
    struct bg_zk zk;
    struct bg_httpd http;
    volatile int stop;

    /* What ZooKeeper says (last read). */
    unsigned seen_events;
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
    struct bg_nginx ng;
    struct bg_route_set serving;
    int64_t generation; /* of serving (0: nothing applied yet) */
    int64_t last_gen;   /* the last generation started */
    bool retry;         /* the last change failed: apply again at retry_at_ms */
    int64_t retry_at_ms;
    int failures; /* consecutive failed changes (backoff) */
    char last_error[BG_NGINX_ERROR_MAX];
    char note[256]; /* why nothing is applied now ("" when nothing to say) */

    /* /routers/<id> */
    char node[600];
    bool publish_dirty;
    int64_t node_session;  /* the session our node was created in (0: none) */
    int64_t publish_at_ms; /* not before (another session holds the node: retried each 1 s) */
    bool node_taken;       /* that was logged */

    /* /metrics */
    unsigned long long n_reads, n_applies, n_apply_failures;
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
