/* bgctl.h -- what bgctl's files share: exit codes, the parsed command line, ZooKeeper reads and
 * the commands (bgctl.c: main and the command table; bgctl_switch.c: init, switch, rollback,
 * wait; bgctl_status.c: status, history; bgctl_shape.c: canary, drain, undrain). */
#ifndef BG_BGCTL_H
#define BG_BGCTL_H

#include "util.h"
#include "zk.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes CI can rely on. */
#define EXIT_CONVERGED 0
#define EXIT_ERROR 1
#define EXIT_BLOCKED 2
#define EXIT_TIMEOUT 3
#define EXIT_USAGE 64

/* The command line, parsed, and the ZooKeeper session the command runs in. */
struct ctl {
    struct bg_zk zk;
    const char *connect, *root, *auth; /* -z, -r, -a (or $BG_ZK, $BG_ROOT, $BG_ZK_AUTH) */
    bool json;
    bool wait;
    int64_t timeout_ms;
    const char *color;    /* init --color */
    long limit;           /* history -n */
    enum bg_color target; /* switch's and canary's colour */
    int percent;          /* canary's PERCENT */
    bool abort_canary;    /* canary --abort */
    const char *id;       /* drain's and undrain's ID */
    const char *reason;   /* drain --reason */
    const char *steps;    /* canary --steps "10,25,50" (NULL: one percent) */
    int64_t every_ms;     /* canary --every: how long each step is held */
};

/* zerror() plus what to do about the one error users can fix themselves. Never NULL. */
const char *bgctl_why(int rc);
/* Read a node into a malloc'd NUL-terminated buffer (NULL if missing or on error; then *st is
 * zeroed and *rc_out says why). watch: a watch is left, on the node or on its creation. */
char *bgctl_get(struct ctl *c, const char *rel, int watch, struct Stat *st, int *rc_out);
/* A node's JSON (a new reference), or NULL when missing, unreadable or not JSON. */
json_t *bgctl_get_json(struct ctl *c, const char *rel, int watch);
/* A node's children, sorted; the caller deallocates kids. Returns the ZooKeeper code. */
int bgctl_children(struct ctl *c, const char *rel, struct String_vector *kids);
/* The current leader's id (see bgctl.c). Returns ZOK or the error that kept us from knowing. */
int bgctl_leader_id(struct ctl *c, char **out);

/* The commands, run once connected: each returns the exit status and says on stdout/stderr. */
int bgctl_cmd_init(struct ctl *c);
int bgctl_cmd_switch(struct ctl *c);
int bgctl_cmd_rollback(struct ctl *c);
int bgctl_cmd_wait(struct ctl *c);
int bgctl_cmd_status(struct ctl *c);
int bgctl_cmd_history(struct ctl *c);
/* bgctl_shape.c */
int bgctl_cmd_canary(struct ctl *c);
int bgctl_cmd_drain(struct ctl *c);
int bgctl_cmd_undrain(struct ctl *c);

#endif
