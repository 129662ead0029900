#ifndef HM_LG_HIST_H
#define HM_LG_HIST_H
/*
 * Log-linear latency histogram (HDR-style) for hems-loadgen: fixed buckets, no allocation
 * after init, mergeable by adding counts, so workers can ship theirs to the parent.
 *
 * Values are unsigned 64-bit integers (the loadgen records microseconds). Values below
 * HM_LG_HIST_SUB (128) get one bucket each (exact); above that, each power-of-two range
 * [2^k, 2^(k+1)) is split into 64 equal buckets, so a bucket's width is at most 1/64 of its
 * lower bound: a reported value is within 1.6% (0.8% from the bucket middle) of the truth.
 * Values >= 2^HM_LG_HIST_MAX_LOG2 are clamped into the last bucket (max stays exact).
 * Percentiles return the highest value equivalent to the bucket holding the rank
 * ceil(q * count), capped at the exact maximum (HdrHistogram's convention).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "core/bug.h"

#define HM_LG_HIST_SUB_BITS 7
#define HM_LG_HIST_SUB (1u << HM_LG_HIST_SUB_BITS)     /* exact buckets: 0..127 */
#define HM_LG_HIST_HALF (HM_LG_HIST_SUB / 2)           /* buckets per power of two */
#define HM_LG_HIST_MAX_LOG2 40                         /* 2^40 us = 12.7 days */
#define HM_LG_HIST_BUCKETS                                                                   \
    (HM_LG_HIST_SUB + (HM_LG_HIST_MAX_LOG2 - HM_LG_HIST_SUB_BITS) * HM_LG_HIST_HALF)

/* Embeddable; zero-initialised is an empty histogram (min is meaningful only if count). */
struct hm_lg_hist {
    uint64_t count;
    uint64_t min, max;
    uint64_t sum; /* for the mean; wraps only after 2^64 us in total */
    uint64_t b[HM_LG_HIST_BUCKETS];
};

/* Bucket index of <v> and the range of values [lo, hi] a bucket stands for. */
unsigned hm_lg_hist_index(uint64_t v);
uint64_t hm_lg_hist_lowest(unsigned idx);
uint64_t hm_lg_hist_highest(unsigned idx);

static inline void hm_lg_hist_reset(struct hm_lg_hist *h)
{
    memset(h, 0, sizeof(*h));
}

/* Records one value. O(1), no allocation. */
void hm_lg_hist_record(struct hm_lg_hist *h, uint64_t v);

/* Records <n> occurrences of bucket <idx> (used to rebuild a shipped histogram); <lo>/<hi>
 * are not known exactly there, so min/max/sum must be restored by the caller. */
void hm_lg_hist_add_bucket(struct hm_lg_hist *h, unsigned idx, uint64_t n);

/* Adds <src> into <dst>. */
void hm_lg_hist_merge(struct hm_lg_hist *dst, const struct hm_lg_hist *src);

/* Value at quantile <q> in [0, 1] (0 when empty); see the convention at the top. */
uint64_t hm_lg_hist_quantile(const struct hm_lg_hist *h, double q);

static inline double hm_lg_hist_mean(const struct hm_lg_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

#endif
