/* HeMS discovery and registration procedures (see hems_proc.h, docs/procedures.md). */
#include "core/hems_proc.h"
#include "core/fleet_s1.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/acs_task.h"
#include "core/bug.h"
#include "core/hems_loc.h"
#include "core/hems_pm.h"
#include "core/log.h"
#include "core/util.h"
#include "storage/record.h"

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = hm_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

struct hm_hems {
    int role;
    char *node_id;
    char *policy_file;
    char *realm; /* cwmp.realm: PM upload credentials are HA1s in it */
    pthread_mutex_t mu;
    json_t *policy; /* owned; effective (file + overrides); replaced whole, never modified */
    json_t *file_policy; /* owned; as read from the policy file ({} without one) */
    json_t *overrides;   /* owned; sections set through the API (persisted by the caller) */
    _Atomic uint64_t refused, assigned, registered, unassignable;
    hm_hems_s1_fn s1_fn; /* S1 far end by region (core/fleet_s1.h), or NULL */
    void *s1_arg;
    _Atomic uint64_t pm_provisioned, pm_disabled;
    _Atomic uint64_t loc_refused, loc_verified, loc_unverified;
};

void hm_hems_set_s1_source(struct hm_hems *h, hm_hems_s1_fn fn, void *arg)
{
    h->s1_fn = fn;
    h->s1_arg = arg;
}

int hm_hems_role_parse(const char *s)
{
    if (!s || !strcmp(s, "serving"))
        return HM_HEMS_ROLE_SERVING;
    if (!strcmp(s, "initial"))
        return HM_HEMS_ROLE_INITIAL;
    if (!strcmp(s, "both"))
        return HM_HEMS_ROLE_INITIAL | HM_HEMS_ROLE_SERVING;
    return -EINVAL;
}

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t hash2(struct hm_slice key, const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < key.len; i++)
        h = (h ^ (unsigned char)key.ptr[i]) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull; /* separator: "ab"+"c" != "a"+"bc" */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return mix64(h);
}

int hm_hrw_pick(const struct hm_hrw_node *nodes, size_t n, struct hm_slice key)
{
    int best = -1;
    double best_score = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(nodes[i].weight > 0))
            continue;
        /* u in (0,1): 53 high bits, offset by half a step so it is never 0 or 1 */
        double u = ((double)(hash2(key, nodes[i].id) >> 11) + 0.5) / 9007199254740992.0;
        double score = -nodes[i].weight / log(u);
        if (best < 0 || score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    return best;
}

/* ---- policy ------------------------------------------------------------------------------ */

#define FAIL(...)                                                                            \
    do {                                                                                     \
        snprintf(err, errlen, __VA_ARGS__);                                                  \
        return -EINVAL;                                                                      \
    } while (0)

int hm_hems_whitelist_check(json_t *wl, char *err, size_t errlen)
{
    if (!json_is_array(wl))
        FAIL("'whitelist' must be an array");
    size_t i;
    json_t *e;
    json_array_foreach(wl, i, e)
    {
        if (!json_is_object(e))
            FAIL("whitelist[%zu] must be an object", i);
        json_t *area = json_object_get(e, "area");
        if (area) {
            char what[48];
            snprintf(what, sizeof(what), "whitelist[%zu].area", i);
            if (hm_hems_area_check(area, what, err, errlen) < 0)
                return -EINVAL;
        }
        if (json_object_get(e, "device")) {
            if (!json_is_string(json_object_get(e, "device")))
                FAIL("whitelist[%zu].device must be a string OUI-ProductClass-Serial", i);
            continue;
        }
        if (json_object_get(e, "tls_identity")) {
            const char *t = json_string_value(json_object_get(e, "tls_identity"));
            if (!t || !t[0] || strchr(t + 1, '*'))
                FAIL("whitelist[%zu].tls_identity must be a certificate identity, or '*' "
                     "followed by a suffix (e.g. \"*.hnb.operator.net\")", i);
            continue;
        }
        static const char *const k[] = {"oui", "product_class", "serial_from", "serial_to"};
        for (size_t j = 0; j < HM_ARRAY_SIZE(k); j++)
            if (!json_is_string(json_object_get(e, k[j])))
                FAIL("whitelist[%zu] needs 'device' or string '%s'", i, k[j]);
    }
    return 0;
}

static int weighted_list(json_t *a, const char *what, const char *payload, char *err,
                         size_t errlen)
{
    if (!a)
        return 0;
    if (!json_is_array(a))
        FAIL("'%s' must be an array", what);
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        json_t *w = json_object_get(e, "weight");
        if (!json_is_string(json_object_get(e, "id")))
            FAIL("%s[%zu].id must be a string", what, i);
        if (w && (!json_is_number(w) || json_number_value(w) < 0))
            FAIL("%s[%zu].weight must be a number >= 0", what, i);
        json_t *p = json_object_get(e, payload);
        if (!strcmp(payload, "url") && !json_is_string(p))
            FAIL("%s[%zu].url must be a string", what, i);
        if (!strcmp(payload, "servers")) {
            if (!json_is_array(p) || json_array_size(p) < 1 || json_array_size(p) > 3)
                FAIL("%s[%zu].servers must be an array of 1 to 3 addresses", what, i);
            for (size_t j = 0; j < json_array_size(p); j++)
                if (!json_is_string(json_array_get(p, j)))
                    FAIL("%s[%zu].servers[%zu] must be a string", what, i, j);
        }
    }
    return 0;
}

static int policy_check(json_t *p, char *err, size_t errlen)
{
    if (!json_is_object(p))
        FAIL("policy must be a JSON object");
    json_t *wl = json_object_get(p, "whitelist");
    if (wl && hm_hems_whitelist_check(wl, err, errlen) < 0)
        return -EINVAL;
    if (weighted_list(json_object_get(p, "serving_nodes"), "serving_nodes", "url", err,
                      errlen) < 0 ||
        weighted_list(json_object_get(p, "segws"), "segws", "servers", err, errlen) < 0)
        return -EINVAL;
    json_t *st = json_object_get(p, "static");
    if (st) {
        if (!json_is_array(st))
            FAIL("'static' must be an array");
        size_t i;
        json_t *e;
        json_array_foreach(st, i, e)
        {
            if (!json_is_string(json_object_get(e, "device")) &&
                !json_is_string(json_object_get(e, "product_class")))
                FAIL("static[%zu] needs 'device' or 'product_class'", i);
            json_t *n = json_object_get(e, "serving_node"), *g = json_object_get(e, "segw");
            if ((n && !json_is_string(n)) || (g && !json_is_string(g)))
                FAIL("static[%zu].serving_node / segw must be node ids (strings)", i);
        }
    }
    json_t *s1 = json_object_get(p, "s1");
    if (s1) {
        if (!json_is_string(json_object_get(s1, "servers")))
            FAIL("s1.servers must be a string (comma-separated list)");
        json_t *m = json_object_get(s1, "connection_mode"), *port = json_object_get(s1, "port");
        json_t *by = json_object_get(s1, "set_by");
        if (m && (!json_is_string(m) || (strcmp(json_string_value(m), "One") &&
                                         strcmp(json_string_value(m), "All"))))
            FAIL("s1.connection_mode must be \"One\" or \"All\"");
        if (port && (!json_is_integer(port) || json_integer_value(port) < 1 ||
                     json_integer_value(port) > 65535))
            FAIL("s1.port must be an integer 1..65535");
        if (by && (!json_is_string(by) || (strcmp(json_string_value(by), "initial") &&
                                           strcmp(json_string_value(by), "serving"))))
            FAIL("s1.set_by must be \"initial\" or \"serving\"");
    }
    json_t *ind = json_object_get(p, "ipsec_indicator");
    if (ind) {
        if (!json_is_object(ind))
            FAIL("'ipsec_indicator' must be an object keyed by ProductClass (or \"*\")");
        const char *k;
        json_t *v;
        json_object_foreach(ind, k, v)
        {
            if (!json_is_string(json_object_get(v, "path")) ||
                !json_is_string(json_object_get(v, "value")))
                FAIL("ipsec_indicator.%s needs string 'path' and 'value'", k);
            json_t *t = json_object_get(v, "type");
            if (t && (!json_is_string(t) || strncmp(json_string_value(t), "xsd:", 4)))
                FAIL("ipsec_indicator.%s.type must be an xsd type such as \"xsd:boolean\"", k);
        }
    }
    json_t *loc = json_object_get(p, "location_params");
    if (loc) {
        if (!json_is_array(loc) || json_array_size(loc) > 32)
            FAIL("'location_params' must be an array of at most 32 parameter paths");
        for (size_t i = 0; i < json_array_size(loc); i++)
            if (!json_is_string(json_array_get(loc, i)) ||
                !json_string_length(json_array_get(loc, i)))
                FAIL("location_params[%zu] must be a non-empty string", i);
    }
    json_t *pm = json_object_get(p, "pm");
    if (pm && hm_hems_pm_check(pm, err, errlen) < 0)
        return -EINVAL;
    json_t *lc = json_object_get(p, "location_check");
    if (lc && hm_hems_loc_check(lc, err, errlen) < 0)
        return -EINVAL;
    json_t *reg = json_object_get(p, "registration");
    if (reg && !json_is_boolean(reg))
        FAIL("'registration' must be a boolean");
    return 0;
}

json_t *hm_hems_policy_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *p = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!p) {
        snprintf(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (policy_check(p, err, errlen) < 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* Serial order for ranges: shorter first, then bytewise. */
static int serial_cmp(struct hm_slice a, const char *b)
{
    size_t bl = strlen(b);
    if (a.len != bl)
        return a.len < bl ? -1 : 1;
    return memcmp(a.ptr, b, bl);
}

static bool slice_is(struct hm_slice s, const char *c)
{
    return c && hm_slice_eq(s, hm_slice_cstr(c));
}

/* Certificate identity <id> against an entry's pattern: equal, or "*SUFFIX" (ASCII case
 * folded: identities are DNS names or CNs). */
static bool identity_match(const char *pat, const char *id)
{
    if (pat[0] != '*')
        return strcasecmp(pat, id) == 0;
    size_t pl = strlen(pat + 1), il = strlen(id);
    return il > pl && strcasecmp(id + il - pl, pat + 1) == 0;
}

/* The whitelist entry admitting the device, or NULL. */
static json_t *whitelist_entry(json_t *wl, struct hm_slice oui, struct hm_slice pc,
                               struct hm_slice serial, const char *tls_identity)
{
    size_t i;
    json_t *e;
    json_array_foreach(wl, i, e)
    {
        const char *tid = json_string_value(json_object_get(e, "tls_identity"));
        if (tid) {
            if (tls_identity && identity_match(tid, tls_identity))
                return e;
            continue;
        }
        const char *dev = json_string_value(json_object_get(e, "device"));
        if (dev) {
            size_t n = strlen(dev);
            if (n == oui.len + pc.len + serial.len + 2 && !memcmp(dev, oui.ptr, oui.len) &&
                dev[oui.len] == '-' && !memcmp(dev + oui.len + 1, pc.ptr, pc.len) &&
                dev[oui.len + 1 + pc.len] == '-' &&
                !memcmp(dev + oui.len + pc.len + 2, serial.ptr, serial.len))
                return e;
            continue;
        }
        if (slice_is(oui, json_string_value(json_object_get(e, "oui"))) &&
            slice_is(pc, json_string_value(json_object_get(e, "product_class"))) &&
            serial_cmp(serial, json_string_value(json_object_get(e, "serial_from"))) >= 0 &&
            serial_cmp(serial, json_string_value(json_object_get(e, "serial_to"))) <= 0)
            return e;
    }
    return NULL;
}

bool hm_hems_whitelisted(json_t *wl, struct hm_slice oui, struct hm_slice pc,
                         struct hm_slice serial, const char *tls_identity)
{
    return whitelist_entry(wl, oui, pc, serial, tls_identity) != NULL;
}

/* ---- state --------------------------------------------------------------------------------- */

static json_t *load_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "policy file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct hm_buf b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        hm_buf_append(&b, tmp, n);
    bool bad = ferror(f);
    fclose(f);
    json_t *p = NULL;
    if (bad) {
        snprintf(err, errlen, "policy file %s: read error", path);
    } else {
        char e2[200];
        p = hm_hems_policy_parse(b.base ? b.base : "", b.len, e2, sizeof(e2));
        if (!p)
            snprintf(err, errlen, "policy file %s: %s", path, e2);
    }
    hm_buf_free(&b);
    return p;
}

struct hm_hems *hm_hems_create(const struct hm_config *cfg, char *err, size_t errlen)
{
    int role = hm_hems_role_parse(cfg->hems_role);
    if (role < 0) {
        snprintf(err, errlen, "[hems] role '%s': expected serving, initial or both",
                 cfg->hems_role);
        return NULL;
    }
    json_t *p;
    if (cfg->hems_policy_file && cfg->hems_policy_file[0]) {
        p = load_file(cfg->hems_policy_file, err, errlen);
        if (!p)
            return NULL;
    } else {
        p = json_object();
    }
    struct hm_hems *h = hm_xcalloc(1, sizeof(*h));
    h->role = role;
    h->node_id = xstrdup(cfg->hems_node_id ? cfg->hems_node_id : "");
    h->realm = xstrdup(cfg->cwmp_realm ? cfg->cwmp_realm : "");
    h->policy_file = cfg->hems_policy_file && cfg->hems_policy_file[0]
                         ? xstrdup(cfg->hems_policy_file)
                         : NULL;
    h->policy = p;
    h->file_policy = json_incref(p);
    h->overrides = json_object();
    pthread_mutex_init(&h->mu, NULL);
    return h;
}

void hm_hems_destroy(struct hm_hems *h)
{
    if (!h)
        return;
    json_decref(h->policy);
    json_decref(h->file_policy);
    json_decref(h->overrides);
    pthread_mutex_destroy(&h->mu);
    free(h->node_id);
    free(h->realm);
    free(h->policy_file);
    free(h);
}

int hm_hems_role(const struct hm_hems *h)
{
    return h ? h->role : HM_HEMS_ROLE_SERVING;
}

/* The effective policy: <file> with the sections of <ov> replacing its own; validated. */
static json_t *merge_policy(json_t *file, json_t *ov, char *err, size_t errlen)
{
    json_t *p = json_copy(file); /* shallow: the values are never modified */
    json_object_update(p, ov);
    if (policy_check(p, err, errlen) < 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

int hm_hems_reload(struct hm_hems *h, char *err, size_t errlen)
{
    if (!h->policy_file)
        return 0;
    json_t *f = load_file(h->policy_file, err, errlen);
    if (!f)
        return -EINVAL;
    pthread_mutex_lock(&h->mu);
    char e2[256];
    json_t *p = merge_policy(f, h->overrides, e2, sizeof(e2));
    json_t *old = NULL;
    if (p) {
        old = h->policy;
        h->policy = p;
        json_decref(h->file_policy);
        h->file_policy = f;
    }
    pthread_mutex_unlock(&h->mu);
    if (!p) {
        snprintf(err, errlen, "policy file %s with the sections set through the API: %s",
                 h->policy_file, e2);
        json_decref(f);
        return -EINVAL;
    }
    json_decref(old);
    return 0;
}

static const char *const policy_sections[] = {
    "whitelist", "serving_nodes", "segws", "static", "s1", "ipsec_indicator",
    "location_params", "location_check", "pm", "registration",
};

bool hm_hems_policy_section_ok(const char *name)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(policy_sections); i++)
        if (!strcmp(name, policy_sections[i]))
            return true;
    return false;
}

json_t *hm_hems_policy_get(struct hm_hems *h, const char *section, bool *overridden)
{
    pthread_mutex_lock(&h->mu);
    json_t *out;
    if (!section) {
        out = json_deep_copy(h->policy);
    } else {
        json_t *v = json_object_get(h->policy, section);
        out = v ? json_deep_copy(v) : json_null();
        if (overridden)
            *overridden = json_object_get(h->overrides, section) != NULL;
    }
    pthread_mutex_unlock(&h->mu);
    return out;
}

json_t *hm_hems_policy_overridden(struct hm_hems *h)
{
    json_t *a = json_array();
    pthread_mutex_lock(&h->mu);
    const char *k;
    json_t *v;
    json_object_foreach(h->overrides, k, v)
        json_array_append_new(a, json_string(k));
    pthread_mutex_unlock(&h->mu);
    return a;
}

int hm_hems_policy_set(struct hm_hems *h, const char *section, json_t *val, bool apply,
                       char *err, size_t errlen)
{
    if (!hm_hems_policy_section_ok(section)) {
        snprintf(err, errlen, "unknown policy section '%s'", section);
        return -ENOENT;
    }
    pthread_mutex_lock(&h->mu);
    json_t *ov = json_copy(h->overrides);
    if (val)
        json_object_set_new(ov, section, json_deep_copy(val));
    else
        json_object_del(ov, section);
    json_t *p = merge_policy(h->file_policy, ov, err, errlen);
    json_t *old_p = NULL, *old_ov = NULL;
    if (p && apply) {
        old_p = h->policy;
        old_ov = h->overrides;
        h->policy = p;
        h->overrides = ov;
        p = ov = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    int r = old_p || (p && !apply) ? 0 : -EINVAL;
    json_decref(p);
    json_decref(ov);
    json_decref(old_p);
    json_decref(old_ov);
    return r;
}

json_t *hm_hems_whitelist_get(struct hm_hems *h)
{
    json_t *wl = hm_hems_policy_get(h, "whitelist", NULL);
    if (json_is_null(wl)) {
        json_decref(wl);
        wl = json_array();
    }
    return wl;
}

int hm_hems_whitelist_put(struct hm_hems *h, json_t *wl, char *err, size_t errlen)
{
    if (hm_hems_whitelist_check(wl, err, errlen) < 0)
        return -EINVAL;
    return hm_hems_policy_set(h, "whitelist", wl, true, err, errlen);
}

/* ---- the Inform hook -------------------------------------------------------------------- */

/* Validates task request <req> (consumed) and adds it to <b> as a queued task. */
static int enqueue(struct hm_store *st, struct hm_store_batch *b, struct hm_slice dev,
                   json_t *req)
{
    char err[200];
    int r = hm_task_put_request(b, dev, hm_store_next_seq(st), req, err, sizeof(err));
    if (r == -EINVAL) {
        hm_warn("HeMS procedure task invalid (policy values?)", "device=%.*s cause=\"%s\"",
                (int)dev.len, dev.ptr, err);
        return 0; /* a bad policy value must not refuse the Inform */
    }
    return r;
}

#define spv_add hm_task_param_add

/* The S1 far end: the device's region list (core/fleet_s1.h) where a region selects it,
 * else the policy's s1.servers; connection mode from the policy, port from either. */
static void s1_params(struct hm_hems *h, json_t *params, const char *root, json_t *s1,
                      struct hm_slice dev, const struct hm_cwmp_inform *in)
{
    char list[1100];
    int32_t rport = -1;
    bool region = h->s1_fn && h->s1_fn(h->s1_arg, dev, in, list, sizeof(list), &rport) > 0;
    if (!region && !s1)
        return;
    spv_add(params, root, "Services.FAPService.1.FAPControl.LTE.Gateway.S1SigLinkServerList",
            region ? json_string(list) : json_incref(json_object_get(s1, "servers")),
            "xsd:string");
    json_t *m = json_object_get(s1, "connection_mode");
    if (m)
        spv_add(params, root, "Services.FAPService.1.FAPControl.LTE.Gateway.S1ConnectionMode",
                json_incref(m), "xsd:string");
    json_t *port = rport > 0 ? json_integer(rport) : json_incref(json_object_get(s1, "port"));
    if (port)
        spv_add(params, root, "Services.FAPService.1.FAPControl.LTE.Gateway.S1SigLinkPort",
                port, "xsd:unsignedInt");
}

/* The entry of weighted list <list> with id <id>, or NULL. */
static json_t *by_id(json_t *list, const char *id)
{
    size_t i;
    json_t *e;
    if (!id)
        return NULL;
    json_array_foreach(list, i, e)
    if (!strcmp(json_string_value(json_object_get(e, "id")), id))
        return e;
    return NULL;
}

static json_t *hrw_list(json_t *list, struct hm_slice key)
{
    struct hm_hrw_node nodes[64];
    size_t n = HM_MIN(json_array_size(list), HM_ARRAY_SIZE(nodes));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i);
        json_t *w = json_object_get(e, "weight");
        nodes[i].id = json_string_value(json_object_get(e, "id"));
        nodes[i].weight = w ? json_number_value(w) : 1.0;
    }
    int k = hm_hrw_pick(nodes, n, key);
    return k < 0 ? NULL : json_array_get(list, (size_t)k);
}

/* Static assignment entry matching the device (exact device first, then ProductClass). */
static json_t *static_entry(json_t *p, struct hm_slice dev, struct hm_slice pc)
{
    json_t *st = json_object_get(p, "static"), *e, *group = NULL;
    size_t i;
    json_array_foreach(st, i, e)
    {
        if (slice_is(dev, json_string_value(json_object_get(e, "device"))))
            return e;
        if (!group && slice_is(pc, json_string_value(json_object_get(e, "product_class"))))
            group = e;
    }
    return group;
}

/* True when a request to host <host> and path <path> addressed <url> ("scheme://authority
 * /path"), or when that cannot be told (no Host header). */
static bool reached_as(const char *url, struct hm_slice host, struct hm_slice path)
{
    const char *a = url ? strstr(url, "://") : NULL;
    if (!host.len)
        return true;
    if (!a)
        return false;
    a += 3;
    const char *p = strchr(a, '/');
    size_t al = p ? (size_t)(p - a) : strlen(a);
    const char *up = p ? p : "/";
    return host.len == al && strncasecmp(host.ptr, a, al) == 0 && path.len == strlen(up) &&
           memcmp(path.ptr, up, path.len) == 0;
}

static int discovery(struct hm_hems *h, json_t *p, struct hm_store *st, struct hm_store_batch *b,
                     struct hm_slice dev, const char *root, const struct hm_cwmp_inform *in,
                     struct hm_slice host, struct hm_slice path, const char *tls_identity,
                     struct hm_dev_rec *d, char *nodebuf, size_t nodecap, bool *self)
{
    /* "both": the device comes back after we redirected it to this very node */
    bool back_here = d->reg_state == HM_REG_REDIRECTED && h->node_id[0] &&
                     hm_slice_eq(d->serving_node, hm_slice_cstr(h->node_id));
    json_t *wl = json_object_get(p, "whitelist");
    d->role = HM_ROLE_INITIAL;
    json_t *wle = wl ? whitelist_entry(wl, in->dev.oui, in->dev.product_class, in->dev.serial,
                                       tls_identity)
                     : NULL;
    if (!wle) {
        d->reg_state = HM_REG_BLOCKED;
        d->serving_node = hm_slice("", 0);
        atomic_fetch_add_explicit(&h->refused, 1, memory_order_relaxed);
        HM_LOG_RL(HM_LOG_WARN, "bootstrap refused: device not in the whitelist",
                  "device=%.*s tls_identity=\"%s\"", (int)dev.len, dev.ptr,
                  tls_identity ? tls_identity : "");
        return 0;
    }
    /* location verification (core/hems_loc.h): from the Inform's own parameters when it
     * carries them, else by a GetParameterValues judged when its answer arrives */
    json_t *lc = json_object_get(p, "location_check");
    char latn[256] = "", lonn[256] = "";
    bool loc_gpv = false;
    if (lc) {
        hm_hems_loc_names(lc, root, latn, lonn, sizeof(latn));
        struct hm_slice la = {0}, lo = {0};
        for (uint32_t i = 0; i < in->params.n; i++) {
            if (hm_slice_eq(in->params.v[i].name, hm_slice_cstr(latn)))
                la = in->params.v[i].value;
            else if (hm_slice_eq(in->params.v[i].name, hm_slice_cstr(lonn)))
                lo = in->params.v[i].value;
        }
        double lat = 0, lon = 0;
        enum hm_loc_verdict v = hm_hems_loc_judge(lc, json_object_get(wle, "area"), la, lo,
                                                  &lat, &lon);
        if (v == HM_LOC_OUTSIDE) {
            d->reg_state = HM_REG_BLOCKED;
            d->serving_node = hm_slice("", 0);
            atomic_fetch_add_explicit(&h->loc_refused, 1, memory_order_relaxed);
            HM_LOG_RL(HM_LOG_WARN, "bootstrap refused: location outside the allowed area",
                      "device=%.*s latitude=%.6f longitude=%.6f source=inform", (int)dev.len,
                      dev.ptr, lat, lon);
            return HM_HEMS_REFUSED;
        }
        if (v == HM_LOC_INSIDE)
            atomic_fetch_add_explicit(&h->loc_verified, 1, memory_order_relaxed);
        else
            loc_gpv = true;
    }
    json_t *nodes = json_object_get(p, "serving_nodes"), *segws = json_object_get(p, "segws");
    json_t *se = static_entry(p, dev, in->dev.product_class);
    json_t *node = se ? by_id(nodes, json_string_value(json_object_get(se, "serving_node")))
                      : NULL;
    json_t *segw = se ? by_id(segws, json_string_value(json_object_get(se, "segw"))) : NULL;
    if (!node) {
        /* sticky: keep the node already recorded while it is still listed */
        char prev[128];
        if (d->serving_node.len && d->serving_node.len < sizeof(prev)) {
            memcpy(prev, d->serving_node.ptr, d->serving_node.len);
            prev[d->serving_node.len] = '\0';
            node = by_id(nodes, prev);
        }
        if (!node)
            node = hrw_list(nodes, dev);
    }
    if (!segw)
        segw = hrw_list(segws, dev);
    if (!node) {
        d->reg_state = HM_REG_DISCOVERED;
        atomic_fetch_add_explicit(&h->unassignable, 1, memory_order_relaxed);
        HM_LOG_RL(HM_LOG_WARN, "bootstrap: no Serving HeMS configured, device not assigned",
                  "device=%.*s", (int)dev.len, dev.ptr);
        return 0;
    }
    const char *id = json_string_value(json_object_get(node, "id"));
    size_t idl = HM_MIN(strlen(id), nodecap);
    memcpy(nodebuf, id, idl);
    d->serving_node = hm_slice(nodebuf, idl);
    if ((h->role & HM_HEMS_ROLE_SERVING) && h->node_id[0] && !strcmp(id, h->node_id) &&
        (back_here ||
         reached_as(json_string_value(json_object_get(node, "url")), host, path))) {
        /* "both": this node serves the device itself and the device already uses its
         * Serving HeMS URL: no redirection. Reached by another URL (the Initial HeMS URL
         * of a load balancer), it is redirected to this node's own URL like any other. */
        *self = true;
        /* the location GPV still comes first: its answer may withdraw the registration */
        if (loc_gpv)
            return enqueue(st, b, dev,
                           json_pack("{s:s,s:[s,s]}", "rpc", "GetParameterValues", "names",
                                     latn, lonn));
        return 0;
    }
    json_t *loc = json_object_get(p, "location_params");
    if (json_array_size(loc) || loc_gpv) {
        /* read the location parameters first (kept with the device's parameters) */
        json_t *names = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(loc, i, e)
        {
            const char *n = json_string_value(e);
            bool abs = !strncmp(n, "Device.", 7) || !strncmp(n, "InternetGatewayDevice.", 22);
            char full[300];
            snprintf(full, sizeof(full), "%s%s", abs ? "" : root, n);
            json_array_append_new(names, json_string(full));
        }
        if (loc_gpv) {
            json_array_append_new(names, json_string(latn));
            json_array_append_new(names, json_string(lonn));
        }
        int r = enqueue(st, b, dev,
                        json_pack("{s:s,s:o}", "rpc", "GetParameterValues", "names", names));
        if (r < 0)
            return r;
    }
    json_t *params = json_array();
    if (segw) {
        json_t *sv = json_object_get(segw, "servers");
        static const char *const gw[] = {
            "Services.FAPService.1.FAPControl.LTE.Gateway.SecGWServer1",
            "Services.FAPService.1.FAPControl.LTE.Gateway.SecGWServer2",
            "Services.FAPService.1.FAPControl.LTE.Gateway.SecGWServer3"};
        for (size_t i = 0; i < 3; i++) {
            json_t *v = json_array_get(sv, i);
            spv_add(params, root, gw[i], v ? json_incref(v) : json_string(""), "xsd:string");
        }
    }
    spv_add(params, root, "ManagementServer.URL", json_incref(json_object_get(node, "url")),
            "xsd:string");
    json_t *s1 = json_object_get(p, "s1");
    const char *by = json_string_value(json_object_get(s1, "set_by"));
    if (s1 && by && !strcmp(by, "initial"))
        s1_params(h, params, root, s1, dev, in);
    int r = enqueue(st, b, dev,
                    json_pack("{s:s,s:o,s:s}", "rpc", "SetParameterValues", "params", params,
                              "parameter_key", "hems-discovery"));
    if (r < 0)
        return r;
    d->reg_state = HM_REG_REDIRECTED;
    atomic_fetch_add_explicit(&h->assigned, 1, memory_order_relaxed);
    hm_info("bootstrap: Serving HeMS assigned", "device=%.*s serving_node=%s segw=%s",
            (int)dev.len, dev.ptr, id,
            segw ? json_string_value(json_object_get(segw, "id")) : "-");
    return 0;
}

/* The PM tail of the record being built lives here until the ACS has encoded it (same
 * thread, same Inform). */
static _Thread_local struct hm_hems_pm_scratch pm_scratch;

static int registration(struct hm_hems *h, json_t *p, struct hm_store *st,
                        struct hm_store_batch *b, struct hm_slice dev, const char *root,
                        bool igd, const struct hm_cwmp_inform *in, struct hm_dev_rec *d)
{
    json_t *params = json_array();
    json_t *s1 = json_object_get(p, "s1");
    const char *by = json_string_value(json_object_get(s1, "set_by"));
    if (!(by && !strcmp(by, "initial")))
        s1_params(h, params, root, s1, dev, in);
    json_t *ind = json_object_get(p, "ipsec_indicator");
    char pc[128];
    size_t pcl = HM_MIN(in->dev.product_class.len, sizeof(pc) - 1);
    memcpy(pc, in->dev.product_class.ptr, pcl);
    pc[pcl] = '\0';
    json_t *ie = json_object_get(ind, pc);
    if (!ie)
        ie = json_object_get(ind, "*");
    if (ie) {
        const char *path = json_string_value(json_object_get(ie, "path"));
        const char *type = json_string_value(json_object_get(ie, "type"));
        bool abs = !strncmp(path, "Device.", 7) || !strncmp(path, "InternetGatewayDevice.", 22);
        spv_add(params, abs ? "" : root, path, json_incref(json_object_get(ie, "value")),
                type ? type : "xsd:boolean");
    }
    int r = 0;
    if (json_array_size(params))
        r = enqueue(st, b, dev,
                    json_pack("{s:s,s:o,s:s}", "rpc", "SetParameterValues", "params", params,
                              "parameter_key", "hems-registration"));
    else
        json_decref(params);
    if (r < 0)
        return r;
    const char *inner = igd ? "InternetGatewayDevice.FAP.Tunnel.IKESA."
                            : "Device.IPsec.IKEv2SA.";
    r = enqueue(st, b, dev,
                json_pack("{s:s,s:[{s:s,s:i}]}", "rpc", "SetParameterAttributes", "params",
                          "name", inner, "notification", 2));
    if (r < 0)
        return r;
    /* the alarm event tables (reference 2.6): expedited events active, queued ones passive;
     * one task each, so a CPE that forces one of them (9009) still gets the other */
    static const struct {
        const char *table;
        int notification;
    } ev[] = {{"FaultMgmt.ExpeditedEvent.", 2}, {"FaultMgmt.QueuedEvent.", 1}};
    for (size_t i = 0; i < HM_ARRAY_SIZE(ev) && r == 0; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s", root, ev[i].table);
        r = enqueue(st, b, dev,
                    json_pack("{s:s,s:[{s:s,s:i}]}", "rpc", "SetParameterAttributes",
                              "params", "name", name, "notification", ev[i].notification));
    }
    if (r < 0)
        return r;
    /* PM upload configuration with per-device credentials (core/hems_pm.c) */
    json_t *pm = json_object_get(p, "pm");
    if (pm) {
        r = hm_hems_pm_register(pm, h->realm, st, b, dev, root, in, d, &pm_scratch);
        if (r < 0)
            return r;
        if (d->pm_state == HM_PM_DISABLED)
            atomic_fetch_add_explicit(&h->pm_disabled, 1, memory_order_relaxed);
        else if (d->pm_state == HM_PM_ENABLED)
            atomic_fetch_add_explicit(&h->pm_provisioned, 1, memory_order_relaxed);
    }
    json_t *admin = json_array();
    spv_add(admin, root, "Services.FAPService.1.FAPControl.LTE.AdminState", json_true(),
            "xsd:boolean");
    r = enqueue(st, b, dev,
                json_pack("{s:s,s:o,s:s}", "rpc", "SetParameterValues", "params", admin,
                          "parameter_key", "hems-adminstate"));
    if (r == 0) {
        atomic_fetch_add_explicit(&h->registered, 1, memory_order_relaxed);
        hm_info("registration provisioning queued", "device=%.*s", (int)dev.len, dev.ptr);
    }
    return r;
}

int hm_hems_on_inform(struct hm_hems *h, struct hm_store *st, struct hm_store_batch *b,
                      struct hm_slice dev, const struct hm_cwmp_inform *in,
                      struct hm_slice host, struct hm_slice path, const char *tls_identity,
                      struct hm_dev_rec *d, char *nodebuf, size_t nodecap)
{
    bool bootstrap = false, boot = false;
    for (uint32_t i = 0; i < in->events.n; i++) {
        if (hm_slice_eq_lit(in->events.v[i].code, "0 BOOTSTRAP"))
            bootstrap = true;
        else if (hm_slice_eq_lit(in->events.v[i].code, "1 BOOT"))
            boot = true;
    }
    if (!h) {
        if (d->reg_state == HM_REG_UNKNOWN || d->reg_state == HM_REG_REDIRECTED)
            d->reg_state = HM_REG_REGISTERED;
        return 0;
    }
    bool igd = false;
    for (uint32_t i = 0; i < in->params.n && !igd; i++)
        igd = in->params.v[i].name.len >= 22 &&
              !memcmp(in->params.v[i].name.ptr, "InternetGatewayDevice.", 22);
    const char *root = igd ? "InternetGatewayDevice." : "Device.";
    int r = 0;
    bool self = !(h->role & HM_HEMS_ROLE_INITIAL);
    if (!bootstrap && !boot) {
        if ((h->role & HM_HEMS_ROLE_SERVING) &&
            (d->reg_state == HM_REG_UNKNOWN || d->reg_state == HM_REG_REDIRECTED))
            d->reg_state = HM_REG_REGISTERED;
        return 0;
    }
    pthread_mutex_lock(&h->mu);
    json_t *p = h->policy;
    if ((h->role & HM_HEMS_ROLE_INITIAL) && bootstrap) {
        r = discovery(h, p, st, b, dev, root, in, host, path, tls_identity, d, nodebuf, nodecap,
                      &self);
    } else if (h->role & HM_HEMS_ROLE_INITIAL) {
        /* a BOOT without BOOTSTRAP at an initial (or both) node: no identity check ran, so
         * nothing is provisioned (a blocked device stays blocked) */
        self = false;
    } else {
        self = true;
    }
    if (r == 0 && self) {
        bool again = bootstrap || d->reg_state != HM_REG_REGISTERED;
        d->role = HM_ROLE_SERVING;
        if (!d->serving_node.len && h->node_id[0]) {
            size_t n = HM_MIN(strlen(h->node_id), nodecap);
            memcpy(nodebuf, h->node_id, n);
            d->serving_node = hm_slice(nodebuf, n);
        }
        json_t *reg = json_object_get(p, "registration");
        bool enabled = h->policy_file && !(reg && json_is_false(reg));
        if (again && enabled)
            r = registration(h, p, st, b, dev, root, igd, in, d);
        if (r == 0)
            d->reg_state = HM_REG_REGISTERED;
    }
    pthread_mutex_unlock(&h->mu);
    return r;
}

void hm_hems_render_metrics(struct hm_buf *out, void *arg)
{
    struct hm_hems *h = arg;
#define M(f, name, help)                                                                     \
    hm_buf_printf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",  \
                  (unsigned long long)atomic_load_explicit(&h->f, memory_order_relaxed));
    M(refused, "hems_discovery_refused_total",
      "bootstrap Informs refused at the Initial HeMS (device not whitelisted)")
    M(assigned, "hems_discovery_assigned_total",
      "devices redirected to a Serving HeMS by the Initial HeMS")
    M(unassignable, "hems_discovery_unassigned_total",
      "whitelisted bootstraps left unassigned (no Serving HeMS configured)")
    M(registered, "hems_registration_provisioned_total",
      "registration provisioning sequences queued at the Serving HeMS")
    M(loc_refused, "hems_discovery_location_refused_total",
      "bootstraps refused because the reported location is outside the allowed area")
    M(loc_verified, "hems_discovery_location_verified_total",
      "bootstraps whose reported location was inside the allowed area")
    M(loc_unverified, "hems_discovery_location_unverified_total",
      "bootstraps whose location could not be read (allowed unless missing = refuse)")
    M(pm_provisioned, "hems_pm_credentials_provisioned_total",
      "per-device PM upload credentials generated and queued for the device")
    M(pm_disabled, "hems_pm_upload_disabled_total",
      "registrations that recorded PM upload as disabled by policy")
#undef M
}

struct cancel_ctx {
    struct hm_store_batch *b;
    int err;
};

/* Fails one queued task of the refused device. */
static int cancel_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct cancel_ctx *c = arg;
    struct hm_task_rec t;
    if (hm_rec_task_decode(val, &t) < 0 || t.state != HM_TASK_QUEUED)
        return 0;
    t.state = HM_TASK_FAILED;
    t.updated_ms = hm_now_ms();
    t.result = hm_slice_cstr("{\"cancelled\":\"device refused: location outside the allowed "
                             "area\"}");
    size_t n = hm_rec_task_size(&t);
    char *p = hm_store_batch_put_reserve(c->b, HM_DB_TASKS, key, n);
    if (!p || hm_rec_task_encode(&t, p, n) < 0) {
        c->err = -E2BIG;
        return 1;
    }
    return 0;
}

/* The answer to the bootstrap's location GetParameterValues: judged against the area; a
 * device outside (or unknown with "missing": "refuse") is blocked and its queued tasks (the
 * redirection or the registration) are failed, so the session ends with nothing assigned. */
static int location_result(struct hm_hems *h, json_t *p, struct hm_store_reader *rd,
                           struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                           const struct hm_task_rec *t, const struct hm_cwmp_msg *m)
{
    json_t *lc = json_object_get(p, "location_check");
    struct hm_slice v;
    struct hm_dev_rec d;
    if (!lc || hm_store_get(rd, HM_DB_DEVICES, dev, &v) < 0 || hm_rec_dev_decode(v, &d) < 0)
        return 0;
    /* only the GPV of a bootstrap session, queued by discovery (its names are ours) */
    if (!memmem(d.events.ptr, d.events.len, "0 BOOTSTRAP", 11) ||
        (d.reg_state != HM_REG_REDIRECTED && d.reg_state != HM_REG_REGISTERED))
        return 0;
    bool igd = memmem(t->args.ptr, t->args.len, "\"InternetGatewayDevice.", 23) != NULL;
    char latn[256], lonn[256];
    hm_hems_loc_names(lc, igd ? "InternetGatewayDevice." : "Device.", latn, lonn, sizeof(latn));
    char q[270];
    snprintf(q, sizeof(q), "\"%s\"", latn);
    if (!memmem(t->args.ptr, t->args.len, q, strlen(q)))
        return 0;
    struct hm_slice la = {0}, lo = {0};
    if (m->method == HM_CWMP_GET_PARAMETER_VALUES_RESPONSE)
        for (uint32_t i = 0; i < m->u.params.n; i++) {
            if (hm_slice_eq(m->u.params.v[i].name, hm_slice_cstr(latn)))
                la = m->u.params.v[i].value;
            else if (hm_slice_eq(m->u.params.v[i].name, hm_slice_cstr(lonn)))
                lo = m->u.params.v[i].value;
        }
    /* (an entry matched by tls_identity is not found here: its area does not apply to a
     * position read later by GetParameterValues; the global area does) */
    json_t *wle = whitelist_entry(json_object_get(p, "whitelist"), d.oui, d.product_class,
                                  d.serial, NULL);
    double lat = 0, lon = 0;
    enum hm_loc_verdict vd = hm_hems_loc_judge(lc, json_object_get(wle, "area"), la, lo, &lat,
                                               &lon);
    if (vd == HM_LOC_INSIDE) {
        atomic_fetch_add_explicit(&h->loc_verified, 1, memory_order_relaxed);
        return 0;
    }
    if (vd == HM_LOC_UNKNOWN) {
        atomic_fetch_add_explicit(&h->loc_unverified, 1, memory_order_relaxed);
        if (!hm_hems_loc_refuse_missing(lc)) {
            HM_LOG_RL(HM_LOG_WARN, "bootstrap: location not reported, allowed by policy",
                      "device=%.*s", (int)dev.len, dev.ptr);
            return 0;
        }
    }
    atomic_fetch_add_explicit(&h->loc_refused, 1, memory_order_relaxed);
    if (vd == HM_LOC_OUTSIDE)
        HM_LOG_RL(HM_LOG_WARN, "bootstrap refused: location outside the allowed area",
                  "device=%.*s latitude=%.6f longitude=%.6f source=gpv", (int)dev.len, dev.ptr,
                  lat, lon);
    else
        HM_LOG_RL(HM_LOG_WARN, "bootstrap refused: location not reported (missing = refuse)",
                  "device=%.*s", (int)dev.len, dev.ptr);
    char pk[HM_STORE_MAX_KEY], from[HM_STORE_MAX_KEY];
    int pl = hm_key_dev_prefix(pk, sizeof(pk), dev);
    int fl = hm_key_task(from, sizeof(from), dev, seq + 1);
    struct cancel_ctx c = {.b = b};
    if (pl < 0 || fl < 0)
        return 0;
    int r = hm_store_scan(rd, HM_DB_TASKS, hm_slice(pk, (size_t)pl), hm_slice(from, (size_t)fl),
                          cancel_cb, &c);
    if (c.err < 0)
        return c.err;
    if (r < 0)
        return r;
    d.reg_state = HM_REG_BLOCKED;
    d.serving_node = hm_slice("", 0);
    size_t n = hm_rec_dev_size(&d);
    char *dst = hm_store_batch_put_reserve(b, HM_DB_DEVICES, dev, n);
    return dst && hm_rec_dev_encode(&d, dst, n) >= 0 ? 0 : -E2BIG;
}

int hm_hems_on_result(struct hm_hems *h, struct hm_store_reader *rd, struct hm_store_batch *b,
                      struct hm_slice dev, uint64_t seq, const struct hm_task_rec *t,
                      const struct hm_cwmp_msg *m)
{
    if (!h)
        return 0;
    if (t->kind == HM_TASK_GET_PARAM_VALUES) {
        pthread_mutex_lock(&h->mu);
        int r = location_result(h, h->policy, rd, b, dev, seq, t, m);
        pthread_mutex_unlock(&h->mu);
        return r;
    }
    if (t->kind != HM_TASK_ADD_OBJECT && t->kind != HM_TASK_SET_PARAM_VALUES)
        return 0;
    pthread_mutex_lock(&h->mu);
    uint64_t n = 0;
    int r = hm_hems_pm_on_result(json_object_get(h->policy, "pm"), h->realm, rd, b, dev, seq,
                                 t, m, &n);
    pthread_mutex_unlock(&h->mu);
    if (n)
        atomic_fetch_add_explicit(&h->pm_provisioned, n, memory_order_relaxed);
    return r;
}
