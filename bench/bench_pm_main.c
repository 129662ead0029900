/*
 * bench-pm: throughput of the PM file parser (proto/pm.c) against the floor, a bare
 * libxml2 SAX2 push pass with empty callbacks over the same bytes, in the same run.
 *
 *   bench-pm [files=200] [rounds=5] [bigfile_mb=50]
 *
 * Generates <files> realistic HeNB TS 32.435 files (15-minute period, ~330 LTE counters in
 * six measInfo blocks, both encodings, 1-5 cells, 19-45 KB each), then for <rounds> rounds
 * times each parser over all files (best round wins; thread CPU time, so other load on a
 * shared machine skews less) and prints MB/s, files/s, the ratio to the floor and how many
 * HeNBs at a 15-minute period one core sustains. Last, it writes one <bigfile_mb> MB file
 * to /tmp (unlinked) and parses it from the fd, printing the process's peak RSS, which
 * stays far below the file size (bounded memory).
 */
#include <fcntl.h>
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

/* The benchmark files (bench/pm_gen.h), the same every run. */
static struct hm_pm_gen gen = {.rng = 88172645463325252ull};


/* ---- ours: a no-op callback that still consumes the converted value ------------- */

struct sink {
    double sum;
    uint64_t n;
};

static int noop_cb(void *arg, const struct hm_pm_meas *m)
{
    struct sink *s = arg;
    if (!(m->flags & (HM_PM_NIL | HM_PM_TEXT)))
        s->sum += m->value;
    s->n += m->counter.len != 0;
    return 0;
}

static unsigned char *gz(const struct hm_buf *f, size_t *zl)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, f->len);
    unsigned char *o = hm_xmalloc(cap);
    z.next_in = (unsigned char *)f->base;
    z.avail_in = (unsigned)f->len;
    z.next_out = o;
    z.avail_out = (unsigned)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    *zl = z.total_out;
    deflateEnd(&z);
    return o;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    int nfiles = argc > 1 ? atoi(argv[1]) : 200;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    int big_mb = argc > 3 ? atoi(argv[3]) : 50;
    if (nfiles < 1 || rounds < 1 || big_mb < 0)
        return 2;

    struct hm_buf *files = hm_xcalloc((size_t)nfiles, sizeof *files);
    unsigned char **zfiles = hm_xcalloc((size_t)nfiles, sizeof *zfiles);
    size_t *zlen = hm_xcalloc((size_t)nfiles, sizeof *zlen);
    size_t total = 0, ztotal = 0, minsz = SIZE_MAX, maxsz = 0;
    for (int i = 0; i < nfiles; i++) {
        hm_pm_gen_bench_file(&gen, &files[i], i + 1, 1 + (i % 5), (i % 4) * 15);
        total += files[i].len;
        minsz = HM_MIN(minsz, files[i].len);
        maxsz = HM_MAX(maxsz, files[i].len);
        zfiles[i] = gz(&files[i], &zlen[i]);
        ztotal += zlen[i];
    }
    if (getenv("BENCH_PM_DUMP")) { /* write one sample file for inspection */
        fwrite(files[1].base, 1, files[1].len, stdout);
        return 0;
    }

    xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(hm_pm_floor_sax(), NULL, NULL, 0, NULL);
    struct hm_pm_parser *p = hm_pm_parser_create();
    if (!ctxt || !p)
        return 1;

    double best_floor = 1e9, best_pm = 1e9, best_gz = 1e9, wall_floor = 0, wall_pm = 0;
    struct sink s = {0};
    uint64_t meas_per_pass = 0;
    for (int r = 0; r < rounds; r++) {
        double w0 = hm_pm_wall(), t0 = hm_pm_thread_cpu();
        for (int i = 0; i < nfiles; i++)
            if (hm_pm_floor_parse(ctxt, files[i].base, files[i].len) != 0) {
                fprintf(stderr, "floor: file %d failed\n", i);
                return 1;
            }
        double t1 = hm_pm_thread_cpu(), w1 = hm_pm_wall();
        s.n = 0;
        for (int i = 0; i < nfiles; i++) {
            int rc = hm_pm_parse_buf(p, files[i].base, files[i].len, noop_cb, &s, NULL);
            if (rc) {
                fprintf(stderr, "pm: file %d: %s\n", i, hm_pm_errmsg(p));
                return 1;
            }
        }
        double t2 = hm_pm_thread_cpu(), w2 = hm_pm_wall();
        meas_per_pass = s.n;
        for (int i = 0; i < nfiles; i++)
            if (hm_pm_parse_buf(p, zfiles[i], zlen[i], noop_cb, &s, NULL) != 0)
                return 1;
        double t3 = hm_pm_thread_cpu();
        if (t1 - t0 < best_floor) {
            best_floor = t1 - t0;
            wall_floor = w1 - w0;
        }
        if (t2 - t1 < best_pm) {
            best_pm = t2 - t1;
            wall_pm = w2 - w1;
        }
        best_gz = HM_MIN(best_gz, t3 - t2);
    }
    double mb = (double)total / 1e6;
    printf("files: %d generated, %zu..%zu bytes (mean %.1f KB), %.1f MB total, "
           "%lu measurements per pass, gzip %.1f MB\n",
           nfiles, minsz, maxsz, (double)total / nfiles / 1024, mb,
           (unsigned long)meas_per_pass, (double)ztotal / 1e6);
    printf("best of %d rounds, thread CPU time (wall in brackets):\n", rounds);
    printf("  floor (libxml2 SAX2, empty callbacks): %8.1f MB/s %9.0f files/s  [%.1f MB/s wall]\n",
           mb / best_floor, nfiles / best_floor, mb / wall_floor);
    printf("  hm_pm (no-op callback, values converted): %5.1f MB/s %9.0f files/s  [%.1f MB/s wall]"
           "  %.2f M meas/s\n",
           mb / best_pm, nfiles / best_pm, mb / wall_pm, meas_per_pass / best_pm / 1e6);
    printf("  hm_pm on gzip input:                   %8.1f MB/s %9.0f files/s  (MB of XML)\n",
           mb / best_gz, nfiles / best_gz);
    printf("  ratio hm_pm / floor: %.2fx\n", best_floor / best_pm);
    printf("  one core sustains %.0f HeNBs at a 15-minute period (%.0f with gzip), parsing only\n",
           nfiles / best_pm * 900, nfiles / best_gz * 900);

    if (big_mb > 0) {
        char path[] = "/tmp/bench-pm-XXXXXX";
        int fd = mkstemp(path);
        if (fd == -1)
            return 1;
        unlink(path);
        struct hm_buf chunk = {0};
        /* one long file: header of file 0, then its measInfo blocks repeated */
        const char *mstart = strstr(files[0].base, "    <measInfo");
        const char *mend = strstr(files[0].base, "  </measData>");
        size_t written = 0;
        hm_buf_append(&chunk, files[0].base, (size_t)(mstart - files[0].base));
        while (written + chunk.len < (size_t)big_mb << 20) {
            hm_buf_append(&chunk, mstart, (size_t)(mend - mstart));
            if (chunk.len > (1u << 20)) {
                if (write(fd, chunk.base, chunk.len) != (ssize_t)chunk.len)
                    return 1;
                written += chunk.len;
                hm_buf_reset(&chunk);
            }
        }
        hm_buf_append_str(&chunk, mend);
        if (write(fd, chunk.base, chunk.len) != (ssize_t)chunk.len)
            return 1;
        written += chunk.len;
        hm_buf_free(&chunk);
        lseek(fd, 0, SEEK_SET);
        double t0 = hm_pm_thread_cpu();
        s.n = 0;
        int rc = hm_pm_parse_fd(p, fd, noop_cb, &s, NULL);
        double t1 = hm_pm_thread_cpu();
        close(fd);
        if (rc) {
            fprintf(stderr, "big file: %s\n", hm_pm_errmsg(p));
            return 1;
        }
        printf("  %.1f MB single file from fd: %.1f MB/s, %lu measurements; peak RSS of the "
               "whole process %.1f MB (generated test files included)\n",
               (double)written / 1e6, (double)written / 1e6 / (t1 - t0), (unsigned long)s.n,
               (double)maxrss_kb() / 1024);
    }

    hm_pm_parser_destroy(p);
    xmlFreeParserCtxt(ctxt);
    for (int i = 0; i < nfiles; i++) {
        hm_buf_free(&files[i]);
        free(zfiles[i]);
    }
    free(files);
    free(zfiles);
    free(zlen);
    return s.sum == -1.0; /* keeps the sums live */
}
