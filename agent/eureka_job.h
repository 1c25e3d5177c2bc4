/* eureka_job.h -- the Eureka backend's job machine: which request an apply (or a background
 * registration) sends next, and what each answer means. Pure: no sockets, no clock of its
 * own; backend_eureka.c carries the requests, tests/unit/test_eureka_job.c feeds answers. */
#ifndef BG_EUREKA_JOB_H
#define BG_EUREKA_JOB_H

#include "agent.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The settings of a "type: eureka" entry (loaded by backend_eureka.c). */
struct bg_eureka_conf {
    char **urls; /* required, at least one */
    size_t n_urls;
    char *app;                 /* default instance.app; upper-cased when loaded */
    char *instance_id;         /* default instance.id */
    bool reg;                  /* "register", default false */
    int64_t renew_interval_ms; /* default 30s */
    int64_t duration_ms;       /* lease duration, default 90s */
    char *host_name;           /* default host of instance.endpoint */
    char *ip_addr;             /* default host of instance.endpoint */
    char *vip_address;         /* default lower-cased app */
    int port;                  /* default port of instance.endpoint */
    int64_t timeout_ms;        /* per request, default 2s */
};

#define BG_EU_CONFIRM_TRIES 10
#define BG_EU_CONFIRM_GAP_MS 100

/* A job's steps: [register] -> status call -> [metadata weight] -> confirm (GET until
 * instance.status says so). The metadata call (PUT .../metadata?weight=W, DESIGN §12: Spring
 * Cloud LoadBalancer's weighted supplier reads it) is made after UP when the job has a weight;
 * the owner carries it as a status-kind request and feeds its answer as BG_EU_STATUS (the job
 * knows from its step which one was answered). */
enum bg_eu_step { BG_EU_REGISTER, BG_EU_STATUS, BG_EU_CONFIRM, BG_EU_DONE, BG_EU_METADATA };

struct bg_eu_job {
    bool active;
    bool fg;         /* an apply the agent waits for */
    bool has_target; /* false: register only (start-up) */
    bool reg;        /* register: true, so a 404 is answered by registering again */
    enum bg_status target;
    int weight; /* with UP: metadata "weight" to set (0-100); -1: none (bg_eu_job_start) */
    enum bg_eu_step step;
    int64_t not_before; /* the next request waits until then (a confirmation's gap) */
    int64_t started;
    int confirm_tries;
    int registers;    /* re-registrations after a 404, at most one per job */
    size_t url;       /* the URL that took the status call: confirm there first */
    int64_t limit_ms; /* the caller's deadline (0: none): stop re-reading before it */
    char skipped[300];
};

/* What the transport reports of the job's finished request (after failover). */
struct bg_eu_answer {
    bool transport_ok;  /* an HTTP answer came (libcurl's CURLE_OK) */
    long code;          /* its status, 0 without one */
    const char *status; /* a confirm's instance.status, NULL when absent or unparsable */
    size_t url;         /* the index of the URL that answered */
};

/* What an answer means to the owner. */
enum bg_eu_outcome {
    BG_EU_NEXT,            /* go on: send bg_eu_job_next's request (at not_before) */
    BG_EU_REGISTERED,      /* the registration was accepted; go on */
    BG_EU_LOST,            /* 404 while registered: the job registers again; go on */
    BG_EU_CONFIRMED,       /* done, rc 0 */
    BG_EU_REGISTER_FAILED, /* done, BG_EHTTP */
    BG_EU_STATUS_FAILED,   /* done, BG_EHTTP */
    BG_EU_NOT_REGISTERED,  /* done, BG_ENOTFOUND: 404 and no (more) registering */
    BG_EU_MISMATCH,        /* done, BG_EHTTP: the registry kept another status */
    BG_EU_UNCONFIRMED,     /* done, BG_EHTTP: no readable status in the answers */
};

/* A new job, replacing any. Cannot fail. */
void bg_eu_job_start(struct bg_eu_job *j, bool fg, bool has_target, enum bg_status target, bool reg,
                     int64_t now);
/* The status the agent registers with for this job: "UP" or "STARTING" (see
 * backend_eureka.c for why never OUT_OF_SERVICE). */
const char *bg_eu_job_own_status(const struct bg_eu_job *j);
/* The request to send now. registered_as: the status of our current registration, NULL
 * when not registered. Skips a registration that is already in place; BG_EU_DONE when a
 * register-only job has nothing left to send. */
enum bg_eu_step bg_eu_job_next(struct bg_eu_job *j, const char *registered_as);
/* Feed the answer to the request of step `sent`. Returns what it means; on a final outcome
 * the owner ends the job (j->active is left to it). */
enum bg_eu_outcome bg_eu_job_feed(struct bg_eu_job *j, enum bg_eu_step sent,
                                  const struct bg_eu_answer *a, int64_t now);
/* The job's rc for a final outcome: 0, BG_EHTTP or BG_ENOTFOUND. */
int bg_eu_outcome_rc(enum bg_eu_outcome o);

/* The registration body (POST /apps/APP) in the shape of Eureka's JSON codec, registering
 * status ("UP" or "STARTING") with lastDirtyTimestamp dirty_ts; its health check URL is the
 * agent's own /health (in->endpoint). Returns a string the caller frees. Cannot fail. */
char *bg_eu_register_body(const struct bg_eureka_conf *c, const struct bg_instance_conf *in,
                          const char *status, int64_t dirty_ts);

#endif
