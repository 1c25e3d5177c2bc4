/* zk.c -- ZooKeeper session handling: connect, classify, reopen after expiry. */
#include "zk.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
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

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    struct bg_zk *z = ctx;
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

static int zk_start(struct bg_zk *z)
{
    atomic_store(&z->state, ZOO_CONNECTING_STATE);
    atomic_store(&z->fatal, false);
    z->session_id = 0;
    z->connecting_since = bg_now_ms();
    z->zh = zookeeper_init2(z->connect, watcher, z->timeout_ms, NULL, z, 0, zk_log);
    if (z->zh == NULL) {
        bg_error("zk_init_failed", "connect=%s errno=%d", z->connect, errno);
        return BG_EZK;
    }
    if (z->auth != NULL) {
        int rc = zoo_add_auth(z->zh, "digest", z->auth, (int)strlen(z->auth), NULL, NULL);
        if (rc != ZOK)
            bg_warn("zk_auth", "rc=%s", zerror(rc));
    }
    return BG_OK;
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
    return zk_start(z);
}

void bg_zk_close(struct bg_zk *z)
{
    if (z->zh != NULL)
        zookeeper_close(z->zh);
    z->zh = NULL;
    if (z->wake_fd >= 0)
        close(z->wake_fd);
    z->wake_fd = -1;
    bg_free(&z->connect);
    bg_free(&z->root);
    bg_free(&z->auth);
}

int bg_zk_reopen(struct bg_zk *z)
{
    if (z->zh != NULL)
        zookeeper_close(z->zh);
    z->zh = NULL;
    z->generation++;
    bg_info("zk_reopen", "connect=%s generation=%u", z->connect, z->generation);
    return zk_start(z);
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
    if (z->zh == NULL || atomic_load(&z->fatal))
        return BG_ZK_LOST;
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
        if (atomic_load(&z->state) == ZOO_CONNECTED_STATE) {
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
        int rc = zoo_create(z->zh, full, "", 0, acl, 0, NULL, 0);
        if (rc == ZNOAUTH && zoo_exists(z->zh, full, 0, NULL) == ZOK)
            rc = ZNODEEXISTS; /* we may not create here, but it is there already */
        *p = saved;
        if (rc != ZOK && rc != ZNODEEXISTS) {
            bg_warn("zk_create_failed", "path=%s rc=%s", full, zerror(rc));
            return BG_EZK;
        }
        if (saved == '\0')
            break;
    }
    return BG_OK;
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
    int rc = zoo_get_children(z->zh, dir, watch, &kids);
    if (rc == ZNONODE) {
        struct Stat st;
        if (watch)
            rc = zoo_exists(z->zh, dir, 1, &st);
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
        int erc = zoo_exists(z->zh, path, 0, &st);
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
