/* Cross-thread test of the MPSC message stack; meaningful under -DHM_TSAN=ON too. */
#include <pthread.h>
#include <stdint.h>

#include "core/mpsc.h"
#include "hm_check.h"

#define PRODUCERS 4
#define PER 20000

struct msg {
    struct hm_mpsc_node node;
    uint32_t producer, seq;
};

static struct hm_mpsc stack;
static struct msg msgs[PRODUCERS][PER];
static _Atomic int wakeups;

static void *producer(void *arg)
{
    uint32_t p = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 0; i < PER; i++) {
        msgs[p][i] = (struct msg){.producer = p, .seq = i};
        if (hm_mpsc_push(&stack, &msgs[p][i].node))
            atomic_fetch_add(&wakeups, 1);
    }
    return NULL;
}

START_TEST(mpsc_delivers_everything_once_in_per_producer_order)
{
    pthread_t t[PRODUCERS];
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        pthread_create(&t[p], NULL, producer, (void *)p);
    uint32_t next[PRODUCERS] = {0};
    size_t got = 0;
    while (got < PRODUCERS * PER) {
        for (struct hm_mpsc_node *n = hm_mpsc_pop_all(&stack); n;) {
            struct hm_mpsc_node *nx = n->next;
            struct msg *m = (struct msg *)n;
            ck_assert_uint_eq(m->seq, next[m->producer]);
            next[m->producer]++;
            got++;
            n = nx;
        }
    }
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(t[p], NULL);
    ck_assert_ptr_null(hm_mpsc_pop_all(&stack));
    ck_assert_int_ge(atomic_load(&wakeups), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mpsc");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mpsc_delivers_everything_once_in_per_producer_order);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
