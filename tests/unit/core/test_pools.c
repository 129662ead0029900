#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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


/* ---- PCI pools -------------------------------------------------------------------------- */

struct alloc {
    char dev[32];
    int64_t val, tac;
};

struct allocs {
    struct alloc *v;
    size_t n, cap;
};

static void collect(void *arg, struct hm_slice dev, int64_t val, int64_t tac)
{
    struct allocs *a = arg;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof(*a->v));
    }
    struct alloc *e = &a->v[a->n++];
    snprintf(e->dev, sizeof(e->dev), "%.*s", (int)dev.len, dev.ptr);
    e->val = val;
    e->tac = tac;
}

/* Every pair of allocations whose TACs are within <d> holds different values. */
static size_t check_distance(struct hm_pool *p, int64_t d, struct allocs *out)
{
    struct allocs a = {0};
    hm_pool_foreach(p, collect, &a);
    for (size_t i = 0; i < a.n; i++)
        for (size_t k = i + 1; k < a.n; k++) {
            int64_t dt = a.v[i].tac - a.v[k].tac;
            if ((dt < 0 ? -dt : dt) <= d && a.v[i].val == a.v[k].val)
                ck_abort_msg("%s (TAC %lld) and %s (TAC %lld) share value %lld", a.v[i].dev,
                             (long long)a.v[i].tac, a.v[k].dev, (long long)a.v[k].tac,
                             (long long)a.v[i].val);
        }
    size_t n = a.n;
    if (out)
        *out = a;
    else
        free(a.v);
    return n;
}

START_TEST(pci_reuse_distance_and_exhaustion)
{
    struct hm_pool *p = hm_pool_create_pci("pci", 0, 3, 1);
    ck_assert_ptr_nonnull(p);
    ck_assert(hm_pool_is_pci(p));
    ck_assert_ptr_null(hm_pool_create_pci("big", 0, HM_PCI_POOL_MAX_SIZE, 0));
    int64_t v, t;
    bool fresh;
    ck_assert_int_eq(hm_pool_get_tac(p, S("a"), 100, &v, &fresh), 0);
    ck_assert(fresh);
    ck_assert_int_eq(hm_pool_get_tac(p, S("b"), 100, &v, &fresh), 0);
    ck_assert_int_eq(hm_pool_get_tac(p, S("c"), 101, &v, &fresh), 0);
    ck_assert_int_eq(hm_pool_get_tac(p, S("e"), 101, &v, &fresh), 0);
    ck_assert_uint_eq(check_distance(p, 1, NULL), 4);
    /* TACs 100 and 101 are neighbours: their 4 devices use the 4 values; both are full */
    ck_assert_int_eq(hm_pool_get_tac(p, S("f"), 101, &v, &fresh), -ENOSPC);
    ck_assert_int_eq(hm_pool_get_tac(p, S("g"), 100, &v, &fresh), -ENOSPC);
    /* TAC 99 neighbours 98..100 only: the values 101 uses are free there */
    ck_assert_int_eq(hm_pool_get_tac(p, S("g"), 99, &v, &fresh), 0);
    /* TAC 103 is 2 away from 101: any value, reused */
    ck_assert_int_eq(hm_pool_get_tac(p, S("h"), 103, &v, &fresh), 0);
    ck_assert_int_eq(hm_pool_get_tac(p, S("i"), 103, &v, &fresh), 0);
    /* TAC 102 neighbours 101 (full) and 103: only what 103 leaves and 101 does not use */
    int64_t vc, ve, vh, vi;
    ck_assert_int_eq(hm_pool_lookup(p, S("c"), &vc), 0);
    ck_assert_int_eq(hm_pool_lookup(p, S("e"), &ve), 0);
    ck_assert_int_eq(hm_pool_lookup(p, S("h"), &vh), 0);
    ck_assert_int_eq(hm_pool_lookup(p, S("i"), &vi), 0);
    bool room = 0;
    for (int64_t x = 0; x <= 3; x++)
        room |= x != vc && x != ve && x != vh && x != vi;
    ck_assert_int_eq(hm_pool_get_tac(p, S("j"), 102, &v, &fresh), room ? 0 : -ENOSPC);
    check_distance(p, 1, NULL);
    struct hm_pool_stats st;
    hm_pool_stats(p, &st);
    ck_assert(st.pci);
    ck_assert_uint_eq(st.distance, 1);
    ck_assert_uint_ge(st.exhausted, 2);
    /* sticky: the same TAC gives the same value, not fresh */
    ck_assert_int_eq(hm_pool_get_tac(p, S("c"), 101, &v, &fresh), 0);
    ck_assert(!fresh);
    ck_assert_int_eq(v, vc);
    /* TAC change: c moves to 200 (empty around): keeps its value, fresh (persist the TAC) */
    ck_assert_int_eq(hm_pool_get_tac(p, S("c"), 200, &v, &fresh), 0);
    ck_assert(fresh);
    ck_assert_int_eq(v, vc);
    ck_assert_int_eq(hm_pool_lookup_tac(p, S("c"), &v, &t), 0);
    ck_assert_int_eq(t, 200);
    /* f (refused in 101 before) fits now that c left */
    ck_assert_int_eq(hm_pool_get_tac(p, S("f"), 101, &v, &fresh), 0);
    ck_assert_int_eq(v, vc);
    /* a device moving onto a value taken nearby gets another one */
    ck_assert_int_eq(hm_pool_get_tac(p, S("k"), 300, &v, &fresh), 0);
    int64_t vk = v;
    ck_assert_int_eq(hm_pool_get_tac(p, S("l"), 301, &v, &fresh), 0);
    ck_assert_int_ne(v, vk);
    ck_assert_int_eq(hm_pool_get_tac(p, S("l"), 300, &v, &fresh), 0); /* already differs */
    ck_assert_int_ne(v, vk);
    check_distance(p, 1, NULL);
    /* raising the distance is refused while two allocations would violate it */
    ck_assert_int_eq(hm_pool_set_distance(p, 3), -EBUSY); /* 100/103 share values */
    ck_assert_int_eq(hm_pool_set_distance(p, 0), 0);
    ck_assert_int_eq(hm_pool_set_distance(p, 1), 0);
    ck_assert_int_eq(hm_pool_set_distance(p, HM_PCI_MAX_DISTANCE + 1), -EINVAL);
    /* TAC -1 (unknown) is its own group */
    ck_assert_int_eq(hm_pool_get(p, S("m"), &v, &fresh), 0);
    ck_assert_int_eq(hm_pool_lookup_tac(p, S("m"), &v, &t), 0);
    ck_assert_int_eq(t, -1);
    /* a TAC out of range counts as "none" (no overflow near INT64_MAX) */
    ck_assert_int_eq(hm_pool_get_tac(p, S("n"), INT64_MAX, &v, &fresh), 0);
    ck_assert_int_eq(hm_pool_lookup_tac(p, S("n"), &v, &t), 0);
    ck_assert_int_eq(t, -1);
    /* plain pools refuse a distance */
    struct hm_pool *q = hm_pool_create("plain", 0, 3);
    ck_assert_int_eq(hm_pool_set_distance(q, 1), -EINVAL);
    hm_pool_destroy(q);
    hm_pool_destroy(p);
}
END_TEST

START_TEST(pci_restore_keeps_everything)
{
    struct hm_pool *p = hm_pool_create_pci("pci", 0, 503, 2);
    char dev[32];
    int64_t v;
    bool fresh;
    for (int i = 0; i < 3000; i++) {
        snprintf(dev, sizeof(dev), "dev-%d", i);
        ck_assert_int_eq(hm_pool_get_tac(p, S(dev), 1000 + i % 37 * 3, &v, &fresh), 0);
    }
    struct allocs a;
    ck_assert_uint_eq(check_distance(p, 2, &a), 3000);
    /* "restart": a new pool fed from the stored pairs gives every device the same value */
    struct hm_pool *q = hm_pool_create_pci("pci", 0, 503, 2);
    for (size_t i = 0; i < a.n; i++)
        ck_assert_int_eq(hm_pool_restore_tac(q, S(a.v[i].dev), a.v[i].tac, a.v[i].val), 0);
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_int_eq(hm_pool_get_tac(q, S(a.v[i].dev), a.v[i].tac, &v, &fresh), 0);
        ck_assert(!fresh);
        ck_assert_int_eq(v, a.v[i].val);
    }
    /* a conflict inside one TAC is refused; the same value in another TAC is accepted */
    ck_assert_int_eq(hm_pool_restore_tac(q, S("x"), a.v[0].tac, a.v[0].val), -EEXIST);
    ck_assert_int_eq(hm_pool_restore_tac(q, S("x"), a.v[0].tac + 1, a.v[0].val), 0);
    ck_assert_int_eq(hm_pool_restore_tac(q, S("y"), 5, 504), -ERANGE);
    /* new devices after the restore still respect the distance */
    for (int i = 3000; i < 3500; i++) {
        snprintf(dev, sizeof(dev), "dev-%d", i);
        hm_pool_get_tac(q, S(dev), 1000 + i % 37 * 3, &v, &fresh);
    }
    struct hm_pool_stats st;
    hm_pool_stats(q, &st);
    ck_assert_uint_eq(st.tacs, 38);
    free(a.v);
    hm_pool_destroy(q);
    hm_pool_destroy(p);
}
END_TEST

struct pthr {
    struct hm_pool *p;
    int id, ok, full;
};

static void *pci_thread(void *arg)
{
    struct pthr *t = arg;
    char dev[32];
    for (int j = 0; j < 1500; j++) {
        int64_t v;
        bool fresh;
        snprintf(dev, sizeof(dev), "t%d-%d", t->id, j);
        int r = hm_pool_get_tac(t->p, hm_slice_cstr(dev), (j * 7 + t->id) % 20, &v, &fresh);
        if (r == 0)
            t->ok++;
        else
            t->full++;
    }
    return NULL;
}

START_TEST(pci_concurrent_respects_distance)
{
    enum { T = 4 };
    /* 6000 devices over 20 TACs, distance 1: 300 per TAC, 504 values: neighbours exhaust */
    struct hm_pool *p = hm_pool_create_pci("pci", 0, 503, 1);
    static struct pthr th[T];
    pthread_t tid[T];
    for (int i = 0; i < T; i++) {
        th[i] = (struct pthr){.p = p, .id = i};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, pci_thread, &th[i]), 0);
    }
    int ok = 0, full = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(tid[i], NULL);
        ok += th[i].ok;
        full += th[i].full;
    }
    ck_assert_int_eq(ok + full, T * 1500);
    ck_assert_int_gt(full, 0);
    ck_assert_uint_eq(check_distance(p, 1, NULL), (size_t)ok);
    struct hm_pool_stats st;
    hm_pool_stats(p, &st);
    ck_assert_uint_eq(st.exhausted, (uint64_t)full);
    ck_assert_uint_eq(st.used, (uint64_t)ok);
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
    tcase_add_test(tc, pci_reuse_distance_and_exhaustion);
    tcase_add_test(tc, pci_restore_keeps_everything);
    tcase_add_test(tc, pci_concurrent_respects_distance);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
