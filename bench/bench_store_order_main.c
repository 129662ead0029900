/*
 * bench-store-order: what a device's first session costs the store, by the order in which
 * devices arrive. Each device is one hm_store batch, as a first Inform writes it: its record
 * and 40 parameters (neighbouring keys), submitted through the group-commit writer with
 * 64 batches in flight. Devices come in serial order (B-tree appends) or scattered (device
 * i is serial hm_lg_scatter(i), as with hems-loadgen --scatter-serials: a real fleet's
 * order, and an overload's), in alternating rounds on fresh stores. Reports process CPU (the writer's apply, commit,
 * pwrite and fdatasync, and the producer) per device and devices/s.
 *
 *   bench-store-order [-n devices] [-r rounds] [-d dir] [--no-sync]
 *
 * dir defaults to a fresh directory under $TMPDIR or /tmp: put it on the disk you care about.
 * docs/benchmarks-store.md has figures.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "storage/record.h"
#include "storage/store.h"

#define INFLIGHT 64
#define PARAMS 40

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct slot {
    struct hm_store_batch b;
    sem_t *free;
    _Atomic int busy;
};

static void on_done(void *arg, int status)
{
    struct slot *sl = arg;
    if (status != 0) {
        fprintf(stderr, "bench-store-order: batch failed: %s\n", hm_strerror(status));
        exit(1);
    }
    sem_t *free_slots = sl->free; /* the slot is the producer's again once busy is 0 */
    atomic_store_explicit(&sl->busy, 0, memory_order_release);
    sem_post(free_slots);
}

/* Device <serial>'s first-session batch: its record and PARAMS parameters. */
static void fill(struct hm_store_batch *b, unsigned serial)
{
    char sn[16], dk[128], k[256], path[96];
    static const char rec[320] = {1};
    static const char val[48] = "a typical Inform value of some forty bytes...";
    int sl = snprintf(sn, sizeof(sn), "%010u", serial);
    int dl = hm_key_dev(dk, sizeof(dk), HM_SLICE_LIT("00256D"), HM_SLICE_LIT("HeNB"),
                        hm_slice(sn, (size_t)sl));
    hm_store_batch_reset(b);
    if (dl < 0 ||
        hm_store_batch_put(b, HM_DB_DEVICES, hm_slice(dk, (size_t)dl), hm_slice(rec, sizeof(rec))))
        abort();
    for (unsigned p = 0; p < PARAMS; p++) {
        int pl =
            snprintf(path, sizeof(path), "Device.Services.FAPService.1.CellConfig.LTE.P%02u", p);
        int kl = hm_key_param(k, sizeof(k), hm_slice(dk, (size_t)dl), hm_slice(path, (size_t)pl));
        if (kl < 0 || hm_store_batch_put(b, HM_DB_PARAMS, hm_slice(k, (size_t)kl),
                                         hm_slice(val, sizeof(val) - 1)))
            abort();
    }
}

/*
 * One round on a fresh store: every device's first session (pass 0), then a session of
 * every device again in the same order (pass 1: the same keys rewritten in place, as a
 * periodic Inform that reports its parameters does). CPU and elapsed seconds per pass.
 */
static void run(const char *dir, unsigned n, int scattered, int no_sync, double cpu[2],
                double wall[2])
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, scattered ? "scattered" : "sequential");
    if (mkdir(path, 0700) == -1 && errno != EEXIST)
        abort();
    struct hm_store_opts o = {.no_sync = no_sync, .map_size = 1ull << 30};
    struct hm_store *s;
    if (hm_store_open(path, &o, &s) != 0)
        abort();
    sem_t free_slots;
    sem_init(&free_slots, 0, INFLIGHT);
    static struct slot slots[INFLIGHT];
    for (unsigned j = 0; j < INFLIGHT; j++) {
        hm_store_batch_init(&slots[j].b);
        slots[j].free = &free_slots;
    }
    uint64_t step = scattered ? hm_lg_scatter_step(n) : 0;
    for (int pass = 0; pass < 2; pass++) {
        double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
        for (unsigned i = 0; i < n; i++) {
            while (sem_wait(&free_slots) == -1)
                ;
            unsigned j = 0;
            while (atomic_load_explicit(&slots[j].busy, memory_order_acquire))
                j++;
            struct slot *sl = &slots[j];
            atomic_store_explicit(&sl->busy, 1, memory_order_relaxed);
            fill(&sl->b, 1 + (unsigned)hm_lg_scatter(i, n, step));
            while (hm_store_submit(s, &sl->b, on_done, sl) == -EAGAIN)
                sched_yield();
        }
        for (unsigned j = 0; j < INFLIGHT; j++)
            while (sem_wait(&free_slots) == -1)
                ;
        cpu[pass] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        wall[pass] = clock_s(CLOCK_MONOTONIC) - w0;
        for (unsigned j = 0; j < INFLIGHT; j++)
            sem_post(&free_slots);
    }
    hm_store_close(s);
    for (unsigned j = 0; j < INFLIGHT; j++)
        hm_store_batch_fini(&slots[j].b);
    sem_destroy(&free_slots);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "bench-store-order: could not remove %s\n", path);
}

int main(int argc, char **argv)
{
    unsigned n = 50000, rounds = 3;
    int no_sync = 0;
    char dir[400] = "";
    static const struct option lo[] = {{"no-sync", no_argument, NULL, 'S'}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:r:d:", lo, NULL)) != -1) {
        switch (c) {
        case 'n':
            n = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rounds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            snprintf(dir, sizeof(dir), "%s", optarg);
            break;
        case 'S':
            no_sync = 1;
            break;
        default:
            fprintf(stderr,
                    "usage: bench-store-order [-n devices] [-r rounds] [-d dir] [--no-sync]\n");
            return 2;
        }
    }
    if (n < 3 || rounds < 1) {
        fprintf(stderr, "bench-store-order: -n at least 3, -r at least 1\n");
        return 2;
    }
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/bench-store-order.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    double cpu[2][2] = {{0}}, wall[2][2] = {{0}}; /* [order][pass] */
    static const char *const pass_name[2] = {"first", "again"};
    printf("%u devices x (record + %d parameters), %d in flight, %s, %u alternating rounds\n", n,
           PARAMS, INFLIGHT, no_sync ? "MDB_NOSYNC" : "durable commits", rounds);
    for (unsigned r = 0; r < rounds; r++)
        for (int sc = 0; sc < 2; sc++) {
            double cs[2], ws[2];
            run(dir, n, sc, no_sync, cs, ws);
            for (int p = 0; p < 2; p++) {
                cpu[sc][p] += cs[p];
                wall[sc][p] += ws[p];
                printf("  round %u %-10s %-5s %6.1f us CPU/device %8.0f devices/s\n", r + 1,
                       sc ? "scattered" : "sequential", pass_name[p], cs[p] / n * 1e6, n / ws[p]);
            }
        }
    for (int sc = 0; sc < 2; sc++)
        for (int p = 0; p < 2; p++)
            printf("%-10s %-5s %6.1f us CPU/device %8.0f devices/s\n",
                   sc ? "scattered" : "sequential", pass_name[p], cpu[sc][p] / rounds / n * 1e6,
                   n * rounds / wall[sc][p]);
    printf("scattered / sequential CPU per device: first sessions %.2fx, again %.2fx\n",
           cpu[1][0] / cpu[0][0], cpu[1][1] / cpu[0][1]);
    rmdir(dir);
    return 0;
}
