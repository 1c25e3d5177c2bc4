/* zkt: a fast ZooKeeper command line for the test harness (zkCli.sh starts a JVM: ~1 s a call).
 *
 * Usage: zkt -z HOST:PORT[,HOST:PORT...] [-t TIMEOUT_MS] [-s SESSION_MS] [-q|-v] CMD ARGS...
 *
 * Exit codes (the harness relies on them):
 *   0 ok, 1 usage or other error, 2 cannot connect (or the session was lost),
 *   3 no such node, 4 node already exists, 5 wait-* timed out, 6 not empty (delete without -r).
 *
 * Operations that fail with a connection loss are retried until the -t deadline, so a call made
 * while an ensemble member is being killed still succeeds once the client has reconnected.
 */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zookeeper/zookeeper.h>

enum {
    EX_OK = 0,
    EX_ERR = 1,
    EX_CONN = 2,
    EX_NONODE = 3,
    EX_EXISTS = 4,
    EX_TIMEOUT = 5,
    EX_NOTEMPTY = 6,
};

/* The server drops the connection on a request larger than jute.maxbuffer (default 0xfffff
 * bytes: header, path, data and ACL together); refuse such data up front rather than retry. */
#define ZKT_MAX_PACKET 0xfffff
#define ZKT_MAX_DATA (1024 * 1024)
#define ZKT_OVERHEAD 256

static bool too_large(const char *op, const char *path, int len)
{
    if (len <= 0 || (long)len + (long)strlen(path) + ZKT_OVERHEAD <= ZKT_MAX_PACKET)
        return false;
    fprintf(stderr, "zkt: %s %s: %d bytes is more than ZooKeeper accepts (jute.maxbuffer)\n", op,
            path, len);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Session state shared with the ZooKeeper completion thread
 * ------------------------------------------------------------------------------------------- */

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t state_cond = PTHREAD_COND_INITIALIZER;
static int session_state;       /* last ZOO_*_STATE seen; 0 before the first event */
static unsigned long watch_gen; /* bumped on every event: wakes wait-gone/wait-exists */

static zhandle_t *zh;
static int64_t deadline_ms; /* absolute CLOCK_MONOTONIC deadline for connect + retries */
static const char *connect_str;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void watcher(zhandle_t *h, int type, int state, const char *path, void *ctx)
{
    (void)h;
    (void)path;
    (void)ctx;
    pthread_mutex_lock(&state_lock);
    if (type == ZOO_SESSION_EVENT)
        session_state = state;
    watch_gen++;
    pthread_cond_broadcast(&state_cond);
    pthread_mutex_unlock(&state_lock);
}

/* Waits on state_cond until the absolute monotonic time until_ms; the caller holds state_lock. */
static void cond_wait_until(int64_t until_ms)
{
    /* state_cond uses CLOCK_MONOTONIC (see main), so the deadline converts directly. */
    struct timespec ts;
    ts.tv_sec = (time_t)(until_ms / 1000);
    ts.tv_nsec = (long)(until_ms % 1000) * 1000000L;
    pthread_cond_timedwait(&state_cond, &state_lock, &ts);
}

static bool session_is_fatal(int state)
{
    return state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE;
}

/* Waits until the session is connected or the deadline passes. Returns true when connected. */
static bool wait_connected(void)
{
    bool ok;

    pthread_mutex_lock(&state_lock);
    while (session_state != ZOO_CONNECTED_STATE && !session_is_fatal(session_state) &&
           now_ms() < deadline_ms)
        cond_wait_until(deadline_ms);
    ok = session_state == ZOO_CONNECTED_STATE;
    pthread_mutex_unlock(&state_lock);
    return ok;
}

static int die_conn(const char *what)
{
    pthread_mutex_lock(&state_lock);
    int st = session_state;
    pthread_mutex_unlock(&state_lock);
    fprintf(stderr, "zkt: %s: not connected to %s (session %s)\n", what, connect_str,
            st == ZOO_EXPIRED_SESSION_STATE ? "expired" : "not established in time");
    return EX_CONN;
}

/* Should an operation that returned rc be tried again? Waits for the reconnection if so. */
static bool retry(int rc)
{
    if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT && rc != ZSESSIONMOVED)
        return false;
    if (now_ms() >= deadline_ms)
        return false;
    /* The state may still say CONNECTED for a moment after the loss; don't spin. */
    usleep(20 * 1000);
    return wait_connected();
}

/* Maps a ZooKeeper error to an exit code, printing it once. */
static int fail(const char *op, const char *path, int rc)
{
    switch (rc) {
    case ZNONODE:
        fprintf(stderr, "zkt: %s %s: no such node\n", op, path);
        return EX_NONODE;
    case ZNODEEXISTS:
        fprintf(stderr, "zkt: %s %s: node exists\n", op, path);
        return EX_EXISTS;
    case ZNOTEMPTY:
        fprintf(stderr, "zkt: %s %s: node has children (use -r)\n", op, path);
        return EX_NOTEMPTY;
    case ZCONNECTIONLOSS:
    case ZOPERATIONTIMEOUT:
    case ZSESSIONEXPIRED:
    case ZINVALIDSTATE:
        fprintf(stderr, "zkt: %s %s: %s (%s)\n", op, path, zerror(rc), connect_str);
        return EX_CONN;
    default:
        fprintf(stderr, "zkt: %s %s: %s\n", op, path, zerror(rc));
        return EX_ERR;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers around the synchronous API, each retrying on connection loss
 * ------------------------------------------------------------------------------------------- */

static int zk_exists(const char *path, int watch, struct Stat *st)
{
    int rc;
    do {
        rc = zoo_exists(zh, path, watch, st);
    } while (retry(rc));
    return rc;
}

/* Reads a node's data into a malloc'ed buffer (*out, *len; *len is -1 for null data). */
static int zk_get(const char *path, char **out, int *len, struct Stat *st)
{
    int rc;
    int cap = 0;
    char *buf = NULL;

    for (;;) {
        rc = zk_exists(path, 0, st);
        if (rc != ZOK)
            break;
        cap = st->dataLength > 0 ? st->dataLength : 1;
        free(buf);
        buf = malloc((size_t)cap);
        if (buf == NULL) {
            fprintf(stderr, "zkt: out of memory\n");
            exit(EX_ERR);
        }
        *len = cap;
        do {
            rc = zoo_get(zh, path, 0, buf, len, st);
        } while (retry(rc));
        /* The node grew between the two reads: read again with a bigger buffer. */
        if (rc == ZOK && st->dataLength > cap)
            continue;
        break;
    }
    if (rc != ZOK) {
        free(buf);
        buf = NULL;
    }
    *out = buf;
    return rc;
}

/* Creates every missing ancestor of path as an empty persistent node. */
static int create_parents(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(tmp))
        return ZBADARGUMENTS;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc;
        do {
            rc = zoo_create(zh, tmp, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
        } while (retry(rc));
        *p = '/';
        if (rc != ZOK && rc != ZNODEEXISTS)
            return rc;
    }
    return ZOK;
}

static int zk_create(const char *path, const char *data, int len, int mode, bool parents,
                     char *created, int created_len)
{
    int rc;

    if (parents) {
        rc = create_parents(path);
        if (rc != ZOK)
            return rc;
    }
    do {
        rc = zoo_create(zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, mode, created, created_len);
    } while (retry(rc));
    return rc;
}

/* Sets a node's data, creating it (and its parents) as persistent when missing. */
static int zk_put(const char *path, const char *data, int len)
{
    int rc;

    for (;;) {
        do {
            rc = zoo_set(zh, path, data, len, -1);
        } while (retry(rc));
        if (rc != ZNONODE)
            return rc;
        rc = zk_create(path, data, len, ZOO_PERSISTENT, true, NULL, 0);
        /* Someone created it between our set and create: set it again. */
        if (rc != ZNODEEXISTS)
            return rc;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int zk_children(const char *path, struct String_vector *kids)
{
    int rc;
    do {
        rc = zoo_get_children(zh, path, 0, kids);
    } while (retry(rc));
    if (rc == ZOK && kids->count > 0)
        qsort(kids->data, (size_t)kids->count, sizeof(kids->data[0]), cmp_str);
    return rc;
}

static int zk_delete_tree(const char *path)
{
    struct String_vector kids = {0, NULL};
    int rc = zk_children(path, &kids);

    if (rc != ZOK)
        return rc;
    for (int i = 0; i < kids.count && rc == ZOK; i++) {
        char child[PATH_MAX];
        /* "/zookeeper" belongs to the server (quota, config): never ours to delete. */
        if (strcmp(path, "/") == 0 && strcmp(kids.data[i], "zookeeper") == 0)
            continue;
        int n = snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") == 0 ? "" : path,
                         kids.data[i]);
        if (n < 0 || (size_t)n >= sizeof(child)) {
            rc = ZBADARGUMENTS;
            break;
        }
        rc = zk_delete_tree(child);
        if (rc == ZNONODE)
            rc = ZOK; /* deleted under our feet: fine */
    }
    deallocate_String_vector(&kids);
    if (rc != ZOK || strcmp(path, "/") == 0)
        return rc;
    do {
        rc = zoo_delete(zh, path, -1);
    } while (retry(rc));
    /* A child appeared while we deleted the others (an agent registering): go again. */
    if (rc == ZNOTEMPTY)
        return zk_delete_tree(path);
    return rc;
}

static char *read_file(const char *name, int *len)
{
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
    size_t cap = 4096, n = 0;
    char *buf;

    if (f == NULL) {
        fprintf(stderr, "zkt: %s: %s\n", name, strerror(errno));
        exit(EX_ERR);
    }
    buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            fprintf(stderr, "zkt: out of memory\n");
            exit(EX_ERR);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap > ZKT_MAX_DATA) {
            fprintf(stderr, "zkt: %s: larger than %d bytes\n", name, ZKT_MAX_DATA);
            exit(EX_ERR);
        }
        cap *= 2;
        buf = realloc(buf, cap);
    }
    if (ferror(f)) {
        fprintf(stderr, "zkt: %s: read error\n", name);
        exit(EX_ERR);
    }
    if (f != stdin)
        fclose(f);
    *len = (int)n;
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------------------------- */

static int cmd_get(const char *path)
{
    struct Stat st;
    char *buf;
    int len;
    int rc = zk_get(path, &buf, &len, &st);

    if (rc != ZOK)
        return fail("get", path, rc);
    if (len > 0)
        fwrite(buf, 1, (size_t)len, stdout);
    free(buf);
    return EX_OK;
}

static int cmd_stat(const char *path)
{
    struct Stat st;
    char owner[32];
    int rc = zk_exists(path, 0, &st);

    if (rc != ZOK)
        return fail("stat", path, rc);
    snprintf(owner, sizeof(owner), "0x%llx", (unsigned long long)st.ephemeralOwner);
    json_t *o =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:s,s:i,s:i}", "czxid", (json_int_t)st.czxid,
                  "mzxid", (json_int_t)st.mzxid, "pzxid", (json_int_t)st.pzxid, "ctime",
                  (json_int_t)st.ctime, "mtime", (json_int_t)st.mtime, "version", st.version,
                  "cversion", st.cversion, "aversion", st.aversion, "ephemeralOwner", owner,
                  "numChildren", st.numChildren, "dataLength", st.dataLength);
    if (o == NULL) {
        fprintf(stderr, "zkt: out of memory\n");
        return EX_ERR;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    puts(s);
    free(s);
    json_decref(o);
    return EX_OK;
}

static int cmd_set(const char *path, const char *data, int len)
{
    if (too_large("set", path, len))
        return EX_ERR;
    int rc = zk_put(path, data, len);
    return rc == ZOK ? EX_OK : fail("set", path, rc);
}

/* Keeps the session (and so an ephemeral node) alive until SIGTERM/SIGINT or session loss. */
static int hold_session(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        struct timespec tick = {0, 100 * 1000000L};
        if (sigtimedwait(&set, NULL, &tick) >= 0)
            return EX_OK;
        pthread_mutex_lock(&state_lock);
        int st = session_state;
        pthread_mutex_unlock(&state_lock);
        if (session_is_fatal(st)) {
            fprintf(stderr, "zkt: session expired while holding\n");
            return EX_CONN;
        }
    }
}

static int cmd_create(int argc, char **argv)
{
    const char *path = NULL, *data = NULL;
    int mode = ZOO_PERSISTENT;
    bool parents = false, hold = false;
    char created[PATH_MAX];

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-e") == 0)
            mode |= ZOO_EPHEMERAL;
        else if (strcmp(argv[i], "-s") == 0)
            mode |= ZOO_SEQUENCE;
        else if (strcmp(argv[i], "-p") == 0)
            parents = true;
        else if (strcmp(argv[i], "--hold") == 0)
            hold = true;
        else if (path == NULL)
            path = argv[i];
        else if (data == NULL)
            data = argv[i];
        else {
            fprintf(stderr, "zkt: create: unexpected argument '%s'\n", argv[i]);
            return EX_ERR;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "zkt: create PATH [DATA] [-e] [-s] [-p] [--hold]\n");
        return EX_ERR;
    }
    int len = data != NULL ? (int)strlen(data) : -1;
    if (too_large("create", path, len))
        return EX_ERR;
    int rc = zk_create(path, data, len, mode, parents, created, sizeof(created));
    if (rc != ZOK)
        return fail("create", path, rc);
    if ((mode & ZOO_SEQUENCE) || hold) {
        puts(created);
        fflush(stdout);
    }
    return hold ? hold_session() : EX_OK;
}

static int cmd_delete(int argc, char **argv)
{
    const char *path = NULL;
    bool recursive = false;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0)
            recursive = true;
        else if (path == NULL)
            path = argv[i];
        else {
            fprintf(stderr, "zkt: delete: unexpected argument '%s'\n", argv[i]);
            return EX_ERR;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "zkt: delete [-r] PATH\n");
        return EX_ERR;
    }
    int rc;
    if (recursive) {
        rc = zk_delete_tree(path);
    } else {
        do {
            rc = zoo_delete(zh, path, -1);
        } while (retry(rc));
    }
    return rc == ZOK ? EX_OK : fail("delete", path, rc);
}

static int cmd_ls(const char *path)
{
    struct String_vector kids = {0, NULL};
    int rc = zk_children(path, &kids);

    if (rc != ZOK)
        return fail("ls", path, rc);
    for (int i = 0; i < kids.count; i++)
        puts(kids.data[i]);
    deallocate_String_vector(&kids);
    return EX_OK;
}

static int cmd_exists(const char *path)
{
    struct Stat st;
    int rc = zk_exists(path, 0, &st);

    if (rc == ZOK)
        return EX_OK;
    if (rc == ZNONODE)
        return EX_NONODE; /* silent: this is an answer, not an error */
    return fail("exists", path, rc);
}

/* Waits until path exists (want_exists) or is gone, using a watch plus a slow poll. */
static int cmd_wait(const char *path, bool want_exists, const char *timeout_arg)
{
    char *end;
    long t = strtol(timeout_arg, &end, 10);
    if (*end != '\0' || t < 0) {
        fprintf(stderr, "zkt: bad timeout '%s' (milliseconds)\n", timeout_arg);
        return EX_ERR;
    }
    int64_t until = now_ms() + t;
    /* Connection-loss retries may use the whole wait, not just -t. */
    if (until > deadline_ms)
        deadline_ms = until;

    for (;;) {
        struct Stat st;
        pthread_mutex_lock(&state_lock);
        unsigned long gen = watch_gen;
        pthread_mutex_unlock(&state_lock);

        int rc = zk_exists(path, 1, &st);
        if (rc != ZOK && rc != ZNONODE)
            return fail(want_exists ? "wait-exists" : "wait-gone", path, rc);
        if ((rc == ZOK) == want_exists)
            return EX_OK;

        int64_t now = now_ms();
        if (now >= until) {
            fprintf(stderr, "zkt: %s %s: timed out after %ld ms\n",
                    want_exists ? "wait-exists" : "wait-gone", path, t);
            return EX_TIMEOUT;
        }
        int64_t wake = now + 200 < until ? now + 200 : until;
        pthread_mutex_lock(&state_lock);
        while (watch_gen == gen && now_ms() < wake)
            cond_wait_until(wake);
        pthread_mutex_unlock(&state_lock);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zkt -z HOST:PORT[,...] [-t TIMEOUT_MS] [-s SESSION_MS] [-q|-v] CMD ARGS\n"
            "commands:\n"
            "  get PATH                     print the data raw (exit 3: no node)\n"
            "  stat PATH                    print the Stat as one line of JSON\n"
            "  set PATH DATA                set data; creates the node (and parents) if missing\n"
            "  setfile PATH FILE            same with data from FILE ('-' = stdin)\n"
            "  create PATH [DATA] [-e] [-s] [-p] [--hold]\n"
            "                               -e ephemeral, -s sequential (prints the path),\n"
            "                               -p create parents, --hold keep the session until\n"
            "                               SIGTERM/SIGINT (prints the path once created)\n"
            "  delete [-r] PATH             delete (recursively with -r)\n"
            "  ls PATH                      children, one a line, sorted\n"
            "  exists PATH                  exit 0 if it exists, 3 if not\n"
            "  wait-exists PATH TIMEOUT_MS  wait until PATH exists (exit 5 on timeout)\n"
            "  wait-gone PATH TIMEOUT_MS    wait until PATH is gone (exit 5 on timeout)\n"
            "exit: 0 ok, 1 error, 2 connection, 3 no node, 4 exists, 5 timeout, 6 not empty\n");
}

static int need(int argc, int n, const char *cmd)
{
    if (argc - 1 == n)
        return 0;
    fprintf(stderr, "zkt: %s takes %d argument%s (see zkt -h)\n", cmd, n, n == 1 ? "" : "s");
    return -1;
}

static int run(int argc, char **argv)
{
    const char *cmd = argv[0];

    if (strcmp(cmd, "get") == 0)
        return need(argc, 1, cmd) ? EX_ERR : cmd_get(argv[1]);
    if (strcmp(cmd, "stat") == 0)
        return need(argc, 1, cmd) ? EX_ERR : cmd_stat(argv[1]);
    if (strcmp(cmd, "set") == 0)
        return need(argc, 2, cmd) ? EX_ERR : cmd_set(argv[1], argv[2], (int)strlen(argv[2]));
    if (strcmp(cmd, "setfile") == 0) {
        if (need(argc, 2, cmd))
            return EX_ERR;
        int len;
        char *data = read_file(argv[2], &len);
        int rc = cmd_set(argv[1], data, len);
        free(data);
        return rc;
    }
    if (strcmp(cmd, "create") == 0)
        return cmd_create(argc - 1, argv + 1);
    if (strcmp(cmd, "delete") == 0 || strcmp(cmd, "rm") == 0)
        return cmd_delete(argc - 1, argv + 1);
    if (strcmp(cmd, "ls") == 0)
        return need(argc, 1, cmd) ? EX_ERR : cmd_ls(argv[1]);
    if (strcmp(cmd, "exists") == 0)
        return need(argc, 1, cmd) ? EX_ERR : cmd_exists(argv[1]);
    if (strcmp(cmd, "wait-exists") == 0)
        return need(argc, 2, cmd) ? EX_ERR : cmd_wait(argv[1], true, argv[2]);
    if (strcmp(cmd, "wait-gone") == 0)
        return need(argc, 2, cmd) ? EX_ERR : cmd_wait(argv[1], false, argv[2]);
    fprintf(stderr, "zkt: unknown command '%s' (see zkt -h)\n", cmd);
    return EX_ERR;
}

static long parse_ms(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v <= 0 || v > INT_MAX) {
        fprintf(stderr, "zkt: bad %s '%s' (milliseconds)\n", what, s);
        exit(EX_ERR);
    }
    return v;
}

int main(int argc, char **argv)
{
    long timeout = 5000, session = 4000;
    ZooLogLevel level = ZOO_LOG_LEVEL_ERROR;
    bool quiet = false;
    int opt;

    /* '+': stop at the command, so "-e", "-r" and data like "-1" belong to it. */
    while ((opt = getopt(argc, argv, "+z:t:s:qvh")) != -1) {
        switch (opt) {
        case 'z':
            connect_str = optarg;
            break;
        case 't':
            timeout = parse_ms(optarg, "timeout");
            break;
        case 's':
            session = parse_ms(optarg, "session timeout");
            break;
        case 'q':
            quiet = true;
            break;
        case 'v':
            level = ZOO_LOG_LEVEL_INFO;
            break;
        case 'h':
            usage(stdout);
            return EX_OK;
        default:
            usage(stderr);
            return EX_ERR;
        }
    }
    if (connect_str == NULL)
        connect_str = getenv("ZKT_CONNECT");
    if (connect_str == NULL || optind >= argc) {
        usage(stderr);
        return EX_ERR;
    }

    /* Signals go to sigtimedwait in --hold; the library's threads inherit the mask. A shell
     * starts background jobs with SIGINT ignored, which would discard it: restore it first. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&state_cond, &ca);
    pthread_condattr_destroy(&ca);

    zoo_set_debug_level(level);
    FILE *devnull = NULL;
    if (quiet) {
        devnull = fopen("/dev/null", "w");
        if (devnull != NULL)
            zoo_set_log_stream(devnull);
    }
    zoo_deterministic_conn_order(0);

    deadline_ms = now_ms() + timeout;
    zh = zookeeper_init(connect_str, watcher, (int)session, NULL, NULL, 0);
    if (zh == NULL) {
        fprintf(stderr, "zkt: zookeeper_init(%s): %s\n", connect_str, strerror(errno));
        return EX_CONN;
    }
    int rc;
    if (!wait_connected())
        rc = die_conn("connect");
    else
        rc = run(argc - optind, argv + optind);
    fflush(stdout);
    /* Closing the session at once makes our ephemerals vanish now, not at session expiry. */
    zookeeper_close(zh);
    if (devnull != NULL)
        fclose(devnull);
    return rc;
}
