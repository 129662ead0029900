/*
 * proto/cwmp: replay of every CPE capture (checked field by field against a libxml2 DOM
 * of the same file), XSD conformance of every writer under libxml2's schema validator
 * (offline, via the shared catalog), round trips writer -> parser, and the strict edges.
 */
#include <dirent.h>
#include <libxml/catalog.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_check.h"
#include "proto/cwmp.h"

static char arena_mem[1 << 20];

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static bool sl_eq(struct hm_slice s, const char *c)
{
    return s.len == strlen(c) && (s.len == 0 || memcmp(s.ptr, c, s.len) == 0);
}

static int parse(const char *buf, size_t len, struct hm_cwmp_msg *m)
{
    static struct hm_soap_arena a;
    hm_soap_arena_init(&a, arena_mem, sizeof(arena_mem));
    return hm_cwmp_parse(buf, len, &a, NULL, m);
}

/* Collects, in document order, the text of every element named <name>. */
static void dom_collect(xmlNode *n, const char *name, xmlChar **out, int *cnt, int max)
{
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0 && *cnt < max)
            out[(*cnt)++] = xmlNodeGetContent(n);
        dom_collect(n->children, name, out, cnt, max);
    }
}

static void check_list_against_dom(xmlDoc *doc, const char *elem, const struct hm_slice *first,
                                   size_t stride, uint32_t n)
{
    xmlChar *v[8192];
    int cnt = 0;
    dom_collect(xmlDocGetRootElement(doc), elem, v, &cnt, 8192);
    ck_assert_int_eq(cnt, (int)n);
    for (int i = 0; i < cnt; i++) {
        const struct hm_slice *s = (const void *)((const char *)first + (size_t)i * stride);
        ck_assert_msg(sl_eq(*s, (const char *)v[i]), "%s[%d]: '%.*s' != '%s'", elem, i,
                      HM_SLICE_ARG(*s), v[i]);
        xmlFree(v[i]);
    }
}

static int replay_dir(const char *dir)
{
    char path[1024];
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort), done = 0;
    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++) {
        const char *fn = ents[i]->d_name;
        const char *cpe = strstr(fn, "-cpe-");
        if (!cpe || !strstr(fn, ".xml")) {
            free(ents[i]);
            continue;
        }
        char want[128];
        snprintf(want, sizeof(want), "%.*s", (int)(strstr(cpe, ".xml") - cpe - 5), cpe + 5);
        snprintf(path, sizeof(path), "%s/%s", dir, fn);
        size_t len;
        char *buf = slurp(path, &len);
        struct hm_cwmp_msg m;
        int err = parse(buf, len, &m);
        ck_assert_msg(err == 0, "%s: %s", path, hm_strerror(err));
        if (strcmp(want, "empty") == 0) {
            ck_assert_int_eq(m.method, HM_CWMP_EMPTY);
        } else {
            ck_assert_msg(strcmp(hm_cwmp_method_name(m.method), want) == 0, "%s: got %s", path,
                          hm_cwmp_method_name(m.method));
            ck_assert(m.has_id && m.id.len > 0);
            xmlDoc *doc = xmlReadMemory(buf, (int)len, "x.xml", NULL, XML_PARSE_NONET);
            ck_assert_ptr_nonnull(doc);
            const xmlNs *ns = xmlDocGetRootElement(doc)->nsDef;
            for (; ns; ns = ns->next)
                if (strstr((const char *)ns->href, "cwmp-1-"))
                    ck_assert_int_eq(m.ver, ns->href[strlen((const char *)ns->href) - 1] - '0');
            switch (m.method) {
            case HM_CWMP_INFORM: {
                const struct hm_cwmp_inform *in = &m.u.inform;
                ck_assert_uint_eq(in->dev.oui.len, 6);
                ck_assert_uint_gt(in->dev.serial.len, 0);
                ck_assert_uint_eq(in->max_envelopes, 1);
                check_list_against_dom(doc, "EventCode", &in->events.v[0].code,
                                       sizeof(in->events.v[0]), in->events.n);
                check_list_against_dom(doc, "Name", &in->params.v[0].name,
                                       sizeof(in->params.v[0]), in->params.n);
                check_list_against_dom(doc, "Value", &in->params.v[0].value,
                                       sizeof(in->params.v[0]), in->params.n);
                for (uint32_t k = 0; k < in->params.n; k++)
                    ck_assert_int_eq(in->params.v[k].type, HM_CWMP_T_STRING);
                break;
            }
            case HM_CWMP_GET_PARAMETER_VALUES_RESPONSE:
                ck_assert_uint_gt(m.u.params.n, 0);
                check_list_against_dom(doc, "Name", &m.u.params.v[0].name,
                                       sizeof(m.u.params.v[0]), m.u.params.n);
                check_list_against_dom(doc, "Value", &m.u.params.v[0].value,
                                       sizeof(m.u.params.v[0]), m.u.params.n);
                break;
            case HM_CWMP_GET_PARAMETER_NAMES_RESPONSE:
                ck_assert_uint_gt(m.u.infos.n, 0);
                check_list_against_dom(doc, "Name", &m.u.infos.v[0].name,
                                       sizeof(m.u.infos.v[0]), m.u.infos.n);
                break;
            case HM_CWMP_FAULT:
                ck_assert_uint_ge(m.u.fault.code, 9000);
                ck_assert(sl_eq(m.u.fault.faultcode, "Client"));
                break;
            default:
                break;
            }
            xmlFreeDoc(doc);
        }
        free(buf);
        free(ents[i]);
        done++;
    }
    free(ents);
    return done;
}

START_TEST(replay_captures)
{
    static const char *dirs[] = {"genie", "genie-fap", "easy", "f3"};
    int total = 0;
    for (size_t i = 0; i < HM_ARRAY_SIZE(dirs); i++) {
        char d[512];
        snprintf(d, sizeof(d), "%s/captures/%s", HM_SHARED_DATA, dirs[i]);
        total += replay_dir(d);
    }
    ck_assert_int_ge(total, 60);
}
END_TEST

static struct hm_cwmp_msg parse_file(const char *rel, char **keep)
{
    char path[512];
    size_t len;
    struct hm_cwmp_msg m;
    snprintf(path, sizeof(path), "%s/captures/%s", HM_SHARED_DATA, rel);
    *keep = slurp(path, &len);
    int err = parse(*keep, len, &m);
    ck_assert_msg(err == 0, "%s: %s", rel, hm_strerror(err));
    return m;
}

START_TEST(capture_key_fields)
{
    char *b;
    struct hm_cwmp_msg m = parse_file("genie/0001-cpe-Inform.xml", &b);
    ck_assert_int_eq(m.ver, HM_CWMP_V1_0);
    ck_assert(sl_eq(m.id, "49vzlsnf"));
    ck_assert(sl_eq(m.u.inform.dev.manufacturer, "Huawei Technologies Co., Ltd."));
    ck_assert(sl_eq(m.u.inform.dev.oui, "202BC1"));
    ck_assert(sl_eq(m.u.inform.dev.product_class, "BM632w"));
    ck_assert(sl_eq(m.u.inform.dev.serial, "000000"));
    ck_assert_uint_eq(m.u.inform.events.n, 1);
    ck_assert(sl_eq(m.u.inform.events.v[0].code, "2 PERIODIC"));
    ck_assert(sl_eq(m.u.inform.current_time, "2026-11-26T21:03:27.687Z"));
    ck_assert_uint_eq(m.u.inform.params.n, 7);
    ck_assert(sl_eq(m.u.inform.params.v[6].value, "172.3.89.139"));
    free(b);

    m = parse_file("easy/0001-cpe-Inform.xml", &b);
    ck_assert_int_eq(m.ver, HM_CWMP_V1_2);
    ck_assert_uint_eq(m.u.inform.events.n, 2);
    ck_assert(sl_eq(m.u.inform.events.v[0].code, "0 BOOTSTRAP"));
    ck_assert(sl_eq(m.u.inform.events.v[1].code, "1 BOOT"));
    ck_assert_uint_eq(m.u.inform.events.v[1].command_key.len, 0);
    ck_assert_uint_eq(m.u.inform.params.n, 10);
    free(b);

    m = parse_file("f3/0007-cpe-Fault.xml", &b);
    ck_assert_int_eq(m.method, HM_CWMP_FAULT);
    ck_assert_uint_eq(m.u.fault.code, 9003);
    ck_assert(sl_eq(m.u.fault.string, "Invalid arguments"));
    ck_assert_uint_eq(m.u.fault.spv_faults.n, 1);
    ck_assert(sl_eq(m.u.fault.spv_faults.v[0].name, "Device.DeviceInfo.SerialNumber"));
    ck_assert_uint_eq(m.u.fault.spv_faults.v[0].code, 9008);
    free(b);

    m = parse_file("genie/0018-cpe-TransferComplete.xml", &b);
    ck_assert(sl_eq(m.u.transfer_complete.command_key, "dl-1"));
    ck_assert_uint_eq(m.u.transfer_complete.fault.code, 0);
    ck_assert(sl_eq(m.u.transfer_complete.complete_time, "2026-11-26T21:03:32.979Z"));
    free(b);

    m = parse_file("genie-fap/0011-cpe-AddObjectResponse.xml", &b);
    ck_assert_uint_eq(m.u.status.instance_number, 2);
    ck_assert_uint_eq(m.u.status.status, 0);
    free(b);

    m = parse_file("easy/0013-cpe-DownloadResponse.xml", &b);
    ck_assert_uint_eq(m.u.status.status, 1);
    ck_assert(sl_eq(m.u.status.start_time, "0001-01-01T00:00:00Z"));
    free(b);
}
END_TEST

/* ---- XSD conformance ---- */

static xmlSchemaPtr schema_for(int ver)
{
    static const char *files[] = {"cwmp-1-0.xsd", "cwmp-1-1.xsd", "cwmp-1-4.xsd"};
    char path[512];
    snprintf(path, sizeof(path), "%s/cwmp-xsd/%s", HM_SHARED_DATA, files[ver]);
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path);
    ck_assert_ptr_nonnull(pc);
    xmlSchemaPtr s = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    ck_assert_msg(s != NULL, "schema %s does not load (catalog?)", path);
    return s;
}

static void xml_init(void)
{
    static char env[600];
    snprintf(env, sizeof(env), "XML_CATALOG_FILES=%s/cwmp-xsd/catalog-strict.xml",
             HM_SHARED_DATA);
    putenv(env);
    xmlInitParser();
    xmlInitializeCatalog();
}

static int validate(xmlSchemaPtr s, const struct hm_buf *b)
{
    xmlDoc *doc = xmlReadMemory(b->base, (int)b->len, "msg.xml", NULL, XML_PARSE_NONET);
    if (!doc)
        return -1;
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(s);
    int rc = xmlSchemaValidateDoc(vc, doc);
    xmlSchemaFreeValidCtxt(vc);
    xmlFreeDoc(doc);
    return rc;
}

static const struct hm_cwmp_param params[] = {
    {HM_SLICE_LIT("Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.EARFCNDL"),
     HM_SLICE_LIT("1300"), HM_CWMP_T_UINT},
    {HM_SLICE_LIT("Device.Services.FAPService.1.FAPControl.LTE.AdminState"), HM_SLICE_LIT("true"),
     HM_CWMP_T_BOOL},
    {HM_SLICE_LIT("Device.X.Int"), HM_SLICE_LIT("-5"), HM_CWMP_T_INT},
    {HM_SLICE_LIT("Device.X.Long"), HM_SLICE_LIT("-5000000000"), HM_CWMP_T_LONG},
    {HM_SLICE_LIT("Device.X.ULong"), HM_SLICE_LIT("18000000000"), HM_CWMP_T_ULONG},
    {HM_SLICE_LIT("Device.X.Time"), HM_SLICE_LIT("2026-01-01T00:00:00Z"), HM_CWMP_T_DATETIME},
    {HM_SLICE_LIT("Device.X.B64"), HM_SLICE_LIT("aGVtcw=="), HM_CWMP_T_BASE64},
    {HM_SLICE_LIT("Device.X.Str"), HM_SLICE_LIT("a<b & \"c\" 'd' >"), HM_CWMP_T_STRING},
};
static const struct hm_slice names[] = {HM_SLICE_LIT("Device.DeviceInfo."),
                                        HM_SLICE_LIT("Device.ManagementServer.URL")};

typedef void (*writer_fn)(struct hm_buf *b, const struct hm_cwmp_hdr *h);

static void w_grm(struct hm_buf *b, const struct hm_cwmp_hdr *h) { hm_cwmp_write_get_rpc_methods(b, h); }
static void w_spv(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_spv(b, h, params, HM_ARRAY_SIZE(params), HM_SLICE_LIT("hems-42"));
}
static void w_gpv(struct hm_buf *b, const struct hm_cwmp_hdr *h) { hm_cwmp_write_gpv(b, h, names, 2); }
static void w_gpn(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_gpn(b, h, HM_SLICE_LIT("Device."), true);
}
static void w_spa(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_attr a[2] = {{.name = HM_SLICE_LIT("Device.DeviceInfo.SoftwareVersion"),
                                 .notification_change = true, .notification = 2},
                                {.name = HM_SLICE_LIT("Device.X."), .access_list_change = true,
                                 .n_access = 1, .access = {HM_SLICE_LIT("Subscriber")}}};
    hm_cwmp_write_spa(b, h, a, 2);
}
static void w_gpa(struct hm_buf *b, const struct hm_cwmp_hdr *h) { hm_cwmp_write_gpa(b, h, names, 2); }
static void w_add(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_add_object(b, h, HM_SLICE_LIT("Device.FAP.PerfMgmt.Config."), HM_SLICE_LIT("k1"));
}
static void w_del(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_delete_object(b, h, HM_SLICE_LIT("Device.FAP.PerfMgmt.Config.2."),
                                HM_SLICE_LIT(""));
}
static void w_reboot(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_reboot(b, h, HM_SLICE_LIT("rb-1"));
}
static void w_download(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_download d = {.command_key = HM_SLICE_LIT("dl-1"),
                                 .file_type = HM_SLICE_LIT("3 Vendor Configuration File"),
                                 .url = HM_SLICE_LIT("https://hems.example/cfg?a=1&b=2"),
                                 .file_size = 1234};
    hm_cwmp_write_download(b, h, &d);
}
static void w_upload(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_upload u = {.command_key = HM_SLICE_LIT("ul-1"),
                               .file_type = HM_SLICE_LIT("2 Vendor Log File"),
                               .url = HM_SLICE_LIT("https://hems.example/log")};
    hm_cwmp_write_upload(b, h, &u);
}
static void w_fr(struct hm_buf *b, const struct hm_cwmp_hdr *h) { hm_cwmp_write_factory_reset(b, h); }
static void w_si(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_schedule_inform(b, h, 60, HM_SLICE_LIT("si"));
}
static void w_ir(struct hm_buf *b, const struct hm_cwmp_hdr *h) { hm_cwmp_write_inform_response(b, h); }
static void w_tcr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_empty(b, h, HM_CWMP_TRANSFER_COMPLETE_RESPONSE);
}
static void w_grmr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    static const struct hm_slice m[] = {HM_SLICE_LIT("Inform"), HM_SLICE_LIT("GetRPCMethods"),
                                        HM_SLICE_LIT("TransferComplete")};
    hm_cwmp_write_get_rpc_methods_response(b, h, m, 3);
}
static void w_rdr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_empty(b, h, HM_CWMP_REQUEST_DOWNLOAD_RESPONSE);
}
static void w_kr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_kicked_response(b, h, HM_SLICE_LIT("http://next.example/"));
}
static void w_fault(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_fault(b, h, 8005, HM_SLICE_LIT(""), NULL, 0);
}
static void w_cpe_fault(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_spv_fault f = {HM_SLICE_LIT("Device.X.Str"), 9007, HM_SLICE_LIT("")};
    hm_cwmp_write_fault(b, h, 9003, HM_SLICE_LIT(""), &f, 1);
}
static void w_inform(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_event ev[2] = {{HM_SLICE_LIT("0 BOOTSTRAP"), HM_SLICE_LIT("")},
                                  {HM_SLICE_LIT("M Reboot"), HM_SLICE_LIT("rb-1")}};
    struct hm_cwmp_inform in = {
        .dev = {HM_SLICE_LIT("Acme & Co"), HM_SLICE_LIT("00256D"), HM_SLICE_LIT("HeNB"),
                HM_SLICE_LIT("SN1")},
        .events = {ev, 2}, .max_envelopes = 1,
        .current_time = HM_SLICE_LIT("2026-11-27T00:00:00Z"),
        .params = {params, HM_ARRAY_SIZE(params)}};
    hm_cwmp_write_inform(b, h, &in);
}
static void w_gpvr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    hm_cwmp_write_gpv_response(b, h, params, HM_ARRAY_SIZE(params));
}
static void w_gpnr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_param_info i[2] = {{HM_SLICE_LIT("Device."), false},
                                      {HM_SLICE_LIT("Device.X"), true}};
    hm_cwmp_write_gpn_response(b, h, i, 2);
}
static void w_gpar(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_attr a = {.name = HM_SLICE_LIT("Device.X"), .notification = 1};
    hm_cwmp_write_gpa_response(b, h, &a, 1);
}
static void w_spvr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_status st = {.status = 1};
    hm_cwmp_write_status(b, h, HM_CWMP_SET_PARAMETER_VALUES_RESPONSE, &st);
}
static void w_aor(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_status st = {.instance_number = 3};
    hm_cwmp_write_status(b, h, HM_CWMP_ADD_OBJECT_RESPONSE, &st);
}
static void w_dlr(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_status st = {.status = 1};
    hm_cwmp_write_status(b, h, HM_CWMP_DOWNLOAD_RESPONSE, &st);
}
static void w_tc(struct hm_buf *b, const struct hm_cwmp_hdr *h)
{
    struct hm_cwmp_transfer_complete tc = {.command_key = HM_SLICE_LIT("dl-1"),
                                           .fault = {9010, HM_SLICE_LIT("boom")}};
    hm_cwmp_write_transfer_complete(b, h, &tc);
}

static const struct {
    const char *name;
    writer_fn fn;
    uint8_t method;
} writers[] = {
    {"GetRPCMethods", w_grm, HM_CWMP_GET_RPC_METHODS},
    {"SetParameterValues", w_spv, HM_CWMP_SET_PARAMETER_VALUES},
    {"GetParameterValues", w_gpv, HM_CWMP_GET_PARAMETER_VALUES},
    {"GetParameterNames", w_gpn, HM_CWMP_GET_PARAMETER_NAMES},
    {"SetParameterAttributes", w_spa, HM_CWMP_SET_PARAMETER_ATTRIBUTES},
    {"GetParameterAttributes", w_gpa, HM_CWMP_GET_PARAMETER_ATTRIBUTES},
    {"AddObject", w_add, HM_CWMP_ADD_OBJECT},
    {"DeleteObject", w_del, HM_CWMP_DELETE_OBJECT},
    {"Reboot", w_reboot, HM_CWMP_REBOOT},
    {"Download", w_download, HM_CWMP_DOWNLOAD},
    {"Upload", w_upload, HM_CWMP_UPLOAD},
    {"FactoryReset", w_fr, HM_CWMP_FACTORY_RESET},
    {"ScheduleInform", w_si, HM_CWMP_SCHEDULE_INFORM},
    {"InformResponse", w_ir, HM_CWMP_INFORM_RESPONSE},
    {"TransferCompleteResponse", w_tcr, HM_CWMP_TRANSFER_COMPLETE_RESPONSE},
    {"GetRPCMethodsResponse", w_grmr, HM_CWMP_GET_RPC_METHODS_RESPONSE},
    {"RequestDownloadResponse", w_rdr, HM_CWMP_REQUEST_DOWNLOAD_RESPONSE},
    {"KickedResponse", w_kr, HM_CWMP_KICKED_RESPONSE},
    {"Fault8005", w_fault, HM_CWMP_FAULT},
    {"Fault9003", w_cpe_fault, HM_CWMP_FAULT},
    {"Inform", w_inform, HM_CWMP_INFORM},
    {"GetParameterValuesResponse", w_gpvr, HM_CWMP_GET_PARAMETER_VALUES_RESPONSE},
    {"GetParameterNamesResponse", w_gpnr, HM_CWMP_GET_PARAMETER_NAMES_RESPONSE},
    {"GetParameterAttributesResponse", w_gpar, HM_CWMP_GET_PARAMETER_ATTRIBUTES_RESPONSE},
    {"SetParameterValuesResponse", w_spvr, HM_CWMP_SET_PARAMETER_VALUES_RESPONSE},
    {"AddObjectResponse", w_aor, HM_CWMP_ADD_OBJECT_RESPONSE},
    {"DownloadResponse", w_dlr, HM_CWMP_DOWNLOAD_RESPONSE},
    {"TransferComplete", w_tc, HM_CWMP_TRANSFER_COMPLETE},
};

static const uint8_t empty_methods[] = {
    HM_CWMP_TRANSFER_COMPLETE_RESPONSE, HM_CWMP_AUTONOMOUS_TRANSFER_COMPLETE_RESPONSE,
    HM_CWMP_REQUEST_DOWNLOAD_RESPONSE, HM_CWMP_DU_STATE_CHANGE_COMPLETE_RESPONSE,
    HM_CWMP_SET_PARAMETER_ATTRIBUTES_RESPONSE, HM_CWMP_REBOOT_RESPONSE,
    HM_CWMP_FACTORY_RESET_RESPONSE, HM_CWMP_SCHEDULE_INFORM_RESPONSE};

START_TEST(writers_validate_against_xsd)
{
    xml_init();
    for (int ver = HM_CWMP_V1_0; ver <= HM_CWMP_V1_2; ver++) {
        xmlSchemaPtr s = schema_for(ver);
        struct hm_cwmp_hdr h = {.ver = (uint8_t)ver, .id = HM_SLICE_LIT("id-<1>&"),
                                .hold_requests = ver == HM_CWMP_V1_1};
        struct hm_buf b = {0};
        for (size_t i = 0; i < HM_ARRAY_SIZE(writers); i++) {
            hm_buf_reset(&b);
            writers[i].fn(&b, &h);
            ck_assert_msg(validate(s, &b) == 0, "%s (ver %d) invalid:\n%.*s", writers[i].name,
                          ver, (int)b.len, b.base);
            struct hm_cwmp_msg m;
            int err = parse(b.base, b.len, &m);
            ck_assert_msg(err == 0, "%s: %s", writers[i].name, hm_strerror(err));
            ck_assert_int_eq(m.method, writers[i].method);
            ck_assert_int_eq(m.ver, ver);
            ck_assert(sl_eq(m.id, "id-<1>&"));
            ck_assert_int_eq(m.hold_requests, ver == HM_CWMP_V1_1);
        }
        for (size_t i = 0; i < HM_ARRAY_SIZE(empty_methods); i++) {
            if (empty_methods[i] == HM_CWMP_DU_STATE_CHANGE_COMPLETE_RESPONSE &&
                ver != HM_CWMP_V1_2)
                continue; /* software modules exist from CWMP 1.2 on */
            if (empty_methods[i] == HM_CWMP_AUTONOMOUS_TRANSFER_COMPLETE_RESPONSE &&
                ver == HM_CWMP_V1_0)
                continue; /* AutonomousTransferComplete exists from CWMP 1.1 on */
            hm_buf_reset(&b);
            hm_cwmp_write_empty(&b, &h, empty_methods[i]);
            ck_assert_msg(validate(s, &b) == 0, "%s invalid", hm_cwmp_method_name(empty_methods[i]));
        }
        if (ver == HM_CWMP_V1_2) {
            struct hm_cwmp_hdr h4 = {.ver = HM_CWMP_V1_2, .id = HM_SLICE_LIT("1"),
                                     .use_version = HM_SLICE_LIT("1.4")};
            hm_buf_reset(&b);
            hm_cwmp_write_inform_response(&b, &h4);
            ck_assert_int_eq(validate(s, &b), 0);
            hm_buf_reset(&b);
            hm_cwmp_write_fault(&b, &h4, 8006, HM_SLICE_LIT(""), NULL, 0);
            ck_assert_int_eq(validate(s, &b), 0);
        }
        /* The strict catalog makes a misspelt RPC fail: the validator is not vacuous. */
        hm_buf_reset(&b);
        hm_cwmp_write_reboot(&b, &h, HM_SLICE_LIT("x"));
        char *r = memmem(b.base, b.len, "cwmp:Reboot>", 12);
        ck_assert_ptr_nonnull(r);
        r[5] = 'X';
        r = memmem(r, b.len - (size_t)(r - b.base), "/cwmp:Reboot>", 13);
        r[6] = 'X';
        ck_assert_int_ne(validate(s, &b), 0);
        hm_buf_free(&b);
        xmlSchemaFree(s);
    }
}
END_TEST

START_TEST(sample_invalid_fails_schema)
{
    xml_init();
    xmlSchemaPtr s = schema_for(HM_CWMP_V1_0);
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/samples/SetParameterValues-1-0-INVALID.xml", HM_SHARED_DATA);
    struct hm_buf b = {0};
    char *x = slurp(path, &len);
    hm_buf_append(&b, x, len);
    ck_assert_int_ne(validate(s, &b), 0);
    /* Our parser is lenient about the missing ParameterKey but reads the list. */
    struct hm_cwmp_msg m;
    ck_assert_int_eq(parse(x, len, &m), 0);
    ck_assert_int_eq(m.method, HM_CWMP_SET_PARAMETER_VALUES);
    ck_assert_uint_eq(m.u.spv.params.n, 2);
    free(x);
    hm_buf_free(&b);
    xmlSchemaFree(s);
}
END_TEST

START_TEST(roundtrip_fields)
{
    struct hm_buf b = {0};
    struct hm_cwmp_hdr h = {.ver = HM_CWMP_V1_1, .id = HM_SLICE_LIT("42")};
    struct hm_cwmp_msg m;

    w_spv(&b, &h);
    ck_assert_int_eq(parse(b.base, b.len, &m), 0);
    ck_assert_uint_eq(m.u.spv.params.n, HM_ARRAY_SIZE(params));
    for (size_t i = 0; i < HM_ARRAY_SIZE(params); i++) {
        ck_assert(hm_slice_eq(m.u.spv.params.v[i].name, params[i].name));
        ck_assert(hm_slice_eq(m.u.spv.params.v[i].value, params[i].value));
        ck_assert_int_eq(m.u.spv.params.v[i].type, params[i].type);
    }
    ck_assert(sl_eq(m.u.spv.parameter_key, "hems-42"));

    hm_buf_reset(&b);
    w_download(&b, &h);
    ck_assert_int_eq(parse(b.base, b.len, &m), 0);
    ck_assert(sl_eq(m.u.download.url, "https://hems.example/cfg?a=1&b=2"));
    ck_assert_uint_eq(m.u.download.file_size, 1234);

    hm_buf_reset(&b);
    w_spa(&b, &h);
    ck_assert_int_eq(parse(b.base, b.len, &m), 0);
    ck_assert_uint_eq(m.u.attrs.n, 2);
    ck_assert_uint_eq(m.u.attrs.v[0].notification, 2);
    ck_assert(m.u.attrs.v[0].notification_change);
    ck_assert_uint_eq(m.u.attrs.v[1].n_access, 1);
    ck_assert(sl_eq(m.u.attrs.v[1].access[0], "Subscriber"));

    hm_buf_reset(&b);
    w_cpe_fault(&b, &h);
    ck_assert_int_eq(parse(b.base, b.len, &m), 0);
    ck_assert_uint_eq(m.u.fault.code, 9003);
    ck_assert_uint_eq(m.u.fault.spv_faults.n, 1);
    ck_assert_uint_eq(m.u.fault.spv_faults.v[0].code, 9007);
    ck_assert(sl_eq(m.u.fault.spv_faults.v[0].string, "Invalid parameter value"));

    hm_buf_reset(&b);
    w_gpn(&b, &h);
    ck_assert_int_eq(parse(b.base, b.len, &m), 0);
    ck_assert(sl_eq(m.u.gpn.path, "Device."));
    ck_assert(m.u.gpn.next_level);
    hm_buf_free(&b);
}
END_TEST

#define ENV(ns, hdr, body)                                                                   \
    "<E:Envelope xmlns:E=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:c=\"" ns "\""  \
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"                              \
    "<E:Header>" hdr "</E:Header><E:Body>" body "</E:Body></E:Envelope>"
#define NS10 "urn:dslforum-org:cwmp-1-0"

static int parse_str(const char *s, struct hm_cwmp_msg *m)
{
    return parse(s, strlen(s), m);
}

START_TEST(lenient_and_strict)
{
    struct hm_cwmp_msg m;
    /* child order free, no arrayType, no xsi:type, TRUE boolean, NoMoreRequests ignored */
    ck_assert_int_eq(parse_str(ENV(NS10, "<c:ID>7</c:ID><c:NoMoreRequests>1</c:NoMoreRequests>",
                                   "<c:GetParameterNamesResponse><ParameterList>"
                                   "<ParameterInfoStruct><Writable> TRUE </Writable>"
                                   "<Name>A.</Name></ParameterInfoStruct>"
                                   "</ParameterList></c:GetParameterNamesResponse>"),
                               &m),
                     0);
    ck_assert_uint_eq(m.u.infos.n, 1);
    ck_assert(m.u.infos.v[0].writable);
    ck_assert(m.no_more_requests);
    ck_assert(sl_eq(m.id, "7"));

    /* cwmp-1-3 namespace tolerated, answered in 1-2; SessionTimeout read */
    ck_assert_int_eq(parse_str(ENV("urn:dslforum-org:cwmp-1-3",
                                   "<c:ID>1</c:ID><c:SessionTimeout>60</c:SessionTimeout>",
                                   "<c:RebootResponse/>"),
                               &m),
                     0);
    ck_assert_int_eq(m.ver, HM_CWMP_V1_2);
    ck_assert_int_eq(m.ns, HM_NS_CWMP_1_3);
    ck_assert_uint_eq(m.session_timeout, 60);

    /* unknown method: ENOTCWMP with the ID kept for the 8000 fault */
    ck_assert_int_eq(parse_str(ENV(NS10, "<c:ID>9</c:ID>", "<c:Frobnicate/>"), &m),
                     HM_ENOTCWMP);
    ck_assert(sl_eq(m.id, "9"));

    /* bad boolean, oversize name, huge number, missing required element */
    ck_assert_int_eq(parse_str(ENV(NS10, "", "<c:GetParameterNamesResponse><ParameterList>"
                                             "<ParameterInfoStruct><Name>A</Name><Writable>yes"
                                             "</Writable></ParameterInfoStruct></ParameterList>"
                                             "</c:GetParameterNamesResponse>"),
                               &m),
                     HM_EBADCWMP);
    char big[2048];
    memset(big, 'a', 257);
    big[257] = 0;
    char doc[4096];
    snprintf(doc, sizeof(doc),
             ENV(NS10, "", "<c:GetParameterValues><ParameterNames><string>%s</string>"
                           "</ParameterNames></c:GetParameterValues>"),
             big);
    ck_assert_int_eq(parse_str(doc, &m), HM_EBADCWMP);
    ck_assert_int_eq(parse_str(ENV(NS10, "", "<c:AddObjectResponse><InstanceNumber>4294967296"
                                             "</InstanceNumber></c:AddObjectResponse>"),
                               &m),
                     HM_EBADCWMP);
    ck_assert_int_eq(parse_str(ENV(NS10, "", "<c:Inform><Event/></c:Inform>"), &m), HM_EBADCWMP);

    /* not SOAP */
    ck_assert_int_eq(parse_str("<a/>", &m), HM_EBADSOAP);
    ck_assert_int_eq(parse_str(ENV(NS10, "", "<x:Inform xmlns:x=\"urn:other\"/>"), &m),
                     HM_EBADSOAP);
    /* empty POST */
    ck_assert_int_eq(parse_str(" \r\n", &m), 0);
    ck_assert_int_eq(m.method, HM_CWMP_EMPTY);
    /* unknown mustUnderstand header is flagged */
    ck_assert_int_eq(parse_str(ENV(NS10, "<z:Q xmlns:z=\"urn:z\" E:mustUnderstand=\"1\"/>",
                                   "<c:GetRPCMethods/>"),
                               &m),
                     0);
    ck_assert(m.must_understand);
    /* entity in a value lands in the arena */
    ck_assert_int_eq(parse_str(ENV(NS10, "", "<c:Reboot><CommandKey>a&amp;b&#x41;</CommandKey>"
                                             "</c:Reboot>"),
                               &m),
                     0);
    ck_assert(sl_eq(m.u.command_key, "a&bA"));
}
END_TEST

START_TEST(list_limit)
{
    struct hm_buf b = {0};
    struct hm_cwmp_hdr h = {.ver = HM_CWMP_V1_0, .id = HM_SLICE_LIT("1")};
    static struct hm_cwmp_param many[5000];
    for (size_t i = 0; i < 5000; i++)
        many[i] = (struct hm_cwmp_param){HM_SLICE_LIT("Device.A"), HM_SLICE_LIT("1"), 0};
    hm_cwmp_write_gpv_response(&b, &h, many, 4096);
    struct hm_cwmp_msg m;
    ck_assert_int_eq(parse(b.base, b.len, &m), 0);
    ck_assert_uint_eq(m.u.params.n, 4096);
    hm_buf_reset(&b);
    hm_cwmp_write_gpv_response(&b, &h, many, 4097);
    ck_assert_int_eq(parse(b.base, b.len, &m), HM_EXMLLIMIT);
    /* a small arena is a clean limit, not an overflow */
    struct hm_soap_arena a;
    static char small[4096];
    hm_soap_arena_init(&a, small, sizeof(small));
    ck_assert_int_eq(hm_cwmp_parse(b.base, b.len, &a, NULL, &m), HM_EXMLLIMIT);
    struct hm_cwmp_opts o = {.max_list = 10};
    hm_soap_arena_init(&a, arena_mem, sizeof(arena_mem));
    ck_assert_int_eq(hm_cwmp_parse(b.base, b.len, &a, &o, &m), HM_EXMLLIMIT);
    hm_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cwmp");
    TCase *tc = tcase_create("cwmp");
    tcase_add_test(tc, replay_captures);
    tcase_add_test(tc, capture_key_fields);
    tcase_add_test(tc, writers_validate_against_xsd);
    tcase_add_test(tc, sample_invalid_fails_schema);
    tcase_add_test(tc, roundtrip_fields);
    tcase_add_test(tc, lenient_and_strict);
    tcase_add_test(tc, list_limit);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
