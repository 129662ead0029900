/* libFuzzer target for the per-file PM values (proto/pm_row.h layout 3 "packs", as read
 * back from the store): every row of a pack that decodes has its n values, re-encoding the
 * rows (every header field stated) decodes to the same rows, so do the parts the pack
 * builder (hm_pm_pack_add) cuts them into, none over HM_STORE_MAX_VAL, and a key built from
 * the input's first bytes stays within its bounds. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pm_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out[1u << 20];
static struct hm_pm_pack pk;

static bool same_row(const struct hm_pm_pack_row *a, const struct hm_pm_pack_row *b)
{
    return hm_slice_eq(a->obj, b->obj) && hm_slice_eq(a->info_id, b->info_id) &&
           a->r.schema == b->r.schema && a->r.gran_s == b->r.gran_s && a->r.n == b->r.n &&
           a->r.suspect == b->r.suspect && hm_slice_eq(a->r.vals, b->r.vals);
}

/* What hm_pm_pack_add refuses (-E2BIG): no pack value can hold the row. */
static bool too_big(const struct hm_pm_pack_row *a)
{
    return a->obj.len > 65535 || a->info_id.len > 65535 ||
           1 + hm_pm_pack_row_hdr_len(HM_PM_PACK_F_ALL, a->obj.len, a->info_id.len) +
                   a->r.vals.len >
               HM_STORE_MAX_VAL;
}

/* The builder's value holds the next <n> rows of <lag> that it takes, in order. */
static void check_part(struct hm_pm_pack_it *lag, unsigned n)
{
    struct hm_slice v = hm_pm_pack_value(&pk);
    struct hm_pm_pack_it it;
    struct hm_pm_pack_row a, b;
    if (v.len > HM_STORE_MAX_VAL || hm_pm_pack_begin(v, &it) != 0)
        abort();
    for (unsigned k = 0; k < n; k++) {
        do {
            if (hm_pm_pack_next(lag, &a) != 1)
                abort();
        } while (too_big(&a));
        if (hm_pm_pack_next(&it, &b) != 1 || !same_row(&a, &b))
            abort();
    }
    if (hm_pm_pack_next(&it, &b) != 0)
        abort();
}

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
        if (!same_row(&a, &b))
            abort();
    }
    if (hm_pm_pack_next(&it2, &b) != 0)
        abort();
    /* the builder: parts of the same rows, each within HM_STORE_MAX_VAL */
    struct hm_pm_pack_it lag;
    if (hm_pm_pack_begin(in, &it1) != 0 || hm_pm_pack_begin(in, &lag) != 0)
        abort();
    hm_pm_pack_reset(&pk);
    unsigned inpart = 0;
    while (hm_pm_pack_next(&it1, &a) == 1) {
        int ar = hm_pm_pack_add(&pk, &a);
        if (ar == -ENOSPC) {
            if (hm_pm_pack_empty(&pk))
                abort();
            check_part(&lag, inpart);
            hm_pm_pack_reset(&pk);
            inpart = 0;
            ar = hm_pm_pack_add(&pk, &a);
        }
        if (ar == 0)
            inpart++;
        else if (ar != -E2BIG || !too_big(&a))
            abort();
    }
    if (inpart)
        check_part(&lag, inpart);
    return 0;
}
