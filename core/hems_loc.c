/* Location verification at the Initial HeMS (see hems_loc.h, docs/procedures.md). */
#include "core/hems_loc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"

#define FAIL(...)                                                                            \
    do {                                                                                     \
        snprintf(err, errlen, __VA_ARGS__);                                                  \
        return -EINVAL;                                                                      \
    } while (0)

static bool num_in(json_t *v, double lo, double hi)
{
    return json_is_number(v) && json_number_value(v) >= lo && json_number_value(v) <= hi;
}

int hm_hems_area_check(json_t *area, const char *what, char *err, size_t errlen)
{
    if (!json_is_object(area))
        FAIL("%s must be an object with center+radius_m or box", what);
    json_t *c = json_object_get(area, "center"), *r = json_object_get(area, "radius_m");
    json_t *b = json_object_get(area, "box");
    if ((c != NULL) == (b != NULL))
        FAIL("%s needs either 'center' (with 'radius_m') or 'box'", what);
    if (c) {
        if (!json_is_array(c) || json_array_size(c) != 2 ||
            !num_in(json_array_get(c, 0), -90, 90) || !num_in(json_array_get(c, 1), -180, 180))
            FAIL("%s.center must be [latitude, longitude] in degrees", what);
        if (!num_in(r, 1, 20037509)) /* half the Earth's circumference */
            FAIL("%s.radius_m must be a number of metres (1 .. 20037509)", what);
    } else {
        if (!json_is_array(b) || json_array_size(b) != 4 ||
            !num_in(json_array_get(b, 0), -90, 90) || !num_in(json_array_get(b, 2), -90, 90) ||
            !num_in(json_array_get(b, 1), -180, 180) || !num_in(json_array_get(b, 3), -180, 180))
            FAIL("%s.box must be [lat_min, lon_min, lat_max, lon_max] in degrees", what);
        if (json_number_value(json_array_get(b, 0)) > json_number_value(json_array_get(b, 2)))
            FAIL("%s.box: lat_min is above lat_max", what);
    }
    return 0;
}

int hm_hems_loc_check(json_t *lc, char *err, size_t errlen)
{
    if (!json_is_object(lc))
        FAIL("'location_check' must be an object");
    static const char *const paths[] = {"latitude", "longitude"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(paths); i++) {
        json_t *p = json_object_get(lc, paths[i]);
        if (p && (!json_is_string(p) || !json_string_length(p) || json_string_length(p) > 200))
            FAIL("location_check.%s must be a parameter path", paths[i]);
    }
    json_t *s = json_object_get(lc, "scale"), *m = json_object_get(lc, "missing");
    if (s && !(json_is_number(s) && json_number_value(s) > 0))
        FAIL("location_check.scale must be a positive number (degrees per unit)");
    if (m && (!json_is_string(m) || (strcmp(json_string_value(m), "allow") &&
                                     strcmp(json_string_value(m), "refuse"))))
        FAIL("location_check.missing must be \"allow\" or \"refuse\"");
    json_t *a = json_object_get(lc, "area");
    if (!a)
        FAIL("location_check.area is required (whitelist entries may override it)");
    return hm_hems_area_check(a, "location_check.area", err, errlen);
}

void hm_hems_loc_names(json_t *lc, const char *root, char *lat, char *lon, size_t cap)
{
    const char *la = json_string_value(json_object_get(lc, "latitude"));
    const char *lo = json_string_value(json_object_get(lc, "longitude"));
    if (!la)
        la = "FAP.GPS.LockedLatitude";
    if (!lo)
        lo = "FAP.GPS.LockedLongitude";
    bool aa = !strncmp(la, "Device.", 7) || !strncmp(la, "InternetGatewayDevice.", 22);
    bool ao = !strncmp(lo, "Device.", 7) || !strncmp(lo, "InternetGatewayDevice.", 22);
    snprintf(lat, cap, "%s%s", aa ? "" : root, la);
    snprintf(lon, cap, "%s%s", ao ? "" : root, lo);
}

bool hm_hems_loc_refuse_missing(json_t *lc)
{
    const char *m = json_string_value(json_object_get(lc, "missing"));
    return m && !strcmp(m, "refuse");
}

double hm_geo_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dphi = (lat2 - lat1) * rad, dl = (lon2 - lon1) * rad;
    double a = sin(dphi / 2) * sin(dphi / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dl / 2) * sin(dl / 2);
    if (a > 1)
        a = 1;
    return 2 * 6371008.8 * asin(sqrt(a));
}

/* A number in the CPE's text (xsd:int, or a decimal for vendor parameters). */
static bool parse_num(struct hm_slice s, double *out)
{
    char buf[48];
    if (!s.len || s.len >= sizeof(buf))
        return false;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    while (*end == ' ')
        end++;
    if (end == buf || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

enum hm_loc_verdict hm_hems_loc_judge(json_t *lc, json_t *area, struct hm_slice lat,
                                      struct hm_slice lon, double *lat_deg, double *lon_deg)
{
    double la, lo;
    if (!parse_num(lat, &la) || !parse_num(lon, &lo))
        return HM_LOC_UNKNOWN;
    json_t *sc = json_object_get(lc, "scale");
    double scale = sc ? json_number_value(sc) : 1e-6;
    la *= scale;
    lo *= scale;
    *lat_deg = la;
    *lon_deg = lo;
    /* TR-262: 0 (both) is reported while the device never had a fix */
    if ((la == 0 && lo == 0) || la < -90 || la > 90 || lo < -180 || lo > 180)
        return HM_LOC_UNKNOWN;
    if (!area)
        area = json_object_get(lc, "area");
    json_t *c = json_object_get(area, "center");
    if (c) {
        double d = hm_geo_distance_m(json_number_value(json_array_get(c, 0)),
                                     json_number_value(json_array_get(c, 1)), la, lo);
        return d <= json_number_value(json_object_get(area, "radius_m")) ? HM_LOC_INSIDE
                                                                         : HM_LOC_OUTSIDE;
    }
    json_t *b = json_object_get(area, "box");
    double a0 = json_number_value(json_array_get(b, 0)), o0 = json_number_value(json_array_get(b, 1));
    double a1 = json_number_value(json_array_get(b, 2)), o1 = json_number_value(json_array_get(b, 3));
    bool lon_ok = o0 <= o1 ? (lo >= o0 && lo <= o1) : (lo >= o0 || lo <= o1); /* antimeridian */
    return la >= a0 && la <= a1 && lon_ok ? HM_LOC_INSIDE : HM_LOC_OUTSIDE;
}
