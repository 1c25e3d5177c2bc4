/* backend_haproxy_agent.c -- the "haproxy-agent" backend type: HAProxy agent-check responder,
 * "ready" / "drain", confirmed by polls. Its agent.yaml keys and what runs it. */

/*
 * HAProxy's agent check (server option "agent-check", every "agent-inter") connects to our
 * port, may send its "agent-send" string, reads one line and closes. We answer
 *
 *   UP              "ready\n"  admin state READY: cancels a DRAIN (or MAINT) set by the agent
 *   OUT_OF_SERVICE  "drain\n"  admin state DRAIN: weight 0, no new connections, but the
 *                              connections in flight (and sessions pinned by persistence)
 *                              finish normally
 *   UP, weight W    "ready W%\n" (DESIGN §12, a canary): READY at W % of the weight the
 *                              server line configures (give it "weight 100" for whole
 *                              percentages: HAProxy rounds W % of a weight of 1)
 *
 * Why not "maint": MAINT also stops the server's health checks and refuses persistent
 * sessions; when the agent later says "ready" HAProxy must first see the health checks pass
 * again, so going UP would take rise*inter longer than the poll that carried it. Why not
 * "down"/"stopped": they change the operational state, which HAProxy reports as a failure
 * (alerts, "server is DOWN" logs) and with "on-marked-down shutdown-sessions" cuts live
 * connections -- the opposite of a drain. DRAIN is exactly "out of service, let in-flight
 * work finish" and it is sticky: if the agent dies HAProxy keeps the last word it read
 * (agent failures are not health failures), so a dead agent never brings an instance back.
 *
 * Confirmed propagation (DESIGN §5): a poll counts for a balancer once HAProxy has read the
 * whole answer and closed the connection, i.e. after it acted on the word: one such poll
 * confirms (HAProxy applies ready/drain at once, no rise/fall). Balancers are told apart by
 * source address; one silent for longer than poll_window stops counting.
 *
 * Every socket is non-blocking and lives in one epoll set, so the agent's poll() loop sees a
 * single descriptor however many checks are in flight.
 */
#include "agent.h"
#include "backend.h"
#include "confirm.h"
#include "log.h"
#include "net.h"
#include "util.h"
#include "valid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------------------
 * Configuration: type: haproxy-agent.
 * ------------------------------------------------------------------------------------- */

enum { K_TYPE, K_LISTEN, K_CONFIRM, K_POLL, K_CONFIRM_POLLS };

static const char *const keys[] = {"type",        "listen",        "confirm_timeout",
                                   "poll_window", "confirm_polls", NULL};

/* agent-check words act at once: one poll answered with the new word confirms. */
static void *haproxy_make(void)
{
    struct bg_haproxy_agent_conf *c = bg_xcalloc(1, sizeof(*c));
    c->confirm = bg_confirm_conf_defaults(1);
    return c;
}

static void haproxy_load(const struct bg_backend_entry *e, void *settings)
{
    struct bg_haproxy_agent_conf *c = settings;
    bg_backend_get_confirm(e, K_CONFIRM, &c->confirm);
    bg_yaml_need(e->l, e->n, e->path, e->kind, &e->s[K_LISTEN]);
    bg_yaml_get_str(e->l, e->s[K_LISTEN].val, e->w[K_LISTEN], BG_EXPECT_HOSTPORT, bg_valid_hostport,
                    &c->listen);
}

static void haproxy_free(void *settings)
{
    struct bg_haproxy_agent_conf *c = settings;
    if (c != NULL)
        free(c->listen);
    free(c);
}

static const char *haproxy_listen(const void *settings)
{
    const struct bg_haproxy_agent_conf *c = settings;
    return c->listen;
}

/* ----------------------------------------------------------------------------------------
 * Running it.
 * ------------------------------------------------------------------------------------- */

#define HA_MAX_CONNS 2048      /* open check connections; beyond, answer and close at once */
#define HA_MAX_PER_PEER 64     /* the same from one address: a flood cannot crowd out HAProxy */
#define HA_LINGER_MS 2000      /* how long we wait for HAProxy to close after our answer */
#define HA_EVENTS 256          /* epoll events handled per batch */
#define HA_ACCEPT_PAUSE_MS 100 /* after EMFILE/ENFILE */

static const char WORD_READY[] = "ready\n";
static const char WORD_DRAIN[] = "drain\n";

struct ha_conn {
    struct ha_conn *prev, *next; /* in creation order: the head expires first */
    int fd;
    char peer[64];
    const char *word;    /* the answer this connection gets */
    size_t off;          /* bytes of word written */
    int64_t answered_ms; /* when the whole word was written, 0 before */
    int64_t expires_ms;
};

struct haproxy {
    int lfd;  /* listening socket */
    int epfd; /* epoll set: the listener and every connection */
    struct bg_agent *agent;
    enum bg_status served;
    int served_weight; /* the weight served with UP (-1: none given) */
    bool settled;      /* the last change was confirmed (or timed out, or nobody polled) */
    struct bg_confirm confirm;
    struct ha_conn *head, *tail;
    int n_conns;
    int64_t accept_paused_until;
    unsigned long long n_polls;
};

static int listener_tag; /* epoll data.ptr of the listener */

/* "ready W%\n" for each weight (DESIGN §12: a percentage of the server's configured weight,
 * HAProxy's agent-check grammar), made once: the words live as long as the process, so a
 * connection keeps pointing at the one it was given, and equal words are equal pointers. */
static const char *ready_word(int weight)
{
    static char words[101][16];
    if (weight < 0 || weight > 100)
        return WORD_READY; /* no weight given: as before weights existed */
    if (words[weight][0] == '\0')
        snprintf(words[weight], sizeof(words[weight]), "ready %d%%\n", weight);
    return words[weight];
}

static const char *word_for(enum bg_status st, int weight)
{
    return st == BG_STATUS_UP ? ready_word(weight) : WORD_DRAIN;
}

/* What we answer now: drain also while the application is unhealthy, so that HAProxy drains a
 * dead application as it would an OUT_OF_SERVICE one. */
static const char *served_word(const struct haproxy *h)
{
    bool healthy = h->agent == NULL || bg_agent_app_healthy(h->agent);
    return word_for(healthy ? h->served : BG_STATUS_OUT, h->agent ? h->agent->target_weight : -1);
}

/* ----------------------------------------------------------------------------------------
 * Check connections.
 * ------------------------------------------------------------------------------------- */

/* The connection is over. It counts as a poll when the current word was answered after the
 * last change (an answer written before it told HAProxy the old state). */
static void conn_close(struct haproxy *h, struct ha_conn *c, int64_t now)
{
    if (c->answered_ms != 0) {
        h->n_polls++;
        struct bg_poll p = {.addr = c->peer,
                            .answered_current = c->word == served_word(h) &&
                                                c->answered_ms >= h->confirm.changed_ms,
                            .answered_up = c->word != WORD_DRAIN};
        bg_confirm_polled(&h->confirm, &p, now);
    }
    close(c->fd); /* also removes it from the epoll set */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        h->tail = c->prev;
    h->n_conns--;
    free(c);
}

/* Write what is left of the answer. Returns 0 when done, 1 when the socket is full, -1 when
 * the peer went away. After the answer we half-close and wait for HAProxy's close: closing
 * with its agent-send string unread would reset the connection, possibly before it read us. */
static int conn_write(struct haproxy *h, struct ha_conn *c, int64_t now)
{
    size_t len = strlen(c->word);
    while (c->off < len) {
        ssize_t w = send(c->fd, c->word + c->off, len - c->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (w < 0)
            return -1;
        c->off += (size_t)w;
    }
    if (c->answered_ms == 0) {
        c->answered_ms = now;
        shutdown(c->fd, SHUT_WR);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(h->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

/* Read and drop whatever HAProxy sent (agent-send). Returns true once it has closed. */
static bool conn_drain(struct ha_conn *c)
{
    char buf[512];
    for (int i = 0; i < 16; i++) {
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        return true; /* EOF or reset */
    }
    return false;
}

static void conn_event(struct haproxy *h, struct ha_conn *c, uint32_t events, int64_t now)
{
    if (c->answered_ms == 0 && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        if (conn_write(h, c, now) < 0) {
            conn_close(h, c, now);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
        bool closed = conn_drain(c);
        if (closed || (events & (EPOLLERR | EPOLLHUP)))
            conn_close(h, c, now);
    }
}

static void accept_one(struct haproxy *h, int fd, const struct sockaddr_storage *ss, int64_t now)
{
    struct ha_conn *c = bg_xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->word = served_word(h);
    c->expires_ms = now + HA_LINGER_MS;
    bg_net_addr_text((const struct sockaddr *)ss, c->peer, sizeof(c->peer));
    c->prev = h->tail;
    if (h->tail != NULL)
        h->tail->next = c;
    else
        h->head = c;
    h->tail = c;
    h->n_conns++;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        conn_close(h, c, now);
        return;
    }
    /* Answer at once: the check needs nothing from HAProxy. */
    if (conn_write(h, c, now) < 0)
        conn_close(h, c, now);
}

/* Open connections from the address in ss (a linear scan: at most HA_MAX_CONNS). */
static int conns_from(const struct haproxy *h, const struct sockaddr_storage *ss)
{
    char peer[64];
    int n = 0;
    bg_net_addr_text((const struct sockaddr *)ss, peer, sizeof(peer));
    for (const struct ha_conn *c = h->head; c != NULL; c = c->next)
        n += strcmp(c->peer, peer) == 0;
    return n;
}

static void accept_all(struct haproxy *h, int64_t now)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(h->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                bg_warn("haproxy_agent_accept_failed", "errno=%d reason=\"%s\" action=pause", errno,
                        strerror(errno));
                h->accept_paused_until = now + HA_ACCEPT_PAUSE_MS;
                struct epoll_event ev = {.events = 0, .data.ptr = &listener_tag};
                epoll_ctl(h->epfd, EPOLL_CTL_MOD, h->lfd, &ev);
            }
            return; /* EAGAIN: all taken */
        }
        if (h->n_conns >= HA_MAX_CONNS || conns_from(h, &ss) >= HA_MAX_PER_PEER) {
            /* Too many lingering: answer best-effort and close without waiting. */
            const char *w = served_word(h);
            ssize_t r = send(fd, w, strlen(w), MSG_NOSIGNAL);
            (void)r;
            close(fd);
            continue;
        }
        accept_one(h, fd, &ss, now);
    }
}

/* Handle every ready event; bounded so that a flood cannot hold the loop. */
static void service(struct haproxy *h)
{
    struct epoll_event ev[HA_EVENTS];
    int64_t now = bg_now_ms();
    for (int round = 0; round < 8; round++) {
        int n = epoll_wait(h->epfd, ev, HA_EVENTS, 0);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == &listener_tag)
                accept_all(h, now);
            else
                conn_event(h, ev[i].data.ptr, ev[i].events, now);
        }
        if (n < HA_EVENTS)
            return;
    }
}

/* ----------------------------------------------------------------------------------------
 * Backend operations.
 * ------------------------------------------------------------------------------------- */

static int haproxy_init(struct bg_backend *b, char *err, size_t errlen)
{
    const struct bg_haproxy_agent_conf *c = b->conf->settings;
    if (c->listen == NULL) {
        snprintf(err, errlen, "haproxy-agent: no listen address");
        return BG_EINVAL;
    }
    int lfd = bg_net_listen(c->listen, err, errlen);
    if (lfd < 0)
        return BG_EINVAL;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener_tag};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        close(lfd);
        if (epfd >= 0)
            close(epfd);
        return BG_EINVAL;
    }
    struct haproxy *h = bg_xcalloc(1, sizeof(*h));
    h->lfd = lfd;
    h->epfd = epfd;
    h->agent = b->agent;
    h->served = BG_STATUS_OUT; /* a new instance takes no traffic until told */
    h->served_weight = -1;
    h->settled = true;
    bg_confirm_init(&h->confirm, c->confirm.poll_window_ms, c->confirm.confirm_timeout_ms,
                    c->confirm.confirm_polls);
    /* agent-check is TCP (no User-Agent) on a port nobody browses, and HAProxy acts on the
     * word it reads at once (no rise/fall): the first poll makes a balancer, one confirms. */
    h->confirm.check_agent = false;
    h->confirm.min_peer_polls = 1;
    h->confirm.read_ms = 0; /* a poll is counted when HAProxy closes, after it read the word */
    b->priv = h;
    bg_info("haproxy_agent_listen", "listen=%s word=drain confirm_timeout_ms=%lld polls=%d",
            c->listen, (long long)c->confirm.confirm_timeout_ms, h->confirm.polls);
    return BG_OK;
}

static int haproxy_apply(struct bg_backend *b, enum bg_status st)
{
    struct haproxy *h = b->priv;
    int64_t now = bg_now_ms();
    h->confirm.limit_ms = b->deadline_ms; /* answer before the caller gives up */
    int weight = h->agent ? h->agent->target_weight : -1;
    if (h->served == st && (st != BG_STATUS_UP || h->served_weight == weight)) {
        /* Asked again (the controller long-polls an unconfirmed change): wait again. */
        if (!bg_confirm_rearm(&h->confirm, now)) {
            h->settled = true;
            snprintf(b->msg, sizeof(b->msg), "unchanged (answering %.5s)", word_for(st, weight));
            return 0;
        }
        h->settled = false;
        snprintf(b->msg, sizeof(b->msg), "answering %.5s; waiting for balancers to confirm",
                 word_for(st, weight));
        return BG_PENDING;
    }
    h->served = st;
    h->served_weight = weight; /* a new weight is a change to confirm, as a new status is */
    h->settled = false;
    if (!bg_confirm_start(&h->confirm, st == BG_STATUS_UP, now)) {
        h->settled = true;
        snprintf(b->msg, sizeof(b->msg), "answering %.5s; applied (no balancer polling)",
                 word_for(st, weight));
        return 0;
    }
    snprintf(b->msg, sizeof(b->msg), "answering %.5s; waiting for balancers to poll",
             word_for(st, weight));
    return BG_PENDING;
}

static int haproxy_progress(struct bg_backend *b, int64_t now)
{
    struct haproxy *h = b->priv;
    char note[400];
    int rc = bg_confirm_check(&h->confirm, now, note, sizeof(note));
    if (rc == 1)
        return BG_PENDING;
    h->settled = true;
    snprintf(b->msg, sizeof(b->msg), "answering %.5s; %s", served_word(h), note);
    /* Unconfirmed is reported, not failed: the balancer may simply have gone away. */
    return 0;
}

/* Superseded: stop waiting, so that a stale confirm deadline does not keep waking the loop;
 * the change stays unsettled, so the next apply confirms again even for the same word. */
static void haproxy_cancel(struct bg_backend *b)
{
    struct haproxy *h = b->priv;
    h->confirm.waiting = false;
}

static int haproxy_fds(struct bg_backend *b, struct pollfd *pfd, int max)
{
    struct haproxy *h = b->priv;
    if (max < 1)
        return 0;
    pfd[0] = (struct pollfd){.fd = h->epfd, .events = POLLIN};
    return 1;
}

static void haproxy_on_fds(struct bg_backend *b, struct pollfd *pfd, int n)
{
    if (n >= 1 && pfd[0].revents != 0)
        service(b->priv);
}

static int64_t haproxy_deadline(struct bg_backend *b)
{
    struct haproxy *h = b->priv;
    int64_t d = bg_confirm_deadline(&h->confirm, bg_now_ms());
    if (h->head != NULL && (d == 0 || h->head->expires_ms < d))
        d = h->head->expires_ms;
    if (h->accept_paused_until != 0 && (d == 0 || h->accept_paused_until < d))
        d = h->accept_paused_until;
    return d;
}

static void haproxy_tick(struct bg_backend *b, int64_t now)
{
    struct haproxy *h = b->priv;
    /* HAProxy normally closes right after reading; these did not (or never read). */
    while (h->head != NULL && h->head->expires_ms <= now)
        conn_close(h, h->head, now);
    if (h->accept_paused_until != 0 && h->accept_paused_until <= now) {
        h->accept_paused_until = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener_tag};
        epoll_ctl(h->epfd, EPOLL_CTL_MOD, h->lfd, &ev);
    }
}

static struct bg_confirm *haproxy_confirm(struct bg_backend *b)
{
    struct haproxy *h = b->priv;
    return &h->confirm;
}

static void haproxy_destroy(struct bg_backend *b)
{
    struct haproxy *h = b->priv;
    if (h == NULL)
        return;
    while (h->head != NULL) {
        struct ha_conn *c = h->head;
        h->head = c->next;
        close(c->fd);
        free(c);
    }
    close(h->lfd);
    close(h->epfd);
    free(h);
    b->priv = NULL;
}

static const struct bg_backend_ops ops = {
    .init = haproxy_init,
    .apply = haproxy_apply,
    .progress = haproxy_progress,
    .cancel = haproxy_cancel,
    .fds = haproxy_fds,
    .on_fds = haproxy_on_fds,
    .deadline = haproxy_deadline,
    .tick = haproxy_tick,
    .destroy = haproxy_destroy,
    .confirm = haproxy_confirm,
};

const struct bg_backend_type bg_backend_haproxy_agent = {
    .name = "haproxy-agent",
    .flags = BG_BACKEND_WEIGHTS,
    .keys = keys,
    .make = haproxy_make,
    .load = haproxy_load,
    .free = haproxy_free,
    .listen = haproxy_listen,
    .ops = &ops,
};
