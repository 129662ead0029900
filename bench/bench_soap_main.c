/*
 * bench-soap: parse cost of CWMP envelopes, hems tokenizer and message parser versus a
 * libxml2 SAX2 pass with empty callbacks (the floor of any libxml2-based parser), on the
 * same bytes in the same run.
 *
 * Workloads (built with our own writers from the HeNB data model CSV):
 *   inform-40   an Inform with 2 events and 40 FAPService parameters (~7 KB)
 *   gpvr-500    a GetParameterValuesResponse with 500 parameters
 *
 * Usage: bench-soap [shared-data-dir (default ../shared/data)] [seconds per measurement]
 */
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "proto/cwmp.h"
#include "proto/soap.h"

#define MAX_PARAMS 600

static struct hm_cwmp_param params[MAX_PARAMS];
static size_t nparams;
static char arena_mem[1 << 20];

static double now(void)
{
    struct timespec ts;
    /* CPU time of this thread: preemption on the shared machine does not count. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint8_t type_of(const char *t)
{
    if (strstr(t, "unsignedInt"))
        return HM_CWMP_T_UINT;
    if (strstr(t, "int"))
        return HM_CWMP_T_INT;
    if (strstr(t, "boolean"))
        return HM_CWMP_T_BOOL;
    if (strstr(t, "dateTime"))
        return HM_CWMP_T_DATETIME;
    return HM_CWMP_T_STRING;
}

static const char *sample_value(uint8_t t)
{
    switch (t) {
    case HM_CWMP_T_UINT:
        return "1300";
    case HM_CWMP_T_INT:
        return "-12";
    case HM_CWMP_T_BOOL:
        return "true";
    case HM_CWMP_T_DATETIME:
        return "2026-11-27T00:00:00Z";
    default:
        return "HeNB-LTE-Band7";
    }
}

/* Leaf parameters of the HeNB CSV (Parameter,Object,Writable,Value,Value type). */
static void load_params(const char *dir)
{
    char path[1024], line[2048];
    snprintf(path, sizeof(path), "%s/datamodels/henb-tr196-lte-params.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench-soap: %s: cannot open\n", path);
        exit(1);
    }
    while (fgets(line, sizeof(line), f) && nparams < MAX_PARAMS) {
        char *col[5] = {0};
        char *s = line;
        for (int i = 0; i < 5 && s; i++) {
            col[i] = s;
            s = strchr(s, ',');
            if (s)
                *s++ = 0;
        }
        if (!col[4] || strcmp(col[1], "false") != 0)
            continue;
        col[4][strcspn(col[4], "\r\n")] = 0;
        uint8_t t = type_of(col[4]);
        const char *v = col[3][0] ? col[3] : sample_value(t);
        params[nparams++] = (struct hm_cwmp_param){
            hm_slice(hm_xstrndup(col[0], strlen(col[0])), strlen(col[0])),
            hm_slice(hm_xstrndup(v, strlen(v)), strlen(v)), t};
    }
    fclose(f);
}

static void empty_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                        const xmlChar *URI, int nb_namespaces, const xmlChar **namespaces,
                        int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
}

static void empty_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                      const xmlChar *URI)
{
}

static void empty_chars(void *ctx, const xmlChar *ch, int len)
{
}

static xmlSAXHandler sax;
static xmlParserCtxtPtr push;
static volatile size_t sink;

static void run_libxml2(const struct hm_buf *b)
{
    xmlCtxtResetPush(push, NULL, 0, NULL, NULL);
    if (xmlParseChunk(push, b->base, (int)b->len, 1) != 0 || !push->wellFormed)
        abort();
}

static void run_tokenizer(const struct hm_buf *b)
{
    struct hm_soap_arena a;
    struct hm_soap p;
    struct hm_soap_tok t;
    size_t n = 0;
    hm_soap_arena_init(&a, arena_mem, sizeof(arena_mem));
    hm_soap_init(&p, b->base, b->len, &a, NULL);
    do {
        if (hm_soap_next(&p, &t))
            abort();
        n++;
    } while (t.type != HM_SOAP_EOF);
    sink += n;
}

static void run_cwmp(const struct hm_buf *b)
{
    struct hm_soap_arena a;
    struct hm_cwmp_msg m;
    hm_soap_arena_init(&a, arena_mem, sizeof(arena_mem));
    if (hm_cwmp_parse(b->base, b->len, &a, NULL, &m))
        abort();
    sink += m.u.params.n;
}

/* The machine is shared: the three parsers are measured in interleaved rounds, so a
 * burst of load hits all of them alike, and the best round of each is kept. */
static double round_ns(void (*fn)(const struct hm_buf *), const struct hm_buf *b, double secs)
{
    size_t iters = 0;
    double t0 = now(), t1;
    do {
        for (int i = 0; i < 16; i++)
            fn(b);
        iters += 16;
        t1 = now();
    } while (t1 - t0 < secs);
    return (t1 - t0) * 1e9 / (double)iters;
}

#define ROUNDS 15

static void bench(const char *name, const struct hm_buf *b, double secs)
{
    double lx = 1e30, tk = 1e30, cw = 1e30;
    for (int r = 0; r < ROUNDS; r++) {
        lx = HM_MIN(lx, round_ns(run_libxml2, b, secs / ROUNDS));
        tk = HM_MIN(tk, round_ns(run_tokenizer, b, secs / ROUNDS));
        cw = HM_MIN(cw, round_ns(run_cwmp, b, secs / ROUNDS));
    }
    double mb = (double)b->len / 1e6;
    printf("| %-10s | %6zu | %9.0f (%5.0f MB/s) | %9.0f (%5.0f MB/s) | %9.0f (%5.0f MB/s) | "
           "%5.1fx | %5.1fx |\n",
           name, b->len, lx, mb / (lx * 1e-9), tk, mb / (tk * 1e-9), cw, mb / (cw * 1e-9),
           lx / tk, lx / cw);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../shared/data";
    double secs = argc > 2 ? atof(argv[2]) : 2.0;
    load_params(dir);
    if (nparams < 500) {
        fprintf(stderr, "bench-soap: only %zu parameters in the CSV\n", nparams);
        return 1;
    }

    xmlInitParser();
    memset(&sax, 0, sizeof(sax));
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = empty_start;
    sax.endElementNs = empty_end;
    sax.characters = empty_chars;
    push = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL);
    xmlCtxtUseOptions(push, XML_PARSE_NONET);

    struct hm_buf inform = {0}, gpvr = {0};
    struct hm_cwmp_hdr h = {.ver = HM_CWMP_V1_1, .id = HM_SLICE_LIT("cpe-0001")};
    struct hm_cwmp_event ev[2] = {{HM_SLICE_LIT("1 BOOT"), HM_SLICE_LIT("")},
                                  {HM_SLICE_LIT("M Reboot"), HM_SLICE_LIT("rb-17")}};
    /* 40 leaf parameters of the HeNB model (~7 KB envelope), as a HeNB's Inform carries
     * its forced and value-changed parameters. */
    size_t first = 20;
    struct hm_cwmp_inform in = {
        .dev = {HM_SLICE_LIT("Acme Femto Ltd"), HM_SLICE_LIT("00256D"), HM_SLICE_LIT("HeNB-LTE"),
                HM_SLICE_LIT("ACME0000012345")},
        .events = {ev, 2}, .max_envelopes = 1,
        .current_time = HM_SLICE_LIT("2026-11-27T00:00:00+00:00"),
        .params = {params + first, 40}};
    hm_cwmp_write_inform(&inform, &h, &in);
    hm_cwmp_write_gpv_response(&gpvr, &h, params, 500);

    printf("bench-soap: best of %d interleaved rounds, ns per parse (throughput); ratio = libxml2 / hems\n\n",
           ROUNDS);
    printf("| workload   | bytes  | libxml2 SAX2 empty      | hems tokenizer          | "
           "hems hm_cwmp_parse     | tok   | parse |\n");
    printf("|------------|--------|-------------------------|-------------------------|"
           "-------------------------|-------|-------|\n");
    bench("inform-40", &inform, secs);
    bench("gpvr-500", &gpvr, secs);

    xmlFreeParserCtxt(push);
    hm_buf_free(&inform);
    hm_buf_free(&gpvr);
    return sink == 42 ? 1 : 0;
}
