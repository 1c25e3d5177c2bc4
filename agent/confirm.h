/* confirm.h -- confirmed propagation: a change counts once polling balancers have seen it. */
#ifndef BG_CONFIRM_H
#define BG_CONFIRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_CONFIRM_MAX_PEERS 32

/* Each distinct peer address that polls is one balancer. A change made at time T is confirmed
 * once every peer that had polled at least min_peer_polls times, the last time within
 * poll_window before T, has polled `polls` times since T (each answered with the new state),
 * or "unconfirmed" after timeout. */
struct bg_confirm {
    struct {
        char addr[64];
        int64_t last_ms;
        int since_change;
        unsigned polls; /* in all; a peer that polled once (a stray curl) is no balancer */
        bool required;
    } peer[BG_CONFIRM_MAX_PEERS];
    int n_peers;
    int64_t window_ms, timeout_ms;
    int polls;
    unsigned min_peer_polls; /* polls before a peer counts as a balancer (default 1) */
    bool waiting;
    int64_t changed_ms;
    int64_t limit_ms; /* absolute monotonic ms after which waiting stops (0: only timeout) */
};

void bg_confirm_init(struct bg_confirm *c, int64_t window_ms, int64_t timeout_ms, int polls);
/* A change happened now. Returns true if someone must confirm it, false when no balancer is
 * polling (the change is applied at once). */
bool bg_confirm_start(struct bg_confirm *c, int64_t now);
/* A peer polled and was answered with the current (new) state. */
void bg_confirm_polled(struct bg_confirm *c, const char *addr, int64_t now);
/* 0 confirmed, 1 still waiting, -1 timed out; msg describes the outcome. */
int bg_confirm_check(struct bg_confirm *c, int64_t now, char *msg, size_t msglen);
/* Peers that polled within the window (for metrics and status). */
int bg_confirm_active_peers(const struct bg_confirm *c, int64_t now);

#endif
