#ifndef HM_ACS_TASK_H
#define HM_ACS_TASK_H
/*
 * Tasks: RPCs queued for a device, stored in HM_DB_TASKS and sent in its next session.
 *
 * A task's arguments are stored as compact JSON, exactly as validated here (the same form
 * the northbound API accepts and shows), e.g.
 *   {"rpc":"GetParameterValues","names":["Device.DeviceInfo."]}
 *   {"rpc":"SetParameterValues","params":[{"name":"...","value":"1","type":"xsd:unsignedInt"}],
 *    "parameter_key":"k1"}
 * and its result as compact JSON built from the CPE's response (hm_task_result_json). Tasks
 * are rare next to Informs, so parsing JSON when one is sent costs nothing that matters.
 */
#include <jansson.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/cwmp.h"
#include "storage/store-t.h"

struct hm_dm;

/* Makes hm_task_validate() check paths, writability, types and values against <dm> (NULL:
 * syntax only). Set once at start, before the shards run. */
void hm_task_set_datamodel(const struct hm_dm *dm);

/*
 * With a data model set: refuses (-EINVAL, <err> naming the path and both versions) a task
 * request <in> (as given to hm_task_validate) that names a parameter or object the device's
 * root data model version <dev_version> (hm_dm_version_parse() of its reported
 * Device.RootDataModelVersion; 0: unknown) does not have yet. 0 otherwise.
 */
int hm_task_check_version(json_t *in, uint16_t dev_version, char *err, size_t errlen);

/*
 * Hook for the password of a Download task whose args carry "cred_id" (an uploaded file with
 * credentials, core/files.h): writes it to <out> (<cap> bytes, NUL ended) and returns its
 * length, or < 0. Set once at start, before the shards run; NULL: none.
 */
typedef int (*hm_task_password_fn)(void *ctx, struct hm_slice cred_id, char *out, size_t cap);
void hm_task_set_password_fn(hm_task_password_fn fn, void *ctx);

/*
 * Validates a task request <in> (a JSON object with "rpc" and its arguments). On success
 * returns 0, sets *<kind>, and appends the normalised compact JSON to <args>. On failure
 * returns -EINVAL with a message naming the offending field in <err>.
 */
int hm_task_validate(json_t *in, enum hm_task_kind *kind, struct hm_buf *args, char *err,
                     size_t errlen);

/*
 * Puts task record <t> of device <dev> with sequence <seq> into batch <b> (a new task, or a
 * changed one under its existing key). 0, or -E2BIG when the key or the record does not fit
 * (the store's key/record limits, or the batch is full).
 */
struct hm_store_batch;
int hm_task_put(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                const struct hm_task_rec *t);

/* hm_task_put() of a new queued task <kind> with validated <args>, created now. */
int hm_task_put_new(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                    enum hm_task_kind kind, struct hm_slice args);

/* hm_task_validate() of request <req> (consumed), then hm_task_put_new(): 0, -EINVAL with
 * <err> when the request does not validate, or -E2BIG. */
int hm_task_put_request(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                        json_t *req, char *err, size_t errlen);

/* Appends {"name": <prefix><rel>, "value": <value> (consumed), "type": <type>} to the
 * SetParameterValues <params> array being built. */
void hm_task_param_add(json_t *params, const char *prefix, const char *rel, json_t *value,
                       const char *type);

/* The CWMP method name of <kind> ("GetParameterValues", ...), or "?". */
const char *hm_task_rpc_name(enum hm_task_kind kind);

/*
 * Appends the request envelope for task <kind> with JSON <args> to <out>; its CommandKey
 * (Reboot, Download, Upload, ScheduleInform) is "task-<seq>". Returns 0 or -EINVAL when the
 * stored arguments do not parse (a corrupt record: the caller fails the task).
 */
int hm_task_write_rpc(struct hm_buf *out, const struct hm_cwmp_hdr *h, enum hm_task_kind kind,
                      struct hm_slice args, uint64_t seq);

/* The response method that completes <kind> (e.g. GET_PARAMETER_VALUES_RESPONSE). */
enum hm_cwmp_method hm_task_response_method(enum hm_task_kind kind);

/*
 * Appends the compact JSON result of response <msg> (a response or a Fault) to <out>, e.g.
 * {"status":0} or {"params":[...]} or {"fault":{"code":9003,...,"params":[...]}}.
 */
void hm_task_result_json(struct hm_buf *out, const struct hm_cwmp_msg *msg);

/* A new JSON string holding the bytes of <s> (an empty string for an empty slice). */
json_t *hm_json_slice(struct hm_slice s);

/* Parses "task-<seq>" (the CommandKey of our Download/Upload/...); 0 or -EINVAL. */
int hm_task_parse_command_key(struct hm_slice key, uint64_t *seq);

#endif
