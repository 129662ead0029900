#include "core/buf.h"
#include "core/err.h"
#include "hm_check.h"

START_TEST(buf_grows_and_formats)
{
    struct hm_buf b = {0};
    for (int i = 0; i < 1000; i++)
        hm_buf_printf(&b, "%d,", i);
    ck_assert_uint_eq(b.len, 3890);
    ck_assert(memcmp(b.base, "0,1,2,", 6) == 0);
    ck_assert(memcmp(b.base + b.len - 4, "999,", 4) == 0);
    hm_buf_reset(&b);
    hm_buf_append_u64(&b, 18446744073709551615ull);
    ck_assert_uint_eq(b.len, 20);
    ck_assert(memcmp(b.base, "18446744073709551615", 20) == 0);
    hm_buf_free(&b);
    ck_assert_ptr_null(b.base);
}
END_TEST

START_TEST(strerror_covers_codes)
{
    ck_assert_str_eq(hm_strerror(HM_EBADHTTP), "malformed HTTP message");
    ck_assert_str_eq(hm_strerror(-ENOENT), "No such file or directory");
    ck_assert_str_eq(hm_strerror(-4999), "unknown error");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, buf_grows_and_formats);
    tcase_add_test(tc, strerror_covers_codes);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
