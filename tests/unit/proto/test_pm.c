#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libxml/parser.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/err.h"
#include "hm_check.h"
#include "proto/pm.h"

#define PMDIR HM_SHARED_DATA "/pm/"
#define HANDWRITTEN PMDIR "handwritten-A20261126.1400+0000-1415+0000_HeNB-000001.xml"
#define CMCC PMDIR "magma-enodebd-pm_file_example-CMCC-PmFile.xml"
#define ONAP_A PMDIR "onap-A20181002.0000-1000-0015-1000_5G.xml"
#define BOTH PMDIR "example-both-forms-A20261126.1400+0000-1415+0000_HeNB-EX.xml"

/* ---- helpers ---------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Independent count of the measurements in a file, by plain text scanning: each
 * `<r ...>x,y</r>` gives commas+1, each `<measResults>` its whitespace-separated tokens, and
 * in a CMCC PmFile each `<V ` and `<SV>` (before `</PmFile>`, which a trailing comment
 * follows in the magma sample). */
static unsigned long count_expected(const char *s)
{
    unsigned long n = 0;
    const char *endcmcc = strstr(s, "</PmFile>");
    if (strstr(s, "<PmFile")) {
        for (const char *q = s; (q = strstr(q, "<V ")) && q < endcmcc; q++)
            n++;
        for (const char *q = s; (q = strstr(q, "<SV>")) && q < endcmcc; q++)
            n++;
        return n;
    }
    for (const char *q = s; (q = strstr(q, "<r")); q++) {
        if (q[2] != ' ' && q[2] != '>')
            continue;
        const char *t = strchr(q, '>') + 1;
        n++;
        for (; *t && *t != '<'; t++)
            n += *t == ',';
    }
    for (const char *q = s; (q = strstr(q, "<measResults>")); q++) {
        const char *t = q + strlen("<measResults>");
        bool in = false;
        for (; *t && *t != '<'; t++) {
            bool ws = *t == ' ' || *t == '\n' || *t == '\t' || *t == '\r';
            if (!ws && !in)
                n++;
            in = !ws;
        }
    }
    return n;
}

#define MAXREC 1024
struct rec {
    char counter[96], obj[128], info[64], sender[128], text[32];
    double value;
    unsigned flags;
    bool integer; /* HM_PM_INTEGER was set */
    int64_t end;
    uint32_t gran, rep;
    uint16_t index, nvalues;
};
struct recs {
    unsigned n;
    struct rec r[MAXREC];
};

static void cp(char *dst, size_t cap, struct hm_slice s)
{
    size_t n = HM_MIN(s.len, cap - 1);
    memcpy(dst, s.ptr, n);
    dst[n] = 0;
}

static int record_cb(void *arg, const struct hm_pm_meas *m)
{
    struct recs *rs = arg;
    ck_assert(m->counter.len > 0);
    ck_assert((m->flags & (HM_PM_NIL | HM_PM_TEXT)) ? isnan(m->value) : !isnan(m->value));
    ck_assert(m->index < m->nvalues);
    /* HM_PM_INTEGER: only on plain integer text, and then the value is that integer */
    if (m->flags & HM_PM_INTEGER) {
        ck_assert(!(m->flags & (HM_PM_NIL | HM_PM_TEXT)));
        ck_assert(!memchr(m->text.ptr, '.', m->text.len));
        ck_assert(m->value == trunc(m->value) && fabs(m->value) < 1e15);
    }
    if (rs->n < MAXREC) {
        struct rec *r = &rs->r[rs->n];
        cp(r->counter, sizeof r->counter, m->counter);
        cp(r->obj, sizeof r->obj, m->obj);
        cp(r->info, sizeof r->info, m->info_id);
        cp(r->sender, sizeof r->sender, m->sender);
        cp(r->text, sizeof r->text, m->text);
        r->value = m->value;
        r->flags = m->flags & ~(unsigned)HM_PM_INTEGER; /* checked above */
        r->integer = (m->flags & HM_PM_INTEGER) != 0;
        r->end = m->period_end;
        r->gran = m->gran_s;
        r->rep = m->rep_s;
        r->index = m->index;
        r->nvalues = m->nvalues;
    }
    rs->n++;
    return 0;
}

static const struct rec *find(const struct recs *rs, const char *counter, const char *objsub,
                              int index)
{
    for (unsigned i = 0; i < HM_MIN(rs->n, MAXREC); i++)
        if (strcmp(rs->r[i].counter, counter) == 0 && strstr(rs->r[i].obj, objsub) &&
            (index < 0 || rs->r[i].index == index))
            return &rs->r[i];
    ck_abort_msg("counter %s on %s not found", counter, objsub);
    return NULL;
}

static int parse_file(struct hm_pm_parser *p, const char *path, struct recs *rs,
                      struct hm_pm_summary *sum)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    rs->n = 0;
    int rc = hm_pm_parse_fd(p, fd, record_cb, rs, sum);
    close(fd);
    return rc;
}

static int count_cb(void *arg, const struct hm_pm_meas *m)
{
    (*(unsigned long *)arg)++;
    return 0;
}

static int parse_str(struct hm_pm_parser *p, const char *xml, unsigned long *n)
{
    *n = 0;
    return hm_pm_parse_buf(p, xml, strlen(xml), count_cb, n, NULL);
}

/* ---- samples ---------------------------------------------------------------------- */

START_TEST(every_sample_ingests_with_expected_count)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    static struct recs rs;
    DIR *d = opendir(PMDIR);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    unsigned files = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".xml") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s%s", PMDIR, de->d_name);
        size_t len;
        char *text = slurp(path, &len);
        unsigned long want = count_expected(text);
        struct hm_pm_summary sum;
        int rc = parse_file(p, path, &rs, &sum);
        ck_assert_msg(rc == 0, "%s: %s", de->d_name, hm_pm_errmsg(p));
        ck_assert_msg(want > 0 && sum.count == want && rs.n == want, "%s: got %lu want %lu",
                      de->d_name, (unsigned long)sum.count, want);
        ck_assert_uint_eq(sum.bytes, len);
        ck_assert(!sum.gzip);
        free(text);
        files++;
    }
    closedir(d);
    ck_assert_uint_ge(files, 6); /* the six samples of 2026-11-26, and any added later */
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(handwritten_values_nil_suspect)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    static struct recs rs;
    struct hm_pm_summary sum;
    ck_assert_int_eq(parse_file(p, HANDWRITTEN, &rs, &sum), 0);
    ck_assert_uint_eq(rs.n, 16);
    ck_assert_int_eq(sum.format, HM_PM_FMT_3GPP);
    ck_assert(hm_slice_eq_lit(sum.sender, "ManagedElement=HeNB-000001"));
    ck_assert(hm_slice_eq_lit(sum.vendor, "ExampleRAN"));
    ck_assert(hm_slice_eq_lit(sum.file_format_version, "32.435 V10.0"));
    ck_assert(hm_slice_eq_lit(sum.dn_prefix, "SubNetwork=HeMS-1"));
    ck_assert_int_eq(sum.begin, 1795701600);
    ck_assert_int_eq(sum.end, 1795702500);
    ck_assert_uint_eq(sum.nil, 2);
    ck_assert_uint_eq(sum.suspect, 6);

    const struct rec *r = find(&rs, "RRC.ConnEstabAtt.Sum", "EUtranCellFDD=1", -1);
    ck_assert(r->value == 123 && r->flags == 0 && r->end == 1795702500 && r->gran == 900 &&
              r->rep == 900);
    ck_assert_str_eq(r->info, "EUtranCell-RRC-ERAB");
    ck_assert_str_eq(r->sender, "ManagedElement=HeNB-000001");
    ck_assert(r->integer);
    ck_assert(find(&rs, "RRC.ConnMean", "EUtranCellFDD=1", -1)->value == 4.5);
    ck_assert(!find(&rs, "RRC.ConnMean", "EUtranCellFDD=1", -1)->integer);
    r = find(&rs, "ERAB.EstabInitAttNbr.Sum", "EUtranCellFDD=2", -1);
    ck_assert(!r->integer);
    ck_assert_uint_eq(r->flags, HM_PM_NIL | HM_PM_SUSPECT);
    ck_assert_str_eq(r->text, "NIL");
    r = find(&rs, "RRC.ConnEstabAtt.Sum", "EUtranCellFDD=2", -1);
    ck_assert(r->flags == HM_PM_SUSPECT && r->value == 0);
    r = find(&rs, "DRB.IPVolDl.Sum", "EUtranCellFDD=1", -1);
    ck_assert(r->value == 1048576 && r->flags == 0);
    ck_assert_str_eq(r->info, "EUtranCell-Radio");
    ck_assert(find(&rs, "RRU.PrbTotUl", "EUtranCellFDD=1", -1)->value == 21);
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(onap_multi_value_offset_and_suspect)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    static struct recs rs;
    struct hm_pm_summary sum;
    ck_assert_int_eq(parse_file(p, ONAP_A, &rs, &sum), 0);
    ck_assert_uint_eq(rs.n, 24 + 3 + 9);
    const struct rec *r = find(&rs, "succTCHSeizures2", "ENodeBFunction=1", 3);
    ck_assert(r->value == 6 && r->nvalues == 9);
    ck_assert_str_eq(r->info, "ENodeBFunction");
    ck_assert(find(&rs, "succTCHSeizures2", "ENodeBFunction=1", 8)->value == 24);
    /* 14:14:30+02:00 */
    ck_assert_int_eq(r->end, 951912870);
    ck_assert_uint_eq(r->rep, 1800);
    r = find(&rs, "attTCHSeizures", "Gbg-999", -1);
    ck_assert(r->value == 456 && r->flags == HM_PM_SUSPECT);
    ck_assert_str_eq(find(&rs, "attTCHSeizures", "Gbg-997", -1)->info, "");
    ck_assert(find(&rs, "succImmediateAssignProcs8", "Gbg-999", -1)->value == 785);
    ck_assert_uint_eq(sum.suspect, 8);
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(both_forms_and_measTypes_list)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    static struct recs rs;
    struct hm_pm_summary sum;
    ck_assert_int_eq(parse_file(p, BOTH, &rs, &sum), 0);
    ck_assert_uint_eq(rs.n, 5);
    ck_assert_uint_eq(find(&rs, "RRC.ConnEstabAtt.sum", "CellFDD=1", -1)->flags, HM_PM_NIL);
    ck_assert(find(&rs, "RRU.PrbTotUl", "CellFDD=1", -1)->value == 12);
    ck_assert(find(&rs, "RRC.ConnEstabSucc.mo-Data", "CellFDD=1", -1)->value == 118);
    ck_assert_int_eq(parse_file(p, PMDIR "onap-C20190328.0000-0015-measTypes-list.xml", &rs,
                                &sum),
                     0);
    ck_assert_uint_eq(rs.n, 12);
    /* each measData block keeps its own period */
    ck_assert(rs.r[11].value == 3333 && rs.r[11].gran == 300);
    ck_assert_str_eq(rs.r[11].counter, "b3");
    ck_assert_str_eq(rs.r[5].counter, "a2");
    ck_assert(rs.r[5].value == 22 && rs.r[5].gran == 200);
    ck_assert_int_eq(sum.end, 1538478900); /* 12:15+01:00 */
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(cmcc_pmfile)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    static struct recs rs;
    struct hm_pm_summary sum;
    ck_assert_int_eq(parse_file(p, CMCC, &rs, &sum), 0);
    ck_assert_int_eq(sum.format, HM_PM_FMT_CMCC);
    ck_assert(hm_slice_eq_lit(sum.file_format_version, "NanoCell-eNB-PM-V2.5.0"));
    ck_assert(hm_slice_eq_lit(sum.sender, "CMCC\\\\,SubNetwork=1\\\\,ManagementNode=1"));
    ck_assert_uint_eq(rs.n, 158 + 387);
    const struct rec *r = find(&rs, "RRC.AttConnEstab", "EutranCellTdd=1", -1);
    ck_assert(r->value == 123 && r->gran == 60 && r->end == 1527229500);
    ck_assert_str_eq(r->info, "EutranCellTdd");
    ck_assert(find(&rs, "RRC.AttConnReestab.RECONF_FAIL", "EutranCellTdd=1", -1)->value ==
              654);
    ck_assert(find(&rs, "PHY.CellMeanTxPower", "EutranCellTdd=1", -1)->value == -10);
    ck_assert(find(&rs, "PHY.ULMeanNL.100", "EutranCellTdd=1", -1)->value == -104);
    r = find(&rs, "SIG.SctpUnavailableDuration", "SctpAssoc=1", -1);
    ck_assert_str_eq(r->info, "SctpAssoc");
    hm_pm_parser_destroy(p);
}
END_TEST

/* ---- streaming, truncation, malformed --------------------------------------------- */

START_TEST(byte_by_byte_feed_matches)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    size_t len;
    char *x = slurp(CMCC, &len);
    unsigned long n = 0;
    ck_assert_int_eq(hm_pm_begin(p, count_cb, &n), 0);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(hm_pm_feed(p, x + i, 1), 0);
    ck_assert_int_eq(hm_pm_finish(p, NULL), 0);
    ck_assert_uint_eq(n, 545);
    free(x);
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(truncated_at_every_offset)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    size_t len;
    char *x = slurp(HANDWRITTEN, &len);
    size_t complete = (size_t)(strstr(x, "</measCollecFile>") - x) + strlen("</measCollecFile>");
    for (size_t cut = 0; cut < complete; cut++) {
        unsigned long n = 0;
        int rc = hm_pm_parse_buf(p, x, cut, count_cb, &n, NULL);
        ck_assert_msg(rc == HM_EBADPM, "cut %zu: rc %d", cut, rc);
        ck_assert_msg(strncmp(hm_pm_errmsg(p), "line ", 5) == 0, "cut %zu: '%s'", cut,
                      hm_pm_errmsg(p));
        ck_assert_uint_le(n, 16);
    }
    unsigned long n = 0;
    ck_assert_int_eq(hm_pm_parse_buf(p, x, complete, count_cb, &n, NULL), 0);
    ck_assert_uint_eq(n, 16);
    free(x);
    hm_pm_parser_destroy(p);
}
END_TEST

#define NS "xmlns=\"http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec\""
#define HDR "<measCollecFile " NS "><fileHeader fileFormatVersion=\"32.435 V10.0\">" \
            "<fileSender localDn=\"me\"/><measCollec beginTime=\"2026-01-01T00:00:00Z\"/>"   \
            "</fileHeader><measData><managedElement localDn=\"me\"/>"
#define GP "<granPeriod duration=\"PT15M\" endTime=\"2026-01-01T00:15:00Z\"/>"
#define FTR "</measData><fileFooter><measCollec endTime=\"2026-01-01T00:15:00Z\"/>" \
            "</fileFooter></measCollecFile>"

START_TEST(malformed_files_are_bad_pm)
{
    static const char *const bad[] = {
        "",
        "x",
        "not xml at all",
        "<html><body/></html>",
        "<?xml version=\"1.0\"?><measCollecFile " NS ">",
        HDR "<measInfo>" GP "<measType p=\"1\">a</measType><measValue measObjLdn=\"o\">"
            "<r p=\"2\">1</r></measValue></measInfo>" FTR,
        HDR "<measInfo>" GP "<measTypes>a b</measTypes><measValue measObjLdn=\"o\">"
            "<measResults>1 2 3</measResults></measValue></measInfo>" FTR,
        HDR "<measInfo><granPeriod duration=\"PT15M\" endTime=\"yesterday\"/></measInfo>" FTR,
        HDR "<measInfo><granPeriod duration=\"P1M\" endTime=\"2026-01-01T00:15:00Z\"/>"
            "</measInfo>" FTR,
        HDR "<measInfo><measType p=\"1\">a</measType><measValue measObjLdn=\"o\">"
            "<r p=\"1\">1</r></measValue></measInfo>" FTR,
        HDR "<measInfo>" GP "<measType p=\"x\">a</measType></measInfo>" FTR,
        HDR "<measInfo>" GP "<measType p=\"99999\">a</measType></measInfo>" FTR,
        HDR "<measInfo>" GP "<measType p=\"1\">a</measType><measValue measObjLdn=\"o\">"
            "<r p=\"1\">1</r></measValue></measInfo></measData>" FTR,
        HDR FTR "<trailing/>",
        "<PmFile><PmData><Pm Dn=\"x\"><V i=\"1\">0</V></Pm></PmData></PmFile>",
        "<PmFile><FileHeader><BeginTime>2018-05-25T14:24:00+08:00</BeginTime><EndTime>"
        "2018-05-25T14:25:00+08:00</EndTime></FileHeader><Measurements><PmName><N i=\"1\">a"
        "</N></PmName><PmData><Pm Dn=\"x\"><V i=\"2\">0</V></Pm></PmData></Measurements>"
        "</PmFile>",
        "<PmFile><FileHeader><BeginTime>2018-05-25T14:24:00+08:00</BeginTime><EndTime>"
        "2018-05-25T14:25:00+08:00</EndTime></FileHeader><Measurements><PmData><Pm Dn=\"x\">"
        "<CV i=\"2\"><SV>1</SV></CV></Pm></PmData></Measurements></PmFile>",
        "<a:measCollecFile>",
    };
    struct hm_pm_parser *p = hm_pm_parser_create();
    for (size_t i = 0; i < HM_ARRAY_SIZE(bad); i++) {
        unsigned long n;
        int rc = parse_str(p, bad[i], &n);
        ck_assert_msg(rc == HM_EBADPM, "case %zu: rc %d", i, rc);
        ck_assert_msg(hm_pm_errmsg(p)[0] != 0, "case %zu: no message", i);
    }
    /* the parser is reusable after errors */
    unsigned long n;
    ck_assert_int_eq(parse_str(p, HDR "<measInfo>" GP "<measType p=\"1\">a</measType>"
                                      "<measValue measObjLdn=\"o\"><r p=\"1\">1</r></measValue>"
                                      "</measInfo>" FTR,
                               &n),
                     0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(hm_pm_errmsg(p), "");
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(error_message_has_line)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    unsigned long n;
    int rc = parse_str(p, HDR "\n<measInfo>\n" GP "\n<measType p=\"1\">a</measType>\n"
                              "<measValue measObjLdn=\"o\">\n<r p=\"7\">1</r>\n</measValue>\n"
                              "</measInfo>" FTR, &n);
    ck_assert_int_eq(rc, HM_EBADPM);
    ck_assert_str_eq(hm_pm_errmsg(p), "line 7: result p=7 has no measType");
    rc = parse_str(p, "<measCollecFile>\n\n<fileHeader></measCollecFile>", &n);
    ck_assert_int_eq(rc, HM_EBADPM);
    ck_assert_msg(strncmp(hm_pm_errmsg(p), "line 3: ", 8) == 0, "%s", hm_pm_errmsg(p));
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(text_values_and_suspect_spellings)
{
    static struct recs rs;
    struct hm_pm_parser *p = hm_pm_parser_create();
    const char *x = HDR "<measInfo measInfoId=\"a&amp;b\">" GP
                        "<measTypes>c1 c2 c3 c4 c5</measTypes>"
                        "<measValue measObjLdn=\"Cell=1&amp;2\">"
                        "<measResults> abc -5 1e3 NIL 0.25 </measResults>"
                        "<suspect>1</suspect></measValue></measInfo>" FTR;
    rs.n = 0;
    ck_assert_int_eq(hm_pm_parse_buf(p, x, strlen(x), record_cb, &rs, NULL), 0);
    ck_assert_uint_eq(rs.n, 5);
    ck_assert_uint_eq(rs.r[0].flags, HM_PM_TEXT | HM_PM_SUSPECT);
    ck_assert_str_eq(rs.r[0].text, "abc");
    ck_assert(rs.r[1].value == -5 && rs.r[2].value == 1000 && rs.r[4].value == 0.25);
    ck_assert_uint_eq(rs.r[3].flags, HM_PM_NIL | HM_PM_SUSPECT);
    ck_assert_str_eq(rs.r[0].obj, "Cell=1&2");
    ck_assert_str_eq(rs.r[0].info, "a&b");
    ck_assert_uint_eq(rs.r[0].gran, 900);
    hm_pm_parser_destroy(p);
}
END_TEST

START_TEST(sender_fallback_positional_r_and_suspect_false)
{
    static struct recs rs;
    struct hm_pm_parser *p = hm_pm_parser_create();
    const char *x = "<measCollecFile><fileHeader fileFormatVersion=\"32.435 V7.0\">"
                    "<fileSender senderName=\"HeNB-OLD\"/>"
                    "<measCollec beginTime=\"2026-01-01T00:00:00Z\"/></fileHeader><measData>"
                    "<measInfo><granPeriod duration=\"PT1H\" endTime=\"2026-01-01T01:00:00Z\"/>"
                    "<measType>a</measType><measType>b</measType>"
                    "<measValue measObjLdn=\"o\"><r>1</r><r>2</r><suspect>false</suspect>"
                    "</measValue></measInfo></measData></measCollecFile>";
    struct hm_pm_summary sum;
    rs.n = 0;
    ck_assert_int_eq(hm_pm_parse_buf(p, x, strlen(x), record_cb, &rs, &sum), 0);
    ck_assert(hm_slice_eq_lit(sum.sender, "HeNB-OLD"));
    ck_assert_int_eq(sum.end, 0); /* no footer: absent, not an error */
    ck_assert_uint_eq(rs.n, 2);
    ck_assert_str_eq(rs.r[1].counter, "b");
    ck_assert(rs.r[1].value == 2 && rs.r[1].flags == 0 && rs.r[1].gran == 3600 &&
              rs.r[1].rep == 0);
    ck_assert_str_eq(rs.r[1].sender, "HeNB-OLD");
    hm_pm_parser_destroy(p);
}
END_TEST

/* The fast decimal path must give the same double as strtod. */
START_TEST(decimal_fast_path_matches_strtod)
{
    static const char *const vals[] = {"0.1", "0.2", "0.3", "123.456", "-0.001", "99.99",
                                       "4503599627370.5", "999999999999999", "1.000000000000001",
                                       "0.000000000000001", "12345678901234.5", "7", "-0",
                                       "+5.5", "1e3", "00012.50"};
    struct hm_pm_parser *p = hm_pm_parser_create();
    static struct recs rs;
    for (size_t i = 0; i < HM_ARRAY_SIZE(vals); i++) {
        char x[1024];
        snprintf(x, sizeof x,
                 HDR "<measInfo>" GP "<measType p=\"1\">c</measType><measValue measObjLdn=\"o\">"
                     "<r p=\"1\">%s</r></measValue></measInfo>" FTR,
                 vals[i]);
        rs.n = 0;
        ck_assert_int_eq(hm_pm_parse_buf(p, x, strlen(x), record_cb, &rs, NULL), 0);
        ck_assert_uint_eq(rs.n, 1);
        ck_assert_msg(rs.r[0].value == strtod(vals[i], NULL) && rs.r[0].flags == 0, "%s: %.17g",
                      vals[i], rs.r[0].value);
    }
    hm_pm_parser_destroy(p);
}
END_TEST

static int generic_calls;
static void count_generic(void *ctx, const char *msg, ...)
{
    generic_calls++;
}

/* Encoding errors reach only libxml2's per-thread generic handler: swallowed during the
 * parse (no stderr noise), and the caller's handler is restored. */
START_TEST(encoding_error_is_bad_pm_and_quiet)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    xmlSetGenericErrorFunc(NULL, count_generic);
    unsigned long n;
    ck_assert_int_eq(parse_str(p, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><measCollecFile>"
                                  "\xff\x98\x98\x98</measCollecFile>", &n),
                     HM_EBADPM);
    ck_assert_int_eq(generic_calls, 0);
    ck_assert_ptr_eq(xmlGenericError, count_generic);
    xmlSetGenericErrorFunc(NULL, NULL);
    hm_pm_parser_destroy(p);
}
END_TEST

static int stop_cb(void *arg, const struct hm_pm_meas *m)
{
    return ++*(unsigned long *)arg == 3 ? -ENOSPC : 0;
}

START_TEST(callback_error_stops)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    int fd = open(HANDWRITTEN, O_RDONLY);
    unsigned long n = 0;
    ck_assert_int_eq(hm_pm_parse_fd(p, fd, stop_cb, &n, NULL), -ENOSPC);
    ck_assert_uint_eq(n, 3);
    close(fd);
    hm_pm_parser_destroy(p);
}
END_TEST

/* ---- DTDs, entities --------------------------------------------------------------- */

START_TEST(dtd_and_entity_bombs_refused)
{
    static const char *const bombs[] = {
        ("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
         "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
         "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
         "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>"
         "<measCollecFile>&lol4;</measCollecFile>"),
        ("<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
         "<measCollecFile><fileHeader vendorName=\"&xxe;\"/></measCollecFile>"),
        "<!DOCTYPE measCollecFile SYSTEM \"http://example.invalid/x.dtd\"><measCollecFile/>",
        "<!DOCTYPE measCollecFile><measCollecFile/>",
    };
    struct hm_pm_parser *p = hm_pm_parser_create();
    for (size_t i = 0; i < HM_ARRAY_SIZE(bombs); i++) {
        unsigned long n;
        ck_assert_int_eq(parse_str(p, bombs[i], &n), HM_EBADPM);
        ck_assert_msg(strstr(hm_pm_errmsg(p), "DTD refused"), "%zu: %s", i, hm_pm_errmsg(p));
        ck_assert_uint_eq(n, 0);
    }
    /* an undeclared entity is a well-formedness error, not an expansion */
    unsigned long n;
    ck_assert_int_eq(parse_str(p, HDR "<measInfo>&x;</measInfo>" FTR, &n), HM_EBADPM);
    hm_pm_parser_destroy(p);
}
END_TEST

/* ---- gzip ------------------------------------------------------------------------- */

static unsigned char *gzip(const char *in, size_t len, size_t *out_len)
{
    z_stream z = {0};
    ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len);
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)in;
    z.avail_in = (unsigned)len;
    z.next_out = out;
    z.avail_out = (unsigned)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

START_TEST(gzip_input)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    size_t len, zlen;
    char *x = slurp(CMCC, &len);
    unsigned char *z = gzip(x, len, &zlen);
    struct hm_pm_summary sum;
    unsigned long n = 0;
    ck_assert_int_eq(hm_pm_parse_buf(p, z, zlen, count_cb, &n, &sum), 0);
    ck_assert(sum.gzip && sum.bytes == len && n == 545 && sum.count == 545);

    n = 0; /* odd-sized chunks, first one shorter than the magic */
    ck_assert_int_eq(hm_pm_begin(p, count_cb, &n), 0);
    for (size_t i = 0; i < zlen; i += 7)
        ck_assert_int_eq(hm_pm_feed(p, z + i, HM_MIN(7, zlen - i)), 0);
    ck_assert_int_eq(hm_pm_finish(p, NULL), 0);
    ck_assert_uint_eq(n, 545);

    for (size_t cut = 1; cut < zlen; cut += 97) {
        ck_assert_int_eq(hm_pm_parse_buf(p, z, cut, count_cb, &n, NULL), HM_EBADPM);
        ck_assert(hm_pm_errmsg(p)[0]);
    }
    z[zlen / 2] ^= 0x55; /* corrupt: CRC or inflate error */
    ck_assert_int_eq(hm_pm_parse_buf(p, z, zlen, count_cb, &n, NULL), HM_EBADPM);

    /* a gzip bomb is cut by the byte cap */
    hm_pm_set_max_bytes(p, 10000);
    z[zlen / 2] ^= 0x55;
    ck_assert_int_eq(hm_pm_parse_buf(p, z, zlen, count_cb, &n, NULL), HM_EBADPM);
    ck_assert_msg(strstr(hm_pm_errmsg(p), "larger than"), "%s", hm_pm_errmsg(p));
    free(z);
    free(x);
    hm_pm_parser_destroy(p);
}
END_TEST

/* A multi-megabyte file in small chunks: streaming keeps going with bounded buffers. */
START_TEST(large_streamed_file)
{
    struct hm_buf b = {0};
    hm_buf_append_str(&b, HDR);
    for (int mi = 0; mi < 2000; mi++) {
        hm_buf_printf(&b, "<measInfo measInfoId=\"mi%d\">" GP, mi);
        for (int t = 1; t <= 20; t++)
            hm_buf_printf(&b, "<measType p=\"%d\">C%d.%d</measType>", t, mi, t);
        for (int c = 0; c < 5; c++) {
            hm_buf_printf(&b, "<measValue measObjLdn=\"Cell=%d\">", c);
            for (int t = 1; t <= 20; t++)
                hm_buf_printf(&b, "<r p=\"%d\">%d</r>", t, t * c);
            hm_buf_append_str(&b, "</measValue>");
        }
        hm_buf_append_str(&b, "</measInfo>");
    }
    hm_buf_append_str(&b, FTR);
    ck_assert_uint_gt(b.len, 4u << 20);
    struct hm_pm_parser *p = hm_pm_parser_create();
    unsigned long n = 0;
    ck_assert_int_eq(hm_pm_begin(p, count_cb, &n), 0);
    for (size_t i = 0; i < b.len; i += 4096)
        ck_assert_int_eq(hm_pm_feed(p, b.base + i, HM_MIN(4096, b.len - i)), 0);
    ck_assert_int_eq(hm_pm_finish(p, NULL), 0);
    ck_assert_uint_eq(n, 2000 * 5 * 20);
    hm_pm_parser_destroy(p);
    hm_buf_free(&b);
}
END_TEST

/* libxml2 buffers an unterminated construct (comment, huge attribute) while it looks for
 * its end; without XML_PARSE_HUGE it gives up at 10 MB, so such input cannot grow memory
 * without bound: the feed fails long before 40 MB. */
START_TEST(unterminated_comment_is_bounded)
{
    struct hm_pm_parser *p = hm_pm_parser_create();
    static char chunk[65536];
    memset(chunk, 'a', sizeof chunk);
    static const char *const heads[] = {"<measCollecFile><!--", "<measCollecFile a=\"",
                                        "<measCollecFile><?pi ", "<measCollecFile><r p=\"1\">"};
    for (size_t h = 0; h < HM_ARRAY_SIZE(heads); h++) {
        unsigned long n = 0;
        ck_assert_int_eq(hm_pm_begin(p, count_cb, &n), 0);
        ck_assert_int_eq(hm_pm_feed(p, heads[h], strlen(heads[h])), 0);
        size_t fed = 0;
        int rc = 0;
        while (fed < (40u << 20) && (rc = hm_pm_feed(p, chunk, sizeof chunk)) == 0)
            fed += sizeof chunk;
        ck_assert_msg(rc == HM_EBADPM && fed < (12u << 20), "%s: rc %d after %zu bytes",
                      heads[h], rc, fed);
        ck_assert_int_eq(hm_pm_finish(p, NULL), HM_EBADPM);
    }
    hm_pm_parser_destroy(p);
}
END_TEST

/* ---- times and file names --------------------------------------------------------- */

START_TEST(datetime_and_duration)
{
    int64_t t;
    uint32_t d;
    ck_assert_int_eq(hm_pm_parse_datetime(hm_slice_cstr("2026-11-26T14:15:00+00:00"), &t), 0);
    ck_assert_int_eq(t, 1795702500);
    ck_assert_int_eq(hm_pm_parse_datetime(hm_slice_cstr("2026-11-26T14:15:00Z"), &t), 0);
    ck_assert_int_eq(t, 1795702500);
    ck_assert_int_eq(hm_pm_parse_datetime(hm_slice_cstr("2026-11-26T16:15:00.123+02:00"), &t),
                     0);
    ck_assert_int_eq(t, 1795702500);
    ck_assert_int_eq(hm_pm_parse_datetime(hm_slice_cstr("2026-11-26T09:15:00-0500"), &t), 0);
    ck_assert_int_eq(t, 1795702500);
    ck_assert_int_eq(hm_pm_parse_datetime(hm_slice_cstr("2024-02-29T00:00:00"), &t), 0);
    ck_assert_int_eq(t, 1709164800);
    static const char *const bad[] = {"", "2026-11-26", "2026-13-01T00:00:00Z",
                                      "2025-02-29T00:00:00Z", "2026-11-26T14:15:00+",
                                      "2026-11-26T14:15:00Zjunk", "2026-11-26 14:15:00"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(bad); i++)
        ck_assert_msg(hm_pm_parse_datetime(hm_slice_cstr(bad[i]), &t) == HM_EBADPM, "%s",
                      bad[i]);
    ck_assert(hm_pm_parse_duration(hm_slice_cstr("PT900S"), &d) == 0 && d == 900);
    ck_assert(hm_pm_parse_duration(hm_slice_cstr("PT15M"), &d) == 0 && d == 900);
    ck_assert(hm_pm_parse_duration(hm_slice_cstr("P1DT1H"), &d) == 0 && d == 90000);
    ck_assert(hm_pm_parse_duration(hm_slice_cstr("PT0.5S"), &d) == 0 && d == 0);
    static const char *const badd[] = {"", "P", "PT", "900", "P1M", "P1Y", "PT5", "PTS",
                                       "P99999999999D"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(badd); i++)
        ck_assert_msg(hm_pm_parse_duration(hm_slice_cstr(badd[i]), &d) == HM_EBADPM, "%s",
                      badd[i]);
}
END_TEST

START_TEST(file_names)
{
    struct hm_pm_name n;
    hm_pm_name_parse(hm_slice_cstr("A20261126.1400+0000-1415+0000_HeNB-000001.xml"), &n);
    ck_assert(n.type == 'A' && n.flags == 0 && n.begin == 1795701600 && n.end == 1795702500);
    ck_assert(hm_slice_eq_lit(n.sender, "HeNB-000001") && n.rc.len == 0);

    hm_pm_name_parse(hm_slice_cstr("/up/A20261126.1600+0200-1615+0200_HeNB-1_-_2.xml.gz"), &n);
    ck_assert(n.flags == HM_PM_NAME_GZ && n.begin == 1795701600 && n.end == 1795702500);
    ck_assert(hm_slice_eq_lit(n.sender, "HeNB-1") && hm_slice_eq_lit(n.rc, "2"));

    /* ONAP sample: negative offset */
    hm_pm_name_parse(hm_slice_cstr("A20181002.0000-1000-0015-1000_5G.xml"), &n);
    ck_assert(n.flags == 0 && n.begin == 1538474400 && n.end == 1538475300);
    ck_assert(hm_slice_eq_lit(n.sender, "5G"));

    /* crossing midnight */
    hm_pm_name_parse(hm_slice_cstr("A20261126.2345+0000-0000+0000_x"), &n);
    ck_assert(n.flags == 0 && n.end - n.begin == 900);

    /* type C with end date */
    hm_pm_name_parse(hm_slice_cstr("C20261126.1400+0000-20261127.1400+0000_HeNB-2.xml"), &n);
    ck_assert(n.type == 'C' && n.flags == 0 && n.end - n.begin == 86400);
    ck_assert(hm_slice_eq_lit(n.sender, "HeNB-2"));

    /* ONAP C sample: no offsets, no "_<id>": accepted, flagged */
    hm_pm_name_parse(hm_slice_cstr("C20190328.0000-0015-measTypes-list.xml"), &n);
    ck_assert(n.type == 'C' && n.end - n.begin == 900);
    ck_assert_uint_eq(n.flags, HM_PM_NAME_NONCONFORMING | HM_PM_NAME_NO_TZ);
    ck_assert_uint_eq(n.sender.len, 0);

    static const char *const odd[] = {"", "pm.xml", "A2026112.1400-1415_x", "E20261126.1400-1415_x",
                                      "A20261326.1400+0000-1415+0000_x", "A20261126.1400+0000-1415+0000_",
                                      "A20261126.1400+0000-1415+0000"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(odd); i++) {
        hm_pm_name_parse(hm_slice_cstr(odd[i]), &n);
        ck_assert_msg(n.flags & HM_PM_NAME_NONCONFORMING, "%s", odd[i]);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pm");
    TCase *tc = tcase_create("samples");
    tcase_add_test(tc, every_sample_ingests_with_expected_count);
    tcase_add_test(tc, handwritten_values_nil_suspect);
    tcase_add_test(tc, onap_multi_value_offset_and_suspect);
    tcase_add_test(tc, both_forms_and_measTypes_list);
    tcase_add_test(tc, cmcc_pmfile);
    suite_add_tcase(s, tc);
    tc = tcase_create("robustness");
    tcase_add_test(tc, byte_by_byte_feed_matches);
    tcase_add_test(tc, truncated_at_every_offset);
    tcase_add_test(tc, malformed_files_are_bad_pm);
    tcase_add_test(tc, error_message_has_line);
    tcase_add_test(tc, text_values_and_suspect_spellings);
    tcase_add_test(tc, callback_error_stops);
    tcase_add_test(tc, encoding_error_is_bad_pm_and_quiet);
    tcase_add_test(tc, decimal_fast_path_matches_strtod);
    tcase_add_test(tc, sender_fallback_positional_r_and_suspect_false);
    tcase_add_test(tc, dtd_and_entity_bombs_refused);
    tcase_add_test(tc, gzip_input);
    tcase_add_test(tc, large_streamed_file);
    tcase_add_test(tc, unterminated_comment_is_bounded);
    suite_add_tcase(s, tc);
    tc = tcase_create("names");
    tcase_add_test(tc, datetime_and_duration);
    tcase_add_test(tc, file_names);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
