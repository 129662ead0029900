/* File server pure parts (core/files.h) and its I/O thread on a real LMDB store: names that
 * could escape the files folder are refused, FileType strings are canonical, the applied
 * record is written only for tasks that name a file, and a derived password is stable across
 * restarts (the secret persists) and differs per credential id. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"
#include "hm_check.h"

#ifdef HM_TSAN
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:ck_ring\n";
}
#endif

START_TEST(names)
{
    const char *ok[] = {"a", "cfg.xml", "HeNB_v1-2.3.bin", "x..y"};
    const char *bad[] = {"", ".", "..", ".secret", "../x", "a/b", "a%2fb", "a b", "a\\b",
                         "a\nb", "x:y", "\xc3\xa9"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(ok); i++)
        ck_assert_msg(hm_files_name_ok(hm_slice_cstr(ok[i])), "%s", ok[i]);
    for (size_t i = 0; i < HM_ARRAY_SIZE(bad); i++)
        ck_assert_msg(!hm_files_name_ok(hm_slice_cstr(bad[i])), "%s", bad[i]);
    char longn[130];
    memset(longn, 'a', sizeof(longn));
    ck_assert(hm_files_name_ok(hm_slice(longn, 128)));
    ck_assert(!hm_files_name_ok(hm_slice(longn, 129)));
    ck_assert(!hm_files_name_ok(hm_slice("a\0b", 3)));
}
END_TEST

START_TEST(types)
{
    ck_assert_str_eq(hm_files_type_canon("3"), "3 Vendor Configuration File");
    ck_assert_str_eq(hm_files_type_canon("1 Firmware Upgrade Image"), "1 Firmware Upgrade Image");
    ck_assert_ptr_null(hm_files_type_canon("0"));
    ck_assert_ptr_null(hm_files_type_canon("6"));
    ck_assert_ptr_null(hm_files_type_canon("33"));
    ck_assert_ptr_null(hm_files_type_canon("3 vendor configuration file"));
    ck_assert_ptr_null(hm_files_type_canon(NULL));
}
END_TEST

static int count_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    (void)k;
    ck_assert(v.len > 1 && v.ptr[0] == 1);
    (*(unsigned *)arg)++;
    return 0;
}

static void done_cb(void *arg, int st)
{
    atomic_store((atomic_int *)arg, st + 1000);
}

START_TEST(applied_and_passwords)
{
    char dir[] = "/tmp/hm-files-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sdir[64];
    snprintf(sdir, sizeof(sdir), "%s/store", dir);
    struct hm_store *st;
    ck_assert_int_eq(hm_store_open(sdir, &(struct hm_store_opts){.no_sync = 1}, &st), 0);
    struct hm_files_opts o = {.data_dir = dir, .path = "/files/", .cwmp_listen = "127.0.0.1:1",
                              .realm = "r", .max_bytes = 100};
    char err[256];
    struct hm_files *f;
    ck_assert_int_eq(hm_files_create(&o, st, &f, err, sizeof(err)), 0);
    char p1[40], p2[40], p3[40];
    ck_assert_int_eq(hm_files_password(f, HM_SLICE_LIT("00aa"), p1, sizeof(p1)), 32);
    ck_assert_int_eq(hm_files_password(f, HM_SLICE_LIT("00ab"), p2, sizeof(p2)), 32);
    ck_assert_str_ne(p1, p2);
    ck_assert_int_eq(hm_files_password(f, HM_SLICE_LIT(""), p3, sizeof(p3)), -EINVAL);
    ck_assert_int_eq(hm_files_password(f, HM_SLICE_LIT("00aa"), p3, 8), -EINVAL);
    hm_files_destroy(f);
    struct stat sb;
    char sec[96];
    snprintf(sec, sizeof(sec), "%s/files/.secret", dir);
    ck_assert_int_eq(stat(sec, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(hm_files_create(&o, st, &f, err, sizeof(err)), 0);
    ck_assert_int_eq(hm_files_password(f, HM_SLICE_LIT("00aa"), p3, sizeof(p3)), 32);
    ck_assert_str_eq(p1, p3); /* same secret after a restart */
    hm_files_destroy(f);

    struct hm_store_batch b;
    hm_store_batch_init(&b);
    const char *with = "{\"rpc\":\"Download\",\"file\":\"c.xml\",\"file_type\":\"3 Vendor "
                       "Configuration File\",\"sha256\":\"ab\"}";
    const char *without = "{\"rpc\":\"Download\",\"url\":\"http://x/\"}";
    ck_assert_int_eq(hm_files_record_applied(&b, HM_SLICE_LIT("D1"), hm_slice_cstr(without), 1, 5),
                     0);
    ck_assert_uint_eq(b.nops, 0);
    ck_assert_int_eq(hm_files_record_applied(&b, HM_SLICE_LIT("D1"), hm_slice_cstr(with), 2, 5), 0);
    ck_assert_uint_eq(b.nops, 1);
    atomic_int done = 0;
    ck_assert_int_eq(hm_store_submit(st, &b, done_cb, &done), 0);
    while (!atomic_load(&done))
        usleep(1000);
    ck_assert_int_eq(atomic_load(&done), 1000);
    struct hm_store_reader *rd;
    ck_assert_int_eq(hm_store_reader_open(st, &rd), 0);
    ck_assert_int_eq(hm_store_read_begin(rd), 0);
    unsigned n = 0;
    ck_assert_int_eq(hm_store_scan(rd, HM_DB_FILES, hm_slice("applied/D1", 11), hm_slice(NULL, 0),
                                   count_cb, &n),
                     0);
    struct hm_slice v;
    ck_assert_int_eq(hm_store_get(rd, HM_DB_FILES, hm_slice("applied/D1\0" "3", 12), &v), 0);
    ck_assert(memmem(v.ptr, v.len, "\"file\":\"c.xml\"", 14) != NULL);
    hm_store_read_end(rd);
    ck_assert_uint_eq(n, 1);
    hm_store_reader_close(rd);
    hm_store_batch_fini(&b);
    hm_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("files");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, names);
    tcase_add_test(tc, types);
    tcase_add_test(tc, applied_and_passwords);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
