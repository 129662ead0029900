#ifndef HM_MPSC_H
#define HM_MPSC_H
/*
 * Intrusive, unbounded, lock-free multi-producer single-consumer message stack: producers
 * push with one CAS, the consumer takes everything with one exchange and reverses it into
 * arrival order. Used for messages into a shard (store completions, shutdown, reload).
 *
 * Hand-written rather than Concurrency Kit's ck_stack because ck implements its atomics in
 * inline assembly that ThreadSanitizer cannot see; these 30 lines of C11 atomics are checked
 * by TSan in tests/unit/core/test_mpsc.c.
 *
 * A node belongs to the stack from push until the consumer's pop_all returns it.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct hm_mpsc_node {
    struct hm_mpsc_node *next;
};

struct hm_mpsc {
    _Atomic(struct hm_mpsc_node *) head;
};

/* Pushes <n>; returns true when the stack was empty before (the consumer needs a wake-up). */
static inline bool hm_mpsc_push(struct hm_mpsc *s, struct hm_mpsc_node *n)
{
    struct hm_mpsc_node *old = atomic_load_explicit(&s->head, memory_order_relaxed);
    do {
        n->next = old;
    } while (!atomic_compare_exchange_weak_explicit(&s->head, &old, n, memory_order_release,
                                                    memory_order_relaxed));
    return old == NULL;
}

/* Takes every node, oldest first (NULL when empty). Consumer only. */
static inline struct hm_mpsc_node *hm_mpsc_pop_all(struct hm_mpsc *s)
{
    struct hm_mpsc_node *n = atomic_exchange_explicit(&s->head, NULL, memory_order_acquire);
    struct hm_mpsc_node *rev = NULL;
    while (n) {
        struct hm_mpsc_node *next = n->next;
        n->next = rev;
        rev = n;
        n = next;
    }
    return rev;
}

#endif
