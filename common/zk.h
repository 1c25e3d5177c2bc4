/* zk.h -- one ZooKeeper session per daemon: watchers only wake the main loop. */
#ifndef BG_ZK_H
#define BG_ZK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <zookeeper/zookeeper.h>

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
    /* Main loop only. */
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
/* Close the session (deletes our ephemerals at once) and free everything. */
void bg_zk_close(struct bg_zk *z);
/* Close the handle and open a new session with the same parameters. */
int bg_zk_reopen(struct bg_zk *z);
/* Drain the wake fd; call after poll() says it is readable. */
void bg_zk_drain(struct bg_zk *z);
/* Poke the main loop from any thread or signal handler. */
void bg_zk_wake(struct bg_zk *z);
/* Classify the session; also tracks how long it has been disconnected. */
enum bg_zk_health bg_zk_check(struct bg_zk *z);
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
