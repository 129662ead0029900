/* PM pipeline (core/pm_pipe.c) on a real LMDB store: files left in the spool (the crash
 * path) are ingested, the rows land in HM_DB_PM, a malformed file is quarantined without
 * stopping the rest, and a header duplicate is not ingested twice. */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/pm_migrate.h"
#include "core/pm_pipe.h"
#include "proto/pm_row.h"
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

struct rows {
    unsigned packs, rows, values, suspect;
};

/* Every HM_DB_PM value must be a per-file pack (proto/pm_row.h layout 3) under a pack key,
 * each of its rows valid. */
static int count_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    struct rows *c = arg;
    ck_assert_uint_ge(k.len, HM_PM_PACK_KEY_TAIL);
    ck_assert_int_eq(k.ptr[k.len - HM_PM_PACK_KEY_TAIL], '\0');
    ck_assert_uint_le(v.len, HM_STORE_MAX_VAL);
    struct hm_pm_pack_it it;
    struct hm_pm_pack_row row;
    ck_assert_int_eq(hm_pm_pack_begin(v, &it), 0);
    int r;
    while ((r = hm_pm_pack_next(&it, &row)) == 1) {
        ck_assert_uint_eq(row.r.gran_s, 900);
        c->rows++;
        c->values += row.r.n;
        c->suspect += row.r.suspect;
    }
    ck_assert_int_eq(r, 0);
    c->packs++;
    return 0;
}

static int count_only_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    (void)k;
    (void)v;
    (*(unsigned *)arg)++;
    return 0;
}

struct find {
    struct hm_store_reader *r;
    const char *counter;
    struct hm_slice obj;
    unsigned found;
    enum hm_pm_row_tag tag;
    int64_t i;
    double d;
    bool suspect;
};

/* Looks <counter> up in each row of the object in a pack through the row's schema record. */
static int find_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    (void)k;
    struct find *f = arg;
    struct hm_pm_pack_it it;
    struct hm_pm_pack_row row;
    ck_assert_int_eq(hm_pm_pack_begin(v, &it), 0);
    while (hm_pm_pack_next(&it, &row) == 1) {
        if (!hm_slice_eq(row.obj, f->obj))
            continue;
        char sk[HM_PM_SCHEMA_KEY_LEN + 1];
        hm_pm_schema_key(sk, row.r.schema);
        struct hm_slice names;
        ck_assert_int_eq(
            hm_store_get(f->r, HM_DB_FILES, hm_slice(sk, HM_PM_SCHEMA_KEY_LEN), &names), 0);
        ck_assert_int_eq(names.ptr[0], 1);
        ck_assert_uint_eq(hm_pm_schema_hash(names.ptr + 1, names.len - 1), row.r.schema);
        int idx = hm_pm_schema_index(hm_slice(names.ptr + 1, names.len - 1),
                                     hm_slice_cstr(f->counter));
        if (idx >= 0) {
            ck_assert_int_eq(hm_pm_row_value(&row.r, (unsigned)idx, &f->tag, &f->i, &f->d), 0);
            f->suspect = row.r.suspect;
            f->found++;
        }
    }
    return 0;
}

/* <object> is "<sender>/<measObjLdn>": the sender's packs, rows of that measObjLdn. */
static struct find find_value(struct hm_store_reader *r, const char *object, const char *counter)
{
    const char *slash = strchr(object, '/');
    ck_assert_ptr_nonnull(slash);
    struct find f = {.r = r, .counter = counter, .obj = hm_slice_cstr(slash + 1)};
    char prefix[256];
    size_t n = (size_t)(slash - object);
    memcpy(prefix, object, n);
    prefix[n++] = '\0'; /* sender '\0' */
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PM, hm_slice(prefix, n), hm_slice(NULL, 0), find_cb, &f),
                     0);
    return f;
}

/* A test's folders: dir (mkdtemp), dir/pm-spool (made), dir/store. */
/* The shared hand-written 32.435 sample most tests spool (16 measurements). */
#define HW_SAMPLE HM_SHARED_DATA "/pm/handwritten-A20261126.1400+0000-1415+0000_HeNB-000001.xml"

struct fx {
    char dir[32], spool[128], sdir[128];
};

static void fx_dirs(struct fx *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/hm-pm-pipe-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->spool, sizeof(f->spool), "%s/pm-spool", f->dir);
    snprintf(f->sdir, sizeof(f->sdir), "%s/store", f->dir);
    ck_assert_int_eq(mkdir(f->spool, 0700), 0);
}

/* The store under dir/store (no fsync: the crash tests are in tests/integration). */
static struct hm_store *fx_store(struct fx *f)
{
    struct hm_store_opts so = {.map_size = 16u << 20, .map_max = 1u << 30, .no_sync = true};
    struct hm_store *store = NULL;
    ck_assert_int_eq(hm_store_open(f->sdir, &so, &store), 0);
    return store;
}

/* A pipeline with one thread on dir's spool; it recovers what the spool holds. */
static struct hm_pm_pipe *fx_pipe(struct fx *f, struct hm_store *store)
{
    struct hm_pm_pipe_opts po = {.data_dir = f->dir, .upload_path = "/pm/", .spool_max_files = 10,
                                 .spool_max_bytes = 1 << 20, .max_file_bytes = 1 << 20,
                                 .threads = 1, .realm = "hems"};
    char err[256];
    struct hm_pm_pipe *p = NULL;
    ck_assert_msg(hm_pm_pipe_create(&po, store, &p, err, sizeof(err)) == 0, "%s", err);
    return p;
}

/* Waits (5 s at most) until the spool is empty and at least <settled> files were ingested or
 * quarantined; returns the pipeline's counters then. */
static struct hm_pm_pipe_stats settle(struct hm_pm_pipe *p, uint64_t settled)
{
    struct hm_pm_pipe_stats st;
    for (int i = 0; i < 5000; i++) {
        hm_pm_pipe_stats(p, &st);
        if (st.spool_files == 0 && st.files_ingested + st.files_quarantined >= settled)
            break;
        usleep(1000);
    }
    return st;
}

static void rm_tree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(spooled_files_ingest_and_bad_one_is_quarantined)
{
    struct fx fx;
    fx_dirs(&fx);
    char *dir = fx.dir, *spool = fx.spool, path[512];
    size_t n;
    char *hw = slurp(HW_SAMPLE, &n);
    snprintf(path, sizeof(path), "%s/A20261126.1400+0000-1415+0000_HeNB-000001.xml.pm", spool);
    put_file(path, hw, n);
    snprintf(path, sizeof(path), "%s/u1-1-copy.xml.pm", spool); /* same header: duplicate */
    put_file(path, hw, n);
    snprintf(path, sizeof(path), "%s/A20261126.1400+0000-1415+0000_HeNB-BAD.xml.pm", spool);
    put_file(path, hw, n / 2); /* truncated */
    snprintf(path, sizeof(path), "%s/.tmp-never-acked", spool);
    put_file(path, "x", 1);

    struct hm_store *store = fx_store(&fx);
    struct hm_pm_pipe *p = fx_pipe(&fx, store);
    struct hm_pm_pipe_stats st = settle(p, 0);
    ck_assert_uint_eq(st.spool_files, 0);
    ck_assert_uint_eq(st.files_ingested, 1);
    ck_assert_uint_eq(st.files_quarantined, 1);
    ck_assert_uint_eq(st.uploads_dup, 1);
    ck_assert_uint_eq(st.meas_ingested, 16);
    hm_pm_pipe_destroy(p);

    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(store, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    /* one row per measValue (3), 16 values, the second cell's row suspect */
    struct rows c = {0};
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PM, hm_slice(NULL, 0), hm_slice(NULL, 0), count_cb, &c),
                     0);
    ck_assert_uint_eq(c.packs, 1); /* one value for the file */
    ck_assert_uint_eq(c.rows, 3);
    ck_assert_uint_eq(c.values, 16);
    ck_assert_uint_eq(c.suspect, 1);
    unsigned schemas = 0;
    ck_assert_int_eq(hm_store_scan(r, HM_DB_FILES, HM_SLICE_LIT("pm/s/"), hm_slice(NULL, 0),
                                   count_only_cb, &schemas), 0);
    ck_assert_uint_eq(schemas, 2); /* the two measInfo counter lists */
    const char *c1 = "ManagedElement=HeNB-000001/ENBFunction=1,EUtranCellFDD=1";
    const char *c2 = "ManagedElement=HeNB-000001/ENBFunction=1,EUtranCellFDD=2";
    struct find f = find_value(r, c1, "RRC.ConnEstabAtt.Sum");
    ck_assert_uint_eq(f.found, 1);
    ck_assert_int_eq(f.tag, HM_PM_ROW_INT);
    ck_assert_int_eq(f.i, 123);
    ck_assert(!f.suspect);
    f = find_value(r, c1, "RRC.ConnMean");
    ck_assert_int_eq(f.tag, HM_PM_ROW_REAL);
    ck_assert(f.d == 4.5);
    f = find_value(r, c1, "DRB.IPVolDl.Sum");
    ck_assert_int_eq(f.tag, HM_PM_ROW_INT);
    ck_assert_int_eq(f.i, 1048576);
    f = find_value(r, c2, "ERAB.EstabInitAttNbr.Sum");
    ck_assert_uint_eq(f.found, 1);
    ck_assert_int_eq(f.tag, HM_PM_ROW_NAN);
    ck_assert(f.suspect);
    f = find_value(r, c2, "RRU.PrbTotDl"); /* cell 2 has no Radio values */
    ck_assert_uint_eq(f.found, 0);
    hm_store_read_end(r);
    hm_store_reader_close(r);
    hm_store_close(store);

    snprintf(path, sizeof(path), "%s/pm-quarantine/A20261126.1400+0000-1415+0000_HeNB-BAD.xml.pm", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/.tmp-never-acked", spool);
    ck_assert_int_ne(access(path, F_OK), 0);
    free(hw);
    rm_tree(dir);
}
END_TEST

/* A measValue wider than one store value (1500 counters, ~55 KB of names) is cut into
 * several rows, each with its own schema; every value stays reachable by name. */
START_TEST(wide_measvalue_is_split_into_rows)
{
    struct fx fx;
    fx_dirs(&fx);
    char *dir = fx.dir, *spool = fx.spool, path[512];
    struct hm_buf f = {0};
    hm_buf_append_str(&f, "<measCollecFile><fileHeader fileFormatVersion=\"32.435 V10.0\">"
                          "<fileSender localDn=\"ME=W\"/><measCollec beginTime=\"2026-11-26T14:00:00Z\"/>"
                          "</fileHeader><measData><managedElement localDn=\"ME=W\"/>"
                          "<measInfo measInfoId=\"wide\"><granPeriod duration=\"PT900S\" "
                          "endTime=\"2026-11-26T14:15:00Z\"/><measTypes>");
    for (int i = 0; i < 1500; i++)
        hm_buf_printf(&f, "%sVendor.Counter.Long.Name.Number.%04d", i ? " " : "", i);
    hm_buf_append_str(&f, "</measTypes><measValue measObjLdn=\"Cell=1\"><measResults>");
    for (int i = 0; i < 1500; i++)
        hm_buf_printf(&f, "%s%d", i ? " " : "", i * 3);
    hm_buf_append_str(&f, "</measResults></measValue></measInfo></measData><fileFooter>"
                          "<measCollec endTime=\"2026-11-26T14:15:00Z\"/></fileFooter></measCollecFile>");
    snprintf(path, sizeof(path), "%s/A20261126.1400+0000-1415+0000_W.xml.pm", spool);
    put_file(path, f.base, f.len);
    hm_buf_free(&f);

    struct hm_store *store = fx_store(&fx);
    struct hm_pm_pipe *p = fx_pipe(&fx, store);
    struct hm_pm_pipe_stats st = settle(p, 0);
    ck_assert_uint_eq(st.files_ingested, 1);
    ck_assert_uint_eq(st.meas_ingested, 1500);
    hm_pm_pipe_destroy(p);

    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(store, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    struct rows c = {0};
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PM, hm_slice(NULL, 0), hm_slice(NULL, 0), count_cb, &c),
                     0);
    ck_assert_uint_ge(c.rows, 14); /* 1500 x 37 bytes of names, < 4000 per schema record */
    ck_assert_uint_eq(c.values, 1500);
    ck_assert_uint_ge(c.packs, 2); /* ~4.5 KB of values: parts of one file's value */
    ck_assert_uint_lt(c.packs, c.rows);
    unsigned schemas = 0;
    ck_assert_int_eq(hm_store_scan(r, HM_DB_FILES, HM_SLICE_LIT("pm/s/"), hm_slice(NULL, 0),
                                   count_only_cb, &schemas), 0);
    ck_assert_uint_eq(schemas, c.rows);
    for (int i = 0; i < 1500; i += 131) {
        char name[64];
        snprintf(name, sizeof(name), "Vendor.Counter.Long.Name.Number.%04d", i);
        struct find fd = find_value(r, "ME=W/Cell=1", name);
        ck_assert_uint_eq(fd.found, 1);
        ck_assert_int_eq(fd.tag, HM_PM_ROW_INT);
        ck_assert_int_eq(fd.i, i * 3);
    }
    hm_store_read_end(r);
    hm_store_reader_close(r);
    hm_store_close(store);
    rm_tree(dir);
}
END_TEST

struct acks {
    pthread_mutex_t mu;
    int n, st201, st200, other;
};

static void ack(void *arg, int status)
{
    struct acks *a = arg;
    pthread_mutex_lock(&a->mu);
    a->n++;
    a->st201 += status == 201;
    a->st200 += status == 200;
    a->other += status != 201 && status != 200;
    pthread_mutex_unlock(&a->mu);
}

static struct acks acks_get(struct acks *a)
{
    pthread_mutex_lock(&a->mu);
    struct acks c = *a;
    pthread_mutex_unlock(&a->mu);
    return c;
}

/* Uploads through the spool (hm_pm_pipe_spool, the path of the HTTP handler): a group of
 * concurrent files is acknowledged 201 only once spooled, a duplicate name inside the same
 * group gets 200, every file is ingested, and the spool ends empty (no .tmp- left). */
START_TEST(uploads_through_the_spool_group)
{
    char dir[] = "/tmp/hm-pm-pipe-XXXXXX", sdir[128], path[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sdir, sizeof(sdir), "%s/store", dir);
    size_t n;
    char *hw = slurp(HW_SAMPLE, &n);
    struct hm_store_opts so = {.map_size = 16u << 20, .map_max = 1u << 30};
    struct hm_store *store = NULL;
    ck_assert_int_eq(hm_store_open(sdir, &so, &store), 0);
    struct hm_pm_pipe_opts po = {.data_dir = dir, .upload_path = "/pm/", .spool_max_files = 100,
                                 .spool_max_bytes = 1 << 24, .max_file_bytes = 1 << 20,
                                 .threads = 2, .realm = "hems"};
    char err[256];
    struct hm_pm_pipe *p = NULL;
    ck_assert_int_eq(hm_pm_pipe_create(&po, store, &p, err, sizeof(err)), 0);
    struct acks a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    enum { N = 40 };
    for (int i = 0; i <= N; i++) {
        /* distinct senders (header identity) per file; file N repeats file 0's name */
        struct hm_buf b = {0};
        char sender[64];
        snprintf(sender, sizeof(sender), "HeNB-%06d", i % N + 1);
        const char *at = strstr(hw, "HeNB-000001");
        hm_buf_append(&b, hw, (size_t)(at - hw));
        hm_buf_append_str(&b, sender);
        const char *rest = at + 11;
        const char *at2 = strstr(rest, "HeNB-000001");
        hm_buf_append(&b, rest, (size_t)(at2 - rest));
        hm_buf_append_str(&b, sender);
        hm_buf_append(&b, at2 + 11, n - (size_t)(at2 + 11 - hw));
        char name[128];
        snprintf(name, sizeof(name), "A20261126.1400+0000-1415+0000_%s.xml", sender);
        ck_assert_int_eq(hm_pm_pipe_spool(p, name, b.base, b.len, ack, &a), 0);
    }
    struct hm_pm_pipe_stats st;
    for (int i = 0; i < 10000; i++) {
        hm_pm_pipe_stats(p, &st);
        if (acks_get(&a).n == N + 1 && st.spool_files == 0)
            break;
        usleep(1000);
    }
    struct acks c = acks_get(&a);
    ck_assert_int_eq(c.n, N + 1);
    ck_assert_int_eq(c.st201, N);
    ck_assert_int_eq(c.st200, 1);
    ck_assert_int_eq(c.other, 0);
    ck_assert_uint_eq(st.spool_files, 0);
    ck_assert_uint_eq(st.files_ingested, N);
    ck_assert_uint_eq(st.meas_ingested, 16u * N);
    /* a second upload of an ingested file: 200 by its committed marker */
    char *again = malloc(n);
    memcpy(again, hw, n);
    ck_assert_int_eq(hm_pm_pipe_spool(p, "A20261126.1400+0000-1415+0000_HeNB-000001.xml", again,
                                      n, ack, &a), 0);
    for (int i = 0; i < 5000 && acks_get(&a).n < N + 2; i++)
        usleep(1000);
    ck_assert_int_eq(acks_get(&a).st200, 2);
    hm_pm_pipe_destroy(p);
    hm_store_close(store);
    snprintf(path, sizeof(path), "%s/pm-spool", dir);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    unsigned left = 0;
    while ((e = readdir(d)))
        left += e->d_name[0] != '.' || strncmp(e->d_name, ".tmp-", 5) == 0;
    closedir(d);
    ck_assert_uint_eq(left, 0);
    free(hw);
    rm_tree(dir);
}
END_TEST

/* File markers are written without jansson: they must still be JSON that jansson reads
 * back, for a name with a quote, a backslash, a control byte and bytes that are not UTF-8
 * (taken as Latin-1), on both the ingested and the quarantined path. */
struct markers {
    int n, ingested, quarantined, weird;
};

static int marker_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    struct markers *m = arg;
    ck_assert_uint_ge(v.len, 2);
    ck_assert_int_eq(v.ptr[0], 1);
    json_error_t e;
    json_t *j = json_loadb(v.ptr + 1, v.len - 1, 0, &e);
    ck_assert_msg(j != NULL, "marker %.*s: %s", (int)k.len, k.ptr, e.text);
    const char *st = json_string_value(json_object_get(j, "status"));
    const char *name = json_string_value(json_object_get(j, "name"));
    ck_assert_ptr_nonnull(st);
    ck_assert_ptr_nonnull(name);
    m->n++;
    m->ingested += strcmp(st, "ingested") == 0;
    if (strcmp(st, "quarantined") == 0) {
        m->quarantined++;
        ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "error")));
    }
    if (strcmp(name, "we\"ird\\\x01\xc3\xbf.xml") == 0)
        m->weird++;
    if (strcmp(st, "ingested") == 0) {
        ck_assert_int_eq(json_integer_value(json_object_get(j, "measurements")), 16);
        ck_assert_str_eq(json_string_value(json_object_get(j, "sender")),
                         "ManagedElement=HeNB-000001");
        ck_assert_str_eq(json_string_value(json_object_get(j, "format")), "3gpp");
    }
    json_decref(j);
    return 0;
}

START_TEST(markers_are_json_for_any_name)
{
    struct fx fx;
    fx_dirs(&fx);
    char *dir = fx.dir, *spool = fx.spool, path[512];
    size_t n;
    char *hw = slurp(HW_SAMPLE, &n);
    snprintf(path, sizeof(path), "%s/u1-1-we\"ird\\\x01\xff.xml.pm", spool);
    put_file(path, hw, n);
    snprintf(path, sizeof(path), "%s/u1-2-we\"ird\\\x01\xff.xml.pm", spool);
    put_file(path, hw, n / 3); /* truncated: quarantined */

    struct hm_store *store = fx_store(&fx);
    struct hm_pm_pipe *p = fx_pipe(&fx, store);
    struct hm_pm_pipe_stats st = settle(p, 0);
    ck_assert_uint_eq(st.files_ingested, 1);
    ck_assert_uint_eq(st.files_quarantined, 1);
    hm_pm_pipe_destroy(p);

    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(store, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    struct markers m = {0};
    ck_assert_int_eq(hm_store_scan(r, HM_DB_FILES, HM_SLICE_LIT("pm/f/"), hm_slice(NULL, 0),
                                   marker_cb, &m), 0);
    ck_assert_int_eq(m.n, 2);
    ck_assert_int_eq(m.ingested, 1);
    ck_assert_int_eq(m.quarantined, 1);
    ck_assert_int_eq(m.weird, 2);
    m = (struct markers){0};
    ck_assert_int_eq(hm_store_scan(r, HM_DB_FILES, HM_SLICE_LIT("pm/h/"), hm_slice(NULL, 0),
                                   marker_cb, &m), 0);
    ck_assert_int_eq(m.n, 1);
    ck_assert_int_eq(m.ingested, 1);
    hm_store_read_end(r);
    hm_store_reader_close(r);
    hm_store_close(store);
    free(hw);
    rm_tree(dir);
}
END_TEST

/* ---- spool segments (docs/pm.md "Spool") ---- */

static void seg_rec(struct hm_buf *b, const char *key, const char *data, size_t n)
{
    size_t kl = strlen(key);
    unsigned char h[16] = {'P', 'M', 'R', '1', (unsigned char)kl, (unsigned char)(kl >> 8),
                           (unsigned char)kl, (unsigned char)(kl >> 8)}; /* name = key */
    for (int i = 0; i < 8; i++)
        h[8 + i] = (unsigned char)((uint64_t)n >> (8 * i));
    hm_buf_append(b, h, sizeof(h));
    hm_buf_append(b, key, kl);
    hm_buf_append(b, key, kl);
    hm_buf_append(b, data, n);
}

static void put_done(void *arg, int status)
{
    __atomic_store_n((int *)arg, status == 0 ? 1 : -1, __ATOMIC_SEQ_CST);
}

/* A file marker committed before the start (a file whose commit completed before a crash
 * that lost the segment's unlink). */
static void put_marker_sync(struct hm_store *store, const char *name)
{
    char k[300];
    snprintf(k, sizeof(k), "pm/f/%s", name);
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_FILES, hm_slice_cstr(k),
                                        HM_SLICE_LIT("\x01{\"status\":\"ingested\"}")), 0);
    int done = 0;
    ck_assert_int_eq(hm_store_submit(store, &b, put_done, &done), 0);
    for (int i = 0; i < 5000 && !__atomic_load_n(&done, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    ck_assert_int_eq(done, 1);
    hm_store_batch_fini(&b);
}

/* After a crash the spool holds segments: their files without a committed marker are
 * ingested (a broken one quarantined, copied out of its segment), files with one are not
 * parsed again, a segment with nothing left goes at once, a damaged one keeps its intact
 * records and stays, and a .tmp- segment (never acknowledged) is deleted. */
START_TEST(segments_are_recovered_after_a_crash)
{
    struct fx fx;
    fx_dirs(&fx);
    char *dir = fx.dir, *spool = fx.spool, path[512];
    size_t n, n2;
    char *hw = slurp(HW_SAMPLE, &n);
    char *ex = slurp(HM_SHARED_DATA "/pm/example-both-forms-A20261126.1400+0000-1415+0000_HeNB-EX.xml", &n2);
    const char *ka = "A20261126.1400+0000-1415+0000_HeNB-000001.xml";
    const char *kb = "A20261126.1400+0000-1415+0000_HeNB-000002.xml";
    const char *kc = "A20261126.1400+0000-1415+0000_HeNB-BAD.xml";
    const char *kd = "A20261126.1400+0000-1415+0000_HeNB-000004.xml";
    const char *ke = "A20261126.1400+0000-1415+0000_HeNB-EX.xml";
    struct hm_buf s1 = {0}, s2 = {0}, s3 = {0};
    hm_buf_append_str(&s1, "HMPMSEG1");
    seg_rec(&s1, ka, hw, n);
    seg_rec(&s1, kb, "NOT XML", 7); /* committed before the crash: not parsed again */
    seg_rec(&s1, kc, hw, n / 2);    /* truncated: quarantined */
    hm_buf_append_str(&s2, "HMPMSEG1");
    seg_rec(&s2, kd, "NOT XML", 7); /* all committed: the segment goes */
    hm_buf_append_str(&s3, "HMPMSEG1");
    seg_rec(&s3, ke, ex, n2);
    hm_buf_append_str(&s3, "PMRX garbage after the intact record");
    snprintf(path, sizeof(path), "%s/s0000000000000010.pms", spool);
    put_file(path, s1.base, s1.len);
    snprintf(path, sizeof(path), "%s/s0000000000000020.pms", spool);
    put_file(path, s2.base, s2.len);
    snprintf(path, sizeof(path), "%s/s0000000000000030.pms", spool);
    put_file(path, s3.base, s3.len);
    snprintf(path, sizeof(path), "%s/.tmp-s0000000000000040.pms", spool);
    put_file(path, s1.base, s1.len);

    struct hm_store *store = fx_store(&fx);
    put_marker_sync(store, kb);
    put_marker_sync(store, kd);
    struct hm_pm_pipe *p = fx_pipe(&fx, store);
    struct hm_pm_pipe_stats st = settle(p, 3);
    ck_assert_uint_eq(st.spool_files, 0);
    ck_assert_uint_eq(st.spool_bytes, 0);
    ck_assert_uint_eq(st.files_ingested, 2);
    ck_assert_uint_eq(st.files_quarantined, 1);
    hm_pm_pipe_destroy(p);

    /* only the damaged segment is left */
    DIR *d = opendir(spool);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    unsigned left = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || strncmp(e->d_name, ".tmp-", 5) == 0) {
            ck_assert_str_eq(e->d_name, "s0000000000000030.pms");
            left++;
        }
    closedir(d);
    ck_assert_uint_eq(left, 1);
    /* the quarantined file is the bytes of its record */
    size_t qn;
    snprintf(path, sizeof(path), "%s/pm-quarantine/%s.pm", dir, kc);
    char *q = slurp(path, &qn);
    ck_assert_uint_eq(qn, n / 2);
    ck_assert_int_eq(memcmp(q, hw, qn), 0);
    free(q);
    /* both intact files are queryable */
    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(store, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    struct find f = find_value(r, "ManagedElement=HeNB-000001/ENBFunction=1,EUtranCellFDD=1",
                               "RRC.ConnEstabAtt.Sum");
    ck_assert_uint_eq(f.found, 1);
    ck_assert_int_eq(f.i, 123);
    struct rows c = {0};
    ck_assert_int_eq(hm_store_scan(r, HM_DB_PM, hm_slice(NULL, 0), hm_slice(NULL, 0), count_cb, &c),
                     0);
    ck_assert_uint_ge(c.packs, 2);
    hm_store_read_end(r);
    hm_store_reader_close(r);
    hm_store_close(store);
    hm_buf_free(&s1);
    hm_buf_free(&s2);
    hm_buf_free(&s3);
    free(hw);
    free(ex);
    rm_tree(dir);
}
END_TEST

static void put_old_row(struct hm_store_batch *b, const char *object, uint64_t start_ms,
                        uint64_t schema, bool suspect, int64_t i, double d, char *key_out,
                        int *kl_out)
{
    char val[HM_PM_ROW_HDR + 2 * HM_PM_ROW_VAL_MAX];
    int kl = hm_pm_row_key(key_out, 256, hm_slice_cstr(object), start_ms, HM_SLICE_LIT("Radio"),
                           schema);
    ck_assert_int_gt(kl, 0);
    hm_pm_row_hdr(val, suspect, 900, schema, 2);
    size_t vl = HM_PM_ROW_HDR;
    vl += hm_pm_row_put_int(val + vl, i);
    vl += d == d ? hm_pm_row_put_real(val + vl, d) : hm_pm_row_put_nan(val + vl);
    ck_assert_int_eq(hm_store_batch_put(b, HM_DB_PM, hm_slice(key_out, (size_t)kl),
                                        hm_slice(val, vl)), 0);
    *kl_out = kl;
}

/* A store with rows of the earlier layout 2 (one per measValue): the pipeline start moves
 * them into per-file packs (core/pm_migrate.h) that the series lookup reads, deletes the old
 * rows, marks the store, and ingests new files as usual. */
START_TEST(old_layout_rows_are_migrated)
{
    struct fx fx;
    fx_dirs(&fx);
    char *dir = fx.dir, *spool = fx.spool, path[512];
    size_t n;
    char *hw = slurp(HW_SAMPLE, &n);
    snprintf(path, sizeof(path), "%s/A20261126.1400+0000-1415+0000_HeNB-000001.xml.pm", spool);
    put_file(path, hw, n);
    struct hm_store *store = fx_store(&fx);
    static const char names[] = "C.One\0C.Two"; /* each name followed by its NUL */
    uint64_t schema = hm_pm_schema_hash(names, sizeof(names));
    char skey[HM_PM_SCHEMA_KEY_LEN + 1], sval[1 + sizeof(names)];
    hm_pm_schema_key(skey, schema);
    sval[0] = 1;
    memcpy(sval + 1, names, sizeof(names));
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    ck_assert_int_eq(hm_store_batch_put(&b, HM_DB_FILES, hm_slice(skey, HM_PM_SCHEMA_KEY_LEN),
                                        hm_slice(sval, sizeof(sval))), 0);
    const char *obj = "ManagedElement=HeNB-000001/ENBFunction=1,EUtranCellFDD=1";
    const char *obj2 = "ManagedElement=HeNB-000001/ENBFunction=1,EUtranCellFDD=2";
    char k1[256], k2[256], k3[256], k4[256];
    int l1, l2, l3, l4;
    put_old_row(&b, obj, 1795701600000ull, schema, false, 7, 8.5, k1, &l1);
    put_old_row(&b, obj2, 1795701600000ull, schema, false, 8, 9.5, k4, &l4);
    put_old_row(&b, obj, 1795702500000ull, schema, true, 9, NAN, k2, &l2); /* next period */
    put_old_row(&b, "ME=OTHER/cell", 1795701600000ull, schema, false, 5, 1.0, k3, &l3);
    int done = 0;
    ck_assert_int_eq(hm_store_submit(store, &b, put_done, &done), 0);
    for (int i = 0; i < 5000 && !__atomic_load_n(&done, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    ck_assert_int_eq(done, 1);
    hm_store_batch_fini(&b);

    struct hm_pm_pipe *p = fx_pipe(&fx, store);
    struct hm_pm_pipe_stats st = settle(p, 1);
    ck_assert_uint_eq(st.files_ingested, 1);
    hm_pm_pipe_destroy(p);
    struct hm_store_reader *r;
    ck_assert_int_eq(hm_store_reader_open(store, &r), 0);
    ck_assert_int_eq(hm_store_read_begin(r), 0);
    struct find f = find_value(r, obj, "RRC.ConnEstabAtt.Sum"); /* the new file's pack */
    ck_assert_uint_eq(f.found, 1);
    ck_assert_int_eq(f.i, 123);
    f = find_value(r, obj, "C.One"); /* both migrated periods */
    ck_assert_uint_eq(f.found, 2);
    f = find_value(r, obj, "C.Two");
    ck_assert_uint_eq(f.found, 2);
    ck_assert_int_eq(f.tag, HM_PM_ROW_NAN); /* the later period's, suspect */
    ck_assert(f.suspect);
    f = find_value(r, "ME=OTHER/cell", "C.One");
    ck_assert_uint_eq(f.found, 1);
    ck_assert_int_eq(f.i, 5);
    f = find_value(r, obj2, "C.One");
    ck_assert_uint_eq(f.found, 1);
    ck_assert_int_eq(f.i, 8);
    /* the migrated pack of the first period: cell 2's row (after cell 1's, key order) states
     * only its object, the measInfoId, schema and granularity are cell 1's */
    char pk[256];
    int pkl = hm_pm_pack_key(pk, sizeof(pk), HM_SLICE_LIT("ManagedElement=HeNB-000001"),
                             1795701600000ull, HM_PM_MIGRATED_FILE_ID, 0);
    struct hm_slice v;
    ck_assert_int_eq(hm_store_get(r, HM_DB_PM, hm_slice(pk, (size_t)pkl), &v), 0);
    struct hm_pm_pack_it it;
    struct hm_pm_pack_row row;
    ck_assert_int_eq(hm_pm_pack_begin(v, &it), 0);
    ck_assert_int_eq(hm_pm_pack_next(&it, &row), 1);
    ck_assert(hm_slice_eq(row.obj, HM_SLICE_LIT("ENBFunction=1,EUtranCellFDD=1")));
    ck_assert_uint_lt((size_t)(it.e - it.p), v.len);
    ck_assert_uint_eq((unsigned char)*it.p, HM_PM_PACK_F_OBJ);
    ck_assert_int_eq(hm_pm_pack_next(&it, &row), 1);
    ck_assert(hm_slice_eq(row.obj, HM_SLICE_LIT("ENBFunction=1,EUtranCellFDD=2")));
    ck_assert(hm_slice_eq(row.info_id, HM_SLICE_LIT("Radio")));
    ck_assert_uint_eq(row.r.schema, schema);
    ck_assert_uint_eq(row.r.gran_s, 900);
    ck_assert_int_eq(hm_pm_pack_next(&it, &row), 0);
    ck_assert_int_ne(hm_store_get(r, HM_DB_PM, hm_slice(k1, (size_t)l1), &v), 0);
    ck_assert_int_ne(hm_store_get(r, HM_DB_PM, hm_slice(k2, (size_t)l2), &v), 0);
    ck_assert_int_ne(hm_store_get(r, HM_DB_PM, hm_slice(k3, (size_t)l3), &v), 0);
    ck_assert_int_ne(hm_store_get(r, HM_DB_PM, hm_slice(k4, (size_t)l4), &v), 0);
    ck_assert_int_eq(hm_store_get(r, HM_DB_META, HM_SLICE_LIT("pm/layout"), &v), 0);
    ck_assert(v.len == 1 && v.ptr[0] == '3');
    hm_store_read_end(r);
    /* done once: a second run does not scan */
    struct hm_pm_migrate_stats ms;
    ck_assert_int_eq(hm_pm_migrate(store, r, &ms), 0);
    ck_assert_int_eq(ms.already, 1);
    ck_assert_uint_eq(ms.rows, 0);
    hm_store_reader_close(r);
    hm_store_close(store);
    free(hw);
    rm_tree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pm_pipe");
    TCase *tc = tcase_create("pipe");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, spooled_files_ingest_and_bad_one_is_quarantined);
    tcase_add_test(tc, wide_measvalue_is_split_into_rows);
    tcase_add_test(tc, uploads_through_the_spool_group);
    tcase_add_test(tc, markers_are_json_for_any_name);
    tcase_add_test(tc, segments_are_recovered_after_a_crash);
    tcase_add_test(tc, old_layout_rows_are_migrated);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
