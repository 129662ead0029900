#include "bench/loadgen_hist.h"

HM_BUILD_ASSERT(HM_LG_HIST_BUCKETS == 2240);

unsigned hm_lg_hist_index(uint64_t v)
{
    if (v < HM_LG_HIST_SUB)
        return (unsigned)v;
    unsigned log2 = 63u - (unsigned)__builtin_clzll(v);
    if (log2 >= HM_LG_HIST_MAX_LOG2)
        return HM_LG_HIST_BUCKETS - 1;
    /* shift so that the value keeps HM_LG_HIST_SUB_BITS significant bits: [64, 128) */
    unsigned shift = log2 - (HM_LG_HIST_SUB_BITS - 1);
    return HM_LG_HIST_SUB + (shift - 1) * HM_LG_HIST_HALF +
           (unsigned)((v >> shift) - HM_LG_HIST_HALF);
}

uint64_t hm_lg_hist_lowest(unsigned idx)
{
    if (idx < HM_LG_HIST_SUB)
        return idx;
    unsigned rel = idx - HM_LG_HIST_SUB;
    unsigned shift = rel / HM_LG_HIST_HALF + 1;
    return (uint64_t)(HM_LG_HIST_HALF + rel % HM_LG_HIST_HALF) << shift;
}

uint64_t hm_lg_hist_highest(unsigned idx)
{
    if (idx < HM_LG_HIST_SUB)
        return idx;
    unsigned shift = (idx - HM_LG_HIST_SUB) / HM_LG_HIST_HALF + 1;
    return hm_lg_hist_lowest(idx) + ((uint64_t)1 << shift) - 1;
}

void hm_lg_hist_record(struct hm_lg_hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->b[hm_lg_hist_index(v)]++;
}

void hm_lg_hist_add_bucket(struct hm_lg_hist *h, unsigned idx, uint64_t n)
{
    HM_BUG_ON(idx >= HM_LG_HIST_BUCKETS);
    h->b[idx] += n;
    h->count += n;
}

void hm_lg_hist_merge(struct hm_lg_hist *dst, const struct hm_lg_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < HM_LG_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
}

uint64_t hm_lg_hist_quantile(const struct hm_lg_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q <= 0.0)
        return h->min;
    if (q >= 1.0)
        return h->max;
    /* rank ceil(q * count), 1-based; the epsilon keeps 0.5 * 1000 at 500, not 501 */
    double r = q * (double)h->count - 1e-9;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HM_LG_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hm_lg_hist_highest(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}
