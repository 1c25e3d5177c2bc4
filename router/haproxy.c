/* haproxy.c -- bg-router kind haproxy: servers added, weighted, drained and deleted at run time
 * through HAProxy's Runtime API, no reload (see router.h for the steps; hap.c decides). */
#include "hap.h"
#include "log.h"
#include "router.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------------------
 * One command: a new connection, the command, everything HAProxy writes until it closes.
 * ------------------------------------------------------------------------------------- */

/* Wait for events on fd until deadline (monotonic ms), running b's wait hook every
 * BG_BALANCER_HOOK_MS. BG_OK, or BG_EINVAL at the deadline or when the hook says stop. */
static int wait_fd(const struct bg_balancer *b, int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - bg_now_ms();
        if (left <= 0)
            return BG_EINVAL;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)(left < BG_BALANCER_HOOK_MS ? left : BG_BALANCER_HOOK_MS));
        if (rc > 0)
            return BG_OK;
        if (rc < 0 && errno != EINTR)
            return BG_EINVAL;
        if (b->wait_hook != NULL && !b->wait_hook(b->wait_ctx))
            return BG_EINVAL;
    }
}

static int connect_unix(const char *path, char *why, size_t whylen)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path)) {
        snprintf(why, whylen, "socket path %s is too long", path);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        snprintf(why, whylen, "cannot connect to %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int send_all(const struct bg_balancer *b, int fd, const char *data, size_t len,
                    int64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = send(fd, data + done, len - done, MSG_NOSIGNAL);
        if (w > 0)
            done += (size_t)w;
        else if (w < 0 && errno == EINTR)
            continue;
        else if (w < 0 && errno == EAGAIN && wait_fd(b, fd, POLLOUT, deadline) == BG_OK)
            continue;
        else
            return BG_EINVAL;
    }
    return BG_OK;
}

/* Read until HAProxy closes; *buf grows. */
static int recv_all(const struct bg_balancer *b, int fd, char **buf, size_t *len, int64_t deadline,
                    char *why, size_t whylen)
{
    size_t cap = 4096;
    *buf = bg_xmalloc(cap);
    *len = 0;
    for (;;) {
        if (cap - *len < 2048) {
            cap *= 2;
            *buf = bg_xrealloc(*buf, cap);
        }
        ssize_t r = recv(fd, *buf + *len, cap - *len - 1, 0);
        if (r > 0)
            *len += (size_t)r;
        if (r == 0)
            break;
        if (*len > BG_HAP_ANSWER_MAX) {
            snprintf(why, whylen, "answer longer than %d bytes", BG_HAP_ANSWER_MAX);
            return BG_EINVAL;
        }
        if (r < 0 && errno != EINTR && errno != EAGAIN) {
            snprintf(why, whylen, "read failed: %s", strerror(errno));
            return BG_EINVAL;
        }
        if (r < 0 && errno == EAGAIN && wait_fd(b, fd, POLLIN, deadline) != BG_OK) {
            snprintf(why, whylen, "no answer within the timeout");
            return BG_EINVAL;
        }
    }
    (*buf)[*len] = '\0';
    return BG_OK;
}

int bg_haproxy_ask(const struct bg_balancer *b, const char *socket, const char *cmd,
                   int64_t timeout_ms, char **answer, char *why, size_t whylen)
{
    *answer = NULL;
    int64_t deadline = bg_now_ms() + timeout_ms;
    int fd = connect_unix(socket, why, whylen);
    if (fd < 0)
        return BG_EINVAL;
    char *line = bg_xasprintf("%s\n", cmd);
    size_t len = 0;
    int rc = send_all(b, fd, line, strlen(line), deadline);
    if (rc != BG_OK)
        snprintf(why, whylen, "cannot send to %s: %s", socket,
                 errno != 0 ? strerror(errno) : "timed out");
    else
        rc = recv_all(b, fd, answer, &len, deadline, why, whylen);
    free(line);
    close(fd);
    if (rc != BG_OK)
        bg_free(answer);
    return rc;
}

/* ----------------------------------------------------------------------------------------
 * A change, whole: read, plan, command, confirm.
 * ------------------------------------------------------------------------------------- */

static void fail(struct bg_haproxy *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct bg_haproxy *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->b.c.error, sizeof(x->b.c.error), fmt, ap);
    va_end(ap);
    x->b.c.ok = false;
}

/* cmd's answer, NULL (x->b.c.error set) when HAProxy could not be asked. */
static char *ask(struct bg_haproxy *x, const char *cmd)
{
    char why[300], *answer = NULL;
    if (bg_haproxy_ask(&x->b, x->conf->socket, cmd, x->conf->timeout_ms, &answer, why,
                       sizeof(why)) != BG_OK)
        fail(x, "haproxy runtime API (%s), \"%s\": %s", x->conf->socket, cmd, why);
    return answer;
}

/* HAProxy's process id (0 with x->b.c.error set when it cannot be asked). */
static long read_pid(struct bg_haproxy *x)
{
    char *a = ask(x, "show info");
    long pid = a != NULL ? bg_hap_info_pid(a, strlen(a)) : 0;
    if (a != NULL && pid == 0)
        fail(x, "haproxy runtime API (%s): show info gave no Pid", x->conf->socket);
    free(a);
    return pid;
}

static int read_state(struct bg_haproxy *x, struct bg_hap_state *st)
{
    char cmd[200], why[300];
    snprintf(cmd, sizeof(cmd), "show servers state %s", x->conf->backend);
    char *a = ask(x, cmd);
    if (a == NULL)
        return BG_EINVAL;
    int rc = bg_hap_state_parse(a, strlen(a), x->conf->backend, st, why, sizeof(why));
    free(a);
    if (rc != BG_OK)
        fail(x, "backend %s: %s", x->conf->backend, why);
    return rc;
}

/* Run cmds in order; stop at the first one HAProxy refuses (quiet: a refusal is not an error). */
static int run_cmds(struct bg_haproxy *x, const struct bg_hap_cmds *cmds, bool quiet)
{
    for (size_t i = 0; i < cmds->n; i++) {
        char *a = ask(x, cmds->c[i]);
        if (a == NULL)
            return BG_EINVAL;
        bool ok = bg_hap_answer_ok(a);
        if (!ok && !quiet) {
            char shown[200];
            bg_sanitize(a, strlen(a), shown, sizeof(shown));
            fail(x, "haproxy refused \"%s\": %s", cmds->c[i], shown);
        }
        free(a);
        if (!ok)
            return BG_EINVAL;
    }
    return BG_OK;
}

static int apply(struct bg_haproxy *x, const struct bg_route_set *set)
{
    long pid = read_pid(x);
    struct bg_hap_state have = {0};
    if (pid == 0 || read_state(x, &have) != BG_OK)
        return BG_EINVAL;
    struct bg_hap_cmds cmds = {0};
    char why[300] = "";
    int rc = bg_hap_plan(x->conf->backend, set, &have, &cmds, why, sizeof(why));
    if (rc != BG_OK)
        fail(x, "nothing applied: %s", why);
    else
        rc = run_cmds(x, &cmds, false);
    bg_hap_state_free(&have);
    if (rc == BG_OK)
        rc = read_state(x, &have);
    if (rc == BG_OK && !bg_hap_confirm(set, &have, why, sizeof(why))) {
        fail(x, "not confirmed by show servers state: %s", why);
        rc = BG_EINVAL;
    }
    if (rc == BG_OK && cmds.n > 0)
        bg_info("haproxy_changed", "backend=%s commands=%zu pid=%ld", x->conf->backend, cmds.n,
                pid);
    bg_hap_state_free(&have);
    bg_hap_cmds_free(&cmds);
    x->pid = rc == BG_OK ? pid : 0;
    return rc;
}

/* haproxy.file: the backend section as now served, handed to the writer thread (HAProxy reads
 * it at its next reload or restart; a section cannot span files, hence the whole section). A
 * set that cannot be rendered was refused by the plan already. */
static void write_file(struct bg_haproxy *x, const struct bg_route_set *set, int64_t gen)
{
    const struct bg_haproxy_conf *c = x->conf;
    char why[300] = "";
    char *text = bg_hap_render_backend(x->router_id, c->backend, c->options, c->n_options, set, gen,
                                       why, sizeof(why));
    if (text != NULL)
        bg_filewriter_put(&x->file, text);
    else
        bg_warn("haproxy_file_failed", "file=%s reason=\"%s\"", c->file, why);
    free(text);
}

/* A failed write of haproxy.file, logged once per different reason. */
static void file_status(struct bg_haproxy *x)
{
    char error[BG_FILEWRITER_ERROR_MAX];
    bg_filewriter_status(&x->file, error, sizeof(error), NULL);
    if (strcmp(error, x->file_error) != 0 && error[0] != '\0')
        bg_warn("haproxy_file_failed",
                "file=%s reason=\"%s\" effect=\"a reload of HAProxy would lose the servers\"",
                x->conf->file, error);
    else if (strcmp(error, x->file_error) != 0)
        bg_info("haproxy_file_written", "file=%s", x->conf->file);
    snprintf(x->file_error, sizeof(x->file_error), "%s", error);
}

static int haproxy_start(struct bg_balancer *b, const struct bg_route_set *set, int64_t gen,
                         int64_t now)
{
    struct bg_haproxy *x = (struct bg_haproxy *)b;
    x->b.c.ok = false;
    x->b.c.confirmed = false;
    x->b.c.error[0] = '\0';
    x->b.c.gen = gen;
    x->b.c.started_ms = now;
    bg_route_set_copy(&x->b.c.pending, set);
    int rc = apply(x, set);
    if (rc == BG_OK && x->conf->file != NULL)
        write_file(x, set, gen);
    x->b.c.ok = rc == BG_OK;
    x->b.c.confirmed = x->b.c.ok;
    x->b.c.ms = bg_now_ms() - now;
    x->verify_at_ms = bg_now_ms() + x->conf->verify_every_ms;
    x->warned_sweep = false;
    /* Over at once: a change that worked is reported by step, one that failed by start. */
    x->done_pending = rc == BG_OK;
    return rc == BG_OK ? BG_OK : BG_EINVAL;
}

static bool haproxy_busy(const struct bg_balancer *b)
{
    return ((const struct bg_haproxy *)b)->done_pending;
}

static bool haproxy_step(struct bg_balancer *b, int64_t now)
{
    (void)now;
    struct bg_haproxy *x = (struct bg_haproxy *)b;
    bool was = x->done_pending;
    x->done_pending = false;
    return was;
}

/* ----------------------------------------------------------------------------------------
 * Idle: HAProxy reloaded or changed by hand? Drained servers to delete?
 * ------------------------------------------------------------------------------------- */

/* Remove what was drained (del server refuses while connections remain: next tick). */
static void sweep(struct bg_haproxy *x, const struct bg_route_set *serving,
                  const struct bg_hap_state *have)
{
    struct bg_hap_cmds cmds;
    bg_hap_sweep(x->conf->backend, serving, have, &cmds);
    for (size_t i = 0; i < cmds.n; i++) {
        char *a = ask(x, cmds.c[i]);
        if (a != NULL && bg_hap_answer_ok(a) && strncmp(cmds.c[i], "del ", 4) == 0)
            bg_info("haproxy_server_deleted", "command=\"%s\"", cmds.c[i]);
        else if (a != NULL && !bg_hap_answer_ok(a) && !x->warned_sweep) {
            char shown[200];
            bg_sanitize(a, strlen(a), shown, sizeof(shown));
            bg_info("haproxy_delete_later", "command=\"%s\" reason=\"%s\"", cmds.c[i], shown);
            x->warned_sweep = true;
        }
        free(a);
    }
    bg_hap_cmds_free(&cmds);
}

static bool haproxy_tick(struct bg_balancer *b, const struct bg_route_set *serving, int64_t now)
{
    struct bg_haproxy *x = (struct bg_haproxy *)b;
    if (x->conf->file != NULL)
        file_status(x);
    if (now < x->verify_at_ms)
        return false;
    x->verify_at_ms = now + x->conf->verify_every_ms;
    long pid = read_pid(x);
    if (pid != 0 && pid == x->pid && now < x->state_at_ms)
        return false; /* the same process: its backend is compared less often */
    x->state_at_ms = now + BG_HAP_STATE_EVERY_MS;
    struct bg_hap_state have = {0};
    char why[300] = "";
    bool again = false;
    if (pid == 0 || read_state(x, &have) != BG_OK) {
        bg_warn("haproxy_unreachable", "reason=\"%s\"", x->b.c.error);
        again = true; /* applying again reports the error in /routers/<id> */
    } else if (pid != x->pid) {
        bg_warn("haproxy_restarted",
                "old_pid=%ld pid=%ld action=apply_again reason=\"HAProxy forgets servers added at "
                "run time when it reloads\"",
                x->pid, pid);
        again = true;
    } else if (!bg_hap_confirm(serving, &have, why, sizeof(why))) {
        bg_warn("haproxy_drift", "action=apply_again reason=\"%s\"", why);
        again = true;
    } else {
        sweep(x, serving, &have);
    }
    bg_hap_state_free(&have);
    return again;
}

static int haproxy_fds(const struct bg_balancer *b, struct pollfd *pfd, int n, int max)
{
    (void)b;
    (void)pfd;
    (void)max;
    return n;
}

static int64_t haproxy_deadline(const struct bg_balancer *b, int64_t now)
{
    const struct bg_haproxy *x = (const struct bg_haproxy *)b;
    return x->done_pending ? now : x->verify_at_ms;
}

static void haproxy_free(struct bg_balancer *b)
{
    struct bg_haproxy *x = (struct bg_haproxy *)b;
    bg_filewriter_stop(&x->file); /* what was handed over is written first */
    bg_route_set_free(&x->b.c.pending);
    free(x);
}

static bool haproxy_usable(const struct bg_route_server *s, char *why, size_t whylen)
{
    char ip[64];
    int port;
    if (bg_hap_split_address(s->address, ip, sizeof(ip), &port) == BG_OK)
        return true;
    snprintf(why, whylen,
             "address %s is not an IP address (HAProxy does not resolve the names of servers "
             "added at run time)",
             s->address);
    return false;
}

static const struct bg_balancer_ops haproxy_ops = {
    .kind = "haproxy",
    .start = haproxy_start,
    .step = haproxy_step,
    .busy = haproxy_busy,
    .fds = haproxy_fds,
    .deadline = haproxy_deadline,
    .tick = haproxy_tick,
    .free = haproxy_free,
    .usable = haproxy_usable,
};

struct bg_balancer *bg_haproxy_make(const struct bg_router_conf *conf)
{
    struct bg_haproxy *x = bg_xcalloc(1, sizeof(*x));
    x->b.ops = &haproxy_ops;
    x->conf = &conf->haproxy;
    x->router_id = conf->id;
    if (conf->haproxy.file != NULL)
        bg_filewriter_start(&x->file, conf->haproxy.file); /* a failure is logged */
    return &x->b;
}
