#include "core/acs_task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/datamodel.h"
#include "core/util.h"
#include "storage/record.h"
#include "storage/store.h"

static const struct hm_dm *task_dm;
static hm_task_password_fn task_pw_fn;
static void *task_pw_ctx;

void hm_task_set_datamodel(const struct hm_dm *dm)
{
    task_dm = dm;
}

void hm_task_set_password_fn(hm_task_password_fn fn, void *ctx)
{
    task_pw_fn = fn;
    task_pw_ctx = ctx;
}

static const struct {
    const char *name;
    enum hm_task_kind kind;
    enum hm_cwmp_method resp;
} rpcs[] = {
    {"GetParameterValues", HM_TASK_GET_PARAM_VALUES, HM_CWMP_GET_PARAMETER_VALUES_RESPONSE},
    {"SetParameterValues", HM_TASK_SET_PARAM_VALUES, HM_CWMP_SET_PARAMETER_VALUES_RESPONSE},
    {"GetParameterNames", HM_TASK_GET_PARAM_NAMES, HM_CWMP_GET_PARAMETER_NAMES_RESPONSE},
    {"GetParameterAttributes", HM_TASK_GET_PARAM_ATTRS,
     HM_CWMP_GET_PARAMETER_ATTRIBUTES_RESPONSE},
    {"SetParameterAttributes", HM_TASK_SET_PARAM_ATTRS,
     HM_CWMP_SET_PARAMETER_ATTRIBUTES_RESPONSE},
    {"AddObject", HM_TASK_ADD_OBJECT, HM_CWMP_ADD_OBJECT_RESPONSE},
    {"DeleteObject", HM_TASK_DELETE_OBJECT, HM_CWMP_DELETE_OBJECT_RESPONSE},
    {"Reboot", HM_TASK_REBOOT, HM_CWMP_REBOOT_RESPONSE},
    {"FactoryReset", HM_TASK_FACTORY_RESET, HM_CWMP_FACTORY_RESET_RESPONSE},
    {"Download", HM_TASK_DOWNLOAD, HM_CWMP_DOWNLOAD_RESPONSE},
    {"Upload", HM_TASK_UPLOAD, HM_CWMP_UPLOAD_RESPONSE},
    {"ScheduleInform", HM_TASK_SCHEDULE_INFORM, HM_CWMP_SCHEDULE_INFORM_RESPONSE},
};

const char *hm_task_rpc_name(enum hm_task_kind kind)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(rpcs); i++)
        if (rpcs[i].kind == kind)
            return rpcs[i].name;
    return "?";
}

enum hm_cwmp_method hm_task_response_method(enum hm_task_kind kind)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(rpcs); i++)
        if (rpcs[i].kind == kind)
            return rpcs[i].resp;
    return HM_CWMP_NONE;
}

static const char *const xsi_names[] = {
    "xsd:string", "xsd:int",  "xsd:unsignedInt", "xsd:boolean", "xsd:dateTime",
    "xsd:base64", "xsd:long", "xsd:unsignedLong", "xsd:hexBinary",
};
static const enum hm_cwmp_type xsi_types[] = {
    HM_CWMP_T_STRING, HM_CWMP_T_INT,  HM_CWMP_T_UINT,  HM_CWMP_T_BOOL,      HM_CWMP_T_DATETIME,
    HM_CWMP_T_BASE64, HM_CWMP_T_LONG, HM_CWMP_T_ULONG, HM_CWMP_T_HEXBINARY,
};

static int xsi_lookup(const char *s)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(xsi_names); i++)
        if (strcmp(s, xsi_names[i]) == 0 || strcmp(s, xsi_names[i] + 4) == 0)
            return (int)i;
    return -1;
}

#define FAIL(...)                                                                            \
    do {                                                                                     \
        snprintf(err, errlen, __VA_ARGS__);                                                  \
        goto fail;                                                                           \
    } while (0)

static bool valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return false;
    return true;
}

static int names_array(json_t *in, json_t *out, const char *field, bool allow_empty, char *err,
                       size_t errlen)
{
    json_t *a = json_object_get(in, field);
    if (!json_is_array(a))
        FAIL("'%s' must be an array of parameter names", field);
    if (!allow_empty && json_array_size(a) == 0)
        FAIL("'%s' must not be empty", field);
    if (json_array_size(a) > 4096)
        FAIL("'%s' has more than 4096 entries", field);
    json_t *copy = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || !valid_name(json_string_value(v), 256)) {
            json_decref(copy);
            FAIL("'%s[%zu]' is not a parameter name (1-256 printable characters)", field, i);
        }
        if (task_dm && hm_dm_check_get(task_dm, json_string_value(v), err, errlen) < 0) {
            json_decref(copy);
            goto fail;
        }
        json_array_append(copy, v);
    }
    json_object_set_new(out, field, copy);
    return 0;
fail:
    return -EINVAL;
}

static int opt_string(json_t *in, json_t *out, const char *field, size_t max, bool required,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(in, field);
    if (!v) {
        if (required)
            FAIL("'%s' is required", field);
        json_object_set_new(out, field, json_string(""));
        return 0;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) > max)
        FAIL("'%s' must be a string of at most %zu bytes", field, max);
    if (required && !*json_string_value(v))
        FAIL("'%s' must not be empty", field);
    json_object_set(out, field, v);
    return 0;
fail:
    return -EINVAL;
}

/* As opt_string (optional), but leaves <field> out of <out> when absent. */
static int opt_present(json_t *in, json_t *out, const char *field, size_t max, char *err,
                       size_t errlen)
{
    return json_object_get(in, field) ? opt_string(in, out, field, max, false, err, errlen) : 0;
}

static int opt_uint(json_t *in, json_t *out, const char *field, char *err, size_t errlen)
{
    json_t *v = json_object_get(in, field);
    if (!v) {
        json_object_set_new(out, field, json_integer(0));
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 4294967295LL)
        FAIL("'%s' must be an integer in 0..4294967295", field);
    json_object_set(out, field, v);
    return 0;
fail:
    return -EINVAL;
}

static int version_one(json_t *v, uint16_t dev_version, char *err, size_t errlen)
{
    const char *n = json_string_value(v);
    return n && hm_dm_check_version(task_dm, n, dev_version, err, errlen) < 0 ? -EINVAL : 0;
}

int hm_task_check_version(json_t *in, uint16_t dev_version, char *err, size_t errlen)
{
    if (!task_dm || !dev_version || !json_is_object(in))
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(in, "names"), i, v)
    {
        if (version_one(v, dev_version, err, errlen) < 0)
            return -EINVAL;
    }
    json_array_foreach(json_object_get(in, "params"), i, v)
    {
        if (version_one(json_object_get(v, "name"), dev_version, err, errlen) < 0)
            return -EINVAL;
    }
    if (version_one(json_object_get(in, "object"), dev_version, err, errlen) < 0 ||
        version_one(json_object_get(in, "path"), dev_version, err, errlen) < 0)
        return -EINVAL;
    return 0;
}

int hm_task_validate(json_t *in, enum hm_task_kind *kind, struct hm_buf *args, char *err,
                     size_t errlen)
{
    json_t *out = json_object();
    if (!json_is_object(in))
        FAIL("the task must be a JSON object");
    const char *rpc = json_string_value(json_object_get(in, "rpc"));
    if (!rpc)
        FAIL("'rpc' (the CWMP method name) is required");
    size_t r = 0;
    while (r < HM_ARRAY_SIZE(rpcs) && strcmp(rpcs[r].name, rpc) != 0)
        r++;
    if (r == HM_ARRAY_SIZE(rpcs))
        FAIL("unknown rpc '%s'", rpc);
    *kind = rpcs[r].kind;
    json_object_set_new(out, "rpc", json_string(rpc));
    switch (*kind) {
    case HM_TASK_GET_PARAM_VALUES:
    case HM_TASK_GET_PARAM_ATTRS:
        if (names_array(in, out, "names", false, err, errlen) < 0)
            goto fail;
        break;
    case HM_TASK_SET_PARAM_VALUES: {
        json_t *a = json_object_get(in, "params");
        if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 4096)
            FAIL("'params' must be a non-empty array of {name, value, type}");
        json_t *copy = json_array();
        json_object_set_new(out, "params", copy);
        size_t i;
        json_t *p;
        json_array_foreach(a, i, p)
        {
            const char *n = json_string_value(json_object_get(p, "name"));
            json_t *v = json_object_get(p, "value");
            const char *t = json_string_value(json_object_get(p, "type"));
            if (!n || !valid_name(n, 256))
                FAIL("'params[%zu].name' is not a parameter name", i);
            if (n[strlen(n) - 1] == '.')
                FAIL("'params[%zu].name' names an object, not a parameter", i);
            char vbuf[32];
            const char *vs;
            if (json_is_string(v))
                vs = json_string_value(v);
            else if (json_is_integer(v))
                snprintf(vbuf, sizeof(vbuf), "%lld", (long long)json_integer_value(v)), vs = vbuf;
            else if (json_is_boolean(v))
                vs = json_is_true(v) ? "true" : "false";
            else
                FAIL("'params[%zu].value' must be a string, integer or boolean", i);
            if (strlen(vs) > 65535)
                FAIL("'params[%zu].value' is too long", i);
            int ti = t ? xsi_lookup(t) : json_is_integer(v) ? 1 : json_is_boolean(v) ? 3 : 0;
            if (ti < 0)
                FAIL("'params[%zu].type' '%s' is not an xsd type CWMP knows", i, t);
            if (task_dm) {
                /* The model decides the xsi:type; a type given in the request must agree. */
                enum hm_cwmp_type want = t ? xsi_types[ti] : HM_CWMP_T_NONE;
                if (hm_dm_check_set(task_dm, n, vs, &want, err, errlen) < 0)
                    goto fail;
                for (size_t k = 0; k < HM_ARRAY_SIZE(xsi_types); k++)
                    if (xsi_types[k] == want)
                        ti = (int)k;
            }
            json_t *e = json_object();
            json_object_set_new(e, "name", json_string(n));
            json_object_set_new(e, "value", json_string(vs));
            json_object_set_new(e, "type", json_string(xsi_names[ti]));
            json_array_append_new(copy, e);
        }
        if (opt_string(in, out, "parameter_key", 32, false, err, errlen) < 0)
            goto fail;
        break;
    }
    case HM_TASK_GET_PARAM_NAMES: {
        if (opt_string(in, out, "path", 256, false, err, errlen) < 0)
            goto fail;
        if (task_dm && hm_dm_check_get(task_dm, json_string_value(json_object_get(out, "path")),
                                       err, errlen) < 0)
            goto fail;
        json_t *nl = json_object_get(in, "next_level");
        if (nl && !json_is_boolean(nl))
            FAIL("'next_level' must be a boolean");
        json_object_set_new(out, "next_level", json_boolean(nl && json_is_true(nl)));
        break;
    }
    case HM_TASK_SET_PARAM_ATTRS: {
        json_t *a = json_object_get(in, "params");
        if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 4096)
            FAIL("'params' must be a non-empty array of {name, notification}");
        json_t *copy = json_array();
        json_object_set_new(out, "params", copy);
        size_t i;
        json_t *p;
        json_array_foreach(a, i, p)
        {
            const char *n = json_string_value(json_object_get(p, "name"));
            json_t *no = json_object_get(p, "notification");
            if (!n || !valid_name(n, 256))
                FAIL("'params[%zu].name' is not a parameter name", i);
            if (task_dm && hm_dm_check_get(task_dm, n, err, errlen) < 0)
                goto fail;
            if (!json_is_integer(no) || json_integer_value(no) < 0 ||
                json_integer_value(no) > 2)
                FAIL("'params[%zu].notification' must be 0 (off), 1 (passive) or 2 (active)",
                     i);
            json_t *e = json_object();
            json_object_set_new(e, "name", json_string(n));
            json_object_set(e, "notification", no);
            json_array_append_new(copy, e);
        }
        break;
    }
    case HM_TASK_ADD_OBJECT:
    case HM_TASK_DELETE_OBJECT: {
        if (opt_string(in, out, "object", 256, true, err, errlen) < 0)
            goto fail;
        const char *o = json_string_value(json_object_get(out, "object"));
        if (o[strlen(o) - 1] != '.')
            FAIL("'object' must be an object path ending with '.'");
        if (*kind == HM_TASK_DELETE_OBJECT && (strlen(o) < 3 || o[strlen(o) - 2] < '0' ||
                                               o[strlen(o) - 2] > '9'))
            FAIL("'object' must name an instance (…​.<n>.) for DeleteObject");
        if (opt_string(in, out, "parameter_key", 32, false, err, errlen) < 0)
            goto fail;
        if (task_dm && hm_dm_check_object(task_dm, o, *kind == HM_TASK_ADD_OBJECT, err, errlen) < 0)
            goto fail;
        break;
    }
    case HM_TASK_REBOOT:
    case HM_TASK_FACTORY_RESET:
        break;
    case HM_TASK_DOWNLOAD:
    case HM_TASK_UPLOAD:
        if (opt_string(in, out, "file_type", 64, true, err, errlen) < 0 ||
            opt_string(in, out, "url", 256, true, err, errlen) < 0 ||
            opt_string(in, out, "username", 256, false, err, errlen) < 0 ||
            opt_string(in, out, "password", 256, false, err, errlen) < 0 ||
            opt_uint(in, out, "delay_seconds", err, errlen) < 0)
            goto fail;
        if (*kind == HM_TASK_DOWNLOAD &&
            (opt_uint(in, out, "file_size", err, errlen) < 0 ||
             opt_string(in, out, "target_file_name", 256, false, err, errlen) < 0 ||
             /* set by hm_files_task_resolve() (core/files.h) for an uploaded file */
             opt_present(in, out, "file", 128, err, errlen) < 0 ||
             opt_present(in, out, "sha256", 64, err, errlen) < 0 ||
             opt_present(in, out, "cred_id", 64, err, errlen) < 0))
            goto fail;
        if (!json_object_get(in, "file") &&
            (json_object_get(in, "sha256") || json_object_get(in, "cred_id")))
            FAIL("'sha256' and 'cred_id' come from an uploaded 'file' only");
        break;
    case HM_TASK_SCHEDULE_INFORM:
        if (opt_uint(in, out, "delay_seconds", err, errlen) < 0)
            goto fail;
        if (json_integer_value(json_object_get(out, "delay_seconds")) == 0)
            FAIL("'delay_seconds' must be at least 1");
        break;
    }
    char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    hm_buf_append_str(args, s);
    free(s);
    json_decref(out);
    return 0;
fail:
    json_decref(out);
    return -EINVAL;
}

static struct hm_slice jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? hm_slice(json_string_value(v), json_string_length(v))
                             : hm_slice("", 0);
}

static uint32_t juint(json_t *o, const char *k)
{
    return (uint32_t)json_integer_value(json_object_get(o, k));
}

int hm_task_write_rpc(struct hm_buf *out, const struct hm_cwmp_hdr *h, enum hm_task_kind kind,
                      struct hm_slice args, uint64_t seq)
{
    json_t *a = json_loadb(args.ptr, args.len, 0, NULL);
    if (!json_is_object(a)) {
        json_decref(a);
        return -EINVAL;
    }
    char ck[32];
    int ckn = snprintf(ck, sizeof(ck), "task-%llu", (unsigned long long)seq);
    struct hm_slice cks = hm_slice(ck, (size_t)ckn);
    int rc = 0;
    switch (kind) {
    case HM_TASK_GET_PARAM_VALUES:
    case HM_TASK_GET_PARAM_ATTRS: {
        json_t *n = json_object_get(a, "names");
        size_t cnt = json_array_size(n);
        struct hm_slice *names = hm_xcalloc(cnt ? cnt : 1, sizeof(*names));
        for (size_t i = 0; i < cnt; i++) {
            json_t *v = json_array_get(n, i);
            names[i] = hm_slice(json_string_value(v), json_string_length(v));
        }
        if (kind == HM_TASK_GET_PARAM_VALUES)
            hm_cwmp_write_gpv(out, h, names, cnt);
        else
            hm_cwmp_write_gpa(out, h, names, cnt);
        free(names);
        break;
    }
    case HM_TASK_SET_PARAM_VALUES: {
        json_t *p = json_object_get(a, "params");
        size_t cnt = json_array_size(p);
        struct hm_cwmp_param *ps = hm_xcalloc(cnt ? cnt : 1, sizeof(*ps));
        for (size_t i = 0; i < cnt; i++) {
            json_t *e = json_array_get(p, i);
            ps[i].name = jstr(e, "name");
            ps[i].value = jstr(e, "value");
            int ti = xsi_lookup(json_string_value(json_object_get(e, "type")) ?: "");
            ps[i].type = (uint8_t)(ti < 0 ? HM_CWMP_T_STRING : xsi_types[ti]);
        }
        hm_cwmp_write_spv(out, h, ps, cnt, jstr(a, "parameter_key"));
        free(ps);
        break;
    }
    case HM_TASK_GET_PARAM_NAMES:
        hm_cwmp_write_gpn(out, h, jstr(a, "path"),
                          json_is_true(json_object_get(a, "next_level")));
        break;
    case HM_TASK_SET_PARAM_ATTRS: {
        json_t *p = json_object_get(a, "params");
        size_t cnt = json_array_size(p);
        struct hm_cwmp_attr *at = hm_xcalloc(cnt ? cnt : 1, sizeof(*at));
        for (size_t i = 0; i < cnt; i++) {
            json_t *e = json_array_get(p, i);
            at[i].name = jstr(e, "name");
            at[i].notification_change = true;
            at[i].notification = (uint8_t)juint(e, "notification");
        }
        hm_cwmp_write_spa(out, h, at, cnt);
        free(at);
        break;
    }
    case HM_TASK_ADD_OBJECT:
        hm_cwmp_write_add_object(out, h, jstr(a, "object"), jstr(a, "parameter_key"));
        break;
    case HM_TASK_DELETE_OBJECT:
        hm_cwmp_write_delete_object(out, h, jstr(a, "object"), jstr(a, "parameter_key"));
        break;
    case HM_TASK_REBOOT:
        hm_cwmp_write_reboot(out, h, cks);
        break;
    case HM_TASK_FACTORY_RESET:
        hm_cwmp_write_factory_reset(out, h);
        break;
    case HM_TASK_DOWNLOAD: {
        /* An uploaded file's password is derived here, never stored with the task. */
        char pw[72];
        struct hm_slice cred = jstr(a, "cred_id");
        int pl = cred.len && task_pw_fn ? task_pw_fn(task_pw_ctx, cred, pw, sizeof(pw)) : -1;
        struct hm_cwmp_download d = {
            .command_key = cks,
            .file_type = jstr(a, "file_type"),
            .url = jstr(a, "url"),
            .username = jstr(a, "username"),
            .password = pl > 0 ? hm_slice(pw, (size_t)pl) : jstr(a, "password"),
            .target_file_name = jstr(a, "target_file_name"),
            .file_size = juint(a, "file_size"),
            .delay_seconds = juint(a, "delay_seconds"),
        };
        hm_cwmp_write_download(out, h, &d);
        break;
    }
    case HM_TASK_UPLOAD: {
        struct hm_cwmp_upload u = {
            .command_key = cks,
            .file_type = jstr(a, "file_type"),
            .url = jstr(a, "url"),
            .username = jstr(a, "username"),
            .password = jstr(a, "password"),
            .delay_seconds = juint(a, "delay_seconds"),
        };
        hm_cwmp_write_upload(out, h, &u);
        break;
    }
    case HM_TASK_SCHEDULE_INFORM:
        hm_cwmp_write_schedule_inform(out, h, juint(a, "delay_seconds"), cks);
        break;
    default:
        rc = -EINVAL;
    }
    json_decref(a);
    return rc;
}

json_t *hm_json_slice(struct hm_slice s)
{
    return json_stringn(s.ptr ? s.ptr : "", s.len);
}

void hm_task_result_json(struct hm_buf *out, const struct hm_cwmp_msg *m)
{
    json_t *r = json_object();
    switch (m->method) {
    case HM_CWMP_FAULT: {
        json_t *f = json_object();
        json_object_set_new(f, "code", json_integer(m->u.fault.code));
        json_object_set_new(f, "string", hm_json_slice(m->u.fault.string));
        if (m->u.fault.spv_faults.n) {
            json_t *a = json_array();
            for (uint32_t i = 0; i < m->u.fault.spv_faults.n; i++) {
                const struct hm_cwmp_spv_fault *s = &m->u.fault.spv_faults.v[i];
                json_t *e = json_object();
                json_object_set_new(e, "name", hm_json_slice(s->name));
                json_object_set_new(e, "code", json_integer(s->code));
                json_object_set_new(e, "string", hm_json_slice(s->string));
                json_array_append_new(a, e);
            }
            json_object_set_new(f, "params", a);
        }
        json_object_set_new(r, "fault", f);
        break;
    }
    case HM_CWMP_GET_PARAMETER_VALUES_RESPONSE: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < m->u.params.n; i++) {
            const struct hm_cwmp_param *p = &m->u.params.v[i];
            json_t *e = json_object();
            json_object_set_new(e, "name", hm_json_slice(p->name));
            json_object_set_new(e, "value", hm_json_slice(p->value));
            json_object_set_new(e, "type", json_string(hm_cwmp_type_xsi(p->type)));
            json_array_append_new(a, e);
        }
        json_object_set_new(r, "params", a);
        break;
    }
    case HM_CWMP_GET_PARAMETER_NAMES_RESPONSE: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < m->u.infos.n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "name", hm_json_slice(m->u.infos.v[i].name));
            json_object_set_new(e, "writable", json_boolean(m->u.infos.v[i].writable));
            json_array_append_new(a, e);
        }
        json_object_set_new(r, "params", a);
        break;
    }
    case HM_CWMP_GET_PARAMETER_ATTRIBUTES_RESPONSE: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < m->u.attrs.n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "name", hm_json_slice(m->u.attrs.v[i].name));
            json_object_set_new(e, "notification", json_integer(m->u.attrs.v[i].notification));
            json_array_append_new(a, e);
        }
        json_object_set_new(r, "params", a);
        break;
    }
    case HM_CWMP_SET_PARAMETER_VALUES_RESPONSE:
    case HM_CWMP_DELETE_OBJECT_RESPONSE:
    case HM_CWMP_DOWNLOAD_RESPONSE:
    case HM_CWMP_UPLOAD_RESPONSE:
        json_object_set_new(r, "status", json_integer(m->u.status.status));
        break;
    case HM_CWMP_ADD_OBJECT_RESPONSE:
        json_object_set_new(r, "status", json_integer(m->u.status.status));
        json_object_set_new(r, "instance", json_integer(m->u.status.instance_number));
        break;
    case HM_CWMP_TRANSFER_COMPLETE: {
        const struct hm_cwmp_transfer_complete *t = &m->u.transfer_complete;
        json_object_set_new(r, "transfer_complete", json_true());
        json_object_set_new(r, "start_time", hm_json_slice(t->start_time));
        json_object_set_new(r, "complete_time", hm_json_slice(t->complete_time));
        if (t->fault.code) {
            json_t *f = json_object();
            json_object_set_new(f, "code", json_integer(t->fault.code));
            json_object_set_new(f, "string", hm_json_slice(t->fault.string));
            json_object_set_new(r, "fault", f);
        }
        break;
    }
    default:
        break;
    }
    char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    hm_buf_append_str(out, s);
    free(s);
    json_decref(r);
}

int hm_task_parse_command_key(struct hm_slice key, uint64_t *seq)
{
    if (key.len < 6 || key.len > 25 || memcmp(key.ptr, "task-", 5) != 0)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 5; i < key.len; i++) {
        if (key.ptr[i] < '0' || key.ptr[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(key.ptr[i] - '0');
    }
    *seq = v;
    return 0;
}

int hm_task_put(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                const struct hm_task_rec *t)
{
    char key[HM_STORE_MAX_KEY];
    int kl = hm_key_task(key, sizeof(key), dev, seq);
    size_t n = hm_rec_task_size(t);
    char *p = kl > 0 && n <= HM_STORE_MAX_VAL
                  ? hm_store_batch_put_reserve(b, HM_DB_TASKS, hm_slice(key, (size_t)kl), n)
                  : NULL;
    return p && hm_rec_task_encode(t, p, n) >= 0 ? 0 : -E2BIG;
}

int hm_task_put_new(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                    enum hm_task_kind kind, struct hm_slice args)
{
    uint64_t now = hm_now_ms();
    struct hm_task_rec t = {.kind = (uint8_t)kind, .state = HM_TASK_QUEUED,
                            .created_ms = now, .updated_ms = now, .args = args};
    return hm_task_put(b, dev, seq, &t);
}

int hm_task_put_request(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                        json_t *req, char *err, size_t errlen)
{
    enum hm_task_kind kind;
    struct hm_buf args = {0};
    int r = hm_task_validate(req, &kind, &args, err, errlen);
    json_decref(req);
    if (r == 0)
        r = hm_task_put_new(b, dev, seq, kind, hm_buf_slice(&args));
    hm_buf_free(&args);
    return r;
}

void hm_task_param_add(json_t *params, const char *prefix, const char *rel, json_t *value,
                       const char *type)
{
    char name[300];
    snprintf(name, sizeof(name), "%s%s", prefix, rel);
    json_array_append_new(params, json_pack("{s:s,s:o,s:s}", "name", name, "value", value,
                                            "type", type));
}
