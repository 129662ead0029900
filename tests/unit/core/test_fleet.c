/* core/fleet.c on a real LMDB store: reconciliation, faults, drift, restart. */
#include <jansson.h>

#include "core/fleet.h"
#include "core/fleet_s1.h"
#include "core/pools.h"
#include "core/profiles.h"
#include "storage/store_test.h"

#define S(lit) HM_SLICE_LIT(lit)
#define DEV "00005A-HeNB-SN1"

struct env {
    char dir[256];
    struct hm_store *st;
    struct hm_fleet *f;
    struct hm_store_reader *rd;
};

static void env_open(struct env *e, bool fresh)
{
    if (fresh)
        tmpdir_make(e->dir, "fleet");
    struct hm_store_opts o = {.no_sync = 1};
    ck_assert_int_eq(hm_store_open(e->dir, &o, &e->st), 0);
    char err[200];
    ck_assert_int_eq(hm_fleet_create(e->st, &e->f, err, sizeof(err)), 0);
    ck_assert_int_eq(hm_store_reader_open(e->st, &e->rd), 0);
}

static void env_close(struct env *e, bool remove)
{
    hm_store_reader_close(e->rd);
    hm_fleet_destroy(e->f);
    hm_store_close(e->st);
    if (remove)
        rm_rf(e->dir);
}

static void put_json(struct env *e, bool pool, const char *name, const char *json)
{
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    json_t *j = json_loads(json, 0, NULL);
    json_t *norm = NULL;
    char err[300];
    hm_fleet_lock(e->f);
    int r = pool ? hm_fleet_pool_put(e->f, name, j, &b, err, sizeof(err))
                 : hm_fleet_profile_put(e->f, name, j, &b, &norm, err, sizeof(err));
    ck_assert_msg(r == 0, "%s: %s", name, err);
    ck_assert_int_eq(submit_wait(e->st, &b), 0);
    hm_fleet_unlock(e->f);
    json_decref(norm);
    json_decref(j);
    hm_store_batch_fini(&b);
}

/* Runs the Inform hook for DEV with <params> (name, value pairs; NULL-terminated) and
 * commits; returns the number of ops the hook added (0: nothing queued or recorded). */
static unsigned inform(struct env *e, const char *pkey, const char *event, const char **nv)
{
    struct hm_cwmp_param p[16];
    uint32_t n = 0;
    for (; nv && nv[2 * n]; n++)
        p[n] = (struct hm_cwmp_param){hm_slice_cstr(nv[2 * n]), hm_slice_cstr(nv[2 * n + 1]),
                                      HM_CWMP_T_STRING};
    struct hm_cwmp_event ev = {hm_slice_cstr(event), {0}};
    struct hm_cwmp_inform in = {.dev = {S("Acme"), S("00005A"), S("HeNB"), S("SN1")}};
    in.events.v = &ev;
    in.events.n = 1;
    in.params.v = p;
    in.params.n = n;
    struct hm_dev_rec d = {.oui = S("00005A"), .product_class = S("HeNB"), .serial = S("SN1"),
                           .sw_version = S("4.2.1"), .param_key = hm_slice_cstr(pkey),
                           .reg_state = HM_REG_REGISTERED};
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    ck_assert_int_eq(hm_store_read_begin(e->rd), 0);
    ck_assert_int_eq(hm_fleet_on_inform(e->f, 0, e->rd, &b, S(DEV), &in, &d), 0);
    hm_store_read_end(e->rd);
    unsigned ops = b.nops;
    /* the device record, as the ACS writes it */
    size_t dn = hm_rec_dev_size(&d);
    char *dp = hm_store_batch_put_reserve(&b, HM_DB_DEVICES, S(DEV), dn);
    ck_assert_int_ge(hm_rec_dev_encode(&d, dp, dn), 0);
    ck_assert_int_eq(submit_wait(e->st, &b), 0);
    hm_store_batch_fini(&b);
    return ops;
}

struct task {
    uint64_t seq;
    uint8_t state;
    char args[4000];
};

struct tscan {
    struct task t[16];
    unsigned n;
};

static int scan_tasks(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct tscan *s = arg;
    struct hm_task_rec t;
    struct hm_slice dev;
    ck_assert_int_eq(hm_key_task_split(key, &dev, &s->t[s->n].seq), 0);
    ck_assert_int_eq(hm_rec_task_decode(val, &t), 0);
    s->t[s->n].state = t.state;
    snprintf(s->t[s->n].args, sizeof(s->t[0].args), "%.*s", (int)t.args.len, t.args.ptr);
    s->n++;
    return 0;
}

static void tasks(struct env *e, struct tscan *s)
{
    char k[256];
    int kl = hm_key_dev_prefix(k, sizeof(k), S(DEV));
    s->n = 0;
    ck_assert_int_eq(hm_store_read_begin(e->rd), 0);
    ck_assert_int_eq(hm_store_scan(e->rd, HM_DB_TASKS, hm_slice(k, (size_t)kl), hm_slice("", 0),
                                   scan_tasks, s), 0);
    hm_store_read_end(e->rd);
}

/* Names set by task args <a>, ','-joined into <out>. */
static const char *names(const char *a, char *out, size_t cap)
{
    json_t *j = json_loads(a, 0, NULL);
    size_t i, n = 0;
    json_t *p;
    out[0] = '\0';
    json_array_foreach(json_object_get(j, "params"), i, p)
        n += (size_t)snprintf(out + n, cap - n, "%s%s=%s", n ? "," : "",
                              json_string_value(json_object_get(p, "name")),
                              json_string_value(json_object_get(p, "value")));
    json_decref(j);
    return out;
}

/* Answers task <t> with <m> through the result hook and marks it done. */
static void answer(struct env *e, const struct task *t, const struct hm_cwmp_msg *m)
{
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    char k[256];
    int kl = hm_key_task(k, sizeof(k), S(DEV), t->seq);
    struct hm_task_rec tr = {.kind = HM_TASK_SET_PARAM_VALUES,
                             .state = m->method == HM_CWMP_FAULT ? HM_TASK_FAILED : HM_TASK_DONE,
                             .args = hm_slice_cstr(t->args)};
    size_t n = hm_rec_task_size(&tr);
    char *p = hm_store_batch_put_reserve(&b, HM_DB_TASKS, hm_slice(k, (size_t)kl), n);
    ck_assert_int_ge(hm_rec_task_encode(&tr, p, n), 0);
    ck_assert_int_eq(hm_store_read_begin(e->rd), 0);
    ck_assert_int_eq(hm_fleet_on_result(e->f, 0, e->rd, &b, S(DEV), t->seq,
                                        HM_TASK_SET_PARAM_VALUES, hm_slice_cstr(t->args), m),
                     0);
    hm_store_read_end(e->rd);
    ck_assert_int_eq(submit_wait(e->st, &b), 0);
    hm_store_batch_fini(&b);
}

START_TEST(reconcile_fault_drift_restart)
{
    struct env e;
    env_open(&e, true);
    put_json(&e, true, "pci", "{\"lo\":5,\"hi\":6}");
    put_json(&e, false, "base", "{\"selector\":{\"product_class\":\"HeNB\"},\"params\":["
                                "{\"name\":\"Device.A\",\"value\":\"1\"},"
                                "{\"name\":\"Device.B\",\"value\":\"${pool:pci}\"},"
                                "{\"name\":\"Device.C\",\"value\":\"true\",\"type\":\"xsd:boolean\"},"
                                "{\"name\":\"Device.D\",\"value\":\"d\"}]}");
    put_json(&e, false, "other", "{\"selector\":{\"product_class\":\"Other\"},\"params\":["
                                 "{\"name\":\"Device.A\",\"value\":\"X\"}]}");
    /* C is reported as "1" (== true): not sent; B from the pool */
    const char *nv1[] = {"Device.C", "1", NULL};
    ck_assert_uint_gt(inform(&e, "", "1 BOOT", nv1), 0);
    struct tscan s;
    char buf[512];
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_str_eq(names(s.t[0].args, buf, sizeof(buf)), "Device.A=1,Device.B=5,Device.D=d");
    ck_assert(strstr(s.t[0].args, "\"parameter_key\":\"profile-"));
    /* again, while the task is queued: nothing new */
    ck_assert_uint_eq(inform(&e, "", "2 PERIODIC", NULL), 0);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 1);
    /* the device refuses D */
    struct hm_cwmp_spv_fault sf = {S("Device.D"), 9007, S("bad")};
    struct hm_cwmp_msg m = {.method = HM_CWMP_FAULT};
    m.u.fault.code = 9003;
    m.u.fault.spv_faults.v = &sf;
    m.u.fault.spv_faults.n = 1;
    answer(&e, &s.t[0], &m);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(names(s.t[1].args, buf, sizeof(buf)), "Device.A=1,Device.B=5");
    /* success: applied; the values become known parameters */
    struct hm_cwmp_msg ok = {.method = HM_CWMP_SET_PARAMETER_VALUES_RESPONSE};
    answer(&e, &s.t[1], &ok);
    ck_assert_uint_eq(inform(&e, "", "2 PERIODIC", NULL), 0);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 2);
    /* drift on A in a value-change Inform: only A is corrected */
    const char *nv2[] = {"Device.A", "7", "Device.C", "true", NULL};
    ck_assert_uint_gt(inform(&e, "", "4 VALUE CHANGE", nv2), 0);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_str_eq(names(s.t[2].args, buf, sizeof(buf)), "Device.A=1");
    answer(&e, &s.t[2], &ok);
    /* a whole-request fault halves the batch: change the profile so 3 values differ */
    put_json(&e, false, "base", "{\"selector\":{\"product_class\":\"HeNB\"},\"params\":["
                                "{\"name\":\"Device.A\",\"value\":\"2\"},"
                                "{\"name\":\"Device.B\",\"value\":\"${pool:pci}\"},"
                                "{\"name\":\"Device.E\",\"value\":\"e\"},"
                                "{\"name\":\"Device.F\",\"value\":\"f\"}]}");
    ck_assert_uint_gt(inform(&e, "", "2 PERIODIC", NULL), 0);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_str_eq(names(s.t[3].args, buf, sizeof(buf)), "Device.A=2,Device.E=e,Device.F=f");
    struct hm_cwmp_msg whole = {.method = HM_CWMP_FAULT};
    whole.u.fault.code = 9004;
    answer(&e, &s.t[3], &whole);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 6); /* 3 parameters, batches of 2 */
    ck_assert_str_eq(names(s.t[4].args, buf, sizeof(buf)), "Device.A=2,Device.E=e");
    ck_assert_str_eq(names(s.t[5].args, buf, sizeof(buf)), "Device.F=f");
    /* the limit is remembered: a later difference goes out in batches of 2 */
    answer(&e, &s.t[4], &ok);
    answer(&e, &s.t[5], &ok);
    put_json(&e, false, "base", "{\"selector\":{\"product_class\":\"HeNB\"},\"params\":["
                                "{\"name\":\"Device.A\",\"value\":\"3\"},"
                                "{\"name\":\"Device.B\",\"value\":\"${pool:pci}\"},"
                                "{\"name\":\"Device.E\",\"value\":\"e3\"},"
                                "{\"name\":\"Device.F\",\"value\":\"f3\"}]}");
    ck_assert_uint_gt(inform(&e, "", "2 PERIODIC", NULL), 0);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 8);
    ck_assert_str_eq(names(s.t[6].args, buf, sizeof(buf)), "Device.A=3,Device.E=e3");
    ck_assert_str_eq(names(s.t[7].args, buf, sizeof(buf)), "Device.F=f3");
    (void)json_loads;
    env_close(&e, false);

    /* restart: pools, allocations and profiles come back */
    env_open(&e, false);
    struct hm_pool *p = hm_fleet_pool(e.f, 0);
    ck_assert_ptr_nonnull(p);
    int64_t v;
    ck_assert_int_eq(hm_pool_lookup(p, S(DEV), &v), 0);
    ck_assert_int_eq(v, 5);
    struct hm_profset *set = hm_fleet_acquire(e.f, 0);
    ck_assert_uint_eq(hm_profset_count(set), 2);
    hm_fleet_release(e.f, 0);
    ck_assert_int_eq(hm_store_read_begin(e.rd), 0);
    json_t *dj = hm_fleet_desired_json(e.f, 0, e.rd, S(DEV));
    hm_store_read_end(e.rd);
    ck_assert_ptr_nonnull(dj);
    ck_assert_uint_eq(json_array_size(json_object_get(dj, "params")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(dj, "state")), "queued");
    json_decref(dj);
    env_close(&e, true);
}
END_TEST


static void put_region(struct env *e, const char *name, const char *json)
{
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    json_t *j = json_loads(json, 0, NULL), *norm = NULL;
    char err[300];
    hm_fleet_lock(e->f);
    int r = hm_fleet_region_put(e->f, name, j, &b, &norm, err, sizeof(err));
    ck_assert_msg(r == 0, "%s: %s", name, err);
    ck_assert_int_eq(submit_wait(e->st, &b), 0);
    hm_fleet_region_commit(e->f, true);
    hm_fleet_unlock(e->f);
    json_decref(norm);
    json_decref(j);
    hm_store_batch_fini(&b);
}

/* The value task args <a> set for parameter <name> (into <out>), or "". */
static const char *arg_value(const char *a, const char *name, char *out, size_t cap)
{
    json_t *j = json_loads(a, 0, NULL);
    size_t i;
    json_t *p;
    out[0] = '\0';
    json_array_foreach(json_object_get(j, "params"), i, p)
        if (!strcmp(json_string_value(json_object_get(p, "name")), name))
            snprintf(out, cap, "%s", json_string_value(json_object_get(p, "value")));
    json_decref(j);
    return out;
}

#define TACP "Device.Services.FAPService.1.CellConfig.LTE.EPC.TAC"

START_TEST(pci_tac_and_s1_region_restart)
{
    struct env e;
    env_open(&e, true);
    put_json(&e, true, "pci", "{\"kind\":\"pci\",\"lo\":0,\"hi\":3,\"reuse_distance\":1}");
    put_region(&e, "r7", "{\"servers\":\"a.example,b.example,c.example\",\"port\":36413,"
                         "\"selector\":{\"tac\":[7,[20,29]]}}");
    const char *prof = "{\"params\":[{\"name\":\"" TACP "\",\"value\":\"%s\"},"
                       "{\"name\":\"Device.X.PCI\",\"value\":\"${pool:pci}\"},"
                       "{\"name\":\"Device.X.S1\",\"value\":\"${s1:servers}\"},"
                       "{\"name\":\"Device.X.Port\",\"value\":\"${s1:port}\"}]}";
    char pj[600], v[200], list[200];
    snprintf(pj, sizeof(pj), prof, "7");
    put_json(&e, false, "cells", pj);
    /* another device already holds PCI 0 in TAC 8 (a neighbour of 7) */
    struct hm_pool *p = hm_fleet_pool(e.f, 0);
    int64_t val, tac;
    bool fresh;
    ck_assert_int_eq(hm_pool_get_tac(p, S("other"), 8, &val, &fresh), 0);
    ck_assert_int_eq(val, 0);
    ck_assert_uint_gt(inform(&e, "", "0 BOOTSTRAP", NULL), 0);
    struct tscan s;
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_str_eq(arg_value(s.t[0].args, "Device.X.PCI", v, sizeof(v)), "1");
    ck_assert_str_eq(arg_value(s.t[0].args, "Device.X.Port", v, sizeof(v)), "36413");
    arg_value(s.t[0].args, "Device.X.S1", list, sizeof(list));
    ck_assert_uint_eq(strlen(list), strlen("a.example,b.example,c.example"));
    ck_assert_ptr_nonnull(strstr(list, "a.example"));
    ck_assert_ptr_nonnull(strstr(list, "b.example"));
    ck_assert_ptr_nonnull(strstr(list, "c.example"));
    ck_assert_int_eq(hm_pool_lookup_tac(p, S(DEV), &val, &tac), 0);
    ck_assert_int_eq(val, 1);
    ck_assert_int_eq(tac, 7);
    /* the hook hems_proc.c calls at registration gives the same list and port */
    struct hm_cwmp_inform in = {.dev = {S("Acme"), S("00005A"), S("HeNB"), S("SN1")}};
    char hl[200];
    int32_t port = 0;
    ck_assert_int_eq(hm_fleet_s1_source(e.f, S(DEV), &in, hl, sizeof(hl), &port), 1);
    ck_assert_str_eq(hl, list);
    ck_assert_int_eq(port, 36413);
    ck_assert_int_eq(hm_fleet_s1_source(e.f, S("00005A-Other-1"), &in, hl, sizeof(hl), &port),
                     1); /* same profile, same region; its own order */
    env_close(&e, false);

    /* restart: (PCI, TAC) and the region come back; the hook answers the same */
    env_open(&e, false);
    p = hm_fleet_pool(e.f, 0);
    ck_assert(hm_pool_is_pci(p));
    ck_assert_int_eq(hm_pool_lookup_tac(p, S(DEV), &val, &tac), 0);
    ck_assert_int_eq(val, 1);
    ck_assert_int_eq(tac, 7);
    json_t *rj = hm_fleet_regions_json(e.f, "r7");
    ck_assert_ptr_nonnull(rj);
    ck_assert_int_eq(json_integer_value(json_object_get(rj, "port")), 36413);
    json_decref(rj);
    ck_assert_int_eq(hm_fleet_s1_source(e.f, S(DEV), &in, hl, sizeof(hl), &port), 1);
    ck_assert_str_eq(hl, list);
    /* re-registration (factory reset): the same values are sent again */
    inform(&e, "", "0 BOOTSTRAP", NULL);
    tasks(&e, &s);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(arg_value(s.t[1].args, "Device.X.PCI", v, sizeof(v)), "1");
    ck_assert_str_eq(arg_value(s.t[1].args, "Device.X.S1", v, sizeof(v)), list);
    /* the TAC changes to 25 (same region, far from 8): the PCI stays, the TAC is stored */
    snprintf(pj, sizeof(pj), prof, "25");
    put_json(&e, false, "cells", pj);
    inform(&e, "", "1 BOOT", NULL);
    ck_assert_int_eq(hm_pool_lookup_tac(p, S(DEV), &val, &tac), 0);
    ck_assert_int_eq(val, 1);
    ck_assert_int_eq(tac, 25);
    /* TAC 50: no region selects it; no S1 list in the desired state, PCI still there */
    snprintf(pj, sizeof(pj), prof, "50");
    put_json(&e, false, "cells", pj);
    ck_assert_int_eq(hm_fleet_s1_source(e.f, S(DEV), &in, hl, sizeof(hl), &port), 0);
    ck_assert_int_eq(hm_store_read_begin(e.rd), 0);
    json_t *dj = hm_fleet_desired_json(e.f, 0, e.rd, S(DEV));
    hm_store_read_end(e.rd);
    ck_assert_uint_eq(json_array_size(json_object_get(dj, "params")), 2); /* TAC, PCI */
    json_decref(dj);
    env_close(&e, false);
    env_open(&e, false);
    inform(&e, "", "1 BOOT", NULL);
    ck_assert_int_eq(hm_pool_lookup_tac(hm_fleet_pool(e.f, 0), S(DEV), &val, &tac), 0);
    ck_assert_int_eq(tac, 50);
    env_close(&e, false);
    env_open(&e, false);
    ck_assert_int_eq(hm_pool_lookup_tac(hm_fleet_pool(e.f, 0), S(DEV), &val, &tac), 0);
    ck_assert_int_eq(val, 1);
    ck_assert_int_eq(tac, 50);
    /* pool and region validation */
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    char err[300];
    json_t *j = json_loads("{\"lo\":0,\"hi\":3}", 0, NULL), *norm = NULL;
    hm_fleet_lock(e.f);
    ck_assert_int_eq(hm_fleet_pool_put(e.f, "pci", j, &b, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "kind"));
    json_decref(j);
    /* a device of TAC 60 holds PCI 1 too: a distance of 10 would put it next to DEV (50) */
    ck_assert_int_eq(hm_pool_restore_tac(hm_fleet_pool(e.f, 0), S("third"), 60, 1), 0);
    j = json_loads("{\"kind\":\"pci\",\"reuse_distance\":10}", 0, NULL);
    ck_assert_int_eq(hm_fleet_pool_put(e.f, "pci", j, &b, err, sizeof(err)), -EBUSY);
    json_decref(j);
    struct hm_pool_stats pst;
    hm_pool_stats(hm_fleet_pool(e.f, 0), &pst);
    ck_assert_uint_eq(pst.distance, 1); /* unchanged */
    j = json_loads("{\"kind\":\"pci\",\"reuse_distance\":9}", 0, NULL);
    ck_assert_int_eq(hm_fleet_pool_put(e.f, "pci", j, &b, err, sizeof(err)), 0);
    json_decref(j);
    j = json_loads("{\"servers\":\"a,,b\"}", 0, NULL);
    ck_assert_int_eq(hm_fleet_region_put(e.f, "x", j, &b, &norm, err, sizeof(err)), -EINVAL);
    json_decref(j);
    ck_assert_int_eq(hm_fleet_region_del(e.f, "nosuch", &b), -ENOENT);
    hm_fleet_unlock(e.f);
    hm_store_batch_fini(&b);
    env_close(&e, true);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fleet");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, reconcile_fault_drift_restart);
    tcase_add_test(tc, pci_tac_and_s1_region_restart);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
