#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/henb_agent.h"
#include "bench/loadgen_cpe.h"
#include "bench/loadgen_dl.h"

/* The parameters of a TR-196 HeNB's Inform: forced-Inform ones, the IPsec inner address
 * (32.593 identifies the HeNB by it), the LTE cell, the PM upload configuration. Values
 * marked NULL are per device (filled by hm_lg_cpe_params). */
static const struct {
    const char *name, *value;
    uint8_t type;
    bool writable;
} params[HM_LG_CPE_PARAMS] = {
    {"Device.RootDataModelVersion", "2.17", HM_CWMP_T_STRING, false},
    {"Device.DeviceInfo.Manufacturer", "Hems Loadgen Inc.", HM_CWMP_T_STRING, false},
    {"Device.DeviceInfo.ManufacturerOUI", NULL, HM_CWMP_T_STRING, false},
    {"Device.DeviceInfo.ProductClass", NULL, HM_CWMP_T_STRING, false},
    {"Device.DeviceInfo.SerialNumber", NULL, HM_CWMP_T_STRING, false},
    {"Device.DeviceInfo.HardwareVersion", "HNB-LTE-B7-rev3", HM_CWMP_T_STRING, false},
    {"Device.DeviceInfo.SoftwareVersion", "4.2.17-build.20260301", HM_CWMP_T_STRING, false},
    {"Device.DeviceInfo.ProvisioningCode", "HEMS.LG.PROV", HM_CWMP_T_STRING, true},
    {"Device.DeviceInfo.UpTime", NULL, HM_CWMP_T_UINT, false},
    {"Device.ManagementServer.URL", "https://hems.operator.example:7547/cwmp", HM_CWMP_T_STRING, true},
    {"Device.ManagementServer.ParameterKey", "", HM_CWMP_T_STRING, false},
    {"Device.ManagementServer.ConnectionRequestURL", NULL, HM_CWMP_T_STRING, false},
    {"Device.ManagementServer.AliasBasedAddressing", "false", HM_CWMP_T_BOOL, false},
    {"Device.ManagementServer.PeriodicInformEnable", "true", HM_CWMP_T_BOOL, true},
    {"Device.ManagementServer.PeriodicInformInterval", "900", HM_CWMP_T_UINT, true},
    {"Device.ManagementServer.CWMPRetryMinimumWaitInterval", "5", HM_CWMP_T_UINT, true},
    {"Device.ManagementServer.CWMPRetryIntervalMultiplier", "2000", HM_CWMP_T_UINT, true},
    {"Device.IPsec.IKEv2SA.1.LocalAddress", NULL, HM_CWMP_T_STRING, false},
    {"Device.IP.Interface.1.IPv4Address.1.IPAddress", NULL, HM_CWMP_T_STRING, false},
    {"Device.Services.FAPService.1.Capabilities.LTE.DuplexMode", "FDDMode", HM_CWMP_T_STRING, false},
    {"Device.Services.FAPService.1.Capabilities.LTE.BandsSupported", "7,20", HM_CWMP_T_STRING, false},
    {"Device.Services.FAPService.1.Capabilities.MaxTxPower", "24", HM_CWMP_T_UINT, false},
    {"Device.Services.FAPService.1.FAPControl.LTE.OpState", "true", HM_CWMP_T_BOOL, false},
    {"Device.Services.FAPService.1.FAPControl.LTE.AdminState", "true", HM_CWMP_T_BOOL, true},
    {"Device.Services.FAPService.1.FAPControl.LTE.RFTxStatus", "true", HM_CWMP_T_BOOL, false},
    {"Device.Services.FAPService.1.FAPControl.LTE.Gateway.SecGWServer1", "segw1.operator.example", HM_CWMP_T_STRING, true},
    {"Device.Services.FAPService.1.FAPControl.LTE.Gateway.SecGWServer2", "segw2.operator.example", HM_CWMP_T_STRING, true},
    {"Device.Services.FAPService.1.FAPControl.LTE.Gateway.S1SigLinkServerList", "10.20.0.1,10.20.0.2", HM_CWMP_T_STRING, true},
    {"Device.Services.FAPService.1.CellConfig.LTE.EPC.PLMNList.1.PLMNID", "00101", HM_CWMP_T_STRING, true},
    {"Device.Services.FAPService.1.CellConfig.LTE.EPC.TAC", "4660", HM_CWMP_T_UINT, true},
    {"Device.Services.FAPService.1.CellConfig.LTE.RAN.Common.CellIdentity", NULL, HM_CWMP_T_UINT, true},
    {"Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.EARFCNDL", "3350", HM_CWMP_T_STRING, true},
    {"Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.EARFCNUL", "21350", HM_CWMP_T_STRING, true},
    {"Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.PhyCellID", NULL, HM_CWMP_T_STRING, true},
    {"Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.ReferenceSignalPower", "-20", HM_CWMP_T_INT, true},
    {"Device.FAP.PerfMgmt.Config.1.Enable", "true", HM_CWMP_T_BOOL, true},
    {"Device.FAP.PerfMgmt.Config.1.URL", "https://hems.operator.example:8443/pm", HM_CWMP_T_STRING, true},
    {"Device.FAP.PerfMgmt.Config.1.PeriodicUploadInterval", "900", HM_CWMP_T_UINT, true},
    {"Device.FAP.GPS.LockedLatitude", "48856614", HM_CWMP_T_INT, false},
    {"Device.FAP.GPS.LockedLongitude", "2352222", HM_CWMP_T_INT, false},
};

static struct hm_slice put(char **w, char *end, const char *fmt, unsigned long long a,
                           unsigned long long b, unsigned long long c)
{
    int n = snprintf(*w, (size_t)(end - *w), fmt, a, b, c);
    if (n < 0 || n >= end - *w)
        n = 0;
    struct hm_slice s = hm_slice(*w, (size_t)n);
    *w += n;
    return s;
}

size_t hm_lg_cpe_params(const struct hm_lg_cpe_id *id, struct hm_cwmp_param *out, char *scratch)
{
    char *w = scratch, *end = scratch + HM_LG_CPE_SCRATCH;
    unsigned long long i = id->index;
    for (size_t k = 0; k < HM_LG_CPE_PARAMS; k++) {
        out[k].name = hm_slice_cstr(params[k].name);
        out[k].type = params[k].type;
        if (params[k].value) {
            out[k].value = hm_slice_cstr(params[k].value);
            continue;
        }
        switch (k) {
        case 2: out[k].value = id->oui; break;
        case 3: out[k].value = id->product_class; break;
        case 4: out[k].value = id->serial; break;
        case 8: out[k].value = put(&w, end, "%llu", 3600 + i % 86400, 0, 0); break;
        case 11:
            if (id->cr_port)
                out[k].value = put(&w, end, "http://127.0.0.1:%llu/crq/%llu", id->cr_port, i, 0);
            else
                out[k].value = put(&w, end, "http://10.%llu.%llu.%llu:7547/crq", (i >> 16) & 255,
                                   (i >> 8) & 255, i & 255);
            break;
        case 17: /* the IPsec inner address: 172.16/12 by device, then 10.64/10 per change */
            if (id->ipsec_gen)
                out[k].value = put(&w, end, "10.%llu.%llu.%llu",
                                   64 + (((i >> 16) + id->ipsec_gen * 7) & 63), (i >> 8) & 255,
                                   i & 255);
            else
                out[k].value = put(&w, end, "172.%llu.%llu.%llu", 16 + ((i >> 16) & 15),
                                   (i >> 8) & 255, i & 255);
            break;
        case 18:
            out[k].value = put(&w, end, "10.%llu.%llu.%llu", (i >> 16) & 255, (i >> 8) & 255,
                               i & 255);
            break;
        case 30: out[k].value = put(&w, end, "%llu", (i * 256) & 0xFFFFFFF, 0, 0); break;
        case 33: out[k].value = put(&w, end, "%llu", i % 504, 0, 0); break;
        default: out[k].value = HM_SLICE_LIT(""); break;
        }
    }
    return HM_LG_CPE_PARAMS;
}

static bool under(struct hm_slice name, struct hm_slice path)
{
    if (path.len == 0)
        return true;
    if (path.ptr[path.len - 1] != '.')
        return hm_slice_eq(name, path);
    return name.len >= path.len && memcmp(name.ptr, path.ptr, path.len) == 0;
}

static void answer_gpv(const struct hm_lg_cpe_id *id, const struct hm_cwmp_msg *req,
                       const struct hm_cwmp_hdr *h, struct hm_buf *out)
{
    char scratch[HM_LG_CPE_SCRATCH];
    struct hm_cwmp_param all[HM_LG_CPE_PARAMS], sel[HM_LG_CPE_PARAMS];
    size_t n = hm_lg_cpe_params(id, all, scratch), m = 0;
    bool used[HM_LG_CPE_PARAMS] = {0};
    for (uint32_t r = 0; r < req->u.names.n; r++) {
        bool found = false;
        for (size_t k = 0; k < n; k++) {
            if (under(all[k].name, req->u.names.v[r])) {
                found = true;
                if (!used[k]) {
                    used[k] = true;
                    sel[m++] = all[k];
                }
            }
        }
        if (!found) {
            hm_cwmp_write_fault(out, h, 9005, HM_SLICE_LIT(""), NULL, 0);
            return;
        }
    }
    hm_cwmp_write_gpv_response(out, h, sel, m);
}

static void answer_gpn(const struct hm_cwmp_msg *req, const struct hm_cwmp_hdr *h,
                       struct hm_buf *out)
{
    struct hm_cwmp_param_info infos[HM_LG_CPE_PARAMS];
    size_t m = 0;
    for (size_t k = 0; k < HM_LG_CPE_PARAMS; k++) {
        struct hm_slice name = hm_slice_cstr(params[k].name);
        if (under(name, req->u.gpn.path))
            infos[m++] = (struct hm_cwmp_param_info){name, params[k].writable};
    }
    if (m == 0) {
        hm_cwmp_write_fault(out, h, 9005, HM_SLICE_LIT(""), NULL, 0);
        return;
    }
    hm_cwmp_write_gpn_response(out, h, infos, m);
}

static void answer_gpa(const struct hm_cwmp_msg *req, const struct hm_cwmp_hdr *h,
                       struct hm_buf *out)
{
    struct hm_cwmp_attr attrs[HM_LG_CPE_PARAMS];
    size_t m = 0;
    for (size_t k = 0; k < HM_LG_CPE_PARAMS; k++) {
        struct hm_slice name = hm_slice_cstr(params[k].name);
        for (uint32_t r = 0; r < req->u.names.n; r++) {
            if (under(name, req->u.names.v[r])) {
                attrs[m++] = (struct hm_cwmp_attr){.name = name, .n_access = 0};
                break;
            }
        }
    }
    hm_cwmp_write_gpa_response(out, h, attrs, m);
}

void hm_lg_cpe_answer(const struct hm_lg_cpe_id *id, const struct hm_cwmp_msg *req,
                      struct hm_buf *out)
{
    struct hm_cwmp_hdr h = {.ver = req->ver, .id = req->id};
    struct hm_cwmp_status st = {0};
    switch (req->method) {
    case HM_CWMP_GET_PARAMETER_VALUES: answer_gpv(id, req, &h, out); break;
    case HM_CWMP_GET_PARAMETER_NAMES: answer_gpn(req, &h, out); break;
    case HM_CWMP_GET_PARAMETER_ATTRIBUTES: answer_gpa(req, &h, out); break;
    case HM_CWMP_SET_PARAMETER_VALUES:
        hm_cwmp_write_status(out, &h, HM_CWMP_SET_PARAMETER_VALUES_RESPONSE, &st);
        break;
    case HM_CWMP_ADD_OBJECT:
        st.instance_number = 1;
        hm_cwmp_write_status(out, &h, HM_CWMP_ADD_OBJECT_RESPONSE, &st);
        break;
    case HM_CWMP_DELETE_OBJECT:
        hm_cwmp_write_status(out, &h, HM_CWMP_DELETE_OBJECT_RESPONSE, &st);
        break;
    case HM_CWMP_DOWNLOAD:
        st.status = 1; /* not done yet; a real HeNB reports TransferComplete later */
        hm_cwmp_write_status(out, &h, HM_CWMP_DOWNLOAD_RESPONSE, &st);
        break;
    case HM_CWMP_UPLOAD:
        st.status = 1;
        hm_cwmp_write_status(out, &h, HM_CWMP_UPLOAD_RESPONSE, &st);
        break;
    case HM_CWMP_SET_PARAMETER_ATTRIBUTES:
        hm_cwmp_write_empty(out, &h, HM_CWMP_SET_PARAMETER_ATTRIBUTES_RESPONSE);
        break;
    case HM_CWMP_REBOOT: hm_cwmp_write_empty(out, &h, HM_CWMP_REBOOT_RESPONSE); break;
    case HM_CWMP_FACTORY_RESET:
        hm_cwmp_write_empty(out, &h, HM_CWMP_FACTORY_RESET_RESPONSE);
        break;
    case HM_CWMP_SCHEDULE_INFORM:
        hm_cwmp_write_empty(out, &h, HM_CWMP_SCHEDULE_INFORM_RESPONSE);
        break;
    case HM_CWMP_GET_RPC_METHODS: {
        static const struct hm_slice m[] = {
            HM_SLICE_LIT("GetRPCMethods"), HM_SLICE_LIT("SetParameterValues"),
            HM_SLICE_LIT("GetParameterValues"), HM_SLICE_LIT("GetParameterNames"),
            HM_SLICE_LIT("SetParameterAttributes"), HM_SLICE_LIT("GetParameterAttributes"),
            HM_SLICE_LIT("AddObject"), HM_SLICE_LIT("DeleteObject"), HM_SLICE_LIT("Reboot"),
            HM_SLICE_LIT("Download"), HM_SLICE_LIT("Upload"), HM_SLICE_LIT("FactoryReset"),
            HM_SLICE_LIT("ScheduleInform"),
        };
        hm_cwmp_write_get_rpc_methods_response(out, &h, m, HM_ARRAY_SIZE(m));
        break;
    }
    default: hm_cwmp_write_fault(out, &h, 9000, HM_SLICE_LIT(""), NULL, 0); break;
    }
}

/* ---- the per-worker behaviour ---------------------------------------------------- */

struct hm_lg_cpe {
    uint8_t ver;
    struct hm_lg_dl *dl; /* downloads (bench/loadgen_dl.h), not owned; NULL: none */
    struct hm_henb_model model;
    struct hm_henb_agent *agents; /* NULL: built-in behaviour */
    int model_idx[HM_LG_CPE_PARAMS]; /* index of params[k] in the model, or -1 */
    time_t now_t;                    /* CurrentTime, formatted once a second */
    size_t now_len;
    char now[32];
};

int hm_lg_cpe_create(struct hm_lg_cpe **out, const char *model_csv, uint32_t ndev,
                     uint8_t ver, bool fresh)
{
    struct hm_lg_cpe *c = hm_xcalloc(1, sizeof(*c));
    c->ver = ver;
    if (model_csv) {
        int rc = hm_henb_model_load(&c->model, model_csv);
        if (rc) {
            free(c);
            return rc;
        }
        c->agents = hm_xcalloc(ndev ? ndev : 1, sizeof(*c->agents));
        for (uint32_t i = 0; i < ndev; i++) {
            hm_henb_agent_init(&c->agents[i], &c->model, i, (enum hm_cwmp_ver)ver);
            if (!fresh)
                c->agents[i].events = 0;
        }
        for (size_t k = 0; k < HM_LG_CPE_PARAMS; k++)
            c->model_idx[k] = hm_henb_model_find(&c->model, hm_slice_cstr(params[k].name));
    }
    *out = c;
    return 0;
}

void hm_lg_cpe_destroy(struct hm_lg_cpe *c)
{
    if (!c)
        return;
    if (c->agents) {
        free(c->agents);
        hm_henb_model_free(&c->model);
    }
    free(c);
}

void hm_lg_cpe_set_dl(struct hm_lg_cpe *c, struct hm_lg_dl *dl)
{
    c->dl = dl;
}

/* Alarm entry fields in TR-157 order, and the values that do not vary. */
static const char *const alarm_fields[] = {
    "EventTime",   "AlarmIdentifier",   "NotificationType",  "ManagedObjectInstance",
    "EventType",   "ProbableCause",     "SpecificProblem",   "PerceivedSeverity",
    "AdditionalText", "AdditionalInformation",
};
#define ALARM_FIELDS HM_ARRAY_SIZE(alarm_fields)
#define ALARM_SCRATCH (HM_LG_MAX_ALARMS * ALARM_FIELDS * 64 + HM_LG_MAX_ALARMS * 64)

/* Appends the entries of <a> to <p> (names and varying values written into <w>..<end>);
 * returns the number of parameters added. */
static size_t alarm_params(const struct hm_lg_alarm_spec *a, struct hm_cwmp_param *p, char *w,
                           char *end)
{
    static const char *const fixed[ALARM_FIELDS] = {
        NULL, NULL, NULL, "ENBFunction=1,EUtranCellFDD=1", "Communications Alarm",
        "Loss of signal", "S1 link to MME down", NULL, "simulated by hems-loadgen", "",
    };
    const char *ring = a->queued ? "QueuedEvent" : "ExpeditedEvent";
    time_t t = (time_t)(1767225600 + a->seq); /* 2026-01-01T00:00:00Z + seq */
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t wl = strftime(w, (size_t)(end - w), "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct hm_slice when = hm_slice(w, wl);
    w += wl;
    size_t n = 0;
    for (uint32_t k = 1; k <= a->n && k <= HM_LG_MAX_ALARMS; k++) {
        for (size_t f = 0; f < ALARM_FIELDS; f++) {
            int len = snprintf(w, (size_t)(end - w), "Device.FaultMgmt.%s.%u.%s", ring, k,
                               alarm_fields[f]);
            if (len < 0 || len >= end - w)
                return n;
            struct hm_cwmp_param *q = &p[n++];
            q->name = hm_slice(w, (size_t)len);
            w += len;
            q->type = f == 0 ? HM_CWMP_T_DATETIME : HM_CWMP_T_STRING;
            if (fixed[f]) {
                q->value = hm_slice_cstr(fixed[f]);
            } else if (f == 0) {
                q->value = when;
            } else if (f == 1) {
                len = snprintf(w, (size_t)(end - w), "LG-%u", k);
                if (len < 0 || len >= end - w)
                    return n - 1;
                q->value = hm_slice(w, (size_t)len);
                w += len;
            } else if (f == 2) {
                q->value = a->clear ? HM_SLICE_LIT("ClearedAlarm") : HM_SLICE_LIT("NewAlarm");
            } else { /* PerceivedSeverity */
                q->value = a->clear ? HM_SLICE_LIT("Cleared") : HM_SLICE_LIT("Major");
            }
        }
    }
    return n;
}

void hm_lg_cpe_inform(struct hm_lg_cpe *c, uint32_t d, const struct hm_lg_cpe_id *id,
                      enum hm_lg_inform_kind kind, uint32_t retry,
                      const struct hm_lg_alarm_spec *alarms, struct hm_buf *out)
{
    static const struct hm_cwmp_event periodic[] = {{HM_SLICE_LIT("2 PERIODIC"), {0}}};
    static const struct hm_cwmp_event boot[] = {{HM_SLICE_LIT("0 BOOTSTRAP"), {0}},
                                                {HM_SLICE_LIT("1 BOOT"), {0}}};
    char scratch[HM_LG_CPE_SCRATCH], idbuf[24];
    struct hm_cwmp_param p[HM_LG_CPE_PARAMS + HM_LG_MAX_ALARMS * ALARM_FIELDS];
    struct hm_cwmp_event ev[16];
    size_t n = hm_lg_cpe_params(id, p, scratch);
    struct hm_cwmp_inform in = {
        .dev = {id->manufacturer, id->oui, id->product_class, id->serial},
        .max_envelopes = 1,
        .retry_count = retry,
    };
    static const struct hm_cwmp_event cr[] = {{HM_SLICE_LIT("6 CONNECTION REQUEST"), {0}}};
    in.events.v = kind == HM_LG_INFORM_BOOT ? boot : kind == HM_LG_INFORM_CR ? cr : periodic;
    in.events.n = kind == HM_LG_INFORM_BOOT ? 2 : 1;
    uint32_t cwmp_id = 0;
    if (c->agents) {
        struct hm_henb_agent *a = &c->agents[d];
        /* values the ACS may have set (ParameterKey, intervals, ...) come from the agent;
         * the identity and per-device addresses stay the loadgen's */
        for (size_t k = 0; k < n; k++)
            if (c->model_idx[k] >= 0 && k != 2 && k != 3 && k != 4 && k != 11 &&
                k != 17)
                p[k].value = hm_henb_agent_value(a, (uint32_t)c->model_idx[k]);
        if (a->events) {
            in.events.v = ev;
            in.events.n = (uint32_t)hm_henb_agent_events(a, a->events, ev);
        }
        cwmp_id = a->next_id++;
    } else {
        cwmp_id = (uint32_t)id->index;
        /* downloads: a finished transfer's events, and the version after a firmware image */
        struct hm_slice sw = {0};
        uint32_t ne = c->dl ? hm_lg_dl_inform(c->dl, d, ev, &sw) : 0;
        if (ne) {
            in.events.v = ev;
            in.events.n = ne;
        }
        for (size_t k = 0; sw.ptr && k < n; k++)
            if (hm_slice_eq(p[k].name, HM_SLICE_LIT("Device.DeviceInfo.SoftwareVersion")))
                p[k].value = sw;
    }
    time_t t = time(NULL);
    if (t != c->now_t) { /* formatted once a second, not once per Inform */
        struct tm tm;
        gmtime_r(&t, &tm);
        c->now_len = strftime(c->now, sizeof(c->now), "%Y-%m-%dT%H:%M:%SZ", &tm);
        c->now_t = t;
    }
    char ascratch[ALARM_SCRATCH];
    bool value_change = alarms && alarms->n && !alarms->queued;
    if (alarms && alarms->n)
        n += alarm_params(alarms, p + n, ascratch, ascratch + sizeof(ascratch));
    if (value_change || id->ipsec_changed) {
        /* expedited alarms and the IPsec inner address are active notifications */
        bool have = false;
        for (uint32_t k = 0; k < in.events.n; k++)
            have |= hm_slice_eq(in.events.v[k].code, HM_SLICE_LIT("4 VALUE CHANGE"));
        if (!have && in.events.n < HM_ARRAY_SIZE(ev)) {
            if (in.events.v != ev) {
                memcpy(ev, in.events.v, in.events.n * sizeof(ev[0]));
                in.events.v = ev;
            }
            ev[in.events.n++] = (struct hm_cwmp_event){HM_SLICE_LIT("4 VALUE CHANGE"), {0}};
        }
    }
    in.current_time = hm_slice(c->now, c->now_len);
    in.params.v = p;
    in.params.n = (uint32_t)n;
    int idn = snprintf(idbuf, sizeof(idbuf), "i%u", cwmp_id);
    struct hm_cwmp_hdr h = {.ver = c->ver, .id = hm_slice(idbuf, (size_t)idn)};
    hm_cwmp_write_inform(out, &h, &in);
}

int hm_lg_cpe_handle(struct hm_lg_cpe *c, uint32_t d, const struct hm_lg_cpe_id *id,
                     const struct hm_cwmp_msg *msg, const char *body, size_t len,
                     struct hm_soap_arena *scratch, struct hm_buf *out)
{
    if (c->agents) {
        hm_soap_arena_reset(scratch);
        int rc = hm_henb_agent_handle(&c->agents[d], body, len, scratch, out);
        return rc > 0 ? 1 : 0;
    }
    switch (msg->method) {
    case HM_CWMP_NONE:
    case HM_CWMP_EMPTY:
    case HM_CWMP_FAULT:
        return 0;
    default:
        break;
    }
    if (c->dl) { /* downloads (bench/loadgen_dl.h) */
        if (msg->method == HM_CWMP_INFORM_RESPONSE)
            return hm_lg_dl_transfer_complete(c->dl, d, c->ver, out);
        if (msg->method == HM_CWMP_TRANSFER_COMPLETE_RESPONSE) {
            hm_lg_dl_acked(c->dl, d);
            return 0;
        }
        if (msg->method == HM_CWMP_DOWNLOAD) {
            struct hm_cwmp_hdr h = {.ver = msg->ver, .id = msg->id};
            int r = hm_lg_dl_start(c->dl, d, &msg->u.download);
            if (r == 0) {
                struct hm_cwmp_status st = {.status = 1};
                hm_cwmp_write_status(out, &h, HM_CWMP_DOWNLOAD_RESPONSE, &st);
            } else {
                hm_cwmp_write_fault(out, &h, r == -EBUSY ? 9004 : 9003, HM_SLICE_LIT(""), NULL, 0);
            }
            return 1;
        }
    }
    if (msg->method >= HM_CWMP_SET_PARAMETER_VALUES) { /* ACS requests, see cwmp.h */
        hm_lg_cpe_answer(id, msg, out);
        return 1;
    }
    return 0; /* InformResponse and the other ACS responses: nothing to send */
}

bool hm_lg_cpe_pm(const struct hm_lg_cpe *c, uint32_t d, const char **url, const char **user,
                  const char **password)
{
    return c->agents && hm_henb_agent_pm(&c->agents[d], url, user, password);
}
