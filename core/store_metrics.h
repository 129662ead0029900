#ifndef HM_STORE_METRICS_H
#define HM_STORE_METRICS_H
/* Prometheus rendering of the store's statistics (mdb_stat per database, map, readers,
 * group-commit batches per commit and commit latency histograms). <store> is a
 * struct hm_store *; runs a short read transaction, so call it on scrape, not per request. */
#include "core/buf.h"

void hm_store_render_metrics(struct hm_buf *out, void *store);

#endif
