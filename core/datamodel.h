#ifndef HM_DATAMODEL_H
#define HM_DATAMODEL_H
/*
 * Data-model awareness: the Broadband Forum data-model XML (TR-181 Device:2, TR-098
 * InternetGatewayDevice:1, TR-196 FAPService:2 mounted under both roots' Services., and any
 * operator vendor file) loaded once at start with libxml2's streaming reader into a compact
 * read-only table of object and parameter templates ("Device.Services.FAPService.{i}.
 * CellConfig.LTE.RAN.RF.PhyCellID"), shared by all shards without locks.
 *
 * Every task is checked against it before it is queued: unknown path, object where a
 * parameter is expected (and back), non-writable parameter, value of the wrong type or out
 * of range / size / enumeration. The xsi:type of a SetParameterValues value comes from the
 * model. Names with a vendor segment (".X_") that the loaded files do not define are
 * accepted as strings: vendor extensions are the operator's to load.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/cwmp.h"

struct hm_dm;

/*
 * Loads the data-model files <paths> (<n> of them). Returns NULL with a message in <err>
 * when a file cannot be read or parsed. Free with hm_dm_destroy().
 */
struct hm_dm *hm_dm_load(const char *const *paths, size_t n, char *err, size_t errlen);
void hm_dm_destroy(struct hm_dm *dm);

/* Parameters and objects loaded. */
size_t hm_dm_count(const struct hm_dm *dm);

enum hm_dm_check {
    HM_DM_OK = 0,
    HM_DM_VENDOR,        /* a vendor path the model does not know: accepted as is */
    HM_DM_UNKNOWN = -1,  /* no such parameter or object */
    HM_DM_IS_OBJECT = -2,
    HM_DM_IS_PARAM = -3,
    HM_DM_READ_ONLY = -4,
    HM_DM_BAD_VALUE = -5, /* type, range, size or enumeration */
    HM_DM_NOT_MULTI = -6, /* AddObject/DeleteObject on an object that has no instances */
    HM_DM_TOO_NEW = -7,   /* added to the root model after the device's version */
};

/* A data-model version "2.12" (or "Device:2.12", "2.12.1") as major << 8 | minor; 0 when it
 * is not one. */
uint16_t hm_dm_version_parse(const char *s);

/*
 * Whether a device whose root data model version is <dev_version> (hm_dm_version_parse() of
 * its RootDataModelVersion; 0: unknown, nothing refused) has <name> (parameter, object,
 * instance or table path): HM_DM_OK, or HM_DM_TOO_NEW with <err> naming both versions when
 * the root model (Device:2; TR-181 "version" attributes) added it later. Service-model paths
 * (Device.Services.FAPService...), vendor paths, unknown paths and a different major are
 * HM_DM_OK: the other checks handle those.
 */
int hm_dm_check_version(const struct hm_dm *dm, const char *name, uint16_t dev_version,
                        char *err, size_t errlen);

/*
 * Checks a SetParameterValues entry: <name>, <value>, and <xsi> (the requested xsi:type, or
 * NULL to take the model's). On HM_DM_OK/HM_DM_VENDOR *<type> is the xsi:type to send. On
 * failure <err> says why, naming the parameter.
 */
int hm_dm_check_set(const struct hm_dm *dm, const char *name, const char *value,
                    enum hm_cwmp_type *type, char *err, size_t errlen);

/* Checks a name for GetParameterValues/Names/Attributes: a parameter, or an object path
 * ending in '.', or a vendor path. */
int hm_dm_check_get(const struct hm_dm *dm, const char *name, char *err, size_t errlen);

/* Checks the object of AddObject (a multi-instance table "X.Y.") or DeleteObject (an
 * instance "X.Y.3."). */
int hm_dm_check_object(const struct hm_dm *dm, const char *name, bool add, char *err,
                       size_t errlen);

#endif
