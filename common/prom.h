/* prom.h -- one Prometheus text writer (exposition format 0.0.4) and a fixed-bucket histogram,
 * for both daemons' GET /metrics. */
#ifndef BG_PROM_H
#define BG_PROM_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------
 * Histogram: fixed upper bounds, observe() counts. Not thread-safe: each daemon observes and
 * writes from its main loop.
 * ------------------------------------------------------------------------------------ */
#define BG_PROM_HIST_MAX 24

struct bg_prom_hist {
    size_t n;                              /* finite upper bounds in le[] */
    double le[BG_PROM_HIST_MAX];           /* ascending */
    uint64_t bucket[BG_PROM_HIST_MAX + 1]; /* per bucket, not cumulative; [n] is +Inf only */
    double sum;
    uint64_t count;
};

/* Set the bounds (ascending; at most BG_PROM_HIST_MAX are kept) and zero the counts. */
void bg_prom_hist_init(struct bg_prom_hist *h, const double *le, size_t n);
/* Count v in the first bucket whose bound is >= v (+Inf past the last). Never fails. */
void bg_prom_hist_observe(struct bg_prom_hist *h, double v);

/* Bounds for latencies in seconds: 5 ms .. 60 s. */
extern const double bg_prom_latency_le[];
extern const size_t bg_prom_latency_n;

/* ---------------------------------------------------------------------------------------
 * Writer: text grows in a heap buffer; bg_prom_finish() hands it to the caller.
 * Labels are given as NULL-terminated key, value, key, value, ... strings; values are escaped
 * (\\, \", \n), keys and metric names are the caller's constants (never client text).
 * ------------------------------------------------------------------------------------ */
struct bg_prom {
    char *buf;
    size_t len, cap;
    char family[128]; /* the last family written: its HELP and TYPE are not repeated */
};

/* An empty text; pair with bg_prom_finish() (hands the text over) or bg_prom_free(). */
void bg_prom_init(struct bg_prom *p);
/* Free the text if it was not handed over. */
void bg_prom_free(struct bg_prom *p);
/* The text (caller frees); p is empty again. Never NULL. */
char *bg_prom_finish(struct bg_prom *p);

/* "# HELP name help" and "# TYPE name type", unless name is the family just written. type is
 * "counter", "gauge" or "histogram". */
void bg_prom_family(struct bg_prom *p, const char *name, const char *type, const char *help);
/* One sample: name{labels} v. */
void bg_prom_sample(struct bg_prom *p, const char *name, double v, ...) __attribute__((sentinel));
/* A histogram's samples: name_bucket{labels,le="..."} (cumulative, ending with +Inf, which
 * equals the count), name_sum{labels}, name_count{labels}. */
void bg_prom_hist(struct bg_prom *p, const char *name, const struct bg_prom_hist *h, ...)
    __attribute__((sentinel));

/* Shorthands: family and one unlabelled sample. */
void bg_prom_gauge(struct bg_prom *p, const char *name, const char *help, double v);
void bg_prom_counter(struct bg_prom *p, const char *name, const char *help, double v);

#endif
