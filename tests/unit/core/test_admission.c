#include "core/admission.h"
#include "hm_check.h"

#define MS 1000ull
#define S 1000000ull

static struct hm_admission *mk(uint32_t max_inflight, uint32_t min_rate)
{
    struct hm_admission_cfg c = {.enabled = true, .max_inflight = max_inflight,
                                 .min_rate = min_rate, .target_commit_ms = 10,
                                 .max_store_queue = 100, .retry_after_s = 10};
    return hm_admission_create(&c, 2);
}

/* Offers <per_period> sessions evenly over one period starting at *t, each ending at once
 * with commit wait <commit_us>; returns how many were admitted. */
static unsigned offer(struct hm_admission *a, uint64_t *t, unsigned per_period,
                      uint64_t commit_us)
{
    unsigned ok = 0;
    for (unsigned i = 0; i < per_period; i++) {
        *t += HM_ADM_ADJUST_US / per_period;
        if (hm_admission_admit(a, 0, *t, 0, false) == HM_ADM_ADMIT) {
            ok++;
            hm_admission_observe_commit(a, 0, commit_us, commit_us / 4);
            hm_admission_end(a, 0, *t, 1000);
        }
    }
    return ok;
}

START_TEST(auto_defaults_resolved)
{
    struct hm_admission_cfg c = {.enabled = true};
    struct hm_admission *a = hm_admission_create(&c, 1);
    const struct hm_admission_cfg *r = hm_admission_config(a);
    ck_assert_uint_eq(r->max_inflight, 4096);
    ck_assert_uint_eq(r->min_rate, 20);
    ck_assert_uint_eq(r->target_commit_ms, 500);
    ck_assert_uint_eq(r->target_lag_ms, 250);
    ck_assert_uint_eq(r->target_session_ms, 0);
    ck_assert_uint_eq(r->max_store_queue, 2048);
    ck_assert_uint_eq(r->retry_after_s, 10);
    ck_assert(hm_admission_rate(a, 0) >= HM_ADM_UNLIMITED);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(healthy_admits_everything)
{
    struct hm_admission *a = mk(4096, 20);
    uint64_t t = 1;
    for (int p = 0; p < 50; p++)
        ck_assert_uint_eq(offer(a, &t, 500, 2 * MS), 500); /* 5000/s, 2 ms commits */
    ck_assert(!hm_admission_congested(a, 0));
    ck_assert(hm_admission_rate(a, 0) >= HM_ADM_UNLIMITED);
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_RATE), 0);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(inflight_cap_sheds_and_frees)
{
    struct hm_admission *a = mk(16, 20);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(hm_admission_admit(a, 0, 10, 0, false), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_inflight(a, 0), 16);
    ck_assert_int_eq(hm_admission_admit(a, 0, 10, 0, false), HM_ADM_INFLIGHT);
    ck_assert(hm_admission_gate(a, 0, 10, NULL));
    ck_assert_int_eq(hm_admission_admit(a, 1, 10, 0, false), HM_ADM_ADMIT); /* shards independent */
    hm_admission_end(a, 0, 10, 0);
    ck_assert(!hm_admission_gate(a, 0, 10, NULL));
    ck_assert_int_eq(hm_admission_admit(a, 0, 10, 0, false), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_INFLIGHT), 1);
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_ACCEPT), 1);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(store_queue_sheds)
{
    struct hm_admission *a = mk(16, 20);
    ck_assert_int_eq(hm_admission_admit(a, 0, 1, 101, false), HM_ADM_STORE_QUEUE);
    ck_assert_int_eq(hm_admission_admit(a, 0, 1, 100, false), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_STORE_QUEUE), 1);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(congestion_cuts_rate_to_measured_then_recovers)
{
    struct hm_admission *a = mk(4096, 20);
    uint64_t t = 1;
    for (int p = 0; p < 5; p++)
        offer(a, &t, 300, 2 * MS); /* 3000/s healthy */
    for (int p = 0; p < 3; p++)
        offer(a, &t, 300, 100 * MS); /* commits at 100 ms >> 10 ms target */
    ck_assert(hm_admission_congested(a, 0));
    double r = hm_admission_rate(a, 0);
    ck_assert(r < 3000 * 7.0 / 8 + 1); /* from "unlimited" to 7/8 of what was admitted */
    ck_assert(r >= 20);
    /* still slow: the rate keeps falling, sessions are refused, never below the floor */
    unsigned admitted = 0;
    for (int p = 0; p < 60; p++)
        admitted += offer(a, &t, 300, 100 * MS);
    /* falls until a period holds too few admissions to be evidence of load */
    ck_assert(hm_admission_rate(a, 0) >= 20 && hm_admission_rate(a, 0) < 20 * HM_ADM_MIN_EVIDENCE);
    ck_assert_uint_gt(hm_admission_shed_count(a, HM_ADM_RATE), 10000);
    ck_assert_uint_gt(admitted, 60); /* the floor keeps probes flowing */
    /* hysteresis: 9 ms (under target, above 3/4 of it) keeps the congested state */
    for (int p = 0; p < 20; p++)
        offer(a, &t, 300, 9 * MS);
    ck_assert(hm_admission_congested(a, 0));
    /* healthy again: leaves congestion, the rate grows back while it binds (from the
     * floor: 1/8 per period at first, then as fast as completions over the short window
     * follow, about 6 % per period) */
    for (int p = 0; p < 100; p++)
        offer(a, &t, 300, 1 * MS);
    ck_assert(!hm_admission_congested(a, 0));
    ck_assert(hm_admission_rate(a, 0) > 2900);
    unsigned last = offer(a, &t, 300, 1 * MS);
    ck_assert_uint_ge(last, 295);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(shard_lag_alone_is_congestion)
{
    struct hm_admission *a = mk(4096, 20);
    uint64_t t = 1;
    for (int i = 0; i < 100; i++) {
        t += MS;
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, false), HM_ADM_ADMIT);
        hm_admission_observe_commit(a, 0, 5 * MS, 400 * MS); /* commit fine, shard late */
        hm_admission_end(a, 0, t, MS);
    }
    t += HM_ADM_ADJUST_US;
    (void)hm_admission_admit(a, 0, t, 0, false);
    ck_assert(hm_admission_congested(a, 0));
    ck_assert_uint_ge(hm_admission_lag_ewma_us(a, 0), 350 * MS);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(slow_sample_at_low_traffic_does_not_cut)
{
    struct hm_admission *a = mk(4096, 20);
    uint64_t t = 1;
    for (int p = 0; p < 20; p++) /* 3 sessions per period, each with a 2 s commit */
        offer(a, &t, 3, 2 * S);
    ck_assert(hm_admission_congested(a, 0));
    ck_assert(hm_admission_rate(a, 0) >= HM_ADM_UNLIMITED);
    /* so a burst on the idle shard is admitted */
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, false), HM_ADM_ADMIT);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(accept_wait_is_congestion)
{
    struct hm_admission *a = mk(4096, 20);
    uint64_t t = 1;
    for (int i = 0; i < 100; i++)
        hm_admission_observe_accept(a, 0, 600 * MS); /* connections waited 600 ms */
    for (int p = 0; p < 3; p++)
        offer(a, &t, 300, MS); /* commits themselves are fast */
    ck_assert(hm_admission_congested(a, 0));
    ck_assert(hm_admission_rate(a, 0) < 3000);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(static_cap_holds_rate)
{
    struct hm_admission_cfg c = {.enabled = true, .max_rate = 1000};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    unsigned ok = 0;
    for (int p = 0; p < 50; p++) { /* 3000/s offered for 5 s, healthy commits */
        for (int i = 0; i < 300; i++) {
            t += HM_ADM_ADJUST_US / 300;
            if (hm_admission_admit(a, 0, t, 0, false) == HM_ADM_ADMIT) {
                ok++;
                hm_admission_observe_commit(a, 0, MS, 0);
                hm_admission_end(a, 0, t, MS);
            }
        }
    }
    ck_assert_uint_ge(ok, 4900);
    ck_assert_uint_le(ok, 5100 + 100); /* 1000/s, plus one initial bucket */
    ck_assert(hm_admission_rate(a, 0) == 1000);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(session_signal_optional)
{
    struct hm_admission_cfg c = {.enabled = true, .target_commit_ms = 10,
                                 .target_session_ms = 100};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    for (int i = 0; i < 50; i++) {
        t += MS;
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, false), HM_ADM_ADMIT);
        hm_admission_end(a, 0, t, 500 * MS);
    }
    t += HM_ADM_ADJUST_US;
    (void)hm_admission_admit(a, 0, t, 0, false);
    ck_assert(hm_admission_congested(a, 0));
    hm_admission_destroy(a);
    /* without a session target the same sessions are no congestion */
    a = mk(4096, 20);
    t = 1;
    for (int i = 0; i < 50; i++) {
        t += MS;
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, false), HM_ADM_ADMIT);
        hm_admission_end(a, 0, t, 500 * MS);
    }
    t += HM_ADM_ADJUST_US;
    (void)hm_admission_admit(a, 0, t, 0, false);
    ck_assert(!hm_admission_congested(a, 0));
    hm_admission_destroy(a);
}
END_TEST

/* Drives shard 0 into a limited rate: 3000/s healthy, then slow commits. */
static uint64_t limited(struct hm_admission *a)
{
    uint64_t t = 1;
    for (int p = 0; p < 5; p++)
        offer(a, &t, 300, 2 * MS);
    for (int p = 0; p < 3; p++)
        offer(a, &t, 300, 100 * MS);
    ck_assert(hm_admission_rate(a, 0) < 3000);
    return t;
}

START_TEST(gate_pays_the_token_at_accept)
{
    struct hm_admission *a = mk(1u << 20, 20);
    uint64_t t = limited(a) + HM_ADM_ADJUST_US / 2;
    double rate = hm_admission_rate(a, 0);
    /* a burst of 5000 accepts at one instant: only the bucket's worth gets through */
    unsigned passed = 0;
    for (int i = 0; i < 5000; i++) {
        bool paid = false;
        if (!hm_admission_gate(a, 0, t, &paid)) {
            ck_assert(paid);
            passed++;
        }
    }
    ck_assert_uint_ge(passed, 1);
    ck_assert_uint_le(passed, (unsigned)(rate * HM_ADM_ADJUST_US / 1e6) + 1);
    /* the bucket is empty now, yet every connection let through is admitted at its first
     * request: it paid at accept (before, most of them were shed after reading the Inform) */
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, false), HM_ADM_RATE);
    ck_assert_uint_eq(hm_admission_pending(a, 0), passed);
    for (unsigned i = 0; i < passed; i++) {
        hm_admission_gate_release(a, 0);
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, true), HM_ADM_ADMIT);
    }
    ck_assert_uint_eq(hm_admission_pending(a, 0), 0);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(growth_is_damped_and_follows_completions)
{
    /* Out of congestion with the bucket binding, the rate grows by at most 1/8 per period
     * (it was 1/4, and overshot to twice the capacity before the lagging signals saw it),
     * once the long window no longer holds higher completions (the next test). */
    struct hm_admission *a = mk(1u << 20, 20);
    uint64_t t = limited(a);
    for (int p = 0; p < 20; p++) /* still slow: the rate falls far below the offered 3000/s */
        offer(a, &t, 300, 100 * MS);
    int p = 0;
    while (hm_admission_congested(a, 0) && p++ < 40) /* healthy again */
        offer(a, &t, 300, MS);
    ck_assert(!hm_admission_congested(a, 0));
    double prev = hm_admission_rate(a, 0), start = prev;
    ck_assert(prev < 1500);
    for (int k = 0; k < 10; k++) {
        offer(a, &t, 300, MS);
        double r = hm_admission_rate(a, 0);
        /* at most 1/8 per period; it may pause while the short window's completions
         * catch up with the rate (the ceiling is 5/4 of them), never falls */
        ck_assert_msg(r <= prev * 1.125 + 20.0 / 4 + 1e-9 && r >= prev, "k %d r %.1f prev %.1f",
                      k, r, prev);
        prev = r;
    }
    ck_assert_msg(prev > start * 1.25, "%.1f -> %.1f in 10 periods", start, prev);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(one_cut_per_episode_while_the_queue_drains)
{
    /* After a cut the signal lags while the queue drains: the rate holds as long as the
     * pressure stays under its level at the cut, and is cut again when it is back there
     * (cutting on every congested period compounded 7/8 per period, to 2/3 of capacity). */
    struct hm_admission *a = mk(1u << 20, 20);
    uint64_t t = limited(a);
    ck_assert(hm_admission_congested(a, 0));
    double r1 = hm_admission_rate(a, 0);
    static const uint64_t draining[] = {60, 40, 30, 20, 15}; /* ms: above the 10 ms target */
    for (size_t i = 0; i < sizeof(draining) / sizeof(*draining); i++) {
        offer(a, &t, 300, draining[i] * MS);
        ck_assert(hm_admission_congested(a, 0));
        ck_assert(hm_admission_rate(a, 0) == r1);
    }
    offer(a, &t, 300, 100 * MS); /* worse again */
    offer(a, &t, 300, 100 * MS);
    ck_assert(hm_admission_rate(a, 0) < r1);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(backlog_completions_restore_the_rate)
{
    /* A flash crowd let in before the first cut completes afterwards at the shard's
     * capacity: out of congestion the rate goes straight back to 7/8 of those completions
     * (long window) instead of climbing 1/8 per period from a cut made before any completed. */
    struct hm_admission *a = mk(1u << 20, 20);
    uint64_t t = 1;
    unsigned held = 0;
    for (int p = 0; p < 5; p++)
        for (int i = 0; i < 400; i++) {
            t += HM_ADM_ADJUST_US / 400;
            if (hm_admission_admit(a, 0, t, 0, false) == HM_ADM_ADMIT)
                held++; /* in flight, not ended yet */
        }
    ck_assert_uint_eq(held, 2000);
    for (int p = 0; p < 20; p++) /* congestion: cut and cut again, far below 1000/s */
        offer(a, &t, 300, 100 * MS);
    double low = hm_admission_rate(a, 0);
    ck_assert(low < 300);
    int periods = 0;
    while (held) { /* healthy again, and the backlog completes at 2000/s for a second */
        ck_assert_int_lt(periods++, 30);
        for (int i = 0; i < 200 && held; i++, held--)
            hm_admission_end(a, 0, t, 50 * MS);
        offer(a, &t, 300, MS);
    }
    /* 1/8 per period alone: at most low * 1.125^10 (3.2x, under 700/s) */
    double r = hm_admission_rate(a, 0);
    ck_assert_msg(r > 1000, "rate %.0f after %d periods (from %.0f)", r, periods, low);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(syn_drop_lets_five_fourths_of_the_gate_s_passes_through)
{
    struct hm_admission_cfg c = {.enabled = true, .max_rate = 1000, .min_rate = 20,
                                 .syn_shed = true};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    /* 3000 connections/s arrive; the gate sees the share the filter lets through */
    for (int p = 0; p < 40; p++) {
        unsigned drop = hm_admission_syn_drop(a, 0, t);
        ck_assert_uint_le(drop, HM_ADM_SYN_DROP_MAX);
        for (int i = 0; i < 300; i++) {
            t += HM_ADM_ADJUST_US / 300;
            if ((unsigned)(i * 7919 % 1000) >= drop) /* deterministic "random" share */
                (void)hm_admission_gate(a, 0, t, NULL);
        }
    }
    /* 1 - 1250/3000 */
    unsigned drop = hm_admission_syn_drop(a, 0, t);
    ck_assert_msg(drop >= 540 && drop <= 630, "drop %u", drop);
    /* idle (the shard polls it every tick): gone once the short window is empty */
    ck_assert_uint_gt(hm_admission_syn_drop(a, 0, t += HM_ADM_ADJUST_US), 0);
    for (int p = 0; p < HM_ADM_SHORT_PERIODS; p++)
        (void)hm_admission_syn_drop(a, 0, t += HM_ADM_ADJUST_US);
    ck_assert_uint_eq(hm_admission_syn_drop(a, 0, t), 0);
    hm_admission_destroy(a);
    /* off: never */
    c.syn_shed = false;
    a = hm_admission_create(&c, 1);
    t = 1;
    for (int p = 0; p < 20; p++)
        for (int i = 0; i < 300; i++)
            (void)hm_admission_gate(a, 0, t += HM_ADM_ADJUST_US / 300, NULL);
    ck_assert_uint_eq(hm_admission_syn_drop(a, 0, t), 0);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(syn_drop_follows_the_inflight_cap_too)
{
    /* no rate limit ever set (never congested), but the in-flight cap refuses: the filter
     * follows what the gate lets through, whatever rule binds */
    struct hm_admission_cfg c = {.enabled = true, .max_inflight = 100, .syn_shed = true};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    unsigned inflight = 0;
    for (int p = 0; p < 40; p++) {
        unsigned drop = hm_admission_syn_drop(a, 0, t);
        for (int i = 0; i < 300; i++) {
            t += HM_ADM_ADJUST_US / 300;
            if (inflight && i % 3 == 0) { /* the node completes 1000 sessions/s */
                hm_admission_end(a, 0, t, MS);
                inflight--;
            }
            if ((unsigned)(i * 7919 % 1000) < drop)
                continue;
            bool paid = false;
            if (hm_admission_gate(a, 0, t, &paid))
                continue;
            hm_admission_gate_release(a, 0); /* its first request, as the shard does */
            if (hm_admission_admit(a, 0, t, 0, paid) == HM_ADM_ADMIT)
                inflight++;
        }
    }
    ck_assert(hm_admission_rate(a, 0) >= HM_ADM_UNLIMITED);
    unsigned drop = hm_admission_syn_drop(a, 0, t);
    ck_assert_msg(drop >= 500 && drop <= 650, "drop %u", drop); /* 1 - 1250/3000 */
    hm_admission_destroy(a);
}
END_TEST

/* A paced listener with connections always queued (<waiting>) for <periods> periods from
 * *t, each session ending after 1 ms: accepts only when hm_admission_accept_wait() says 0,
 * sleeps what it says otherwise. Returns the connections accepted; *refused: by the gate. */
static unsigned pace(struct hm_admission *a, uint64_t *t, unsigned periods, bool waiting,
                     unsigned *refused)
{
    uint64_t end = *t + periods * HM_ADM_ADJUST_US;
    unsigned accepted = 0;
    while (*t < end) {
        uint64_t w = hm_admission_accept_wait(a, 0, *t, waiting ? 1000 : 0, 0);
        if (w) {
            ck_assert_uint_le(w, HM_ADM_ADJUST_US + 1);
            *t += w;
            continue;
        }
        bool paid = false;
        if (hm_admission_gate(a, 0, *t, &paid)) {
            (*refused)++;
        } else {
            accepted++;
            hm_admission_gate_release(a, 0);
            ck_assert_int_eq(hm_admission_admit(a, 0, *t, 0, paid), HM_ADM_ADMIT);
            hm_admission_observe_commit(a, 0, MS, 0); /* healthy */
            hm_admission_end(a, 0, *t + MS, MS);
        }
        *t += 50; /* an accept takes 50 us */
    }
    return accepted;
}

START_TEST(accept_wait_paces_at_the_rate_without_refusals)
{
    struct hm_admission_cfg c = {.enabled = true, .max_rate = 1000};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    unsigned refused = 0;
    unsigned n = pace(a, &t, 20, true, &refused); /* 2 s, demand without end */
    /* the rate's 2,000 plus the bucket it starts with (one period, 100) */
    ck_assert_msg(n >= 1900 && n <= 2150, "accepted %u", n);
    ck_assert_uint_eq(refused, 0); /* nothing to refuse: the rest waits in the kernel */
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_ACCEPT), 0);
    /* a wait lasts until HM_ADM_PACE_QUANTUM_US of tokens are in: ~200 waits in 2 s */
    ck_assert_uint_ge(hm_admission_deferred_count(a), 150);
    /* nothing queued: a wait is no deferral */
    uint64_t before = hm_admission_deferred_count(a);
    pace(a, &t, 5, false, &refused);
    ck_assert_uint_eq(hm_admission_deferred_count(a), before);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(accept_wait_holds_while_the_inflight_cap_binds)
{
    struct hm_admission_cfg c = {.enabled = true, .max_inflight = 3};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(hm_admission_accept_wait(a, 0, t, 1, 0), 0);
        ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, false), HM_ADM_ADMIT);
    }
    ck_assert_uint_eq(hm_admission_accept_wait(a, 0, t, 1, 0), HM_ADM_PACE_INFLIGHT_US);
    hm_admission_end(a, 0, t + MS, MS);
    ck_assert_uint_eq(hm_admission_accept_wait(a, 0, t + MS, 1, 0), 0);
    /* admission off: never a wait */
    struct hm_admission_cfg off = {.enabled = false, .max_inflight = 1};
    struct hm_admission *b = hm_admission_create(&off, 1);
    ck_assert_int_eq(hm_admission_admit(b, 0, t, 0, false), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_accept_wait(b, 0, t, 1, 0), 0);
    hm_admission_destroy(b);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(queued_connections_are_growth_evidence)
{
    /* after a cut, a paced shard refuses nothing; connections waiting in its queue are the
     * demand above the rate that lets the rate grow back as completions follow */
    struct hm_admission *a = mk(1u << 20, 20);
    uint64_t t = limited(a);
    double cut = hm_admission_rate(a, 0);
    unsigned refused = 0;
    pace(a, &t, 30, false, &refused); /* nothing queued: no evidence, no growth */
    ck_assert_double_eq_tol(hm_admission_rate(a, 0), cut, 1);
    pace(a, &t, 30, true, &refused);
    ck_assert_msg(hm_admission_rate(a, 0) > cut * 2, "rate %.0f after cut %.0f",
                  hm_admission_rate(a, 0), cut);
    ck_assert_uint_eq(refused, 0);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(pace_backlog_is_a_period_of_what_drains)
{
    struct hm_admission_cfg c = {.enabled = true, .max_rate = 1000};
    struct hm_admission *a = hm_admission_create(&c, 1);
    /* no completions yet: the smallest queue */
    ck_assert_uint_eq(hm_admission_pace_backlog(a, 0, 4096), HM_ADM_BACKLOG_MIN);
    uint64_t t = 1;
    unsigned refused = 0;
    pace(a, &t, 20, true, &refused);
    unsigned q = hm_admission_pace_backlog(a, 0, 4096); /* 1000/s for 100 ms */
    ck_assert_msg(q >= 90 && q <= 110, "backlog %u", q);
    ck_assert_uint_eq(hm_admission_pace_backlog(a, 0, 50), 50);
    hm_admission_destroy(a);
    /* rate unlimited (the in-flight cap binds): what completes bounds it */
    a = mk(1u << 20, 20);
    t = 1;
    for (int p = 0; p < 20; p++)
        offer(a, &t, 300, 2 * MS); /* 3000/s completing */
    ck_assert(hm_admission_rate(a, 0) >= HM_ADM_UNLIMITED);
    q = hm_admission_pace_backlog(a, 0, 4096);
    ck_assert_msg(q >= 270 && q <= 330, "backlog %u", q);
    hm_admission_destroy(a);
}
END_TEST

/* One period of paced accepts at 1000/s, each seeing the queue <fill_pct> % full of 100, then
 * half a period idle; returns the SYN drop share after it. */
static unsigned paced_period(struct hm_admission *a, uint64_t *t, unsigned fill_pct)
{
    for (unsigned i = 0; i < 100; i++) {
        *t += HM_ADM_ADJUST_US / 100;
        if (hm_admission_accept_wait(a, 0, *t, fill_pct, 100) == 0) {
            bool paid = false;
            ck_assert(!hm_admission_gate(a, 0, *t, &paid));
            hm_admission_gate_release(a, 0); /* it closed */
        }
    }
    *t += HM_ADM_ADJUST_US / 2;
    return hm_admission_syn_drop(a, 0, *t);
}

START_TEST(paced_syn_drop_keeps_the_queue_from_overflowing)
{
    struct hm_admission_cfg c = {.enabled = true, .max_rate = 1000, .syn_shed = true};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    /* the queue full at every look: 3/4 of the share kept per period, down to 5 % kept */
    unsigned last = 0;
    for (int p = 0; p < 4; p++) {
        unsigned d = paced_period(a, &t, 100);
        ck_assert_msg(d > last, "period %d: drop %u after %u", p, d, last);
        last = d;
    }
    /* 1 - (3/4)^4 or ^5 (the period the first samples fall in counts too) */
    ck_assert_msg(last >= 650 && last <= 780, "drop %u", last);
    for (int p = 0; p < 20; p++)
        last = paced_period(a, &t, 100);
    ck_assert_uint_eq(last, HM_ADM_SYN_DROP_MAX);
    /* half full: the share holds */
    ck_assert_uint_eq(paced_period(a, &t, 50), HM_ADM_SYN_DROP_MAX);
    /* nearly empty: the filter lets more through each period, until it is gone */
    for (int p = 0; p < 60 && last; p++) {
        unsigned d = paced_period(a, &t, 10);
        ck_assert_msg(d < last, "period %d: drop %u after %u", p, d, last);
        last = d;
    }
    ck_assert_uint_eq(last, 0);
    /* the gate refused nothing while paced */
    ck_assert_uint_eq(hm_admission_shed_count(a, HM_ADM_ACCEPT), 0);
    /* pacing over (no call for two periods): the gate's law again, which saw no refusal */
    ck_assert_uint_gt(paced_period(a, &t, 100), 0);
    t += 3 * HM_ADM_ADJUST_US;
    hm_admission_syn_drop(a, 0, t);
    ck_assert_uint_eq(hm_admission_syn_drop(a, 0, t + HM_ADM_ADJUST_US), 0);
    hm_admission_destroy(a);
    /* syn_shed off: paced or not, no filter */
    c.syn_shed = false;
    a = hm_admission_create(&c, 1);
    t = 1;
    for (int p = 0; p < 5; p++)
        ck_assert_uint_eq(paced_period(a, &t, 100), 0);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(gate_passes_hold_a_place_under_the_inflight_cap)
{
    /* a connection let through counts against the in-flight cap until its first request:
     * the cap binds at accept (cheap, or paced) instead of at the first request, after the
     * whole Inform was read */
    struct hm_admission_cfg c = {.enabled = true, .max_inflight = 3};
    struct hm_admission *a = hm_admission_create(&c, 1);
    uint64_t t = 1;
    for (int i = 0; i < 3; i++) {
        bool paid = false;
        ck_assert(!hm_admission_gate(a, 0, t, &paid));
        ck_assert(paid);
    }
    ck_assert_uint_eq(hm_admission_pending(a, 0), 3);
    bool paid = false;
    ck_assert(hm_admission_gate(a, 0, t, &paid)); /* full: refused at accept */
    ck_assert_uint_eq(hm_admission_accept_wait(a, 0, t, 1, 0), HM_ADM_PACE_INFLIGHT_US);
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, false), HM_ADM_INFLIGHT);
    /* the first one's request: its place becomes a session's */
    hm_admission_gate_release(a, 0);
    ck_assert_int_eq(hm_admission_admit(a, 0, t, 0, true), HM_ADM_ADMIT);
    ck_assert_uint_eq(hm_admission_inflight(a, 0), 1);
    ck_assert_uint_eq(hm_admission_pending(a, 0), 2);
    ck_assert(hm_admission_gate(a, 0, t, &paid)); /* still 3 places taken */
    /* the second one closes without a request: its place is free again */
    hm_admission_gate_release(a, 0);
    paid = false;
    ck_assert(!hm_admission_gate(a, 0, t, &paid));
    ck_assert(paid);
    /* a release with none held is ignored */
    hm_admission_destroy(a);
    a = hm_admission_create(&c, 1);
    hm_admission_gate_release(a, 0);
    ck_assert_uint_eq(hm_admission_pending(a, 0), 0);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(disabled_admits_everything)
{
    struct hm_admission_cfg c = {.enabled = false, .max_inflight = 2};
    struct hm_admission *a = hm_admission_create(&c, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(hm_admission_admit(a, 0, 1, 1u << 30, false), HM_ADM_ADMIT);
    ck_assert(!hm_admission_gate(a, 0, 1, NULL));
    ck_assert_uint_eq(hm_admission_inflight(a, 0), 10);
    hm_admission_destroy(a);
}
END_TEST

START_TEST(retry_after_jittered_in_range)
{
    struct hm_admission *a = mk(16, 20);
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
    struct hm_admission *a = mk(16, 20);
    (void)hm_admission_admit(a, 0, 1, 1000, false);
    hm_admission_count(a, 1, HM_ADM_STORE_ERROR);
    struct hm_buf b = {0};
    hm_admission_render_metrics(&b, a);
    hm_buf_append_lit(&b, "\0");
    ck_assert_ptr_nonnull(strstr(b.base, "hems_admission_shed_total{reason=\"store_queue\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(b.base, "hems_admission_shed_total{reason=\"store_error\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(b.base, "hems_admission_rate_limit{shard=\"1\"} +Inf\n"));
    ck_assert_ptr_nonnull(strstr(b.base, "hems_admission_congested{shard=\"0\"} 0\n"));
    ck_assert_str_eq(hm_admission_reason_name(HM_ADM_RATE), "rate");
    hm_buf_free(&b);
    hm_admission_destroy(a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("admission");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, auto_defaults_resolved);
    tcase_add_test(tc, healthy_admits_everything);
    tcase_add_test(tc, inflight_cap_sheds_and_frees);
    tcase_add_test(tc, store_queue_sheds);
    tcase_add_test(tc, congestion_cuts_rate_to_measured_then_recovers);
    tcase_add_test(tc, session_signal_optional);
    tcase_add_test(tc, static_cap_holds_rate);
    tcase_add_test(tc, accept_wait_is_congestion);
    tcase_add_test(tc, slow_sample_at_low_traffic_does_not_cut);
    tcase_add_test(tc, shard_lag_alone_is_congestion);
    tcase_add_test(tc, gate_pays_the_token_at_accept);
    tcase_add_test(tc, growth_is_damped_and_follows_completions);
    tcase_add_test(tc, one_cut_per_episode_while_the_queue_drains);
    tcase_add_test(tc, backlog_completions_restore_the_rate);
    tcase_add_test(tc, syn_drop_lets_five_fourths_of_the_gate_s_passes_through);
    tcase_add_test(tc, syn_drop_follows_the_inflight_cap_too);
    tcase_add_test(tc, accept_wait_paces_at_the_rate_without_refusals);
    tcase_add_test(tc, accept_wait_holds_while_the_inflight_cap_binds);
    tcase_add_test(tc, queued_connections_are_growth_evidence);
    tcase_add_test(tc, pace_backlog_is_a_period_of_what_drains);
    tcase_add_test(tc, paced_syn_drop_keeps_the_queue_from_overflowing);
    tcase_add_test(tc, gate_passes_hold_a_place_under_the_inflight_cap);
    tcase_add_test(tc, disabled_admits_everything);
    tcase_add_test(tc, retry_after_jittered_in_range);
    tcase_add_test(tc, metrics_render);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
