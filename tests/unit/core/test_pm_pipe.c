/* PM pipeline (core/pm_pipe.c) on a real LMDB store: files left in the spool (the crash
 * path) are ingested, the rows land in HM_DB_PM, a malformed file is quarantined without
 * stopping the rest, and a header duplicate is not ingested twice. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pm_pipe.h"
#include "storage/record.h"
#include "hm_check.h"

#ifdef HM_TSAN
/* as tests/unit/storage/store_test.h: ck_ring's inline assembly is invisible to TSan */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:ck_ring\n";
}
#endif

static void put_file(const char *path, const char *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static int count_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    (void)k;
    (void)v;
    (*(unsigned *)arg)++;
    return 0;
}

START_TEST(spooled_files_ingest_and_bad_one_is_quarantined)
{
    char dir[] = "/tmp/hm-pm-pipe-XXXXXX", spool[128], sdir[128], path[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(spool, sizeof(spool), "%s/pm-spool", dir);
    snprintf(sdir, sizeof(sdir), "%s/store", dir);
    ck_assert_int_eq(mkdir(spool, 0700), 0);
    size_t n;
    char *hw = slurp(HM_SHARED_DATA "/pm/handwritten-A20261126.1400+0000-1415+0000_HeNB-000001.xml", &n);
    snprintf(path, sizeof(path), "%s/A20261126.1400+0000-1415+0000_HeNB-000001.xml.pm", spool);
    put_file(path, hw, n);
    snprintf(path, sizeof(path), "%s/u1-1-copy.xml.pm", spool); /* same header: duplicate */
    put_file(path, hw, n);
    snprintf(path, sizeof(path), "%s/A20261126.1400+0000-1415+0000_HeNB-BAD.xml.pm", spool);
    put_file(path, hw, n / 2); /* truncated */
    snprintf(path, sizeof(path), "%s/.tmp-never-acked", spool);
    put_file(path, "x", 1);

    struct hm_store_opts so = {.map_size = 16u << 20, .map_max = 1u << 30, .no_sync = true};
    struct hm_store *store = NULL;
    ck_assert_int_eq(hm_store_open(sdir, &so, &store), 0);
    struct hm_pm_pipe_opts po = {.data_dir = dir, .upload_path = "/pm/", .spool_max_files = 10,
                                 .spool_max_bytes = 1 << 20, .max_file_bytes = 1 << 20,
                                 .threads = 1, .realm = "hems"};
    char err[256];
    struct hm_pm_pipe *p = NULL;
    ck_assert_int_eq(hm_pm_pipe_create(&po, store, &p, err, sizeof(err)), 0);
    struct hm_pm_pipe_stats st;
    for (int i = 0; i < 5000; i++) {
        hm_pm_pipe_stats(p, &st);
        if (st.spool_files == 0)
            break;
        usleep(1000);
    }
    ck_assert_uint_eq(st.spool_files, 0);
    ck_assert_uint_eq(st.files_ingested, 1);
    ck_assert_uint_eq(st.files_quarantined, 1);
    ck_assert_uint_eq(st.uploads_dup, 1);
    ck_assert_uint_eq(st.meas_ingested, 16);
    hm_pm_pipe_destroy(p);

    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(store, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    unsigned rows = 0;
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PM, hm_slice(NULL, 0), hm_slice(NULL, 0), count_cb,
                                   &rows), 0);
    ck_assert_uint_eq(rows, 16);
    hm_store_read_end(r);
    hm_store_reader_close(r);
    hm_store_close(store);

    snprintf(path, sizeof(path), "%s/pm-quarantine/A20261126.1400+0000-1415+0000_HeNB-BAD.xml.pm", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/.tmp-never-acked", spool);
    ck_assert_int_ne(access(path, F_OK), 0);
    free(hw);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pm_pipe");
    TCase *tc = tcase_create("pipe");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, spooled_files_ingest_and_bad_one_is_quarantined);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
