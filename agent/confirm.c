/* confirm.c -- tracks which balancers poll us and whether they have seen a change. */
#include "confirm.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* A change decided by the answer HAProxy is reading counts this long after it (HAProxy acts on
 * the answer within a millisecond of reading it; measured 0-6 ms after our answer on this host
 * by polling its Runtime API): a caller told "confirmed" then finds HAProxy changed. */
#define CONFIRM_READ_MS 30

/* A derived wait is (polls + 1) intervals stretched by half (a loaded balancer's checks come
 * late: seen with HAProxy on a busy host), plus a second for latency and scheduling. */
#define CONFIRM_SLACK_MS 1000

/* ----------------------------------------------------------------------------------------
 * Send-state verdicts.
 * ------------------------------------------------------------------------------------- */

bool bg_server_state_out(const struct bg_server_state *ss)
{
    /* "DOWN x/y" is still down (rising); "UP x/y" still takes traffic (failing). weight is the
     * server's own: HAProxy shows DOWN servers as weight=1/0, so only 0 means drained. */
    return ss->state != BG_SS_UP || ss->weight == 0;
}

bool bg_server_state_up(const struct bg_server_state *ss)
{
    /* "UP x/y" is UP but failing: one more failed check may take it down. Only the bare "UP"
     * is fully risen. */
    return ss->state == BG_SS_UP && ss->y == 0 && ss->weight != 0;
}

void bg_server_state_word(const struct bg_server_state *ss, char *buf, size_t len)
{
    static const char *const words[] = {"UP", "DOWN", "NOLB", "MAINT", "DRAIN"};
    const char *w = (unsigned)ss->state < 5 ? words[ss->state] : "?";
    if (ss->y > 0)
        snprintf(buf, len, "%s %d/%d%s", w, ss->x, ss->y, ss->weight == 0 ? " weight 0" : "");
    else
        snprintf(buf, len, "%s%s", w, ss->weight == 0 ? " weight 0" : "");
}

int bg_health_answer_code(bool up, bool healthy, int out_code)
{
    if (!healthy)
        return 503; /* a real failure: the balancer's fall takes the server DOWN */
    if (up)
        return 200;
    return out_code == 404 ? 404 : 503;
}

/* ----------------------------------------------------------------------------------------
 * Who is a balancer.
 *
 * Anyone can GET /health, and a monitoring probe or a person's loop
 * (`while true; do curl -s host:port/health; sleep 1; done`) polls at a regular interval
 * just as a balancer does: cadence alone cannot tell them apart. What does: HAProxy's httpchk
 * sends no User-Agent at all (unless configured to), while curl, wget, browsers, Python,
 * Go, Java and Prometheus' blackbox exporter always send one. The rule:
 *   1. A poll carrying a valid X-Haproxy-Server-State header is a balancer's, at once (only
 *      HAProxy sends it, and it tells us which node and backend the poll is for).
 *   2. Once any send-state balancer is active, header-less pollers neither count nor confirm.
 *   3. Otherwise a poller counts after min_peer_polls polls in a row, each within poll_window
 *      of the previous, and only if it sends no User-Agent or the User-Agent of a known
 *      balancer health checker (below). Everything else (curl/..., Wget/..., Mozilla/...)
 *      is a person or a monitor.
 *   4. A balancer silent for longer than poll_window stops counting.
 * Someone who deliberately strips curl's User-Agent and loops is taken for a balancer: the
 * price is a wait for their polls (bounded by the derived timeout), never a wrong confirmation
 * of a real balancer, which must confirm on its own.
 * ------------------------------------------------------------------------------------- */

static bool contains_nocase(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; *s != '\0'; s++) {
        size_t i = 0;
        while (i < n && s[i] != '\0' &&
               tolower((unsigned char)s[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

bool bg_confirm_balancer_agent(const char *user_agent)
{
    static const char *const checkers[] = {
        "haproxy", "ELB-HealthChecker", "GoogleHC",   "Envoy/HC",   "nginx",
        "F5-",     "Traefik",           "Keepalived", "bg-balancer"};
    if (user_agent == NULL || user_agent[0] == '\0')
        return true;
    for (size_t i = 0; i < sizeof(checkers) / sizeof(checkers[0]); i++)
        if (contains_nocase(user_agent, checkers[i]))
            return true;
    return false;
}

/* ----------------------------------------------------------------------------------------
 * Tracking.
 * ------------------------------------------------------------------------------------- */

void bg_confirm_init(struct bg_confirm *c, int64_t window_ms, int64_t timeout_ms, int polls)
{
    memset(c, 0, sizeof(*c));
    c->window_ms = window_ms > 0 ? window_ms : 5000;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    c->polls = polls > 0 ? polls : 1;
    c->min_peer_polls = 3;
    c->check_agent = true;
    c->read_ms = CONFIRM_READ_MS;
}

bool bg_confirm_peer_ok(const struct bg_confirm_peer *p, int64_t now)
{
    return p->ok && now >= p->ok_ms;
}

static bool peer_ok(const struct bg_confirm_peer *p, int64_t now)
{
    return bg_confirm_peer_ok(p, now);
}

static bool any_send_state(const struct bg_confirm *c, int64_t now)
{
    for (int i = 0; i < c->n_peers; i++)
        if (c->peer[i].send_state && now - c->peer[i].last_ms <= c->window_ms)
            return true;
    return false;
}

static bool counts(const struct bg_confirm *c, const struct bg_confirm_peer *p, int64_t now,
                   bool ss_known)
{
    if (p->polls == 0 || now - p->last_ms > c->window_ms)
        return false;
    if (p->send_state)
        return true;
    return !ss_known && p->agent_ok && p->streak >= c->min_peer_polls;
}

bool bg_confirm_counts(const struct bg_confirm *c, const struct bg_confirm_peer *p, int64_t now)
{
    return counts(c, p, now, any_send_state(c, now));
}

int bg_confirm_active_peers(const struct bg_confirm *c, int64_t now)
{
    bool ss = any_send_state(c, now);
    int n = 0;
    for (int i = 0; i < c->n_peers; i++)
        n += counts(c, &c->peer[i], now, ss);
    return n;
}

bool bg_confirm_is_confirmed(const struct bg_confirm *c, int64_t now)
{
    if (!c->changed)
        return true;
    bool ss = any_send_state(c, now);
    for (int i = 0; i < c->n_peers; i++)
        if (counts(c, &c->peer[i], now, ss) && !peer_ok(&c->peer[i], now))
            return false;
    return true;
}

bool bg_confirm_start(struct bg_confirm *c, bool up, int64_t now)
{
    for (int i = 0; i < c->n_peers; i++) {
        c->peer[i].since_change = 0;
        c->peer[i].ok = false;
        c->peer[i].ok_ms = 0;
    }
    c->changed = true;
    c->target_up = up;
    c->changed_ms = now;
    c->armed_ms = now;
    c->confirmed = bg_confirm_active_peers(c, now) == 0;
    c->waiting = !c->confirmed;
    return c->waiting;
}

bool bg_confirm_rearm(struct bg_confirm *c, int64_t now)
{
    if (!c->changed || bg_confirm_is_confirmed(c, now)) {
        c->confirmed = true;
        c->waiting = false;
        return false;
    }
    c->armed_ms = now;
    c->waiting = true;
    return true;
}

/* Keyed by (address, node, name) and by whether the User-Agent may be a balancer's: a curl
 * loop on the balancer's own host is another poller, not the balancer. */
static struct bg_confirm_peer *find_peer(struct bg_confirm *c, const char *addr, const char *node,
                                         const char *name, bool agent_ok)
{
    int i;
    for (i = 0; i < c->n_peers; i++) {
        struct bg_confirm_peer *p = &c->peer[i];
        if (strcmp(p->addr, addr) == 0 && strcmp(p->node, node) == 0 &&
            strcmp(p->name, name) == 0 && p->agent_ok == agent_ok)
            return p;
    }
    if (c->n_peers == BG_CONFIRM_MAX_PEERS) {
        /* Forget the peer silent the longest. */
        i = 0;
        for (int j = 1; j < c->n_peers; j++)
            if (c->peer[j].last_ms < c->peer[i].last_ms)
                i = j;
    } else {
        i = c->n_peers++;
    }
    struct bg_confirm_peer *p = &c->peer[i];
    memset(p, 0, sizeof(*p));
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    snprintf(p->node, sizeof(p->node), "%s", node);
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->agent_ok = agent_ok;
    return p;
}

/* HAProxy's view after it reads this poll's answer, when the header (its view before) makes it
 * certain: the answer is the last pass of rise, or the last failure of fall. HAProxy acts on
 * the answer as soon as it reads it, as it does on an agent-check word, so the change is
 * confirmed with that answer rather than one interval later with the next header. Full "UP"
 * and "DOWN" carry no x/y: rise 1 / fall 1 are learned from a transition seen earlier.
 *
 * With "http-check disable-on-404" (observed with HAProxy 2.6.12, inter 1s rise 2 fall 3; see
 * src/check.c: a 404 is a "conditional pass" that only a running server acts on):
 *   - a running server ("UP", "UP x/y", "NOLB x/y") answered 404 is put in NOLB at once: no
 *     new load-balanced traffic, without fall. Confirmed on that answer once this balancer is
 *     known to have the option (soft404: a 404 of ours was followed by NOLB before); until
 *     then the next header, NOLB, confirms (one interval later), and without the option the
 *     404 is an ordinary failure counted by fall, as a 503.
 *   - "NOLB" or "NOLB x/y" answered 200 is UP at once, without rise (only a running server is
 *     in NOLB, and a pass on a running server tops it up).
 *   - a stopped server ("DOWN", "DOWN x/y") answered 404 stays DOWN (the 404 counts as a
 *     failure), and coming back takes rise passes as always. */
static bool decides(const struct bg_confirm_peer *p, const struct bg_server_state *ss, bool up,
                    bool answered_up, bool answered_soft)
{
    if (ss->weight == 0 || answered_up != up)
        return false;
    if (up && ss->state == BG_SS_UP) /* "UP x/y": x passes short of the top */
        return ss->y == 0 || ss->x + 1 >= ss->y;
    if (up && ss->state == BG_SS_DOWN) /* "DOWN x/y": x passes of rise y */
        return ss->y > 0 ? ss->x + 1 >= ss->y : p->rise1;
    if (up) /* NOLB, NOLB x/y: running, a pass makes it UP */
        return ss->state == BG_SS_NOLB;
    /* a 404 to a running server of a balancer known to soft-stop on it */
    if (answered_soft && p->soft404 && ss->state == BG_SS_UP)
        return true;
    /* a failure: "UP 1/y" (the last one left), or full UP with fall 1 */
    return ss->state == BG_SS_UP && (ss->y > 0 ? ss->x <= 1 : p->fall1);
}

/* Learn from consecutive headers of one balancer: whether a 404 soft-stops (disable-on-404),
 * rise 1 / fall 1. adjacent: this poll came about one interval after the previous one, so no
 * check of this balancer fell in between (one that never reached us, e.g. a connect timeout,
 * counts as a failure at HAProxy: "UP" then "DOWN" across it is no proof of fall 1; found by
 * fuzz_confirm). */
static void learn(struct bg_confirm_peer *p, const struct bg_server_state *ss, bool adjacent)
{
    /* An x/y shows rise (DOWN x/y) or fall (UP x/y, NOLB x/y) is not 1, whatever was learned
     * before (a reload with other settings). */
    if (ss->y > 0 && ss->state == BG_SS_DOWN) {
        p->seen_rise = ss->y;
        p->rise1 = false;
    } else if (ss->y > 0) {
        p->seen_fall = ss->y;
        p->fall1 = false;
    }
    if (!p->send_state || p->polls < 2)
        return;
    /* Our 404 to a running server, then the next check's header (within poll_window): NOLB
     * means the option is on; a failure counted ("UP x/y") or DOWN means it is off (a reload
     * without it, or it was never there). */
    if (p->last_answered_soft && p->streak >= 2 &&
        (p->last.state == BG_SS_UP || p->last.state == BG_SS_NOLB)) {
        if (ss->state == BG_SS_NOLB)
            p->soft404 = true;
        else if (ss->state == BG_SS_DOWN || (ss->state == BG_SS_UP && ss->y > 0))
            p->soft404 = false;
    }
    if (!adjacent || p->last.y != 0 || ss->y != 0)
        return;
    if (p->last.state == BG_SS_DOWN && ss->state == BG_SS_UP && p->last_answered_up &&
        p->seen_rise == 0)
        p->rise1 = true;
    if (p->last.state == BG_SS_UP && ss->state == BG_SS_DOWN && !p->last_answered_up &&
        p->seen_fall == 0)
        p->fall1 = true;
}

void bg_confirm_polled(struct bg_confirm *c, const struct bg_poll *poll, int64_t now)
{
    const struct bg_server_state *ss = poll->ss;
    bool agent_ok = !c->check_agent || bg_confirm_balancer_agent(poll->user_agent);
    struct bg_confirm_peer *p =
        find_peer(c, poll->addr != NULL ? poll->addr : "?", ss != NULL ? ss->node : "",
                  ss != NULL ? ss->name : "", agent_ok);
    /* Within 1.5 times the shortest gap seen in this streak of the previous poll: no check of
     * this balancer fell in between (at a regular cadence a lost check makes a gap of two).
     * Not the smoothed interval, which lost checks inflate. */
    bool adjacent = false;
    if (p->polls > 0) {
        int64_t gap = now - p->last_ms;
        adjacent = p->min_gap_ms > 0 && gap * 2 <= p->min_gap_ms * 3;
        if (gap <= c->window_ms) {
            p->streak++;
            p->interval_ms = p->interval_ms > 0 ? (3 * p->interval_ms + gap) / 4 : gap;
            if (gap > 0 && (p->min_gap_ms == 0 || gap < p->min_gap_ms))
                p->min_gap_ms = gap;
        } else {
            p->streak = 1;
            p->interval_ms = 0;
            p->min_gap_ms = 0;
        }
    } else {
        p->streak = 1;
        p->first_ms = now;
    }
    p->polls++;
    p->last_ms = now;
    if (ss != NULL)
        learn(p, ss, adjacent);
    p->send_state = ss != NULL;
    p->last_answered_up = poll->answered_up;
    p->last_answered_soft = poll->answered_soft;
    if (ss != NULL) {
        p->last = *ss;
        if (ss->y > p->learned_y && ss->y <= 1000)
            p->learned_y = ss->y;
    }
    if (!c->changed || p->ok || now < c->changed_ms)
        return;
    p->ok_ms = now;
    if (ss != NULL) {
        /* HAProxy's own view (before this check's answer): exact, whatever rise/fall are. */
        p->ok = c->target_up ? bg_server_state_up(ss) : bg_server_state_out(ss);
        if (!p->ok && poll->answered_current) {
            p->ok = decides(p, ss, c->target_up, poll->answered_up, poll->answered_soft);
            p->ok_ms = now + c->read_ms;
        }
    } else if (poll->answered_current) {
        /* The last counted poll decides too (confirm_polls = max(rise, fall)). */
        p->ok = ++p->since_change >= c->polls;
        p->ok_ms = now + c->read_ms;
    }
}

/* When this unconfirmed peer is given up: as many of its intervals as it needs polls, plus one
 * (the first poll after the change comes up to an interval later), with slack. */
static int64_t peer_deadline(const struct bg_confirm *c, const struct bg_confirm_peer *p)
{
    int need = c->polls - p->since_change;
    if (p->send_state) /* the header shows the change one poll after the deciding answer */
        need = (p->learned_y > c->polls ? p->learned_y : c->polls) + 1;
    if (need < 1)
        need = 1;
    int64_t iv = p->interval_ms > 0 ? p->interval_ms : c->window_ms;
    int64_t d = c->armed_ms + (int64_t)(need + 1) * iv * 3 / 2 + CONFIRM_SLACK_MS;
    if (c->timeout_ms > 0 && c->armed_ms + c->timeout_ms < d)
        d = c->armed_ms + c->timeout_ms;
    return d;
}

int64_t bg_confirm_deadline(const struct bg_confirm *c, int64_t now)
{
    if (!c->waiting)
        return 0;
    bool ss = any_send_state(c, now);
    int64_t d = 0;
    for (int i = 0; i < c->n_peers; i++) {
        const struct bg_confirm_peer *p = &c->peer[i];
        if (!counts(c, p, now, ss) || peer_ok(p, now))
            continue;
        /* Decided, counting from the moment HAProxy has read the answer. */
        int64_t pd = p->ok ? p->ok_ms : peer_deadline(c, p);
        /* It also stops counting when it falls silent for poll_window. */
        if (p->last_ms + c->window_ms + 1 < pd)
            pd = p->last_ms + c->window_ms + 1;
        if (pd > d)
            d = pd;
    }
    if (d == 0) /* nothing left: check now */
        d = now;
    if (c->limit_ms > 0 && c->limit_ms < d)
        d = c->limit_ms;
    return d;
}

int bg_confirm_check(struct bg_confirm *c, int64_t now, char *msg, size_t msglen)
{
    bool ss = any_send_state(c, now);
    int required = 0, seen = 0;
    for (int i = 0; i < c->n_peers; i++) {
        if (!counts(c, &c->peer[i], now, ss))
            continue;
        required++;
        seen += peer_ok(&c->peer[i], now);
    }
    long long ms = (long long)(now - c->changed_ms);
    if (!c->changed || seen == required) {
        c->confirmed = true;
        c->waiting = false;
        if (required == 0)
            snprintf(msg, msglen, "applied (no balancer polling)");
        else
            snprintf(msg, msglen, "confirmed by %d balancer(s) in %lld ms", seen, ms);
        return 0;
    }
    if (!c->waiting || now >= bg_confirm_deadline(c, now)) {
        c->waiting = false;
        snprintf(msg, msglen, "unconfirmed: %d of %d balancer(s) confirmed within %lld ms", seen,
                 required, ms);
        return -1;
    }
    return 1;
}

void bg_confirm_describe(const struct bg_confirm *c, const struct bg_confirm_peer *p, char *buf,
                         size_t len)
{
    if (p->send_state) {
        char w[48];
        bg_server_state_word(&p->last, w, sizeof(w));
        snprintf(buf, len, "%s (node %s, name %s, last state %s%s)", p->addr,
                 p->node[0] ? p->node : "?", p->name[0] ? p->name : "?", w,
                 p->soft404 ? ", soft stop on 404" : "");
    } else {
        snprintf(buf, len, "%s (%d of %d polls answered with the new state)", p->addr,
                 p->since_change, c->polls);
    }
}
