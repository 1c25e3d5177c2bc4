/* zk.c -- ZooKeeper session handling: connect, classify, reopen after expiry. */
#include "zk.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------------------
 * Watcher: runs on the library's completion thread. It only records and wakes.
 * ------------------------------------------------------------------------------------- */

/* Is path <root>/election? */
static bool election_path(const struct bg_zk *z, const char *path)
{
    size_t rl = strlen(z->root);
    return path != NULL && strncmp(path, z->root, rl) == 0 && strcmp(path + rl, "/election") == 0;
}

/* Is path an instance node, <root>/blue/<id> or <root>/green/<id>? */
static bool member_path(const struct bg_zk *z, const char *path)
{
    size_t rl = strlen(z->root);
    if (path == NULL || strncmp(path, z->root, rl) != 0)
        return false;
    path += rl;
    return strncmp(path, "/blue/", 6) == 0 || strncmp(path, "/green/", 7) == 0;
}

/* Each handle's context, shared by the loop, the library's threads (the watcher) and the
 * opener thread; heap-allocated so it outlives z if the process leaves a stalled handle
 * behind at exit. Events of a handle that is not the live one (the previous session's expiry
 * or closing, delivered while the next opens) must not touch the current state, and once the
 * loop lets go of z (abandon), nothing touches z at all. */
struct zk_ctx {
    pthread_mutex_t mu;
    struct bg_zk *z; /* NULL once abandoned; under mu */
    unsigned generation;
    /* The opener's work, set before it starts: open connect/auth, after closing old. */
    char *connect, *auth;
    int timeout_ms;
    zhandle_t *old;
    zhandle_t *zh; /* its result, published by opened (NULL: zookeeper_init failed) */
    atomic_bool opened;
};

static struct zk_ctx *ctx_new(struct bg_zk *z, unsigned generation)
{
    struct zk_ctx *ctx = bg_xcalloc(1, sizeof(*ctx));
    pthread_mutex_init(&ctx->mu, NULL);
    ctx->z = z;
    ctx->generation = generation;
    ctx->connect = bg_xstrdup(z->connect);
    ctx->auth = z->auth ? bg_xstrdup(z->auth) : NULL;
    ctx->timeout_ms = z->timeout_ms;
    return ctx;
}

/* Only when no thread can use it any more (its handle closed, its opener joined). */
static void ctx_free(struct zk_ctx **ctx)
{
    if (*ctx == NULL)
        return;
    pthread_mutex_destroy(&(*ctx)->mu);
    free((*ctx)->connect);
    free((*ctx)->auth);
    free(*ctx);
    *ctx = NULL;
}

/* The loop lets go of z: threads still holding ctx leave z alone from now on. */
static void ctx_abandon(struct zk_ctx *ctx)
{
    if (ctx == NULL)
        return;
    pthread_mutex_lock(&ctx->mu);
    ctx->z = NULL;
    pthread_mutex_unlock(&ctx->mu);
}

static void record_event(struct bg_zk *z, int type, int state, const char *path)
{
    if (type == ZOO_CHANGED_EVENT && z->quiet_path[0] != '\0' && path != NULL &&
        strcmp(path, z->quiet_path) == 0) {
        /* Mostly our own writes: counted apart so they do not trigger a full re-read. */
        atomic_fetch_add(&z->quiet_events, 1);
        bg_zk_wake(z);
        return;
    }
    if (type == ZOO_SESSION_EVENT) {
        atomic_store(&z->state, state);
        if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
            atomic_store(&z->fatal, true);
    } else {
        if (type == ZOO_CHANGED_EVENT && member_path(z, path))
            atomic_fetch_add(&z->data_events, 1);
        if (election_path(z, path))
            atomic_fetch_add(&z->election_events, 1);
        atomic_fetch_add(&z->node_events, 1);
    }
    bg_zk_wake(z);
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *arg)
{
    (void)zh;
    struct zk_ctx *ctx = arg;
    pthread_mutex_lock(&ctx->mu);
    struct bg_zk *z = ctx->z;
    if (z != NULL && ctx->generation == atomic_load(&z->live_generation))
        record_event(z, type, state, path);
    pthread_mutex_unlock(&ctx->mu);
}

static void zk_log(const char *message)
{
    /* The library's lines hold spaces and quotes: keep them readable as one value. */
    char clean[512];
    bg_sanitize(message, strlen(message), clean, sizeof(clean));
    bg_log(BG_LOG_WARN, "zk_client", "msg=\"%s\"", clean);
}

/* ----------------------------------------------------------------------------------------
 * Session lifecycle.
 * ------------------------------------------------------------------------------------- */

/* The helper thread: close the previous handle (which may wait for an unresponsive server)
 * and open the new one (zookeeper_init resolves the host names, which may stall). It uses
 * nothing but its context. */
static void *opener_main(void *arg)
{
    struct zk_ctx *ctx = arg;
    if (ctx->old != NULL)
        zookeeper_close(ctx->old);
    zhandle_t *zh = zookeeper_init2(ctx->connect, watcher, ctx->timeout_ms, NULL, ctx, 0, zk_log);
    int err = errno;
    if (zh != NULL && ctx->auth != NULL) {
        /* Before the handle is published: queued ahead of every request of ours. */
        int rc = zoo_add_auth(zh, "digest", ctx->auth, (int)strlen(ctx->auth), NULL, NULL);
        if (rc != ZOK)
            bg_warn("zk_auth", "rc=%s", zerror(rc));
    }
    if (zh == NULL)
        bg_error("zk_init_failed", "connect=%s errno=%d action=retry", ctx->connect, err);
    pthread_mutex_lock(&ctx->mu);
    ctx->zh = zh;
    atomic_store(&ctx->opened, true); /* publishes zh */
    if (ctx->z != NULL)
        bg_zk_wake(ctx->z);
    pthread_mutex_unlock(&ctx->mu);
    return NULL;
}

static void late_flush(struct bg_zk *z);
static void ensured_forget(struct bg_zk *z);

static int zk_start(struct bg_zk *z, zhandle_t *old)
{
    late_flush(z); /* answers of the previous session are not this one's */
    /* From here on only the new handle's events count. */
    unsigned generation = atomic_load(&z->live_generation) + 1;
    atomic_store(&z->live_generation, generation);
    struct zk_ctx *ctx = ctx_new(z, generation);
    ctx->old = old;
    /* The previous handle's context lives until the opener has closed it (zk_adopt). */
    if (old != NULL)
        z->closing_ctx = z->ctx;
    else
        ctx_free(&z->ctx); /* a failed open's: no handle uses it */
    z->ctx = NULL;
    z->opening_ctx = ctx;
    atomic_store(&z->state, ZOO_CONNECTING_STATE);
    atomic_store(&z->fatal, false);
    z->session_id = 0;
    z->connecting_since = bg_now_ms();
    atomic_store(&z->opening, true);
    int rc = pthread_create(&z->opener, NULL, opener_main, ctx);
    if (rc != 0) {
        atomic_store(&z->opening, false);
        bg_error("zk_init_failed", "connect=%s reason=\"no thread: %s\"", z->connect, strerror(rc));
        if (old != NULL)
            zookeeper_close(old);
        ctx_free(&z->closing_ctx);
        z->ctx = z->opening_ctx; /* freed by the next start or close */
        z->opening_ctx = NULL;
        z->open_retry_ms = bg_now_ms() + 1000;
        return BG_EZK;
    }
    return BG_OK;
}

/* The opener finished: take its handle (or schedule a retry). Main loop only. */
static void zk_adopt(struct bg_zk *z)
{
    if (!atomic_load(&z->opening) || !atomic_load(&z->opening_ctx->opened))
        return;
    pthread_join(z->opener, NULL);
    atomic_store(&z->opening, false);
    ctx_free(&z->closing_ctx); /* its handle is closed */
    z->ctx = z->opening_ctx;
    z->opening_ctx = NULL;
    z->zh = z->ctx->zh;
    if (z->zh == NULL)
        z->open_retry_ms = bg_now_ms() + 1000;
}

/* With credentials: everything for the authenticated identity that created the node (every
 * daemon and CI share one digest user), reading for anyone. */
static char scheme_auth[] = "auth", scheme_world[] = "world", id_none[] = "",
            id_anyone[] = "anyone";
static struct ACL protected_acl[] = {{0, {scheme_auth, id_none}}, {0, {scheme_world, id_anyone}}};
static struct ACL_vector protected_acls = {2, protected_acl};

int bg_zk_open(struct bg_zk *z, const char *connect, const char *root, int timeout_ms,
               const char *auth)
{
    memset(z, 0, sizeof(*z));
    static const double call_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10};
    bg_prom_hist_init(&z->call_seconds, call_le, BG_ARRAY_LEN(call_le));
    z->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (z->wake_fd < 0)
        return -errno;
    z->connect = bg_xstrdup(connect);
    z->auth = auth ? bg_xstrdup(auth) : NULL;
    /* The library's ZOO_PERM_* are extern constants, not constant expressions: set the
     * protected ACL's permissions here, on the main thread, before any create. */
    protected_acl[0].perms = ZOO_PERM_ALL;
    protected_acl[1].perms = ZOO_PERM_READ;
    z->timeout_ms = timeout_ms;
    size_t rl = strlen(root);
    while (rl > 0 && root[rl - 1] == '/')
        rl--;
    z->root = bg_xstrndup(root, rl);
    static int once;
    if (!once) {
        once = 1;
        zoo_set_debug_level(getenv("BG_ZK_DEBUG") ? ZOO_LOG_LEVEL_DEBUG : ZOO_LOG_LEVEL_WARN);
    }
    return zk_start(z, NULL);
}

/* zookeeper_close on a thread of its own, waited for at most BG_ZK_CLOSE_WAIT_MS. */
struct closer {
    zhandle_t *zh;
    atomic_bool done;
};

static void *closer_main(void *arg)
{
    struct closer *k = arg;
    zookeeper_close(k->zh);
    atomic_store(&k->done, true);
    return NULL;
}

/* The contexts of a session abandoned to its still-running threads at exit (bg_zk_close). */
static struct zk_ctx *zk_left_behind[3];

/* Returns false when the library still runs (and may still call our watcher). */
static bool close_bounded(zhandle_t *zh)
{
    struct closer *k = bg_xcalloc(1, sizeof(*k));
    k->zh = zh;
    pthread_t t;
    if (pthread_create(&t, NULL, closer_main, k) != 0) {
        zookeeper_close(zh);
        free(k);
        return true;
    }
    int64_t deadline = bg_now_ms() + BG_ZK_CLOSE_WAIT_MS;
    while (!atomic_load(&k->done) && bg_now_ms() < deadline)
        poll(NULL, 0, 10);
    if (atomic_load(&k->done)) {
        pthread_join(t, NULL);
        free(k);
        return true;
    }
    /* The server does not answer: the process exits without it (k stays with the thread). */
    pthread_detach(t);
    bg_warn("zk_close_slow", "waited_ms=%d action=exit_without_close", BG_ZK_CLOSE_WAIT_MS);
    return false;
}

void bg_zk_close(struct bg_zk *z)
{
    if (z->connect == NULL)
        return; /* never opened (a zeroed struct: its wake_fd 0 is not ours), or closed */
    zk_adopt(z);
    late_flush(z);
    ensured_forget(z);
    bool still_used = false; /* by a library or opener thread that may still run */
    if (atomic_load(&z->opening)) {
        /* Still resolving, or closing the previous handle: left to the process exit. */
        pthread_detach(z->opener);
        bg_warn("zk_close_slow", "reason=\"session still opening\" action=exit_without_close");
        still_used = true;
    } else if (z->zh != NULL) {
        still_used = !close_bounded(z->zh);
    }
    z->zh = NULL;
    if (still_used) {
        /* Those threads keep their contexts (held here: not leaks, the process is ending)
         * but must not touch z, which goes away with the caller. */
        ctx_abandon(z->ctx);
        ctx_abandon(z->opening_ctx);
        ctx_abandon(z->closing_ctx);
        zk_left_behind[0] = z->ctx;
        zk_left_behind[1] = z->opening_ctx;
        zk_left_behind[2] = z->closing_ctx;
    } else {
        ctx_free(&z->ctx);
    }
    z->ctx = z->opening_ctx = z->closing_ctx = NULL;
    if (z->wake_fd >= 0)
        close(z->wake_fd);
    z->wake_fd = -1;
    bg_free(&z->connect);
    bg_free(&z->root);
    bg_free(&z->auth);
}

int bg_zk_reopen(struct bg_zk *z)
{
    zk_adopt(z);
    if (atomic_load(&z->opening))
        return BG_OK; /* already under way */
    zhandle_t *old = z->zh;
    z->zh = NULL;
    z->generation++;
    bg_info("zk_reopen", "connect=%s generation=%u", z->connect, z->generation);
    return zk_start(z, old);
}

void bg_zk_wake(struct bg_zk *z)
{
    uint64_t one = 1;
    ssize_t w = write(z->wake_fd, &one, sizeof(one));
    (void)w;
}

void bg_zk_drain(struct bg_zk *z)
{
    uint64_t v;
    ssize_t r = read(z->wake_fd, &v, sizeof(v));
    (void)r;
}

enum bg_zk_health bg_zk_check(struct bg_zk *z)
{
    int64_t now = bg_now_ms();
    zk_adopt(z);
    if (atomic_load(&z->fatal))
        return BG_ZK_LOST;
    if (z->zh == NULL) {
        /* Opening (resolving names, maybe for long), or a failed open waiting to retry. */
        if (!atomic_load(&z->opening) && now >= z->open_retry_ms)
            zk_start(z, NULL);
        return BG_ZK_CONNECTING;
    }
    int state = atomic_load(&z->state);
    if (state == ZOO_CONNECTED_STATE) {
        if (z->connecting_since != 0 || z->session_id == 0) {
            const clientid_t *cid = zoo_client_id(z->zh);
            int64_t sid = cid ? cid->client_id : 0;
            if (z->session_id != 0 && sid != z->session_id)
                bg_warn("zk_session_changed", "old=0x%llx new=0x%llx",
                        (unsigned long long)z->session_id, (unsigned long long)sid);
            z->session_id = sid;
            bg_info("zk_connected", "session=0x%llx negotiated_timeout_ms=%d",
                    (unsigned long long)sid, zoo_recv_timeout(z->zh));
        }
        z->connecting_since = 0;
        z->last_connected = now;
        return BG_ZK_CONNECTED;
    }
    if (z->connecting_since == 0) {
        z->connecting_since = now;
        bg_warn("zk_disconnected", "state=%s", bg_zk_state_name(state));
    }
    /* A session only ever established counts; before that we cannot have lost anything
     * but we also have nothing: report LOST so callers rebuild once it connects. */
    if (z->session_id != 0 && now - z->connecting_since > z->timeout_ms)
        return BG_ZK_LOST;
    return BG_ZK_CONNECTING;
}

int bg_zk_wait_connected(struct bg_zk *z, int64_t timeout_ms)
{
    int64_t deadline = bg_now_ms() + timeout_ms;
    for (;;) {
        zk_adopt(z);
        if (z->zh != NULL && atomic_load(&z->state) == ZOO_CONNECTED_STATE) {
            bg_zk_check(z);
            return BG_OK;
        }
        if (atomic_load(&z->fatal))
            return BG_EZK;
        int64_t left = deadline - bg_now_ms();
        if (left <= 0)
            return BG_ETIMEOUT;
        struct pollfd p = {.fd = z->wake_fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left > 100 ? 100 : left)) > 0)
            bg_zk_drain(z);
    }
}

int64_t bg_zk_session(struct bg_zk *z)
{
    return z->session_id;
}

/* ----------------------------------------------------------------------------------------
 * Bounded calls: the library's asynchronous calls, waited for on a condition variable until
 * the turn's budget is spent. A call's record is shared with its completion (run on the
 * library's completion thread) and freed by whichever of the two lets go of it last.
 * ------------------------------------------------------------------------------------- */

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;

struct zk_call {
    pthread_cond_t cv;
    int refs; /* the waiter and the completion */
    bool done;
    int rc;
    struct Stat st;
    char *buf; /* data read: cap bytes, len of them valid (-1: no data) */
    int cap, len;
    struct String_vector kids;
    char *created; /* a create's resulting path */
    char *key;     /* what was asked (operation, arguments): a retry adopts this call */
    int64_t done_ms;
    unsigned events; /* the session's watch events when it was asked */
};

static struct zk_call *call_new(int cap)
{
    struct zk_call *k = bg_xcalloc(1, sizeof(*k));
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &a);
    pthread_condattr_destroy(&a);
    k->refs = 2;
    if (cap > 0) {
        k->buf = bg_xmalloc((size_t)cap);
        k->cap = cap;
    }
    return k;
}

/* Let go of k; call_mu held. */
static void call_unref_locked(struct zk_call *k)
{
    if (--k->refs > 0)
        return;
    pthread_cond_destroy(&k->cv);
    free(k->buf);
    free(k->created);
    free(k->key);
    deallocate_String_vector(&k->kids);
    free(k);
}

/* Completion side: record rc (the result fields are filled by the caller), wake the waiter. */
static void call_done_locked(struct zk_call *k, int rc)
{
    k->rc = rc;
    k->done = true;
    k->done_ms = bg_now_ms();
    pthread_cond_signal(&k->cv);
    call_unref_locked(k);
}

/* Calls whose answer came too late for the turn that asked are kept (one reference each,
 * main loop only), and any turn asking the same thing again waits for, or takes, that answer
 * instead of asking anew: with answers slower than the budget, asking anew each turn would
 * never get one, and a chain of calls (parents, then the node) never got past its first.
 * An answer is taken while it is at most BG_ZK_LATE_FRESH_MS old and no watch event came
 * since it was asked (after an event the caller must read afresh: a watch fires once). */
#define BG_ZK_LATE_FRESH_MS 2000

static unsigned events_now(struct bg_zk *z)
{
    return atomic_load(&z->node_events) + atomic_load(&z->quiet_events);
}

static void late_drop(struct bg_zk *z, int i)
{
    pthread_mutex_lock(&call_mu);
    call_unref_locked(z->late[i]);
    pthread_mutex_unlock(&call_mu);
    memmove(&z->late[i], &z->late[i + 1], (size_t)(z->n_late - i - 1) * sizeof(z->late[0]));
    z->n_late--;
}

static void late_flush(struct bg_zk *z)
{
    while (z->n_late > 0)
        late_drop(z, 0);
}

static void late_put(struct bg_zk *z, struct zk_call *k)
{
    for (int i = 0; i < z->n_late; i++)
        if (z->late[i] == k)
            return; /* kept already: the waiter's reference goes */
    if (z->n_late == BG_ZK_LATE_MAX)
        late_drop(z, 0);
    pthread_mutex_lock(&call_mu);
    k->refs++; /* the table's */
    pthread_mutex_unlock(&call_mu);
    z->late[z->n_late++] = k;
}

/* The kept call asking key, if usable (see above), with a reference for the caller (the
 * table keeps its own); else NULL (an unusable one is dropped). */
static struct zk_call *late_take(struct bg_zk *z, const char *key)
{
    for (int i = 0; i < z->n_late; i++) {
        if (strcmp(z->late[i]->key, key) != 0)
            continue;
        struct zk_call *k = z->late[i];
        pthread_mutex_lock(&call_mu);
        bool usable = k->events == events_now(z) &&
                      (!k->done || bg_now_ms() - k->done_ms <= BG_ZK_LATE_FRESH_MS);
        if (usable)
            k->refs++;
        pthread_mutex_unlock(&call_mu);
        if (!usable) {
            late_drop(z, i);
            return NULL;
        }
        return k;
    }
    return NULL;
}

/* FNV-1a of what a write sends, for its key. */
static unsigned long data_hash(const char *data, int len)
{
    unsigned long h = 1469598103934665603UL;
    for (int i = 0; data != NULL && i < len; i++)
        h = (h ^ (unsigned char)data[i]) * 1099511628211UL;
    return h;
}

/* A call for key: the kept one if any (*adopted), else a new one to submit. */
static struct zk_call *call_for(struct bg_zk *z, char *key, int cap, bool *adopted)
{
    struct zk_call *k = late_take(z, key);
    *adopted = k != NULL;
    if (k != NULL) {
        free(key);
        return k;
    }
    k = call_new(cap);
    k->key = key;
    k->events = events_now(z);
    return k;
}

static void on_void(int rc, const void *data)
{
    struct zk_call *k = (struct zk_call *)data;
    pthread_mutex_lock(&call_mu);
    call_done_locked(k, rc);
    pthread_mutex_unlock(&call_mu);
}

static void on_stat(int rc, const struct Stat *st, const void *data)
{
    struct zk_call *k = (struct zk_call *)data;
    pthread_mutex_lock(&call_mu);
    if (rc == ZOK && st != NULL)
        k->st = *st;
    call_done_locked(k, rc);
    pthread_mutex_unlock(&call_mu);
}

static void on_data(int rc, const char *value, int value_len, const struct Stat *st,
                    const void *data)
{
    struct zk_call *k = (struct zk_call *)data;
    pthread_mutex_lock(&call_mu);
    if (rc == ZOK) {
        /* As the synchronous zoo_get: at most the buffer's size, -1 for a node without data. */
        k->len = value == NULL || value_len < 0 ? -1 : value_len < k->cap ? value_len : k->cap;
        if (k->len > 0)
            memcpy(k->buf, value, (size_t)k->len);
        if (st != NULL)
            k->st = *st;
    }
    call_done_locked(k, rc);
    pthread_mutex_unlock(&call_mu);
}

static void copy_strings(struct String_vector *to, const struct String_vector *from)
{
    if (from == NULL || from->count <= 0)
        return;
    to->data = bg_xcalloc((size_t)from->count, sizeof(char *));
    to->count = from->count;
    for (int i = 0; i < from->count; i++)
        to->data[i] = bg_xstrdup(from->data[i] ? from->data[i] : "");
}

static void on_strings_stat(int rc, const struct String_vector *strings, const struct Stat *st,
                            const void *data)
{
    struct zk_call *k = (struct zk_call *)data;
    pthread_mutex_lock(&call_mu);
    if (rc == ZOK) {
        copy_strings(&k->kids, strings);
        if (st != NULL)
            k->st = *st;
    }
    call_done_locked(k, rc);
    pthread_mutex_unlock(&call_mu);
}

static void on_string(int rc, const char *value, const void *data)
{
    struct zk_call *k = (struct zk_call *)data;
    pthread_mutex_lock(&call_mu);
    if (rc == ZOK && value != NULL)
        k->created = bg_xstrdup(value);
    call_done_locked(k, rc);
    pthread_mutex_unlock(&call_mu);
}

void bg_zk_set_wait_hook(struct bg_zk *z, bool (*hook)(void *ctx), void *ctx)
{
    z->wait_hook = hook;
    z->wait_ctx = ctx;
}

void bg_zk_tick(struct bg_zk *z)
{
    z->ticking = true;
    z->tick_waited_ms = 0;
}

/* Before submitting: 0 to go on, or the error to return at once. */
static int call_admit(struct bg_zk *z)
{
    if (z->zh == NULL)
        return ZCONNECTIONLOSS;
    if (z->in_hook)
        return ZOPERATIONTIMEOUT; /* the wait hook's work must not wait on ZooKeeper */
    if (z->wait_hook == NULL && z->ticking && z->tick_waited_ms >= BG_ZK_BUDGET_MS)
        return ZOPERATIONTIMEOUT;
    return ZOK;
}

bool bg_zk_wait_until(struct bg_zk *z, pthread_mutex_t *mu, pthread_cond_t *cv,
                      bool (*done)(void *arg), void *arg)
{
    int64_t t0 = bg_now_ms();
    /* With a wait hook the daemon stays responsive while it waits, so the wait may last as
     * long as the library lets a call (it fails calls itself once the connection is lost);
     * the hook says when to give up (stopping). Without one, the turn's budget bounds it. */
    bool hooked = z->wait_hook != NULL;
    int64_t limit =
        hooked || !z->ticking ? z->timeout_ms + 2000LL : BG_ZK_BUDGET_MS - z->tick_waited_ms;
    int64_t deadline = t0 + limit;
    while (!done(arg)) {
        int64_t now = bg_now_ms();
        if (now >= deadline)
            break;
        int64_t slice =
            hooked && deadline - now > BG_ZK_HOOK_SLICE_MS ? BG_ZK_HOOK_SLICE_MS : deadline - now;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += slice / 1000;
        ts.tv_nsec += (slice % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(cv, mu, &ts) != ETIMEDOUT || done(arg) || !hooked)
            continue;
        /* Serve the daemon's HTTP (and notice a stop) while the answer is due. */
        pthread_mutex_unlock(mu);
        z->in_hook = true;
        bool go_on = z->wait_hook(z->wait_ctx);
        z->in_hook = false;
        pthread_mutex_lock(mu);
        if (!go_on)
            break;
    }
    z->tick_waited_ms += bg_now_ms() - t0;
    return done(arg);
}

/* call_mu held. */
static bool call_answered(void *arg)
{
    return ((struct zk_call *)arg)->done;
}

/* Submitted (src is what zoo_a* returned): wait for the answer within the budget. True when
 * it was answered: *rc is the server's result, and call_mu stays HELD so the caller can copy
 * the results out of k before call_finish(k). False: *rc is the error (not submitted, or
 * ZOPERATIONTIMEOUT), and k is no longer the caller's. */
static bool call_wait(struct bg_zk *z, struct zk_call *k, int src, const char *what,
                      const char *path, int *rc)
{
    if (src != ZOK) {
        /* Not submitted: the completion will never run. */
        pthread_mutex_lock(&call_mu);
        k->refs--;
        call_unref_locked(k);
        pthread_mutex_unlock(&call_mu);
        *rc = src;
        return false;
    }
    int64_t t0 = bg_now_ms();
    pthread_mutex_lock(&call_mu);
    bg_zk_wait_until(z, &call_mu, &k->cv, call_answered, k);
    bg_prom_hist_observe(&z->call_seconds, (bg_now_ms() - t0) / 1e3);
    if (k->done) {
        *rc = k->rc;
        return true; /* call_mu held */
    }
    pthread_mutex_unlock(&call_mu);
    late_put(z, k); /* the next turn asking the same takes its answer */
    pthread_mutex_lock(&call_mu);
    call_unref_locked(k); /* the waiter's (the table holds one now) */
    pthread_mutex_unlock(&call_mu);
    z->n_call_timeouts++;
    static int64_t last_ms;
    int64_t now = bg_now_ms();
    if (now - last_ms >= 1000) {
        last_ms = now;
        bg_warn("zk_call_slow",
                "call=%s path=%s waited_ms=%lld timeouts=%lu action=retry_later "
                "reason=\"no answer within the loop's budget\"",
                what, path, (long long)(now - t0), z->n_call_timeouts);
    }
    *rc = ZOPERATIONTIMEOUT;
    return false;
}

/* After call_wait returned true. */
static void call_finish(struct zk_call *k)
{
    call_unref_locked(k);
    pthread_mutex_unlock(&call_mu);
}

int bg_zk_get(struct bg_zk *z, const char *path, int watch, char *buf, int *len, struct Stat *st)
{
    int rc = call_admit(z);
    if (rc != ZOK)
        return rc;
    bool adopted;
    int cap = *len > 0 ? *len : 0;
    struct zk_call *k =
        call_for(z, bg_xasprintf("get %d %d %s", watch, cap, path), cap > 0 ? cap : 1, &adopted);
    k->cap = cap;
    int src = adopted ? ZOK : zoo_aget(z->zh, path, watch, on_data, k);
    if (call_wait(z, k, src, "get", path, &rc)) {
        if (rc == ZOK) {
            *len = k->len;
            if (k->len > 0)
                memcpy(buf, k->buf, (size_t)k->len);
            if (st != NULL)
                *st = k->st;
        }
        call_finish(k);
    }
    return rc;
}

int bg_zk_exists(struct bg_zk *z, const char *path, int watch, struct Stat *st)
{
    int rc = call_admit(z);
    if (rc != ZOK)
        return rc;
    bool adopted;
    struct zk_call *k = call_for(z, bg_xasprintf("exists %d %s", watch, path), 0, &adopted);
    int src = adopted ? ZOK : zoo_aexists(z->zh, path, watch, on_stat, k);
    if (call_wait(z, k, src, "exists", path, &rc)) {
        if (rc == ZOK && st != NULL)
            *st = k->st;
        call_finish(k);
    }
    return rc;
}

int bg_zk_children2(struct bg_zk *z, const char *path, int watch, struct String_vector *kids,
                    struct Stat *st)
{
    kids->count = 0;
    kids->data = NULL;
    int rc = call_admit(z);
    if (rc != ZOK)
        return rc;
    bool adopted;
    struct zk_call *k = call_for(z, bg_xasprintf("children %d %s", watch, path), 0, &adopted);
    int src = adopted ? ZOK : zoo_aget_children2(z->zh, path, watch, on_strings_stat, k);
    if (call_wait(z, k, src, "children", path, &rc)) {
        if (rc == ZOK) {
            copy_strings(kids, &k->kids); /* k may be kept for another turn */
            if (st != NULL)
                *st = k->st;
        }
        call_finish(k);
    }
    return rc;
}

int bg_zk_children(struct bg_zk *z, const char *path, int watch, struct String_vector *kids)
{
    return bg_zk_children2(z, path, watch, kids, NULL);
}

int bg_zk_create(struct bg_zk *z, const char *path, const char *data, int len,
                 const struct ACL_vector *acl, int flags, char *out, int outlen)
{
    int rc = call_admit(z);
    if (rc != ZOK)
        return rc;
    bool adopted;
    struct zk_call *k = call_for(
        z,
        bg_xasprintf("create %d %lx %p %s", flags, data_hash(data, len), (const void *)acl, path),
        0, &adopted);
    int src = adopted ? ZOK : zoo_acreate(z->zh, path, data, len, acl, flags, on_string, k);
    if (call_wait(z, k, src, "create", path, &rc)) {
        if (rc == ZOK && out != NULL && outlen > 0)
            snprintf(out, (size_t)outlen, "%s", k->created ? k->created : path);
        call_finish(k);
    }
    if (rc == ZNONODE)
        ensured_forget(z); /* a parent is gone (deleted by hand?): make it again */
    return rc;
}

int bg_zk_set2(struct bg_zk *z, const char *path, const char *data, int len, int version,
               struct Stat *st)
{
    int rc = call_admit(z);
    if (rc != ZOK)
        return rc;
    bool adopted;
    struct zk_call *k = call_for(
        z, bg_xasprintf("set %d %lx %s", version, data_hash(data, len), path), 0, &adopted);
    int src = adopted ? ZOK : zoo_aset(z->zh, path, data, len, version, on_stat, k);
    if (call_wait(z, k, src, "set", path, &rc)) {
        if (rc == ZOK && st != NULL)
            *st = k->st;
        call_finish(k);
    }
    return rc;
}

int bg_zk_delete(struct bg_zk *z, const char *path, int version)
{
    int rc = call_admit(z);
    if (rc != ZOK)
        return rc;
    bool adopted;
    struct zk_call *k = call_for(z, bg_xasprintf("delete %d %s", version, path), 0, &adopted);
    int src = adopted ? ZOK : zoo_adelete(z->zh, path, version, on_void, k);
    if (call_wait(z, k, src, "delete", path, &rc))
        call_finish(k);
    return rc;
}

void bg_zk_path(const struct bg_zk *z, const char *rel, char *buf, size_t len)
{
    if (z->root[0] == '\0' && (rel[0] == '\0' || strcmp(rel, "/") == 0))
        snprintf(buf, len, "/");
    else
        snprintf(buf, len, "%s%s", z->root, strcmp(rel, "/") == 0 ? "" : rel);
}

const struct ACL_vector *bg_zk_acl(const struct bg_zk *z)
{
    return z->auth != NULL ? &protected_acls : &ZOO_OPEN_ACL_UNSAFE;
}

int bg_zk_ensure(struct bg_zk *z, const char *rel)
{
    char full[1024];
    bg_zk_path(z, rel, full, sizeof(full));
    if (strcmp(full, "/") == 0)
        return BG_OK;
    /* Known to exist: not asked again (a create under it answering ZNONODE forgets). */
    for (int i = 0; i < z->n_ensured; i++)
        if (strcmp(z->ensured[i], full) == 0)
            return BG_OK;
    size_t root_len = strlen(z->root);
    for (char *p = full + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        /* Parents above the root stay open (other services live beside this one); the root
         * and everything below it are protected when credentials are configured. */
        const struct ACL_vector *acl =
            (size_t)(p - full) < root_len ? &ZOO_OPEN_ACL_UNSAFE : bg_zk_acl(z);
        int rc = bg_zk_create(z, full, "", 0, acl, 0, NULL, 0);
        if (rc == ZNOAUTH && bg_zk_exists(z, full, 0, NULL) == ZOK)
            rc = ZNODEEXISTS; /* we may not create here, but it is there already */
        *p = saved;
        if (rc != ZOK && rc != ZNODEEXISTS) {
            bg_warn("zk_create_failed", "path=%s rc=%s", full, zerror(rc));
            return BG_EZK;
        }
        if (saved == '\0')
            break;
    }
    if (z->n_ensured < BG_ZK_ENSURED_MAX)
        z->ensured[z->n_ensured++] = bg_xstrdup(full);
    return BG_OK;
}

static void ensured_forget(struct bg_zk *z)
{
    while (z->n_ensured > 0)
        bg_free(&z->ensured[--z->n_ensured]);
}

const char *bg_zk_state_name(int state)
{
    if (state == ZOO_CONNECTED_STATE)
        return "connected";
    if (state == ZOO_CONNECTING_STATE)
        return "connecting";
    if (state == ZOO_ASSOCIATING_STATE)
        return "associating";
    if (state == ZOO_EXPIRED_SESSION_STATE)
        return "expired";
    if (state == ZOO_AUTH_FAILED_STATE)
        return "auth_failed";
    if (state == 0)
        return "closed";
    return "unknown";
}

/* ----------------------------------------------------------------------------------------
 * Election members.
 * ------------------------------------------------------------------------------------- */

static int cmp_member(const void *a, const void *b)
{
    int64_t x = ((const struct bg_election_member *)a)->seq;
    int64_t y = ((const struct bg_election_member *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Warn about a persistent member node: it is re-read on every pass, so at most one line every
 * 10 s (saying how many others were seen meanwhile), whatever the number of such nodes. */
static void warn_persistent(const char *dir, const char *name)
{
    static int64_t last_ms;
    static unsigned long suppressed;
    int64_t now = bg_now_ms();
    if (last_ms != 0 && now - last_ms < 10000) {
        suppressed++;
        return;
    }
    last_ms = now;
    bg_warn("election_node_ignored",
            "node=%s/%s suppressed=%lu reason=\"persistent (not a live controller's "
            "ephemeral node; made by hand?): never obeyed as a leader, delete it\"",
            dir, name, suppressed);
    suppressed = 0;
}

int bg_zk_election_members(struct bg_zk *z, int watch, struct bg_election_member **out, size_t *n)
{
    char dir[600];
    bg_zk_path(z, "/election", dir, sizeof(dir));
    *out = NULL;
    *n = 0;
    struct String_vector kids = {0};
    int rc = bg_zk_children(z, dir, watch, &kids);
    if (rc == ZNONODE) {
        struct Stat st;
        if (watch)
            rc = bg_zk_exists(z, dir, 1, &st);
        return rc == ZNONODE || rc == ZOK ? ZOK : rc;
    }
    if (rc != ZOK)
        return rc;
    struct bg_election_member *m =
        kids.count > 0 ? bg_xcalloc((size_t)kids.count, sizeof(*m)) : NULL;
    size_t k = 0;
    for (int i = 0; i < kids.count; i++) {
        int64_t seq = bg_election_seq(kids.data[i]);
        if (seq < 0)
            continue;
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", dir, kids.data[i]);
        struct Stat st;
        int erc = bg_zk_exists(z, path, 0, &st);
        if (erc == ZNONODE)
            continue; /* gone since the listing */
        if (erc != ZOK) {
            rc = erc;
            break;
        }
        if (st.ephemeralOwner == 0) {
            warn_persistent(dir, kids.data[i]);
            continue;
        }
        m[k].seq = seq;
        m[k].owner = st.ephemeralOwner;
        snprintf(m[k].name, sizeof(m[k].name), "%s", kids.data[i]);
        k++;
    }
    deallocate_String_vector(&kids);
    if (rc != ZOK) {
        free(m);
        return rc;
    }
    if (k > 1)
        qsort(m, k, sizeof(*m), cmp_member);
    *out = m;
    *n = k;
    return ZOK;
}
