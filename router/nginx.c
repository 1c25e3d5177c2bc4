/* nginx.c -- bg-router kind nginx: one change of the upstream file, tested before it stays,
 * reloaded, and confirmed through nginx (see router.h for the steps). */
#include "log.h"
#include "router.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KILL_GRACE_MS 1000

static bool nginx_busy(const struct bg_balancer *b)
{
    const struct bg_nginx *x = (const struct bg_nginx *)b;
    return x->state != BG_NGINX_IDLE;
}

/* ----------------------------------------------------------------------------------------
 * Files: write aside, swap in keeping the old one, restore it.
 * ------------------------------------------------------------------------------------- */

static void fail(struct bg_nginx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct bg_nginx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->b.c.error, sizeof(x->b.c.error), fmt, ap);
    va_end(ap);
    x->b.c.ok = false;
}

static int write_aside(struct bg_nginx *x, const char *text)
{
    int rc = bg_write_file(x->new_path, text, x->b.c.error, sizeof(x->b.c.error));
    x->b.c.ok = false;
    return rc;
}

/* The new file in place, the old one (if any) kept as <file>.bg-prev. */
static int swap_in(struct bg_nginx *x)
{
    unlink(x->prev_path);
    x->had_old = link(x->conf->file, x->prev_path) == 0;
    if (!x->had_old && errno != ENOENT) {
        fail(x, "cannot keep the old %s as %s: %s", x->conf->file, x->prev_path, strerror(errno));
        unlink(x->new_path);
        return BG_EINVAL;
    }
    if (rename(x->new_path, x->conf->file) != 0) {
        fail(x, "cannot rename %s to %s: %s", x->new_path, x->conf->file, strerror(errno));
        unlink(x->new_path);
        if (x->had_old)
            unlink(x->prev_path);
        return BG_EINVAL;
    }
    bg_sync_dir(x->conf->file);
    return BG_OK;
}

/* The test failed: the old file back (or none, as before). */
static void restore(struct bg_nginx *x)
{
    int rc = x->had_old ? rename(x->prev_path, x->conf->file) : unlink(x->conf->file);
    if (rc != 0)
        bg_error("nginx_restore_failed", "file=%s errno=%d reason=\"%s\"", x->conf->file, errno,
                 strerror(errno));
    bg_sync_dir(x->conf->file);
    x->had_old = false;
}

/* ----------------------------------------------------------------------------------------
 * Commands and confirmation.
 * ------------------------------------------------------------------------------------- */

static int spawn(struct bg_nginx *x, char **argv)
{
    char err[256] = "";
    x->child = bg_child_spawn(argv, NULL, x->conf->timeout_ms, KILL_GRACE_MS, err, sizeof(err));
    if (x->child == NULL) {
        fail(x, "cannot run %s: %s", argv[0], err);
        return BG_EINVAL;
    }
    return BG_OK;
}

static size_t collect(char *data, size_t size, size_t nmemb, void *user)
{
    char *buf = user;
    size_t have = strlen(buf), n = size * nmemb;
    size_t room = 127 - have;
    memcpy(buf + have, data, n < room ? n : room);
    buf[have + (n < room ? n : room)] = '\0';
    return n;
}

/* Ask nginx once which generation it answers; true when it is x->b.c.gen. what receives what it
 * said (or why it did not). Blocks at most BG_NGINX_ASK_MS (loopback, by design). */
static bool ask(struct bg_nginx *x, char *what, size_t whatlen)
{
    char url[300], want[200], body[128] = "";
    snprintf(url, sizeof(url), "http://%s/bg-router/generation", x->conf->confirm);
    snprintf(want, sizeof(want), "%s %lld\n", x->router_id, (long long)x->b.c.gen);
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(what, whatlen, "curl_easy_init failed");
        return false;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)BG_NGINX_ASK_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L); /* a new connection: a new worker's answer */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)body);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        snprintf(what, whatlen, "%s", curl_easy_strerror(rc));
        return false;
    }
    bg_sanitize(body, strlen(body), what, whatlen);
    return code == 200 && strcmp(body, want) == 0;
}

/* ----------------------------------------------------------------------------------------
 * The steps.
 * ------------------------------------------------------------------------------------- */

static int nginx_start(struct bg_balancer *b, const struct bg_route_set *set, int64_t gen,
                       int64_t now)
{
    struct bg_nginx *x = (struct bg_nginx *)b;
    x->b.c.ok = false;
    x->b.c.confirmed = false;
    x->b.c.error[0] = '\0';
    x->b.c.gen = gen;
    x->b.c.started_ms = now;
    bg_route_set_copy(&x->b.c.pending, set);
    char why[256] = "";
    char *text =
        bg_route_render_nginx(x->router_id, x->conf->upstream, x->conf->options, x->conf->n_options,
                              set, gen, x->conf->confirm, why, sizeof(why));
    if (text == NULL) {
        fail(x, "nothing rendered: %s", why);
        return BG_EINVAL;
    }
    int rc = write_aside(x, text);
    free(text);
    if (rc != BG_OK || swap_in(x) != BG_OK)
        return BG_EINVAL;
    if (spawn(x, x->conf->test) != BG_OK) {
        restore(x);
        return BG_EINVAL;
    }
    x->state = BG_NGINX_TESTING;
    return BG_OK;
}

/* The running child is over: its result in msg, 0 for exit 0. */
static int reap(struct bg_nginx *x, int64_t now, char *msg, size_t msglen)
{
    int rc = bg_child_result(x->child, now, msg, msglen);
    bg_child_free(x->child);
    x->child = NULL;
    return rc;
}

static bool over(struct bg_nginx *x, bool ok, int64_t now)
{
    x->b.c.ok = ok;
    x->b.c.ms = now - x->b.c.started_ms;
    x->state = BG_NGINX_IDLE;
    return true;
}

static bool tested(struct bg_nginx *x, int64_t now)
{
    char msg[400];
    if (reap(x, now, msg, sizeof(msg)) != 0) {
        restore(x);
        fail(x, "test %s failed (the old file is kept): %s", x->conf->test[0], msg);
        return over(x, false, now);
    }
    unlink(x->prev_path);
    x->had_old = false;
    if (spawn(x, x->conf->reload) != BG_OK)
        return over(x, false, now);
    x->state = BG_NGINX_RELOADING;
    return false;
}

static bool reloaded(struct bg_nginx *x, int64_t now)
{
    char msg[400];
    if (reap(x, now, msg, sizeof(msg)) != 0) {
        fail(x, "reload %s failed (the new file is in place, not served): %s", x->conf->reload[0],
             msg);
        return over(x, false, now);
    }
    if (x->conf->confirm == NULL)
        return over(x, true, now);
    x->state = BG_NGINX_CONFIRMING;
    x->streak = 0;
    x->confirm_until_ms = now + x->conf->confirm_timeout_ms;
    x->ask_at_ms = now;
    return false;
}

static bool confirming(struct bg_nginx *x, int64_t now)
{
    if (now < x->ask_at_ms)
        return false;
    char what[160];
    /* One answer proves a new worker runs; an old one may still take connections until it
     * has handled the master's QUIT. Several in a row, on new connections, make that window
     * past. */
    x->streak = ask(x, what, sizeof(what)) ? x->streak + 1 : 0;
    now = bg_now_ms();
    if (x->streak >= BG_NGINX_CONFIRM_STREAK) {
        x->b.c.confirmed = true;
        return over(x, true, now);
    }
    if (now >= x->confirm_until_ms) {
        fail(x, "reload not confirmed within %lld ms: http://%s/bg-router/generation said \"%s\"",
             (long long)x->conf->confirm_timeout_ms, x->conf->confirm, what);
        return over(x, false, now);
    }
    x->ask_at_ms = now + BG_NGINX_ASK_EVERY;
    return false;
}

static bool nginx_step(struct bg_balancer *b, int64_t now)
{
    struct bg_nginx *x = (struct bg_nginx *)b;
    switch (x->state) {
    case BG_NGINX_TESTING:
        return bg_child_step(x->child, now) && tested(x, now);
    case BG_NGINX_RELOADING:
        return bg_child_step(x->child, now) && reloaded(x, now);
    case BG_NGINX_CONFIRMING:
        return confirming(x, now);
    case BG_NGINX_IDLE:
        break;
    }
    return false;
}

static int nginx_fds(const struct bg_balancer *b, struct pollfd *pfd, int n, int max)
{
    const struct bg_nginx *x = (const struct bg_nginx *)b;
    return x->child != NULL ? bg_child_fds(x->child, pfd, n, max) : n;
}

static int64_t nginx_deadline(const struct bg_balancer *b, int64_t now)
{
    const struct bg_nginx *x = (const struct bg_nginx *)b;
    if (x->child != NULL)
        return bg_child_deadline(x->child, now);
    if (x->state == BG_NGINX_CONFIRMING)
        return x->ask_at_ms;
    return INT64_MAX;
}

static void nginx_free(struct bg_balancer *b)
{
    struct bg_nginx *x = (struct bg_nginx *)b;
    if (x->child != NULL) {
        bg_child_free(x->child);
        x->child = NULL;
    }
    if (x->state == BG_NGINX_TESTING && x->new_path != NULL)
        restore(x);
    bg_route_set_free(&x->b.c.pending);
    bg_free(&x->new_path);
    bg_free(&x->prev_path);
    free(x);
}

static const struct bg_balancer_ops nginx_ops = {
    .kind = "nginx",
    .start = nginx_start,
    .step = nginx_step,
    .busy = nginx_busy,
    .fds = nginx_fds,
    .deadline = nginx_deadline,
    .tick = NULL,
    .free = nginx_free,
};

struct bg_balancer *bg_nginx_make(const struct bg_router_conf *conf)
{
    struct bg_nginx *x = bg_xcalloc(1, sizeof(*x));
    x->b.ops = &nginx_ops;
    x->conf = &conf->nginx;
    x->router_id = conf->id;
    x->new_path = bg_xasprintf("%s.bg-new", conf->nginx.file);
    x->prev_path = bg_xasprintf("%s.bg-prev", conf->nginx.file);
    return &x->b;
}
