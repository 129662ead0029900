#include <stdlib.h>

#include "bench/loadgen_hist.h"
#include "hm_check.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sorted-array reference of hm_lg_hist_quantile's convention: rank ceil(q * n). */
static uint64_t ref_quantile(const uint64_t *sorted, size_t n, double q)
{
    if (q <= 0.0)
        return sorted[0];
    double r = q * (double)n - 1e-9;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void check_close(uint64_t got, uint64_t want)
{
    /* a bucket is at most 1/64 of its lower bound wide and we report its highest value */
    ck_assert_msg(got >= want, "got %llu < reference %llu", (unsigned long long)got,
                  (unsigned long long)want);
    ck_assert_msg(got - want <= want / 64, "got %llu, reference %llu: off by more than 1/64",
                  (unsigned long long)got, (unsigned long long)want);
}

static const double qs[] = {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0};

/* log-uniform values from 1 us to ~17 min: what a latency distribution spans */
static uint64_t latency_like(void)
{
    unsigned bits = (unsigned)(rnd() % 30);
    return (rnd() & ((1ull << bits) - 1)) | (1ull << bits);
}

START_TEST(quantiles_match_sorted_reference)
{
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + (size_t)(rnd() % 20000);
        uint64_t *v = malloc(n * sizeof(*v));
        struct hm_lg_hist *h = calloc(1, sizeof(*h));
        for (size_t i = 0; i < n; i++) {
            v[i] = round % 4 == 0 ? rnd() % HM_LG_HIST_SUB : latency_like();
            hm_lg_hist_record(h, v[i]);
        }
        qsort(v, n, sizeof(*v), cmp_u64);
        ck_assert_uint_eq(h->count, n);
        ck_assert_uint_eq(h->min, v[0]);
        ck_assert_uint_eq(h->max, v[n - 1]);
        for (size_t i = 0; i < HM_ARRAY_SIZE(qs); i++)
            check_close(hm_lg_hist_quantile(h, qs[i]), ref_quantile(v, n, qs[i]));
        /* small values are exact */
        if (round % 4 == 0)
            for (size_t i = 0; i < HM_ARRAY_SIZE(qs); i++)
                ck_assert_uint_eq(hm_lg_hist_quantile(h, qs[i]), ref_quantile(v, n, qs[i]));
        free(v);
        free(h);
    }
}
END_TEST

START_TEST(buckets_tile_the_value_range)
{
    /* every bucket's range starts right after the previous one's and is at most 1/64 wide */
    ck_assert_uint_eq(hm_lg_hist_lowest(0), 0);
    for (unsigned i = 1; i < HM_LG_HIST_BUCKETS; i++) {
        ck_assert_uint_eq(hm_lg_hist_lowest(i), hm_lg_hist_highest(i - 1) + 1);
        uint64_t lo = hm_lg_hist_lowest(i), hi = hm_lg_hist_highest(i);
        ck_assert(hi - lo <= lo / 64);
        ck_assert_uint_eq(hm_lg_hist_index(lo), i);
        ck_assert_uint_eq(hm_lg_hist_index(hi), i);
    }
    ck_assert_uint_eq(hm_lg_hist_index(UINT64_MAX), HM_LG_HIST_BUCKETS - 1);
    for (int i = 0; i < 100000; i++) {
        uint64_t x = rnd() >> (rnd() % 64);
        unsigned idx = hm_lg_hist_index(x);
        if (idx < HM_LG_HIST_BUCKETS - 1)
            ck_assert(hm_lg_hist_lowest(idx) <= x && x <= hm_lg_hist_highest(idx));
    }
}
END_TEST

START_TEST(merge_equals_recording_everything_in_one)
{
    struct hm_lg_hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct hm_lg_hist *all = calloc(1, sizeof(*all));
    for (int i = 0; i < 50000; i++) {
        uint64_t x = latency_like();
        hm_lg_hist_record(i % 3 ? a : b, x);
        hm_lg_hist_record(all, x);
    }
    hm_lg_hist_merge(a, b);
    ck_assert_uint_eq(a->count, all->count);
    ck_assert_uint_eq(a->min, all->min);
    ck_assert_uint_eq(a->max, all->max);
    ck_assert_uint_eq(a->sum, all->sum);
    ck_assert(memcmp(a->b, all->b, sizeof(a->b)) == 0);
    for (size_t i = 0; i < HM_ARRAY_SIZE(qs); i++)
        ck_assert_uint_eq(hm_lg_hist_quantile(a, qs[i]), hm_lg_hist_quantile(all, qs[i]));
    /* merging an empty histogram changes nothing; into an empty one copies */
    struct hm_lg_hist *e = calloc(1, sizeof(*e));
    hm_lg_hist_merge(a, e);
    ck_assert_uint_eq(a->min, all->min);
    hm_lg_hist_merge(e, all);
    ck_assert_uint_eq(e->min, all->min);
    ck_assert_uint_eq(hm_lg_hist_quantile(e, 0.99), hm_lg_hist_quantile(all, 0.99));
    free(a);
    free(b);
    free(all);
    free(e);
}
END_TEST

START_TEST(empty_and_single_value)
{
    struct hm_lg_hist *h = calloc(1, sizeof(*h));
    ck_assert_uint_eq(hm_lg_hist_quantile(h, 0.5), 0);
    hm_lg_hist_record(h, 123456789);
    for (size_t i = 0; i < HM_ARRAY_SIZE(qs); i++)
        ck_assert_uint_eq(hm_lg_hist_quantile(h, qs[i]), 123456789);
    hm_lg_hist_record(h, 1ull << 50); /* beyond the range: clamped bucket, exact max */
    ck_assert_uint_eq(hm_lg_hist_quantile(h, 1.0), 1ull << 50);
    check_close(hm_lg_hist_quantile(h, 0.5), 123456789);
    free(h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hist");
    TCase *tc = tcase_create("bench");
    tcase_add_test(tc, quantiles_match_sorted_reference);
    tcase_add_test(tc, buckets_tile_the_value_range);
    tcase_add_test(tc, merge_equals_recording_everything_in_one);
    tcase_add_test(tc, empty_and_single_value);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
