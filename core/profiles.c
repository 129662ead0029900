/* Profiles: parsing, matching, merging and compiled sets (see profiles.h). */
#include "core/profiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/acs_task.h"
#include "core/buf.h"
#include "core/bug.h"
#include "proto/cwmp.h"

#define FAIL(...)                                                                            \
    do {                                                                                     \
        snprintf(err, errlen, __VA_ARGS__);                                                  \
        goto fail;                                                                           \
    } while (0)

uint64_t hm_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    return hm_hash_bytes(h, s, strlen(s) + 1); /* the NUL separates fields */
}

static char *xstrdup(const char *s)
{
    return s ? hm_xstrndup(s, strlen(s)) : NULL;
}

static bool name_chars_ok(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

bool hm_profile_name_ok(const char *name)
{
    return name_chars_ok(name, HM_PROFILE_NAME_MAX, "_-.");
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int hm_tags_normalise(json_t *arr, char *out, size_t cap, char *err, size_t errlen)
{
    const char *v[64];
    size_t n = 0, len = 0;
    if (!json_is_array(arr) || json_array_size(arr) > HM_ARRAY_SIZE(v)) {
        snprintf(err, errlen, "tags must be an array of at most %zu strings", HM_ARRAY_SIZE(v));
        return -EINVAL;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *t = json_string_value(json_array_get(arr, i));
        if (!name_chars_ok(t, 32, "_-.:")) {
            snprintf(err, errlen, "tags[%zu] must be 1..32 characters of [A-Za-z0-9_.:-]", i);
            return -EINVAL;
        }
        v[n++] = t;
    }
    qsort(v, n, sizeof(v[0]), cmp_cstr);
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(v[i], v[i - 1]))
            continue;
        size_t tl = strlen(v[i]);
        if (len + tl + 2 > cap) {
            snprintf(err, errlen, "too many tags");
            return -EINVAL;
        }
        if (len)
            out[len++] = ',';
        memcpy(out + len, v[i], tl + 1);
        len += tl;
    }
    return (int)len;
}

void hm_profile_put(struct hm_profile *p)
{
    if (!p || --p->refs > 0)
        return;
    for (uint32_t i = 0; i < p->ntags; i++)
        free(p->tags[i]);
    for (uint32_t i = 0; i < p->ndevices; i++)
        free(p->devices[i]);
    for (uint32_t i = 0; i < p->nparams; i++) {
        free(p->params[i].name);
        free(p->params[i].value);
    }
    free(p->tags);
    free(p->devices);
    free(p->params);
    free(p->name);
    free(p->product_class);
    free(p->sw_version);
    json_decref(p->json);
    free(p);
}

/* Copies a string array field; -1 on error (message in err). */
static int str_list(json_t *a, const char *what, size_t max, char ***out, uint32_t *n, char *err,
                    size_t errlen)
{
    if (!a)
        return 0;
    if (!json_is_array(a) || json_array_size(a) > max) {
        snprintf(err, errlen, "selector.%s must be an array of at most %zu strings", what, max);
        return -1;
    }
    *out = hm_xcalloc(json_array_size(a) + 1, sizeof(char *));
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || !*s || strlen(s) > 256) {
            snprintf(err, errlen, "selector.%s[%zu] must be a non-empty string", what, i);
            return -1;
        }
        (*out)[(*n)++] = xstrdup(s);
    }
    qsort(*out, *n, sizeof(char *), cmp_cstr);
    return 0;
}

/* "${pool:NAME}" -> NAME copied into <pool> (64 bytes); false if not a pool reference. */
static bool pool_ref(const char *v, char pool[64])
{
    size_t n = strlen(v);
    /* the device's S1 far end from its region (core/regions.h): "s1:servers", "s1:port" */
    if (!strcmp(v, "${s1:servers}") || !strcmp(v, "${s1:port}")) {
        memcpy(pool, v + 2, n - 3);
        pool[n - 3] = '\0';
        return true;
    }
    if (n < 9 || strncmp(v, "${pool:", 7) || v[n - 1] != '}' || n - 8 >= 64)
        return false;
    memcpy(pool, v + 7, n - 8);
    pool[n - 8] = '\0';
    return true;
}

static const char *const xsi_names[] = {"xsd:string", "xsd:string", "xsd:int",
                                        "xsd:unsignedInt", "xsd:boolean", "xsd:dateTime",
                                        "xsd:base64", "xsd:long", "xsd:unsignedLong",
                                        "xsd:hexBinary"};

const char *hm_profile_xsi(uint8_t type)
{
    return type < HM_ARRAY_SIZE(xsi_names) ? xsi_names[type] : "xsd:string";
}

static enum hm_cwmp_type type_of(const char *xsi)
{
    const char *const *names = xsi_names;
    for (size_t i = 1; xsi && i < HM_ARRAY_SIZE(xsi_names); i++)
        if (!strcmp(xsi, names[i]))
            return (enum hm_cwmp_type)i;
    return HM_CWMP_T_STRING;
}

/* The selector part of a profile (also a campaign's target set: hm_selector_parse). */
static int parse_selector(struct hm_profile *p, json_t *sel, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    if (sel && !json_is_object(sel))
        FAIL("'selector' must be an object");
    json_object_foreach(sel, k, v)
    {
        if (strcmp(k, "product_class") && strcmp(k, "software_version") && strcmp(k, "tags") &&
            strcmp(k, "devices"))
            FAIL("unknown selector field '%s' (product_class, software_version, tags, devices)",
                 k);
    }
    json_t *pc = json_object_get(sel, "product_class"), *sw = json_object_get(sel, "software_version");
    if (pc && (!json_is_string(pc) || !json_string_length(pc) || json_string_length(pc) > 64))
        FAIL("selector.product_class must be a non-empty string");
    if (sw && (!json_is_string(sw) || !json_string_length(sw) || json_string_length(sw) > 64))
        FAIL("selector.software_version must be a non-empty string (a trailing '*' matches a "
             "prefix)");
    p->product_class = pc ? xstrdup(json_string_value(pc)) : NULL;
    p->sw_version = sw ? xstrdup(json_string_value(sw)) : NULL;
    json_t *tags = json_object_get(sel, "tags");
    if (tags) {
        char tmp[2048];
        if (hm_tags_normalise(tags, tmp, sizeof(tmp), err, errlen) < 0)
            goto fail;
    }
    if (str_list(tags, "tags", 64, &p->tags, &p->ntags, err, errlen) < 0 ||
        str_list(json_object_get(sel, "devices"), "devices", 100000, &p->devices, &p->ndevices,
                 err, errlen) < 0)
        goto fail;
    return 0;
fail:
    return -EINVAL;
}

int hm_selector_parse(json_t *sel, struct hm_profile **out, char *err, size_t errlen)
{
    struct hm_profile *p = hm_xcalloc(1, sizeof(*p));
    p->refs = 1;
    p->name = xstrdup("selector");
    if (!json_is_object(sel) || parse_selector(p, sel, err, errlen) < 0) {
        if (!json_is_object(sel))
            snprintf(err, errlen, "'selector' must be an object");
        hm_profile_put(p);
        *out = NULL;
        return -EINVAL;
    }
    *out = p;
    return 0;
}

int hm_profile_parse(const char *name, json_t *in, hm_profile_pool_fn pool_fn, void *arg,
                     struct hm_profile **out, char *err, size_t errlen)
{
    struct hm_profile *p = hm_xcalloc(1, sizeof(*p));
    struct hm_buf args = {0};
    json_t *req = NULL, *norm = NULL;
    p->refs = 1;
    if (!hm_profile_name_ok(name))
        FAIL("profile name must be 1..%d characters of [A-Za-z0-9_.-]", HM_PROFILE_NAME_MAX);
    p->name = xstrdup(name);
    if (!json_is_object(in))
        FAIL("a profile must be a JSON object with 'selector', 'priority' and 'params'");
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "priority") && strcmp(k, "selector") && strcmp(k, "params") &&
            strcmp(k, "name"))
            FAIL("unknown profile field '%s'", k);
    }
    json_t *pr = json_object_get(in, "priority");
    if (pr && (!json_is_integer(pr) || json_integer_value(pr) < -1000000 ||
               json_integer_value(pr) > 1000000))
        FAIL("'priority' must be an integer in -1000000..1000000");
    p->priority = pr ? json_integer_value(pr) : 0;
    if (parse_selector(p, json_object_get(in, "selector"), err, errlen) < 0)
        goto fail;
    json_t *params = json_object_get(in, "params");
    if (!json_is_array(params) || json_array_size(params) == 0 ||
        json_array_size(params) > HM_PROFILE_MAX_PARAMS)
        FAIL("'params' must be a non-empty array of at most %d {name, value[, type]}",
             HM_PROFILE_MAX_PARAMS);
    /* Check the values as one SetParameterValues: the data model gives the xsi:types. */
    size_t np = json_array_size(params);
    p->params = hm_xcalloc(np, sizeof(*p->params));
    req = json_pack("{s:s,s:[]}", "rpc", "SetParameterValues", "params");
    json_t *rp = json_object_get(req, "params");
    for (size_t i = 0; i < np; i++) {
        json_t *e = json_array_get(params, i);
        const char *pn = json_string_value(json_object_get(e, "name"));
        json_t *pv = json_object_get(e, "value");
        if (!json_is_object(e) || !pn)
            FAIL("params[%zu] must be an object with a string 'name'", i);
        json_t *copy = json_deep_copy(e);
        p->params[i].pool = -1;
        char pool[64];
        if (json_is_string(pv) && pool_ref(json_string_value(pv), pool)) {
            int64_t sample = 0;
            int idx = pool_fn ? pool_fn(arg, pool, &sample) : -ENOENT;
            if (idx < 0) {
                json_decref(copy);
                FAIL("params[%zu] (%s): no pool named '%s'", i, pn ? pn : "?", pool);
            }
            p->params[i].pool = (int16_t)idx;
            json_object_set_new(copy, "value", json_integer(sample));
        }
        json_array_append_new(rp, copy);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(params, j), "name")),
                        pn))
                FAIL("params[%zu]: parameter %s is set twice", i, pn);
    }
    enum hm_task_kind kind;
    if (hm_task_validate(req, &kind, &args, err, errlen) < 0)
        goto fail;
    json_t *nargs = json_loadb(args.base, args.len, 0, NULL);
    json_t *nparams = json_object_get(nargs, "params");
    norm = json_pack("{s:s,s:I,s:{},s:[]}", "name", name, "priority", (json_int_t)p->priority,
                     "selector", "params");
    json_t *nsel = json_object_get(norm, "selector");
    if (p->product_class)
        json_object_set_new(nsel, "product_class", json_string(p->product_class));
    if (p->sw_version)
        json_object_set_new(nsel, "software_version", json_string(p->sw_version));
    if (json_object_get(json_object_get(in, "selector"), "tags")) {
        json_t *t = json_array();
        for (uint32_t i = 0; i < p->ntags; i++)
            json_array_append_new(t, json_string(p->tags[i]));
        json_object_set_new(nsel, "tags", t);
    }
    if (p->ndevices) {
        json_t *t = json_array();
        for (uint32_t i = 0; i < p->ndevices; i++)
            json_array_append_new(t, json_string(p->devices[i]));
        json_object_set_new(nsel, "devices", t);
    }
    for (size_t i = 0; i < np; i++) {
        json_t *ne = json_array_get(nparams, i);
        const char *t = json_string_value(json_object_get(ne, "type"));
        struct hm_profile_param *pp = &p->params[i];
        pp->name = xstrdup(json_string_value(json_object_get(ne, "name")));
        pp->type = (uint8_t)type_of(t);
        const char *val = pp->pool >= 0
                              ? json_string_value(json_object_get(json_array_get(params, i),
                                                                  "value"))
                              : json_string_value(json_object_get(ne, "value"));
        pp->value = xstrdup(pp->pool >= 0 ? "" : val);
        json_array_append_new(json_object_get(norm, "params"),
                              json_pack("{s:s,s:s,s:s}", "name", pp->name, "value", val, "type",
                                        t ? t : "xsd:string"));
    }
    p->nparams = (uint32_t)np;
    json_decref(nargs);
    p->json = norm;
    norm = NULL;
    json_decref(req);
    hm_buf_free(&args);
    *out = p;
    return 0;
fail:
    json_decref(req);
    json_decref(norm);
    hm_buf_free(&args);
    hm_profile_put(p);
    *out = NULL;
    return -EINVAL;
}

static bool slice_is(struct hm_slice s, const char *c)
{
    return hm_slice_eq(s, hm_slice_cstr(c));
}

static bool has_tag(struct hm_slice tags, const char *t)
{
    size_t tl = strlen(t);
    size_t i = 0;
    while (i < tags.len) {
        const char *c = memchr(tags.ptr + i, ',', tags.len - i);
        size_t e = c ? (size_t)(c - tags.ptr) : tags.len;
        if (e - i == tl && memcmp(tags.ptr + i, t, tl) == 0)
            return true;
        i = e + 1;
    }
    return false;
}

bool hm_profile_matches(const struct hm_profile *p, struct hm_slice pc, struct hm_slice sw,
                        struct hm_slice tags, struct hm_slice dev)
{
    if (p->product_class && !slice_is(pc, p->product_class))
        return false;
    if (p->sw_version) {
        size_t n = strlen(p->sw_version);
        if (n && p->sw_version[n - 1] == '*') {
            if (sw.len < n - 1 || (n > 1 && memcmp(sw.ptr, p->sw_version, n - 1)))
                return false;
        } else if (!slice_is(sw, p->sw_version)) {
            return false;
        }
    }
    for (uint32_t i = 0; i < p->ntags; i++)
        if (!has_tag(tags, p->tags[i]))
            return false;
    if (p->ndevices) {
        size_t lo = 0, hi = p->ndevices;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            const char *d = p->devices[mid];
            size_t dl = strlen(d);
            int c = memcmp(d, dev.ptr, HM_MIN(dl, dev.len));
            if (c == 0)
                c = dl < dev.len ? -1 : dl > dev.len ? 1 : 0;
            if (c == 0)
                return true;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return false;
    }
    return true;
}

/* ---- merging ---------------------------------------------------------------------------- */

struct cand {
    const struct hm_profile_param *pp;
    const struct hm_profile *prof;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    int c = strcmp(x->pp->name, y->pp->name);
    if (c)
        return c;
    /* winner first: higher priority, then the name sorting last */
    if (x->prof->priority != y->prof->priority)
        return x->prof->priority > y->prof->priority ? -1 : 1;
    return -strcmp(x->prof->name, y->prof->name);
}

struct hm_desired *hm_desired_merge(struct hm_profile *const *ps, size_t n, struct hm_slice pc,
                                    struct hm_slice sw, struct hm_slice tags,
                                    struct hm_slice dev)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (hm_profile_matches(ps[i], pc, sw, tags, dev))
            total += ps[i]->nparams;
    if (!total)
        return NULL;
    struct cand *c = hm_xmalloc(total * sizeof(*c));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (hm_profile_matches(ps[i], pc, sw, tags, dev))
            for (uint32_t j = 0; j < ps[i]->nparams; j++)
                c[k++] = (struct cand){&ps[i]->params[j], ps[i]};
    qsort(c, total, sizeof(*c), cand_cmp);
    struct hm_desired *d = hm_xcalloc(1, sizeof(*d) + total * sizeof(d->v[0]));
    uint64_t h = HM_HASH_INIT;
    for (size_t i = 0; i < total; i++) {
        if (i && !strcmp(c[i].pp->name, c[i - 1].pp->name))
            continue;
        const struct hm_profile_param *pp = c[i].pp;
        d->v[d->n++] = (struct hm_desired_param){pp->name, pp->value, pp->type, pp->pool};
        unsigned bit = hm_desired_bit(hm_slice_cstr(pp->name));
        d->filter[bit / 64] |= 1ull << (bit % 64);
        h = hash_str(h, pp->name);
        h = hash_str(h, pp->value);
        h = hm_hash_bytes(h, &pp->type, 1);
        h = hm_hash_bytes(h, &pp->pool, sizeof(pp->pool));
        if (pp->pool >= 0) {
            bool seen = false;
            for (uint32_t j = 0; j < d->npools; j++)
                seen |= d->pools[j] == pp->pool;
            if (!seen && d->npools < HM_ARRAY_SIZE(d->pools))
                d->pools[d->npools++] = pp->pool;
        }
    }
    d->hash = h;
    free(c);
    return d;
}

const struct hm_desired_param *hm_desired_find(const struct hm_desired *d, struct hm_slice name)
{
    unsigned bit = hm_desired_bit(name);
    if (!(d->filter[bit / 64] >> (bit % 64) & 1))
        return NULL;
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *s = d->v[mid].name;
        size_t sl = strlen(s);
        int c = memcmp(s, name.ptr, HM_MIN(sl, name.len));
        if (c == 0)
            c = sl < name.len ? -1 : sl > name.len ? 1 : 0;
        if (c == 0)
            return &d->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- compiled sets ------------------------------------------------------------------------ */

struct centry {
    char *key; /* NULL: empty */
    size_t klen;
    uint64_t h;
    struct hm_desired *d; /* may be NULL: nothing applies */
};

struct cache {
    struct centry *tab;
    size_t cap, n;
};

struct hm_profset {
    struct hm_profile **ps; /* sorted by name */
    size_t n;
    bool uses_tags;
    char **devset; /* sorted device ids named by some profile */
    size_t ndev;
    struct cache cache[HM_PROFSET_SLOTS];
};

struct hm_profset *hm_profset_build(struct hm_profile *const *ps, size_t n)
{
    struct hm_profset *s = hm_xcalloc(1, sizeof(*s));
    s->ps = hm_xcalloc(n + 1, sizeof(*s->ps));
    size_t ndev = 0;
    for (size_t i = 0; i < n; i++) {
        s->ps[i] = ps[i];
        ps[i]->refs++;
        s->uses_tags |= ps[i]->ntags > 0;
        ndev += ps[i]->ndevices;
    }
    s->n = n;
    for (size_t i = 1; i < n; i++) { /* insertion sort by name: n is small, control path */
        struct hm_profile *x = s->ps[i];
        size_t j = i;
        while (j > 0 && strcmp(s->ps[j - 1]->name, x->name) > 0) {
            s->ps[j] = s->ps[j - 1];
            j--;
        }
        s->ps[j] = x;
    }
    s->devset = hm_xcalloc(ndev + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < ps[i]->ndevices; j++)
            s->devset[s->ndev++] = ps[i]->devices[j];
    qsort(s->devset, s->ndev, sizeof(char *), cmp_cstr);
    return s;
}

void hm_profset_free(struct hm_profset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < HM_PROFSET_SLOTS; i++) {
        struct cache *c = &s->cache[i];
        for (size_t j = 0; j < c->cap; j++) {
            free(c->tab[j].key);
            free(c->tab[j].d);
        }
        free(c->tab);
    }
    for (size_t i = 0; i < s->n; i++)
        hm_profile_put(s->ps[i]);
    free(s->ps);
    free(s->devset);
    free(s);
}

size_t hm_profset_count(const struct hm_profset *s)
{
    return s ? s->n : 0;
}

const struct hm_profile *hm_profset_at(const struct hm_profset *s, size_t i)
{
    return i < s->n ? s->ps[i] : NULL;
}

bool hm_profset_uses_tags(const struct hm_profset *s)
{
    return s && s->uses_tags;
}

static bool in_devset(const struct hm_profset *s, struct hm_slice dev)
{
    size_t lo = 0, hi = s->ndev;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *d = s->devset[mid];
        size_t dl = strlen(d);
        int c = memcmp(d, dev.ptr, HM_MIN(dl, dev.len));
        if (c == 0)
            c = dl < dev.len ? -1 : dl > dev.len ? 1 : 0;
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static void cache_grow(struct cache *c)
{
    struct centry *old = c->tab;
    size_t ocap = c->cap;
    c->cap = ocap ? ocap * 2 : 64;
    c->tab = hm_xcalloc(c->cap, sizeof(*c->tab));
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key)
            continue;
        size_t k = old[i].h & (c->cap - 1);
        while (c->tab[k].key)
            k = (k + 1) & (c->cap - 1);
        c->tab[k] = old[i];
    }
    free(old);
}

const struct hm_desired *hm_profset_lookup(struct hm_profset *s, unsigned slot,
                                           struct hm_slice pc, struct hm_slice sw,
                                           struct hm_slice tags, struct hm_slice dev)
{
    if (!s || !s->n || slot >= HM_PROFSET_SLOTS)
        return NULL;
    bool by_dev = s->ndev && in_devset(s, dev);
    if (!s->uses_tags)
        tags = hm_slice("", 0);
    /* key: pc 0x1f sw 0x1f tags 0x1f [dev] */
    char kb[4096]; /* pc, sw (<= 64 + what the device reports), tags (< 2100), device */
    size_t kl = pc.len + sw.len + tags.len + 3 + (by_dev ? dev.len : 0);
    if (kl > sizeof(kb))
        return NULL;
    size_t o = 0;
    const struct hm_slice parts[4] = {pc, sw, tags, by_dev ? dev : hm_slice("", 0)};
    for (size_t i = 0; i < 4; i++) {
        if (parts[i].len) /* an absent value may be {NULL, 0} */
            memcpy(kb + o, parts[i].ptr, parts[i].len);
        o += parts[i].len;
        if (i < 3)
            kb[o++] = 0x1f;
    }
    uint64_t h = hm_hash_bytes(HM_HASH_INIT, kb, kl);
    h ^= h >> 31;
    struct cache *c = &s->cache[slot];
    if (c->cap) {
        for (size_t k = h & (c->cap - 1);; k = (k + 1) & (c->cap - 1)) {
            struct centry *e = &c->tab[k];
            if (!e->key)
                break;
            if (e->h == h && e->klen == kl && memcmp(e->key, kb, kl) == 0)
                return e->d;
        }
    }
    if ((c->n + 1) * 2 > c->cap)
        cache_grow(c);
    size_t k = h & (c->cap - 1);
    while (c->tab[k].key)
        k = (k + 1) & (c->cap - 1);
    struct centry *e = &c->tab[k];
    e->key = hm_xmalloc(kl);
    memcpy(e->key, kb, kl);
    e->klen = kl;
    e->h = h;
    e->d = hm_desired_merge(s->ps, s->n, pc, sw, tags, dev);
    c->n++;
    return e->d;
}
