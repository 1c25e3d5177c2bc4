/* backend_exec.c -- the "exec" backend type: runs a command for each status change; exit 0
 * means applied. Its agent.yaml keys and what runs it. */

/*
 * The command is started with posix_spawnp (no shell; glibc spawns with vfork semantics, safe
 * beside ZooKeeper's threads) in a process group of its own, so that a timeout or a cancel can
 * stop everything it started. Its environment is ours plus BG_STATUS (UP|OUT_OF_SERVICE),
 * BG_INSTANCE, BG_COLOR, BG_APP, BG_EPOCH and BG_WEIGHT (0-100); stdin is /dev/null; stdout and
 * stderr go to one non-blocking pipe of which we keep the last BG_CHILD_TAIL bytes for the result
 * message.
 *
 * The process machinery is in child.c. Nothing here waits: the pipe and a pidfd (when the kernel
 * has pidfd_open; else a short timer) are polled by the agent's loop, and children are reaped with
 * waitpid(WNOHANG). A command that outlives its timeout gets SIGTERM, then SIGKILL 2 s later; a
 * cancelled one the same, in the background. The command runs on every apply, re-asserts included,
 * so it must be idempotent.
 */
#include "agent.h"
#include "backend.h"
#include "child.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------------------
 * Configuration: type: exec.
 * ------------------------------------------------------------------------------------- */

enum { K_TYPE, K_COMMAND, K_TIMEOUT };

static const char *const keys[] = {"type", "command", "timeout", NULL};

static void *exec_make(void)
{
    struct bg_exec_conf *c = bg_xcalloc(1, sizeof(*c));
    c->timeout_ms = 10000;
    return c;
}

static void exec_load(const struct bg_backend_entry *e, void *settings)
{
    struct bg_exec_conf *c = settings;
    bg_yaml_get_duration(e->l, e->s[K_TIMEOUT].val, e->w[K_TIMEOUT], 1, &c->timeout_ms);
    bg_yaml_need(e->l, e->n, e->path, e->kind, &e->s[K_COMMAND]);
    if (e->s[K_COMMAND].val != NULL)
        bg_yaml_get_command(e->l, e->s[K_COMMAND].val, e->w[K_COMMAND], &c->argv, &c->argc);
}

static void exec_free(void *settings)
{
    struct bg_exec_conf *c = settings;
    if (c != NULL)
        bg_yaml_free_strv(&c->argv, c->argc);
    free(c);
}

/* ----------------------------------------------------------------------------------------
 * Running it.
 * ------------------------------------------------------------------------------------- */

static const struct bg_exec_conf *conf_of(const struct bg_backend *b)
{
    return b->conf->settings;
}

#define BG_EXEC_KILL_MS 2000    /* SIGTERM .. SIGKILL */
#define BG_EXEC_MAX_CHILDREN 16 /* the running one plus cancelled ones being reaped */

extern char **environ;

struct exec_state {
    struct bg_child *run; /* the apply in progress, or NULL */
    struct bg_child *dying[BG_EXEC_MAX_CHILDREN];
    int n_dying;
};

/* ----------------------------------------------------------------------------------------
 * Children.
 * ------------------------------------------------------------------------------------- */

/* Our environment with the BG_ variables replaced. The array and its BG_ strings are
 * malloc'd; free with free_env. */
static char **build_env(struct bg_backend *b, enum bg_status st, size_t *n_own)
{
    const struct bg_agent *a = b->agent;
    const struct bg_instance_conf *in = &a->conf->instance;
    static const char *const names[] = {
        "BG_STATUS=", "BG_INSTANCE=", "BG_COLOR=", "BG_APP=", "BG_EPOCH=", "BG_WEIGHT="};
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
    /* DESIGN §12: the weight given with UP (100 when none was), 0 with OUT_OF_SERVICE. */
    env[k++] = bg_xasprintf("BG_WEIGHT=%d", st != BG_STATUS_UP      ? 0
                                            : a->target_weight >= 0 ? a->target_weight
                                                                    : 100);
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
static struct bg_child *spawn(struct bg_backend *b, enum bg_status st, char *err, size_t errlen)
{
    size_t n_own;
    char **env = build_env(b, st, &n_own);
    struct bg_child *ch =
        bg_child_spawn(conf_of(b)->argv, env, conf_of(b)->timeout_ms, BG_EXEC_KILL_MS, err, errlen);
    free_env(env, n_own);
    return ch;
}

/* The result of a reaped child: 0 or -1, with the message in b->msg. */
static int child_result(struct bg_backend *b, const struct bg_child *ch, int64_t now)
{
    long long ms = (long long)(now - ch->started_ms);
    if (bg_child_result(ch, now, b->msg, sizeof(b->msg)) == 0) {
        char tail[400];
        bg_child_tail_text(ch, tail, sizeof(tail));
        bg_debug("exec_done", "command=%s ms=%lld output=\"%s\"", conf_of(b)->argv[0], ms, tail);
        return 0;
    }
    bg_warn("exec_failed", "command=%s pid=%d ms=%lld reason=\"%s\"", conf_of(b)->argv[0],
            (int)ch->pid, ms, b->msg);
    return -1;
}

static void reap_dying(struct exec_state *x, int64_t now)
{
    for (int i = 0; i < x->n_dying;) {
        if (bg_child_step(x->dying[i], now)) {
            bg_child_free(x->dying[i]);
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
    if (conf_of(b)->argv == NULL || conf_of(b)->argc == 0) {
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
        bg_warn("exec_failed", "command=%s reason=\"%s\"", conf_of(b)->argv[0], err);
        return BG_EINVAL;
    }
    bg_debug("exec_start", "command=%s pid=%d status=%s", conf_of(b)->argv[0], (int)x->run->pid,
             bg_status_name(st));
    snprintf(b->msg, sizeof(b->msg), "running (pid %d)", (int)x->run->pid);
    return BG_PENDING;
}

static int exec_progress(struct bg_backend *b, int64_t now)
{
    struct exec_state *x = b->priv;
    if (x->run == NULL)
        return 0; /* nothing running: an earlier result stands */
    if (!bg_child_step(x->run, now))
        return BG_PENDING;
    int rc = child_result(b, x->run, now);
    bg_child_free(x->run);
    x->run = NULL;
    return rc < 0 ? BG_EINVAL : 0;
}

static void exec_cancel(struct bg_backend *b)
{
    struct exec_state *x = b->priv;
    struct bg_child *ch = x->run;
    if (ch == NULL)
        return;
    x->run = NULL;
    int64_t now = bg_now_ms();
    bg_child_stop(ch, now);
    if (x->n_dying == BG_EXEC_MAX_CHILDREN) {
        /* Pathological churn: stop the oldest now (blocks only as long as SIGKILL takes). */
        bg_child_free(x->dying[0]);
        x->dying[0] = x->dying[--x->n_dying];
    }
    x->dying[x->n_dying++] = ch;
    bg_info("exec_cancelled", "command=%s pid=%d", conf_of(b)->argv[0], (int)ch->pid);
}

static int exec_fds(struct bg_backend *b, struct pollfd *pfd, int max)
{
    struct exec_state *x = b->priv;
    int n = 0;
    if (x->run != NULL)
        n = bg_child_fds(x->run, pfd, n, max);
    for (int i = 0; i < x->n_dying; i++)
        n = bg_child_fds(x->dying[i], pfd, n, max);
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
        bg_child_read(x->run);
    reap_dying(x, now);
}

static int64_t exec_deadline(struct bg_backend *b)
{
    struct exec_state *x = b->priv;
    int64_t now = bg_now_ms();
    int64_t d = 0;
    if (x->run != NULL)
        d = bg_child_deadline(x->run, now);
    for (int i = 0; i < x->n_dying; i++) {
        int64_t e = bg_child_deadline(x->dying[i], now);
        if (d == 0 || e < d)
            d = e;
    }
    return d;
}

static void exec_tick(struct bg_backend *b, int64_t now)
{
    struct exec_state *x = b->priv;
    if (x->run != NULL)
        bg_child_read(x->run); /* progress() acts on it, on this same loop turn */
    reap_dying(x, now);
}

static void exec_destroy(struct bg_backend *b)
{
    struct exec_state *x = b->priv;
    if (x == NULL)
        return;
    bg_child_free(x->run);
    for (int i = 0; i < x->n_dying; i++)
        bg_child_free(x->dying[i]);
    free(x);
    b->priv = NULL;
}

static const struct bg_backend_ops ops = {
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

const struct bg_backend_type bg_backend_exec = {
    .name = "exec",
    .flags = BG_BACKEND_WEIGHTS,
    .keys = keys,
    .make = exec_make,
    .load = exec_load,
    .free = exec_free,
    .ops = &ops,
};
