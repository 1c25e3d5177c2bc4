/* controller.h -- bg-controller: leader election and the reconcile loop (DESIGN §3). */
#ifndef BG_CONTROLLER_H
#define BG_CONTROLLER_H

#include "conf.h"
#include "httpd.h"
#include "page.h"
#include "plan.h"
#include "prom.h"
#include "zk.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct node_entry; /* observe.c */
struct bg_drain;   /* shaping.c */

struct bg_ctl {
    struct bg_controller_conf *conf;
    struct bg_zk zk;
    struct bg_httpd http;
    CURLM *multi;

    /* Election. */
    char election_node[512];
    int64_t epoch; /* our election sequence number */
    bool leader;
    int64_t leader_since_wall;
    /* A standby waiting on its predecessor's watch reads /election again only when a watch
     * fired (zk.node_events), or BG_ELECTION_RECHECK_MS passed (it read it every loop turn,
     * ~17 calls a second, before). */
    bool follower_waiting;
    unsigned election_seen; /* zk.node_events when /election was last read */
    int64_t election_read_ms;

    /* Observed state (leader only). */
    struct bg_member *m;
    size_t n;
    bool need_read;
    bool probe_read; /* the members of the next read are asked their status first (a new
                      * leader knows nothing of them); later ones are told at once */
    unsigned seen_events;
    enum bg_color desired;
    int64_t desired_since_ms; /* monotonic ms when desired last changed (a new switch) */
    char desired_problem[160];
    int64_t active_mzxid;
    struct node_entry *nodes[2]; /* the nodes of /blue and /green as last read (by name) */
    size_t n_nodes[2];
    unsigned seen_node_changes; /* a node changed or a batch of reads was answered since */
    bool fallback;              /* the last plan fell back to the other colour */
    int fallbacks;              /* recent fallbacks (damping: each doubles the hold) */
    int64_t fallback_end_ms;    /* monotonic ms when the last fallback ended (0: none) */

    /* Traffic shaping (shaping.c): /canary and /drain/<id> as last read. */
    struct bg_canary canary;
    bool canary_read;         /* read since we lead: a change after it goes into /history */
    char canary_problem[256]; /* empty: /canary is fine */
    char drain_problem[256];  /* empty: every /drain entry is fine */
    struct bg_drain *drains;  /* the drain entries (ids and reasons) */
    size_t n_drains;
    struct bg_router_view *routers; /* live bg-routers (/routers/<id>), waited for */
    size_t n_routers;
    uint64_t routers_waited; /* the last plan's (bg_plan.routers_waited), for /status */

    /* Outcome of the last plan. */
    enum bg_phase phase;
    char reason[512];
    int64_t phase_since_wall;
    enum bg_color applied; /* colour of the last converged state */
    int64_t last_up_ms;
    int64_t wake_at_ms;

    /* /status */
    int status_version; /* -1: unknown */
    bool status_dirty;
    bool status_urgent;    /* the phase changed: write at once */
    int64_t status_due_ms; /* a coalesced write is due then (0: none) */
    char *last_status;     /* contents last written, without "updated" */
    unsigned seen_quiet;   /* zk.quiet_events already looked at */
    bool deposed;          /* found out while writing /status that someone else leads */
    int64_t status_written_ms;

    /* The switch in progress, for /history. */
    bool in_switch;
    enum bg_color sw_from, sw_to;
    int64_t sw_started_wall;
    json_t *sw_outcome;

    struct bg_page_feed page; /* GET / */

    volatile int stop;
    unsigned long long n_calls, n_call_failures, n_switches, n_passes;
    /* Histograms for /metrics (metrics.c): a switch, seen -> converged; status calls to
     * agents, [0] PUT (tell), [1] GET (probe). */
    struct bg_prom_hist switch_seconds;
    struct bg_prom_hist call_seconds[2];
};

/* The controller's life: init (conf is borrowed and must outlive c; starts the HTTP server
 * and opens ZooKeeper in the background; BG_OK or an error already logged), run (the one loop,
 * on the calling thread: election, observation, reconcile; until SIGTERM/SIGINT/SIGHUP, then
 * leaves the election and returns 0), free (after run, or after a failed init). */
int bg_ctl_init(struct bg_ctl *c, struct bg_controller_conf *conf);
int bg_ctl_run(struct bg_ctl *c);
void bg_ctl_free(struct bg_ctl *c);

#endif
