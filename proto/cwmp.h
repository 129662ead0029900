#ifndef HM_CWMP_H
#define HM_CWMP_H
/*
 * CWMP (TR-069) messages: parse every CPE-to-ACS message (and, for simulators and tests,
 * every ACS-to-CPE message) into structs of slices, and write every message into a
 * struct hm_buf.
 *
 * Parsing: hm_cwmp_parse() runs the proto/soap.h tokenizer over one HTTP body. Every slice
 * in the resulting struct hm_cwmp_msg points into the input buffer, or into the caller's
 * arena where an entity had to be decoded; lists (parameters, events, ...) are arrays
 * carved from the top of the same arena. Everything is valid while the input buffer and
 * the arena live (until hm_soap_arena_reset()). Nothing is malloc'ed.
 *
 * Leniency (what real CPEs do): prefixes are free, arrayType is ignored (counts are taken
 * from the elements), xsi:type may be missing (then the value is a string), booleans are
 * 0/1/true/false in any case, children may come in any order, unknown children are
 * skipped, numbers may carry surrounding white space. Strictness: string sizes from the
 * XSD (parameter Name <= 256, CommandKey <= 32, ...) and list lengths (opts) are enforced,
 * numbers must fit their type, required elements must be present.
 *
 * Errors: HM_EBADXML / HM_EXMLDTD / HM_EXMLLIMIT from the tokenizer (answer HTTP 400),
 * HM_EBADSOAP (not a SOAP 1.1 envelope), HM_EBADCWMP (a known method with invalid
 * content: answer Fault 8003), HM_ENOTCWMP (an unknown method: answer Fault 8000; msg->id
 * and msg->ver are set so the fault can echo them). HM_EXMLLIMIT also when the arena or a
 * list limit is exhausted.
 *
 * Writing: every writer appends one complete envelope (XML declaration included) to <b>,
 * in the namespace of <h->ver>, echoing <h->id>. All text is XML-escaped. Writers cannot
 * fail (hm_buf aborts on OOM, see core/err.h).
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"
#include "proto/soap.h"

/* The cwmp namespace a message used; replies use the same one. 1-3/1-4 URNs (defined by
 * no schema, but sent by some CPEs) parse as HM_CWMP_V1_2 with msg->ns keeping the truth. */
enum hm_cwmp_ver { HM_CWMP_V1_0 = 0, HM_CWMP_V1_1, HM_CWMP_V1_2 };

#define HM_CWMP_METHOD_LIST(X)                                                               \
    /* CPE requests */                                                                       \
    X(INFORM, Inform)                                                                        \
    X(TRANSFER_COMPLETE, TransferComplete)                                                   \
    X(AUTONOMOUS_TRANSFER_COMPLETE, AutonomousTransferComplete)                              \
    X(GET_RPC_METHODS, GetRPCMethods)                                                        \
    X(REQUEST_DOWNLOAD, RequestDownload)                                                     \
    X(KICKED, Kicked)                                                                        \
    X(DU_STATE_CHANGE_COMPLETE, DUStateChangeComplete)                                       \
    X(AUTONOMOUS_DU_STATE_CHANGE_COMPLETE, AutonomousDUStateChangeComplete)                  \
    /* CPE responses */                                                                      \
    X(GET_RPC_METHODS_RESPONSE, GetRPCMethodsResponse)                                       \
    X(SET_PARAMETER_VALUES_RESPONSE, SetParameterValuesResponse)                             \
    X(GET_PARAMETER_VALUES_RESPONSE, GetParameterValuesResponse)                             \
    X(GET_PARAMETER_NAMES_RESPONSE, GetParameterNamesResponse)                               \
    X(SET_PARAMETER_ATTRIBUTES_RESPONSE, SetParameterAttributesResponse)                     \
    X(GET_PARAMETER_ATTRIBUTES_RESPONSE, GetParameterAttributesResponse)                     \
    X(ADD_OBJECT_RESPONSE, AddObjectResponse)                                                \
    X(DELETE_OBJECT_RESPONSE, DeleteObjectResponse)                                          \
    X(REBOOT_RESPONSE, RebootResponse)                                                       \
    X(DOWNLOAD_RESPONSE, DownloadResponse)                                                   \
    X(UPLOAD_RESPONSE, UploadResponse)                                                       \
    X(FACTORY_RESET_RESPONSE, FactoryResetResponse)                                          \
    X(SCHEDULE_INFORM_RESPONSE, ScheduleInformResponse)                                      \
    X(SCHEDULE_DOWNLOAD_RESPONSE, ScheduleDownloadResponse)                                  \
    X(CANCEL_TRANSFER_RESPONSE, CancelTransferResponse)                                      \
    X(CHANGE_DU_STATE_RESPONSE, ChangeDUStateResponse)                                       \
    /* ACS responses */                                                                      \
    X(INFORM_RESPONSE, InformResponse)                                                       \
    X(TRANSFER_COMPLETE_RESPONSE, TransferCompleteResponse)                                  \
    X(AUTONOMOUS_TRANSFER_COMPLETE_RESPONSE, AutonomousTransferCompleteResponse)             \
    X(REQUEST_DOWNLOAD_RESPONSE, RequestDownloadResponse)                                    \
    X(KICKED_RESPONSE, KickedResponse)                                                       \
    X(DU_STATE_CHANGE_COMPLETE_RESPONSE, DUStateChangeCompleteResponse)                      \
    X(AUTONOMOUS_DU_STATE_CHANGE_COMPLETE_RESPONSE, AutonomousDUStateChangeCompleteResponse) \
    /* ACS requests */                                                                       \
    X(SET_PARAMETER_VALUES, SetParameterValues)                                              \
    X(GET_PARAMETER_VALUES, GetParameterValues)                                              \
    X(GET_PARAMETER_NAMES, GetParameterNames)                                                \
    X(SET_PARAMETER_ATTRIBUTES, SetParameterAttributes)                                      \
    X(GET_PARAMETER_ATTRIBUTES, GetParameterAttributes)                                      \
    X(ADD_OBJECT, AddObject)                                                                 \
    X(DELETE_OBJECT, DeleteObject)                                                           \
    X(REBOOT, Reboot)                                                                        \
    X(DOWNLOAD, Download)                                                                    \
    X(UPLOAD, Upload)                                                                        \
    X(FACTORY_RESET, FactoryReset)                                                           \
    X(SCHEDULE_INFORM, ScheduleInform)

enum hm_cwmp_method {
    HM_CWMP_NONE = 0,
    HM_CWMP_EMPTY,  /* empty HTTP body: the CPE has no more requests */
    HM_CWMP_FAULT,  /* a SOAP Fault (body in msg->u.fault) */
#define HM_CWMP_M_ENUM(e, n) HM_CWMP_##e,
    HM_CWMP_METHOD_LIST(HM_CWMP_M_ENUM)
#undef HM_CWMP_M_ENUM
    HM_CWMP__COUNT
};

/* The element name of <m> ("Inform", ...); "" for NONE/EMPTY, "Fault" for FAULT. */
const char *hm_cwmp_method_name(enum hm_cwmp_method m);

/* xsi:type of a ParameterValueStruct Value. */
enum hm_cwmp_type {
    HM_CWMP_T_NONE = 0, /* no xsi:type given: treat as string */
    HM_CWMP_T_STRING,
    HM_CWMP_T_INT,
    HM_CWMP_T_UINT,
    HM_CWMP_T_BOOL,
    HM_CWMP_T_DATETIME,
    HM_CWMP_T_BASE64,
    HM_CWMP_T_LONG,
    HM_CWMP_T_ULONG,
    HM_CWMP_T_HEXBINARY,
    HM_CWMP_T_OTHER,    /* an xsi:type we do not know */
};

/* "xsd:unsignedInt" etc. for writing; NONE and OTHER write xsd:string. */
const char *hm_cwmp_type_xsi(enum hm_cwmp_type t);

#define HM_CWMP_MAX_ACCESS 4 /* AccessList entries kept per parameter (TR-069 knows one) */

struct hm_cwmp_param {
    struct hm_slice name;
    struct hm_slice value;
    uint8_t type; /* enum hm_cwmp_type */
};

struct hm_cwmp_event {
    struct hm_slice code;
    struct hm_slice command_key;
};

struct hm_cwmp_param_info {
    struct hm_slice name;
    bool writable;
};

/* SetParameterAttributesStruct (SPA) and ParameterAttributeStruct (GPA response). */
struct hm_cwmp_attr {
    struct hm_slice name;
    bool notification_change; /* SPA only */
    bool access_list_change;  /* SPA only */
    uint8_t notification;
    uint8_t n_access;
    struct hm_slice access[HM_CWMP_MAX_ACCESS];
};

struct hm_cwmp_arg {
    struct hm_slice name;
    struct hm_slice value;
};

struct hm_cwmp_fault_struct {
    uint32_t code;
    struct hm_slice string;
};

struct hm_cwmp_spv_fault {
    struct hm_slice name;
    uint32_t code;
    struct hm_slice string;
};

struct hm_cwmp_du_result {
    struct hm_slice uuid, du_ref, version, current_state, eu_ref_list;
    struct hm_slice start_time, complete_time;
    bool resolved;
    struct hm_cwmp_fault_struct fault;
};

#define HM_CWMP_LIST(T)                                                                      \
    struct {                                                                                 \
        const T *v;                                                                          \
        uint32_t n;                                                                          \
    }

struct hm_cwmp_device_id {
    struct hm_slice manufacturer, oui, product_class, serial;
};

struct hm_cwmp_inform {
    struct hm_cwmp_device_id dev;
    HM_CWMP_LIST(struct hm_cwmp_event) events;
    uint32_t max_envelopes;
    uint32_t retry_count;
    struct hm_slice current_time;
    HM_CWMP_LIST(struct hm_cwmp_param) params;
};

struct hm_cwmp_transfer_complete {
    struct hm_slice command_key;
    struct hm_cwmp_fault_struct fault;
    struct hm_slice start_time, complete_time;
};

struct hm_cwmp_autonomous_transfer_complete {
    struct hm_slice announce_url, transfer_url, file_type, target_file_name;
    bool is_download;
    uint32_t file_size;
    struct hm_cwmp_fault_struct fault;
    struct hm_slice start_time, complete_time;
};

struct hm_cwmp_request_download {
    struct hm_slice file_type;
    HM_CWMP_LIST(struct hm_cwmp_arg) args;
};

struct hm_cwmp_kicked {
    struct hm_slice command, referer, arg, next;
};

struct hm_cwmp_du_state_change_complete {
    HM_CWMP_LIST(struct hm_cwmp_du_result) results;
    struct hm_slice command_key;
};

struct hm_cwmp_fault {
    struct hm_slice faultcode, faultstring; /* SOAP level: "Client"/"Server", text */
    uint32_t code;                          /* cwmp:Fault/FaultCode; 0 if no detail */
    struct hm_slice string;
    HM_CWMP_LIST(struct hm_cwmp_spv_fault) spv_faults;
};

/* SetParameterValuesResponse, AddObjectResponse, DeleteObjectResponse, DownloadResponse,
 * UploadResponse: the fields each one has. */
struct hm_cwmp_status {
    uint32_t status;
    uint32_t instance_number;
    struct hm_slice start_time, complete_time;
};

/* ACS requests (parsed for CPE simulators) and their writer arguments. */
struct hm_cwmp_spv {
    HM_CWMP_LIST(struct hm_cwmp_param) params;
    struct hm_slice parameter_key;
};

struct hm_cwmp_gpn {
    struct hm_slice path;
    bool next_level;
};

struct hm_cwmp_object {
    struct hm_slice object_name;
    struct hm_slice parameter_key;
};

struct hm_cwmp_download {
    struct hm_slice command_key, file_type, url, username, password, target_file_name;
    struct hm_slice success_url, failure_url;
    uint32_t file_size, delay_seconds;
};

struct hm_cwmp_upload {
    struct hm_slice command_key, file_type, url, username, password;
    uint32_t delay_seconds;
};

struct hm_cwmp_schedule_inform {
    uint32_t delay_seconds;
    struct hm_slice command_key;
};

struct hm_cwmp_msg {
    uint8_t method;         /* enum hm_cwmp_method */
    uint8_t ver;            /* enum hm_cwmp_ver: answer in this one */
    uint8_t ns;             /* enum hm_soap_ns of the RPC element (or of cwmp:ID) */
    bool has_id;
    bool hold_requests;
    bool no_more_requests;  /* legacy header: recorded, to be ignored */
    bool must_understand;   /* an unknown header entry had mustUnderstand="1" */
    bool has_session_timeout;
    uint32_t session_timeout;
    struct hm_slice id;
    struct hm_slice supported_versions; /* SupportedCWMPVersions header, CWMP 1.4 */
    struct hm_slice use_version;        /* UseCWMPVersion header */
    union {
        struct hm_cwmp_inform inform;
        struct hm_cwmp_transfer_complete transfer_complete;
        struct hm_cwmp_autonomous_transfer_complete atc;
        struct hm_cwmp_request_download request_download;
        struct hm_cwmp_kicked kicked;
        struct hm_cwmp_du_state_change_complete du;
        struct hm_cwmp_fault fault;
        HM_CWMP_LIST(struct hm_slice) methods;          /* GetRPCMethodsResponse */
        struct hm_cwmp_status status;
        HM_CWMP_LIST(struct hm_cwmp_param) params;      /* GetParameterValuesResponse */
        HM_CWMP_LIST(struct hm_cwmp_param_info) infos;  /* GetParameterNamesResponse */
        HM_CWMP_LIST(struct hm_cwmp_attr) attrs;        /* GPA response, SPA */
        HM_CWMP_LIST(struct hm_slice) names;            /* GPV, GPA */
        uint32_t max_envelopes;                         /* InformResponse */
        struct hm_slice next_url;                       /* KickedResponse */
        struct hm_cwmp_spv spv;
        struct hm_cwmp_gpn gpn;
        struct hm_cwmp_object object;                   /* AddObject, DeleteObject */
        struct hm_slice command_key;                    /* Reboot */
        struct hm_cwmp_download download;
        struct hm_cwmp_upload upload;
        struct hm_cwmp_schedule_inform schedule_inform;
    } u;
};

struct hm_cwmp_opts {
    uint32_t max_list;            /* entries in one list; 0 = 4096 */
    struct hm_soap_limits limits; /* zero fields = tokenizer defaults */
};

/* Parses the HTTP body <buf>[<len>] into <msg>. <arena> holds decoded text and lists
 * (about 48 bytes per parameter; 256 KiB covers 4096 parameters); <opts> may be NULL.
 * An empty or all-white-space body yields method HM_CWMP_EMPTY. Returns 0 or an error
 * listed at the top of this file; <msg> is partially filled on error. */
int hm_cwmp_parse(const char *buf, size_t len, struct hm_soap_arena *arena,
                  const struct hm_cwmp_opts *opts, struct hm_cwmp_msg *msg) HM_MUST_CHECK;

/* Parses a boolean as CPEs write it: 0/1/true/false, any case, surrounding white space.
 * Returns 0 or HM_EBADCWMP. */
int hm_cwmp_parse_bool(struct hm_slice s, bool *out) HM_MUST_CHECK;

/* ---- writers ---------------------------------------------------------------------- */

struct hm_cwmp_hdr {
    uint8_t ver;               /* enum hm_cwmp_ver */
    bool hold_requests;        /* adds cwmp:HoldRequests=1 (ACS to CPE only) */
    struct hm_slice id;        /* cwmp:ID; empty = no ID header */
    struct hm_slice use_version; /* UseCWMPVersion (CWMP 1.4 InformResponse); empty = none */
};

/* Appends <s> with &, <, >, " and ' escaped. */
void hm_cwmp_escape(struct hm_buf *b, struct hm_slice s);

/* ACS to CPE requests. */
void hm_cwmp_write_get_rpc_methods(struct hm_buf *b, const struct hm_cwmp_hdr *h);
void hm_cwmp_write_spv(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_cwmp_param *params, size_t n, struct hm_slice key);
void hm_cwmp_write_gpv(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_slice *names, size_t n);
void hm_cwmp_write_gpn(struct hm_buf *b, const struct hm_cwmp_hdr *h, struct hm_slice path,
                       bool next_level);
void hm_cwmp_write_spa(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_cwmp_attr *attrs, size_t n);
void hm_cwmp_write_gpa(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_slice *names, size_t n);
void hm_cwmp_write_add_object(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                              struct hm_slice object_name, struct hm_slice key);
void hm_cwmp_write_delete_object(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                 struct hm_slice object_name, struct hm_slice key);
void hm_cwmp_write_reboot(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                          struct hm_slice command_key);
void hm_cwmp_write_download(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                            const struct hm_cwmp_download *d);
void hm_cwmp_write_upload(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                          const struct hm_cwmp_upload *u);
void hm_cwmp_write_factory_reset(struct hm_buf *b, const struct hm_cwmp_hdr *h);
void hm_cwmp_write_schedule_inform(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                   uint32_t delay_seconds, struct hm_slice command_key);

/* ACS responses to CPE requests. InformResponse carries MaxEnvelopes 1. <m> for the empty
 * ones: TRANSFER_COMPLETE_RESPONSE, AUTONOMOUS_TRANSFER_COMPLETE_RESPONSE,
 * REQUEST_DOWNLOAD_RESPONSE, DU_STATE_CHANGE_COMPLETE_RESPONSE,
 * AUTONOMOUS_DU_STATE_CHANGE_COMPLETE_RESPONSE, and (CPE side) SET_PARAMETER_ATTRIBUTES_
 * RESPONSE, REBOOT_RESPONSE, FACTORY_RESET_RESPONSE, SCHEDULE_INFORM_RESPONSE. */
void hm_cwmp_write_inform_response(struct hm_buf *b, const struct hm_cwmp_hdr *h);
void hm_cwmp_write_empty(struct hm_buf *b, const struct hm_cwmp_hdr *h, enum hm_cwmp_method m);
void hm_cwmp_write_get_rpc_methods_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                            const struct hm_slice *methods, size_t n);
void hm_cwmp_write_kicked_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                   struct hm_slice next_url);

/* A SOAP Fault with cwmp:Fault detail. ACS faults are 8000-8006 (<code>'s standard text
 * is used when <string> is empty); CPE faults 9000-9xxx may carry SetParameterValuesFault
 * entries. faultcode is "Client" except for 8002/8004/8005/9002/9004 ("Server"). */
void hm_cwmp_write_fault(struct hm_buf *b, const struct hm_cwmp_hdr *h, uint32_t code,
                         struct hm_slice string, const struct hm_cwmp_spv_fault *spv, size_t n);

/* Standard text of a fault code (8000-8006, 9000-9019), or "Fault". */
const char *hm_cwmp_fault_text(uint32_t code);

/* CPE side (for simulators, benchmarks and tests). */
void hm_cwmp_write_inform(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                          const struct hm_cwmp_inform *in);
void hm_cwmp_write_gpv_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                const struct hm_cwmp_param *params, size_t n);
void hm_cwmp_write_gpn_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                const struct hm_cwmp_param_info *infos, size_t n);
void hm_cwmp_write_gpa_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                const struct hm_cwmp_attr *attrs, size_t n);
/* SET_PARAMETER_VALUES_RESPONSE, ADD_OBJECT_RESPONSE, DELETE_OBJECT_RESPONSE,
 * DOWNLOAD_RESPONSE, UPLOAD_RESPONSE: the fields of <st> that <m> has. */
void hm_cwmp_write_status(struct hm_buf *b, const struct hm_cwmp_hdr *h, enum hm_cwmp_method m,
                          const struct hm_cwmp_status *st);
void hm_cwmp_write_transfer_complete(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                     const struct hm_cwmp_transfer_complete *tc);

#endif
