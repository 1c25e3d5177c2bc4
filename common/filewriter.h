/* filewriter.h -- a file kept up to date off the main loop (filewriter.c). */
#ifndef BG_FILEWRITER_H
#define BG_FILEWRITER_H

#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BG_FILEWRITER_ERROR_MAX 400

struct bg_filewriter {
    char *path;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, stopping, busy;        /* under mu (started: the loop's only) */
    char *next;                          /* under mu: the text to write next (NULL: none) */
    char error[BG_FILEWRITER_ERROR_MAX]; /* under mu: why the last write failed ("" ok) */
    unsigned long long written;          /* under mu: writes that worked */
};

/* Start the thread that writes path. BG_OK, or BG_EINVAL (logged). */
int bg_filewriter_start(struct bg_filewriter *w, const char *path);
/* Hand over text (copied): written as soon as the thread is free; a text not yet written when
 * the next one comes is dropped (only the newest matters). Never blocks on the disk. */
void bg_filewriter_put(struct bg_filewriter *w, const char *text);
/* The last write's error ("" when it worked or none was made) and the count of good writes. */
void bg_filewriter_status(struct bg_filewriter *w, char *error, size_t errlen,
                          unsigned long long *written);
/* Wait up to wait_ms until nothing is left to write; true when so (tests, shutdown). */
bool bg_filewriter_idle(struct bg_filewriter *w, int64_t wait_ms);
/* Write what was handed over, stop the thread, free. Safe after a failed start. */
void bg_filewriter_stop(struct bg_filewriter *w);

#endif
