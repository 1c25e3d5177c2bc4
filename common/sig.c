/* sig.c -- the stop signals shared by bg-agent and bg-controller (see sig.h). */
#include "sig.h"

#include <signal.h>
#include <stddef.h>

/* Set before the handlers are installed, cleared by bg_sig_finish(); read by the handler. */
static volatile int *sig_stop;
static struct bg_zk *sig_zk;

static void on_signal(int sig)
{
    if (sig_stop != NULL && sig_zk != NULL) {
        *sig_stop = sig;    /* which one, for the log line */
        bg_zk_wake(sig_zk); /* a write(2) to an eventfd: async-signal-safe */
    }
}

void bg_sig_init(volatile int *stop, struct bg_zk *zk)
{
    sig_stop = stop;
    sig_zk = zk;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void bg_sig_finish(void)
{
    sig_stop = NULL;
    sig_zk = NULL;
}

const char *bg_sig_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "?";
}
