#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/hems_loc.h"
#include "core/hems_proc.h"
#include "hm_check.h"

#define NKEYS 20000

static char ids[16][32];

static void mk_nodes(struct hm_hrw_node *n, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        snprintf(ids[i], sizeof(ids[i]), "hems-%zu", i);
        n[i] = (struct hm_hrw_node){ids[i], 1.0};
    }
}

static struct hm_slice key_of(char *buf, size_t cap, int i)
{
    int n = snprintf(buf, cap, "00005A-HeNB-SN%06d", i);
    return hm_slice(buf, (size_t)n);
}

START_TEST(hrw_adding_one_node_moves_its_share_only)
{
    struct hm_hrw_node n[11];
    mk_nodes(n, 11);
    int moved = 0;
    char kb[64];
    for (int i = 0; i < NKEYS; i++) {
        struct hm_slice k = key_of(kb, sizeof(kb), i);
        int a = hm_hrw_pick(n, 10, k);
        int b = hm_hrw_pick(n, 11, k);
        ck_assert_int_ge(a, 0);
        ck_assert_int_eq(a, hm_hrw_pick(n, 10, k)); /* deterministic */
        if (a != b) {
            ck_assert_int_eq(b, 10); /* a key only ever moves to the new node */
            moved++;
        }
    }
    /* expected 1/11 = 9.09 %; binomial sd over 20000 keys ~0.2 % */
    ck_assert_int_gt(moved, NKEYS * 8 / 100);
    ck_assert_int_lt(moved, NKEYS * 10 / 100);
}
END_TEST

START_TEST(hrw_removing_a_node_moves_only_its_keys)
{
    struct hm_hrw_node n[10];
    mk_nodes(n, 10);
    struct hm_hrw_node less[9];
    memcpy(less, n, sizeof(less[0]) * 3);      /* drop node 3 */
    memcpy(less + 3, n + 4, sizeof(less[0]) * 6);
    char kb[64];
    for (int i = 0; i < NKEYS; i++) {
        struct hm_slice k = key_of(kb, sizeof(kb), i);
        int a = hm_hrw_pick(n, 10, k);
        int b = hm_hrw_pick(less, 9, k);
        if (a != 3)
            ck_assert_str_eq(n[a].id, less[b].id);
    }
}
END_TEST

START_TEST(hrw_follows_weights)
{
    struct hm_hrw_node n[3] = {{"a", 3.0}, {"b", 1.0}, {"off", 0.0}};
    int cnt[3] = {0};
    char kb[64];
    for (int i = 0; i < NKEYS; i++)
        cnt[hm_hrw_pick(n, 3, key_of(kb, sizeof(kb), i))]++;
    ck_assert_int_eq(cnt[2], 0);
    ck_assert_int_gt(cnt[0], NKEYS * 73 / 100); /* 75 % expected */
    ck_assert_int_lt(cnt[0], NKEYS * 77 / 100);
    struct hm_hrw_node none[1] = {{"z", 0.0}};
    ck_assert_int_eq(hm_hrw_pick(none, 1, hm_slice("k", 1)), -1);
    ck_assert_int_eq(hm_hrw_pick(n, 0, hm_slice("k", 1)), -1);
}
END_TEST

static json_t *parse(const char *s, char *err)
{
    return hm_hems_policy_parse(s, strlen(s), err, 200);
}

START_TEST(policy_parser_accepts_full_policy)
{
    char err[200] = "";
    json_t *p = parse("{\"whitelist\":[{\"device\":\"00005A-HeNB-1\"},{\"oui\":\"00005A\","
                      "\"product_class\":\"HeNB\",\"serial_from\":\"100\",\"serial_to\":\"199\"}],"
                      "\"serving_nodes\":[{\"id\":\"a\",\"url\":\"http://a/cwmp\",\"weight\":2}],"
                      "\"segws\":[{\"id\":\"g\",\"servers\":[\"1.2.3.4\"]}],"
                      "\"static\":[{\"product_class\":\"HeNB\",\"serving_node\":\"a\"}],"
                      "\"s1\":{\"servers\":\"10.0.0.1\",\"connection_mode\":\"All\",\"port\":36412,"
                      "\"set_by\":\"initial\"},"
                      "\"ipsec_indicator\":{\"*\":{\"path\":\"Device.IPsec.Enable\",\"value\":\"true\"}},"
                      "\"pm\":{\"url\":\"http://h/pm/{device}/\",\"interval\":900,\"enabled\":true,"
                      "\"form\":\"config\",\"time\":\"2026-01-01T00:00:00Z\","
                      "\"product_classes\":{\"HeNB\":{\"form\":\"filemgmt\"}},"
                      "\"devices\":{\"00005A-HeNB-1\":{\"enabled\":false}}},"
                      "\"registration\":true}",
                      err);
    ck_assert_msg(p != NULL, "%s", err);
    json_decref(p);
    p = parse("{}", err);
    ck_assert_ptr_nonnull(p);
    json_decref(p);
}
END_TEST

START_TEST(policy_parser_rejects_with_reason)
{
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"[]", "JSON object"},
        {"{\"whitelist\":{}}", "'whitelist' must be an array"},
        {"{\"whitelist\":[{\"oui\":\"00005A\"}]}", "product_class"},
        {"{\"serving_nodes\":[{\"id\":\"a\",\"url\":\"u\",\"weight\":-1}]}", "weight"},
        {"{\"serving_nodes\":[{\"id\":\"a\"}]}", "url"},
        {"{\"segws\":[{\"id\":\"g\",\"servers\":[\"1\",\"2\",\"3\",\"4\"]}]}", "1 to 3"},
        {"{\"s1\":{\"servers\":\"x\",\"port\":70000}}", "s1.port"},
        {"{\"s1\":{\"servers\":\"x\",\"connection_mode\":\"Some\"}}", "connection_mode"},
        {"{\"static\":[{\"serving_node\":\"a\"}]}", "static[0]"},
        {"{\"ipsec_indicator\":{\"HeNB\":{\"path\":\"x\"}}}", "ipsec_indicator.HeNB"},
        {"{\"ipsec_indicator\":{\"*\":{\"path\":\"x\",\"value\":\"1\",\"type\":\"int\"}}}",
         "ipsec_indicator.*.type"},
        {"{\"location_params\":[\"\"]}", "location_params[0]"},
        {"{\"pm\":{}}", "pm.url is required"},
        {"{\"pm\":{\"url\":\"http://h/pm/\",\"interval\":0}}", "pm.interval"},
        {"{\"pm\":{\"url\":\"http://h/pm/\",\"form\":\"x\"}}", "pm.form"},
        {"{\"pm\":{\"url\":\"http://h/pm/\",\"enabled\":\"yes\"}}", "pm.enabled"},
        {"{\"pm\":{\"url\":\"http://h/pm/\",\"devices\":{\"D\":{\"enabled\":1}}}}",
         "pm.devices.D.enabled"},
        {"{\"pm\":{\"url\":\"http://h/pm/\",\"product_classes\":[]}}", "pm.product_classes"},
        {"{\"a\":1,\"a\":2}", "duplicate"},
        {"{", "line 1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[200] = "";
        json_t *p = parse(bad[i].json, err);
        ck_assert_msg(p == NULL, "accepted %s", bad[i].json);
        ck_assert_msg(strstr(err, bad[i].needle), "%s: error '%s' lacks '%s'", bad[i].json,
                      err, bad[i].needle);
    }
}
END_TEST

#define S(x) hm_slice(x, sizeof(x) - 1)

START_TEST(whitelist_exact_and_ranges)
{
    char err[200];
    json_t *p = parse("{\"whitelist\":[{\"device\":\"00005A-HeNB-ABC\"},{\"oui\":\"00005A\","
                      "\"product_class\":\"HeNB\",\"serial_from\":\"R0100\",\"serial_to\":\"R0199\"}]}",
                      err);
    ck_assert_ptr_nonnull(p);
    json_t *wl = json_object_get(p, "whitelist");
    ck_assert(hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("ABC"), NULL));
    ck_assert(!hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("ABCD"), NULL));
    ck_assert(!hm_hems_whitelisted(wl, S("00005A"), S("HeNBX"), S("ABC"), NULL));
    ck_assert(!hm_hems_whitelisted(wl, S("00005B"), S("HeNB"), S("ABC"), NULL));
    ck_assert(hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("R0100"), NULL));
    ck_assert(hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("R0150"), NULL));
    ck_assert(hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("R0199"), NULL));
    ck_assert(!hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("R0200"), NULL));
    ck_assert(!hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("R01500"), NULL)); /* longer */
    ck_assert(!hm_hems_whitelisted(wl, S("00005A"), S("HeNB"), S("R015"), NULL));   /* shorter */
    ck_assert(!hm_hems_whitelisted(wl, S("00005A"), S("Other"), S("R0150"), NULL));
    /* TLS identity: exact (case-insensitive) or "*suffix"; never without a certificate */
    json_t *tw = json_loads("[{\"tls_identity\":\"SN1.hnb.hems.test\"},"
                    "{\"tls_identity\":\"*.north.hnb.example\"}]", 0, NULL);
    ck_assert_int_eq(hm_hems_whitelist_check(tw, err, sizeof(err)), 0);
    ck_assert(hm_hems_whitelisted(tw, S("00005A"), S("HeNB"), S("SN1"), "sn1.HNB.hems.test"));
    ck_assert(!hm_hems_whitelisted(tw, S("00005A"), S("HeNB"), S("SN1"), NULL));
    ck_assert(!hm_hems_whitelisted(tw, S("00005A"), S("HeNB"), S("SN1"), "SN1.hnb.hems.testx"));
    ck_assert(hm_hems_whitelisted(tw, S("00005A"), S("HeNB"), S("X9"), "X9.north.hnb.example"));
    ck_assert(!hm_hems_whitelisted(tw, S("00005A"), S("HeNB"), S("X9"), ".north.hnb.example"));
    ck_assert(!hm_hems_whitelisted(tw, S("00005A"), S("HeNB"), S("X9"), "X9.south.hnb.example"));
    json_decref(tw);
    json_decref(p);
}
END_TEST

START_TEST(role_parse)
{
    ck_assert_int_eq(hm_hems_role_parse("serving"), HM_HEMS_ROLE_SERVING);
    ck_assert_int_eq(hm_hems_role_parse("initial"), HM_HEMS_ROLE_INITIAL);
    ck_assert_int_eq(hm_hems_role_parse("both"), HM_HEMS_ROLE_INITIAL | HM_HEMS_ROLE_SERVING);
    ck_assert_int_eq(hm_hems_role_parse("Serving"), -EINVAL);
}
END_TEST

START_TEST(location_distance_and_areas)
{
    /* Paris - London, 343.5 km (great circle) */
    double d = hm_geo_distance_m(48.8566, 2.3522, 51.5074, -0.1278);
    ck_assert_msg(d > 343000 && d < 344200, "%f", d);
    ck_assert(hm_geo_distance_m(10, 20, 10, 20) == 0);
    char err[200] = "";
    json_t *lc = hm_hems_policy_parse(
        "{\"location_check\":{\"area\":{\"center\":[48.8566,2.3522],\"radius_m\":50000}}}", 72,
        err, sizeof(err));
    ck_assert_msg(lc != NULL, "%s", err);
    json_t *c = json_object_get(lc, "location_check");
    double la, lo;
    /* micro-degrees (TR-262 scale) */
    ck_assert_int_eq(hm_hems_loc_judge(c, NULL, HM_SLICE_LIT("48900000"),
                                       HM_SLICE_LIT("2400000"), &la, &lo), HM_LOC_INSIDE);
    ck_assert(la > 48.89 && la < 48.91);
    ck_assert_int_eq(hm_hems_loc_judge(c, NULL, HM_SLICE_LIT("51507400"),
                                       HM_SLICE_LIT("-127800"), &la, &lo), HM_LOC_OUTSIDE);
    /* never fixed (0, 0), garbage, absent, out of range: unknown */
    ck_assert_int_eq(hm_hems_loc_judge(c, NULL, HM_SLICE_LIT("0"), HM_SLICE_LIT("0"), &la, &lo),
                     HM_LOC_UNKNOWN);
    ck_assert_int_eq(hm_hems_loc_judge(c, NULL, HM_SLICE_LIT("4x"), HM_SLICE_LIT("1"), &la, &lo),
                     HM_LOC_UNKNOWN);
    ck_assert_int_eq(hm_hems_loc_judge(c, NULL, hm_slice("", 0), HM_SLICE_LIT("1"), &la, &lo),
                     HM_LOC_UNKNOWN);
    ck_assert_int_eq(hm_hems_loc_judge(c, NULL, HM_SLICE_LIT("95000000"), HM_SLICE_LIT("1"), &la,
                                       &lo), HM_LOC_UNKNOWN);
    /* a box across the antimeridian (Fiji) */
    json_t *box = json_pack("{s:[f,f,f,f]}", "box", -21.0, 177.0, -12.0, -178.0);
    ck_assert_int_eq(hm_hems_loc_judge(c, box, HM_SLICE_LIT("-17000000"),
                                       HM_SLICE_LIT("179000000"), &la, &lo), HM_LOC_INSIDE);
    ck_assert_int_eq(hm_hems_loc_judge(c, box, HM_SLICE_LIT("-17000000"),
                                       HM_SLICE_LIT("-179000000"), &la, &lo), HM_LOC_INSIDE);
    ck_assert_int_eq(hm_hems_loc_judge(c, box, HM_SLICE_LIT("-17000000"),
                                       HM_SLICE_LIT("170000000"), &la, &lo), HM_LOC_OUTSIDE);
    json_decref(box);
    char lat[64], lon[64];
    hm_hems_loc_names(c, "InternetGatewayDevice.", lat, lon, sizeof(lat));
    ck_assert_str_eq(lat, "InternetGatewayDevice.FAP.GPS.LockedLatitude");
    ck_assert_str_eq(lon, "InternetGatewayDevice.FAP.GPS.LockedLongitude");
    ck_assert(!hm_hems_loc_refuse_missing(c));
    json_decref(lc);
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"location_check\":{}}", "area is required"},
        {"{\"location_check\":{\"area\":{\"center\":[91,0],\"radius_m\":1}}}", "center"},
        {"{\"location_check\":{\"area\":{\"center\":[1,0]}}}", "radius_m"},
        {"{\"location_check\":{\"area\":{\"box\":[2,0,1,1]}}}", "lat_min"},
        {"{\"location_check\":{\"area\":{\"box\":[1,0,2,1],\"center\":[1,1]}}}", "either"},
        {"{\"location_check\":{\"missing\":\"maybe\",\"area\":{\"box\":[1,0,2,1]}}}", "missing"},
        {"{\"whitelist\":[{\"device\":\"D\",\"area\":{\"box\":[1,2]}}]}", "whitelist[0].area.box"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char e2[200] = "";
        json_t *p = hm_hems_policy_parse(bad[i].json, strlen(bad[i].json), e2, sizeof(e2));
        ck_assert_msg(p == NULL, "accepted %s", bad[i].json);
        ck_assert_msg(strstr(e2, bad[i].needle), "%s: '%s' lacks '%s'", bad[i].json, e2,
                      bad[i].needle);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hems_proc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hrw_adding_one_node_moves_its_share_only);
    tcase_add_test(tc, hrw_removing_a_node_moves_only_its_keys);
    tcase_add_test(tc, hrw_follows_weights);
    tcase_add_test(tc, policy_parser_accepts_full_policy);
    tcase_add_test(tc, policy_parser_rejects_with_reason);
    tcase_add_test(tc, whitelist_exact_and_ranges);
    tcase_add_test(tc, role_parse);
    tcase_add_test(tc, location_distance_and_areas);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
