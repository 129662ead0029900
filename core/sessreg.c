#include "core/sessreg.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"

#define KEYS_PER_BUCKET 7

struct bucket {
    atomic_flag lock;
    uint64_t key[KEYS_PER_BUCKET];
} __attribute__((aligned(64)));

HM_BUILD_ASSERT(sizeof(struct bucket) == 64);

struct hm_sessreg {
    struct bucket *b;
    uint64_t mask;
    _Atomic uint64_t count;
};

struct hm_sessreg *hm_sessreg_create(uint64_t capacity)
{
    struct hm_sessreg *r = hm_xcalloc(1, sizeof(*r));
    uint64_t n = 64;
    while (n * KEYS_PER_BUCKET < capacity * 4)
        n *= 2;
    r->b = aligned_alloc(64, n * sizeof(struct bucket));
    if (!r->b)
        abort();
    memset(r->b, 0, n * sizeof(struct bucket));
    for (uint64_t i = 0; i < n; i++)
        atomic_flag_clear(&r->b[i].lock);
    r->mask = n - 1;
    return r;
}

void hm_sessreg_destroy(struct hm_sessreg *r)
{
    if (!r)
        return;
    free(r->b);
    free(r);
}

static void lock(struct bucket *b)
{
    while (atomic_flag_test_and_set_explicit(&b->lock, memory_order_acquire))
        __builtin_ia32_pause();
}

static void unlock(struct bucket *b)
{
    atomic_flag_clear_explicit(&b->lock, memory_order_release);
}

int hm_sessreg_acquire(struct hm_sessreg *r, uint64_t key)
{
    struct bucket *b = &r->b[(key ^ (key >> 29)) & r->mask];
    int rc = -ENOSPC, free_i = -1;
    lock(b);
    for (int i = 0; i < KEYS_PER_BUCKET; i++) {
        if (b->key[i] == key) {
            rc = -EBUSY;
            goto out;
        }
        if (!b->key[i] && free_i < 0)
            free_i = i;
    }
    if (free_i >= 0) {
        b->key[free_i] = key;
        atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
        rc = 0;
    }
out:
    unlock(b);
    return rc;
}

void hm_sessreg_release(struct hm_sessreg *r, uint64_t key)
{
    struct bucket *b = &r->b[(key ^ (key >> 29)) & r->mask];
    lock(b);
    for (int i = 0; i < KEYS_PER_BUCKET; i++) {
        if (b->key[i] == key) {
            b->key[i] = 0;
            atomic_fetch_sub_explicit(&r->count, 1, memory_order_relaxed);
            break;
        }
    }
    unlock(b);
}

uint64_t hm_sessreg_count(struct hm_sessreg *r)
{
    return atomic_load_explicit(&r->count, memory_order_relaxed);
}

uint64_t hm_sessreg_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}
