/* conf_yaml.h -- what every configuration loader shares, implemented in yaml.c (conf-internal;
 * not named yaml.h, which would hide libyaml's): one libyaml document per file, typed getters
 * that record what was wrong at file:line:column, and mapping key matching. */
#ifndef BG_CONF_YAML_H
#define BG_CONF_YAML_H

#include "conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

/* Largest configuration (and PEM) file read. */
#define BG_YAML_MAX_BYTES (1024 * 1024)

struct bg_yaml_msg {
    size_t line, col, seq; /* 1-based; seq keeps equal positions in the order found */
    char *text;
};

/* One file being loaded (only bg_yaml_load creates one). */
struct bg_yaml {
    const char *file; /* the path as given: every message starts with it */
    const char *buf;  /* the file's bytes, to place reader errors */
    yaml_document_t doc;
    bool have_doc;
    struct bg_yaml_msg *msgs;
    size_t n_msgs;
    struct bg_conf_warning *warns;
    size_t n_warns;
};

/* Reads the sections of the root mapping into out, recording every problem in l. */
typedef void bg_yaml_sections_fn(struct bg_yaml *l, yaml_node_t *root, void *out);
typedef void bg_yaml_free_fn(void *out);

/* The shape of every loader: read and parse path, call sections when the file is a mapping,
 * free the document, and hand the messages and warnings over to errs (may be NULL), sorted by
 * position. Returns 0, or BG_EINVAL when any error was recorded, after free_out(out). out is
 * the caller's, initialised as it wants before the call. */
int bg_yaml_load(const char *path, bg_yaml_sections_fn *sections, bg_yaml_free_fn *free_out,
                 void *out, struct bg_conf_errors *errs);

/* Record "file:line:column: path: message" at a libyaml mark (0-based, hence the +1). */
void bg_yaml_fail(struct bg_yaml *l, yaml_mark_t m, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Record a warning "file:line:column: path: message", logged as event when the daemon runs. */
void bg_yaml_warn(struct bg_yaml *l, yaml_mark_t m, const char *path, const char *event,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Record "path: expected <expected>, got <what n is>". Always returns false. */
bool bg_yaml_bad(struct bg_yaml *l, const yaml_node_t *n, const char *path, const char *expected);

/* Read all of path into a NUL-terminated buffer (the caller frees it). On failure returns NULL,
 * with *err an errno value and *opened telling whether the failure came after fopen (EFBIG:
 * more than max bytes). */
char *bg_yaml_read_file(const char *path, size_t max, size_t *len, int *err, bool *opened);

/* Scalar nodes. */
const char *bg_yaml_text(const yaml_node_t *n);
/* An unquoted empty value, ~ or null. */
bool bg_yaml_is_null(const yaml_node_t *n);
bool bg_yaml_is_quoted(const yaml_node_t *n);
/* A usable string scalar: not a collection, not null, no NUL byte inside. */
bool bg_yaml_is_string(const yaml_node_t *n);
/* A decimal integer without leading zeros. */
bool bg_yaml_parse_int(const char *s, long long *v);

/* Format a key path for messages; a path too long for buf is cut, which only shortens them. */
void bg_yaml_pathf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "path.key", or "key" at the top level. */
void bg_yaml_join(char *buf, size_t len, const char *path, const char *key);

/* Typed getters: each takes the value node (NULL: key absent, nothing to do), records what
 * was wrong, and stores only valid values. Return true when *out was set. */
bool bg_yaml_get_str(struct bg_yaml *l, const yaml_node_t *n, const char *path,
                     const char *expected, bool (*ok)(const char *), char **out);
bool bg_yaml_get_int(struct bg_yaml *l, const yaml_node_t *n, const char *path, int min, int max,
                     int *out);
bool bg_yaml_get_bool(struct bg_yaml *l, const yaml_node_t *n, const char *path, bool *out);
/* min_ms is 0 or 1: "0 disables" keys take 0, timeouts and intervals need more. */
bool bg_yaml_get_duration(struct bg_yaml *l, const yaml_node_t *n, const char *path, int64_t min_ms,
                          int64_t *out);
bool bg_yaml_get_color(struct bg_yaml *l, const yaml_node_t *n, const char *path,
                       enum bg_color *out);
/* A command line: a string split on white space, or a sequence of strings, appended to *argv
 * (kept NULL-terminated; free with bg_yaml_free_strv). n must not be NULL. */
void bg_yaml_get_command(struct bg_yaml *l, const yaml_node_t *n, const char *path, char ***argv,
                         size_t *argc);
void bg_yaml_free_strv(char ***v, size_t n);

/* One key a mapping may hold; bg_yaml_scan_mapping fills key_node and val. */
struct bg_yaml_slot {
    const char *key;
    bool off;              /* not allowed here (a key of another backend type) */
    yaml_node_t *key_node; /* where it was given */
    yaml_node_t *val;      /* NULL when absent */
};

/* Match the keys of mapping n against slots, recording unknown, duplicate and non-scalar keys.
 * A null value counts as an empty mapping. Returns false when n is absent or not a mapping.
 * kind: "" or e.g. "for type eureka", said after "unknown key". */
bool bg_yaml_scan_mapping(struct bg_yaml *l, yaml_node_t *n, const char *path, const char *kind,
                          struct bg_yaml_slot *slots, size_t n_slots);
/* Record "missing required key" at n when s was not given. */
void bg_yaml_need(struct bg_yaml *l, const yaml_node_t *n, const char *path, const char *kind,
                  const struct bg_yaml_slot *s);

#endif
