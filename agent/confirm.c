/* confirm.c -- tracks which balancers poll us and whether they have seen a change. */
#include "confirm.h"

#include <stdio.h>
#include <string.h>

void bg_confirm_init(struct bg_confirm *c, int64_t window_ms, int64_t timeout_ms, int polls)
{
    memset(c, 0, sizeof(*c));
    c->window_ms = window_ms;
    c->timeout_ms = timeout_ms;
    c->polls = polls > 0 ? polls : 1;
    c->min_peer_polls = 1;
}

bool bg_confirm_start(struct bg_confirm *c, int64_t now)
{
    int required = 0;
    for (int i = 0; i < c->n_peers; i++) {
        c->peer[i].since_change = 0;
        c->peer[i].required =
            c->peer[i].polls >= c->min_peer_polls && now - c->peer[i].last_ms <= c->window_ms;
        required += c->peer[i].required;
    }
    c->changed_ms = now;
    c->waiting = required > 0;
    return c->waiting;
}

void bg_confirm_polled(struct bg_confirm *c, const char *addr, int64_t now)
{
    int i;
    for (i = 0; i < c->n_peers; i++)
        if (strcmp(c->peer[i].addr, addr) == 0)
            break;
    if (i == c->n_peers) {
        if (c->n_peers == BG_CONFIRM_MAX_PEERS) {
            /* Forget the peer silent the longest. */
            int old = 0;
            for (int j = 1; j < c->n_peers; j++)
                if (c->peer[j].last_ms < c->peer[old].last_ms)
                    old = j;
            i = old;
        } else {
            c->n_peers++;
        }
        memset(&c->peer[i], 0, sizeof(c->peer[i]));
        snprintf(c->peer[i].addr, sizeof(c->peer[i].addr), "%s", addr);
    }
    c->peer[i].last_ms = now;
    c->peer[i].polls++;
    if (c->waiting)
        c->peer[i].since_change++;
}

int bg_confirm_check(struct bg_confirm *c, int64_t now, char *msg, size_t msglen)
{
    if (!c->waiting) {
        snprintf(msg, msglen, "applied (no balancer polling)");
        return 0;
    }
    int required = 0, seen = 0;
    for (int i = 0; i < c->n_peers; i++) {
        if (!c->peer[i].required)
            continue;
        required++;
        if (c->peer[i].since_change >= c->polls)
            seen++;
    }
    long long ms = (long long)(now - c->changed_ms);
    if (seen == required) {
        c->waiting = false;
        snprintf(msg, msglen, "confirmed by %d balancer(s) in %lld ms", seen, ms);
        return 0;
    }
    if (now - c->changed_ms >= c->timeout_ms || (c->limit_ms > 0 && now >= c->limit_ms)) {
        c->waiting = false;
        snprintf(msg, msglen, "unconfirmed: %d of %d balancer(s) polled within %lld ms", seen,
                 required, ms);
        return -1;
    }
    return 1;
}

int bg_confirm_active_peers(const struct bg_confirm *c, int64_t now)
{
    int n = 0;
    for (int i = 0; i < c->n_peers; i++)
        n += c->peer[i].polls >= c->min_peer_polls && now - c->peer[i].last_ms <= c->window_ms;
    return n;
}
