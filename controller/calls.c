/* calls.c -- PUT /v1/status to agents with libcurl multi: timeouts, retries, backoff. */
#include "calls.h"
#include "log.h"
#include "plan.h"
#include "util.h"

#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call {
    struct bg_call_req *req;
    CURL *easy;
    struct curl_slist *hdrs;
    char body[128];
    char *resp; /* the answer, NUL-terminated, at most RESP_MAX bytes kept */
    size_t resp_len, resp_cap;
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's detail, e.g. why a certificate was refused */
    int attempt;
    bool active;
    int64_t retry_at; /* 0: no retry pending */
};

/* An agent's answer lists every backend and the balancers it waits for: room for that, but a
 * bound (the rest is dropped; an answer cut short counts as confirmed, as an old agent's). */
#define RESP_MAX (256 * 1024)

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct call *k = ud;
    size_t n = size * nmemb;
    size_t room = RESP_MAX - k->resp_len;
    size_t take = n < room ? n : room;
    bg_buf_append(&k->resp, &k->resp_len, &k->resp_cap, ptr, take);
    return n;
}

static void start(CURLM *multi, struct call *k, const struct bg_call_opts *o)
{
    char url[600];
    snprintf(url, sizeof(url), "%s/v1/status", k->req->endpoint);
    if (k->req->up && k->req->weight > 0)
        snprintf(k->body, sizeof(k->body),
                 "{\"status\":\"UP\",\"epoch\":%lld,\"timeout_ms\":%lld,\"weight\":%d}",
                 (long long)o->epoch, (long long)o->timeout_ms, k->req->weight);
    else
        snprintf(k->body, sizeof(k->body), "{\"status\":\"%s\",\"epoch\":%lld,\"timeout_ms\":%lld}",
                 k->req->up ? "UP" : "OUT_OF_SERVICE", (long long)o->epoch,
                 (long long)o->timeout_ms);
    k->resp_len = 0;
    if (k->resp != NULL)
        k->resp[0] = '\0';
    k->curl_err[0] = '\0';
    if (k->easy == NULL) {
        k->easy = curl_easy_init();
        if (k->easy == NULL) {
            fprintf(stderr, "level=fatal event=curl_init_failed\n");
            abort();
        }
        k->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        k->hdrs = curl_slist_append(k->hdrs, "Expect:");
        if (o->token != NULL) {
            char auth[600];
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
            k->hdrs = curl_slist_append(k->hdrs, auth);
        }
    }
    CURL *e = k->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (k->req->probe) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, k->body);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(e, CURLOPT_PRIVATE, k);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->curl_err);
    /* https:// agents (http.tls) are verified, never trusted blindly: libcurl's defaults
     * (VERIFYPEER, VERIFYHOST) stay on; ca_file replaces the system store. */
    if (o->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    k->attempt++;
    k->active = true;
    curl_multi_add_handle(multi, e);
}

/* Did the agent's 200 answer say a balancer has not seen the change yet? */
static void read_confirmation(struct bg_call_req *r, const char *resp, size_t len)
{
    r->unconfirmed = false;
    r->n_waiting = 0;
    json_t *j = resp != NULL ? json_loadb(resp, len, 0, NULL) : NULL;
    if (json_is_object(j) && json_is_false(json_object_get(j, "confirmed"))) {
        r->unconfirmed = true;
        json_t *w = json_object_get(j, "waiting_for");
        size_t i;
        json_t *v;
        json_array_foreach(w, i, v)
        {
            const char *s = json_string_value(v);
            if (s == NULL)
                continue;
            if (r->n_waiting < BG_CALL_WAITING_MAX)
                bg_sanitize(s, strlen(s), r->waiting[r->n_waiting], BG_CALL_WAITING_LEN);
            r->n_waiting++;
        }
    }
    json_decref(j);
}

/* What a GET /v1/status says the agent has applied: its "status", trusted only when it does
 * not say the change is still being applied or failed ("applied": false) or that a balancer
 * has not seen it ("confirmed": false). */
static void read_probe(struct bg_call_req *r, const char *resp, size_t len)
{
    r->seen = 0;
    json_t *j = resp != NULL ? json_loadb(resp, len, 0, NULL) : NULL;
    const char *st = json_string_value(json_object_get(j, "status"));
    if (st != NULL && !json_is_false(json_object_get(j, "applied")) &&
        !json_is_false(json_object_get(j, "confirmed")))
        r->seen = strcmp(st, "UP") == 0 ? 1 : strcmp(st, "OUT_OF_SERVICE") == 0 ? 2 : 0;
    json_int_t w = json_integer_value(json_object_get(j, "weight"));
    r->seen_weight = w >= 1 && w <= 100 ? (int)w : 0;
    json_decref(j);
}

bool bg_call_classify(struct bg_call_req *r, int cc, long code, const char *curl_err,
                      const char *resp, size_t resp_len)
{
    r->http_code = (int)code;
    if (cc != CURLE_OK) {
        r->result = BG_CALL_FAILED;
        char detail[160]; /* leaves room for the curl error name in r->error */
        const char *e = curl_err != NULL ? curl_err : "";
        bg_sanitize(e, strlen(e), detail, sizeof(detail));
        if (detail[0] != '\0')
            snprintf(r->error, sizeof(r->error), "%s: %s", curl_easy_strerror((CURLcode)cc),
                     detail);
        else
            snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror((CURLcode)cc));
        /* A certificate that fails verification will fail the same way next time. */
        return cc != CURLE_PEER_FAILED_VERIFICATION && cc != CURLE_SSL_CACERT_BADFILE;
    }
    if (code == 200) {
        r->result = BG_CALL_OK;
        r->error[0] = '\0';
        if (r->probe)
            read_probe(r, resp, resp_len);
        else
            read_confirmation(r, resp, resp_len);
        return false;
    }
    /* The agent's own words (its JSON "error", failing backend and "reason"), not its body. */
    char said[sizeof(r->error) - 32]; /* room for "HTTP <code>: " */
    bg_agent_error_text(resp, resp_len, said, sizeof(said));
    if (code == 409) {
        r->result = BG_CALL_STALE;
        snprintf(r->error, sizeof(r->error), "409 stale epoch: %s", said);
        return false;
    }
    r->result = BG_CALL_FAILED;
    snprintf(r->error, sizeof(r->error), "HTTP %ld: %s", code, said);
    /* 4xx other than 408/429 will not get better by asking again. */
    return code >= 500 || code == 408 || code == 429;
}

int64_t bg_call_retry_delay_ms(bool retryable, int attempt, int retries, int64_t backoff_ms)
{
    if (!retryable || attempt > retries)
        return -1;
    int shift = attempt - 1 < 10 ? attempt - 1 : 10;
    return backoff_ms << (shift > 0 ? shift : 0);
}

/* Classify a finished transfer. Returns true when it may be retried. */
static bool finish(struct call *k, CURLcode cc)
{
    long code = 0;
    curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &code);
    k->req->attempts = k->attempt;
    return bg_call_classify(k->req, (int)cc, code, k->curl_err, k->resp, k->resp_len);
}

/* Wait for curl or the wake fd; returns false when the caller must stop. */
static bool wait_some(CURLM *multi, const struct bg_call_opts *o, int64_t max_ms)
{
    struct curl_waitfd extra[2] = {{.fd = o->wake_fd, .events = CURL_WAIT_POLLIN},
                                   {.fd = o->http_fd, .events = CURL_WAIT_POLLIN}};
    int numfds = 0;
    curl_multi_poll(multi, extra, o->http_fd >= 0 ? 2 : 1, (int)max_ms, &numfds);
    if ((extra[0].revents != 0 || extra[1].revents != 0) && o->on_wake != NULL)
        return o->on_wake(o->ctx);
    return true;
}

/* Take the transfers curl has finished: each is judged (finish) and either given a retry
 * time or done. Returns how many were done. */
static size_t take_finished(CURLM *multi, const struct bg_call_opts *o, int64_t t0)
{
    size_t done = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode cc = msg->data.result;
        curl_multi_remove_handle(multi, c->easy);
        c->active = false;
        bool again = finish(c, cc);
        int64_t delay = bg_call_retry_delay_ms(again, c->attempt, o->retries, o->backoff_ms);
        if (delay >= 0) {
            c->retry_at = bg_now_ms() + delay;
            bg_debug("call_retry", "endpoint=%s attempt=%d delay_ms=%lld error=\"%s\"",
                     c->req->endpoint, c->attempt, (long long)delay, c->req->error);
        } else {
            c->req->ms = bg_now_ms() - t0; /* answered or given up: the call's latency */
            done++;
        }
    }
    return done;
}

/* Start the retries that are due. Returns the ms until the next one (-1: none pending). */
static int64_t start_due(CURLM *multi, struct call *k, size_t n, const struct bg_call_opts *o)
{
    int64_t now = bg_now_ms(), next = -1;
    for (size_t i = 0; i < n; i++) {
        if (k[i].active || k[i].retry_at == 0)
            continue;
        if (k[i].retry_at <= now) {
            k[i].retry_at = 0;
            start(multi, &k[i], o);
        } else if (next < 0 || k[i].retry_at - now < next) {
            next = k[i].retry_at - now;
        }
    }
    return next;
}

/* Let go of every call's transfer; one still running is abandoned (failed). */
static void calls_free(CURLM *multi, struct call *k, size_t n, int64_t t0)
{
    for (size_t i = 0; i < n; i++) {
        if (k[i].active) {
            curl_multi_remove_handle(multi, k[i].easy);
            snprintf(k[i].req->error, sizeof(k[i].req->error), "abandoned: %s",
                     "connection to ZooKeeper lost");
            k[i].req->result = BG_CALL_FAILED;
        }
        if (k[i].active || k[i].retry_at != 0) /* abandoned, or waiting to be retried */
            k[i].req->ms = bg_now_ms() - t0;
        if (k[i].easy != NULL)
            curl_easy_cleanup(k[i].easy);
        curl_slist_free_all(k[i].hdrs);
        free(k[i].resp);
    }
    free(k);
}

int bg_calls_run(CURLM *multi, struct bg_call_req *reqs, size_t n, const struct bg_call_opts *o)
{
    struct call *k = bg_xcalloc(n, sizeof(*k));
    int rc = BG_OK;
    int64_t t0 = bg_now_ms();
    for (size_t i = 0; i < n; i++) {
        k[i].req = &reqs[i];
        reqs[i].result = BG_CALL_FAILED;
        start(multi, &k[i], o);
    }
    size_t active = n;
    while (active > 0) {
        int running = 0;
        curl_multi_perform(multi, &running);
        active -= take_finished(multi, o, t0);
        if (active == 0)
            break;
        int64_t next = start_due(multi, k, n, o);
        if (!wait_some(multi, o, next < 0 || next > 100 ? 100 : next)) {
            rc = BG_ELOST;
            break;
        }
    }
    calls_free(multi, k, n, t0);
    return rc;
}
