/* libFuzzer target for the per-file PM values (proto/pm_row.h layout 3 "packs", as read
 * back from the store): every row of a pack that decodes has its n values, re-encoding the
 * rows (every header field stated) decodes to the same rows, and a key built from the
 * input's first bytes stays within its bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pm_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out[1u << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hm_slice in = hm_slice((const char *)data, size);
    char key[600];
    size_t wl = size < 600 ? size : 600;
    int kl = hm_pm_pack_key(key, sizeof(key), hm_slice((const char *)data, wl), 1, 2, 3);
    if (kl >= 0 && (size_t)kl != wl + HM_PM_PACK_KEY_TAIL)
        abort();
    struct hm_pm_pack_it it;
    if (hm_pm_pack_begin(in, &it) != 0)
        return 0;
    struct hm_pm_pack_row row;
    size_t o = 1;
    out[0] = HM_PM_PACK_VERSION;
    int r;
    unsigned nrows = 0;
    while ((r = hm_pm_pack_next(&it, &row)) == 1) {
        size_t need = hm_pm_pack_row_hdr_len(HM_PM_PACK_F_ALL, row.obj.len, row.info_id.len) +
                      row.r.vals.len;
        if (o + need > sizeof(out))
            return 0;
        o += hm_pm_pack_row_hdr(out + o,
                                HM_PM_PACK_F_ALL | (row.r.suspect ? HM_PM_PACK_F_SUSPECT : 0),
                                row.obj, row.info_id, row.r.schema, row.r.gran_s, row.r.n);
        for (unsigned i = 0; i < row.r.n; i++) {
            enum hm_pm_row_tag t;
            int64_t iv = 0;
            double d = 0;
            if (hm_pm_row_value(&row.r, i, &t, &iv, &d) != 0)
                abort(); /* hm_pm_pack_next walked every value */
        }
        memcpy(out + o, row.r.vals.ptr, row.r.vals.len);
        o += row.r.vals.len;
        nrows++;
    }
    if (r != 0)
        return 0;
    /* the re-encoding holds the same rows */
    struct hm_pm_pack_it it1, it2;
    if (hm_pm_pack_begin(in, &it1) != 0 || hm_pm_pack_begin(hm_slice(out, o), &it2) != 0)
        abort();
    struct hm_pm_pack_row a, b;
    for (unsigned k = 0; k < nrows; k++) {
        if (hm_pm_pack_next(&it1, &a) != 1 || hm_pm_pack_next(&it2, &b) != 1)
            abort();
        if (!hm_slice_eq(a.obj, b.obj) || !hm_slice_eq(a.info_id, b.info_id) ||
            a.r.schema != b.r.schema || a.r.gran_s != b.r.gran_s || a.r.n != b.r.n ||
            a.r.suspect != b.r.suspect || !hm_slice_eq(a.r.vals, b.r.vals))
            abort();
    }
    if (hm_pm_pack_next(&it2, &b) != 0)
        abort();
    return 0;
}
