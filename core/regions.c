/* S1 far-end regions (see regions.h). */
#include "core/regions.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/profiles.h"

#define FAIL(...)                                                                             \
    do {                                                                                      \
        snprintf(err, errlen, __VA_ARGS__);                                                   \
        goto fail;                                                                            \
    } while (0)

static bool server_ok(const char *s, size_t n)
{
    if (n == 0 || n > HM_REGION_SERVER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

static bool tag_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_'))
            return false;
    }
    return true;
}

static int add_server(struct hm_region *r, const char *s, size_t n, char *err, size_t errlen)
{
    if (!server_ok(s, n))
        FAIL("servers[%u]: a host name or IP address (1..%d of [A-Za-z0-9.:_[]-])", r->nservers,
             HM_REGION_SERVER_MAX);
    if (r->nservers == HM_REGION_MAX_SERVERS)
        FAIL("servers: at most %d", HM_REGION_MAX_SERVERS);
    for (uint32_t i = 0; i < r->nservers; i++)
        if (strlen(r->servers[i]) == n && !memcmp(r->servers[i], s, n))
            FAIL("servers: '%.*s' is listed twice", (int)n, s);
    r->servers[r->nservers++] = hm_xstrndup(s, n);
    return 0;
fail:
    return -EINVAL;
}

static int opt_int(json_t *in, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   char *err, size_t errlen)
{
    json_t *v = json_object_get(in, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%s must be an integer %lld..%lld", key, (long long)lo,
                 (long long)hi);
        return -EINVAL;
    }
    *out = json_integer_value(v);
    return 1;
}

static int parse_selector(struct hm_region *r, json_t *sel, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    if (!sel)
        return 0;
    if (!json_is_object(sel))
        FAIL("selector must be an object");
    json_object_foreach(sel, k, v)
    {
        if (!strcmp(k, "tags")) {
            if (!json_is_array(v) || json_array_size(v) > HM_REGION_MAX_TAGS)
                FAIL("selector.tags must be an array of at most %d tags", HM_REGION_MAX_TAGS);
            for (size_t i = 0; i < json_array_size(v); i++) {
                const char *t = json_string_value(json_array_get(v, i));
                if (!t || !tag_ok(t))
                    FAIL("selector.tags[%zu]: 1..32 of [A-Za-z0-9_.:-]", i);
                r->tags[r->ntags++] = hm_xstrndup(t, strlen(t));
            }
        } else if (!strcmp(k, "tac")) {
            if (!json_is_array(v) || json_array_size(v) == 0 ||
                json_array_size(v) > HM_REGION_MAX_TACS)
                FAIL("selector.tac must be an array of 1..%d TACs or [first, last] ranges",
                     HM_REGION_MAX_TACS);
            for (size_t i = 0; i < json_array_size(v); i++) {
                json_t *e = json_array_get(v, i);
                json_t *lo = json_is_array(e) ? json_array_get(e, 0) : e;
                json_t *hi = json_is_array(e) ? json_array_get(e, 1) : e;
                if ((json_is_array(e) && json_array_size(e) != 2) || !json_is_integer(lo) ||
                    !json_is_integer(hi) || json_integer_value(lo) < 0 ||
                    json_integer_value(hi) < json_integer_value(lo) ||
                    json_integer_value(hi) > 0xffffff)
                    FAIL("selector.tac[%zu]: a TAC or [first, last], 0 <= first <= last <= %d",
                         i, 0xffffff);
                r->tac_lo[r->ntacs] = json_integer_value(lo);
                r->tac_hi[r->ntacs++] = json_integer_value(hi);
            }
        } else if (!strcmp(k, "oui") || !strcmp(k, "product_class")) {
            const char *s = json_string_value(v);
            if (!s || !*s || strlen(s) > 64)
                FAIL("selector.%s must be a string of 1..64 characters", k);
            if (*k == 'o')
                r->oui = hm_xstrndup(s, strlen(s));
            else
                r->product_class = hm_xstrndup(s, strlen(s));
        } else {
            FAIL("selector: unknown key '%s' (tags, tac, oui, product_class)", k);
        }
    }
    return 0;
fail:
    return -EINVAL;
}

int hm_region_parse(const char *name, json_t *in, struct hm_region **out, char *err,
                    size_t errlen)
{
    struct hm_region *r = hm_xcalloc(1, sizeof(*r));
    const char *k;
    json_t *v;
    int64_t n = 0;
    r->port = -1;
    if (!hm_profile_name_ok(name))
        FAIL("region name must be 1..%d of [A-Za-z0-9_.-]", HM_REGION_NAME_MAX);
    memcpy(r->name, name, strlen(name) + 1);
    if (!json_is_object(in))
        FAIL("a region is a JSON object");
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "servers") && strcmp(k, "port") && strcmp(k, "max_servers") &&
            strcmp(k, "priority") && strcmp(k, "selector") && strcmp(k, "name"))
            FAIL("unknown key '%s' (servers, port, max_servers, priority, selector)", k);
    }
    json_t *nm = json_object_get(in, "name"); /* as the normalised form carries it */
    if (nm && (!json_is_string(nm) || strcmp(json_string_value(nm), name)))
        FAIL("name: '%s' expected (the name is the URL's)", name);
    json_t *sv = json_object_get(in, "servers");
    if (json_is_string(sv)) {
        const char *s = json_string_value(sv);
        size_t len = json_string_length(sv);
        for (size_t i = 0; i <= len;) {
            const char *c = memchr(s + i, ',', len - i);
            size_t e = c ? (size_t)(c - s) : len;
            if (add_server(r, s + i, e - i, err, errlen) < 0)
                goto fail;
            i = e + 1;
        }
    } else if (json_is_array(sv)) {
        for (size_t i = 0; i < json_array_size(sv); i++) {
            json_t *e = json_array_get(sv, i);
            if (!json_is_string(e) ||
                add_server(r, json_string_value(e), json_string_length(e), err, errlen) < 0) {
                if (!json_is_string(e))
                    snprintf(err, errlen, "servers[%zu] must be a string", i);
                goto fail;
            }
        }
    }
    if (r->nservers == 0)
        FAIL("servers: a non-empty list of S1 end points (array or comma-separated string)");
    size_t total = 0;
    for (uint32_t i = 0; i < r->nservers; i++)
        total += strlen(r->servers[i]) + 1;
    if (total > HM_REGION_LIST_MAX)
        FAIL("servers: the list is longer than %d bytes", HM_REGION_LIST_MAX);
    if (opt_int(in, "port", 1, 65535, &n, err, errlen) < 0)
        goto fail;
    if (json_object_get(in, "port"))
        r->port = (int32_t)n;
    if (opt_int(in, "max_servers", 1, HM_REGION_MAX_SERVERS, &n, err, errlen) < 0)
        goto fail;
    if (json_object_get(in, "max_servers"))
        r->max_servers = (uint32_t)n;
    if (opt_int(in, "priority", -1000000000, 1000000000, &r->priority, err, errlen) < 0)
        goto fail;
    if (parse_selector(r, json_object_get(in, "selector"), err, errlen) < 0)
        goto fail;
    /* normalised form */
    json_t *j = json_pack("{s:s,s:I,s:[],s:{}}", "name", r->name, "priority",
                          (json_int_t)r->priority, "servers", "selector");
    for (uint32_t i = 0; i < r->nservers; i++)
        json_array_append_new(json_object_get(j, "servers"), json_string(r->servers[i]));
    if (r->port >= 0)
        json_object_set_new(j, "port", json_integer(r->port));
    if (r->max_servers)
        json_object_set_new(j, "max_servers", json_integer(r->max_servers));
    json_t *sel = json_object_get(j, "selector");
    if (r->ntags) {
        json_t *t = json_array();
        for (uint32_t i = 0; i < r->ntags; i++)
            json_array_append_new(t, json_string(r->tags[i]));
        json_object_set_new(sel, "tags", t);
    }
    if (r->ntacs) {
        json_t *t = json_array();
        for (uint32_t i = 0; i < r->ntacs; i++)
            json_array_append_new(t, r->tac_lo[i] == r->tac_hi[i]
                                         ? json_integer(r->tac_lo[i])
                                         : json_pack("[I,I]", (json_int_t)r->tac_lo[i],
                                                     (json_int_t)r->tac_hi[i]));
        json_object_set_new(sel, "tac", t);
    }
    if (r->oui)
        json_object_set_new(sel, "oui", json_string(r->oui));
    if (r->product_class)
        json_object_set_new(sel, "product_class", json_string(r->product_class));
    r->json = j;
    *out = r;
    return 0;
fail:
    hm_region_free(r);
    *out = NULL;
    return -EINVAL;
}

void hm_region_free(struct hm_region *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nservers; i++)
        free(r->servers[i]);
    for (uint32_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->oui);
    free(r->product_class);
    json_decref(r->json);
    free(r);
}

static bool has_tag(struct hm_slice tags, const char *t)
{
    size_t tl = strlen(t), i = 0;
    while (i < tags.len) {
        const char *c = memchr(tags.ptr + i, ',', tags.len - i);
        size_t e = c ? (size_t)(c - tags.ptr) : tags.len;
        if (e - i == tl && !memcmp(tags.ptr + i, t, tl))
            return true;
        i = e + 1;
    }
    return false;
}

bool hm_region_matches(const struct hm_region *r, struct hm_slice tags, int64_t tac,
                       struct hm_slice oui, struct hm_slice pc)
{
    for (uint32_t i = 0; i < r->ntags; i++)
        if (!has_tag(tags, r->tags[i]))
            return false;
    if (r->ntacs) {
        bool in = false;
        for (uint32_t i = 0; i < r->ntacs && !in; i++)
            in = tac >= r->tac_lo[i] && tac <= r->tac_hi[i];
        if (!in)
            return false;
    }
    if (r->oui && !hm_slice_eq(oui, hm_slice_cstr(r->oui)))
        return false;
    if (r->product_class && !hm_slice_eq(pc, hm_slice_cstr(r->product_class)))
        return false;
    return true;
}

const struct hm_region *hm_region_pick(struct hm_region *const *rs, size_t n,
                                       struct hm_slice tags, int64_t tac, struct hm_slice oui,
                                       struct hm_slice pc)
{
    const struct hm_region *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct hm_region *r = rs[i];
        if (best && (r->priority < best->priority ||
                     (r->priority == best->priority && strcmp(r->name, best->name) < 0)))
            continue;
        if (hm_region_matches(r, tags, tac, oui, pc))
            best = r;
    }
    return best;
}

static uint64_t score(struct hm_slice dev, const char *server)
{
    uint64_t h = hm_hash_bytes(HM_HASH_INIT, dev.ptr, dev.len);
    h = hm_hash_bytes(h, "\0", 1);
    h = hm_hash_bytes(h, server, strlen(server));
    /* finaliser (splitmix64): FNV's low bits alone rank poorly */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

int hm_region_list(const struct hm_region *r, struct hm_slice dev, char *out, size_t cap)
{
    uint64_t sc[HM_REGION_MAX_SERVERS];
    uint32_t ord[HM_REGION_MAX_SERVERS];
    for (uint32_t i = 0; i < r->nservers; i++) {
        sc[i] = score(dev, r->servers[i]);
        ord[i] = i;
    }
    /* insertion sort by score, descending (ties: list order) */
    for (uint32_t i = 1; i < r->nservers; i++)
        for (uint32_t k = i; k > 0 && sc[ord[k]] > sc[ord[k - 1]]; k--) {
            uint32_t t = ord[k];
            ord[k] = ord[k - 1];
            ord[k - 1] = t;
        }
    uint32_t n = r->max_servers && r->max_servers < r->nservers ? r->max_servers : r->nservers;
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t sl = strlen(r->servers[ord[i]]);
        if (len + sl + (i ? 1 : 0) + 1 > cap)
            return -E2BIG;
        if (i)
            out[len++] = ',';
        memcpy(out + len, r->servers[ord[i]], sl);
        len += sl;
    }
    if (cap)
        out[len] = '\0';
    return (int)len;
}

bool hm_regions_use_tags(struct hm_region *const *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rs[i]->ntags)
            return true;
    return false;
}
