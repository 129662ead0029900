/* bench/henb_agent: a simulated HeNB driven by the ACS writers of proto/cwmp. */
#include <stdio.h>
#include <string.h>

#include "bench/henb_agent.h"
#include "hm_check.h"

static struct hm_henb_model model;
static char scratch_mem[1 << 18], parse_mem[1 << 18];
static struct hm_buf req, resp;

static bool sl_eq(struct hm_slice s, const char *c)
{
    return s.len == strlen(c) && (s.len == 0 || memcmp(s.ptr, c, s.len) == 0);
}

static void setup(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/datamodels/henb-tr196-lte-params.csv", HM_SHARED_DATA);
    ck_assert_int_eq(hm_henb_model_load(&model, path), 0);
}

static void teardown(void)
{
    hm_henb_model_free(&model);
    hm_buf_free(&req);
    hm_buf_free(&resp);
}

static const struct hm_cwmp_hdr H = {.ver = HM_CWMP_V1_1, .id = HM_SLICE_LIT("acs-1")};

/* Sends <req> to the agent and parses what it answers into <m>; returns handle()'s value. */
static int exchange(struct hm_henb_agent *a, struct hm_cwmp_msg *m)
{
    struct hm_soap_arena s, p;
    hm_soap_arena_init(&s, scratch_mem, sizeof(scratch_mem));
    hm_buf_reset(&resp);
    int rc = hm_henb_agent_handle(a, req.base, req.len, &s, &resp);
    hm_buf_reset(&req);
    if (rc == 1) {
        hm_soap_arena_init(&p, parse_mem, sizeof(parse_mem));
        ck_assert_int_eq(hm_cwmp_parse(resp.base, resp.len, &p, NULL, m), 0);
    }
    return rc;
}

static bool has_event(const struct hm_cwmp_msg *m, const char *code, const char *key)
{
    for (uint32_t i = 0; i < m->u.inform.events.n; i++)
        if (sl_eq(m->u.inform.events.v[i].code, code) &&
            (!key || sl_eq(m->u.inform.events.v[i].command_key, key)))
            return true;
    return false;
}

static void inform(struct hm_henb_agent *a, struct hm_cwmp_msg *m)
{
    struct hm_soap_arena p;
    hm_buf_reset(&resp);
    hm_henb_agent_inform(a, &resp);
    hm_soap_arena_init(&p, parse_mem, sizeof(parse_mem));
    ck_assert_int_eq(hm_cwmp_parse(resp.base, resp.len, &p, NULL, m), 0);
    ck_assert_int_eq(m->method, HM_CWMP_INFORM);
}

static struct hm_slice gpv1(struct hm_henb_agent *a, const char *name)
{
    struct hm_slice n = hm_slice_cstr(name);
    struct hm_cwmp_msg m;
    hm_cwmp_write_gpv(&req, &H, &n, 1);
    ck_assert_int_eq(exchange(a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_GET_PARAMETER_VALUES_RESPONSE);
    ck_assert_uint_eq(m.u.params.n, 1);
    return m.u.params.v[0].value;
}

START_TEST(model_and_state_size)
{
    ck_assert_uint_gt(model.n, 600);
    int i = hm_henb_model_find(&model, HM_SLICE_LIT("Device.DeviceInfo."));
    ck_assert_int_ge(i, 0);
    ck_assert(model.params[i].object);
    i = hm_henb_model_find(&model,
                           HM_SLICE_LIT("Device.Services.FAPService.1.FAPControl.LTE.Gateway.S1SigLinkPort"));
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(model.params[i].type, HM_CWMP_T_UINT);
    ck_assert(model.params[i].writable);
    ck_assert_uint_le(sizeof(struct hm_henb_agent), 4096); /* per-device state: a few KB */
}
END_TEST

START_TEST(bootstrap_session)
{
    static struct hm_henb_agent a;
    struct hm_cwmp_msg m;
    hm_henb_agent_init(&a, &model, 7, HM_CWMP_V1_1);
    inform(&a, &m);
    ck_assert_int_eq(m.ver, HM_CWMP_V1_1);
    ck_assert(sl_eq(m.u.inform.dev.serial, "HENB000007"));
    ck_assert(sl_eq(m.u.inform.dev.oui, "00005E"));
    ck_assert(has_event(&m, "0 BOOTSTRAP", NULL) && has_event(&m, "1 BOOT", NULL));
    ck_assert_uint_eq(m.u.inform.params.n, 8);
    hm_cwmp_write_inform_response(&req, &H);
    ck_assert_int_eq(exchange(&a, &m), 0); /* nothing more to send: empty POST */
    inform(&a, &m);
    ck_assert(has_event(&m, "2 PERIODIC", NULL));
    ck_assert_uint_eq(m.u.inform.events.n, 1);
    /* an unknown method gets 9000 */
    hm_cwmp_write_empty(&req, &H, HM_CWMP_KICKED_RESPONSE);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_FAULT);
    ck_assert_uint_eq(m.u.fault.code, 9000);
    hm_cwmp_write_get_rpc_methods(&req, &H);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_GET_RPC_METHODS_RESPONSE);
    ck_assert_uint_eq(m.u.methods.n, 13);
    ck_assert(sl_eq(m.id, "acs-1"));
}
END_TEST

START_TEST(gpv_gpn)
{
    static struct hm_henb_agent a;
    struct hm_cwmp_msg m;
    hm_henb_agent_init(&a, &model, 1, HM_CWMP_V1_0);
    ck_assert(sl_eq(gpv1(&a, "Device.DeviceInfo.SerialNumber"), "HENB000001"));
    ck_assert(sl_eq(gpv1(&a, "Device.ManagementServer.PeriodicInformInterval"), "300"));
    struct hm_slice names[2] = {HM_SLICE_LIT("Device.DeviceInfo."),
                                HM_SLICE_LIT("Device.ManagementServer.URL")};
    hm_cwmp_write_gpv(&req, &H, names, 2);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_GET_PARAMETER_VALUES_RESPONSE);
    ck_assert_uint_gt(m.u.params.n, 5);
    ck_assert(sl_eq(m.u.params.v[m.u.params.n - 1].name, "Device.ManagementServer.URL"));
    /* whole FAPService subtree: hundreds of parameters in one response */
    names[0] = HM_SLICE_LIT("Device.Services.FAPService.1.");
    hm_cwmp_write_gpv(&req, &H, names, 1);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_gt(m.u.params.n, 400);
    /* unknown name: 9005 */
    names[0] = HM_SLICE_LIT("Device.NoSuch.Thing");
    hm_cwmp_write_gpv(&req, &H, names, 1);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_FAULT);
    ck_assert_uint_eq(m.u.fault.code, 9005);
    /* GPN next level */
    hm_cwmp_write_gpn(&req, &H, HM_SLICE_LIT("Device."), true);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_GET_PARAMETER_NAMES_RESPONSE);
    /* DeviceInfo., ManagementServer., RootDataModelVersion, Services. */
    ck_assert_uint_eq(m.u.infos.n, 4);
    ck_assert(sl_eq(m.u.infos.v[0].name, "Device.DeviceInfo."));
    ck_assert(sl_eq(m.u.infos.v[2].name, "Device.RootDataModelVersion"));
    ck_assert(!m.u.infos.v[2].writable);
    hm_cwmp_write_gpn(&req, &H, HM_SLICE_LIT("Device.ManagementServer."), false);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_ge(m.u.infos.n, 9);
    hm_cwmp_write_gpn(&req, &H, HM_SLICE_LIT("Device.Nope."), false);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_eq(m.u.fault.code, 9005);
}
END_TEST

START_TEST(spv_faults_and_apply)
{
    static struct hm_henb_agent a;
    struct hm_cwmp_msg m;
    hm_henb_agent_init(&a, &model, 2, HM_CWMP_V1_2);
    struct hm_cwmp_param bad[4] = {
        {HM_SLICE_LIT("Device.Nope"), HM_SLICE_LIT("1"), HM_CWMP_T_STRING},
        {HM_SLICE_LIT("Device.DeviceInfo.SerialNumber"), HM_SLICE_LIT("x"), HM_CWMP_T_STRING},
        {HM_SLICE_LIT("Device.Services.FAPService.1.FAPControl.LTE.Gateway.S1SigLinkPort"),
         HM_SLICE_LIT("abc"), HM_CWMP_T_UINT},
        {HM_SLICE_LIT("Device.ManagementServer.PeriodicInformEnable"), HM_SLICE_LIT("1"),
         HM_CWMP_T_STRING},
    };
    hm_cwmp_write_spv(&req, &H, bad, 4, HM_SLICE_LIT("k-bad"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_FAULT);
    ck_assert_uint_eq(m.u.fault.code, 9003);
    ck_assert_uint_eq(m.u.fault.spv_faults.n, 4);
    ck_assert_uint_eq(m.u.fault.spv_faults.v[0].code, 9005);
    ck_assert_uint_eq(m.u.fault.spv_faults.v[1].code, 9008);
    ck_assert_uint_eq(m.u.fault.spv_faults.v[2].code, 9007);
    ck_assert_uint_eq(m.u.fault.spv_faults.v[3].code, 9006);
    ck_assert(sl_eq(m.u.fault.spv_faults.v[1].name, "Device.DeviceInfo.SerialNumber"));

    /* atomic: one bad parameter, nothing applied */
    struct hm_cwmp_param mix[2] = {
        {HM_SLICE_LIT("Device.ManagementServer.PeriodicInformInterval"), HM_SLICE_LIT("60"),
         HM_CWMP_T_UINT},
        {HM_SLICE_LIT("Device.DeviceInfo.SerialNumber"), HM_SLICE_LIT("x"), HM_CWMP_T_NONE},
    };
    hm_cwmp_write_spv(&req, &H, mix, 2, HM_SLICE_LIT("k-mix"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_eq(m.u.fault.code, 9003);
    ck_assert(sl_eq(gpv1(&a, "Device.ManagementServer.PeriodicInformInterval"), "300"));

    hm_cwmp_write_spv(&req, &H, mix, 1, HM_SLICE_LIT("k-1"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_SET_PARAMETER_VALUES_RESPONSE);
    ck_assert_uint_eq(m.u.status.status, 0);
    ck_assert(sl_eq(gpv1(&a, "Device.ManagementServer.PeriodicInformInterval"), "60"));
    ck_assert(sl_eq(gpv1(&a, "Device.ManagementServer.ParameterKey"), "k-1"));
    /* the Inform reports the applied ParameterKey */
    inform(&a, &m);
    bool seen = false;
    for (uint32_t i = 0; i < m.u.inform.params.n; i++)
        if (sl_eq(m.u.inform.params.v[i].name, "Device.ManagementServer.ParameterKey"))
            seen = sl_eq(m.u.inform.params.v[i].value, "k-1");
    ck_assert(seen);

    /* many long values: the per-device pool fills up and SPV answers 9004, state intact */
    char big[200][64];
    static struct hm_cwmp_param many[200];
    uint32_t n = 0;
    for (uint32_t i = 0; i < model.n && n < 200; i++)
        if (model.params[i].writable && !model.params[i].object &&
            model.params[i].type == HM_CWMP_T_STRING) {
            snprintf(big[n], sizeof(big[n]), "%060u", i);
            many[n] = (struct hm_cwmp_param){model.params[i].name, hm_slice_cstr(big[n]),
                                             HM_CWMP_T_STRING};
            n++;
        }
    ck_assert_uint_gt(n, 50);
    hm_cwmp_write_spv(&req, &H, many, n, HM_SLICE_LIT("k-big"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_eq(m.u.fault.code, 9004);
    ck_assert(sl_eq(gpv1(&a, "Device.ManagementServer.ParameterKey"), "k-1"));
}
END_TEST

START_TEST(objects_reboot_download_reset)
{
    static struct hm_henb_agent a;
    struct hm_cwmp_msg m;
    hm_henb_agent_init(&a, &model, 3, HM_CWMP_V1_0);
    hm_cwmp_write_add_object(&req, &H,
                             HM_SLICE_LIT("Device.Services.FAPService.1.CellConfig.LTE.EPC.PLMNList."),
                             HM_SLICE_LIT("k-add"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_ADD_OBJECT_RESPONSE);
    ck_assert_uint_eq(m.u.status.instance_number, 2);
    hm_cwmp_write_add_object(&req, &H, HM_SLICE_LIT("Device.DeviceInfo."), HM_SLICE_LIT(""));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_eq(m.u.fault.code, 9005);
    hm_cwmp_write_delete_object(
        &req, &H, HM_SLICE_LIT("Device.Services.FAPService.1.CellConfig.LTE.EPC.PLMNList.2."),
        HM_SLICE_LIT("k-del"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_DELETE_OBJECT_RESPONSE);
    hm_cwmp_write_delete_object(
        &req, &H, HM_SLICE_LIT("Device.Services.FAPService.1.CellConfig.LTE.EPC.PLMNList.2."),
        HM_SLICE_LIT("k-del"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_eq(m.u.fault.code, 9005);

    hm_cwmp_write_reboot(&req, &H, HM_SLICE_LIT("rb-9"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_REBOOT_RESPONSE);
    struct hm_cwmp_download d = {.command_key = HM_SLICE_LIT("dl-3"),
                                 .file_type = HM_SLICE_LIT("3 Vendor Configuration File"),
                                 .url = HM_SLICE_LIT("http://hems/cfg")};
    hm_cwmp_write_download(&req, &H, &d);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_DOWNLOAD_RESPONSE);
    ck_assert_uint_eq(m.u.status.status, 1);

    /* next session: BOOT + M Reboot + TRANSFER COMPLETE + M Download, then TransferComplete */
    inform(&a, &m);
    ck_assert(has_event(&m, "1 BOOT", NULL));
    ck_assert(has_event(&m, "M Reboot", "rb-9"));
    ck_assert(has_event(&m, "7 TRANSFER COMPLETE", NULL));
    ck_assert(has_event(&m, "M Download", "dl-3"));
    hm_cwmp_write_inform_response(&req, &H);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_TRANSFER_COMPLETE);
    ck_assert(sl_eq(m.u.transfer_complete.command_key, "dl-3"));
    ck_assert_uint_eq(m.u.transfer_complete.fault.code, 0);
    hm_cwmp_write_empty(&req, &H, HM_CWMP_TRANSFER_COMPLETE_RESPONSE);
    ck_assert_int_eq(exchange(&a, &m), 0);
    inform(&a, &m);
    ck_assert(has_event(&m, "2 PERIODIC", NULL));

    /* factory reset: overrides gone, BOOTSTRAP again */
    struct hm_cwmp_param p = {HM_SLICE_LIT("Device.ManagementServer.PeriodicInformInterval"),
                              HM_SLICE_LIT("77"), HM_CWMP_T_UINT};
    hm_cwmp_write_spv(&req, &H, &p, 1, HM_SLICE_LIT("k"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    hm_cwmp_write_factory_reset(&req, &H);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_FACTORY_RESET_RESPONSE);
    ck_assert(sl_eq(gpv1(&a, "Device.ManagementServer.PeriodicInformInterval"), "300"));
    ck_assert(sl_eq(gpv1(&a, "Device.ManagementServer.ParameterKey"), ""));
    inform(&a, &m);
    ck_assert(has_event(&m, "0 BOOTSTRAP", NULL));
    ck_assert(sl_eq(m.u.inform.dev.serial, "HENB000003"));

    hm_cwmp_write_schedule_inform(&req, &H, 5, HM_SLICE_LIT("si-1"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_SCHEDULE_INFORM_RESPONSE);
    inform(&a, &m);
    ck_assert(has_event(&m, "M ScheduleInform", "si-1"));
}
END_TEST

/* TS 32.593 5.4.1 as hemsd provisions it (core/hems_pm.c): AddObject of a PerfMgmt.Config
 * row, then one SPV of its upload parameters with PMConfig; FaultMgmt-style unknown rows and
 * leaves fault; a factory reset forgets it. */
START_TEST(pm_upload_config)
{
    static struct hm_henb_agent a;
    struct hm_cwmp_msg m;
    const char *url, *user, *pw;
    hm_henb_agent_init(&a, &model, 5, HM_CWMP_V1_2);
    ck_assert(!hm_henb_agent_pm(&a, &url, &user, &pw));
    hm_cwmp_write_add_object(&req, &H, HM_SLICE_LIT("Device.FAP.PerfMgmt.Config."),
                             HM_SLICE_LIT("hems-pm"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_ADD_OBJECT_RESPONSE);
    ck_assert_uint_eq(m.u.status.instance_number, 1);
    struct hm_cwmp_param p[7] = {
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.URL"), HM_SLICE_LIT("http://h:7547/pm/D/"),
         HM_CWMP_T_STRING},
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.Username"), HM_SLICE_LIT("D"), HM_CWMP_T_STRING},
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.Password"), HM_SLICE_LIT("s3cr3t"),
         HM_CWMP_T_STRING},
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.PeriodicUploadInterval"), HM_SLICE_LIT("900"),
         HM_CWMP_T_UINT},
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.PeriodicUploadTime"),
         HM_SLICE_LIT("0001-01-01T00:00:00Z"), HM_CWMP_T_DATETIME},
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.Enable"), HM_SLICE_LIT("true"), HM_CWMP_T_BOOL},
        {HM_SLICE_LIT("Device.Services.FAPService.1.FAPControl.LTE.PMConfig"),
         HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1"), HM_CWMP_T_STRING},
    };
    hm_cwmp_write_spv(&req, &H, p, 7, HM_SLICE_LIT("hems-pm"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_int_eq(m.method, HM_CWMP_SET_PARAMETER_VALUES_RESPONSE);
    ck_assert(hm_henb_agent_pm(&a, &url, &user, &pw));
    ck_assert_str_eq(url, "http://h:7547/pm/D/");
    ck_assert_str_eq(user, "D");
    ck_assert_str_eq(pw, "s3cr3t");
    ck_assert_uint_eq(a.pm.interval_s, 900);
    /* a row that was never added, an unknown leaf: 9003 with 9005 per parameter, nothing kept */
    struct hm_cwmp_param bad[2] = {
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.2.Enable"), HM_SLICE_LIT("false"), HM_CWMP_T_BOOL},
        {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.Nope"), HM_SLICE_LIT("1"), HM_CWMP_T_STRING},
    };
    hm_cwmp_write_spv(&req, &H, bad, 2, HM_SLICE_LIT("k"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert_uint_eq(m.u.fault.code, 9003);
    ck_assert_uint_eq(m.u.fault.spv_faults.n, 2);
    ck_assert_uint_eq(m.u.fault.spv_faults.v[0].code, 9005);
    ck_assert(hm_henb_agent_pm(&a, &url, &user, &pw));
    /* Enable false: no upload configured any more */
    struct hm_cwmp_param off = {HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.1.Enable"),
                                HM_SLICE_LIT("false"), HM_CWMP_T_BOOL};
    hm_cwmp_write_spv(&req, &H, &off, 1, HM_SLICE_LIT("k2"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert(!hm_henb_agent_pm(&a, &url, &user, &pw));
    /* TR-196 issue 1 form */
    struct hm_cwmp_param fm[2] = {
        {HM_SLICE_LIT("Device.Services.FAPService.1.PerfMgmt.FileMgmt.URL"), HM_SLICE_LIT("http://x/"),
         HM_CWMP_T_STRING},
        {HM_SLICE_LIT("Device.Services.FAPService.1.PerfMgmt.FileMgmt.PeriodicUploadEnable"),
         HM_SLICE_LIT("1"), HM_CWMP_T_BOOL},
    };
    hm_cwmp_write_spv(&req, &H, fm, 2, HM_SLICE_LIT("k3"));
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert(hm_henb_agent_pm(&a, &url, &user, &pw));
    ck_assert_str_eq(url, "http://x/");
    hm_cwmp_write_empty(&req, &H, HM_CWMP_FACTORY_RESET);
    ck_assert_int_eq(exchange(&a, &m), 1);
    ck_assert(!hm_henb_agent_pm(&a, &url, &user, &pw));
    ck_assert_uint_eq(a.pm.rows, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("henb_agent");
    TCase *tc = tcase_create("agent");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, model_and_state_size);
    tcase_add_test(tc, bootstrap_session);
    tcase_add_test(tc, gpv_gpn);
    tcase_add_test(tc, spv_faults_and_apply);
    tcase_add_test(tc, objects_reboot_download_reset);
    tcase_add_test(tc, pm_upload_config);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
