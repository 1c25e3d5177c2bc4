/* child.c -- child processes polled by a daemon's loop (see child.h). */

/*
 * posix_spawnp (no shell; glibc spawns with vfork semantics, safe beside ZooKeeper's threads)
 * in a process group of its own, so that a timeout or a cancel stops everything it started.
 * Nothing here waits except bg_child_free on a child still running: the pipe and a pidfd (when
 * the kernel has pidfd_open; else a short timer) are polled by the caller, and children are
 * reaped with waitpid(WNOHANG).
 */
#include "child.h"
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

#define BG_CHILD_POLL_MS 20 /* reap timer when there is no pidfd */

extern char **environ;

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

struct bg_child *bg_child_spawn(char *const argv[], char *const env[], int64_t timeout_ms,
                                int64_t kill_grace_ms, char *err, size_t errlen)
{
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
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, env != NULL ? env : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(p[1]);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
        close(p[0]);
        return NULL;
    }
    struct bg_child *ch = bg_xcalloc(1, sizeof(*ch));
    ch->pid = pid;
    ch->out = p[0];
    ch->pidfd = open_pidfd(pid);
    ch->started_ms = bg_now_ms();
    ch->timeout_ms = timeout_ms;
    ch->term_at = ch->started_ms + timeout_ms;
    ch->kill_grace_ms = kill_grace_ms;
    return ch;
}

static void tail_add(struct bg_child *ch, const char *buf, size_t n)
{
    if (n >= BG_CHILD_TAIL) {
        memcpy(ch->tail, buf + n - BG_CHILD_TAIL, BG_CHILD_TAIL);
        ch->tail_len = BG_CHILD_TAIL;
        return;
    }
    if (ch->tail_len + n > BG_CHILD_TAIL) {
        size_t drop = ch->tail_len + n - BG_CHILD_TAIL;
        memmove(ch->tail, ch->tail + drop, ch->tail_len - drop);
        ch->tail_len -= drop;
    }
    memcpy(ch->tail + ch->tail_len, buf, n);
    ch->tail_len += n;
}

void bg_child_read(struct bg_child *ch)
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

static void child_signal(struct bg_child *ch, int sig)
{
    /* The whole group: a shell script's own children go too. */
    if (kill(-ch->pid, sig) != 0 && errno == ESRCH)
        kill(ch->pid, sig);
}

bool bg_child_step(struct bg_child *ch, int64_t now)
{
    if (ch->reaped)
        return true;
    bg_child_read(ch);
    pid_t r = waitpid(ch->pid, &ch->wstatus, WNOHANG);
    if (r == ch->pid || (r < 0 && errno == ECHILD)) {
        ch->reaped = true;
        if (r < 0) {
            /* Someone else reaped it (or SIGCHLD is ignored): we cannot know how it ended, and
             * an unknown outcome is not success. */
            ch->lost = true;
            ch->wstatus = 0;
        }
        if (ch->kill_at != 0)
            kill(-ch->pid, SIGKILL); /* stragglers of a timed-out or cancelled group */
        bg_child_read(ch);           /* what is left; descendants may keep it open */
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
        ch->kill_at = now + ch->kill_grace_ms;
        child_signal(ch, SIGTERM);
    } else if (ch->kill_at != 0 && now >= ch->kill_at) {
        child_signal(ch, SIGKILL);
        ch->kill_at = now + ch->kill_grace_ms; /* and again, should it come to that */
    }
    return false;
}

int64_t bg_child_deadline(const struct bg_child *ch, int64_t now)
{
    int64_t d = ch->kill_at != 0 ? ch->kill_at : ch->term_at;
    if (ch->pidfd < 0 && now + BG_CHILD_POLL_MS < d)
        d = now + BG_CHILD_POLL_MS;
    return d;
}

void bg_child_free(struct bg_child *ch)
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
void bg_child_tail_text(const struct bg_child *ch, char *out, size_t outlen)
{
    char flat[BG_CHILD_TAIL + 1];
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

void bg_child_stop(struct bg_child *ch, int64_t now)
{
    if (ch->reaped || ch->kill_at != 0)
        return;
    child_signal(ch, SIGTERM);
    ch->kill_at = now + ch->kill_grace_ms;
}

int bg_child_fds(const struct bg_child *ch, struct pollfd *pfd, int n, int max)
{
    if (ch->out >= 0 && n < max)
        pfd[n++] = (struct pollfd){.fd = ch->out, .events = POLLIN};
    if (ch->pidfd >= 0 && n < max)
        pfd[n++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
    return n;
}

int bg_child_result(const struct bg_child *ch, int64_t now, char *msg, size_t msglen)
{
    char tail[400];
    bg_child_tail_text(ch, tail, sizeof(tail));
    long long ms = (long long)(now - ch->started_ms);
    int st = ch->wstatus;
    if (ch->timed_out) {
        snprintf(msg, msglen, "timed out after %lld ms: %s", (long long)ch->timeout_ms, tail);
    } else if (ch->lost) {
        snprintf(msg, msglen,
                 "exit status unknown after %lld ms (waitpid: no such child, reaped elsewhere): "
                 "counted as failed: %s",
                 ms, tail);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        snprintf(msg, msglen, "exit 0 in %lld ms", ms);
        return 0;
    } else if (WIFEXITED(st)) {
        snprintf(msg, msglen, "exit %d: %s", WEXITSTATUS(st), tail);
    } else if (WIFSIGNALED(st)) {
        snprintf(msg, msglen, "killed by signal %d (%s): %s", WTERMSIG(st), strsignal(WTERMSIG(st)),
                 tail);
    } else {
        snprintf(msg, msglen, "ended with wait status 0x%x: %s", (unsigned)st, tail);
    }
    return -1;
}
