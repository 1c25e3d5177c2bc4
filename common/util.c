/* util.c -- time, memory, parsing helpers. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t bg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bg_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void bg_iso_time(int64_t wall_ms, char *buf, size_t len)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, (int)(wall_ms % 1000));
}

static void oom(size_t n)
{
    fprintf(stderr, "level=fatal event=out_of_memory bytes=%zu\n", n);
    abort();
}

void *bg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *bg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *bg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

void bg_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1)
            c *= 2;
        *buf = bg_xrealloc(*buf, c);
        *cap = c;
    }
    if (n > 0)
        memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

char *bg_xstrdup(const char *s)
{
    return bg_xstrndup(s, strlen(s));
}

char *bg_xstrndup(const char *s, size_t n)
{
    char *p = bg_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *bg_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return p;
}

void bg_free(char **p)
{
    free(*p);
    *p = NULL;
}

int bg_parse_duration(const char *s, int64_t *ms)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return BG_EINVAL;
    int64_t v = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        if (v > INT64_MAX / 1000 / 60 / 10)
            return BG_EINVAL;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (strcmp(p, "ms") == 0)
        *ms = v;
    else if (strcmp(p, "s") == 0)
        *ms = v * 1000;
    else if (strcmp(p, "m") == 0)
        *ms = v * 60 * 1000;
    else if (*p == '\0' && v == 0)
        *ms = 0;
    else
        return BG_EINVAL;
    return BG_OK;
}

enum bg_color bg_parse_color(const char *s, size_t len)
{
    if (s == NULL)
        return BG_COLOR_INVALID;
    while (len > 0 && isspace((unsigned char)s[0])) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 4 && memcmp(s, "blue", 4) == 0)
        return BG_BLUE;
    if (len == 5 && memcmp(s, "green", 5) == 0)
        return BG_GREEN;
    return BG_COLOR_INVALID;
}

const char *bg_color_name(enum bg_color c)
{
    switch (c) {
    case BG_BLUE:
        return "blue";
    case BG_GREEN:
        return "green";
    default:
        return "invalid";
    }
}

enum bg_color bg_other_color(enum bg_color c)
{
    return c == BG_BLUE ? BG_GREEN : c == BG_GREEN ? BG_BLUE : BG_COLOR_INVALID;
}

char *bg_trim(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    size_t start = 0;
    while (isspace((unsigned char)s[start]))
        start++;
    if (start > 0)
        memmove(s, s + start, len - start + 1);
    return s;
}

bool bg_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Compare every byte of a against b (wrapping), so timing does not reveal a prefix. */
    unsigned char diff = (unsigned char)(alen != blen);
    if (blen == 0)
        return alen == 0;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % blen];
    return diff == 0;
}

int64_t bg_election_seq(const char *name)
{
    static const char prefix[] = "member-";
    if (name == NULL || strncmp(name, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    const char *d = name + sizeof(prefix) - 1;
    int64_t v = 0;
    size_t n = 0;
    for (; d[n] != '\0'; n++) {
        if (d[n] < '0' || d[n] > '9' || n >= 18)
            return -1;
        v = v * 10 + (d[n] - '0');
    }
    return n > 0 ? v : -1;
}

int bg_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= hostlen)
        return BG_EINVAL;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
        return BG_EINVAL;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return BG_OK;
}

void bg_sanitize(const char *in, size_t inlen, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        if (o + 4 >= outlen) {
            if (outlen >= 4) {
                o = outlen - 4;
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        unsigned char c = (unsigned char)in[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[o] = '\0';
}

/* Length of the UTF-8 sequence that starts with byte c (0: not a valid lead byte). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

/* Is s[0..n) a well-formed sequence (no overlong forms, surrogates or values > U+10FFFF)? */
static bool utf8_seq_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return false;
    if (n == 3 && s[0] == 0xe0 && s[1] < 0xa0)
        return false;
    if (n == 3 && s[0] == 0xed && s[1] >= 0xa0)
        return false;
    if (n == 4 && s[0] == 0xf0 && s[1] < 0x90)
        return false;
    if (n == 4 && s[0] == 0xf4 && s[1] >= 0x90)
        return false;
    return true;
}

size_t bg_utf8_trim_end(char *s)
{
    unsigned char *u = (unsigned char *)s;
    size_t len = strlen(s), i = 0;
    while (i < len) {
        size_t n = utf8_seq_len(u[i]);
        if (n == 1) {
            i++;
            continue;
        }
        if (n > 1 && i + n > len) {
            /* Runs off the end: if what is there is a valid prefix, it is the cut. */
            bool prefix = true;
            for (size_t k = i + 1; k < len; k++)
                prefix = prefix && (u[k] & 0xc0) == 0x80;
            if (prefix) {
                u[i] = '\0';
                return i;
            }
        }
        if (n > 1 && i + n <= len && utf8_seq_ok(u + i, n)) {
            i += n;
            continue;
        }
        u[i++] = '?';
    }
    return len;
}

char *bg_strlcpy_utf8(char *dst, const char *src, size_t dstlen)
{
    if (dstlen == 0)
        return dst;
    snprintf(dst, dstlen, "%s", src != NULL ? src : "");
    bg_utf8_trim_end(dst);
    return dst;
}

void bg_no_controls(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

void bg_log_token(const char *in, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    size_t o = 0;
    for (; in != NULL && in[o] != '\0' && o + 1 < outlen; o++) {
        unsigned char c = (unsigned char)in[o];
        bool bad = c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '=';
        out[o] = bad ? '?' : (char)c;
    }
    out[o] = '\0';
    bg_utf8_trim_end(out);
}

/* ----------------------------------------------------------------------------------------
 * Files written for other programs.
 * ------------------------------------------------------------------------------------- */

int bg_write_file(const char *path, const char *text, char *why, size_t whylen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text), done = 0;
    int err = fd < 0 ? errno : 0;
    while (err == 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            err = w < 0 ? errno : EIO;
        else
            done += (size_t)w;
    }
    if (err == 0 && fsync(fd) != 0)
        err = errno;
    if (fd >= 0 && close(fd) != 0 && err == 0)
        err = errno;
    if (err == 0)
        return BG_OK;
    snprintf(why, whylen, "cannot write %s: %s", path, strerror(err));
    if (fd >= 0)
        unlink(path);
    return BG_EINVAL;
}

void bg_sync_dir(const char *path)
{
    char *copy = bg_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}
