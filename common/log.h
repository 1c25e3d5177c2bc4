/* log.h -- one key=value line per event on stderr. */
#ifndef BG_LOG_H
#define BG_LOG_H

enum bg_log_level { BG_LOG_DEBUG = 0, BG_LOG_INFO, BG_LOG_WARN, BG_LOG_ERROR };

/* Name the program in every line; level from $BG_LOG_LEVEL (debug|info|warn|error). */
void bg_log_init(const char *prog);
void bg_log_set_level(enum bg_log_level level);
/* Print "ts=... level=... prog=... event=<event> <fmt...>". Thread-safe (one write per line). */
void bg_log(enum bg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define bg_debug(ev, ...) bg_log(BG_LOG_DEBUG, ev, __VA_ARGS__)
#define bg_info(ev, ...) bg_log(BG_LOG_INFO, ev, __VA_ARGS__)
#define bg_warn(ev, ...) bg_log(BG_LOG_WARN, ev, __VA_ARGS__)
#define bg_error(ev, ...) bg_log(BG_LOG_ERROR, ev, __VA_ARGS__)

#endif
