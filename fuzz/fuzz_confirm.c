/* fuzz_confirm.c -- libFuzzer target: the confirmation tracker (agent/confirm.c) driven by a
 * model of HAProxy 2.6's health checks, checking that a change is confirmed only when the
 * balancer really acts on it.
 *
 * The input is a script: a configuration (one or two HAProxy, each with its rise, fall, inter
 * and whether it has "http-check disable-on-404"; the agent's out_of_service_code and
 * confirm_polls), then operations: a check by one HAProxy (its X-Haproxy-Server-State header
 * built from the model, parsed by bg_server_state_parse, the answer the agent's GET /health
 * gives, bg_confirm_polled, then HAProxy's reaction to the answer), a status change (the
 * controller's PUT), the application turning healthy or failing, checks that never reach the
 * agent (network trouble: HAProxy counts a failure; a long partition makes the balancer fall
 * silent for longer than poll_window), and a repeated PUT (rearm).
 *
 * The model is HAProxy 2.6's src/check.c and src/tcpcheck.c as observed with 2.6.12 (see
 * README.md, "Out of service as 404"): health h in [0, rise + fall - 1]; a pass raises h and a
 * running or risen server is topped up to rise + fall - 1; a failure lowers h and below rise it
 * drops to 0 (DOWN); with disable-on-404 a 404 to a server that is not stopped is a
 * "conditional pass" that tops it up and puts it in NOLB (stopping), to a stopped server a
 * failure. The header is HAProxy's view before the check.
 *
 * The property: when the tracker first says a balancer confirmed the current change (for an UP
 * change only while the application stayed healthy: a failing application is answered 503 on
 * purpose), the model of that balancer is running and taking traffic for UP, and not running
 * (NOLB or DOWN) for OUT_OF_SERVICE. Also: every message and description is JSON-safe, and
 * bg_confirm_check never returns anything but -1, 0, 1.
 *
 * agent-check (the haproxy-agent backend) is modelled too: the word read ("ready"/"drain",
 * drain while the application fails) is what HAProxy applies at once.
 *
 * Not modelled: a HAProxy reload between two checks (a fresh process starts every server at
 * health = rise, which can look like a rise 1 / fall 1 transition), a HAProxy that stops
 * checking without counting failures (frozen) and then checks at another cadence, and
 * balancers without send-state (counted polls are exact only with confirm_polls >=
 * max(rise, fall) and no check lost on the way). HAProxy checks at a regular interval, each
 * check up to a quarter interval late. */
#include "confirm.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BG_FUZZ_TRACE=1: print every step (to replay a finding by hand). */
static int trace = -1;
#define TRACE(...)                                                                                 \
    do {                                                                                           \
        if (trace)                                                                                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

#define MAX_OPS 400

struct reader {
    const uint8_t *p;
    size_t n;
};

static unsigned next(struct reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

enum run_state { STOPPED, RUNNING, STOPPING };

struct lb {
    int rise, fall;
    bool d404;     /* http-check disable-on-404 */
    int64_t inter; /* ms */
    int64_t next;  /* when its next check is due */
    int h;         /* check health */
    enum run_state st;
    bool word_ready; /* agent-check: the last word read */
    bool checked;    /* the current change's confirmation has been checked against the model */
};

struct world {
    struct bg_confirm c;
    struct lb lb[2];
    int n_lb;
    bool agent_check; /* model agent-check instead of httpchk + send-state */
    int out_code;
    bool up;            /* what the agent serves (the last status applied) */
    bool healthy;       /* the application */
    bool healthy_since; /* healthy since the current change was made */
    int64_t now;
};

static void header(const struct lb *b, int i, char *buf, size_t len)
{
    int max = b->rise + b->fall - 1;
    char word[32];
    if (b->st != STOPPED) {
        const char *w = b->st == STOPPING ? "NOLB" : "UP";
        if (b->h == max)
            snprintf(word, sizeof(word), "%s", w);
        else
            snprintf(word, sizeof(word), "%s %d/%d", w, b->h - b->rise + 1, b->fall);
    } else if (b->h > 0) {
        snprintf(word, sizeof(word), "DOWN %d/%d", b->h, b->rise);
    } else {
        snprintf(word, sizeof(word), "DOWN");
    }
    snprintf(buf, len,
             "%s; address=127.0.0.1; port=8080; name=be/web-1; node=lb%d; weight=1/2; "
             "scur=0/0; qcur=0",
             word, i);
}

/* HAProxy's reaction to one check result: code 200/404/503, or 0 for a check that never
 * reached the agent. */
static void react(struct lb *b, int code)
{
    int max = b->rise + b->fall - 1;
    bool pass = code == 200;
    bool cond = code == 404 && b->d404 && b->st != STOPPED;
    if (pass || cond) {
        if (b->h < max && (pass || b->h > 0)) {
            b->h++;
            if (b->h >= b->rise)
                b->h = max;
        }
        if (b->h >= b->rise)
            b->st = pass ? RUNNING : STOPPING;
        return;
    }
    if (b->h > 0) {
        b->h--;
        if (b->h < b->rise)
            b->h = 0;
    }
    if (b->h == 0)
        b->st = STOPPED;
}

static void check_json(const char *s, size_t cap, const char *what)
{
    bg_fuzz_require(memchr(s, '\0', cap) != NULL, what);
    bg_fuzz_require_json_safe(s, what);
}

/* The property, for every balancer whose tracker peer has confirmed since the last call. */
static void verify(struct world *w)
{
    if (!w->c.changed)
        return;
    for (int i = 0; i < w->n_lb; i++) {
        struct lb *b = &w->lb[i];
        if (b->checked)
            continue;
        char node[16];
        snprintf(node, sizeof(node), "lb%d", i);
        const struct bg_confirm_peer *p = NULL;
        for (int k = 0; k < w->c.n_peers; k++) {
            const struct bg_confirm_peer *q = &w->c.peer[k];
            if (w->agent_check ? strcmp(q->addr, node) == 0 : strcmp(q->node, node) == 0)
                p = q;
        }
        if (p == NULL || !bg_confirm_peer_ok(p, w->now))
            continue;
        /* Judged as of the moment it confirmed (ok_ms: the deciding poll + read_ms, or the
         * poll whose header showed it), when it counted as a balancer. The model has not
         * changed since: verify() runs before every check is applied. */
        b->checked = true;
        if (!bg_confirm_counts(&w->c, p, p->ok_ms))
            continue;
        if (w->c.target_up && !w->healthy_since)
            continue; /* a failing application is answered 503 on purpose */
        char d[400];
        bg_confirm_describe(&w->c, p, d, sizeof(d));
        char msg[900];
        if (w->agent_check) {
            snprintf(msg, sizeof(msg), "agent-check: %s confirmed, HAProxy last read %s (%s)",
                     w->c.target_up ? "UP" : "OUT", b->word_ready ? "ready" : "drain", d);
            bg_fuzz_require(b->word_ready == w->c.target_up, msg);
            continue;
        }
        char hdr[200];
        header(b, i, hdr, sizeof(hdr));
        snprintf(msg, sizeof(msg), "%s confirmed while HAProxy (rise %d fall %d%s) shows %s (%s)",
                 w->c.target_up ? "UP" : "OUT", b->rise, b->fall, b->d404 ? " disable-on-404" : "",
                 hdr, d);
        bg_fuzz_require(w->c.target_up ? b->st == RUNNING : b->st != RUNNING, msg);
    }
}

/* The balancer whose next check comes first: HAProxy checks at its own cadence, so time only
 * moves from one due check to the next (each made, or lost). */
static int due(const struct world *w)
{
    return w->n_lb > 1 && w->lb[1].next < w->lb[0].next ? 1 : 0;
}

/* The due check never reaches the agent: HAProxy counts a failure (agent-check: HAProxy keeps
 * the last word, an unreachable agent changes nothing). */
static void lose(struct world *w)
{
    int i = due(w);
    struct lb *b = &w->lb[i];
    w->now = w->now > b->next ? w->now : b->next;
    verify(w);
    b->next = w->now + b->inter;
    if (!w->agent_check)
        react(b, 0);
    TRACE("%7lld lb%d check lost (a failure the agent never saw)\n", (long long)w->now, i);
}

static void poll_http(struct world *w, int i, struct reader *r)
{
    struct lb *b = &w->lb[i];
    int64_t jitter = (int64_t)(next(r) % 16) * b->inter / 64; /* < inter / 4 */
    w->now = (w->now > b->next ? w->now : b->next) + jitter;
    verify(w); /* confirmations that came due before this check */
    b->next = w->now + b->inter;
    char hdr[200];
    header(b, i, hdr, sizeof(hdr));
    struct bg_server_state ss;
    bg_fuzz_require(bg_server_state_parse(hdr, strlen(hdr), &ss) == 0, "model header refused");
    int code = bg_health_answer_code(w->up, w->healthy, w->out_code);
    struct bg_poll p = {.addr = "127.0.0.1",
                        .user_agent = NULL,
                        .ss = &ss,
                        .answered_current = (code == 200) == w->up,
                        .answered_up = code == 200,
                        .answered_soft = code == 404};
    bg_confirm_polled(&w->c, &p, w->now);
    react(b, code);
    char after[200];
    header(b, i, after, sizeof(after));
    if (trace) {
        const struct bg_confirm_peer *q = NULL;
        for (int k = 0; k < w->c.n_peers; k++)
            if (strcmp(w->c.peer[k].node, ss.node) == 0)
                q = &w->c.peer[k];
        TRACE("%7lld lb%d check: %.12s answered %d -> %.12s  [tracker: interval %lld%s%s%s%s]\n",
              (long long)w->now, i, hdr, code, after, q ? (long long)q->interval_ms : -1LL,
              q && q->rise1 ? " rise1" : "", q && q->fall1 ? " fall1" : "",
              q && q->soft404 ? " soft404" : "", q && q->ok ? " ok" : "");
    }
    verify(w); /* the header itself may have confirmed */
}

static void poll_agent(struct world *w, int i, struct reader *r)
{
    struct lb *b = &w->lb[i];
    int64_t jitter = (int64_t)(next(r) % 16) * b->inter / 64;
    w->now = (w->now > b->next ? w->now : b->next) + jitter;
    verify(w);
    b->next = w->now + b->inter;
    bool ready = w->up && w->healthy;
    char addr[16];
    snprintf(addr, sizeof(addr), "lb%d", i);
    /* As backend_haproxy_agent.c: current when the word is the one it would write now. */
    struct bg_poll p = {.addr = addr, .answered_current = true, .answered_up = ready};
    bg_confirm_polled(&w->c, &p, w->now);
    b->word_ready = ready;
    TRACE("%7lld lb%d agent-check read %s\n", (long long)w->now, i, ready ? "ready" : "drain");
    verify(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (trace < 0)
        trace = getenv("BG_FUZZ_TRACE") != NULL;
    struct reader r = {data, size};
    struct world w;
    memset(&w, 0, sizeof(w));
    unsigned cfg = next(&r);
    w.agent_check = (cfg & 1) != 0;
    w.n_lb = 1 + ((cfg >> 1) & 1);
    w.out_code = (cfg & 4) ? 404 : 503;
    int polls = 1 + (int)((cfg >> 3) % 5);
    bg_confirm_init(&w.c, 5000, 0, polls);
    w.c.check_agent = !w.agent_check;
    for (int i = 0; i < w.n_lb; i++) {
        unsigned a = next(&r), b = next(&r);
        struct lb *lb = &w.lb[i];
        lb->rise = 1 + (int)(a % 4);
        lb->fall = 1 + (int)((a >> 2) % 4);
        lb->d404 = (a & 16) != 0;
        lb->inter = 50 + (int64_t)(b % 40) * 50; /* 50 ms .. 2 s */
        /* A HAProxy that just started: every server at health = rise, running. */
        lb->h = lb->rise;
        lb->st = RUNNING;
        lb->next = 1000 + (int64_t)(next(&r) % 8) * lb->inter / 8;
        TRACE("lb%d: rise %d fall %d%s inter %lld\n", i, lb->rise, lb->fall,
              lb->d404 ? " disable-on-404" : "", (long long)lb->inter);
    }
    TRACE("%s, out_of_service_code %d, confirm_polls %d\n",
          w.agent_check ? "agent-check" : "httpchk send-state", w.out_code, polls);
    w.now = 1000;
    w.healthy = true;
    w.healthy_since = true;
    char msg[512] = "";
    for (int ops = 0; r.n > 0 && ops < MAX_OPS; ops++) {
        unsigned op = next(&r);
        switch (op % 8) {
        case 0:
        case 1:
        case 2:
        case 3: /* the next check (of whichever balancer is due) */
            if (w.agent_check)
                poll_agent(&w, due(&w), &r);
            else
                poll_http(&w, due(&w), &r);
            break;
        case 4: { /* the controller's PUT: a change when the status differs */
            bool up = (op & 8) != 0;
            if (up && !w.healthy)
                break;        /* a PUT of UP to an unhealthy instance is refused (503) */
            if (up != w.up) { /* as health_apply(): a new status starts a change */
                w.up = up;
                w.healthy_since = w.healthy;
                for (int k = 0; k < w.n_lb; k++)
                    w.lb[k].checked = false;
                bg_confirm_start(&w.c, up, w.now);
                TRACE("%7lld change to %s\n", (long long)w.now, up ? "UP" : "OUT_OF_SERVICE");
            } else {
                bg_confirm_rearm(&w.c, w.now);
            }
            break;
        }
        case 5: /* the application fails or recovers */
            w.healthy = !w.healthy;
            if (!w.healthy)
                w.healthy_since = false;
            TRACE("%7lld application %s\n", (long long)w.now, w.healthy ? "healthy" : "failing");
            break;
        case 6: { /* the next 1-3 checks never reach the agent */
            int k = 1 + (int)(next(&r) % 3);
            for (int j = 0; j < k; j++)
                lose(&w);
            break;
        }
        case 7: { /* a partition: no check reaches the agent for a while (possibly longer than
                   * poll_window); HAProxy goes on checking and counts each as a failure */
            int64_t until = w.now + (int64_t)next(&r) * 40;
            for (int j = 0; j < 200 && w.lb[due(&w)].next <= until; j++)
                lose(&w);
            for (int k = 0; k < w.n_lb; k++) /* beyond 200 lost checks it is DOWN anyway */
                if (w.lb[k].next <= until)
                    w.lb[k].next = until + w.lb[k].inter;
            w.now = until > w.now ? until : w.now;
            TRACE("%7lld (partition ends)\n", (long long)w.now);
            verify(&w);
            break;
        }
        }
        int rc = bg_confirm_check(&w.c, w.now, msg, sizeof(msg));
        bg_fuzz_require(rc >= -1 && rc <= 1, "bg_confirm_check: unexpected return");
        check_json(msg, sizeof(msg), "bg_confirm_check message");
        bg_fuzz_require(w.c.n_peers >= 0 && w.c.n_peers <= BG_CONFIRM_MAX_PEERS, "n_peers");
        int64_t d = bg_confirm_deadline(&w.c, w.now);
        bg_fuzz_require(d == 0 || w.c.waiting, "a deadline without a wait");
    }
    for (int k = 0; k < w.c.n_peers; k++) {
        char d[400];
        bg_confirm_describe(&w.c, &w.c.peer[k], d, sizeof(d));
        check_json(d, sizeof(d), "bg_confirm_describe");
    }
    return 0;
}
