/* test_member_match.c -- matching a fresh read of the members with the previous one, and ids
 * registered under both colours (bench/README.md, defects found at scale, item 6: both were
 * O(N^2) per pass). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct bg_member mk(const char *id, enum bg_color color, int64_t czxid)
{
    struct bg_member m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "%s", id);
    m.color = color;
    m.czxid = czxid;
    m.endpoint = bg_xstrdup("http://127.0.0.1:1");
    m.healthy = true;
    return m;
}

static void drop(struct bg_member *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bg_free(&m[i].endpoint);
        bg_free(&m[i].problem);
    }
}

static void test_member_match_match_same_node_only(void **state)
{
    (void)state;
    struct bg_member old[] = {mk("a", BG_BLUE, 10), mk("b", BG_BLUE, 11), mk("c", BG_GREEN, 12),
                              mk("d", BG_GREEN, 13)};
    /* a unchanged, b re-registered (new czxid), c moved colour (new node), d gone, e new. */
    struct bg_member cur[] = {mk("e", BG_GREEN, 20), mk("c", BG_BLUE, 21), mk("b", BG_BLUE, 22),
                              mk("a", BG_BLUE, 10)};
    size_t match[4];
    bg_members_match(cur, 4, old, 4, match);
    assert_true(match[0] == SIZE_MAX);
    assert_true(match[1] == SIZE_MAX);
    assert_true(match[2] == SIZE_MAX);
    assert_int_equal(match[3], 0);
    size_t back[4];
    bg_members_match(old, 4, cur, 4, back);
    assert_int_equal(back[0], 3);
    assert_true(back[1] == SIZE_MAX && back[2] == SIZE_MAX && back[3] == SIZE_MAX);
    bg_members_match(cur, 4, NULL, 0, match);
    assert_true(match[0] == SIZE_MAX && match[3] == SIZE_MAX);
    drop(old, 4);
    drop(cur, 4);
}

static void test_member_match_duplicates_marked(void **state)
{
    (void)state;
    struct bg_member m[] = {mk("x", BG_BLUE, 1), mk("y", BG_BLUE, 2), mk("x", BG_GREEN, 3),
                            mk("z", BG_GREEN, 4)};
    assert_int_equal(bg_members_duplicates(m, 4), 2);
    assert_true(m[0].duplicate && m[2].duplicate);
    assert_false(m[1].duplicate || m[3].duplicate);
    assert_null(m[0].endpoint);
    assert_null(m[2].endpoint);
    assert_non_null(m[1].endpoint);
    assert_non_null(strstr(m[0].problem, "both colours"));
    assert_null(m[1].problem);
    drop(m, 4);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* 20000 + 20000 members, as a pass at that size does: every member matched with the previous
 * read both ways and checked for duplicates. O(N^2) took seconds here; O(N log N) milliseconds
 * (the bound is generous for a loaded machine and sanitizers). */
static void test_member_match_many_fast(void **state)
{
    (void)state;
    size_t n = 40000;
    struct bg_member *old = calloc(n, sizeof(*old)), *cur = calloc(n, sizeof(*cur));
    size_t *match = calloc(n, sizeof(*match));
    assert_true(old && cur && match);
    for (size_t i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-instance-%06zu", i % 2 ? "blue" : "green", i / 2);
        old[i] = mk(id, i % 2 ? BG_BLUE : BG_GREEN, (int64_t)(1000 + i));
        /* The next read: the same nodes in another order, the last one re-registered. */
        cur[n - 1 - i] = mk(id, i % 2 ? BG_BLUE : BG_GREEN, (int64_t)(1000 + i));
    }
    cur[0].czxid = 999999;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bg_members_match(cur, n, old, n, match);
    assert_true(match[0] == SIZE_MAX);
    assert_int_equal(match[1], n - 2);
    bg_members_match(old, n, cur, n, match);
    assert_true(match[n - 1] == SIZE_MAX);
    assert_int_equal(bg_members_duplicates(cur, n), 0);
    double ms = ms_since(&t0);
    printf("matched and checked %zu + %zu members in %.1f ms\n", n, n, ms);
    assert_true(ms < 1000);
    drop(old, n);
    drop(cur, n);
    free(old);
    free(cur);
    free(match);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_match_match_same_node_only),
        cmocka_unit_test(test_member_match_duplicates_marked),
        cmocka_unit_test(test_member_match_many_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
