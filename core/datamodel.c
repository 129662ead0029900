#include "core/datamodel.h"

#include <ctype.h>
#include <errno.h>
#include <libxml/xmlreader.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"

struct dm_entry {
    const char *path; /* template with {i}; NULL: free slot */
    uint8_t is_object, writable, multi, type, is_list, has_range;
    uint16_t nenums;
    uint16_t since; /* root-model version that added it (major << 8 | minor); 0: base */
    uint32_t max_len;
    int64_t min, max;
    const char *enums; /* nenums NUL-terminated strings back to back */
};

struct dtype {
    char *name, *base;
    uint8_t type;
    uint32_t max_len;
};

struct hm_dm {
    struct dm_entry *tab;
    size_t cap, n;
    /* Interned strings: one growing list of blocks, freed together. */
    char **blocks;
    size_t nblocks;
    struct dtype *dtypes;
    size_t ndtypes;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static char *intern(struct hm_dm *dm, const char *s, size_t n)
{
    char *p = hm_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    dm->blocks = hm_xrealloc(dm->blocks, (dm->nblocks + 1) * sizeof(*dm->blocks));
    dm->blocks[dm->nblocks++] = p;
    return p;
}

static struct dm_entry *slot(const struct hm_dm *dm, const char *path)
{
    size_t i = hash(path) & (dm->cap - 1);
    while (dm->tab[i].path && strcmp(dm->tab[i].path, path) != 0)
        i = (i + 1) & (dm->cap - 1);
    return &dm->tab[i];
}

static void grow(struct hm_dm *dm)
{
    struct dm_entry *old = dm->tab;
    size_t oldcap = dm->cap;
    dm->cap = oldcap ? oldcap * 2 : 1 << 14;
    dm->tab = hm_xcalloc(dm->cap, sizeof(*dm->tab));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].path)
            *slot(dm, old[i].path) = old[i];
    free(old);
}

static void insert(struct hm_dm *dm, const struct dm_entry *e)
{
    if ((dm->n + 1) * 2 > dm->cap)
        grow(dm);
    struct dm_entry *s = slot(dm, e->path);
    if (!s->path)
        dm->n++;
    *s = *e; /* a later file refines an earlier definition */
}

static uint8_t prim_type(const char *el)
{
    static const struct {
        const char *n;
        uint8_t t;
    } m[] = {{"string", HM_CWMP_T_STRING},     {"unsignedInt", HM_CWMP_T_UINT},
             {"int", HM_CWMP_T_INT},           {"long", HM_CWMP_T_LONG},
             {"unsignedLong", HM_CWMP_T_ULONG}, {"boolean", HM_CWMP_T_BOOL},
             {"dateTime", HM_CWMP_T_DATETIME}, {"base64", HM_CWMP_T_BASE64},
             {"hexBinary", HM_CWMP_T_HEXBINARY}, {"decimal", HM_CWMP_T_STRING}};
    for (size_t i = 0; i < HM_ARRAY_SIZE(m); i++)
        if (strcmp(el, m[i].n) == 0)
            return m[i].t;
    return HM_CWMP_T_NONE;
}

static const struct dtype *find_dtype(const struct hm_dm *dm, const char *name)
{
    for (size_t i = 0; i < dm->ndtypes; i++)
        if (strcmp(dm->dtypes[i].name, name) == 0)
            return &dm->dtypes[i];
    return NULL;
}

/* Primitive type of a named data type, following base= links (bounded). */
static uint8_t resolve_dtype(const struct hm_dm *dm, const char *name, uint32_t *max_len)
{
    for (int depth = 0; name && depth < 16; depth++) {
        const struct dtype *d = find_dtype(dm, name);
        if (!d)
            return HM_CWMP_T_STRING;
        if (d->max_len && max_len && !*max_len)
            *max_len = d->max_len;
        if (d->type != HM_CWMP_T_NONE)
            return d->type;
        name = d->base;
    }
    return HM_CWMP_T_STRING;
}

struct loader {
    struct hm_dm *dm;
    const char *mounts[2];
    int nmounts;
    char obj[512];
    bool in_obj, obj_writable, obj_multi;
    bool root_model;     /* the file's model is a root model (Device:2, IGD:1), not a service */
    uint16_t obj_since;  /* version attribute of the current object (root models only) */
    bool in_param, in_syntax, in_dtype;
    struct dm_entry p;
    char pname[512];
    char dtref[512];
    struct hm_buf enums;
    struct dtype dt;
};

static const char *attr(xmlTextReaderPtr r, const char *n, char *buf, size_t cap)
{
    xmlChar *v = xmlTextReaderGetAttribute(r, (const xmlChar *)n);
    if (!v)
        return NULL;
    snprintf(buf, cap, "%s", (const char *)v);
    xmlFree(v);
    return buf;
}

static void add_object(struct loader *l)
{
    for (int i = 0; i < l->nmounts; i++) {
        char full[768];
        snprintf(full, sizeof(full), "%s%s", l->mounts[i], l->obj);
        struct dm_entry e = {.is_object = 1, .writable = l->obj_writable,
                             .multi = l->obj_multi, .since = l->obj_since};
        e.path = intern(l->dm, full, strlen(full));
        insert(l->dm, &e);
    }
}

static void add_param(struct loader *l)
{
    if (l->dtref[0] && l->p.type == HM_CWMP_T_NONE)
        l->p.type = resolve_dtype(l->dm, l->dtref, &l->p.max_len);
    if (l->p.type == HM_CWMP_T_NONE)
        l->p.type = HM_CWMP_T_STRING;
    if (l->enums.len) {
        l->p.enums = intern(l->dm, l->enums.base, l->enums.len);
    }
    for (int i = 0; i < l->nmounts; i++) {
        char full[1024];
        snprintf(full, sizeof(full), "%s%s%s", l->mounts[i], l->obj, l->pname);
        struct dm_entry e = l->p;
        e.path = intern(l->dm, full, strlen(full));
        insert(l->dm, &e);
    }
}

static int load_file(struct hm_dm *dm, const char *path, char *err, size_t errlen)
{
    xmlTextReaderPtr r = xmlReaderForFile(path, NULL, XML_PARSE_NONET);
    if (!r) {
        snprintf(err, errlen, "%s: cannot read data-model file", path);
        return -EIO;
    }
    struct loader l = {.dm = dm, .mounts = {""}, .nmounts = 1};
    char buf[512];
    int rc;
    while ((rc = xmlTextReaderRead(r)) == 1) {
        int type = xmlTextReaderNodeType(r);
        const char *el = (const char *)xmlTextReaderConstLocalName(r);
        if (!el)
            continue;
        bool empty = xmlTextReaderIsEmptyElement(r);
        if (type == XML_READER_TYPE_ELEMENT) {
            if (!strcmp(el, "model")) {
                bool service = attr(r, "isService", buf, sizeof(buf)) && !strcmp(buf, "true");
                l.root_model = !service;
                if (service) {
                    l.mounts[0] = "Device.Services.";
                    l.mounts[1] = "InternetGatewayDevice.Services.";
                    l.nmounts = 2;
                } else {
                    l.mounts[0] = "";
                    l.nmounts = 1;
                }
            } else if (!strcmp(el, "dataType") && !l.in_param && attr(r, "name", buf, sizeof(buf))) {
                l.in_dtype = !empty;
                l.dt = (struct dtype){.name = hm_xstrndup(buf, strlen(buf))};
                if (attr(r, "base", buf, sizeof(buf)))
                    l.dt.base = hm_xstrndup(buf, strlen(buf));
                if (empty) {
                    dm->dtypes = hm_xrealloc(dm->dtypes, (dm->ndtypes + 1) * sizeof(*dm->dtypes));
                    dm->dtypes[dm->ndtypes++] = l.dt;
                }
            } else if (l.in_dtype) {
                uint8_t t = prim_type(el);
                if (t != HM_CWMP_T_NONE && l.dt.type == HM_CWMP_T_NONE)
                    l.dt.type = t;
                if (!strcmp(el, "size") && attr(r, "maxLength", buf, sizeof(buf)))
                    l.dt.max_len = (uint32_t)strtoul(buf, NULL, 10);
            } else if (!strcmp(el, "object") && attr(r, "name", buf, sizeof(buf))) {
                snprintf(l.obj, sizeof(l.obj), "%s", buf);
                size_t n = strlen(l.obj);
                l.obj_multi = n > 4 && !strcmp(l.obj + n - 4, "{i}.");
                l.obj_writable = attr(r, "access", buf, sizeof(buf)) && !strcmp(buf, "readWrite");
                l.obj_since = l.root_model && attr(r, "version", buf, sizeof(buf))
                                  ? hm_dm_version_parse(buf)
                                  : 0;
                l.in_obj = true;
                add_object(&l);
            } else if (!strcmp(el, "parameter") && l.in_obj && !empty &&
                       attr(r, "name", buf, sizeof(buf))) {
                snprintf(l.pname, sizeof(l.pname), "%s", buf);
                l.p = (struct dm_entry){0};
                l.p.writable = attr(r, "access", buf, sizeof(buf)) && !strcmp(buf, "readWrite");
                l.p.since = l.obj_since;
                if (l.root_model && attr(r, "version", buf, sizeof(buf)) &&
                    hm_dm_version_parse(buf) > l.p.since)
                    l.p.since = hm_dm_version_parse(buf);
                l.in_param = true;
                l.dtref[0] = '\0';
                hm_buf_reset(&l.enums);
            } else if (l.in_param && !strcmp(el, "syntax")) {
                l.in_syntax = true;
            } else if (l.in_syntax) {
                uint8_t t = prim_type(el);
                if (t != HM_CWMP_T_NONE && l.p.type == HM_CWMP_T_NONE)
                    l.p.type = t;
                if (!strcmp(el, "list"))
                    l.p.is_list = 1;
                else if (!strcmp(el, "dataType") && attr(r, "ref", buf, sizeof(buf)))
                    snprintf(l.dtref, sizeof(l.dtref), "%s", buf);
                else if (!strcmp(el, "size") && attr(r, "maxLength", buf, sizeof(buf)) &&
                         !l.p.is_list)
                    l.p.max_len = (uint32_t)strtoul(buf, NULL, 10);
                else if (!strcmp(el, "range")) {
                    l.p.has_range = 1;
                    l.p.min = attr(r, "minInclusive", buf, sizeof(buf)) ? strtoll(buf, NULL, 10)
                                                                       : INT64_MIN;
                    l.p.max = attr(r, "maxInclusive", buf, sizeof(buf)) ? strtoll(buf, NULL, 10)
                                                                       : INT64_MAX;
                } else if (!strcmp(el, "enumeration") && attr(r, "value", buf, sizeof(buf)) &&
                           l.p.nenums < 512) {
                    hm_buf_append(&l.enums, buf, strlen(buf) + 1);
                    l.p.nenums++;
                }
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (!strcmp(el, "dataType") && l.in_dtype) {
                l.in_dtype = false;
                dm->dtypes = hm_xrealloc(dm->dtypes, (dm->ndtypes + 1) * sizeof(*dm->dtypes));
                dm->dtypes[dm->ndtypes++] = l.dt;
            } else if (!strcmp(el, "syntax")) {
                l.in_syntax = false;
            } else if (!strcmp(el, "parameter") && l.in_param) {
                add_param(&l);
                l.in_param = false;
            } else if (!strcmp(el, "object")) {
                l.in_obj = false;
            }
        }
    }
    xmlFreeTextReader(r);
    hm_buf_free(&l.enums);
    if (rc < 0) {
        snprintf(err, errlen, "%s: not a valid data-model XML file", path);
        return -EINVAL;
    }
    return 0;
}

struct hm_dm *hm_dm_load(const char *const *paths, size_t n, char *err, size_t errlen)
{
    struct hm_dm *dm = hm_xcalloc(1, sizeof(*dm));
    grow(dm);
    /* Data types first: parameters of a later file may use those of an earlier one. */
    for (size_t i = 0; i < n; i++) {
        if (load_file(dm, paths[i], err, errlen) < 0) {
            hm_dm_destroy(dm);
            return NULL;
        }
    }
    return dm;
}

void hm_dm_destroy(struct hm_dm *dm)
{
    if (!dm)
        return;
    for (size_t i = 0; i < dm->nblocks; i++)
        free(dm->blocks[i]);
    for (size_t i = 0; i < dm->ndtypes; i++) {
        free(dm->dtypes[i].name);
        free(dm->dtypes[i].base);
    }
    free(dm->dtypes);
    free(dm->blocks);
    free(dm->tab);
    free(dm);
}

size_t hm_dm_count(const struct hm_dm *dm)
{
    return dm->n;
}

/* "A.B.12.C" -> "A.B.{i}.C" (also "[alias]" instance references). 0 or -ENAMETOOLONG. */
static int to_template(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const char *p = in;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        bool num = n > 0;
        for (size_t i = 0; i < n; i++)
            if (!isdigit((unsigned char)p[i]))
                num = false;
        bool alias = n > 2 && p[0] == '[' && p[n - 1] == ']';
        const char *seg = num || alias ? "{i}" : p;
        size_t sl = num || alias ? 3 : n;
        if (o + sl + 2 >= cap)
            return -ENAMETOOLONG;
        memcpy(out + o, seg, sl);
        o += sl;
        if (dot)
            out[o++] = '.';
        p = dot ? dot + 1 : p + n;
    }
    out[o] = '\0';
    return 0;
}

static const struct dm_entry *lookup(const struct hm_dm *dm, const char *name)
{
    char t[1024];
    if (to_template(name, t, sizeof(t)) < 0)
        return NULL;
    const struct dm_entry *e = slot(dm, t);
    return e->path ? e : NULL;
}

static bool vendor(const char *name)
{
    return strstr(name, ".X_") != NULL || strncmp(name, "X_", 2) == 0;
}

static bool parse_i64(const char *s, int64_t *v, bool uns)
{
    char *end;
    errno = 0;
    if (!*s || (uns && *s == '-'))
        return false;
    if (uns) {
        unsigned long long u = strtoull(s, &end, 10);
        if (u > INT64_MAX)
            u = INT64_MAX;
        *v = (int64_t)u;
    } else {
        *v = strtoll(s, &end, 10);
    }
    return !errno && !*end;
}

static int check_value(const struct dm_entry *e, const char *name, const char *v, char *err,
                       size_t errlen)
{
    if (e->is_list)
        return HM_DM_OK; /* comma-separated lists: items are not checked */
    int64_t x;
    switch (e->type) {
    case HM_CWMP_T_UINT:
    case HM_CWMP_T_INT:
    case HM_CWMP_T_LONG:
    case HM_CWMP_T_ULONG: {
        bool uns = e->type == HM_CWMP_T_UINT || e->type == HM_CWMP_T_ULONG;
        int64_t lo = e->type == HM_CWMP_T_UINT ? 0 : e->type == HM_CWMP_T_INT ? INT32_MIN
                     : uns ? 0 : INT64_MIN;
        int64_t hi = e->type == HM_CWMP_T_UINT ? UINT32_MAX : e->type == HM_CWMP_T_INT ? INT32_MAX
                                                                                     : INT64_MAX;
        if (!parse_i64(v, &x, uns) || x < lo || x > hi) {
            snprintf(err, errlen, "%s: '%s' is not a valid %s", name, v,
                     hm_cwmp_type_xsi((enum hm_cwmp_type)e->type));
            return HM_DM_BAD_VALUE;
        }
        if (e->has_range && (x < e->min || x > e->max)) {
            snprintf(err, errlen, "%s: %lld is outside %lld..%lld", name, (long long)x,
                     (long long)e->min, (long long)e->max);
            return HM_DM_BAD_VALUE;
        }
        return HM_DM_OK;
    }
    case HM_CWMP_T_BOOL:
        if (strcmp(v, "0") && strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "false")) {
            snprintf(err, errlen, "%s: '%s' is not a boolean (0, 1, true, false)", name, v);
            return HM_DM_BAD_VALUE;
        }
        return HM_DM_OK;
    case HM_CWMP_T_DATETIME:
        if (strlen(v) < 19 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':') {
            snprintf(err, errlen, "%s: '%s' is not an xsd:dateTime", name, v);
            return HM_DM_BAD_VALUE;
        }
        return HM_DM_OK;
    default:
        break;
    }
    if (e->max_len && strlen(v) > e->max_len) {
        snprintf(err, errlen, "%s: value longer than %u characters", name, e->max_len);
        return HM_DM_BAD_VALUE;
    }
    if (e->nenums && e->type == HM_CWMP_T_STRING) {
        const char *p = e->enums;
        for (uint16_t i = 0; i < e->nenums; i++, p += strlen(p) + 1)
            if (!strcmp(p, v))
                return HM_DM_OK;
        snprintf(err, errlen, "%s: '%s' is not one of the values the data model allows (e.g. '%s')",
                 name, v, e->enums);
        return HM_DM_BAD_VALUE;
    }
    return HM_DM_OK;
}

int hm_dm_check_set(const struct hm_dm *dm, const char *name, const char *value,
                    enum hm_cwmp_type *type, char *err, size_t errlen)
{
    const struct dm_entry *e = lookup(dm, name);
    if (!e) {
        if (vendor(name)) {
            if (*type == HM_CWMP_T_NONE)
                *type = HM_CWMP_T_STRING;
            return HM_DM_VENDOR;
        }
        snprintf(err, errlen, "%s: no such parameter in the data model", name);
        return HM_DM_UNKNOWN;
    }
    if (e->is_object) {
        snprintf(err, errlen, "%s: is an object, not a parameter", name);
        return HM_DM_IS_OBJECT;
    }
    if (!e->writable) {
        snprintf(err, errlen, "%s: is not writable", name);
        return HM_DM_READ_ONLY;
    }
    if (*type != HM_CWMP_T_NONE && *type != e->type && !(e->is_list && *type == HM_CWMP_T_STRING)) {
        snprintf(err, errlen, "%s: the data model's type is %s, not %s", name,
                 hm_cwmp_type_xsi((enum hm_cwmp_type)e->type), hm_cwmp_type_xsi(*type));
        return HM_DM_BAD_VALUE;
    }
    *type = e->is_list ? HM_CWMP_T_STRING : (enum hm_cwmp_type)e->type;
    return check_value(e, name, value, err, errlen);
}

int hm_dm_check_get(const struct hm_dm *dm, const char *name, char *err, size_t errlen)
{
    if (!*name)
        return HM_DM_OK; /* "" is the whole tree (GetParameterNames) */
    if (lookup(dm, name))
        return HM_DM_OK;
    if (vendor(name))
        return HM_DM_VENDOR;
    /* A partial path of a known object ("Device.Services.") is fine too. */
    char t[1024];
    if (name[strlen(name) - 1] == '.' && to_template(name, t, sizeof(t)) == 0) {
        for (size_t i = 0; i < dm->cap; i++)
            if (dm->tab[i].path && !strncmp(dm->tab[i].path, t, strlen(t)))
                return HM_DM_OK;
    }
    snprintf(err, errlen, "%s: no such parameter or object in the data model", name);
    return HM_DM_UNKNOWN;
}

int hm_dm_check_object(const struct hm_dm *dm, const char *name, bool add, char *err,
                       size_t errlen)
{
    char t[1024];
    if (to_template(name, t, sizeof(t)) < 0) {
        snprintf(err, errlen, "%s: path too long", name);
        return HM_DM_UNKNOWN;
    }
    /* AddObject names the table "X.Y." whose template is "X.Y.{i}."; DeleteObject the
     * instance "X.Y.3." whose template is "X.Y.{i}." already. */
    if (add) {
        size_t n = strlen(t);
        if (n + 4 >= sizeof(t)) {
            snprintf(err, errlen, "%s: path too long", name);
            return HM_DM_UNKNOWN;
        }
        memcpy(t + n, "{i}.", 5);
    }
    const struct dm_entry *e = slot(dm, t);
    if (!e->path) {
        if (vendor(name))
            return HM_DM_VENDOR;
        snprintf(err, errlen, "%s: no such %s in the data model", name,
                 add ? "multi-instance object" : "object instance");
        return HM_DM_UNKNOWN;
    }
    if (!e->is_object) {
        snprintf(err, errlen, "%s: is a parameter, not an object", name);
        return HM_DM_IS_PARAM;
    }
    if (!e->multi) {
        snprintf(err, errlen, "%s: has no instances to add or delete", name);
        return HM_DM_NOT_MULTI;
    }
    if (!e->writable) {
        snprintf(err, errlen, "%s: instances cannot be added or deleted by the ACS", name);
        return HM_DM_READ_ONLY;
    }
    return HM_DM_OK;
}

uint16_t hm_dm_version_parse(const char *s)
{
    const char *colon = strchr(s, ':');
    if (colon)
        s = colon + 1;
    char *end;
    unsigned long maj = strtoul(s, &end, 10);
    if (end == s || *end != '.' || maj == 0 || maj > 255)
        return 0;
    const char *m = end + 1;
    unsigned long min = strtoul(m, &end, 10);
    if (end == m || min > 255 || (*end && *end != '.'))
        return 0;
    return (uint16_t)(maj << 8 | min);
}

int hm_dm_check_version(const struct hm_dm *dm, const char *name, uint16_t dev_version,
                        char *err, size_t errlen)
{
    if (!dev_version || !*name)
        return HM_DM_OK;
    const struct dm_entry *e = lookup(dm, name);
    if (!e && name[strlen(name) - 1] == '.') { /* a table "X.Y." of AddObject */
        char t[1024];
        if (snprintf(t, sizeof(t), "%s{i}.", name) < (int)sizeof(t))
            e = lookup(dm, t);
    }
    /* the root model's major must match the device's ("2.x" vs Device:2) */
    if (!e || !e->since || e->since >> 8 != dev_version >> 8 || e->since <= dev_version)
        return HM_DM_OK;
    snprintf(err, errlen,
             "%s: added in data model version %u.%u; the device reports RootDataModelVersion "
             "%u.%u",
             name, e->since >> 8, e->since & 255, dev_version >> 8, dev_version & 255);
    return HM_DM_TOO_NEW;
}
