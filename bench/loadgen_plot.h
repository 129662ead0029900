#ifndef HM_LOADGEN_PLOT_H
#define HM_LOADGEN_PLOT_H
/*
 * hems-loadgen's timeline: one point a second of the run (what the progress line shows), kept
 * by the parent, written into the JSON report ("timeline") and, with --plot FILE.svg, drawn
 * as a self-contained SVG (no library, no script): completed and failed sessions per second,
 * the worst worker's p99 exchange latency of each second, and the server's CPU.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct hm_lg_point {
    double t_s;          /* seconds since the start of the run */
    uint64_t ok_per_s;   /* sessions completed in that second */
    uint64_t fail_per_s; /* sessions failed in that second */
    uint64_t err_per_s;  /* errors of any kind in that second */
    uint64_t p99_us;     /* worst worker's p99 exchange latency of that second */
    double server_cpu;   /* percent of one core; < 0: not sampled */
    long server_rss_kb;  /* < 0: not sampled */
};

struct hm_lg_timeline {
    struct hm_lg_point *pts;
    size_t n, cap;
};

void hm_lg_timeline_add(struct hm_lg_timeline *tl, const struct hm_lg_point *p);
void hm_lg_timeline_free(struct hm_lg_timeline *tl);

/* The timeline as a JSON array of objects (new reference). */
json_t *hm_lg_timeline_json(const struct hm_lg_timeline *tl);

/* Writes the SVG to <path> (<title>: the scenario line, escaped here). 0 or -errno. */
int hm_lg_plot_svg(const char *path, const struct hm_lg_timeline *tl, const char *title);

#endif
