/* core/regions.c: parsing, selection, per-device S1 lists. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/regions.h"
#include "hm_check.h"

#define S(lit) HM_SLICE_LIT(lit)

static struct hm_region *parse(const char *name, const char *json, char *err, size_t cap)
{
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    struct hm_region *r = NULL;
    int rc = hm_region_parse(name, j, &r, err, cap);
    json_decref(j);
    ck_assert_int_eq(rc == 0, r != NULL);
    return r;
}

START_TEST(region_parse_and_normalise)
{
    char err[300];
    struct hm_region *r =
        parse("north", "{\"servers\":\"10.0.0.1,mme2.op.example\",\"port\":36412,"
                       "\"priority\":5,\"max_servers\":1,\"selector\":{\"tac\":[100,[200,299]],"
                       "\"tags\":[\"n\"],\"oui\":\"00256D\",\"product_class\":\"HeNB\"}}",
              err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_uint_eq(r->nservers, 2);
    ck_assert_int_eq(r->port, 36412);
    char *t = json_dumps(r->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(t, "{\"name\":\"north\",\"priority\":5,\"servers\":[\"10.0.0.1\","
                        "\"mme2.op.example\"],\"selector\":{\"tags\":[\"n\"],\"tac\":[100,[200,299]],"
                        "\"oui\":\"00256D\",\"product_class\":\"HeNB\"},\"port\":36412,"
                        "\"max_servers\":1}");
    /* the normalised form parses back to itself */
    struct hm_region *r2 = parse("north", t, err, sizeof(err));
    ck_assert_msg(r2 != NULL, "%s", err);
    char *t2 = json_dumps(r2->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(t, t2);
    free(t);
    free(t2);
    hm_region_free(r2);
    hm_region_free(r);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{}", "servers"},
        {"[]", "object"},
        {"{\"servers\":[]}", "servers"},
        {"{\"servers\":\"a,,b\"}", "servers[1]"},
        {"{\"servers\":\"a,a\"}", "twice"},
        {"{\"servers\":[\"a b\"]}", "servers[0]"},
        {"{\"servers\":[1]}", "servers[0]"},
        {"{\"servers\":\"a\",\"port\":0}", "port"},
        {"{\"servers\":\"a\",\"port\":65536}", "port"},
        {"{\"servers\":\"a\",\"max_servers\":0}", "max_servers"},
        {"{\"servers\":\"a\",\"selectr\":{}}", "selectr"},
        {"{\"servers\":\"a\",\"selector\":{\"tac\":[[5,4]]}}", "tac[0]"},
        {"{\"servers\":\"a\",\"selector\":{\"tac\":[[1,2,3]]}}", "tac[0]"},
        {"{\"servers\":\"a\",\"selector\":{\"tac\":[]}}", "tac"},
        {"{\"servers\":\"a\",\"selector\":{\"tags\":[\"\"]}}", "tags[0]"},
        {"{\"servers\":\"a\",\"selector\":{\"colour\":1}}", "colour"},
        {"{\"servers\":\"a\",\"name\":\"other\"}", "name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(parse("x", bad[i].json, err, sizeof(err)) == NULL, "%s", bad[i].json);
        ck_assert_msg(strstr(err, bad[i].msg), "%s: '%s'", bad[i].json, err);
    }
    ck_assert_ptr_null(parse("bad name", "{\"servers\":\"a\"}", err, sizeof(err)));
    /* 17 servers, or a joined list over 1024 bytes */
    char big[4000];
    int n = snprintf(big, sizeof(big), "{\"servers\":\"");
    for (int i = 0; i < 17; i++)
        n += snprintf(big + n, sizeof(big) - (size_t)n, "%sm%d", i ? "," : "", i);
    snprintf(big + n, sizeof(big) - (size_t)n, "\"}");
    ck_assert_ptr_null(parse("x", big, err, sizeof(err)));
    n = snprintf(big, sizeof(big), "{\"servers\":[");
    for (int i = 0; i < 6; i++)
        n += snprintf(big + n, sizeof(big) - (size_t)n, "%s\"%0200d\"", i ? "," : "", i);
    snprintf(big + n, sizeof(big) - (size_t)n, "]}");
    ck_assert_ptr_null(parse("x", big, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "1024"));
}
END_TEST

START_TEST(region_selection_precedence)
{
    char err[300];
    struct hm_region *rs[4] = {
        parse("any", "{\"servers\":\"d\",\"priority\":-1}", err, sizeof(err)),
        parse("north", "{\"servers\":\"n\",\"selector\":{\"tac\":[[100,199]]}}", err, sizeof(err)),
        parse("north-lab", "{\"servers\":\"l\",\"selector\":{\"tac\":[[100,199]],"
                           "\"tags\":[\"lab\"]}}", err, sizeof(err)),
        parse("vip", "{\"servers\":\"v\",\"priority\":10,\"selector\":{\"product_class\":"
                     "\"HeNB-VIP\",\"oui\":\"00256D\"}}", err, sizeof(err)),
    };
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_nonnull(rs[i]);
    const struct hm_region *r;
    r = hm_region_pick(rs, 4, S(""), 150, S("00256D"), S("HeNB"));
    ck_assert_str_eq(r->name, "north");
    /* equal priority: the name sorting last (north-lab) when both match */
    r = hm_region_pick(rs, 4, S("a,lab"), 150, S("00256D"), S("HeNB"));
    ck_assert_str_eq(r->name, "north-lab");
    r = hm_region_pick(rs, 4, S("laboratory"), 150, S("00256D"), S("HeNB"));
    ck_assert_str_eq(r->name, "north"); /* tags match whole */
    r = hm_region_pick(rs, 4, S("lab"), 200, S("00256D"), S("HeNB"));
    ck_assert_str_eq(r->name, "any");
    r = hm_region_pick(rs, 4, S("lab"), -1, S("00256D"), S("HeNB"));
    ck_assert_str_eq(r->name, "any"); /* no TAC known: no TAC selector holds */
    r = hm_region_pick(rs, 4, S("lab"), 150, S("00256D"), S("HeNB-VIP"));
    ck_assert_str_eq(r->name, "vip");
    r = hm_region_pick(rs, 4, S(""), 150, S("000000"), S("HeNB-VIP"));
    ck_assert_str_eq(r->name, "north");
    ck_assert_ptr_null(hm_region_pick(rs + 1, 1, S(""), 99, S(""), S("")));
    ck_assert(hm_regions_use_tags(rs, 4));
    ck_assert(!hm_regions_use_tags(rs, 2));
    for (int i = 0; i < 4; i++)
        hm_region_free(rs[i]);
}
END_TEST

START_TEST(region_list_stable_spread_minimal_moves)
{
    char err[300];
    struct hm_region *r3 = parse("r", "{\"servers\":[\"m1\",\"m2\",\"m3\",\"m4\"]}", err, sizeof(err));
    struct hm_region *r4 =
        parse("r", "{\"servers\":[\"m1\",\"m2\",\"m3\",\"m4\",\"m5\"]}", err, sizeof(err));
    struct hm_region *r1 =
        parse("r", "{\"servers\":[\"m1\",\"m2\",\"m3\",\"m4\"],\"max_servers\":2}", err, sizeof(err));
    enum { N = 20000 };
    unsigned first[4] = {0}, moved = 0, moved_elsewhere = 0;
    char a[64], b[64], c[64], dev[32];
    for (int i = 0; i < N; i++) {
        snprintf(dev, sizeof(dev), "00256D-HeNB-%010d", i);
        ck_assert_int_eq(hm_region_list(r3, hm_slice_cstr(dev), a, sizeof(a)), 11);
        ck_assert_int_eq(hm_region_list(r3, hm_slice_cstr(dev), c, sizeof(c)), 11);
        ck_assert_str_eq(a, c); /* stable */
        first[a[1] - '1']++;
        ck_assert_int_gt(hm_region_list(r4, hm_slice_cstr(dev), b, sizeof(b)), 0);
        if (strncmp(a, b, 2)) {
            moved++;
            moved_elsewhere += strncmp(b, "m5", 2) != 0;
        }
        /* adding m5 keeps the relative order of m1..m4 */
        char rest[64];
        size_t k = 0;
        for (char *t = b; *t; t += 3)
            if (t[1] != '5') {
                memcpy(rest + k, t, 2);
                rest[k + 2] = ',';
                k += 3;
            }
        rest[k - 1] = '\0';
        ck_assert_str_eq(rest, a);
        ck_assert_int_eq(hm_region_list(r1, hm_slice_cstr(dev), c, sizeof(c)), 5);
        ck_assert(!strncmp(c, a, 5)); /* max_servers: the first two of the same order */
    }
    for (int i = 0; i < 4; i++)
        ck_assert_msg(first[i] > N / 4 * 9 / 10 && first[i] < N / 4 * 11 / 10, "m%d first %u",
                      i + 1, first[i]);
    /* ~1/5 move, all of them to the new server */
    ck_assert_msg(moved > N / 5 * 8 / 10 && moved < N / 5 * 12 / 10, "moved %u", moved);
    ck_assert_uint_eq(moved_elsewhere, 0);
    ck_assert_int_eq(hm_region_list(r3, S("d"), a, 5), -E2BIG);
    hm_region_free(r1);
    hm_region_free(r3);
    hm_region_free(r4);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("regions");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, region_parse_and_normalise);
    tcase_add_test(tc, region_selection_precedence);
    tcase_add_test(tc, region_list_stable_spread_minimal_moves);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
