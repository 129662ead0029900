/*
 * Crash safety: a child process writes batches through the store and reports on a pipe the
 * id of every batch whose completion fired; the parent SIGKILLs it at a random moment,
 * reopens the environment and asserts that every acknowledged id is present. Repeated
 * HM_STORE_CRASH_ROUNDS times (default 4, a few seconds; set e.g. 200 for the long run),
 * all rounds on the same environment so each child also starts from a crashed one.
 */
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "store_test.h"

#define SLOTS 32

struct child_slot {
    struct hm_store_batch b;
    uint64_t id;
};

static int pipe_wr;
static sem_t slots_free;
static _Atomic int slot_busy[SLOTS];
static struct child_slot slots[SLOTS];

static void child_done(void *arg, int status)
{
    struct child_slot *sl = arg;
    if (status != 0)
        _exit(3);
    /* 8-byte writes are atomic on a pipe (<= PIPE_BUF): the parent never sees half an id. */
    if (write(pipe_wr, &sl->id, sizeof(sl->id)) != sizeof(sl->id))
        _exit(4);
    atomic_store(&slot_busy[sl - slots], 0);
    sem_post(&slots_free);
}

static void child_main(const char *dir, uint64_t first_id)
{
    struct hm_store *s;
    if (hm_store_open(dir, NULL, &s) != 0)
        _exit(2);
    sem_init(&slots_free, 0, SLOTS);
    for (uint64_t id = first_id;; id++) {
        while (sem_wait(&slots_free) == -1)
            ;
        unsigned j = 0;
        while (atomic_load(&slot_busy[j]))
            j++;
        atomic_store(&slot_busy[j], 1);
        struct child_slot *sl = &slots[j];
        sl->id = id;
        hm_store_batch_reset(&sl->b);
        /* two records per batch: both or neither must survive */
        if (put_dev(&sl->b, (unsigned)id, id) != 0)
            _exit(5);
        char k[64];
        int kl = dev_key(k, sizeof(k), (unsigned)id);
        if (hm_store_batch_put(&sl->b, HM_DB_PARAMS, hm_slice(k, (size_t)kl),
                               hm_slice((char *)&sl->id, sizeof(sl->id))) != 0)
            _exit(5);
        while (hm_store_submit(s, &sl->b, child_done, sl) == -EAGAIN)
            sched_yield();
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

START_TEST(sigkill_loses_no_acknowledged_batch)
{
    char dir[256];
    tmpdir_make(dir, "crash");
    const char *env = getenv("HM_STORE_CRASH_ROUNDS");
    int rounds = env ? atoi(env) : 4;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    fprintf(stderr, "crash test: %d rounds, seed %u\n", rounds, seed);
    size_t cap = 1 << 16, total = 0;
    uint64_t *acked = malloc(cap * sizeof(*acked));

    for (int round = 0; round < rounds; round++) {
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        uint64_t first = (uint64_t)round * 1000000 + 1;
        pid_t pid = fork();
        ck_assert_int_ne(pid, -1);
        if (pid == 0) {
            close(p[0]);
            pipe_wr = p[1];
            child_main(dir, first);
        }
        close(p[1]);
        /*
         * Most rounds kill 0-250 ms after the first acknowledgement (sanitizer builds start
         * slowly, so a fixed delay could kill before any write); every fourth kills within
         * 30 ms of the start, during open or recovery of the previous crash.
         */
        int early = round % 4 == 3;
        uint64_t delay = early ? (uint64_t)(rand() % 30) : (uint64_t)(rand() % 250);
        uint64_t kill_at = early ? now_ms() + delay : UINT64_MAX;
        size_t round_acked = 0;
        int killed = 0;
        for (;;) {
            uint64_t now = now_ms();
            if (!killed && now >= kill_at) {
                kill(pid, SIGKILL);
                killed = 1;
            }
            struct pollfd pfd = {p[0], POLLIN, 0};
            int wait = killed || kill_at == UINT64_MAX ? 1000 : (int)(kill_at - now);
            int prc = poll(&pfd, 1, wait);
            if (prc <= 0)
                continue;
            uint64_t ids[512];
            ssize_t n = read(p[0], ids, sizeof(ids));
            if (n == 0)
                break; /* child gone and pipe drained */
            ck_assert_int_gt(n, 0);
            ck_assert_int_eq(n % 8, 0);
            if (kill_at == UINT64_MAX)
                kill_at = now_ms() + delay;
            for (ssize_t i = 0; i < n / 8; i++) {
                if (total == cap)
                    acked = realloc(acked, (cap *= 2) * sizeof(*acked));
                acked[total++] = ids[i];
                round_acked++;
            }
        }
        close(p[0]);
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child exited %d", st);

        /* The environment must open cleanly and hold every acknowledged batch, whole. */
        struct hm_store *s;
        ck_assert_int_eq(hm_store_open(dir, NULL, &s), 0);
        struct hm_store_reader *r;
        ck_assert_int_eq(hm_store_reader_open(s, &r), 0);
        ck_assert_int_eq(hm_store_read_begin(r), 0);
        for (size_t i = 0; i < total; i++) {
            uint64_t ms;
            ck_assert_msg(get_dev(r, (unsigned)acked[i], &ms) == 0, "acked id %llu lost",
                          (unsigned long long)acked[i]);
            ck_assert_uint_eq(ms, acked[i]);
            char k[64];
            int kl = dev_key(k, sizeof(k), (unsigned)acked[i]);
            struct hm_slice v;
            ck_assert_int_eq(hm_store_get(r, HM_DB_PARAMS, hm_slice(k, (size_t)kl), &v), 0);
            ck_assert_uint_eq(v.len, 8);
        }
        hm_store_read_end(r);
        hm_store_reader_close(r);
        struct hm_store_stats sst;
        ck_assert_int_eq(hm_store_stats(s, &sst), 0);
        /* every batch wrote both records or neither */
        ck_assert_uint_eq(sst.db[HM_DB_DEVICES].entries, sst.db[HM_DB_PARAMS].entries);
        ck_assert_uint_ge(sst.db[HM_DB_DEVICES].entries, total);
        hm_store_close(s);
        fprintf(stderr, "round %d: %zu acknowledged, %llu stored\n", round, round_acked,
                (unsigned long long)sst.db[HM_DB_DEVICES].entries);
    }
    ck_assert_uint_gt(total, 0);
    free(acked);
    rm_rf(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sigkill_loses_no_acknowledged_batch);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
