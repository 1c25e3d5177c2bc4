/* page.h -- the controller's status page (GET /): HTML rendered from /status and /history. */
#ifndef BG_PAGE_H
#define BG_PAGE_H

#include "httpd.h"
#include "zk.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The page never grows past this many bytes: instance rows and history entries that would
 * pass it are left out and counted on the page instead. */
#define BG_PAGE_MAX (1024 * 1024)
/* Each string taken from the documents is shown at most this long (cut on a UTF-8 boundary). */
#define BG_PAGE_TEXT_MAX 600
/* The newest /history entries shown. */
#define BG_PAGE_HISTORY 10

/* Who renders, and where the documents came from. Any field may be NULL. */
struct bg_page_ctx {
    const char *self_id; /* this controller's id */
    bool leader;         /* this controller leads */
    const char *source;  /* one line on where /status came from and how old it is */
    const char *now;     /* ISO time of rendering */
};

/* The page as one malloc'd, NUL-terminated HTML document (the caller frees). status is the
 * controller's /status document (as written to ZooKeeper), history the newest /history entries,
 * newest first; either may be NULL, of any JSON type, or miss any field: what is missing or of
 * the wrong type is shown as "-". Every string from the documents is HTML-escaped and stripped
 * of control characters; the page has no script and loads nothing (its Content-Security-Policy
 * forbids both), and reloads itself every 2 s. Never longer than BG_PAGE_MAX. Pure: no I/O;
 * can't fail (out of memory aborts). */
char *bg_page_render(const json_t *status, const json_t *history, const struct bg_page_ctx *ctx);

/* ----------------------------------------------------------------------------------------
 * Serving it (page_feed.c, in bg-controller). Requests are answered on the main loop (the
 * HTTP server runs there, also inside ZooKeeper waits), so GET / never calls ZooKeeper: it
 * renders from what the loop last read. While the page has been asked for in the last
 * BG_PAGE_WANTED_MS, each loop turn calls bg_page_feed_refresh, which reads /status (standby
 * only: the leader passes its in-memory /status document to bg_page_serve, fresher than any
 * read) and the newest /history entries, at most every BG_PAGE_READ_MS, with the loop's
 * bounded ZooKeeper calls. Nobody looking: no reads at all.
 * ------------------------------------------------------------------------------------- */

#define BG_PAGE_WANTED_MS 30000
#define BG_PAGE_READ_MS 2000

struct bg_page_feed {
    json_t *status;    /* /status as last read (standby), or NULL */
    bool status_bad;   /* the last read found /status but not a JSON document in it */
    json_t *history;   /* the newest /history entries, newest first (array), or NULL */
    char newest[64];   /* name of the newest entry read: unchanged, nothing is read again */
    int64_t read_ms;   /* monotonic ms of the last read (0: never) */
    int64_t read_wall; /* wall ms of the last read of /status */
    int64_t wanted_ms; /* monotonic ms of the last GET / (0: never) */
};

/* Read /status and /history for the page when it is wanted and due (see above). The calls
 * are the loop's bounded ones; a failed read keeps what was read before. Can't fail. */
void bg_page_feed_refresh(struct bg_page_feed *f, struct bg_zk *z, bool leader);
/* Answer GET / with the page. live: the leader's /status document (borrowed), or NULL for a
 * standby, which shows the /status it last read. */
enum MHD_Result bg_page_serve(struct bg_page_feed *f, struct MHD_Connection *conn,
                              const json_t *live, const char *self_id, bool leader);
/* Forget what was read (the feed can be used again). */
void bg_page_feed_free(struct bg_page_feed *f);

#endif
