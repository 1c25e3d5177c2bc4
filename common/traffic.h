/* traffic.h -- traffic shaping's pure parts: /canary and /drain/<id> data, canary weights. */
#ifndef BG_TRAFFIC_H
#define BG_TRAFFIC_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>

/* What /canary asks for (DESIGN §12): percent % of the traffic to color. */
struct bg_canary {
    enum bg_color color; /* BG_COLOR_INVALID: no canary */
    int percent;         /* 1-99 when color is set, else 0 */
};

/* The longest /drain/<id> reason kept (bytes); a longer one is malformed. */
#define BG_DRAIN_REASON_MAX 200

/* Parse /canary's data (not NUL-terminated): "<colour> <percent>" with blue|green, 1-99
 * (an optional '%' sign), ASCII white space around and between; missing, empty or "0"
 * is no canary. Returns 0 with *out set, or -1 with the reason in why and *out untouched.
 * Pure; never fails otherwise. */
int bg_parse_canary(const char *data, size_t len, struct bg_canary *out, char *why, size_t whylen);

/* Parse a /drain/<id> node's data: a free-text reason, at most BG_DRAIN_REASON_MAX bytes of
 * valid UTF-8 without control characters (tab allowed), white space trimmed; empty is fine.
 * Returns 0 with the reason in reason (rlen > BG_DRAIN_REASON_MAX), or -1 with why. Pure. */
int bg_parse_drain(const char *data, size_t len, char *reason, size_t rlen, char *why,
                   size_t whylen);

/* Is name usable as an instance id in /drain/<id> (what an agent may register: 1-128 bytes of
 * [A-Za-z0-9._:-], not "." or "..")? Pure. */
bool bg_drain_id_ok(const char *name);

/* Per-instance weights (1-100, percent of each server's configured weight) that give n_c
 * canary instances pct % of the traffic and n_a active ones the rest: n_c*w_c / (n_c*w_c +
 * n_a*w_a) as near pct/100 as whole weights allow, the larger of the two 100. With no
 * instance on one side, that side's weight is 100. Pure. */
void bg_canary_weights(int n_c, int n_a, int pct, int *w_c, int *w_a);

/* The number of canary instances (1..n_c, 0 when n_c is 0) to mark UP beside n_a active ones
 * (all at the same weight) whose share k/(k+n_a) is nearest pct %: a balancer that cannot
 * weight gets an instance-count canary. Pure. */
int bg_canary_count(int n_c, int n_a, int pct);

/* The share (0-100, %) n_c instances at w_c take beside n_a at w_a. Pure. */
double bg_canary_share(int n_c, int w_c, int n_a, int w_a);

#endif
