/* Range header resolution (proto/http_range.h): RFC 9110 14.2 cases the file server relies
 * on, including the ones that must be ignored (200) rather than refused (416). */
#include <errno.h>
#include <string.h>

#include "core/bug.h"
#include "proto/http_range.h"
#include "hm_check.h"

static int rng(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
    *a = *b = 777;
    return hm_http_range_parse(hm_slice_cstr(v), size, a, b);
}

START_TEST(single_ranges_resolve)
{
    uint64_t a, b;
    ck_assert_int_eq(rng("bytes=0-99", 1000, &a, &b), 1);
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(b, 99);
    ck_assert_int_eq(rng("bytes=10-", 1000, &a, &b), 1); /* open end */
    ck_assert_uint_eq(a, 10);
    ck_assert_uint_eq(b, 999);
    ck_assert_int_eq(rng("bytes=900-5000", 1000, &a, &b), 1); /* last-pos clamped */
    ck_assert_uint_eq(b, 999);
    ck_assert_int_eq(rng("bytes=-100", 1000, &a, &b), 1); /* suffix */
    ck_assert_uint_eq(a, 900);
    ck_assert_uint_eq(b, 999);
    ck_assert_int_eq(rng("bytes=-5000", 1000, &a, &b), 1); /* suffix longer than the file */
    ck_assert_uint_eq(a, 0);
    ck_assert_int_eq(rng("Bytes= 5-5 ", 10, &a, &b), 1); /* case, OWS */
    ck_assert_uint_eq(a, 5);
    ck_assert_uint_eq(b, 5);
    ck_assert_int_eq(rng("bytes=999-999", 1000, &a, &b), 1);
}
END_TEST

START_TEST(unsatisfiable_is_erange)
{
    uint64_t a, b;
    ck_assert_int_eq(rng("bytes=1000-", 1000, &a, &b), -ERANGE);
    ck_assert_int_eq(rng("bytes=1000-2000", 1000, &a, &b), -ERANGE);
    ck_assert_int_eq(rng("bytes=-0", 1000, &a, &b), -ERANGE);
    ck_assert_int_eq(rng("bytes=0-", 0, &a, &b), -ERANGE);
    ck_assert_int_eq(rng("bytes=-1", 0, &a, &b), -ERANGE);
    ck_assert_uint_eq(a, 777); /* untouched unless 1 */
}
END_TEST

START_TEST(invalid_or_multiple_are_ignored)
{
    uint64_t a, b;
    const char *ign[] = {"", "bytes=", "bytes", "items=0-1", "bytes=5-3", "bytes=a-b",
                         "bytes=0-1,3-4", "bytes=0-1 x", "bytes=--1", "bytes=-",
                         "bytes=99999999999999999999-", "bytes=0-99999999999999999999",
                         "bytes =0-1", "bytes=0x10-20"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(ign); i++)
        ck_assert_msg(rng(ign[i], 1000, &a, &b) == 0, "%s", ign[i]);
    ck_assert_int_eq(hm_http_range_parse(hm_slice(NULL, 0), 10, &a, &b), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http_range");
    TCase *tc = tcase_create("proto");
    tcase_add_test(tc, single_ranges_resolve);
    tcase_add_test(tc, unsatisfiable_is_erange);
    tcase_add_test(tc, invalid_or_multiple_are_ignored);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
