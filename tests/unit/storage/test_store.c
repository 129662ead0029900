#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "store_test.h"

/* A completion posted by the writer, for the tests that submit several batches at once. */
struct waiter {
    sem_t sem;
    int status;
};

static void waiter_done(void *arg, int status)
{
    struct waiter *w = arg;
    w->status = status;
    sem_post(&w->sem);
}

#define S(lit) HM_SLICE_LIT(lit)

static struct hm_store *open_new(char *dir, const char *tag, const struct hm_store_opts *o)
{
    struct hm_store *s = NULL;
    tmpdir_make(dir, tag);
    ck_assert_int_eq(hm_store_open(dir, o, &s), 0);
    return s;
}

static int count_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    (*(unsigned *)arg)++;
    return 0;
}

START_TEST(put_get_del_scan)
{
    char dir[256];
    struct hm_store *s = open_new(dir, "basic", NULL);
    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(s, &r), 0);
    struct hm_store_batch b;
    hm_store_batch_init(&b);

    char k[128];
    for (unsigned i = 0; i < 10; i++) {
        char path[64];
        int pl = snprintf(path, sizeof(path), "Device.X.%u", i);
        int kl = hm_key_param(k, sizeof(k), S("devA"), hm_slice(path, (size_t)pl));
        ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_PARAMS, hm_slice(k, (size_t)kl),
                                            hm_slice(path, (size_t)pl)),
                         0);
        kl = hm_key_param(k, sizeof(k), S("devB"), hm_slice(path, (size_t)pl));
        ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_PARAMS, hm_slice(k, (size_t)kl),
                                            hm_slice(path, (size_t)pl)),
                         0);
    }
    ck_assert_int_eq(put_dev(&b, 1, 1234), 0);
    ck_assert_int_eq(submit_wait(s, &b), 0);

    uint64_t ms = 0;
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    ck_assert_int_eq(get_dev(r, 1, &ms), 0);
    ck_assert_uint_eq(ms, 1234);
    ck_assert_int_eq(get_dev(r, 2, &ms), -ENOENT);
    unsigned n = 0;
    char pfx[16];
    int pl = hm_key_dev_prefix(pfx, sizeof(pfx), S("devA"));
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PARAMS, hm_slice(pfx, (size_t)pl), (struct hm_slice){0},
                                   count_cb, &n),
                     0);
    ck_assert_uint_eq(n, 10);
    /* resume from a key inside the prefix */
    n = 0;
    int kl = hm_key_param(k, sizeof(k), S("devA"), S("Device.X.5"));
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PARAMS, hm_slice(pfx, (size_t)pl),
                                   hm_slice(k, (size_t)kl), count_cb, &n),
                     0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(
        hm_store_scan(r, HM_DB_PARAMS, hm_slice(pfx, (size_t)pl), S("zzz"), count_cb, &n), -EINVAL);
    hm_store_read_end(r);

    /* delete one key and devA's whole prefix in one batch; a missing key is not an error */
    hm_store_batch_reset(&b);
    char dk[64];
    int dkl = dev_key(dk, sizeof(dk), 1);
    ck_assert_int_eq(hm_store_batch_del(&b, HM_DB_DEVICES, hm_slice(dk, (size_t)dkl)), 0);
    ck_assert_int_eq(hm_store_batch_del(&b, HM_DB_DEVICES, S("nope")), 0);
    ck_assert_int_eq(hm_store_batch_del_prefix(&b, HM_DB_PARAMS, hm_slice(pfx, (size_t)pl)), 0);
    ck_assert_int_eq(submit_wait(s, &b), 0);

    ck_assert_int_eq(hm_store_read_begin(r), 0);
    ck_assert_int_eq(get_dev(r, 1, &ms), -ENOENT);
    n = 0;
    ck_assert_int_eq(
        hm_store_scan(r, HM_DB_PARAMS, (struct hm_slice){0}, (struct hm_slice){0}, count_cb, &n),
        0);
    ck_assert_uint_eq(n, 10); /* devB's survive */
    hm_store_read_end(r);

    /* limits */
    static char big[HM_STORE_MAX_VAL + 1];
    ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_PARAMS, S("k"), hm_slice(big, sizeof(big))),
                     -E2BIG);
    ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_PARAMS, (struct hm_slice){0}, S("v")), -E2BIG);

    /* sequences increase and survive a reopen */
    uint64_t a = hm_store_next_seq(s), a2 = hm_store_next_seq(s);
    ck_assert_uint_gt(a2, a);
    hm_store_batch_fini(&b);
    hm_store_reader_close(r);
    hm_store_close(s);
    ck_assert_int_eq(hm_store_open(dir, NULL, &s), 0);
    ck_assert_uint_gt(hm_store_next_seq(s), a2);
    hm_store_close(s);

    /* files are private */
    char f[300];
    snprintf(f, sizeof(f), "%s/data.mdb", dir);
    struct stat st;
    ck_assert_int_eq(stat(f, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    rm_rf(dir);
}
END_TEST

/* ---- puts through a positioned cursor, deletes between them ----------------------- */

static int put_param(struct hm_store_batch *b, const char *dev, unsigned i, const char *val)
{
    char k[128], path[64];
    int pl = snprintf(path, sizeof(path), "Device.P.%04u", i);
    int kl = hm_key_param(k, sizeof(k), hm_slice_cstr(dev), hm_slice(path, (size_t)pl));
    return hm_store_batch_put(b, HM_DB_PARAMS, hm_slice(k, (size_t)kl), hm_slice_cstr(val));
}

/* the value of dev's parameter i into out (NUL-terminated), or -ENOENT */
static int get_param(struct hm_store_reader *r, const char *dev, unsigned i, char *out, size_t cap)
{
    char k[128], path[64];
    int pl = snprintf(path, sizeof(path), "Device.P.%04u", i);
    int kl = hm_key_param(k, sizeof(k), hm_slice_cstr(dev), hm_slice(path, (size_t)pl));
    struct hm_slice v;
    int rc = hm_store_get(r, HM_DB_PARAMS, hm_slice(k, (size_t)kl), &v);
    if (rc == 0)
        snprintf(out, cap, "%.*s", (int)v.len, v.ptr);
    return rc;
}

static int count_prefix(struct hm_store_reader *r, const char *dev)
{
    char pfx[64];
    unsigned n = 0;
    int pl = hm_key_dev_prefix(pfx, sizeof(pfx), hm_slice_cstr(dev));
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PARAMS, hm_slice(pfx, (size_t)pl), (struct hm_slice){0},
                                   count_cb, &n),
                     0);
    return (int)n;
}

START_TEST(batch_puts_and_deletes_interleave)
{
    /* The writer applies a batch's puts through one cursor per database (page splits move
     * it) and closes the cursors at every delete: one batch that splits pages, overwrites,
     * deletes a prefix and a key, and puts again after each must read back exactly. */
    char dir[256], val[128];
    struct hm_store *s = open_new(dir, "cursor", NULL);
    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(s, &r), 0);
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    char big[101];
    memset(big, 'x', 100);
    big[100] = 0;
    ck_assert_int_eq(put_param(&b, "devM", 0, "first"), 0); /* between devA and devZ below */
    for (unsigned i = 400; i-- > 0;) { /* descending, 100-byte values: many page splits */
        ck_assert_int_eq(put_param(&b, "devA", i, big), 0);
        ck_assert_int_eq(put_param(&b, "devZ", i, big), 0);
    }
    ck_assert_int_eq(put_dev(&b, 7, 77), 0); /* another database in between */
    ck_assert_int_eq(put_param(&b, "devA", 5, "overwritten"), 0);
    char pfx[64];
    int pl = hm_key_dev_prefix(pfx, sizeof(pfx), S("devA"));
    ck_assert_int_eq(hm_store_batch_del_prefix(&b, HM_DB_PARAMS, hm_slice(pfx, (size_t)pl)), 0);
    ck_assert_int_eq(put_param(&b, "devA", 9, "after the prefix delete"), 0);
    char k[128];
    int kl = hm_key_param(k, sizeof(k), S("devZ"), S("Device.P.0003"));
    ck_assert_int_eq(hm_store_batch_del(&b, HM_DB_PARAMS, hm_slice(k, (size_t)kl)), 0);
    ck_assert_int_eq(put_param(&b, "devZ", 4, "after the key delete"), 0);
    ck_assert_int_eq(put_param(&b, "devM", 0, "second"), 0);
    ck_assert_int_eq(submit_wait(s, &b), 0);

    ck_assert_int_eq(hm_store_read_begin(r), 0);
    ck_assert_int_eq(count_prefix(r, "devA"), 1);
    ck_assert_int_eq(get_param(r, "devA", 9, val, sizeof(val)), 0);
    ck_assert_str_eq(val, "after the prefix delete");
    ck_assert_int_eq(get_param(r, "devA", 5, val, sizeof(val)), -ENOENT);
    ck_assert_int_eq(count_prefix(r, "devZ"), 399);
    ck_assert_int_eq(get_param(r, "devZ", 3, val, sizeof(val)), -ENOENT);
    ck_assert_int_eq(get_param(r, "devZ", 4, val, sizeof(val)), 0);
    ck_assert_str_eq(val, "after the key delete");
    for (unsigned i = 0; i < 400; i++)
        if (i != 3 && i != 4) {
            ck_assert_int_eq(get_param(r, "devZ", i, val, sizeof(val)), 0);
            ck_assert_str_eq(val, big);
        }
    ck_assert_int_eq(get_param(r, "devM", 0, val, sizeof(val)), 0);
    ck_assert_str_eq(val, "second");
    uint64_t ms = 0;
    ck_assert_int_eq(get_dev(r, 7, &ms), 0);
    ck_assert_uint_eq(ms, 77);
    hm_store_read_end(r);
    hm_store_batch_fini(&b);
    hm_store_reader_close(r);
    hm_store_close(s);
    rm_rf(dir);
}
END_TEST

/* ---- group commit -------------------------------------------------------------------- */

#define GC_THREADS 4
#define GC_PER_THREAD 400
#define GC_INFLIGHT 16

struct gc_slot {
    struct hm_store_batch b;
    unsigned id;
    struct gc_prod *p;
};

struct gc_prod {
    struct hm_store *s;
    unsigned tid;
    sem_t free_slots;
    _Atomic unsigned *fired;
    _Atomic int *bad_status;
    struct gc_slot slots[GC_INFLIGHT];
    _Atomic int slot_free[GC_INFLIGHT];
};

static void gc_done(void *arg, int status)
{
    struct gc_slot *sl = arg;
    /* Read everything first: once the slot is marked free the producer may reuse it. */
    struct gc_prod *p = sl->p;
    atomic_fetch_add(&p->fired[sl->id], 1);
    if (status != 0)
        atomic_fetch_add(p->bad_status, 1);
    atomic_store(&p->slot_free[sl - p->slots], 1);
    sem_post(&p->free_slots);
}

static void *gc_producer(void *arg)
{
    struct gc_prod *p = arg;
    for (unsigned i = 0; i < GC_PER_THREAD; i++) {
        while (sem_wait(&p->free_slots) == -1)
            ;
        unsigned j = 0;
        while (!atomic_load(&p->slot_free[j]))
            j++;
        atomic_store(&p->slot_free[j], 0);
        struct gc_slot *sl = &p->slots[j];
        sl->id = p->tid * GC_PER_THREAD + i;
        sl->p = p;
        hm_store_batch_reset(&sl->b);
        ck_assert_int_eq(put_dev(&sl->b, sl->id, 1000 + sl->id), 0);
        int rc;
        while ((rc = hm_store_submit(p->s, &sl->b, gc_done, sl)) == -EAGAIN)
            sched_yield();
        ck_assert_int_eq(rc, 0);
    }
    for (unsigned i = 0; i < GC_INFLIGHT; i++)
        while (sem_wait(&p->free_slots) == -1)
            ;
    return NULL;
}

START_TEST(group_commit_many_producers)
{
    char dir[256];
    struct hm_store *s = open_new(dir, "gc", NULL);
    static _Atomic unsigned fired[GC_THREADS * GC_PER_THREAD];
    static _Atomic int bad;
    static struct gc_prod prods[GC_THREADS];
    pthread_t th[GC_THREADS];
    for (unsigned t = 0; t < GC_THREADS; t++) {
        prods[t].s = s;
        prods[t].tid = t;
        prods[t].fired = fired;
        prods[t].bad_status = &bad;
        sem_init(&prods[t].free_slots, 0, GC_INFLIGHT);
        for (unsigned j = 0; j < GC_INFLIGHT; j++) {
            hm_store_batch_init(&prods[t].slots[j].b);
            atomic_store(&prods[t].slot_free[j], 1);
        }
        ck_assert_int_eq(pthread_create(&th[t], NULL, gc_producer, &prods[t]), 0);
    }
    for (unsigned t = 0; t < GC_THREADS; t++)
        pthread_join(th[t], NULL);

    ck_assert_int_eq(atomic_load(&bad), 0);
    for (unsigned i = 0; i < GC_THREADS * GC_PER_THREAD; i++)
        ck_assert_uint_eq(atomic_load(&fired[i]), 1);

    struct hm_store_stats st;
    ck_assert_int_eq(hm_store_stats(s, &st), 0);
    ck_assert_uint_eq(st.batches, GC_THREADS * GC_PER_THREAD);
    ck_assert_uint_eq(st.db[HM_DB_DEVICES].entries, GC_THREADS * GC_PER_THREAD);
    /* fewer transactions than batches: group commit happened (one at open is not counted) */
    ck_assert_uint_lt(st.commits, GC_THREADS * GC_PER_THREAD / 2);
    uint64_t hist = 0;
    for (unsigned i = 0; i < HM_STORE_HIST_BUCKETS; i++)
        hist += st.batches_per_commit[i];
    ck_assert_uint_eq(hist, st.commits);

    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(s, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    for (unsigned i = 0; i < GC_THREADS * GC_PER_THREAD; i++) {
        uint64_t ms;
        ck_assert_int_eq(get_dev(r, i, &ms), 0);
        ck_assert_uint_eq(ms, 1000 + i);
    }
    hm_store_read_end(r);
    hm_store_reader_close(r);
    for (unsigned t = 0; t < GC_THREADS; t++)
        for (unsigned j = 0; j < GC_INFLIGHT; j++)
            hm_store_batch_fini(&prods[t].slots[j].b);
    hm_store_close(s);
    rm_rf(dir);
}
END_TEST

/* Batches pending at close are committed and acknowledged before close returns. */
static _Atomic unsigned close_fired;
static void close_done(void *arg, int status)
{
    ck_assert_int_eq(status, 0);
    atomic_fetch_add(&close_fired, 1);
}

START_TEST(close_drains_pending)
{
    char dir[256];
    struct hm_store *s = open_new(dir, "close", NULL);
    static struct hm_store_batch bs[200];
    for (unsigned i = 0; i < 200; i++) {
        hm_store_batch_init(&bs[i]);
        ck_assert_int_eq(put_dev(&bs[i], i, i), 0);
        ck_assert_int_eq(hm_store_submit(s, &bs[i], close_done, NULL), 0);
    }
    hm_store_close(s);
    ck_assert_uint_eq(atomic_load(&close_fired), 200);
    ck_assert_int_eq(hm_store_open(dir, NULL, &s), 0);
    struct hm_store_stats st;
    ck_assert_int_eq(hm_store_stats(s, &st), 0);
    ck_assert_uint_eq(st.db[HM_DB_DEVICES].entries, 200);
    hm_store_close(s);
    for (unsigned i = 0; i < 200; i++)
        hm_store_batch_fini(&bs[i]);
    rm_rf(dir);
}
END_TEST

START_TEST(ring_full_sheds)
{
    char dir[256];
    struct hm_store_opts o = {.ring_size = 4};
    struct hm_store *s = open_new(dir, "full", &o);
    static struct hm_store_batch bs[64];
    int eagain = 0, ok = 0;
    /* The writer is fast; with a 4-slot ring and a burst some submits must shed. */
    for (unsigned i = 0; i < 64; i++) {
        hm_store_batch_init(&bs[i]);
        ck_assert_int_eq(put_dev(&bs[i], i, i), 0);
        int rc = hm_store_submit(s, &bs[i], close_done, NULL);
        ck_assert(rc == 0 || rc == -EAGAIN);
        rc ? eagain++ : ok++;
    }
    hm_store_close(s);
    ck_assert_int_gt(eagain, 0);
    ck_assert_uint_eq(atomic_load(&close_fired), (unsigned)ok);
    for (unsigned i = 0; i < 64; i++)
        hm_store_batch_fini(&bs[i]);
    rm_rf(dir);
}
END_TEST

/* ---- map growth ---------------------------------------------------------------------- */

struct spin_reader {
    struct hm_store *s;
    _Atomic int stop;
    unsigned reads, eagain;
};

static void *spin_reader_main(void *arg)
{
    struct spin_reader *sr = arg;
    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(sr->s, &r), 0);
    while (!atomic_load(&sr->stop)) {
        int rc = hm_store_read_begin(r);
        if (rc == -EAGAIN) {
            sr->eagain++;
            continue;
        }
        ck_assert_int_eq(rc, 0);
        unsigned n = 0;
        ck_assert_int_eq(hm_store_scan(r, HM_DB_PARAMS, (struct hm_slice){0}, (struct hm_slice){0},
                                       count_cb, &n),
                         0);
        hm_store_read_end(r);
        sr->reads++;
    }
    hm_store_reader_close(r);
    return NULL;
}

START_TEST(map_full_grows)
{
    char dir[256];
    struct hm_store_opts o = {.map_size = 256 << 10, .map_max = 64 << 20};
    struct hm_store *s = open_new(dir, "grow", &o);
    struct spin_reader sr = {.s = s};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, spin_reader_main, &sr), 0);

    struct hm_store_batch b;
    hm_store_batch_init(&b);
    static char val[3000];
    memset(val, 'v', sizeof(val));
    /* ~6 MiB of values into a 256 KiB map */
    for (unsigned i = 0; i < 2000; i++) {
        char k[32];
        memcpy(k, "dev", 4);
        int kl = 4 + snprintf(k + 4, sizeof(k) - 4, "p%06u", i);
        ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_PARAMS, hm_slice(k, (size_t)kl),
                                            hm_slice(val, sizeof(val))),
                         0);
        if (i % 50 == 49) {
            ck_assert_int_eq(submit_wait(s, &b), 0);
            hm_store_batch_reset(&b);
        }
    }
    atomic_store(&sr.stop, 1);
    pthread_join(th, NULL);
    struct hm_store_stats st;
    ck_assert_int_eq(hm_store_stats(s, &st), 0);
    ck_assert_uint_gt(st.map_grows, 0);
    ck_assert_uint_gt(st.map_size, 256 << 10);
    ck_assert_uint_eq(st.db[HM_DB_PARAMS].entries, 2000);
    ck_assert_uint_gt(sr.reads, 0);

    /* At map_max, a batch fails cleanly with -ENOSPC and nothing of it is stored. */
    hm_store_batch_reset(&b);
    hm_store_close(s);
    struct hm_store_opts o2 = {.map_size = 256 << 10, .map_max = 256 << 10};
    char dir2[256];
    s = open_new(dir2, "max", &o2);
    int rc = 0;
    unsigned i;
    for (i = 0; i < 1000 && rc == 0; i++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "k%06u", i);
        hm_store_batch_reset(&b);
        ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_PARAMS, hm_slice(k, (size_t)kl),
                                            hm_slice(val, sizeof(val))),
                         0);
        rc = submit_wait(s, &b);
    }
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_int_eq(hm_store_stats(s, &st), 0);
    ck_assert_uint_eq(st.db[HM_DB_PARAMS].entries, i - 1);
    ck_assert_uint_eq(st.batches_failed, 1);

    /*
     * A batch that cannot fit fails alone: submitted back to back with small ones (which
     * shrink existing values, so they fit), whether or not they share a transaction, the
     * small ones commit and only the big one gets -ENOSPC.
     */
    enum { NSMALL = 6 };
    static struct hm_store_batch small[NSMALL], bigb;
    static struct waiter ws[NSMALL], wbig;
    hm_store_batch_init(&bigb);
    for (unsigned j = 0; j < 400; j++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "big%06u", j);
        ck_assert_int_eq(hm_store_batch_put(&bigb, HM_DB_PARAMS, hm_slice(k, (size_t)kl),
                                            hm_slice(val, sizeof(val))),
                         0);
    }
    sem_init(&wbig.sem, 0, 0);
    for (unsigned j = 0; j < NSMALL; j++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "k%06u", j);
        hm_store_batch_init(&small[j]);
        ck_assert_int_eq(
            hm_store_batch_put(&small[j], HM_DB_PARAMS, hm_slice(k, (size_t)kl), S("tiny")), 0);
        sem_init(&ws[j].sem, 0, 0);
        ck_assert_int_eq(hm_store_submit(s, &small[j], waiter_done, &ws[j]), 0);
        if (j == NSMALL / 2)
            ck_assert_int_eq(hm_store_submit(s, &bigb, waiter_done, &wbig), 0);
    }
    while (sem_wait(&wbig.sem) == -1)
        ;
    ck_assert_int_eq(wbig.status, -ENOSPC);
    for (unsigned j = 0; j < NSMALL; j++) {
        while (sem_wait(&ws[j].sem) == -1)
            ;
        ck_assert_int_eq(ws[j].status, 0);
        hm_store_batch_fini(&small[j]);
    }
    hm_store_batch_fini(&bigb);
    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(s, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    struct hm_slice v;
    ck_assert_int_eq(hm_store_get(r, HM_DB_PARAMS, S("k000000"), &v), 0);
    ck_assert(hm_slice_eq(v, S("tiny")));
    ck_assert_int_eq(hm_store_get(r, HM_DB_PARAMS, S("big000000"), &v), -ENOENT);
    hm_store_read_end(r);
    hm_store_reader_close(r);

    hm_store_batch_fini(&b);
    hm_store_close(s);
    rm_rf(dir);
    rm_rf(dir2);
}
END_TEST

/* ---- backup -------------------------------------------------------------------------- */

START_TEST(backup_is_openable_copy)
{
    char dir[256], bdir[300];
    struct hm_store *s = open_new(dir, "bk", NULL);
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    for (unsigned i = 0; i < 300; i++)
        ck_assert_int_eq(put_dev(&b, i, 5000 + i), 0);
    ck_assert_int_eq(submit_wait(s, &b), 0);
    snprintf(bdir, sizeof(bdir), "%s-backup", dir);
    ck_assert_int_eq(hm_store_backup(s, bdir), 0);
    /* a second backup into the same place is refused, not silently merged */
    ck_assert_int_ne(hm_store_backup(s, bdir), 0);
    hm_store_close(s);

    ck_assert_int_eq(hm_store_open(bdir, NULL, &s), 0);
    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(s, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    for (unsigned i = 0; i < 300; i++) {
        uint64_t ms;
        ck_assert_int_eq(get_dev(r, i, &ms), 0);
        ck_assert_uint_eq(ms, 5000 + i);
    }
    unsigned n = 0;
    ck_assert_int_eq(
        hm_store_scan(r, HM_DB_DEVICES, (struct hm_slice){0}, (struct hm_slice){0}, count_cb, &n),
        0);
    ck_assert_uint_eq(n, 300);
    hm_store_read_end(r);
    hm_store_reader_close(r);
    hm_store_batch_fini(&b);
    hm_store_close(s);
    rm_rf(dir);
    rm_rf(bdir);
}
END_TEST

/* ---- refusal of foreign and corrupt files -------------------------------------------- */

START_TEST(refuses_garbage_file)
{
    char dir[256], f[300];
    tmpdir_make(dir, "garbage");
    snprintf(f, sizeof(f), "%s/data.mdb", dir);
    FILE *fp = fopen(f, "w");
    ck_assert_ptr_nonnull(fp);
    for (int i = 0; i < 16384; i++)
        fputc((i * 7919) & 0xff, fp);
    fclose(fp);
    struct hm_store *s = NULL;
    ck_assert_int_eq(hm_store_open(dir, NULL, &s), HM_ECORRUPT);
    ck_assert_ptr_null(s);
    rm_rf(dir);
}
END_TEST

/* Writes <key> = <val> into the main or a named db of a raw LMDB environment. */
static void raw_put(const char *dir, const char *db, const char *key, const void *val, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    MDB_val k = {strlen(key), (void *)key}, v = {vlen, (void *)val};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

START_TEST(refuses_foreign_env)
{
    char dir[256];
    struct hm_store *s = NULL;
    tmpdir_make(dir, "foreign");
    raw_put(dir, NULL, "someone", "else", 4);
    ck_assert_int_eq(hm_store_open(dir, NULL, &s), HM_ECORRUPT);
    rm_rf(dir);

    /* a 'meta' database without our magic */
    tmpdir_make(dir, "foreign2");
    raw_put(dir, "meta", "magic", "OTHER-APP", 9);
    ck_assert_int_eq(hm_store_open(dir, NULL, &s), HM_ECORRUPT);
    rm_rf(dir);

    /* ours, but a future schema */
    s = open_new(dir, "schema", NULL);
    hm_store_close(s);
    s = NULL;
    const char ver[4] = {9, 0, 0, 0};
    raw_put(dir, "meta", "schema", ver, 4);
    ck_assert_int_eq(hm_store_open(dir, NULL, &s), HM_EVERSION);
    ck_assert_ptr_null(s);
    rm_rf(dir);
}
END_TEST

/* ---- readers and writers at once (the TSan target) ----------------------------------- */

#define CC_PRODUCERS 3
#define CC_BATCHES 150
#define CC_READERS 2

struct cc_ctx {
    struct hm_store *s;
    unsigned tid;
    _Atomic int *stop;
};

static void *cc_producer(void *arg)
{
    struct cc_ctx *c = arg;
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    for (unsigned i = 0; i < CC_BATCHES; i++) {
        hm_store_batch_reset(&b);
        for (unsigned j = 0; j < 4; j++)
            ck_assert_int_eq(put_dev(&b, c->tid * 10000 + i * 4 + j, i), 0);
        ck_assert_int_eq(submit_wait(c->s, &b), 0);
    }
    hm_store_batch_fini(&b);
    return NULL;
}

static int cc_check_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    struct hm_dev_rec d;
    ck_assert_int_eq(hm_rec_dev_decode(v, &d), 0);
    ck_assert(k.len > d.serial.len &&
              memcmp(k.ptr + k.len - d.serial.len, d.serial.ptr, d.serial.len) == 0);
    (*(unsigned *)arg)++;
    return 0;
}

static void *cc_reader(void *arg)
{
    struct cc_ctx *c = arg;
    struct hm_store_reader *r;
    unsigned last = 0;
    ck_assert_int_eq(hm_store_reader_open(c->s, &r), 0);
    while (!atomic_load(c->stop)) {
        ck_assert_int_eq(hm_store_read_begin(r), 0);
        unsigned n = 0;
        ck_assert_int_eq(hm_store_scan(r, HM_DB_DEVICES, (struct hm_slice){0}, (struct hm_slice){0},
                                       cc_check_cb, &n),
                         0);
        hm_store_read_end(r);
        ck_assert_uint_ge(n, last); /* snapshots only move forward */
        last = n;
    }
    hm_store_reader_close(r);
    return NULL;
}

START_TEST(concurrent_readers_and_producers)
{
    char dir[256];
    struct hm_store_opts o = {.no_sync = 1};
    struct hm_store *s = open_new(dir, "cc", &o);
    _Atomic int stop = 0;
    struct cc_ctx pc[CC_PRODUCERS], rc[CC_READERS];
    pthread_t pt[CC_PRODUCERS], rt[CC_READERS];
    for (unsigned i = 0; i < CC_READERS; i++) {
        rc[i] = (struct cc_ctx){s, i, &stop};
        ck_assert_int_eq(pthread_create(&rt[i], NULL, cc_reader, &rc[i]), 0);
    }
    for (unsigned i = 0; i < CC_PRODUCERS; i++) {
        pc[i] = (struct cc_ctx){s, i, &stop};
        ck_assert_int_eq(pthread_create(&pt[i], NULL, cc_producer, &pc[i]), 0);
    }
    for (unsigned i = 0; i < CC_PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    atomic_store(&stop, 1);
    for (unsigned i = 0; i < CC_READERS; i++)
        pthread_join(rt[i], NULL);
    struct hm_store_stats st;
    ck_assert_int_eq(hm_store_stats(s, &st), 0);
    ck_assert_uint_eq(st.db[HM_DB_DEVICES].entries, CC_PRODUCERS * CC_BATCHES * 4);
    hm_store_close(s);
    rm_rf(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_test(tc, put_get_del_scan);
    tcase_add_test(tc, batch_puts_and_deletes_interleave);
    tcase_add_test(tc, group_commit_many_producers);
    tcase_add_test(tc, close_drains_pending);
    tcase_add_test(tc, ring_full_sheds);
    tcase_add_test(tc, map_full_grows);
    tcase_add_test(tc, backup_is_openable_copy);
    tcase_add_test(tc, refuses_garbage_file);
    tcase_add_test(tc, refuses_foreign_env);
    tcase_add_test(tc, concurrent_readers_and_producers);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
