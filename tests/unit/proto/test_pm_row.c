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

/* Per-file packs (layout 3): rows state only what differs from the row before, and decode
 * with the inherited object, measInfoId, schema and granularity. */
START_TEST(pack_round_trip_and_inheritance)
{
    char v[512];
    size_t o = 0;
    v[o++] = HM_PM_PACK_VERSION;
    char vals[32];
    size_t vl = hm_pm_row_put_int(vals, 123);
    vl += hm_pm_row_put_nan(vals + vl);
    ck_assert_uint_eq(hm_pm_pack_row_hdr_len(HM_PM_PACK_F_ALL, 6, 5), 1 + 2 + 6 + 2 + 5 + 8 + 4 + 2);
    o += hm_pm_pack_row_hdr(v + o, HM_PM_PACK_F_ALL, HM_SLICE_LIT("Cell=1"), HM_SLICE_LIT("Radio"),
                            0x1122334455667788ull, 900, 2);
    memcpy(v + o, vals, vl);
    o += vl;
    /* second row: another object, same info/schema/gran, suspect */
    o += hm_pm_pack_row_hdr(v + o, HM_PM_PACK_F_OBJ | HM_PM_PACK_F_SUSPECT, HM_SLICE_LIT("Cell=2"),
                            hm_slice(NULL, 0), 0, 0, 2);
    memcpy(v + o, vals, vl);
    o += vl;
    /* third row: new schema, same object */
    o += hm_pm_pack_row_hdr(v + o, HM_PM_PACK_F_INFO, hm_slice(NULL, 0), HM_SLICE_LIT("Rrc"), 7, 0,
                            1);
    o += hm_pm_row_put_real(v + o, 4.5);
    struct hm_pm_pack_it it;
    struct hm_pm_pack_row r;
    ck_assert_int_eq(hm_pm_pack_begin(hm_slice(v, o), &it), 0);
    ck_assert_int_eq(hm_pm_pack_next(&it, &r), 1);
    ck_assert(hm_slice_eq(r.obj, HM_SLICE_LIT("Cell=1")));
    ck_assert(hm_slice_eq(r.info_id, HM_SLICE_LIT("Radio")));
    ck_assert_uint_eq(r.r.schema, 0x1122334455667788ull);
    ck_assert_uint_eq(r.r.gran_s, 900);
    ck_assert_uint_eq(r.r.n, 2);
    ck_assert(!r.r.suspect);
    enum hm_pm_row_tag t;
    int64_t iv;
    double d;
    ck_assert_int_eq(hm_pm_row_value(&r.r, 0, &t, &iv, &d), 0);
    ck_assert_int_eq(t, HM_PM_ROW_INT);
    ck_assert_int_eq(iv, 123);
    ck_assert_int_eq(hm_pm_pack_next(&it, &r), 1);
    ck_assert(hm_slice_eq(r.obj, HM_SLICE_LIT("Cell=2")));
    ck_assert(hm_slice_eq(r.info_id, HM_SLICE_LIT("Radio")));
    ck_assert_uint_eq(r.r.gran_s, 900);
    ck_assert(r.r.suspect);
    ck_assert_int_eq(hm_pm_row_value(&r.r, 1, &t, &iv, &d), 0);
    ck_assert_int_eq(t, HM_PM_ROW_NAN);
    ck_assert_int_eq(hm_pm_pack_next(&it, &r), 1);
    ck_assert(hm_slice_eq(r.obj, HM_SLICE_LIT("Cell=2")));
    ck_assert(hm_slice_eq(r.info_id, HM_SLICE_LIT("Rrc")));
    ck_assert_uint_eq(r.r.schema, 7);
    ck_assert(!r.r.suspect);
    ck_assert_int_eq(hm_pm_row_value(&r.r, 0, &t, &iv, &d), 0);
    ck_assert(t == HM_PM_ROW_REAL && d == 4.5);
    ck_assert_int_eq(hm_pm_pack_next(&it, &r), 0);

    /* malformed: every truncation of the value fails or ends early, never reads past it */
    for (size_t k = 1; k < o; k++) {
        int rc = hm_pm_pack_begin(hm_slice(v, k), &it);
        if (k == 1) {
            ck_assert_int_eq(rc, HM_ECORRUPT); /* no row */
            continue;
        }
        ck_assert_int_eq(rc, 0);
        while ((rc = hm_pm_pack_next(&it, &r)) == 1)
            ;
        ck_assert(rc == 0 || rc == HM_ECORRUPT);
    }
    ck_assert_int_eq(hm_pm_pack_begin(HM_SLICE_LIT("\x02\x00"), &it), HM_EVERSION);
    ck_assert_int_eq(hm_pm_pack_begin(hm_slice(NULL, 0), &it), HM_ECORRUPT);
    /* the first row must state object, info and granularity; unknown flag bits refused */
    char b[64] = {HM_PM_PACK_VERSION};
    size_t bl = 1 + hm_pm_pack_row_hdr(b + 1, HM_PM_PACK_F_OBJ, HM_SLICE_LIT("x"), hm_slice(NULL, 0),
                                       0, 0, 0);
    ck_assert_int_eq(hm_pm_pack_begin(hm_slice(b, bl), &it), 0);
    ck_assert_int_eq(hm_pm_pack_next(&it, &r), HM_ECORRUPT);
    b[1] = (char)0x1f;
    ck_assert_int_eq(hm_pm_pack_begin(hm_slice(b, bl), &it), 0);
    ck_assert_int_eq(hm_pm_pack_next(&it, &r), HM_ECORRUPT);

    /* key: who '\0' BE64 start BE64 file BE16 part */
    char k[600];
    ck_assert_int_eq(hm_pm_pack_key(k, sizeof(k), HM_SLICE_LIT("ME=1"), 0x0102, 0xa0b0, 0x0304),
                     4 + HM_PM_PACK_KEY_TAIL);
    ck_assert_int_eq(memcmp(k, "ME=1\0\0\0\0\0\0\0\x01\x02\0\0\0\0\0\0\xa0\xb0\x03\x04", 23), 0);
    char big[600];
    memset(big, 'a', sizeof(big));
    ck_assert_int_eq(hm_pm_pack_key(k, sizeof(k), hm_slice(big, 511 - HM_PM_PACK_KEY_TAIL + 1), 0,
                                    0, 0), -E2BIG);
    ck_assert_int_eq(hm_pm_pack_key(k, sizeof(k), hm_slice(big, 511 - HM_PM_PACK_KEY_TAIL), 0, 0,
                                    0), 511);
}
END_TEST

/* Pack builder: a row of <n> NIL values (one byte each) with the given identity. */
static struct hm_pm_pack_row brow(const char *obj, const char *info, uint64_t schema,
                                  uint32_t gran, bool suspect, unsigned n, char *vals)
{
    size_t vl = 0;
    for (unsigned i = 0; i < n; i++)
        vl += hm_pm_row_put_nan(vals + vl);
    struct hm_pm_pack_row r = {.obj = hm_slice(obj, strlen(obj)),
                               .info_id = hm_slice(info, strlen(info))};
    r.r = (struct hm_pm_row){.suspect = suspect, .gran_s = gran, .schema = schema,
                             .n = (uint16_t)n, .vals = hm_slice(vals, vl)};
    return r;
}

/* The builder states only what changed from the previous row (byte for byte the value a
 * hand-built pack with those flags has), does not keep pointers into the caller's rows, and
 * the decoder gets every row back whole. */
START_TEST(pack_builder_elides_and_round_trips)
{
    static struct hm_pm_pack pk; /* zeroed: empty */
    ck_assert(hm_pm_pack_empty(&pk));
    ck_assert_uint_eq(hm_pm_pack_value(&pk).len, 0);
    char vals[16], o1[16] = "Cell=1", i1[16] = "Radio";
    /* obj, info, schema, gran, suspect, n, and the flags the builder must pick */
    struct {
        const char *obj, *info;
        uint64_t schema;
        uint32_t gran;
        bool suspect;
        unsigned n, flags;
    } rows[] = {
        {o1, i1, 11, 900, false, 2, HM_PM_PACK_F_ALL},
        {"Cell=2", "Radio", 11, 900, true, 2, HM_PM_PACK_F_OBJ | HM_PM_PACK_F_SUSPECT},
        {"Cell=2", "Radio", 11, 900, false, 3, 0},
        {"Cell=2", "Radio", 12, 900, false, 1, HM_PM_PACK_F_INFO}, /* schema alone */
        {"Cell=2", "Rrc", 12, 900, false, 1, HM_PM_PACK_F_INFO},   /* info alone */
        {"Cell=2", "Rrc", 12, 300, false, 1, HM_PM_PACK_F_GRAN},
        {"", "", 12, 300, false, 0, HM_PM_PACK_F_OBJ | HM_PM_PACK_F_INFO},
        {"", "", 12, 300, false, 1, 0},
        {"Cell=1", "Radio", 11, 900, true, 2, HM_PM_PACK_F_ALL | HM_PM_PACK_F_SUSPECT},
    };
    enum { NR = sizeof(rows) / sizeof(rows[0]) };
    char want[512] = {HM_PM_PACK_VERSION};
    size_t wl = 1;
    for (unsigned k = 0; k < NR; k++) {
        struct hm_pm_pack_row r = brow(rows[k].obj, rows[k].info, rows[k].schema, rows[k].gran,
                                       rows[k].suspect, rows[k].n, vals);
        ck_assert_int_eq(hm_pm_pack_add(&pk, &r), 0);
        wl += hm_pm_pack_row_hdr(want + wl, rows[k].flags, r.obj, r.info_id, rows[k].schema,
                                 rows[k].gran, (uint16_t)rows[k].n);
        memcpy(want + wl, r.r.vals.ptr, r.r.vals.len);
        wl += r.r.vals.len;
        if (k == 0) /* the builder copied the first row: its buffers may change */
            memset(o1, 'x', sizeof(o1) - 1), memset(i1, 'y', sizeof(i1) - 1);
    }
    ck_assert(!hm_pm_pack_empty(&pk));
    struct hm_slice v = hm_pm_pack_value(&pk);
    ck_assert_uint_eq(v.len, wl);
    ck_assert(memcmp(v.ptr, want, wl) == 0);

    struct hm_pm_pack_it it;
    struct hm_pm_pack_row r;
    ck_assert_int_eq(hm_pm_pack_begin(v, &it), 0);
    for (unsigned k = 0; k < NR; k++) {
        const char *eo = k == 0 ? "Cell=1" : rows[k].obj, *ei = k == 0 ? "Radio" : rows[k].info;
        ck_assert_int_eq(hm_pm_pack_next(&it, &r), 1);
        ck_assert(hm_slice_eq(r.obj, hm_slice(eo, strlen(eo))));
        ck_assert(hm_slice_eq(r.info_id, hm_slice(ei, strlen(ei))));
        ck_assert_uint_eq(r.r.schema, rows[k].schema);
        ck_assert_uint_eq(r.r.gran_s, rows[k].gran);
        ck_assert_int_eq(r.r.suspect, rows[k].suspect);
        ck_assert_uint_eq(r.r.n, rows[k].n);
        ck_assert_uint_eq(r.r.vals.len, rows[k].n);
    }
    ck_assert_int_eq(hm_pm_pack_next(&it, &r), 0);

    /* reset: the next row states everything again */
    hm_pm_pack_reset(&pk);
    ck_assert(hm_pm_pack_empty(&pk));
    r = brow("Cell=2", "Rrc", 12, 300, false, 1, vals);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), 0);
    ck_assert_uint_eq(pk.len, 1 + hm_pm_pack_row_hdr_len(HM_PM_PACK_F_ALL, 6, 3) + 1);
    ck_assert_int_eq((unsigned char)pk.val[1], HM_PM_PACK_F_ALL);
}
END_TEST

/* A value is cut exactly where the next row would pass HM_STORE_MAX_VAL; a row that cannot
 * fit even an empty value is refused without touching the value. */
START_TEST(pack_builder_cuts_at_max_val)
{
    static struct hm_pm_pack pk;
    static char vals[HM_STORE_MAX_VAL + 16];
    const size_t first = hm_pm_pack_row_hdr_len(HM_PM_PACK_F_ALL, 1, 1); /* obj "o", info "i" */
    const size_t same = hm_pm_pack_row_hdr_len(0, 0, 0);                 /* 3: flags + n */
    struct hm_pm_pack_row r = brow("o", "i", 5, 900, false, 100, vals);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), 0);
    size_t len = 1 + first + 100;
    ck_assert_uint_eq(pk.len, len);
    while (HM_STORE_MAX_VAL - len >= same + 100) { /* identical rows: 3 + 100 bytes each */
        ck_assert_int_eq(hm_pm_pack_add(&pk, &r), 0);
        len += same + 100;
        ck_assert_uint_eq(pk.len, len);
    }
    /* one byte too many for the room left: full, nothing appended */
    size_t room = HM_STORE_MAX_VAL - len;
    ck_assert_uint_ge(room, same);
    r = brow("o", "i", 5, 900, false, (unsigned)(room - same + 1), vals);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), -ENOSPC);
    ck_assert_uint_eq(pk.len, len);
    /* exactly the room left: appended, the value is HM_STORE_MAX_VAL bytes */
    r = brow("o", "i", 5, 900, false, (unsigned)(room - same), vals);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), 0);
    ck_assert_uint_eq(pk.len, HM_STORE_MAX_VAL);
    /* a row with no values still needs its 3 header bytes */
    r = brow("o", "i", 5, 900, false, 0, vals);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), -ENOSPC);
    /* the full value decodes whole */
    struct hm_pm_pack_it it;
    struct hm_pm_pack_row d;
    ck_assert_int_eq(hm_pm_pack_begin(hm_pm_pack_value(&pk), &it), 0);
    int rc, nrows = 0;
    while ((rc = hm_pm_pack_next(&it, &d)) == 1)
        nrows++;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(nrows, (int)((len - 1 - first - 100) / (same + 100)) + 2);

    /* too large for an empty value: refused, full or empty, the value unchanged */
    r = brow("o", "i", 5, 900, false, (unsigned)(HM_STORE_MAX_VAL - 1 - first + 1), vals);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), -E2BIG);
    ck_assert_uint_eq(pk.len, HM_STORE_MAX_VAL);
    hm_pm_pack_reset(&pk);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), -E2BIG);
    ck_assert(hm_pm_pack_empty(&pk));
    /* one byte less fits an empty value exactly */
    r = brow("o", "i", 5, 900, false, (unsigned)(HM_STORE_MAX_VAL - 1 - first), vals);
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), 0);
    ck_assert_uint_eq(pk.len, HM_STORE_MAX_VAL);
    /* an object or measInfoId over the LE16 length field is refused */
    hm_pm_pack_reset(&pk);
    static char huge[65536];
    memset(huge, 'a', sizeof(huge));
    r = brow("o", "i", 5, 900, false, 0, vals);
    r.obj = hm_slice(huge, sizeof(huge));
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), -E2BIG);
    r.obj = HM_SLICE_LIT("o");
    r.info_id = hm_slice(huge, sizeof(huge));
    ck_assert_int_eq(hm_pm_pack_add(&pk, &r), -E2BIG);
    ck_assert(hm_pm_pack_empty(&pk));
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
    tcase_add_test(tc, pack_round_trip_and_inheritance);
    tcase_add_test(tc, pack_builder_elides_and_round_trips);
    tcase_add_test(tc, pack_builder_cuts_at_max_val);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
