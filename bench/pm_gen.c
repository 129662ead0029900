/* Realistic TS 32.435 files (bench/pm_gen.h). */
#include "bench/pm_gen.h"

#include <stdbool.h>
#include <stdio.h>

#include <libxml/parser.h>

#include "core/bug.h"

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

static uint32_t rnd(struct hm_pm_gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (uint32_t)g->rng;
}

static void value(struct hm_pm_gen *g, struct hm_buf *o)
{
    uint32_t r = rnd(g);
    if (r % 97 == 0)
        hm_buf_append_lit(o, "NIL");
    else if (r % 5 == 0)
        hm_buf_printf(o, "%u.%02u", (r >> 8) % 1000, (r >> 20) % 100);
    else
        hm_buf_printf(o, "%u", (r >> 4) % (r & 1 ? 100000u : 1000u));
}

static void stamp(char *out, size_t cap, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

void hm_pm_gen_file(struct hm_pm_gen *g, struct hm_buf *o, const char *sender, int cells,
                    time_t begin)
{
    char t0[64], t1[64];
    stamp(t0, sizeof(t0), begin);
    stamp(t1, sizeof(t1), begin + 900);
    hm_buf_printf(o,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<measCollecFile xmlns=\"http://www.3gpp.org/ftp/specs/archive/32_series/"
                  "32.435#measCollec\">\n"
                  "  <fileHeader fileFormatVersion=\"32.435 V10.0\" vendorName=\"ExampleRAN\" "
                  "dnPrefix=\"SubNetwork=HeMS-1\">\n"
                  "    <fileSender localDn=\"ManagedElement=%s\" elementType=\"HeNB\"/>\n"
                  "    <measCollec beginTime=\"%s\"/>\n  </fileHeader>\n  <measData>\n"
                  "    <managedElement localDn=\"ManagedElement=%s\" swVersion=\"4.2\"/>\n",
                  sender, t0, sender);
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
                    value(g, o);
                }
                hm_buf_append_lit(o, "</measResults>\n");
            } else {
                for (size_t i = 0; i < n; i++) {
                    hm_buf_printf(o, "        <r p=\"%zu\">", i + 1);
                    value(g, o);
                    hm_buf_append_lit(o, "</r>\n");
                }
            }
            if (rnd(g) % 20 == 0)
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

void hm_pm_gen_name(struct hm_buf *o, const char *sender, time_t begin)
{
    struct tm a, b;
    time_t end = begin + 900;
    gmtime_r(&begin, &a);
    gmtime_r(&end, &b);
    hm_buf_printf(o, "A%04d%02d%02d.%02d%02d+0000-%02d%02d+0000_%s.xml", a.tm_year + 1900,
                  a.tm_mon + 1, a.tm_mday, a.tm_hour, a.tm_min, b.tm_hour, b.tm_min, sender);
}

void hm_pm_gen_bench_file(struct hm_pm_gen *g, struct hm_buf *o, int henb, int cells, int minute)
{
    char sender[32];
    snprintf(sender, sizeof(sender), "HeNB-%06d", henb);
    hm_pm_gen_file(g, o, sender, cells, (time_t)1795701600 + minute * 60);
}

static void e_start(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u, int nn,
                    const xmlChar **ns, int na, int nd, const xmlChar **a)
{
    (void)c, (void)l, (void)p, (void)u, (void)nn, (void)ns, (void)na, (void)nd, (void)a;
}

static void e_end(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u)
{
    (void)c, (void)l, (void)p, (void)u;
}

static void e_chars(void *c, const xmlChar *ch, int len)
{
    (void)c, (void)ch, (void)len;
}

static xmlSAXHandler empty_sax = {
    .startElementNs = e_start,
    .endElementNs = e_end,
    .characters = e_chars,
    .initialized = XML_SAX2_MAGIC,
};

xmlSAXHandler *hm_pm_floor_sax(void)
{
    return &empty_sax;
}

int hm_pm_floor_parse(xmlParserCtxtPtr ctxt, const char *data, size_t len)
{
    if (xmlCtxtResetPush(ctxt, NULL, 0, NULL, NULL) != 0)
        return -1;
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    for (size_t i = 0; i < len; i += 65536) {
        size_t n = len - i < 65536 ? len - i : 65536;
        if (xmlParseChunk(ctxt, data + i, (int)n, 0) != 0)
            return -1;
    }
    if (xmlParseChunk(ctxt, NULL, 0, 1) != 0 || !ctxt->wellFormed)
        return -1;
    return 0;
}

double hm_pm_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double hm_pm_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
