#include "core/timer.h"

#include <errno.h>

#include "core/bug.h"

HM_BUILD_ASSERT((HM_TIMER_SLOTS & (HM_TIMER_SLOTS - 1)) == 0);

static void list_init(struct hm_timer *h)
{
    h->next = h->prev = h;
}

static void link_before(struct hm_timer *pos, struct hm_timer *t)
{
    t->next = pos;
    t->prev = pos->prev;
    pos->prev->next = t;
    pos->prev = t;
}

static void unlink_timer(struct hm_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

void hm_timerwheel_init(struct hm_timerwheel *w, uint64_t now)
{
    w->now = now;
    w->count = 0;
    for (size_t i = 0; i < HM_TIMER_SLOTS; i++)
        list_init(&w->slots[i]);
}

void hm_timer_disarm(struct hm_timerwheel *w, struct hm_timer *t)
{
    if (!t->next)
        return;
    unlink_timer(t);
    w->count--;
}

void hm_timer_arm(struct hm_timerwheel *w, struct hm_timer *t, uint64_t ticks)
{
    hm_timer_disarm(w, t);
    t->expire = w->now + (ticks ? ticks : 1);
    link_before(&w->slots[t->expire & (HM_TIMER_SLOTS - 1)], t);
    w->count++;
}

size_t hm_timerwheel_run(struct hm_timerwheel *w, uint64_t now)
{
    size_t fired = 0;
    if (now <= w->now)
        return 0;
    /* After a long stall, one turn of the wheel visits every slot once. */
    uint64_t from = now - w->now > HM_TIMER_SLOTS ? now - HM_TIMER_SLOTS + 1 : w->now + 1;
    w->now = now;
    for (uint64_t tick = from; tick <= now; tick++) {
        struct hm_timer *head = &w->slots[tick & (HM_TIMER_SLOTS - 1)];
        if (head->next == head)
            continue;
        /* Detach the slot first so callbacks can arm into it safely. */
        struct hm_timer pending;
        list_init(&pending);
        pending.next = head->next;
        pending.prev = head->prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        list_init(head);
        while (pending.next != &pending) {
            struct hm_timer *t = pending.next;
            unlink_timer(t);
            if (t->expire <= now) {
                w->count--;
                fired++;
                t->cb(t);
            } else {
                link_before(head, t);
            }
        }
    }
    return fired;
}

int hm_timerwheel_validate(const struct hm_timerwheel *w)
{
    size_t n = 0;
    for (size_t i = 0; i < HM_TIMER_SLOTS; i++) {
        const struct hm_timer *h = &w->slots[i];
        for (const struct hm_timer *t = h->next; t != h; t = t->next) {
            if (t->next->prev != t || t->prev->next != t)
                return -EINVAL;
            if ((t->expire & (HM_TIMER_SLOTS - 1)) != i)
                return -EINVAL;
            n++;
        }
    }
    return n == w->count ? 0 : -EINVAL;
}
