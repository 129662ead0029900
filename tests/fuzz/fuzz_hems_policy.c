/* libFuzzer: HeMS policy JSON (core/hems_proc.c): validation, whitelist matching and the
 * weighted rendezvous pick over the policy's serving_nodes, which must return a node with a
 * positive weight, or -1 exactly when there is none. */
#include <stdint.h>
#include <stdlib.h>

#include "core/hems_loc.h"
#include "core/hems_proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[200];
    json_t *p = hm_hems_policy_parse((const char *)data, size, err, sizeof(err));
    if (!p)
        return 0;
    json_t *wl = json_object_get(p, "whitelist");
    if (wl)
        (void)hm_hems_whitelisted(wl, HM_SLICE_LIT("00005A"), HM_SLICE_LIT("HeNB"),
                                  HM_SLICE_LIT("R0150"), "R0150.hnb.example");
    json_t *nodes = json_object_get(p, "serving_nodes");
    struct hm_hrw_node n[16];
    size_t k = 0;
    bool any = false;
    for (; nodes && k < json_array_size(nodes) && k < 16; k++) {
        json_t *e = json_array_get(nodes, k), *w = json_object_get(e, "weight");
        n[k].id = json_string_value(json_object_get(e, "id"));
        n[k].weight = w ? json_number_value(w) : 1.0;
        any |= n[k].weight > 0;
    }
    int r = hm_hrw_pick(n, k, hm_slice((const char *)data, size));
    if ((r < 0) == any || (r >= 0 && !(n[r].weight > 0)))
        abort();
    /* location_check: a validated area judges any text; a verdict "inside" a circle is
     * within its radius (plus rounding) */
    json_t *lc = json_object_get(p, "location_check");
    if (lc) {
        size_t h = size / 2;
        double la = 0, lo = 0;
        enum hm_loc_verdict v = hm_hems_loc_judge(lc, NULL, hm_slice((const char *)data, h),
                                                  hm_slice((const char *)data + h, size - h),
                                                  &la, &lo);
        json_t *area = json_object_get(lc, "area"), *c = json_object_get(area, "center");
        if (v == HM_LOC_INSIDE && c &&
            hm_geo_distance_m(json_number_value(json_array_get(c, 0)),
                              json_number_value(json_array_get(c, 1)), la, lo) >
                json_number_value(json_object_get(area, "radius_m")) + 1e-6)
            abort();
        char a[300], o[300];
        hm_hems_loc_names(lc, "Device.", a, o, sizeof(a));
    }
    json_decref(p);
    return 0;
}
