/* Compact PM rows (proto/pm_row.h): values round-trip exactly (integers of any size, doubles
 * bit for bit, NIL), decode refuses anything malformed, the schema hash is pinned (it is
 * stored on disk), and schema lookup finds names by position. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "proto/pm_row.h"
#include "hm_check.h"

static const int64_t ints[] = {0, 1, -1, 63, 64, -64, -65, 127, 128, 1000000, -1000000,
                               (int64_t)1 << 53, INT64_MAX, INT64_MIN};
static const double reals[] = {4.5, -0.0, 1e-300, 1.7976931348623157e308, 0.1};

static size_t build(char *buf)
{
    size_t n = HM_PM_ROW_HDR;
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        n += hm_pm_row_put_int(buf + n, ints[i]);
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
        n += hm_pm_row_put_real(buf + n, reals[i]);
    n += hm_pm_row_put_nan(buf + n);
    hm_pm_row_hdr(buf, true, 900, 0x0123456789abcdefull, 20);
    return n;
}

START_TEST(values_round_trip)
{
    char buf[512];
    size_t n = build(buf);
    struct hm_pm_row r;
    ck_assert_int_eq(hm_pm_row_decode(hm_slice(buf, n), &r), 0);
    ck_assert(r.suspect);
    ck_assert_uint_eq(r.gran_s, 900);
    ck_assert_uint_eq(r.schema, 0x0123456789abcdefull);
    ck_assert_uint_eq(r.n, 20);
    enum hm_pm_row_tag t;
    int64_t iv;
    double d;
    for (unsigned i = 0; i < 14; i++) {
        ck_assert_int_eq(hm_pm_row_value(&r, i, &t, &iv, &d), 0);
        ck_assert_int_eq(t, HM_PM_ROW_INT);
        ck_assert(iv == ints[i]);
    }
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_int_eq(hm_pm_row_value(&r, 14 + i, &t, &iv, &d), 0);
        ck_assert_int_eq(t, HM_PM_ROW_REAL);
        ck_assert(memcmp(&d, &reals[i], sizeof(d)) == 0);
    }
    ck_assert_int_eq(hm_pm_row_value(&r, 19, &t, &iv, &d), 0);
    ck_assert_int_eq(t, HM_PM_ROW_NAN);
    ck_assert(isnan(d));
    ck_assert_int_eq(hm_pm_row_value(&r, 20, &t, &iv, &d), -ENOENT);
    /* small integers take 2 bytes, the widest 11 */
    ck_assert_uint_eq(hm_pm_row_put_int(buf, 63), 2);
    ck_assert_uint_eq(hm_pm_row_put_int(buf, INT64_MIN), HM_PM_ROW_VAL_MAX);
}
END_TEST

START_TEST(decode_refuses_malformed)
{
    char buf[512];
    size_t n = build(buf);
    struct hm_pm_row r;
    for (size_t k = 0; k < n; k++) /* every truncation */
        ck_assert_int_eq(hm_pm_row_decode(hm_slice(buf, k), &r), HM_ECORRUPT);
    buf[n] = 0;
    ck_assert_int_eq(hm_pm_row_decode(hm_slice(buf, n + 1), &r), HM_ECORRUPT); /* trailing */
    buf[0] = 1; /* version 1: the old one-row-per-measurement record */
    ck_assert_int_eq(hm_pm_row_decode(hm_slice(buf, n), &r), HM_EVERSION);
    n = build(buf);
    buf[1] = 2; /* unknown flag */
    ck_assert_int_eq(hm_pm_row_decode(hm_slice(buf, n), &r), HM_ECORRUPT);
    n = build(buf);
    buf[HM_PM_ROW_HDR] = 7; /* unknown tag */
    ck_assert_int_eq(hm_pm_row_decode(hm_slice(buf, n), &r), HM_ECORRUPT);
    /* an overlong varint */
    char v[HM_PM_ROW_HDR + 12];
    hm_pm_row_hdr(v, false, 900, 1, 1);
    v[HM_PM_ROW_HDR] = HM_PM_ROW_INT;
    memset(v + HM_PM_ROW_HDR + 1, 0x80, 10);
    v[HM_PM_ROW_HDR + 11] = 1;
    ck_assert_int_eq(hm_pm_row_decode(hm_slice(v, sizeof(v)), &r), HM_ECORRUPT);
}
END_TEST

START_TEST(schema_hash_key_and_index)
{
    static const char names[] = "RRC.ConnEstabAtt.Sum\0RRC.ConnMean\0DRB.UEThpDl.0\0RRC.ConnMean";
    struct hm_slice ns = hm_slice(names, sizeof(names)); /* includes the last NUL */
    /* pinned: the hash names stored records, so it must never change */
    uint64_t h = hm_pm_schema_hash(names, sizeof(names));
    ck_assert_uint_eq(h, hm_pm_schema_hash(names, sizeof(names)));
    ck_assert_uint_ne(h, hm_pm_schema_hash(names, sizeof(names) - 1));
    ck_assert_uint_ne(h, 0);
    char other[sizeof(names)];
    memcpy(other, names, sizeof(names));
    other[3] ^= 1;
    ck_assert_uint_ne(h, hm_pm_schema_hash(other, sizeof(other)));
    ck_assert_uint_eq(hm_pm_schema_hash("", 0), 0xcdd3d9130e37cc07ull);
    ck_assert_uint_eq(hm_pm_schema_hash("RRC.ConnMean", 13), 0x2a6ee39da6a0d1caull);
    char k[HM_PM_SCHEMA_KEY_LEN + 1];
    hm_pm_schema_key(k, 0x00ff00ff12345678ull);
    ck_assert_str_eq(k, "pm/s/00ff00ff12345678");
    ck_assert_int_eq(hm_pm_schema_index(ns, hm_slice_cstr("RRC.ConnEstabAtt.Sum")), 0);
    ck_assert_int_eq(hm_pm_schema_index(ns, hm_slice_cstr("RRC.ConnMean")), 1); /* first */
    ck_assert_int_eq(hm_pm_schema_index(ns, hm_slice_cstr("DRB.UEThpDl.0")), 2);
    ck_assert_int_eq(hm_pm_schema_index(ns, hm_slice_cstr("DRB.UEThpDl")), -ENOENT);
    ck_assert_int_eq(hm_pm_schema_index(ns, hm_slice_cstr("")), -ENOENT); /* NUL ends a name */
}
END_TEST

START_TEST(row_key_layout)
{
    char k[64];
    int n = hm_pm_row_key(k, sizeof(k), hm_slice_cstr("ME=1/C=1"), 0x0102030405060708ull,
                          hm_slice_cstr("info"), 0x1112131415161718ull);
    ck_assert_int_eq(n, 8 + 1 + 8 + 4 + 1 + 8);
    ck_assert(memcmp(k, "ME=1/C=1\0\1\2\3\4\5\6\7\10info\0\21\22\23\24\25\26\27\30", 30) == 0);
    ck_assert_int_eq(hm_pm_row_key(k, 29, hm_slice_cstr("ME=1/C=1"), 1, hm_slice_cstr("info"), 1),
                     -E2BIG);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pm_row");
    TCase *tc = tcase_create("row");
    tcase_add_test(tc, values_round_trip);
    tcase_add_test(tc, decode_refuses_malformed);
    tcase_add_test(tc, schema_hash_key_and_index);
    tcase_add_test(tc, row_key_layout);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
