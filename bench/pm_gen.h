#ifndef HM_BENCH_PM_GEN_H
#define HM_BENCH_PM_GEN_H
/*
 * Realistic TS 32.435 measCollecFile generator for benchmarks and the load generator:
 * six measInfo blocks of TS 32.425-style LTE counters (RRC, E-RAB, DRB, radio, handover,
 * CSG), 254 counters per cell (each base counter expanded over its causes / QCIs), in both
 * the measType p= / r p= form and the measTypes / measResults list form, with NIL values and
 * suspect flags as real HeNB files have them. With 2 cells a file is about 25 KB.
 */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"

struct hm_pm_gen {
    uint64_t rng; /* xorshift state: same seed, same values */
};

/* Appends one 15-minute file of HeNB <sender> ("HeNB-000042") beginning at <begin> (Unix
 * seconds, UTC) with <cells> cells to <o>. */
void hm_pm_gen_file(struct hm_pm_gen *g, struct hm_buf *o, const char *sender, int cells,
                    time_t begin);

/* TS 32.432 file name "A20261126.1400+0000-1415+0000_<sender>.xml" for the same file. */
void hm_pm_gen_name(struct hm_buf *o, const char *sender, time_t begin);

/* The PM benchmarks' files: sender "HeNB-<henb>" (6 digits), beginning 2026-11-26 14:00 +
 * <minute> minutes. */
void hm_pm_gen_bench_file(struct hm_pm_gen *g, struct hm_buf *o, int henb, int cells, int minute);

/* The parsing floor the PM benchmarks compare with: libxml2's SAX2 push parser with empty
 * callbacks. hm_pm_floor_sax() is the handler for xmlCreatePushParserCtxt();
 * hm_pm_floor_parse() resets <ctxt> and parses <data>[<len>] in 64 KiB chunks: 0, or -1
 * when the file is not well formed. */
struct _xmlSAXHandler;
struct _xmlParserCtxt;
struct _xmlSAXHandler *hm_pm_floor_sax(void);
int hm_pm_floor_parse(struct _xmlParserCtxt *ctxt, const char *data, size_t len);

/* CPU seconds of the calling thread; monotonic wall seconds. */
double hm_pm_thread_cpu(void);
double hm_pm_wall(void);

#endif
