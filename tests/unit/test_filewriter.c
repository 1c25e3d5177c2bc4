/* test_filewriter.c -- unit tests for common/filewriter.c: the newest text reaches the file
 * (written aside and renamed: never half a file), a failure is reported, stop writes what was
 * handed over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "filewriter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_filewriter_newest_wins(void **state)
{
    (void)state;
    char dir[] = "/tmp/bg-test-filewriter.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = bg_xasprintf("%s/app.cfg", dir);
    struct bg_filewriter w;
    assert_int_equal(bg_filewriter_start(&w, path), BG_OK);
    bg_filewriter_put(&w, "backend app\n    server a 10.0.0.1:80\n");
    bg_filewriter_put(&w, "backend app\n    server b 10.0.0.2:80\n");
    assert_true(bg_filewriter_idle(&w, 5000));
    char *text = slurp(path);
    assert_string_equal(text, "backend app\n    server b 10.0.0.2:80\n");
    free(text);
    char error[BG_FILEWRITER_ERROR_MAX];
    unsigned long long written = 0;
    bg_filewriter_status(&w, error, sizeof(error), &written);
    assert_string_equal(error, "");
    assert_true(written >= 1 && written <= 2); /* the first may have been dropped */
    char *aside = bg_xasprintf("%s.bg-new", path);
    assert_int_equal(access(aside, F_OK), -1); /* nothing left aside */
    /* stop writes what was handed over */
    bg_filewriter_put(&w, "backend app\n");
    bg_filewriter_stop(&w);
    text = slurp(path);
    assert_string_equal(text, "backend app\n");
    free(text);
    unlink(path);
    rmdir(dir);
    free(aside);
    free(path);
}

static void test_filewriter_failure_reported(void **state)
{
    (void)state;
    struct bg_filewriter w;
    assert_int_equal(bg_filewriter_start(&w, "/nonexistent-dir-bg/app.cfg"), BG_OK);
    bg_filewriter_put(&w, "backend app\n");
    assert_true(bg_filewriter_idle(&w, 5000));
    char error[BG_FILEWRITER_ERROR_MAX];
    unsigned long long written = 7;
    bg_filewriter_status(&w, error, sizeof(error), &written);
    assert_string_equal(error, "cannot write /nonexistent-dir-bg/app.cfg.bg-new: No such file or "
                               "directory");
    assert_int_equal(written, 0);
    bg_filewriter_stop(&w);
    struct bg_filewriter never;
    memset(&never, 0, sizeof(never));
    bg_filewriter_stop(&never); /* safe without a start */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_filewriter_newest_wins),
                                       cmocka_unit_test(test_filewriter_failure_reported)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
