#ifndef HM_API_PROFILES_H
#define HM_API_PROFILES_H
/*
 * Northbound API of fleet configuration (docs/profiles.md, docs/api.md), called by
 * core/api.c's router after authorization, on the shard that got the request:
 *   GET    /api/v1/profiles                 all profiles, by name
 *   GET    /api/v1/profiles/{name}
 *   PUT    /api/v1/profiles/{name}          body: a profile (core/profiles.h); 200 + normalised
 *   DELETE /api/v1/profiles/{name}          204
 *   GET    /api/v1/pools                    pools with their usage
 *   GET    /api/v1/pools/{name}
 *   PUT    /api/v1/pools/{name}             body {"lo":N,"hi":N}: create or change the range;
 *                                            {"kind":"pci","lo","hi","reuse_distance"}: PCI pool
 *   GET    /api/v1/pools/{name}/allocations [{"device","value"[,"tac"]}]
 *   GET    /api/v1/regions                  S1 regions, by name
 *   GET    /api/v1/regions/{name}
 *   PUT    /api/v1/regions/{name}           body: a region (core/regions.h); 200 + normalised
 *   DELETE /api/v1/regions/{name}           204
 *   GET    /api/v1/devices/{id}/tags        ["a","b"]
 *   PUT    /api/v1/devices/{id}/tags        body ["a","b"]
 *   GET    /api/v1/devices/{id}/desired     the merged desired state and its status
 * <path> is the request path after "/api/v1/". Returns the HTTP status, HM_HTTP_DEFER (the
 * answer follows the commit), or -ENOENT when <path> is not one of these resources.
 */
#include "core/fleet.h"
#include "core/httpd.h"
#include "storage/store.h"

int hm_api_profiles(struct hm_http_exchange *x, struct hm_fleet *f, struct hm_store_reader *rd,
                    struct hm_slice path);

#endif
