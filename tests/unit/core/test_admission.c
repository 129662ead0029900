#include "core/admission.h"
#include "hm_check.h"

static struct hm_admission *mk(uint32_t max, uint32_t min)
{
    struct hm_admission_cfg c = {.enabled = true, .max_inflight = max, .min_inflight = min,
                                 .target_commit_ms = 10, .target_session_ms = 100,
                                 .max_store_queue = 100, .retry_after_s = 10};
    return hm_admission_create(&c, 2);
}

START_TEST(auto_defaults_resolved)
{
    struct hm_admission_cfg c = {.enabled = true};
    struct hm_admission *a = hm_admission_create(&c, 1);
    const struct hm_admission_cfg *r = hm_admission_config(a);
    ck_assert_uint_eq(r->max_inflight, 256);
    ck_assert_uint_eq(r->min_inflight, 8);
    ck_assert_uint_eq(r->target_commit_ms, 50);
    ck_assert_uint_eq(r->target_session_ms, 2000);
    ck_assert_uint_eq(r->max_store_queue, 2048);
    ck_assert_uint_eq(r->retry_after_s, 10);
    ck_assert_uint_eq(hm_admission_limit(a, 0), 256);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(sheds_at_limit_with_hysteresis)
{
    struct hm_admission *a = mk(16, 4);
    uint64_t t = 1000;
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_inflight(a, 0), 16);
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_INFLIGHT);
    /* the other shard is independent */
    ck_assert_int_eq(hm_admission_admit(a, 1, t, 0), HM_ADM_ADMIT);
    /* one slot free is not enough: shedding holds until in-flight < limit - limit/8 (14) */
    hm_admission_end(a, 0, t, 0);
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_INFLIGHT);
    hm_admission_end(a, 0, t, 0);
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_INFLIGHT);
    hm_admission_end(a, 0, t, 0);
    ck_assert_uint_eq(hm_admission_inflight(a, 0), 13);
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_ADMIT);
    /* out of the shedding state, the next one is admitted up to the limit again */
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_INFLIGHT), 3);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(store_queue_sheds)
{
    struct hm_admission *a = mk(16, 4);
    ck_assert_int_eq(hm_admission_admit(a, 0, 1, 101), HM_ADM_STORE_QUEUE);
    ck_assert_int_eq(hm_admission_admit(a, 0, 1, 100), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_STORE_QUEUE), 1);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(slow_commits_shrink_limit_then_it_recovers)
{
    struct hm_admission *a = mk(200, 8);
    uint64_t t = 1;
    for (int i = 0; i < 50; i++)
        hm_admission_observe_commit(a, 0, 100000); /* 100 ms >> 10 ms target */
    ck_assert_uint_ge(hm_admission_commit_ewma_us(a, 0), 90000);
    uint32_t prev = hm_admission_limit(a, 0);
    for (int step = 0; step < 30; step++) {
        t += HM_ADM_ADJUST_US;
        (void)hm_admission_admit(a, 0, t, 0);
        hm_admission_end(a, 0, t, 0);
        ck_assert_uint_le(hm_admission_limit(a, 0), prev);
        prev = hm_admission_limit(a, 0);
    }
    ck_assert_uint_eq(hm_admission_limit(a, 0), 8); /* the floor */
    /* healthy commits again, and the limit binds: it grows back to the cap */
    for (int i = 0; i < 100; i++)
        hm_admission_observe_commit(a, 0, 1000);
    ck_assert_uint_lt(hm_admission_commit_ewma_us(a, 0), 10000);
    for (int step = 0; step < 100; step++) {
        t += HM_ADM_ADJUST_US;
        uint32_t lim = hm_admission_limit(a, 0);
        unsigned n = 0;
        while (hm_admission_admit(a, 0, t, 0) == HM_ADM_ADMIT)
            n++;
        ck_assert_uint_ge(n + 1, lim - lim / 8); /* admitted up to (about) the limit */
        while (n--)
            hm_admission_end(a, 0, t, 1000);
    }
    ck_assert_uint_eq(hm_admission_limit(a, 0), 200);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(limit_does_not_grow_when_unused)
{
    struct hm_admission *a = mk(200, 8);
    for (int i = 0; i < 50; i++)
        hm_admission_observe_commit(a, 0, 100000);
    uint64_t t = 1;
    for (int step = 0; step < 30; step++) {
        t += HM_ADM_ADJUST_US;
        (void)hm_admission_admit(a, 0, t, 0);
        hm_admission_end(a, 0, t, 0);
    }
    for (int i = 0; i < 100; i++)
        hm_admission_observe_commit(a, 0, 1000);
    for (int step = 0; step < 50; step++) { /* one session at a time: limit not binding */
        t += HM_ADM_ADJUST_US;
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_ADMIT);
        hm_admission_end(a, 0, t, 1000);
    }
    ck_assert_uint_eq(hm_admission_limit(a, 0), 8);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(slow_sessions_shrink_limit)
{
    struct hm_admission *a = mk(64, 4);
    uint64_t t = 1;
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0), HM_ADM_ADMIT);
        hm_admission_end(a, 0, t, 500000); /* 500 ms >> 100 ms target */
    }
    t += HM_ADM_ADJUST_US;
    (void)hm_admission_admit(a, 0, t, 0);
    ck_assert_uint_eq(hm_admission_limit(a, 0), 48);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(disabled_admits_everything)
{
    struct hm_admission_cfg c = {.enabled = false, .max_inflight = 2};
    struct hm_admission *a = hm_admission_create(&c, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(hm_admission_admit(a, 0, 1, 1u << 30), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_inflight(a, 0), 10);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(retry_after_jittered_in_range)
{
    struct hm_admission *a = mk(16, 4);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
        uint32_t r = hm_admission_retry_after(a, 0);
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    ck_assert_uint_eq(lo, 5);
    ck_assert_uint_eq(hi, 15);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(metrics_render)
{
    struct hm_admission *a = mk(16, 4);
    (void)hm_admission_admit(a, 0, 1, 1000);
    hm_admission_count(a, 1, HM_ADM_STORE_ERROR);
    struct hm_buf b = {0};
    hm_admission_render_metrics(&b, a);
    hm_buf_append_lit(&b, "\0");
    ck_assert_ptr_nonnull(strstr(b.base, "hems_admission_shed_total{reason=\"store_queue\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(b.base, "hems_admission_shed_total{reason=\"store_error\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(b.base, "hems_admission_limit{shard=\"1\"} 16\n"));
    ck_assert_str_eq(hm_admission_reason_name(HM_ADM_INFLIGHT), "inflight");
    hm_buf_free(&b);
    hm_admission_destroy(a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("admission");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, auto_defaults_resolved);
    tcase_add_test(tc, sheds_at_limit_with_hysteresis);
    tcase_add_test(tc, store_queue_sheds);
    tcase_add_test(tc, slow_commits_shrink_limit_then_it_recovers);
    tcase_add_test(tc, limit_does_not_grow_when_unused);
    tcase_add_test(tc, slow_sessions_shrink_limit);
    tcase_add_test(tc, disabled_admits_everything);
    tcase_add_test(tc, retry_after_jittered_in_range);
    tcase_add_test(tc, metrics_render);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
