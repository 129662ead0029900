#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "core/profiles.h"
#include "proto/cwmp.h"
#include "hm_check.h"

static struct hm_slice S(const char *s)
{
    return hm_slice_cstr(s);
}

static int pools(void *arg, const char *name, int64_t *sample)
{
    (void)arg;
    if (strcmp(name, "pci"))
        return -ENOENT;
    *sample = 7;
    return 3;
}

static struct hm_profile *parse(const char *name, const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    struct hm_profile *p = NULL;
    char err[300];
    int r = hm_profile_parse(name, j, pools, NULL, &p, err, sizeof(err));
    json_decref(j);
    ck_assert_msg(r == 0, "parse %s: %s", name, err);
    return p;
}

static int parse_err(const char *name, const char *json, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    struct hm_profile *p = NULL;
    int r = hm_profile_parse(name, j, pools, NULL, &p, err, errlen);
    json_decref(j);
    ck_assert_ptr_null(p);
    return r;
}

START_TEST(parse_validates_and_normalises)
{
    struct hm_profile *p = parse("rf", "{\"priority\":5,\"selector\":{\"product_class\":\"HeNB\","
                                       "\"tags\":[\"b\",\"a\"]},\"params\":["
                                       "{\"name\":\"Device.X.A\",\"value\":\"1\"},"
                                       "{\"name\":\"Device.X.B\",\"value\":3},"
                                       "{\"name\":\"Device.X.C\",\"value\":\"${pool:pci}\","
                                       "\"type\":\"xsd:unsignedInt\"}]}");
    ck_assert_int_eq(p->priority, 5);
    ck_assert_str_eq(p->product_class, "HeNB");
    ck_assert_ptr_null(p->sw_version);
    ck_assert_uint_eq(p->ntags, 2);
    ck_assert_str_eq(p->tags[0], "a");
    ck_assert_uint_eq(p->nparams, 3);
    ck_assert_int_eq(p->params[0].pool, -1);
    ck_assert_int_eq(p->params[1].type, HM_CWMP_T_INT); /* JSON integer, no model */
    ck_assert_int_eq(p->params[2].pool, 3);
    ck_assert_int_eq(p->params[2].type, HM_CWMP_T_UINT);
    json_t *np = json_object_get(p->json, "params");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(np, 2), "value")),
                     "${pool:pci}");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(np, 1), "value")), "3");
    hm_profile_put(p);

    char err[300];
    ck_assert_int_eq(parse_err("bad name", "{\"params\":[{\"name\":\"Device.A\",\"value\":\"1\"}]}",
                               err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(parse_err("x", "{\"params\":[]}", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(parse_err("x", "{\"prio\":1,\"params\":[{\"name\":\"Device.A\",\"value\":\"1\"}]}",
                               err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "prio"));
    ck_assert_int_eq(parse_err("x", "{\"params\":[{\"name\":\"Device.A\",\"value\":\"${pool:q}\"}]}",
                               err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "'q'"));
    ck_assert_int_eq(parse_err("x", "{\"params\":[{\"name\":\"Device.A\",\"value\":\"1\"},"
                                    "{\"name\":\"Device.A\",\"value\":\"2\"}]}",
                               err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "twice"));
    ck_assert_int_eq(parse_err("x", "{\"params\":[{\"name\":\"Device.A.\",\"value\":\"1\"}]}",
                               err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "object"));
    ck_assert_int_eq(parse_err("x", "{\"selector\":{\"tags\":[\"a b\"]},\"params\":[{\"name\":"
                                    "\"Device.A\",\"value\":\"1\"}]}",
                               err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(matching)
{
    struct hm_profile *p = parse("m", "{\"selector\":{\"product_class\":\"HeNB\",\"software_version\":"
                                      "\"4.2.*\",\"tags\":[\"north\"],\"devices\":[\"D2\",\"D1\"]},"
                                      "\"params\":[{\"name\":\"Device.A\",\"value\":\"1\"}]}");
    ck_assert(hm_profile_matches(p, S("HeNB"), S("4.2.1"), S("lab,north"), S("D1")));
    ck_assert(hm_profile_matches(p, S("HeNB"), S("4.2."), S("north"), S("D2")));
    ck_assert(!hm_profile_matches(p, S("HeNB2"), S("4.2.1"), S("north"), S("D1")));
    ck_assert(!hm_profile_matches(p, S("HeNB"), S("4.3.1"), S("north"), S("D1")));
    ck_assert(!hm_profile_matches(p, S("HeNB"), S("4.2"), S("north"), S("D1")));
    ck_assert(!hm_profile_matches(p, S("HeNB"), S("4.2.1"), S("northern"), S("D1")));
    ck_assert(!hm_profile_matches(p, S("HeNB"), S("4.2.1"), S(""), S("D1")));
    ck_assert(!hm_profile_matches(p, S("HeNB"), S("4.2.1"), S("north"), S("D3")));
    ck_assert(!hm_profile_matches(p, S("HeNB"), S("4.2.1"), S("north"), S("D")));
    hm_profile_put(p);
    p = parse("any", "{\"params\":[{\"name\":\"Device.A\",\"value\":\"1\"}]}");
    ck_assert(hm_profile_matches(p, S(""), S(""), S(""), S("")));
    hm_profile_put(p);
    p = parse("exact", "{\"selector\":{\"software_version\":\"4.2\"},\"params\":[{\"name\":"
                       "\"Device.A\",\"value\":\"1\"}]}");
    ck_assert(hm_profile_matches(p, S("X"), S("4.2"), S(""), S("")));
    ck_assert(!hm_profile_matches(p, S("X"), S("4.2.1"), S(""), S("")));
    hm_profile_put(p);

    char out[64], err[100];
    json_t *t = json_loads("[\"b\",\"a\",\"b\",\"c:1\"]", 0, NULL);
    ck_assert_int_eq(hm_tags_normalise(t, out, sizeof(out), err, sizeof(err)), 7);
    ck_assert_str_eq(out, "a,b,c:1");
    json_decref(t);
}
END_TEST

static const char *val(const struct hm_desired *d, const char *name)
{
    const struct hm_desired_param *p = hm_desired_find(d, S(name));
    return p ? p->value : NULL;
}

START_TEST(merge_precedence_and_hash)
{
    struct hm_profile *ps[4];
    ps[0] = parse("base", "{\"priority\":0,\"params\":[{\"name\":\"Device.A\",\"value\":\"a0\"},"
                          "{\"name\":\"Device.B\",\"value\":\"b0\"},{\"name\":\"Device.C\",\"value\":\"c0\"}]}");
    ps[1] = parse("high", "{\"priority\":10,\"selector\":{\"tags\":[\"t\"]},\"params\":["
                          "{\"name\":\"Device.A\",\"value\":\"a10\"}]}");
    /* same priority as base: the name sorting last ("zz" > "base") wins */
    ps[2] = parse("zz", "{\"priority\":0,\"params\":[{\"name\":\"Device.B\",\"value\":\"bzz\"}]}");
    ps[3] = parse("aa", "{\"priority\":0,\"params\":[{\"name\":\"Device.C\",\"value\":\"caa\"},"
                        "{\"name\":\"Device.D\",\"value\":\"${pool:pci}\"}]}");
    struct hm_desired *d = hm_desired_merge(ps, 4, S("P"), S("1"), S(""), S("dev"));
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->n, 4);
    ck_assert_str_eq(val(d, "Device.A"), "a0");
    ck_assert_str_eq(val(d, "Device.B"), "bzz");
    ck_assert_str_eq(val(d, "Device.C"), "c0"); /* "base" sorts after "aa" */
    ck_assert_int_eq(hm_desired_find(d, S("Device.D"))->pool, 3);
    ck_assert_uint_eq(d->npools, 1);
    ck_assert_ptr_null(hm_desired_find(d, S("Device.E")));
    ck_assert_ptr_null(hm_desired_find(d, S("Device.")));
    /* sorted by name */
    for (uint32_t i = 1; i < d->n; i++)
        ck_assert(strcmp(d->v[i - 1].name, d->v[i].name) < 0);
    struct hm_desired *d2 = hm_desired_merge(ps, 4, S("P"), S("1"), S("t"), S("dev"));
    ck_assert_str_eq(val(d2, "Device.A"), "a10");
    ck_assert(d->hash != d2->hash);
    /* order of the input does not matter */
    struct hm_profile *rev[4] = {ps[3], ps[2], ps[1], ps[0]};
    struct hm_desired *d3 = hm_desired_merge(rev, 4, S("P"), S("1"), S("t"), S("dev"));
    ck_assert(d3->hash == d2->hash);
    ck_assert_ptr_null(hm_desired_merge(ps + 1, 1, S("P"), S("1"), S(""), S("dev")));
    free(d);
    free(d2);
    free(d3);
    for (int i = 0; i < 4; i++)
        hm_profile_put(ps[i]);
}
END_TEST

START_TEST(set_lookup_is_cached_per_combination)
{
    struct hm_profile *ps[2];
    ps[0] = parse("pc", "{\"selector\":{\"product_class\":\"P\"},\"params\":[{\"name\":\"Device.A\","
                        "\"value\":\"1\"}]}");
    ps[1] = parse("one", "{\"priority\":9,\"selector\":{\"devices\":[\"D9\"]},\"params\":["
                         "{\"name\":\"Device.A\",\"value\":\"9\"}]}");
    struct hm_profset *s = hm_profset_build(ps, 2);
    hm_profile_put(ps[0]);
    hm_profile_put(ps[1]); /* the set holds its own references */
    ck_assert_uint_eq(hm_profset_count(s), 2);
    ck_assert_str_eq(hm_profset_at(s, 0)->name, "one");
    ck_assert(!hm_profset_uses_tags(s));
    const struct hm_desired *a = hm_profset_lookup(s, 0, S("P"), S("1"), S("x"), S("D1"));
    const struct hm_desired *b = hm_profset_lookup(s, 0, S("P"), S("1"), S("y"), S("D2"));
    ck_assert_ptr_eq(a, b); /* same class and version, no tag selectors, not named */
    ck_assert_str_eq(val(a, "Device.A"), "1");
    const struct hm_desired *c = hm_profset_lookup(s, 0, S("P"), S("1"), S(""), S("D9"));
    ck_assert_ptr_ne(a, c);
    ck_assert_str_eq(val(c, "Device.A"), "9");
    ck_assert_ptr_null(hm_profset_lookup(s, 0, S("Q"), S("1"), S(""), S("D1")));
    ck_assert_ptr_null(hm_profset_lookup(s, 0, S("Q"), S("1"), S(""), S("D1")));
    /* another slot has its own cache with equal content */
    const struct hm_desired *e = hm_profset_lookup(s, 5, S("P"), S("1"), S(""), S("D1"));
    ck_assert_ptr_ne(a, e);
    ck_assert(a->hash == e->hash);
    ck_assert_ptr_null(hm_profset_lookup(s, HM_PROFSET_SLOTS, S("P"), S("1"), S(""), S("D1")));
    /* many combinations: the cache grows */
    char pc[16];
    for (int i = 0; i < 500; i++) {
        snprintf(pc, sizeof(pc), "V%d", i);
        ck_assert_ptr_nonnull(hm_profset_lookup(s, 1, S("P"), S(pc), S(""), S("D1")));
    }
    ck_assert_ptr_eq(hm_profset_lookup(s, 0, S("P"), S("1"), S(""), S("D1")), a);
    hm_profset_free(s);
    hm_profset_free(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("profiles");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parse_validates_and_normalises);
    tcase_add_test(tc, matching);
    tcase_add_test(tc, merge_precedence_and_hash);
    tcase_add_test(tc, set_lookup_is_cached_per_combination);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
