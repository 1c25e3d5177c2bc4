/* sig.h -- the daemons' stop signals: SIGTERM, SIGINT and SIGHUP stop the main loop cleanly. */
#ifndef BG_SIG_H
#define BG_SIG_H

#include "zk.h"

/* Install the handlers for one daemon: SIGTERM, SIGINT and SIGHUP store their number in *stop
 * (read by the main loop, and by the log line that says why it stopped) and wake zk's loop
 * (bg_zk_wake); SIGPIPE is ignored. SIGHUP's default would kill the daemon on the spot,
 * leaving its ephemeral nodes for a session timeout. One daemon per process: a second call
 * replaces the first. Pair with bg_sig_finish() before *stop or zk go away. */
void bg_sig_init(volatile int *stop, struct bg_zk *zk);
/* Forget the daemon: a signal from now on is ignored by the handler (the handlers stay). */
void bg_sig_finish(void);
/* "SIGTERM", "SIGINT", "SIGHUP", or "?" for any other number. */
const char *bg_sig_name(int sig);

#endif
