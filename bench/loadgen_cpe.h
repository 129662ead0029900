#ifndef HM_LG_CPE_H
#define HM_LG_CPE_H
/*
 * What the simulated HeNBs of one hems-loadgen worker say: their Informs and their answers
 * to the ACS. This is the seam between the engine (bench/loadgen.c: sockets, HTTP, timing)
 * and the device behaviour; the engine calls only the functions below.
 *
 * Two behaviours:
 *  - agent (a data-model CSV was given): each device is a bench/henb_agent.h agent (about
 *    2.5 KB each): SetParameterValues are remembered and show up in later Informs and
 *    GetParameterValues, Reboot/Download/ScheduleInform queue the right events, a
 *    pending TransferComplete is sent after the InformResponse, FactoryReset bootstraps.
 *  - built-in (no CSV): stateless and minimal but standard answers: GetParameterValues
 *    returns the Inform's parameters (exact names or partial paths) or Fault 9005;
 *    SetParameterValues answers Status 0 without storing; GetParameterNames/Attributes
 *    list the known names; the other RPCs get their (empty) responses; unknown: 9000.
 * Either way the Inform carries HM_LG_CPE_PARAMS parameters (about 7 KB on the wire) and
 * the DeviceId given by the engine (OUI-ProductClass-Serial from the loadgen options).
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
    uint32_t ipsec_gen; /* IPsec inner address generation: each one a different address */
    bool ipsec_changed; /* the address changed since the last Inform: "4 VALUE CHANGE" */
    uint16_t cr_port; /* ConnectionRequestURL http://127.0.0.1:<cr_port>/crq/<index>;
                         0: a synthetic http://10.x.y.z:7547/crq */
};

#define HM_LG_MAX_ALARMS 8 /* alarm entries per Inform */

/* FaultMgmt alarm entries an Inform carries (the alarms scenario), parameters
 * <root>FaultMgmt.{Expedited,Queued}Event.<k>.{EventTime, AlarmIdentifier, NotificationType,
 * ManagedObjectInstance, EventType, ProbableCause, SpecificProblem, PerceivedSeverity,
 * AdditionalText, AdditionalInformation} for k = 1..n, alarm ids "LG-<k>". */
struct hm_lg_alarm_spec {
    uint32_t n;    /* entries, 0..HM_LG_MAX_ALARMS */
    bool queued;   /* QueuedEvent ring with "2 PERIODIC", else ExpeditedEvent with
                      "4 VALUE CHANGE" added to the events */
    bool clear;    /* ClearedAlarm entries, else NewAlarm */
    uint64_t seq;  /* unique per device and Inform: EventTime is 2026-01-01 + <seq> s, so
                      that the ACS's deduplication sees a new event */
};

/* Which events the next Inform carries when the device has none of its own pending. */
enum hm_lg_inform_kind { HM_LG_INFORM_PERIODIC = 0, HM_LG_INFORM_BOOT, HM_LG_INFORM_CR };

struct hm_lg_cpe; /* one per worker: opaque */

/* Creates the behaviour of <ndev> devices speaking <ver>. <model_csv> NULL selects the
 * built-in behaviour; otherwise the CSV is loaded (see bench/henb_agent.h) and each device
 * gets an agent whose pending events are BOOTSTRAP+BOOT when <fresh>, none otherwise.
 * Returns 0 or -errno / HM_EBADCONF; <*out> is owned by the caller (hm_lg_cpe_destroy). */
int hm_lg_cpe_create(struct hm_lg_cpe **out, const char *model_csv, uint32_t ndev,
                     uint8_t ver, bool fresh) HM_MUST_CHECK;
void hm_lg_cpe_destroy(struct hm_lg_cpe *c);

/* Downloads (bench/loadgen_dl.h; not owned, may be NULL): with it, a built-in device fetches
 * the file of a Download, reports TransferComplete in a later session, and after a firmware
 * image reports the new SoftwareVersion. Without it (or with a model CSV) a Download is
 * answered Status 1 and, built-in, never completed. */
struct hm_lg_dl;
void hm_lg_cpe_set_dl(struct hm_lg_cpe *c, struct hm_lg_dl *dl);

/* Appends to <out> the Inform of device <d> (identity <id>) with RetryCount <retry>.
 * Events: the agent's pending ones if any, else "0 BOOTSTRAP"+"1 BOOT" for
 * HM_LG_INFORM_BOOT and "2 PERIODIC" otherwise. <alarms> (NULL: none) adds alarm entries. */
void hm_lg_cpe_inform(struct hm_lg_cpe *c, uint32_t d, const struct hm_lg_cpe_id *id,
                      enum hm_lg_inform_kind kind, uint32_t retry,
                      const struct hm_lg_alarm_spec *alarms, struct hm_buf *out);

/* Device <d> received ACS message <msg>, parsed from <body>[<len>] (a 200 response).
 * Returns 1 when <out> holds the next message to POST (a response to an ACS request, or a
 * CPE request such as TransferComplete), 0 when the device has nothing to send. <scratch>
 * is a parse arena distinct from the one <msg> lives in (the agent re-parses <body>). */
/* The PM upload device <d> was configured with by the ACS (agent behaviour only; see
 * hm_henb_agent_pm): true with its URL, Username and Password while enabled. */
bool hm_lg_cpe_pm(const struct hm_lg_cpe *c, uint32_t d, const char **url, const char **user,
                  const char **password);

int hm_lg_cpe_handle(struct hm_lg_cpe *c, uint32_t d, const struct hm_lg_cpe_id *id,
                     const struct hm_cwmp_msg *msg, const char *body, size_t len,
                     struct hm_soap_arena *scratch, struct hm_buf *out);

/* Built-in behaviour, exposed for tests: the Inform parameters of device <id> (values that
 * vary per device are written into <scratch>[HM_LG_CPE_SCRATCH]; the rest are static).
 * Returns the number of parameters. */
size_t hm_lg_cpe_params(const struct hm_lg_cpe_id *id, struct hm_cwmp_param *out, char *scratch);

/* Built-in answer to ACS request <req> (one envelope appended to <out>, cwmp:ID and
 * namespace echoed). Uses about 8 KB of stack. Never fails. */
void hm_lg_cpe_answer(const struct hm_lg_cpe_id *id, const struct hm_cwmp_msg *req,
                      struct hm_buf *out);

#endif
