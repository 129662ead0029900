#ifndef HM_API_H
#define HM_API_H
/*
 * Northbound REST API on the admin listener (/api/v1/...), JSON in and out; see core/api.c
 * for the resources and docs/api.md for the reference. <api> must outlive the shards.
 */
#include <stdatomic.h>

#include "core/shard.h"
#include "storage/store.h"

struct hm_api {
    struct hm_store *store;
    struct hm_hems *hems; /* not owned; NULL: no policy API (404) */
    /* SHA-256 of the bearer tokens (raw bytes); all zero: role not configured. With neither
     * configured the API is open (loopback only, enforced by the configuration check). */
    unsigned char reader_sha[32], operator_sha[32];
    bool auth;
    /* The store reader owned by shard <s> (read snapshots on the request's shard). */
    struct hm_store_reader *(*reader_of)(struct hm_shard *s);
    /* Profiles, pools, device tags (core/api_profiles.h); NULL: those resources 404. */
    struct hm_fleet *fleet;
    /* Connection Request client (core/connreq.h); NULL: "connection_request" refused. */
    struct hm_connreq *connreq;
    /* File server (core/files.h); NULL: /api/v1/files is 404 and tasks cannot name a file. */
    struct hm_files *files;
    /* Live alarm streams (core/alarm_stream.h); NULL: /api/v1/alarms/stream is 404. */
    struct hm_alarm_streams *alarm_streams;
    /* Requests waiting for a task's result ("wait_seconds"); zero at start. */
    atomic_uint waiters;
    /* campaigns: rollout campaigns (core/campaigns.h); NULL: /api/v1/campaigns is 404. */
    struct hm_campaigns *campaigns;
};

/* Fills the token hashes of <api> from the hex strings of the configuration. */
void hm_api_set_tokens(struct hm_api *api, const char *reader_hex, const char *operator_hex);

/* Adds the API route; returns routes added (1). */
unsigned hm_api_routes(struct hm_route *r, struct hm_api *api);

#endif
