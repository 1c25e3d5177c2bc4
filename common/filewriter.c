/* filewriter.c -- a file kept up to date by a thread of its own (bg-router's haproxy.file): the
 * main loop hands over the newest text and goes on; the thread writes it aside, fsyncs it and
 * renames it in. fsync can take seconds on a busy disk (3.1 s was measured under load, with the
 * router's loop, /health and ZooKeeper waiting): it must not happen on the loop. */
#include "filewriter.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write text to path atomically: path.bg-new written and fsynced, renamed over path, the
 * directory fsynced. BG_OK or BG_EINVAL with why. */
static int replace_file(const char *path, const char *text, char *why, size_t whylen)
{
    char *aside = bg_xasprintf("%s.bg-new", path);
    int rc = bg_write_file(aside, text, why, whylen);
    if (rc == BG_OK && rename(aside, path) != 0) {
        snprintf(why, whylen, "cannot rename %s to %s: %s", aside, path, strerror(errno));
        unlink(aside);
        rc = BG_EINVAL;
    }
    if (rc == BG_OK)
        bg_sync_dir(path);
    free(aside);
    return rc;
}

static void *writer_main(void *arg)
{
    struct bg_filewriter *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->next == NULL && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->next == NULL) /* stopping, nothing left to write */
            break;
        char *text = w->next;
        w->next = NULL;
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        char why[BG_FILEWRITER_ERROR_MAX] = "";
        int rc = replace_file(w->path, text, why, sizeof(why));
        free(text);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        w->written += rc == BG_OK;
        snprintf(w->error, sizeof(w->error), "%s", rc == BG_OK ? "" : why);
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int bg_filewriter_start(struct bg_filewriter *w, const char *path)
{
    memset(w, 0, sizeof(*w));
    w->path = bg_xstrdup(path);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        bg_error("filewriter_failed", "path=%s reason=\"cannot start a thread\"", path);
        return BG_EINVAL;
    }
    w->started = true;
    return BG_OK;
}

void bg_filewriter_put(struct bg_filewriter *w, const char *text)
{
    pthread_mutex_lock(&w->mu);
    free(w->next); /* not written yet: the newer text replaces it */
    w->next = bg_xstrdup(text);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void bg_filewriter_status(struct bg_filewriter *w, char *error, size_t errlen,
                          unsigned long long *written)
{
    pthread_mutex_lock(&w->mu);
    snprintf(error, errlen, "%s", w->error);
    if (written != NULL)
        *written = w->written;
    pthread_mutex_unlock(&w->mu);
}

bool bg_filewriter_idle(struct bg_filewriter *w, int64_t wait_ms)
{
    int64_t until = bg_now_ms() + wait_ms;
    pthread_mutex_lock(&w->mu);
    while ((w->next != NULL || w->busy) && bg_now_ms() < until) {
        pthread_mutex_unlock(&w->mu);
        usleep(5000);
        pthread_mutex_lock(&w->mu);
    }
    bool idle = w->next == NULL && !w->busy;
    pthread_mutex_unlock(&w->mu);
    return idle;
}

void bg_filewriter_stop(struct bg_filewriter *w)
{
    if (w->path == NULL) /* never started */
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL); /* writes what was handed over: the file is as served */
        w->started = false;
    }
    free(w->next);
    w->next = NULL;
    bg_free(&w->path);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}
