#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/pools.h"
#include "hm_check.h"

static struct hm_slice S(const char *s)
{
    return hm_slice_cstr(s);
}

START_TEST(pool_allocates_unique_and_sticky)
{
    struct hm_pool *p = hm_pool_create("pci", 10, 13);
    ck_assert_ptr_nonnull(p);
    int64_t a, b, c;
    bool fresh;
    ck_assert_int_eq(hm_pool_get(p, S("dev-a"), &a, &fresh), 0);
    ck_assert(fresh);
    ck_assert_int_eq(a, 10);
    ck_assert_int_eq(hm_pool_get(p, S("dev-b"), &b, &fresh), 0);
    ck_assert_int_eq(b, 11);
    /* same device, same value, not fresh */
    ck_assert_int_eq(hm_pool_get(p, S("dev-a"), &c, &fresh), 0);
    ck_assert(!fresh);
    ck_assert_int_eq(c, 10);
    ck_assert_int_eq(hm_pool_lookup(p, S("dev-b"), &c), 0);
    ck_assert_int_eq(c, 11);
    ck_assert_int_eq(hm_pool_lookup(p, S("dev-z"), &c), -ENOENT);
    ck_assert_int_eq(hm_pool_get(p, S("dev-c"), &c, &fresh), 0);
    ck_assert_int_eq(hm_pool_get(p, S("dev-d"), &c, &fresh), 0);
    ck_assert_int_eq(c, 13);
    /* exhausted: refused and counted */
    ck_assert_int_eq(hm_pool_get(p, S("dev-e"), &c, &fresh), -ENOSPC);
    ck_assert_int_eq(hm_pool_get(p, S("dev-f"), &c, &fresh), -ENOSPC);
    struct hm_pool_stats st;
    hm_pool_stats(p, &st);
    ck_assert_uint_eq(st.used, 4);
    ck_assert_uint_eq(st.size, 4);
    ck_assert_uint_eq(st.exhausted, 2);
    /* a released value is given again (next fit wraps) */
    ck_assert_int_eq(hm_pool_release(p, S("dev-b")), 0);
    ck_assert_int_eq(hm_pool_release(p, S("dev-b")), -ENOENT);
    ck_assert_int_eq(hm_pool_get(p, S("dev-e"), &c, &fresh), 0);
    ck_assert_int_eq(c, 11);
    hm_pool_destroy(p);
}
END_TEST

START_TEST(pool_restore_and_resize)
{
    struct hm_pool *p = hm_pool_create("eci", 0, 99);
    ck_assert_int_eq(hm_pool_restore(p, S("a"), 5), 0);
    ck_assert_int_eq(hm_pool_restore(p, S("a"), 5), 0);       /* idempotent */
    ck_assert_int_eq(hm_pool_restore(p, S("a"), 6), -EEXIST); /* a holds 5 */
    ck_assert_int_eq(hm_pool_restore(p, S("b"), 5), -EEXIST); /* 5 is a's */
    ck_assert_int_eq(hm_pool_restore(p, S("b"), 100), -ERANGE);
    ck_assert_int_eq(hm_pool_restore(p, S("b"), 0), 0);
    int64_t v;
    bool fresh;
    ck_assert_int_eq(hm_pool_get(p, S("c"), &v, &fresh), 0);
    ck_assert(v != 0 && v != 5);
    ck_assert_int_eq(hm_pool_resize(p, 0, 4), -EBUSY); /* a holds 5 */
    ck_assert_int_eq(hm_pool_resize(p, 0, 9), 0);
    ck_assert_int_eq(hm_pool_lookup(p, S("a"), &v), 0);
    ck_assert_int_eq(v, 5);
    ck_assert_int_eq(hm_pool_resize(p, 7, 3), -EINVAL);
    hm_pool_destroy(p);
    ck_assert_ptr_null(hm_pool_create("bad name", 0, 1));
    ck_assert_ptr_null(hm_pool_create("x", 5, 4));
    ck_assert_ptr_null(hm_pool_create("x", 0, HM_POOL_MAX_SIZE));
}
END_TEST

/* Many devices across the hash table's growth, then a full pool. */
START_TEST(pool_large_no_duplicates)
{
    enum { N = 5000 };
    struct hm_pool *p = hm_pool_create("big", 100, 100 + N - 1);
    static unsigned char seen[N];
    memset(seen, 0, sizeof(seen));
    char dev[32];
    for (int i = 0; i < N; i++) {
        int64_t v;
        bool fresh;
        snprintf(dev, sizeof(dev), "dev-%d", i);
        ck_assert_int_eq(hm_pool_get(p, S(dev), &v, &fresh), 0);
        ck_assert(v >= 100 && v < 100 + N);
        ck_assert(!seen[v - 100]);
        seen[v - 100] = 1;
    }
    int64_t v;
    bool fresh;
    ck_assert_int_eq(hm_pool_get(p, S("one-more"), &v, &fresh), -ENOSPC);
    for (int i = 0; i < N; i += 7) {
        snprintf(dev, sizeof(dev), "dev-%d", i);
        ck_assert_int_eq(hm_pool_lookup(p, S(dev), &v), 0);
    }
    hm_pool_destroy(p);
}
END_TEST

struct thr {
    struct hm_pool *p;
    int id;
    int64_t vals[1000];
};

static void *alloc_thread(void *arg)
{
    struct thr *t = arg;
    char dev[32];
    for (int i = 0; i < 1000; i++) {
        bool fresh;
        snprintf(dev, sizeof(dev), "t%d-%d", t->id, i);
        if (hm_pool_get(t->p, hm_slice_cstr(dev), &t->vals[i], &fresh) < 0)
            t->vals[i] = -1;
    }
    return NULL;
}

START_TEST(pool_concurrent_unique)
{
    enum { T = 8 };
    struct hm_pool *p = hm_pool_create("conc", 0, T * 1000 - 1);
    static struct thr th[T];
    pthread_t tid[T];
    for (int i = 0; i < T; i++) {
        th[i] = (struct thr){.p = p, .id = i};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, alloc_thread, &th[i]), 0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(tid[i], NULL);
    static unsigned char seen[T * 1000];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < T; i++)
        for (int j = 0; j < 1000; j++) {
            int64_t v = th[i].vals[j];
            ck_assert(v >= 0 && v < T * 1000);
            ck_assert(!seen[v]);
            seen[v] = 1;
        }
    hm_pool_destroy(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pools");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, pool_allocates_unique_and_sticky);
    tcase_add_test(tc, pool_restore_and_resize);
    tcase_add_test(tc, pool_large_no_duplicates);
    tcase_add_test(tc, pool_concurrent_unique);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
