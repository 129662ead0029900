#ifndef HM_HEMS_PM_H
#define HM_HEMS_PM_H
/*
 * PM upload configuration at registration (TS 32.593 5.4.1; docs/procedures.md "PM upload
 * configuration", docs/pm.md "Per-device upload credentials").
 *
 * The Serving HeMS gives every registering device its own upload credentials: username =
 * the device id (OUI-ProductClass-Serial), password = 128 random bits (32 hex digits),
 * generated here and sent once by SetParameterValues. Only the Digest HA1
 * (MD5(user:realm:password), hex) is kept, in the device record's PM tail
 * (struct hm_dev_rec pm_*): enough to verify both Basic and Digest uploads, useless for
 * logging in anywhere else.
 *
 * Two forms, per policy ("pm".form, per ProductClass or device):
 *  - "config" (TR-262 / TR-196 issue 2, both roots): AddObject <root>FAP.PerfMgmt.Config.,
 *    and, when its response names the instance n, SetParameterValues of Config.n.{Enable,
 *    URL, Username, Password, PeriodicUploadInterval, PeriodicUploadTime} and
 *    <root>Services.FAPService.1.FAPControl.LTE.PMConfig = <root>FAP.PerfMgmt.Config.n, put
 *    at a task sequence number reserved at registration (so it runs before AdminState);
 *  - "filemgmt" (TR-196 issue 1): SetParameterValues of
 *    <root>Services.FAPService.1.PerfMgmt.FileMgmt.{PeriodicUploadEnable, URL, Username,
 *    Password, PeriodicUploadInterval, PeriodicUploadTime} at registration.
 * A device whose PM is disabled by policy is recorded HM_PM_DISABLED (uploads refused); in
 * the filemgmt form it is also sent PeriodicUploadEnable=false.
 *
 * Threads: all functions run on the shard thread of the device's session, inside the ACS's
 * read transaction; the policy JSON is the caller's (read under the hems mutex).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"
#include "proto/cwmp.h"
#include "storage/store.h"
#include "storage/store-t.h"

/* Validates the policy's "pm" object; 0 or -EINVAL with <err>. */
int hm_hems_pm_check(json_t *pm, char *err, size_t errlen);

/* Room for the strings the registration writes into the device record. */
struct hm_hems_pm_scratch {
    char ha1[33];
    char object[160];
};

/*
 * Registration: adds the PM tasks for device <dev> (root "Device." or
 * "InternetGatewayDevice.") to <b> and sets d->pm_* (pointing into <sc>, which must outlive
 * the record's encoding). A new password on every registration (rotation). <realm> is the
 * realm uploads are authenticated in. Returns 0 or -E2BIG (batch full).
 */
int hm_hems_pm_register(json_t *pm, const char *realm, struct hm_store *st,
                        struct hm_store_batch *b, struct hm_slice dev, const char *root,
                        const struct hm_cwmp_inform *in, struct hm_dev_rec *d,
                        struct hm_hems_pm_scratch *sc);

/*
 * Task result hook (core/acs.c record_result, after the task record <t> with sequence <seq>
 * was put in <b>): the AddObject of the config form queues its SetParameterValues with the
 * new credentials; a successful SetParameterValues of the device's PM Enable /
 * PeriodicUploadEnable (e.g. an operator's task) updates the recorded state; the password
 * is scrubbed from the stored hems-pm task once the CPE answered. Reads the device record
 * through <rd> (in a read transaction). Returns 0 or a negative error (batch full).
 */
int hm_hems_pm_on_result(json_t *pm, const char *realm, struct hm_store_reader *rd,
                         struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                         const struct hm_task_rec *t, const struct hm_cwmp_msg *m,
                         uint64_t *n_provisioned);

/* "none" | "pending" | "enabled" | "disabled". */
const char *hm_pm_state_name(uint8_t s);

/* The device's PM configuration for the API (never the password or its hash). */
json_t *hm_hems_pm_json(const struct hm_dev_rec *d);

#endif
