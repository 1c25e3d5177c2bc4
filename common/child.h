/* child.h -- child processes run without blocking a daemon's loop: spawn, output tail,
 * deadline (SIGTERM, then SIGKILL), reaping. Used by the agent's exec backend
 * and exec check, and by bg-router for the balancer's test and reload commands. */
#ifndef BG_CHILD_H
#define BG_CHILD_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BG_CHILD_TAIL 1024 /* bytes of output kept */

struct bg_child {
    pid_t pid; /* also its process group */
    int pidfd; /* readable once the child exits; -1 if unavailable */
    int out;   /* read end of the output pipe; -1 once closed */
    int64_t started_ms;
    int64_t timeout_ms;
    int64_t term_at; /* when to send SIGTERM (the timeout) */
    int64_t kill_at; /* when to send SIGKILL, 0 until SIGTERM was sent */
    int64_t kill_grace_ms;
    bool timed_out;
    bool reaped;
    bool lost; /* waitpid said ECHILD: reaped elsewhere, its exit status is unknown */
    int wstatus;
    char tail[BG_CHILD_TAIL];
    size_t tail_len;
};

/* Start argv (PATH searched, no shell) in a process group of its own, stdin /dev/null, stdout
 * and stderr into one non-blocking pipe, with env (NULL: ours). SIGTERM after timeout_ms,
 * SIGKILL kill_grace_ms later. Returns the child (free with bg_child_free), or NULL with the
 * reason in err. */
struct bg_child *bg_child_spawn(char *const argv[], char *const env[], int64_t timeout_ms,
                                int64_t kill_grace_ms, char *err, size_t errlen);
/* Read what the pipe holds (bounded, so that a chatty command cannot hold the loop). */
void bg_child_read(struct bg_child *ch);
/* Observe and act: read output, reap, enforce the timeout. Returns true once reaped. */
bool bg_child_step(struct bg_child *ch, int64_t now);
/* Monotonic ms when bg_child_step should run next. */
int64_t bg_child_deadline(const struct bg_child *ch, int64_t now);
/* Stop it in the background: SIGTERM to the group now, SIGKILL after the grace. */
void bg_child_stop(struct bg_child *ch, int64_t now);
/* Add the pipe and pidfd to pfd[n..max); returns the new n. */
int bg_child_fds(const struct bg_child *ch, struct pollfd *pfd, int n, int max);
/* The output tail on one line, printable (bg_sanitize), end kept; "(no output)" when none. */
void bg_child_tail_text(const struct bg_child *ch, char *out, size_t outlen);
/* Outcome of a reaped child: 0 for exit 0, else -1; msg says "exit 0 in N ms", "exit 3:
 * <tail>", "timed out after N ms: <tail>", "killed by signal N (...): <tail>" or, when its
 * status was lost (ECHILD), "exit status unknown ..." (a failure: never presumed 0). */
int bg_child_result(const struct bg_child *ch, int64_t now, char *msg, size_t msglen);
/* Free; an unreaped child is killed and reaped first (blocks only as long as SIGKILL takes). */
void bg_child_free(struct bg_child *ch);

#endif
