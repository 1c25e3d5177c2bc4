/* curlm.c -- libcurl's multi socket API inside the agent's poll loop: socket and timer
 * bookkeeping shared by the http health check and the Eureka backend. */
#include "curlm.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CURLMOPT_SOCKETFUNCTION: remember which socket wants what. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *user, void *sockp)
{
    (void)easy;
    (void)sockp;
    struct bg_curlm *m = user;
    int i;
    for (i = 0; i < m->n_socks; i++)
        if (m->socks[i].fd == s)
            break;
    if (what == CURL_POLL_REMOVE) {
        if (i < m->n_socks)
            m->socks[i] = m->socks[--m->n_socks];
        return 0;
    }
    if (i == m->n_socks) {
        if (m->n_socks == BG_CURLM_MAX_SOCKS)
            return -1; /* cannot happen: owners run at most two transfers at a time */
        m->n_socks++;
    }
    m->socks[i].fd = s;
    m->socks[i].what = what;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 removes the timer. */
static int on_timer(CURLM *multi, long timeout_ms, void *user)
{
    (void)multi;
    struct bg_curlm *m = user;
    m->timer_at = timeout_ms < 0 ? 0 : bg_now_ms() + timeout_ms;
    return 0;
}

int bg_curlm_init(struct bg_curlm *m, char *err, size_t errlen)
{
    *m = (struct bg_curlm){0};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        snprintf(err, errlen, "curl_multi_init failed");
        curl_global_cleanup();
        return -1;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return 0;
}

void bg_curlm_finalize(struct bg_curlm *m)
{
    if (m->multi == NULL)
        return;
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    m->n_socks = 0;
    m->timer_at = 0;
    curl_global_cleanup();
}

CURL *bg_curlm_easy_new(void)
{
    CURL *h = curl_easy_init();
    if (h == NULL) {
        fprintf(stderr, "level=fatal event=curl_init_failed\n");
        abort();
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    return h;
}

void bg_curlm_add(struct bg_curlm *m, CURL *easy)
{
    curl_multi_add_handle(m->multi, easy);
}

void bg_curlm_kick(struct bg_curlm *m)
{
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

void bg_curlm_remove(struct bg_curlm *m, CURL **easy)
{
    if (*easy == NULL)
        return;
    curl_multi_remove_handle(m->multi, *easy);
    curl_easy_cleanup(*easy);
    *easy = NULL;
}

int bg_curlm_fds(const struct bg_curlm *m, struct pollfd *pfd, int max)
{
    int n = 0;
    for (int i = 0; i < m->n_socks && n < max; i++) {
        short ev = 0;
        if (m->socks[i].what & CURL_POLL_IN)
            ev |= POLLIN;
        if (m->socks[i].what & CURL_POLL_OUT)
            ev |= POLLOUT;
        pfd[n++] = (struct pollfd){.fd = m->socks[i].fd, .events = ev};
    }
    return n;
}

bool bg_curlm_on_fds(struct bg_curlm *m, const struct pollfd *pfd, int n)
{
    bool any = false;
    for (int i = 0; i < n; i++) {
        if (pfd[i].revents == 0)
            continue;
        int mask = 0;
        if (pfd[i].revents & POLLIN)
            mask |= CURL_CSELECT_IN;
        if (pfd[i].revents & POLLOUT)
            mask |= CURL_CSELECT_OUT;
        if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
            mask |= CURL_CSELECT_ERR;
        int running;
        curl_multi_socket_action(m->multi, pfd[i].fd, mask, &running);
        any = true;
    }
    return any;
}

bool bg_curlm_tick(struct bg_curlm *m, int64_t now)
{
    if (m->timer_at == 0 || m->timer_at > now)
        return false;
    m->timer_at = 0;
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    return true;
}

/* ----------------------------------------------------------------------------------------
 * Response bodies.
 * ------------------------------------------------------------------------------------- */

void bg_curlm_body_init(struct bg_curlm_body *b, size_t max)
{
    *b = (struct bg_curlm_body){.max = max};
}

void bg_curlm_body_reset(struct bg_curlm_body *b)
{
    free(b->data);
    bg_curlm_body_init(b, b->max);
}

void bg_curlm_body_finalize(struct bg_curlm_body *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

size_t bg_curlm_body_write(char *data, size_t size, size_t n, void *user)
{
    struct bg_curlm_body *b = user;
    size_t len = size * n;
    /* Once anything was dropped, so is everything after it: a later chunk that would fit
     * must not be glued on after the gap. */
    if (b->truncated || b->len + len > b->max) {
        b->truncated = true;
        return len; /* keep the start; the rest is dropped */
    }
    bg_buf_append(&b->data, &b->len, &b->cap, data, len);
    return len;
}
