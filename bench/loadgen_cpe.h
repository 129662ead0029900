#ifndef HM_LG_CPE_H
#define HM_LG_CPE_H
/*
 * What a simulated HeNB says, for hems-loadgen: the parameters of its Inform and its
 * answers to ACS requests. This is the seam where a fuller simulated agent plugs in; the
 * engine (bench/loadgen.c) only calls the two functions below.
 *
 * The built-in CPE is minimal but standard: GetParameterValues answers the Inform's
 * parameters (an exact name, or every known name under a partial path ending in '.'),
 * and Fault 9005 for unknown names; SetParameterValues answers Status 0 without storing;
 * GetParameterNames lists the known names under the path; GetParameterAttributes reports
 * Notification 0; SetParameterAttributes, Reboot, FactoryReset and ScheduleInform get
 * their empty responses; AddObject answers instance 1, DeleteObject/Download/Upload
 * status 0/1/1; GetRPCMethods lists the CPE methods; anything else gets Fault 9000.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/cwmp.h"

#define HM_LG_CPE_PARAMS 40     /* parameters in an Inform */
#define HM_LG_CPE_SCRATCH 2048  /* bytes of per-device values (see hm_lg_cpe_params) */

struct hm_lg_cpe_id {
    struct hm_slice manufacturer, oui, product_class, serial;
    uint64_t index; /* global device index: varies addresses, cell ids, ... */
};

/* Fills <out>[HM_LG_CPE_PARAMS] with the device's Inform parameters. Per-device values are
 * written into <scratch>[HM_LG_CPE_SCRATCH]; the other slices point to static strings.
 * Everything stays valid while <scratch> does. Returns the number of parameters. */
size_t hm_lg_cpe_params(const struct hm_lg_cpe_id *id, struct hm_cwmp_param *out, char *scratch);

/* Appends to <out> the one envelope that answers ACS request <req> (whose cwmp:ID and
 * namespace version are echoed). Uses about 8 KB of stack. Never fails. */
void hm_lg_cpe_answer(const struct hm_lg_cpe_id *id, const struct hm_cwmp_msg *req,
                      struct hm_buf *out);

#endif
