/* observe.c -- bg-controller: what the leader reads of ZooKeeper: /active_color and the
 * instance nodes of /blue and /green (asynchronously, kept across reads, re-read on change). */
#include "ctl_internal.h"
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    bg_ctl_zpath(c, "/blue/", prefix[BG_BLUE], sizeof(prefix[BG_BLUE]));
    bg_ctl_zpath(c, "/green/", prefix[BG_GREEN], sizeof(prefix[BG_GREEN]));
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
        m->can_weight = bg_parse_member_weighted(g->data, (size_t)g->len);
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
    bg_ctl_zpath(c, rel, dir, sizeof(dir));
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
    bg_ctl_zpath(c, "/active_color", path, sizeof(path));
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

/* The members just read (m, n) take over what calls taught us of the same members in c->m
 * (matched by id and czxid); new and gone members are logged. */
static void carry_over(struct bg_ctl *c, struct bg_member *m, size_t n)
{
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
            m[i].weight = old->weight;
            m[i].drained = old->drained; /* for the undrain's history entry */
            m[i].undrained = old->undrained;
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
}

/* Read /active_color and every member afresh, carrying over what we know. */
int bg_ctl_read_state(struct bg_ctl *c)
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
    carry_over(c, m, n);
    members_clear(c);
    c->m = m;
    c->n = n;
    bg_ctl_read_shaping(c);
    (void)bg_ctl_read_routers(c); /* unreadable now: the last view stands, read again later */
    c->need_read = false;
    c->probe_read = false;
    return BG_OK;
}

/* ----------------------------------------------------------------------------------------
 * Start, stop, forget.
 * ------------------------------------------------------------------------------------- */

void bg_ctl_observe_init(struct bg_ctl *c)
{
    pthread_mutex_lock(&node_mu);
    node_wake_fd = c->zk.wake_fd; /* instance node events and answers wake the loop */
    pthread_mutex_unlock(&node_mu);
}

void bg_ctl_observe_stop(void)
{
    pthread_mutex_lock(&node_mu);
    node_wake_fd = -1; /* late watch events and answers no longer wake anyone */
    pthread_mutex_unlock(&node_mu);
}

void bg_ctl_observe_clear(struct bg_ctl *c)
{
    members_clear(c);
    bg_ctl_shaping_clear(c);
    bg_ctl_routers_clear(c);
    nodes_clear(c);
}

unsigned bg_ctl_node_changes(void)
{
    return atomic_load(&node_changes);
}
