/* curlm.h -- libcurl's multi socket API driven by the agent's poll loop: the one layer under
 * every HTTP-speaking part of the agent (the http health check, the Eureka backend). */
#ifndef BG_CURLM_H
#define BG_CURLM_H

#include <curl/curl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#define BG_CURLM_MAX_SOCKS 16

/*
 * The owner adds easy handles (bg_curlm_add), lists the sockets libcurl wants in its poll
 * set (bg_curlm_fds), hands the poll results back (bg_curlm_on_fds), fires libcurl's timer
 * when bg_curlm_timer_at says so (bg_curlm_tick), and reads finished transfers with
 * curl_multi_info_read(m->multi, ...) itself: what a finished transfer means is the owner's
 * business, the sockets and the timer are this layer's. Nothing here blocks.
 */
struct bg_curlm {
    CURLM *multi;
    struct {
        curl_socket_t fd;
        int what; /* CURL_POLL_IN / _OUT / _INOUT */
    } socks[BG_CURLM_MAX_SOCKS];
    int n_socks;
    int64_t timer_at; /* monotonic ms of libcurl's timer, 0 for none */
};

/* Set up (curl_global_init included). Returns 0, or -1 with the reason in err when libcurl
 * cannot make a multi handle. Pair with bg_curlm_finalize. */
int bg_curlm_init(struct bg_curlm *m, char *err, size_t errlen);
/* Cleans up the multi handle; the owner removed and freed its easy handles before. Safe on a
 * struct whose init failed or that was zeroed. */
void bg_curlm_finalize(struct bg_curlm *m);

/* A new easy handle with CURLOPT_NOSIGNAL set. Out of memory aborts. */
CURL *bg_curlm_easy_new(void);
/* Start a transfer: libcurl begins it at its timer (due at once), from bg_curlm_tick. */
void bg_curlm_add(struct bg_curlm *m, CURL *easy);
/* Let libcurl run its due work now rather than at the next bg_curlm_tick: after it, an
 * immediate failure (e.g. a bad host name) is readable with curl_multi_info_read. */
void bg_curlm_kick(struct bg_curlm *m);
/* Stop a transfer and free its handle; *easy becomes NULL. Safe with *easy NULL. */
void bg_curlm_remove(struct bg_curlm *m, CURL **easy);

/* Descriptors to poll; returns how many were written (at most max). */
int bg_curlm_fds(const struct bg_curlm *m, struct pollfd *pfd, int max);
/* After poll, with the entries bg_curlm_fds filled: lets libcurl read and write. Returns true
 * when any descriptor had an event. */
bool bg_curlm_on_fds(struct bg_curlm *m, const struct pollfd *pfd, int n);
/* Fires libcurl's timer if it is due at now. Returns true when it fired. */
bool bg_curlm_tick(struct bg_curlm *m, int64_t now);

/* ---------------------------------------------------------------------------------------
 * A response body assembled from libcurl's write callbacks: NUL-terminated (data is NULL
 * until the first byte), at most max bytes. Past max the rest of the body is dropped and the
 * start kept; truncated says so.
 * ------------------------------------------------------------------------------------ */
struct bg_curlm_body {
    char *data;
    size_t len, cap, max; /* cap: allocated (bg_buf_append) */
    bool truncated;
};

/* An empty body keeping at most max bytes (the start of an answer; see bg_curlm_body_write).
 * Pair with bg_curlm_body_finalize(). */
void bg_curlm_body_init(struct bg_curlm_body *b, size_t max);
/* Empty it again (for the next attempt); max is kept. */
void bg_curlm_body_reset(struct bg_curlm_body *b);
void bg_curlm_body_finalize(struct bg_curlm_body *b);
/* CURLOPT_WRITEFUNCTION, with CURLOPT_WRITEDATA the struct bg_curlm_body. Takes every byte
 * (a transfer is never failed for its size). Out of memory aborts. */
size_t bg_curlm_body_write(char *data, size_t size, size_t n, void *user);

#endif
