#ifndef HM_API_POLICY_H
#define HM_API_POLICY_H
/*
 * /api/v1/policies: the HeMS policy (whitelist, assignment: serving_nodes, segws, static, s1;
 * ipsec_indicator, location_params, location_check, pm, registration) read and changed through the API, changes
 * persisted in the store. See core/api_policy.c and docs/api.md.
 */
#include "core/hems_proc.h"
#include "core/httpd.h"
#include "storage/store.h"

/* Handles <p> (the path after /api/v1/) when it is "policies" or "policies/...": the status
 * to return or HM_HTTP_DEFER; -ENOENT for other paths. <hems> NULL: 404. Shard thread. */
int hm_api_policy(struct hm_http_exchange *x, struct hm_hems *hems, struct hm_store *store,
                  struct hm_slice p);

/* Applies the overrides stored by earlier PUTs to <h> (start-up, before the shards run).
 * A stored section that no longer validates is logged and skipped. 0 or -errno. */
int hm_api_policy_load(struct hm_hems *h, struct hm_store *st);

#endif
