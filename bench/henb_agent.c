/*
 * Simulated HeNB TR-069 agent: see bench/henb_agent.h.
 */
#include "bench/henb_agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bug.h"
#include "core/err.h"

/* ---- model ------------------------------------------------------------------------ */

static int cmp_param(const void *x, const void *y)
{
    const struct hm_henb_param *a = x, *b = y;
    size_t n = HM_MIN(a->name.len, b->name.len);
    int c = memcmp(a->name.ptr, b->name.ptr, n);
    return c ? c : (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

static uint8_t csv_type(struct hm_slice t)
{
    if (hm_slice_eq_lit(t, "xsd:unsignedInt"))
        return HM_CWMP_T_UINT;
    if (hm_slice_eq_lit(t, "xsd:int"))
        return HM_CWMP_T_INT;
    if (hm_slice_eq_lit(t, "xsd:boolean"))
        return HM_CWMP_T_BOOL;
    if (hm_slice_eq_lit(t, "xsd:dateTime"))
        return HM_CWMP_T_DATETIME;
    if (hm_slice_eq_lit(t, "xsd:long"))
        return HM_CWMP_T_LONG;
    if (hm_slice_eq_lit(t, "xsd:unsignedLong"))
        return HM_CWMP_T_ULONG;
    if (hm_slice_eq_lit(t, "xsd:base64"))
        return HM_CWMP_T_BASE64;
    return HM_CWMP_T_STRING;
}

int hm_henb_model_load(struct hm_henb_model *m, const char *csv_path)
{
    int err = 0;
    char *raw = NULL;
    FILE *f = fopen(csv_path, "rb");
    memset(m, 0, sizeof(*m));
    if (!f)
        return -errno;
    if (fseek(f, 0, SEEK_END) != 0) {
        err = -errno;
        goto out;
    }
    long size = ftell(f);
    if (size <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        err = HM_EBADCONF;
        goto out;
    }
    raw = hm_xmalloc((size_t)size + 1);
    if (fread(raw, 1, (size_t)size, f) != (size_t)size) {
        err = -EIO;
        goto out;
    }
    raw[size] = '\n';
    size_t lines = 0;
    for (long i = 0; i <= size; i++)
        lines += raw[i] == '\n';
    /* Names gain a '.' for objects: at most one byte per line more than the file. */
    m->text = hm_xmalloc((size_t)size + lines + 1);
    m->params = hm_xcalloc(lines, sizeof(*m->params));
    char *t = m->text;
    const char *p = raw, *end = raw + size + 1;
    bool header = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        struct hm_slice col[5];
        const char *c = p;
        int nc = 0;
        while (nc < 5) {
            const char *comma = memchr(c, ',', (size_t)(nl - c));
            const char *ce = comma ? comma : nl;
            if (ce > c && ce[-1] == '\r')
                ce--;
            col[nc++] = hm_slice(c, (size_t)(ce - c));
            if (!comma)
                break;
            c = comma + 1;
        }
        p = nl + 1;
        if (header || nc == 1) {
            header = false;
            continue;
        }
        if (nc != 5 || !col[0].len) {
            err = HM_EBADCONF;
            goto out;
        }
        struct hm_henb_param *pp = &m->params[m->n++];
        bool object = hm_slice_eq_lit(col[1], "true");
        memcpy(t, col[0].ptr, col[0].len);
        pp->name = hm_slice(t, col[0].len + object);
        t += col[0].len;
        if (object)
            *t++ = '.';
        memcpy(t, col[3].ptr, col[3].len);
        pp->value = hm_slice(t, col[3].len);
        t += col[3].len;
        pp->object = object;
        pp->writable = hm_slice_eq_lit(col[2], "true");
        pp->type = object ? HM_CWMP_T_NONE : csv_type(col[4]);
    }
    if (m->n == 0 || m->n > UINT16_MAX) {
        err = HM_EBADCONF;
        goto out;
    }
    qsort(m->params, m->n, sizeof(*m->params), cmp_param);
out:
    free(raw);
    fclose(f);
    if (err)
        hm_henb_model_free(m);
    return err;
}

void hm_henb_model_free(struct hm_henb_model *m)
{
    free(m->params);
    free(m->text);
    memset(m, 0, sizeof(*m));
}

/* First index whose name is >= <name>. */
static uint32_t lower_bound(const struct hm_henb_model *m, struct hm_slice name)
{
    uint32_t lo = 0, hi = m->n;
    struct hm_henb_param key = {.name = name};
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cmp_param(&m->params[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int hm_henb_model_find(const struct hm_henb_model *m, struct hm_slice name)
{
    uint32_t i = lower_bound(m, name);
    return i < m->n && hm_slice_eq(m->params[i].name, name) ? (int)i : -1;
}

static bool has_prefix(struct hm_slice s, struct hm_slice prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.ptr, prefix.ptr, prefix.len) == 0);
}

/* ---- agent state ------------------------------------------------------------------ */

struct hm_slice hm_henb_agent_value(const struct hm_henb_agent *a, uint32_t idx)
{
    for (unsigned i = 0; i < a->n_over; i++)
        if (a->over[i].param == idx)
            return hm_slice(a->pool + a->over[i].off, a->over[i].len);
    return a->model->params[idx].value;
}

static void compact(struct hm_henb_agent *a)
{
    char tmp[HM_HENB_POOL];
    uint16_t used = 0;
    for (unsigned i = 0; i < a->n_over; i++) {
        memcpy(tmp + used, a->pool + a->over[i].off, a->over[i].len);
        a->over[i].off = used;
        used = (uint16_t)(used + a->over[i].len);
    }
    memcpy(a->pool, tmp, used);
    a->pool_used = used;
}

/* Returns 0, or -ENOSPC when the per-device override space is full. */
static int set_value(struct hm_henb_agent *a, uint32_t idx, struct hm_slice v)
{
    struct hm_henb_override *o = NULL;
    for (unsigned i = 0; i < a->n_over; i++)
        if (a->over[i].param == idx)
            o = &a->over[i];
    if (!o) {
        if (a->n_over >= HM_HENB_MAX_OVERRIDES)
            return -ENOSPC;
        o = &a->over[a->n_over++];
        *o = (struct hm_henb_override){(uint16_t)idx, a->pool_used, 0};
    }
    if (v.len <= o->len) {
        memcpy(a->pool + o->off, v.ptr, v.len);
        o->len = (uint16_t)v.len;
        return 0;
    }
    if ((size_t)(HM_HENB_POOL - a->pool_used) < v.len) {
        o->len = 0; /* its old bytes are garbage now: let compaction reclaim them */
        compact(a);
        if ((size_t)(HM_HENB_POOL - a->pool_used) < v.len)
            return -ENOSPC;
    }
    memcpy(a->pool + a->pool_used, v.ptr, v.len);
    o->off = a->pool_used;
    o->len = (uint16_t)v.len;
    a->pool_used = (uint16_t)(a->pool_used + v.len);
    return 0;
}

static void copy_key(char *dst, size_t cap, struct hm_slice s)
{
    size_t n = HM_MIN(s.len, cap - 1);
    memcpy(dst, s.ptr, n);
    dst[n] = 0;
}

static void set_named(struct hm_henb_agent *a, const char *name, struct hm_slice v)
{
    int i = hm_henb_model_find(a->model, hm_slice_cstr(name));
    if (i >= 0 && set_value(a, (uint32_t)i, v) != 0)
        HM_BUG_ON(1); /* fresh agents have room */
}

/* Records <key> as the applied ParameterKey; -ENOSPC when the overrides are full. */
static int set_param_key(struct hm_henb_agent *a, struct hm_slice key)
{
    int i = hm_henb_model_find(a->model, HM_SLICE_LIT("Device.ManagementServer.ParameterKey"));
    if (i >= 0 && set_value(a, (uint32_t)i, key) != 0)
        return -ENOSPC;
    copy_key(a->parameter_key, sizeof(a->parameter_key), key);
    return 0;
}

static void reset_config(struct hm_henb_agent *a)
{
    char url[64];
    a->n_over = 0;
    a->pool_used = 0;
    a->n_added = 0;
    a->parameter_key[0] = 0;
    memset(&a->pm, 0, sizeof(a->pm));
    set_named(a, "Device.DeviceInfo.SerialNumber", hm_slice_cstr(a->serial));
    int n = snprintf(url, sizeof(url), "http://10.%u.%u.%u:7547/%s", (a->next_id >> 16) & 255,
                     (a->next_id >> 8) & 255, a->next_id & 255, a->serial);
    set_named(a, "Device.ManagementServer.ConnectionRequestURL", hm_slice(url, (size_t)n));
}

void hm_henb_agent_init(struct hm_henb_agent *a, const struct hm_henb_model *m, uint32_t index,
                        enum hm_cwmp_ver ver)
{
    memset(a, 0, sizeof(*a));
    a->model = m;
    a->ver = (uint8_t)ver;
    a->next_id = index;
    snprintf(a->serial, sizeof(a->serial), "HENB%06u", index % 1000000u);
    a->events = HM_HENB_EV_BOOTSTRAP | HM_HENB_EV_BOOT;
    reset_config(a);
}

/* ---- messages --------------------------------------------------------------------- */

static const char *const forced[] = {
    "Device.RootDataModelVersion",
    "Device.DeviceInfo.HardwareVersion",
    "Device.DeviceInfo.SoftwareVersion",
    "Device.DeviceInfo.ProvisioningCode",
    "Device.ManagementServer.ParameterKey",
    "Device.ManagementServer.ConnectionRequestURL",
    "Device.Services.FAPService.1.FAPControl.LTE.OpState",
    "Device.Services.FAPService.1.FAPControl.LTE.RFTxStatus",
};

static struct hm_slice model_value(const struct hm_henb_agent *a, const char *name)
{
    int i = hm_henb_model_find(a->model, hm_slice_cstr(name));
    return i < 0 ? hm_slice(NULL, 0) : hm_henb_agent_value(a, (uint32_t)i);
}

static struct hm_cwmp_hdr own_hdr(struct hm_henb_agent *a, char *idbuf, size_t cap)
{
    int n = snprintf(idbuf, cap, "%s-%u", a->serial, a->next_id++);
    return (struct hm_cwmp_hdr){.ver = a->ver, .id = hm_slice(idbuf, (size_t)n)};
}

size_t hm_henb_agent_events(const struct hm_henb_agent *a, uint32_t events,
                            struct hm_cwmp_event *ev)
{
    static const struct {
        uint32_t bit;
        const char *code;
    } codes[] = {
        {HM_HENB_EV_BOOTSTRAP, "0 BOOTSTRAP"},
        {HM_HENB_EV_BOOT, "1 BOOT"},
        {HM_HENB_EV_PERIODIC, "2 PERIODIC"},
        {HM_HENB_EV_SCHEDULED, "3 SCHEDULED"},
        {HM_HENB_EV_VALUE_CHANGE, "4 VALUE CHANGE"},
        {HM_HENB_EV_CONNECTION_REQUEST, "6 CONNECTION REQUEST"},
        {HM_HENB_EV_TRANSFER_COMPLETE, "7 TRANSFER COMPLETE"},
        {HM_HENB_EV_M_REBOOT, "M Reboot"},
        {HM_HENB_EV_M_DOWNLOAD, "M Download"},
        {HM_HENB_EV_M_SCHEDULE_INFORM, "M ScheduleInform"},
        {HM_HENB_EV_M_UPLOAD, "M Upload"},
    };
    HM_BUILD_ASSERT(HM_ARRAY_SIZE(codes) == HM_HENB_MAX_EVENTS);
    size_t n = 0;
    for (size_t i = 0; i < HM_ARRAY_SIZE(codes); i++) {
        if (!(events & codes[i].bit))
            continue;
        const char *key = "";
        if (codes[i].bit == HM_HENB_EV_M_REBOOT)
            key = a->reboot_key;
        else if (codes[i].bit & (HM_HENB_EV_M_DOWNLOAD | HM_HENB_EV_M_UPLOAD))
            key = a->transfer_key;
        else if (codes[i].bit == HM_HENB_EV_M_SCHEDULE_INFORM)
            key = a->sched_key;
        ev[n++] = (struct hm_cwmp_event){hm_slice_cstr(codes[i].code), hm_slice_cstr(key)};
    }
    return n;
}

void hm_henb_agent_inform(struct hm_henb_agent *a, struct hm_buf *out)
{
    struct hm_cwmp_event ev[HM_HENB_MAX_EVENTS];
    struct hm_cwmp_param params[HM_ARRAY_SIZE(forced)];
    size_t np = 0;
    size_t nev = hm_henb_agent_events(a, a->events ? a->events : HM_HENB_EV_PERIODIC, ev);
    for (size_t i = 0; i < HM_ARRAY_SIZE(forced); i++) {
        int k = hm_henb_model_find(a->model, hm_slice_cstr(forced[i]));
        if (k >= 0)
            params[np++] = (struct hm_cwmp_param){a->model->params[k].name,
                                                  hm_henb_agent_value(a, (uint32_t)k),
                                                  a->model->params[k].type};
    }
    char now[32], idbuf[48];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t nn = strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct hm_cwmp_inform in = {
        .dev = {model_value(a, "Device.DeviceInfo.Manufacturer"),
                model_value(a, "Device.DeviceInfo.ManufacturerOUI"),
                model_value(a, "Device.DeviceInfo.ProductClass"), hm_slice_cstr(a->serial)},
        .events = {ev, (uint32_t)nev},
        .max_envelopes = 1,
        .current_time = hm_slice(now, nn),
        .params = {params, (uint32_t)np}};
    struct hm_cwmp_hdr h = own_hdr(a, idbuf, sizeof(idbuf));
    hm_cwmp_write_inform(out, &h, &in);
}

/* Bump allocation from the bottom of the scratch arena (what parsing left free). */
static void *scratch_alloc(struct hm_soap_arena *s, size_t n)
{
    size_t pad = (8 - ((uintptr_t)(s->base + s->lo) & 7)) & 7;
    if (s->cap - s->lo - s->hi < pad + n)
        return NULL;
    void *p = s->base + s->lo + pad;
    s->lo += pad + n;
    return p;
}

static int fault(struct hm_buf *out, const struct hm_cwmp_hdr *h, uint32_t code)
{
    hm_cwmp_write_fault(out, h, code, hm_slice(NULL, 0), NULL, 0);
    return 1;
}

static int gpv(struct hm_henb_agent *a, const struct hm_cwmp_msg *m, const struct hm_cwmp_hdr *h,
               struct hm_soap_arena *s, struct hm_buf *out)
{
    const struct hm_henb_model *md = a->model;
    size_t cap = md->n, n = 0;
    struct hm_cwmp_param *v = scratch_alloc(s, cap * sizeof(*v));
    if (!v)
        return fault(out, h, 9004);
    for (uint32_t k = 0; k < m->u.names.n; k++) {
        struct hm_slice name = m->u.names.v[k];
        bool partial = name.len == 0 || name.ptr[name.len - 1] == '.';
        uint32_t i = lower_bound(md, name);
        if (!partial) {
            if (i >= md->n || !hm_slice_eq(md->params[i].name, name) || md->params[i].object)
                return fault(out, h, 9005);
        } else if (i >= md->n || !has_prefix(md->params[i].name, name)) {
            return fault(out, h, 9005);
        }
        for (; i < md->n && has_prefix(md->params[i].name, name); i++) {
            if (md->params[i].object)
                continue;
            if (n >= cap)
                return fault(out, h, 9004);
            v[n++] = (struct hm_cwmp_param){md->params[i].name, hm_henb_agent_value(a, i),
                                            md->params[i].type};
            if (!partial)
                break;
        }
    }
    hm_cwmp_write_gpv_response(out, h, v, n);
    return 1;
}

static int gpn(struct hm_henb_agent *a, const struct hm_cwmp_msg *m, const struct hm_cwmp_hdr *h,
               struct hm_soap_arena *s, struct hm_buf *out)
{
    const struct hm_henb_model *md = a->model;
    struct hm_slice path = m->u.gpn.path;
    bool next = m->u.gpn.next_level;
    struct hm_cwmp_param_info *v = scratch_alloc(s, md->n * sizeof(*v));
    size_t n = 0;
    if (!v)
        return fault(out, h, 9004);
    if (path.len && path.ptr[path.len - 1] != '.') {
        int i = hm_henb_model_find(md, path);
        if (i < 0)
            return fault(out, h, 9005);
        if (next)
            return fault(out, h, 9003);
        v[0] = (struct hm_cwmp_param_info){md->params[i].name, md->params[i].writable};
        hm_cwmp_write_gpn_response(out, h, v, 1);
        return 1;
    }
    if (path.len && hm_henb_model_find(md, path) < 0)
        return fault(out, h, 9005);
    for (uint32_t i = lower_bound(md, path); i < md->n && has_prefix(md->params[i].name, path);
         i++) {
        struct hm_slice rest = hm_slice(md->params[i].name.ptr + path.len,
                                        md->params[i].name.len - path.len);
        if (!rest.len)
            continue; /* the path itself */
        if (next) {
            const char *dot = memchr(rest.ptr, '.', rest.len);
            if (dot && dot != rest.ptr + rest.len - 1)
                continue; /* deeper than one level */
        }
        v[n++] = (struct hm_cwmp_param_info){md->params[i].name, md->params[i].writable};
    }
    hm_cwmp_write_gpn_response(out, h, v, n);
    return 1;
}

static bool valid_value(uint8_t type, struct hm_slice v)
{
    bool b;
    switch (type) {
    case HM_CWMP_T_UINT:
    case HM_CWMP_T_ULONG:
    case HM_CWMP_T_INT:
    case HM_CWMP_T_LONG: {
        size_t i = 0;
        bool neg = v.len && v.ptr[0] == '-';
        if (neg && (type == HM_CWMP_T_UINT || type == HM_CWMP_T_ULONG))
            return false;
        i = neg;
        if (i >= v.len || v.len - i > (type == HM_CWMP_T_UINT || type == HM_CWMP_T_INT ? 10 : 20))
            return false;
        unsigned long long x = 0;
        for (; i < v.len; i++) {
            if (v.ptr[i] < '0' || v.ptr[i] > '9')
                return false;
            unsigned long long d = (unsigned long long)(v.ptr[i] - '0');
            if (x > (~0ULL - d) / 10)
                return false;
            x = x * 10 + d;
        }
        if (type == HM_CWMP_T_UINT)
            return x <= 4294967295ULL;
        if (type == HM_CWMP_T_INT)
            return neg ? x <= 2147483648ULL : x <= 2147483647ULL;
        if (type == HM_CWMP_T_LONG)
            return neg ? x <= 9223372036854775808ULL : x <= 9223372036854775807ULL;
        return true;
    }
    case HM_CWMP_T_BOOL:
        return hm_cwmp_parse_bool(v, &b) == 0;
    case HM_CWMP_T_DATETIME:
        return v.len >= 19 && v.ptr[4] == '-' && v.ptr[7] == '-' && v.ptr[10] == 'T' &&
               v.ptr[13] == ':' && v.ptr[16] == ':';
    default:
        return v.len <= 1024;
    }
}

/* ---- PM upload configuration (outside the model) ---- */

/* The leaf of a PM upload parameter ("URL", "Enable", ...) when <name> is one the agent keeps
 * (for a Config row: only an existing one), else an empty slice; *<known> tells whether the
 * name is in the PM area at all (then an unknown leaf or row is 9005). */
static struct hm_slice pm_leaf(const struct hm_henb_agent *a, struct hm_slice name, bool *known)
{
    static const char cfg[] = "FAP.PerfMgmt.Config.", fm[] = ".PerfMgmt.FileMgmt.";
    const char *e = name.ptr + name.len, *p;
    *known = false;
    static const char pmc[] = ".FAPControl.LTE.PMConfig";
    if (name.len > sizeof(pmc) - 1 && !memcmp(e - (sizeof(pmc) - 1), pmc, sizeof(pmc) - 1)) {
        *known = true;
        return HM_SLICE_LIT("PMConfig");
    }
    const char *c = memmem(name.ptr, name.len, cfg, sizeof(cfg) - 1);
    const char *f = memmem(name.ptr, name.len, fm, sizeof(fm) - 1);
    if (!c && !f)
        return hm_slice(NULL, 0);
    *known = true;
    if (c) {
        p = c + sizeof(cfg) - 1;
        unsigned inst = 0;
        while (p < e && *p >= '0' && *p <= '9' && inst < 100000)
            inst = inst * 10 + (unsigned)(*p++ - '0');
        if (p >= e || *p != '.' || inst == 0 || inst > a->pm.rows)
            return hm_slice(NULL, 0);
        p++;
    } else {
        p = f + sizeof(fm) - 1;
    }
    struct hm_slice leaf = hm_slice(p, (size_t)(e - p));
    static const char *const leaves[] = {"Enable", "PeriodicUploadEnable", "URL", "Username",
                                         "Password", "PeriodicUploadInterval",
                                         "PeriodicUploadTime", "Alias"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(leaves); i++)
        if (hm_slice_eq(leaf, hm_slice_cstr(leaves[i])))
            return leaf;
    return hm_slice(NULL, 0);
}

static bool pm_set(struct hm_henb_agent *a, struct hm_slice leaf, struct hm_slice v)
{
    char *dst = NULL;
    size_t cap = 0;
    if (hm_slice_eq_lit(leaf, "Enable") || hm_slice_eq_lit(leaf, "PeriodicUploadEnable")) {
        a->pm.enable = hm_slice_eq_lit(v, "true") || hm_slice_eq_lit(v, "1");
        return true;
    }
    if (hm_slice_eq_lit(leaf, "PeriodicUploadInterval")) {
        uint32_t n = 0;
        for (size_t i = 0; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9' && n < 100000000; i++)
            n = n * 10 + (uint32_t)(v.ptr[i] - '0');
        a->pm.interval_s = n;
        return true;
    }
    if (hm_slice_eq_lit(leaf, "URL"))
        dst = a->pm.url, cap = sizeof(a->pm.url);
    else if (hm_slice_eq_lit(leaf, "Username"))
        dst = a->pm.user, cap = sizeof(a->pm.user);
    else if (hm_slice_eq_lit(leaf, "Password"))
        dst = a->pm.password, cap = sizeof(a->pm.password);
    else
        return true; /* PeriodicUploadTime, Alias, PMConfig: accepted, not kept */
    if (v.len >= cap)
        return false;
    memcpy(dst, v.ptr, v.len);
    dst[v.len] = '\0';
    return true;
}

bool hm_henb_agent_pm(const struct hm_henb_agent *a, const char **url, const char **user,
                      const char **password)
{
    *url = a->pm.url;
    *user = a->pm.user;
    *password = a->pm.password;
    return a->pm.enable && a->pm.url[0];
}

static int spv(struct hm_henb_agent *a, const struct hm_cwmp_msg *m, const struct hm_cwmp_hdr *h,
               struct hm_soap_arena *s, struct hm_buf *out)
{
    const struct hm_henb_model *md = a->model;
    uint32_t n = m->u.spv.params.n, nf = 0;
    struct hm_cwmp_spv_fault *f = scratch_alloc(s, (n ? n : 1) * sizeof(*f));
    if (!f)
        return fault(out, h, 9004);
    for (uint32_t k = 0; k < n; k++) {
        const struct hm_cwmp_param *p = &m->u.spv.params.v[k];
        bool pm;
        struct hm_slice leaf = pm_leaf(a, p->name, &pm);
        if (pm) {
            if (!leaf.len)
                f[nf++] = (struct hm_cwmp_spv_fault){p->name, 9005, hm_slice(NULL, 0)};
            continue;
        }
        int i = hm_henb_model_find(md, p->name);
        uint32_t code = 0;
        if (i < 0 || md->params[i].object)
            code = 9005;
        else if (!md->params[i].writable)
            code = 9008;
        else if (p->type != HM_CWMP_T_NONE && p->type != md->params[i].type)
            code = 9006;
        else if (!valid_value(md->params[i].type, p->value))
            code = 9007;
        if (code)
            f[nf++] = (struct hm_cwmp_spv_fault){p->name, code, hm_slice(NULL, 0)};
    }
    if (nf) {
        hm_cwmp_write_fault(out, h, 9003, hm_slice(NULL, 0), f, nf);
        return 1;
    }
    /* SPV is atomic: apply to a copy, keep it only if every value fits. */
    struct hm_henb_agent next = *a;
    for (uint32_t k = 0; k < n; k++) {
        const struct hm_cwmp_param *p = &m->u.spv.params.v[k];
        bool pm;
        struct hm_slice leaf = pm_leaf(a, p->name, &pm);
        if (pm) {
            if (!pm_set(&next, leaf, p->value))
                return fault(out, h, 9007);
            continue;
        }
        if (set_value(&next, (uint32_t)hm_henb_model_find(md, p->name), p->value) != 0)
            return fault(out, h, 9004);
    }
    if (set_param_key(&next, m->u.spv.parameter_key) != 0)
        return fault(out, h, 9004);
    *a = next;
    struct hm_cwmp_status st = {.status = 0};
    hm_cwmp_write_status(out, h, HM_CWMP_SET_PARAMETER_VALUES_RESPONSE, &st);
    return 1;
}

static int names_exist(const struct hm_henb_model *md, const struct hm_slice *v, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = lower_bound(md, v[k]);
        if (i >= md->n || !has_prefix(md->params[i].name, v[k]) ||
            (v[k].len && v[k].ptr[v[k].len - 1] != '.' && !hm_slice_eq(md->params[i].name, v[k])))
            return 0;
    }
    return 1;
}

static int add_object(struct hm_henb_agent *a, const struct hm_cwmp_msg *m,
                      const struct hm_cwmp_hdr *h, struct hm_buf *out)
{
    struct hm_slice obj = m->u.object.object_name;
    char tmpl[300];
    if (!obj.len || obj.ptr[obj.len - 1] != '.' || obj.len > sizeof(tmpl) - 3)
        return fault(out, h, 9005);
    if (obj.len >= 20 && !memcmp(obj.ptr + obj.len - 20, "FAP.PerfMgmt.Config.", 20)) {
        /* PM upload rows live outside the model (hm_henb_agent_pm) */
        if (a->pm.rows >= 16)
            return fault(out, h, 9004);
        if (set_param_key(a, m->u.object.parameter_key) != 0)
            return fault(out, h, 9004);
        struct hm_cwmp_status st = {.instance_number = ++a->pm.rows};
        hm_cwmp_write_status(out, h, HM_CWMP_ADD_OBJECT_RESPONSE, &st);
        return 1;
    }
    memcpy(tmpl, obj.ptr, obj.len);
    memcpy(tmpl + obj.len, "1.", 2);
    int t = hm_henb_model_find(a->model, hm_slice(tmpl, obj.len + 2));
    if (t < 0)
        return fault(out, h, 9005);
    if (!a->model->params[t].writable)
        return fault(out, h, 9001);
    if (a->n_added >= HM_HENB_MAX_ADDED)
        return fault(out, h, 9004);
    uint16_t inst = 1;
    for (unsigned i = 0; i < a->n_added; i++)
        if (a->added[i].table == t && a->added[i].instance > inst)
            inst = a->added[i].instance;
    inst++;
    if (set_param_key(a, m->u.object.parameter_key) != 0)
        return fault(out, h, 9004);
    a->added[a->n_added].table = (uint16_t)t;
    a->added[a->n_added++].instance = inst;
    struct hm_cwmp_status st = {.instance_number = inst};
    hm_cwmp_write_status(out, h, HM_CWMP_ADD_OBJECT_RESPONSE, &st);
    return 1;
}

static int delete_object(struct hm_henb_agent *a, const struct hm_cwmp_msg *m,
                         const struct hm_cwmp_hdr *h, struct hm_buf *out)
{
    struct hm_slice obj = m->u.object.object_name;
    /* "<table>.<n>." : split off the instance number */
    if (obj.len < 3 || obj.ptr[obj.len - 1] != '.')
        return fault(out, h, 9005);
    size_t e = obj.len - 1, b = e;
    unsigned inst = 0;
    while (b > 0 && obj.ptr[b - 1] >= '0' && obj.ptr[b - 1] <= '9')
        b--;
    if (b == e || b == 0 || obj.ptr[b - 1] != '.' || e - b > 5)
        return fault(out, h, 9005);
    for (size_t i = b; i < e; i++)
        inst = inst * 10 + (unsigned)(obj.ptr[i] - '0');
    for (unsigned i = 0; i < a->n_added; i++) {
        struct hm_slice tn = a->model->params[a->added[i].table].name; /* "<table>.1." */
        if (a->added[i].instance == inst && tn.len - 2 == b && memcmp(tn.ptr, obj.ptr, b) == 0) {
            if (set_param_key(a, m->u.object.parameter_key) != 0)
                return fault(out, h, 9004);
            a->added[i] = a->added[--a->n_added];
            struct hm_cwmp_status st = {.status = 0};
            hm_cwmp_write_status(out, h, HM_CWMP_DELETE_OBJECT_RESPONSE, &st);
            return 1;
        }
    }
    return fault(out, h, 9005);
}

int hm_henb_agent_handle(struct hm_henb_agent *a, const char *body, size_t len,
                         struct hm_soap_arena *s, struct hm_buf *out)
{
    struct hm_cwmp_msg m;
    char idbuf[48];
    int err = hm_cwmp_parse(body, len, s, NULL, &m);
    struct hm_cwmp_hdr h = {.ver = m.ver, .id = m.id};
    if (err == HM_ENOTCWMP)
        return fault(out, &h, 9000);
    if (err)
        return err;
    a->ver = m.ver;
    switch (m.method) {
    case HM_CWMP_EMPTY:
    case HM_CWMP_FAULT: /* e.g. 8005 on the Inform: the session is over */
        return 0;
    case HM_CWMP_INFORM_RESPONSE:
        a->events = 0;
        if (!a->tc_pending)
            return 0;
        {
            struct hm_cwmp_transfer_complete tc = {.command_key = hm_slice_cstr(a->transfer_key)};
            struct hm_cwmp_hdr oh = own_hdr(a, idbuf, sizeof(idbuf));
            hm_cwmp_write_transfer_complete(out, &oh, &tc);
        }
        return 1;
    case HM_CWMP_TRANSFER_COMPLETE_RESPONSE:
        a->tc_pending = false;
        return 0;
    case HM_CWMP_GET_RPC_METHODS: {
        static const struct hm_slice methods[] = {
            HM_SLICE_LIT("GetRPCMethods"), HM_SLICE_LIT("SetParameterValues"),
            HM_SLICE_LIT("GetParameterValues"), HM_SLICE_LIT("GetParameterNames"),
            HM_SLICE_LIT("SetParameterAttributes"), HM_SLICE_LIT("GetParameterAttributes"),
            HM_SLICE_LIT("AddObject"), HM_SLICE_LIT("DeleteObject"), HM_SLICE_LIT("Reboot"),
            HM_SLICE_LIT("Download"), HM_SLICE_LIT("Upload"), HM_SLICE_LIT("FactoryReset"),
            HM_SLICE_LIT("ScheduleInform")};
        hm_cwmp_write_get_rpc_methods_response(out, &h, methods, HM_ARRAY_SIZE(methods));
        return 1;
    }
    case HM_CWMP_GET_PARAMETER_VALUES:
        return gpv(a, &m, &h, s, out);
    case HM_CWMP_GET_PARAMETER_NAMES:
        return gpn(a, &m, &h, s, out);
    case HM_CWMP_SET_PARAMETER_VALUES:
        return spv(a, &m, &h, s, out);
    case HM_CWMP_SET_PARAMETER_ATTRIBUTES: {
        for (uint32_t k = 0; k < m.u.attrs.n; k++)
            if (!names_exist(a->model, &m.u.attrs.v[k].name, 1))
                return fault(out, &h, 9005);
        hm_cwmp_write_empty(out, &h, HM_CWMP_SET_PARAMETER_ATTRIBUTES_RESPONSE);
        return 1;
    }
    case HM_CWMP_GET_PARAMETER_ATTRIBUTES: {
        if (!names_exist(a->model, m.u.names.v, m.u.names.n))
            return fault(out, &h, 9005);
        struct hm_cwmp_attr *v = scratch_alloc(s, (m.u.names.n + 1) * sizeof(*v));
        if (!v)
            return fault(out, &h, 9004);
        for (uint32_t k = 0; k < m.u.names.n; k++)
            v[k] = (struct hm_cwmp_attr){.name = m.u.names.v[k]};
        hm_cwmp_write_gpa_response(out, &h, v, m.u.names.n);
        return 1;
    }
    case HM_CWMP_ADD_OBJECT:
        return add_object(a, &m, &h, out);
    case HM_CWMP_DELETE_OBJECT:
        return delete_object(a, &m, &h, out);
    case HM_CWMP_REBOOT:
        copy_key(a->reboot_key, sizeof(a->reboot_key), m.u.command_key);
        a->events |= HM_HENB_EV_BOOT | HM_HENB_EV_M_REBOOT;
        hm_cwmp_write_empty(out, &h, HM_CWMP_REBOOT_RESPONSE);
        return 1;
    case HM_CWMP_FACTORY_RESET:
        reset_config(a);
        a->events = HM_HENB_EV_BOOTSTRAP | HM_HENB_EV_BOOT;
        a->tc_pending = false;
        hm_cwmp_write_empty(out, &h, HM_CWMP_FACTORY_RESET_RESPONSE);
        return 1;
    case HM_CWMP_DOWNLOAD:
    case HM_CWMP_UPLOAD: {
        bool up = m.method == HM_CWMP_UPLOAD;
        copy_key(a->transfer_key, sizeof(a->transfer_key),
                 up ? m.u.upload.command_key : m.u.download.command_key);
        a->tc_pending = true;
        a->tc_is_upload = up;
        a->events |= HM_HENB_EV_TRANSFER_COMPLETE |
                     (up ? HM_HENB_EV_M_UPLOAD : HM_HENB_EV_M_DOWNLOAD);
        struct hm_cwmp_status st = {.status = 1};
        hm_cwmp_write_status(out, &h, up ? HM_CWMP_UPLOAD_RESPONSE : HM_CWMP_DOWNLOAD_RESPONSE,
                             &st);
        return 1;
    }
    case HM_CWMP_SCHEDULE_INFORM:
        copy_key(a->sched_key, sizeof(a->sched_key), m.u.schedule_inform.command_key);
        a->events |= HM_HENB_EV_SCHEDULED | HM_HENB_EV_M_SCHEDULE_INFORM;
        hm_cwmp_write_empty(out, &h, HM_CWMP_SCHEDULE_INFORM_RESPONSE);
        return 1;
    default:
        return fault(out, &h, 9000);
    }
}
