/* PM upload configuration at registration (see hems_pm.h, docs/procedures.md). */
#include "core/hems_pm.h"

#include <errno.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/acs_task.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/auth.h"
#include "storage/record.h"

#define FAIL(...)                                                                            \
    do {                                                                                     \
        snprintf(err, errlen, __VA_ARGS__);                                                  \
        return -EINVAL;                                                                      \
    } while (0)

static int check_entry(json_t *e, const char *what, char *err, size_t errlen)
{
    if (!json_is_object(e))
        FAIL("%s must be an object", what);
    json_t *en = json_object_get(e, "enabled"), *f = json_object_get(e, "form");
    json_t *iv = json_object_get(e, "interval"), *u = json_object_get(e, "url");
    json_t *t = json_object_get(e, "time");
    if (en && !json_is_boolean(en))
        FAIL("%s.enabled must be a boolean", what);
    if (f && (!json_is_string(f) || (strcmp(json_string_value(f), "config") &&
                                     strcmp(json_string_value(f), "filemgmt"))))
        FAIL("%s.form must be \"config\" or \"filemgmt\"", what);
    if (iv && (!json_is_integer(iv) || json_integer_value(iv) < 1 ||
               json_integer_value(iv) > 86400 * 7))
        FAIL("%s.interval must be an integer 1..604800 (seconds)", what);
    if (u && (!json_is_string(u) || json_string_length(u) < 8 || json_string_length(u) > 200))
        FAIL("%s.url must be a URL string (8..200 characters)", what);
    if (t && (!json_is_string(t) || json_string_length(t) < 10 || json_string_length(t) > 40))
        FAIL("%s.time must be an xsd:dateTime string", what);
    return 0;
}

int hm_hems_pm_check(json_t *pm, char *err, size_t errlen)
{
    if (check_entry(pm, "pm", err, errlen) < 0)
        return -EINVAL;
    if (!json_is_string(json_object_get(pm, "url")))
        FAIL("pm.url is required (the upload URL given to the devices)");
    static const char *const maps[] = {"product_classes", "devices"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(maps); i++) {
        json_t *m = json_object_get(pm, maps[i]);
        if (!m)
            continue;
        if (!json_is_object(m))
            FAIL("pm.%s must be an object keyed by %s", maps[i],
                 i ? "device id" : "ProductClass");
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
        {
            char what[200];
            snprintf(what, sizeof(what), "pm.%s.%s", maps[i], k);
            if (check_entry(v, what, err, errlen) < 0)
                return -EINVAL;
        }
    }
    return 0;
}

/* The effective value of <key>: the device's entry, its ProductClass's, then the top. */
static json_t *eff(json_t *pm, json_t *de, json_t *pe, const char *key)
{
    json_t *v = de ? json_object_get(de, key) : NULL;
    if (!v && pe)
        v = json_object_get(pe, key);
    return v ? v : json_object_get(pm, key);
}

struct pm_eff {
    bool enabled;
    int form;
    const char *url, *time;
    uint32_t interval;
};

static void effective(json_t *pm, struct hm_slice dev, struct hm_slice pc, struct pm_eff *e)
{
    char k[300];
    size_t n = HM_MIN(dev.len, sizeof(k) - 1);
    memcpy(k, dev.ptr, n);
    k[n] = '\0';
    json_t *de = json_object_get(json_object_get(pm, "devices"), k);
    n = HM_MIN(pc.len, sizeof(k) - 1);
    memcpy(k, pc.ptr, n);
    k[n] = '\0';
    json_t *pe = json_object_get(json_object_get(pm, "product_classes"), k);
    json_t *en = eff(pm, de, pe, "enabled"), *f = eff(pm, de, pe, "form");
    json_t *iv = eff(pm, de, pe, "interval"), *t = eff(pm, de, pe, "time");
    e->enabled = !en || json_is_true(en);
    e->form = f && !strcmp(json_string_value(f), "filemgmt") ? HM_PM_FORM_FILEMGMT
                                                             : HM_PM_FORM_CONFIG;
    e->url = json_string_value(eff(pm, de, pe, "url"));
    e->time = t ? json_string_value(t) : "0001-01-01T00:00:00Z"; /* Unknown Time */
    e->interval = iv ? (uint32_t)json_integer_value(iv) : 900;
}

const char *hm_pm_state_name(uint8_t s)
{
    static const char *const n[] = {"none", "pending", "enabled", "disabled"};
    return s < HM_ARRAY_SIZE(n) ? n[s] : "unknown";
}

json_t *hm_hems_pm_json(const struct hm_dev_rec *d)
{
    json_t *j = json_object();
    json_object_set_new(j, "state", json_string(hm_pm_state_name(d->pm_state)));
    if (d->pm_state == HM_PM_NONE)
        return j;
    json_object_set_new(j, "form",
                        json_string(d->pm_form == HM_PM_FORM_FILEMGMT ? "filemgmt" : "config"));
    json_object_set_new(j, "username", hm_json_slice(d->pm_user));
    json_object_set_new(j, "object", hm_json_slice(d->pm_object));
    json_object_set_new(j, "interval_s", json_integer(d->pm_interval_s));
    json_object_set_new(j, "credentials_since_ms", json_integer((json_int_t)d->pm_since_ms));
    json_object_set_new(j, "has_credentials", json_boolean(d->pm_ha1.len > 0));
    return j;
}

/* ---- tasks ------------------------------------------------------------------------------- */

/* Validates task request <req> (consumed) and puts it in <b> as queued task <seq>.
 * 0, 1 when the task is invalid (policy values, or a data model that lacks the path:
 * logged, skipped; the caller records no credentials), or -E2BIG. */
static int task_put(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq, json_t *req)
{
    char err[200];
    int r = hm_task_put_request(b, dev, seq, req, err, sizeof(err));
    if (r == -EINVAL) {
        hm_warn("PM provisioning task invalid (policy values?)", "device=%.*s cause=\"%s\"",
                (int)dev.len, dev.ptr, err);
        return 1;
    }
    return r;
}

#define add hm_task_param_add

/* <url> with every "{device}" replaced by <dev>. */
static json_t *device_url(const char *url, struct hm_slice dev)
{
    struct hm_buf b = {0};
    const char *p = url, *q;
    while ((q = strstr(p, "{device}"))) {
        hm_buf_append(&b, p, (size_t)(q - p));
        hm_buf_append_slice(&b, dev);
        p = q + 8;
    }
    hm_buf_append_str(&b, p);
    json_t *j = json_stringn(b.base ? b.base : "", b.len);
    hm_buf_free(&b);
    return j;
}

/* A fresh password (32 hex digits, 128 random bits) and its HA1 for <user> in <realm>. */
static int new_credentials(struct hm_slice user, const char *realm, char pw[33], char ha1[33])
{
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -EIO;
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(rnd); i++) {
        pw[2 * i] = hx[rnd[i] >> 4];
        pw[2 * i + 1] = hx[rnd[i] & 15];
    }
    pw[32] = '\0';
    hm_auth_ha1(user, hm_slice_cstr(realm), hm_slice(pw, 32), ha1);
    ha1[32] = '\0';
    return 0;
}

/* The SetParameterValues carrying the configuration under <prefix> (an object path ending
 * with '.'); <pw> NULL: the disabling form (Enable false only). */
static json_t *config_spv(const char *prefix, const char *enable_name, const struct pm_eff *e,
                          struct hm_slice dev, const char *pw)
{
    json_t *params = json_array();
    if (pw) {
        add(params, prefix, "URL", device_url(e->url, dev), "xsd:string");
        add(params, prefix, "Username", json_stringn(dev.ptr, dev.len), "xsd:string");
        add(params, prefix, "Password", json_string(pw), "xsd:string");
        add(params, prefix, "PeriodicUploadInterval", json_integer(e->interval),
            "xsd:unsignedInt");
        add(params, prefix, "PeriodicUploadTime", json_string(e->time), "xsd:dateTime");
    }
    add(params, prefix, enable_name, json_boolean(pw != NULL), "xsd:boolean");
    return json_pack("{s:s,s:o,s:s}", "rpc", "SetParameterValues", "params", params,
                     "parameter_key", "hems-pm");
}

int hm_hems_pm_register(json_t *pm, const char *realm, struct hm_store *st,
                        struct hm_store_batch *b, struct hm_slice dev, const char *root,
                        const struct hm_cwmp_inform *in, struct hm_dev_rec *d,
                        struct hm_hems_pm_scratch *sc)
{
    struct pm_eff e;
    effective(pm, dev, in->dev.product_class, &e);
    d->pm_form = (uint8_t)e.form;
    d->pm_interval_s = e.interval;
    d->pm_user = dev;
    d->pm_ha1 = hm_slice("", 0);
    d->pm_object = hm_slice("", 0);
    d->pm_seq = 0;
    d->pm_since_ms = hm_now_ms();
    if (e.form == HM_PM_FORM_FILEMGMT) {
        int n = snprintf(sc->object, sizeof(sc->object),
                         "%sServices.FAPService.1.PerfMgmt.FileMgmt.", root);
        d->pm_object = hm_slice(sc->object, (size_t)HM_MIN(n, (int)sizeof(sc->object) - 1));
    }
    if (!e.enabled) {
        d->pm_state = HM_PM_DISABLED;
        hm_info("PM upload disabled by policy", "device=%.*s", (int)dev.len, dev.ptr);
        if (e.form == HM_PM_FORM_FILEMGMT)
            return HM_MIN(0, task_put(b, dev, hm_store_next_seq(st),
                                      config_spv(sc->object, "PeriodicUploadEnable", &e, dev,
                                                 NULL)));
        return 0; /* config form: no row is known to switch off; uploads are refused */
    }
    if (e.form == HM_PM_FORM_CONFIG) {
        /* AddObject now; its SetParameterValues (which needs the instance number) goes to
         * the sequence number reserved here, so it runs before the later AdminState */
        char obj[160];
        snprintf(obj, sizeof(obj), "%sFAP.PerfMgmt.Config.", root);
        int r = task_put(b, dev, hm_store_next_seq(st),
                         json_pack("{s:s,s:s,s:s}", "rpc", "AddObject", "object", obj,
                                   "parameter_key", "hems-pm"));
        if (r < 0)
            return r;
        d->pm_state = HM_PM_PENDING;
        d->pm_seq = r == 0 ? hm_store_next_seq(st) : 0; /* invalid: stays pending */
        return 0;
    }
    char pw[33];
    if (new_credentials(dev, realm, pw, sc->ha1) < 0) {
        hm_warn("PM provisioning skipped: no randomness", "device=%.*s", (int)dev.len, dev.ptr);
        d->pm_state = HM_PM_PENDING;
        return 0;
    }
    int r = task_put(b, dev, hm_store_next_seq(st),
                     config_spv(sc->object, "PeriodicUploadEnable", &e, dev, pw));
    OPENSSL_cleanse(pw, sizeof(pw));
    if (r == 0) {
        d->pm_ha1 = hm_slice(sc->ha1, 32);
        d->pm_state = HM_PM_ENABLED;
    } else {
        d->pm_state = HM_PM_PENDING; /* nothing sent: no credentials to accept */
    }
    return HM_MIN(r, 0);
}

/* ---- results ----------------------------------------------------------------------------- */

static bool ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !memcmp(s + a - b, suffix, b);
}

static bool is_true(json_t *v)
{
    const char *s = json_string_value(v);
    return json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0) ||
           (s && (!strcmp(s, "true") || !strcmp(s, "1")));
}

static int put_dev(struct hm_store_batch *b, struct hm_slice dev, const struct hm_dev_rec *d)
{
    size_t n = hm_rec_dev_size(d);
    char *p = hm_store_batch_put_reserve(b, HM_DB_DEVICES, dev, n);
    return p && hm_rec_dev_encode(d, p, n) >= 0 ? 0 : -E2BIG;
}

/* The config form's AddObject answered: queue its SPV with new credentials. */
static int on_added(json_t *pm, const char *realm, struct hm_store_batch *b,
                    struct hm_slice dev, const struct hm_task_rec *t,
                    const struct hm_cwmp_msg *m, struct hm_dev_rec *d, char *objbuf,
                    size_t objcap, char ha1[33])
{
    json_t *a = json_loadb(t->args.ptr, t->args.len, 0, NULL);
    const char *obj = json_string_value(json_object_get(a, "object"));
    const char *key = json_string_value(json_object_get(a, "parameter_key"));
    int r = 0;
    if (!obj || !key || strcmp(key, "hems-pm") || !ends(obj, "PerfMgmt.Config."))
        goto out;
    uint64_t seq = d->pm_seq;
    d->pm_seq = 0;
    r = 1;
    if (t->state != HM_TASK_DONE || m->method != HM_CWMP_ADD_OBJECT_RESPONSE ||
        !m->u.status.instance_number) {
        HM_LOG_RL(HM_LOG_WARN, "PM provisioning: AddObject of the upload row failed",
                  "device=%.*s fault=%u", (int)dev.len, dev.ptr, (unsigned)t->fault_code);
        goto out;
    }
    int n = snprintf(objbuf, objcap, "%s%u.", obj, (unsigned)m->u.status.instance_number);
    if (n <= 0 || (size_t)n >= objcap)
        goto out;
    struct pm_eff e;
    effective(pm, dev, d->product_class, &e);
    char pw[33];
    if (new_credentials(dev, realm, pw, ha1) < 0)
        goto out;
    json_t *req = config_spv(objbuf, "Enable", &e, dev, pw);
    OPENSSL_cleanse(pw, sizeof(pw));
    /* the LTE FAP uses this row: FAPControl.LTE.PMConfig = <root>FAP.PerfMgmt.Config.<n> */
    const char *fap = strstr(obj, "FAP.PerfMgmt.Config.");
    char pmc[200], val[200];
    snprintf(pmc, sizeof(pmc), "%.*sServices.FAPService.1.FAPControl.LTE.PMConfig",
             (int)(fap - obj), obj);
    snprintf(val, sizeof(val), "%.*s", n - 1, objbuf);
    json_array_append_new(json_object_get(req, "params"),
                          json_pack("{s:s,s:s,s:s}", "name", pmc, "value", val, "type",
                                    "xsd:string"));
    int pr = task_put(b, dev, seq, req);
    if (pr != 0) {
        if (pr < 0)
            r = pr;
        goto out; /* invalid: stays pending, without credentials */
    }
    d->pm_object = hm_slice(objbuf, (size_t)n);
    d->pm_ha1 = hm_slice(ha1, 32);
    d->pm_user = dev;
    d->pm_state = HM_PM_ENABLED;
    d->pm_since_ms = hm_now_ms();
    r = 2;
out:
    json_decref(a);
    return r;
}

/* A successful SetParameterValues: PM Enable / credentials set by it. Returns whether <d>
 * changed; *<scrub> when it carried a PM password (the stored copy is then blanked). */
static bool on_spv(const char *realm, struct hm_slice dev, json_t *a, struct hm_dev_rec *d,
                   char ha1[33], bool *scrub)
{
    bool changed = false;
    json_t *params = json_object_get(a, "params"), *p;
    const char *user = NULL, *pw = NULL;
    size_t i;
    json_array_foreach(params, i, p)
    {
        const char *n = json_string_value(json_object_get(p, "name"));
        json_t *v = json_object_get(p, "value");
        if (!n || (!strstr(n, "PerfMgmt.Config.") && !strstr(n, "PerfMgmt.FileMgmt.")))
            continue;
        /* another row than the one this device uses for its uploads: not ours to track */
        if (d->pm_object.len && strncmp(n, d->pm_object.ptr, d->pm_object.len))
            continue;
        if (ends(n, ".Enable") || ends(n, ".PeriodicUploadEnable")) {
            uint8_t ns = is_true(v) ? (d->pm_ha1.len ? HM_PM_ENABLED : d->pm_state)
                                    : HM_PM_DISABLED;
            if (ns == HM_PM_NONE)
                continue; /* enabled, but not with credentials this node knows */
            if (ns != d->pm_state) {
                hm_info("PM upload state changed by a task", "device=%.*s state=%s",
                        (int)dev.len, dev.ptr, hm_pm_state_name(ns));
                d->pm_state = ns;
                if (!d->pm_user.len)
                    d->pm_user = dev;
                changed = true;
            }
        } else if (ends(n, ".Username")) {
            user = json_string_value(v);
        } else if (ends(n, ".Password")) {
            pw = json_string_value(v);
            *scrub = true;
        }
    }
    if (pw && pw[0]) {
        /* credentials set by a task: keep their HA1, so uploads with them are verified */
        struct hm_slice u = user ? hm_slice_cstr(user) : d->pm_user.len ? d->pm_user : dev;
        hm_auth_ha1(u, hm_slice_cstr(realm), hm_slice_cstr(pw), ha1);
        ha1[32] = '\0';
        d->pm_user = u;
        d->pm_ha1 = hm_slice(ha1, 32);
        d->pm_since_ms = hm_now_ms();
        if (d->pm_state == HM_PM_NONE || d->pm_state == HM_PM_PENDING)
            d->pm_state = HM_PM_ENABLED;
        changed = true;
    }
    return changed;
}

/* Puts task <t> again with the values of its *.Password parameters blanked. */
static int scrub_task(struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                      const struct hm_task_rec *t, json_t *a)
{
    json_t *p;
    size_t i;
    json_array_foreach(json_object_get(a, "params"), i, p)
    {
        const char *n = json_string_value(json_object_get(p, "name"));
        if (n && ends(n, ".Password"))
            json_object_set_new(p, "value", json_string(""));
    }
    char *txt = json_dumps(a, JSON_COMPACT);
    if (!txt)
        return -ENOMEM;
    struct hm_task_rec c = *t;
    c.args = hm_slice_cstr(txt);
    int r = hm_task_put(b, dev, seq, &c);
    free(txt);
    return r;
}

int hm_hems_pm_on_result(json_t *pm, const char *realm, struct hm_store_reader *rd,
                         struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                         const struct hm_task_rec *t, const struct hm_cwmp_msg *m,
                         uint64_t *n_provisioned)
{
    if (t->kind != HM_TASK_ADD_OBJECT && t->kind != HM_TASK_SET_PARAM_VALUES)
        return 0;
    /* cheap filter before any JSON: the task must mention PerfMgmt */
    if (!memmem(t->args.ptr, t->args.len, "PerfMgmt", 8))
        return 0;
    struct hm_slice v;
    struct hm_dev_rec d;
    if (hm_store_get(rd, HM_DB_DEVICES, dev, &v) < 0 || hm_rec_dev_decode(v, &d) < 0)
        return 0;
    char objbuf[200], ha1[33];
    int r = 0;
    bool changed = false;
    if (t->kind == HM_TASK_ADD_OBJECT) {
        if (!pm || d.pm_state != HM_PM_PENDING || !d.pm_seq)
            return 0;
        r = on_added(pm, realm, b, dev, t, m, &d, objbuf, sizeof(objbuf), ha1);
        if (r < 0)
            return r;
        changed = r > 0;
        if (r == 2) {
            (*n_provisioned)++;
            hm_info("PM upload credentials provisioned", "device=%.*s object=%.*s",
                    (int)dev.len, dev.ptr, (int)d.pm_object.len, d.pm_object.ptr);
        }
    } else {
        json_t *a = json_loadb(t->args.ptr, t->args.len, 0, NULL);
        bool scrub = false;
        if (t->state == HM_TASK_DONE)
            changed = on_spv(realm, dev, a, &d, ha1, &scrub);
        /* the CPE answered: a PM password need not stay in the task, whatever the result */
        json_t *p;
        size_t i;
        json_array_foreach(json_object_get(a, "params"), i, p)
        {
            const char *n = json_string_value(json_object_get(p, "name"));
            if (n && strstr(n, "PerfMgmt.") && ends(n, ".Password"))
                scrub = true;
        }
        /* d.pm_user may point into <a>: encode the record before <a> changes or goes */
        if (changed)
            r = put_dev(b, dev, &d);
        if (scrub && r == 0)
            r = scrub_task(b, dev, seq, t, a);
        json_decref(a);
        return r;
    }
    return changed ? put_dev(b, dev, &d) : 0;
}
