/* ctl_internal.h -- what crosses the files of bg-controller (not for other programs).
 *
 * controller.c  the main loop, reconcile (observe, plan, act) and the calls to agents
 * election.c    join the election, lead, stop leading
 * observe.c     read /active_color and the instance nodes of /blue and /green
 * shaping.c     read /canary and /drain/<id> (traffic shaping, DESIGN §12)
 * routers.c     read /routers/<id>: the bg-routers a switch waits for (DESIGN §13)
 * record.c      /status and /history: what the leader tells the world
 * http.c        the daemon's own HTTP endpoints (/health, /metrics)
 *
 * Everything here runs on the main loop's thread unless it says otherwise. */
#ifndef BG_CTL_INTERNAL_H
#define BG_CTL_INTERNAL_H

#include "controller.h"

/* rel ("/status", "/blue", ...) under the configured root, into buf. Can't fail (a path too
 * long for buf is cut). */
static inline void bg_ctl_zpath(struct bg_ctl *c, const char *rel, char *buf, size_t len)
{
    bg_zk_path(&c->zk, rel, buf, len);
}

/* ---- election.c ---------------------------------------------------------------------- */

/* Join the election if we have no node, then lead (once /status could be read: the colour
 * that served), or follow, watching only the predecessor; a leader whose node vanished or
 * that finds a lower node steps down. Failures are logged and retried next turn. */
void bg_ctl_election_step(struct bg_ctl *c);

/* Stop leading: forget the observed members and nodes and any switch in progress.
 * drop_node: our election node is gone (or about to be, with the session), so the next
 * election step joins afresh. Can't fail. */
void bg_ctl_lose_leadership(struct bg_ctl *c, const char *why, bool drop_node);

/* Is our election node still the lowest live one? 1 yes, 0 no, BG_EZK when /election could not
 * be read (nothing is known then, and nobody steps down for it). No side effects. */
int bg_ctl_still_lowest(struct bg_ctl *c);

/* ---- observe.c ----------------------------------------------------------------------- */

/* Instance node events and read answers wake the loop through c->zk.wake_fd from init on;
 * stop before the ZooKeeper handle (and its wake fd) goes away. */
void bg_ctl_observe_init(struct bg_ctl *c);
void bg_ctl_observe_stop(void);

/* Forget every member and node read (c->m, c->nodes): leadership lost, or the end. Call it
 * after the handle is closed at the end (answers in flight hold references). */
void bg_ctl_observe_clear(struct bg_ctl *c);

/* Read /active_color and every member afresh into c (desired, desired_problem, m, n),
 * carrying over what calls taught us of each member. Returns BG_OK, or BG_EZK when the state
 * could not be read whole this turn (c->m is then left as it was; reads go on next turn). */
int bg_ctl_read_state(struct bg_ctl *c);

/* ---- shaping.c ----------------------------------------------------------------------- */

/* Read /canary and the /drain/<id> nodes (watched: a change wakes the loop) into c->canary,
 * c->canary_problem, c->drain_problem, and mark each member of c->m that a drain names
 * (drained, drain_reason). A node that cannot be read keeps what was known of it. Logs a
 * change once. Can't fail. */
void bg_ctl_read_shaping(struct bg_ctl *c);
/* ---- routers.c ------------------------------------------------------------------------ */
/* Read every /routers/<id> (watched) into c->routers. Returns 0, or -1 when they could not be
 * read now (what was read before is kept). */
int bg_ctl_read_routers(struct bg_ctl *c);
/* Forget the routers read (leadership lost, the end). */
void bg_ctl_routers_clear(struct bg_ctl *c);

/* Forget the drains read (leadership lost, the end). */
void bg_ctl_shaping_clear(struct bg_ctl *c);

/* Bumped (from the library's completion thread) when a watched node changed or went, or a
 * batch of reads was answered: the loop reads again when it differs from what it saw. */
unsigned bg_ctl_node_changes(void);

/* ---- record.c ------------------------------------------------------------------------ */

/* Record the plan's outcome: the phase and reason (c->status_dirty, c->status_urgent when the
 * phase changed), then the switch and fallback bookkeeping that appends /history entries. */
void bg_ctl_record_plan(struct bg_ctl *c, const struct bg_plan *p);

/* Append a /history entry for an event that is not a switch: {"kind": kind ("drain",
 * "canary"), "from"/"to": color, "result", "reason", ...}. Failures are logged. */
void bg_ctl_history_event(struct bg_ctl *c, const char *kind, const char *color, const char *result,
                          const char *reason);

/* One instance's outcome in the switch in progress (for /history); nothing outside one. */
void bg_ctl_outcome(struct bg_ctl *c, const struct bg_member *m, const char *what);

/* How long the desired colour must stay healthy before a fallback ends (doubles with each
 * recent fallback). */
int64_t bg_ctl_fallback_hold(const struct bg_ctl *c);

/* /status as the leader has it now, without "updated" (a new reference; the status page
 * shows it, bg_ctl_write_status publishes it). */
json_t *bg_ctl_status_doc(struct bg_ctl *c);
/* Write /status if its contents changed (compare-and-set on its version). Sets c->deposed
 * when the write proved someone else leads; a failure is logged and the write stays due. */
void bg_ctl_write_status(struct bg_ctl *c);

/* /status changed under us: mark it to be rewritten when we provably still lead, or set
 * c->deposed when we provably do not. */
void bg_ctl_check_status_version(struct bg_ctl *c);

/* ---- http.c -------------------------------------------------------------------------- */

/* Serve /health and /metrics on conf->http.listen (nothing when not configured). Returns
 * BG_OK, or BG_EINVAL (logged) when it cannot listen. stop is safe after a failed start. */
int bg_ctl_http_start(struct bg_ctl *c);
void bg_ctl_http_stop(struct bg_ctl *c);

#endif
