/* libFuzzer target for proto/pm_row.c (compact PM rows as read back from the store): a row
 * that decodes yields exactly n values, re-encoding them decodes to the same values, and a
 * schema lookup over arbitrary bytes stays in bounds. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pm_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hm_slice in = hm_slice((const char *)data, size);
    size_t cl = size ? data[size - 1] % 32 : 0;
    if (cl > size)
        cl = size;
    (void)hm_pm_schema_index(in, hm_slice((const char *)data + size - cl, cl));
    (void)hm_pm_schema_hash((const char *)data, size);
    struct hm_pm_row r;
    if (hm_pm_row_decode(in, &r) != 0)
        return 0;
    static char out[HM_PM_ROW_HDR + 65536 * HM_PM_ROW_VAL_MAX];
    size_t o = HM_PM_ROW_HDR;
    for (unsigned i = 0; i < r.n; i++) {
        enum hm_pm_row_tag t;
        int64_t iv = 0;
        double d = 0;
        if (hm_pm_row_value(&r, i, &t, &iv, &d) != 0)
            abort(); /* decode walked every value */
        o += t == HM_PM_ROW_INT ? hm_pm_row_put_int(out + o, iv)
             : t == HM_PM_ROW_REAL ? hm_pm_row_put_real(out + o, d)
                                   : hm_pm_row_put_nan(out + o);
    }
    enum hm_pm_row_tag t;
    int64_t iv;
    double d;
    if (hm_pm_row_value(&r, r.n, &t, &iv, &d) == 0)
        abort();
    hm_pm_row_hdr(out, r.suspect, r.gran_s, r.schema, r.n);
    struct hm_pm_row r2;
    if (hm_pm_row_decode(hm_slice(out, o), &r2) != 0 || r2.n != r.n || r2.schema != r.schema ||
        r2.gran_s != r.gran_s || r2.suspect != r.suspect)
        abort();
    for (unsigned i = 0; i < r.n; i++) {
        enum hm_pm_row_tag t1, t2;
        int64_t i1 = 0, i2 = 0;
        double d1 = 0, d2 = 0;
        if (hm_pm_row_value(&r, i, &t1, &i1, &d1) || hm_pm_row_value(&r2, i, &t2, &i2, &d2) ||
            t1 != t2 || (t1 == HM_PM_ROW_INT && i1 != i2) ||
            (t1 == HM_PM_ROW_REAL && memcmp(&d1, &d2, sizeof(d1)) != 0))
            abort();
    }
    return 0;
}
