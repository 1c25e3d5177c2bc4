/* test_child.c -- unit tests for common/child.c: the outcome of a child process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "child.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static struct bg_child *spawn(const char *cmd)
{
    char *argv[] = {(char *)cmd, NULL};
    char err[200];
    struct bg_child *ch = bg_child_spawn(argv, NULL, 5000, 500, err, sizeof(err));
    assert_non_null(ch);
    return ch;
}

static void run_to_end(struct bg_child *ch)
{
    int64_t end = bg_now_ms() + 5000;
    while (!bg_child_step(ch, bg_now_ms()) && bg_now_ms() < end)
        bg_sleep_ms(5);
    assert_true(ch->reaped);
}

static void test_child_exit_codes(void **state)
{
    (void)state;
    char msg[512];
    struct bg_child *ch = spawn("true");
    run_to_end(ch);
    assert_int_equal(bg_child_result(ch, bg_now_ms(), msg, sizeof(msg)), 0);
    bg_child_free(ch);
    ch = spawn("false");
    run_to_end(ch);
    assert_int_equal(bg_child_result(ch, bg_now_ms(), msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "exit 1"));
    bg_child_free(ch);
}

/* Issue 9: a child reaped elsewhere (waitpid -> ECHILD) was counted as exit 0. */
static void test_child_echild_is_failure(void **state)
{
    (void)state;
    struct bg_child *ch = spawn("false");
    int ws;
    while (waitpid(ch->pid, &ws, 0) < 0 && errno == EINTR)
        ;
    run_to_end(ch);
    char msg[512];
    assert_int_equal(bg_child_result(ch, bg_now_ms(), msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "exit status unknown"));
    bg_child_free(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_exit_codes),
        cmocka_unit_test(test_child_echild_is_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
