/* page_feed.c -- GET / on the controller: what the status page shows, read by the main loop
 * from ZooKeeper only while someone looks, and served without calling ZooKeeper (page.h). */
#include "page.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node's data as JSON, or NULL (missing, unreadable now, or not JSON). */
static json_t *read_json(struct bg_zk *z, const char *path, int *rc)
{
    struct Stat st;
    *rc = bg_zk_exists(z, path, 0, &st);
    if (*rc != ZOK)
        return NULL;
    int cap = st.dataLength + 1024; /* room for growth in between */
    char *buf = bg_xmalloc((size_t)cap + 1);
    int len = cap;
    *rc = bg_zk_get(z, path, 0, buf, &len, &st);
    json_t *j = NULL;
    if (*rc == ZOK && len >= 0 && len < cap)
        j = json_loadb(buf, (size_t)len, 0, NULL);
    free(buf);
    return j;
}

static int newest_first(const void *a, const void *b)
{
    /* entry-<10 digits>: lexical order is sequence order. */
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* The newest BG_PAGE_HISTORY entries; entries never change, so when the newest is the one
 * read last time nothing is read. Returns whether the feed is up to date. */
static bool read_history(struct bg_page_feed *f, struct bg_zk *z)
{
    char dir[600];
    bg_zk_path(z, "/history", dir, sizeof(dir));
    struct String_vector kids = {0};
    int rc = bg_zk_children(z, dir, 0, &kids);
    if (rc == ZNONODE) {
        json_decref(f->history);
        f->history = json_array();
        f->newest[0] = '\0';
        return true;
    }
    if (rc != ZOK)
        return false;
    qsort(kids.data, (size_t)kids.count, sizeof(char *), newest_first);
    bool ok = true;
    const char *newest = kids.count > 0 ? kids.data[0] : "";
    if (f->history == NULL || strcmp(newest, f->newest) != 0) {
        json_t *h = json_array();
        for (int i = 0; i < kids.count && i < BG_PAGE_HISTORY && ok; i++) {
            char path[1200];
            snprintf(path, sizeof(path), "%s/%s", dir, kids.data[i]);
            json_t *e = read_json(z, path, &rc);
            if (e != NULL)
                json_array_append_new(h, e);
            else if (rc != ZNONODE && rc != ZOK)
                ok = false; /* not now: try again next turn (ZNONODE: pruned meanwhile) */
        }
        if (ok) {
            json_decref(f->history);
            f->history = h;
            bg_strlcpy_utf8(f->newest, newest, sizeof(f->newest));
        } else {
            json_decref(h);
        }
    }
    deallocate_String_vector(&kids);
    return ok;
}

void bg_page_feed_refresh(struct bg_page_feed *f, struct bg_zk *z, bool leader)
{
    int64_t now = bg_now_ms();
    if (f->wanted_ms == 0 || now - f->wanted_ms > BG_PAGE_WANTED_MS)
        return;
    if (f->read_ms != 0 && now - f->read_ms < BG_PAGE_READ_MS)
        return;
    bool ok = true;
    if (!leader) {
        char path[600];
        int rc;
        bg_zk_path(z, "/status", path, sizeof(path));
        json_t *st = read_json(z, path, &rc);
        if (st != NULL || rc == ZNONODE || rc == ZOK) {
            /* ZOK without a document: /status is not JSON. That is an answer too (shown as
             * such), not a failure to retry on every loop turn. */
            json_decref(f->status);
            f->status = st;
            f->status_bad = st == NULL && rc == ZOK;
            f->read_wall = bg_wall_ms();
        } else {
            ok = false;
        }
    }
    if (ok && read_history(f, z))
        f->read_ms = now; /* else again on the next turn */
}

enum MHD_Result bg_page_serve(struct bg_page_feed *f, struct MHD_Connection *conn,
                              const json_t *live, const char *self_id, bool leader)
{
    f->wanted_ms = bg_now_ms(); /* the loop reads for the page from now on */
    char now[40], source[160];
    bg_iso_time(bg_wall_ms(), now, sizeof(now));
    if (live != NULL)
        snprintf(source, sizeof(source), "/status as this leader has it now");
    else if (f->read_wall != 0)
        snprintf(source, sizeof(source), "/status as read from ZooKeeper %.1f s ago%s",
                 (double)(bg_wall_ms() - f->read_wall) / 1000.0,
                 f->status_bad ? ": not a JSON document" : "");
    else
        snprintf(source, sizeof(source), "/status not read yet");
    struct bg_page_ctx ctx = {.self_id = self_id, .leader = leader, .source = source, .now = now};
    char *html = bg_page_render(live != NULL ? live : f->status, f->history, &ctx);
    enum MHD_Result r = bg_httpd_reply(conn, 200, "text/html; charset=utf-8", html);
    free(html);
    return r;
}

void bg_page_feed_free(struct bg_page_feed *f)
{
    json_decref(f->status);
    json_decref(f->history);
    memset(f, 0, sizeof(*f));
}
