/* election.c -- bg-controller: leader election (lowest live /election member leads; each
 * candidate watches only its predecessor), taking the lead and losing it. */
#include "ctl_internal.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------------------
 * Election: lowest sequence leads; each candidate watches only its predecessor.
 * ------------------------------------------------------------------------------------- */

/* A name or path's election sequence number; -1 for a node that is not an election member. */
static long long seq_of(const char *name)
{
    const char *base = strrchr(name, '/');
    return (long long)bg_election_seq(base ? base + 1 : name);
}

/* A member node of our own session, made by an earlier create whose answer came too late
 * (ZOPERATIONTIMEOUT): it is adopted, not left behind as a phantom predecessor of ours.
 * Returns 1 when adopted, 0 when there is none, or a negative error. */
static int adopt_election_node(struct bg_ctl *c)
{
    struct bg_election_member *m = NULL;
    size_t n = 0;
    if (bg_zk_election_members(&c->zk, 0, &m, &n) != ZOK)
        return BG_EZK;
    int found = 0;
    int64_t sid = bg_zk_session(&c->zk);
    for (size_t i = 0; i < n && !found; i++) {
        if (sid == 0 || m[i].owner != sid)
            continue;
        bg_ctl_zpath(c, "/election/", c->election_node, sizeof(c->election_node));
        size_t l = strlen(c->election_node);
        snprintf(c->election_node + l, sizeof(c->election_node) - l, "%s", m[i].name);
        found = 1;
    }
    free(m);
    if (found) {
        c->epoch = seq_of(c->election_node);
        bg_info("election_joined", "node=%s epoch=%lld adopted=true", c->election_node,
                (long long)c->epoch);
    }
    return found;
}

static int join_election(struct bg_ctl *c)
{
    if (bg_zk_ensure(&c->zk, "/election") != 0)
        return BG_EZK;
    int adopted = adopt_election_node(c);
    if (adopted != 0)
        return adopted > 0 ? BG_OK : BG_EZK;
    char prefix[600], host[256] = "";
    bg_ctl_zpath(c, "/election/member-", prefix, sizeof(prefix));
    gethostname(host, sizeof(host) - 1);
    json_t *j = json_pack("{s:s, s:o, s:i}", "id", c->conf->id, "host", bg_json_text(host, 0),
                          "pid", (int)getpid());
    char *data = bg_json_dumps_safe(j, JSON_COMPACT, "election");
    json_decref(j);
    int rc =
        bg_zk_create(&c->zk, prefix, data, (int)strlen(data), bg_zk_acl(&c->zk),
                     ZOO_EPHEMERAL | ZOO_SEQUENCE, c->election_node, (int)sizeof(c->election_node));
    free(data);
    if (rc != ZOK) {
        c->election_node[0] = '\0';
        bg_warn("election_join_failed", "rc=%s", zerror(rc));
        return BG_EZK;
    }
    c->epoch = seq_of(c->election_node);
    bg_info("election_joined", "node=%s epoch=%lld", c->election_node, (long long)c->epoch);
    return BG_OK;
}

/* A node's whole data, whatever its size (ZooKeeper's limit is about 1 MB): the size is read
 * first and the buffer sized to it; read again if it grew in between. NULL when missing or on
 * an error; caller frees. */
static char *read_whole(struct bg_ctl *c, const char *path, size_t *len_out, int *rc_out)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        struct Stat st;
        *rc_out = bg_zk_exists(&c->zk, path, 0, &st);
        if (*rc_out != ZOK)
            return NULL;
        int cap = st.dataLength + 1024; /* room to notice growth */
        char *buf = bg_xmalloc((size_t)cap + 1);
        int len = cap;
        *rc_out = bg_zk_get(&c->zk, path, 0, buf, &len, &st);
        if (*rc_out != ZOK) {
            free(buf);
            return NULL;
        }
        if (len >= 0 && len < cap && st.dataLength == len) {
            buf[len] = '\0';
            *len_out = (size_t)len;
            return buf;
        }
        free(buf); /* it grew past our buffer: again */
    }
    return NULL;
}

/* Take the lead: learn from /status which colour the previous leader had converged on (for
 * the history, and because a colour that has served is kept UP while a switch is blocked).
 * When /status cannot be read now (a call that ran out of the loop's budget, a lost
 * connection) we do not lead yet: taking over as if nothing had ever served would write a
 * history entry from "none" and leave the serving colour unknown. Returns whether we lead. */
static bool become_leader(struct bg_ctl *c)
{
    char path[600];
    bg_ctl_zpath(c, "/status", path, sizeof(path));
    size_t len = 0;
    int rc = ZOK;
    char *buf = read_whole(c, path, &len, &rc);
    if (buf == NULL && rc != ZNONODE) {
        bg_warn("leader_deferred", "epoch=%lld rc=%s reason=\"cannot read /status yet\"",
                (long long)c->epoch, zerror(rc));
        return false;
    }
    c->leader = true;
    c->leader_since_wall = bg_wall_ms();
    c->need_read = true;
    c->probe_read = true;
    c->status_version = -1;
    c->status_dirty = true;
    c->status_urgent = true;
    c->last_up_ms = 0;
    c->phase = BG_PHASE_IDLE;
    c->fallback = false;
    c->applied = BG_COLOR_INVALID;
    bg_zk_ensure(&c->zk, "/blue");
    bg_zk_ensure(&c->zk, "/green");
    if (buf != NULL && len > 0) {
        json_t *j = json_loadb(buf, len, 0, NULL);
        const char *ap = json_string_value(json_object_get(j, "applied"));
        if (ap != NULL)
            c->applied = bg_parse_color(ap, strlen(ap));
        else
            bg_warn("status_unreadable", "bytes=%zu reason=\"no applied colour in /status\"", len);
        json_decref(j);
    }
    free(buf);
    bg_info("leader_elected", "epoch=%lld node=%s previous_applied=%s", (long long)c->epoch,
            c->election_node, bg_color_name(c->applied));
    return true;
}

/* Safety net of a waiting standby: /election is read again this often even without a watch. */
#define BG_ELECTION_RECHECK_MS 2000

void bg_ctl_election_step(struct bg_ctl *c)
{
    unsigned ev = atomic_load(&c->zk.node_events); /* the predecessor's watch counts here */
    int64_t now = bg_now_ms();
    if (c->follower_waiting && !c->leader && c->election_node[0] != '\0' &&
        ev == c->election_seen && now - c->election_read_ms < BG_ELECTION_RECHECK_MS)
        return; /* no watch fired: the predecessor is still there */
    c->follower_waiting = false;
    c->election_seen = ev; /* read before the calls: an event during them runs us again */
    c->election_read_ms = now;
    if (c->election_node[0] == '\0' && join_election(c) != 0)
        return;
    char dir[600];
    bg_ctl_zpath(c, "/election", dir, sizeof(dir));
    for (int round = 0; round < 5; round++) {
        struct bg_election_member *m = NULL;
        size_t n = 0;
        int rc = bg_zk_election_members(&c->zk, 0, &m, &n);
        if (rc != ZOK)
            return;
        const char *mine = strrchr(c->election_node, '/') + 1;
        long long my_seq = seq_of(mine), pred_seq = -1;
        char pred[256] = "";
        bool present = false;
        /* Live (ephemeral) members only: a persistent member-... made by hand is never obeyed. */
        for (size_t i = 0; i < n; i++) {
            long long s = (long long)m[i].seq;
            if (strcmp(m[i].name, mine) == 0)
                present = true;
            else if (s < my_seq && s > pred_seq) {
                pred_seq = s;
                snprintf(pred, sizeof(pred), "%s", m[i].name);
            }
        }
        free(m);
        if (!present) {
            /* Our node was deleted under us (by hand?): we can no longer claim to lead. */
            bg_ctl_lose_leadership(c, "election node vanished", true);
            return;
        }
        if (pred_seq < 0) {
            if (!c->leader)
                become_leader(c);
            return;
        }
        if (c->leader)
            bg_ctl_lose_leadership(c, "a lower election node exists", false);
        char p[900];
        struct Stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, pred);
        rc = bg_zk_exists(&c->zk, p, 1, &st);
        if (rc == ZOK) {
            c->follower_waiting = true;
            return; /* follower; the watch wakes us when the predecessor goes */
        }
    }
}

/* Is our election node still the lowest live one? Persistent nodes made by hand do not count.
 * Returns 1 yes, 0 no, or BG_EZK when /election could not be read (a call that ran out of the
 * loop's budget, or a lost connection): nothing is known then, and nobody steps down for it.
 * (No side effects.) */
int bg_ctl_still_lowest(struct bg_ctl *c)
{
    struct bg_election_member *m = NULL;
    size_t n = 0;
    if (c->election_node[0] == '\0')
        return 0;
    int rc = bg_zk_election_members(&c->zk, 0, &m, &n);
    if (rc != ZOK) {
        free(m);
        bg_warn("election_unreadable", "rc=%s action=retry_later", zerror(rc));
        return BG_EZK;
    }
    const char *mine = strrchr(c->election_node, '/') + 1;
    bool lowest = n > 0 && strcmp(m[0].name, mine) == 0;
    free(m);
    return lowest ? 1 : 0;
}

/* Stop leading. drop_node: our election node is gone (or about to be, with the session), so
 * the next election step joins afresh. */
void bg_ctl_lose_leadership(struct bg_ctl *c, const char *why, bool drop_node)
{
    if (c->leader)
        bg_warn("leadership_lost", "epoch=%lld reason=\"%s\"", (long long)c->epoch, why);
    c->leader = false;
    if (drop_node)
        c->election_node[0] = '\0';
    bg_ctl_observe_clear(c);
    if (c->in_switch) {
        json_decref(c->sw_outcome);
        c->sw_outcome = NULL;
        c->in_switch = false;
    }
}
