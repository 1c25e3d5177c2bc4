/* zk.h -- one ZooKeeper session per daemon: watchers only wake the main loop. */
#ifndef BG_ZK_H
#define BG_ZK_H

#include "prom.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <zookeeper/zookeeper.h>

struct zk_ctx;
struct zk_call;
#define BG_ZK_LATE_MAX 16    /* calls kept for their late answers (zk.c) */
#define BG_ZK_ENSURED_MAX 16 /* paths bg_zk_ensure knows to exist */

/* Issue 9: no daemon may be unresponsive (to SIGTERM, to /health) for longer than a second,
 * whatever ZooKeeper or DNS do. So the calls below (the library's asynchronous calls, waited
 * for on a condition variable) run the daemon's wait hook every BG_ZK_HOOK_SLICE_MS while an
 * answer is due: HTTP is answered meanwhile, and a stop gives the call up
 * (ZOPERATIONTIMEOUT, which callers treat as a lost connection). Slow answers still get
 * through. Without a hook (bgctl; a daemon's last deregistration) a call waits at most what
 * is left of BG_ZK_BUDGET_MS since the last bg_zk_tick(), then returns ZOPERATIONTIMEOUT; the
 * call stays in flight and the same call on a later turn takes its answer (if fresh) instead
 * of asking again. Opening a session (zookeeper_init resolves the host names, which may
 * stall) and closing one (which may wait for the server) run on a helper thread. */
#define BG_ZK_BUDGET_MS 500
/* How long bg_zk_close waits for the library to close the session before leaving it to the
 * process exit (the ephemeral nodes then go when the session times out). */
#define BG_ZK_CLOSE_WAIT_MS 300

/* What the main loop should make of the session right now. */
enum bg_zk_health {
    BG_ZK_CONNECTED = 0, /* session established and connected */
    BG_ZK_CONNECTING,    /* connection lost, session may still be alive: do not act */
    BG_ZK_LOST,          /* expired, auth failed, or CONNECTING longer than the session
                          * timeout: ephemerals and leadership must be presumed gone */
};

struct bg_zk {
    zhandle_t *zh;
    char *connect;
    char *root; /* "" for "/", else "/a/b" without a trailing slash */
    char *auth; /* "user:pass" digest credentials or NULL */
    int timeout_ms;
    int wake_fd; /* eventfd: readable when a watcher fired; owned by this struct */
    /* Written by the library's completion thread, read by the main loop. */
    atomic_int state;            /* last ZOO_*_STATE seen by the watcher */
    atomic_bool fatal;           /* session expired or auth failed */
    atomic_uint node_events;     /* count of node (non-session) watch events */
    atomic_uint data_events;     /* of those, data changes of instance nodes (/blue/x, /green/x) */
    atomic_uint election_events; /* of those, events on <root>/election (children, creation) */
    /* Opening on the helper thread (opening: it runs; its result is in opening_ctx). Each
     * handle has a context of its own (zk.c); closing_ctx is the previous handle's, which
     * the opener closes first. */
    pthread_t opener;
    atomic_bool opening;
    struct zk_ctx *ctx, *opening_ctx, *closing_ctx;
    atomic_uint live_generation; /* the handle whose events count */
    int64_t open_retry_ms;       /* monotonic ms before which a failed open is not retried */
    /* Main loop only. */
    bool (*wait_hook)(void *ctx); /* run every BG_ZK_HOOK_SLICE_MS while a call waits */
    void *wait_ctx;
    bool in_hook;
    int64_t tick_waited_ms;               /* time spent waiting for answers since bg_zk_tick */
    bool ticking;                         /* bg_zk_tick was called: calls are budgeted */
    unsigned long n_call_timeouts;        /* calls that returned ZOPERATIONTIMEOUT */
    struct bg_prom_hist call_seconds;     /* each call, submitted to answered or given up */
    struct zk_call *late[BG_ZK_LATE_MAX]; /* timed-out calls whose answers a retry takes */
    int n_late;
    char *ensured[BG_ZK_ENSURED_MAX]; /* persistent paths bg_zk_ensure made or found */
    int n_ensured;
    int64_t connecting_since; /* monotonic ms when a disconnect was first seen; 0 if none */
    int64_t last_connected;   /* monotonic ms of the last time we saw CONNECTED */
    int64_t session_id;       /* of the current session, 0 before it is established */
    unsigned generation;      /* bumped by each bg_zk_reopen */
    /* Data changes of this node (absolute path) do not count as events: set once, before any
     * watch on it is set, by a daemon that writes the node itself. */
    char quiet_path[512];
    atomic_uint quiet_events; /* data changes of quiet_path */
};

/* Open a session (asynchronous connect). Returns 0 or a negative error. */
int bg_zk_open(struct bg_zk *z, const char *connect, const char *root, int timeout_ms,
               const char *auth);
/* Close the session (deletes our ephemerals at once, if the server answers within
 * BG_ZK_CLOSE_WAIT_MS) and free everything. A zeroed struct (never opened) or one already
 * closed is left alone. */
void bg_zk_close(struct bg_zk *z);
/* Close the handle and open a new session with the same parameters. */
int bg_zk_reopen(struct bg_zk *z);
/* Drain the wake fd; call after poll() says it is readable. */
void bg_zk_drain(struct bg_zk *z);
/* Poke the main loop from any thread or signal handler. */
void bg_zk_wake(struct bg_zk *z);
/* Classify the session; also tracks how long it has been disconnected. */
enum bg_zk_health bg_zk_check(struct bg_zk *z);
/* While a call waits for its answer, run hook(ctx) every BG_ZK_HOOK_SLICE_MS: the daemon
 * answers HTTP meanwhile, and the hook returning false (stopping) gives the call up
 * (ZOPERATIONTIMEOUT). ZooKeeper calls made from the hook fail at once. With a hook, calls
 * wait as long as the library lets them (it fails them when the connection is lost) and the
 * turn's budget does not apply: slow answers still get through. */
#define BG_ZK_HOOK_SLICE_MS 50
void bg_zk_set_wait_hook(struct bg_zk *z, bool (*hook)(void *ctx), void *ctx);
/* Wait on cv (mu held by the caller, and held again on return) until done(arg), as the calls
 * below wait for their answers: running the wait hook every BG_ZK_HOOK_SLICE_MS, or within
 * what is left of the turn's budget without one. For batches of asynchronous calls made
 * with zh directly. Returns done(arg). */
bool bg_zk_wait_until(struct bg_zk *z, pthread_mutex_t *mu, pthread_cond_t *cv,
                      bool (*done)(void *arg), void *arg);
/* A new turn of the main loop: the calls' time budget starts again. */
void bg_zk_tick(struct bg_zk *z);
/* Bounded versions of the library's synchronous calls (same arguments and results, but
 * ZOPERATIONTIMEOUT when the budget ran out and ZCONNECTIONLOSS while no session is open).
 * st may be NULL for exists/set2; out may be NULL for create. */
int bg_zk_get(struct bg_zk *z, const char *path, int watch, char *buf, int *len, struct Stat *st);
int bg_zk_exists(struct bg_zk *z, const char *path, int watch, struct Stat *st);
int bg_zk_children(struct bg_zk *z, const char *path, int watch, struct String_vector *kids);
int bg_zk_children2(struct bg_zk *z, const char *path, int watch, struct String_vector *kids,
                    struct Stat *st);
int bg_zk_create(struct bg_zk *z, const char *path, const char *data, int len,
                 const struct ACL_vector *acl, int flags, char *out, int outlen);
int bg_zk_set2(struct bg_zk *z, const char *path, const char *data, int len, int version,
               struct Stat *st);
int bg_zk_delete(struct bg_zk *z, const char *path, int version);
/* Our session id (0 when none is established). */
int64_t bg_zk_session(struct bg_zk *z);
/* Wait (polling the wake fd) until connected or timeout_ms passes. */
int bg_zk_wait_connected(struct bg_zk *z, int64_t timeout_ms);
/* Absolute path for a path relative to the root ("/active_color" -> "/svc/active_color"). */
void bg_zk_path(const struct bg_zk *z, const char *rel, char *buf, size_t len);
/* The ACL for nodes this daemon creates: open without credentials; with zookeeper.auth,
 * ALL for the authenticated creator and READ for anyone. */
const struct ACL_vector *bg_zk_acl(const struct bg_zk *z);
/* Create the root and a persistent node at rel and all its parents (ignores NODEEXISTS). */
int bg_zk_ensure(struct bg_zk *z, const char *rel);
const char *bg_zk_state_name(int state);

/* A live controller: an ephemeral member-<seq> child of /election. */
struct bg_election_member {
    int64_t seq;
    int64_t owner; /* the session that holds it */
    char name[32];
};
/* The live election members, sorted by sequence (*out malloc'd, caller frees; may be NULL when
 * *n is 0). Children that are not member-<digits>, or that are persistent (made by hand:
 * ephemeralOwner 0; logged as a warning naming them), are left out: only a live controller's
 * node can lead or vouch for an epoch. watch: leave a child watch on /election (an exists watch
 * when it is missing). Returns ZOK (a missing /election is ZOK with *n 0) or the ZooKeeper
 * error. */
int bg_zk_election_members(struct bg_zk *z, int watch, struct bg_election_member **out, size_t *n);

#endif
