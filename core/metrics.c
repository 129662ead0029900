#include "core/metrics.h"

void hm_metrics_render_shards(struct hm_buf *out, struct hm_shard_counters *const *c, unsigned n)
{
#define HM_CTR_RENDER(f, name, type, help)                                                   \
    {                                                                                        \
        uint64_t sum = 0;                                                                    \
        for (unsigned i = 0; i < n; i++)                                                     \
            sum += atomic_load_explicit(&c[i]->f, memory_order_relaxed);                     \
        hm_buf_append_lit(out, "# HELP " name " " help "\n# TYPE " name " " #type "\n" name " "); \
        hm_buf_append_u64(out, sum);                                                         \
        hm_buf_append_lit(out, "\n");                                                        \
    }
    HM_SHARD_COUNTERS(HM_CTR_RENDER)
#undef HM_CTR_RENDER
}
