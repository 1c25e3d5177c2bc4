/* log.c -- key=value logging to stderr, one write(2) per line so threads never interleave. */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_prog = "bluegreen";
static enum bg_log_level log_level = BG_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void bg_log_init(const char *prog)
{
    log_prog = prog;
    const char *env = getenv("BG_LOG_LEVEL");
    if (env == NULL)
        return;
    for (size_t i = 0; i < BG_ARRAY_LEN(level_names); i++)
        if (strcmp(env, level_names[i]) == 0)
            log_level = (enum bg_log_level)i;
}

void bg_log_set_level(enum bg_log_level level)
{
    log_level = level;
}

void bg_log(enum bg_log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char line[2048];
    char ts[40];
    bg_iso_time(bg_wall_ms(), ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s prog=%s event=%s", ts, level_names[level],
                     log_prog, event);
    if (n < 0)
        return;
    if (fmt != NULL && fmt[0] != '\0' && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n] = '\0';
    /* Untrusted text (node names, peers' answers) must not forge a line of its own, and a cut
     * at the end of the buffer must not leave half a character. */
    bg_no_controls(line);
    n = (int)bg_utf8_trim_end(line);
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
