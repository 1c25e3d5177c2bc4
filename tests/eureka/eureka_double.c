/* eureka_double.c -- a test double of a Eureka server's REST API (JSON only), for tests. */

/*
 * No real Eureka server can be installed where the tests run, so this program
 * re-implements, from Netflix/eureka's documented REST operations and the
 * behaviour of its server sources (ApplicationResource, InstanceResource,
 * AbstractInstanceRegistry and the status override rules), the parts that
 * clients and bluegreen's agent rely on:
 *
 *   POST   /eureka/apps/{APP}                      register (204; 400 + reason)
 *   PUT    /eureka/apps/{APP}/{ID}                 heartbeat (200; 404 = register again)
 *   DELETE /eureka/apps/{APP}/{ID}                 cancel (200; 404)
 *   PUT    /eureka/apps/{APP}/{ID}/status?value=S  status override (200; 404)
 *   DELETE /eureka/apps/{APP}/{ID}/status?value=S  remove the override (200; 404)
 *   PUT    /eureka/apps/{APP}/{ID}/metadata?k=v    merge metadata (200; 500)
 *   GET    /eureka/apps[/delta|/{APP}]             from the response cache (--cache-delay)
 *   GET    /eureka/apps/{APP}/{ID}                 straight from the registry
 *
 * "/eureka/v2/apps" is accepted as well as "/eureka/apps". Test hooks live
 * under "/_double/" and are not recorded in the request log.
 *
 * Threads: libmicrohttpd's one polling thread serves requests; a housekeeping
 * thread refreshes the response cache and evicts expired leases. One mutex
 * guards all state.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (1024 * 1024)
#define MAX_LOG_ENTRIES 100000
#define DELTA_RETENTION_MS (180 * 1000) /* Eureka's retentionTimeInMSInDeltaQueue */
#define DEFAULT_RENEWAL_SECS 30
#define DEFAULT_DURATION_SECS 90

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

static void die_oom(void)
{
    fputs("eureka-double: out of memory\n", stderr);
    abort();
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        die_oom();
    return p;
}

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (q == NULL)
        die_oom();
    return q;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        die_oom();
    return p;
}

static json_t *jcheck(json_t *j)
{
    if (j == NULL)
        die_oom();
    return j;
}

/* Wall-clock milliseconds, as Eureka's timestamps are. */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds, for leases and the cache timer. */
static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void upcase(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)toupper((unsigned char)*s);
}

static bool str_blank(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* Parse a whole decimal number; false when anything else is there. */
static bool parse_ll(const char *s, long long *out)
{
    char *end;
    if (str_blank(s))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* "250ms", "2s", "1m", or a bare number of seconds. Returns -1 when malformed. */
static long long parse_duration_ms(const char *s)
{
    char *end;
    if (str_blank(s) || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        return v;
    if (strcmp(end, "s") == 0 || *end == '\0')
        return v * 1000;
    if (strcmp(end, "m") == 0)
        return v * 60 * 1000;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Logging: one key=value line per request or event on stderr
 * ------------------------------------------------------------------------------------------- */

static void log_line(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_line(const char *level, const char *event, const char *fmt, ...)
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "ts=%lld level=%s prog=eureka-double event=%s ", wall_ms(),
                     level, event);
    if (n < 0 || (size_t)n >= sizeof buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf);
    buf[len++] = '\n';
    if (write(STDERR_FILENO, buf, len) < 0) {
        /* Nothing sensible to do when stderr is gone. */
    }
}

/* Quote a log value when it holds white space, quotes or is empty. The result lives in out. */
static const char *kv(const char *v, char *out, size_t cap)
{
    if (v == NULL)
        v = "";
    bool plain = v[0] != '\0';
    for (const char *p = v; *p != '\0' && plain; p++)
        if (isspace((unsigned char)*p) || *p == '"' || *p == '\\')
            plain = false;
    if (plain)
        return v;
    size_t o = 0;
    out[o++] = '"';
    for (const char *p = v; *p != '\0' && o + 3 < cap; p++) {
        if (*p == '"' || *p == '\\')
            out[o++] = '\\';
        out[o++] = isspace((unsigned char)*p) ? ' ' : *p;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Instance status (InstanceInfo.InstanceStatus)
 * ------------------------------------------------------------------------------------------- */

enum status { ST_UP, ST_DOWN, ST_STARTING, ST_OUT_OF_SERVICE, ST_UNKNOWN, ST_COUNT };

static const char *const status_names[ST_COUNT] = {"UP", "DOWN", "STARTING", "OUT_OF_SERVICE",
                                                   "UNKNOWN"};

static const char *status_name(enum status s)
{
    return status_names[s];
}

/* InstanceStatus.valueOf(): exact, case-sensitive; false for null or anything else. */
static bool status_value_of(const char *s, enum status *out)
{
    for (int i = 0; s != NULL && i < ST_COUNT; i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum status)i;
            return true;
        }
    }
    return false;
}

/* InstanceStatus.toEnum(), used when decoding a registration: case-insensitive, else UNKNOWN. */
static enum status status_to_enum(const char *s)
{
    for (int i = 0; s != NULL && i < ST_COUNT; i++)
        if (strcasecmp(s, status_names[i]) == 0)
            return (enum status)i;
    return ST_UNKNOWN;
}

/* ---------------------------------------------------------------------------------------------
 * Registry state (all guarded by g_lock)
 * ------------------------------------------------------------------------------------------- */

struct instance {
    char *app;   /* upper-cased application name */
    char *id;    /* InstanceInfo.getId() */
    json_t *src; /* the registrant's object as received: host, addresses, URLs, metadata */
    enum status status;
    enum status overridden; /* InstanceInfo.overriddenStatus */
    enum status reported;   /* what the instance registered with; used by /_double/restart */
    long long last_dirty;
    long long last_updated;
    const char *action; /* ADDED, MODIFIED, DELETED */
    int renewal_secs;
    int duration_secs;
    long long registration_ts;
    long long last_renewal_ts;
    long long service_up_ts;
    long long eviction_ts;
    long long renewed_mono; /* for --evict */
};

struct override {
    char *id;
    enum status status;
};

/* One entry of Eureka's recentlyChangedQueue: a snapshot of an instance after a change. */
struct change {
    long long at_mono;
    unsigned long long seq;
    char *app;
    char *id;
    json_t *inst;
};

struct options {
    char *listen_host;
    int listen_port;
    long long cache_delay_ms;
    bool evict;
    char *state_file;
    char *port_file;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake;
static bool g_stopping;
static struct options g_opt;

static struct instance **g_inst;
static size_t g_ninst, g_capinst;
static struct override *g_ovr; /* Eureka keys overriddenInstanceStatusMap by instance id only */
static size_t g_novr, g_capovr;
static struct change *g_chg;
static size_t g_nchg, g_capchg;
static unsigned long long g_chg_seq;

static json_t *g_cache_apps;  /* {"applications":...} as of the last cache refresh */
static json_t *g_cache_delta; /* the delta as of the last cache refresh */
static unsigned long long g_cache_generation;
static long long g_cache_refreshed_mono;

static json_t *g_reqlog; /* array of request records for GET /_double/log */
static unsigned long long g_reqlog_seq;
static unsigned long long g_reqlog_dropped;

/* --- overrides map --------------------------------------------------------------------------- */

static struct override *override_find(const char *id)
{
    for (size_t i = 0; i < g_novr; i++)
        if (strcmp(g_ovr[i].id, id) == 0)
            return &g_ovr[i];
    return NULL;
}

static void override_put(const char *id, enum status s)
{
    struct override *o = override_find(id);
    if (o != NULL) {
        o->status = s;
        return;
    }
    if (g_novr == g_capovr) {
        g_capovr = g_capovr ? g_capovr * 2 : 16;
        g_ovr = xrealloc(g_ovr, g_capovr * sizeof *g_ovr);
    }
    g_ovr[g_novr].id = xstrdup(id);
    g_ovr[g_novr].status = s;
    g_novr++;
}

/* Remove id's override; returns true when there was one. */
static bool override_remove(const char *id)
{
    struct override *o = override_find(id);
    if (o == NULL)
        return false;
    free(o->id);
    *o = g_ovr[--g_novr];
    return true;
}

static void overrides_clear(void)
{
    for (size_t i = 0; i < g_novr; i++)
        free(g_ovr[i].id);
    g_novr = 0;
}

/* --- instances ------------------------------------------------------------------------------- */

static struct instance *instance_find(const char *app, const char *id)
{
    for (size_t i = 0; i < g_ninst; i++)
        if (strcmp(g_inst[i]->app, app) == 0 && strcmp(g_inst[i]->id, id) == 0)
            return g_inst[i];
    return NULL;
}

static void instance_free(struct instance *in)
{
    if (in == NULL)
        return;
    free(in->app);
    free(in->id);
    json_decref(in->src);
    free(in);
}

static void instance_add(struct instance *in)
{
    if (g_ninst == g_capinst) {
        g_capinst = g_capinst ? g_capinst * 2 : 16;
        g_inst = xrealloc(g_inst, g_capinst * sizeof *g_inst);
    }
    g_inst[g_ninst++] = in;
}

/* Take in out of the registry without freeing it. */
static void instance_unlink(struct instance *in)
{
    for (size_t i = 0; i < g_ninst; i++) {
        if (g_inst[i] == in) {
            g_inst[i] = g_inst[--g_ninst];
            return;
        }
    }
}

static int instance_cmp(const void *a, const void *b)
{
    const struct instance *x = *(const struct instance *const *)a;
    const struct instance *y = *(const struct instance *const *)b;
    int c = strcmp(x->app, y->app);
    return c != 0 ? c : strcmp(x->id, y->id);
}

/* ---------------------------------------------------------------------------------------------
 * Status override rules (FirstMatchWinsCompositeRule of Eureka's PeerAwareInstanceRegistryImpl)
 * ------------------------------------------------------------------------------------------- */

/*
 * The status the registry gives an instance whose own status is `own`, when its lease
 * already exists with status `lease` (NULL: no lease), for a request that is or is not a
 * peer replication. First match wins:
 *   1. DownOrStartingRule: an instance saying anything but UP or OUT_OF_SERVICE is believed.
 *   2. OverrideExistsRule: an entry in the overrides map wins.
 *   3. LeaseExistsRule (not for replication): an existing lease that is UP or OUT_OF_SERVICE
 *      keeps its status -- the server has its way.
 *   4. DefaultStatusRule: the instance's own status.
 */
static enum status effective_status(const char *id, enum status own, const enum status *lease,
                                    bool replication)
{
    if (own != ST_UP && own != ST_OUT_OF_SERVICE)
        return own;
    const struct override *o = override_find(id);
    if (o != NULL)
        return o->status;
    if (!replication && lease != NULL && (*lease == ST_UP || *lease == ST_OUT_OF_SERVICE))
        return *lease;
    return own;
}

/* ---------------------------------------------------------------------------------------------
 * JSON rendering (the shapes of Eureka's EurekaJacksonCodec)
 * ------------------------------------------------------------------------------------------- */

static void set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, jcheck(json_string(value)));
}

static void set_ll_str(json_t *o, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    set_str(o, key, buf);
}

static void copy_field(json_t *dst, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    if (v != NULL && !json_is_null(v))
        json_object_set_new(dst, key, jcheck(json_deep_copy(v)));
}

/* A port as {"$":N,"@enabled":"true"}; accepts that shape (values as numbers, booleans or
 * strings) or a bare number. Returns false when the value cannot be a port. */
static bool parse_port(const json_t *v, int dflt_port, bool dflt_enabled, int *port, bool *enabled)
{
    *port = dflt_port;
    *enabled = dflt_enabled;
    if (v == NULL || json_is_null(v))
        return true;
    const json_t *num = v;
    if (json_is_object(v)) {
        num = json_object_get(v, "$");
        const json_t *en = json_object_get(v, "@enabled");
        if (json_is_boolean(en))
            *enabled = json_is_true(en);
        else if (json_is_string(en))
            *enabled = strcasecmp(json_string_value(en), "true") == 0;
        else if (en != NULL && !json_is_null(en))
            return false;
        if (num == NULL)
            return true;
    }
    long long p;
    if (json_is_integer(num))
        p = json_integer_value(num);
    else if (!json_is_string(num) || !parse_ll(json_string_value(num), &p))
        return false;
    if (p < 0 || p > 65535)
        return false;
    *port = (int)p;
    return true;
}

static json_t *port_json(const json_t *v, int dflt_port, bool dflt_enabled)
{
    int port;
    bool enabled;
    if (!parse_port(v, dflt_port, dflt_enabled, &port, &enabled)) {
        port = dflt_port;
        enabled = dflt_enabled;
    }
    return jcheck(json_pack("{s:i,s:s}", "$", port, "@enabled", enabled ? "true" : "false"));
}

static json_t *instance_json(const struct instance *in)
{
    const json_t *src = in->src;
    json_t *o = jcheck(json_object());
    set_str(o, "instanceId", in->id);
    copy_field(o, src, "hostName");
    set_str(o, "app", in->app);
    copy_field(o, src, "ipAddr");
    set_str(o, "status", status_name(in->status));
    set_str(o, "overriddenStatus", status_name(in->overridden));
    set_str(o, "overriddenstatus", status_name(in->overridden)); /* the legacy spelling */
    json_object_set_new(o, "port", port_json(json_object_get(src, "port"), 7001, true));
    json_object_set_new(o, "securePort",
                        port_json(json_object_get(src, "securePort"), 7002, false));
    json_t *country = json_object_get(src, "countryId");
    json_object_set_new(o, "countryId",
                        json_integer(json_is_integer(country) ? json_integer_value(country) : 1));
    copy_field(o, src, "dataCenterInfo");
    json_object_set_new(o, "leaseInfo",
                        jcheck(json_pack("{s:i,s:i,s:I,s:I,s:I,s:I}", "renewalIntervalInSecs",
                                         in->renewal_secs, "durationInSecs", in->duration_secs,
                                         "registrationTimestamp", (json_int_t)in->registration_ts,
                                         "lastRenewalTimestamp", (json_int_t)in->last_renewal_ts,
                                         "evictionTimestamp", (json_int_t)in->eviction_ts,
                                         "serviceUpTimestamp", (json_int_t)in->service_up_ts)));
    json_t *md = json_object_get(src, "metadata");
    if (json_is_object(md) && json_object_size(md) > 0)
        json_object_set_new(o, "metadata", jcheck(json_deep_copy(md)));
    else
        json_object_set_new(o, "metadata",
                            jcheck(json_pack("{s:s}", "@class", "java.util.Collections$EmptyMap")));
    copy_field(o, src, "homePageUrl");
    copy_field(o, src, "statusPageUrl");
    copy_field(o, src, "healthCheckUrl");
    copy_field(o, src, "secureHealthCheckUrl");
    copy_field(o, src, "vipAddress");
    copy_field(o, src, "secureVipAddress");
    set_str(o, "isCoordinatingDiscoveryServer", "false");
    set_ll_str(o, "lastUpdatedTimestamp", in->last_updated);
    set_ll_str(o, "lastDirtyTimestamp", in->last_dirty);
    set_str(o, "actionType", in->action);
    copy_field(o, src, "asgName");
    return o;
}

/* Applications.getReconcileHashCode(): "STATUS_count_" per status, sorted by status name. */
static void apps_hashcode(char *out, size_t cap)
{
    static const enum status sorted[] = {ST_DOWN, ST_OUT_OF_SERVICE, ST_STARTING, ST_UNKNOWN,
                                         ST_UP};
    size_t count[ST_COUNT] = {0};
    for (size_t i = 0; i < g_ninst; i++)
        count[g_inst[i]->status]++;
    size_t o = 0;
    out[0] = '\0';
    for (size_t k = 0; k < sizeof sorted / sizeof sorted[0]; k++) {
        enum status s = sorted[k];
        if (count[s] == 0)
            continue;
        int n = snprintf(out + o, cap - o, "%s_%zu_", status_name(s), count[s]);
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
    }
}

/* Append inst (reference stolen) to the "application" array of apps, grouping by app name.
 * Callers feed instances sorted by application. */
static void apps_append(json_t *apps_array, const char *app, json_t *inst)
{
    size_t n = json_array_size(apps_array);
    json_t *last = n > 0 ? json_array_get(apps_array, n - 1) : NULL;
    if (last == NULL || strcmp(json_string_value(json_object_get(last, "name")), app) != 0) {
        last = jcheck(json_pack("{s:s,s:[]}", "name", app, "instance"));
        json_array_append_new(apps_array, last);
    }
    json_array_append_new(json_object_get(last, "instance"), inst);
}

static json_t *applications_wrap(json_t *apps_array, const char *version)
{
    char hash[256];
    apps_hashcode(hash, sizeof hash);
    return jcheck(json_pack("{s:{s:s,s:s,s:o}}", "applications", "versions__delta", version,
                            "apps__hashcode", hash, "application", apps_array));
}

/* The full registry, fresh. */
static json_t *build_full(void)
{
    struct instance **sorted = xcalloc(g_ninst ? g_ninst : 1, sizeof *sorted);
    if (g_ninst > 0)
        memcpy(sorted, g_inst, g_ninst * sizeof *sorted);
    qsort(sorted, g_ninst, sizeof *sorted, instance_cmp);
    json_t *arr = jcheck(json_array());
    for (size_t i = 0; i < g_ninst; i++)
        apps_append(arr, sorted[i]->app, instance_json(sorted[i]));
    free(sorted);
    return applications_wrap(arr, "1");
}

static void changes_prune(long long now)
{
    size_t keep = 0;
    for (size_t i = 0; i < g_nchg; i++) {
        if (now - g_chg[i].at_mono > DELTA_RETENTION_MS) {
            free(g_chg[i].app);
            free(g_chg[i].id);
            json_decref(g_chg[i].inst);
        } else {
            g_chg[keep++] = g_chg[i];
        }
    }
    g_nchg = keep;
}

static void changes_clear(void)
{
    changes_prune(LLONG_MAX / 2);
}

static int change_cmp(const void *a, const void *b)
{
    const struct change *x = *(const struct change *const *)a;
    const struct change *y = *(const struct change *const *)b;
    int c = strcmp(x->app, y->app);
    if (c == 0)
        c = strcmp(x->id, y->id);
    if (c == 0)
        c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

/* The delta: the latest change of every instance changed within the retention time. */
static json_t *build_delta(void)
{
    changes_prune(mono_ms());
    struct change **sorted = xcalloc(g_nchg ? g_nchg : 1, sizeof *sorted);
    for (size_t i = 0; i < g_nchg; i++)
        sorted[i] = &g_chg[i];
    qsort(sorted, g_nchg, sizeof *sorted, change_cmp);
    json_t *arr = jcheck(json_array());
    for (size_t i = 0; i < g_nchg; i++) {
        bool superseded = i + 1 < g_nchg && strcmp(sorted[i]->app, sorted[i + 1]->app) == 0 &&
                          strcmp(sorted[i]->id, sorted[i + 1]->id) == 0;
        if (!superseded)
            apps_append(arr, sorted[i]->app, jcheck(json_deep_copy(sorted[i]->inst)));
    }
    free(sorted);
    char version[32];
    snprintf(version, sizeof version, "%llu", g_chg_seq);
    return applications_wrap(arr, version);
}

/* Record a change of in for the delta, as Eureka's recentlyChangedQueue does. */
static void change_record(const struct instance *in)
{
    if (g_nchg == g_capchg) {
        g_capchg = g_capchg ? g_capchg * 2 : 64;
        g_chg = xrealloc(g_chg, g_capchg * sizeof *g_chg);
    }
    struct change *c = &g_chg[g_nchg++];
    c->at_mono = mono_ms();
    c->seq = ++g_chg_seq;
    c->app = xstrdup(in->app);
    c->id = xstrdup(in->id);
    c->inst = instance_json(in);
}

/* ---------------------------------------------------------------------------------------------
 * Response cache (ResponseCacheImpl's read-only map, refreshed on a timer)
 * ------------------------------------------------------------------------------------------- */

static void cache_refresh(void)
{
    json_decref(g_cache_apps);
    json_decref(g_cache_delta);
    g_cache_apps = build_full();
    g_cache_delta = build_delta();
    g_cache_generation++;
    g_cache_refreshed_mono = mono_ms();
}

/* The full registry as a reader sees it now; the caller owns the reference. */
static json_t *cached_apps(void)
{
    if (g_opt.cache_delay_ms == 0)
        return build_full();
    return json_incref(g_cache_apps);
}

static json_t *cached_delta(void)
{
    if (g_opt.cache_delay_ms == 0)
        return build_delta();
    return json_incref(g_cache_delta);
}

/* ---------------------------------------------------------------------------------------------
 * State file and state dump
 * ------------------------------------------------------------------------------------------- */

static json_t *state_json(void)
{
    json_t *ovr = jcheck(json_object());
    for (size_t i = 0; i < g_novr; i++)
        set_str(ovr, g_ovr[i].id, status_name(g_ovr[i].status));
    json_t *full = build_full();
    json_t *st = jcheck(json_pack(
        "{s:O,s:o,s:{s:I,s:I,s:I},s:I}", "applications", json_object_get(full, "applications"),
        "overrides", ovr, "cache", "delay_ms", (json_int_t)g_opt.cache_delay_ms, "generation",
        (json_int_t)g_cache_generation, "age_ms",
        (json_int_t)(g_opt.cache_delay_ms ? mono_ms() - g_cache_refreshed_mono : 0),
        "requests_logged", (json_int_t)g_reqlog_seq));
    json_decref(full);
    return st;
}

/* Write the state to --state-file (temporary file + rename, so readers never see half). */
static void state_file_write(void)
{
    if (g_opt.state_file == NULL)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_opt.state_file);
    json_t *st = state_json();
    int rc = json_dump_file(st, tmp, JSON_INDENT(1));
    json_decref(st);
    if (rc != 0 || rename(tmp, g_opt.state_file) != 0)
        log_line("warn", "state_file", "file=%s error=write_failed", g_opt.state_file);
}

/* ---------------------------------------------------------------------------------------------
 * Registry operations (AbstractInstanceRegistry)
 * ------------------------------------------------------------------------------------------- */

/* A reply being built: status, body (malloc'd or NULL), content type, reason for the log. */
struct reply {
    unsigned int status;
    char *body;
    const char *ctype;
    char reason[256];
    char extra[512]; /* more key=value pairs for the request's log line */
};

static void reply_text(struct reply *r, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_text(struct reply *r, unsigned int status, const char *fmt, ...)
{
    r->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    free(r->body);
    r->body = xstrdup(r->reason);
    r->ctype = "text/plain";
}

static void reply_json(struct reply *r, unsigned int status, json_t *j)
{
    r->status = status;
    free(r->body);
    r->body = json_dumps(j, JSON_COMPACT);
    if (r->body == NULL)
        die_oom();
    r->ctype = "application/json";
    json_decref(j);
}

static void reply_empty(struct reply *r, unsigned int status)
{
    r->status = status;
    free(r->body);
    r->body = NULL;
    r->ctype = NULL;
}

/* A request, decoded. */
struct request {
    struct MHD_Connection *conn;
    const char *method;
    const char *app; /* upper-cased, or NULL */
    const char *id;  /* or NULL */
    bool replication;
    const char *body;
    size_t body_len;
};

static const char *query(const struct request *q, const char *key)
{
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
}

static const char *header(const struct request *q, const char *key)
{
    return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, key);
}

/* Read a timestamp given as a number or a numeric string; dflt when absent. */
static bool json_timestamp(const json_t *v, long long dflt, long long *out)
{
    *out = dflt;
    if (v == NULL || json_is_null(v))
        return true;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    return json_is_string(v) && parse_ll(json_string_value(v), out);
}

static const char *json_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* InstanceInfo.getId(): instanceId, else an Amazon instance-id, else the host name. */
static const char *registrant_id(const json_t *info)
{
    const char *id = json_str(info, "instanceId");
    if (!str_blank(id))
        return id;
    const json_t *dci = json_object_get(info, "dataCenterInfo");
    const char *dci_name = json_str(dci, "name");
    if (dci_name != NULL && strcmp(dci_name, "Amazon") == 0) {
        id = json_str(json_object_get(dci, "metadata"), "instance-id");
        if (!str_blank(id))
            return id;
    }
    return json_str(info, "hostName");
}

/*
 * Decode and validate a registration body into a new, unlinked instance. Mirrors the
 * checks of ApplicationResource.addInstance and the failures of its JSON decoding. On
 * failure sets a 4xx reply and returns NULL.
 */
static struct instance *decode_registrant(const struct request *q, struct reply *r)
{
    json_error_t err;
    json_t *root = json_loadb(q->body, q->body_len, 0, &err);
    if (root == NULL) {
        reply_text(r, 400, "Invalid JSON body: %s", err.text);
        return NULL;
    }
    json_t *info = json_object_get(root, "instance");
    if (!json_is_object(info)) {
        json_decref(root);
        reply_text(r, 400, "Missing \"instance\" object in the body");
        return NULL;
    }
    const char *app = json_str(info, "app");
    char *app_up = xstrdup(app != NULL ? app : "");
    upcase(app_up);
    const json_t *dci = json_object_get(info, "dataCenterInfo");
    const char *dci_name = json_str(dci, "name");
    const char *id = registrant_id(info);
    int port, sport;
    bool port_on, sport_on;
    long long dirty, now = wall_ms();
    struct instance *in = NULL;

    /* The order of ApplicationResource.addInstance's checks. */
    if (str_blank(id))
        reply_text(r, 400, "Missing instanceId");
    else if (str_blank(json_str(info, "hostName")))
        reply_text(r, 400, "Missing hostname");
    else if (str_blank(json_str(info, "ipAddr")))
        reply_text(r, 400, "Missing ip address");
    else if (str_blank(app))
        reply_text(r, 400, "Missing appName");
    else if (strcmp(app_up, q->app) != 0)
        reply_text(r, 400, "Mismatched appName, expecting %s but was %s", q->app, app_up);
    else if (dci == NULL || json_is_null(dci))
        reply_text(r, 400, "Missing dataCenterInfo");
    else if (dci_name == NULL)
        reply_text(r, 400, "Missing dataCenterInfo Name");
    /* What Eureka's decoder would refuse before the resource method runs. */
    else if (strcmp(dci_name, "MyOwn") != 0 && strcmp(dci_name, "Amazon") != 0 &&
             strcmp(dci_name, "Netflix") != 0)
        reply_text(r, 400, "Invalid dataCenterInfo name %s (expected MyOwn, Amazon or Netflix)",
                   dci_name);
    else if (!parse_port(json_object_get(info, "port"), 7001, true, &port, &port_on))
        reply_text(r, 400, "Invalid port");
    else if (!parse_port(json_object_get(info, "securePort"), 7002, false, &sport, &sport_on))
        reply_text(r, 400, "Invalid securePort");
    else if (!json_timestamp(json_object_get(info, "lastDirtyTimestamp"), now, &dirty))
        reply_text(r, 400, "Invalid lastDirtyTimestamp");
    else {
        in = xcalloc(1, sizeof *in);
        in->app = app_up;
        app_up = NULL;
        in->id = xstrdup(id);
        in->src = jcheck(json_deep_copy(info));
        const json_t *st = json_object_get(info, "status");
        in->status = st == NULL ? ST_UP : status_to_enum(json_string_value(st));
        const json_t *ov = json_object_get(info, "overriddenStatus");
        if (ov == NULL)
            ov = json_object_get(info, "overriddenstatus");
        in->overridden = ov == NULL ? ST_UNKNOWN : status_to_enum(json_string_value(ov));
        in->reported = in->status;
        in->last_dirty = dirty;
        const json_t *lease = json_object_get(info, "leaseInfo");
        json_int_t renew = json_integer_value(json_object_get(lease, "renewalIntervalInSecs"));
        json_int_t dur = json_integer_value(json_object_get(lease, "durationInSecs"));
        in->renewal_secs = renew > 0 && renew < INT32_MAX ? (int)renew : DEFAULT_RENEWAL_SECS;
        in->duration_secs = dur > 0 && dur < INT32_MAX ? (int)dur : DEFAULT_DURATION_SECS;
    }
    free(app_up);
    json_decref(root);
    return in;
}

/* Start a new lease for in (Lease's constructor). */
static void lease_start(struct instance *in)
{
    in->registration_ts = wall_ms();
    in->last_renewal_ts = in->registration_ts;
    in->eviction_ts = 0;
    in->renewed_mono = mono_ms();
}

static void lease_renew(struct instance *in)
{
    in->last_renewal_ts = wall_ms();
    in->renewed_mono = mono_ms();
}

/* AbstractInstanceRegistry.register(). Takes ownership of cand; returns the registered
 * instance, which is cand or the registry's newer copy of it. */
static struct instance *registry_register(struct instance *cand, bool replication)
{
    struct instance *existing = instance_find(cand->app, cand->id);
    struct instance *reg = cand;
    enum status lease_status = ST_UNKNOWN;
    if (existing != NULL) {
        lease_status = existing->status;
        if (existing->last_dirty > cand->last_dirty) {
            /* The server's copy is newer: keep it, only the lease is renewed. */
            reg = existing;
            reg->reported = cand->reported;
            reg->duration_secs = cand->duration_secs;
            instance_free(cand);
        } else {
            cand->service_up_ts = existing->service_up_ts;
            instance_unlink(existing);
            instance_free(existing);
            instance_add(cand);
        }
    } else {
        instance_add(cand);
    }
    lease_start(reg);
    /* The initial state transfer of an overridden status, e.g. from a peer. */
    if (reg->overridden != ST_UNKNOWN && override_find(reg->id) == NULL)
        override_put(reg->id, reg->overridden);
    const struct override *o = override_find(reg->id);
    if (o != NULL)
        reg->overridden = o->status;
    reg->status = effective_status(reg->id, reg->status, existing != NULL ? &lease_status : NULL,
                                   replication);
    if (reg->status == ST_UP && reg->service_up_ts == 0)
        reg->service_up_ts = wall_ms();
    reg->action = "ADDED";
    reg->last_updated = wall_ms();
    change_record(reg);
    return reg;
}

/* Remove an instance, as internalCancel() does; the override goes with it. */
static void registry_cancel(struct instance *in)
{
    in->eviction_ts = wall_ms();
    in->action = "DELETED";
    in->last_updated = wall_ms();
    change_record(in);
    instance_unlink(in);
    instance_free(in);
}

/* ---------------------------------------------------------------------------------------------
 * Request handlers (ApplicationsResource, ApplicationResource, InstanceResource)
 * ------------------------------------------------------------------------------------------- */

static bool wants_json(const struct request *q, struct reply *r)
{
    const char *accept = header(q, MHD_HTTP_HEADER_ACCEPT);
    if (accept != NULL && strstr(accept, "json") != NULL)
        return true;
    /* Eureka would answer XML here; a JSON client must ask for JSON. */
    reply_text(r, 406,
               "Eureka answers XML unless the request says Accept: application/json; "
               "this double serves JSON only");
    return false;
}

static void h_register(const struct request *q, struct reply *r)
{
    const char *ctype = header(q, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ctype == NULL || strstr(ctype, "json") == NULL) {
        reply_text(r, 415,
                   "Unsupported Content-Type %s: this double accepts application/json "
                   "only (no XML)",
                   ctype != NULL ? ctype : "(none)");
        return;
    }
    struct instance *in = decode_registrant(q, r);
    if (in == NULL)
        return;
    enum status reported = in->status;
    in = registry_register(in, q->replication);
    char b1[300];
    snprintf(r->extra, sizeof r->extra, " id=%s reported=%s registered=%s",
             kv(in->id, b1, sizeof b1), status_name(reported), status_name(in->status));
    reply_empty(r, 204);
}

static void h_renew(const struct request *q, struct reply *r)
{
    struct instance *in = instance_find(q->app, q->id);
    if (in == NULL) {
        reply_text(r, 404, "Not Found (Renew): %s - %s", q->app, q->id);
        return;
    }
    enum status lease_status = in->status;
    enum status st = effective_status(in->id, in->status, &lease_status, q->replication);
    if (st == ST_UNKNOWN) {
        /* Typically a deleted override: the instance must register again. */
        reply_text(r, 404, "Instance status UNKNOWN; re-register required");
        return;
    }
    in->status = st;
    lease_renew(in);
    const char *dirty_s = query(q, "lastDirtyTimestamp");
    long long dirty;
    if (dirty_s == NULL) {
        reply_empty(r, 200);
    } else if (!parse_ll(dirty_s, &dirty)) {
        reply_text(r, 500, "Invalid lastDirtyTimestamp %s", dirty_s);
    } else if (dirty > in->last_dirty) {
        /* validateDirtyTimestamp(): the client knows newer data; ask it to register. */
        reply_text(r, 404, "lastDirtyTimestamp %lld is newer than the registry's %lld", dirty,
                   in->last_dirty);
    } else {
        reply_empty(r, 200);
    }
}

/* Apply a replica's or admin's lastDirtyTimestamp, when it is newer. */
static bool apply_dirty(const struct request *q, struct instance *in, struct reply *r)
{
    const char *dirty_s = query(q, "lastDirtyTimestamp");
    long long dirty = 0;
    if (dirty_s != NULL && !parse_ll(dirty_s, &dirty)) {
        reply_text(r, 500, "Invalid lastDirtyTimestamp %s", dirty_s);
        return false;
    }
    if (dirty > in->last_dirty)
        in->last_dirty = dirty;
    return true;
}

static void h_status_put(const struct request *q, struct reply *r)
{
    struct instance *in = instance_find(q->app, q->id);
    if (in == NULL) {
        reply_text(r, 404, "Instance not found: %s/%s", q->app, q->id);
        return;
    }
    const char *value = query(q, "value");
    enum status st;
    if (!status_value_of(value, &st)) {
        /* InstanceStatus.valueOf() throws; the resource answers 500. */
        reply_text(r, 500, "Invalid status value %s", value != NULL ? value : "(none)");
        return;
    }
    lease_renew(in);
    if (in->status != st) {
        /* Eureka changes nothing, not even the overrides map, when the status is already st. */
        if (st == ST_UP && in->service_up_ts == 0)
            in->service_up_ts = wall_ms();
        override_put(in->id, st);
        in->overridden = st;
        in->status = st;
        if (!apply_dirty(q, in, r))
            return;
        in->action = "MODIFIED";
        in->last_updated = wall_ms();
        change_record(in);
    }
    reply_empty(r, 200);
}

static void h_status_delete(const struct request *q, struct reply *r)
{
    struct instance *in = instance_find(q->app, q->id);
    if (in == NULL) {
        reply_text(r, 404, "Instance not found: %s/%s", q->app, q->id);
        return;
    }
    const char *value = query(q, "value");
    enum status st = ST_UNKNOWN; /* no value: UNKNOWN, as Eureka does */
    if (value != NULL && !status_value_of(value, &st)) {
        reply_text(r, 500, "Invalid status value %s", value);
        return;
    }
    lease_renew(in);
    if (override_remove(in->id)) {
        in->overridden = ST_UNKNOWN;
        in->status = st;
        if (!apply_dirty(q, in, r))
            return;
        in->action = "MODIFIED";
        in->last_updated = wall_ms();
        change_record(in);
    }
    reply_empty(r, 200);
}

static void h_cancel(const struct request *q, struct reply *r)
{
    struct instance *in = instance_find(q->app, q->id);
    override_remove(q->id); /* internalCancel removes the override even when not found */
    if (in == NULL) {
        reply_text(r, 404, "Not Found (Cancel): %s - %s", q->app, q->id);
        return;
    }
    registry_cancel(in);
    reply_empty(r, 200);
}

static enum MHD_Result metadata_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    set_str(cls, key, value != NULL ? value : "");
    return MHD_YES;
}

static void h_metadata(const struct request *q, struct reply *r)
{
    struct instance *in = instance_find(q->app, q->id);
    if (in == NULL) {
        /* InstanceResource.updateMetadata answers 500 for an unknown instance. */
        reply_text(r, 500, "Cannot find instance while updating metadata: %s", q->id);
        return;
    }
    json_t *md = json_object_get(in->src, "metadata");
    if (!json_is_object(md)) {
        md = jcheck(json_object());
        json_object_set_new(in->src, "metadata", md);
    }
    json_object_del(md, "@class");
    MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, metadata_iter, md);
    /* Eureka registers the updated InstanceInfo again (not as a replication). */
    in->action = "ADDED";
    in->last_updated = wall_ms();
    lease_start(in);
    change_record(in);
    reply_empty(r, 200);
}

static void h_get_instance(const struct request *q, struct reply *r)
{
    if (!wants_json(q, r))
        return;
    struct instance *in = instance_find(q->app, q->id);
    if (in == NULL) {
        reply_text(r, 404, "Not Found: %s - %s", q->app, q->id);
        return;
    }
    reply_json(r, 200, jcheck(json_pack("{s:o}", "instance", instance_json(in))));
}

static void h_get_app(const struct request *q, struct reply *r)
{
    if (!wants_json(q, r))
        return;
    json_t *full = cached_apps();
    json_t *apps = json_object_get(json_object_get(full, "applications"), "application");
    size_t i;
    json_t *app;
    json_array_foreach(apps, i, app)
    {
        if (strcmp(json_string_value(json_object_get(app, "name")), q->app) == 0) {
            reply_json(r, 200, jcheck(json_pack("{s:O}", "application", app)));
            json_decref(full);
            return;
        }
    }
    json_decref(full);
    reply_text(r, 404, "Not Found: %s", q->app);
}

static void h_get_apps(const struct request *q, struct reply *r, bool delta)
{
    if (!wants_json(q, r))
        return;
    reply_json(r, 200, delta ? cached_delta() : cached_apps());
}

/* ---------------------------------------------------------------------------------------------
 * Test hooks under /_double/
 * ------------------------------------------------------------------------------------------- */

/*
 * A restarted Eureka server has lost its overrides map. Its clients register again with
 * the status they report themselves, so every instance comes back with that status and no
 * override. With forget=all the instances are gone too, as on a server that restarted
 * without peers: the next heartbeat of each answers 404.
 */
static void hook_restart(const struct request *q, struct reply *r)
{
    const char *forget = query(q, "forget");
    bool all = forget != NULL && strcmp(forget, "all") == 0;
    if (forget != NULL && !all && strcmp(forget, "overrides") != 0) {
        reply_text(r, 400, "forget must be \"overrides\" (default) or \"all\"");
        return;
    }
    size_t overrides = g_novr, instances = g_ninst;
    overrides_clear();
    changes_clear();
    if (all) {
        for (size_t i = 0; i < g_ninst; i++)
            instance_free(g_inst[i]);
        g_ninst = 0;
    } else {
        for (size_t i = 0; i < g_ninst; i++) {
            struct instance *in = g_inst[i];
            in->overridden = ST_UNKNOWN;
            in->status = in->reported;
            in->action = "ADDED";
            in->last_updated = wall_ms();
            lease_start(in);
            change_record(in);
        }
    }
    cache_refresh(); /* a new server starts with an empty response cache */
    log_line("info", "restart", "forget=%s overrides_dropped=%zu instances_dropped=%zu",
             all ? "all" : "overrides", overrides, all ? instances : 0);
    reply_json(r, 200,
               jcheck(json_pack("{s:I,s:I}", "overrides_dropped", (json_int_t)overrides,
                                "instances_dropped", (json_int_t)(all ? instances : 0))));
}

static void hook_log(const struct request *q, struct reply *r)
{
    if (strcmp(q->method, "DELETE") == 0) {
        json_array_clear(g_reqlog);
        reply_empty(r, 200);
        return;
    }
    reply_json(r, 200, json_incref(g_reqlog));
}

static void route_hook(const struct request *q, const char *what, struct reply *r, bool *mutated)
{
    if (strcmp(what, "restart") == 0 && strcmp(q->method, "POST") == 0) {
        hook_restart(q, r);
        *mutated = true;
    } else if (strcmp(what, "log") == 0 &&
               (strcmp(q->method, "GET") == 0 || strcmp(q->method, "DELETE") == 0)) {
        hook_log(q, r);
    } else if (strcmp(what, "state") == 0 && strcmp(q->method, "GET") == 0) {
        reply_json(r, 200, state_json());
    } else {
        reply_text(r, 404,
                   "Unknown test hook %s %s (have: POST restart[?forget=all], GET|DELETE "
                   "log, GET state)",
                   q->method, what);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Routing
 * ------------------------------------------------------------------------------------------- */

static bool is(const struct request *q, const char *method)
{
    return strcmp(q->method, method) == 0;
}

/* The part of url after the apps root ("" or "/..."), or NULL when url is not under it. */
static const char *under_apps(const char *url)
{
    static const char *const roots[] = {"/eureka/v2/apps", "/eureka/apps"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        size_t n = strlen(roots[i]);
        if (strncmp(url, roots[i], n) == 0 && (url[n] == '\0' || url[n] == '/'))
            return url + n;
    }
    return NULL;
}

/* Split "/a/b/c/" into at most max segments; a trailing slash is ignored. Returns the
 * number of segments, or -1 for an empty segment or too many. Modifies path. */
static int split_path(char *path, char **seg, int max)
{
    int n = 0;
    if (*path == '/')
        path++;
    while (*path != '\0') {
        char *slash = strchr(path, '/');
        if (slash == path || n == max)
            return -1;
        seg[n++] = path;
        if (slash == NULL)
            break;
        *slash = '\0';
        path = slash + 1;
    }
    return n;
}

static void route_registry(struct request *q, char *rest, struct reply *r, bool *mutated)
{
    char *seg[3];
    int n = split_path(rest, seg, 3);
    if (n < 0) {
        reply_text(r, 404, "No such resource");
        return;
    }
    if (n == 0) {
        if (is(q, "GET"))
            h_get_apps(q, r, false);
        else
            reply_text(r, 405, "Method %s not allowed on /apps", q->method);
        return;
    }
    if (n == 1 && strcmp(seg[0], "delta") == 0) {
        if (is(q, "GET"))
            h_get_apps(q, r, true);
        else
            reply_text(r, 405, "Method %s not allowed on /apps/delta", q->method);
        return;
    }
    upcase(seg[0]); /* ApplicationResource upper-cases the application name */
    q->app = seg[0];
    q->id = n >= 2 ? seg[1] : NULL;
    *mutated = !is(q, "GET");
    if (n == 1 && is(q, "GET"))
        h_get_app(q, r);
    else if (n == 1 && is(q, "POST"))
        h_register(q, r);
    else if (n == 2 && is(q, "GET"))
        h_get_instance(q, r);
    else if (n == 2 && is(q, "PUT"))
        h_renew(q, r);
    else if (n == 2 && is(q, "DELETE"))
        h_cancel(q, r);
    else if (n == 3 && strcmp(seg[2], "status") == 0 && is(q, "PUT"))
        h_status_put(q, r);
    else if (n == 3 && strcmp(seg[2], "status") == 0 && is(q, "DELETE"))
        h_status_delete(q, r);
    else if (n == 3 && strcmp(seg[2], "metadata") == 0 && is(q, "PUT"))
        h_metadata(q, r);
    else if (n == 3 && strcmp(seg[2], "status") != 0 && strcmp(seg[2], "metadata") != 0)
        reply_text(r, 404, "No such resource");
    else
        reply_text(r, 405, "Method %s not allowed here", q->method);
}

/* ---------------------------------------------------------------------------------------------
 * HTTP glue (libmicrohttpd)
 * ------------------------------------------------------------------------------------------- */

struct conn_state {
    char *body;
    size_t len, cap;
    bool too_big;
    long long started;
};

struct kv_buf {
    char *buf;
    size_t cap, len;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct kv_buf *b = cls;
    (void)kind;
    int n = snprintf(b->buf + b->len, b->cap - b->len, "%s%s%s%s", b->len ? "&" : "", key,
                     value ? "=" : "", value ? value : "");
    if (n > 0 && (size_t)n < b->cap - b->len)
        b->len += (size_t)n;
    return MHD_YES;
}

static enum MHD_Result json_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    char name[128];
    snprintf(name, sizeof name, "%s", key);
    for (char *p = name; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    set_str(cls, name, value != NULL ? value : "");
    return MHD_YES;
}

/* Remember a request for GET /_double/log. Called with g_lock held. */
static void reqlog_add(struct MHD_Connection *conn, const char *method, const char *url,
                       const char *query_s, unsigned int status)
{
    g_reqlog_seq++;
    if (json_array_size(g_reqlog) >= MAX_LOG_ENTRIES) {
        g_reqlog_dropped++;
        return;
    }
    json_t *qo = jcheck(json_object());
    json_t *ho = jcheck(json_object());
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, json_iter, qo);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, json_iter, ho);
    json_array_append_new(
        g_reqlog,
        jcheck(json_pack("{s:I,s:I,s:s,s:s,s:s,s:o,s:o,s:i}", "seq", (json_int_t)g_reqlog_seq, "ts",
                         (json_int_t)wall_ms(), "method", method, "path", url, "query_string",
                         query_s, "query", qo, "headers", ho, "status", (int)status)));
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct reply *r)
{
    struct MHD_Response *resp;
    if (r->body != NULL) {
        resp = MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
        r->body = NULL;
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        die_oom();
    if (r->ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void dispatch(struct request *q, const char *url, struct reply *r, bool *mutated)
{
    char path[2048];
    if (strncmp(url, "/_double/", 9) == 0) {
        route_hook(q, url + 9, r, mutated);
        return;
    }
    const char *rest = under_apps(url);
    if (rest == NULL || strlen(rest) >= sizeof path) {
        reply_text(r, 404, "No such resource %s (this double serves /eureka/apps/...)", url);
        return;
    }
    strcpy(path, rest);
    route_registry(q, path, r, mutated);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct conn_state *cs = *con_cls;
    if (cs == NULL) {
        cs = xcalloc(1, sizeof *cs);
        cs->started = mono_ms();
        *con_cls = cs;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (cs->len + *upload_size > MAX_BODY) {
            cs->too_big = true;
        } else {
            if (cs->len + *upload_size + 1 > cs->cap) {
                cs->cap = cs->len + *upload_size + 1;
                cs->body = xrealloc(cs->body, cs->cap);
            }
            memcpy(cs->body + cs->len, upload_data, *upload_size);
            cs->len += *upload_size;
            cs->body[cs->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }

    const char *repl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-netflix-discovery-replication");
    struct request q = {.conn = conn,
                        .method = method,
                        .replication = repl != NULL && strcmp(repl, "true") == 0,
                        .body = cs->body != NULL ? cs->body : "",
                        .body_len = cs->len};
    struct reply r = {.status = 500};
    bool mutated = false;
    char qbuf[1024] = "";
    struct kv_buf qb = {qbuf, sizeof qbuf, 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_iter, &qb);

    pthread_mutex_lock(&g_lock);
    if (cs->too_big)
        reply_text(&r, 413, "Request body larger than %d bytes", MAX_BODY);
    else
        dispatch(&q, url, &r, &mutated);
    if (strncmp(url, "/_double/", 9) != 0)
        reqlog_add(conn, method, url, qbuf, r.status);
    if (mutated && r.status < 300)
        state_file_write();
    pthread_mutex_unlock(&g_lock);

    char b1[300], b2[1100], b3[300];
    log_line(r.status >= 500 ? "warn" : "info", "request",
             "method=%s path=%s query=%s status=%u ms=%lld%s%s%s", method, kv(url, b1, sizeof b1),
             kv(qbuf, b2, sizeof b2), r.status, mono_ms() - cs->started, r.extra,
             r.status >= 400 ? " reason=" : "", r.status >= 400 ? kv(r.reason, b3, sizeof b3) : "");
    return send_reply(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_state *cs = *con_cls;
    if (cs != NULL) {
        free(cs->body);
        free(cs);
        *con_cls = NULL;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Housekeeping thread: response cache refresh and lease eviction
 * ------------------------------------------------------------------------------------------- */

/* Cancel every lease not renewed within its durationInSecs. Returns how many went. */
static size_t evict_expired(long long now)
{
    size_t evicted = 0;
    size_t i = 0;
    while (i < g_ninst) {
        struct instance *in = g_inst[i];
        if (now - in->renewed_mono <= (long long)in->duration_secs * 1000) {
            i++;
            continue;
        }
        log_line("info", "evict", "app=%s id=%s duration_secs=%d", in->app, in->id,
                 in->duration_secs);
        override_remove(in->id);
        registry_cancel(in); /* swaps the last instance into slot i */
        evicted++;
    }
    return evicted;
}

static void *housekeeping(void *arg)
{
    (void)arg;
    long long delay = g_opt.cache_delay_ms;
    pthread_mutex_lock(&g_lock);
    long long next = mono_ms() + delay;
    while (!g_stopping) {
        long long now = mono_ms();
        if (delay > 0 && now >= next) {
            cache_refresh();
            next += delay;
            if (next <= now)
                next = now + delay;
        }
        if (g_opt.evict && evict_expired(now) > 0)
            state_file_write();
        long long wait = 100;
        if (delay > 0 && next - now < wait)
            wait = next - now > 1 ? next - now : 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        ts.tv_sec += (time_t)(wait / 1000) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g_wake, &g_lock, &ts);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Command line and main
 * ------------------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: eureka-double --listen HOST:PORT [options]\n"
          "\n"
          "A test double of a Eureka server's REST API (JSON only), built from Netflix/eureka's\n"
          "documented behaviour. Not a Eureka server.\n"
          "\n"
          "  --listen HOST:PORT   address to serve on, e.g. 127.0.0.1:8761 or [::1]:8761;\n"
          "                       port 0 picks a free port (see --port-file)\n"
          "  --cache-delay DUR    refresh period of the response cache behind GET /eureka/apps,\n"
          "                       /eureka/apps/delta and /eureka/apps/{APP} (Eureka: 30s);\n"
          "                       0 (default) serves them fresh. DUR: 500ms, 2s, 1m, or seconds\n"
          "  --evict              expire leases not renewed within leaseInfo.durationInSecs\n"
          "                       (default: never)\n"
          "  --state-file F       after every change, write the registry and overrides as JSON\n"
          "                       to F (atomically)\n"
          "  --port-file F        once listening, write the bound port to F\n"
          "  --help               this text\n"
          "\n"
          "Test hooks: POST /_double/restart[?forget=all], GET|DELETE /_double/log,\n"
          "GET /_double/state. SIGTERM or SIGINT stops it with exit status 0.\n",
          out);
}

static bool parse_listen(const char *s, struct options *o)
{
    const char *colon = strrchr(s, ':');
    long long port;
    if (colon == NULL || colon == s || !parse_ll(colon + 1, &port) || port < 0 || port > 65535)
        return false;
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            return false;
        s++;
        hlen -= 2;
    }
    o->listen_host = xcalloc(1, hlen + 1);
    memcpy(o->listen_host, s, hlen);
    o->listen_port = (int)port;
    return true;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                             {"cache-delay", required_argument, NULL, 'c'},
                                             {"state-file", required_argument, NULL, 's'},
                                             {"port-file", required_argument, NULL, 'p'},
                                             {"evict", no_argument, NULL, 'e'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (!parse_listen(optarg, o)) {
                fprintf(stderr, "eureka-double: --listen %s: expected HOST:PORT\n", optarg);
                return 2;
            }
            break;
        case 'c':
            o->cache_delay_ms = parse_duration_ms(optarg);
            if (o->cache_delay_ms < 0) {
                fprintf(stderr, "eureka-double: --cache-delay %s: expected e.g. 500ms, 2s, 1m\n",
                        optarg);
                return 2;
            }
            break;
        case 's':
            o->state_file = optarg;
            break;
        case 'p':
            o->port_file = optarg;
            break;
        case 'e':
            o->evict = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "eureka-double: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (o->listen_host == NULL) {
        fprintf(stderr, "eureka-double: --listen HOST:PORT is required\n");
        return 2;
    }
    return 0;
}

static bool write_port_file(const char *path, unsigned int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return false;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0)
        return false;
    return rename(tmp, path) == 0;
}

static struct MHD_Daemon *start_http(void)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, g_opt.listen_host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)g_opt.listen_port);
    } else if (inet_pton(AF_INET6, g_opt.listen_host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)g_opt.listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "eureka-double: --listen: %s is not a numeric IPv4 or IPv6 address\n",
                g_opt.listen_host);
        return NULL;
    }
    return MHD_start_daemon(flags, (uint16_t)g_opt.listen_port, NULL, NULL, on_request, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
}

/* Free everything the registry holds; the threads must have stopped. */
static void state_free(void)
{
    for (size_t i = 0; i < g_ninst; i++)
        instance_free(g_inst[i]);
    free(g_inst);
    overrides_clear();
    free(g_ovr);
    changes_clear();
    free(g_chg);
    json_decref(g_cache_apps);
    json_decref(g_cache_delta);
    json_decref(g_reqlog);
    free(g_opt.listen_host);
}

/* Serve until SIGTERM or SIGINT. Returns the exit status. */
static int serve(const sigset_t *stop)
{
    struct MHD_Daemon *d = start_http();
    if (d == NULL) {
        log_line("error", "listen", "addr=%s port=%d error=cannot_listen", g_opt.listen_host,
                 g_opt.listen_port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned int port = di != NULL ? di->port : (unsigned int)g_opt.listen_port;
    if (g_opt.port_file != NULL && !write_port_file(g_opt.port_file, port)) {
        log_line("error", "port_file", "file=%s error=%s", g_opt.port_file, strerror(errno));
        MHD_stop_daemon(d);
        return 1;
    }
    pthread_t hk;
    if (pthread_create(&hk, NULL, housekeeping, NULL) != 0) {
        log_line("error", "thread", "error=cannot_start_housekeeping");
        MHD_stop_daemon(d);
        return 1;
    }
    log_line("info", "listening", "addr=%s port=%u cache_delay_ms=%lld evict=%s state_file=%s",
             g_opt.listen_host, port, g_opt.cache_delay_ms, g_opt.evict ? "on" : "off",
             g_opt.state_file != NULL ? g_opt.state_file : "-");

    int sig = 0;
    sigwait(stop, &sig);
    log_line("info", "stopping", "signal=%d", sig);

    MHD_stop_daemon(d);
    pthread_mutex_lock(&g_lock);
    g_stopping = true;
    pthread_cond_signal(&g_wake);
    pthread_mutex_unlock(&g_lock);
    pthread_join(hk, NULL);
    log_line("info", "stopped", "requests=%llu", g_reqlog_seq);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv, &g_opt);
    if (rc != 0) {
        free(g_opt.listen_host);
        return rc;
    }

    /* Block the stop signals in every thread; serve() collects them with sigwait(). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    sigdelset(&stop, SIGPIPE);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_wake, &ca);
    pthread_condattr_destroy(&ca);

    g_reqlog = jcheck(json_array());
    cache_refresh();
    state_file_write();

    rc = serve(&stop);
    state_free();
    return rc;
}
