/* yaml.c -- the configuration loaders' toolkit: reading a file into a libyaml document, typed
 * getters for scalar values, matching mapping keys, and the error list with file:line:column. */
#include "conf_yaml.h"

#include "log.h"
#include "valid.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Longest duration accepted anywhere: keeps every value well inside an int of milliseconds. */
#define MAX_DURATION_MS (24 * 60 * 60 * 1000)
#define EXPECT_DURATION "(an integer followed by ms, s or m, e.g. 250ms, 2s, 1m)"
#define SPACES " \t\r\n\f\v"

/* ------------------------------------------------------------------------------------------
 * Error collection
 * ------------------------------------------------------------------------------------------ */

static void add_msg(struct bg_yaml *l, size_t line, size_t col, char *text)
{
    l->msgs = bg_xrealloc(l->msgs, (l->n_msgs + 1) * sizeof(*l->msgs));
    l->msgs[l->n_msgs] =
        (struct bg_yaml_msg){.line = line, .col = col, .seq = l->n_msgs, .text = text};
    l->n_msgs++;
}

/* vasprintf that aborts when out of memory. */
static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *vformat(const char *fmt, va_list ap)
{
    char *what = NULL;
    if (vasprintf(&what, fmt, ap) < 0) {
        fprintf(stderr, "level=fatal event=out_of_memory where=conf\n");
        abort();
    }
    return what;
}

/* Record "file:line:column: path: message" at a libyaml mark (0-based, hence the +1). */
void bg_yaml_fail(struct bg_yaml *l, yaml_mark_t m, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = vformat(fmt, ap);
    va_end(ap);
    size_t line = m.line + 1, col = m.column + 1;
    add_msg(l, line, col,
            bg_xasprintf("%s:%zu:%zu: %s%s%s", l->file, line, col, path, *path ? ": " : "", what));
    free(what);
}

/* Record a warning "file:line:column: path: message", logged as event when the daemon runs. */
void bg_yaml_warn(struct bg_yaml *l, yaml_mark_t m, const char *path, const char *event,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = vformat(fmt, ap);
    va_end(ap);
    l->warns = bg_xrealloc(l->warns, (l->n_warns + 1) * sizeof(*l->warns));
    l->warns[l->n_warns++] = (struct bg_conf_warning){
        .event = bg_xstrdup(event),
        .msg = bg_xasprintf("%s:%zu:%zu: %s: %s", l->file, m.line + 1, m.column + 1, path, what)};
    free(what);
}

static int by_position(const void *a, const void *b)
{
    const struct bg_yaml_msg *x = a, *y = b;
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
static int finish(struct bg_yaml *l, struct bg_conf_errors *errs)
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
char *bg_yaml_read_file(const char *path, size_t max, size_t *len, int *err, bool *opened)
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

static void syntax_error(struct bg_yaml *l, const yaml_parser_t *p, size_t len)
{
    const char *problem = p->problem ? p->problem : "out of memory";
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        m = offset_mark(l->buf, len, p->problem_offset);
        if (p->problem_value >= 0) {
            bg_yaml_fail(l, m, "", "invalid YAML: %s (0x%02X)", problem,
                         (unsigned)p->problem_value);
            return;
        }
    }
    if (p->context)
        bg_yaml_fail(l, m, "", "invalid YAML: %s (%s at line %zu, column %zu)", problem, p->context,
                     p->context_mark.line + 1, p->context_mark.column + 1);
    else
        bg_yaml_fail(l, m, "", "invalid YAML: %s", problem);
}

/* Parse the file into l->doc. Returns its root mapping, or NULL with the problem recorded. */
static yaml_node_t *parse_file(struct bg_yaml *l, const char *path)
{
    size_t len = 0;
    int err = 0;
    bool opened = false;
    yaml_node_t *root = NULL;
    char *buf = bg_yaml_read_file(path, BG_YAML_MAX_BYTES, &len, &err, &opened);
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
        bg_yaml_fail(l, l->doc.start_mark, "",
                     "expected a mapping at the top level, got an empty document");
        goto out;
    }

    /* A second document would be ignored silently: refuse it instead. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(l, &parser, len);
    } else {
        if (yaml_document_get_root_node(&extra) != NULL)
            bg_yaml_fail(
                l, extra.start_mark, "",
                "expected a single YAML document, found a second one (remove it or the '---')");
        yaml_document_delete(&extra);
    }

    if (root->type != YAML_MAPPING_NODE) {
        bg_yaml_fail(l, root->start_mark, "", "expected a mapping at the top level, got %s",
                     root->type == YAML_SEQUENCE_NODE ? "a sequence" : "a scalar");
        root = NULL;
    }
out:
    yaml_parser_delete(&parser);
    return root;
}

int bg_yaml_load(const char *path, bg_yaml_sections_fn *sections, bg_yaml_free_fn *free_out,
                 void *out, struct bg_conf_errors *errs)
{
    struct bg_yaml l = {.file = path};
    yaml_node_t *root = parse_file(&l, path);
    if (root != NULL)
        sections(&l, root, out);
    if (l.have_doc)
        yaml_document_delete(&l.doc);
    free((char *)l.buf);
    int rc = finish(&l, errs);
    if (rc != BG_OK)
        free_out(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Nodes and scalar values
 * ------------------------------------------------------------------------------------------ */

const char *bg_yaml_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An unquoted empty value, ~ or null. */
bool bg_yaml_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = bg_yaml_text(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

bool bg_yaml_is_quoted(const yaml_node_t *n)
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
        if (bg_yaml_is_null(n))
            return bg_yaml_text(n)[0] == '\0' ? "an empty value" : "null";
        bg_sanitize(bg_yaml_text(n), n->data.scalar.length, clean, sizeof(clean));
        snprintf(buf, len, "\"%s\"", clean);
        return buf;
    default:
        return "nothing";
    }
}

/* Record "path: expected <expected>, got <what n is>". Always returns false. */
bool bg_yaml_bad(struct bg_yaml *l, const yaml_node_t *n, const char *path, const char *expected)
{
    char buf[96];
    bg_yaml_fail(l, n->start_mark, path, "expected %s, got %s", expected, got(n, buf, sizeof(buf)));
    return false;
}

/* A usable string scalar: not a collection, not null, no NUL byte inside. */
bool bg_yaml_is_string(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && !bg_yaml_is_null(n) &&
           strlen(bg_yaml_text(n)) == n->data.scalar.length;
}

/* Format a key path for messages; a path too long for buf is cut, which only shortens them. */
void bg_yaml_pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

void bg_yaml_join(char *buf, size_t len, const char *path, const char *key)
{
    bg_yaml_pathf(buf, len, "%s%s%s", path, *path ? "." : "", key);
}

/* ------------------------------------------------------------------------------------------
 * Typed getters
 * ------------------------------------------------------------------------------------------ */

bool bg_yaml_get_str(struct bg_yaml *l, const yaml_node_t *n, const char *path,
                     const char *expected, bool (*ok)(const char *), char **out)
{
    if (n == NULL)
        return false;
    if (!bg_yaml_is_string(n) || (ok != NULL && !ok(bg_yaml_text(n))))
        return bg_yaml_bad(l, n, path, expected);
    *out = bg_xstrdup(bg_yaml_text(n));
    return true;
}

bool bg_yaml_parse_int(const char *s, long long *v)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (!bg_valid_all_digits(digits) || (digits[0] == '0' && digits[1] != '\0'))
        return false;
    errno = 0;
    *v = strtoll(s, NULL, 10);
    return errno == 0;
}

bool bg_yaml_get_int(struct bg_yaml *l, const yaml_node_t *n, const char *path, int min, int max,
                     int *out)
{
    if (n == NULL)
        return false;
    char expected[64];
    long long v = 0;
    bool number = n->type == YAML_SCALAR_NODE && bg_yaml_parse_int(bg_yaml_text(n), &v);
    if (max == INT_MAX && !(number && v > max))
        snprintf(expected, sizeof(expected), "an integer >= %d", min);
    else
        snprintf(expected, sizeof(expected), "an integer between %d and %d", min, max);
    if (number && bg_yaml_is_quoted(n)) {
        bg_yaml_fail(l, n->start_mark, path, "expected %s without quotes, got the string \"%s\"",
                     expected, bg_yaml_text(n));
        return false;
    }
    if (!number || v < min || v > max)
        return bg_yaml_bad(l, n, path, expected);
    *out = (int)v;
    return true;
}

bool bg_yaml_get_bool(struct bg_yaml *l, const yaml_node_t *n, const char *path, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO"};
    if (n == NULL)
        return false;
    int v = -1;
    for (size_t i = 0; n->type == YAML_SCALAR_NODE && i < BG_ARRAY_LEN(yes); i++) {
        if (strcmp(bg_yaml_text(n), yes[i]) == 0)
            v = 1;
        if (strcmp(bg_yaml_text(n), no[i]) == 0)
            v = 0;
    }
    if (v >= 0 && bg_yaml_is_quoted(n)) {
        bg_yaml_fail(l, n->start_mark, path,
                     "expected true or false without quotes, got the string \"%s\"",
                     bg_yaml_text(n));
        return false;
    }
    if (v < 0)
        return bg_yaml_bad(l, n, path, "true or false");
    *out = v == 1;
    return true;
}

/* min_ms is 0 or 1: "0 disables" keys take 0, timeouts and intervals need more. */
bool bg_yaml_get_duration(struct bg_yaml *l, const yaml_node_t *n, const char *path, int64_t min_ms,
                          int64_t *out)
{
    if (n == NULL)
        return false;
    int64_t v = 0;
    if (!bg_yaml_is_string(n) || bg_parse_duration(bg_yaml_text(n), &v) != BG_OK)
        return bg_yaml_bad(l, n, path,
                           min_ms > 0 ? "a duration above 0 " EXPECT_DURATION
                                      : "a duration " EXPECT_DURATION);
    if (v < min_ms)
        return bg_yaml_bad(l, n, path, "a duration above 0 " EXPECT_DURATION);
    if (v > MAX_DURATION_MS)
        return bg_yaml_bad(l, n, path, "a duration of at most 1440m");
    *out = v;
    return true;
}

bool bg_yaml_get_color(struct bg_yaml *l, const yaml_node_t *n, const char *path,
                       enum bg_color *out)
{
    if (n == NULL)
        return false;
    enum bg_color c = BG_COLOR_INVALID;
    if (bg_yaml_is_string(n))
        c = bg_parse_color(bg_yaml_text(n), n->data.scalar.length);
    if (c == BG_COLOR_INVALID)
        return bg_yaml_bad(l, n, path, "blue or green");
    *out = c;
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Mappings
 * ------------------------------------------------------------------------------------------ */

static void allowed_list(const struct bg_yaml_slot *s, size_t n, char *buf, size_t len)
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
bool bg_yaml_scan_mapping(struct bg_yaml *l, yaml_node_t *n, const char *path, const char *kind,
                          struct bg_yaml_slot *slots, size_t n_slots)
{
    if (n == NULL)
        return false;
    if (bg_yaml_is_null(n))
        return true;
    if (n->type != YAML_MAPPING_NODE)
        return bg_yaml_bad(l, n, path, "a mapping");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            bg_yaml_bad(l, k, path, "a scalar key");
            continue;
        }
        struct bg_yaml_slot *s = NULL;
        for (size_t i = 0; i < n_slots && s == NULL; i++) {
            if (!slots[i].off && strcmp(slots[i].key, bg_yaml_text(k)) == 0)
                s = &slots[i];
        }
        char name[64], where[160];
        bg_sanitize(bg_yaml_text(k), k->data.scalar.length, name, sizeof(name));
        bg_yaml_join(where, sizeof(where), path, name);
        if (s == NULL) {
            char allowed[400];
            allowed_list(slots, n_slots, allowed, sizeof(allowed));
            bg_yaml_fail(l, k->start_mark, where, "unknown key%s%s, expected one of: %s",
                         *kind ? " " : "", kind, allowed);
        } else if (s->val != NULL) {
            bg_yaml_fail(l, k->start_mark, where,
                         "duplicate key (first given at line %zu, column %zu)",
                         s->key_node->start_mark.line + 1, s->key_node->start_mark.column + 1);
        } else {
            s->key_node = k;
            s->val = v;
        }
    }
    return true;
}

/* kind: "" or e.g. "for type eureka". */
void bg_yaml_need(struct bg_yaml *l, const yaml_node_t *n, const char *path, const char *kind,
                  const struct bg_yaml_slot *s)
{
    if (s->val == NULL)
        bg_yaml_fail(l, n->start_mark, path, "missing required key \"%s\"%s%s", s->key,
                     *kind ? " " : "", kind);
}

/* ------------------------------------------------------------------------------------------
 * Command lines
 * ------------------------------------------------------------------------------------------ */

static void add_arg(char ***argv, size_t *argc, char *arg)
{
    *argv = bg_xrealloc(*argv, (*argc + 2) * sizeof(char *));
    (*argv)[(*argc)++] = arg;
    (*argv)[*argc] = NULL;
}

/* A command line: a string split on white space, or a sequence of strings. */
void bg_yaml_get_command(struct bg_yaml *l, const yaml_node_t *n, const char *path, char ***argv,
                         size_t *argc)
{
    static const char expected[] = "a command line (a string or a sequence of strings)";
    if (n->type == YAML_SCALAR_NODE) {
        if (!bg_yaml_is_string(n) || bg_yaml_text(n)[strspn(bg_yaml_text(n), SPACES)] == '\0') {
            bg_yaml_bad(l, n, path, expected);
            return;
        }
        for (const char *p = bg_yaml_text(n) + strspn(bg_yaml_text(n), SPACES); *p != '\0';) {
            size_t len = strcspn(p, SPACES);
            add_arg(argv, argc, bg_xstrndup(p, len));
            p += len;
            p += strspn(p, SPACES);
        }
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        bg_yaml_bad(l, n, path, expected);
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        bg_yaml_bad(l, n, path, expected);
        return;
    }
    bool ok = true;
    char **args = bg_xcalloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = yaml_document_get_node(&l->doc, n->data.sequence.items.start[i]);
        char where[80];
        bg_yaml_pathf(where, sizeof(where), "%s[%zu]", path, i);
        /* Arguments may be empty strings; the program name may not. */
        if (!bg_yaml_get_str(l, item, where, i == 0 ? "a program name" : "a string",
                             i == 0 ? bg_valid_nonempty : NULL, &args[i]))
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

void bg_yaml_free_strv(char ***v, size_t n)
{
    for (size_t i = 0; *v != NULL && i < n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
}
