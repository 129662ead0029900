#ifndef HM_API_H
#define HM_API_H
/*
 * Northbound REST API on the admin listener (/api/v1/...), JSON in and out; see core/api.c
 * for the resources and docs/api.md for the reference. <api> must outlive the shards.
 */
#include "core/shard.h"
#include "storage/store.h"

struct hm_api {
    struct hm_store *store;
    /* The store reader owned by shard <s> (read snapshots on the request's shard). */
    struct hm_store_reader *(*reader_of)(struct hm_shard *s);
};

/* Adds the API route; returns routes added (1). */
unsigned hm_api_routes(struct hm_route *r, struct hm_api *api);

#endif
