#ifndef HM_HEMS_LOC_H
#define HM_HEMS_LOC_H
/*
 * Location verification at the Initial HeMS (TS 32.593 5.1.2.2 "optionally verifies
 * location"; docs/procedures.md "Location verification").
 *
 * Policy "location_check": {"latitude": path, "longitude": path (defaults: the TR-262
 * FAP.GPS.LockedLatitude / LockedLongitude, relative to the device's root), "scale": the
 * unit of the values in degrees (default 1e-6: TR-262 reports micro-degrees), "area":
 * {"center": [lat, lon], "radius_m": r} or {"box": [lat_min, lon_min, lat_max, lon_max]},
 * "missing": "allow" (default) | "refuse"}. A whitelist entry may carry its own "area",
 * which replaces the global one for the devices it admits. No "location_check": off.
 *
 * Pure functions over the caller's JSON (read under the hems mutex); no allocation.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"

enum hm_loc_verdict {
    HM_LOC_UNKNOWN, /* the values are not at hand (not reported, 0 = never fixed, garbage) */
    HM_LOC_INSIDE,
    HM_LOC_OUTSIDE,
};

/* Validates a "location_check" object / an "area" object; 0 or -EINVAL with <err>. */
int hm_hems_loc_check(json_t *lc, char *err, size_t errlen);
int hm_hems_area_check(json_t *area, const char *what, char *err, size_t errlen);

/* The full parameter names of the latitude and longitude for a device of root <root>. */
void hm_hems_loc_names(json_t *lc, const char *root, char *lat, char *lon, size_t cap);

/* Judges the reported values (text as the CPE sent them, empty slice: absent) against
 * <area> (NULL: the global one of <lc>). *<lat_deg>, *<lon_deg> get the position in degrees
 * when it could be read. */
enum hm_loc_verdict hm_hems_loc_judge(json_t *lc, json_t *area, struct hm_slice lat,
                                      struct hm_slice lon, double *lat_deg, double *lon_deg);

/* Whether "missing": "refuse" is set (an unknown position refuses the device). */
bool hm_hems_loc_refuse_missing(json_t *lc);

/* Great-circle distance in metres (haversine, mean Earth radius 6371008.8 m). */
double hm_geo_distance_m(double lat1, double lon1, double lat2, double lon2);

#endif
