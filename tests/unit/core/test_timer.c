#include "hm_check.h"
/* The poisoned-names pragma in core/bug.h must follow every system header. */
#include "core/timer.c"

#define N 512

static struct hm_timerwheel wheel;
static struct hm_timer timers[N];
static uint64_t model[N]; /* expected expiry tick, 0 = disarmed */
static unsigned fired_count[N];
static uint64_t fired_at[N];

static void on_fire(struct hm_timer *t)
{
    size_t i = (size_t)(t - timers);
    fired_count[i]++;
    fired_at[i] = wheel.now;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Property: against a trivial model, every armed timer fires exactly once, at the first run
 * whose tick reaches its expiry, whatever the mix of arm/re-arm/disarm and tick jumps
 * (including jumps longer than one turn of the wheel). */
START_TEST(timer_wheel_matches_model)
{
    hm_timerwheel_init(&wheel, 1000);
    for (size_t i = 0; i < N; i++)
        hm_timer_init(&timers[i], on_fire);
    uint64_t now = 1000;
    for (int step = 0; step < 20000; step++) {
        size_t i = rnd() % N;
        switch (rnd() % 4) {
        case 0:
        case 1: {
            uint64_t d = rnd() % 8 == 0 ? rnd() % 5000 : rnd() % 50;
            hm_timer_arm(&wheel, &timers[i], d);
            model[i] = wheel.now + (d ? d : 1);
            break;
        }
        case 2:
            hm_timer_disarm(&wheel, &timers[i]);
            model[i] = 0;
            break;
        case 3: {
            uint64_t jump = rnd() % 16 == 0 ? rnd() % 3000 : rnd() % 4;
            now += jump;
            memset(fired_count, 0, sizeof(fired_count));
            hm_timerwheel_run(&wheel, now);
            /* Plain checks in the loop: each ck_assert costs Check a write(2). */
            for (size_t k = 0; k < N; k++) {
                if (model[k] && model[k] <= now) {
                    if (fired_count[k] != 1 || hm_timer_armed(&timers[k]))
                        ck_abort_msg("timer %zu due at %lu: fired %u times at run %lu", k,
                                     (unsigned long)model[k], fired_count[k],
                                     (unsigned long)now);
                    model[k] = 0;
                } else if (fired_count[k] != 0 || hm_timer_armed(&timers[k]) != (model[k] != 0)) {
                    ck_abort_msg("timer %zu (due %lu) fired early or lost at run %lu", k,
                                 (unsigned long)model[k], (unsigned long)now);
                }
            }
            break;
        }
        }
        if (step % 500 == 0)
            ck_assert_int_eq(hm_timerwheel_validate(&wheel), 0);
    }
    ck_assert_int_eq(hm_timerwheel_validate(&wheel), 0);
}
END_TEST

static struct hm_timer chain_a, chain_b;
static int chain_hits;
static void chain_cb(struct hm_timer *t)
{
    chain_hits++;
    /* A callback re-arming itself and disarming a timer due in the same tick. */
    if (t == &chain_a) {
        hm_timer_disarm(&wheel, &chain_b);
        hm_timer_arm(&wheel, &chain_a, 5);
    }
}

START_TEST(timer_callbacks_may_rearm_and_disarm)
{
    hm_timerwheel_init(&wheel, 0);
    hm_timer_init(&chain_a, chain_cb);
    hm_timer_init(&chain_b, chain_cb);
    hm_timer_arm(&wheel, &chain_a, 3);
    hm_timer_arm(&wheel, &chain_b, 3);
    chain_hits = 0;
    size_t fired = hm_timerwheel_run(&wheel, 3);
    /* Either a fires first and cancels b (1 hit), or b fires first then a (2 hits). */
    ck_assert(chain_hits == 1 || chain_hits == 2);
    ck_assert_uint_eq(fired, (size_t)chain_hits);
    ck_assert(hm_timer_armed(&chain_a));
    ck_assert_uint_eq(chain_a.expire, 8);
    ck_assert_int_eq(hm_timerwheel_validate(&wheel), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("wheel");
    tcase_add_test(tc, timer_wheel_matches_model);
    tcase_add_test(tc, timer_callbacks_may_rearm_and_disarm);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
