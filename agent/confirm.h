/* confirm.h -- confirmed propagation: a change counts once the balancers have seen it. */
#ifndef BG_CONFIRM_H
#define BG_CONFIRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_CONFIRM_MAX_PEERS 32

/* ---------------------------------------------------------------------------------------
 * HAProxy's "http-check send-state" header, e.g.
 *   X-Haproxy-Server-State: UP 2/3; name=bck/srv2; node=lb1; weight=1/2; scur=13/22; qcur=0
 * It is HAProxy's view of the server *before* the check that carries it is answered.
 * ------------------------------------------------------------------------------------ */
enum bg_ss_state {
    BG_SS_UP,    /* "UP": fully risen; "UP x/y": failing, y-x more failures before DOWN */
    BG_SS_DOWN,  /* "DOWN": down; "DOWN x/y": passing, y-x more passes before UP */
    BG_SS_NOLB,  /* "NOLB" (404 with http-check disable-on-404): running, no new traffic */
    BG_SS_MAINT, /* "MAINT", "MAINT(via)", "MAINT(resolution)": maintenance */
    BG_SS_DRAIN, /* "DRAIN": admin drain, no new traffic */
};
/* HAProxy 2.6 sends only DOWN, UP and NOLB (each with or without x/y) and "no check" (taken as
 * no header); the word is the operational state, so an admin drain or "set server weight 0"
 * still reads "UP" (the latter with weight=0/..). MAINT and DRAIN are understood in case a
 * version sends the stats page's words. */

struct bg_server_state {
    enum bg_ss_state state;
    int x, y;        /* the "x/y" after the word; 0/0 when absent */
    char name[128];  /* "backend/server", printable; "" when absent */
    char node[64];   /* HAProxy's node name (global "node" or host name); "" when absent */
    int weight;      /* the server's own weight; -1 when absent */
    int farm_weight; /* the usable weight of the whole backend; -1 when absent */
};

/* Parse the header's value (len bytes, need not be NUL-terminated). Untrusted input: any bytes
 * are safe. Returns 0 and fills *ss, or -1 when the value does not start with a known state
 * word (then the poll counts as one without the header). Unknown fields are ignored; node and
 * name are kept printable and bounded. */
int bg_server_state_parse(const char *value, size_t len, struct bg_server_state *ss);
/* True when a server in this state takes no new traffic from that balancer. */
bool bg_server_state_out(const struct bg_server_state *ss);
/* True when the server is fully UP (not failing its way down) and has weight. */
bool bg_server_state_up(const struct bg_server_state *ss);
/* "DOWN 1/2", "UP", ... into buf. */
void bg_server_state_word(const struct bg_server_state *ss, char *buf, size_t len);

/* What GET /health answers: 200 when the instance is UP and its application healthy;
 * out_code (404 with the health backend's out_of_service_code: 404, else 503) when it is
 * OUT_OF_SERVICE and the application healthy; 503 whenever the application is failing, so that
 * a real failure goes DOWN through the balancer's fall. out_code other than 404: 503. */
int bg_health_answer_code(bool up, bool healthy, int out_code);

/* True when a request with this User-Agent may come from a load balancer's health check (see
 * confirm.c for the rule). NULL: no User-Agent header, as HAProxy's httpchk sends. */
bool bg_confirm_balancer_agent(const char *user_agent);

/* ---------------------------------------------------------------------------------------
 * Which pollers are balancers and whether each has seen the current change.
 *
 * A poller is known by (peer address, send-state node, send-state name): several HAProxy on
 * one host, or one HAProxy checking the server in two backends, are distinct balancers.
 * ------------------------------------------------------------------------------------ */
struct bg_confirm_peer {
    char addr[64];
    char node[64], name[128]; /* from send-state; "" without it */
    bool send_state;          /* this peer sends the header (a balancer at once) */
    bool agent_ok;            /* its User-Agent may be a balancer's */
    int64_t first_ms, last_ms;
    int64_t interval_ms; /* observed time between polls (smoothed); 0 until two polls */
    int64_t min_gap_ms;  /* shortest time between two polls of this streak; 0 until two */
    unsigned polls;      /* in all */
    unsigned streak;     /* polls in a row, each within poll_window of the previous */
    int since_change;    /* polls answered with the current state since the change */
    bool ok;             /* has confirmed the current change */
    int64_t ok_ms;
    struct bg_server_state last; /* the last header (send_state peers) */
    int learned_y;               /* largest y seen: HAProxy's rise or fall for this server */
    bool last_answered_up;       /* what the last poll was answered */
    bool rise1, fall1;           /* seen: one pass makes it UP / one failure DOWN */
    int seen_rise, seen_fall;    /* y of the last "DOWN x/y" / "UP x/y" or "NOLB x/y" (0: none):
                                  * HAProxy's rise / fall, so neither is 1 */
    bool last_answered_soft;     /* the last poll was answered 404 (soft stop) */
    bool soft404; /* seen: our 404 to a running server put it in NOLB (this balancer has
                   * "http-check disable-on-404"), so a 404 to UP takes it out at once */
};

struct bg_confirm {
    struct bg_confirm_peer peer[BG_CONFIRM_MAX_PEERS];
    int n_peers;
    int64_t window_ms;  /* a balancer silent for longer stops counting */
    int64_t timeout_ms; /* > 0: upper bound of a wait; 0: derived from the observed intervals */
    int polls;          /* polls that confirm a change for a peer without send-state */
    unsigned min_peer_polls; /* polls in a row before a header-less peer counts (default 3) */
    bool check_agent;        /* the User-Agent rule applies (HTTP); false for agent-check */
    bool target_up;          /* the current change: to UP (true) or OUT_OF_SERVICE */
    bool changed;            /* a change has been made (target_up is meaningful) */
    bool confirmed;          /* the current change is confirmed */
    bool waiting;            /* a caller waits for confirmation */
    int64_t changed_ms;      /* when the current change was made */
    int64_t armed_ms;        /* when the current wait began (the change or a repeated PUT) */
    int64_t limit_ms;        /* absolute monotonic ms after which waiting stops (0: none) */
    int64_t read_ms; /* a poll whose answer decides counts this long after it (default 30) */
};

/* One poll, as the backend saw it. */
struct bg_poll {
    const char *addr;                 /* peer IP address */
    const char *user_agent;           /* NULL: none */
    const struct bg_server_state *ss; /* NULL: no (valid) send-state header */
    bool answered_current;            /* answered with the current state */
    bool answered_up;                 /* the answer passes the check (200 / ready) */
    bool answered_soft; /* answered 404 (OUT_OF_SERVICE, application healthy, health backend's
                         * out_of_service_code 404): HAProxy's disable-on-404 soft stop */
};

/* timeout_ms 0: derived from each balancer's poll interval. Can't fail. */
void bg_confirm_init(struct bg_confirm *c, int64_t window_ms, int64_t timeout_ms, int polls);
/* A change to up/out happened now. Returns true if someone must confirm it, false when no
 * balancer is polling (then it is confirmed at once). */
bool bg_confirm_start(struct bg_confirm *c, bool up, int64_t now);
/* The same status was asked for again: when the change is not confirmed yet, wait again
 * (returns true); progress made so far is kept. */
bool bg_confirm_rearm(struct bg_confirm *c, int64_t now);
void bg_confirm_polled(struct bg_confirm *c, const struct bg_poll *p, int64_t now);
/* 0 confirmed, 1 still waiting, -1 gave up (unconfirmed); msg describes the outcome. */
int bg_confirm_check(struct bg_confirm *c, int64_t now, char *msg, size_t msglen);
/* Monotonic ms at which bg_confirm_check would give up (0: not waiting). */
int64_t bg_confirm_deadline(const struct bg_confirm *c, int64_t now);
/* True when the peer counts as a balancer now (must confirm). */
bool bg_confirm_counts(const struct bg_confirm *c, const struct bg_confirm_peer *p, int64_t now);
/* True when the peer has confirmed the current change (by now). */
bool bg_confirm_peer_ok(const struct bg_confirm_peer *p, int64_t now);
/* Balancers that count now (for metrics and status). */
int bg_confirm_active_peers(const struct bg_confirm *c, int64_t now);
/* True when every counting balancer confirmed the current change (or none counts). */
bool bg_confirm_is_confirmed(const struct bg_confirm *c, int64_t now);
/* "127.0.0.1 (node lb1, name b/s1, last state DOWN 1/2)" or "127.0.0.1 (1 of 3 polls)". */
void bg_confirm_describe(const struct bg_confirm *c, const struct bg_confirm_peer *p, char *buf,
                         size_t len);

#endif
