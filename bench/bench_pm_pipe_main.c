/*
 * bench-pm-pipe: end-to-end PM ingestion through core/pm_pipe.c (spooled file -> read ->
 * parse -> HM_DB_PM batch -> group commit with fsync -> spool unlink) on ONE pipeline
 * thread, against the floor (a bare libxml2 SAX2 push pass with empty callbacks over the
 * same bytes, same run).
 *
 *   bench-pm-pipe [files=400] [dir=/tmp] [no_sync=0] [uploads_in_flight=64]
 *   env: BENCH_PM_ROUNDS=3 (floor + ingestion rounds), BENCH_PM_E2E=0 (skip end to end),
 *        BENCH_PM_STATS=1 (LMDB commit statistics), BENCH_PM_KEEP=1 (keep spool and store),
 *        BENCH_PM_MODE=upload (rounds measure the steady state: files come in through
 *        hm_pm_pipe_spool(), the upload path after HTTP; default: recovery from the spool)
 *
 * Generates <files> realistic HeNB TS 32.435 files (the generator of bench-pm: ~330 LTE
 * counters, 1-5 cells, 19-45 KB), drops them in a fresh <dir>/bench-pm-pipe-XXXXXX/pm-spool
 * with TS 32.432 names, then starts the pipeline (which re-ingests what it finds in the
 * spool, the crash-recovery path) and times until every file is committed. Prints MB/s,
 * files/s, measurements/s, the process CPU seconds (pipeline + store writer threads), the
 * ratio to the floor and the HeNBs at a 15-minute period one pipeline core sustains.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <zlib.h>

#include "bench/pm_gen.h"
#include "core/buf.h"
#include "proto/pm.h"
#include "core/log.h"
#include <stdbool.h>
#include <sys/stat.h>
#include "core/pm_pipe.h"
#include "storage/store.h"

/* The benchmark files (bench/pm_gen.h), the same every run. */
static struct hm_pm_gen gen = {.rng = 88172645463325252ull};


static double proc_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---- per-thread CPU (ns, /proc/self/task/<tid>/schedstat) -------------------------- */

struct tcpu {
    int tid;
    char name[32];
    double cpu;
};

static int threads_cpu(struct tcpu *t, int max)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[128];
        t[n].tid = atoi(e->d_name);
        t[n].name[0] = '\0';
        t[n].cpu = 0;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(t[n].name, sizeof(t[n].name), f))
                t[n].name[strcspn(t[n].name, "\n")] = '\0';
            fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
        f = fopen(path, "r");
        if (f) {
            if (fgets(buf, sizeof(buf), f))
                t[n].cpu = strtod(buf, NULL) * 1e-9;
            fclose(f);
        }
        n++;
    }
    closedir(d);
    return n;
}

/* CPU seconds of the threads named <prefix>* (or, with NULL, of the threads that are none
 * of main/hm-pm-*: the store writer) between two snapshots; threads that ended are lost,
 * so snapshots are taken while the pipeline runs. */
static double cpu_of(const struct tcpu *a, int na, const struct tcpu *b, int nb,
                     const char *prefix, int main_tid)
{
    double s = 0;
    for (int i = 0; i < nb; i++) {
        bool match = prefix ? strncmp(b[i].name, prefix, strlen(prefix)) == 0
                            : b[i].tid != main_tid && strncmp(b[i].name, "hm-pm-", 6) != 0 &&
                                  strncmp(b[i].name, "iou-", 4) != 0;
        if (!match)
            continue;
        double before = 0;
        for (int k = 0; k < na; k++)
            if (a[k].tid == b[i].tid)
                before = a[k].cpu;
        s += b[i].cpu - before;
    }
    return s;
}

struct run {
    double wall, worker, writer, spool, janitor, all;
    uint64_t meas;
};

struct upl {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int outstanding, bad;
};

static void upl_done(void *arg, int status)
{
    struct upl *u = arg;
    pthread_mutex_lock(&u->mu);
    u->outstanding--;
    if (status != 201)
        u->bad++;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

/* One run in a fresh <base>/bench-pm-pipe-XXXXXX: <upload> false = the files are put in the
 * spool first and the pipeline started on them (ingestion only: parse + LMDB commit + unlink);
 * true = the pipeline starts empty and the files come through hm_pm_pipe_spool() with at
 * most <conc> outstanding, like concurrent uploads (spool write + fdatasync + rename +
 * folder fsync, then ingestion). Times until every file is committed. */
static int run_once(const char *base, struct hm_buf *files, int nfiles, bool no_sync,
                    bool upload, int conc, struct run *out)
{
    char dir[4096], spool[4200], path[4400], sdir[4200];
    snprintf(dir, sizeof(dir), "%s/bench-pm-pipe-XXXXXX", base);
    if (!mkdtemp(dir))
        return -1;
    snprintf(spool, sizeof(spool), "%s/pm-spool", dir);
    snprintf(sdir, sizeof(sdir), "%s/store", dir);
    mkdir(spool, 0700);
    char (*names)[128] = calloc((size_t)nfiles, sizeof(*names));
    for (int i = 0; i < nfiles; i++) {
        /* TS 32.432 name: A<date>.<begin>-<end>_<sender>.xml */
        snprintf(names[i], sizeof(names[i]), "A20261126.%02d00+0000-%02d15+0000_HeNB-%06d.xml",
                 10 + (i % 4), 10 + (i % 4), i + 1);
        if (upload)
            continue;
        snprintf(path, sizeof(path), "%s/%s.pm", spool, names[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, files[i].base, files[i].len) != (ssize_t)files[i].len)
            return -1;
        close(fd);
    }
    if (!upload)
        sync(); /* the spool files are on disk before the clock starts, as after a crash */
    struct hm_store_opts so = {.map_size = 256ull << 20, .map_max = 8ull << 30,
                               .no_sync = no_sync};
    struct hm_store *store = NULL;
    if (hm_store_open(sdir, &so, &store) < 0)
        return -1;
    struct hm_pm_pipe_opts po = {.data_dir = dir, .upload_path = "/pm/",
                                 .spool_max_files = 1u << 30, .spool_max_bytes = 1ull << 40,
                                 .max_file_bytes = 64u << 20, .threads = 1, .realm = "hems"};
    char err[256];
    struct hm_pm_pipe *p = NULL;
    struct tcpu t0[64], t1[64];
    int main_tid = (int)gettid();
    int n0 = threads_cpu(t0, 64);
    double pc0 = proc_cpu(), mc0 = hm_pm_thread_cpu();
    double w0 = hm_pm_wall();
    if (hm_pm_pipe_create(&po, store, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    struct upl u = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    for (int i = 0; upload && i < nfiles; i++) {
        pthread_mutex_lock(&u.mu);
        while (u.outstanding >= conc)
            pthread_cond_wait(&u.cv, &u.mu);
        u.outstanding++;
        pthread_mutex_unlock(&u.mu);
        char *d = malloc(files[i].len); /* the HTTP handler's copy of the body */
        memcpy(d, files[i].base, files[i].len);
        if (hm_pm_pipe_spool(p, names[i], d, files[i].len, upl_done, &u) < 0)
            return -1;
    }
    struct hm_pm_pipe_stats st;
    do {
        usleep(500);
        hm_pm_pipe_stats(p, &st);
    } while (st.files_ingested + st.files_quarantined + st.uploads_dup < (uint64_t)nfiles);
    out->wall = hm_pm_wall() - w0;
    int n1 = threads_cpu(t1, 64);
    /* every thread but main (which only plays the HTTP handlers' body copy), including
     * io_uring workers that have already exited */
    out->all = (proc_cpu() - pc0) - (hm_pm_thread_cpu() - mc0);
    struct hm_store_stats ss;
    if (getenv("BENCH_PM_STATS") && hm_store_stats(store, &ss) == 0) {
        fprintf(stderr, "store: %llu commits, %llu batches; commit_us log2 histogram:",
                (unsigned long long)ss.commits, (unsigned long long)ss.batches);
        for (int b = 0; b < HM_STORE_HIST_BUCKETS; b++)
            if (ss.commit_us[b])
                fprintf(stderr, " [%d]=%llu", 1 << b, (unsigned long long)ss.commit_us[b]);
        fprintf(stderr, "; batches/commit:");
        for (int b = 0; b < HM_STORE_HIST_BUCKETS; b++)
            if (ss.batches_per_commit[b])
                fprintf(stderr, " [%d]=%llu", 1 << b, (unsigned long long)ss.batches_per_commit[b]);
        fprintf(stderr, "\n");
    }
    hm_pm_pipe_destroy(p);
    hm_store_close(store);
    free(names);
    if (st.files_ingested != (uint64_t)nfiles || u.bad) {
        fprintf(stderr, "only %llu of %d files ingested (%d uploads not 201)\n",
                (unsigned long long)st.files_ingested, nfiles, u.bad);
        return -1;
    }
    out->worker = cpu_of(t0, n0, t1, n1, "hm-pm-work", main_tid);
    out->spool = cpu_of(t0, n0, t1, n1, "hm-pm-spool", main_tid);
    out->janitor = cpu_of(t0, n0, t1, n1, "hm-pm-janitor", main_tid);
    out->writer = cpu_of(t0, n0, t1, n1, NULL, main_tid);
    out->meas = st.meas_ingested;
    if (getenv("BENCH_PM_KEEP")) { /* the store stays for inspection (mdb_dump) */
        fprintf(stderr, "kept %s\n", dir);
        return 0;
    }
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void report(const char *what, const struct run *r, int nfiles, double mb, double floor_cpu)
{
    double cpu = r->all;
    printf("%s\n", what);
    printf("  wall   %7.3f s: %7.1f MB/s %7.0f files/s %9.0f meas/s  ratio to floor %.2f\n",
           r->wall, mb / r->wall, nfiles / r->wall, (double)r->meas / r->wall,
           floor_cpu / r->wall);
    printf("  CPU    %.3f s: pipeline thread %.3f, store writer %.3f, spool thread %.3f, "
           "janitor %.3f, io_uring workers and rest %.3f\n", r->all, r->worker, r->writer,
           r->spool, r->janitor, r->all - r->worker - r->writer - r->spool - r->janitor);
    printf("  per CPU-second of all of them: %7.1f MB/s %7.0f files/s  ratio to floor %.2f\n",
           mb / cpu, nfiles / cpu, floor_cpu / cpu);
    printf("  pipeline thread alone:         %7.1f MB/s %7.0f files/s  ratio to floor %.2f\n",
           mb / r->worker, nfiles / r->worker, floor_cpu / r->worker);
    printf("  HeNBs at a 15-minute period per core (all threads' CPU): %.0f; by wall: %.0f\n",
           nfiles / cpu * 900.0, nfiles / r->wall * 900.0);
}

int main(int argc, char **argv)
{
    int nfiles = argc > 1 ? atoi(argv[1]) : 400;
    const char *base = argc > 2 ? argv[2] : "/tmp";
    bool no_sync = argc > 3 && atoi(argv[3]) != 0;
    int conc = argc > 4 ? atoi(argv[4]) : 64;
    if (nfiles < 1 || conc < 1)
        return 2;
    hm_log_set_level(HM_LOG_WARN);

    struct hm_buf *files = hm_xcalloc((size_t)nfiles, sizeof *files);
    size_t total = 0;
    for (int i = 0; i < nfiles; i++) {
        hm_pm_gen_bench_file(&gen, &files[i], i + 1, 1 + (i % 5), (i % 4) * 15);
        total += files[i].len;
    }

    /* Rounds (BENCH_PM_ROUNDS, default 3): each one measures the floor (best of 3 passes)
     * and then ingests from a fresh spool and store, so every ratio compares two figures
     * taken back to back; the end-to-end run (BENCH_PM_E2E=0 skips it) follows the last
     * round. The machine is shared: the spread over the rounds is printed. */
    int rounds = getenv("BENCH_PM_ROUNDS") ? atoi(getenv("BENCH_PM_ROUNDS")) : 3;
    bool do_e2e = !getenv("BENCH_PM_E2E") || atoi(getenv("BENCH_PM_E2E")) != 0;
    /* upload mode: every round is an end-to-end run (spool + ingestion, the steady state) */
    bool up = getenv("BENCH_PM_MODE") && strcmp(getenv("BENCH_PM_MODE"), "upload") == 0;
    double r_ing[64];
    if (rounds < 1)
        rounds = 1;
    double mb = (double)total / 1e6;
    xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(hm_pm_floor_sax(), NULL, NULL, 0, NULL);
    double floor_cpu = 1e9, r_all[64], r_work[64];
    struct run ing, e2e;
    for (int k = 0; k < rounds && k < 64; k++) {
        double fc = 1e9;
        for (int r = 0; r < 3; r++) {
            double t0 = hm_pm_thread_cpu();
            for (int i = 0; i < nfiles; i++)
                if (hm_pm_floor_parse(ctxt, files[i].base, files[i].len) != 0)
                    return 1;
            double t = hm_pm_thread_cpu() - t0;
            fc = t < fc ? t : fc;
        }
        if (run_once(base, files, nfiles, no_sync, up, conc, &ing) < 0)
            return 1;
        r_all[k] = fc / ing.all;
        r_work[k] = fc / ing.worker;
        r_ing[k] = fc / (ing.worker + ing.writer + ing.janitor);
        floor_cpu = fc;
        if (up)
            printf("round %d: floor %6.1f MB/s; upload path CPU %.3f s (spool %.3f, pipeline "
                   "%.3f, writer %.3f, janitor %.3f, rest %.3f); ratio all threads %.3f, "
                   "ingestion threads %.3f, pipeline thread %.3f\n", k + 1, mb / fc, ing.all,
                   ing.spool, ing.worker, ing.writer, ing.janitor,
                   ing.all - ing.spool - ing.worker - ing.writer - ing.janitor, r_all[k],
                   r_ing[k], r_work[k]);
        else
            printf("round %d: floor %6.1f MB/s; ingestion CPU %.3f s (pipeline %.3f, writer "
                   "%.3f, janitor %.3f); ratio all threads %.3f, pipeline thread %.3f\n", k + 1,
                   mb / fc, ing.all, ing.worker, ing.writer, ing.janitor, r_all[k], r_work[k]);
        fflush(stdout);
    }
    xmlFreeParserCtxt(ctxt);
    if (rounds > 64)
        rounds = 64;
    if (up)
        do_e2e = false; /* the rounds were end-to-end runs */
    if (do_e2e && run_once(base, files, nfiles, no_sync, true, conc, &e2e) < 0)
        return 1;
    double rs[3][64];
    for (int k = 0; k < rounds; k++) {
        rs[0][k] = r_all[k];
        rs[1][k] = r_ing[k];
        rs[2][k] = r_work[k];
    }
    for (int m = 0; m < 3; m++) /* insertion sort for the medians */
        for (int i = 1; i < rounds; i++)
            for (int j = i; j > 0 && rs[m][j - 1] > rs[m][j]; j--) {
                double t = rs[m][j];
                rs[m][j] = rs[m][j - 1];
                rs[m][j - 1] = t;
            }
    double amin = 1e9, amax = 0, wmin = 1e9, wmax = 0;
    for (int k = 0; k < rounds; k++) {
        amin = r_all[k] < amin ? r_all[k] : amin;
        amax = r_all[k] > amax ? r_all[k] : amax;
        wmin = r_work[k] < wmin ? r_work[k] : wmin;
        wmax = r_work[k] > wmax ? r_work[k] : wmax;
    }
    printf("files %d, %.1f MB (%.1f KB average), %llu measurements, store fsync %s, "
           "%d uploads in flight\n", nfiles, mb, mb * 1e3 / nfiles,
           (unsigned long long)ing.meas, no_sync ? "off" : "on", conc);
    printf("ingestion ratio to floor over %d rounds: all ingestion threads %.2f-%.2f, "
           "pipeline thread alone %.2f-%.2f\n", rounds, amin, amax, wmin, wmax);
    printf("%s, ratio to floor, min / median / max over %d rounds: all threads %.2f / %.2f / "
           "%.2f; pipeline + writer + janitor %.2f / %.2f / %.2f; pipeline thread %.2f / %.2f "
           "/ %.2f\n", up ? "upload path (spool + ingestion)" : "ingestion from the spool",
           rounds, rs[0][0], rs[0][rounds / 2], rs[0][rounds - 1], rs[1][0],
           rs[1][rounds / 2], rs[1][rounds - 1], rs[2][0], rs[2][rounds / 2],
           rs[2][rounds - 1]);
    printf("last round:\n");
    printf("floor (libxml2 SAX2, empty callbacks, 1 core CPU): %7.1f MB/s %7.0f files/s\n",
           mb / floor_cpu, nfiles / floor_cpu);
    report(up ? "upload path (spool + parse + LMDB group commit + spool removal):"
              : "ingestion from the spool (parse + LMDB group commit + unlink):",
           &ing, nfiles, mb, floor_cpu);
    if (do_e2e)
        report("end to end (spool write + fdatasync + rename + folder fsync, then ingestion):",
               &e2e, nfiles, mb, floor_cpu);
    for (int i = 0; i < nfiles; i++)
        hm_buf_free(&files[i]);
    free(files);
    return 0;
}
