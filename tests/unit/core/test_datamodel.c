#include "hm_check.h"
/* The poisoned-names pragma in core/bug.h must follow every system header. */
#include <stdio.h>
#include <string.h>

#include "core/datamodel.h"

static struct hm_dm *dm;

static void setup(void)
{
    const char *files[] = {HM_SHARED_DATA "/datamodels/tr-181-2-17-0-cwmp-full.xml",
                           HM_SHARED_DATA "/datamodels/tr-196-2-1-2-cwmp-full.xml",
                           HM_SHARED_DATA "/datamodels/tr-098-1-8-0-full.xml"};
    char err[256];
    dm = hm_dm_load(files, 3, err, sizeof(err));
    ck_assert_msg(dm, "%s", err);
}

static void teardown(void)
{
    hm_dm_destroy(dm);
}

START_TEST(loads_the_models)
{
    /* Device:2.17, FAPService:2.1 under both roots and InternetGatewayDevice:1.14. */
    ck_assert_uint_gt(hm_dm_count(dm), 12000);
}
END_TEST

static int set(const char *name, const char *value, enum hm_cwmp_type *t, char *err)
{
    return hm_dm_check_set(dm, name, value, t, err, 256);
}

START_TEST(set_checks)
{
    char err[256];
    enum hm_cwmp_type t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.PhyCellID", "17",
                         &t, err),
                     HM_DM_OK);
    ck_assert_int_eq(t, HM_CWMP_T_STRING); /* PhyCellID is a list of ranges in TR-196 */
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.ManagementServer.PeriodicInformInterval", "300", &t, err),
                     HM_DM_OK);
    ck_assert_int_eq(t, HM_CWMP_T_UINT);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.ManagementServer.PeriodicInformInterval", "0", &t, err),
                     HM_DM_BAD_VALUE);
    ck_assert_msg(strstr(err, "PeriodicInformInterval"), "%s", err);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.ManagementServer.PeriodicInformInterval", "ten", &t, err),
                     HM_DM_BAD_VALUE);
    t = HM_CWMP_T_INT;
    ck_assert_int_eq(set("Device.ManagementServer.PeriodicInformInterval", "300", &t, err),
                     HM_DM_BAD_VALUE); /* wrong xsi:type asked for */
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.ManagementServer.PeriodicInformEnable", "maybe", &t, err),
                     HM_DM_BAD_VALUE);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.ManagementServer.PeriodicInformEnable", "true", &t, err),
                     HM_DM_OK);
    ck_assert_int_eq(t, HM_CWMP_T_BOOL);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.DeviceInfo.SoftwareVersion", "1", &t, err), HM_DM_READ_ONLY);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.DeviceInfo.", "1", &t, err), HM_DM_IS_OBJECT);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.DeviceInfo.NoSuchThing", "1", &t, err), HM_DM_UNKNOWN);
    ck_assert_msg(strstr(err, "NoSuchThing"), "%s", err);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.DeviceInfo.X_ACME_Knob", "1", &t, err), HM_DM_VENDOR);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("InternetGatewayDevice.ManagementServer.URL", "http://h/cwmp", &t, err),
                     HM_DM_OK);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.Services.FAPService.2.FAPControl.LTE.AdminState", "true", &t,
                         err),
                     HM_DM_OK);
    t = HM_CWMP_T_NONE;
    ck_assert_int_eq(set("Device.Services.FAPService.1.FAPControl.LTE.Gateway.S1ConnectionMode",
                         "Nonsense", &t, err),
                     HM_DM_BAD_VALUE);
}
END_TEST

START_TEST(get_and_object_checks)
{
    char err[256];
    ck_assert_int_eq(hm_dm_check_get(dm, "Device.DeviceInfo.", err, sizeof(err)), HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_get(dm, "Device.Services.", err, sizeof(err)), HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_get(dm, "Device.Services.FAPService.1.CellConfig.", err,
                                     sizeof(err)),
                     HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_get(dm, "Device.Nope.", err, sizeof(err)), HM_DM_UNKNOWN);
    ck_assert_int_eq(hm_dm_check_object(dm,
                                        "Device.Services.FAPService.1.CellConfig.LTE.RAN."
                                        "NeighborList.LTECell.",
                                        true, err, sizeof(err)),
                     HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_object(dm,
                                        "Device.Services.FAPService.1.CellConfig.LTE.RAN."
                                        "NeighborList.LTECell.3.",
                                        false, err, sizeof(err)),
                     HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_object(dm, "Device.DeviceInfo.", true, err, sizeof(err)),
                     HM_DM_UNKNOWN);
}
END_TEST

START_TEST(root_model_versions)
{
    char err[256];
    ck_assert_uint_eq(hm_dm_version_parse("2.11"), 0x20b);
    ck_assert_uint_eq(hm_dm_version_parse("Device:2.17"), 0x211);
    ck_assert_uint_eq(hm_dm_version_parse("2.12.1"), 0x20c);
    ck_assert_uint_eq(hm_dm_version_parse("2"), 0);
    ck_assert_uint_eq(hm_dm_version_parse("x.1"), 0);
    ck_assert_uint_eq(hm_dm_version_parse(""), 0);
    /* HostName arrived in Device:2.16 */
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.DeviceInfo.HostName", 0x20f, err, 256),
                     HM_DM_TOO_NEW);
    ck_assert_msg(strstr(err, "Device.DeviceInfo.HostName") && strstr(err, "2.16") &&
                      strstr(err, "2.15"), "%s", err);
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.DeviceInfo.HostName", 0x210, err, 256),
                     HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.DeviceInfo.HostName", 0, err, 256), HM_DM_OK);
    /* a parameter inherits its object's version (FirmwareImage: 2.12); tables and instances */
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.DeviceInfo.FirmwareImage.1.Name", 0x20b,
                                          err, 256), HM_DM_TOO_NEW);
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.DeviceInfo.FirmwareImage.", 0x20b, err, 256),
                     HM_DM_TOO_NEW);
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.DeviceInfo.FirmwareImage.1.Name", 0x20c,
                                          err, 256), HM_DM_OK);
    /* base parameters, the FAPService service model, vendor and unknown paths: not refused */
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.ManagementServer.URL", 0x200, err, 256),
                     HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_version(
                         dm, "Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.PhyCellID",
                         0x200, err, 256),
                     HM_DM_OK);
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.X_ACME_Thing", 0x200, err, 256), HM_DM_OK);
    /* a different major (an IGD:1 version) is not compared with Device:2 */
    ck_assert_int_eq(hm_dm_check_version(dm, "Device.DeviceInfo.HostName", 0x10e, err, 256),
                     HM_DM_OK);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("datamodel");
    TCase *tc = tcase_create("bbf");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, loads_the_models);
    tcase_add_test(tc, set_checks);
    tcase_add_test(tc, get_and_object_checks);
    tcase_add_test(tc, root_model_versions);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
