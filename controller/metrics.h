/* metrics.h -- the controller's GET /metrics text (Prometheus) and its histograms. */
#ifndef BG_CTL_METRICS_H
#define BG_CTL_METRICS_H

struct bg_ctl;

/* Set the histograms' buckets (zero counts). Call once from bg_ctl_init(). Never fails. */
void bg_ctl_metrics_init(struct bg_ctl *c);

/* The /metrics body (caller frees). Reads c from the main loop's thread only. Never NULL. */
char *bg_ctl_metrics(struct bg_ctl *c);

#endif
