/* traffic.c -- traffic shaping's pure parts: /canary and /drain/<id> data, canary weights. */
#include "traffic.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * /canary and /drain/<id>
 * ------------------------------------------------------------------------------------- */

static void why_set(char *why, size_t whylen, const char *text)
{
    if (why && whylen > 0)
        snprintf(why, whylen, "%s", text);
}

static bool space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The next white-space separated word of [*p, e): its start and length; *p moves past it. */
static size_t word(const char **p, const char *e, const char **w)
{
    while (*p < e && space((unsigned char)**p))
        (*p)++;
    *w = *p;
    while (*p < e && !space((unsigned char)**p))
        (*p)++;
    return (size_t)(*p - *w);
}

/* "1".."99", optionally followed by '%'. Returns the number or -1. */
static int percent(const char *w, size_t n)
{
    if (n > 0 && w[n - 1] == '%')
        n--;
    if (n == 0 || n > 2)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)w[i]))
            return -1;
        v = v * 10 + (w[i] - '0');
    }
    return v >= 1 && v <= 99 ? v : -1;
}

int bg_parse_canary(const char *data, size_t len, struct bg_canary *out, char *why, size_t whylen)
{
    const char *p = data ? data : "", *e = p + (data ? len : 0);
    const char *w1, *w2, *w3;
    size_t n1 = word(&p, e, &w1);
    size_t n2 = word(&p, e, &w2);
    size_t n3 = word(&p, e, &w3);
    if (n1 == 0 || (n1 == 1 && w1[0] == '0' && n2 == 0)) {
        *out = (struct bg_canary){.color = BG_COLOR_INVALID, .percent = 0};
        return 0;
    }
    if (memchr(data, '\0', len)) {
        why_set(why, whylen, "contains a NUL byte; expected '<blue|green> <percent 1-99>'");
        return -1;
    }
    enum bg_color c = bg_parse_color(w1, n1);
    if (c == BG_COLOR_INVALID) {
        why_set(why, whylen, "the colour is not blue or green; expected '<blue|green> <1-99>'");
        return -1;
    }
    if (n2 == 0 || n3 != 0) {
        why_set(why, whylen, "expected '<blue|green> <percent 1-99>', e.g. 'green 10'");
        return -1;
    }
    int v = percent(w2, n2);
    if (v < 0) {
        why_set(why, whylen, "the percent is not a whole number from 1 to 99");
        return -1;
    }
    *out = (struct bg_canary){.color = c, .percent = v};
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80             ? 1
               : (s[0] & 0xE0) == 0xC0 ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (k == 0 || k > n || (k == 2 && s[0] < 0xC2) || (k == 4 && s[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (k == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0;
    if (k == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return k;
}

int bg_parse_drain(const char *data, size_t len, char *reason, size_t rlen, char *why,
                   size_t whylen)
{
    const char *b = data ? data : "", *e = b + (data ? len : 0);
    while (b < e && space((unsigned char)*b))
        b++;
    while (e > b && space((unsigned char)e[-1]))
        e--;
    size_t n = (size_t)(e - b);
    if (n > BG_DRAIN_REASON_MAX || rlen <= n) {
        why_set(why, whylen, "the reason is longer than 200 bytes");
        return -1;
    }
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)b[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            why_set(why, whylen, "the reason contains control characters");
            return -1;
        }
        size_t k = utf8_len((const unsigned char *)b + i, n - i);
        if (k == 0) {
            why_set(why, whylen, "the reason is not valid UTF-8");
            return -1;
        }
        i += k;
    }
    memcpy(reason, b, n);
    reason[n] = '\0';
    return 0;
}

bool bg_drain_id_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 128 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != ':')
            return false;
    }
    return true;
}

/* ----------------------------------------------------------------------------------------
 * Canary maths
 * ------------------------------------------------------------------------------------- */

double bg_canary_share(int n_c, int w_c, int n_a, int w_a)
{
    double c = (double)n_c * w_c, a = (double)n_a * w_a;
    return c + a > 0 ? 100.0 * c / (c + a) : 0.0;
}

void bg_canary_weights(int n_c, int n_a, int pct, int *w_c, int *w_a)
{
    *w_c = 100;
    *w_a = 100;
    if (n_c <= 0 || n_a <= 0 || pct <= 0 || pct >= 100)
        return;
    /* w_c / w_a = pct * n_a / ((100 - pct) * n_c); the heavier side gets 100, the other the
     * whole weight (>= 1) whose share is nearest. */
    double r = (double)pct * n_a / ((double)(100 - pct) * n_c);
    int *small = r <= 1.0 ? w_c : w_a;
    double best = 1e9;
    for (int w = 1; w <= 100; w++) {
        double s = r <= 1.0 ? bg_canary_share(n_c, w, n_a, 100) : bg_canary_share(n_c, 100, n_a, w);
        if (fabs(s - pct) < best) {
            best = fabs(s - pct);
            *small = w;
        }
    }
}

int bg_canary_count(int n_c, int n_a, int pct)
{
    if (n_c <= 0)
        return 0;
    int best = 1;
    double err = 1e9;
    for (int k = 1; k <= n_c; k++) {
        double d = fabs(bg_canary_share(k, 1, n_a, 1) - pct);
        if (d < err) {
            err = d;
            best = k;
        }
    }
    return best;
}
