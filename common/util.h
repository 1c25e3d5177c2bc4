/* util.h -- small helpers shared by every daemon: time, memory, parsing, errors. */
#ifndef BG_UTIL_H
#define BG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes: 0 is success, failures are negative (BG_E... or -errno). */
#define BG_OK 0
#define BG_EINVAL (-1000) /* malformed input */
#define BG_ENOTFOUND (-1001)
#define BG_ESTALE (-1002) /* a newer epoch/version exists */
#define BG_ETIMEOUT (-1003)
#define BG_EZK (-1004)   /* ZooKeeper call failed */
#define BG_EHTTP (-1005) /* HTTP call failed */
#define BG_EAUTH (-1006)
#define BG_ELOST (-1007) /* connection or leadership lost while working */

enum bg_color { BG_COLOR_INVALID = -1, BG_BLUE = 0, BG_GREEN = 1 };

#define BG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic and wall clocks in milliseconds. */
int64_t bg_now_ms(void);
int64_t bg_wall_ms(void);
void bg_sleep_ms(int64_t ms);
/* ISO-8601 UTC timestamp with milliseconds, e.g. 2026-11-22T14:10:00.123Z. */
void bg_iso_time(int64_t wall_ms, char *buf, size_t len);

/* Allocation that aborts with a message on out-of-memory. */
void *bg_xmalloc(size_t n);
void *bg_xcalloc(size_t n, size_t size);
void *bg_xrealloc(void *p, size_t n);
/* Append n bytes to a growing buffer (*buf, *len used, *cap allocated; all zero to start):
 * doubles as needed and keeps the contents NUL-terminated. The one growing-text helper of
 * the tree (the status page, the Prometheus writer, the controller's call answers). */
void bg_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n);
char *bg_xstrdup(const char *s);
char *bg_xstrndup(const char *s, size_t n);
char *bg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* free(*p) and set *p to NULL. */
void bg_free(char **p);

/* Files a daemon writes for another program (bg-router's balancer configuration): path created
 * or truncated (mode 0644), text written whole and fsynced. BG_OK, or BG_EINVAL with why
 * ("cannot write <path>: <errno text>") and path removed. */
int bg_write_file(const char *path, const char *text, char *why, size_t whylen);
/* fsync the directory holding path (so that a rename in it survives a crash); best effort. */
void bg_sync_dir(const char *path);

/* Parse "250ms", "2s", "1m" (an integer and a unit; a bare 0 is allowed).
 * Returns 0 and sets *ms, or BG_EINVAL. */
int bg_parse_duration(const char *s, int64_t *ms);
/* Parse a colour, ignoring surrounding white space: "blue" or "green" only.
 * Returns BG_BLUE, BG_GREEN or BG_COLOR_INVALID. The buffer need not be NUL-terminated. */
enum bg_color bg_parse_color(const char *s, size_t len);
const char *bg_color_name(enum bg_color c);
enum bg_color bg_other_color(enum bg_color c);

/* Trim ASCII white space in place; returns s. */
char *bg_trim(char *s);
/* Constant-time comparison of two byte strings (time depends only on the lengths). */
bool bg_ct_equal(const char *a, size_t alen, const char *b, size_t blen);
/* The sequence number of a controller's election node name ("member-0000000042" -> 42), or
 * -1 for any other name (nodes made by hand under /election are ignored, never obeyed). */
int64_t bg_election_seq(const char *name);
/* Split "host:port" into its parts. Returns 0 or BG_EINVAL. */
int bg_split_hostport(const char *s, char *host, size_t hostlen, int *port);
/* Printable, bounded copy of untrusted bytes for log lines and reasons (non-printables
 * become '?', cut at max with "..."). */
void bg_sanitize(const char *in, size_t inlen, char *out, size_t outlen);
/* Make s valid UTF-8 in place, for text cut by a fixed-size buffer: an incomplete character at
 * the end (the cut) is dropped, any other invalid byte becomes '?'. Returns the new length.
 * Every cut of untrusted text that may end up in JSON goes through this. Can't fail. */
size_t bg_utf8_trim_end(char *s);
/* snprintf(dst, dstlen, "%s", src) cut at a character boundary, then bg_utf8_trim_end.
 * Returns dst. */
char *bg_strlcpy_utf8(char *dst, const char *src, size_t dstlen);
/* Replace control characters (newline, carriage return, escape, ...) by '?' in place: untrusted
 * text in a log line must not start a forged line of its own. */
void bg_no_controls(char *s);
/* A log value of untrusted text that cannot forge keys or lines: controls, spaces, '"', '\\'
 * and '=' become '?', cut at a character boundary to fit out. Other UTF-8 is kept. */
void bg_log_token(const char *in, char *out, size_t outlen);

#endif
