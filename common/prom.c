/* prom.c -- one Prometheus text writer (exposition format 0.0.4) and fixed-bucket histograms. */
#include "prom.h"

#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double bg_prom_latency_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,  5,     10,   30,  60};
const size_t bg_prom_latency_n = BG_ARRAY_LEN(bg_prom_latency_le);

/* ----------------------------------------------------------------------------------------
 * Histogram.
 * ------------------------------------------------------------------------------------- */

void bg_prom_hist_init(struct bg_prom_hist *h, const double *le, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->n = n < BG_PROM_HIST_MAX ? n : BG_PROM_HIST_MAX;
    memcpy(h->le, le, h->n * sizeof(*le));
}

void bg_prom_hist_observe(struct bg_prom_hist *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->le[i])
        i++;
    h->bucket[i]++;
    h->sum += v;
    h->count++;
}

/* ----------------------------------------------------------------------------------------
 * Writer.
 * ------------------------------------------------------------------------------------- */

void bg_prom_init(struct bg_prom *p)
{
    memset(p, 0, sizeof(*p));
}

void bg_prom_free(struct bg_prom *p)
{
    free(p->buf);
    bg_prom_init(p);
}

char *bg_prom_finish(struct bg_prom *p)
{
    char *s = p->buf != NULL ? p->buf : bg_xstrdup("");
    bg_prom_init(p);
    return s;
}

static void put(struct bg_prom *p, const char *s, size_t n)
{
    bg_buf_append(&p->buf, &p->len, &p->cap, s, n);
}

static void puts_(struct bg_prom *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Label values escape \, " and newline; HELP text escapes \ and newline only. */
static void put_escaped(struct bg_prom *p, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(p, "\\\\", 2);
        else if (*s == '\n')
            put(p, "\\n", 2);
        else if (*s == '"' && quote)
            put(p, "\\\"", 2);
        else
            put(p, s, 1);
    }
}

/* Integers as integers (counters read 12, not 1.2e+01); the rest with full precision. */
static void put_value(struct bg_prom *p, double v)
{
    char b[64];
    if (isnan(v))
        snprintf(b, sizeof(b), "NaN");
    else if (isinf(v))
        snprintf(b, sizeof(b), v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(b, sizeof(b), "%lld", (long long)v);
    else
        snprintf(b, sizeof(b), "%.17g", v);
    puts_(p, b);
}

/* A bucket bound: the shortest text that reads back as the same double. */
static void put_bound(struct bg_prom *p, double le)
{
    char b[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(b, sizeof(b), "%.*g", prec, le);
        if (strtod(b, NULL) == le)
            break;
    }
    puts_(p, b);
}

void bg_prom_family(struct bg_prom *p, const char *name, const char *type, const char *help)
{
    if (strcmp(p->family, name) == 0)
        return;
    snprintf(p->family, sizeof(p->family), "%s", name);
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    put_escaped(p, help, 0);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, type);
    puts_(p, "\n");
}

/* name{k="v",...[,le="x"]}: the braces only when there is a label. le < 0: none. */
static void put_series(struct bg_prom *p, const char *name, const char *suffix, va_list ap,
                       int with_le, double le)
{
    puts_(p, name);
    puts_(p, suffix);
    int n = 0;
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        puts_(p, n++ ? "," : "{");
        puts_(p, k);
        puts_(p, "=\"");
        put_escaped(p, v != NULL ? v : "", 1);
        puts_(p, "\"");
    }
    if (with_le) {
        puts_(p, n++ ? ",le=\"" : "{le=\"");
        if (isinf(le))
            puts_(p, "+Inf");
        else
            put_bound(p, le);
        puts_(p, "\"");
    }
    if (n)
        puts_(p, "}");
    puts_(p, " ");
}

void bg_prom_sample(struct bg_prom *p, const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    put_series(p, name, "", ap, 0, 0);
    va_end(ap);
    put_value(p, v);
    puts_(p, "\n");
}

void bg_prom_hist(struct bg_prom *p, const char *name, const struct bg_prom_hist *h, ...)
{
    va_list ap;
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n; i++) {
        cum += h->bucket[i];
        va_start(ap, h);
        put_series(p, name, "_bucket", ap, 1, i < h->n ? h->le[i] : INFINITY);
        va_end(ap);
        put_value(p, (double)cum);
        puts_(p, "\n");
    }
    va_start(ap, h);
    put_series(p, name, "_sum", ap, 0, 0);
    va_end(ap);
    put_value(p, h->sum);
    puts_(p, "\n");
    va_start(ap, h);
    put_series(p, name, "_count", ap, 0, 0);
    va_end(ap);
    put_value(p, (double)h->count);
    puts_(p, "\n");
}

void bg_prom_gauge(struct bg_prom *p, const char *name, const char *help, double v)
{
    bg_prom_family(p, name, "gauge", help);
    bg_prom_sample(p, name, v, (const char *)NULL);
}

void bg_prom_counter(struct bg_prom *p, const char *name, const char *help, double v)
{
    bg_prom_family(p, name, "counter", help);
    bg_prom_sample(p, name, v, (const char *)NULL);
}
