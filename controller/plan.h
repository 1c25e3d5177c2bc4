/* plan.h -- the pure decision: given what is desired and observed, what to do next. */
#ifndef BG_PLAN_H
#define BG_PLAN_H

#include "traffic.h"
#include "util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bg_phase {
    BG_PHASE_IDLE = 0,
    BG_PHASE_SWITCHING,
    BG_PHASE_SETTLING,
    BG_PHASE_CONVERGED,
    BG_PHASE_BLOCKED,
};

enum bg_known { BG_KNOWN_NONE = 0, BG_KNOWN_UP, BG_KNOWN_OUT };

/* Balancers an agent names as not having seen a change yet, kept per member (more are
 * counted, not kept). */
#define BG_WAITING_MAX 4
#define BG_WAITING_LEN 128

/* One registered instance (one ephemeral node) and what the controller knows of it. */
struct bg_member {
    char id[129];
    char lid[129]; /* id as logged (bg_log_token): a name cannot forge log keys or lines */
    enum bg_color color;
    int64_t czxid;            /* the node's creation: a re-registered agent is a new member */
    char *endpoint;           /* "http://host:port", NULL when the node's data was unusable */
    char *problem;            /* why the node is unusable or suspicious (NULL when fine) */
    bool duplicate;           /* the same id is registered under both colours */
    bool healthy;             /* the application's health check passes (node "healthy") */
    int64_t healthy_since_ms; /* monotonic ms since when it has been healthy (node mtime) */
    char check[160];          /* last check result when unhealthy (sanitised) */
    enum bg_known known;      /* last status confirmed by the agent */
    int64_t confirmed_ms;     /* monotonic ms of that confirmation */
    int failures;             /* consecutive failed calls */
    int64_t failed_ms;        /* monotonic ms of the last failed call */
    int64_t retry_at_ms;      /* do not call before this (backoff after failures) */
    bool probed;              /* asked its status since we lead (or came later: not asked) */
    char last_error[256];
    /* The agent applied `known`, but a balancer that counts has not seen it yet (the agent's
     * answer said "confirmed": false). An agent that does not say counts as confirmed. */
    bool unconfirmed;
    int64_t unconfirmed_since_ms; /* monotonic ms of the first such answer for `known` */
    int n_waiting;                /* balancers named in the answer's "waiting_for" */
    char waiting[BG_WAITING_MAX][BG_WAITING_LEN]; /* the first of them (sanitised) */
    /* Traffic shaping (DESIGN §12). */
    int weight;      /* the weight (1-100) the agent last confirmed with UP (0: unknown = 100) */
    bool can_weight; /* the node says "weighted": true (a backend can take a weight) */
    bool drained;    /* /drain/<id> names it */
    bool undrained;  /* it was drained, the drain is gone, it is not UP again yet */
    char drain_reason[BG_DRAIN_REASON_MAX + 1];
};

/* What traffic shaping makes of each member (bg_shape). */
enum bg_role {
    BG_ROLE_NORMAL = 0,
    BG_ROLE_DRAINED,       /* /drain/<id>: taken out whatever its colour */
    BG_ROLE_DRAIN_REFUSED, /* drained, but that would leave the active colour below min_ready */
    BG_ROLE_CANARY,        /* canary colour, takes its share */
    BG_ROLE_CANARY_SPARE,  /* canary colour beyond the instance count (cannot weight) */
};

/* The canary and drains applied to the members: per-member roles and the weights. */
struct bg_shape {
    unsigned char *role; /* enum bg_role per member (n of them; NULL when n is 0) */
    bool canary;         /* a canary is in effect */
    enum bg_color canary_color;
    int percent;
    bool by_count;          /* instance-count canary: some member cannot weight */
    int w_canary, w_active; /* weights (1-100) of the canary and active colours' instances */
    int n_canary, n_active; /* healthy, undrained instances of each */
    int canary_up;          /* canary instances to be UP */
    double share;           /* the canary's expected share (%) */
    int drained, refused;   /* drains applied, refused */
    char note[256];         /* why a canary does nothing (names the active colour, none
                             * healthy); empty otherwise */
};

/* A live bg-router as its /routers/<id> node says (DESIGN §13): what its balancer serves now.
 * Make before break includes it: the old colour goes out only once it serves min_ready (at
 * least one) instances of the desired colour, and a switch is converged only once it serves
 * none of the other colour. */
struct bg_router_view {
    char id[129];
    int serving[2];  /* instances served, by colour (indexed by BG_BLUE, BG_GREEN) */
    bool pending;    /* a change is under way (or being retried) */
    char error[200]; /* last_error while pending (""), or why the node is unusable: the
                      * router fails (it blocks a switch) while this is not empty */
    /* For /status, the page, bgctl and /metrics only (the plan does not read them): */
    char kind[16];        /* "nginx", "haproxy", ... (sanitised; "" when missing) */
    long long generation; /* the configuration generation its balancer serves (0: unknown) */
    char last_error[200]; /* its last_error, pending or not (sanitised; "" when none) */
};

/* The most routers the leader reads, shows in /status and waits for (one per balancer
 * host): the plan's routers_waited has a bit for each. */
#define BG_ROUTERS_MAX 64

/* Read a /routers/<name> node's data (len bytes, need not be NUL-terminated) into v: the
 * instances served per colour, pending, and last_error while pending (sanitised). Returns
 * BG_OK, or BG_EINVAL when the data is not a JSON object with a "serving" array: then
 * v->error says so (such a router blocks, as one that failed). Never fails otherwise. */
int bg_router_view_parse(const char *data, size_t len, const char *name, struct bg_router_view *v);

struct bg_plan_input {
    enum bg_color desired;       /* BG_COLOR_INVALID when /active_color is missing or malformed */
    const char *desired_problem; /* why desired is invalid, for the reason text */
    const struct bg_member *m;
    size_t n;
    int min_ready;
    int batch_size; /* 0: every call of a phase at once; N: at most N at a time */
    int64_t now_ms;
    int64_t desired_since_ms; /* when /active_color last changed: a switch judges the calls
                               * that failed since then (0: all of them) */
    int64_t settle_ms;
    int64_t resync_ms;        /* 0: never re-assert */
    int64_t last_up_ms;       /* when an instance of the desired colour last became UP (0: never) */
    int64_t min_healthy_ms;   /* a desired-colour instance must be healthy this long before UP */
    bool in_fallback;         /* the previous plan fell back to the other colour */
    bool never_served;        /* no colour has converged yet (a new system): a fallback keeps
                               * what is UP but puts no standby instance into service */
    int64_t fallback_hold_ms; /* while in fallback: how long a desired-colour instance must stay
                               * healthy before the switch is tried again (flap damping) */
    bool probe_unknown;       /* ask agents whose status is unknown (and not probed) before
                               * telling them: a new leader (bench/README scale item 3) */
    bool proceed_unconfirmed; /* switch.unconfirmed: proceed (false: hold) */
    int64_t unconfirmed_timeout_ms;       /* held this long: blocked, still holding (0: no bound) */
    struct bg_canary canary;              /* /canary (percent 0: none) */
    const char *canary_problem;           /* /canary is malformed: why (blocked, nothing changes) */
    const char *drain_problem;            /* a /drain entry is malformed: why (same) */
    const struct bg_shape *shape;         /* set by bg_plan itself (callers leave it NULL) */
    const struct bg_router_view *routers; /* live routers (NULL/0: none: as without routers) */
    size_t n_routers;
};

/* The most calls one plan asks for (a larger phase takes several passes): each is a connection
 * of its own, and a daemon's default limit is 1024 descriptors. */
#define BG_PLAN_MAX_BATCH 512

struct bg_plan {
    enum bg_phase phase;
    char reason[512];
    /* PROBE: ask the agents their status (GET), change nothing; the plan is made again with
     * what they said. */
    enum { BG_ACT_NONE = 0, BG_ACT_UP, BG_ACT_OUT, BG_ACT_PROBE } action;
    size_t idx[BG_PLAN_MAX_BATCH]; /* members to call now (indices into input.m) */
    int weight[BG_PLAN_MAX_BATCH]; /* with BG_ACT_UP: the weight (1-100) to send each */
    size_t n_idx;
    int64_t wake_at_ms; /* re-plan by then even if nothing happens (0: no deadline) */
    int ready;          /* desired-colour members known UP (and confirmed, with hold) and healthy */
    int unconfirmed;    /* members of the current phase held for their balancers' confirmation */
    int targets;        /* usable desired-colour members */
    int healthy;        /* usable desired-colour members that may carry traffic (healthy, and
                         * for min_healthy_time or already UP) */
    bool fallback;      /* the desired colour cannot carry traffic: the other colour's healthy
                         * instances are kept (or made) UP instead */
    uint64_t routers_waited; /* bit i: the plan waits for input.routers[i] (i < BG_ROUTERS_MAX)
                              * to serve the desired colour or drop the old one */
};

/* Decide the next step. Pure: no I/O, no clock, no globals. Make before break: OUT is only
 * planned once at least min_ready desired-colour members are known UP, every reachable one
 * is UP, and settle has passed since the last one became UP. With hold (the default), UP and
 * OUT count only once every balancer has seen them: an unconfirmed member is asked again (a
 * long poll) and keeps the old colour UP, or the switch from converging; held longer than
 * unconfirmed_timeout_ms the phase is blocked, still holding. An unhealthy member is never
 * marked UP (and is taken out once it is); when the desired colour has fewer than min_ready
 * healthy members the plan falls back: the other colour's healthy members are kept or made
 * UP, and the switch completes by itself once the desired colour is healthy again. */
void bg_plan(const struct bg_plan_input *in, struct bg_plan *out);

const char *bg_phase_name(enum bg_phase p);

/* Work out the canary and drains for in's members into s (in->shape is not used): drains of
 * the desired colour's healthy instances are taken in member order while at least min_ready
 * stay, the rest refused; the canary colour's healthy undrained instances get w_canary (or,
 * when a member cannot weight, the nearest instance count is chosen, those UP first). Pure
 * but for allocation (aborts when out of memory); bg_shape_free releases it. */
void bg_shape_init(struct bg_shape *s, const struct bg_plan_input *in);
void bg_shape_free(struct bg_shape *s);

/* The weight member i should have when UP (100 outside a canary or in a fallback). */
int bg_shape_weight(const struct bg_shape *s, const struct bg_plan_input *in, size_t i,
                    bool fallback);

/* "canary": {...} and "drains": [...] for /status from a shape (nothing when neither). Pure. */
void bg_shape_status(json_t *status, const struct bg_shape *s, const struct bg_plan_input *in);

/* For each a[i], the index in b of the same node (same colour, id and czxid), or SIZE_MAX when
 * b has none: match[i]. O((na + nb) log nb): thousands of members are matched every pass. */
void bg_members_match(const struct bg_member *a, size_t na, const struct bg_member *b, size_t nb,
                      size_t *match);

/* Mark each member whose id is registered under both colours: duplicate, endpoint dropped (an
 * ambiguous instance is never driven) and a problem saying so. O(n log n). Returns how many. */
size_t bg_members_duplicates(struct bg_member *m, size_t n);

/* What an agent's failure answer says, for last_error and the log: its JSON "error", the
 * failing "backend" and its "reason" ("backend failed (eureka): eureka http://...: ..."; for
 * an answer that lists "backends", the first that is not ok, and how many more failed), or the
 * body itself when it is not such JSON. Quotes become ', backslashes /, controls ?; cut at a
 * character boundary to fit out. Pure; never fails. */
void bg_agent_error_text(const char *body, size_t len, char *out, size_t outlen);

/* "UP", "OUT_OF_SERVICE" or "UNKNOWN". */
const char *bg_known_name(enum bg_known k);

/* /status must stay well inside ZooKeeper's node limit (jute.maxbuffer, 1 MB by default: a
 * larger write drops the connection) whatever the number of instances: its per-instance list
 * is kept under this many bytes. */
#define BG_STATUS_BUDGET (512 * 1024)
/* An instance's last_error as /status and /history show it (the whole text is in the log). */
#define BG_STATUS_ERROR_MAX 120

/* Put /status's per-instance part into the object status:
 *   "instances": [{id, color, status, last_error, endpoint, healthy, check, problem,
 *                  confirmed, waiting_for, waiting_more}, ...] in member order;
 *   "counts": {"blue": {"instances": N, "UP": n, "OUT_OF_SERVICE": n, "UNKNOWN": n,
 *              "unhealthy": n, "failing": n, "unusable": n}, "green": {...}} (zero counts
 *              left out), always, for every member;
 * and when the list would take more than budget bytes (compact JSON), only what fits is listed
 * -- instances with a problem first (unusable, unhealthy, failing calls), then those whose
 * status is unknown or unconfirmed, then the settled ones -- with "truncated": true and
 * "omitted": {"blue": {"UP": n, ...}, ...}, what was left out by colour and status. Returns
 * how many were left out. Pure; allocation failure aborts. */
size_t bg_status_instances(json_t *status, const struct bg_member *m, size_t n, size_t budget);

/* Put /status's router part into the object status (DESIGN §13):
 *   "routers": [{id, kind, serving: {"blue": n, "green": m}, generation, pending, failed,
 *                last_error (string or null), waited}, ...]
 * one entry per router in r (at most BG_ROUTERS_MAX, about 700 bytes each: the list stays
 * under 50 KB), in the order given; waited is bit i of routers_waited (bg_plan). last_error is
 * the router's last_error, or why its node is unusable. Pure; allocation failure aborts. */
void bg_status_routers(json_t *status, const struct bg_router_view *r, size_t n,
                       uint64_t routers_waited);

/* Parse an instance node's data: JSON {"endpoint":"http://host:port",..} or a bare
 * "host:port". Returns a malloc'd "http://host:port" (no trailing slash), or NULL with the
 * reason in why. Pure. */
char *bg_parse_member_data(const char *data, size_t len, char *why, size_t whylen);

/* The application health an instance node reports: "healthy" (missing: true, as for a bare
 * host:port or an agent without a check; anything but a boolean: false) and the last check
 * message, sanitised into check (empty when none). Pure; never fails. */
bool bg_parse_member_health(const char *data, size_t len, char *check, size_t checklen);

/* Does an instance node say a backend of its agent can take a weight ("weighted": true)?
 * Anything else (a bare host:port, an older agent) cannot. Pure. */
bool bg_parse_member_weighted(const char *data, size_t len);

#endif
