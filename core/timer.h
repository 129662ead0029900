#ifndef HM_TIMER_H
#define HM_TIMER_H
/*
 * Hashed timer wheel with intrusive, caller-owned entries (h2o/nginx style): arming and
 * disarming are O(1) and allocate nothing. One wheel per shard, single-threaded.
 *
 * Time is in ticks (the shard uses 100 ms ticks). A timer fires during the first
 * hm_timerwheel_run() whose <now> is >= its expiry; timers further out than one turn of the
 * wheel stay in their slot and are skipped until their turn. A zeroed struct hm_timer
 * followed by hm_timer_init() is a valid disarmed timer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HM_TIMER_SLOTS 1024 /* power of two */

struct hm_timer;
typedef void (*hm_timer_cb)(struct hm_timer *t);

struct hm_timer {
    struct hm_timer *next, *prev; /* NULL when disarmed */
    uint64_t expire;
    hm_timer_cb cb;
};

struct hm_timerwheel {
    uint64_t now;   /* last tick run */
    size_t count;   /* armed timers */
    struct hm_timer slots[HM_TIMER_SLOTS]; /* list heads (sentinels) */
};

/* Prepares an empty wheel starting at tick <now>. */
void hm_timerwheel_init(struct hm_timerwheel *w, uint64_t now);

/* Fires every timer due at or before <now>, in no particular order within a tick. A callback
 * may arm or disarm any timer, itself included. Returns the number fired. */
size_t hm_timerwheel_run(struct hm_timerwheel *w, uint64_t now);

/* Checks the wheel's invariants (for tests): 0, or -EINVAL. */
int hm_timerwheel_validate(const struct hm_timerwheel *w);

static inline void hm_timer_init(struct hm_timer *t, hm_timer_cb cb)
{
    t->next = t->prev = NULL;
    t->expire = 0;
    t->cb = cb;
}

static inline bool hm_timer_armed(const struct hm_timer *t)
{
    return t->next != NULL;
}

/* Disarms <t> if armed; no-op otherwise. */
void hm_timer_disarm(struct hm_timerwheel *w, struct hm_timer *t);

/* (Re)arms <t> to fire at tick <w>->now + <ticks> (at least one tick ahead). */
void hm_timer_arm(struct hm_timerwheel *w, struct hm_timer *t, uint64_t ticks);

#endif
