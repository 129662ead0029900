/*
 * CWMP message parsing and writing: see proto/cwmp.h for the contract.
 *
 * Parsing is table-driven: each message body (and each nested struct) is a schema, a short
 * array of {element name, kind, XSD size limit, offset}. One generic walker fills structs,
 * which keeps the ~40 message types in a few hundred lines and makes child order free.
 * Lists are carved from the top of the arena while text decodes into its bottom, so a
 * list stays contiguous whatever decoding happens while it is read.
 */
#include "proto/cwmp.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/bug.h"

/* ---- schemas ---------------------------------------------------------------------- */

enum { F_STR, F_U32, F_BOOL, F_VALUE, F_STRUCT, F_LIST, F_REPEAT, F_ACCESS };

struct schema;

struct field {
    uint16_t name;   /* enum hm_soap_name */
    uint8_t kind;
    uint8_t req;
    uint16_t max;    /* F_STR: maximum length in characters; 0 = tokenizer limit */
    uint16_t off;
    uint16_t off2;   /* F_VALUE: offset of the type byte; F_ACCESS: of the array */
    const struct schema *sub;
};

struct schema {
    const struct field *f;
    uint8_t nf;
    uint16_t item_size;  /* lists: bytes per item */
    uint16_t item_max;   /* string lists: characters per item */
    uint32_t max_items;  /* lists: 0 = opts->max_list */
};

struct rawlist {
    const void *v;
    uint32_t n;
};

#define FLD(n, k, r, mx, T, m) {HM_N_##n, k, r, mx, offsetof(T, m), 0, NULL}
#define STR(n, mx, T, m) FLD(n, F_STR, 0, mx, T, m)
#define U32(n, T, m) FLD(n, F_U32, 0, 0, T, m)
#define BOOL(n, T, m) FLD(n, F_BOOL, 0, 0, T, m)
#define SUB(n, k, r, T, m, s) {HM_N_##n, k, r, 0, offsetof(T, m), 0, s}
#define SCHEMA(name, ...)                                                                    \
    static const struct field name##_f[] = {__VA_ARGS__};                                    \
    static const struct schema name = {name##_f, HM_ARRAY_SIZE(name##_f), 0, 0, 0}
#define FIELDS(name, ...) static const struct field name##_f[] = {__VA_ARGS__}
#define LIST_OF(name, T, items, maxn)                                                        \
    static const struct schema name = {items##_f, HM_ARRAY_SIZE(items##_f), sizeof(T), 0, maxn}

SCHEMA(s_device, STR(Manufacturer, 64, struct hm_cwmp_device_id, manufacturer),
       STR(OUI, 6, struct hm_cwmp_device_id, oui),
       STR(ProductClass, 64, struct hm_cwmp_device_id, product_class),
       STR(SerialNumber, 64, struct hm_cwmp_device_id, serial));
FIELDS(s_event, STR(EventCode, 64, struct hm_cwmp_event, code),
       STR(CommandKey, 32, struct hm_cwmp_event, command_key));
LIST_OF(l_events, struct hm_cwmp_event, s_event, 64);

static const struct field s_param_f[] = {
    STR(Name, 256, struct hm_cwmp_param, name),
    {HM_N_Value, F_VALUE, 0, 0, offsetof(struct hm_cwmp_param, value),
     offsetof(struct hm_cwmp_param, type), NULL},
};
LIST_OF(l_params, struct hm_cwmp_param, s_param, 0);

SCHEMA(s_inform, SUB(DeviceId, F_STRUCT, 1, struct hm_cwmp_inform, dev, &s_device),
       SUB(Event, F_LIST, 0, struct hm_cwmp_inform, events, &l_events),
       U32(MaxEnvelopes, struct hm_cwmp_inform, max_envelopes),
       STR(CurrentTime, 64, struct hm_cwmp_inform, current_time),
       U32(RetryCount, struct hm_cwmp_inform, retry_count),
       SUB(ParameterList, F_LIST, 0, struct hm_cwmp_inform, params, &l_params));

SCHEMA(s_fault_struct, FLD(FaultCode, F_U32, 1, 0, struct hm_cwmp_fault_struct, code),
       STR(FaultString, 256, struct hm_cwmp_fault_struct, string));

SCHEMA(s_tc, STR(CommandKey, 32, struct hm_cwmp_transfer_complete, command_key),
       SUB(FaultStruct, F_STRUCT, 0, struct hm_cwmp_transfer_complete, fault, &s_fault_struct),
       STR(StartTime, 64, struct hm_cwmp_transfer_complete, start_time),
       STR(CompleteTime, 64, struct hm_cwmp_transfer_complete, complete_time));

#define ATC struct hm_cwmp_autonomous_transfer_complete
SCHEMA(s_atc, STR(AnnounceURL, 1024, ATC, announce_url), STR(TransferURL, 1024, ATC, transfer_url),
       BOOL(IsDownload, ATC, is_download), STR(FileType, 64, ATC, file_type),
       U32(FileSize, ATC, file_size), STR(TargetFileName, 256, ATC, target_file_name),
       SUB(FaultStruct, F_STRUCT, 0, ATC, fault, &s_fault_struct),
       STR(StartTime, 64, ATC, start_time), STR(CompleteTime, 64, ATC, complete_time));
#undef ATC

FIELDS(s_arg, STR(Name, 64, struct hm_cwmp_arg, name), STR(Value, 256, struct hm_cwmp_arg, value));
LIST_OF(l_args, struct hm_cwmp_arg, s_arg, 16);
SCHEMA(s_rd, STR(FileType, 64, struct hm_cwmp_request_download, file_type),
       SUB(FileTypeArg, F_LIST, 0, struct hm_cwmp_request_download, args, &l_args));

SCHEMA(s_kicked, STR(Command, 32, struct hm_cwmp_kicked, command),
       STR(Referer, 64, struct hm_cwmp_kicked, referer), STR(Arg, 256, struct hm_cwmp_kicked, arg),
       STR(Next, 1024, struct hm_cwmp_kicked, next));

#define DUR struct hm_cwmp_du_result
FIELDS(s_du_result, STR(UUID, 36, DUR, uuid), STR(DeploymentUnitRef, 0, DUR, du_ref),
       STR(Version, 32, DUR, version), STR(CurrentState, 0, DUR, current_state),
       BOOL(Resolved, DUR, resolved), STR(ExecutionUnitRefList, 0, DUR, eu_ref_list),
       STR(StartTime, 64, DUR, start_time), STR(CompleteTime, 64, DUR, complete_time),
       SUB(Fault, F_STRUCT, 0, DUR, fault, &s_fault_struct));
#undef DUR
LIST_OF(l_du_results, struct hm_cwmp_du_result, s_du_result, 0);
SCHEMA(s_du, SUB(Results, F_REPEAT, 0, struct hm_cwmp_du_state_change_complete, results,
                 &l_du_results),
       STR(CommandKey, 32, struct hm_cwmp_du_state_change_complete, command_key));

FIELDS(s_spv_fault, STR(ParameterName, 256, struct hm_cwmp_spv_fault, name),
       U32(FaultCode, struct hm_cwmp_spv_fault, code),
       STR(FaultString, 256, struct hm_cwmp_spv_fault, string));
LIST_OF(l_spv_faults, struct hm_cwmp_spv_fault, s_spv_fault, 0);
SCHEMA(s_cwmp_fault, FLD(FaultCode, F_U32, 1, 0, struct hm_cwmp_fault, code),
       STR(FaultString, 1024, struct hm_cwmp_fault, string),
       SUB(SetParameterValuesFault, F_REPEAT, 0, struct hm_cwmp_fault, spv_faults, &l_spv_faults));
/* detail/cwmp:Fault fills the same struct hm_cwmp_fault: offset 0. */
SCHEMA(s_detail, {HM_N_Fault, F_STRUCT, 0, 0, 0, 0, &s_cwmp_fault});
SCHEMA(s_soap_fault, STR(faultcode, 1024, struct hm_cwmp_fault, faultcode),
       STR(faultstring, 0, struct hm_cwmp_fault, faultstring),
       SUB(detail, F_STRUCT, 0, struct hm_cwmp_fault, faultcode, &s_detail));

/* String lists: items are struct hm_slice of at most item_max characters. */
static const struct schema l_methods = {NULL, 0, sizeof(struct hm_slice), 64, 0};
static const struct schema l_names = {NULL, 0, sizeof(struct hm_slice), 256, 0};

FIELDS(s_info, STR(Name, 256, struct hm_cwmp_param_info, name),
       BOOL(Writable, struct hm_cwmp_param_info, writable));
LIST_OF(l_infos, struct hm_cwmp_param_info, s_info, 0);

#define ATTR struct hm_cwmp_attr
FIELDS(s_attr, STR(Name, 256, ATTR, name), BOOL(NotificationChange, ATTR, notification_change),
       FLD(Notification, F_U32, 0, 0, ATTR, notification),
       BOOL(AccessListChange, ATTR, access_list_change),
       {HM_N_AccessList, F_ACCESS, 0, 64, offsetof(ATTR, n_access), offsetof(ATTR, access), NULL});
#undef ATTR
LIST_OF(l_attrs, struct hm_cwmp_attr, s_attr, 0);

#define U(m) offsetof(struct hm_cwmp_msg, u.m) - offsetof(struct hm_cwmp_msg, u)

SCHEMA(s_methods, {HM_N_MethodList, F_LIST, 0, 0, U(methods), 0, &l_methods});
SCHEMA(s_status, U32(Status, struct hm_cwmp_status, status),
       U32(InstanceNumber, struct hm_cwmp_status, instance_number),
       STR(StartTime, 64, struct hm_cwmp_status, start_time),
       STR(CompleteTime, 64, struct hm_cwmp_status, complete_time));
SCHEMA(s_gpv_resp, {HM_N_ParameterList, F_LIST, 0, 0, U(params), 0, &l_params});
SCHEMA(s_gpn_resp, {HM_N_ParameterList, F_LIST, 0, 0, U(infos), 0, &l_infos});
SCHEMA(s_attrs, {HM_N_ParameterList, F_LIST, 0, 0, U(attrs), 0, &l_attrs});
SCHEMA(s_names, {HM_N_ParameterNames, F_LIST, 0, 0, U(names), 0, &l_names});
SCHEMA(s_inform_resp, {HM_N_MaxEnvelopes, F_U32, 0, 0, U(max_envelopes), 0, NULL});
SCHEMA(s_kicked_resp, {HM_N_NextURL, F_STR, 0, 1024, U(next_url), 0, NULL});
SCHEMA(s_spv, SUB(ParameterList, F_LIST, 1, struct hm_cwmp_spv, params, &l_params),
       STR(ParameterKey, 32, struct hm_cwmp_spv, parameter_key));
SCHEMA(s_gpn, STR(ParameterPath, 256, struct hm_cwmp_gpn, path),
       BOOL(NextLevel, struct hm_cwmp_gpn, next_level));
SCHEMA(s_object, FLD(ObjectName, F_STR, 1, 256, struct hm_cwmp_object, object_name),
       STR(ParameterKey, 32, struct hm_cwmp_object, parameter_key));
SCHEMA(s_reboot, {HM_N_CommandKey, F_STR, 0, 32, U(command_key), 0, NULL});
#define DL struct hm_cwmp_download
SCHEMA(s_download, STR(CommandKey, 32, DL, command_key), STR(FileType, 64, DL, file_type),
       FLD(URL, F_STR, 1, 256, DL, url), STR(Username, 256, DL, username),
       STR(Password, 256, DL, password), U32(FileSize, DL, file_size),
       STR(TargetFileName, 256, DL, target_file_name), U32(DelaySeconds, DL, delay_seconds),
       STR(SuccessURL, 256, DL, success_url), STR(FailureURL, 256, DL, failure_url));
#undef DL
#define UL struct hm_cwmp_upload
SCHEMA(s_upload, STR(CommandKey, 32, UL, command_key), STR(FileType, 64, UL, file_type),
       FLD(URL, F_STR, 1, 256, UL, url), STR(Username, 256, UL, username),
       STR(Password, 256, UL, password), U32(DelaySeconds, UL, delay_seconds));
#undef UL
SCHEMA(s_sched, U32(DelaySeconds, struct hm_cwmp_schedule_inform, delay_seconds),
       STR(CommandKey, 32, struct hm_cwmp_schedule_inform, command_key));
static const struct schema s_empty = {NULL, 0, 0, 0, 0};

static const struct {
    uint8_t method;
    const struct schema *s;
} rpc_by_name[HM_N__COUNT] = {
#define R(n, m, s) [HM_N_##n] = {HM_CWMP_##m, s}
    R(Inform, INFORM, &s_inform),
    R(TransferComplete, TRANSFER_COMPLETE, &s_tc),
    R(AutonomousTransferComplete, AUTONOMOUS_TRANSFER_COMPLETE, &s_atc),
    R(GetRPCMethods, GET_RPC_METHODS, &s_empty),
    R(RequestDownload, REQUEST_DOWNLOAD, &s_rd),
    R(Kicked, KICKED, &s_kicked),
    R(DUStateChangeComplete, DU_STATE_CHANGE_COMPLETE, &s_du),
    R(AutonomousDUStateChangeComplete, AUTONOMOUS_DU_STATE_CHANGE_COMPLETE, &s_du),
    R(GetRPCMethodsResponse, GET_RPC_METHODS_RESPONSE, &s_methods),
    R(SetParameterValuesResponse, SET_PARAMETER_VALUES_RESPONSE, &s_status),
    R(GetParameterValuesResponse, GET_PARAMETER_VALUES_RESPONSE, &s_gpv_resp),
    R(GetParameterNamesResponse, GET_PARAMETER_NAMES_RESPONSE, &s_gpn_resp),
    R(SetParameterAttributesResponse, SET_PARAMETER_ATTRIBUTES_RESPONSE, &s_empty),
    R(GetParameterAttributesResponse, GET_PARAMETER_ATTRIBUTES_RESPONSE, &s_attrs),
    R(AddObjectResponse, ADD_OBJECT_RESPONSE, &s_status),
    R(DeleteObjectResponse, DELETE_OBJECT_RESPONSE, &s_status),
    R(RebootResponse, REBOOT_RESPONSE, &s_empty),
    R(DownloadResponse, DOWNLOAD_RESPONSE, &s_status),
    R(UploadResponse, UPLOAD_RESPONSE, &s_status),
    R(FactoryResetResponse, FACTORY_RESET_RESPONSE, &s_empty),
    R(ScheduleInformResponse, SCHEDULE_INFORM_RESPONSE, &s_empty),
    R(ScheduleDownloadResponse, SCHEDULE_DOWNLOAD_RESPONSE, &s_empty),
    R(CancelTransferResponse, CANCEL_TRANSFER_RESPONSE, &s_empty),
    R(ChangeDUStateResponse, CHANGE_DU_STATE_RESPONSE, &s_empty),
    R(InformResponse, INFORM_RESPONSE, &s_inform_resp),
    R(TransferCompleteResponse, TRANSFER_COMPLETE_RESPONSE, &s_empty),
    R(AutonomousTransferCompleteResponse, AUTONOMOUS_TRANSFER_COMPLETE_RESPONSE, &s_empty),
    R(RequestDownloadResponse, REQUEST_DOWNLOAD_RESPONSE, &s_empty),
    R(KickedResponse, KICKED_RESPONSE, &s_kicked_resp),
    R(DUStateChangeCompleteResponse, DU_STATE_CHANGE_COMPLETE_RESPONSE, &s_empty),
    R(AutonomousDUStateChangeCompleteResponse, AUTONOMOUS_DU_STATE_CHANGE_COMPLETE_RESPONSE,
      &s_empty),
    R(SetParameterValues, SET_PARAMETER_VALUES, &s_spv),
    R(GetParameterValues, GET_PARAMETER_VALUES, &s_names),
    R(GetParameterNames, GET_PARAMETER_NAMES, &s_gpn),
    R(SetParameterAttributes, SET_PARAMETER_ATTRIBUTES, &s_attrs),
    R(GetParameterAttributes, GET_PARAMETER_ATTRIBUTES, &s_names),
    R(AddObject, ADD_OBJECT, &s_object),
    R(DeleteObject, DELETE_OBJECT, &s_object),
    R(Reboot, REBOOT, &s_reboot),
    R(Download, DOWNLOAD, &s_download),
    R(Upload, UPLOAD, &s_upload),
    R(FactoryReset, FACTORY_RESET, &s_empty),
    R(ScheduleInform, SCHEDULE_INFORM, &s_sched),
#undef R
};

static const char *const method_names[HM_CWMP__COUNT] = {
    [HM_CWMP_NONE] = "",
    [HM_CWMP_EMPTY] = "",
    [HM_CWMP_FAULT] = "Fault",
#define HM_CWMP_M_NAME(e, n) [HM_CWMP_##e] = #n,
    HM_CWMP_METHOD_LIST(HM_CWMP_M_NAME)
#undef HM_CWMP_M_NAME
};

const char *hm_cwmp_method_name(enum hm_cwmp_method m)
{
    return (unsigned)m < HM_CWMP__COUNT ? method_names[m] : "";
}

/* ---- parsing ---------------------------------------------------------------------- */

struct ctx {
    struct hm_soap p;
    struct hm_soap_arena *a;
    uint32_t max_list;
    bool in_list; /* lists never nest: the arena's top holds one open list at a time */
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct hm_slice trim(struct hm_slice s)
{
    while (s.len && is_ws(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && is_ws(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static int parse_u32(struct hm_slice s, uint32_t *out)
{
    s = trim(s);
    if (!s.len || s.len > 10)
        return HM_EBADCWMP;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return HM_EBADCWMP;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    if (v > UINT32_MAX)
        return HM_EBADCWMP;
    *out = (uint32_t)v;
    return 0;
}

int hm_cwmp_parse_bool(struct hm_slice s, bool *out)
{
    s = trim(s);
    if (hm_slice_eq_lit(s, "1") || hm_slice_ieq(s, "true"))
        *out = true;
    else if (hm_slice_eq_lit(s, "0") || hm_slice_ieq(s, "false"))
        *out = false;
    else
        return HM_EBADCWMP;
    return 0;
}

/* XSD maxLength counts characters: count UTF-8 lead bytes, only when bytes exceed it. */
static bool too_long(struct hm_slice s, size_t max)
{
    if (!max || s.len <= max)
        return false;
    size_t chars = 0;
    for (size_t i = 0; i < s.len; i++)
        chars += ((unsigned char)s.ptr[i] & 0xC0) != 0x80;
    return chars > max;
}

#define IS_LIT(v, lit) ((v).len == sizeof(lit) - 1 && memcmp((v).ptr, lit, sizeof(lit) - 1) == 0)

/* Local part of an xsi:type QName (xsd: and soap-enc: prefixes both occur). */
static uint8_t type_of_local(struct hm_slice v)
{
    switch (v.len) {
    case 3:
        return IS_LIT(v, "int") ? HM_CWMP_T_INT : HM_CWMP_T_OTHER;
    case 4:
        return IS_LIT(v, "long") ? HM_CWMP_T_LONG : HM_CWMP_T_OTHER;
    case 6:
        return IS_LIT(v, "string") ? HM_CWMP_T_STRING
               : IS_LIT(v, "base64") ? HM_CWMP_T_BASE64
                                     : HM_CWMP_T_OTHER;
    case 7:
        return IS_LIT(v, "boolean") ? HM_CWMP_T_BOOL : HM_CWMP_T_OTHER;
    case 8:
        return IS_LIT(v, "dateTime") ? HM_CWMP_T_DATETIME : HM_CWMP_T_OTHER;
    case 9:
        return IS_LIT(v, "hexBinary") ? HM_CWMP_T_HEXBINARY : HM_CWMP_T_OTHER;
    case 11:
        return IS_LIT(v, "unsignedInt") ? HM_CWMP_T_UINT : HM_CWMP_T_OTHER;
    case 12:
        return IS_LIT(v, "unsignedLong") ? HM_CWMP_T_ULONG
               : IS_LIT(v, "base64Binary") ? HM_CWMP_T_BASE64
                                           : HM_CWMP_T_OTHER;
    }
    return HM_CWMP_T_OTHER;
}

static uint8_t value_type(const struct hm_soap_tok *t)
{
    for (unsigned i = 0; i < t->nattr; i++) {
        const struct hm_soap_attr *at = &t->attrs[i];
        if (at->name != HM_N_type || at->ns != HM_NS_XSI)
            continue;
        struct hm_slice v = trim(at->value);
        const char *c = v.len ? memchr(v.ptr, ':', v.len) : NULL;
        if (c)
            v = hm_slice(c + 1, v.len - (size_t)(c + 1 - v.ptr));
        return type_of_local(v);
    }
    return HM_CWMP_T_NONE;
}

static int parse_struct(struct ctx *c, const struct schema *s, char *base);

/* Opens a list on top of the arena. */
static int list_begin(struct ctx *c)
{
    struct hm_soap_arena *a = c->a;
    if (c->in_list)
        return HM_EBADCWMP;
    if (!a)
        return HM_EXMLLIMIT;
    uintptr_t top = (uintptr_t)(a->base + a->cap - a->hi);
    size_t pad = top & 7;
    if (a->cap - a->lo - a->hi < pad)
        return HM_EXMLLIMIT;
    a->hi += pad;
    c->in_list = true;
    return 0;
}

static char *list_push(struct ctx *c, const struct schema *ls, uint32_t n)
{
    struct hm_soap_arena *a = c->a;
    uint32_t max = ls->max_items ? ls->max_items : c->max_list;
    size_t sz = (ls->item_size + 7u) & ~(size_t)7;
    if (n >= max || a->cap - a->lo - a->hi < sz)
        return NULL;
    a->hi += sz;
    char *it = a->base + a->cap - a->hi;
    memset(it, 0, sz);
    return it;
}

/* Items were pushed downwards: reverse them into document order. */
static void list_end(struct ctx *c, const struct schema *ls, uint32_t n, struct rawlist *out)
{
    struct hm_soap_arena *a = c->a;
    size_t sz = (ls->item_size + 7u) & ~(size_t)7;
    char *first = a->base + a->cap - a->hi;
    char tmp[192];
    HM_BUILD_ASSERT(sizeof(struct hm_cwmp_du_result) <= sizeof(tmp));
    HM_BUILD_ASSERT(sizeof(struct hm_cwmp_attr) <= sizeof(tmp));
    for (uint32_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
        memcpy(tmp, first + i * sz, sz);
        memcpy(first + i * sz, first + j * sz, sz);
        memcpy(first + j * sz, tmp, sz);
    }
    out->v = n ? first : NULL;
    out->n = n;
    c->in_list = false;
}

static int parse_item(struct ctx *c, const struct schema *ls, char *it)
{
    if (ls->nf)
        return parse_struct(c, ls, it);
    struct hm_slice *sl = (struct hm_slice *)it;
    int err = hm_soap_leaf_text(&c->p, sl);
    if (!err && too_long(*sl, ls->item_max))
        err = HM_EBADCWMP;
    return err;
}

/* After the list element's START: reads every child element as one item. */
static int parse_list(struct ctx *c, const struct schema *ls, struct rawlist *out)
{
    struct hm_soap_tok t;
    uint16_t d = c->p.depth;
    uint32_t n = 0;
    int err = list_begin(c);
    if (err)
        return err;
    for (;;) {
        err = hm_soap_next(&c->p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END && t.depth == d)
            break;
        if (t.type != HM_SOAP_START)
            continue;
        char *it = list_push(c, ls, n);
        if (!it)
            return HM_EXMLLIMIT;
        err = parse_item(c, ls, it);
        if (err)
            return err;
        n++;
    }
    list_end(c, ls, n, out);
    return 0;
}

static int parse_access(struct ctx *c, const struct field *f, char *base)
{
    struct hm_soap_tok t;
    uint16_t d = c->p.depth;
    uint8_t *n = (uint8_t *)(base + f->off);
    struct hm_slice *v = (struct hm_slice *)(base + f->off2);
    *n = 0;
    for (;;) {
        int err = hm_soap_next(&c->p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END && t.depth == d)
            return 0;
        if (t.type != HM_SOAP_START)
            continue;
        if (*n >= HM_CWMP_MAX_ACCESS)
            return HM_EXMLLIMIT;
        err = hm_soap_leaf_text(&c->p, &v[*n]);
        if (err)
            return err;
        if (too_long(v[*n], f->max))
            return HM_EBADCWMP;
        (*n)++;
    }
}

static int parse_field(struct ctx *c, const struct field *f, const struct hm_soap_tok *t,
                       char *base)
{
    struct hm_slice s;
    int err;
    switch (f->kind) {
    case F_STR:
        err = hm_soap_leaf_text(&c->p, &s);
        if (err)
            return err;
        if (too_long(s, f->max))
            return HM_EBADCWMP;
        *(struct hm_slice *)(base + f->off) = s;
        return 0;
    case F_U32: {
        uint32_t v;
        err = hm_soap_leaf_text(&c->p, &s);
        if (!err)
            err = parse_u32(s, &v);
        if (err)
            return err;
        if (f->name == HM_N_Notification) {
            if (v > 255)
                return HM_EBADCWMP;
            *(uint8_t *)(base + f->off) = (uint8_t)v;
        } else {
            *(uint32_t *)(base + f->off) = v;
        }
        return 0;
    }
    case F_BOOL:
        err = hm_soap_leaf_text(&c->p, &s);
        return err ? err : hm_cwmp_parse_bool(s, (bool *)(base + f->off));
    case F_VALUE:
        *(uint8_t *)(base + f->off2) = value_type(t);
        return hm_soap_leaf_text(&c->p, (struct hm_slice *)(base + f->off));
    case F_STRUCT:
        return parse_struct(c, f->sub, base + f->off);
    case F_LIST:
        return parse_list(c, f->sub, (struct rawlist *)(base + f->off));
    case F_ACCESS:
        return parse_access(c, f, base);
    }
    HM_BUG_ON(1);
    return HM_EBADCWMP;
}

/* After a struct element's START: fills <base> from its children, up to its END. */
static int parse_struct(struct ctx *c, const struct schema *s, char *base)
{
    struct hm_soap_tok t;
    uint16_t d = c->p.depth;
    uint32_t seen = 0;
    const struct field *rep = NULL; /* the F_REPEAT field whose list is open */
    uint32_t nrep = 0;
    int err;

    for (;;) {
        err = hm_soap_next(&c->p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END && t.depth == d)
            break;
        if (t.type != HM_SOAP_START)
            continue; /* white space (or stray text) between children */
        const struct field *f = NULL;
        for (unsigned i = 0; i < s->nf; i++)
            if (s->f[i].name == t.name) {
                f = &s->f[i];
                seen |= 1u << i;
                break;
            }
        if (!f) {
            err = hm_soap_skip(&c->p);
        } else if (f->kind == F_REPEAT) {
            if (rep && rep != f)
                return HM_EBADCWMP;
            if (!rep) {
                err = list_begin(c);
                if (err)
                    return err;
                rep = f;
            }
            char *it = list_push(c, f->sub, nrep);
            if (!it)
                return HM_EXMLLIMIT;
            err = parse_item(c, f->sub, it);
            nrep++;
        } else {
            err = parse_field(c, f, &t, base);
        }
        if (err)
            return err;
    }
    if (rep)
        list_end(c, rep->sub, nrep, (struct rawlist *)(base + rep->off));
    for (unsigned i = 0; i < s->nf; i++)
        if (s->f[i].req && !(seen & (1u << i)))
            return HM_EBADCWMP;
    return 0;
}

static uint8_t ver_of(uint8_t ns)
{
    switch (ns) {
    case HM_NS_CWMP_1_0:
        return HM_CWMP_V1_0;
    case HM_NS_CWMP_1_1:
        return HM_CWMP_V1_1;
    default:
        return HM_CWMP_V1_2;
    }
}

static bool must_understand(const struct hm_soap_tok *t)
{
    for (unsigned i = 0; i < t->nattr; i++)
        if (t->attrs[i].name == HM_N_mustUnderstand && t->attrs[i].ns == HM_NS_SOAPENV)
            return hm_slice_eq_lit(trim(t->attrs[i].value), "1") ||
                   hm_slice_eq_lit(trim(t->attrs[i].value), "true");
    return false;
}

static int parse_header(struct ctx *c, struct hm_cwmp_msg *m)
{
    struct hm_soap_tok t;
    uint16_t d = c->p.depth;
    struct hm_slice s;
    for (;;) {
        int err = hm_soap_next(&c->p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END && t.depth == d)
            return 0;
        if (t.type != HM_SOAP_START)
            continue;
        if (!hm_soap_ns_is_cwmp(t.ns)) {
            m->must_understand |= must_understand(&t);
            err = hm_soap_skip(&c->p);
        } else {
            switch (t.name) {
            case HM_N_ID:
                m->has_id = true;
                m->ns = t.ns;
                m->ver = ver_of(t.ns);
                err = hm_soap_leaf_text(&c->p, &m->id);
                break;
            case HM_N_HoldRequests:
                err = hm_soap_leaf_text(&c->p, &s);
                if (!err)
                    err = hm_cwmp_parse_bool(s, &m->hold_requests);
                break;
            case HM_N_NoMoreRequests:
                err = hm_soap_leaf_text(&c->p, &s);
                if (!err && hm_cwmp_parse_bool(s, &m->no_more_requests))
                    m->no_more_requests = false; /* ignored anyway: do not fail on it */
                break;
            case HM_N_SessionTimeout:
                err = hm_soap_leaf_text(&c->p, &s);
                if (!err)
                    err = parse_u32(s, &m->session_timeout);
                m->has_session_timeout = !err;
                break;
            case HM_N_SupportedCWMPVersions:
                err = hm_soap_leaf_text(&c->p, &m->supported_versions);
                break;
            case HM_N_UseCWMPVersion:
                err = hm_soap_leaf_text(&c->p, &m->use_version);
                break;
            default:
                m->must_understand |= must_understand(&t);
                err = hm_soap_skip(&c->p);
            }
        }
        if (err)
            return err;
    }
}

/* After Body's START: the first child is the RPC; further children are skipped. */
static int parse_body(struct ctx *c, struct hm_cwmp_msg *m)
{
    struct hm_soap_tok t;
    uint16_t d = c->p.depth;
    int err;
    for (;;) {
        err = hm_soap_next(&c->p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END && t.depth == d)
            return m->method ? 0 : HM_EBADSOAP;
        if (t.type != HM_SOAP_START)
            continue;
        if (m->method) {
            err = hm_soap_skip(&c->p);
        } else if (t.ns == HM_NS_SOAPENV && t.name == HM_N_Fault) {
            m->method = HM_CWMP_FAULT;
            err = parse_struct(c, &s_soap_fault, (char *)&m->u.fault);
        } else if (hm_soap_ns_is_cwmp(t.ns)) {
            m->ns = t.ns;
            m->ver = ver_of(t.ns);
            if (!rpc_by_name[t.name].s)
                return HM_ENOTCWMP;
            m->method = rpc_by_name[t.name].method;
            err = parse_struct(c, rpc_by_name[t.name].s, (char *)&m->u);
            if (err == HM_EBADSOAP)
                err = HM_EBADCWMP; /* an element where a value belongs */
        } else {
            return HM_EBADSOAP;
        }
        if (err)
            return err;
    }
}

int hm_cwmp_parse(const char *buf, size_t len, struct hm_soap_arena *arena,
                  const struct hm_cwmp_opts *opts, struct hm_cwmp_msg *m)
{
    struct ctx c;
    struct hm_soap_tok t;
    bool body = false;
    int err;

    memset(m, 0, sizeof(*m));
    if (trim(hm_slice(buf, len)).len == 0) {
        m->method = HM_CWMP_EMPTY;
        return 0;
    }
    hm_soap_init(&c.p, buf, len, arena, opts ? &opts->limits : NULL);
    c.a = arena;
    c.max_list = opts && opts->max_list ? opts->max_list : 4096;
    c.in_list = false;

    err = hm_soap_next(&c.p, &t);
    if (err)
        return err;
    if (t.type != HM_SOAP_START || t.ns != HM_NS_SOAPENV || t.name != HM_N_Envelope)
        return HM_EBADSOAP;
    for (;;) {
        err = hm_soap_next(&c.p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END)
            break;
        if (t.type != HM_SOAP_START)
            continue;
        if (t.ns == HM_NS_SOAPENV && t.name == HM_N_Header && !body)
            err = parse_header(&c, m);
        else if (t.ns == HM_NS_SOAPENV && t.name == HM_N_Body && !body) {
            body = true;
            err = parse_body(&c, m);
        } else
            err = HM_EBADSOAP;
        if (err)
            return err;
    }
    if (!body)
        return HM_EBADSOAP;
    err = hm_soap_next(&c.p, &t);
    if (err)
        return err;
    return t.type == HM_SOAP_EOF ? 0 : HM_EBADSOAP;
}

/* ---- writing ---------------------------------------------------------------------- */

static const char *const ns_uri[] = {"urn:dslforum-org:cwmp-1-0", "urn:dslforum-org:cwmp-1-1",
                                     "urn:dslforum-org:cwmp-1-2"};

void hm_cwmp_escape(struct hm_buf *b, struct hm_slice s)
{
    static const uint8_t special[256] = {
        ['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1, ['\''] = 1, [0 ... 0x1f] = 1,
    };
    if (!s.len)
        return;
    const char *p = s.ptr, *e = s.ptr + s.len, *run = p;
    for (; p < e; p++) {
        unsigned char ch = (unsigned char)*p;
        if (HM_LIKELY(!special[ch]))
            continue;
        hm_buf_append(b, run, (size_t)(p - run));
        run = p + 1;
        switch (ch) {
        case '&':
            hm_buf_append_lit(b, "&amp;");
            break;
        case '<':
            hm_buf_append_lit(b, "&lt;");
            break;
        case '>':
            hm_buf_append_lit(b, "&gt;");
            break;
        case '"':
            hm_buf_append_lit(b, "&quot;");
            break;
        case '\'':
            hm_buf_append_lit(b, "&apos;");
            break;
        case '\t':
            hm_buf_append_lit(b, "&#9;");
            break;
        case '\n':
            hm_buf_append_lit(b, "&#10;");
            break;
        case '\r':
            hm_buf_append_lit(b, "&#13;");
            break;
        default:
            /* Other C0 controls cannot appear in XML 1.0 at all, not even escaped. */
            hm_buf_append_lit(b, "?");
        }
    }
    hm_buf_append(b, run, (size_t)(e - run));
}

static void begin(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    unsigned v = h->ver <= HM_CWMP_V1_2 ? h->ver : HM_CWMP_V1_2;
    hm_buf_append_lit(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                         "<soap-env:Envelope"
                         " xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\""
                         " xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\""
                         " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""
                         " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
                         " xmlns:cwmp=\"");
    hm_buf_append_str(b, ns_uri[v]);
    hm_buf_append_lit(b, "\">");
    if (h->id.len || h->hold_requests || h->use_version.len) {
        hm_buf_append_lit(b, "<soap-env:Header>");
        if (h->id.len) {
            hm_buf_append_lit(b, "<cwmp:ID soap-env:mustUnderstand=\"1\">");
            hm_cwmp_escape(b, h->id);
            hm_buf_append_lit(b, "</cwmp:ID>");
        }
        if (h->hold_requests)
            hm_buf_append_lit(b, "<cwmp:HoldRequests soap-env:mustUnderstand=\"1\">1"
                                 "</cwmp:HoldRequests>");
        if (h->use_version.len) {
            hm_buf_append_lit(b, "<cwmp:UseCWMPVersion soap-env:mustUnderstand=\"1\">");
            hm_cwmp_escape(b, h->use_version);
            hm_buf_append_lit(b, "</cwmp:UseCWMPVersion>");
        }
        hm_buf_append_lit(b, "</soap-env:Header>");
    }
    hm_buf_append_lit(b, "<soap-env:Body>");
}

static void end(struct hm_buf *b)
{
    hm_buf_append_lit(b, "</soap-env:Body></soap-env:Envelope>");
}

static void rpc_open(struct hm_buf *b, enum hm_cwmp_method m)
{
    hm_buf_append_lit(b, "<cwmp:");
    hm_buf_append_str(b, method_names[m]);
    hm_buf_append_lit(b, ">");
}

static void rpc_close(struct hm_buf *b, enum hm_cwmp_method m)
{
    hm_buf_append_lit(b, "</cwmp:");
    hm_buf_append_str(b, method_names[m]);
    hm_buf_append_lit(b, ">");
}

static void leaf(struct hm_buf *b, const char *name, struct hm_slice v)
{
    hm_buf_append_lit(b, "<");
    hm_buf_append_str(b, name);
    hm_buf_append_lit(b, ">");
    hm_cwmp_escape(b, v);
    hm_buf_append_lit(b, "</");
    hm_buf_append_str(b, name);
    hm_buf_append_lit(b, ">");
}

static void leaf_u32(struct hm_buf *b, const char *name, uint32_t v)
{
    hm_buf_append_lit(b, "<");
    hm_buf_append_str(b, name);
    hm_buf_append_lit(b, ">");
    hm_buf_append_u64(b, v);
    hm_buf_append_lit(b, "</");
    hm_buf_append_str(b, name);
    hm_buf_append_lit(b, ">");
}

static void leaf_bool(struct hm_buf *b, const char *name, bool v)
{
    leaf(b, name, v ? HM_SLICE_LIT("1") : HM_SLICE_LIT("0"));
}

static void array_open(struct hm_buf *b, const char *name, const char *type, size_t n)
{
    hm_buf_printf(b, "<%s soap-enc:arrayType=\"%s[%zu]\">", name, type, n);
}

static void empty_rpc(struct hm_buf *b, const struct hm_cwmp_hdr *h, enum hm_cwmp_method m)
{
    begin(b, h);
    hm_buf_append_lit(b, "<cwmp:");
    hm_buf_append_str(b, method_names[m]);
    hm_buf_append_lit(b, "/>");
    end(b);
}

const char *hm_cwmp_type_xsi(enum hm_cwmp_type t)
{
    switch (t) {
    case HM_CWMP_T_INT:
        return "xsd:int";
    case HM_CWMP_T_UINT:
        return "xsd:unsignedInt";
    case HM_CWMP_T_BOOL:
        return "xsd:boolean";
    case HM_CWMP_T_DATETIME:
        return "xsd:dateTime";
    case HM_CWMP_T_BASE64:
        return "xsd:base64Binary";
    case HM_CWMP_T_LONG:
        return "xsd:long";
    case HM_CWMP_T_ULONG:
        return "xsd:unsignedLong";
    case HM_CWMP_T_HEXBINARY:
        return "xsd:hexBinary";
    default:
        return "xsd:string";
    }
}

static void param_list(struct hm_buf *b, const struct hm_cwmp_param *p, size_t n)
{
    array_open(b, "ParameterList", "cwmp:ParameterValueStruct", n);
    for (size_t i = 0; i < n; i++) {
        hm_buf_append_lit(b, "<ParameterValueStruct>");
        leaf(b, "Name", p[i].name);
        hm_buf_append_lit(b, "<Value xsi:type=\"");
        hm_buf_append_str(b, hm_cwmp_type_xsi(p[i].type));
        hm_buf_append_lit(b, "\">");
        hm_cwmp_escape(b, p[i].value);
        hm_buf_append_lit(b, "</Value></ParameterValueStruct>");
    }
    hm_buf_append_lit(b, "</ParameterList>");
}

static void string_list(struct hm_buf *b, const char *name, const struct hm_slice *v, size_t n)
{
    array_open(b, name, "xsd:string", n);
    for (size_t i = 0; i < n; i++)
        leaf(b, "string", v[i]);
    hm_buf_append_str(b, "</");
    hm_buf_append_str(b, name);
    hm_buf_append_lit(b, ">");
}

void hm_cwmp_write_get_rpc_methods(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    empty_rpc(b, h, HM_CWMP_GET_RPC_METHODS);
}

void hm_cwmp_write_spv(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_cwmp_param *params, size_t n, struct hm_slice key)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_SET_PARAMETER_VALUES);
    param_list(b, params, n);
    leaf(b, "ParameterKey", key);
    rpc_close(b, HM_CWMP_SET_PARAMETER_VALUES);
    end(b);
}

static void names_rpc(struct hm_buf *b, const struct hm_cwmp_hdr *h, enum hm_cwmp_method m,
                      const struct hm_slice *names, size_t n)
{
    begin(b, h);
    rpc_open(b, m);
    string_list(b, "ParameterNames", names, n);
    rpc_close(b, m);
    end(b);
}

void hm_cwmp_write_gpv(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_slice *names, size_t n)
{
    names_rpc(b, h, HM_CWMP_GET_PARAMETER_VALUES, names, n);
}

void hm_cwmp_write_gpa(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_slice *names, size_t n)
{
    names_rpc(b, h, HM_CWMP_GET_PARAMETER_ATTRIBUTES, names, n);
}

void hm_cwmp_write_gpn(struct hm_buf *b, const struct hm_cwmp_hdr *h, struct hm_slice path,
                       bool next_level)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_GET_PARAMETER_NAMES);
    leaf(b, "ParameterPath", path);
    leaf(b, "NextLevel", next_level ? HM_SLICE_LIT("true") : HM_SLICE_LIT("false"));
    rpc_close(b, HM_CWMP_GET_PARAMETER_NAMES);
    end(b);
}

static void access_list(struct hm_buf *b, const struct hm_cwmp_attr *a)
{
    size_t n = HM_MIN(a->n_access, (uint8_t)HM_CWMP_MAX_ACCESS);
    string_list(b, "AccessList", a->access, n);
}

void hm_cwmp_write_spa(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                       const struct hm_cwmp_attr *attrs, size_t n)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_SET_PARAMETER_ATTRIBUTES);
    array_open(b, "ParameterList", "cwmp:SetParameterAttributesStruct", n);
    for (size_t i = 0; i < n; i++) {
        hm_buf_append_lit(b, "<SetParameterAttributesStruct>");
        leaf(b, "Name", attrs[i].name);
        leaf_bool(b, "NotificationChange", attrs[i].notification_change);
        leaf_u32(b, "Notification", attrs[i].notification);
        leaf_bool(b, "AccessListChange", attrs[i].access_list_change);
        access_list(b, &attrs[i]);
        hm_buf_append_lit(b, "</SetParameterAttributesStruct>");
    }
    hm_buf_append_lit(b, "</ParameterList>");
    rpc_close(b, HM_CWMP_SET_PARAMETER_ATTRIBUTES);
    end(b);
}

static void object_rpc(struct hm_buf *b, const struct hm_cwmp_hdr *h, enum hm_cwmp_method m,
                       struct hm_slice object_name, struct hm_slice key)
{
    begin(b, h);
    rpc_open(b, m);
    leaf(b, "ObjectName", object_name);
    leaf(b, "ParameterKey", key);
    rpc_close(b, m);
    end(b);
}

void hm_cwmp_write_add_object(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                              struct hm_slice object_name, struct hm_slice key)
{
    object_rpc(b, h, HM_CWMP_ADD_OBJECT, object_name, key);
}

void hm_cwmp_write_delete_object(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                 struct hm_slice object_name, struct hm_slice key)
{
    object_rpc(b, h, HM_CWMP_DELETE_OBJECT, object_name, key);
}

void hm_cwmp_write_reboot(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                          struct hm_slice command_key)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_REBOOT);
    leaf(b, "CommandKey", command_key);
    rpc_close(b, HM_CWMP_REBOOT);
    end(b);
}

void hm_cwmp_write_download(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                            const struct hm_cwmp_download *d)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_DOWNLOAD);
    leaf(b, "CommandKey", d->command_key);
    leaf(b, "FileType", d->file_type);
    leaf(b, "URL", d->url);
    leaf(b, "Username", d->username);
    leaf(b, "Password", d->password);
    leaf_u32(b, "FileSize", d->file_size);
    leaf(b, "TargetFileName", d->target_file_name);
    leaf_u32(b, "DelaySeconds", d->delay_seconds);
    leaf(b, "SuccessURL", d->success_url);
    leaf(b, "FailureURL", d->failure_url);
    rpc_close(b, HM_CWMP_DOWNLOAD);
    end(b);
}

void hm_cwmp_write_upload(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                          const struct hm_cwmp_upload *u)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_UPLOAD);
    leaf(b, "CommandKey", u->command_key);
    leaf(b, "FileType", u->file_type);
    leaf(b, "URL", u->url);
    leaf(b, "Username", u->username);
    leaf(b, "Password", u->password);
    leaf_u32(b, "DelaySeconds", u->delay_seconds);
    rpc_close(b, HM_CWMP_UPLOAD);
    end(b);
}

void hm_cwmp_write_factory_reset(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    empty_rpc(b, h, HM_CWMP_FACTORY_RESET);
}

void hm_cwmp_write_schedule_inform(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                   uint32_t delay_seconds, struct hm_slice command_key)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_SCHEDULE_INFORM);
    leaf_u32(b, "DelaySeconds", delay_seconds);
    leaf(b, "CommandKey", command_key);
    rpc_close(b, HM_CWMP_SCHEDULE_INFORM);
    end(b);
}

void hm_cwmp_write_inform_response(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_INFORM_RESPONSE);
    leaf_u32(b, "MaxEnvelopes", 1);
    rpc_close(b, HM_CWMP_INFORM_RESPONSE);
    end(b);
}

void hm_cwmp_write_empty(struct hm_buf *b, const struct hm_cwmp_hdr *h, enum hm_cwmp_method m)
{
    HM_BUG_ON(m <= HM_CWMP_FAULT || m >= HM_CWMP__COUNT);
    empty_rpc(b, h, m);
}

void hm_cwmp_write_get_rpc_methods_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                            const struct hm_slice *methods, size_t n)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_GET_RPC_METHODS_RESPONSE);
    string_list(b, "MethodList", methods, n);
    rpc_close(b, HM_CWMP_GET_RPC_METHODS_RESPONSE);
    end(b);
}

void hm_cwmp_write_kicked_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                   struct hm_slice next_url)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_KICKED_RESPONSE);
    leaf(b, "NextURL", next_url);
    rpc_close(b, HM_CWMP_KICKED_RESPONSE);
    end(b);
}

const char *hm_cwmp_fault_text(uint32_t code)
{
    static const char *const acs[] = {
        "Method not supported", "Request denied", "Internal error", "Invalid arguments",
        "Resources exceeded", "Retry request", "ACS version incompatible with CPE"};
    static const char *const cpe[] = {
        "Method not supported", "Request denied", "Internal error", "Invalid arguments",
        "Resources exceeded", "Invalid parameter name", "Invalid parameter type",
        "Invalid parameter value", "Attempt to set a non-writable parameter",
        "Notification request rejected", "File transfer failure", "Upload failure",
        "File transfer server authentication failure",
        "Unsupported protocol for file transfer", "Unable to join multicast group",
        "Unable to contact file server", "Unable to access file", "Unable to complete download",
        "File corrupted", "File authentication failure"};
    if (code >= 8000 && code - 8000 < HM_ARRAY_SIZE(acs))
        return acs[code - 8000];
    if (code >= 9000 && code - 9000 < HM_ARRAY_SIZE(cpe))
        return cpe[code - 9000];
    return "Fault";
}

void hm_cwmp_write_fault(struct hm_buf *b, const struct hm_cwmp_hdr *h, uint32_t code,
                         struct hm_slice string, const struct hm_cwmp_spv_fault *spv, size_t n)
{
    bool server = code == 8002 || code == 8004 || code == 8005 || code == 9002 || code == 9004;
    if (!string.len)
        string = hm_slice_cstr(hm_cwmp_fault_text(code));
    begin(b, h);
    hm_buf_append_lit(b, "<soap-env:Fault>");
    leaf(b, "faultcode", server ? HM_SLICE_LIT("Server") : HM_SLICE_LIT("Client"));
    leaf(b, "faultstring", HM_SLICE_LIT("CWMP fault"));
    hm_buf_append_lit(b, "<detail><cwmp:Fault>");
    leaf_u32(b, "FaultCode", code);
    leaf(b, "FaultString", string);
    for (size_t i = 0; i < n; i++) {
        hm_buf_append_lit(b, "<SetParameterValuesFault>");
        leaf(b, "ParameterName", spv[i].name);
        leaf_u32(b, "FaultCode", spv[i].code);
        leaf(b, "FaultString", spv[i].string.len ? spv[i].string
                                                 : hm_slice_cstr(hm_cwmp_fault_text(spv[i].code)));
        hm_buf_append_lit(b, "</SetParameterValuesFault>");
    }
    hm_buf_append_lit(b, "</cwmp:Fault></detail></soap-env:Fault>");
    end(b);
}

void hm_cwmp_write_inform(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                          const struct hm_cwmp_inform *in)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_INFORM);
    hm_buf_append_lit(b, "<DeviceId>");
    leaf(b, "Manufacturer", in->dev.manufacturer);
    leaf(b, "OUI", in->dev.oui);
    leaf(b, "ProductClass", in->dev.product_class);
    leaf(b, "SerialNumber", in->dev.serial);
    hm_buf_append_lit(b, "</DeviceId>");
    array_open(b, "Event", "cwmp:EventStruct", in->events.n);
    for (size_t i = 0; i < in->events.n; i++) {
        hm_buf_append_lit(b, "<EventStruct>");
        leaf(b, "EventCode", in->events.v[i].code);
        leaf(b, "CommandKey", in->events.v[i].command_key);
        hm_buf_append_lit(b, "</EventStruct>");
    }
    hm_buf_append_lit(b, "</Event>");
    leaf_u32(b, "MaxEnvelopes", in->max_envelopes ? in->max_envelopes : 1);
    leaf(b, "CurrentTime", in->current_time);
    leaf_u32(b, "RetryCount", in->retry_count);
    param_list(b, in->params.v, in->params.n);
    rpc_close(b, HM_CWMP_INFORM);
    end(b);
}

void hm_cwmp_write_gpv_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                const struct hm_cwmp_param *params, size_t n)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_GET_PARAMETER_VALUES_RESPONSE);
    param_list(b, params, n);
    rpc_close(b, HM_CWMP_GET_PARAMETER_VALUES_RESPONSE);
    end(b);
}

void hm_cwmp_write_gpn_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                const struct hm_cwmp_param_info *infos, size_t n)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_GET_PARAMETER_NAMES_RESPONSE);
    array_open(b, "ParameterList", "cwmp:ParameterInfoStruct", n);
    for (size_t i = 0; i < n; i++) {
        hm_buf_append_lit(b, "<ParameterInfoStruct>");
        leaf(b, "Name", infos[i].name);
        leaf_bool(b, "Writable", infos[i].writable);
        hm_buf_append_lit(b, "</ParameterInfoStruct>");
    }
    hm_buf_append_lit(b, "</ParameterList>");
    rpc_close(b, HM_CWMP_GET_PARAMETER_NAMES_RESPONSE);
    end(b);
}

void hm_cwmp_write_gpa_response(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                const struct hm_cwmp_attr *attrs, size_t n)
{
    begin(b, h);
    rpc_open(b, HM_CWMP_GET_PARAMETER_ATTRIBUTES_RESPONSE);
    array_open(b, "ParameterList", "cwmp:ParameterAttributeStruct", n);
    for (size_t i = 0; i < n; i++) {
        hm_buf_append_lit(b, "<ParameterAttributeStruct>");
        leaf(b, "Name", attrs[i].name);
        leaf_u32(b, "Notification", attrs[i].notification);
        access_list(b, &attrs[i]);
        hm_buf_append_lit(b, "</ParameterAttributeStruct>");
    }
    hm_buf_append_lit(b, "</ParameterList>");
    rpc_close(b, HM_CWMP_GET_PARAMETER_ATTRIBUTES_RESPONSE);
    end(b);
}

void hm_cwmp_write_status(struct hm_buf *b, const struct hm_cwmp_hdr *h, enum hm_cwmp_method m,
                          const struct hm_cwmp_status *st)
{
    begin(b, h);
    rpc_open(b, m);
    if (m == HM_CWMP_ADD_OBJECT_RESPONSE)
        leaf_u32(b, "InstanceNumber", st->instance_number);
    leaf_u32(b, "Status", st->status);
    if (m == HM_CWMP_DOWNLOAD_RESPONSE || m == HM_CWMP_UPLOAD_RESPONSE) {
        static const struct hm_slice unknown = {"0001-01-01T00:00:00Z", 20};
        leaf(b, "StartTime", st->start_time.len ? st->start_time : unknown);
        leaf(b, "CompleteTime", st->complete_time.len ? st->complete_time : unknown);
    }
    rpc_close(b, m);
    end(b);
}

void hm_cwmp_write_transfer_complete(struct hm_buf *b, const struct hm_cwmp_hdr *h,
                                     const struct hm_cwmp_transfer_complete *tc)
{
    static const struct hm_slice unknown = {"0001-01-01T00:00:00Z", 20};
    begin(b, h);
    rpc_open(b, HM_CWMP_TRANSFER_COMPLETE);
    leaf(b, "CommandKey", tc->command_key);
    hm_buf_append_lit(b, "<FaultStruct>");
    leaf_u32(b, "FaultCode", tc->fault.code);
    leaf(b, "FaultString", tc->fault.string);
    hm_buf_append_lit(b, "</FaultStruct>");
    leaf(b, "StartTime", tc->start_time.len ? tc->start_time : unknown);
    leaf(b, "CompleteTime", tc->complete_time.len ? tc->complete_time : unknown);
    rpc_close(b, HM_CWMP_TRANSFER_COMPLETE);
    end(b);
}
