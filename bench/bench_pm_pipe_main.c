/*
 * bench-pm-pipe: end-to-end PM ingestion through core/pm_pipe.c (spooled file -> read ->
 * parse -> HM_DB_PM batch -> group commit with fsync -> spool unlink) on ONE pipeline
 * thread, against the floor (a bare libxml2 SAX2 push pass with empty callbacks over the
 * same bytes, same run).
 *
 *   bench-pm-pipe [files=400] [dir=/tmp] [no_sync=0]
 *
 * Generates <files> realistic HeNB TS 32.435 files (the generator of bench-pm: ~330 LTE
 * counters, 1-5 cells, 19-45 KB), drops them in a fresh <dir>/bench-pm-pipe-XXXXXX/pm-spool
 * with TS 32.432 names, then starts the pipeline (which re-ingests what it finds in the
 * spool, the crash-recovery path) and times until every file is committed. Prints MB/s,
 * files/s, measurements/s, the process CPU seconds (pipeline + store writer threads), the
 * ratio to the floor and the HeNBs at a 15-minute period one pipeline core sustains.
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
#include "core/log.h"
#include <stdbool.h>
#include <sys/stat.h>
#include "core/pm_pipe.h"
#include "storage/store.h"

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

static double proc_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    int nfiles = argc > 1 ? atoi(argv[1]) : 400;
    const char *base = argc > 2 ? argv[2] : "/tmp";
    bool no_sync = argc > 3 && atoi(argv[3]) != 0;
    if (nfiles < 1)
        return 2;
    hm_log_set_level(HM_LOG_WARN);

    struct hm_buf *files = hm_xcalloc((size_t)nfiles, sizeof *files);
    size_t total = 0;
    for (int i = 0; i < nfiles; i++) {
        gen_file(&files[i], i + 1, 1 + (i % 5), (i % 4) * 15);
        total += files[i].len;
    }

    /* floor: best of 3 passes */
    xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(&empty_sax, NULL, NULL, 0, NULL);
    double floor_cpu = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = cpu_now();
        for (int i = 0; i < nfiles; i++)
            if (floor_parse(ctxt, &files[i]) != 0)
                return 1;
        double t = cpu_now() - t0;
        floor_cpu = t < floor_cpu ? t : floor_cpu;
    }
    xmlFreeParserCtxt(ctxt);

    char dir[4096], spool[4200], path[4400], sdir[4200];
    snprintf(dir, sizeof(dir), "%s/bench-pm-pipe-XXXXXX", base);
    if (!mkdtemp(dir))
        return 1;
    snprintf(spool, sizeof(spool), "%s/pm-spool", dir);
    snprintf(sdir, sizeof(sdir), "%s/store", dir);
    mkdir(spool, 0700);
    for (int i = 0; i < nfiles; i++) {
        /* TS 32.432 name: A<date>.<begin>-<end>_<sender>.xml */
        snprintf(path, sizeof(path), "%s/A20261126.%02d00+0000-%02d15+0000_HeNB-%06d.xml.pm",
                 spool, 10 + (i % 4), 10 + (i % 4), i + 1);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, files[i].base, files[i].len) != (ssize_t)files[i].len)
            return 1;
        close(fd);
    }
    struct hm_store_opts so = {.map_size = 256ull << 20, .map_max = 8ull << 30,
                               .no_sync = no_sync};
    struct hm_store *store = NULL;
    if (hm_store_open(sdir, &so, &store) < 0)
        return 1;
    struct hm_pm_pipe_opts po = {.data_dir = dir, .upload_path = "/pm/",
                                 .spool_max_files = 1u << 30, .spool_max_bytes = 1ull << 40,
                                 .max_file_bytes = 64u << 20, .threads = 1, .realm = "hems"};
    char err[256];
    struct hm_pm_pipe *p = NULL;
    double c0 = proc_cpu(), w0 = wall_now();
    if (hm_pm_pipe_create(&po, store, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct hm_pm_pipe_stats st;
    do {
        usleep(1000);
        hm_pm_pipe_stats(p, &st);
    } while (st.files_ingested + st.files_quarantined + st.uploads_dup < (uint64_t)nfiles);
    double wall = wall_now() - w0, cpu = proc_cpu() - c0;
    hm_pm_pipe_destroy(p);
    hm_store_close(store);
    if (st.files_ingested != (uint64_t)nfiles) {
        fprintf(stderr, "only %llu of %d files ingested\n", (unsigned long long)st.files_ingested,
                nfiles);
        return 1;
    }
    double mb = (double)total / 1e6;
    printf("files %d, %.1f MB, %llu measurements, store fsync %s\n", nfiles, mb,
           (unsigned long long)st.meas_ingested, no_sync ? "off" : "on");
    printf("floor (libxml2 SAX2, empty callbacks, 1 core CPU): %8.1f MB/s %8.0f files/s\n",
           mb / floor_cpu, nfiles / floor_cpu);
    printf("pipeline end to end (wall, 1 pipeline thread):     %8.1f MB/s %8.0f files/s "
           "%9.0f meas/s\n", mb / wall, nfiles / wall, (double)st.meas_ingested / wall);
    printf("pipeline process CPU (pipeline + store writer):    %8.2f s = %.2f cores busy\n", cpu,
           cpu / wall);
    printf("ratio end-to-end / floor: %.2f\n", (mb / wall) / (mb / floor_cpu));
    printf("HeNBs at a 15-minute period one pipeline core sustains: %.0f\n",
           nfiles / wall * 900.0);
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    for (int i = 0; i < nfiles; i++)
        hm_buf_free(&files[i]);
    free(files);
    return 0;
}
