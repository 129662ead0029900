/*
 * bench-store: durable device-record updates per second through the hm_store group-commit
 * writer with N updates in flight, against plain LMDB committing every update in its own
 * transaction (mdb_txn_commit per update, same durable sync settings), in one run on the
 * same disk. Also reports the latency each update waits for its commit (p50/p99).
 *
 *   bench-store [-d dir] [-s seconds per mode] [-i inflight,inflight,...] [-t threads]
 *
 * dir defaults to a fresh directory under $TMPDIR or /tmp: put it on the disk you care about
 * (tmpfs makes fsync free and the comparison meaningless).
 */
#include <getopt.h>
#include <lmdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/record.h"
#include "storage/store.h"

#define NDEV 100000u
#define MAX_LAT (1u << 20) /* latency samples kept per mode */
#define MAX_MODES 8

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Encodes the device record of device <i> into <out>; returns key length, value in *<vlen>. */
static int make_update(unsigned i, char *key, size_t kcap, char *val, size_t vcap, size_t *vlen)
{
    char sn[16];
    int sl = snprintf(sn, sizeof(sn), "SN%08u", i);
    struct hm_dev_rec d = {
        .oui = HM_SLICE_LIT("00D0B7"),
        .product_class = HM_SLICE_LIT("HeNB-LTE"),
        .serial = hm_slice(sn, (size_t)sl),
        .role = HM_ROLE_SERVING,
        .reg_state = HM_REG_REGISTERED,
        .serving_node = HM_SLICE_LIT("hems-1"),
        .last_inform_ms = wall_ms(),
        .events = HM_SLICE_LIT("2 PERIODIC"),
        .source_addr = HM_SLICE_LIT("10.20.30.40:7547"),
        .cr_url = HM_SLICE_LIT("http://10.20.30.40:7547/acscall"),
        .cr_user = HM_SLICE_LIT("hems"),
        .cr_secret = HM_SLICE_LIT("5f4dcc3b5aa765d61d8327deb882cf99"),
        .cr_secret_is_ha1 = 1,
        .sw_version = HM_SLICE_LIT("BC-4.2.1"),
        .param_key = HM_SLICE_LIT("cm-0042"),
    };
    int n = hm_rec_dev_encode(&d, val, vcap);
    if (n < 0)
        return n;
    *vlen = (size_t)n;
    return hm_key_dev(key, kcap, d.oui, d.product_class, d.serial);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Accumulated over the interleaved rounds of one mode. */
struct result {
    uint64_t updates, ns, commits;
    uint64_t *lat;
    _Atomic uint64_t nlat;
};

static void add_lat(struct result *r, uint64_t ns)
{
    uint64_t i = atomic_fetch_add_explicit(&r->nlat, 1, memory_order_relaxed);
    if (i < MAX_LAT)
        r->lat[i] = ns;
}

static void percentiles(struct result *r, uint64_t *p50_us, uint64_t *p99_us)
{
    size_t n = HM_MIN(atomic_load(&r->nlat), MAX_LAT);
    qsort(r->lat, n, sizeof(*r->lat), cmp_u64);
    *p50_us = n ? r->lat[n / 2] / 1000 : 0;
    *p99_us = n ? r->lat[(n * 99) / 100] / 1000 : 0;
}

/* ---- baseline: one transaction per update ---- */

static void run_baseline(const char *dir, double secs, struct result *r)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mkdir(dir, 0700);
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 1ull << 30) ||
        mdb_env_set_maxdbs(env, 4) || mdb_env_open(env, dir, MDB_NOTLS, 0600))
        abort();
    if (mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "devices", MDB_CREATE, &dbi) ||
        mdb_txn_commit(txn))
        abort();
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
    char key[64], val[512];
    size_t vlen;
    for (unsigned i = 0;; i++) {
        uint64_t t = now_ns();
        if (t >= end)
            break;
        int kl = make_update(i % NDEV, key, sizeof(key), val, sizeof(val), &vlen);
        MDB_val k = {(size_t)kl, key}, v = {vlen, val};
        if (mdb_txn_begin(env, NULL, 0, &txn) || mdb_put(txn, dbi, &k, &v, 0) ||
            mdb_txn_commit(txn))
            abort();
        add_lat(r, now_ns() - t);
        r->updates++;
        r->commits++;
    }
    r->ns += now_ns() - t0;
    mdb_env_close(env);
}

/* ---- group commit ---- */

struct slot {
    struct hm_store_batch b;
    uint64_t t_submit;
    struct prod *p;
    unsigned idx;
};

struct prod {
    struct hm_store *s;
    unsigned tid, nslots, nthreads;
    sem_t free_slots;
    _Atomic int *busy;
    struct slot *slots;
    uint64_t end;
    uint64_t submitted;
    struct result *r;
};

static void on_done(void *arg, int status)
{
    struct slot *sl = arg;
    if (status != 0) {
        fprintf(stderr, "batch failed: %s\n", hm_strerror(status));
        abort();
    }
    struct prod *p = sl->p; /* the slot may be reused as soon as it is marked free */
    add_lat(p->r, now_ns() - sl->t_submit);
    atomic_store_explicit(&p->busy[sl->idx], 0, memory_order_release);
    sem_post(&p->free_slots);
}

static void *producer(void *arg)
{
    struct prod *p = arg;
    char key[64], val[512];
    size_t vlen;
    for (unsigned i = p->tid;; i += p->nthreads) {
        while (sem_wait(&p->free_slots) == -1)
            ;
        if (now_ns() >= p->end) {
            sem_post(&p->free_slots);
            break;
        }
        unsigned j = 0;
        while (atomic_load_explicit(&p->busy[j], memory_order_acquire))
            j++;
        atomic_store_explicit(&p->busy[j], 1, memory_order_relaxed);
        struct slot *sl = &p->slots[j];
        hm_store_batch_reset(&sl->b);
        int kl = make_update(i % NDEV, key, sizeof(key), val, sizeof(val), &vlen);
        if (hm_store_batch_put(&sl->b, HM_DB_DEVICES, hm_slice(key, (size_t)kl),
                               hm_slice(val, vlen)))
            abort();
        sl->t_submit = now_ns();
        while (hm_store_submit(p->s, &sl->b, on_done, sl) == -EAGAIN)
            sched_yield();
        p->submitted++;
    }
    for (unsigned j = 0; j < p->nslots; j++)
        while (sem_wait(&p->free_slots) == -1)
            ;
    return NULL;
}

static void run_group(const char *dir, double secs, unsigned inflight, unsigned threads,
                      struct result *r)
{
    struct hm_store *s;
    struct hm_store_opts o = {.map_size = 1ull << 30};
    int rc = hm_store_open(dir, &o, &s);
    if (rc) {
        fprintf(stderr, "open %s: %s\n", dir, hm_strerror(rc));
        exit(1);
    }
    struct hm_store_stats st0, st1;
    if (hm_store_stats(s, &st0))
        abort();
    if (threads > inflight)
        threads = inflight;
    struct prod *ps = hm_xcalloc(threads, sizeof(*ps));
    pthread_t *th = hm_xcalloc(threads, sizeof(*th));
    uint64_t t0 = now_ns();
    for (unsigned t = 0; t < threads; t++) {
        struct prod *p = &ps[t];
        p->s = s;
        p->tid = t;
        p->nthreads = threads;
        p->nslots = inflight / threads + (t < inflight % threads);
        p->slots = hm_xcalloc(p->nslots, sizeof(*p->slots));
        p->busy = hm_xcalloc(p->nslots, sizeof(*p->busy));
        for (unsigned j = 0; j < p->nslots; j++) {
            p->slots[j].p = p;
            p->slots[j].idx = j;
        }
        sem_init(&p->free_slots, 0, p->nslots);
        p->end = t0 + (uint64_t)(secs * 1e9);
        p->r = r;
        pthread_create(&th[t], NULL, producer, p);
    }
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        r->updates += ps[t].submitted;
    }
    r->ns += now_ns() - t0;
    if (hm_store_stats(s, &st1))
        abort();
    r->commits += st1.commits - st0.commits;
    for (unsigned t = 0; t < threads; t++) {
        for (unsigned j = 0; j < ps[t].nslots; j++)
            hm_store_batch_fini(&ps[t].slots[j].b);
        free(ps[t].slots);
        free(ps[t].busy);
    }
    free(ps);
    free(th);
    hm_store_close(s);
}

int main(int argc, char **argv)
{
    char dir[256] = "";
    double secs = 6;
    unsigned threads = 2, rounds = 3;
    char inflights[128] = "2,64";
    int c;
    while ((c = getopt(argc, argv, "d:s:i:t:r:")) != -1) {
        switch (c) {
        case 'd':
            snprintf(dir, sizeof(dir), "%s", optarg);
            break;
        case 's':
            secs = atof(optarg);
            break;
        case 'i':
            snprintf(inflights, sizeof(inflights), "%s", optarg);
            break;
        case 't':
            threads = (unsigned)atoi(optarg);
            break;
        case 'r':
            rounds = (unsigned)atoi(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-d dir] [-s secs per mode] [-i n,n,...] [-t threads] "
                    "[-r rounds]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!rounds || !threads)
        return 2;
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/hems-bench-store-XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    unsigned inflight[MAX_MODES], nmodes = 1; /* mode 0 is the baseline */
    char *save = NULL;
    for (char *tok = strtok_r(inflights, ",", &save); tok && nmodes < MAX_MODES;
         tok = strtok_r(NULL, ",", &save))
        if ((inflight[nmodes] = (unsigned)atoi(tok)))
            nmodes++;
    static struct result res[MAX_MODES];
    for (unsigned m = 0; m < nmodes; m++)
        res[m].lat = hm_xmalloc(MAX_LAT * sizeof(uint64_t));

    /*
     * The modes run interleaved in <rounds> slices of secs/rounds each, so that a shared disk
     * whose fsync latency drifts during the run penalises all modes alike.
     */
    char sub[300];
    for (unsigned rd = 0; rd < rounds; rd++) {
        for (unsigned m = 0; m < nmodes; m++) {
            if (m == 0) {
                snprintf(sub, sizeof(sub), "%s/baseline", dir);
                run_baseline(sub, secs / rounds, &res[0]);
            } else {
                snprintf(sub, sizeof(sub), "%s/group-%u", dir, inflight[m]);
                run_group(sub, secs / rounds, inflight[m], threads, &res[m]);
            }
        }
    }

    double base_rate = (double)res[0].updates / ((double)res[0].ns / 1e9);
    printf("dir=%s seconds_per_mode=%.1f rounds=%u producer_threads=%u "
           "sync=durable(LMDB default: fdatasync data + meta per commit)\n",
           dir, secs, rounds, threads);
    printf("%-36s %11s %9s %12s %9s %9s %11s\n", "mode", "updates/s", "commits", "batches/txn",
           "p50_us", "p99_us", "vs_baseline");
    for (unsigned m = 0; m < nmodes; m++) {
        struct result *r = &res[m];
        double rate = (double)r->updates / ((double)r->ns / 1e9);
        uint64_t p50, p99;
        percentiles(r, &p50, &p99);
        char name[64];
        if (m == 0)
            snprintf(name, sizeof(name), "lmdb, 1 txn per update");
        else
            snprintf(name, sizeof(name), "hm_store group commit, %u in flight", inflight[m]);
        printf("%-36s %11.0f %9llu %12.1f %9llu %9llu %10.1fx\n", name, rate,
               (unsigned long long)r->commits,
               r->commits ? (double)r->updates / (double)r->commits : 0.0, (unsigned long long)p50,
               (unsigned long long)p99, rate / base_rate);
        free(r->lat);
    }
    return 0;
}
