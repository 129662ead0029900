/* libFuzzer: S1 region parsing, selection and per-device lists (core/regions.h). Input: a
 * region's JSON body (PUT /api/v1/regions/{name}). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/regions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!j)
        return 0;
    struct hm_region *r = NULL;
    char err[256] = "", list[HM_REGION_LIST_MAX + 1];
    if (hm_region_parse("fuzz", j, &r, err, sizeof(err)) == 0) {
        int n = hm_region_list(r, HM_SLICE_LIT("00256D-HeNB-0000000001"), list, sizeof(list));
        if (n <= 0 || (size_t)n != strlen(list))
            abort();
        /* the normalised form parses again, to the same region */
        struct hm_region *r2 = NULL;
        char list2[HM_REGION_LIST_MAX + 1];
        if (hm_region_parse("fuzz", r->json, &r2, err, sizeof(err)) < 0 ||
            hm_region_list(r2, HM_SLICE_LIT("00256D-HeNB-0000000001"), list2, sizeof(list2)) != n ||
            strcmp(list, list2) || !json_equal(r->json, r2->json))
            abort();
        hm_region_pick(&r, 1, HM_SLICE_LIT("a,north"), 150, HM_SLICE_LIT("00256D"),
                       HM_SLICE_LIT("HeNB"));
        hm_region_free(r2);
        hm_region_free(r);
    } else if (r || !err[0]) {
        abort();
    }
    json_decref(j);
    return 0;
}
