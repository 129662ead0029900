#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/err.h"
#include "hm_check.h"
#include "proto/multipart.h"
#include "proto/pm.h"

#define CT "multipart/form-data; boundary=xYzZY"

/* Collects parts as "name|filename|type=<bytes>" records; checks event order. */
struct coll {
    struct hm_buf out;
    int open;
    unsigned begins, ends, data_calls;
};

static int collect(void *arg, enum hm_mp_event ev, const struct hm_mp_part *part,
                   struct hm_slice data)
{
    struct coll *c = arg;
    switch (ev) {
    case HM_MP_PART_BEGIN:
        ck_assert(!c->open);
        ck_assert_uint_eq(part->index, c->begins);
        c->open = 1;
        c->begins++;
        hm_buf_printf(&c->out, "[" HM_SLICE_FMT "|" HM_SLICE_FMT "|" HM_SLICE_FMT "=",
                      HM_SLICE_ARG(part->name), HM_SLICE_ARG(part->filename),
                      HM_SLICE_ARG(part->content_type));
        break;
    case HM_MP_PART_DATA:
        ck_assert(c->open);
        ck_assert_uint_gt(data.len, 0);
        c->data_calls++;
        hm_buf_append(&c->out, data.ptr, data.len);
        break;
    case HM_MP_PART_END:
        ck_assert(c->open);
        c->open = 0;
        c->ends++;
        hm_buf_append_lit(&c->out, "]");
        break;
    }
    return 0;
}

/* Parses <body> split into pieces of <step> bytes (0: one piece); returns the result
 * code and leaves the collected text in c->out. */
static int run(struct coll *c, const char *ct, const char *body, size_t len, size_t step)
{
    struct hm_mp m;
    hm_buf_reset(&c->out);
    c->open = 0;
    c->begins = c->ends = c->data_calls = 0;
    int rc = hm_mp_init(&m, hm_slice_cstr(ct), 0, collect, c);
    if (rc)
        return rc;
    if (!step)
        step = len ? len : 1;
    for (size_t i = 0; i < len; i += step) {
        rc = hm_mp_feed(&m, body + i, HM_MIN(step, len - i));
        if (rc)
            return rc;
    }
    return hm_mp_finish(&m);
}

static void expect(const char *body, const char *want)
{
    struct coll c = {0};
    size_t len = strlen(body);
    for (size_t step = 0; step <= len; step = step ? step * 2 + 1 : 1) {
        int rc = run(&c, CT, body, len, step);
        ck_assert_msg(rc == 0, "step %zu: rc %d", step, rc);
        hm_buf_append(&c.out, "", 1);
        ck_assert_msg(strcmp(c.out.base, want) == 0, "step %zu:\n got %s\nwant %s", step,
                      c.out.base, want);
    }
    /* every two-piece split as well */
    for (size_t cut = 0; cut <= len; cut++) {
        struct hm_mp m;
        hm_buf_reset(&c.out);
        c.open = 0;
        c.begins = c.ends = 0;
        ck_assert_int_eq(hm_mp_init(&m, hm_slice_cstr(CT), 0, collect, &c), 0);
        ck_assert_int_eq(hm_mp_feed(&m, body, cut), 0);
        ck_assert_int_eq(hm_mp_feed(&m, body + cut, len - cut), 0);
        ck_assert_int_eq(hm_mp_finish(&m), 0);
        hm_buf_append(&c.out, "", 1);
        ck_assert_msg(strcmp(c.out.base, want) == 0, "cut %zu: got %s", cut, c.out.base);
    }
    hm_buf_free(&c.out);
}

START_TEST(boundary_from_content_type)
{
    struct hm_slice b;
    ck_assert_int_eq(hm_mp_boundary(hm_slice_cstr(CT), &b), 0);
    ck_assert(hm_slice_eq_lit(b, "xYzZY"));
    ck_assert_int_eq(hm_mp_boundary(hm_slice_cstr("Multipart/Form-Data ; charset=utf-8; "
                                                  "BOUNDARY=\"a b'()+_,-./:=?\""),
                                    &b),
                     0);
    ck_assert(hm_slice_eq_lit(b, "a b'()+_,-./:=?"));
    ck_assert_int_eq(hm_mp_boundary(hm_slice_cstr("multipart/form-data;boundary=----"
                                                  "WebKitFormBoundary7MA4YWxkTrZu0gW"),
                                    &b),
                     0);
    ck_assert(hm_slice_eq_lit(b, "----WebKitFormBoundary7MA4YWxkTrZu0gW"));
    static const char *const bad[] = {
        "text/xml; boundary=x",
        "multipart/form-data",
        "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=\"abc",
        "multipart/form-data; boundary=a\rb",
        "multipart/form-data; boundary=\"trailing \"",
        "multipart/form-data; boundary=a{b}",
        ("multipart/form-data; boundary="
         "01234567890123456789012345678901234567890123456789012345678901234567890"),
    };
    for (size_t i = 0; i < HM_ARRAY_SIZE(bad); i++)
        ck_assert_msg(hm_mp_boundary(hm_slice_cstr(bad[i]), &b) == HM_EBADHTTP, "%s", bad[i]);
    ck_assert_int_eq(hm_mp_boundary(hm_slice(NULL, 0), &b), HM_EBADHTTP);
}
END_TEST

START_TEST(parts_fields_and_files)
{
    expect("--xYzZY\r\n"
           "Content-Disposition: form-data; name=\"field\"\r\n"
           "\r\n"
           "value\r\n"
           "--xYzZY\r\n"
           "content-disposition: form-data; name=\"file\"; filename=\"A2026.xml\"\r\n"
           "Content-Type: application/xml\r\n"
           "\r\n"
           "<x/>\r\n"
           "--xYzZY--\r\n",
           "[field||=value][file|A2026.xml|application/xml=<x/>]");
}
END_TEST

START_TEST(near_boundaries_in_data)
{
    /* CRs, partial delimiters and a longer boundary-like run inside the data */
#define D "a\rb\r\nc\r\n-d\r\n--e\r\n--xYz\r\n--xYzZ\r\r\n\r\n--XYZZY\r\n\r\r\n\r\n"
    expect("--xYzZY\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" D "\r\n--xYzZY--",
           "[f||=" D "]");
#undef D
}
END_TEST

START_TEST(preamble_padding_epilogue_and_empty)
{
    expect("this is a preamble\r\n--xYzZY  \t\r\nContent-Disposition: form-data; "
           "name=\"a;b\\\"c\"\r\n\r\n\r\n--xYzZY\r\n\r\nno headers\r\n--xYzZY-- "
           "epilogue\r\n--xYzZY\r\n garbage",
           "[a;b\"c||=][||=no headers]");
    expect("--xYzZY--", "");
    expect("\r\n--xYzZY--\r\n", "");
}
END_TEST

START_TEST(malformed_bodies)
{
    static const char *const bad[] = {
        "",
        "no delimiter at all",
        "--xYzZY",
        "--xYzZYx\r\n\r\n",
        "--xYzZY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ndata",
        "--xYzZY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ndata\r\n--xYzZY",
        "--xYzZY\nContent-Disposition: form-data\r\n\r\nx\r\n--xYzZY--",
        "--xYzZY-x",
        "--xYzZY\r\nno colon here\r\n\r\nx\r\n--xYzZY--",
        "--xYzZY\r\nContent-Disposition: form-data; name=\"unterminated\r\n\r\nx\r\n--xYzZY--",
        "--xYzZY\r\nContent-Disposition: form-data; name\r\n\r\nx\r\n--xYzZY--",
    };
    struct coll c = {0};
    for (size_t i = 0; i < HM_ARRAY_SIZE(bad); i++) {
        int rc = run(&c, CT, bad[i], strlen(bad[i]), 0);
        ck_assert_msg(rc == HM_EBADHTTP, "case %zu: rc %d", i, rc);
        rc = run(&c, CT, bad[i], strlen(bad[i]), 1);
        ck_assert_msg(rc == HM_EBADHTTP, "case %zu bytewise: rc %d", i, rc);
    }
    ck_assert_int_eq(run(&c, "text/plain", "x", 1, 0), HM_EBADHTTP);
    hm_buf_free(&c.out);
}
END_TEST

START_TEST(limits_and_callback_errors)
{
    struct coll c = {0};
    struct hm_buf b = {0};
    hm_buf_append_str(&b, "--xYzZY\r\nX-Big: ");
    for (int i = 0; i < HM_MP_MAX_HEADER; i++)
        hm_buf_append_lit(&b, "a");
    hm_buf_append_str(&b, "\r\n\r\nx\r\n--xYzZY--");
    ck_assert_int_eq(run(&c, CT, b.base, b.len, 0), HM_EHDRTOOLARGE);
    ck_assert_int_eq(run(&c, CT, b.base, b.len, 100), HM_EHDRTOOLARGE);

    hm_buf_reset(&b);
    for (int i = 0; i < 5; i++)
        hm_buf_append_str(&b, "--xYzZY\r\n\r\nx\r\n");
    hm_buf_append_str(&b, "--xYzZY--");
    struct hm_mp m;
    ck_assert_int_eq(hm_mp_init(&m, hm_slice_cstr(CT), 4, collect, &c), 0);
    ck_assert_int_eq(hm_mp_feed(&m, b.base, b.len), HM_EBODYTOOLARGE);
    ck_assert_int_eq(hm_mp_feed(&m, "x", 1), HM_EBODYTOOLARGE); /* sticky */
    ck_assert_int_eq(hm_mp_finish(&m), HM_EBODYTOOLARGE);
    ck_assert_int_eq(run(&c, CT, b.base, b.len, 0), 0);
    ck_assert_uint_eq(c.ends, 5);
    hm_buf_free(&b);
    hm_buf_free(&c.out);
}
END_TEST

/* Property: random parts over an alphabet rich in delimiter fragments, random chunking;
 * what comes out equals what went in. Data containing the real delimiter is not valid
 * input and is regenerated. */
START_TEST(random_bodies_round_trip)
{
    static const char alpha[] = "\r\n-xYzZa";
    const char *delim = "\r\n--xYzZY";
    uint64_t r = 0x9e3779b97f4a7c15ull;
#define NEXT() (r ^= r << 13, r ^= r >> 7, r ^= r << 17, r)
    struct hm_buf body = {0}, want = {0};
    struct coll c = {0};
    char data[256];
    for (int iter = 0; iter < 300; iter++) {
        hm_buf_reset(&body);
        hm_buf_reset(&want);
        int nparts = (int)(NEXT() % 4);
        for (int k = 0; k < nparts; k++) {
            size_t n;
            do {
                n = NEXT() % sizeof data;
                for (size_t i = 0; i < n; i++)
                    data[i] = alpha[NEXT() % (sizeof alpha - 1)];
                /* the delimiter must not occur, even across the part's end */
                hm_buf_reset(&c.out);
                hm_buf_append(&c.out, data, n);
                hm_buf_append_str(&c.out, delim);
            } while (memmem(c.out.base, c.out.len, delim, strlen(delim)) !=
                     c.out.base + n);
            hm_buf_printf(&body, "--xYzZY\r\nContent-Disposition: form-data; name=\"p%d\"\r\n\r\n",
                          k);
            hm_buf_append(&body, data, n);
            hm_buf_append_lit(&body, "\r\n");
            hm_buf_printf(&want, "[p%d||=", k);
            hm_buf_append(&want, data, n);
            hm_buf_append_lit(&want, "]");
        }
        hm_buf_append_str(&body, "--xYzZY--\r\n");
        hm_buf_append(&want, "", 1);
        size_t step = 1 + NEXT() % 64;
        int rc = run(&c, CT, body.base, body.len, step);
        ck_assert_msg(rc == 0, "iter %d: rc %d", iter, rc);
        hm_buf_append(&c.out, "", 1);
        ck_assert_msg(c.out.len == want.len && memcmp(c.out.base, want.base, want.len) == 0,
                      "iter %d step %zu differs", iter, step);
    }
#undef NEXT
    hm_buf_free(&body);
    hm_buf_free(&want);
    hm_buf_free(&c.out);
}
END_TEST

/* End to end: a gzip PM file uploaded as a form, streamed part data -> PM parser. */
struct upload {
    struct hm_pm_parser *pm;
    unsigned long meas;
    int in_file;
};

static int count_meas(void *arg, const struct hm_pm_meas *m)
{
    (*(unsigned long *)arg)++;
    return 0;
}

static int to_pm(void *arg, enum hm_mp_event ev, const struct hm_mp_part *part,
                 struct hm_slice data)
{
    struct upload *u = arg;
    if (ev == HM_MP_PART_BEGIN) {
        u->in_file = part->filename.len > 0;
        return u->in_file ? hm_pm_begin(u->pm, count_meas, &u->meas) : 0;
    }
    if (!u->in_file)
        return 0;
    if (ev == HM_MP_PART_DATA)
        return hm_pm_feed(u->pm, data.ptr, data.len);
    return hm_pm_finish(u->pm, NULL);
}

START_TEST(gzip_pm_file_in_a_form)
{
    FILE *f = fopen(HM_SHARED_DATA "/pm/handwritten-A20261126.1400+0000-1415+0000_HeNB-000001.xml",
                    "rb");
    ck_assert_ptr_nonnull(f);
    char xml[8192];
    size_t xlen = fread(xml, 1, sizeof xml, f);
    fclose(f);
    unsigned char gz[8192];
    z_stream z = {0};
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)xml;
    z.avail_in = (unsigned)xlen;
    z.next_out = gz;
    z.avail_out = sizeof gz;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t gzlen = z.total_out;
    deflateEnd(&z);

    struct hm_buf b = {0};
    hm_buf_append_str(&b, "--xYzZY\r\nContent-Disposition: form-data; name=\"sn\"\r\n\r\n"
                          "000001\r\n--xYzZY\r\nContent-Disposition: form-data; name=\"file\"; "
                          "filename=\"A20261126.1400+0000-1415+0000_HeNB-000001.xml.gz\"\r\n"
                          "Content-Type: application/gzip\r\n\r\n");
    hm_buf_append(&b, gz, gzlen);
    hm_buf_append_str(&b, "\r\n--xYzZY--\r\n");

    struct upload u = {.pm = hm_pm_parser_create()};
    for (size_t step = 1; step < b.len; step = step * 3 + 1) {
        struct hm_mp m;
        u.meas = 0;
        ck_assert_int_eq(hm_mp_init(&m, hm_slice_cstr(CT), 0, to_pm, &u), 0);
        for (size_t i = 0; i < b.len; i += step)
            ck_assert_int_eq(hm_mp_feed(&m, b.base + i, HM_MIN(step, b.len - i)), 0);
        ck_assert_int_eq(hm_mp_finish(&m), 0);
        ck_assert_uint_eq(u.meas, 16);
    }
    hm_pm_parser_destroy(u.pm);
    hm_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("multipart");
    TCase *tc = tcase_create("multipart");
    tcase_add_test(tc, boundary_from_content_type);
    tcase_add_test(tc, parts_fields_and_files);
    tcase_add_test(tc, near_boundaries_in_data);
    tcase_add_test(tc, preamble_padding_epilogue_and_empty);
    tcase_add_test(tc, malformed_bodies);
    tcase_add_test(tc, limits_and_callback_errors);
    tcase_add_test(tc, random_bodies_round_trip);
    tcase_add_test(tc, gzip_pm_file_in_a_form);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
