/* test_zk_close.c -- unit tests for bg_zk_close on a session that was never opened (common/zk.c):
 * a daemon whose start fails before ZooKeeper (http.listen busy) frees a zeroed struct bg_zk. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "zk.h"

/* Its wake_fd is 0 there: closing it closed the process's standard input (found by strace
 * on bg-router and bg-controller; bg-agent frees the same way). */
static void test_zk_close_never_opened_keeps_fd_0(void **state)
{
    (void)state;
    if (fcntl(0, F_GETFD) < 0) { /* no stdin under this runner: give it one */
        int fd = open("/dev/null", O_RDONLY);
        assert_true(fd >= 0);
        if (fd != 0) {
            assert_int_equal(dup2(fd, 0), 0);
            close(fd);
        }
    }
    struct bg_zk z;
    memset(&z, 0, sizeof(z));
    bg_zk_close(&z);
    assert_true(fcntl(0, F_GETFD) >= 0);
    bg_zk_close(&z); /* twice: still nothing */
    assert_true(fcntl(0, F_GETFD) >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zk_close_never_opened_keeps_fd_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
