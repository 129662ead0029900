#include <errno.h>
#include <string.h>

#include "core/api_json.h"
#include "core/buf.h"
#include "hm_check.h"

#define S(lit) hm_slice(lit, sizeof(lit) - 1)

START_TEST(query_decoding_turns_plus_into_space)
{
    char out[64];
    int n = hm_api_pct_decode(S("a+b%2Bc%20d"), out, sizeof(out));
    ck_assert_int_eq(n, 7);
    ck_assert(memcmp(out, "a b+c d", 7) == 0);
    ck_assert_int_eq(hm_api_pct_decode(S("bad%2"), out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(hm_api_pct_decode(S("nul%00"), out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(hm_api_pct_decode(S("%zz"), out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(hm_api_pct_decode(S("abcd"), out, 3), -EINVAL);
    ck_assert_int_eq(hm_api_query(S("x=1&name=a+b%21&y="), "name", out, sizeof(out)), 4);
    ck_assert_str_eq(out, "a b!");
    ck_assert_int_eq(hm_api_query(S("x=1&y="), "y", out, sizeof(out)), 0);
    ck_assert_int_eq(hm_api_query(S("x=1"), "name", out, sizeof(out)), -ENOENT);
}
END_TEST

START_TEST(path_segments_keep_plus_and_refuse_empty)
{
    char out[8];
    ck_assert_int_eq(hm_api_path_segment(S("A+B%2FC"), out, sizeof(out)), 5);
    ck_assert_str_eq(out, "A+B/C");
    ck_assert_int_eq(hm_api_path_segment(S(""), out, sizeof(out)), -EINVAL);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(hm_api_path_segment(S("x%00"), out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(hm_api_path_segment(S("1234567"), out, sizeof(out)), 7); /* cap - 1 */
    ck_assert_int_eq(hm_api_path_segment(S("12345678"), out, sizeof(out)), -EINVAL);
}
END_TEST

START_TEST(encode_round_trips_through_decode)
{
    static const char raw[] = "00256D-HeNB 1/a+b\r\n~._-\xff";
    struct hm_buf b = {0};
    hm_api_pct_encode(&b, hm_slice(raw, sizeof(raw) - 1));
    ck_assert(memchr(b.base, '\r', b.len) == NULL);
    ck_assert(memchr(b.base, ' ', b.len) == NULL);
    ck_assert(memchr(b.base, '/', b.len) == NULL);
    char out[64];
    int n = hm_api_path_segment(hm_slice(b.base, b.len), out, sizeof(out));
    ck_assert_int_eq(n, (int)sizeof(raw) - 1);
    ck_assert(memcmp(out, raw, sizeof(raw) - 1) == 0);
    hm_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("api_json");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, query_decoding_turns_plus_into_space);
    tcase_add_test(tc, path_segments_keep_plus_and_refuse_empty);
    tcase_add_test(tc, encode_round_trips_through_decode);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
