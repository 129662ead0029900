/* Northbound API of profiles, pools and device tags (see api_profiles.h). */
#include "core/api_json.h"
#include "core/api_profiles.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/pools.h"
#include "core/profiles.h"
#include "core/shard.h"

#define JSON_CTYPE "application/json"

struct preq {
    struct hm_shard_msg msg;
    struct hm_store_batch batch;
    struct hm_conn_ref ref;
    struct hm_shard *shard;
    int status, http;
    json_t *body; /* answer on success, may be NULL (204) */
};

static void on_msg(struct hm_shard *s, struct hm_shard_msg *m)
{
    struct preq *q = HM_CONTAINER_OF(m, struct preq, msg);
    (void)s;
    json_t *j = q->body;
    int st = q->http;
    if (q->status < 0) {
        st = 503;
        json_decref(j);
        j = hm_api_error_json("store_error", hm_strerror(q->status));
    }
    hm_api_finish_json(q->ref, st, j, false);
    hm_store_batch_fini(&q->batch);
    free(q);
}

static void on_done(void *arg, int status)
{
    struct preq *q = arg;
    q->status = status;
    hm_shard_post(q->shard, &q->msg);
}

static struct preq *preq_new(struct hm_http_exchange *x)
{
    struct preq *q = hm_xcalloc(1, sizeof(*q));
    hm_store_batch_init(&q->batch);
    q->msg.fn = on_msg;
    q->ref = x->ref;
    q->shard = x->shard;
    return q;
}

static void preq_free(struct preq *q)
{
    json_decref(q->body);
    hm_store_batch_fini(&q->batch);
    free(q);
}

/* Submits <q> (under the fleet lock, so store order is memory order); a profile change
 * that cannot be submitted is undone in memory. */
static int submit(struct hm_http_exchange *x, struct hm_fleet *f, struct preq *q, bool profile)
{
    int r = hm_store_submit(hm_fleet_store(f), &q->batch, on_done, q);
    if (profile) {
        if (r < 0)
            hm_fleet_profile_undo(f);
        else
            hm_fleet_profile_done(f);
    }
    if (r < 0) {
        preq_free(q);
        hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
        return hm_api_error(x, 503, "overloaded", "store queue full: %s", hm_strerror(r));
    }
    return HM_HTTP_DEFER;
}

static json_t *body_json(struct hm_http_exchange *x, int *status)
{
    json_error_t je;
    json_t *in = json_loadb(x->body ? x->body : "", x->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!in)
        *status = hm_api_error(x, 400, "bad_json", "line %d column %d: %s", je.line, je.column, je.text);
    return in;
}

static json_t *pool_json(struct hm_pool *p)
{
    struct hm_pool_stats s;
    hm_pool_stats(p, &s);
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "name", hm_pool_name(p), "kind",
                          s.pci ? "pci" : "integer", "lo", (json_int_t)s.lo, "hi",
                          (json_int_t)s.hi, "size", (json_int_t)s.size, "used",
                          (json_int_t)s.used, "exhausted", (json_int_t)s.exhausted);
    if (s.pci) {
        json_object_set_new(j, "reuse_distance", json_integer(s.distance));
        json_object_set_new(j, "tacs", json_integer((json_int_t)s.tacs));
    }
    return j;
}

/* Copies one allocation into a flat buffer (under the pool's mutex: no JSON there). */
struct alloc_rec {
    int64_t val, tac;
    uint32_t len;
};

static void alloc_copy(void *arg, struct hm_slice dev, int64_t val, int64_t tac)
{
    struct alloc_rec r = {val, tac, (uint32_t)dev.len};
    hm_buf_append(arg, &r, sizeof(r));
    hm_buf_append(arg, dev.ptr, dev.len);
}

static int profiles(struct hm_http_exchange *x, struct hm_fleet *f, struct hm_slice rest)
{
    enum hm_http_method m = x->req->method;
    unsigned slot = hm_shard_id(x->shard);
    if (!rest.len) {
        if (m != HM_HTTP_GET)
            return hm_api_error(x, 405, "method_not_allowed", "use GET");
        json_t *a = json_array();
        struct hm_profset *s = hm_fleet_acquire(f, slot);
        for (size_t i = 0; i < hm_profset_count(s); i++)
            json_array_append_new(a, json_deep_copy(hm_profset_at(s, i)->json));
        hm_fleet_release(f, slot);
        return hm_api_send_json(x, 200, a);
    }
    char name[HM_PROFILE_NAME_MAX + 2];
    if (hm_api_path_segment(rest, name, sizeof(name)) < 0 || !hm_profile_name_ok(name))
        return hm_api_error(x, 400, "bad_request", "invalid profile name");
    if (m == HM_HTTP_GET) {
        json_t *j = NULL;
        struct hm_profset *s = hm_fleet_acquire(f, slot);
        for (size_t i = 0; i < hm_profset_count(s) && !j; i++)
            if (!strcmp(hm_profset_at(s, i)->name, name))
                j = json_deep_copy(hm_profset_at(s, i)->json);
        hm_fleet_release(f, slot);
        return j ? hm_api_send_json(x, 200, j) : hm_api_error(x, 404, "not_found", "no profile '%s'", name);
    }
    int st = 0;
    if (m == HM_HTTP_PUT) {
        json_t *in = body_json(x, &st);
        if (!in)
            return st;
        struct preq *q = preq_new(x);
        char err[300];
        hm_fleet_lock(f);
        int r = hm_fleet_profile_put(f, name, in, &q->batch, &q->body, err, sizeof(err));
        json_decref(in);
        if (r < 0) {
            hm_fleet_unlock(f);
            preq_free(q);
            return r == -EINVAL ? hm_api_error(x, 422, "invalid_profile", "%s", err)
                                : hm_api_error(x, 413, "too_large", "%s", err);
        }
        q->http = 200;
        st = submit(x, f, q, true);
        hm_fleet_unlock(f);
        hm_info("profile stored through the API", "profile=%s", name);
        return st;
    }
    if (m == HM_HTTP_DELETE) {
        struct preq *q = preq_new(x);
        hm_fleet_lock(f);
        int r = hm_fleet_profile_del(f, name, &q->batch);
        if (r < 0) {
            hm_fleet_unlock(f);
            preq_free(q);
            return hm_api_error(x, r == -ENOENT ? 404 : 500, r == -ENOENT ? "not_found" : "internal",
                         "profile '%s': %s", name, hm_strerror(r));
        }
        q->http = 204;
        st = submit(x, f, q, true);
        hm_fleet_unlock(f);
        hm_info("profile deleted through the API", "profile=%s", name);
        return st;
    }
    return hm_api_error(x, 405, "method_not_allowed", "use GET, PUT or DELETE");
}

static int pools(struct hm_http_exchange *x, struct hm_fleet *f, struct hm_slice rest)
{
    enum hm_http_method m = x->req->method;
    if (!rest.len) {
        if (m != HM_HTTP_GET)
            return hm_api_error(x, 405, "method_not_allowed", "use GET");
        json_t *a = json_array();
        struct hm_pool *p;
        for (unsigned i = 0; (p = hm_fleet_pool(f, i)); i++)
            json_array_append_new(a, pool_json(p));
        return hm_api_send_json(x, 200, a);
    }
    char name[HM_POOL_NAME_MAX + 2];
    if (hm_api_path_segment(rest, name, sizeof(name)) < 0 || !hm_pool_name_ok(name))
        return hm_api_error(x, 400, "bad_request", "invalid pool name");
    if (m == HM_HTTP_GET) {
        int i = hm_fleet_pool_index(f, name);
        return i < 0 ? hm_api_error(x, 404, "not_found", "no pool '%s'", name)
                     : hm_api_send_json(x, 200, pool_json(hm_fleet_pool(f, (unsigned)i)));
    }
    if (m != HM_HTTP_PUT)
        return hm_api_error(x, 405, "method_not_allowed", "use GET or PUT");
    int st = 0;
    json_t *in = body_json(x, &st);
    if (!in)
        return st;
    struct preq *q = preq_new(x);
    char err[300];
    hm_fleet_lock(f);
    int r = hm_fleet_pool_put(f, name, in, &q->batch, err, sizeof(err));
    json_decref(in);
    if (r < 0) {
        hm_fleet_unlock(f);
        preq_free(q);
        return r == -EBUSY ? hm_api_error(x, 409, "conflict", "%s", err)
                           : hm_api_error(x, 422, "invalid_pool", "%s", err);
    }
    q->http = 200;
    q->body = pool_json(hm_fleet_pool(f, (unsigned)hm_fleet_pool_index(f, name)));
    st = submit(x, f, q, false);
    hm_fleet_unlock(f);
    return st;
}

/* A pool or region name from the path, copied as is into <out>: valid names are letters,
 * digits and "_.-", which are never percent-encoded. -EINVAL when empty or too long. */
static int name_of(struct hm_slice s, char *out, size_t cap)
{
    if (!s.len || s.len >= cap)
        return -EINVAL;
    memcpy(out, s.ptr, s.len);
    out[s.len] = '\0';
    return 0;
}

/* GET /api/v1/pools/{name}/allocations: every allocation (operators' audit; the tests check
 * uniqueness with it). <name>: the path segment. */
static int pool_allocations(struct hm_http_exchange *x, struct hm_fleet *f, struct hm_slice seg)
{
    char name[HM_POOL_NAME_MAX + 2];
    if (name_of(seg, name, sizeof(name)) < 0 || !hm_pool_name_ok(name))
        return hm_api_error(x, 400, "bad_request", "invalid pool name");
    int i = hm_fleet_pool_index(f, name);
    if (i < 0)
        return hm_api_error(x, 404, "not_found", "no pool '%s'", name);
    if (x->req->method != HM_HTTP_GET)
        return hm_api_error(x, 405, "method_not_allowed", "use GET");
    struct hm_buf flat = {0};
    hm_pool_foreach(hm_fleet_pool(f, (unsigned)i), alloc_copy, &flat);
    json_t *a = json_array();
    for (size_t off = 0; off < flat.len;) {
        struct alloc_rec r;
        memcpy(&r, flat.base + off, sizeof(r));
        json_t *e = json_pack("{s:s%,s:I}", "device", flat.base + off + sizeof(r), (size_t)r.len,
                              "value", (json_int_t)r.val);
        if (r.tac >= 0)
            json_object_set_new(e, "tac", json_integer(r.tac));
        json_array_append_new(a, e);
        off += sizeof(r) + r.len;
    }
    hm_buf_free(&flat);
    return hm_api_send_json(x, 200, a);
}

static int regions(struct hm_http_exchange *x, struct hm_fleet *f, struct hm_slice rest)
{
    enum hm_http_method m = x->req->method;
    if (!rest.len) {
        if (m != HM_HTTP_GET)
            return hm_api_error(x, 405, "method_not_allowed", "use GET");
        return hm_api_send_json(x, 200, hm_fleet_regions_json(f, NULL));
    }
    char name[HM_PROFILE_NAME_MAX + 2];
    if (name_of(rest, name, sizeof(name)) < 0 || !hm_profile_name_ok(name))
        return hm_api_error(x, 400, "bad_request", "invalid region name");
    if (m == HM_HTTP_GET) {
        json_t *j = hm_fleet_regions_json(f, name);
        return j ? hm_api_send_json(x, 200, j)
                 : hm_api_error(x, 404, "not_found", "no region '%s'", name);
    }
    if (m != HM_HTTP_PUT && m != HM_HTTP_DELETE)
        return hm_api_error(x, 405, "method_not_allowed", "use GET, PUT or DELETE");
    int st = 0, r;
    json_t *in = NULL;
    if (m == HM_HTTP_PUT && !(in = body_json(x, &st)))
        return st;
    struct preq *q = preq_new(x);
    char err[300];
    hm_fleet_lock(f);
    if (m == HM_HTTP_PUT)
        r = hm_fleet_region_put(f, name, in, &q->batch, &q->body, err, sizeof(err));
    else
        r = hm_fleet_region_del(f, name, &q->batch);
    json_decref(in);
    if (r < 0) {
        hm_fleet_unlock(f);
        preq_free(q);
        if (r == -ENOENT)
            return hm_api_error(x, 404, "not_found", "no region '%s'", name);
        return r == -EINVAL ? hm_api_error(x, 422, "invalid_region", "%s", err)
                            : hm_api_error(x, 413, "too_large", "%s", err);
    }
    q->http = m == HM_HTTP_PUT ? 200 : 204;
    /* applied in memory only once the batch is submitted, in submission order */
    r = hm_store_submit(hm_fleet_store(f), &q->batch, on_done, q);
    hm_fleet_region_commit(f, r == 0);
    hm_fleet_unlock(f);
    if (r < 0) {
        preq_free(q);
        hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
        return hm_api_error(x, 503, "overloaded", "store queue full: %s", hm_strerror(r));
    }
    return HM_HTTP_DEFER;
}

static int tags(struct hm_http_exchange *x, struct hm_fleet *f, struct hm_store_reader *rd,
                const char *dev)
{
    char k[HM_STORE_MAX_KEY];
    int kl = snprintf(k, sizeof(k), "fleet/t/%s", dev);
    if (kl <= 0 || (size_t)kl >= sizeof(k))
        return hm_api_error(x, 400, "bad_request", "device id too long");
    if (x->req->method == HM_HTTP_GET) {
        json_t *a = json_array();
        if (hm_store_read_begin(rd) < 0)
            return hm_api_error(x, 503, "busy", "store busy, retry");
        struct hm_slice v;
        if (hm_store_get(rd, HM_DB_META, hm_slice(k, (size_t)kl), &v) == 0) {
            size_t i = 0;
            while (i < v.len) {
                const char *c = memchr(v.ptr + i, ',', v.len - i);
                size_t e = c ? (size_t)(c - v.ptr) : v.len;
                json_array_append_new(a, json_stringn(v.ptr + i, e - i));
                i = e + 1;
            }
        }
        hm_store_read_end(rd);
        return hm_api_send_json(x, 200, a);
    }
    if (x->req->method != HM_HTTP_PUT)
        return hm_api_error(x, 405, "method_not_allowed", "use GET or PUT");
    int st = 0;
    json_t *in = body_json(x, &st);
    if (!in)
        return st;
    char norm[2048], err[200];
    int n = hm_tags_normalise(in, norm, sizeof(norm), err, sizeof(err));
    if (n < 0) {
        json_decref(in);
        return hm_api_error(x, 422, "invalid_tags", "%s", err);
    }
    struct preq *q = preq_new(x);
    int r = n ? hm_store_batch_put(&q->batch, HM_DB_META, hm_slice(k, (size_t)kl),
                                   hm_slice(norm, (size_t)n))
              : hm_store_batch_del(&q->batch, HM_DB_META, hm_slice(k, (size_t)kl));
    if (r < 0) {
        json_decref(in);
        preq_free(q);
        return hm_api_error(x, 413, "too_large", "tags too long");
    }
    q->http = 200;
    q->body = json_array();
    size_t i = 0;
    while ((int)i < n) {
        const char *c = memchr(norm + i, ',', (size_t)n - i);
        size_t e = c ? (size_t)(c - norm) : (size_t)n;
        json_array_append_new(q->body, json_stringn(norm + i, e - i));
        i = e + 1;
    }
    json_decref(in);
    return submit(x, f, q, false);
}

int hm_api_profiles(struct hm_http_exchange *x, struct hm_fleet *f, struct hm_store_reader *rd,
                    struct hm_slice p)
{
    if (!f)
        return -ENOENT;
    if (hm_slice_eq_lit(p, "profiles"))
        return profiles(x, f, hm_slice("", 0));
    if (p.len > 9 && !memcmp(p.ptr, "profiles/", 9))
        return profiles(x, f, hm_slice(p.ptr + 9, p.len - 9));
    if (hm_slice_eq_lit(p, "regions"))
        return regions(x, f, hm_slice("", 0));
    if (p.len > 8 && !memcmp(p.ptr, "regions/", 8))
        return regions(x, f, hm_slice(p.ptr + 8, p.len - 8));
    static const char allocs[] = "/allocations";
    const size_t al = sizeof(allocs) - 1;
    if (p.len > 6 + al && !memcmp(p.ptr, "pools/", 6) &&
        !memcmp(p.ptr + p.len - al, allocs, al))
        return pool_allocations(x, f, hm_slice(p.ptr + 6, p.len - 6 - al));
    if (hm_slice_eq_lit(p, "pools"))
        return pools(x, f, hm_slice("", 0));
    if (p.len > 6 && !memcmp(p.ptr, "pools/", 6))
        return pools(x, f, hm_slice(p.ptr + 6, p.len - 6));
    if (p.len > 8 && !memcmp(p.ptr, "devices/", 8)) {
        struct hm_slice rest = hm_slice(p.ptr + 8, p.len - 8);
        const char *slash = memchr(rest.ptr, '/', rest.len);
        if (!slash)
            return -ENOENT;
        struct hm_slice sub = hm_slice(slash + 1, rest.len - (size_t)(slash - rest.ptr) - 1);
        bool is_tags = hm_slice_eq_lit(sub, "tags"), is_desired = hm_slice_eq_lit(sub, "desired");
        if (!is_tags && !is_desired)
            return -ENOENT;
        char dev[256];
        if (hm_api_path_segment(hm_slice(rest.ptr, (size_t)(slash - rest.ptr)), dev, sizeof(dev)) < 0)
            return hm_api_error(x, 400, "bad_request", "invalid device id");
        if (is_tags)
            return tags(x, f, rd, dev);
        if (x->req->method != HM_HTTP_GET)
            return hm_api_error(x, 405, "method_not_allowed", "use GET");
        if (hm_store_read_begin(rd) < 0)
            return hm_api_error(x, 503, "busy", "store busy, retry");
        json_t *j = hm_fleet_desired_json(f, hm_shard_id(x->shard), rd, hm_slice_cstr(dev));
        hm_store_read_end(rd);
        return j ? hm_api_send_json(x, 200, j)
                 : hm_api_error(x, 404, "not_found", "no such device, or no profile applies to it");
    }
    return -ENOENT;
}
