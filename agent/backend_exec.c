/* backend_exec.c -- runs a command for each status change; exit 0 means applied. */

/*
 * The command is started with posix_spawnp (no shell; glibc spawns with vfork semantics, safe
 * beside ZooKeeper's threads) in a process group of its own, so that a timeout or a cancel can
 * stop everything it started. Its environment is ours plus BG_STATUS (UP|OUT_OF_SERVICE),
 * BG_INSTANCE, BG_COLOR, BG_APP and BG_EPOCH; stdin is /dev/null; stdout and stderr go to one
 * non-blocking pipe of which we keep the last BG_EXEC_TAIL bytes for the result message.
 *
 * Nothing here waits: the pipe and a pidfd (when the kernel has pidfd_open; else a short
 * timer) are polled by the agent's loop, and children are reaped with waitpid(WNOHANG). A
 * command that outlives its timeout gets SIGTERM, then SIGKILL 2 s later; a cancelled one
 * the same, in the background. The command runs on every apply, re-asserts included, so it
 * must be idempotent.
 */
#include "agent.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BG_EXEC_TAIL 1024       /* bytes of output kept */
#define BG_EXEC_KILL_MS 2000    /* SIGTERM .. SIGKILL */
#define BG_EXEC_POLL_MS 20      /* reap timer when there is no pidfd */
#define BG_EXEC_MAX_CHILDREN 16 /* the running one plus cancelled ones being reaped */

extern char **environ;

struct child {
    pid_t pid; /* also its process group */
    int pidfd; /* readable once the child exits; -1 if unavailable */
    int out;   /* read end of the output pipe; -1 once closed */
    int64_t started_ms;
    int64_t term_at; /* when to send SIGTERM (the timeout) */
    int64_t kill_at; /* when to send SIGKILL, 0 until SIGTERM was sent */
    bool timed_out;
    bool reaped;
    int wstatus;
    char tail[BG_EXEC_TAIL];
    size_t tail_len;
};

struct exec_state {
    struct child *run; /* the apply in progress, or NULL */
    struct child *dying[BG_EXEC_MAX_CHILDREN];
    int n_dying;
};

/* ----------------------------------------------------------------------------------------
 * Children.
 * ------------------------------------------------------------------------------------- */

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    (void)pid;
    return -1;
#endif
}

/* Our environment with the BG_ variables replaced. The array and its BG_ strings are
 * malloc'd; free with free_env. */
static char **build_env(struct bg_backend *b, enum bg_status st, size_t *n_own)
{
    const struct bg_agent *a = b->agent;
    const struct bg_instance_conf *in = &a->conf->instance;
    static const char *const names[] = {
        "BG_STATUS=", "BG_INSTANCE=", "BG_COLOR=", "BG_APP=", "BG_EPOCH="};
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = bg_xcalloc(n + BG_ARRAY_LEN(names) + 1, sizeof(char *));
    size_t k = 0;
    env[k++] = bg_xasprintf("BG_STATUS=%s", bg_status_name(st));
    env[k++] = bg_xasprintf("BG_INSTANCE=%s", in->id);
    env[k++] = bg_xasprintf("BG_COLOR=%s", bg_color_name(in->color));
    env[k++] = bg_xasprintf("BG_APP=%s", in->app ? in->app : "");
    env[k++] = bg_xasprintf("BG_EPOCH=%lld", (long long)a->epoch);
    *n_own = k;
    for (size_t i = 0; i < n; i++) {
        bool ours = false;
        for (size_t j = 0; j < BG_ARRAY_LEN(names); j++)
            ours |= strncmp(environ[i], names[j], strlen(names[j])) == 0;
        if (!ours)
            env[k++] = environ[i];
    }
    env[k] = NULL;
    return env;
}

static void free_env(char **env, size_t n_own)
{
    for (size_t i = 0; i < n_own; i++)
        free(env[i]);
    free(env);
}

/* Start argv. Returns the child, or NULL with the reason in err. */
static struct child *spawn(struct bg_backend *b, enum bg_status st, char *err, size_t errlen)
{
    const struct bg_backend_conf *c = b->conf;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return NULL;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    /* Our sockets (HTTP, ZooKeeper, agent-check) must not leak into the command. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all); /* we ignore SIGPIPE; the command must not */
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);

    size_t n_own;
    char **env = build_env(b, st, &n_own);
    pid_t pid;
    int rc = posix_spawnp(&pid, c->argv[0], &fa, &attr, c->argv, env);
    free_env(env, n_own);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(p[1]);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s", c->argv[0], strerror(rc));
        close(p[0]);
        return NULL;
    }
    struct child *ch = bg_xcalloc(1, sizeof(*ch));
    ch->pid = pid;
    ch->out = p[0];
    ch->pidfd = open_pidfd(pid);
    ch->started_ms = bg_now_ms();
    ch->term_at = ch->started_ms + c->timeout_ms;
    return ch;
}

static void tail_add(struct child *ch, const char *buf, size_t n)
{
    if (n >= BG_EXEC_TAIL) {
        memcpy(ch->tail, buf + n - BG_EXEC_TAIL, BG_EXEC_TAIL);
        ch->tail_len = BG_EXEC_TAIL;
        return;
    }
    if (ch->tail_len + n > BG_EXEC_TAIL) {
        size_t drop = ch->tail_len + n - BG_EXEC_TAIL;
        memmove(ch->tail, ch->tail + drop, ch->tail_len - drop);
        ch->tail_len -= drop;
    }
    memcpy(ch->tail + ch->tail_len, buf, n);
    ch->tail_len += n;
}

/* Read what the pipe holds (bounded, so that a chatty command cannot hold the loop). */
static void read_output(struct child *ch)
{
    char buf[4096];
    for (int i = 0; ch->out >= 0 && i < 16; i++) {
        ssize_t r = read(ch->out, buf, sizeof(buf));
        if (r > 0) {
            tail_add(ch, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close(ch->out); /* EOF: every writer is gone */
        ch->out = -1;
    }
}

static void child_signal(struct child *ch, int sig)
{
    /* The whole group: a shell script's own children go too. */
    if (kill(-ch->pid, sig) != 0 && errno == ESRCH)
        kill(ch->pid, sig);
}

/* Observe and act: read output, reap, enforce the timeout. Returns true once reaped. */
static bool child_step(struct child *ch, int64_t now)
{
    if (ch->reaped)
        return true;
    read_output(ch);
    pid_t r = waitpid(ch->pid, &ch->wstatus, WNOHANG);
    if (r == ch->pid || (r < 0 && errno == ECHILD)) {
        ch->reaped = true;
        if (r < 0)
            ch->wstatus = 0;
        if (ch->kill_at != 0)
            kill(-ch->pid, SIGKILL); /* stragglers of a timed-out or cancelled group */
        read_output(ch);             /* what is left; descendants may keep it open */
        if (ch->out >= 0)
            close(ch->out);
        ch->out = -1;
        if (ch->pidfd >= 0)
            close(ch->pidfd);
        ch->pidfd = -1;
        return true;
    }
    if (ch->kill_at == 0 && now >= ch->term_at) {
        ch->timed_out = true;
        ch->kill_at = now + BG_EXEC_KILL_MS;
        child_signal(ch, SIGTERM);
    } else if (ch->kill_at != 0 && now >= ch->kill_at) {
        child_signal(ch, SIGKILL);
        ch->kill_at = now + BG_EXEC_KILL_MS; /* and again, should it come to that */
    }
    return false;
}

static int64_t child_deadline(const struct child *ch, int64_t now)
{
    int64_t d = ch->kill_at != 0 ? ch->kill_at : ch->term_at;
    if (ch->pidfd < 0 && now + BG_EXEC_POLL_MS < d)
        d = now + BG_EXEC_POLL_MS;
    return d;
}

static void child_free(struct child *ch)
{
    if (ch == NULL)
        return;
    if (!ch->reaped) {
        /* Only at exit: make sure nothing is left behind, then reap (quick after SIGKILL). */
        kill(-ch->pid, SIGKILL);
        kill(ch->pid, SIGKILL);
        while (waitpid(ch->pid, &ch->wstatus, 0) < 0 && errno == EINTR)
            ;
    }
    if (ch->out >= 0)
        close(ch->out);
    if (ch->pidfd >= 0)
        close(ch->pidfd);
    free(ch);
}

/* The output tail on one line: white space runs become one space, the rest made printable;
 * the end is kept when it does not fit. */
static void tail_text(const struct child *ch, char *out, size_t outlen)
{
    char flat[BG_EXEC_TAIL + 1];
    size_t n = 0;
    for (size_t i = 0; i < ch->tail_len; i++) {
        char c = ch->tail[i];
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            if (n > 0 && flat[n - 1] != ' ')
                flat[n++] = ' ';
            continue;
        }
        flat[n++] = c;
    }
    while (n > 0 && flat[n - 1] == ' ')
        n--;
    if (n == 0) {
        snprintf(out, outlen, "(no output)");
        return;
    }
    size_t keep = outlen > 8 ? outlen - 8 : 0;
    if (n > keep && outlen > 8) {
        memcpy(out, "...", 3);
        bg_sanitize(flat + n - keep, keep, out + 3, outlen - 3);
        return;
    }
    bg_sanitize(flat, n, out, outlen);
}

/* The result of a reaped child: 0 or -1, with the message in b->msg. */
static int child_result(struct bg_backend *b, const struct child *ch, int64_t now)
{
    char tail[400];
    tail_text(ch, tail, sizeof(tail));
    long long ms = (long long)(now - ch->started_ms);
    int st = ch->wstatus;
    if (ch->timed_out) {
        snprintf(b->msg, sizeof(b->msg), "timed out after %lld ms: %s",
                 (long long)b->conf->timeout_ms, tail);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        snprintf(b->msg, sizeof(b->msg), "exit 0 in %lld ms", ms);
        bg_debug("exec_done", "command=%s ms=%lld output=\"%s\"", b->conf->argv[0], ms, tail);
        return 0;
    } else if (WIFEXITED(st)) {
        snprintf(b->msg, sizeof(b->msg), "exit %d: %s", WEXITSTATUS(st), tail);
    } else if (WIFSIGNALED(st)) {
        snprintf(b->msg, sizeof(b->msg), "killed by signal %d (%s): %s", WTERMSIG(st),
                 strsignal(WTERMSIG(st)), tail);
    } else {
        snprintf(b->msg, sizeof(b->msg), "ended with wait status 0x%x: %s", (unsigned)st, tail);
    }
    bg_warn("exec_failed", "command=%s pid=%d ms=%lld reason=\"%s\"", b->conf->argv[0],
            (int)ch->pid, ms, b->msg);
    return -1;
}

static void reap_dying(struct exec_state *x, int64_t now)
{
    for (int i = 0; i < x->n_dying;) {
        if (child_step(x->dying[i], now)) {
            child_free(x->dying[i]);
            x->dying[i] = x->dying[--x->n_dying];
        } else {
            i++;
        }
    }
}

/* ----------------------------------------------------------------------------------------
 * Backend operations.
 * ------------------------------------------------------------------------------------- */

static int exec_init(struct bg_backend *b, char *err, size_t errlen)
{
    if (b->conf->argv == NULL || b->conf->argc == 0) {
        snprintf(err, errlen, "exec: no command");
        return BG_EINVAL;
    }
    b->priv = bg_xcalloc(1, sizeof(struct exec_state));
    return BG_OK;
}

static int exec_apply(struct bg_backend *b, enum bg_status st)
{
    struct exec_state *x = b->priv;
    if (x->run != NULL) { /* cannot happen: the agent cancels first; be safe anyway */
        b->ops->cancel(b);
    }
    char err[256];
    x->run = spawn(b, st, err, sizeof(err));
    if (x->run == NULL) {
        snprintf(b->msg, sizeof(b->msg), "%s", err);
        bg_warn("exec_failed", "command=%s reason=\"%s\"", b->conf->argv[0], err);
        return BG_EINVAL;
    }
    bg_debug("exec_start", "command=%s pid=%d status=%s", b->conf->argv[0], (int)x->run->pid,
             bg_status_name(st));
    snprintf(b->msg, sizeof(b->msg), "running (pid %d)", (int)x->run->pid);
    return BG_PENDING;
}

static int exec_progress(struct bg_backend *b, int64_t now)
{
    struct exec_state *x = b->priv;
    if (x->run == NULL)
        return 0; /* nothing running: an earlier result stands */
    if (!child_step(x->run, now))
        return BG_PENDING;
    int rc = child_result(b, x->run, now);
    child_free(x->run);
    x->run = NULL;
    return rc < 0 ? BG_EINVAL : 0;
}

static void exec_cancel(struct bg_backend *b)
{
    struct exec_state *x = b->priv;
    struct child *ch = x->run;
    if (ch == NULL)
        return;
    x->run = NULL;
    int64_t now = bg_now_ms();
    if (!ch->reaped) {
        child_signal(ch, SIGTERM);
        ch->kill_at = now + BG_EXEC_KILL_MS;
    }
    if (x->n_dying == BG_EXEC_MAX_CHILDREN) {
        /* Pathological churn: stop the oldest now (blocks only as long as SIGKILL takes). */
        child_free(x->dying[0]);
        x->dying[0] = x->dying[--x->n_dying];
    }
    x->dying[x->n_dying++] = ch;
    bg_info("exec_cancelled", "command=%s pid=%d", b->conf->argv[0], (int)ch->pid);
}

static int add_child_fds(const struct child *ch, struct pollfd *pfd, int n, int max)
{
    if (ch->out >= 0 && n < max)
        pfd[n++] = (struct pollfd){.fd = ch->out, .events = POLLIN};
    if (ch->pidfd >= 0 && n < max)
        pfd[n++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
    return n;
}

static int exec_fds(struct bg_backend *b, struct pollfd *pfd, int max)
{
    struct exec_state *x = b->priv;
    int n = 0;
    if (x->run != NULL)
        n = add_child_fds(x->run, pfd, n, max);
    for (int i = 0; i < x->n_dying; i++)
        n = add_child_fds(x->dying[i], pfd, n, max);
    return n;
}

static void exec_on_fds(struct bg_backend *b, struct pollfd *pfd, int n)
{
    struct exec_state *x = b->priv;
    bool any = false;
    for (int i = 0; i < n; i++)
        any |= pfd[i].revents != 0;
    if (!any)
        return;
    int64_t now = bg_now_ms();
    /* The running child is observed by progress(); here only drain its pipe. */
    if (x->run != NULL)
        read_output(x->run);
    reap_dying(x, now);
}

static int64_t exec_deadline(struct bg_backend *b)
{
    struct exec_state *x = b->priv;
    int64_t now = bg_now_ms();
    int64_t d = 0;
    if (x->run != NULL)
        d = child_deadline(x->run, now);
    for (int i = 0; i < x->n_dying; i++) {
        int64_t e = child_deadline(x->dying[i], now);
        if (d == 0 || e < d)
            d = e;
    }
    return d;
}

static void exec_tick(struct bg_backend *b, int64_t now)
{
    struct exec_state *x = b->priv;
    if (x->run != NULL)
        read_output(x->run); /* progress() acts on it, on this same loop turn */
    reap_dying(x, now);
}

static void exec_destroy(struct bg_backend *b)
{
    struct exec_state *x = b->priv;
    if (x == NULL)
        return;
    child_free(x->run);
    for (int i = 0; i < x->n_dying; i++)
        child_free(x->dying[i]);
    free(x);
    b->priv = NULL;
}

const struct bg_backend_ops bg_backend_exec_ops = {
    .type = "exec",
    .init = exec_init,
    .apply = exec_apply,
    .progress = exec_progress,
    .cancel = exec_cancel,
    .fds = exec_fds,
    .on_fds = exec_on_fds,
    .deadline = exec_deadline,
    .tick = exec_tick,
    .destroy = exec_destroy,
};
