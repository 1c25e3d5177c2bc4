/* controller.c -- bg-controller: election, observe, plan, act; /status and /history. */
#include "controller.h"
#include "calls.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HISTORY_KEEP 100
#define STATUS_MIN_INTERVAL_MS 200
/* Changes other than the phase (an instance's health, the reason's details) are written at
 * most this often: a flapping application must not turn into a stream of /status writes. */
#define STATUS_COALESCE_MS 500

static struct bg_ctl *signal_ctl;

static void zpath(struct bg_ctl *c, const char *rel, char *buf, size_t len)
{
    bg_zk_path(&c->zk, rel, buf, len);
}

/* ----------------------------------------------------------------------------------------
 * Members: parse node data, keep what we know across reads.
 * ------------------------------------------------------------------------------------- */

static void member_free(struct bg_member *m)
{
    bg_free(&m->endpoint);
    bg_free(&m->problem);
}

static void members_clear(struct bg_ctl *c)
{
    for (size_t i = 0; i < c->n; i++)
        member_free(&c->m[i]);
    free(c->m);
    c->m = NULL;
    c->n = 0;
}

/* The member's health from its node: the verdict, the check message, and since when (the
 * node's mtime, as the agent rewrites its node only when the verdict changes; it survives a
 * change of leader, unlike a time of our own). */
static void member_health(struct bg_member *m, const char *buf, int len, const struct Stat *st)
{
    m->healthy = bg_parse_member_health(buf, (size_t)len, m->check, sizeof(m->check));
    int64_t now = bg_now_ms(), age = bg_wall_ms() - st->mtime;
    m->healthy_since_ms = now - (age > 0 ? age : 0);
}

/* ----------------------------------------------------------------------------------------
 * Instance nodes: read all at once, kept, and read again only when they change.
 *
 * Thousands of nodes cannot be read one synchronous call after another within the loop's
 * ZooKeeper budget (BG_ZK_BUDGET_MS a turn): at 3900+3900 instances no read ever finished
 * and the leader never acted. So the nodes are read asynchronously, all at once, a read that
 * does not finish within a turn goes on in the next, and what was read is kept. Each node is
 * watched by a watcher of our own that names the node that changed or went, so that a change
 * (an application's health, an agent registering again) re-reads that node only.
 * ------------------------------------------------------------------------------------- */

/* The reads sent together, waited for together. */
struct node_batch {
    int refs;       /* the sender's, and one per read in flight */
    size_t pending; /* reads not answered yet */
};

/* One node's read, shared by its cache entry and the completion in flight. */
struct node_get {
    int refs;
    bool done;
    bool stale; /* the node changed after the read was sent: read it again */
    int rc;
    char *data; /* at most NODE_DATA_MAX bytes kept (the size is in st) */
    int len;
    struct Stat st;
    struct node_batch *batch; /* until answered */
};

/* A node of /blue or /green as last read. */
struct node_entry {
    char *name;           /* the child's name, as listed */
    struct node_get *get; /* a read in flight or answered, not yet taken (NULL: none) */
    bool parsed;          /* m holds the node's data */
    struct bg_member m;   /* the node as a member, without what calls taught us */
};

#define NODE_DATA_MAX 4096
/* Reads sent in one turn (the rest wait for the next): ZooKeeper throttles a client beyond
 * about a thousand outstanding requests anyway. */
#define NODE_READS_MAX 2000
/* Changed nodes listed at most (beyond that every node is read again). */
#define NODE_DIRTY_MAX 100000

/* Shared with the library's completion thread. */
static pthread_mutex_t node_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t node_cv;
static pthread_once_t node_cv_once = PTHREAD_ONCE_INIT;
static char **node_dirty; /* absolute paths of nodes changed or gone, not yet looked at */
static size_t n_dirty, cap_dirty;
static bool node_dirty_all;      /* too many to list: every node is read again */
static int node_wake_fd = -1;    /* the loop's wake fd (-1 once the controller is gone) */
static atomic_uint node_changes; /* bumped with each node_dirty addition and finished batch */

static void node_cv_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&node_cv, &a);
    pthread_condattr_destroy(&a);
}

/* node_mu held. */
static void node_wake_locked(void)
{
    if (node_wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(node_wake_fd, &one, sizeof(one));
        (void)w;
    }
}

/* node_mu held. */
static void node_batch_unref_locked(struct node_batch *b)
{
    if (b != NULL && --b->refs == 0)
        free(b);
}

/* node_mu held. */
static void node_get_unref_locked(struct node_get *g)
{
    if (g == NULL || --g->refs > 0)
        return;
    free(g->data);
    free(g);
}

static void node_get_unref(struct node_get *g)
{
    pthread_mutex_lock(&node_mu);
    node_get_unref_locked(g);
    pthread_mutex_unlock(&node_mu);
}

/* The library's completion thread: a node's data. */
static void on_node_data(int rc, const char *value, int value_len, const struct Stat *st,
                         const void *data)
{
    struct node_get *g = (struct node_get *)data;
    pthread_mutex_lock(&node_mu);
    g->rc = rc;
    if (rc == ZOK) {
        g->len = value == NULL || value_len < 0 ? 0 : value_len;
        if (g->len > NODE_DATA_MAX)
            g->len = NODE_DATA_MAX;
        g->data = bg_xmalloc((size_t)g->len + 1);
        if (g->len > 0)
            memcpy(g->data, value, (size_t)g->len);
        g->data[g->len] = '\0';
        if (st != NULL)
            g->st = *st;
    }
    g->done = true;
    if (--g->batch->pending == 0) {
        /* The whole batch is answered: whoever waits, and the loop if it went on. */
        pthread_cond_broadcast(&node_cv);
        atomic_fetch_add(&node_changes, 1);
        node_wake_locked();
    }
    node_batch_unref_locked(g->batch);
    g->batch = NULL;
    node_get_unref_locked(g);
    pthread_mutex_unlock(&node_mu);
}

/* The library's completion thread: a watched node changed or went. Only recorded. */
static void on_node_event(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)state;
    (void)ctx;
    if ((type != ZOO_CHANGED_EVENT && type != ZOO_DELETED_EVENT) || path == NULL)
        return;
    pthread_mutex_lock(&node_mu);
    if (n_dirty < NODE_DIRTY_MAX) {
        if (n_dirty == cap_dirty) {
            cap_dirty = cap_dirty ? cap_dirty * 2 : 64;
            node_dirty = bg_xrealloc(node_dirty, cap_dirty * sizeof(*node_dirty));
        }
        node_dirty[n_dirty++] = bg_xstrdup(path);
    } else {
        node_dirty_all = true;
    }
    atomic_fetch_add(&node_changes, 1);
    node_wake_locked();
    pthread_mutex_unlock(&node_mu);
}

static void node_entry_free(struct node_entry *e)
{
    free(e->name);
    node_get_unref(e->get);
    if (e->parsed)
        member_free(&e->m);
    memset(e, 0, sizeof(*e));
}

/* Forget every node read (leadership lost: the watches may be gone with the session). */
static void nodes_clear(struct bg_ctl *c)
{
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < c->n_nodes[k]; i++)
            node_entry_free(&c->nodes[k][i]);
        free(c->nodes[k]);
        c->nodes[k] = NULL;
        c->n_nodes[k] = 0;
    }
    pthread_mutex_lock(&node_mu);
    for (size_t i = 0; i < n_dirty; i++)
        free(node_dirty[i]);
    n_dirty = 0;
    node_dirty_all = false;
    pthread_mutex_unlock(&node_mu);
}

static int by_entry_name(const void *a, const void *b)
{
    return strcmp(((const struct node_entry *)a)->name, ((const struct node_entry *)b)->name);
}

static struct node_entry *find_entry(struct bg_ctl *c, enum bg_color color, const char *name)
{
    struct node_entry key = {.name = (char *)name};
    if (c->n_nodes[color] == 0)
        return NULL;
    return bsearch(&key, c->nodes[color], c->n_nodes[color], sizeof(key), by_entry_name);
}

/* The node changed or went: read it again (a read in flight may have its old data). */
static void node_invalidate(struct node_entry *e)
{
    if (e->parsed)
        member_free(&e->m);
    e->parsed = false;
    if (e->get != NULL) {
        pthread_mutex_lock(&node_mu);
        e->get->stale = true;
        pthread_mutex_unlock(&node_mu);
    }
}

/* Forget what we read of the nodes that changed or went since we last looked. */
static void nodes_take_changes(struct bg_ctl *c)
{
    pthread_mutex_lock(&node_mu);
    char **dirty = node_dirty;
    size_t n = n_dirty;
    bool all = node_dirty_all;
    node_dirty = NULL;
    n_dirty = cap_dirty = 0;
    node_dirty_all = false;
    pthread_mutex_unlock(&node_mu);
    char prefix[2][600];
    zpath(c, "/blue/", prefix[BG_BLUE], sizeof(prefix[BG_BLUE]));
    zpath(c, "/green/", prefix[BG_GREEN], sizeof(prefix[BG_GREEN]));
    for (int k = 0; k < 2; k++) {
        size_t pl = strlen(prefix[k]);
        for (size_t i = 0; i < c->n_nodes[k] && all; i++)
            node_invalidate(&c->nodes[k][i]);
        for (size_t i = 0; i < n && !all; i++) {
            struct node_entry *e = NULL;
            if (strncmp(dirty[i], prefix[k], pl) == 0)
                e = find_entry(c, (enum bg_color)k, dirty[i] + pl);
            if (e != NULL)
                node_invalidate(e);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(dirty[i]);
    free(dirty);
}

/* Parse an answered read into e->m. */
static void node_parse(struct node_entry *e, enum bg_color color, const struct node_get *g)
{
    struct bg_member *m = &e->m;
    memset(m, 0, sizeof(*m));
    bg_strlcpy_utf8(m->id, e->name, sizeof(m->id));
    bg_log_token(m->id, m->lid, sizeof(m->lid));
    m->color = color;
    m->czxid = g->st.czxid;
    char why[256];
    if (g->st.dataLength > NODE_DATA_MAX) {
        snprintf(why, sizeof(why), "node data too large (%d bytes)", g->st.dataLength);
        m->problem = bg_xstrdup(why);
    } else if ((m->endpoint = bg_parse_member_data(g->data, (size_t)g->len, why, sizeof(why))) ==
               NULL) {
        m->problem = bg_xstrdup(why);
    } else {
        member_health(m, g->data, g->len, &g->st);
    }
    e->parsed = true;
}

/* Send, as one batch, the reads this colour's entries need (at most *left of them; each node
 * watched by on_node_event). Returns the batch (NULL when nothing was sent; *rc says why when
 * a read could not be sent). */
static struct node_batch *nodes_send(struct bg_ctl *c, const char *dir, struct node_entry *e,
                                     size_t n, size_t *left, int *rc)
{
    pthread_once(&node_cv_once, node_cv_init);
    *rc = ZOK;
    struct node_batch *b = NULL;
    for (size_t i = 0; i<n && * left> 0; i++) {
        if (e[i].parsed || e[i].get != NULL)
            continue;
        if (c->zk.zh == NULL) {
            *rc = ZCONNECTIONLOSS;
            break;
        }
        if (b == NULL) {
            b = bg_xcalloc(1, sizeof(*b));
            b->refs = 1;
        }
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", dir, e[i].name);
        struct node_get *g = bg_xcalloc(1, sizeof(*g));
        g->refs = 2; /* the entry's and the completion's */
        g->batch = b;
        pthread_mutex_lock(&node_mu);
        b->refs++;
        b->pending++;
        pthread_mutex_unlock(&node_mu);
        *rc = zoo_awget(c->zk.zh, path, on_node_event, NULL, on_node_data, g);
        if (*rc != ZOK) {
            /* Not sent: its completion will never run. */
            pthread_mutex_lock(&node_mu);
            b->refs--;
            b->pending--;
            pthread_mutex_unlock(&node_mu);
            free(g);
            break;
        }
        e[i].get = g;
        (*left)--;
    }
    return b;
}

/* Wait for a batch's answers as zk.h's calls wait: with the daemon's wait hook (answering
 * HTTP every BG_ZK_HOOK_SLICE_MS, and saying when to give up) as long as the library lets
 * them; without one, within what is left of the turn's budget. Then let go of the batch
 * (answers that come later are taken by the next read). */
/* node_mu held. */
static bool batch_answered(void *arg)
{
    return ((struct node_batch *)arg)->pending == 0;
}

static void nodes_wait(struct bg_ctl *c, struct node_batch *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&node_mu);
    bg_zk_wait_until(&c->zk, &node_mu, &node_cv, batch_answered, b);
    node_batch_unref_locked(b);
    pthread_mutex_unlock(&node_mu);
}

/* Take the answers of a colour's reads: parsed, found gone (dropped), or to be sent again.
 * Returns whether every entry left is parsed. */
static bool nodes_collect(struct node_entry *e, size_t *n, enum bg_color color)
{
    bool complete = true;
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        struct node_get *g = e[i].get;
        bool gone = false;
        if (g != NULL) {
            pthread_mutex_lock(&node_mu);
            bool done = g->done, stale = g->stale;
            pthread_mutex_unlock(&node_mu);
            if (done) {
                /* Answered: the completion is done with it; a stale answer is sent again. */
                if (g->rc == ZOK && !stale)
                    node_parse(&e[i], color, g);
                gone = g->rc == ZNONODE && !stale;
                e[i].get = NULL;
                node_get_unref(g);
            }
        }
        if (gone) {
            node_entry_free(&e[i]); /* deleted since the listing */
            continue;
        }
        complete &= e[i].parsed;
        e[kept++] = e[i];
    }
    *n = kept;
    return complete;
}

/* Read the members of one colour into out (appended): list the children (watched), reuse
 * what is known of each node, read the others (at most *left reads). Returns BG_OK, or BG_EZK
 * when the colour could not be read whole this turn (what was read is kept for the next). */
static int read_color(struct bg_ctl *c, enum bg_color color, struct bg_member **out, size_t *n,
                      size_t *cap, size_t *left)
{
    char dir[600], rel[16];
    snprintf(rel, sizeof(rel), "/%s", bg_color_name(color));
    zpath(c, rel, dir, sizeof(dir));
    struct String_vector kids = {0};
    struct Stat pst;
    int rc = bg_zk_children2(&c->zk, dir, 1, &kids, &pst);
    if (rc == ZNONODE) {
        struct Stat st;
        bg_zk_exists(&c->zk, dir, 1, &st); /* watch for it to appear */
    } else if (rc != ZOK) {
        bg_warn("zk_read_failed", "path=%s rc=%s", dir, zerror(rc));
        return BG_EZK;
    }
    /* The listed children's entries: known ones moved over, the others new. */
    struct node_entry *e = bg_xcalloc(kids.count > 0 ? (size_t)kids.count : 1, sizeof(*e));
    size_t ne = 0;
    for (int i = 0; i < kids.count; i++) {
        struct node_entry *old = find_entry(c, color, kids.data[i]);
        if (old != NULL) {
            e[ne] = *old;
            old->get = NULL; /* moved: only the name stays behind, freed below */
            old->parsed = false;
            old->m.endpoint = old->m.problem = NULL;
            e[ne++].name = bg_xstrdup(kids.data[i]);
        } else {
            e[ne++].name = bg_xstrdup(kids.data[i]);
        }
    }
    deallocate_String_vector(&kids);
    for (size_t i = 0; i < c->n_nodes[color]; i++)
        node_entry_free(&c->nodes[color][i]); /* moved, or gone from the listing */
    free(c->nodes[color]);
    struct node_batch *b = nodes_send(c, dir, e, ne, left, &rc);
    nodes_wait(c, b);
    bool complete = nodes_collect(e, &ne, color) && rc == ZOK;
    qsort(e, ne, sizeof(*e), by_entry_name);
    c->nodes[color] = e;
    c->n_nodes[color] = ne;
    if (!complete) {
        if (rc != ZOK)
            bg_warn("zk_read_failed", "path=%s rc=%s", dir, zerror(rc));
        return BG_EZK;
    }
    for (size_t i = 0; i < ne; i++) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *out = bg_xrealloc(*out, *cap * sizeof(**out));
        }
        struct bg_member *m = &(*out)[(*n)++];
        *m = e[i].m;
        m->endpoint = m->endpoint ? bg_xstrdup(m->endpoint) : NULL;
        m->problem = m->problem ? bg_xstrdup(m->problem) : NULL;
    }
    return BG_OK;
}

static void read_active_color(struct bg_ctl *c)
{
    char path[600];
    zpath(c, "/active_color", path, sizeof(path));
    char buf[257];
    int len = (int)sizeof(buf) - 1;
    struct Stat st;
    int rc = bg_zk_get(&c->zk, path, 1, buf, &len, &st);
    c->desired_problem[0] = '\0';
    if (rc == ZNONODE) {
        bg_zk_exists(&c->zk, path, 1, &st);
        c->desired = BG_COLOR_INVALID;
        snprintf(c->desired_problem, sizeof(c->desired_problem), "node does not exist");
        return;
    }
    if (rc != ZOK) {
        c->desired = BG_COLOR_INVALID;
        snprintf(c->desired_problem, sizeof(c->desired_problem), "cannot read: %s", zerror(rc));
        return;
    }
    c->active_mzxid = st.mzxid;
    if (st.dataLength > (int)sizeof(buf) - 1) {
        c->desired = BG_COLOR_INVALID;
        snprintf(c->desired_problem, sizeof(c->desired_problem), "%d bytes of data", st.dataLength);
        return;
    }
    if (len < 0)
        len = 0;
    c->desired = bg_parse_color(buf, (size_t)len);
    if (c->desired == BG_COLOR_INVALID) {
        char clean[48];
        bg_sanitize(buf, (size_t)len, clean, sizeof(clean));
        bool blank = true;
        for (int i = 0; i < len; i++)
            blank &= buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r';
        snprintf(c->desired_problem, sizeof(c->desired_problem), "%s'%s'", blank ? "empty " : "",
                 clean);
    }
}

/* Read /active_color and every member afresh, carrying over what we know. */
static int read_state(struct bg_ctl *c)
{
    enum bg_color was = c->desired;
    read_active_color(c);
    if (c->desired != was)
        c->desired_since_ms = bg_now_ms();
    struct bg_member *m = NULL;
    size_t n = 0, cap = 0, left = NODE_READS_MAX;
    nodes_take_changes(c);
    /* Both colours each turn, so that the reads of a large fleet go on together. */
    int rc = read_color(c, BG_BLUE, &m, &n, &cap, &left);
    int rc2 = read_color(c, BG_GREEN, &m, &n, &cap, &left);
    if (rc == 0)
        rc = rc2;
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            member_free(&m[i]);
        free(m);
        return rc;
    }
    bg_members_duplicates(m, n);
    size_t *match = bg_xcalloc(n > c->n ? n : (c->n ? c->n : 1), sizeof(*match));
    bg_members_match(m, n, c->m, c->n, match);
    for (size_t i = 0; i < n; i++) {
        struct bg_member *old = match[i] != SIZE_MAX ? &c->m[match[i]] : NULL;
        if (old != NULL) {
            m[i].known = old->known;
            m[i].probed = old->probed;
            m[i].confirmed_ms = old->confirmed_ms;
            m[i].failures = old->failures;
            m[i].failed_ms = old->failed_ms;
            m[i].retry_at_ms = old->retry_at_ms;
            memcpy(m[i].last_error, old->last_error, sizeof(m[i].last_error));
            m[i].unconfirmed = old->unconfirmed;
            m[i].unconfirmed_since_ms = old->unconfirmed_since_ms;
            m[i].n_waiting = old->n_waiting;
            memcpy(m[i].waiting, old->waiting, sizeof(m[i].waiting));
            if (old->endpoint != NULL && m[i].endpoint != NULL && old->healthy != m[i].healthy) {
                bg_info("member_health", "color=%s id=%s healthy=%s check=\"%s\"",
                        bg_color_name(m[i].color), m[i].lid, m[i].healthy ? "true" : "false",
                        m[i].check);
                m[i].retry_at_ms = 0; /* act on the news now, not after a backoff */
            }
        } else {
            m[i].probed = !c->probe_read;
            bg_info("member_seen",
                    "color=%s id=%s czxid=%lld endpoint=%s healthy=%s problem=\"%s\"",
                    bg_color_name(m[i].color), m[i].lid, (long long)m[i].czxid,
                    m[i].endpoint ? m[i].endpoint : "-", m[i].healthy ? "true" : "false",
                    m[i].problem ? m[i].problem : (m[i].healthy ? "" : m[i].check));
        }
    }
    bg_members_match(c->m, c->n, m, n, match);
    for (size_t i = 0; i < c->n; i++)
        if (match[i] == SIZE_MAX)
            bg_info("member_gone", "color=%s id=%s czxid=%lld", bg_color_name(c->m[i].color),
                    c->m[i].lid, (long long)c->m[i].czxid);
    free(match);
    members_clear(c);
    c->m = m;
    c->n = n;
    c->need_read = false;
    c->probe_read = false;
    return BG_OK;
}

/* ----------------------------------------------------------------------------------------
 * /status and /history.
 * ------------------------------------------------------------------------------------- */

/* /status as a JSON document without "updated" (set by the writer: it is left out to compare
 * contents). Its size is bounded whatever the number of instances (bg_status_instances). */
static json_t *status_doc(struct bg_ctl *c)
{
    char since[40];
    bg_iso_time(c->phase_since_wall, since, sizeof(since));
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:s, s:I}", "desired",
                  c->desired == BG_COLOR_INVALID ? "" : bg_color_name(c->desired), "applied",
                  c->applied == BG_COLOR_INVALID ? "" : bg_color_name(c->applied), "phase",
                  bg_phase_name(c->phase), "reason", bg_json_text(c->reason, 0), "epoch",
                  (json_int_t)c->epoch, "leader", c->conf->id, "since", since, "active_mzxid",
                  (json_int_t)c->active_mzxid);
    if (j == NULL) /* the configured id is not UTF-8 (conf checks it): still write a /status */
        j = json_object();
    bg_status_instances(j, c->m, c->n, BG_STATUS_BUDGET);
    return j;
}

static long long seq_of(const char *name);

/* Is our election node still the lowest live one? Persistent nodes made by hand do not count.
 * Returns 1 yes, 0 no, or BG_EZK when /election could not be read (a call that ran out of the
 * loop's budget, or a lost connection): nothing is known then, and nobody steps down for it.
 * (No side effects.) */
static int still_lowest(struct bg_ctl *c)
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

static void write_status(struct bg_ctl *c)
{
    char path[600];
    zpath(c, "/status", path, sizeof(path));
    struct Stat st;
    json_t *doc = status_doc(c);
    char *body = bg_json_dumps_safe(doc, JSON_COMPACT, "status");
    if (c->last_status != NULL && strcmp(body, c->last_status) == 0 && c->status_version >= 0 &&
        bg_zk_exists(&c->zk, path, 1, &st) == ZOK) {
        free(body); /* nothing new to say (and it still exists) */
        json_decref(doc);
        c->status_dirty = false;
        return;
    }
    char now[40];
    bg_iso_time(bg_wall_ms(), now, sizeof(now));
    json_object_set_new(doc, "updated", json_string(now));
    char *data = bg_json_dumps_safe(doc, JSON_COMPACT, "status");
    json_decref(doc);
    int rc = ZBADVERSION;
    for (int attempt = 0; attempt < 3 && (rc == ZBADVERSION || rc == ZNONODE); attempt++) {
        if (c->status_version < 0) {
            rc = bg_zk_exists(&c->zk, path, 0, &st);
            if (rc == ZNONODE) {
                rc = bg_zk_create(&c->zk, path, data, (int)strlen(data), bg_zk_acl(&c->zk), 0, NULL,
                                  0);
                if (rc == ZOK)
                    c->status_version = 0;
                continue;
            }
            if (rc != ZOK)
                break;
            c->status_version = st.version;
        }
        rc = bg_zk_set2(&c->zk, path, data, (int)strlen(data), c->status_version, &st);
        if (rc == ZOK) {
            c->status_version = st.version;
        } else if (rc == ZBADVERSION || rc == ZNONODE) {
            /* Someone else wrote it (or our own write whose answer came too late): only
             * overwrite while we are provably still the leader. */
            int lowest = still_lowest(c);
            if (lowest == 0) {
                bg_warn("status_conflict", "rc=%s action=step_down", zerror(rc));
                c->deposed = true;
                break;
            }
            if (lowest < 0) {
                bg_warn("status_conflict", "rc=%s action=retry_later", zerror(rc));
                break;
            }
            bg_warn("status_conflict", "rc=%s action=reread", zerror(rc));
            c->status_version = -1;
        }
    }
    free(data);
    if (rc == ZOK) {
        free(c->last_status);
        c->last_status = body;
        body = NULL;
        c->status_dirty = false;
        c->status_urgent = false;
        c->status_written_ms = bg_now_ms();
        bg_zk_exists(&c->zk, path, 1, &st); /* notice if someone deletes it */
    } else {
        bg_warn("status_write_failed", "rc=%s", zerror(rc));
    }
    free(body);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void history_prune(struct bg_ctl *c, const char *dir)
{
    struct String_vector kids = {0};
    if (bg_zk_children(&c->zk, dir, 0, &kids) != ZOK)
        return;
    if (kids.count > HISTORY_KEEP) {
        /* entry-<10 digits>: lexical order is sequence order. */
        qsort(kids.data, (size_t)kids.count, sizeof(char *), cmp_name);
        for (int i = 0; i < kids.count - HISTORY_KEEP; i++) {
            char p[1200];
            snprintf(p, sizeof(p), "%s/%s", dir, kids.data[i]);
            bg_zk_delete(&c->zk, p, -1);
        }
    }
    deallocate_String_vector(&kids);
}

/* A switch's per-instance outcomes as /history keeps them: all of them while they fit in
 * BG_STATUS_BUDGET (an entry, like /status, must stay inside ZooKeeper's node limit), else the
 * first that fit; *omitted says how many were left out. Returns a new reference. */
static json_t *history_outcome(json_t *all, size_t *omitted)
{
    *omitted = 0;
    if (all == NULL)
        return json_object();
    if (json_dumpb(all, NULL, 0, JSON_COMPACT) <= BG_STATUS_BUDGET)
        return json_incref(all);
    json_t *some = json_object();
    size_t used = 0;
    const char *key;
    json_t *v;
    json_object_foreach(all, key, v)
    {
        size_t size = strlen(key) + json_dumpb(v, NULL, 0, JSON_COMPACT) + 4;
        if (*omitted == 0 && used + size <= BG_STATUS_BUDGET) {
            json_object_set(some, key, v);
            used += size;
        } else {
            (*omitted)++;
        }
    }
    return some;
}

static void history_append(struct bg_ctl *c, const char *result)
{
    char dir[600], path[700], started[40], finished[40];
    bg_zk_ensure(&c->zk, "/history");
    zpath(c, "/history", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/entry-", dir);
    bg_iso_time(c->sw_started_wall, started, sizeof(started));
    bg_iso_time(bg_wall_ms(), finished, sizeof(finished));
    const char *from = c->sw_from == BG_COLOR_INVALID ? "none" : bg_color_name(c->sw_from);
    size_t omitted = 0;
    json_t *inst = history_outcome(c->sw_outcome, &omitted);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:o}", "from", from, "to",
                          bg_color_name(c->sw_to), "started", started, "finished", finished,
                          "result", result, "ms", (json_int_t)(bg_wall_ms() - c->sw_started_wall),
                          "epoch", (json_int_t)c->epoch, "leader", c->conf->id, "reason",
                          bg_json_text(c->reason, 0), "instances", inst);
    if (omitted > 0) {
        json_object_set_new(j, "truncated", json_true());
        json_object_set_new(j, "instances_omitted", json_integer((json_int_t)omitted));
    }
    char *data = bg_json_dumps_safe(j, JSON_COMPACT, "history");
    json_decref(j);
    int rc = bg_zk_create(&c->zk, path, data, (int)strlen(data), bg_zk_acl(&c->zk), ZOO_SEQUENCE,
                          NULL, 0);
    free(data);
    if (rc != ZOK)
        bg_warn("history_write_failed", "rc=%s", zerror(rc));
    history_prune(c, dir);
    bg_info("switch_end", "from=%s to=%s result=%s ms=%lld", from, bg_color_name(c->sw_to), result,
            (long long)(bg_wall_ms() - c->sw_started_wall));
    c->in_switch = false;
    json_decref(c->sw_outcome);
    c->sw_outcome = NULL;
}

static void outcome(struct bg_ctl *c, const struct bg_member *m, const char *what)
{
    if (!c->in_switch)
        return;
    if (c->sw_outcome == NULL)
        c->sw_outcome = json_object();
    char key[200];
    snprintf(key, sizeof(key), "%s/%s", bg_color_name(m->color), m->id);
    bg_utf8_trim_end(key);
    json_object_set_new(c->sw_outcome, key, bg_json_text(what, 0));
}

/* How long the desired colour must stay healthy before a fallback ends: 2 s after the first
 * fallback, doubled by each further one within FALLBACK_MEMORY_MS of the last, at most 5 min. */
#define FALLBACK_HOLD_MS 2000
#define FALLBACK_HOLD_MAX_MS 300000
#define FALLBACK_MEMORY_MS 60000

static int64_t fallback_hold(const struct bg_ctl *c)
{
    int64_t hold = FALLBACK_HOLD_MS;
    for (int i = 1; i < c->fallbacks && hold < FALLBACK_HOLD_MAX_MS; i++)
        hold *= 2;
    return hold < FALLBACK_HOLD_MAX_MS ? hold : FALLBACK_HOLD_MAX_MS;
}

static void count_fallback(struct bg_ctl *c, bool start)
{
    int64_t now = bg_now_ms();
    if (!start) {
        c->fallback_end_ms = now;
        return;
    }
    if (c->fallback_end_ms > 0 && now - c->fallback_end_ms > FALLBACK_MEMORY_MS)
        c->fallbacks = 0;
    c->fallbacks++;
}

/* Has any instance of `color` been taken out (the break step of a switch began)? */
static bool taken_out(const struct bg_ctl *c, enum bg_color color)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].color == color && c->m[i].known == BG_KNOWN_OUT)
            return true;
    return false;
}

/* History entries: a switch is "converged", "superseded", "aborted", "blocked", or "refused"
 * (the desired colour was not healthy enough; from -> to is the switch that was asked for). A
 * "fallback" goes from the colour that failed to the one that serves instead, and "recovered"
 * back. */

/* Open, close or supersede the switch record as the desired colour and phase move. */
static void track_switch(struct bg_ctl *c, const struct bg_plan *p)
{
    if (c->in_switch && c->desired != c->sw_to) {
        history_append(c, c->desired == BG_COLOR_INVALID ? "aborted" : "superseded");
    }
    if (!c->in_switch && c->desired != BG_COLOR_INVALID && c->desired != c->applied &&
        p->phase != BG_PHASE_BLOCKED) {
        c->in_switch = true;
        c->sw_from = c->applied; /* BG_COLOR_INVALID: first convergence, shown as "none" */
        c->sw_to = c->desired;
        c->sw_started_wall = bg_wall_ms();
        c->n_switches++;
        bg_info("switch_start", "from=%s to=%s instances=%zu epoch=%lld",
                c->sw_from == BG_COLOR_INVALID ? "none" : bg_color_name(c->sw_from),
                bg_color_name(c->sw_to), c->n, (long long)c->epoch);
    }
    if (p->phase == BG_PHASE_CONVERGED) {
        c->applied = c->desired;
        if (c->in_switch) {
            if (c->fallback)
                count_fallback(c, false);
            c->fallback = false; /* this entry says how it ended */
            history_append(c, "converged");
        }
    } else if (p->phase == BG_PHASE_BLOCKED && c->in_switch) {
        if (p->fallback && !c->fallback)
            count_fallback(c, true);
        c->fallback = p->fallback;
        if (p->fallback && taken_out(c, c->sw_from)) {
            /* The break step had begun: the traffic falls back from the new colour. */
            c->sw_from = c->desired;
            c->sw_to = bg_other_color(c->desired);
            history_append(c, "fallback");
        } else {
            history_append(c, p->fallback ? "refused" : "blocked");
        }
    }
}

/* Outside a switch (its own entries say it), record each fallback to the other colour and the
 * recovery from it: the desired colour's application died after it had taken traffic, or a
 * blocked switch was refused for health from the start. */
static void track_fallback(struct bg_ctl *c, const struct bg_plan *p)
{
    bool recovered = c->fallback && p->phase == BG_PHASE_CONVERGED;
    if (p->fallback == c->fallback && !recovered)
        return;
    if (!p->fallback && !recovered)
        return; /* e.g. now waiting for min_healthy_time: the fallback goes on */
    c->fallback = p->fallback;
    count_fallback(c, p->fallback);
    char clean[512];
    bg_sanitize(c->reason, strlen(c->reason), clean, sizeof(clean));
    bg_warn("fallback", "state=%s desired=%s reason=\"%s\"", p->fallback ? "start" : "end",
            bg_color_name(c->desired), clean);
    if (c->in_switch)
        return;
    c->sw_started_wall = bg_wall_ms();
    if (p->fallback && c->applied != c->desired) {
        /* Never converged on the desired colour: a switch refused from the start. */
        c->sw_from = c->applied;
        c->sw_to = c->desired;
        history_append(c, "refused");
        return;
    }
    c->sw_from = p->fallback ? c->desired : bg_other_color(c->desired);
    c->sw_to = p->fallback ? bg_other_color(c->desired) : c->desired;
    history_append(c, p->fallback ? "fallback" : "recovered");
}

/* ----------------------------------------------------------------------------------------
 * Acting.
 * ------------------------------------------------------------------------------------- */

static bool on_wake(void *ctx)
{
    struct bg_ctl *c = ctx;
    bg_zk_drain(&c->zk);
    bg_httpd_run(&c->http); /* /health and /metrics stay responsive during slow calls */
    bg_zk_tick(&c->zk);
    if (c->stop)
        return false;
    /* Stop calling agents the moment the connection is lost. */
    return bg_zk_check(&c->zk) == BG_ZK_CONNECTED;
}

/* Stop leading. drop_node: our election node is gone (or about to be, with the session), so
 * the next election step joins afresh. */
static void lose_leadership(struct bg_ctl *c, const char *why, bool drop_node)
{
    if (c->leader)
        bg_warn("leadership_lost", "epoch=%lld reason=\"%s\"", (long long)c->epoch, why);
    c->leader = false;
    if (drop_node)
        c->election_node[0] = '\0';
    members_clear(c);
    nodes_clear(c);
    if (c->in_switch) {
        json_decref(c->sw_outcome);
        c->sw_outcome = NULL;
        c->in_switch = false;
    }
}

/* An agent that answers "unconfirmed" at once is asked again no sooner than this (one that
 * waits for its balancers answers at about 80 % of call_timeout: a long poll). */
#define UNCONFIRMED_ASK_MS 250

/* Record what a successful call's answer said of the balancers: confirmed, or which of them
 * have not seen the status yet (then the member is asked again until they have). */
static void confirmation(struct bg_member *m, const struct bg_call_req *r, enum bg_known was,
                         int64_t t0, int64_t now)
{
    if (!r->unconfirmed) {
        if (m->unconfirmed)
            bg_info("instance_confirmed", "color=%s id=%s status=%s waited_ms=%lld",
                    bg_color_name(m->color), m->lid, bg_known_name(m->known),
                    (long long)(now - m->unconfirmed_since_ms));
        m->unconfirmed = false;
        m->n_waiting = 0;
        return;
    }
    if (!m->unconfirmed || was != m->known)
        m->unconfirmed_since_ms = t0;
    m->unconfirmed = true;
    m->n_waiting = r->n_waiting;
    for (int b = 0; b < r->n_waiting && b < BG_WAITING_MAX && b < BG_CALL_WAITING_MAX; b++)
        bg_strlcpy_utf8(m->waiting[b], r->waiting[b], sizeof(m->waiting[b]));
    if (now - t0 < UNCONFIRMED_ASK_MS)
        m->retry_at_ms = t0 + UNCONFIRMED_ASK_MS;
    bg_debug("instance_unconfirmed", "color=%s id=%s status=%s waiting=%d first=\"%s\" ms=%lld",
             bg_color_name(m->color), m->lid, bg_known_name(m->known), m->n_waiting,
             m->n_waiting > 0 ? m->waiting[0] : "", (long long)(now - m->unconfirmed_since_ms));
}

/* Ask a batch of members their status (GET /v1/status): what an agent says it has applied,
 * every balancer having seen it, is known as if we had told it (and re-asserted at the next
 * resync); any other answer, or none, leaves it unknown, to be told. Returns 0 or BG_ELOST. */
static int probe(struct bg_ctl *c, const struct bg_plan *p, struct bg_call_req *req,
                 struct bg_call_opts *o)
{
    for (size_t i = 0; i < p->n_idx; i++)
        req[i].probe = true;
    o->retries = 0; /* a failed question is answered by telling */
    int64_t t0 = bg_now_ms();
    int rc = bg_calls_run(c->multi, req, p->n_idx, o);
    int64_t now = bg_now_ms();
    size_t right = 0;
    for (size_t i = 0; i < p->n_idx; i++) {
        struct bg_member *m = &c->m[p->idx[i]];
        m->probed = true;
        if (req[i].result != BG_CALL_OK || req[i].seen == 0)
            continue;
        m->known = req[i].seen == 1 ? BG_KNOWN_UP : BG_KNOWN_OUT;
        m->confirmed_ms = now;
        m->unconfirmed = false;
        m->n_waiting = 0;
        right++;
    }
    bg_info("instances_probed", "asked=%zu known=%zu ms=%lld", p->n_idx, right,
            (long long)(now - t0));
    c->status_dirty = true;
    return rc == BG_ELOST ? BG_ELOST : BG_OK;
}

/* Call a batch of members; update what we know. Returns 0, BG_ELOST or BG_ESTALE. */
static int act(struct bg_ctl *c, const struct bg_plan *p)
{
    struct bg_call_req *req = bg_xcalloc(p->n_idx, sizeof(*req));
    bool up = p->action == BG_ACT_UP;
    for (size_t i = 0; i < p->n_idx; i++) {
        req[i].endpoint = c->m[p->idx[i]].endpoint;
        req[i].up = up;
    }
    const struct bg_switch_conf *sw = &c->conf->sw;
    struct bg_call_opts o = {.epoch = c->epoch,
                             .token = c->conf->http.token,
                             .ca_file = c->conf->http.ca_file,
                             .timeout_ms = sw->call_timeout_ms,
                             .retries = sw->retries,
                             .backoff_ms = sw->backoff_ms,
                             .wake_fd = c->zk.wake_fd,
                             .http_fd = c->http.fd,
                             .on_wake = on_wake,
                             .ctx = c};
    if (p->action == BG_ACT_PROBE) {
        int prc = probe(c, p, req, &o);
        free(req);
        return prc;
    }
    int64_t t0 = bg_now_ms();
    int rc = bg_calls_run(c->multi, req, p->n_idx, &o);
    int64_t now = bg_now_ms();
    int ret = rc;
    for (size_t i = 0; i < p->n_idx; i++) {
        struct bg_member *m = &c->m[p->idx[i]];
        c->n_calls++;
        if (req[i].result == BG_CALL_OK) {
            enum bg_known was = m->known;
            bool was_unconfirmed = m->unconfirmed;
            if (up && m->known != BG_KNOWN_UP)
                c->last_up_ms = now;
            m->known = up ? BG_KNOWN_UP : BG_KNOWN_OUT;
            m->confirmed_ms = now;
            m->failures = 0;
            m->retry_at_ms = 0;
            m->last_error[0] = '\0';
            confirmation(m, &req[i], was, t0, now);
            if (was != m->known || was_unconfirmed != m->unconfirmed)
                outcome(c, m,
                        m->unconfirmed ? (up ? "UP, unconfirmed" : "OUT_OF_SERVICE, unconfirmed")
                                       : bg_known_name(m->known));
            bg_info("instance_status", "color=%s id=%s status=%s ms=%lld attempts=%d confirmed=%s",
                    bg_color_name(m->color), m->lid, bg_known_name(m->known), (long long)(now - t0),
                    req[i].attempts, m->unconfirmed ? "false" : "true");
            continue;
        }
        c->n_call_failures++;
        if (req[i].result == BG_CALL_STALE)
            ret = BG_ESTALE;
        m->failures++;
        m->failed_ms = now;
        int shift = m->failures < 6 ? m->failures : 6;
        m->retry_at_ms = now + (sw->backoff_ms > 0 ? sw->backoff_ms : 100) * (1LL << shift);
        /* A failed call leaves the instance's status unknown: it may or may not have applied. */
        m->known = BG_KNOWN_NONE;
        m->unconfirmed = false;
        m->n_waiting = 0;
        bg_strlcpy_utf8(m->last_error, req[i].error, sizeof(m->last_error));
        char o2[BG_STATUS_ERROR_MAX + 9]; /* the log line has the whole error */
        memcpy(o2, "failed: ", 9);        /* cut on a character boundary, not by snprintf */
        bg_strlcpy_utf8(o2 + 8, req[i].error, sizeof(o2) - 8);
        outcome(c, m, o2);
        bg_warn("instance_call_failed", "color=%s id=%s status=%s attempts=%d error=\"%s\"",
                bg_color_name(m->color), m->lid, up ? "UP" : "OUT_OF_SERVICE", req[i].attempts,
                req[i].error);
    }
    c->status_dirty = true;
    free(req);
    return ret;
}

static void set_phase(struct bg_ctl *c, const struct bg_plan *p)
{
    if (p->phase != c->phase) {
        char clean[512];
        bg_sanitize(p->reason, strlen(p->reason), clean, sizeof(clean));
        bg_info("phase", "phase=%s desired=%s reason=\"%s\"", bg_phase_name(p->phase),
                bg_color_name(c->desired), clean);
        c->phase = p->phase;
        c->phase_since_wall = bg_wall_ms();
        c->status_dirty = true;
        c->status_urgent = true; /* bgctl wait and CI watch the phase */
    }
    if (strcmp(c->reason, p->reason) != 0) {
        bg_strlcpy_utf8(c->reason, p->reason, sizeof(c->reason));
        c->status_dirty = true;
    }
}

/* /status changed: if it is not our last write, someone overwrote it; repair it (only while
 * we are provably still the leader). */
static void check_status_version(struct bg_ctl *c)
{
    char path[600];
    zpath(c, "/status", path, sizeof(path));
    struct Stat st;
    if (bg_zk_exists(&c->zk, path, 1, &st) != ZOK || c->status_version < 0 ||
        st.version == c->status_version)
        return;
    int lowest = still_lowest(c);
    if (lowest <= 0) {
        c->deposed = lowest == 0; /* unknown: the next write finds the conflict again */
        return;
    }
    bg_warn("status_overwritten", "version=%d ours=%d action=rewrite", st.version,
            c->status_version);
    c->status_version = st.version;
    bg_free(&c->last_status);
    c->status_dirty = true;
    c->status_urgent = true;
}

static void reconcile(struct bg_ctl *c)
{
    unsigned q = atomic_load(&c->zk.quiet_events);
    if (q != c->seen_quiet) {
        c->seen_quiet = q;
        check_status_version(c);
        if (c->deposed) {
            c->deposed = false;
            lose_leadership(c, "/status was written by a newer leader", true);
            bg_zk_reopen(&c->zk);
            return;
        }
    }
    for (;;) {
        unsigned ev = atomic_load(&c->zk.node_events);
        unsigned nc = atomic_load(&node_changes);
        if (ev != c->seen_events || nc != c->seen_node_changes || c->need_read) {
            c->seen_events = ev;
            c->seen_node_changes = nc;
            if (read_state(c) != 0) {
                c->need_read = true;
                return;
            }
            c->status_dirty = true;
        }
        struct bg_plan_input in = {.desired = c->desired,
                                   .desired_problem = c->desired_problem,
                                   .m = c->m,
                                   .n = c->n,
                                   .min_ready = c->conf->sw.min_ready,
                                   .batch_size = c->conf->sw.batch_size,
                                   .now_ms = bg_now_ms(),
                                   .desired_since_ms = c->desired_since_ms,
                                   .settle_ms = c->conf->sw.settle_ms,
                                   .resync_ms = c->conf->sw.resync_ms,
                                   .last_up_ms = c->last_up_ms,
                                   .min_healthy_ms = c->conf->sw.min_healthy_time_ms,
                                   .in_fallback = c->fallback,
                                   .never_served = c->applied == BG_COLOR_INVALID,
                                   .fallback_hold_ms = fallback_hold(c),
                                   .probe_unknown = true,
                                   .proceed_unconfirmed = c->conf->sw.unconfirmed_proceed,
                                   .unconfirmed_timeout_ms = c->conf->sw.unconfirmed_timeout_ms};
        struct bg_plan p;
        bg_plan(&in, &p);
        c->n_passes++;
        set_phase(c, &p); /* first: a history entry carries the outcome's reason */
        track_switch(c, &p);
        track_fallback(c, &p);
        c->wake_at_ms = p.wake_at_ms;
        if (p.n_idx == 0)
            break;
        /* A new phase is written before its calls, which may wait for the balancers for
         * seconds: /status must not say the previous switch's "converged" meanwhile. Not before
         * asking the agents their status: a new leader's "switching" may be over once they
         * have answered. */
        if (c->status_urgent && p.action != BG_ACT_PROBE) {
            write_status(c);
            if (c->deposed)
                break;
        }
        int rc = act(c, &p);
        if (rc == BG_ESTALE) {
            /* Step down only when a lower live member really exists: an agent's claim alone
             * (it may have been fed a made-up epoch) must not fence out the real leader. */
            int lowest = still_lowest(c);
            if (lowest == 0) {
                lose_leadership(c, "an agent has seen a newer leader's epoch", true);
                bg_zk_reopen(&c->zk);
                return;
            }
            if (lowest < 0)
                break; /* cannot tell now: the member is retried after its backoff */
            bg_warn("stale_epoch_ignored",
                    "epoch=%lld reason=\"an agent refused our epoch as "
                    "stale, but no lower live /election member exists: still leading\"",
                    (long long)c->epoch);
            break;
        }
        if (rc == BG_ELOST || c->stop)
            return; /* the main loop sees why */
        if (c->status_dirty && bg_now_ms() - c->status_written_ms >= STATUS_MIN_INTERVAL_MS)
            write_status(c);
        if (c->deposed)
            break;
    }
    c->status_due_ms = 0;
    if (c->status_dirty && !c->deposed) {
        int64_t due = c->status_written_ms + STATUS_COALESCE_MS;
        if (c->status_urgent || bg_now_ms() >= due)
            write_status(c);
        else
            c->status_due_ms = due; /* the loop wakes up for it */
    }
    if (c->deposed) {
        c->deposed = false;
        lose_leadership(c, "/status was written by a newer leader", true);
        bg_zk_reopen(&c->zk);
    }
}

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
        zpath(c, "/election/", c->election_node, sizeof(c->election_node));
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
    zpath(c, "/election/member-", prefix, sizeof(prefix));
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
    zpath(c, "/status", path, sizeof(path));
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

static void election_step(struct bg_ctl *c)
{
    if (c->election_node[0] == '\0' && join_election(c) != 0)
        return;
    char dir[600];
    zpath(c, "/election", dir, sizeof(dir));
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
            lose_leadership(c, "election node vanished", true);
            return;
        }
        if (pred_seq < 0) {
            if (!c->leader)
                become_leader(c);
            return;
        }
        if (c->leader)
            lose_leadership(c, "a lower election node exists", false);
        char p[900];
        struct Stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, pred);
        rc = bg_zk_exists(&c->zk, p, 1, &st);
        if (rc == ZOK)
            return; /* follower; the watch wakes us when the predecessor goes */
    }
}

/* ----------------------------------------------------------------------------------------
 * HTTP (/, /health, /metrics) and the main loop.
 * ------------------------------------------------------------------------------------- */

static enum MHD_Result ctl_http(void *ctx, struct bg_httpd_req *req)
{
    struct bg_ctl *c = ctx;
    if (strcmp(req->url, "/health") == 0) {
        char *s =
            bg_xasprintf("{\"leader\":%s,\"epoch\":%lld,\"phase\":\"%s\",\"zk\":\"%s\"}",
                         c->leader ? "true" : "false", (long long)c->epoch, bg_phase_name(c->phase),
                         bg_zk_state_name(atomic_load(&c->zk.state)));
        enum MHD_Result r = bg_httpd_reply(req->conn, 200, "application/json", s);
        free(s);
        return r;
    }
    if (strcmp(req->url, "/metrics") == 0) {
        size_t unhealthy = 0, unconfirmed = 0;
        for (size_t i = 0; i < c->n; i++) {
            unhealthy += c->m[i].endpoint != NULL && !c->m[i].healthy;
            unconfirmed += c->m[i].endpoint != NULL && c->m[i].unconfirmed;
        }
        char *s = bg_xasprintf(
            "# TYPE bg_controller_leader gauge\nbg_controller_leader %d\n"
            "# TYPE bg_controller_epoch gauge\nbg_controller_epoch %lld\n"
            "# TYPE bg_controller_instances gauge\nbg_controller_instances %zu\n"
            "# TYPE bg_controller_calls_total counter\nbg_controller_calls_total %llu\n"
            "# TYPE bg_controller_call_failures_total counter\n"
            "bg_controller_call_failures_total %llu\n"
            "# TYPE bg_controller_switches_total counter\nbg_controller_switches_total %llu\n"
            "# TYPE bg_controller_passes_total counter\nbg_controller_passes_total %llu\n"
            "# TYPE bg_controller_phase gauge\nbg_controller_phase{phase=\"%s\"} 1\n"
            "# HELP bg_controller_unhealthy_instances Registered instances whose application "
            "health check fails.\n"
            "# TYPE bg_controller_unhealthy_instances gauge\n"
            "bg_controller_unhealthy_instances %zu\n"
            "# HELP bg_controller_fallback 1 while the desired colour cannot carry traffic and the "
            "other colour serves instead.\n"
            "# TYPE bg_controller_fallback gauge\nbg_controller_fallback %d\n"
            "# HELP bg_controller_unconfirmed_instances Instances whose last status a balancer has "
            "not seen yet (held, with switch.unconfirmed: hold).\n"
            "# TYPE bg_controller_unconfirmed_instances gauge\n"
            "bg_controller_unconfirmed_instances %zu\n",
            c->leader, (long long)c->epoch, c->n, c->n_calls, c->n_call_failures, c->n_switches,
            c->n_passes, bg_phase_name(c->phase), unhealthy, c->fallback, unconfirmed);
        enum MHD_Result r = bg_httpd_reply(req->conn, 200, "text/plain; version=0.0.4", s);
        free(s);
        return r;
    }
    if (strcmp(req->url, "/") == 0) { /* the status page (page.h): never calls ZooKeeper */
        json_t *live = c->leader ? status_doc(c) : NULL;
        enum MHD_Result r = bg_page_serve(&c->page, req->conn, live, c->conf->id, c->leader);
        json_decref(live);
        return r;
    }
    return bg_httpd_reply(req->conn, 404, "application/json",
                          "{\"error\":\"not found\",\"reason\":\"try /, /health or /metrics\"}");
}

static const char *stop_signal_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "?";
}

/* SIGTERM, SIGINT and SIGHUP: stop cleanly (deregister, leave the election). SIGHUP's default
 * would kill the daemon on the spot, leaving its ephemeral node for a session timeout. */
static void on_signal(int sig)
{
    if (signal_ctl != NULL) {
        signal_ctl->stop = sig; /* which one, for the log line */
        bg_zk_wake(&signal_ctl->zk);
    }
}

/* While a ZooKeeper call waits (a slow or frozen server): answer /health and /metrics;
 * give the call up when stopping. */
static bool zk_wait_hook(void *ctx)
{
    struct bg_ctl *c = ctx;
    bg_httpd_run(&c->http);
    return !c->stop;
}

int bg_ctl_init(struct bg_ctl *c, struct bg_controller_conf *conf)
{
    memset(c, 0, sizeof(*c));
    c->conf = conf;
    c->desired = BG_COLOR_INVALID;
    c->applied = BG_COLOR_INVALID;
    c->status_version = -1;
    c->http.fd = -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->multi = curl_multi_init();
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 1024L);
    if (conf->http.listen != NULL) {
        char err[256];
        if (bg_httpd_start(&c->http, &conf->http.server, ctl_http, c, err, sizeof(err)) != 0) {
            bg_error("http_listen_failed", "listen=%s reason=\"%s\"", conf->http.listen, err);
            return BG_EINVAL;
        }
    }
    if (bg_zk_open(&c->zk, conf->zk.connect, conf->zk.root, conf->zk.session_timeout_ms,
                   conf->zk.auth) != 0)
        return BG_EZK;
    bg_zk_path(&c->zk, "/status", c->zk.quiet_path, sizeof(c->zk.quiet_path));
    bg_zk_set_wait_hook(&c->zk, zk_wait_hook, c);
    pthread_mutex_lock(&node_mu);
    node_wake_fd = c->zk.wake_fd; /* instance node events and answers wake the loop */
    pthread_mutex_unlock(&node_mu);
    bg_info("start",
            "id=%s zk=%s root=%s batch_size=%d min_ready=%d settle_ms=%lld unconfirmed=%s "
            "unconfirmed_timeout_ms=%lld",
            conf->id, conf->zk.connect, conf->zk.root, conf->sw.batch_size, conf->sw.min_ready,
            (long long)conf->sw.settle_ms, conf->sw.unconfirmed_proceed ? "proceed" : "hold",
            (long long)conf->sw.unconfirmed_timeout_ms);
    return BG_OK;
}

static int64_t loop_timeout(struct bg_ctl *c)
{
    int64_t t = 250, now = bg_now_ms();
    if (c->leader && c->wake_at_ms > 0)
        t = c->wake_at_ms <= now ? 0 : (c->wake_at_ms - now < t ? c->wake_at_ms - now : t);
    if (c->leader && c->status_due_ms > 0)
        t = c->status_due_ms <= now ? 0 : (c->status_due_ms - now < t ? c->status_due_ms - now : t);
    int64_t h = bg_httpd_timeout(&c->http);
    if (h >= 0 && h < t)
        t = h;
    return t;
}

int bg_ctl_run(struct bg_ctl *c)
{
    signal_ctl = c;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    bool paused = false;
    while (!c->stop) {
        bg_zk_tick(&c->zk); /* HTTP and signals were served: ZooKeeper may wait again */
        enum bg_zk_health h = bg_zk_check(&c->zk);
        if (h == BG_ZK_LOST) {
            lose_leadership(c, "ZooKeeper session lost", true);
            bg_zk_reopen(&c->zk);
            paused = false; /* whoever leads next, it is not a resumption */
        } else if (h == BG_ZK_CONNECTING) {
            if (c->leader && !paused)
                bg_warn("leader_paused", "reason=\"connection to ZooKeeper lost\"");
            paused = c->leader;
        } else {
            if (paused && c->leader)
                bg_info("leader_resumed", "epoch=%lld", (long long)c->epoch);
            paused = false;
            election_step(c);
            if (c->leader) {
                if (c->wake_at_ms > 0 && bg_now_ms() >= c->wake_at_ms)
                    c->wake_at_ms = 0;
                reconcile(c);
            }
            bg_page_feed_refresh(&c->page, &c->zk, c->leader); /* only while someone looks */
        }
        /* Connections accepted by the last run may have their requests waiting: answer them
         * now, not after the next turn's ZooKeeper calls. */
        bg_httpd_run(&c->http);
        struct pollfd pfd[2] = {{.fd = c->zk.wake_fd, .events = POLLIN},
                                {.fd = c->http.fd, .events = POLLIN}};
        int rc = poll(pfd, c->http.fd >= 0 ? 2 : 1, (int)loop_timeout(c));
        if (rc < 0 && errno != EINTR) {
            bg_error("poll_failed", "errno=%d", errno);
            break;
        }
        if (pfd[0].revents)
            bg_zk_drain(&c->zk);
        bg_httpd_run(&c->http);
    }
    bg_info("stopping", "reason=signal leader=%d signal=%s%s", c->leader, stop_signal_name(c->stop),
            c->stop == SIGHUP ? " note=\"SIGHUP stops cleanly, as SIGTERM does (no reload)\"" : "");
    return 0;
}

void bg_ctl_free(struct bg_ctl *c)
{
    bg_httpd_stop(&c->http);
    pthread_mutex_lock(&node_mu);
    node_wake_fd = -1; /* late watch events and answers no longer wake anyone */
    pthread_mutex_unlock(&node_mu);
    bg_zk_close(&c->zk);
    members_clear(c);
    nodes_clear(c);
    bg_free(&c->last_status);
    bg_page_feed_free(&c->page);
    json_decref(c->sw_outcome);
    c->sw_outcome = NULL;
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    c->multi = NULL;
    curl_global_cleanup();
    signal_ctl = NULL;
}
