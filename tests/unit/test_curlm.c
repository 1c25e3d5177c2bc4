/* test_curlm.c -- the libcurl multi layer's response bodies (agent/curlm.c): assembled from
 * write callbacks, NUL-terminated, capped with the start kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "curlm.h"

#include <string.h>

/* Feed s to the body as libcurl would: one callback. */
static void chunk(struct bg_curlm_body *b, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(bg_curlm_body_write((char *)s, 1, len, b), len); /* every byte taken */
}

static void test_curlm_body_assembles_chunks(void **state)
{
    (void)state;
    struct bg_curlm_body b;
    bg_curlm_body_init(&b, 64);
    assert_null(b.data);
    chunk(&b, "{\"instance\":");
    chunk(&b, "{\"status\":\"UP\"}}");
    assert_int_equal(b.len, strlen("{\"instance\":{\"status\":\"UP\"}}"));
    assert_string_equal(b.data, "{\"instance\":{\"status\":\"UP\"}}");
    assert_false(b.truncated);
    bg_curlm_body_reset(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    chunk(&b, "again");
    assert_string_equal(b.data, "again");
    bg_curlm_body_finalize(&b);
    assert_null(b.data);
}

static void test_curlm_body_cap_keeps_only_the_start(void **state)
{
    (void)state;
    struct bg_curlm_body b;
    bg_curlm_body_init(&b, 10);
    chunk(&b, "0123456");
    chunk(&b, "789abc"); /* over the cap: dropped */
    /* A later chunk that would fit must not be glued on after the gap. */
    chunk(&b, "de");
    assert_string_equal(b.data, "0123456");
    assert_int_equal(b.len, 7);
    assert_true(b.truncated);
    bg_curlm_body_finalize(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curlm_body_assembles_chunks),
        cmocka_unit_test(test_curlm_body_cap_keeps_only_the_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
