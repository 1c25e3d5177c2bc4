/* test_conf.c -- unit tests for conf/conf.c: good files, every kind of bad file, token files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent.h"
#include "backend.h"
#include "conf.h"
#include "eureka_job.h"
#include "valid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------ */

/* Test data lives in tests/unit/data; ctest passes its absolute path in BG_TEST_DATA. */
static char *data_path(const char *name)
{
    const char *dir = getenv("BG_TEST_DATA");
    return bg_xasprintf("%s/%s", dir && *dir ? dir : "tests/unit/data", name);
}

/* backends[i]'s settings, after checking that its type is the one named. */
static void *settings_of(const struct bg_agent_conf *c, size_t i, const char *type)
{
    assert_true(i < c->n_backends);
    assert_string_equal(bg_backend_type_name(c->backends[i].type), type);
    assert_non_null(c->backends[i].settings);
    return c->backends[i].settings;
}

/* The backend type of that name in agent/backends.c's table. */
static const struct bg_backend_type *type_named(const char *name)
{
    for (size_t t = 0; bg_backend_types[t] != NULL; t++)
        if (strcmp(bg_backend_types[t]->name, name) == 0)
            return bg_backend_types[t];
    fail_msg("no backend type %s", name);
    return NULL;
}

/* A private directory for files that must be generated (absolute paths, permissions). */
struct tmp {
    char dir[64];
    char *files[16];
    size_t n;
};

static int tmp_setup(void **state)
{
    struct tmp *t = bg_xcalloc(1, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/bg-test-conf.XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    for (size_t i = 0; i < t->n; i++) {
        chmod(t->files[i], 0700);
        if (remove(t->files[i]) != 0)
            fprintf(stderr, "cannot remove %s: %s\n", t->files[i], strerror(errno));
        free(t->files[i]);
    }
    rmdir(t->dir);
    free(t);
    return 0;
}

/* Write len bytes of content to dir/name; returns the path (owned by t). */
static const char *tmp_write(struct tmp *t, const char *name, const char *content, size_t len)
{
    assert_true(t->n < BG_ARRAY_LEN(t->files));
    char *path = bg_xasprintf("%s/%s", t->dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    t->files[t->n++] = path;
    return path;
}

static const char *tmp_file(struct tmp *t, const char *name, const char *content)
{
    return tmp_write(t, name, content, strlen(content));
}

static const char *tmp_mkdir(struct tmp *t, const char *name)
{
    assert_true(t->n < BG_ARRAY_LEN(t->files));
    char *path = bg_xasprintf("%s/%s", t->dir, name);
    assert_int_equal(mkdir(path, 0700), 0);
    t->files[t->n++] = path;
    return path;
}

enum which { AGENT, CONTROLLER };

static bool is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

/* Load path and require exactly the messages in want, each written "line:col: text" or, for
 * file-level problems, " text" (the path and its colon are prefixed here). */
static void expect_errors_in(const char *path, enum which which, const char *const *want, size_t n)
{
    struct bg_conf_errors errs = {0};
    int rc;
    if (which == AGENT) {
        struct bg_agent_conf c;
        rc = bg_conf_load_agent(path, &c, &errs);
        /* On failure nothing half-valid is left behind. */
        assert_null(c.path);
        assert_null(c.backends);
        bg_conf_free_agent(&c);
    } else {
        struct bg_controller_conf c;
        rc = bg_conf_load_controller(path, &c, &errs);
        assert_true(is_zero(&c, sizeof(c)));
        bg_conf_free_controller(&c);
    }
    bool same = rc == BG_EINVAL && errs.n == n;
    for (size_t i = 0; same && i < n; i++) {
        char *full = bg_xasprintf("%s:%s", path, want[i]);
        same = strcmp(full, errs.msgs[i]) == 0;
        free(full);
    }
    if (!same) {
        print_error("rc=%d; expected %zu message(s):\n", rc, n);
        for (size_t i = 0; i < n; i++)
            print_error("  %s:%s\n", path, want[i]);
        print_error("got %zu:\n", errs.n);
        for (size_t i = 0; i < errs.n; i++)
            print_error("  %s\n", errs.msgs[i]);
    }
    bg_conf_errors_free(&errs);
    assert_true(same);
}

static void expect_errors(const char *name, enum which which, const char *const *want, size_t n)
{
    char *path = data_path(name);
    expect_errors_in(path, which, want, n);
    free(path);
}

#define EXPECT(name, which, ...)                                                                   \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        expect_errors(name, which, want_, BG_ARRAY_LEN(want_));                                    \
    } while (0)

static void load_agent_ok(const char *path, struct bg_agent_conf *c)
{
    struct bg_conf_errors errs = {0};
    int rc = bg_conf_load_agent(path, c, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("%s\n", errs.msgs[i]);
    assert_int_equal(errs.n, 0);
    assert_int_equal(rc, BG_OK);
    bg_conf_errors_free(&errs);
}

static void load_controller_ok(const char *path, struct bg_controller_conf *c)
{
    struct bg_conf_errors errs = {0};
    int rc = bg_conf_load_controller(path, c, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("%s\n", errs.msgs[i]);
    assert_int_equal(errs.n, 0);
    assert_int_equal(rc, BG_OK);
    bg_conf_errors_free(&errs);
}

#define D "(an integer followed by ms, s or m, e.g. 250ms, 2s, 1m)"
#define HOSTPORT "\"host:port\" (IPv6 as \"[addr]:port\") with a port between 1 and 65535"
#define URL "an http:// or https:// URL such as \"http://10.0.0.5:9101\""
#define ID "1 to 128 characters from A-Z a-z 0-9 . _ - (not \".\" or \"..\")"
#define NAME "1 to 128 characters from A-Z a-z 0-9 . _ : -"
#define ROOT "an absolute ZooKeeper path such as \"/\" or \"/services/shop\""
#define CONNECT "\"host:port[,host:port...][/chroot]\""
#define TYPES "one of health, eureka, haproxy-agent, exec"

/* ------------------------------------------------------------------------------------------
 * Good files
 * ------------------------------------------------------------------------------------------ */

static void test_conf_agent_good(void **state)
{
    (void)state;
    char *path = data_path("agent_good.yaml");
    struct bg_agent_conf c;
    load_agent_ok(path, &c);
    assert_string_equal(c.path, path);

    assert_string_equal(c.zk.connect, "10.0.0.1:2181,10.0.0.2:2181/chroot");
    assert_string_equal(c.zk.root, "/services/shop");
    assert_int_equal(c.zk.session_timeout_ms, 6000);
    assert_string_equal(c.zk.auth, "shop:s3cret");

    assert_string_equal(c.instance.id, "web-1.a_b");
    assert_int_equal(c.instance.color, BG_GREEN);
    assert_string_equal(c.instance.endpoint, "http://10.0.0.5:8080");
    assert_string_equal(c.instance.app, "shop-api");
    assert_string_equal(c.instance.version, "1.10"); /* the text as written, not a float */

    assert_string_equal(c.http.listen, "127.0.0.1:9101");
    assert_null(c.http.token_file);
    assert_null(c.http.token);

    assert_int_equal(c.n_backends, 5);
    const struct bg_health_conf *h = settings_of(&c, 0, "health");
    assert_int_equal(c.backends[0].line, 16);
    assert_int_equal(h->confirm.confirm_timeout_ms, 1500);
    assert_int_equal(h->confirm.poll_window_ms, 7000);

    const struct bg_eureka_conf *eu = settings_of(&c, 1, "eureka");
    assert_int_equal(c.backends[1].line, 19);
    assert_int_equal(eu->n_urls, 2);
    assert_string_equal(eu->urls[0], "http://127.0.0.1:8761/eureka"); /* trailing / dropped */
    assert_string_equal(eu->urls[1], "https://eureka2.example:8443/eureka");
    assert_string_equal(eu->app, "SHOP-API"); /* upper-cased */
    assert_string_equal(eu->instance_id, "web-1:shop:8080");
    assert_true(eu->reg);
    assert_int_equal(eu->renew_interval_ms, 10000);
    assert_int_equal(eu->duration_ms, 60000);
    assert_string_equal(eu->host_name, "web-1.example");
    assert_string_equal(eu->ip_addr, "10.0.0.5");
    assert_string_equal(eu->vip_address, "shop-vip");
    assert_int_equal(eu->port, 8080);
    assert_int_equal(eu->timeout_ms, 750);

    const struct bg_haproxy_agent_conf *ha = settings_of(&c, 2, "haproxy-agent");
    assert_int_equal(c.backends[2].line, 33);
    assert_string_equal(ha->listen, "0.0.0.0:9201");
    assert_int_equal(ha->confirm.confirm_timeout_ms, 0);
    assert_int_equal(ha->confirm.poll_window_ms, 2000);

    const struct bg_exec_conf *x = settings_of(&c, 3, "exec");
    assert_int_equal(c.backends[3].line, 34);
    assert_int_equal(x->argc, 4);
    assert_string_equal(x->argv[0], "/bin/sh");
    assert_string_equal(x->argv[1], "-c");
    assert_string_equal(x->argv[2], "echo $BG_STATUS >> /tmp/status");
    assert_string_equal(x->argv[3], "");
    assert_null(x->argv[4]);
    assert_int_equal(x->timeout_ms, 60000);

    x = settings_of(&c, 4, "exec");
    assert_int_equal(c.backends[4].line, 37);
    assert_int_equal(x->argc, 3); /* split on any white space, no shell */
    assert_string_equal(x->argv[0], "/usr/local/bin/on-status");
    assert_string_equal(x->argv[1], "--quiet");
    assert_string_equal(x->argv[2], "-v");
    assert_null(x->argv[3]);
    assert_int_equal(x->timeout_ms, 10000);

    bg_conf_free_agent(&c);
    assert_null(c.path);
    assert_null(c.backends);
    free(path);
}

static void test_conf_agent_minimal_defaults(void **state)
{
    (void)state;
    char *path = data_path("agent_minimal.yaml");
    struct bg_agent_conf c;
    load_agent_ok(path, &c);
    assert_string_equal(c.zk.connect, "127.0.0.1:2181");
    assert_string_equal(c.zk.root, "/");
    assert_int_equal(c.zk.session_timeout_ms, 4000);
    assert_null(c.zk.auth);
    assert_string_equal(c.instance.id, "web-2");
    assert_int_equal(c.instance.color, BG_BLUE);
    assert_string_equal(c.instance.endpoint, "http://127.0.0.1:9102");
    assert_string_equal(c.instance.app, "APP");
    assert_string_equal(c.instance.version, "");
    assert_string_equal(c.http.listen, "127.0.0.1:9102");
    assert_null(c.http.token_file);
    assert_null(c.http.token);
    assert_int_equal(c.n_backends, 0);
    assert_null(c.backends);
    bg_conf_free_agent(&c);
    free(path);
}

static void test_conf_agent_backend_defaults(void **state)
{
    (void)state;
    char *path = data_path("agent_eureka_defaults.yaml");
    struct bg_agent_conf c;
    load_agent_ok(path, &c);
    assert_string_equal(c.instance.endpoint, "http://[::1]:9103");
    assert_string_equal(c.instance.app, "Shop"); /* only the Eureka name is upper-cased */
    assert_int_equal(c.n_backends, 3);

    const struct bg_eureka_conf *eu = settings_of(&c, 0, "eureka");
    assert_int_equal(eu->n_urls, 1); /* a single URL may be given without a list */
    assert_string_equal(eu->urls[0], "http://127.0.0.1:8761/eureka");
    assert_string_equal(eu->app, "SHOP");
    assert_string_equal(eu->instance_id, "web-3");
    assert_false(eu->reg);
    assert_int_equal(eu->renew_interval_ms, 30000);
    assert_int_equal(eu->duration_ms, 90000);
    assert_string_equal(eu->host_name, "::1");
    assert_string_equal(eu->ip_addr, "::1");
    assert_string_equal(eu->vip_address, "shop");
    assert_int_equal(eu->port, 9103);
    assert_int_equal(eu->timeout_ms, 2000);

    const struct bg_haproxy_agent_conf *ha = settings_of(&c, 1, "haproxy-agent");
    assert_string_equal(ha->listen, "127.0.0.1:9203");
    assert_int_equal(ha->confirm.confirm_timeout_ms, 0); /* derived from the observed interval */
    assert_int_equal(ha->confirm.poll_window_ms, 5000);
    assert_int_equal(ha->confirm.confirm_polls, 1);

    const struct bg_exec_conf *x = settings_of(&c, 2, "exec");
    assert_int_equal(x->argc, 1);
    assert_string_equal(x->argv[0], "/bin/true");
    assert_null(x->argv[1]);
    assert_int_equal(x->timeout_ms, 10000);
    bg_conf_free_agent(&c);
    free(path);
}

static void test_conf_controller_good(void **state)
{
    (void)state;
    char *path = data_path("controller_good.yaml");
    struct bg_controller_conf c;
    load_controller_ok(path, &c);
    assert_string_equal(c.path, path);
    assert_string_equal(c.zk.connect, "127.0.0.1:2181");
    assert_string_equal(c.zk.root, "/");
    assert_int_equal(c.zk.session_timeout_ms, 3000);
    assert_string_equal(c.zk.auth, "ops:pw");
    assert_int_equal(c.sw.batch_size, 2);
    assert_int_equal(c.sw.min_ready, 0);
    assert_int_equal(c.sw.settle_ms, 60000);
    assert_int_equal(c.sw.call_timeout_ms, 1500);
    assert_int_equal(c.sw.retries, 5);
    assert_int_equal(c.sw.resync_ms, 0);
    assert_int_equal(c.sw.backoff_ms, 250);
    assert_int_equal(c.sw.min_healthy_time_ms, 5000);
    assert_true(c.sw.unconfirmed_proceed);
    assert_int_equal(c.sw.unconfirmed_timeout_ms, 90000);
    assert_string_equal(c.http.listen, "127.0.0.1:9100");
    assert_null(c.http.token_file);
    assert_null(c.http.token);
    assert_string_equal(c.id, "ctl-a");
    bg_conf_free_controller(&c);
    assert_true(is_zero(&c, sizeof(c)));
    free(path);
}

static void test_conf_controller_minimal_defaults(void **state)
{
    (void)state;
    char *path = data_path("controller_minimal.yaml");
    struct bg_controller_conf c;
    load_controller_ok(path, &c);
    assert_string_equal(c.zk.root, "/");
    assert_int_equal(c.zk.session_timeout_ms, 4000);
    assert_null(c.zk.auth);
    /* "switch:" and "http:" with nothing under them are empty sections. */
    assert_int_equal(c.sw.batch_size, 0); /* every call of a phase at once */
    assert_int_equal(c.sw.min_ready, 1);
    assert_int_equal(c.sw.settle_ms, 0);
    assert_int_equal(c.sw.call_timeout_ms, 2000);
    assert_int_equal(c.sw.retries, 3);
    assert_int_equal(c.sw.resync_ms, 30000);
    assert_int_equal(c.sw.backoff_ms, 100);
    assert_int_equal(c.sw.min_healthy_time_ms, 0);
    assert_false(c.sw.unconfirmed_proceed); /* hold */
    assert_int_equal(c.sw.unconfirmed_timeout_ms, 60000);
    assert_null(c.http.listen);
    assert_null(c.http.token);
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    char *id = bg_xasprintf("%s-%ld", host, (long)getpid());
    assert_string_equal(c.id, id);
    free(id);
    bg_conf_free_controller(&c);
    free(path);
}

/* ------------------------------------------------------------------------------------------
 * Files that cannot be read or parsed
 * ------------------------------------------------------------------------------------------ */

static void test_conf_missing_file(void **state)
{
    (void)state;
    EXPECT("no-such-file.yaml", AGENT, " cannot open: No such file or directory");
    EXPECT("no-such-file.yaml", CONTROLLER, " cannot open: No such file or directory");
}

static void test_conf_directory_is_not_a_file(void **state)
{
    struct tmp *t = *state;
    const char *dir = tmp_mkdir(t, "conf.d");
    static const char *const want[] = {" cannot read: Is a directory"};
    expect_errors_in(dir, AGENT, want, 1);
}

static void test_conf_syntax_error(void **state)
{
    (void)state;
    EXPECT("bad_syntax.yaml", AGENT,
           "4:1: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at "
           "line 2, column 12)");
    EXPECT("bad_flow.yaml", AGENT,
           "2:1: invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping at "
           "line 1, column 12)");
    EXPECT("bad_alias.yaml", CONTROLLER, "1:22: invalid YAML: found undefined alias");
}

static void test_conf_invalid_utf8(void **state)
{
    struct tmp *t = *state;
    const char *path =
        tmp_file(t, "utf8.yaml", "zookeeper:\n  connect: \"127.0.0.1:2181\"\nid: ab\xff\n");
    static const char *const want[] = {"3:7: invalid YAML: invalid leading UTF-8 octet (0xFF)"};
    expect_errors_in(path, CONTROLLER, want, 1);
}

static void test_conf_top_level_not_mapping(void **state)
{
    (void)state;
    EXPECT("bad_top_sequence.yaml", AGENT,
           "1:1: expected a mapping at the top level, got a sequence");
    EXPECT("bad_top_scalar.yaml", CONTROLLER,
           "1:1: expected a mapping at the top level, got a scalar");
    EXPECT("bad_empty.yaml", AGENT,
           "1:1: expected a mapping at the top level, got an empty document");
}

static void test_conf_second_document(void **state)
{
    (void)state;
    EXPECT("bad_two_docs.yaml", CONTROLLER,
           "2:1: expected a single YAML document, found a second one (remove it or the '---')");
}

/* ------------------------------------------------------------------------------------------
 * Keys and types
 * ------------------------------------------------------------------------------------------ */

static void test_conf_unknown_keys(void **state)
{
    (void)state;
    EXPECT(
        "bad_unknown_keys.yaml", AGENT,
        "3:3: zookeeper.sesion_timeout_ms: unknown key, expected one of: connect, root, "
        "session_timeout_ms, auth",
        "4:36: instance.colour: unknown key, expected one of: id, color, endpoint, app, version, "
        "address",
        "5:34: http.tokenfile: unknown key, expected one of: listen, token_file, insecure, tls, "
        "max_connections_per_ip, max_connections, idle_timeout",
        "6:1: backend: unknown key, expected one of: zookeeper, instance, http, backends, check",
        "9:20: backends[0].listen: unknown key for type health, expected one of: type, "
        "confirm_timeout, poll_window, confirm_polls, out_of_service_code",
        "10:38: backends[1].urls: unknown key for type exec, expected one of: type, command, "
        "timeout");
}

static void test_conf_wrong_types(void **state)
{
    (void)state;
    EXPECT("bad_types.yaml", AGENT, "1:12: zookeeper: expected a mapping, got \"127.0.0.1:2181\"",
           "3:3: instance: expected a mapping, got a sequence",
           "5:11: http.listen: expected " HOSTPORT ", got a mapping",
           "6:11: backends: expected a sequence of backend mappings, got a mapping");
    EXPECT("bad_types_inner.yaml", AGENT,
           "2:12: zookeeper.connect: expected " CONNECT ", got a sequence",
           "3:9: zookeeper.root: expected " ROOT ", got null",
           "4:5: zookeeper: expected a scalar key, got a sequence",
           "7:7: instance.id: expected " ID ", got a mapping",
           "8:9: instance.color: expected blue or green, got an empty value",
           "9:8: instance.app: expected " NAME ", got a sequence",
           "12:15: http.token_file: expected a file name, got \"\"",
           "15:11: backends[0].urls: expected a sequence of URLs, got a mapping",
           "16:15: backends[0].register: expected true or false without quotes, got the string "
           "\"true\"",
           "17:11: backends[1].type: expected " TYPES ", got a sequence",
           "18:5: backends[2]: expected a mapping with a \"type\" key, got a sequence",
           "20:14: backends[3].command: expected a command line (a string or a sequence of "
           "strings), got a mapping",
           "22:26: backends[4].command[1]: expected a string, got a sequence");
}

static void test_conf_bad_durations(void **state)
{
    (void)state;
    EXPECT("bad_durations.yaml", CONTROLLER,
           "3:11: switch.settle: expected a duration " D ", got \"10\"",
           "4:17: switch.call_timeout: expected a duration above 0 " D ", got \"0\"",
           "5:11: switch.resync: expected a duration " D ", got \"1h\"",
           "6:12: switch.backoff: expected a duration " D ", got \"-1s\"");
    EXPECT("bad_durations2.yaml", CONTROLLER,
           "3:11: switch.settle: expected a duration " D ", got \"1.5s\"",
           "4:17: switch.call_timeout: expected a duration above 0 " D ", got \" 1s\"",
           "5:11: switch.resync: expected a duration of at most 1440m, got \"1441m\"",
           "6:12: switch.backoff: expected a duration " D ", got \"99999999999999999999ms\"");
}

static void test_conf_bad_color(void **state)
{
    (void)state;
    EXPECT("bad_color.yaml", AGENT, "4:10: instance.color: expected blue or green, got \"purple\"");
}

static void test_conf_missing_required_keys(void **state)
{
    (void)state;
    /* Each points at the start of the mapping the key is missing from. */
    EXPECT("bad_missing.yaml", AGENT, "2:3: zookeeper: missing required key \"connect\"",
           "4:3: instance: missing required key \"id\"",
           "4:3: instance: missing required key \"color\"",
           "6:3: http: missing required key \"listen\"",
           "6:15: http.token_file: expected a file name, got \"\"");
    EXPECT("bad_missing_sections.yaml", AGENT, "1:1: missing required key \"zookeeper\"",
           "1:1: missing required key \"instance\"", "1:1: missing required key \"http\"");
    EXPECT("bad_missing_controller.yaml", CONTROLLER, "1:1: missing required key \"zookeeper\"");
}

static void test_conf_out_of_range(void **state)
{
    (void)state;
    EXPECT("bad_ranges.yaml", CONTROLLER,
           "1:60: zookeeper.session_timeout_ms: expected an integer >= 1, got \"0\"",
           "3:15: switch.batch_size: expected an integer >= 1, got \"0\"",
           "4:14: switch.min_ready: expected an integer >= 0, got \"-1\"",
           "5:12: switch.retries: expected an integer between 0 and 2147483647, got "
           "\"2147483648\"");
}

static void test_conf_switch_unconfirmed_values(void **state)
{
    (void)state;
    EXPECT("controller_bad_unconfirmed.yaml", CONTROLLER,
           "3:16: switch.unconfirmed: expected hold or proceed, got \"wait\"",
           "4:24: switch.unconfirmed_timeout: expected a duration above 0 (an integer followed "
           "by ms, s or m, e.g. 250ms, 2s, 1m), got \"0s\"");
}

static void test_conf_not_integers(void **state)
{
    (void)state;
    EXPECT("bad_numbers.yaml", CONTROLLER,
           "1:60: zookeeper.session_timeout_ms: expected an integer >= 1, got \"4e3\"",
           "3:15: switch.batch_size: expected an integer >= 1, got \"abc\"",
           "4:14: switch.min_ready: expected an integer >= 0 without quotes, got the string \"2\"",
           "5:12: switch.retries: expected an integer >= 0, got \"1.0\"");
}

static void test_conf_duplicate_keys(void **state)
{
    (void)state;
    EXPECT("bad_duplicates.yaml", CONTROLLER,
           "5:3: switch.batch_size: duplicate key (first given at line 3, column 3)",
           "6:1: zookeeper: duplicate key (first given at line 1, column 1)",
           "8:1: id: duplicate key (first given at line 7, column 1)");
}

static void test_conf_bad_zookeeper(void **state)
{
    (void)state;
    EXPECT("bad_zk.yaml", CONTROLLER,
           "2:12: zookeeper.connect: expected " CONNECT ", got \"127.0.0.1:2181,,127.0.0.2:2181\"",
           "3:9: zookeeper.root: expected " ROOT ", got \"/a//b\"",
           "4:9: zookeeper.auth: expected \"user:password\" without white space, got "
           "\"nopassword\"");
    EXPECT("bad_zk2.yaml", CONTROLLER, "2:12: zookeeper.connect: expected " CONNECT ", got \"\"",
           "3:9: zookeeper.root: expected " ROOT ", got \"/a/\"",
           "4:9: zookeeper.auth: expected \"user:password\" without white space, got \":pw\"",
           "5:5: id: expected " ID ", got \"ctl 1\"");
}

/* ------------------------------------------------------------------------------------------
 * Addresses, ids and backends
 * ------------------------------------------------------------------------------------------ */

static void test_conf_bad_listen(void **state)
{
    (void)state;
    EXPECT("bad_listen.yaml", AGENT,
           "1:22: zookeeper.connect: expected " CONNECT ", got \"127.0.0.1\"",
           "3:16: http.listen: expected " HOSTPORT ", got \"localhost\"",
           "5:35: backends[0].listen: expected " HOSTPORT ", got \"127.0.0.1:0\"",
           "6:35: backends[1].listen: expected " HOSTPORT ", got \"::1:9201\"",
           "7:35: backends[2].listen: expected " HOSTPORT ", got \"127.0.0.1: 9201\"",
           "8:35: backends[3].listen: expected " HOSTPORT ", got \"127.0.0.1:65536\"",
           "9:35: backends[4].listen: expected " HOSTPORT ", got \":9201\"");
}

static void test_conf_listen_clash_and_second_health(void **state)
{
    (void)state;
    EXPECT("bad_listen_clash.yaml", AGENT,
           "5:5: backends[0]: listen \"127.0.0.1:9101\" clashes with http.listen",
           "7:5: backends[2]: listen \"127.0.0.1:9201\" clashes with backends[1].listen",
           "9:5: backends[4]: a second health backend (the first is backends[3])");
}

static void test_conf_bad_instance(void **state)
{
    (void)state;
    EXPECT("bad_instance_id.yaml", AGENT, "2:16: instance.id: expected " ID ", got \"web/1\"",
           "2:48: instance.endpoint: expected " URL ", got \"ftp://web-1\"",
           "2:68: instance.app: expected " NAME ", got \"my shop\"");
    EXPECT("bad_instance_dotdot.yaml", AGENT, "2:16: instance.id: expected " ID ", got \"..\"");
}

static void test_conf_instance_id_length(void **state)
{
    struct tmp *t = *state;
    char id[130];
    memset(id, 'a', sizeof(id));
    id[128] = '\0';
    char *yaml = bg_xasprintf("zookeeper: {connect: \"127.0.0.1:2181\"}\n"
                              "instance: {id: %s, color: blue}\n"
                              "http: {listen: \"127.0.0.1:9101\"}\n",
                              id);
    const char *path = tmp_file(t, "id128.yaml", yaml);
    free(yaml);
    struct bg_agent_conf c;
    load_agent_ok(path, &c);
    assert_int_equal(strlen(c.instance.id), 128);
    bg_conf_free_agent(&c);

    id[128] = 'a';
    id[129] = '\0';
    yaml = bg_xasprintf("zookeeper: {connect: \"127.0.0.1:2181\"}\n"
                        "instance:\n  id: %s\n  color: blue\n"
                        "http: {listen: \"127.0.0.1:9101\"}\n",
                        id);
    path = tmp_file(t, "id129.yaml", yaml);
    free(yaml);
    /* Long values are cut in messages: 68 characters and "...". */
    char cut[69];
    memset(cut, 'a', 68);
    cut[68] = '\0';
    char *msg = bg_xasprintf("3:7: instance.id: expected " ID ", got \"%s...\"", cut);
    const char *const want[] = {msg};
    expect_errors_in(path, AGENT, want, 1);
    free(msg);
}

static void test_conf_wildcard_listen_needs_endpoint(void **state)
{
    (void)state;
    EXPECT("bad_wildcard.yaml", AGENT,
           "2:11: instance: missing key \"endpoint\", required because http.listen "
           "\"0.0.0.0:9101\" is a wildcard address (give the URL the controller should call)");
}

static void test_conf_backend_requirements(void **state)
{
    (void)state;
    EXPECT("bad_backends.yaml", AGENT,
           "5:5: backends[0]: missing required key \"command\" for type exec",
           "7:5: backends[1]: missing required key \"urls\" for type eureka",
           "9:5: backends[2]: missing required key \"listen\" for type haproxy-agent",
           "10:11: backends[3].type: expected " TYPES ", got \"consul\"",
           "12:5: backends[4]: missing required key \"type\" (" TYPES ")",
           "13:5: backends[5]: expected a mapping with a \"type\" key, got \"eureka\"",
           "15:14: backends[6].command: expected a command line (a string or a sequence of "
           "strings), got \"   \"",
           "17:11: backends[7].urls: expected at least one URL, got an empty sequence",
           "19:44: backends[8].urls[1]: expected " URL ", got \"127.0.0.1:8762\"",
           "19:62: backends[8].urls[2]: expected " URL ", got null",
           "21:15: backends[8].duration: expected a lease duration longer than renew_interval "
           "(30000 ms), got 30000 ms",
           "22:11: backends[8].port: expected an integer between 1 and 65535, got \"0\"");
}

static void test_conf_many_errors_all_reported(void **state)
{
    (void)state;
    EXPECT("bad_many.yaml", AGENT, "3:9: zookeeper.root: expected " ROOT ", got \"services/shop\"",
           "5:7: instance.id: expected " ID ", got \"web 1\"",
           "6:10: instance.color: expected blue or green, got \"Blue\"",
           "7:3: instance.extra: unknown key, expected one of: id, color, endpoint, app, version, "
           "address",
           "11:5: backends[0]: missing required key \"command\" for type exec",
           "12:5: backends[1]: missing required key \"urls\" for type eureka",
           "13:15: backends[1].register: expected true or false, got \"maybe\"");
}

/* ------------------------------------------------------------------------------------------
 * Token files
 * ------------------------------------------------------------------------------------------ */

static const char *agent_with_token(struct tmp *t, const char *name, const char *token_path)
{
    char *yaml = bg_xasprintf("zookeeper: {connect: \"127.0.0.1:2181\"}\n"
                              "instance: {id: web-1, color: blue}\n"
                              "http:\n"
                              "  listen: \"127.0.0.1:9101\"\n"
                              "  token_file: %s\n",
                              token_path);
    const char *path = tmp_file(t, name, yaml);
    free(yaml);
    return path;
}

/* The single message expected for a bad token file named in agent_with_token's file:
 * before, the quoted token path, after. */
static void expect_token_error(const char *conf, const char *before, const char *token_path,
                               const char *after)
{
    char *want = bg_xasprintf("5:15: http.token_file: %s\"%s\"%s", before, token_path, after);
    const char *const list[] = {want};
    expect_errors_in(conf, AGENT, list, 1);
    free(want);
}

static void test_conf_token_file_trimmed(void **state)
{
    struct tmp *t = *state;
    const char *token = tmp_file(t, "token", "  s3cr3t-T0ken_=\n\n");
    struct bg_agent_conf a;
    load_agent_ok(agent_with_token(t, "agent.yaml", token), &a);
    assert_string_equal(a.http.token_file, token);
    assert_string_equal(a.http.token, "s3cr3t-T0ken_=");
    bg_conf_free_agent(&a);

    /* The controller uses its token to call agents, with or without a listen address. */
    char *yaml = bg_xasprintf("zookeeper: {connect: \"127.0.0.1:2181\"}\n"
                              "http: {token_file: \"%s\"}\n",
                              token);
    const char *conf = tmp_file(t, "controller.yaml", yaml);
    free(yaml);
    struct bg_controller_conf c;
    load_controller_ok(conf, &c);
    assert_null(c.http.listen);
    assert_string_equal(c.http.token_file, token);
    assert_string_equal(c.http.token, "s3cr3t-T0ken_=");
    bg_conf_free_controller(&c);
}

static void test_conf_token_file_missing(void **state)
{
    struct tmp *t = *state;
    char *token = bg_xasprintf("%s/no-such-token", t->dir);
    const char *conf = agent_with_token(t, "agent.yaml", token);
    expect_token_error(conf, "cannot read ", token, ": No such file or directory");
    free(token);
}

static void test_conf_token_file_empty(void **state)
{
    struct tmp *t = *state;
    const char *token = tmp_file(t, "token", " \n\t\n");
    const char *conf = agent_with_token(t, "agent.yaml", token);
    expect_token_error(conf, "", token, " is empty, expected a token");

    const char *zero = tmp_file(t, "token0", "");
    conf = agent_with_token(t, "agent0.yaml", zero);
    expect_token_error(conf, "", zero, " is empty, expected a token");
}

static void test_conf_token_file_not_one_word(void **state)
{
    struct tmp *t = *state;
    static const char *const want =
        " must hold one token of printable characters without white space";
    const char *token = tmp_file(t, "token", "two words\n");
    expect_token_error(agent_with_token(t, "a1.yaml", token), "", token, want);
    const char *lines = tmp_file(t, "token2", "line1\nline2\n");
    expect_token_error(agent_with_token(t, "a2.yaml", lines), "", lines, want);
    const char *nul = tmp_write(t, "token3", "abc\0def", 7);
    expect_token_error(agent_with_token(t, "a3.yaml", nul), "", nul, want);
}

static void test_conf_token_file_directory_or_too_large(void **state)
{
    struct tmp *t = *state;
    const char *dir = tmp_mkdir(t, "tokendir");
    expect_token_error(agent_with_token(t, "a1.yaml", dir), "cannot read ", dir,
                       ": Is a directory");
    char big[5000];
    memset(big, 'x', sizeof(big));
    const char *large = tmp_write(t, "bigtoken", big, sizeof(big));
    expect_token_error(agent_with_token(t, "a2.yaml", large), "cannot read ", large,
                       ": File too large");
}

static void test_conf_token_file_unreadable(void **state)
{
    struct tmp *t = *state;
    const char *token = tmp_file(t, "token", "secret\n");
    assert_int_equal(chmod(token, 0), 0);
    if (access(token, R_OK) == 0) /* root reads anything */
        skip();
    expect_token_error(agent_with_token(t, "agent.yaml", token), "cannot read ", token,
                       ": Permission denied");
}

/* ------------------------------------------------------------------------------------------
 * The API around loading
 * ------------------------------------------------------------------------------------------ */

static void test_conf_free_is_safe_on_zeroed_and_twice(void **state)
{
    (void)state;
    struct bg_agent_conf a;
    memset(&a, 0, sizeof(a));
    bg_conf_free_agent(&a);
    bg_conf_free_agent(&a);
    bg_conf_free_agent(NULL);
    struct bg_controller_conf c;
    memset(&c, 0, sizeof(c));
    bg_conf_free_controller(&c);
    bg_conf_free_controller(&c);
    bg_conf_free_controller(NULL);
    struct bg_conf_errors e = {0};
    bg_conf_errors_free(&e);
    bg_conf_errors_free(&e);

    /* A partially built struct, as a caller might assemble by hand. */
    memset(&a, 0, sizeof(a));
    a.zk.connect = bg_xstrdup("x:1");
    a.backends = bg_xcalloc(2, sizeof(*a.backends));
    a.n_backends = 2;
    a.backends[1].type = type_named("exec");
    struct bg_exec_conf *x = a.backends[1].type->make();
    a.backends[1].settings = x;
    x->argv = bg_xcalloc(2, sizeof(char *));
    x->argv[0] = bg_xstrdup("/bin/true");
    x->argc = 1;
    bg_conf_free_agent(&a);
    assert_null(a.zk.connect);
    assert_null(a.backends);
}

static void test_conf_errors_accumulate_and_print(void **state)
{
    struct tmp *t = *state;
    struct bg_conf_errors errs = {0};
    struct bg_controller_conf c;
    char *missing = data_path("no-such-file.yaml");
    char *ranges = data_path("bad_ranges.yaml");
    assert_int_equal(bg_conf_load_controller(missing, &c, &errs), BG_EINVAL);
    assert_int_equal(bg_conf_load_controller(ranges, &c, &errs), BG_EINVAL);
    assert_int_equal(errs.n, 5); /* the earlier message is kept */
    bg_conf_free_controller(&c);

    char *out_path = bg_xasprintf("%s/printed", t->dir);
    t->files[t->n++] = out_path;
    FILE *f = fopen(out_path, "w+");
    assert_non_null(f);
    bg_conf_errors_print(&errs, f);
    rewind(f);
    char line[512];
    size_t lines = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        assert_string_equal(line, errs.msgs[lines]);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 5);
    bg_conf_errors_free(&errs);
    assert_null(errs.msgs);
    assert_int_equal(errs.n, 0);
    free(missing);
    free(ranges);
}

static void test_conf_yes_no_and_null_sections(void **state)
{
    struct tmp *t = *state;
    const char *conf = tmp_file(t, "agent.yaml",
                                "zookeeper:\n"
                                "  connect: \"127.0.0.1:2181\"\n"
                                "instance: {id: w, color: \"green\", endpoint: \"https://w\"}\n"
                                "http: {listen: \"[::]:9101\", insecure: yes}\n"
                                "backends:\n"
                                "  - {type: eureka, urls: [\"http://e\"], register: No}\n"
                                "  - {type: eureka, urls: [\"http://e\"], register: True}\n");
    struct bg_agent_conf a;
    load_agent_ok(conf, &a);
    assert_int_equal(a.instance.color, BG_GREEN);
    const struct bg_eureka_conf *e0 = settings_of(&a, 0, "eureka");
    const struct bg_eureka_conf *e1 = settings_of(&a, 1, "eureka");
    assert_false(e0->reg);
    assert_true(e1->reg);
    assert_int_equal(e0->port, 443); /* from the https endpoint */
    assert_string_equal(e0->host_name, "w");
    assert_string_equal(e1->app, "APP");
    assert_string_equal(e1->vip_address, "app");
    bg_conf_free_agent(&a);

    conf = tmp_file(t, "empty-backends.yaml",
                    "zookeeper: {connect: \"127.0.0.1:2181\"}\n"
                    "instance: {id: w, color: blue}\n"
                    "http: {listen: \"127.0.0.1:9101\"}\n"
                    "backends:\n");
    load_agent_ok(conf, &a);
    assert_int_equal(a.n_backends, 0);
    bg_conf_free_agent(&a);
}

static void test_conf_backend_type_names(void **state)
{
    (void)state;
    static const char *const names[] = {"health", "eureka", "haproxy-agent", "exec"};
    size_t n = 0;
    for (; bg_backend_types[n] != NULL; n++) {
        assert_true(n < BG_ARRAY_LEN(names));
        assert_string_equal(bg_backend_type_name(bg_backend_types[n]), names[n]);
    }
    assert_int_equal(n, BG_ARRAY_LEN(names));
    assert_string_equal(bg_backend_type_name(NULL), "unknown");
}

/* URLs are split by libcurl's URL API: what the agent's requests will use, and nothing more. */
static void test_conf_split_url(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
        int port;
    } ok[] = {
        {"http://h", "h", 80},
        {"https://h/x?y#z", "h", 443},
        {"http://127.0.0.1:9101/eureka/v2", "127.0.0.1", 9101},
        {"HTTP://Web-1:8080", "Web-1", 8080},
        {"http://[::1]:8080/health", "::1", 8080},
        {"https://[fe80::1]", "fe80::1", 443},
    };
    static const char *bad[] = {
        "ftp://h",    "h:80",          "http://",       "http://:80",
        "http://u@h", "http://u:p@h/", "http://h:0",    "http://h:65536",
        "http://h:x", "http://h /",    "http://h\t:80", "http://[::1",
        "",           "httpx://h",     "http:/h",       "https//h",
    };
    char host[64];
    int port;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        port = 0;
        assert_int_equal(bg_valid_split_url(ok[i].url, host, sizeof(host), &port), BG_OK);
        assert_string_equal(host, ok[i].host);
        assert_int_equal(port, ok[i].port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (bg_valid_split_url(bad[i], host, sizeof(host), &port) == BG_OK)
            fail_msg("accepted \"%s\" (host \"%s\" port %d)", bad[i], host, port);
    }
    assert_int_equal(bg_valid_split_url("http://a-rather-long-host-name:80", host, 8, &port),
                     BG_EINVAL); /* does not fit */
}

/* A type's keys: "type" first, each once, at most 15 of them (backend_conf.c's MAX_KEYS room). */
static void check_type_keys(const struct bg_backend_type *t)
{
    assert_non_null(t->keys);
    assert_non_null(t->keys[0]);
    assert_string_equal(t->keys[0], "type");
    size_t k = 0;
    for (; t->keys[k] != NULL; k++) {
        assert_true(k < 15);
        assert_true(t->keys[k][0] != '\0');
        for (size_t j = 0; j < k; j++)
            assert_string_not_equal(t->keys[k], t->keys[j]);
    }
}

/* Both sides of a type: make, load and free its settings; what runs it. make's settings are
 * released by free (ASan sees a leak) and listen nowhere yet. */
static void check_type_sides(const struct bg_backend_type *t)
{
    assert_non_null(t->make);
    assert_non_null(t->load);
    assert_non_null(t->free);
    assert_non_null(t->ops);
    assert_non_null(t->ops->init);
    assert_non_null(t->ops->apply);
    assert_non_null(t->ops->progress);
    assert_non_null(t->ops->destroy);
    void *settings = t->make();
    assert_non_null(settings);
    if (t->listen != NULL)
        assert_null(t->listen(settings));
    t->free(settings);
    t->free(NULL);
}

/* The table of backend types (agent/backends.c), walked: every type has a name, its keys and
 * both sides; names are distinct; exactly one type answers GET /health (the agent runs it
 * always); nothing past the NULL end. */
static void test_conf_backend_table(void **state)
{
    (void)state;
    size_t n = 0, serves_health = 0;
    for (; bg_backend_types[n] != NULL; n++) {
        const struct bg_backend_type *t = bg_backend_types[n];
        assert_non_null(t->name);
        assert_true(t->name[0] != '\0');
        assert_string_not_equal(bg_backend_type_name(t), "unknown");
        for (size_t u = 0; u < n; u++)
            assert_string_not_equal(t->name, bg_backend_types[u]->name);
        check_type_keys(t);
        check_type_sides(t);
        serves_health += (t->flags & BG_BACKEND_SERVES_HEALTH) != 0;
    }
    assert_true(n >= 1);
    assert_int_equal(serves_health, 1);
    assert_string_equal(bg_backend_type_name(NULL), "unknown");
    assert_string_equal(bg_check_type_name(BG_CHECK_NONE), "none");
    assert_string_equal(bg_check_type_name(BG_CHECK_EXEC), "exec");
    assert_string_equal(bg_check_type_name((enum bg_check_type)99), "none");
}

/* ------------------------------------------------------------------------------------------
 * check: and instance.address (issue #8)
 * ------------------------------------------------------------------------------------------ */

#define CHECK_URL "an http:// or https:// URL such as \"http://127.0.0.1:8080/health\""

static void test_conf_check_http(void **state)
{
    (void)state;
    char *p = data_path("agent_check_http.yaml");
    struct bg_agent_conf c;
    load_agent_ok(p, &c);
    assert_string_equal(c.instance.address, "127.0.0.1:8080");
    assert_int_equal(c.check.type, BG_CHECK_HTTP);
    assert_string_equal(c.check.http, "http://127.0.0.1:8080/actuator/health");
    assert_null(c.check.tcp);
    assert_null(c.check.argv);
    assert_int_equal(c.check.interval_ms, 500);
    assert_int_equal(c.check.timeout_ms, 2000); /* longer than interval is allowed */
    assert_int_equal(c.check.rise, 1);
    assert_int_equal(c.check.fall, 5);
    assert_int_equal(c.check.line, 5); /* a block mapping starts at its first key */
    assert_string_equal(bg_check_type_name(c.check.type), "http");
    bg_conf_free_agent(&c);
    free(p);
}

static void test_conf_check_exec_defaults(void **state)
{
    (void)state;
    char *p = data_path("agent_check_exec.yaml");
    struct bg_agent_conf c;
    load_agent_ok(p, &c);
    assert_string_equal(c.instance.address, "[::1]:8080");
    assert_int_equal(c.check.type, BG_CHECK_EXEC);
    assert_int_equal(c.check.argc, 2);
    assert_string_equal(c.check.argv[0], "/usr/local/bin/check-shop");
    assert_string_equal(c.check.argv[1], "--quick");
    assert_null(c.check.argv[2]);
    assert_int_equal(c.check.interval_ms, 1000);
    assert_int_equal(c.check.timeout_ms, 1000);
    assert_int_equal(c.check.rise, 2);
    assert_int_equal(c.check.fall, 3);
    bg_conf_free_agent(&c);
    free(p);
}

static void test_conf_check_absent(void **state)
{
    (void)state;
    char *p = data_path("agent_minimal.yaml");
    struct bg_agent_conf c;
    load_agent_ok(p, &c);
    assert_null(c.instance.address);
    assert_int_equal(c.check.type, BG_CHECK_NONE);
    assert_string_equal(bg_check_type_name(c.check.type), "none");
    assert_int_equal(c.check.rise, 2);
    assert_int_equal(c.check.fall, 3);
    bg_conf_free_agent(&c);
    free(p);
}

static void test_conf_check_bad_values(void **state)
{
    (void)state;
    EXPECT("bad_check.yaml", AGENT,
           "2:47: instance.address: expected " HOSTPORT ", got \"127.0.0.1\"",
           "5:9: check.http: expected " CHECK_URL ", got \"ftp://127.0.0.1/health\"",
           "6:13: check.interval: expected a duration above 0 " D ", got \"0s\"",
           "7:12: check.timeout: expected a duration above 0 " D ", got \"soon\"",
           "8:9: check.rise: expected an integer between 1 and 1000, got \"0\"",
           "9:9: check.fall: expected an integer between 1 and 1000, got \"-1\"",
           "10:3: check.retries: unknown key, expected one of: http, tcp, exec, interval, "
           "timeout, rise, fall");
    EXPECT("bad_check_values.yaml", AGENT,
           "4:14: check.tcp: expected " HOSTPORT ", got \"127.0.0.1:0\"");
    EXPECT("bad_check_exec.yaml", AGENT,
           "5:9: check.exec: expected a command line (a string or a sequence of strings), got an "
           "empty sequence");
    EXPECT("bad_check_type.yaml", AGENT,
           "4:8: check: expected a mapping, got \"http://127.0.0.1:8080/\"");
}

static void test_conf_check_exactly_one_kind(void **state)
{
    (void)state;
    EXPECT("bad_check_none.yaml", AGENT,
           "5:3: check: expected exactly one of \"http\", \"tcp\", \"exec\", got none");
    EXPECT("bad_check_two.yaml", AGENT,
           "6:3: check.exec: expected exactly one of \"http\", \"tcp\", \"exec\" in the check "
           "mapping, but \"tcp\" is given too");
}

/* ------------------------------------------------------------------------------------------
 * Secure by default (DESIGN §14)
 * ------------------------------------------------------------------------------------------ */

#define ZK_AUTH "zookeeper: {connect: \"127.0.0.1:2181\", auth: \"bg:secret\"}\n"
#define NO_TOKEN                                                                                   \
    ": is not a loopback address and http.token_file is not set: anyone who reaches it could "

/* Load an agent from text; returns the rc and leaves the messages in errs. */
static int load_agent_text(struct tmp *t, const char *name, const char *text,
                           struct bg_agent_conf *a, struct bg_conf_errors *errs)
{
    const char *path = tmp_file(t, name, text);
    return bg_conf_load_agent(path, a, errs);
}

static void test_conf_nonloopback_needs_token(void **state)
{
    struct tmp *t = *state;
    static const char *const refused[] = {"0.0.0.0:9101", "[::]:9101", "10.0.0.5:9101",
                                          "web-1.example:9101"};
    for (size_t i = 0; i < BG_ARRAY_LEN(refused); i++) {
        char name[32],
            *text = bg_xasprintf(ZK_AUTH "instance: {id: w, color: blue, endpoint: "
                                         "\"http://10.0.0.5:9101\"}\nhttp: {listen: \"%s\"}\n",
                                 refused[i]);
        snprintf(name, sizeof(name), "refused-%zu.yaml", i);
        struct bg_agent_conf a;
        struct bg_conf_errors errs = {0};
        assert_int_equal(load_agent_text(t, name, text, &a, &errs), BG_EINVAL);
        assert_int_equal(errs.n, 1);
        char *want = bg_xasprintf("%s/%s:3:16: http.listen: \"%s\" is not a loopback address and "
                                  "http.token_file is not set: anyone who reaches it could change "
                                  "this instance's status; set http.token_file (or "
                                  "http.insecure: true to accept that)",
                                  t->dir, name, refused[i]);
        assert_string_equal(errs.msgs[0], want);
        free(want);
        free(text);
        bg_conf_errors_free(&errs);
        bg_conf_free_agent(&a);
    }
    static const char *const loopback[] = {"127.0.0.1:9101", "127.3.4.5:9101", "[::1]:9101",
                                           "localhost:9101", "[::ffff:127.0.0.1]:9101"};
    for (size_t i = 0; i < BG_ARRAY_LEN(loopback); i++) {
        char name[32],
            *text = bg_xasprintf(ZK_AUTH "instance: {id: w, color: blue}\nhttp: {listen: \"%s\"}\n",
                                 loopback[i]);
        snprintf(name, sizeof(name), "loopback-%zu.yaml", i);
        struct bg_agent_conf a;
        struct bg_conf_errors errs = {0};
        assert_int_equal(load_agent_text(t, name, text, &a, &errs), BG_OK);
        assert_int_equal(errs.n_warns, 0);
        free(text);
        bg_conf_errors_free(&errs);
        bg_conf_free_agent(&a);
    }
}

static void test_conf_nonloopback_token_or_insecure(void **state)
{
    struct tmp *t = *state;
    const char *token = tmp_file(t, "token", "s3cret\n");
    char *text = bg_xasprintf(ZK_AUTH "instance: {id: w, color: blue, endpoint: "
                                      "\"http://10.0.0.5:9101\"}\n"
                                      "http: {listen: \"0.0.0.0:9101\", token_file: \"%s\"}\n",
                              token);
    struct bg_agent_conf a;
    struct bg_conf_errors errs = {0};
    assert_int_equal(load_agent_text(t, "token.yaml", text, &a, &errs), BG_OK);
    assert_int_equal(errs.n_warns, 0);
    assert_false(a.http.insecure);
    free(text);
    bg_conf_errors_free(&errs);
    bg_conf_free_agent(&a);

    assert_int_equal(load_agent_text(t, "insecure.yaml",
                                     ZK_AUTH "instance: {id: w, color: blue, endpoint: "
                                             "\"http://10.0.0.5:9101\"}\n"
                                             "http:\n  listen: \"0.0.0.0:9101\"\n"
                                             "  insecure: true\n",
                                     &a, &errs),
                     BG_OK);
    assert_true(a.http.insecure);
    assert_int_equal(errs.n_warns, 1);
    assert_string_equal(errs.warns[0].event, "http_insecure");
    char *want = bg_xasprintf("%s/insecure.yaml:5:13: http.insecure: true: the API on "
                              "\"0.0.0.0:9101\" takes requests from anyone who reaches it, "
                              "without a token",
                              t->dir);
    assert_string_equal(errs.warns[0].msg, want);
    free(want);
    bg_conf_errors_free(&errs);
    bg_conf_free_agent(&a);

    /* The controller: the same rule; no http section at all is fine. */
    const char *c1 = tmp_file(t, "c1.yaml", ZK_AUTH "http: {listen: \"0.0.0.0:9100\"}\n");
    struct bg_controller_conf c;
    assert_int_equal(bg_conf_load_controller(c1, &c, &errs), BG_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], ":2:16: http.listen: \"0.0.0.0:9100\" is not a loopback "
                                         "address and http.token_file is not set"));
    bg_conf_errors_free(&errs);
    bg_conf_free_controller(&c);
    const char *c2 = tmp_file(t, "c2.yaml", ZK_AUTH);
    load_controller_ok(c2, &c);
    assert_null(c.http.listen);
    bg_conf_free_controller(&c);
}

static void test_conf_zk_auth_warning(void **state)
{
    struct tmp *t = *state;
    struct bg_agent_conf a;
    struct bg_conf_errors errs = {0};
    assert_int_equal(load_agent_text(t, "noauth.yaml",
                                     "instance: {id: w, color: blue}\n"
                                     "zookeeper: {connect: \"127.0.0.1:2181\"}\n"
                                     "http: {listen: \"127.0.0.1:9101\"}\n",
                                     &a, &errs),
                     BG_OK);
    assert_int_equal(errs.n, 0);
    assert_int_equal(errs.n_warns, 1);
    assert_string_equal(errs.warns[0].event, "zookeeper_auth_unset");
    char *want = bg_xasprintf("%s/noauth.yaml:2:12: zookeeper.auth: not set: the nodes are open "
                              "to everyone, so anyone who can write to ZooKeeper can register an "
                              "endpoint and receive the token with the controller's calls; set "
                              "\"user:password\" digest credentials",
                              t->dir);
    assert_string_equal(errs.warns[0].msg, want);
    free(want);
    bg_conf_errors_free(&errs);
    assert_int_equal(errs.n_warns, 0);
    bg_conf_free_agent(&a);

    const char *c1 = tmp_file(t, "c.yaml", "zookeeper: {connect: \"127.0.0.1:2181\"}\n");
    struct bg_controller_conf c;
    assert_int_equal(bg_conf_load_controller(c1, &c, &errs), BG_OK);
    assert_int_equal(errs.n_warns, 1);
    assert_string_equal(errs.warns[0].event, "zookeeper_auth_unset");
    bg_conf_errors_free(&errs);
    bg_conf_free_controller(&c);
    const char *c2 = tmp_file(t, "c2.yaml", ZK_AUTH);
    assert_int_equal(bg_conf_load_controller(c2, &c, &errs), BG_OK);
    assert_int_equal(errs.n_warns, 0);
    bg_conf_errors_free(&errs);
    bg_conf_free_controller(&c);
}

static void test_conf_http_limits(void **state)
{
    struct tmp *t = *state;
    struct bg_agent_conf a;
    struct bg_conf_errors errs = {0};
    assert_int_equal(load_agent_text(t, "defaults.yaml",
                                     ZK_AUTH "instance: {id: w, color: blue}\n"
                                             "http: {listen: \"127.0.0.1:9101\"}\n",
                                     &a, &errs),
                     BG_OK);
    assert_int_equal(a.http.max_connections_per_ip, 64);
    assert_int_equal(a.http.max_connections, 1024);
    assert_int_equal(a.http.idle_timeout_ms, 30000);
    assert_string_equal(a.http.server.listen, "127.0.0.1:9101");
    assert_int_equal(a.http.server.max_conns_per_ip, 64);
    assert_int_equal(a.http.server.max_conns, 1024);
    assert_int_equal(a.http.server.idle_timeout_s, 30);
    assert_null(a.http.server.cert_pem);
    bg_conf_free_agent(&a);

    assert_int_equal(load_agent_text(t, "set.yaml",
                                     ZK_AUTH "instance: {id: w, color: blue}\n"
                                             "http: {listen: \"127.0.0.1:9101\", "
                                             "max_connections_per_ip: 8, max_connections: 100, "
                                             "idle_timeout: 1500ms}\n",
                                     &a, &errs),
                     BG_OK);
    assert_int_equal(a.http.server.max_conns_per_ip, 8);
    assert_int_equal(a.http.server.max_conns, 100);
    assert_int_equal(a.http.server.idle_timeout_s, 2); /* rounded up */
    bg_conf_free_agent(&a);

    assert_int_equal(load_agent_text(t, "bad.yaml",
                                     ZK_AUTH "instance: {id: w, color: blue}\n"
                                             "http:\n  listen: \"127.0.0.1:9101\"\n"
                                             "  max_connections_per_ip: 0\n"
                                             "  max_connections: many\n  idle_timeout: 0s\n",
                                     &a, &errs),
                     BG_EINVAL);
    assert_int_equal(errs.n, 3);
    assert_non_null(strstr(errs.msgs[0], ":5:27: http.max_connections_per_ip: expected an "
                                         "integer between 1 and 65536, got \"0\""));
    assert_non_null(strstr(errs.msgs[1], ":6:20: http.max_connections: expected"));
    assert_non_null(strstr(errs.msgs[2], ":7:17: http.idle_timeout: expected a duration above 0"));
    bg_conf_errors_free(&errs);
    bg_conf_free_agent(&a);
}

#define FAKE_CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define FAKE_KEY "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

static void test_conf_tls(void **state)
{
    struct tmp *t = *state;
    const char *cert = tmp_file(t, "cert.pem", FAKE_CERT);
    const char *key = tmp_file(t, "key.pem", FAKE_KEY);
    const char *junk = tmp_file(t, "junk.pem", "not a certificate\n");
    struct bg_agent_conf a;
    struct bg_conf_errors errs = {0};
    char *text = bg_xasprintf(ZK_AUTH "instance: {id: w, color: blue}\n"
                                      "http:\n  listen: \"127.0.0.1:9101\"\n"
                                      "  tls: {cert: \"%s\", key: \"%s\"}\n",
                              cert, key);
    assert_int_equal(load_agent_text(t, "tls.yaml", text, &a, &errs), BG_OK);
    free(text);
    assert_string_equal(a.instance.endpoint, "https://127.0.0.1:9101");
    assert_string_equal(a.http.server.cert_pem, FAKE_CERT);
    assert_string_equal(a.http.server.key_pem, FAKE_KEY);
    bg_conf_free_agent(&a);

    /* An explicit http:// endpoint would make every call fail: refused. */
    text = bg_xasprintf(ZK_AUTH "instance: {id: w, color: blue, endpoint: \"http://h:9101\"}\n"
                                "http:\n  listen: \"127.0.0.1:9101\"\n"
                                "  tls: {cert: \"%s\", key: \"%s\"}\n",
                        cert, key);
    assert_int_equal(load_agent_text(t, "tls-http.yaml", text, &a, &errs), BG_EINVAL);
    free(text);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], ":2:42: instance.endpoint: expected an https:// URL "
                                         "because http.tls is set, got \"http://h:9101\""));
    bg_conf_errors_free(&errs);
    bg_conf_free_agent(&a);

    /* A missing key, a file that is not PEM, a file that cannot be read. */
    text = bg_xasprintf(ZK_AUTH "instance: {id: w, color: blue}\n"
                                "http:\n  listen: \"127.0.0.1:9101\"\n"
                                "  tls: {cert: \"%s\"}\n",
                        junk);
    assert_int_equal(load_agent_text(t, "tls-bad.yaml", text, &a, &errs), BG_EINVAL);
    free(text);
    assert_int_equal(errs.n, 2);
    assert_non_null(strstr(errs.msgs[0], ":5:8: http.tls: missing required key \"key\""));
    assert_non_null(strstr(errs.msgs[1], ":5:15: http.tls.cert: "));
    assert_non_null(strstr(errs.msgs[1], "junk.pem\" is not a PEM file, expected a certificate"));
    bg_conf_errors_free(&errs);
    bg_conf_free_agent(&a);

    text = bg_xasprintf(ZK_AUTH "instance: {id: w, color: blue}\n"
                                "http:\n  listen: \"127.0.0.1:9101\"\n"
                                "  tls: {cert: \"%s\", key: \"%s/nonexistent.pem\"}\n",
                        cert, t->dir);
    assert_int_equal(load_agent_text(t, "tls-missing.yaml", text, &a, &errs), BG_EINVAL);
    free(text);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "nonexistent.pem\": No such file or directory"));
    assert_non_null(strstr(errs.msgs[0], "http.tls.key: cannot read"));
    bg_conf_errors_free(&errs);
    bg_conf_free_agent(&a);

    /* ca_file: the controller's, checked at load; not an agent key. */
    text = bg_xasprintf(ZK_AUTH "http: {ca_file: \"%s\"}\n", cert);
    const char *c1 = tmp_file(t, "c1.yaml", text);
    free(text);
    struct bg_controller_conf c;
    load_controller_ok(c1, &c);
    assert_string_equal(c.http.ca_file, cert);
    bg_conf_free_controller(&c);
    text = bg_xasprintf(ZK_AUTH "http: {ca_file: \"%s\"}\n", junk);
    const char *c2 = tmp_file(t, "c2.yaml", text);
    free(text);
    assert_int_equal(bg_conf_load_controller(c2, &c, &errs), BG_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], ":2:17: http.ca_file: "));
    assert_non_null(strstr(errs.msgs[0], "is not a PEM file, expected a CA certificate"));
    bg_conf_errors_free(&errs);
    bg_conf_free_controller(&c);
    assert_int_equal(load_agent_text(t, "agent-ca.yaml",
                                     ZK_AUTH "instance: {id: w, color: blue}\n"
                                             "http: {listen: \"127.0.0.1:9101\", ca_file: x}\n",
                                     &a, &errs),
                     BG_EINVAL);
    assert_non_null(strstr(errs.msgs[0], "http.ca_file: unknown key"));
    bg_conf_errors_free(&errs);
    bg_conf_free_agent(&a);
}

#define TMP_TEST(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_agent_good),
        cmocka_unit_test(test_conf_agent_minimal_defaults),
        cmocka_unit_test(test_conf_agent_backend_defaults),
        cmocka_unit_test(test_conf_controller_good),
        cmocka_unit_test(test_conf_controller_minimal_defaults),
        cmocka_unit_test(test_conf_switch_unconfirmed_values),
        cmocka_unit_test(test_conf_missing_file),
        TMP_TEST(test_conf_directory_is_not_a_file),
        cmocka_unit_test(test_conf_syntax_error),
        TMP_TEST(test_conf_invalid_utf8),
        cmocka_unit_test(test_conf_top_level_not_mapping),
        cmocka_unit_test(test_conf_second_document),
        cmocka_unit_test(test_conf_unknown_keys),
        cmocka_unit_test(test_conf_wrong_types),
        cmocka_unit_test(test_conf_bad_durations),
        cmocka_unit_test(test_conf_bad_color),
        cmocka_unit_test(test_conf_missing_required_keys),
        cmocka_unit_test(test_conf_out_of_range),
        cmocka_unit_test(test_conf_not_integers),
        cmocka_unit_test(test_conf_duplicate_keys),
        cmocka_unit_test(test_conf_bad_zookeeper),
        cmocka_unit_test(test_conf_bad_listen),
        cmocka_unit_test(test_conf_listen_clash_and_second_health),
        cmocka_unit_test(test_conf_bad_instance),
        TMP_TEST(test_conf_instance_id_length),
        cmocka_unit_test(test_conf_wildcard_listen_needs_endpoint),
        cmocka_unit_test(test_conf_backend_requirements),
        cmocka_unit_test(test_conf_many_errors_all_reported),
        TMP_TEST(test_conf_token_file_trimmed),
        TMP_TEST(test_conf_token_file_missing),
        TMP_TEST(test_conf_token_file_empty),
        TMP_TEST(test_conf_token_file_not_one_word),
        TMP_TEST(test_conf_token_file_directory_or_too_large),
        TMP_TEST(test_conf_token_file_unreadable),
        cmocka_unit_test(test_conf_free_is_safe_on_zeroed_and_twice),
        TMP_TEST(test_conf_errors_accumulate_and_print),
        TMP_TEST(test_conf_yes_no_and_null_sections),
        cmocka_unit_test(test_conf_backend_type_names),
        cmocka_unit_test(test_conf_backend_table),
        cmocka_unit_test(test_conf_split_url),
        cmocka_unit_test(test_conf_check_http),
        cmocka_unit_test(test_conf_check_exec_defaults),
        cmocka_unit_test(test_conf_check_absent),
        cmocka_unit_test(test_conf_check_bad_values),
        cmocka_unit_test(test_conf_check_exactly_one_kind),
        TMP_TEST(test_conf_nonloopback_needs_token),
        TMP_TEST(test_conf_nonloopback_token_or_insecure),
        TMP_TEST(test_conf_zk_auth_warning),
        TMP_TEST(test_conf_http_limits),
        TMP_TEST(test_conf_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
