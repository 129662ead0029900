#include "storage/store.h"
#include "storage/store_health.h"

#include <ck_ring.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#if defined(HM_TSAN)
/*
 * ck_ring synchronises with inline assembly that ThreadSanitizer cannot see, so the batch
 * hand-off is annotated explicitly: the producer releases the batch before enqueueing its
 * pointer, the writer acquires it after dequeueing. Reports inside ck_ring itself are
 * suppressed by the test binaries (tests/unit/storage/store_test.h).
 */
#include <sanitizer/tsan_interface.h>
#define TSAN_RELEASE(p) __tsan_release(p)
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define TSAN_RELEASE(p) ((void)(p))
#define TSAN_ACQUIRE(p) ((void)(p))
#endif

#define MAGIC "HEMS-STORE"
#define SEQ_BLOCK (1ull << 32)

static const char *const db_names[HM_DB__COUNT] = {
    [HM_DB_DEVICES] = "devices", [HM_DB_PARAMS] = "params",       [HM_DB_TASKS] = "tasks",
    [HM_DB_ALARMS] = "alarms",   [HM_DB_ALARM_CUR] = "alarm_cur", [HM_DB_FILES] = "files",
    [HM_DB_PM] = "pm",           [HM_DB_META] = "meta",
};

struct hm_store_reader {
    /* Written by the owner thread, read by the writer while it waits to grow the map. */
    _Atomic int active;
    struct hm_store *s;
    MDB_txn *txn; /* reset between snapshots; created on first begin */
    struct hm_store_reader *next;
};

struct hm_store {
    MDB_env *env;
    MDB_dbi dbi[HM_DB__COUNT];

    /* Submission: producers -> writer. */
    struct ck_ring ring;
    struct ck_ring_buffer *ring_buf;
    int efd;
    _Atomic int writer_sleeping;
    _Atomic int stopping;
    _Atomic int submitters; /* producers between their stopping check and their enqueue */
    pthread_t writer;
    int writer_started;

    /* Map growth gate (see grow_map). */
    _Atomic int resizing;
    pthread_mutex_t readers_mu;
    struct hm_store_reader *readers;
    struct hm_store_reader ctl; /* stats and backup, under ctl_mu */
    pthread_mutex_t ctl_mu;

    uint64_t map_size, map_max;
    unsigned max_group, reader_check_s;
    _Atomic uint64_t seq;

    /* Writer-only scratch. */
    struct hm_store_batch **group;

    /* Counters: written by the writer (relaxed), read by hm_store_stats. */
    _Atomic uint64_t commits, batches, batches_failed, ops, map_grows, stale_readers, submit_full;
    _Atomic uint64_t per_commit[HM_STORE_HIST_BUCKETS], commit_us[HM_STORE_HIST_BUCKETS];

    /* Health (storage/store_health.h): written by the writer, read anywhere (relaxed). */
    _Atomic int write_error;          /* 0, or the cause of the failing-writes episode */
    _Atomic uint64_t fail_episodes, commit_ewma_us;
    uint64_t episode_start_ns, episode_failed; /* writer only */
};

const char *hm_store_mdb_strerror(int mdb_rc)
{
    return mdb_strerror(mdb_rc);
}

/* LMDB codes (positive errno or MDB_*) to our negative convention. */
static int map_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
        return HM_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return HM_EVERSION;
    case MDB_BAD_VALSIZE:
        return -E2BIG;
    case MDB_READERS_FULL:
        return -EMFILE;
    case MDB_MAP_RESIZED:
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
    case MDB_DBS_FULL:
    case MDB_TLS_FULL:
    case MDB_KEYEXIST:
    case MDB_PANIC:
    case MDB_BAD_DBI:
        return HM_ESTORE;
    default:
        return rc > 0 ? -rc : HM_ESTORE;
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned log2_bucket(uint64_t v)
{
    unsigned b = v ? 63u - (unsigned)__builtin_clzll(v) : 0;
    return b < HM_STORE_HIST_BUCKETS ? b : HM_STORE_HIST_BUCKETS - 1;
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void log_open_error(const char *path, const char *what, int mdb_rc)
{
    fprintf(stderr, "level=error msg=\"store: %s\" path=\"%s\" mdb=\"%s\"\n", what, path,
            mdb_rc ? mdb_strerror(mdb_rc) : "-");
}

/* ---- reader gate ----------------------------------------------------------------------
 * mdb_env_set_mapsize() may remap the file, so it must not run while any read snapshot of
 * this process is open (LMDB does not check). Readers announce a snapshot in their own
 * <active> word and back off when <resizing> is set; the writer sets <resizing> and waits for
 * every <active> to drop. Both sides use seq_cst so that at least one sees the other
 * (store-load ordering): no lock on the read path. */

static int gate_enter(struct hm_store_reader *r)
{
    atomic_store(&r->active, 1);
    if (HM_UNLIKELY(atomic_load(&r->s->resizing))) {
        atomic_store(&r->active, 0);
        return -EAGAIN;
    }
    return 0;
}

static void gate_leave(struct hm_store_reader *r)
{
    atomic_store_explicit(&r->active, 0, memory_order_release);
}

static void wait_readers_idle(struct hm_store *s)
{
    const struct timespec pause = {0, 50000};
    pthread_mutex_lock(&s->readers_mu);
    for (struct hm_store_reader *r = s->readers; r; r = r->next)
        while (atomic_load(&r->active))
            nanosleep(&pause, NULL);
    pthread_mutex_unlock(&s->readers_mu);
}

static int grow_map(struct hm_store *s)
{
    if (s->map_size >= s->map_max)
        return -ENOSPC;
    uint64_t want = HM_MIN(s->map_size * 2, s->map_max);
    atomic_store(&s->resizing, 1);
    wait_readers_idle(s);
    int rc = mdb_env_set_mapsize(s->env, want);
    atomic_store(&s->resizing, 0);
    if (rc) {
        fprintf(stderr, "level=error msg=\"store: map resize failed\" size=%llu mdb=\"%s\"\n",
                (unsigned long long)want, mdb_strerror(rc));
        return map_err(rc);
    }
    fprintf(stderr, "level=info msg=\"store: map grown\" from=%llu to=%llu\n",
            (unsigned long long)s->map_size, (unsigned long long)want);
    s->map_size = want;
    count(&s->map_grows, 1);
    return 0;
}

/* ---- readers ------------------------------------------------------------------------- */

static void reader_link(struct hm_store *s, struct hm_store_reader *r)
{
    r->s = s;
    pthread_mutex_lock(&s->readers_mu);
    r->next = s->readers;
    s->readers = r;
    pthread_mutex_unlock(&s->readers_mu);
}

int hm_store_reader_open(struct hm_store *s, struct hm_store_reader **out)
{
    struct hm_store_reader *r = hm_xcalloc(1, sizeof(*r));
    reader_link(s, r);
    *out = r;
    return 0;
}

static void reader_unlink(struct hm_store_reader *r)
{
    struct hm_store *s = r->s;
    pthread_mutex_lock(&s->readers_mu);
    for (struct hm_store_reader **pp = &s->readers; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->readers_mu);
    if (r->txn)
        mdb_txn_abort(r->txn);
    r->txn = NULL;
}

void hm_store_reader_close(struct hm_store_reader *r)
{
    if (!r)
        return;
    HM_BUG_ON(atomic_load(&r->active));
    reader_unlink(r);
    free(r);
}

int hm_store_read_begin(struct hm_store_reader *r)
{
    int rc = gate_enter(r);
    if (rc)
        return rc;
    rc = r->txn ? mdb_txn_renew(r->txn) : mdb_txn_begin(r->s->env, NULL, MDB_RDONLY, &r->txn);
    if (HM_UNLIKELY(rc)) {
        gate_leave(r);
        return map_err(rc);
    }
    return 0;
}

void hm_store_read_end(struct hm_store_reader *r)
{
    HM_BUG_ON(!atomic_load_explicit(&r->active, memory_order_relaxed));
    mdb_txn_reset(r->txn);
    gate_leave(r);
}

int hm_store_get(struct hm_store_reader *r, enum hm_store_db db, struct hm_slice key,
                 struct hm_slice *val)
{
    HM_BUG_ON(!atomic_load_explicit(&r->active, memory_order_relaxed)); /* no snapshot */
    if ((unsigned)db >= HM_DB__COUNT || key.len == 0 || key.len > HM_STORE_MAX_KEY)
        return -EINVAL;
    MDB_val k = {key.len, (void *)key.ptr}, v;
    int rc = mdb_get(r->txn, r->s->dbi[db], &k, &v);
    if (rc)
        return map_err(rc);
    *val = hm_slice(v.mv_data, v.mv_size);
    return 0;
}

static bool has_prefix(const void *p, size_t n, struct hm_slice prefix)
{
    return prefix.len == 0 || (n >= prefix.len && memcmp(p, prefix.ptr, prefix.len) == 0);
}

static int scan_txn(MDB_txn *txn, MDB_dbi dbi, struct hm_slice prefix, struct hm_slice from,
                    hm_store_scan_fn cb, void *arg)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return map_err(rc);
    struct hm_slice start = from.len ? from : prefix;
    MDB_val k = {start.len, (void *)start.ptr}, v;
    int op = start.len ? MDB_SET_RANGE : MDB_FIRST;
    int ret = 0;
    for (;;) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc == MDB_NOTFOUND)
            break;
        if (rc) {
            ret = map_err(rc);
            break;
        }
        if (!has_prefix(k.mv_data, k.mv_size, prefix))
            break;
        ret = cb(arg, hm_slice(k.mv_data, k.mv_size), hm_slice(v.mv_data, v.mv_size));
        if (ret)
            break;
    }
    mdb_cursor_close(cur);
    return ret;
}

int hm_store_scan(struct hm_store_reader *r, enum hm_store_db db, struct hm_slice prefix,
                  struct hm_slice from, hm_store_scan_fn cb, void *arg)
{
    HM_BUG_ON(!atomic_load_explicit(&r->active, memory_order_relaxed)); /* no snapshot */
    if ((unsigned)db >= HM_DB__COUNT || !cb)
        return -EINVAL;
    if (from.len && !has_prefix(from.ptr, from.len, prefix))
        return -EINVAL;
    return scan_txn(r->txn, r->s->dbi[db], prefix, from, cb, arg);
}

/* ---- batches ------------------------------------------------------------------------- */

#define OP_HDR 8 /* u8 op, u8 db, u16 klen, u32 vlen (host order: never leaves the process) */

void hm_store_batch_init(struct hm_store_batch *b)
{
    memset(b, 0, sizeof(*b));
}

void hm_store_batch_reset(struct hm_store_batch *b)
{
    b->len = 0;
    b->nops = 0;
}

void hm_store_batch_fini(struct hm_store_batch *b)
{
    free(b->base);
    memset(b, 0, sizeof(*b));
}

static char *batch_append(struct hm_store_batch *b, enum hm_store_op op, enum hm_store_db db,
                          struct hm_slice key, size_t vlen)
{
    if ((unsigned)db >= HM_DB__COUNT || key.len == 0 || key.len > HM_STORE_MAX_KEY ||
        vlen > HM_STORE_MAX_VAL)
        return NULL;
    size_t need = OP_HDR + key.len + vlen;
    if (b->cap - b->len < need) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < need)
            cap *= 2;
        b->base = hm_xrealloc(b->base, cap);
        b->cap = (uint32_t)cap;
    }
    char *p = b->base + b->len;
    uint16_t kl = (uint16_t)key.len;
    uint32_t vl = (uint32_t)vlen;
    p[0] = (char)op;
    p[1] = (char)db;
    memcpy(p + 2, &kl, 2);
    memcpy(p + 4, &vl, 4);
    memcpy(p + OP_HDR, key.ptr, key.len);
    b->len += (uint32_t)need;
    b->nops++;
    return p + OP_HDR + key.len;
}

static int append_err(enum hm_store_db db)
{
    return (unsigned)db >= HM_DB__COUNT ? -EINVAL : -E2BIG;
}

int hm_store_batch_put(struct hm_store_batch *b, enum hm_store_db db, struct hm_slice key,
                       struct hm_slice val)
{
    char *p = batch_append(b, HM_STORE_PUT, db, key, val.len);
    if (!p)
        return append_err(db);
    if (val.len)
        memcpy(p, val.ptr, val.len);
    return 0;
}

char *hm_store_batch_put_reserve(struct hm_store_batch *b, enum hm_store_db db, struct hm_slice key,
                                 size_t vlen)
{
    return batch_append(b, HM_STORE_PUT, db, key, vlen);
}

int hm_store_batch_del(struct hm_store_batch *b, enum hm_store_db db, struct hm_slice key)
{
    return batch_append(b, HM_STORE_DEL, db, key, 0) ? 0 : append_err(db);
}

int hm_store_batch_del_prefix(struct hm_store_batch *b, enum hm_store_db db, struct hm_slice prefix)
{
    return batch_append(b, HM_STORE_DEL_PREFIX, db, prefix, 0) ? 0 : append_err(db);
}

/* ---- submission ---------------------------------------------------------------------- */

static void wake_writer(struct hm_store *s)
{
    uint64_t one = 1;
    /* A full eventfd counter (impossible in practice) still leaves the writer awake. */
    if (write(s->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
        HM_BUG_ON(1);
}

int hm_store_submit(struct hm_store *s, struct hm_store_batch *b, hm_store_done_fn done, void *arg)
{
    if (!done)
        return -EINVAL;
    b->done = done;
    b->arg = arg;
    b->status = 0;
    atomic_fetch_add(&s->submitters, 1);
    if (HM_UNLIKELY(atomic_load(&s->stopping))) {
        atomic_fetch_sub(&s->submitters, 1);
        return -ESHUTDOWN;
    }
    TSAN_RELEASE(b);
    bool ok = ck_ring_enqueue_mpsc(&s->ring, s->ring_buf, b);
    atomic_fetch_sub(&s->submitters, 1);
    if (HM_UNLIKELY(!ok)) {
        count(&s->submit_full, 1);
        return -EAGAIN;
    }
    /* Pairs with the writer's store to writer_sleeping then re-check of the ring. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->writer_sleeping, memory_order_relaxed) &&
        atomic_exchange(&s->writer_sleeping, 0))
        wake_writer(s);
    return 0;
}

/* The completion of a hm_store_submit_wait(): posted by the writer. */
struct submit_waiter {
    sem_t sem;
    int status;
};

static void submit_waiter_done(void *arg, int status)
{
    struct submit_waiter *w = arg;
    w->status = status;
    sem_post(&w->sem);
}

int hm_store_submit_wait(struct hm_store *s, struct hm_store_batch *b, unsigned give_up_ms)
{
    struct submit_waiter w = {.status = 0};
    sem_init(&w.sem, 0, 0);
    int r;
    unsigned waited_ms = 0;
    while ((r = hm_store_submit(s, b, submit_waiter_done, &w)) == -EAGAIN &&
           (!give_up_ms || waited_ms < give_up_ms)) {
        usleep(1000); /* the ring is full: the writer is behind, let it drain */
        waited_ms++;
    }
    if (r == 0) {
        while (sem_wait(&w.sem) == -1 && errno == EINTR)
            ;
        r = w.status;
    }
    sem_destroy(&w.sem);
    return r;
}

/* ---- writer -------------------------------------------------------------------------- */

static int del_prefix(MDB_txn *txn, MDB_dbi dbi, struct hm_slice prefix)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    for (;;) {
        /* Re-seek after each delete: plain and obviously correct, O(log n) per key. */
        MDB_val k = {prefix.len, (void *)prefix.ptr}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc)
            break;
        if (!has_prefix(k.mv_data, k.mv_size, prefix))
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void close_cursors(MDB_cursor **cur)
{
    for (unsigned i = 0; i < HM_DB__COUNT; i++)
        if (cur[i]) {
            mdb_cursor_close(cur[i]);
            cur[i] = NULL;
        }
}

/*
 * Applies <b>'s ops in <txn>; returns an LMDB code. The puts of a batch go through one
 * cursor per database: a session's parameters are neighbouring keys, and a positioned
 * cursor finds the next one's place on the page it is on instead of descending from the root
 * (mdb_put opens a fresh cursor each time). Deletes close the cursors first, so a put never
 * starts from a position that a delete has moved.
 */
static int apply_batch(struct hm_store *s, MDB_txn *txn, const struct hm_store_batch *b)
{
    MDB_cursor *cur[HM_DB__COUNT] = {0};
    int rc = 0;
    const char *p = b->base, *end = b->base + b->len;
    while (p < end && rc == 0) {
        uint16_t kl;
        uint32_t vl;
        memcpy(&kl, p + 2, 2);
        memcpy(&vl, p + 4, 4);
        unsigned db = (unsigned char)p[1];
        MDB_dbi dbi = s->dbi[db];
        MDB_val k = {kl, (void *)(p + OP_HDR)};
        MDB_val v = {vl, (void *)(p + OP_HDR + kl)};
        switch ((enum hm_store_op)p[0]) {
        case HM_STORE_PUT:
            if (!cur[db])
                rc = mdb_cursor_open(txn, dbi, &cur[db]);
            if (rc == 0)
                rc = mdb_cursor_put(cur[db], &k, &v, 0);
            break;
        case HM_STORE_DEL:
            close_cursors(cur);
            rc = mdb_del(txn, dbi, &k, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        case HM_STORE_DEL_PREFIX:
            close_cursors(cur);
            rc = del_prefix(txn, dbi, hm_slice(k.mv_data, k.mv_size));
            break;
        }
        p += OP_HDR + kl + vl;
    }
    close_cursors(cur);
    return rc;
}

/* ---- write health (storage/store_health.h) -------------------------------------------- */

static uint64_t fs_free_bytes(struct hm_store *s)
{
    int fd;
    struct statvfs v;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstatvfs(fd, &v) == -1)
        return UINT64_MAX;
    return (uint64_t)v.f_bavail * v.f_frsize;
}

/* A commit of <us> succeeded: update the EWMA, close a failing-writes episode. Writer only. */
static void health_committed(struct hm_store *s, uint64_t us)
{
    uint64_t e = atomic_load_explicit(&s->commit_ewma_us, memory_order_relaxed);
    e = !e ? (us ? us : 1) : us >= e ? e + ((us - e) >> 3) : e - ((e - us) >> 3);
    atomic_store_explicit(&s->commit_ewma_us, e, memory_order_relaxed);
    if (atomic_load_explicit(&s->write_error, memory_order_relaxed) == 0)
        return;
    atomic_store_explicit(&s->write_error, 0, memory_order_relaxed);
    fprintf(stderr,
            "level=warn msg=\"store: writes recovered\" after_s=%.1f batches_refused=%llu\n",
            (double)(now_ns() - s->episode_start_ns) / 1e9,
            (unsigned long long)s->episode_failed);
}

/*
 * A batch failed alone with LMDB code <rc>: classify it, log once per episode (a full disk
 * must not flood the log with one line per Inform) and return the batch's status. Writer only.
 */
static int health_failed(struct hm_store *s, int rc)
{
    uint64_t avail = fs_free_bytes(s);
    bool full = rc == ENOSPC || rc == EDQUOT || rc == MDB_MAP_FULL ||
                (rc == EIO && avail < (1u << 20));
    int err = full ? -ENOSPC : map_err(rc);
    if (atomic_load_explicit(&s->write_error, memory_order_relaxed) != 0) {
        s->episode_failed++;
        return err;
    }
    if (!full) { /* a one-off failure: no episode, but say why */
        fprintf(stderr, "level=error msg=\"store: batch failed\" mdb=\"%s\"\n",
                mdb_strerror(rc));
        return err;
    }
    atomic_store_explicit(&s->write_error, err, memory_order_relaxed);
    count(&s->fail_episodes, 1);
    s->episode_start_ns = now_ns();
    s->episode_failed = 1;
    fprintf(stderr,
            "level=error msg=\"store: disk full, refusing writes until space returns; reads "
            "continue\" cause=\"%s\" fs_free_bytes=%llu map_size=%llu map_max=%llu\n",
            mdb_strerror(rc), (unsigned long long)(avail == UINT64_MAX ? 0 : avail),
            (unsigned long long)s->map_size, (unsigned long long)s->map_max);
    return err;
}

unsigned hm_store_queue_depth(struct hm_store *s)
{
    return ck_ring_size(&s->ring);
}

int hm_store_write_error(struct hm_store *s)
{
    return atomic_load_explicit(&s->write_error, memory_order_relaxed);
}

uint64_t hm_store_write_fail_episodes(struct hm_store *s)
{
    return atomic_load_explicit(&s->fail_episodes, memory_order_relaxed);
}

uint64_t hm_store_commit_ewma_us(struct hm_store *s)
{
    return atomic_load_explicit(&s->commit_ewma_us, memory_order_relaxed);
}

/*
 * Applies group[0..n) in one write transaction and commits. MAP_FULL grows the map and
 * retries the whole group; any other failure is returned (the txn is aborted) and the caller
 * retries the batches one per transaction so one bad batch cannot fail its neighbours.
 */
static int commit_group(struct hm_store *s, struct hm_store_batch **group, unsigned n)
{
    for (;;) {
        uint64_t t0 = now_ns();
        MDB_txn *txn;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc)
            return rc;
        for (unsigned i = 0; i < n && !rc; i++)
            rc = apply_batch(s, txn, group[i]);
        if (rc) {
            mdb_txn_abort(txn);
        } else {
            rc = mdb_txn_commit(txn); /* frees txn, also on failure */
        }
        if (rc == MDB_MAP_FULL) {
            int grc = grow_map(s);
            if (grc == 0)
                continue;
            return rc;
        }
        if (rc == 0) {
            uint64_t us = (now_ns() - t0) / 1000;
            count(&s->commits, 1);
            count(&s->commit_us[log2_bucket(us)], 1);
            count(&s->per_commit[log2_bucket(n)], 1);
            health_committed(s, us);
        }
        return rc;
    }
}

static void complete(struct hm_store *s, struct hm_store_batch *b, int status)
{
    if (status == 0) {
        count(&s->batches, 1);
        count(&s->ops, b->nops);
    } else {
        count(&s->batches_failed, 1);
    }
    b->status = status;
    /* The batch belongs to its owner again as soon as done() is entered. */
    b->done(b->arg, status);
}

static void process_group(struct hm_store *s, struct hm_store_batch **group, unsigned n)
{
    int rc = commit_group(s, group, n);
    if (rc == 0) {
        for (unsigned i = 0; i < n; i++)
            complete(s, group[i], 0);
        return;
    }
    if (n == 1) {
        complete(s, group[0], health_failed(s, rc));
        return;
    }
    for (unsigned i = 0; i < n; i++)
        process_group(s, group + i, 1);
}

static unsigned drain(struct hm_store *s)
{
    unsigned n = 0;
    struct hm_store_batch *b;
    while (n < s->max_group && ck_ring_dequeue_mpsc(&s->ring, s->ring_buf, &b)) {
        TSAN_ACQUIRE(b);
        s->group[n++] = b;
    }
    return n;
}

static void check_readers(struct hm_store *s)
{
    int dead = 0;
    if (mdb_reader_check(s->env, &dead) == 0 && dead > 0) {
        count(&s->stale_readers, (uint64_t)dead);
        fprintf(stderr, "level=warn msg=\"store: cleared stale reader slots\" count=%d\n", dead);
    }
}

static void *writer_main(void *arg)
{
    struct hm_store *s = arg;
    uint64_t next_check = now_ns() + (uint64_t)s->reader_check_s * 1000000000ull;
    for (;;) {
        unsigned n = drain(s);
        if (n) {
            process_group(s, s->group, n);
            continue;
        }
        if (atomic_load(&s->stopping) && atomic_load(&s->submitters) == 0) {
            /* Submitters seen at zero after stopping: nothing can be enqueued any more. */
            n = drain(s);
            if (n) {
                process_group(s, s->group, n);
                continue;
            }
            break;
        }
        if (now_ns() >= next_check) {
            check_readers(s);
            next_check = now_ns() + (uint64_t)s->reader_check_s * 1000000000ull;
        }
        atomic_store(&s->writer_sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        if (ck_ring_size(&s->ring) != 0 || atomic_load(&s->stopping)) {
            atomic_store(&s->writer_sleeping, 0);
            continue;
        }
        struct pollfd pfd = {.fd = s->efd, .events = POLLIN};
        int prc = poll(&pfd, 1, (int)HM_MIN(s->reader_check_s * 1000u, 1000u));
        atomic_store(&s->writer_sleeping, 0);
        if (prc > 0) {
            uint64_t v;
            if (read(s->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
                HM_BUG_ON(1);
        }
    }
    return NULL;
}

/* ---- open / close -------------------------------------------------------------------- */

static int meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, MDB_val *v)
{
    MDB_val k = {strlen(key), (void *)key};
    return mdb_get(txn, dbi, &k, v);
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *p, size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, v = {n, (void *)p};
    return mdb_put(txn, dbi, &k, &v, 0);
}

static void le32_put(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static uint32_t le32_get(const char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | (unsigned char)p[i];
    return v;
}

/*
 * Checks or creates the schema: an environment with our meta db and magic record is ours; an
 * empty one is initialised; anything else is foreign and refused.
 */
static int init_schema(struct hm_store *s, const char *path, const struct hm_store_opts *o)
{
    MDB_txn *txn;
    MDB_dbi main_dbi, meta;
    MDB_val v;
    int ret = 0;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) {
        log_open_error(path, "cannot begin transaction", rc);
        return map_err(rc);
    }
    rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc)
        goto fail_mdb;
    rc = mdb_dbi_open(txn, db_names[HM_DB_META], 0, &meta);
    if (rc == MDB_NOTFOUND) {
        MDB_stat st;
        rc = mdb_stat(txn, main_dbi, &st);
        if (rc)
            goto fail_mdb;
        if (st.ms_entries != 0) {
            log_open_error(path, "refusing a foreign LMDB environment (no hems meta record)", 0);
            ret = HM_ECORRUPT;
            goto fail;
        }
        rc = mdb_dbi_open(txn, db_names[HM_DB_META], MDB_CREATE, &meta);
        if (rc)
            goto fail_mdb;
        char ver[4];
        le32_put(ver, HM_STORE_SCHEMA);
        uint64_t seq0 = 1;
        if ((rc = meta_put(txn, meta, "magic", MAGIC, sizeof(MAGIC) - 1)) ||
            (rc = meta_put(txn, meta, "schema", ver, 4)) ||
            (rc = meta_put(txn, meta, "seq", &seq0, 8)))
            goto fail_mdb;
        if (o->node_id.len && (rc = meta_put(txn, meta, "node_id", o->node_id.ptr, o->node_id.len)))
            goto fail_mdb;
    } else if (rc == MDB_INCOMPATIBLE) {
        log_open_error(path, "refusing a foreign LMDB environment ('meta' is not a database)", rc);
        ret = HM_ECORRUPT;
        goto fail;
    } else if (rc) {
        goto fail_mdb;
    } else {
        rc = meta_get(txn, meta, "magic", &v);
        if (rc || v.mv_size != sizeof(MAGIC) - 1 || memcmp(v.mv_data, MAGIC, v.mv_size)) {
            log_open_error(path, "refusing a foreign LMDB environment (bad magic)", 0);
            ret = HM_ECORRUPT;
            goto fail;
        }
        rc = meta_get(txn, meta, "schema", &v);
        if (rc || v.mv_size != 4) {
            log_open_error(path, "corrupt store: schema record missing", 0);
            ret = HM_ECORRUPT;
            goto fail;
        }
        uint32_t ver = le32_get(v.mv_data);
        if (ver != HM_STORE_SCHEMA) {
            fprintf(stderr,
                    "level=error msg=\"store: unsupported schema version\" path=\"%s\" "
                    "found=%u supported=%u\n",
                    path, ver, HM_STORE_SCHEMA);
            ret = HM_EVERSION;
            goto fail;
        }
    }
    s->dbi[HM_DB_META] = meta;
    for (unsigned i = 0; i < HM_DB__COUNT; i++) {
        if (i == HM_DB_META)
            continue;
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
        if (rc)
            goto fail_mdb;
    }
    /* Reserve a block of sequence numbers: a crash can skip some, never reuse one. */
    uint64_t seq;
    rc = meta_get(txn, meta, "seq", &v);
    if (rc || v.mv_size != 8) {
        log_open_error(path, "corrupt store: seq record missing", rc);
        ret = HM_ECORRUPT;
        goto fail;
    }
    memcpy(&seq, v.mv_data, 8);
    uint64_t next = seq + SEQ_BLOCK;
    if ((rc = meta_put(txn, meta, "seq", &next, 8)))
        goto fail_mdb;
    atomic_store(&s->seq, seq);
    rc = mdb_txn_commit(txn);
    if (rc) {
        log_open_error(path, "cannot commit schema", rc);
        return map_err(rc);
    }
    return 0;
fail_mdb:
    log_open_error(path, "cannot open databases", rc);
    ret = map_err(rc);
fail:
    mdb_txn_abort(txn);
    return ret;
}

uint64_t hm_store_next_seq(struct hm_store *s)
{
    /* 2^32 per process lifetime is not reachable in practice; reopening reserves anew. */
    return atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed);
}

int hm_store_open(const char *path, const struct hm_store_opts *opts, struct hm_store **out)
{
    static const struct hm_store_opts defaults;
    const struct hm_store_opts *o = opts ? opts : &defaults;
    unsigned ring_size = o->ring_size ? o->ring_size : 4096;
    int rc, ret;

    if (ring_size < 4 || (ring_size & (ring_size - 1)))
        return -EINVAL;
    if (mkdir(path, 0700) == -1 && errno != EEXIST) {
        ret = -errno;
        fprintf(stderr,
                "level=error msg=\"store: cannot create directory\" path=\"%s\" err=\"%s\"\n", path,
                strerror(errno));
        return ret;
    }
    struct hm_store *s = hm_xcalloc(1, sizeof(*s));
    s->efd = -1;
    pthread_mutex_init(&s->readers_mu, NULL);
    pthread_mutex_init(&s->ctl_mu, NULL);
    s->map_size = o->map_size ? o->map_size : 64ull << 20;
    s->map_max = o->map_max ? o->map_max : 64ull << 30;
    if (s->map_max < s->map_size)
        s->map_max = s->map_size;
    s->max_group = o->max_group ? o->max_group : 1024;
    s->reader_check_s = o->reader_check_s ? o->reader_check_s : 10;
    s->group = hm_xcalloc(s->max_group, sizeof(*s->group));
    s->ring_buf = hm_xcalloc(ring_size, sizeof(*s->ring_buf));
    ck_ring_init(&s->ring, ring_size);

    if ((rc = mdb_env_create(&s->env))) {
        ret = map_err(rc);
        goto fail;
    }
    if ((rc = mdb_env_set_maxdbs(s->env, HM_DB__COUNT + 2)) ||
        (rc = mdb_env_set_maxreaders(s->env, o->max_readers ? o->max_readers : 512)) ||
        (rc = mdb_env_set_mapsize(s->env, s->map_size))) {
        ret = map_err(rc);
        goto fail;
    }
    rc = mdb_env_open(s->env, path, MDB_NOTLS | (o->no_sync ? MDB_NOSYNC : 0), 0600);
    if (rc) {
        log_open_error(path,
                       rc == MDB_INVALID            ? "not an LMDB environment (corrupt or foreign)"
                       : rc == MDB_VERSION_MISMATCH ? "LMDB format version mismatch"
                                                    : "cannot open environment",
                       rc);
        ret = map_err(rc);
        goto fail;
    }
    /* The file may be larger than asked (an earlier run grew it): LMDB adopts that size. */
    MDB_envinfo ei;
    mdb_env_info(s->env, &ei);
    if (ei.me_mapsize > s->map_size)
        s->map_size = ei.me_mapsize;
    if (s->map_max < s->map_size)
        s->map_max = s->map_size;
    check_readers(s);
    if ((ret = init_schema(s, path, o)))
        goto fail;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd == -1) {
        ret = -errno;
        goto fail;
    }
    s->ctl.s = s;
    if ((rc = pthread_create(&s->writer, NULL, writer_main, s))) {
        ret = -rc;
        goto fail;
    }
    s->writer_started = 1;
    reader_link(s, &s->ctl);
    *out = s;
    return 0;
fail:
    hm_store_close(s);
    return ret;
}

void hm_store_close(struct hm_store *s)
{
    if (!s)
        return;
    if (s->writer_started) {
        atomic_store(&s->stopping, 1);
        wake_writer(s);
        pthread_join(s->writer, NULL);
        reader_unlink(&s->ctl);
    }
    HM_BUG_ON(s->readers != NULL);
    if (s->env)
        mdb_env_close(s->env);
    if (s->efd != -1)
        close(s->efd);
    pthread_mutex_destroy(&s->readers_mu);
    pthread_mutex_destroy(&s->ctl_mu);
    free(s->group);
    free(s->ring_buf);
    free(s);
}

/* ---- control path -------------------------------------------------------------------- */

/* Enters the gate with the control reader, waiting out a resize (control path may wait). */
static void ctl_enter(struct hm_store *s)
{
    const struct timespec pause = {0, 100000};
    pthread_mutex_lock(&s->ctl_mu);
    while (gate_enter(&s->ctl) == -EAGAIN)
        nanosleep(&pause, NULL);
}

static void ctl_leave(struct hm_store *s)
{
    gate_leave(&s->ctl);
    pthread_mutex_unlock(&s->ctl_mu);
}

int hm_store_backup(struct hm_store *s, const char *dir)
{
    if (mkdir(dir, 0700) == -1 && errno != EEXIST)
        return -errno;
    ctl_enter(s);
    int rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);
    ctl_leave(s);
    if (rc) {
        fprintf(stderr, "level=error msg=\"store: backup failed\" path=\"%s\" mdb=\"%s\"\n", dir,
                mdb_strerror(rc));
        return map_err(rc);
    }
    return 0;
}

int hm_store_stats(struct hm_store *s, struct hm_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    ctl_enter(s);
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        for (unsigned i = 0; i < HM_DB__COUNT && rc == 0; i++) {
            MDB_stat st;
            rc = mdb_stat(txn, s->dbi[i], &st);
            if (rc == 0)
                out->db[i] =
                    (struct hm_store_db_stats){st.ms_entries, st.ms_depth, st.ms_branch_pages,
                                               st.ms_leaf_pages, st.ms_overflow_pages};
        }
        mdb_txn_abort(txn);
    }
    MDB_envinfo ei;
    MDB_stat est;
    mdb_env_info(s->env, &ei);
    mdb_env_stat(s->env, &est);
    ctl_leave(s);
    if (rc)
        return map_err(rc);
    out->map_size = ei.me_mapsize;
    out->page_size = est.ms_psize;
    out->last_pgno = ei.me_last_pgno;
    out->last_txnid = ei.me_last_txnid;
    out->max_readers = ei.me_maxreaders;
    out->num_readers = ei.me_numreaders;
#define LOAD(f) out->f = atomic_load_explicit(&s->f, memory_order_relaxed)
    LOAD(commits);
    LOAD(batches);
    LOAD(batches_failed);
    LOAD(ops);
    LOAD(map_grows);
    LOAD(stale_readers);
    LOAD(submit_full);
#undef LOAD
    for (unsigned i = 0; i < HM_STORE_HIST_BUCKETS; i++) {
        out->batches_per_commit[i] = atomic_load_explicit(&s->per_commit[i], memory_order_relaxed);
        out->commit_us[i] = atomic_load_explicit(&s->commit_us[i], memory_order_relaxed);
    }
    return 0;
}
