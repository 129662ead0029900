#ifndef HM_STORE_HEALTH_H
#define HM_STORE_HEALTH_H
/*
 * Health signals of the store's writer, for admission control and operators
 * (implemented in storage/store.c; docs/admission.md). All lock-free, any thread.
 *
 * Write failures come in episodes: the first failed commit whose cause is a full disk
 * (ENOSPC, EDQUOT, a short write (EIO) while the filesystem has under 1 MiB free, or the map
 * at store.map_max_gb) opens an episode, logged once with its cause; every batch during the
 * episode fails with -ENOSPC (its session gets 8005 + Retry-After); the writer keeps trying
 * each new batch, and the first commit that succeeds closes the episode (logged once).
 * Reads are not affected.
 */
#include <stdint.h>

#include "core/buf.h"

struct hm_store;

/* Batches waiting in the writer's ring (approximate: a racy snapshot). */
unsigned hm_store_queue_depth(struct hm_store *s);

/* 0 while commits succeed; during a failing-writes episode the negative error of its
 * cause (-ENOSPC for a full disk or map, else the LMDB error mapped as in store.h). */
int hm_store_write_error(struct hm_store *s);

/* Failing-writes episodes since open. */
uint64_t hm_store_write_fail_episodes(struct hm_store *s);

/* EWMA (alpha 1/8) of the writer's transaction time, begin to durable commit, in us. */
uint64_t hm_store_commit_ewma_us(struct hm_store *s);

/* Appends hems_store_write_failing, hems_store_disk_full, hems_store_write_fail_episodes_total,
 * hems_store_queue_depth and hems_store_commit_ewma_seconds (Prometheus text) to <out>. */
void hm_store_render_health(struct hm_buf *out, struct hm_store *s);

#endif
