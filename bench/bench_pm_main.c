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

#include "core/buf.h"
#include "proto/pm.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

struct block {
    const char *id;
    const char *base[12];
    const char *sub[10];
    bool list_form;
};

/* TS 32.425-style names; each base counter expands over its sub-counters (causes, QCIs). */
static const struct block blocks[] = {
    {"EUtranCell-RRC",
     {"RRC.ConnEstabAtt", "RRC.ConnEstabSucc", "RRC.ConnEstabFail", "RRC.ConnReEstabAtt",
      "RRC.ConnReEstabSucc", "RRC.ConnReEstabFail", NULL},
     {"emergency", "highPriorityAccess", "mt-Access", "mo-Signalling", "mo-Data",
      "delayTolerantAccess", "Sum", NULL},
     false},
    {"EUtranCell-ERAB",
     {"ERAB.EstabInitAttNbr", "ERAB.EstabInitSuccNbr", "ERAB.EstabAddAttNbr",
      "ERAB.EstabAddSuccNbr", "ERAB.RelEnbNbr", "ERAB.RelActNbr", "ERAB.RelAttNbr",
      "ERAB.UsageNbrMean", NULL},
     {"QCI1", "QCI2", "QCI3", "QCI4", "QCI5", "QCI6", "QCI7", "QCI8", "QCI9", "Sum"},
     false},
    {"EUtranCell-DRB",
     {"DRB.UEThpDl", "DRB.UEThpUl", "DRB.IPVolDl", "DRB.IPVolUl", "DRB.PdcpSduBitrateDl",
      "DRB.PdcpSduBitrateUl", "DRB.PdcpSduDelayDl", "DRB.PdcpSduDropRateDl", NULL},
     {"QCI1", "QCI2", "QCI5", "QCI6", "QCI7", "QCI8", "QCI9", "Sum", NULL},
     true},
    {"EUtranCell-Radio",
     {"RRU.PrbTotDl", "RRU.PrbTotUl", "RRU.PrbUsedDl", "RRU.PrbUsedUl", "RRU.RachPreambleA",
      "RRU.RachPreambleB", "RRC.ConnMean", "RRC.ConnMax", "DRB.UEActiveDl", "DRB.UEActiveUl",
      NULL},
     {"Mean", "Max", NULL},
     true},
    {"EUtranCell-HO",
     {"HO.ExeAttOut", "HO.ExeSuccOut", "HO.PrepAttOut", "HO.PrepSuccOut", "HO.IntraFreqAtt",
      "HO.InterFreqAtt", "HO.ToUtranAtt", "HO.ToGeranAtt", NULL},
     {"X2", "S1", "Sum", NULL},
     false},
    {"HeNB-CSG",
     {"CSG.MeanNbrUsr", "CSG.AttInboundMobility", "CSG.SuccInboundMobility",
      "CSG.FailedInboundMobility", "UECNTX.RelReq", "S1SIG.ConnEstabAtt", NULL},
     {"Cause1", "Cause2", "Cause3", "Sum", NULL},
     false},
};

static size_t ncounters(const struct block *b)
{
    size_t nb = 0, ns = 0;
    while (nb < 12 && b->base[nb])
        nb++;
    while (ns < 10 && b->sub[ns])
        ns++;
    return nb * ns;
}

static void counter_name(struct hm_buf *o, const struct block *b, size_t i)
{
    size_t ns = 0;
    while (ns < 10 && b->sub[ns])
        ns++;
    hm_buf_printf(o, "%s.%s", b->base[i / ns], b->sub[i % ns]);
}

static void value(struct hm_buf *o)
{
    uint32_t r = rnd();
    if (r % 97 == 0)
        hm_buf_append_lit(o, "NIL");
    else if (r % 5 == 0)
        hm_buf_printf(o, "%u.%02u", (r >> 8) % 1000, (r >> 20) % 100);
    else
        hm_buf_printf(o, "%u", (r >> 4) % (r & 1 ? 100000u : 1000u));
}

static void gen_file(struct hm_buf *o, int henb, int cells, int minute)
{
    char t0[64], t1[64];
    snprintf(t0, sizeof t0, "2026-11-26T%02d:%02d:00+00:00", 14 + minute / 60, minute % 60);
    snprintf(t1, sizeof t1, "2026-11-26T%02d:%02d:00+00:00", 14 + (minute + 15) / 60,
             (minute + 15) % 60);
    hm_buf_printf(o,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<measCollecFile xmlns=\"http://www.3gpp.org/ftp/specs/archive/32_series/"
                  "32.435#measCollec\">\n"
                  "  <fileHeader fileFormatVersion=\"32.435 V10.0\" vendorName=\"ExampleRAN\" "
                  "dnPrefix=\"SubNetwork=HeMS-1\">\n"
                  "    <fileSender localDn=\"ManagedElement=HeNB-%06d\" elementType=\"HeNB\"/>\n"
                  "    <measCollec beginTime=\"%s\"/>\n  </fileHeader>\n  <measData>\n"
                  "    <managedElement localDn=\"ManagedElement=HeNB-%06d\" swVersion=\"4.2\"/>\n",
                  henb, t0, henb);
    for (size_t bi = 0; bi < HM_ARRAY_SIZE(blocks); bi++) {
        const struct block *b = &blocks[bi];
        size_t n = ncounters(b);
        hm_buf_printf(o,
                      "    <measInfo measInfoId=\"%s\">\n      <job jobId=\"pm-1\"/>\n"
                      "      <granPeriod duration=\"PT900S\" endTime=\"%s\"/>\n"
                      "      <repPeriod duration=\"PT900S\"/>\n",
                      b->id, t1);
        if (b->list_form) {
            hm_buf_append_lit(o, "      <measTypes>");
            for (size_t i = 0; i < n; i++) {
                if (i)
                    hm_buf_append_lit(o, " ");
                counter_name(o, b, i);
            }
            hm_buf_append_lit(o, "</measTypes>\n");
        } else {
            for (size_t i = 0; i < n; i++) {
                hm_buf_printf(o, "      <measType p=\"%zu\">", i + 1);
                counter_name(o, b, i);
                hm_buf_append_lit(o, "</measType>\n");
            }
        }
        for (int c = 1; c <= cells; c++) {
            hm_buf_printf(o, "      <measValue measObjLdn=\"ENBFunction=1,EUtranCellFDD=%d\">\n",
                          c);
            if (b->list_form) {
                hm_buf_append_lit(o, "        <measResults>");
                for (size_t i = 0; i < n; i++) {
                    if (i)
                        hm_buf_append_lit(o, " ");
                    value(o);
                }
                hm_buf_append_lit(o, "</measResults>\n");
            } else {
                for (size_t i = 0; i < n; i++) {
                    hm_buf_printf(o, "        <r p=\"%zu\">", i + 1);
                    value(o);
                    hm_buf_append_lit(o, "</r>\n");
                }
            }
            if (rnd() % 20 == 0)
                hm_buf_append_lit(o, "        <suspect>true</suspect>\n");
            hm_buf_append_lit(o, "      </measValue>\n");
        }
        hm_buf_append_lit(o, "    </measInfo>\n");
    }
    hm_buf_printf(o,
                  "  </measData>\n  <fileFooter>\n    <measCollec endTime=\"%s\"/>\n"
                  "  </fileFooter>\n</measCollecFile>\n",
                  t1);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the floor: libxml2 SAX2 push with empty callbacks ---------------------------- */

static void e_start(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u, int nn,
                    const xmlChar **ns, int na, int nd, const xmlChar **a)
{
}
static void e_end(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u)
{
}
static void e_chars(void *c, const xmlChar *ch, int len)
{
}

static xmlSAXHandler empty_sax = {
    .startElementNs = e_start,
    .endElementNs = e_end,
    .characters = e_chars,
    .initialized = XML_SAX2_MAGIC,
};

static int floor_parse(xmlParserCtxtPtr ctxt, const struct hm_buf *f)
{
    if (xmlCtxtResetPush(ctxt, NULL, 0, NULL, NULL) != 0)
        return -1;
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    for (size_t i = 0; i < f->len; i += 65536) {
        size_t n = HM_MIN(f->len - i, (size_t)65536);
        if (xmlParseChunk(ctxt, f->base + i, (int)n, 0) != 0)
            return -1;
    }
    if (xmlParseChunk(ctxt, NULL, 0, 1) != 0 || !ctxt->wellFormed)
        return -1;
    return 0;
}

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
        gen_file(&files[i], i + 1, 1 + (i % 5), (i % 4) * 15);
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

    xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(&empty_sax, NULL, NULL, 0, NULL);
    struct hm_pm_parser *p = hm_pm_parser_create();
    if (!ctxt || !p)
        return 1;

    double best_floor = 1e9, best_pm = 1e9, best_gz = 1e9, wall_floor = 0, wall_pm = 0;
    struct sink s = {0};
    uint64_t meas_per_pass = 0;
    for (int r = 0; r < rounds; r++) {
        double w0 = wall_now(), t0 = cpu_now();
        for (int i = 0; i < nfiles; i++)
            if (floor_parse(ctxt, &files[i]) != 0) {
                fprintf(stderr, "floor: file %d failed\n", i);
                return 1;
            }
        double t1 = cpu_now(), w1 = wall_now();
        s.n = 0;
        for (int i = 0; i < nfiles; i++) {
            int rc = hm_pm_parse_buf(p, files[i].base, files[i].len, noop_cb, &s, NULL);
            if (rc) {
                fprintf(stderr, "pm: file %d: %s\n", i, hm_pm_errmsg(p));
                return 1;
            }
        }
        double t2 = cpu_now(), w2 = wall_now();
        meas_per_pass = s.n;
        for (int i = 0; i < nfiles; i++)
            if (hm_pm_parse_buf(p, zfiles[i], zlen[i], noop_cb, &s, NULL) != 0)
                return 1;
        double t3 = cpu_now();
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
        double t0 = cpu_now();
        s.n = 0;
        int rc = hm_pm_parse_fd(p, fd, noop_cb, &s, NULL);
        double t1 = cpu_now();
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
