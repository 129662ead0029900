#ifndef HM_PM_MIGRATE_H
#define HM_PM_MIGRATE_H
/*
 * One-time migration of stored PM measurements from data layout 2 (one HM_DB_PM row per
 * measValue, docs/pm.md "Storage layout") to layout 3 (per-file packs), so that an upgraded
 * node keeps serving the series it ingested before: the series API reads only packs.
 *
 * Each layout-2 row "<who>/<obj>" '\0' BE64(start) info_id '\0' BE64(schema) becomes a row of
 * a pack keyed <who> '\0' BE64(start) BE64(HM_PM_MIGRATED_FILE_ID) BE16(part); its values
 * and its schema (HM_DB_FILES "pm/s/...") are kept as they are. The old row is deleted in
 * the same transaction as the pack that takes it over, so a crash in the middle loses
 * nothing (a rerun migrates what is left). Rows of layout 1 (before the compact rows) are
 * counted and left in place: nothing reads them, re-uploading their files re-ingests them.
 *
 * Done once per store: HM_DB_META "pm/layout" = "3" records that no layout-2 row is left, and
 * later starts return at once. Blocking (waits for its commits): call at start, before
 * ingestion begins. Uses <r> (a reader of <store>, not in a read) and the store's writer.
 */
#include <stdint.h>

struct hm_store;
struct hm_store_reader;

#define HM_PM_MIGRATED_FILE_ID 0x6d69677261746564ull /* "migrated" */

struct hm_pm_migrate_stats {
    uint64_t rows;      /* layout-2 rows moved into packs */
    uint64_t packs;     /* pack values written */
    uint64_t v1_left;   /* layout-1 (or unknown) values left in place */
    uint64_t corrupt;   /* layout-2 rows that did not decode: left in place */
    int already;        /* 1: the store was marked migrated, nothing scanned */
};

/* 0 and <st> filled, or a negative error (a failed scan or commit: the store is left as the
 * commits that succeeded made it, consistent; the next start retries). */
int hm_pm_migrate(struct hm_store *store, struct hm_store_reader *r, struct hm_pm_migrate_stats *st);

#endif
