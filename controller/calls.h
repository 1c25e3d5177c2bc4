/* calls.h -- the controller's status calls to agents (PUT /v1/status), batched. */
#ifndef BG_CALLS_H
#define BG_CALLS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Balancers kept from an answer's "waiting_for" (more are counted), and their length. */
#define BG_CALL_WAITING_MAX 4
#define BG_CALL_WAITING_LEN 128

enum bg_call_result { BG_CALL_OK = 0, BG_CALL_FAILED, BG_CALL_STALE };

struct bg_call_req {
    const char *endpoint; /* "http://host:port" or "https://host:port" */
    bool up;
    bool probe; /* GET /v1/status (ask, change nothing) instead of PUT */
    int weight; /* with up: "weight" (1-100) sent in the call; 0: none sent */
    /* out */
    enum bg_call_result result;
    int http_code;
    int attempts;
    int64_t ms; /* from the first attempt to the answer (or giving up) */
    char error[256];
    /* With BG_CALL_OK: the agent applied the status but a balancer has not seen it yet (the
     * answer said "confirmed": false; an agent that does not say counts as confirmed), and
     * which balancers ("waiting_for", sanitised). */
    bool unconfirmed;
    int n_waiting;
    char waiting[BG_CALL_WAITING_MAX][BG_CALL_WAITING_LEN];
    /* With probe and BG_CALL_OK: the status the agent says it has applied, every balancer
     * having seen it (1 UP, 2 OUT_OF_SERVICE), or 0 when it says otherwise or does not say. */
    int seen;
    int seen_weight; /* and the weight it says it has (1-100), 0 when it does not say */
};

struct bg_call_opts {
    int64_t epoch;
    const char *token;   /* bearer token or NULL */
    const char *ca_file; /* PEM CA bundle for https:// endpoints; NULL: the system store.
                          * Certificates and host names are always verified. */
    int64_t timeout_ms;
    int retries;
    int64_t backoff_ms;
    int wake_fd;                /* polled while waiting */
    int http_fd;                /* also polled (-1: none); on_wake runs when either is ready */
    bool (*on_wake)(void *ctx); /* false: abandon the calls (connection lost, stopping) */
    void *ctx;
};

/* Classify one finished call (pure: no I/O, unit-tested): cc is the transfer's CURLcode, code
 * the HTTP status (0 when none), curl_err libcurl's detail text (may be NULL or ""), resp the
 * answer's body (may be NULL). Fills r's result, http_code and error, and with a 200 what the
 * answer says (unconfirmed/waiting for a PUT, seen for a probe). Returns true when asking
 * again may help: transport errors except a certificate that fails verification, 5xx, 408
 * and 429; never 200, 409 (stale epoch) or another 4xx. */
bool bg_call_classify(struct bg_call_req *r, int cc, long code, const char *curl_err,
                      const char *resp, size_t resp_len);
/* When attempt number `attempt` (1: the first) ended retryable: the delay before the next one,
 * backoff_ms doubled per attempt made, at most 1024 times backoff_ms; -1 when there is no next
 * one (not retryable, or the `retries` retries are spent: at most retries + 1 attempts). */
int64_t bg_call_retry_delay_ms(bool retryable, int attempt, int retries, int64_t backoff_ms);

/* Run n calls concurrently (no fixed limit), started in order, each retried on transient
 * failure with exponential backoff. Returns 0, or BG_ELOST when on_wake said to stop (unfinished
 * calls are marked failed, "abandoned: ..."). Connections are reused through the multi handle's
 * cache. Every reqs[i] comes back with result, http_code and error set (bg_call_classify) and
 * ms: from the start of the run to its last attempt's end (answered, given up, or abandoned).
 * Runs on the caller's thread; HTTP keeps being served through o->on_wake while it waits. */
int bg_calls_run(CURLM *multi, struct bg_call_req *reqs, size_t n, const struct bg_call_opts *o);

#endif
