/* conf.c -- agent.yaml and controller.yaml: libyaml document walk, validation and defaults. */
#include "conf.h"

#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_CONF_BYTES (1024 * 1024)
#define MAX_TOKEN_BYTES 4096
#define MAX_NAME_LEN 128
/* Longest duration accepted anywhere: keeps every value well inside an int of milliseconds. */
#define MAX_DURATION_MS (24 * 60 * 60 * 1000)
#define SPACES " \t\r\n\f\v"

/* ------------------------------------------------------------------------------------------
 * Error collection
 * ------------------------------------------------------------------------------------------ */

struct msg {
    size_t line, col, seq; /* 1-based; seq keeps equal positions in the order found */
    char *text;
};

struct loader {
    const char *file; /* the path as given: every message starts with it */
    const char *buf;  /* the file's bytes, to place reader errors */
    yaml_document_t doc;
    bool have_doc;
    struct msg *msgs;
    size_t n_msgs;
    struct bg_conf_warning *warns;
    size_t n_warns;
};

static void add_msg(struct loader *l, size_t line, size_t col, char *text)
{
    l->msgs = bg_xrealloc(l->msgs, (l->n_msgs + 1) * sizeof(*l->msgs));
    l->msgs[l->n_msgs] = (struct msg){.line = line, .col = col, .seq = l->n_msgs, .text = text};
    l->n_msgs++;
}

static void fail(struct loader *l, yaml_mark_t m, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record "file:line:column: path: message" at a libyaml mark (0-based, hence the +1). */
static void fail(struct loader *l, yaml_mark_t m, const char *path, const char *fmt, ...)
{
    char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "level=fatal event=out_of_memory where=conf\n");
        abort();
    }
    size_t line = m.line + 1, col = m.column + 1;
    add_msg(l, line, col,
            bg_xasprintf("%s:%zu:%zu: %s%s%s", l->file, line, col, path, *path ? ": " : "", what));
    free(what);
}

static void warn(struct loader *l, yaml_mark_t m, const char *path, const char *event,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Record a warning "file:line:column: path: message", logged as event when the daemon runs. */
static void warn(struct loader *l, yaml_mark_t m, const char *path, const char *event,
                 const char *fmt, ...)
{
    char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "level=fatal event=out_of_memory where=conf\n");
        abort();
    }
    l->warns = bg_xrealloc(l->warns, (l->n_warns + 1) * sizeof(*l->warns));
    l->warns[l->n_warns++] = (struct bg_conf_warning){
        .event = bg_xstrdup(event),
        .msg = bg_xasprintf("%s:%zu:%zu: %s: %s", l->file, m.line + 1, m.column + 1, path, what)};
    free(what);
}

static int by_position(const void *a, const void *b)
{
    const struct msg *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void free_warnings(struct bg_conf_warning **w, size_t *n)
{
    for (size_t i = 0; *w != NULL && i < *n; i++) {
        free((*w)[i].event);
        free((*w)[i].msg);
    }
    free(*w);
    *w = NULL;
    *n = 0;
}

/* Hand the messages (and warnings) over to errs, sorted by position. Returns 0 or BG_EINVAL. */
static int finish(struct loader *l, struct bg_conf_errors *errs)
{
    if (errs != NULL && l->n_warns > 0) {
        errs->warns = bg_xrealloc(errs->warns, (errs->n_warns + l->n_warns) * sizeof(*errs->warns));
        memcpy(errs->warns + errs->n_warns, l->warns, l->n_warns * sizeof(*l->warns));
        errs->n_warns += l->n_warns;
        free(l->warns);
        l->warns = NULL;
        l->n_warns = 0;
    }
    free_warnings(&l->warns, &l->n_warns);
    if (l->n_msgs == 0)
        return BG_OK;
    qsort(l->msgs, l->n_msgs, sizeof(*l->msgs), by_position);
    if (errs == NULL) {
        for (size_t i = 0; i < l->n_msgs; i++)
            free(l->msgs[i].text);
        free(l->msgs);
        l->msgs = NULL;
        l->n_msgs = 0;
        return BG_EINVAL;
    }
    errs->msgs = bg_xrealloc(errs->msgs, (errs->n + l->n_msgs) * sizeof(*errs->msgs));
    for (size_t i = 0; i < l->n_msgs; i++)
        errs->msgs[errs->n++] = l->msgs[i].text;
    free(l->msgs);
    l->msgs = NULL;
    l->n_msgs = 0;
    return BG_EINVAL;
}

void bg_conf_errors_free(struct bg_conf_errors *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    e->msgs = NULL;
    e->n = 0;
    free_warnings(&e->warns, &e->n_warns);
}

void bg_conf_errors_print(const struct bg_conf_errors *e, FILE *f)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(f, "%s\n", e->msgs[i]);
}

void bg_conf_warnings_print(const struct bg_conf_errors *e, FILE *f)
{
    for (size_t i = 0; i < e->n_warns; i++) {
        /* "file:line:col: key: text" -> "file:line:col: warning: key: text" */
        const char *msg = e->warns[i].msg;
        const char *key = strstr(msg, ": ");
        if (key == NULL)
            fprintf(f, "warning: %s\n", msg);
        else
            fprintf(f, "%.*s: warning: %s\n", (int)(key - msg), msg, key + 2);
    }
}

void bg_conf_warnings_log(const struct bg_conf_errors *e)
{
    for (size_t i = 0; i < e->n_warns; i++) {
        /* The log quotes the reason: its own quotes become apostrophes, not '?'. */
        char *msg = bg_xstrdup(e->warns[i].msg), clean[600];
        for (char *p = msg; *p; p++) {
            if (*p == '"')
                *p = '\'';
        }
        bg_sanitize(msg, strlen(msg), clean, sizeof(clean));
        free(msg);
        bg_warn(e->warns[i].event, "reason=\"%s\"", clean);
    }
}

/* ------------------------------------------------------------------------------------------
 * Reading files and parsing YAML
 * ------------------------------------------------------------------------------------------ */

/* Read all of path into a NUL-terminated buffer. On failure returns NULL, with *err an errno
 * value and *opened telling whether the failure came after fopen (EFBIG: more than max). */
static char *slurp(const char *path, size_t max, size_t *len, int *err, bool *opened)
{
    *opened = false;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    *opened = true;
    char *buf = bg_xmalloc(max + 2);
    errno = 0;
    size_t n = fread(buf, 1, max + 1, f);
    *err = ferror(f) ? (errno ? errno : EIO) : n > max ? EFBIG : 0;
    fclose(f);
    if (*err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* libyaml's reader reports a byte offset only: turn it into a mark by counting lines. */
static yaml_mark_t offset_mark(const char *buf, size_t len, size_t offset)
{
    yaml_mark_t m = {.index = offset};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (buf[i] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

static void syntax_error(struct loader *l, const yaml_parser_t *p, size_t len)
{
    const char *problem = p->problem ? p->problem : "out of memory";
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        m = offset_mark(l->buf, len, p->problem_offset);
        if (p->problem_value >= 0) {
            fail(l, m, "", "invalid YAML: %s (0x%02X)", problem, (unsigned)p->problem_value);
            return;
        }
    }
    if (p->context)
        fail(l, m, "", "invalid YAML: %s (%s at line %zu, column %zu)", problem, p->context,
             p->context_mark.line + 1, p->context_mark.column + 1);
    else
        fail(l, m, "", "invalid YAML: %s", problem);
}

/* Parse the file into l->doc. Returns its root mapping, or NULL with the problem recorded. */
static yaml_node_t *parse_file(struct loader *l, const char *path)
{
    size_t len = 0;
    int err = 0;
    bool opened = false;
    yaml_node_t *root = NULL;
    char *buf = slurp(path, MAX_CONF_BYTES, &len, &err, &opened);
    if (buf == NULL) {
        add_msg(l, 0, 0,
                bg_xasprintf("%s: cannot %s: %s", path, opened ? "read" : "open", strerror(err)));
        return NULL;
    }
    l->buf = buf;

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "level=fatal event=out_of_memory where=yaml_parser_initialize\n");
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &l->doc)) {
        syntax_error(l, &parser, len);
        goto out;
    }
    l->have_doc = true;
    root = yaml_document_get_root_node(&l->doc);
    if (root == NULL) {
        fail(l, l->doc.start_mark, "",
             "expected a mapping at the top level, got an empty document");
        goto out;
    }

    /* A second document would be ignored silently: refuse it instead. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(l, &parser, len);
    } else {
        if (yaml_document_get_root_node(&extra) != NULL)
            fail(l, extra.start_mark, "",
                 "expected a single YAML document, found a second one (remove it or the '---')");
        yaml_document_delete(&extra);
    }

    if (root->type != YAML_MAPPING_NODE) {
        fail(l, root->start_mark, "", "expected a mapping at the top level, got %s",
             root->type == YAML_SEQUENCE_NODE ? "a sequence" : "a scalar");
        root = NULL;
    }
out:
    yaml_parser_delete(&parser);
    return root;
}

/* ------------------------------------------------------------------------------------------
 * Nodes and scalar values
 * ------------------------------------------------------------------------------------------ */

static const char *text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An unquoted empty value, ~ or null. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = text(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static bool is_quoted(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
           n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

/* What a node is, for "got ..." in messages. buf must hold at least 80 bytes. */
static const char *got(const yaml_node_t *n, char *buf, size_t len)
{
    char clean[72];
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return n->data.mapping.pairs.top == n->data.mapping.pairs.start ? "an empty mapping"
                                                                        : "a mapping";
    case YAML_SEQUENCE_NODE:
        return n->data.sequence.items.top == n->data.sequence.items.start ? "an empty sequence"
                                                                          : "a sequence";
    case YAML_SCALAR_NODE:
        if (is_null(n))
            return text(n)[0] == '\0' ? "an empty value" : "null";
        bg_sanitize(text(n), n->data.scalar.length, clean, sizeof(clean));
        snprintf(buf, len, "\"%s\"", clean);
        return buf;
    default:
        return "nothing";
    }
}

/* Record "path: expected <expected>, got <what n is>". Always returns false. */
static bool bad(struct loader *l, const yaml_node_t *n, const char *path, const char *expected)
{
    char buf[96];
    fail(l, n->start_mark, path, "expected %s, got %s", expected, got(n, buf, sizeof(buf)));
    return false;
}

/* A usable string scalar: not a collection, not null, no NUL byte inside. */
static bool is_string(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && !is_null(n) && strlen(text(n)) == n->data.scalar.length;
}

static void pathf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format a key path for messages; a path too long for buf is cut, which only shortens them. */
static void pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void join(char *buf, size_t len, const char *path, const char *key)
{
    pathf(buf, len, "%s%s%s", path, *path ? "." : "", key);
}

/* ------------------------------------------------------------------------------------------
 * Value checks (pure)
 * ------------------------------------------------------------------------------------------ */

static bool has_space_or_control(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

static bool nonempty_ok(const char *s)
{
    return s[0] != '\0';
}

static bool word_ok(const char *s)
{
    return s[0] != '\0' && !has_space_or_control(s);
}

static bool chars_ok(const char *s, const char *extra)
{
    size_t len = strlen(s);
    if (len == 0 || len > MAX_NAME_LEN)
        return false;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && strchr(extra, *p) == NULL)
            return false;
    }
    return true;
}

/* Instance and controller ids: also a znode name, hence no "." or "..". */
static bool id_ok(const char *s)
{
    return chars_ok(s, "._-") && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Application names and Eureka instance ids: they end up in Eureka URL paths. */
static bool name_ok(const char *s)
{
    return chars_ok(s, "._:-");
}

static bool all_digits(const char *s)
{
    return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* Stricter than bg_split_hostport: no white space, digits-only port 1..65535, IPv6 only in
 * brackets. host receives the address without brackets. */
static int check_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || has_space_or_control(s) || !all_digits(colon + 1))
        return BG_EINVAL;
    if (bg_split_hostport(s, host, hostlen, port) != BG_OK)
        return BG_EINVAL;
    if (*port < 1 || host[0] == '\0')
        return BG_EINVAL;
    if (s[0] != '[' && strchr(host, ':') != NULL)
        return BG_EINVAL;
    if (s[0] == '[' && colon[-1] != ']')
        return BG_EINVAL;
    return BG_OK;
}

static bool hostport_ok(const char *s)
{
    char host[256];
    int port;
    return check_hostport(s, host, sizeof(host), &port) == BG_OK;
}

/* Host and port of an http:// or https:// URL (port 80/443 when not written). */
static int split_url(const char *url, char *host, size_t hostlen, int *port)
{
    const char *p;
    int defport;
    if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        defport = 80;
    } else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        defport = 443;
    } else {
        return BG_EINVAL;
    }
    if (has_space_or_control(url))
        return BG_EINVAL;
    char auth[300];
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= sizeof(auth))
        return BG_EINVAL;
    memcpy(auth, p, n);
    auth[n] = '\0';
    if (strchr(auth, '@') != NULL)
        return BG_EINVAL;
    bool bracketed = auth[0] == '[';
    if ((bracketed && auth[n - 1] == ']') || (!bracketed && strchr(auth, ':') == NULL)) {
        size_t hl = bracketed ? n - 2 : n;
        if (hl == 0 || hl >= hostlen)
            return BG_EINVAL;
        memcpy(host, bracketed ? auth + 1 : auth, hl);
        host[hl] = '\0';
        *port = defport;
        return BG_OK;
    }
    return check_hostport(auth, host, hostlen, port);
}

static bool url_ok(const char *s)
{
    char host[256];
    int port;
    return split_url(s, host, sizeof(host), &port) == BG_OK;
}

/* A ZooKeeper connect string: host:port[,host:port...][/chroot]. */
static bool connect_ok(const char *s)
{
    if (s[0] == '\0' || has_space_or_control(s))
        return false;
    size_t hosts_len = strcspn(s, "/");
    char *hosts = bg_xstrndup(s, hosts_len);
    bool ok = hosts_len > 0 && hosts[0] != ',' && hosts[hosts_len - 1] != ',' &&
              strstr(hosts, ",,") == NULL;
    char *save = NULL;
    for (char *h = strtok_r(hosts, ",", &save); ok && h != NULL; h = strtok_r(NULL, ",", &save))
        ok = hostport_ok(h);
    free(hosts);
    return ok;
}

/* An absolute ZooKeeper path: "/" or "/a/b", no empty, "." or ".." component. */
static bool zkpath_ok(const char *s)
{
    if (s[0] != '/' || has_space_or_control(s))
        return false;
    if (s[1] == '\0')
        return true;
    const char *p = s;
    while (*p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
    }
    return true;
}

static bool auth_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    return colon != NULL && colon != s && !has_space_or_control(s);
}

static bool is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static void upcase(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

static char *lowered(const char *s)
{
    char *r = bg_xstrdup(s);
    for (char *p = r; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return r;
}

/* ------------------------------------------------------------------------------------------
 * Typed getters: each takes the value node (NULL: key absent, nothing to do), records what
 * was wrong, and stores only valid values. Return true when *out was set.
 * ------------------------------------------------------------------------------------------ */

#define EXPECT_HOSTPORT "\"host:port\" (IPv6 as \"[addr]:port\") with a port between 1 and 65535"
#define EXPECT_URL "an http:// or https:// URL such as \"http://10.0.0.5:9101\""
#define EXPECT_ID "1 to 128 characters from A-Z a-z 0-9 . _ - (not \".\" or \"..\")"
#define EXPECT_NAME "1 to 128 characters from A-Z a-z 0-9 . _ : -"
#define EXPECT_DURATION "(an integer followed by ms, s or m, e.g. 250ms, 2s, 1m)"

static bool get_str(struct loader *l, const yaml_node_t *n, const char *path, const char *expected,
                    bool (*ok)(const char *), char **out)
{
    if (n == NULL)
        return false;
    if (!is_string(n) || (ok != NULL && !ok(text(n))))
        return bad(l, n, path, expected);
    *out = bg_xstrdup(text(n));
    return true;
}

static bool parse_int(const char *s, long long *v)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (!all_digits(digits) || (digits[0] == '0' && digits[1] != '\0'))
        return false;
    errno = 0;
    *v = strtoll(s, NULL, 10);
    return errno == 0;
}

static bool get_int(struct loader *l, const yaml_node_t *n, const char *path, int min, int max,
                    int *out)
{
    if (n == NULL)
        return false;
    char expected[64];
    long long v = 0;
    bool number = n->type == YAML_SCALAR_NODE && parse_int(text(n), &v);
    if (max == INT_MAX && !(number && v > max))
        snprintf(expected, sizeof(expected), "an integer >= %d", min);
    else
        snprintf(expected, sizeof(expected), "an integer between %d and %d", min, max);
    if (number && is_quoted(n)) {
        fail(l, n->start_mark, path, "expected %s without quotes, got the string \"%s\"", expected,
             text(n));
        return false;
    }
    if (!number || v < min || v > max)
        return bad(l, n, path, expected);
    *out = (int)v;
    return true;
}

static bool get_bool(struct loader *l, const yaml_node_t *n, const char *path, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO"};
    if (n == NULL)
        return false;
    int v = -1;
    for (size_t i = 0; n->type == YAML_SCALAR_NODE && i < BG_ARRAY_LEN(yes); i++) {
        if (strcmp(text(n), yes[i]) == 0)
            v = 1;
        if (strcmp(text(n), no[i]) == 0)
            v = 0;
    }
    if (v >= 0 && is_quoted(n)) {
        fail(l, n->start_mark, path, "expected true or false without quotes, got the string \"%s\"",
             text(n));
        return false;
    }
    if (v < 0)
        return bad(l, n, path, "true or false");
    *out = v == 1;
    return true;
}

/* min_ms is 0 or 1: "0 disables" keys take 0, timeouts and intervals need more. */
static bool get_duration(struct loader *l, const yaml_node_t *n, const char *path, int64_t min_ms,
                         int64_t *out)
{
    if (n == NULL)
        return false;
    int64_t v = 0;
    if (!is_string(n) || bg_parse_duration(text(n), &v) != BG_OK)
        return bad(l, n, path,
                   min_ms > 0 ? "a duration above 0 " EXPECT_DURATION
                              : "a duration " EXPECT_DURATION);
    if (v < min_ms)
        return bad(l, n, path, "a duration above 0 " EXPECT_DURATION);
    if (v > MAX_DURATION_MS)
        return bad(l, n, path, "a duration of at most 1440m");
    *out = v;
    return true;
}

static bool get_color(struct loader *l, const yaml_node_t *n, const char *path, enum bg_color *out)
{
    if (n == NULL)
        return false;
    enum bg_color c = BG_COLOR_INVALID;
    if (is_string(n))
        c = bg_parse_color(text(n), n->data.scalar.length);
    if (c == BG_COLOR_INVALID)
        return bad(l, n, path, "blue or green");
    *out = c;
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Mappings
 * ------------------------------------------------------------------------------------------ */

struct slot {
    const char *key;
    bool off;              /* not allowed here (a key of another backend type) */
    yaml_node_t *key_node; /* where it was given */
    yaml_node_t *val;      /* NULL when absent */
};

static void allowed_list(const struct slot *s, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (s[i].off)
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", s[i].key);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}

/* Match the keys of mapping n against slots, recording unknown, duplicate and non-scalar keys.
 * A null value counts as an empty mapping. Returns false when n is absent or not a mapping. */
static bool scan_mapping(struct loader *l, yaml_node_t *n, const char *path, const char *kind,
                         struct slot *slots, size_t n_slots)
{
    if (n == NULL)
        return false;
    if (is_null(n))
        return true;
    if (n->type != YAML_MAPPING_NODE)
        return bad(l, n, path, "a mapping");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            bad(l, k, path, "a scalar key");
            continue;
        }
        struct slot *s = NULL;
        for (size_t i = 0; i < n_slots && s == NULL; i++) {
            if (!slots[i].off && strcmp(slots[i].key, text(k)) == 0)
                s = &slots[i];
        }
        char name[64], where[160];
        bg_sanitize(text(k), k->data.scalar.length, name, sizeof(name));
        join(where, sizeof(where), path, name);
        if (s == NULL) {
            char allowed[400];
            allowed_list(slots, n_slots, allowed, sizeof(allowed));
            fail(l, k->start_mark, where, "unknown key%s%s, expected one of: %s", *kind ? " " : "",
                 kind, allowed);
        } else if (s->val != NULL) {
            fail(l, k->start_mark, where, "duplicate key (first given at line %zu, column %zu)",
                 s->key_node->start_mark.line + 1, s->key_node->start_mark.column + 1);
        } else {
            s->key_node = k;
            s->val = v;
        }
    }
    return true;
}

/* kind: "" or e.g. "for type eureka". */
static void need(struct loader *l, const yaml_node_t *n, const char *path, const char *kind,
                 const struct slot *s)
{
    if (s->val == NULL)
        fail(l, n->start_mark, path, "missing required key \"%s\"%s%s", s->key, *kind ? " " : "",
             kind);
}

/* ------------------------------------------------------------------------------------------
 * Sections shared by both files
 * ------------------------------------------------------------------------------------------ */

enum { ZK_CONNECT, ZK_ROOT, ZK_SESSION, ZK_AUTH };

static void load_zk(struct loader *l, yaml_node_t *n, struct bg_zk_conf *zk)
{
    struct slot s[] = {
        {.key = "connect"}, {.key = "root"}, {.key = "session_timeout_ms"}, {.key = "auth"}};
    zk->session_timeout_ms = 4000;
    if (scan_mapping(l, n, "zookeeper", "", s, BG_ARRAY_LEN(s))) {
        need(l, n, "zookeeper", "", &s[ZK_CONNECT]);
        get_str(l, s[ZK_CONNECT].val, "zookeeper.connect", "\"host:port[,host:port...][/chroot]\"",
                connect_ok, &zk->connect);
        get_str(l, s[ZK_ROOT].val, "zookeeper.root",
                "an absolute ZooKeeper path such as \"/\" or \"/services/shop\"", zkpath_ok,
                &zk->root);
        get_int(l, s[ZK_SESSION].val, "zookeeper.session_timeout_ms", 1, INT_MAX,
                &zk->session_timeout_ms);
        get_str(l, s[ZK_AUTH].val, "zookeeper.auth", "\"user:password\" without white space",
                auth_ok, &zk->auth);
    }
    if (s[ZK_ROOT].val == NULL)
        zk->root = bg_xstrdup("/");
}

/* Read, trim and check the token file; the value node is only there for the messages. */
static void load_token(struct loader *l, const yaml_node_t *n, struct bg_http_conf *h)
{
    size_t len = 0;
    int err = 0;
    bool opened = false;
    char *buf = slurp(h->token_file, MAX_TOKEN_BYTES, &len, &err, &opened);
    if (buf == NULL) {
        fail(l, n->start_mark, "http.token_file", "cannot read \"%s\": %s", h->token_file,
             strerror(err));
        return;
    }
    bool nul = memchr(buf, '\0', len) != NULL;
    bg_trim(buf);
    if (buf[0] == '\0')
        fail(l, n->start_mark, "http.token_file", "\"%s\" is empty, expected a token",
             h->token_file);
    else if (nul || has_space_or_control(buf))
        fail(l, n->start_mark, "http.token_file",
             "\"%s\" must hold one token of printable characters without white space",
             h->token_file);
    else
        h->token = bg_xstrdup(buf);
    explicit_bzero(buf, len);
    free(buf);
}

/* Read a PEM file (certificate, key or CA bundle) named by the value node n into *pem (may be
 * NULL: only checked). what is "certificate", "private key" or "CA certificate". */
static void load_pem(struct loader *l, const yaml_node_t *n, const char *path, const char *file,
                     const char *what, char **pem)
{
    size_t len = 0;
    int err = 0;
    bool opened = false;
    char *buf = slurp(file, MAX_CONF_BYTES, &len, &err, &opened);
    if (buf == NULL) {
        fail(l, n->start_mark, path, "cannot read \"%s\": %s", file, strerror(err));
        return;
    }
    if (memchr(buf, '\0', len) != NULL || strstr(buf, "-----BEGIN ") == NULL)
        fail(l, n->start_mark, path, "\"%s\" is not a PEM file, expected a %s (-----BEGIN ...)",
             file, what);
    else if (pem != NULL)
        *pem = bg_xstrdup(buf);
    explicit_bzero(buf, len);
    free(buf);
}

/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or "localhost": only this host can connect. */
static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) != 1)
        return false; /* a host name: it may resolve anywhere */
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

enum { TLS_CERT, TLS_KEY };

static void load_tls(struct loader *l, yaml_node_t *n, struct bg_http_conf *h)
{
    struct slot s[] = {{.key = "cert"}, {.key = "key"}};
    if (!scan_mapping(l, n, "http.tls", "", s, BG_ARRAY_LEN(s)) || is_null(n))
        return;
    need(l, n, "http.tls", "", &s[TLS_CERT]);
    need(l, n, "http.tls", "", &s[TLS_KEY]);
    if (!bg_httpd_tls_supported()) {
        fail(l, n->start_mark, "http.tls",
             "this libmicrohttpd was built without TLS (GnuTLS): cannot serve HTTPS");
        return;
    }
    if (get_str(l, s[TLS_CERT].val, "http.tls.cert", "a file name", nonempty_ok, &h->tls_cert))
        load_pem(l, s[TLS_CERT].val, "http.tls.cert", h->tls_cert, "certificate", &h->tls_cert_pem);
    if (get_str(l, s[TLS_KEY].val, "http.tls.key", "a file name", nonempty_ok, &h->tls_key))
        load_pem(l, s[TLS_KEY].val, "http.tls.key", h->tls_key, "private key", &h->tls_key_pem);
    if (h->tls_cert_pem == NULL || h->tls_key_pem == NULL) {
        bg_free(&h->tls_cert_pem);
        bg_free(&h->tls_key_pem);
    }
}

enum {
    HTTP_LISTEN,
    HTTP_TOKEN_FILE,
    HTTP_INSECURE,
    HTTP_TLS,
    HTTP_PER_IP,
    HTTP_MAX_CONNS,
    HTTP_IDLE,
    HTTP_CA_FILE
};

/* controller: the controller's section, which may omit listen and takes ca_file. */
static void load_http(struct loader *l, yaml_node_t *n, bool controller, struct bg_http_conf *h)
{
    struct slot s[] = {{.key = "listen"},
                       {.key = "token_file"},
                       {.key = "insecure"},
                       {.key = "tls"},
                       {.key = "max_connections_per_ip"},
                       {.key = "max_connections"},
                       {.key = "idle_timeout"},
                       {.key = "ca_file", .off = !controller}};
    h->max_connections_per_ip = BG_HTTP_MAX_CONNS_PER_IP;
    h->max_connections = BG_HTTP_MAX_CONNS;
    h->idle_timeout_ms = BG_HTTP_IDLE_TIMEOUT_MS;
    if (!scan_mapping(l, n, "http", "", s, BG_ARRAY_LEN(s)))
        return;
    if (!controller)
        need(l, n, "http", "", &s[HTTP_LISTEN]);
    get_str(l, s[HTTP_LISTEN].val, "http.listen", EXPECT_HOSTPORT, hostport_ok, &h->listen);
    if (get_str(l, s[HTTP_TOKEN_FILE].val, "http.token_file", "a file name", nonempty_ok,
                &h->token_file))
        load_token(l, s[HTTP_TOKEN_FILE].val, h);
    get_bool(l, s[HTTP_INSECURE].val, "http.insecure", &h->insecure);
    if (s[HTTP_TLS].val != NULL)
        load_tls(l, s[HTTP_TLS].val, h);
    get_int(l, s[HTTP_PER_IP].val, "http.max_connections_per_ip", 1, 65536,
            &h->max_connections_per_ip);
    get_int(l, s[HTTP_MAX_CONNS].val, "http.max_connections", 1, 65536, &h->max_connections);
    get_duration(l, s[HTTP_IDLE].val, "http.idle_timeout", 1, &h->idle_timeout_ms);
    if (get_str(l, s[HTTP_CA_FILE].val, "http.ca_file", "a file name", nonempty_ok, &h->ca_file))
        load_pem(l, s[HTTP_CA_FILE].val, "http.ca_file", h->ca_file, "CA certificate", NULL);

    /* Secure by default (DESIGN §14): whoever reaches a non-loopback API without a token can
     * take the instance out of service, or, on the controller, read it all. */
    char host[256];
    int port;
    if (h->listen != NULL && check_hostport(h->listen, host, sizeof(host), &port) == BG_OK &&
        !is_loopback(host) && s[HTTP_TOKEN_FILE].val == NULL) {
        if (!h->insecure)
            fail(l, s[HTTP_LISTEN].val->start_mark, "http.listen",
                 "\"%s\" is not a loopback address and http.token_file is not set: anyone who "
                 "reaches it could %s; set http.token_file (or http.insecure: true to accept that)",
                 h->listen,
                 controller ? "read its status and metrics" : "change this instance's status");
        else
            warn(l, s[HTTP_INSECURE].val->start_mark, "http.insecure", "http_insecure",
                 "true: the API on \"%s\" takes requests from anyone who reaches it, without a "
                 "token",
                 h->listen);
    }
    h->server =
        (struct bg_httpd_opts){.listen = h->listen,
                               .cert_pem = h->tls_cert_pem,
                               .key_pem = h->tls_key_pem,
                               .max_conns_per_ip = (unsigned)h->max_connections_per_ip,
                               .max_conns = (unsigned)h->max_connections,
                               .idle_timeout_s = (unsigned)((h->idle_timeout_ms + 999) / 1000)};
}

/* Digest credentials are the only thing that keeps strangers from writing under the root. */
static void warn_zk_auth(struct loader *l, const yaml_node_t *n, const struct bg_zk_conf *zk)
{
    if (n == NULL || zk->auth != NULL)
        return;
    warn(l, n->start_mark, "zookeeper.auth", "zookeeper_auth_unset",
         "not set: the nodes are open to everyone, so anyone who can write to ZooKeeper can "
         "register an endpoint and receive the token with the controller's calls; set "
         "\"user:password\" digest credentials");
}

/* ------------------------------------------------------------------------------------------
 * agent.yaml
 * ------------------------------------------------------------------------------------------ */

enum { IN_ID, IN_COLOR, IN_ENDPOINT, IN_APP, IN_VERSION, IN_ADDRESS };

/* The endpoint defaults to http.listen (when valid), https:// with http.tls. */
static void load_instance(struct loader *l, yaml_node_t *n, const struct bg_http_conf *http,
                          struct bg_instance_conf *in)
{
    const char *listen = http->listen;
    bool tls = http->tls_cert != NULL;
    struct slot s[] = {{.key = "id"},  {.key = "color"},   {.key = "endpoint"},
                       {.key = "app"}, {.key = "version"}, {.key = "address"}};
    in->color = BG_COLOR_INVALID;
    bool mapping = scan_mapping(l, n, "instance", "", s, BG_ARRAY_LEN(s));
    if (mapping) {
        need(l, n, "instance", "", &s[IN_ID]);
        need(l, n, "instance", "", &s[IN_COLOR]);
        get_str(l, s[IN_ID].val, "instance.id", EXPECT_ID, id_ok, &in->id);
        get_color(l, s[IN_COLOR].val, "instance.color", &in->color);
        if (get_str(l, s[IN_ENDPOINT].val, "instance.endpoint", EXPECT_URL, url_ok,
                    &in->endpoint) &&
            tls && strncmp(in->endpoint, "https://", 8) != 0)
            fail(l, s[IN_ENDPOINT].val->start_mark, "instance.endpoint",
                 "expected an https:// URL because http.tls is set, got \"%s\"", in->endpoint);
        get_str(l, s[IN_APP].val, "instance.app", EXPECT_NAME, name_ok, &in->app);
        get_str(l, s[IN_VERSION].val, "instance.version", "a string", NULL, &in->version);
        get_str(l, s[IN_ADDRESS].val, "instance.address", EXPECT_HOSTPORT, hostport_ok,
                &in->address);
    }
    if (s[IN_APP].val == NULL)
        in->app = bg_xstrdup("APP");
    if (s[IN_VERSION].val == NULL)
        in->version = bg_xstrdup("");
    if (!mapping || s[IN_ENDPOINT].val != NULL || listen == NULL)
        return;
    char host[256];
    int port;
    if (check_hostport(listen, host, sizeof(host), &port) == BG_OK && is_wildcard(host)) {
        fail(l, n->start_mark, "instance",
             "missing key \"endpoint\", required because http.listen \"%s\" is a wildcard "
             "address (give the URL the controller should call)",
             listen);
        return;
    }
    in->endpoint = bg_xasprintf("%s://%s", tls ? "https" : "http", listen);
}

enum {
    B_TYPE,
    B_CONFIRM,
    B_POLL,
    B_URLS,
    B_APP,
    B_INSTANCE_ID,
    B_REGISTER,
    B_RENEW,
    B_DURATION,
    B_HOST_NAME,
    B_IP_ADDR,
    B_VIP,
    B_PORT,
    B_TIMEOUT,
    B_LISTEN,
    B_COMMAND,
    B_CONFIRM_POLLS,
    B_OOS_CODE,
    B_COUNT
};

static const char *const backend_keys[B_COUNT] = {
    "type",          "confirm_timeout",
    "poll_window",   "urls",
    "app",           "instance_id",
    "register",      "renew_interval",
    "duration",      "host_name",
    "ip_addr",       "vip_address",
    "port",          "timeout",
    "listen",        "command",
    "confirm_polls", "out_of_service_code",
};

/* Which keys each type takes, in the order they are listed in messages. */
static const int type_keys[][B_COUNT + 1] = {
    [BG_BACKEND_HEALTH] = {B_TYPE, B_CONFIRM, B_POLL, B_CONFIRM_POLLS, B_OOS_CODE, -1},
    [BG_BACKEND_EUREKA] = {B_TYPE, B_URLS, B_APP, B_INSTANCE_ID, B_REGISTER, B_RENEW, B_DURATION,
                           B_HOST_NAME, B_IP_ADDR, B_VIP, B_PORT, B_TIMEOUT, -1},
    [BG_BACKEND_HAPROXY_AGENT] = {B_TYPE, B_LISTEN, B_CONFIRM, B_POLL, B_CONFIRM_POLLS, -1},
    [BG_BACKEND_EXEC] = {B_TYPE, B_COMMAND, B_TIMEOUT, -1},
};

const char *bg_backend_type_name(enum bg_backend_type t)
{
    switch (t) {
    case BG_BACKEND_HEALTH:
        return "health";
    case BG_BACKEND_EUREKA:
        return "eureka";
    case BG_BACKEND_HAPROXY_AGENT:
        return "haproxy-agent";
    case BG_BACKEND_EXEC:
        return "exec";
    }
    return "unknown";
}

/* The type of a backend entry, or -1 with the problem recorded. */
static int backend_type(struct loader *l, yaml_node_t *n, const char *path)
{
    const yaml_node_t *v = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        if (v == NULL && k->type == YAML_SCALAR_NODE && strcmp(text(k), "type") == 0)
            v = yaml_document_get_node(&l->doc, p->value);
    }
    char where[64];
    join(where, sizeof(where), path, "type");
    if (v == NULL) {
        fail(l, n->start_mark, path,
             "missing required key \"type\" (one of health, eureka, haproxy-agent, exec)");
        return -1;
    }
    for (int t = BG_BACKEND_HEALTH; t <= BG_BACKEND_EXEC; t++) {
        if (is_string(v) && strcmp(text(v), bg_backend_type_name((enum bg_backend_type)t)) == 0)
            return t;
    }
    bad(l, v, where, "one of health, eureka, haproxy-agent, exec");
    return -1;
}

static void load_urls(struct loader *l, const yaml_node_t *n, const char *path,
                      struct bg_backend_conf *b)
{
    if (n->type == YAML_SCALAR_NODE) {
        b->urls = bg_xcalloc(1, sizeof(char *));
        if (get_str(l, n, path, EXPECT_URL, url_ok, &b->urls[0]))
            b->n_urls = 1;
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        bad(l, n, path, "a sequence of URLs");
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        fail(l, n->start_mark, path, "expected at least one URL, got an empty sequence");
        return;
    }
    b->urls = bg_xcalloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]);
        char where[80];
        pathf(where, sizeof(where), "%s[%zu]", path, i);
        char *u = NULL;
        if (!get_str(l, item, where, EXPECT_URL, url_ok, &u))
            continue;
        /* Paths are appended to the base URL: drop trailing slashes so they join cleanly. */
        for (size_t len = strlen(u); len > 0 && u[len - 1] == '/'; len--)
            u[len - 1] = '\0';
        b->urls[b->n_urls++] = u;
    }
}

static void add_arg(char ***argv, size_t *argc, char *arg)
{
    *argv = bg_xrealloc(*argv, (*argc + 2) * sizeof(char *));
    (*argv)[(*argc)++] = arg;
    (*argv)[*argc] = NULL;
}

/* A command line: a string split on white space, or a sequence of strings. */
static void load_command(struct loader *l, const yaml_node_t *n, const char *path, char ***argv,
                         size_t *argc)
{
    static const char expected[] = "a command line (a string or a sequence of strings)";
    if (n->type == YAML_SCALAR_NODE) {
        if (!is_string(n) || text(n)[strspn(text(n), SPACES)] == '\0') {
            bad(l, n, path, expected);
            return;
        }
        for (const char *p = text(n) + strspn(text(n), SPACES); *p != '\0';) {
            size_t len = strcspn(p, SPACES);
            add_arg(argv, argc, bg_xstrndup(p, len));
            p += len;
            p += strspn(p, SPACES);
        }
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        bad(l, n, path, expected);
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        bad(l, n, path, expected);
        return;
    }
    bool ok = true;
    char **args = bg_xcalloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]);
        char where[80];
        pathf(where, sizeof(where), "%s[%zu]", path, i);
        /* Arguments may be empty strings; the program name may not. */
        if (!get_str(l, item, where, i == 0 ? "a program name" : "a string",
                     i == 0 ? nonempty_ok : NULL, &args[i]))
            ok = false;
    }
    for (size_t i = 0; i < count; i++) {
        if (ok)
            add_arg(argv, argc, args[i]);
        else
            free(args[i]);
    }
    free(args);
}

static void backend_defaults(struct bg_backend_conf *b)
{
    /* 0: each wait is derived from the balancer's observed poll interval (agent/confirm.c). */
    b->confirm_timeout_ms = 0;
    b->poll_window_ms = 5000;
    /* /health: max(rise 2, fall 3) of HAProxy's defaults; agent-check words act at once. */
    b->confirm_polls = b->type == BG_BACKEND_HAPROXY_AGENT ? 1 : 3;
    /* health: GET /health while OUT_OF_SERVICE; 404 is opt-in (HAProxy's disable-on-404). */
    b->out_of_service_code = 503;
    b->renew_interval_ms = 30000;
    b->duration_ms = 90000;
    b->timeout_ms = b->type == BG_BACKEND_EXEC ? 10000 : 2000;
}

/* Eureka values that default from the instance section (only where that one is valid). */
static void eureka_defaults(const struct slot *s, const struct bg_instance_conf *in,
                            struct bg_backend_conf *b)
{
    if (s[B_APP].val == NULL && in->app != NULL)
        b->app = bg_xstrdup(in->app);
    if (b->app != NULL)
        upcase(b->app);
    if (s[B_INSTANCE_ID].val == NULL && in->id != NULL)
        b->instance_id = bg_xstrdup(in->id);
    if (s[B_VIP].val == NULL && b->app != NULL)
        b->vip_address = lowered(b->app);
    char host[256];
    int port;
    if (in->endpoint == NULL || split_url(in->endpoint, host, sizeof(host), &port) != BG_OK)
        return;
    if (s[B_HOST_NAME].val == NULL)
        b->host_name = bg_xstrdup(host);
    if (s[B_IP_ADDR].val == NULL)
        b->ip_addr = bg_xstrdup(host);
    if (s[B_PORT].val == NULL)
        b->port = port;
}

/* health.out_of_service_code: 503 (the default: the balancer's fall takes the server out) or
 * 404 (HAProxy's "http-check disable-on-404" puts it in NOLB at once). Nothing else: another
 * code would only look like a failure to every balancer. */
static void get_oos_code(struct loader *l, const yaml_node_t *n, const char *path, int *out)
{
    static const char expected[] =
        "503 (the default) or 404 (for HAProxy's http-check disable-on-404)";
    if (n == NULL)
        return;
    long long v = 0;
    bool number = n->type == YAML_SCALAR_NODE && parse_int(text(n), &v);
    if (number && is_quoted(n)) {
        fail(l, n->start_mark, path, "expected %s without quotes, got the string \"%s\"", expected,
             text(n));
        return;
    }
    if (!number || (v != 404 && v != 503)) {
        bad(l, n, path, expected);
        return;
    }
    *out = (int)v;
}

/* Returns false when the entry has no valid type (nothing else of it was checked). */
static bool load_backend(struct loader *l, yaml_node_t *n, const char *path,
                         const struct bg_instance_conf *in, struct bg_backend_conf *b)
{
    b->line = (int)n->start_mark.line + 1;
    if (n->type != YAML_MAPPING_NODE)
        return bad(l, n, path, "a mapping with a \"type\" key");
    int t = backend_type(l, n, path);
    if (t < 0)
        return false;
    b->type = (enum bg_backend_type)t;
    backend_defaults(b);

    struct slot s[B_COUNT];
    for (int i = 0; i < B_COUNT; i++)
        s[i] = (struct slot){.key = backend_keys[i], .off = true};
    /* Listing order in messages follows type_keys, so build the slots in that order. */
    struct slot ordered[B_COUNT];
    int idx[B_COUNT], n_keys = 0;
    for (const int *k = type_keys[t]; *k >= 0; k++) {
        idx[n_keys] = *k;
        ordered[n_keys] = (struct slot){.key = backend_keys[*k]};
        n_keys++;
    }
    char kind[64];
    snprintf(kind, sizeof(kind), "for type %s", bg_backend_type_name(b->type));
    scan_mapping(l, n, path, kind, ordered, (size_t)n_keys);
    for (int i = 0; i < n_keys; i++)
        s[idx[i]] = ordered[i];

    char w[B_COUNT][80];
    for (int i = 0; i < B_COUNT; i++)
        join(w[i], sizeof(w[i]), path, backend_keys[i]);
    get_duration(l, s[B_CONFIRM].val, w[B_CONFIRM], 0, &b->confirm_timeout_ms);
    get_duration(l, s[B_POLL].val, w[B_POLL], 0, &b->poll_window_ms);
    get_duration(l, s[B_TIMEOUT].val, w[B_TIMEOUT], 1, &b->timeout_ms);
    get_int(l, s[B_CONFIRM_POLLS].val, w[B_CONFIRM_POLLS], 1, 100, &b->confirm_polls);
    switch (b->type) {
    case BG_BACKEND_HEALTH:
        get_oos_code(l, s[B_OOS_CODE].val, w[B_OOS_CODE], &b->out_of_service_code);
        break;
    case BG_BACKEND_EUREKA:
        need(l, n, path, kind, &s[B_URLS]);
        if (s[B_URLS].val != NULL)
            load_urls(l, s[B_URLS].val, w[B_URLS], b);
        get_str(l, s[B_APP].val, w[B_APP], EXPECT_NAME, name_ok, &b->app);
        get_str(l, s[B_INSTANCE_ID].val, w[B_INSTANCE_ID], EXPECT_NAME, name_ok, &b->instance_id);
        get_bool(l, s[B_REGISTER].val, w[B_REGISTER], &b->reg);
        get_duration(l, s[B_RENEW].val, w[B_RENEW], 1, &b->renew_interval_ms);
        get_duration(l, s[B_DURATION].val, w[B_DURATION], 1, &b->duration_ms);
        get_str(l, s[B_HOST_NAME].val, w[B_HOST_NAME], "a host name without white space", word_ok,
                &b->host_name);
        get_str(l, s[B_IP_ADDR].val, w[B_IP_ADDR], "an address without white space", word_ok,
                &b->ip_addr);
        get_str(l, s[B_VIP].val, w[B_VIP], "a VIP address without white space", word_ok,
                &b->vip_address);
        get_int(l, s[B_PORT].val, w[B_PORT], 1, 65535, &b->port);
        eureka_defaults(s, in, b);
        if (b->duration_ms <= b->renew_interval_ms)
            fail(l, (s[B_DURATION].val ? s[B_DURATION].val : n)->start_mark, w[B_DURATION],
                 "expected a lease duration longer than renew_interval (%lld ms), got %lld ms",
                 (long long)b->renew_interval_ms, (long long)b->duration_ms);
        break;
    case BG_BACKEND_HAPROXY_AGENT:
        need(l, n, path, kind, &s[B_LISTEN]);
        get_str(l, s[B_LISTEN].val, w[B_LISTEN], EXPECT_HOSTPORT, hostport_ok, &b->listen);
        break;
    case BG_BACKEND_EXEC:
        need(l, n, path, kind, &s[B_COMMAND]);
        if (s[B_COMMAND].val != NULL)
            load_command(l, s[B_COMMAND].val, w[B_COMMAND], &b->argv, &b->argc);
        break;
    }
    return true;
}

/* Two listeners on one port clash when their hosts are equal or either is a wildcard. */
static bool same_listener(const char *a, const char *b)
{
    char ha[256], hb[256];
    int pa, pb;
    if (check_hostport(a, ha, sizeof(ha), &pa) != BG_OK ||
        check_hostport(b, hb, sizeof(hb), &pb) != BG_OK)
        return false;
    return pa == pb && (strcmp(ha, hb) == 0 || is_wildcard(ha) || is_wildcard(hb));
}

/* Clashing listen addresses and a second health entry: both could only fail at run time. */
static void check_backends(struct loader *l, yaml_node_t *seq, const bool *typed,
                           struct bg_agent_conf *c)
{
    int first_health = -1;
    for (size_t i = 0; i < c->n_backends; i++) {
        struct bg_backend_conf *b = &c->backends[i];
        yaml_node_t *n = yaml_document_get_node(&l->doc, seq->data.sequence.items.start[i]);
        char path[64];
        pathf(path, sizeof(path), "backends[%zu]", i);
        if (typed[i] && b->type == BG_BACKEND_HEALTH) {
            if (first_health >= 0)
                fail(l, n->start_mark, path, "a second health backend (the first is backends[%d])",
                     first_health);
            else
                first_health = (int)i;
        }
        if (b->listen == NULL)
            continue;
        const char *clash = NULL;
        char other[64];
        if (c->http.listen != NULL && same_listener(b->listen, c->http.listen))
            clash = "http.listen";
        for (size_t j = 0; j < i && clash == NULL; j++) {
            if (c->backends[j].listen != NULL && same_listener(b->listen, c->backends[j].listen)) {
                pathf(other, sizeof(other), "backends[%zu].listen", j);
                clash = other;
            }
        }
        if (clash != NULL)
            fail(l, n->start_mark, path, "listen \"%s\" clashes with %s", b->listen, clash);
    }
}

static void load_backends(struct loader *l, yaml_node_t *n, struct bg_agent_conf *c)
{
    if (n == NULL || is_null(n))
        return;
    if (n->type != YAML_SEQUENCE_NODE) {
        bad(l, n, "backends", "a sequence of backend mappings");
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    c->backends = bg_xcalloc(count, sizeof(*c->backends));
    c->n_backends = count;
    bool *typed = bg_xcalloc(count, sizeof(bool));
    for (size_t i = 0; i < count; i++) {
        char path[64];
        pathf(path, sizeof(path), "backends[%zu]", i);
        typed[i] = load_backend(l, yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]),
                                path, &c->instance, &c->backends[i]);
    }
    check_backends(l, n, typed, c);
    free(typed);
}

enum { CK_HTTP, CK_TCP, CK_EXEC, CK_INTERVAL, CK_TIMEOUT, CK_RISE, CK_FALL };

const char *bg_check_type_name(enum bg_check_type t)
{
    switch (t) {
    case BG_CHECK_HTTP:
        return "http";
    case BG_CHECK_TCP:
        return "tcp";
    case BG_CHECK_EXEC:
        return "exec";
    case BG_CHECK_NONE:
        break;
    }
    return "none";
}

/* check: exactly one of http, tcp, exec, and the timing. Absent: BG_CHECK_NONE. */
static void load_check(struct loader *l, yaml_node_t *n, struct bg_check_conf *ck)
{
    struct slot s[] = {{.key = "http"},    {.key = "tcp"},  {.key = "exec"}, {.key = "interval"},
                       {.key = "timeout"}, {.key = "rise"}, {.key = "fall"}};
    *ck = (struct bg_check_conf){
        .type = BG_CHECK_NONE, .interval_ms = 1000, .timeout_ms = 1000, .rise = 2, .fall = 3};
    if (n == NULL)
        return;
    ck->line = (int)n->start_mark.line + 1;
    if (!scan_mapping(l, n, "check", "", s, BG_ARRAY_LEN(s)))
        return;
    int given = (s[CK_HTTP].val != NULL) + (s[CK_TCP].val != NULL) + (s[CK_EXEC].val != NULL);
    if (given == 0) {
        fail(l, n->start_mark, "check",
             "expected exactly one of \"http\", \"tcp\", \"exec\", got none");
    } else if (given > 1) {
        /* Point at the second one given: that is where the mapping went wrong. */
        const yaml_node_t *second = NULL, *first = NULL;
        for (int i = CK_HTTP; i <= CK_EXEC; i++) {
            const yaml_node_t *k = s[i].key_node;
            if (k == NULL)
                continue;
            if (first == NULL || k->start_mark.index < first->start_mark.index) {
                second = first;
                first = k;
            } else if (second == NULL || k->start_mark.index < second->start_mark.index) {
                second = k;
            }
        }
        char where[64];
        join(where, sizeof(where), "check", text(second));
        fail(l, second->start_mark, where,
             "expected exactly one of \"http\", \"tcp\", \"exec\" in the check mapping, "
             "but \"%s\" is given too",
             text(first));
    }
    if (get_str(l, s[CK_HTTP].val, "check.http",
                "an http:// or https:// URL such as \"http://127.0.0.1:8080/health\"", url_ok,
                &ck->http))
        ck->type = BG_CHECK_HTTP;
    if (get_str(l, s[CK_TCP].val, "check.tcp", EXPECT_HOSTPORT, hostport_ok, &ck->tcp))
        ck->type = BG_CHECK_TCP;
    if (s[CK_EXEC].val != NULL) {
        load_command(l, s[CK_EXEC].val, "check.exec", &ck->argv, &ck->argc);
        if (ck->argc > 0)
            ck->type = BG_CHECK_EXEC;
    }
    get_duration(l, s[CK_INTERVAL].val, "check.interval", 1, &ck->interval_ms);
    get_duration(l, s[CK_TIMEOUT].val, "check.timeout", 1, &ck->timeout_ms);
    get_int(l, s[CK_RISE].val, "check.rise", 1, 1000, &ck->rise);
    get_int(l, s[CK_FALL].val, "check.fall", 1, 1000, &ck->fall);
    if (given != 1)
        ck->type = BG_CHECK_NONE;
}

enum { A_ZK, A_INSTANCE, A_HTTP, A_BACKENDS, A_CHECK };

int bg_conf_load_agent(const char *path, struct bg_agent_conf *out, struct bg_conf_errors *errs)
{
    struct loader l = {.file = path};
    memset(out, 0, sizeof(*out));
    out->path = bg_xstrdup(path);
    out->instance.color = BG_COLOR_INVALID;
    yaml_node_t *root = parse_file(&l, path);
    if (root != NULL) {
        struct slot s[] = {{.key = "zookeeper"},
                           {.key = "instance"},
                           {.key = "http"},
                           {.key = "backends"},
                           {.key = "check"}};
        scan_mapping(&l, root, "", "", s, BG_ARRAY_LEN(s));
        need(&l, root, "", "", &s[A_ZK]);
        need(&l, root, "", "", &s[A_INSTANCE]);
        need(&l, root, "", "", &s[A_HTTP]);
        load_zk(&l, s[A_ZK].val, &out->zk);
        warn_zk_auth(&l, s[A_ZK].val, &out->zk);
        load_http(&l, s[A_HTTP].val, false, &out->http);
        load_instance(&l, s[A_INSTANCE].val, &out->http, &out->instance);
        load_backends(&l, s[A_BACKENDS].val, out);
        load_check(&l, s[A_CHECK].val, &out->check);
    }
    if (l.have_doc)
        yaml_document_delete(&l.doc);
    free((char *)l.buf);
    int rc = finish(&l, errs);
    if (rc != BG_OK)
        bg_conf_free_agent(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * controller.yaml
 * ------------------------------------------------------------------------------------------ */

enum {
    SW_BATCH,
    SW_MIN_READY,
    SW_SETTLE,
    SW_CALL_TIMEOUT,
    SW_RETRIES,
    SW_RESYNC,
    SW_BACKOFF,
    SW_MIN_HEALTHY_TIME,
    SW_UNCONFIRMED,
    SW_UNCONFIRMED_TIMEOUT
};

/* switch.unconfirmed: hold (default) or proceed. */
static void get_unconfirmed(struct loader *l, const yaml_node_t *n, bool *proceed)
{
    if (n == NULL)
        return;
    if (is_string(n) && strcmp(text(n), "hold") == 0)
        *proceed = false;
    else if (is_string(n) && strcmp(text(n), "proceed") == 0)
        *proceed = true;
    else
        bad(l, n, "switch.unconfirmed", "hold or proceed");
}

static void load_switch(struct loader *l, yaml_node_t *n, struct bg_switch_conf *sw)
{
    struct slot s[] = {{.key = "batch_size"},  {.key = "min_ready"},
                       {.key = "settle"},      {.key = "call_timeout"},
                       {.key = "retries"},     {.key = "resync"},
                       {.key = "backoff"},     {.key = "min_healthy_time"},
                       {.key = "unconfirmed"}, {.key = "unconfirmed_timeout"}};
    *sw = (struct bg_switch_conf){.batch_size = 0,
                                  .min_ready = 1,
                                  .settle_ms = 0,
                                  .call_timeout_ms = 2000,
                                  .retries = 3,
                                  .resync_ms = 30000,
                                  .backoff_ms = 100,
                                  .unconfirmed_timeout_ms = 60000};
    if (!scan_mapping(l, n, "switch", "", s, BG_ARRAY_LEN(s)))
        return;
    get_int(l, s[SW_BATCH].val, "switch.batch_size", 1, INT_MAX, &sw->batch_size);
    get_int(l, s[SW_MIN_READY].val, "switch.min_ready", 0, INT_MAX, &sw->min_ready);
    get_duration(l, s[SW_SETTLE].val, "switch.settle", 0, &sw->settle_ms);
    get_duration(l, s[SW_CALL_TIMEOUT].val, "switch.call_timeout", 1, &sw->call_timeout_ms);
    get_int(l, s[SW_RETRIES].val, "switch.retries", 0, INT_MAX, &sw->retries);
    get_duration(l, s[SW_RESYNC].val, "switch.resync", 0, &sw->resync_ms);
    get_duration(l, s[SW_BACKOFF].val, "switch.backoff", 0, &sw->backoff_ms);
    get_duration(l, s[SW_MIN_HEALTHY_TIME].val, "switch.min_healthy_time", 0,
                 &sw->min_healthy_time_ms);
    get_unconfirmed(l, s[SW_UNCONFIRMED].val, &sw->unconfirmed_proceed);
    get_duration(l, s[SW_UNCONFIRMED_TIMEOUT].val, "switch.unconfirmed_timeout", 1,
                 &sw->unconfirmed_timeout_ms);
}

static char *default_controller_id(void)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    return bg_xasprintf("%s-%ld", host, (long)getpid());
}

enum { C_ZK, C_SWITCH, C_HTTP, C_ID };

int bg_conf_load_controller(const char *path, struct bg_controller_conf *out,
                            struct bg_conf_errors *errs)
{
    struct loader l = {.file = path};
    memset(out, 0, sizeof(*out));
    out->path = bg_xstrdup(path);
    yaml_node_t *root = parse_file(&l, path);
    if (root != NULL) {
        struct slot s[] = {{.key = "zookeeper"}, {.key = "switch"}, {.key = "http"}, {.key = "id"}};
        scan_mapping(&l, root, "", "", s, BG_ARRAY_LEN(s));
        need(&l, root, "", "", &s[C_ZK]);
        load_zk(&l, s[C_ZK].val, &out->zk);
        warn_zk_auth(&l, s[C_ZK].val, &out->zk);
        load_switch(&l, s[C_SWITCH].val, &out->sw);
        load_http(&l, s[C_HTTP].val, true, &out->http);
        get_str(&l, s[C_ID].val, "id", EXPECT_ID, id_ok, &out->id);
        if (s[C_ID].val == NULL)
            out->id = default_controller_id();
    }
    if (l.have_doc)
        yaml_document_delete(&l.doc);
    free((char *)l.buf);
    int rc = finish(&l, errs);
    if (rc != BG_OK)
        bg_conf_free_controller(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Freeing
 * ------------------------------------------------------------------------------------------ */

static void free_strv(char ***v, size_t n)
{
    for (size_t i = 0; *v != NULL && i < n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
}

static void free_zk(struct bg_zk_conf *zk)
{
    bg_free(&zk->connect);
    bg_free(&zk->root);
    if (zk->auth != NULL)
        explicit_bzero(zk->auth, strlen(zk->auth));
    bg_free(&zk->auth);
}

static void free_http(struct bg_http_conf *h)
{
    bg_free(&h->listen);
    bg_free(&h->token_file);
    if (h->token != NULL)
        explicit_bzero(h->token, strlen(h->token));
    bg_free(&h->token);
    bg_free(&h->tls_cert);
    bg_free(&h->tls_key);
    bg_free(&h->tls_cert_pem);
    if (h->tls_key_pem != NULL)
        explicit_bzero(h->tls_key_pem, strlen(h->tls_key_pem));
    bg_free(&h->tls_key_pem);
    bg_free(&h->ca_file);
    memset(&h->server, 0, sizeof(h->server));
}

void bg_conf_free_agent(struct bg_agent_conf *c)
{
    if (c == NULL)
        return;
    bg_free(&c->path);
    free_zk(&c->zk);
    bg_free(&c->instance.id);
    bg_free(&c->instance.endpoint);
    bg_free(&c->instance.app);
    bg_free(&c->instance.version);
    bg_free(&c->instance.address);
    bg_free(&c->check.http);
    bg_free(&c->check.tcp);
    free_strv(&c->check.argv, c->check.argc);
    free_http(&c->http);
    for (size_t i = 0; c->backends != NULL && i < c->n_backends; i++) {
        struct bg_backend_conf *b = &c->backends[i];
        free_strv(&b->urls, b->n_urls);
        bg_free(&b->app);
        bg_free(&b->instance_id);
        bg_free(&b->host_name);
        bg_free(&b->ip_addr);
        bg_free(&b->vip_address);
        bg_free(&b->listen);
        free_strv(&b->argv, b->argc);
    }
    free(c->backends);
    memset(c, 0, sizeof(*c));
    c->instance.color = BG_COLOR_INVALID;
}

void bg_conf_free_controller(struct bg_controller_conf *c)
{
    if (c == NULL)
        return;
    bg_free(&c->path);
    free_zk(&c->zk);
    free_http(&c->http);
    bg_free(&c->id);
    memset(c, 0, sizeof(*c));
}
